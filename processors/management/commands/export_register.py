"""Export the register from the command line: a thin shell around the exporters in spreadsheets/export.py.

Every filter of ``OperationFilterSet`` is an option (``--category identity --status active``), generated
from the FilterSet itself so the command can never drift from the API and the browser.
"""

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import django_filters
from django import forms
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from processors.filters import MultipleValueField, OperationFilterSet
from processors.spreadsheets.export import (
    CSV_ENCODINGS,
    DEFAULT_CSV_ENCODING,
    FORMATS,
    LANGUAGES,
    ExportError,
    export_disclosure,
    export_workbook,
    operations_for_export,
)

SHAPES = ("disclosure", "workbook")


class Progress:
    """A one-line counter on a terminal (rewritten with \\r at most five times a second); silent otherwise."""

    def __init__(self, stream: OutputWrapper, total: int | None) -> None:
        self.stream = stream
        self.total = total
        self.shown_at = 0.0
        self.done = 0

    def __call__(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.shown_at >= 0.2:
            self.shown_at = now
            self._show()

    def _show(self) -> None:
        if self.total:
            text = f"{self.done}/{self.total} ({self.done * 100 // self.total}%)"
        else:
            text = str(self.done)
        self.stream.write(f"\r{text}", ending="")
        self.stream.flush()

    def finish(self) -> None:
        if self.shown_at:
            self._show()
            self.stream.write("")
            self.stream.flush()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_multiple(filter_: Any) -> bool:
    return issubclass(
        filter_.field_class,
        (forms.MultipleChoiceField, forms.ModelMultipleChoiceField, MultipleValueField),
    )


class Command(BaseCommand):
    help = (
        "Export the register: the disclosure table (.xlsx or .csv, Chinese or English) or the full "
        "round-trip workbook (.xlsx), for the operations the filters select."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="The file to write (.xlsx or .csv).")
        parser.add_argument(
            "--shape", choices=SHAPES, default="disclosure", help="disclosure (default) or workbook."
        )
        parser.add_argument(
            "--lang", choices=LANGUAGES, default="zh", help="Disclosure language (default zh)."
        )
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file's extension.")
        parser.add_argument(
            "--encoding",
            choices=CSV_ENCODINGS,
            default=DEFAULT_CSV_ENCODING,
            help="CSV encoding (default utf-8-sig: UTF-8 with the BOM Excel needs; gb18030 for old tools).",
        )
        parser.add_argument(
            "--marks",
            action="store_true",
            help="Publication marks: * after sensitive items in CSV and countries after cross-border "
            "recipients. A marked table does not re-import cleanly.",
        )
        filters = parser.add_argument_group("filters (those of the API and the browser)")
        for name, filter_ in OperationFilterSet.base_filters.items():
            multiple = _is_multiple(filter_)
            help_text = ": ".join(
                str(text) for text in (filter_.label, filter_.extra.get("help_text")) if text
            )
            choices = filter_.extra.get("choices")
            extra: dict[str, Any] = {}
            if isinstance(filter_, django_filters.BooleanFilter):
                # The FilterSet reads any other word as "no filter"; refuse it rather than export everything.
                metavar, extra["choices"] = "true|false", ("true", "false")
            else:
                metavar = name.upper()
                if choices and not callable(choices):
                    help_text += " [" + ", ".join(str(code) for code, _label in choices) + "]"
            filters.add_argument(
                f"--{name.replace('_', '-')}",
                dest=f"filter_{name}",
                action="append" if multiple else "store",
                metavar=metavar,
                help=help_text,
                **extra,
            )

    def handle(self, *args, path: Path, shape: str, lang: str, encoding: str, marks: bool, **options):
        fmt = options["format"] or path.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise CommandError(
                _("Cannot tell the format from “%(name)s”; name it .xlsx or .csv, or give --format.")
                % {"name": path.name}
            )
        if shape == "workbook" and fmt != "xlsx":
            raise CommandError(_("The workbook is written as .xlsx only."))
        if not path.parent.is_dir():
            raise CommandError(_("No such directory: %(path)s") % {"path": path.parent})
        params = {
            name.removeprefix("filter_"): value
            for name, value in options.items()
            if name.startswith("filter_") and value is not None
        }
        try:
            operations = operations_for_export(params)
        except ExportError as error:
            raise CommandError(_("Invalid filters:") + "\n" + str(error)) from error

        # Counting costs a query, so only a person watching a terminal gets the total and the counter.
        progress = Progress(self.stderr, operations.count()) if self.stderr.isatty() else None
        count = self._write(
            path,
            operations,
            shape=shape,
            progress=progress,
            fmt=fmt,
            lang=lang,
            encoding=encoding,
            marks=marks,
        )
        if progress is not None:
            progress.finish()
        self.stdout.write(_("Wrote %(count)s operations to %(path)s.") % {"count": count, "path": path})

    def _write(
        self, path: Path, operations: QuerySet, *, shape: str, progress: Progress | None, **options: Any
    ) -> int:
        """Write to a temporary file beside PATH and rename it, so a failed export leaves no half file."""
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; the result is an ordinary file
            with os.fdopen(handle, "wb") as stream:
                if shape == "workbook":
                    count = export_workbook(operations, stream=stream, progress=progress)
                else:
                    count = export_disclosure(operations, stream=stream, progress=progress, **options)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return count
