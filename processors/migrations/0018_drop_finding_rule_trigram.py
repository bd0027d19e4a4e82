from django.db import migrations

# The admin's findings search finds a rule by its title and stored rank (decision 40), never by `LIKE` on
# the rule's code, so the trigram index 0014 built on that column serves nothing; on PostgreSQL it was
# kept up to date on every finding an import creates (a GIN index: the costliest one on the table).
INDEX = "processors_finding_rule_trgm"


def drop_rule_trigram(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{INDEX}"')


def create_rule_trigram(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "processors_finding" '
            'USING gin (UPPER("rule"::text) gin_trgm_ops)'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("processors", "0017_dataitem_reading_order"),
    ]

    operations = [
        migrations.RunPython(drop_rule_trigram, create_rule_trigram, elidable=False),
    ]
