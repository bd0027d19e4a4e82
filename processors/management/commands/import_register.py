"""Import a disclosure table from the command line: a thin shell around ``import_register``."""

import datetime
import locale
import os
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import translation
from django.utils.text import slugify
from django.utils.translation import gettext as _

from processors import services
from processors.models import Channel, Controller
from processors.spreadsheets.cells import is_latin_name
from processors.spreadsheets.importer import import_register


def command_language(choice: str | None) -> str:
    """The language of a command's messages: --lang, else the locale (LC_ALL, LC_MESSAGES, LANG)."""
    if choice:
        return "zh-hans" if choice == "zh" else "en"
    name = next((os.environ[key] for key in ("LC_ALL", "LC_MESSAGES", "LANG") if os.environ.get(key)), "")
    name = name or (locale.getlocale()[0] or "")
    return "zh-hans" if name.lower().startswith("zh") else "en"


class Command(BaseCommand):
    help = (
        "Import a third-party disclosure table (.xlsx, .csv, .tsv, or a table inside an HTML, Markdown, "
        "Word or policy-text document) into a controller's register. A file with any error writes "
        "nothing; --dry-run shows what would change."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="The table file, or a document with the table in it.")
        parser.add_argument("--dry-run", action="store_true", help="Check and count, then roll back.")
        parser.add_argument("--controller", help="Controller code (needed when there is more than one).")
        parser.add_argument(
            "--create-controller",
            metavar="NAME",
            help="Create the controller with this name (its code from --controller, or from the name).",
        )
        parser.add_argument(
            "--table",
            type=int,
            metavar="N",
            help="Import table N of a document (1 = the first; the report lists them).",
        )
        parser.add_argument(
            "--default-service",
            metavar="NAME",
            help="The service of a table without a service column (a sub-processor list).",
        )
        parser.add_argument(
            "--lang",
            choices=["zh", "en"],
            help="Language of the messages (default: from the locale).",
        )
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

    created_controller = False

    def handle(self, *args, **options):
        with translation.override(command_language(options["lang"])):
            self._handle(**options)

    def _handle(self, *, path: Path, dry_run: bool, controller: str | None, map: list[str], **options):
        if not path.is_file():
            raise CommandError(_("No such file: %(path)s") % {"path": path})
        if options["table"] is not None and options["table"] < 1:
            raise CommandError(_("Tables are numbered from 1."))
        progress = self._progress if self.stderr.isatty() else None
        with transaction.atomic():
            owner = self._controller(controller, options["create_controller"], dry_run=dry_run)
            report = import_register(
                path,
                controller=owner,
                file_name=path.name,
                dry_run=dry_run,
                header_map=self._header_map(map),
                effective_from=options["effective_from"],
                progress=progress,
                channel=Channel.COMMAND,
                table=options["table"] - 1 if options["table"] else None,
                default_service=options["default_service"],
            )
            if dry_run and self.created_controller:
                # A dry run saves nothing, not even the controller it was asked to create (nor, with it,
                # the import record that names it).
                transaction.set_rollback(True)
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

    def _controller(self, code: str | None, name: str | None, *, dry_run: bool) -> Controller:
        if name:
            code = code or slugify(name) or slugify(name, allow_unicode=True)
            if not code:
                raise CommandError(_("Give the new controller a code with --controller CODE."))
            existing = Controller.objects.filter(code=code).first()
            if existing is not None:
                return existing
            try:
                controller = services.controller_create(
                    code=code, **{"name_en" if is_latin_name(name) else "name_zh": name}
                )
            except ValidationError as error:
                raise CommandError("; ".join(error.messages)) from None
            self.created_controller = True
            self.stdout.write(
                _("Created the controller “%(name)s” (code %(code)s).") % {"name": name, "code": code}
            )
            return controller
        if code:
            try:
                return Controller.objects.get(code=code)
            except Controller.DoesNotExist:
                raise CommandError(
                    _(
                        "There is no controller with the code “%(code)s”. Create it with "
                        '--create-controller "NAME".'
                    )
                    % {"code": code}
                ) from None
        controllers = list(Controller.objects.all()[:2])
        if not controllers:
            raise CommandError(
                _('The register has no controller yet: create one with --create-controller "NAME".')
            )
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
