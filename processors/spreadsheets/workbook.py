"""The workbook importer: the round-trip workbook written by ``export_workbook`` read back into the register.

The layout is not restated here: every sheet, header, column kind and reference comes from
``workbook_spec.WORKBOOK_SHEETS``. The sheets are upserted in their dependency order (controllers, the
taxonomy, processors, services, operations, data items), each row matched on the sheet's key:

- Controllers by code, Categories/Purposes/Actions by code (a category's parent by code), the alias
  sheets by the match key of the alias text, Processors by the match key of their ``key`` column
  (``member_of`` names the group's key, in the sheet or in the register), Services by (controller,
  name), Operations by (controller, service, processor key, relationship, effective_from).
- DataItems replace the items of every operation in the Operations sheet: an operation without rows
  there ends with no items. Items of an operation that is not in the Operations sheet are an error.
- Nothing is ever deleted besides those data items: rows of the register that are not in the file stay.

Cells are read per column kind (``workbook_spec.parse_cell``: text through ``safety.unneutralise``; an
empty TEXT cell is "", an empty LIST cell [], an empty NULL_ cell None), so an exported register reads
back exactly. Every created or changed object is validated with ``full_clean()`` and saved one by one,
so the history rows are the models' own (stamped with the import's context); the volumes of a register
make that affordable and it is what keeps this path obviously correct. An unknown reference (category
code, processor key, purpose code, …), an unreadable cell or a validation error is a located error
(sheet, row, column, with close keys as suggestions), and any error makes the whole import write nothing
(``import_register`` rolls the transaction back).

The ``controller`` given to ``import_register`` restricts the import: rows of the Controllers, Services,
Operations and DataItems sheets must all carry that controller's code, other codes are errors. An
import record belongs to one controller, and a workbook exported for several controllers is therefore
imported one controller at a time (export each controller's operations). The shared reference data
(taxonomy, processors and their aliases) is upserted whoever the controller is.
"""

import difflib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext as _
from openpyxl.utils import get_column_letter

from processors.bulk import bulk_delete_with_history
from processors.history import history_bulk_create
from processors.models import (
    CategoryAlias,
    Controller,
    DataCategory,
    DataItem,
    Operation,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    Purpose,
    PurposeAlias,
    Service,
)
from processors.spreadsheets.limits import SheetRow
from processors.spreadsheets.report import (
    ERROR,
    WARNING,
    EntityCounts,
    ImportReport,
    Problem,
    validation_messages,
)
from processors.spreadsheets.workbook_spec import WORKBOOK_SHEETS, CellInvalid, WorkbookSheet, parse_cell
from processors.text import normalize_key

# The report's entity for each sheet, in the order the sheets are written.
SHEET_ENTITIES = {
    "Controllers": "controllers",
    "Categories": "categories",
    "CategoryAliases": "category_aliases",
    "Purposes": "purposes",
    "PurposeAliases": "purpose_aliases",
    "Actions": "actions",
    "Processors": "processors",
    "ProcessorAliases": "processor_aliases",
    "Services": "services",
    "Operations": "operations",
    "DataItems": "data_items",
}


@dataclass
class _Row:
    sheet: str
    number: int
    values: dict[str, Any]
    raw: dict[str, str]


@dataclass
class _Sheet:
    spec: WorkbookSheet
    columns: dict[str, int] = field(default_factory=dict)  # header -> 0-based index
    rows: list[_Row] = field(default_factory=list)
    seen: bool = False


def _plain_fields(spec: WorkbookSheet) -> list[str]:
    """The columns that are the model's own non-relational fields of the same name."""
    names = []
    for column in spec.columns:
        try:
            model_field = spec.model._meta.get_field(column.header)
        except FieldDoesNotExist:
            continue
        if model_field.concrete and not model_field.is_relation:
            names.append(column.header)
    return names


