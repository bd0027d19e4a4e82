# Adds the "inferred — needs review" match kind of data items (issue 11).

from django.db import migrations, models

MATCH_CHOICES = [
    ("alias", "alias"),
    ("ocr", "recognised document"),
    ("composite", "part of a composite item"),
    ("inferred", "inferred — needs review"),
    ("manual", "set by hand"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0007_findings_stored"),
    ]

    operations = [
        migrations.AlterField(
            model_name="dataitem",
            name="match",
            field=models.CharField(
                blank=True, choices=MATCH_CHOICES, max_length=20, verbose_name="matched by"
            ),
        ),
        migrations.AlterField(
            model_name="historicaldataitem",
            name="match",
            field=models.CharField(
                blank=True, choices=MATCH_CHOICES, max_length=20, verbose_name="matched by"
            ),
        ),
    ]
