"""Import a disclosure table from the command line: a thin shell around ``import_register``."""

import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from processors.models import Channel, Controller
from processors.spreadsheets.importer import import_register


class Command(BaseCommand):
    help = (
        "Import a third-party disclosure table (.xlsx, .csv or .tsv) into a controller's register. "
        "A file with any error writes nothing; --dry-run shows what would change."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="The .xlsx, .csv or .tsv file.")
        parser.add_argument("--dry-run", action="store_true", help="Check and count, then roll back.")
        parser.add_argument("--controller", help="Controller code (needed when there is more than one).")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="HEADER=field",
            help="Read a column whose header the importer does not know as this field (or 'ignore').",
        )
        parser.add_argument(
            "--effective-from",
            type=datetime.date.fromisoformat,
            help="Date (YYYY-MM-DD) the published table took effect; part of each operation's identity.",
        )

    def handle(self, *args, path: Path, dry_run: bool, controller: str | None, map: list[str], **options):
        if not path.is_file():
            raise CommandError(_("No such file: %(path)s") % {"path": path})
        progress = self._progress if self.stderr.isatty() else None
        report = import_register(
            path,
            controller=self._controller(controller),
            file_name=path.name,
            dry_run=dry_run,
            header_map=self._header_map(map),
            effective_from=options["effective_from"],
            progress=progress,
            channel=Channel.COMMAND,
        )
        if progress is not None:
            self.stderr.write("")  # end the progress line
        self.stdout.write(report.as_text())
        self.stdout.write(_("Import record: #%(id)s") % {"id": report.import_record_id})
        if not report.ok:
            raise CommandError(
                _("%(count)s error(s); nothing was imported.") % {"count": len(report.errors)}
                + "\n"
                + "\n".join(str(problem) for problem in report.errors)
            )

    def _progress(self, done: int) -> None:
        """A one-line counter on a terminal, rewritten in place."""
        self.stderr.write("\r" + _("%(rows)s rows imported") % {"rows": f"{done:,}"}, ending="")
        self.stderr.flush()

    def _controller(self, code: str | None) -> Controller:
        if code:
            try:
                return Controller.objects.get(code=code)
            except Controller.DoesNotExist:
                raise CommandError(
                    _("There is no controller with the code “%(code)s”.") % {"code": code}
                ) from None
        controllers = list(Controller.objects.all()[:2])
        if len(controllers) != 1:
            raise CommandError(_("Say which controller the table belongs to with --controller CODE."))
        return controllers[0]

    def _header_map(self, pairs: list[str]) -> dict[str, str]:
        header_map = {}
        for pair in pairs:
            header, separator, field = pair.rpartition("=")
            if not separator or not header.strip() or not field.strip():
                raise CommandError(_('Write --map as "HEADER=field", not “%(pair)s”.') % {"pair": pair})
            header_map[header.strip()] = field.strip()
        return header_map
