# Withdrawal of published versions, overrides kept on them, and how much history a controller shows.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0008_dataitem_match_inferred"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="controller",
            name="public_versions",
            field=models.CharField(
                choices=[
                    ("none", "none (only the table in effect)"),
                    ("latest", "the latest version only"),
                    ("all", "every version and diff"),
                ],
                default="latest",
                help_text="Which published versions and diffs visitors who are not members may see.",
                max_length=10,
                verbose_name="versions shown to the public",
            ),
        ),
        migrations.AddField(
            model_name="historicalcontroller",
            name="public_versions",
            field=models.CharField(
                choices=[
                    ("none", "none (only the table in effect)"),
                    ("latest", "the latest version only"),
                    ("all", "every version and diff"),
                ],
                default="latest",
                help_text="Which published versions and diffs visitors who are not members may see.",
                max_length=10,
                verbose_name="versions shown to the public",
            ),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="overridden_problems",
            field=models.JSONField(
                blank=True, default=list, editable=False, verbose_name="problems overridden"
            ),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="override_reason",
            field=models.TextField(blank=True, verbose_name="reason for publishing despite problems"),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="withdrawal_reason",
            field=models.TextField(blank=True, editable=False, verbose_name="reason for withdrawal"),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="withdrawn_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="withdrawn at"),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="withdrawn_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="withdrawn by",
            ),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="withdrawn_by_name",
            field=models.CharField(
                blank=True, editable=False, max_length=150, verbose_name="withdrawn by (name)"
            ),
        ),
    ]
