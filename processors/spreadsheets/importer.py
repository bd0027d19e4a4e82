"""The import core: a disclosure table in, the register updated (or a located list of problems out).

One call reads the rows as they stream from the reader and, chunk by chunk, plans them in memory and
writes each chunk in a few bulk queries (with their history rows), all in one transaction: a file with
any error writes nothing, and a dry run does the same writes and rolls them back so its counts are
exact. Validation is the models' own (``full_clean`` without the queries of unique checks; identity is
checked in memory and the database constraints stay the last line). Every import, failed and dry runs
included, leaves an ``ImportRecord`` written outside that transaction, and every history row it causes
names that record. Importing the same file twice changes nothing.

Rules the table cannot state and this module therefore decides:
- an empty optional cell leaves the register's value alone (it is "not stated", not "none");
- a processor's contact facts from the table fill empty fields only; a different value already in the
  register is kept and reported, so a correction made by hand survives re-importing an old table;
- a row without a relationship matches the register's operation for the same service and processor
  whatever its relationship, so classifying an operation later does not duplicate it on re-import;
- cross-border is derived from the recipients' countries and only ever switched on, never off.
"""

import datetime
import difflib
import hashlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Model
from django.db.models.base import ModelState
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl.utils import get_column_letter

from processors.bulk import (
    bulk_delete_with_history,
    bulk_update_fields,
    copy_created_history,
    history_m2m_rows,
    history_rows,
    insert_objects,
    insert_rows,
    reserve_ids,
)
from processors.history import (
    current_history_state,
    history_bulk_create,
    history_context,
)
from processors.models import (
    Channel,
    Controller,
    DataItem,
    ImportRecord,
    Operation,
    Processor,
    ProcessorAlias,
    Service,
)
from processors.names import NearNames
from processors.spreadsheets.cells import (
    CellError,
    ListCell,
    RecipientCell,
    is_latin_name,
    parse_recipient,
    split_list,
)
from processors.spreadsheets.columns import DISCLOSURE_COLUMNS, IGNORE, ColumnSpec
from processors.spreadsheets.readers import (
    ImportLimits,
    SheetRow,
    SpreadsheetError,
    location_text,
    read_rows,
)
from processors.taxonomy import ItemMapping, Taxonomy, TermMapping
from processors.text import normalize_key

ERROR = "error"
WARNING = "warning"

# Facts a recipient cell or column gives about a processor; filled into empty fields only.
PROCESSOR_FACTS = ("contact_phone", "icp_filing", "public_security_filing", "privacy_policy_url", "country")

# Which column a model field's validation error belongs to, to locate it in the file.
FIELD_COLUMNS = {
    "name": "service",
    "name_zh": "recipient",
    "name_en": "recipient",
    "contact_phone": "recipient",
    "icp_filing": "recipient",
    "public_security_filing": "recipient",
    "recipient_qualifier": "recipient",
    "data_items_text": "data_items",
    "purpose_text": "purpose",
    "actions_text": "actions",
    "device_permissions": "device_permissions",
}

# Every field of an operation, by name (validation is limited to those a row sets).
OPERATION_FIELDS = tuple(field.name for field in Operation._meta.get_fields() if field.concrete)
# Text fields whose validation cannot reject the text a cell gives (no length, choices or validators).
UNCONSTRAINED_TEXT_FIELDS = frozenset(
    field.name
    for field in Operation._meta.fields
    if isinstance(field, models.TextField)
    and field.blank
    and not field.max_length
    and not field.choices
    and not field.validators
)

# What an unknown term is, in the message reporting it (lazy: translated only when reported).
PURPOSE_KIND = gettext_lazy("purpose")
ACTION_KIND = gettext_lazy("processing operation")

# Operation fields a column sets directly when its cell is not empty.
OPERATION_COLUMNS = ("usage_scenario", "sharing_method", "feature_necessary", "transfer_mechanism")


# --- The report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One error or warning, located in the file as precisely as it can be."""

    level: str
    code: str
    message: str
    sheet: str = ""
    row: int | None = None
    column: str = ""
    header: str = ""
    value: str = ""
    suggestions: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.location
        text = f"{where}: {self.message}" if where else self.message
        if self.suggestions:
            text += " " + _("Suggestions: %(suggestions)s.") % {"suggestions": ", ".join(self.suggestions)}
        return text

    @property
    def location(self) -> str:
        return location_text(sheet=self.sheet, row=self.row, column=self.column, header=self.header)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "location": self.location,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "header": self.header,
            "value": self.value,
            "suggestions": list(self.suggestions),
        }


@dataclass
class EntityCounts:
    created: int = 0
    changed: int = 0
    unchanged: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"created": self.created, "changed": self.changed, "unchanged": self.unchanged}


ENTITIES = ("processors", "services", "operations")


