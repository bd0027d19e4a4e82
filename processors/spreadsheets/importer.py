"""The import core: a disclosure table in, the register updated (or a located list of problems out).

One call reads every row, checks it, and only then writes, all in one transaction: a file with any
error writes nothing, and a dry run does the same writes and rolls them back so its counts are exact.
Every write goes through ``processors.services``. Importing the same file twice changes nothing.

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
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from openpyxl.utils import get_column_letter

from processors import services
from processors.models import Controller, DataItem, Operation, Processor, ProcessorAlias, Service
from processors.spreadsheets.cells import (
    CellError,
    ListCell,
    RecipientCell,
    is_latin_name,
    parse_recipient,
    split_list,
)
from processors.spreadsheets.columns import DISCLOSURE_COLUMNS, IGNORE, ColumnSpec
from processors.spreadsheets.readers import SheetRow, SpreadsheetError, location_text, read_rows
from processors.taxonomy import ItemMapping, Taxonomy, TermMapping
from processors.text import normalize_key

# difflib ratio on match keys from which two different names are reported as possibly the same company.
NEAR_DUPLICATE_RATIO = 0.85

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
                % {"entity": labels[name], **counts.to_dict()}
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


@dataclass
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
    target_key: str = ""

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


ProgressCallback = Callable[[int, int], None]


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
) -> ImportReport:
    """Import a disclosure table (path, bytes, file object, or pasted text as str) for a controller."""
    report = ImportReport(
        file_name=file_name,
        controller=controller.code,
        dry_run=dry_run,
        imported_by=user.get_username() if user is not None and hasattr(user, "get_username") else "",
    )
    with transaction.atomic():
        importer = _Importer(
            controller=controller,
            report=report,
            spec=spec,
            header_map=header_map or {},
            effective_from=effective_from,
            progress=progress,
        )
        importer.run(source, file_name=file_name)
        report.committed = report.ok and not dry_run
        if not report.committed:
            transaction.set_rollback(True)
    return report


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
        self.rows: list[_Row] = []
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
        sheet = row.sheet if row is not None else sheet
        if index is None and field_name and sheet is not None:
            index = sheet.fields.get(field_name)
        column = header = ""
        if index is not None:
            column = get_column_letter(index + 1)
            header = sheet.headers[index] if sheet is not None and index < len(sheet.headers) else ""
        self.report.problems.append(
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

    def run(self, source: Path | str | bytes | BinaryIO, *, file_name: str) -> None:
        if not self._check_header_map():
            return
        self.taxonomy = Taxonomy.load()
        try:
            self._parse(read_rows(source, file_name=file_name))
        except SpreadsheetError as error:
            self.report.problems.append(
                Problem(ERROR, "file", error.message, sheet=error.sheet, row=error.row, column=error.column)
            )
            return
        self.report.rows = len(self.rows)
        if not self.rows and self.report.ok:
            self.problem(ERROR, "no_rows", _("The file has no rows to import below its header."))
        if not self.report.ok:
            return
        self._plan_processors()
        self._report_near_duplicates()
        if not self.report.ok:
            return
        self._write()
        for name, sets in self.touched.items():
            counts = self.report.counts[name]
            counts.created = len(sets["created"])
            counts.changed = len(sets["changed"] - sets["created"])
            counts.unchanged = len(sets["unchanged"] - sets["changed"] - sets["created"])

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

    def _parse(self, rows: Iterable[SheetRow]) -> None:
        sheets: dict[str, _Sheet | None] = {}
        pending = list(rows)
        several_sheets = len({sheet_row.sheet for sheet_row in pending}) > 1
        for sheet_row in pending:
            if sheet_row.sheet not in sheets:
                sheets[sheet_row.sheet] = self._read_header(sheet_row, skip_if_foreign=several_sheets)
                continue
            sheet = sheets[sheet_row.sheet]
            if sheet is not None:
                self._parse_row(sheet, sheet_row)
        self._check_repeated_rows()

    def _read_header(self, sheet_row: SheetRow, *, skip_if_foreign: bool) -> _Sheet | None:
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
        if skip_if_foreign and not sheet.fields:
            # A workbook often carries an instructions or change-log sheet; one with no known header at
            # all is not a register, so it is skipped rather than failing the whole file.
            self.problem(
                WARNING,
                "sheet_skipped",
                _("This sheet has none of the expected headers and was skipped."),
                sheet=sheet,
                row_number=sheet.header_row,
            )
            return None
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
        return sheet

    def _parse_row(self, sheet: _Sheet, sheet_row: SheetRow) -> None:
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
            row.recipient = parse_recipient(values["recipient"])
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
                if mapping.unmapped:
                    self.problem(
                        WARNING,
                        "item_unmapped",
                        _("“%(item)s” matches no data category; kept as written (unmapped — needs review).")
                        % {"item": mapping.text},
                        row=row,
                        field_name="data_items",
                        value=mapping.text,
                        suggestions=self.taxonomy.suggest_categories(mapping.text),
                    )
        if "purpose" in values:
            row.purposes = self.taxonomy.map_purposes(values["purpose"])
            self._report_unmapped_terms(row, "purpose", row.purposes, _("purpose"))
        if "actions" in values:
            row.actions = self.taxonomy.map_actions(values["actions"])
            self._report_unmapped_terms(row, "actions", row.actions, _("processing operation"))
        self.rows.append(row)

    def _report_unmapped_terms(self, row: _Row, field_name: str, mapping: TermMapping, kind: str) -> None:
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

    def _check_repeated_rows(self) -> None:
        seen: dict[tuple, _Row] = {}
        for row in self.rows:
            if "service" not in row.values or not row.recipient.names:
                continue
            identity = self._row_identity(row)
            if identity in seen:
                earlier = seen[identity]
                self.problem(
                    ERROR,
                    "row_repeated",
                    _("Same service and recipient as row %(row)s; merge the two rows.")
                    % {"row": earlier.number},
                    row=row,
                    field_name="recipient",
                )
            else:
                seen[identity] = row

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

    def _plan_processors(self) -> None:
        for row in self.rows:
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
                for name in recipient.names:
                    member = self._plan(name, Processor.Kind.ORGANISATION, row)
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
                self._add_fact(target, "country", country, row)
            for fact, value in contact.items():
                self._add_fact(target, fact, value, row)
            row.target_key = target.key

    def _report_near_duplicates(self) -> None:
        names = {
            key: zh or en for key, zh, en in Processor.objects.values_list("name_key", "name_zh", "name_en")
        }
        alias_owner = dict(ProcessorAlias.objects.values_list("key", "processor__name_key"))
        # A name the file uses and the register knows under an alias is that processor, not a twin.
        canonical = {key: alias_owner.get(key, key) for key in self.plans}
        keys = set(names) | set(canonical.values())
        display = names | {
            canonical[key]: plan.name for key, plan in self.plans.items() if canonical[key] not in names
        }
        reported: set[frozenset[str]] = set()
        for key, plan in self.plans.items():
            own = canonical[key]
            for other in difflib.get_close_matches(own, keys, n=5, cutoff=NEAR_DUPLICATE_RATIO):
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

    def _write(self) -> None:
        by_key = {processor.name_key: processor for processor in Processor.objects.all()}
        by_id = {processor.pk: processor for processor in by_key.values()}
        for key, processor_id in ProcessorAlias.objects.values_list("key", "processor_id"):
            by_key.setdefault(key, by_id[processor_id])
        # Groups first, so members can point at them.
        ordered = sorted(self.plans.values(), key=lambda plan: plan.kind != Processor.Kind.GROUP)
        for plan in ordered:
            try:
                plan.processor = self._write_processor(plan, by_key.get(plan.key))
            except ValidationError as error:
                self._validation_problem(error, plan.first_row)
                return
            by_key[plan.key] = plan.processor

        services_by_key = {normalize_key(service.name): service for service in self.controller.services.all()}
        existing: dict[tuple, list[Operation]] = defaultdict(list)
        for operation in Operation.objects.filter(service__controller=self.controller).prefetch_related(
            "data_items", "purposes", "actions"
        ):
            existing[(operation.service_id, operation.processor_id, operation.effective_from)].append(
                operation
            )
        group_members: dict[int, list[Processor]] = {}

        for done, row in enumerate(self.rows, start=1):
            try:
                service = self._write_service(row, services_by_key)
                self._write_operation(row, service, existing, group_members)
            except ValidationError as error:
                self._validation_problem(error, row)
            except _RowSkipped:
                pass  # the reason is already in the report
            if self.progress is not None:
                self.progress(done, len(self.rows))

    def _validation_problem(self, error: ValidationError, row: _Row) -> None:
        messages = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
        for field_name, field_messages in messages.items():
            for message in field_messages:
                self.problem(
                    ERROR,
                    "invalid",
                    message,
                    row=row,
                    field_name=FIELD_COLUMNS.get(field_name, ""),
                )

    def _write_processor(self, plan: _ProcessorPlan, processor: Processor | None) -> Processor:
        group = self.plans[plan.group_key].processor if plan.group_key else None
        if processor is None:
            name_field = "name_en" if is_latin_name(plan.name) else "name_zh"
            processor = services.processor_create(
                **{name_field: plan.name}, kind=plan.kind, member_of=group, **plan.facts
            )
            self._touch("processors", "created", processor.pk)
            return processor
        changes: dict[str, Any] = {}
        for fact, value in plan.facts.items():
            current = getattr(processor, fact)
            current = getattr(current, "code", current) or ""
            if not current:
                changes[fact] = value
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
            changes["kind"] = plan.kind
        if group is not None and processor.member_of_id != group.pk:
            if processor.member_of_id is None:
                changes["member_of"] = group
            else:
                self.problem(
                    WARNING,
                    "group_conflict",
                    _("%(name)s already belongs to another group, where it stays.") % {"name": plan.name},
                    row=plan.first_row,
                    field_name="recipient",
                )
        if changes:
            services.processor_update(processor=processor, **changes)
            self._touch("processors", "changed", processor.pk)
        else:
            self._touch("processors", "unchanged", processor.pk)
        return processor

    def _write_service(self, row: _Row, services_by_key: dict[str, Service]) -> Service:
        key = normalize_key(row.service_name)
        service = services_by_key.get(key)
        fields = {}
        if "device_permissions" in row.values:
            fields["device_permissions"] = row.values["device_permissions"]
        if service is None:
            service = services.service_create(controller=self.controller, name=row.service_name, **fields)
            services_by_key[key] = service
            self._touch("services", "created", service.pk)
            return service
        changes = {name: value for name, value in fields.items() if getattr(service, name) != value}
        if changes:
            services.service_update(service=service, **changes)
            self._touch("services", "changed", service.pk)
        else:
            self._touch("services", "unchanged", service.pk)
        return service

    def _destinations(self, plan: _ProcessorPlan, group_members: dict[int, list[Processor]]) -> list[str]:
        """Countries other than the controller's where the recipient (or a group member) is established."""
        processor = plan.processor
        if plan.kind == Processor.Kind.GROUP:
            if plan.member_keys:
                recipients = [self.plans[key].processor for key in plan.member_keys]
            else:
                if processor.pk not in group_members:
                    group_members[processor.pk] = list(processor.members.all())
                recipients = group_members[processor.pk]
        else:
            recipients = [processor]
        home = self.controller.country.code
        return sorted({p.country.code for p in recipients if p.country and p.country.code != home})

    def _write_operation(
        self,
        row: _Row,
        service: Service,
        existing: dict[tuple, list[Operation]],
        group_members: dict[int, list[Processor]],
    ) -> None:
        plan = self.plans[row.target_key]
        processor = plan.processor
        values = row.values
        fields: dict[str, Any] = {
            "recipient_qualifier": row.recipient.qualifier,
            "data_items_text": values["data_items"],
            "source_text": "\t".join(row.cells),
        }
        if row.purposes is not None:
            fields["purpose_text"] = values["purpose"]
        if row.actions is not None:
            fields["actions_text"] = values["actions"]
            fields["actions_open_ended"] = row.actions.open_ended
        fields.update({name: values[name] for name in OPERATION_COLUMNS if name in values})
        destinations = self._destinations(plan, group_members)
        if destinations:
            fields["cross_border"] = True
            fields["destination_countries"] = destinations
        elif fields.get("transfer_mechanism"):
            fields["cross_border"] = True
        purposes = [self.taxonomy.purpose_id(code) for code in row.purposes.codes] if row.purposes else None
        actions = [self.taxonomy.action_id(code) for code in row.actions.codes] if row.actions else None
        relationship = values.get("relationship", "")

        operation = self._find_operation(
            row, existing[(service.pk, processor.pk, self.effective_from)], relationship
        )
        if operation is None:
            operation = services.operation_create(
                service=service,
                processor=processor,
                data_items=row.items.items,
                purposes=purposes or (),
                actions=actions or (),
                taxonomy=self.taxonomy,
                relationship=relationship,
                effective_from=self.effective_from,
                **fields,
            )
            existing[(service.pk, processor.pk, self.effective_from)].append(operation)
            self._touch("operations", "created", operation.pk)
            return
        changed = False
        changes = {name: value for name, value in fields.items() if _field_value(operation, name) != value}
        if changes:
            services.operation_update(operation=operation, **changes)
            changed = True
        new_purposes = (
            purposes if purposes is not None and set(purposes) != _ids(operation.purposes.all()) else None
        )
        new_actions = (
            actions if actions is not None and set(actions) != _ids(operation.actions.all()) else None
        )
        if new_purposes is not None or new_actions is not None:
            services.operation_set_terms(operation=operation, purposes=new_purposes, actions=new_actions)
            changed = True
        if self._item_rows(operation, row.mappings) != _item_rows(operation.data_items.all()):
            services.operation_set_data_items(
                operation=operation, items=row.items.items, taxonomy=self.taxonomy
            )
            changed = True
        self._touch("operations", "changed" if changed else "unchanged", operation.pk)

    def _find_operation(self, row: _Row, candidates: list[Operation], relationship: str) -> Operation | None:
        if relationship:
            return next(
                (operation for operation in candidates if operation.relationship == relationship), None
            )
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        unclassified = [operation for operation in candidates if not operation.relationship]
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

    def _item_rows(self, operation: Operation, mappings: list[ItemMapping]) -> list[tuple]:
        return sorted(
            (item.position, item.text, item.category_id, item.match)
            for position, mapping in enumerate(mappings)
            for item in services.data_item_rows(
                operation_id=operation.pk, position=position, mapping=mapping, taxonomy=self.taxonomy
            )
        )


def _field_value(operation: Operation, name: str) -> Any:
    value = getattr(operation, name)
    if name == "destination_countries":
        return [country.code for country in value]
    return value


def _ids(objects) -> set[int]:
    return {obj.pk for obj in objects}


def _item_rows(items: list[DataItem]) -> list[tuple]:
    return sorted((item.position, item.text, item.category_id, item.match) for item in items)
