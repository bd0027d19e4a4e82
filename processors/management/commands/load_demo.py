"""Load the iTrus demo register (see processors/demo.py). Idempotent."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from processors.demo import DEMO_FILE, DemoError, demo_load


class Command(BaseCommand):
    help = (
        "Load the iTrus demo register (controller, processors, its 2024-05-20 third-party table). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--file", type=Path, default=DEMO_FILE, help=f"Demo document (default: {DEMO_FILE})."
        )

    def handle(self, *args, file: Path, **options):
        try:
            lines = demo_load(file)
        except DemoError as error:
            raise CommandError(str(error)) from error
        self.stdout.write("\n".join(lines))
