"""The lossless register workbook, described once: its sheets, their keys, columns and column kinds.

``export.export_workbook`` writes a workbook from this description and ``workbook.import_workbook``
reads one back by it, so the two cannot drift apart: a column added here is exported and imported.
Each sheet names the model it holds, the columns that identify a row (its key, by natural keys: codes,
names, the processor's primary name) and, per column, how to get its value from an object and what kind
of cell it is; ``parse_cell`` reads a cell of each kind back.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, Model, QuerySet
from django.utils.translation import gettext as _

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
    Relationship,
    Service,
)
from processors.spreadsheets.safety import unneutralise

# How a column's cells are written and must be read back. Empty cells mean "" for TEXT, [] for LIST and
# None for the NULL_ kinds; booleans are real Excel booleans (readers see TRUE/FALSE), dates are real
# dates formatted yyyy-mm-dd (readers see YYYY-MM-DD), text is neutralised (``safety.unneutralise``).
TEXT = "text"
BOOL = "bool"
NULL_BOOL = "null_bool"
INT = "int"
NULL_INT = "null_int"
NULL_DATE = "null_date"
LIST = "list"  # codes joined by LIST_SEPARATOR, in code order
LIST_SEPARATOR = ";"


_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否"}


class CellInvalid(ValueError):
    """A cell whose text is not a value of its column's kind; the message says what was expected."""


def parse_cell(kind: str, text: str) -> Any:
    """A cell's text (as the readers give it) as the value of a column of this kind; else ``CellInvalid``."""
    if kind == TEXT:
        return unneutralise(text)
    stripped = text.strip()
    if kind == LIST:
        return [unneutralise(part.strip()) for part in text.split(LIST_SEPARATOR) if part.strip()]
    if kind in (BOOL, NULL_BOOL):
        if not stripped:
            if kind == NULL_BOOL:
                return None
            raise CellInvalid(_("Expected TRUE or FALSE."))
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise CellInvalid(_("Expected TRUE or FALSE (or empty where allowed)."))
    if kind in (INT, NULL_INT):
        if not stripped:
            if kind == NULL_INT:
                return None
            raise CellInvalid(_("Expected a whole number."))
        try:
            return int(stripped)
        except ValueError:
            raise CellInvalid(_("Expected a whole number.")) from None
    if kind == NULL_DATE:
        if not stripped:
            return None
        try:
            return datetime.date.fromisoformat(stripped)
        except ValueError:
            try:
                return datetime.datetime.fromisoformat(stripped).date()
            except ValueError:
                raise CellInvalid(_("Expected a date as YYYY-MM-DD.")) from None
    raise CellInvalid(f"unknown column kind {kind}")


@dataclass(frozen=True)
class WorkbookColumn:
    """One column of a workbook sheet: its header, how to get its value, and how to read it back."""

    header: str
    get: Callable[[Any], Any]
    kind: str = TEXT
    refers_to: str = ""  # the sheet whose key this column names, e.g. "Categories"
    doc: str = ""


@dataclass(frozen=True)
class WorkbookSheet:
    """One sheet: its name, the columns that identify a row, all columns and the rows it holds."""

    name: str
    model: type[Model]
    key: tuple[str, ...]
    columns: tuple[WorkbookColumn, ...]
    rows: Callable[[QuerySet[Operation]], QuerySet]
    doc: str = ""

    @property
    def headers(self) -> list[str]:
        return [column.header for column in self.columns]

    def column_doc(self, column: WorkbookColumn) -> str:
        """What a column holds: its own note, else the model field's name, help text and codes."""
        if column.doc:
            return column.doc
        try:
            model_field = self.model._meta.get_field(column.header)
        except FieldDoesNotExist:
            return ""
        doc = " — ".join(str(text) for text in (model_field.verbose_name, model_field.help_text) if text)
        if model_field.choices:
            doc += " [" + ", ".join(str(code) for code, _label in model_field.choices) + "]"
        return doc


def _path(path: str) -> Callable[[Any], Any]:
    """A getter for a dotted attribute path that yields None when a link on the way is missing."""
    names = path.split(".")

    def get(obj: Any) -> Any:
        for name in names:
            if obj is None:
                return None
            obj = getattr(obj, name)
        return obj

    return get


def _code(path: str) -> Callable[[Any], str]:
    get = _path(path)
    return lambda obj: getattr(get(obj), "code", None) or ""


def _column(
    header: str, kind: str = TEXT, *, path: str = "", refers_to: str = "", doc: str = ""
) -> WorkbookColumn:
    return WorkbookColumn(header, _path(path or header), kind, refers_to, doc)


def _codes(path: str, *, refers_to: str, doc: str, header: str = "") -> WorkbookColumn:
    get = _path(path)
    return WorkbookColumn(
        header or path,
        lambda obj: sorted(item.code for item in get(obj).all()),
        LIST,
        refers_to,
        doc,
    )