@dataclass
class ImportReport:
    """What an import did (or, for a dry run or a file with errors, would have done)."""

    file_name: str
    controller: str
    dry_run: bool
    rows: int = 0
    committed: bool = False
    imported_by: str = ""
    counts: dict[str, EntityCounts] = field(
        default_factory=lambda: {name: EntityCounts() for name in ENTITIES}
    )
    problems: list[Problem] = field(default_factory=list)
    import_record_id: int | None = None
    shape: str = "disclosure"

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def unmapped_items(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.code == "item_unmapped"]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable data (for the API)."""
        return {
            "file_name": self.file_name,
            "controller": self.controller,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "ok": self.ok,
            "rows": self.rows,
            "imported_by": self.imported_by,
            "import_record_id": self.import_record_id,
            "shape": self.shape,
            "counts": {name: counts.to_dict() for name, counts in self.counts.items()},
            "errors": [problem.to_dict() for problem in self.errors],
            "warnings": [problem.to_dict() for problem in self.warnings],
        }

    def as_text(self) -> str:
        """The report as a person reads it on a terminal."""
        if not self.ok:
            state = _("not imported: the file has errors, nothing was saved")
        elif self.dry_run:
            state = _("dry run: nothing was saved")
        else:
            state = _("imported")
        lines = [
            _("%(file)s → %(controller)s: %(rows)s rows, %(state)s.")
            % {"file": self.file_name, "controller": self.controller, "rows": self.rows, "state": state}
        ]
        labels = {"processors": _("processors"), "services": _("services"), "operations": _("operations")}
        for name, counts in self.counts.items():
            lines.append(
                "  "
                + _("%(entity)s: %(created)s created, %(changed)s changed, %(unchanged)s unchanged")
                % {"entity": labels.get(name, name), **counts.to_dict()}
            )
        for title, problems in ((_("Errors"), self.errors), (_("Warnings"), self.warnings)):
            if problems:
                lines.append(f"{title} ({len(problems)}):")
                lines.extend(f"  {problem}" for problem in problems)
        return "\n".join(lines)


# --- Parsed rows and plans ------------------------------------------------------------------------


@dataclass
class _Sheet:
    name: str
    header_row: int
    headers: list[str]
    fields: dict[str, int]  # field -> column index


@dataclass(slots=True)
class _Row:
    sheet: _Sheet
    number: int
    cells: list[str]
    values: dict[str, Any]
    recipient: RecipientCell
    items: ListCell
    mappings: list[ItemMapping]
    purposes: TermMapping | None
    actions: TermMapping | None
    # Worked out when the row is parsed, for the writing step.
    identity: tuple = ()
    item_rows: list[tuple] = field(default_factory=list)
    purpose_ids: tuple[int, ...] = ()
    action_ids: tuple[int, ...] = ()
    target_key: str = ""
    service: Service | None = None

    @property
    def service_name(self) -> str:
        return self.values["service"]


@dataclass
class _ProcessorPlan:
    """One processor the file names, with the facts the file gives about it."""

    key: str
    name: str
    kind: str
    first_row: _Row
    facts: dict[str, str] = field(default_factory=dict)
    fact_rows: dict[str, _Row] = field(default_factory=dict)
    group_key: str = ""
    member_keys: list[str] = field(default_factory=list)
    processor: Processor | None = None
    applied: set[str] = field(default_factory=set)
    group_warned: bool = False


ProgressCallback = Callable[[int], None]

# Rows planned and written together: enough to make each query worth it, few enough to keep memory flat.
CHUNK_ROWS = 5000
# Problems kept on the import record; a broken 100,000-row file must not make a huge JSON column.
RECORD_PROBLEMS = 500

SHAPE_DISCLOSURE = "disclosure"
SHAPE_WORKBOOK = "workbook"

# Validation that needs no query: foreign keys are the importer's own objects, and identity is checked
# in memory (the database constraints stay the last line).
NO_QUERY_CHECKS = {"validate_unique": False, "validate_constraints": False}


@dataclass
class _Chunk:
    """Rows read and parsed together, with the problems found on them; an incomplete one is not written."""

    rows: list[_Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    complete: bool = True


class _RowSkipped(Exception):
    """A row that cannot be written; its error has already been reported."""


def import_register(
    source: Path | str | bytes | BinaryIO,
    *,
    controller: Controller,
    file_name: str,
    dry_run: bool = False,
    header_map: dict[str, str] | None = None,
    user: Any = None,
    progress: ProgressCallback | None = None,
    effective_from: datetime.date | None = None,
    spec: ColumnSpec = DISCLOSURE_COLUMNS,
    channel: Channel | str = Channel.COMMAND,
) -> ImportReport:
    """Import a disclosure table or a full workbook (path, bytes, file object, or pasted text as str)."""
    started = time.monotonic()
    report = ImportReport(
        file_name=file_name,
        controller=controller.code,
        dry_run=dry_run,
        imported_by=user.get_username() if user is not None and hasattr(user, "get_username") else "",
    )
    source, digest, size = _fingerprint(source)
    outer = current_history_state()
    # A caller that already keeps a record of this import (a background job) has its record stamped.
    record = outer.import_record if outer is not None else None
    own_record = record is None
    if record is None:
        record = ImportRecord.objects.create(
            controller=controller,
            user=user if getattr(user, "pk", None) is not None else None,
            channel=Channel(channel),
            file_name=file_name[:255],
            sha256=digest,
            size=size,
            dry_run=dry_run,
            result=ImportRecord.Result.FAILED,
        )
    report.import_record_id = record.pk
    try:
        with transaction.atomic(), history_context(Channel.IMPORT, import_record=record, user=user):
            _run(
                source,
                report=report,
                controller=controller,
                spec=spec,
                header_map=header_map or {},
                effective_from=effective_from,
                progress=progress,
            )
            report.committed = report.ok and not dry_run
            if not report.committed:
                transaction.set_rollback(True)
    finally:
        if own_record:
            _finish_record(record, report, started)
    return report


def _fingerprint(source: Path | str | bytes | BinaryIO) -> tuple[Path | str | bytes, str, int]:
    """The source in a form that can be read once more, with the SHA-256 and size of its bytes."""
    if isinstance(source, Path):
        digest = hashlib.sha256()
        with source.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return source, digest.hexdigest(), source.stat().st_size
    if isinstance(source, str):
        data = source.encode("utf-8")
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        # One byte past the limit is enough for the reader to know the file is over it.
        data = source.read(ImportLimits.from_settings().max_bytes + 1)
        source = data
    return source, hashlib.sha256(data).hexdigest(), len(data)


def _finish_record(record: ImportRecord, report: ImportReport, started: float) -> None:
    if report.committed:
        record.result = ImportRecord.Result.IMPORTED
    elif report.ok and report.dry_run:
        record.result = ImportRecord.Result.PREVIEWED
    else:
        record.result = ImportRecord.Result.FAILED
    record.shape = report.shape
    record.counts = {"rows": report.rows, **{name: c.to_dict() for name, c in report.counts.items()}}
    record.problems = [problem.to_dict() for problem in report.problems[:RECORD_PROBLEMS]]
    record.duration_ms = int((time.monotonic() - started) * 1000)
    record.save(update_fields=["result", "shape", "counts", "problems", "duration_ms"])


def _run(
    source: Path | str | bytes,
    *,
    report: ImportReport,
    controller: Controller,
    spec: ColumnSpec,
    header_map: dict[str, str],
    effective_from: datetime.date | None,
    progress: ProgressCallback | None,
) -> None:
    """Read the file, pick the importer its shape needs, and run it."""
    try:
        rows = read_rows(source, file_name=report.file_name)
        first = next(rows, None)
    except SpreadsheetError as error:
        report.problems.append(
            Problem(ERROR, "file", error.message, sheet=error.sheet, row=error.row, column=error.column)
        )
        return
    rows = itertools.chain([first] if first is not None else [], rows)
    if first is not None and not isinstance(source, str) and _is_workbook_sheet(first.sheet):
        # The round-trip workbook (export_workbook): its own importer, driven by WORKBOOK_SHEETS.
        from processors.spreadsheets.workbook import import_workbook

        report.shape = SHAPE_WORKBOOK
        try:
            import_workbook(rows, report=report, controller=controller)
        except SpreadsheetError as error:
            report.problems.append(
                Problem(ERROR, "file", error.message, sheet=error.sheet, row=error.row, column=error.column)
            )
        return
    importer = _Importer(
        controller=controller,
        report=report,
        spec=spec,
        header_map=header_map,
        effective_from=effective_from,
        progress=progress,
    )
    importer.run(rows)


def _is_workbook_sheet(name: str) -> bool:
    from processors.spreadsheets.export import WORKBOOK_SHEETS

    return name == WORKBOOK_SHEETS[0].name


def validation_messages(error: ValidationError) -> dict[str, list[str]]:
    """A ValidationError as field → messages ("" for errors of the whole object)."""
    return error.message_dict if hasattr(error, "error_dict") else {"": error.messages}


# --- The disclosure importer ----------------------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """An operation the import can match a row to: saved (pk) or created in the current chunk (state)."""

    pk: int | None
    relationship: str
    state: "_OperationState | None" = None


@dataclass(slots=True)
class _OperationState:
    """An operation as the chunk leaves it, with what the rows changed."""

    operation: Operation
    created: bool
    purposes: Sequence[int]
    actions: Sequence[int]
    items: list[DataItem]
    new_items: list[tuple] | None = None
    changed_fields: set[str] = field(default_factory=set)
    terms_changed: bool = False
    rows: list[_Row] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changed_fields or self.terms_changed or self.new_items is not None)


class _Importer:
    """The state of one import; private so that callers only ever see ``import_register``."""

    def __init__(
        self,
        *,
        controller: Controller,
        report: ImportReport,
        spec: ColumnSpec,
        header_map: dict[str, str],
        effective_from: datetime.date | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.controller = controller
        self.report = report
        self.spec = spec
        self.header_map = header_map
        self.effective_from = effective_from
        self.progress = progress
        self.taxonomy: Taxonomy | None = None
        self.sheets: dict[str, _Sheet | None] = {}
        self.foreign: list[tuple[_Sheet, list[int]]] = []
        # The chunk being parsed, where ``problem`` puts what it finds (else it goes to the report).
        self.parsing: _Chunk | None = None
        self.seen: dict[tuple, tuple[str, int]] = {}
        self.done = 0
        self.suggestion_cache: dict[str, list[str]] = {}
        # A table repeats its recipients, purposes and actions on many rows: each text is parsed once.
        self.recipient_cache: dict[str, RecipientCell] = {}
        self.purpose_cache: dict[str, tuple[TermMapping, tuple[int, ...]]] = {}
        self.action_cache: dict[str, tuple[TermMapping, tuple[int, ...]]] = {}
        self.destination_cache: dict[str, list[str]] = {}
        self.item_rows_cache: dict[str, tuple[tuple, ...]] = {}
        self.blank_operation: Operation | None = None
        self.validated_fields: dict[frozenset[str], tuple[str, ...]] = {}  # changed -> fields to validate
        self.valid_values: set[tuple[str, Any]] = set()  # (field, value) pairs that passed validation
        self.plans: dict[str, _ProcessorPlan] = {}
        self.touched: dict[str, dict[str, set[int]]] = {
            name: {"created": set(), "changed": set(), "unchanged": set()} for name in ENTITIES
        }

    # --- problems ---------------------------------------------------------------------------------

    def problem(
        self,
        level: str,
        code: str,
        message: str,
        *,
        row: _Row | None = None,
        sheet: _Sheet | None = None,
        row_number: int | None = None,
        field_name: str = "",
        index: int | None = None,
        value: str = "",
        suggestions: tuple[str, ...] | list[str] = (),
    ) -> None:
        problems = self.parsing.problems if self.parsing is not None else self.report.problems
        sheet = row.sheet if row is not None else sheet
        if index is None and field_name and sheet is not None:
            index = sheet.fields.get(field_name)
        column = header = ""
        if index is not None:
            column = get_column_letter(index + 1)
            header = sheet.headers[index] if sheet is not None and index < len(sheet.headers) else ""
        problems.append(
            Problem(
                level=level,
                code=code,
                message=message,
                sheet=sheet.name if sheet is not None else "",
                row=row.number if row is not None else row_number,
                column=column,
                header=header,
                value=value,
                suggestions=tuple(suggestions),
            )
        )

    # --- the whole run ----------------------------------------------------------------------------

    def run(self, rows: Iterator[SheetRow]) -> None:
        if not self._check_header_map():
            return
        self.taxonomy = Taxonomy.load()
        self._load_register()
        # The problems found while parsing a chunk join the report just before the chunk is written, so
        # that whether it may be written depends on them and on the chunks before it only.
        try:
            for chunk in self._parsed_chunks(rows):
                self.report.problems.extend(chunk.problems)
                self.report.rows += len(chunk.rows)
                if chunk.complete:
                    self._flush(chunk.rows)
        except SpreadsheetError as error:
            # The file is refused whatever its rows said: that is the first thing to read.
            refused = Problem(
                ERROR, "file", error.message, sheet=error.sheet, row=error.row, column=error.column
            )
            self.report.problems.insert(0, refused)
            return
        if not self.report.rows and self.report.ok:
            self.problem(ERROR, "no_rows", _("The file has no rows to import below its header."))
        self._report_near_duplicates()
        for name, sets in self.touched.items():
            counts = self.report.counts[name]
            counts.created = len(sets["created"])
            counts.changed = len(sets["changed"] - sets["created"])
            counts.unchanged = len(sets["unchanged"] - sets["changed"] - sets["created"])

    def _parsed_chunks(self, rows: Iterator[SheetRow]) -> Iterator[_Chunk]:
        """The file's rows, parsed, in chunks; what ``problem`` finds while parsing goes into the chunk."""
        chunk = self.parsing = _Chunk()
        try:
            for sheet_row in rows:
                if sheet_row.sheet not in self.sheets:
                    self.sheets[sheet_row.sheet] = self._read_header(sheet_row)
                    continue
                sheet = self.sheets[sheet_row.sheet]
                if sheet is not None:
                    chunk.rows.append(self._parse_row(sheet, sheet_row))
                    if len(chunk.rows) >= CHUNK_ROWS:
                        yield self._parsed(chunk)
                        chunk = self.parsing = _Chunk()
        except SpreadsheetError:
            chunk.complete = False
            yield self._parsed(chunk)
            raise
        self._finish_sheets()
        yield self._parsed(chunk)

    def _parsed(self, chunk: _Chunk) -> _Chunk:
        # What writing the chunk finds goes to the report.
        self.parsing = None
        return chunk

    def _load_register(self) -> None:
        """What the register already holds, keyed as the file names it (a few queries, once)."""
        processors = list(Processor.objects.all())
        self.processor_by_pk = {processor.pk: processor for processor in processors}
        self.processor_by_key = {processor.name_key: processor for processor in processors}
        self.known_names = {processor.name_key: processor.primary_name for processor in processors}
        self.alias_owner: dict[str, str] = {}
        for key, processor_id in ProcessorAlias.objects.values_list("key", "processor_id"):
            self.processor_by_key.setdefault(key, self.processor_by_pk[processor_id])
            self.alias_owner[key] = self.processor_by_pk[processor_id].name_key
        self.services_by_key = {
            normalize_key(service.name): service for service in self.controller.services.all()
        }
        self.slots: dict[tuple[int, int], list[_Slot]] = defaultdict(list)
        identities = Operation.objects.filter(
            service__controller=self.controller, effective_from=self.effective_from
        ).values_list("pk", "service_id", "processor_id", "relationship")
        for pk, service_id, processor_id, relationship in identities:
            self.slots[(service_id, processor_id)].append(_Slot(pk=pk, relationship=relationship))
        self.group_members: dict[int, list[Processor]] = {}

    def _flush(self, rows: list[_Row]) -> None:
        if not rows:
            return
        self.destination_cache.clear()  # a chunk can give processors their countries and groups
        self._check_repeated_rows(rows)
        plans = self._plan_processors(rows)
        writing = self.report.ok
        self._write_processors(plans, writing=writing)
        writing = writing and self.report.ok
        self._write_services(rows, writing=writing)
        writing = writing and self.report.ok
        self._write_operations(rows, writing=writing)
        self.done += len(rows)
        if self.progress is not None:
            self.progress(self.done)

    def _check_header_map(self) -> bool:
        allowed = [*self.spec.fields]
        for header, target in self.header_map.items():
            if target not in allowed:
                self.problem(
                    ERROR,
                    "header_map",
                    _("The header “%(header)s” is mapped to “%(field)s”, which is not a field of this table.")
                    % {"header": header, "field": target},
                    suggestions=allowed,
                )
        return self.report.ok

    # --- reading and checking ---------------------------------------------------------------------

    def _read_header(self, sheet_row: SheetRow) -> _Sheet | None:
        headers = [cell.strip() for cell in sheet_row.cells]
        sheet = _Sheet(name=sheet_row.sheet, header_row=sheet_row.number, headers=headers, fields={})
        unknown: list[int] = []
        for index, header in enumerate(headers):
            if not header:
                continue
            target = self.spec.field_for(header, self.header_map)
            if target is None:
                unknown.append(index)
            elif target == IGNORE:
                continue
            elif target in sheet.fields:
                self.problem(
                    ERROR,
                    "header_duplicate",
                    _("This column and column %(other)s both mean “%(field)s”.")
                    % {
                        "other": get_column_letter(sheet.fields[target] + 1),
                        "field": self.spec.by_field[target].label,
                    },
                    sheet=sheet,
                    row_number=sheet.header_row,
                    index=index,
                )
            else:
                sheet.fields[target] = index
        if not sheet.fields:
            # A workbook often carries an instructions or change-log sheet; one with no known header at
            # all is not a register. Whether the file has other sheets is only known at its end.
            self.foreign.append((sheet, unknown))
            return None
        self._report_header(sheet, unknown)
        return sheet

    def _report_header(self, sheet: _Sheet, unknown: list[int]) -> None:
        headers = sheet.headers
        known = sorted(str(header) for column in self.spec.columns for header in column.headers)
        for index in unknown:
            self.problem(
                ERROR,
                "header_unknown",
                _("Unknown column header “%(header)s”. Rename it, or map it to a field (or to “ignore”).")
                % {"header": headers[index]},
                sheet=sheet,
                row_number=sheet.header_row,
                index=index,
                value=headers[index],
                suggestions=difflib.get_close_matches(headers[index], known, n=3, cutoff=0.4),
            )
        missing = [
            column for column in self.spec.columns if column.required and column.field not in sheet.fields
        ]
        if missing:
            self.problem(
                ERROR,
                "header_missing",
                _("The header row has no column for %(fields)s.")
                % {"fields": ", ".join(f"“{column.label}”" for column in missing)},
                sheet=sheet,
                row_number=sheet.header_row,
                suggestions=[column.headers[0] for column in missing],
            )

    def _finish_sheets(self) -> None:
        for sheet, unknown in self.foreign:
            if len(self.sheets) > 1:
                self.problem(
                    WARNING,
                    "sheet_skipped",
                    _("This sheet has none of the expected headers and was skipped."),
                    sheet=sheet,
                    row_number=sheet.header_row,
                )
            else:
                self._report_header(sheet, unknown)

    def _parse_row(self, sheet: _Sheet, sheet_row: SheetRow) -> _Row:
        cells = list(sheet_row.cells)
        width = len(sheet.headers)
        for index in range(width, len(cells)):
            if cells[index].strip():
                self.problem(
                    WARNING,
                    "cell_outside_table",
                    _("This cell has no header; its value is kept in the source row only."),
                    sheet=sheet,
                    row_number=sheet_row.number,
                    index=index,
                    value=cells[index],
                )
        cells += [""] * (width - len(cells))
        values: dict[str, Any] = {}
        row = _Row(
            sheet=sheet,
            number=sheet_row.number,
            cells=cells,
            values=values,
            recipient=RecipientCell(names=[]),
            items=ListCell(items=[], open_ended=False),
            mappings=[],
            purposes=None,
            actions=None,
        )
        for field_name, index in sheet.fields.items():
            column = self.spec.by_field[field_name]
            cell = cells[index]
            try:
                value = column.parse(cell)
            except CellError as error:
                self.problem(
                    ERROR,
                    "cell_invalid",
                    error.message,
                    row=row,
                    index=index,
                    value=cell,
                    suggestions=error.suggestions,
                )
                continue
            if value in ("", None):
                if column.required:
                    self.problem(
                        ERROR,
                        "value_required",
                        _("The %(field)s is empty; every row needs one.") % {"field": column.label},
                        row=row,
                        index=index,
                    )
                continue
            values[field_name] = value
        if "recipient" in values:
            row.recipient = _cached(self.recipient_cache, values["recipient"], parse_recipient)
            if not row.recipient.names:
                self.problem(
                    ERROR,
                    "value_required",
                    _("No recipient name is left once the phone number and filings are removed."),
                    row=row,
                    field_name="recipient",
                )
        if "data_items" in values:
            row.items = split_list(values["data_items"])
            row.mappings = self.taxonomy.map_items(row.items.items)
            for mapping in row.mappings:
                if not mapping.category_codes:  # unmapped
                    self.problem(
                        WARNING,
                        "item_unmapped",
                        _("“%(item)s” matches no data category; kept as written (unmapped — needs review).")
                        % {"item": mapping.text},
                        row=row,
                        field_name="data_items",
                        value=mapping.text,
                        suggestions=self._suggestions(mapping.text),
                    )
        if "purpose" in values:
            row.purposes, row.purpose_ids = _cached(self.purpose_cache, values["purpose"], self._purposes)
            self._report_unmapped_terms(row, "purpose", row.purposes, PURPOSE_KIND)
        if "actions" in values:
            row.actions, row.action_ids = _cached(self.action_cache, values["actions"], self._actions)
            self._report_unmapped_terms(row, "actions", row.actions, ACTION_KIND)
        if "service" in values and row.recipient.names:
            row.identity = self._row_identity(row)
        row.item_rows = _item_tuples(row.mappings, self.taxonomy, self.item_rows_cache)
        return row

    def _purposes(self, text: str) -> tuple[TermMapping, tuple[int, ...]]:
        mapping = self.taxonomy.map_purposes(text)
        return mapping, tuple(self.taxonomy.purpose_id(code) for code in mapping.codes)

    def _actions(self, text: str) -> tuple[TermMapping, tuple[int, ...]]:
        mapping = self.taxonomy.map_actions(text)
        return mapping, tuple(self.taxonomy.action_id(code) for code in mapping.codes)

    def _suggestions(self, text: str) -> list[str]:
        # Fuzzy suggestions cost milliseconds; a file repeats its unmapped wording on many rows.
        if text not in self.suggestion_cache:
            self.suggestion_cache[text] = self.taxonomy.suggest_categories(text)
        return self.suggestion_cache[text]

    def _report_unmapped_terms(self, row: _Row, field_name: str, mapping: TermMapping, kind: Any) -> None:
        # ``kind`` is lazy: translating it costs more than the whole check when every term is known.
        for term in mapping.unmapped:
            self.problem(
                WARNING,
                f"{field_name}_unmapped",
                _("“%(term)s” is not a %(kind)s this register knows; the text is kept as written.")
                % {"term": term, "kind": kind},
                row=row,
                field_name=field_name,
                value=term,
            )

    def _row_identity(self, row: _Row) -> tuple:
        recipient = row.recipient
        target = (
            recipient.group_name if recipient.is_group else (recipient.names[0] if recipient.names else "")
        )
        return (normalize_key(row.service_name), normalize_key(target), row.values.get("relationship", ""))

    def _check_repeated_rows(self, rows: list[_Row]) -> None:
        for row in rows:
            if "service" not in row.values or not row.recipient.names:
                continue
            identity = row.identity
            earlier = self.seen.setdefault(identity, (row.sheet.name, row.number))
            if earlier != (row.sheet.name, row.number):
                self.problem(
                    ERROR,
                    "row_repeated",
                    _("Same service and recipient as row %(row)s; merge the two rows.") % {"row": earlier[1]},
                    row=row,
                    field_name="recipient",
                )

    # --- processors -------------------------------------------------------------------------------

    def _plan(self, name: str, kind: str, row: _Row) -> _ProcessorPlan:
        key = normalize_key(name)
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = _ProcessorPlan(key=key, name=name, kind=kind, first_row=row)
        elif kind == Processor.Kind.GROUP:
            plan.kind = kind
        return plan

    def _add_fact(self, plan: _ProcessorPlan, fact: str, value: str, row: _Row) -> None:
        if not value:
            return
        if fact not in plan.facts:
            plan.facts[fact] = value
            plan.fact_rows[fact] = row
        elif plan.facts[fact] != value:
            self.problem(
                WARNING,
                "fact_conflict",
                _("%(name)s: this row gives %(fact)s “%(value)s”; row %(row)s gave “%(kept)s”, kept.")
                % {
                    "name": plan.name,
                    "fact": Processor._meta.get_field(fact).verbose_name,
                    "value": value,
                    "row": plan.fact_rows[fact].number,
                    "kept": plan.facts[fact],
                },
                row=row,
                field_name="country" if fact == "country" else "recipient",
            )

    def _plan_processors(self, rows: list[_Row]) -> list[_ProcessorPlan]:
        touched: dict[str, _ProcessorPlan] = {}
        for row in rows:
            if "service" not in row.values or not row.recipient.names:
                continue  # already reported
            recipient = row.recipient
            contact = {
                "contact_phone": recipient.phone,
                "icp_filing": recipient.icp_filing,
                "public_security_filing": recipient.public_security_filing,
                "privacy_policy_url": row.values.get("privacy_policy_url", ""),
            }
            country = row.values.get("country", "")
            if recipient.is_group:
                target = self._plan(recipient.group_name, Processor.Kind.GROUP, row)
                touched[target.key] = target
                for name in recipient.names:
                    member = self._plan(name, Processor.Kind.ORGANISATION, row)
                    touched[member.key] = member
                    self._add_fact(member, "country", country, row)
                    if member.key not in target.member_keys:
                        target.member_keys.append(member.key)
                    if not member.group_key:
                        member.group_key = target.key
                    elif member.group_key != target.key:
                        self.problem(
                            WARNING,
                            "group_conflict",
                            _("%(name)s is named in two groups; it stays a member of “%(group)s”.")
                            % {"name": member.name, "group": self.plans[member.group_key].name},
                            row=row,
                            field_name="recipient",
                        )
            else:
                target = self._plan(recipient.names[0], Processor.Kind.ORGANISATION, row)
                touched[target.key] = target
                self._add_fact(target, "country", country, row)
            for fact, value in contact.items():
                self._add_fact(target, fact, value, row)
            row.target_key = target.key
        return list(touched.values())

    def _report_near_duplicates(self) -> None:
        names = self.known_names
        # A name the file uses and the register knows under an alias is that processor, not a twin.
        canonical = {key: self.alias_owner.get(key, key) for key in self.plans}
        keys = set(names) | set(canonical.values())
        display = names | {
            canonical[key]: plan.name for key, plan in self.plans.items() if canonical[key] not in names
        }
        candidates = NearNames(keys)
        reported: set[frozenset[str]] = set()
        for key, plan in self.plans.items():
            own = canonical[key]
            for other in candidates.close_to(own):
                pair = frozenset((own, other))
                if other == own or pair in reported:
                    continue
                reported.add(pair)
                self.problem(
                    WARNING,
                    "processor_near_duplicate",
                    _("“%(name)s” looks like “%(other)s”; if they are one company, add an alias.")
                    % {"name": plan.name, "other": display.get(other, other)},
                    row=plan.first_row,
                    field_name="recipient",
                    value=plan.name,
                )

    # --- writing ----------------------------------------------------------------------------------

    def _touch(self, entity: str, state: str, pk: int) -> None:
        self.touched[entity][state].add(pk)

    def _validation_problem(self, error: ValidationError, row: _Row) -> None:
        for field_name, field_messages in validation_messages(error).items():
            for message in field_messages:
                self.problem(ERROR, "invalid", message, row=row, field_name=FIELD_COLUMNS.get(field_name, ""))

    def _valid(self, obj: Model, row: _Row, *, exclude: Sequence[str]) -> bool:
        try:
            obj.full_clean(exclude=exclude, **NO_QUERY_CHECKS)
        except ValidationError as error:
            self._validation_problem(error, row)
            return False
        return True

    def _write_processors(self, plans: list[_ProcessorPlan], *, writing: bool) -> None:
        created: dict[bool, list[_ProcessorPlan]] = {True: [], False: []}
        existing: list[_ProcessorPlan] = []
        changed: dict[int, set[str]] = {}
        # Groups first, so members can point at them.
        for plan in sorted(plans, key=lambda plan: plan.kind != Processor.Kind.GROUP):
            processor = plan.processor or self.processor_by_key.get(plan.key)
            if processor is None:
                name_field = "name_en" if is_latin_name(plan.name) else "name_zh"
                processor = Processor(**{name_field: plan.name}, kind=plan.kind, **plan.facts)
                plan.applied = set(plan.facts)
                plan.processor = processor
                if self._valid(processor, plan.first_row, exclude=["member_of"]):
                    created[plan.kind == Processor.Kind.GROUP].append(plan)
                continue
            plan.processor = processor
            fields = self._processor_changes(plan, processor)
            if processor.pk is None:
                continue  # not saved after an earlier error
            existing.append(plan)
            if fields and self._valid(processor, plan.first_row, exclude=["member_of"]):
                changed.setdefault(processor.pk, set()).update(fields)
        if not writing or not self.report.ok:
            return
        for is_group in (True, False):
            new = [plan.processor for plan in created[is_group]]
            for plan in created[is_group]:
                group = self.plans[plan.group_key].processor if plan.group_key else None
                plan.processor.member_of = group
            history_bulk_create(Processor, new)
            for plan in created[is_group]:
                self._remember_processor(plan.key, plan.processor)
                self._touch("processors", "created", plan.processor.pk)
        for plan in existing:
            fields = self._membership_change(plan, plan.processor)
            if fields:
                changed.setdefault(plan.processor.pk, set()).update(fields)
            elif plan.processor.pk not in changed:
                self._touch("processors", "unchanged", plan.processor.pk)
        updated = [self.processor_by_pk[pk] for pk in changed]
        bulk_update_fields(Processor, updated, set().union(*changed.values()) if changed else ())
        for pk in changed:
            self._touch("processors", "changed", pk)

    def _remember_processor(self, key: str, processor: Processor) -> None:
        self.processor_by_key[key] = processor
        self.processor_by_pk[processor.pk] = processor
        self.group_members.pop(processor.member_of_id, None)

    def _processor_changes(self, plan: _ProcessorPlan, processor: Processor) -> set[str]:
        """Fill the processor's empty fields from facts the file gave since the last chunk."""
        fields: set[str] = set()
        for fact, value in plan.facts.items():
            if fact in plan.applied:
                continue
            plan.applied.add(fact)
            current = getattr(processor, fact)
            current = getattr(current, "code", current) or ""
            if not current:
                setattr(processor, fact, value)
                fields.add(fact)
            elif current != value:
                self.problem(
                    WARNING,
                    "fact_kept",
                    _("%(name)s: the table gives %(fact)s “%(value)s”; the register's “%(kept)s” is kept.")
                    % {
                        "name": plan.name,
                        "fact": Processor._meta.get_field(fact).verbose_name,
                        "value": value,
                        "kept": current,
                    },
                    row=plan.fact_rows[fact],
                    field_name="country" if fact == "country" else "recipient",
                )
        if plan.kind == Processor.Kind.GROUP and processor.kind != plan.kind:
            processor.kind = plan.kind
            fields.add("kind")
        return fields

    def _membership_change(self, plan: _ProcessorPlan, processor: Processor) -> set[str]:
        """Put a processor into the group the file names it in, unless it already belongs to another."""
        fields: set[str] = set()
        group = self.plans[plan.group_key].processor if plan.group_key else None
        if group is not None and group.pk is not None and processor.member_of_id != group.pk:
            if processor.member_of_id is None:
                processor.member_of = group
                fields.add("member_of")
            elif not plan.group_warned:
                plan.group_warned = True
                self.problem(
                    WARNING,
                    "group_conflict",
                    _("%(name)s already belongs to another group, where it stays.") % {"name": plan.name},
                    row=plan.first_row,
                    field_name="recipient",
                )
        return fields

    def _write_services(self, rows: list[_Row], *, writing: bool) -> None:
        new: list[Service] = []
        changed: dict[int, set[str]] = {}
        for row in rows:
            if "service" not in row.values:
                continue
            key = normalize_key(row.service_name)
            service = self.services_by_key.get(key)
            fields = {}
            if "device_permissions" in row.values:
                fields["device_permissions"] = row.values["device_permissions"]
            if service is None:
                service = Service(controller=self.controller, name=row.service_name, **fields)
                self.services_by_key[key] = service
                if self._valid(service, row, exclude=["controller"]):
                    new.append(service)
            else:
                changes = {name for name, value in fields.items() if getattr(service, name) != value}
                for name in changes:
                    setattr(service, name, fields[name])
                if service.pk is not None:
                    if changes and self._valid(service, row, exclude=["controller"]):
                        changed.setdefault(service.pk, set()).update(changes)
                    self._touch("services", "unchanged", service.pk)
            row.service = service
        if not writing or not self.report.ok:
            return
        history_bulk_create(Service, new)
        for service in new:
            self._touch("services", "created", service.pk)
        by_pk = {service.pk: service for service in self.services_by_key.values()}
        bulk_update_fields(
            Service, [by_pk[pk] for pk in changed], set().union(*changed.values()) if changed else ()
        )
        for pk in changed:
            self._touch("services", "changed", pk)

    # --- operations -------------------------------------------------------------------------------

    def _write_operations(self, rows: list[_Row], *, writing: bool) -> None:
        matched: list[tuple[_Row, _Slot]] = []
        for row in rows:
            if row.service is None or not row.target_key:
                continue
            plan = self.plans[row.target_key]
            relationship = row.values.get("relationship", "")
            if not writing:
                # Nothing is saved after an error; the rows are still checked field by field.
                state = _OperationState(self._new_operation(relationship=relationship), True, [], [], [])
                self._apply(row, state, plan)
                self._valid_operation(state)
                continue
            service_id, processor_id = row.service.id, plan.processor.id
            candidates = self.slots[(service_id, processor_id)]
            try:
                slot = self._find_operation(row, candidates, relationship) if candidates else None
            except _RowSkipped:
                continue
            if slot is None:
                operation = self._new_operation(
                    service_id=service_id, processor_id=processor_id, relationship=relationship
                )
                slot = _Slot(
                    pk=None, relationship=relationship, state=_OperationState(operation, True, [], [], [])
                )
                candidates.append(slot)
            matched.append((row, slot))
        if not writing:
            return
        loaded = self._load_operations({slot.pk for _row, slot in matched if slot.pk is not None})
        states: dict[int, _OperationState] = {}
        for row, slot in matched:
            state = slot.state if slot.pk is None else loaded[slot.pk]
            states[id(state)] = state
            self._apply(row, state, self.plans[row.target_key])
        valid = [
            state
            for state in states.values()
            if not state.changed_fields and not state.created or self._valid_operation(state)
        ]
        if self.report.ok:
            self._save_operations(valid)
        for slot in (slot for _row, slot in matched if slot.state is not None):
            slot.pk, slot.state = slot.state.operation.pk, None

    def _new_operation(self, **values: Any) -> Operation:
        """A new unsaved operation of this import, as a copy of a blank one.

        ``Operation(**values)`` costs about 20 µs (every field's default, descriptors); a copy of the
        instance dict of one made once costs 1 µs. The dict holds only immutable defaults and None.
        """
        if self.blank_operation is None:
            self.blank_operation = Operation(effective_from=self.effective_from)
        operation = Operation.__new__(Operation)
        operation.__dict__.update(self.blank_operation.__dict__)
        operation._state = ModelState()
        operation.__dict__.update(values)
        return operation

    def _valid_operation(self, state: _OperationState) -> bool:
        """The model's own validation of the fields the rows set; the others hold checked values already."""
        checked = frozenset(
            state.changed_fields | ({"relationship", "effective_from"} if state.created else set())
        )
        if checked not in self.validated_fields:
            self.validated_fields[checked] = tuple(sorted(checked - UNCONSTRAINED_TEXT_FIELDS))
        validated = self.validated_fields[checked]
        # A field's validation looks at its own value only (an operation has no clean()), so a value that
        # passed once passes again: a table repeats its purposes, actions and qualifiers on many rows.
        stored = state.operation.__dict__
        pending = [
            (name, value)
            for name, value in ((name, _hashable(stored.get(name))) for name in validated)
            if (name, value) not in self.valid_values
        ]
        if not pending:
            return True
        names = {name for name, _value in pending}
        valid = self._valid(
            state.operation, state.rows[-1], exclude=[name for name in OPERATION_FIELDS if name not in names]
        )
        if valid:
            self.valid_values.update(pending)
        return valid

    def _load_operations(self, pks: set[int]) -> dict[int, _OperationState]:
        """The operations rows matched, with their terms and data items (four queries)."""
        if not pks:
            return {}
        states = {
            pk: _OperationState(operation, False, [], [], [])
            for pk, operation in (
                (operation.pk, operation) for operation in Operation.objects.filter(pk__in=pks)
            )
        }
        for name in ("purposes", "actions"):
            target = f"{Operation._meta.get_field(name).m2m_reverse_field_name()}_id"
            for operation_id, target_id in (
                getattr(Operation, name)
                .through.objects.filter(operation_id__in=pks)
                .values_list("operation_id", target)
            ):
                getattr(states[operation_id], name).append(target_id)
        for item in DataItem.objects.filter(operation_id__in=pks):
            states[item.operation_id].items.append(item)
        return states

    def _apply(self, row: _Row, state: _OperationState, plan: _ProcessorPlan) -> None:
        """Apply one row to an operation in memory, noting what changes."""
        operation = state.operation
        values = row.values
        fields: dict[str, Any] = {
            "recipient_qualifier": row.recipient.qualifier,
            "data_items_text": values.get("data_items", ""),
            "source_text": "\t".join(row.cells),
        }
        if row.purposes is not None:
            fields["purpose_text"] = values["purpose"]
        if row.actions is not None:
            fields["actions_text"] = values["actions"]
            fields["actions_open_ended"] = row.actions.open_ended
        fields.update({name: values[name] for name in OPERATION_COLUMNS if name in values})
        destinations = self._destinations(plan)
        if destinations:
            fields["cross_border"] = True
            fields["destination_countries"] = destinations
        elif fields.get("transfer_mechanism"):
            fields["cross_border"] = True
        stored = operation.__dict__
        if state.created and not state.rows:
            # A new operation's first row: all it states is new, nothing to compare (most rows of a
            # first import, so worth the shortcut).
            for name, value in fields.items():
                if name == "destination_countries":
                    setattr(operation, name, value)
                else:
                    stored[name] = value
            state.changed_fields.update(fields)
            if row.purposes is not None:
                state.purposes, state.terms_changed = row.purpose_ids, True
            if row.actions is not None:
                state.actions, state.terms_changed = row.action_ids, True
            if row.item_rows:
                state.new_items = row.item_rows
            state.rows.append(row)
            return
        for name, value in fields.items():
            # The instance dict holds each field's value, except the countries (a list of Country).
            current = stored[name] if name != "destination_countries" else _country_codes(operation)
            if current != value:
                setattr(operation, name, value)
                state.changed_fields.add(name)
        if row.purposes is not None and set(row.purpose_ids) != set(state.purposes):
            state.purposes, state.terms_changed = row.purpose_ids, True
        if row.actions is not None and set(row.action_ids) != set(state.actions):
            state.actions, state.terms_changed = row.action_ids, True
        wanted = row.item_rows
        current = state.new_items if state.new_items is not None else _item_rows(state.items)
        if wanted != current:
            state.new_items = wanted
        state.rows.append(row)

    def _save_operations(self, states: list[_OperationState]) -> None:
        created = [state for state in states if state.created]
        self._create_operations(created)
        existing = [state for state in states if not state.created]
        self._update_operations(existing)
        touched = self.touched["operations"]
        for state in states:
            touched["created" if state.created else "changed" if state.changed else "unchanged"].add(
                state.operation.id
            )

    def _create_operations(self, created: list[_OperationState]) -> None:
        """New operations with their terms, data items and history, at the driver's speed (see bulk.py)."""
        if not created:
            return
        now = timezone.now()
        pks = reserve_ids(Operation, len(created))
        for state, pk in zip(created, pks, strict=True):
            state.operation.id = pk
        insert_objects(Operation, [state.operation for state in created], now=now)
        for name in ("purposes", "actions"):
            through = getattr(Operation, name).through
            target = f"{Operation._meta.get_field(name).m2m_reverse_field_name()}_id"
            insert_rows(
                through._meta.db_table,
                ["operation_id", target],
                [
                    (pk, target_id)
                    for state, pk in zip(created, pks, strict=True)
                    for target_id in dict.fromkeys(getattr(state, name))
                ],
            )
        insert_rows(
            DataItem._meta.db_table,
            ["operation_id", "position", "text", "category_id", "match"],
            [
                (pk, *item)
                for state, pk in zip(created, pks, strict=True)
                if state.new_items is not None
                for item in state.new_items
            ],
        )
        copy_created_history(Operation, column="id", ids=pks, now=now, m2m_fields=("purposes", "actions"))
        copy_created_history(DataItem, column="operation_id", ids=pks, now=now)

    def _update_operations(self, states: list[_OperationState]) -> None:
        """Operations the register had: changed fields, replaced terms and data items, with history."""
        updated = [state for state in states if state.changed_fields]
        if updated:
            now = timezone.now()
            for state in updated:
                state.operation.updated_at = now
            bulk_fields = set().union(*(state.changed_fields for state in updated))
            Operation.objects.bulk_update(
                [state.operation for state in updated], sorted(bulk_fields | {"updated_at"})
            )
        # Terms: replace the through rows of the operations whose terms changed.
        links: dict[str, dict[int, list]] = {}
        reterm = [state for state in states if state.terms_changed]
        for name in ("purposes", "actions"):
            through = getattr(Operation, name).through
            target = f"{Operation._meta.get_field(name).m2m_reverse_field_name()}_id"
            stale = [state.operation.pk for state in reterm]
            if stale:
                through.objects.filter(operation_id__in=stale).delete()
            new_links = through.objects.bulk_create(
                [
                    through(operation_id=state.operation.pk, **{target: target_id})
                    for state in reterm
                    for target_id in dict.fromkeys(getattr(state, name))
                ]
            )
            by_operation: dict[int, list] = defaultdict(list)
            for link in new_links:
                by_operation[link.operation_id].append(link)
            links[name] = by_operation
        # One history row per changed operation, with its terms as they now stand.
        recorded = [state for state in states if state.changed_fields or state.terms_changed]
        kept_terms = [state.operation.pk for state in recorded if not state.terms_changed]
        if kept_terms:
            for name in ("purposes", "actions"):
                for link in getattr(Operation, name).through.objects.filter(operation_id__in=kept_terms):
                    links[name][link.operation_id].append(link)
        records = history_rows(Operation, [state.operation for state in recorded], "~")
        history_m2m_rows(Operation, records, links)
        # Data items: replaced as a whole where they differ.
        replaced = [state for state in states if state.new_items is not None]
        bulk_delete_with_history(DataItem, [item for state in replaced for item in state.items])
        history_bulk_create(
            DataItem,
            [
                DataItem(
                    operation_id=state.operation.pk,
                    position=position,
                    text=text,
                    category_id=category,
                    match=match,
                )
                for state in replaced
                for position, text, category, match in state.new_items
            ],
        )

    def _destinations(self, plan: _ProcessorPlan) -> list[str]:
        """Countries other than the controller's where the recipient (or a group member) is established."""
        if plan.key not in self.destination_cache:
            self.destination_cache[plan.key] = self._recipient_countries(plan)
        return self.destination_cache[plan.key]

    def _recipient_countries(self, plan: _ProcessorPlan) -> list[str]:
        processor = plan.processor
        if plan.kind == Processor.Kind.GROUP:
            if plan.member_keys:
                recipients = [self.plans[key].processor for key in plan.member_keys]
            else:
                if processor.pk not in self.group_members:
                    self.group_members[processor.pk] = [
                        member
                        for member in self.processor_by_pk.values()
                        if member.member_of_id == processor.pk
                    ]
                recipients = self.group_members[processor.pk]
        else:
            recipients = [processor]
        home = _country_code(self.controller)
        return sorted({code for code in map(_country_code, recipients) if code and code != home})

    def _find_operation(self, row: _Row, candidates: list[_Slot], relationship: str) -> _Slot | None:
        if relationship:
            return next((slot for slot in candidates if slot.relationship == relationship), None)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        unclassified = [slot for slot in candidates if not slot.relationship]
        if len(unclassified) == 1:
            return unclassified[0]
        self.problem(
            ERROR,
            "row_ambiguous",
            _(
                "The register has %(count)s operations for this service and recipient with different "
                "relationships; add a relationship column to say which one this row is."
            )
            % {"count": len(candidates)},
            row=row,
            field_name="recipient",
        )
        raise _RowSkipped


