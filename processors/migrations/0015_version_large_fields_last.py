from django.db import migrations, models

# SQLite keeps a row's columns in their table order and a large value in a chain of overflow pages, so
# reading any column stored after the snapshot (the controller, who published, withdrawal, the row
# count) walks the whole snapshot: 70 ms a version row on a register of 100,000 operations, on every
# versions list and diff. Re-adding the snapshot and the rendered pages as the table's last columns
# (beside the stored diffs) lets a list read the small columns from the row's first page; the rendered
# pages (a page of the table, read on every view of a version) come before the snapshot. PostgreSQL
# stores large values out of line (TOAST) and is unaffected; the copy is the same on both.
COPY = (
    'UPDATE "processors_publishedversion" '
    'SET "snapshot_last" = "snapshot", "rendered_pages_last" = "rendered_pages"'
)
COPY_BACK = (
    'UPDATE "processors_publishedversion" '
    'SET "snapshot" = "snapshot_last", "rendered_pages" = "rendered_pages_last"'
)


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0014_finding_search_trigram"),
    ]

    operations = [
        migrations.AddField(
            model_name="publishedversion",
            name="rendered_pages_last",
            field=models.JSONField(blank=True, default=dict, editable=False, verbose_name="rendered pages"),
        ),
        migrations.AddField(
            model_name="publishedversion",
            name="snapshot_last",
            field=models.JSONField(default=dict, editable=False, verbose_name="snapshot"),
            preserve_default=False,
        ),
        migrations.RunSQL(COPY, COPY_BACK, elidable=False),
        migrations.RemoveField(model_name="publishedversion", name="snapshot"),
        migrations.RemoveField(model_name="publishedversion", name="rendered_pages"),
        migrations.RenameField(model_name="publishedversion", old_name="snapshot_last", new_name="snapshot"),
        migrations.RenameField(
            model_name="publishedversion", old_name="rendered_pages_last", new_name="rendered_pages"
        ),
    ]
