import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from processors.taxonomy import FIXTURE_PATH, load_fixture, taxonomy_sync


class Command(BaseCommand):
    help = (
        "Add the built-in taxonomy items (categories, aliases, purposes, actions) that are newer than the "
        "last applied taxonomy release. Existing rows are never changed or deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--file",
            type=Path,
            default=FIXTURE_PATH,
            help=f"Taxonomy document to apply (default: {FIXTURE_PATH}).",
        )

    def handle(self, *args, **options):
        try:
            data = load_fixture(options["file"])
        except (OSError, json.JSONDecodeError) as error:
            raise CommandError(f"Cannot read {options['file']}: {error}") from error
        result = taxonomy_sync(data=data)
        self.stdout.write(str(result))
        for message in result.skipped:
            self.stdout.write(f"  skipped: {message}")