def _operation_identity(prefix: str = "") -> tuple[WorkbookColumn, ...]:
    """The five columns that identify an operation (its unique constraint, by natural keys)."""
    return (
        _column(
            "controller",
            path=f"{prefix}service.controller.code",
            refers_to="Controllers",
            doc="Controller code.",
        ),
        _column("service", path=f"{prefix}service.name", refers_to="Services", doc="Service name (Chinese)."),
        _column(
            "processor", path=f"{prefix}processor.primary_name", refers_to="Processors", doc="Processor key."
        ),
        _column(
            "relationship",
            path=f"{prefix}relationship",
            doc="Relationship code, or empty: " + ", ".join(Relationship.values),
        ),
        _column("effective_from", NULL_DATE, path=f"{prefix}effective_from", doc="Date, or empty."),
    )


_OPERATION_KEY = ("controller", "service", "processor", "relationship", "effective_from")


def _selected_controllers(operations: QuerySet[Operation]) -> QuerySet[Controller]:
    return Controller.objects.filter(pk__in=operations.order_by().values("service__controller"))


# The round-trip layout. Shared reference data (the taxonomy, processors) is written in full;
# controllers and services are those of the controllers in the selection; operations and data items are
# the selection. Rows are sorted by their keys so the same register gives the same cells in the same order.
WORKBOOK_SHEETS: tuple[WorkbookSheet, ...] = (
    WorkbookSheet(
        name="Controllers",
        model=Controller,
        key=("code",),
        doc="The controllers whose operations are in the file.",
        rows=lambda operations: (
            _selected_controllers(operations).prefetch_related("extra_sensitive_categories").order_by("code")
        ),
        columns=(
            _column("code", doc="Stable key (slug)."),
            _column("name_zh"),
            _column("name_en"),
            WorkbookColumn("country", _code("country"), doc="ISO 3166 alpha-2 code."),
            _column("website"),
            _column("privacy_policy_url"),
            _column("contact_email"),
            _column("contact_phone"),
            _column("address"),
            _column("disclosure_public", BOOL),
            _codes(
                "extra_sensitive_categories",
                refers_to="Categories",
                doc="Category codes this controller also treats as sensitive.",
            ),
        ),
    ),
    WorkbookSheet(
        name="Categories",
        model=DataCategory,
        key=("code",),
        doc="The whole data-category tree; parents sort before their children.",
        rows=lambda operations: DataCategory.objects.select_related("parent").order_by("code"),
        columns=(
            _column("code", doc="Stable dotted key; a child extends its parent's code."),
            _column(
                "parent", path="parent.code", refers_to="Categories", doc="Parent code; empty for a root."
            ),
            _column("name_zh"),
            _column("name_en"),
            _column("description_zh"),
            _column("description_en"),
            _column("sensitive", BOOL, doc="Sensitive under GB/T 35273-2020 Appendix B."),
            _column("sensitive_gbt45574", NULL_BOOL, doc="Only where GB/T 45574-2025 differs; empty = same."),
            _column("position", INT),
        ),
    ),
    WorkbookSheet(
        name="CategoryAliases",
        model=CategoryAlias,
        key=("alias",),
        doc="Free-text names of categories (their match keys are unique).",
        rows=lambda operations: CategoryAlias.objects.select_related("category").order_by(
            "category__code", "key"
        ),
        columns=(
            _column("category", path="category.code", refers_to="Categories", doc="Category code."),
            _column("alias", path="text", doc="The name as people write it; unique once normalised."),
        ),
    ),
    WorkbookSheet(
        name="Purposes",
        model=Purpose,
        key=("code",),
        doc="All purposes.",
        rows=lambda operations: Purpose.objects.order_by("code"),
        columns=(
            _column("code", doc="Stable key."),
            _column("name_zh"),
            _column("name_en"),
            _column("description_zh"),
            _column("description_en"),
            _column("position", INT),
        ),
    ),
    WorkbookSheet(
        name="PurposeAliases",
        model=PurposeAlias,
        key=("alias",),
        doc="Free-text names of purposes.",
        rows=lambda operations: PurposeAlias.objects.select_related("purpose").order_by(
            "purpose__code", "key"
        ),
        columns=(
            _column("purpose", path="purpose.code", refers_to="Purposes", doc="Purpose code."),
            _column("alias", path="text", doc="The name as people write it; unique once normalised."),
        ),
    ),
    WorkbookSheet(
        name="Actions",
        model=ProcessingAction,
        key=("code",),
        doc="All processing actions.",
        rows=lambda operations: ProcessingAction.objects.order_by("code"),
        columns=(
            _column("code", doc="Stable key."),
            _column("name_zh"),
            _column("name_en"),
            _column("pipl_article_4", BOOL),
            _column("position", INT),
        ),
    ),
    WorkbookSheet(
        name="Processors",
        model=Processor,
        key=("key",),
        doc="All processors; groups and their members alike.",
        rows=lambda operations: Processor.objects.select_related("member_of").order_by("name_key"),
        columns=(
            _column(
                "key",
                path="primary_name",
                doc="Stable key: the primary name (name_zh, else name_en) as it was when exported; "
                "compare with processors.text.normalize_key. Rename by changing name_zh/name_en.",
            ),
            _column("name_zh"),
            _column("name_en"),
            _column("kind"),
            _column("member_of", path="member_of.primary_name", refers_to="Processors", doc="Group's key."),
            _column("contact_phone"),
            _column("contact_email"),
            _column("address"),
            _column("website"),
            _column("privacy_policy_url"),
            WorkbookColumn("country", _code("country"), doc="ISO 3166 alpha-2 code, or empty."),
            _column("uscc", doc="Unified social credit code."),
            _column("icp_filing"),
            _column("public_security_filing"),
            _column("notes"),
        ),
    ),
    WorkbookSheet(
        name="ProcessorAliases",
        model=ProcessorAlias,
        key=("alias",),
        doc="Other names processors are known by.",
        rows=lambda operations: ProcessorAlias.objects.select_related("processor").order_by(
            "processor__name_key", "key"
        ),
        columns=(
            _column("processor", path="processor.primary_name", refers_to="Processors", doc="Processor key."),
            _column("alias", path="text", doc="The name as people write it; unique once normalised."),
        ),
    ),
    WorkbookSheet(
        name="Services",
        model=Service,
        key=("controller", "name"),
        doc="Every service of the controllers in the file, with or without selected operations.",
        rows=lambda operations: (
            Service.objects.filter(controller__in=_selected_controllers(operations))
            .select_related("controller")
            .order_by("controller__code", "name")
        ),
        columns=(
            _column("controller", path="controller.code", refers_to="Controllers", doc="Controller code."),
            _column("name", doc="Unique per controller."),
            _column("name_en"),
            _column("description"),
            _column("sdk_name"),
            _column("sdk_package"),
            _column("sdk_version"),
            _column("sdk_privacy_policy_url"),
            _column("device_permissions", doc="One permission per line."),
        ),
    ),
    WorkbookSheet(
        name="Operations",
        model=Operation,
        key=_OPERATION_KEY,
        doc="The selected operations.",
        rows=lambda operations: (
            operations.select_related("service__controller", "processor")
            .prefetch_related("purposes", "actions")
            .order_by(
                "service__controller__code",
                "service__name",
                "processor__name_key",
                "relationship",
                F("effective_from").asc(nulls_first=True),
                "pk",
            )
        ),
        columns=(
            *_operation_identity(),
            _column("recipient_qualifier"),
            _column(
                "data_items_text", doc="The items as published; the DataItems sheet has them one by one."
            ),
            _codes("purposes", refers_to="Purposes", doc="Purpose codes."),
            _column("purpose_text"),
            _codes("actions", refers_to="Actions", doc="Action codes."),
            _column("actions_text"),
            _column("actions_open_ended", BOOL),
            _column("sharing_method"),
            _column("usage_scenario"),
            _column("feature_necessary", NULL_BOOL),
            _column("legal_basis"),
            _column("consent_type"),
            _column("retention_at_recipient"),
            _column("cross_border", BOOL),
            WorkbookColumn(
                "destination_countries",
                lambda operation: [country.code for country in operation.destination_countries],
                LIST,
                doc="ISO 3166 alpha-2 codes.",
            ),
            _column("transfer_mechanism"),
            _column("annual_subjects", NULL_INT),
            _column("annual_sensitive_subjects", NULL_INT),
            _column("contract_reference"),
            _column("pia_reference"),
            _column("pia_date", NULL_DATE),
            _column("status"),
            _column("effective_to", NULL_DATE),
            _column("source_text", doc="The row as it was imported (cells joined by tabs)."),
            _column("notes"),
        ),
    ),
    WorkbookSheet(
        name="DataItems",
        model=DataItem,
        key=(*_OPERATION_KEY, "position", "category"),
        doc="The data items of the selected operations: one row per item and category.",
        rows=lambda operations: (
            DataItem.objects.filter(operation__in=operations.order_by().values("pk"))
            .select_related("operation__service__controller", "operation__processor", "category")
            .order_by(
                "operation__service__controller__code",
                "operation__service__name",
                "operation__processor__name_key",
                "operation__relationship",
                F("operation__effective_from").asc(nulls_first=True),
                "operation_id",
                "position",
                F("category__code").asc(nulls_first=True),
                "pk",
            )
        ),
        columns=(
            *_operation_identity("operation."),
            _column("position", INT, doc="0-based position of the item in the published list."),
            _column("text", doc="The item as published."),
            _column(
                "category",
                path="category.code",
                refers_to="Categories",
                doc="Category code; empty = unmapped (needs review).",
            ),
            _column(
                "match", doc="How the category was found (alias, ocr, composite, manual); empty if unmapped."
            ),
        ),
    ),
)
