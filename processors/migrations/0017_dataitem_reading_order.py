# The data items' reading order (operation, position, id) as an index, in place of the operation's own.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0016_updated_at_indexes"),
    ]

    # The index first, so that no moment is left without one leading with the operation.
    operations = [
        migrations.AddIndex(
            model_name="dataitem",
            index=models.Index(fields=["operation", "position", "id"], name="dataitem_reading_order"),
        ),
        migrations.AlterField(
            model_name="dataitem",
            name="operation",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="data_items",
                to="processors.operation",
                verbose_name="processing operation",
            ),
        ),
    ]