def _country_code(instance: Controller | Processor) -> str:
    # The stored ISO code: the ``country`` attribute builds a translated Country object on every read.
    return instance.__dict__.get("country") or ""


def _cached(cache: dict[str, Any], text: str, parse: Callable[[str], Any]) -> Any:
    """``parse(text)``, computed once per distinct text (the results are immutable)."""
    if text not in cache:
        cache[text] = parse(text)
    return cache[text]


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _country_codes(operation: Operation) -> list[str]:
    return [country.code for country in operation.destination_countries]


def _item_tuples(
    mappings: list[ItemMapping], taxonomy: Taxonomy, cache: dict[str, tuple[tuple, ...]]
) -> list[tuple]:
    """The data item rows a row's mapped items make, as comparable tuples (see services.data_item_rows).

    In the order ``_item_rows`` sorts the saved ones: by position, then within a position (one text) by
    category. Each item's own rows are worked out once per import, in ``cache``.
    """
    rows: list[tuple] = []
    for position, mapping in enumerate(mappings):
        # Keyed by text: the taxonomy maps each distinct text to one ItemMapping.
        own = cache.get(mapping.text)
        if own is None:
            own = cache[mapping.text] = (
                ((mapping.text, None, ""),)
                if not mapping.category_codes
                else tuple(
                    sorted(
                        (mapping.text, taxonomy.category_id(code), mapping.match)
                        for code in mapping.category_codes
                    )
                )
            )
        for text, category, match in own:
            rows.append((position, text, category, match))
    return rows


def _item_rows(items: list[DataItem]) -> list[tuple]:
    return sorted(
        ((item.position, item.text, item.category_id, item.match) for item in items),
        key=lambda row: (row[0], row[1], row[2] or 0, row[3]),
    )