def _current(obj: models.Model, name: str) -> Any:
    value = getattr(obj, name)
    if isinstance(value, list):  # a multiple CountryField
        return [getattr(item, "code", item) for item in value]
    if hasattr(value, "code") and not isinstance(value, models.Model):  # a Country
        return value.code or ""
    return value


class WorkbookImporter:
    """Reads the sheets, then upserts them sheet by sheet; problems go to the report."""

    def __init__(self, *, report: ImportReport, controller: Controller) -> None:
        self.report = report
        self.controller = controller
        self.sheets = {spec.name: _Sheet(spec) for spec in WORKBOOK_SHEETS}
        report.counts = {
            name: report.counts.get(name) or EntityCounts()
            for name in (*SHEET_ENTITIES.values(), *report.counts)
        }
        # key -> pk, for what this import wrote or found
        self.categories: dict[str, int] = {}
        self.purposes: dict[str, int] = {}
        self.actions: dict[str, int] = {}
        self.processors: dict[str, int] = {}  # match key of the exported key -> pk
        self.failed_processors: set[str] = set()
        self.services: dict[tuple[str, str], int] = {}
        self.operations: dict[tuple, Operation] = {}

    # --- Problems ---------------------------------------------------------------------------------

    def problem(
        self,
        code: str,
        message: str,
        *,
        row: _Row | None = None,
        sheet: str = "",
        header: str = "",
        level: str = ERROR,
        suggestions: Iterable[str] = (),
    ) -> None:
        sheet = row.sheet if row is not None else sheet
        column = ""
        if header and sheet in self.sheets and header in self.sheets[sheet].columns:
            column = get_column_letter(self.sheets[sheet].columns[header] + 1)
        self.report.problems.append(
            Problem(
                level,
                code,
                message,
                sheet=sheet,
                row=row.number if row is not None else None,
                column=column,
                header=header,
                value=row.raw.get(header, "") if row is not None and header else "",
                suggestions=tuple(suggestions),
            )
        )

    def unknown(self, row: _Row, header: str, what: str, key: str, known: Iterable[str]) -> None:
        suggestions = difflib.get_close_matches(key, list(known), n=3, cutoff=0.6)
        self.problem(
            "reference_unknown",
            _("Unknown %(what)s “%(key)s”: it is neither in the file nor in the register.")
            % {"what": what, "key": key},
            row=row,
            header=header,
            suggestions=suggestions,
        )

    def validation(self, error: ValidationError, row: _Row, columns: dict[str, str] | None = None) -> None:
        for name, messages in validation_messages(error).items():
            header = (columns or {}).get(name, name)
            if header not in self.sheets[row.sheet].columns:
                header = ""
            for message in messages:
                label = f"{name}: {message}" if name and name != "__all__" and not header else message
                self.problem("invalid", label, row=row, header=header)

    def count(self, sheet: str, state: str, number: int = 1) -> None:
        counts = self.report.counts[SHEET_ENTITIES[sheet]]
        setattr(counts, state, getattr(counts, state) + number)

    # --- Reading ----------------------------------------------------------------------------------

    def read(self, rows: Iterator[SheetRow]) -> None:
        for sheet_row in rows:
            sheet = self.sheets.get(sheet_row.sheet)
            if sheet is None:
                if not any(problem.sheet == sheet_row.sheet for problem in self.report.problems):
                    self.problem(
                        "sheet_unknown",
                        _("This sheet is not part of the register workbook; it was ignored."),
                        sheet=sheet_row.sheet,
                        level=WARNING,
                    )
                continue
            if not sheet.seen:
                sheet.seen = True
                self.read_header(sheet, sheet_row)
                continue
            self.report.rows += 1
            self.read_row(sheet, sheet_row)
        for sheet in self.sheets.values():
            if not sheet.seen:
                self.problem(
                    "sheet_missing",
                    _("The workbook has no sheet “%(sheet)s”.") % {"sheet": sheet.spec.name},
                    sheet=sheet.spec.name,
                )

    def read_header(self, sheet: _Sheet, sheet_row: SheetRow) -> None:
        headers = [cell.strip() for cell in sheet_row.cells]
        for index, header in enumerate(headers):
            if header in sheet.spec.headers and header not in sheet.columns:
                sheet.columns[header] = index
            elif header:
                self.report.problems.append(
                    Problem(
                        WARNING,
                        "column_unknown",
                        _("Unknown column “%(header)s”; it was ignored.") % {"header": header},
                        sheet=sheet.spec.name,
                        row=sheet_row.number,
                        column=get_column_letter(index + 1),
                        header=header,
                    )
                )
        missing = [header for header in sheet.spec.headers if header not in sheet.columns]
        if missing:
            self.report.problems.append(
                Problem(
                    ERROR,
                    "column_missing",
                    _("Missing columns: %(headers)s.") % {"headers": ", ".join(missing)},
                    sheet=sheet.spec.name,
                    row=sheet_row.number,
                )
            )

    def read_row(self, sheet: _Sheet, sheet_row: SheetRow) -> None:
        values: dict[str, Any] = {}
        raw: dict[str, str] = {}
        row = _Row(sheet.spec.name, sheet_row.number, values, raw)
        valid = True
        for column in sheet.spec.columns:
            index = sheet.columns.get(column.header)
            text = sheet_row.cells[index] if index is not None and index < len(sheet_row.cells) else ""
            raw[column.header] = text
            try:
                values[column.header] = parse_cell(column.kind, text)
            except CellInvalid as error:
                self.problem("cell_invalid", str(error), row=row, header=column.header)
                valid = False
        if valid:
            sheet.rows.append(row)

    # --- Writing ----------------------------------------------------------------------------------

    def write(self) -> None:
        self.check_controllers()
        self.check_duplicates()
        if not self.report.ok:
            return
        # Controllers name categories (extra_sensitive_categories), so the taxonomy is written first.
        self.write_categories()
        self.write_controllers()
        self.write_aliases("CategoryAliases", CategoryAlias, "category", self.category_ref)
        self.write_simple("Purposes", Purpose, self.purposes)
        self.write_aliases("PurposeAliases", PurposeAlias, "purpose", self.purpose_ref)
        self.write_simple("Actions", ProcessingAction, self.actions)
        self.write_processors()
        self.write_aliases("ProcessorAliases", ProcessorAlias, "processor", self.processor_ref)
        self.write_services()
        self.write_operations()

    def check_controllers(self) -> None:
        code = self.controller.code
        for name in ("Controllers", "Services", "Operations", "DataItems"):
            header = "code" if name == "Controllers" else "controller"
            for row in self.sheets[name].rows:
                if row.values[header] != code:
                    self.problem(
                        "controller_mismatch",
                        _(
                            "This row belongs to controller “%(row)s”, but the import is for “%(code)s”; "
                            "import each controller's workbook separately."
                        )
                        % {"row": row.values[header], "code": code},
                        row=row,
                        header=header,
                    )

    def sheet_key(self, sheet: str, values: dict[str, Any]) -> tuple:
        spec = self.sheets[sheet].spec
        key = []
        for name in spec.key:
            value = values[name]
            if name in ("alias", "key", "processor"):
                value = normalize_key(value)
            key.append(value)
        return tuple(key)

    def check_duplicates(self) -> None:
        for name, sheet in self.sheets.items():
            first: dict[tuple, int] = {}
            for row in sheet.rows:
                key = self.sheet_key(name, row.values)
                if key in first:
                    self.problem(
                        "duplicate_row",
                        _("This row repeats the key of row %(row)s.") % {"row": first[key]},
                        row=row,
                        header=sheet.spec.key[-1],
                    )
                else:
                    first[key] = row.number

    def save(
        self,
        row: _Row,
        obj: models.Model | None,
        model: type[models.Model],
        values: dict[str, Any],
        m2m: dict[str, set[int]] | None = None,
        columns: dict[str, str] | None = None,
    ) -> models.Model | None:
        """Create or update one object from its row; validated, saved with history, counted."""
        created = obj is None
        if created:
            obj = model()
        changed = [name for name, value in values.items() if created or _current(obj, name) != value]
        m2m_changed = {
            name: ids
            for name, ids in (m2m or {}).items()
            if created or set(getattr(obj, name).values_list("pk", flat=True)) != ids
        }
        if not changed and not m2m_changed:
            self.count(row.sheet, "unchanged")
            return obj
        for name in changed:
            setattr(obj, name, values[name])
        if changed:
            try:
                obj.full_clean()
            except ValidationError as error:
                self.validation(error, row, columns)
                return None
            obj.save()
        for name, ids in m2m_changed.items():
            getattr(obj, name).set(ids)
        self.count(row.sheet, "created" if created else "changed")
        return obj

    # references: key -> pk, or None after reporting the row

    def category_ref(self, row: _Row, header: str, code: str) -> int | None:
        if code not in self.categories:
            self.categories.update(DataCategory.objects.filter(code=code).values_list("code", "pk"))
        if code not in self.categories:
            known = {*self.categories, *DataCategory.objects.values_list("code", flat=True)}
            self.unknown(row, header, _("category code"), code, known)
            return None
        return self.categories[code]

    def purpose_ref(self, row: _Row, header: str, code: str) -> int | None:
        return self._code_ref(row, header, code, Purpose, self.purposes, _("purpose code"))

    def action_ref(self, row: _Row, header: str, code: str) -> int | None:
        return self._code_ref(row, header, code, ProcessingAction, self.actions, _("action code"))

    def _code_ref(
        self, row: _Row, header: str, code: str, model: type[models.Model], known: dict[str, int], what: str
    ) -> int | None:
        if code not in known:
            known.update(model.objects.filter(code=code).values_list("code", "pk"))
        if code not in known:
            self.unknown(row, header, what, code, {*known, *model.objects.values_list("code", flat=True)})
            return None
        return known[code]

    def processor_ref(self, row: _Row, header: str, key: str) -> int | None:
        match = normalize_key(key)
        if match in self.failed_processors:
            return None  # its own row's error is reported
        if match not in self.processors:
            self.processors.update(Processor.objects.filter(name_key=match).values_list("name_key", "pk"))
        if match not in self.processors:
            known = {row.values["key"] for row in self.sheets["Processors"].rows}
            known.update(Processor.objects.exclude(name_zh="").values_list("name_zh", flat=True))
            self.unknown(row, header, _("processor key"), key, known)
            return None
        return self.processors[match]

    def refs(self, row: _Row, header: str, keys: list[str], resolve) -> set[int] | None:
        ids = set()
        ok = True
        for key in keys:
            pk = resolve(row, header, key)
            ok = ok and pk is not None
            ids.add(pk)
        return ids if ok else None

    # the sheets

    def write_controllers(self) -> None:
        sheet = self.sheets["Controllers"]
        plain = _plain_fields(sheet.spec)
        for row in sheet.rows:
            categories = self.refs(
                row, "extra_sensitive_categories", row.values["extra_sensitive_categories"], self.category_ref
            )
            if categories is None:
                continue
            obj = Controller.objects.filter(code=row.values["code"]).first()
            saved = self.save(
                row,
                obj,
                Controller,
                {name: row.values[name] for name in plain},
                {"extra_sensitive_categories": categories},
            )
            if saved is not None and saved.pk == self.controller.pk:
                self.controller.refresh_from_db()

    def write_categories(self) -> None:
        sheet = self.sheets["Categories"]
        plain = _plain_fields(sheet.spec)
        existing = {category.code: category for category in DataCategory.objects.all()}
        self.categories.update({code: category.pk for code, category in existing.items()})
        # Parents first, whatever the order of the rows.
        for row in sorted(sheet.rows, key=lambda row: (row.values["code"].count("."), row.values["code"])):
            values = {name: row.values[name] for name in plain}
            parent = row.values["parent"]
            values["parent_id"] = self.category_ref(row, "parent", parent) if parent else None
            if parent and values["parent_id"] is None:
                continue
            saved = self.save(row, existing.get(row.values["code"]), DataCategory, values)
            if saved is not None:
                self.categories[saved.code] = saved.pk

    def write_simple(self, sheet_name: str, model: type[models.Model], known: dict[str, int]) -> None:
        sheet = self.sheets[sheet_name]
        plain = _plain_fields(sheet.spec)
        existing = {obj.code: obj for obj in model.objects.all()}
        known.update({code: obj.pk for code, obj in existing.items()})
        for row in sheet.rows:
            saved = self.save(row, existing.get(row.values["code"]), model, {n: row.values[n] for n in plain})
            if saved is not None:
                known[saved.code] = saved.pk

    def write_aliases(self, sheet_name: str, model: type[models.Model], target: str, resolve) -> None:
        sheet = self.sheets[sheet_name]
        existing = {
            obj.key: obj
            for obj in model.objects.filter(
                key__in=[normalize_key(row.values["alias"]) for row in sheet.rows]
            )
        }
        for row in sheet.rows:
            pk = resolve(row, target, row.values[target])
            if pk is None:
                continue
            self.save(
                row,
                existing.get(normalize_key(row.values["alias"])),
                model,
                {"text": row.values["alias"], f"{target}_id": pk},
                columns={"text": "alias", "key": "alias", target: target},
            )

    def write_processors(self) -> None:
        sheet = self.sheets["Processors"]
        plain = _plain_fields(sheet.spec)
        rows = {normalize_key(row.values["key"]): row for row in sheet.rows}
        existing = {
            processor.name_key: processor for processor in Processor.objects.filter(name_key__in=list(rows))
        }
        # Groups before their members: a row waits until the group it names is written.
        done: set[str] = set()
        pending = list(rows.items())
        while pending:
            waiting = []
            for match, row in pending:
                group = normalize_key(row.values["member_of"])
                if group and group in rows and group not in done and group != match:
                    waiting.append((match, row))
                    continue
                done.add(match)
                values = {name: row.values[name] for name in plain}
                values["member_of_id"] = (
                    self.processor_ref(row, "member_of", row.values["member_of"]) if group else None
                )
                saved = None
                if not group or values["member_of_id"] is not None:
                    saved = self.save(
                        row,
                        existing.get(match),
                        Processor,
                        values,
                        columns={"name_key": "name_zh", "member_of": "member_of"},
                    )
                if saved is None:
                    self.failed_processors.add(match)
                else:
                    self.processors[match] = saved.pk
            if len(waiting) == len(pending):
                for match, row in waiting:
                    self.failed_processors.add(match)
                    self.problem(
                        "reference_cycle",
                        _("The groups named in member_of form a cycle."),
                        row=row,
                        header="member_of",
                    )
                return
            pending = waiting

    def write_services(self) -> None:
        sheet = self.sheets["Services"]
        plain = _plain_fields(sheet.spec)
        existing = {service.name: service for service in Service.objects.filter(controller=self.controller)}
        for row in sheet.rows:
            values = {name: row.values[name] for name in plain}
            values["controller_id"] = self.controller.pk
            saved = self.save(row, existing.get(row.values["name"]), Service, values)
            if saved is not None:
                self.services[(row.values["controller"], saved.name)] = saved.pk

    def service_ref(self, row: _Row, controller: str, name: str) -> int | None:
        if (controller, name) not in self.services:
            pk = Service.objects.filter(controller__code=controller, name=name).values_list("pk", flat=True)
            if pk:
                self.services[(controller, name)] = pk[0]
        if (controller, name) not in self.services:
            known = [key[1] for key in self.services if key[0] == controller]
            self.unknown(row, "service", _("service"), name, known)
            return None
        return self.services[(controller, name)]

    def operation_key(self, values: dict[str, Any]) -> tuple:
        return (
            values["controller"],
            values["service"],
            normalize_key(values["processor"]),
            values["relationship"],
            values["effective_from"],
        )

    def write_operations(self) -> None:
        sheet = self.sheets["Operations"]
        plain = _plain_fields(sheet.spec)
        existing = {
            (
                operation.service_id,
                operation.processor_id,
                operation.relationship,
                operation.effective_from,
            ): (operation)
            for operation in Operation.objects.filter(service__controller=self.controller)
        }
        items: dict[tuple, list[_Row]] = defaultdict(list)
        for row in self.sheets["DataItems"].rows:
            items[self.operation_key(row.values)].append(row)
        written: set[tuple] = set()
        for row in sheet.rows:
            key = self.operation_key(row.values)
            service = self.service_ref(row, row.values["controller"], row.values["service"])
            processor = self.processor_ref(row, "processor", row.values["processor"])
            purposes = self.refs(row, "purposes", row.values["purposes"], self.purpose_ref)
            actions = self.refs(row, "actions", row.values["actions"], self.action_ref)
            if None in (service, processor, purposes, actions):
                written.add(key)  # its items are not reported again
                continue
            values = {name: row.values[name] for name in plain}
            values["service_id"] = service
            values["processor_id"] = processor
            obj = existing.get((service, processor, row.values["relationship"], row.values["effective_from"]))
            saved = self.save(row, obj, Operation, values, {"purposes": purposes, "actions": actions})
            written.add(key)
            if saved is not None:
                self.write_items(saved, items.get(key, []))
        for key, rows in items.items():
            if key not in written:
                for row in rows:
                    self.problem(
                        "operation_unknown",
                        _("This item's operation is not in the Operations sheet."),
                        row=row,
                        header="service",
                    )

    def write_items(self, operation: Operation, rows: list[_Row]) -> None:
        wanted = []
        for row in rows:
            code = row.values["category"]
            category = self.category_ref(row, "category", code) if code else None
            if code and category is None:
                continue
            wanted.append((row.values["position"], row.values["text"], category, row.values["match"], row))
        if len(wanted) < len(rows):
            return
        current = list(operation.data_items.all()) if operation.pk else []
        if sorted(item[:4] for item in wanted) == sorted(
            (item.position, item.text, item.category_id, item.match) for item in current
        ):
            self.count("DataItems", "unchanged", len(wanted))
            return
        bulk_delete_with_history(DataItem, current)
        new = []
        for position, text, category, match, row in wanted:
            item = DataItem(
                operation=operation, position=position, text=text, category_id=category, match=match
            )
            try:
                item.full_clean(exclude=["operation"])
            except ValidationError as error:
                self.validation(error, row)
                continue
            new.append(item)
        history_bulk_create(DataItem, new)
        self.count("DataItems", "created", len(new))


def is_workbook_sheet(name: str) -> bool:
    """Whether a file whose first sheet has this name is the round-trip workbook (``export_workbook``)."""
    return name == WORKBOOK_SHEETS[0].name


def import_workbook(rows: Iterator[SheetRow], *, report: ImportReport, controller: Controller) -> None:
    """Read a round-trip workbook's rows and upsert them; errors leave ``report.ok`` false.

    The caller (``import_register``) runs this inside its transaction and rolls back on any error or a
    dry run. The writes run in a savepoint of their own so that a database refusal (a constraint the
    validation could not see) becomes a reported error rather than a broken transaction.
    """
    importer = WorkbookImporter(report=report, controller=controller)
    importer.read(rows)
    if not report.ok:
        return
    try:
        with transaction.atomic():
            importer.write()
    except IntegrityError as error:
        report.problems.append(
            Problem(ERROR, "integrity", _("The database refused the import: %(error)s") % {"error": error})
        )


__all__ = ["import_workbook", "is_workbook_sheet"]
