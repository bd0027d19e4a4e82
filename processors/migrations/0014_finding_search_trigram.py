from django.db import migrations

# The admin's findings search is `icontains` on the subject and the rule, which PostgreSQL runs as
# UPPER(col::text) LIKE UPPER('%q%'): only a trigram index on that expression serves it (as 0011 does
# for the register's own columns). SQLite has none.
TRIGRAM_COLUMNS = (
    ("processors_finding", "subject_label"),
    ("processors_finding", "rule"),
)


def trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column in TRIGRAM_COLUMNS:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{table}_{column}_trgm" ON "{table}" '
            f'USING gin (UPPER("{column}"::text) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in TRIGRAM_COLUMNS:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{table}_{column}_trgm"')


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0013_reading_order_entries_ranks"),
    ]

    operations = [
        migrations.RunPython(trigram_indexes, drop_trigram_indexes, elidable=False),
    ]
