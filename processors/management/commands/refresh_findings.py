import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from processors.findings import findings_refresh
from processors.history import history_context
from processors.models import Channel


class Command(BaseCommand):
    help = (
        "Judge the whole register by the findings rules and bring the stored findings in line: new ones "
        "open, those that no longer hold resolved. Run it daily (cron): time-based rules, such as a PIA "
        "older than three years, change with the date alone. On SQLite it also refreshes the query "
        "planner's statistics (ANALYZE)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--today", help="Judge as on this date (YYYY-MM-DD) instead of today.")

    def handle(self, *args, **options):
        today = None
        if options["today"]:
            try:
                today = datetime.date.fromisoformat(options["today"])
            except ValueError as error:
                raise CommandError(f"--today: {error}") from error
        with history_context(Channel.COMMAND):
            counts = findings_refresh(today=today)
        self.stdout.write(
            f"{counts['found']} findings hold: {counts['created']} new, "
            f"{counts['changed']} changed or reopened, {counts['resolved']} resolved."
        )
        if connection.vendor == "sqlite":
            # SQLite keeps no statistics unless asked (PostgreSQL's autovacuum does it by itself): without
            # them its planner guesses every table's size. The daily job is where a register that grew
            # by an import gets them (a few seconds at 100,000 operations).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
