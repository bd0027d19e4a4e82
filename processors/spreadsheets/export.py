"""The exporters: what comes out of the register.

Two shapes, both written from a queryset of operations that the caller has already filtered with
``OperationFilterSet`` ("export what I see"; ``operations_for_export`` builds it from request-like
parameters):

- **The disclosure table** (``export_disclosure``): the five columns of a published third-party table
  (服务/功能名称 | 服务主体 | 处理个人信息范围 | 处理个人信息目的 | 处理个人信息方式), in Chinese or
  English, as .xlsx or .csv, rows grouped service by service. Row 1 is the header and every cell is
  written in the importer's own vocabulary, so the Chinese table re-imports with ``import_register``.
- **The workbook** (``export_workbook``): one sheet per entity with stable keys, laid out by
  ``WORKBOOK_SHEETS``, so that a later importer can read the whole register back losslessly.

Both stream: operations are read with ``.iterator(chunk_size=CHUNK_SIZE)`` and their relations prefetched
per chunk (a constant number of queries per chunk), the .xlsx is written by a write-only openpyxl workbook
(the disclosure table's rows as XML text, ``sheetxml``, spliced into the package openpyxl saves) and the
.csv row by row. Every text cell goes through ``safety.neutralise`` (formula injection).

Decisions the columns cannot state:
- Sensitive items are bold in the .xlsx (rich text, only those items). A .csv has no formatting: it stays
  a clean, re-importable table unless ``marks=True`` asks for publication marks, which append ``*`` to
  sensitive items and ``［境外：美国］`` to cross-border recipients. Marks are off by default because the
  importer would read them as part of the text (``识别身份证信息*`` maps to another category; a bracket
  after a group's member list breaks the group), so a marked table does not round-trip.
- The .xlsx always has a second sheet, 说明 (Notes), with the legend and the cross-border recipients and
  their countries; its first row is not a table header, so the importer skips that sheet.
- The service cell is repeated on every row rather than merged (merged cells read back empty in most
  tools); the rows of one service are grouped visually (a rule above the group, the name greyed below).
- Document text (headers, notes) is chosen by ``lang``, not by the active locale: a Chinese table must
  carry exactly the Chinese headers the importer knows, whatever language the user interface speaks.
"""

import csv
import datetime
import functools
import io
import json
import math
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from copy import copy
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, BinaryIO
from weakref import WeakKeyDictionary

from django.core.exceptions import FieldDoesNotExist
from django.db.models import BooleanField, Expression, F, Model, QuerySet
from django.utils import translation
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from django_countries import countries
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from processors import selectors
from processors.filters import OperationFilterSet
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
from processors.spreadsheets.cells import OPEN_ENDED_MARKERS, split_list
from processors.spreadsheets.safety import neutralise, strip_illegal_characters
from processors.spreadsheets.sheetxml import (
    SheetData,
    inline_string,
    replace_sheet_data,
    rich_inline_runs,
    rich_run,
)

CHUNK_SIZE = 5000

LANGUAGES = ("zh", "en")
FORMATS = ("xlsx", "csv")
# UTF-8 with a BOM is what Excel opens correctly; GB18030 is for tools that only read GBK. All three hold
# every character, so an export never fails half-way on an unencodable name.
CSV_ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")
DEFAULT_CSV_ENCODING = "utf-8-sig"

Progress = Callable[[int], None]


class ExportError(ValueError):
    """Export options that cannot be honoured (an unknown language or format)."""


class ExportFilterError(ExportError):
    """Filter parameters the OperationFilterSet refuses; ``errors`` maps each parameter to its messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {name: [str(message) for message in messages] for name, messages in errors.items()}
        super().__init__("\n".join(f"{name}: {' '.join(messages)}" for name, messages in self.errors.items()))


# --- Selecting operations -------------------------------------------------------------------------


def operations_for_export(params: Mapping[str, Any]) -> QuerySet[Operation]:
    """The operations OperationFilterSet selects for these parameters (as the API takes them); or raise.

    A value may be a list (a repeated parameter), a bool or a date; unknown names are ignored, as the API
    and the browser ignore them, so a page's own query string exports what the page shows.
    """
    data = MultiValueDict()
    for name, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        data.setlist(name, [_param_text(item) for item in values if item is not None])
    filterset = OperationFilterSet(data=data, queryset=Operation.objects.all())
    if not filterset.is_valid():
        raise ExportFilterError(filterset.errors)
    return filterset.qs


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


# --- The disclosure table -------------------------------------------------------------------------

# The iTrus table's headers. The Chinese ones are the importer's (DISCLOSURE_COLUMNS); the English ones
# are for people and not all known to the importer, which the English table does not need (it names
# categories, not the published items).
DISCLOSURE_HEADERS = {
    "zh": ("服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"),
    "en": ("Service/feature", "Recipient", "Personal information processed", "Purpose", "Processing method"),
}
DISCLOSURE_SHEET_TITLES = {"zh": "第三方信息共享清单", "en": "Third parties"}
NOTES_SHEET_TITLE = "说明 Notes"  # Excel forbids "/" in a sheet name
# Column widths in characters of the default font; a Chinese character is about two.
DISCLOSURE_WIDTHS = (16, 36, 50, 18, 44)
SENSITIVE_MARK = "*"

# Separators and brackets per language. English lists use "; " because names contain commas
# ("HK, Macao and Taiwan travel permit").
_LIST_SEPARATOR = {"zh": "、", "en": "; "}
_ACTION_SEPARATOR = {"zh": "、", "en": ", "}
_OPEN_ENDED = {"zh": "等", "en": "etc."}
_BRACKETS = {"zh": ("（", "）"), "en": (" (", ")")}
_CROSS_BORDER_MARK = {"zh": "［境外：{countries}］", "en": " [cross-border: {countries}]"}
_CROSS_BORDER_MARK_NO_COUNTRY = {"zh": "［境外］", "en": " [cross-border]"}
_COUNTRY_LOCALE = {"zh": "zh-hans", "en": "en"}
# How Chinese publications must name these regions; django-countries' short names would not do.
_ZH_REGION_NAMES = {"HK": "中国香港", "MO": "中国澳门", "TW": "中国台湾"}

NOTES_TEXT = {
    "zh": {
        "title": "说明",
        "lines": (
            "加粗显示的个人信息为敏感个人信息（《个人信息保护法》第二十八条；GB/T 35273-2020 附录 B）。",
            "以英文单引号（'）开头的单元格：为防止电子表格把文字当作公式执行，以 = + - @ 开头的文字前加了"
            "单引号，该引号不属于原文。",
            "CSV 文件不带格式；导出时选择“发布标记”，则在敏感个人信息后加 *，"
            "在境外接收方后注明所在国家或地区。",
        ),
        "cross_border": "境外接收方",
        "cross_border_line": "{recipient}：{countries}（服务/功能：{services}）",
        "none": "无境外接收方。",
    },
    "en": {
        "title": "Notes",
        "lines": (
            "Items in bold are sensitive personal information (PIPL Art. 28; GB/T 35273-2020 Appendix B).",
            "A cell starting with a single quote ('): text starting with = + - @ is written with a quote in "
            "front so that no spreadsheet runs it as a formula; the quote is not part of the text.",
            "A CSV file has no formatting; with publication marks, sensitive items end with * and "
            "cross-border recipients are followed by their countries or regions.",
        ),
        "cross_border": "Recipients outside mainland China",
        "cross_border_line": "{recipient}: {countries} (services: {services})",
        "none": "No recipient outside mainland China.",
    },
}


@dataclass(frozen=True)
class Segment:
    """A run of text in a cell; sensitive data items are bold."""

    text: str
    bold: bool = False


@dataclass(frozen=True)
class DisclosureRow:
    """One row of the disclosure table, in one language, before it is written to a file."""

    service_id: int
    service: str
    recipient: str
    data_items: tuple[Segment, ...]
    purpose: str
    actions: str
    processor_id: int
    recipient_name: str
    destinations: tuple[str, ...] = ()

    def data_items_text(self, sensitive_mark: str = "") -> str:
        return "".join(segment.text + (sensitive_mark if segment.bold else "") for segment in self.data_items)

    def texts(self, sensitive_mark: str = "") -> list[str]:
        """The five cells as plain text (sensitive items followed by ``sensitive_mark``)."""
        return [
            self.service,
            self.recipient,
            self.data_items_text(sensitive_mark),
            self.purpose,
            self.actions,
        ]


def disclosure_rows(
    operations: QuerySet[Operation], *, lang: str = "zh", marks: bool = False
) -> Iterator[DisclosureRow]:
    """The disclosure table's rows for these operations, service by service, streamed in chunks."""
    _check_choice(lang, LANGUAGES, _("language"))
    extra_sensitive = selectors.controller_extra_sensitive_category_ids()
    # The selector's order and filters, read as plain values: a 100,000-row export would otherwise build
    # over a million model instances (operations, items, categories, purposes, actions) only to read a
    # few of their fields. The relations come in the same few queries per chunk as the selector's
    # prefetches, in the same order, selected by the chunk's ids passed as one parameter (_AmongIds).
    ordered = selectors.operation_disclosure_list(operations).prefetch_related(None)
    records = ordered.values_list(*_OPERATION_FIELDS).iterator(chunk_size=CHUNK_SIZE)
    builder = _RowBuilder(lang=lang, marks=marks, extra_sensitive=extra_sensitive)
    chunk: list[tuple] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == CHUNK_SIZE:
            yield from builder.chunk_rows(chunk)
            chunk = []
    if chunk:
        yield from builder.chunk_rows(chunk)


class _AmongIds(Expression):
    """``column IN ids`` with the ids as one parameter (an array, a JSON list), not one parameter each.

    ``operation_id__in=<2,000 ids>`` costs more than the rows it selects: Django prepares every
    parameter, psycopg splices each into the statement, and the database parses and plans a 2,000-term
    list. Measured on 100,000 operations with 549,060 data items, loading the items per chunk took 1.8 s
    (SQLite) and 4.0 s (PostgreSQL) with IN lists, 1.4 s and 1.45 s with one parameter; one query for the
    whole export, sorted like the operations and merged in Python, took 2.75 s and 1.75 s (the sort).
    Other databases get the IN list.
    """

    output_field = BooleanField()

    def __init__(self, column: str, ids: Sequence[int]) -> None:
        super().__init__()
        self.column = F(column)
        self.ids = list(ids)

    def resolve_expression(self, *args: Any, **kwargs: Any) -> "_AmongIds":
        resolved = self.copy()
        resolved.column = self.column.resolve_expression(*args, **kwargs)
        return resolved

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple]:
        # The column is the compiler's quoted name and the ids are parameters: no text is spliced in.
        column, params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
            return f"{column} = ANY(%s)", (*params, self.ids)
        if connection.vendor == "sqlite":
            return f"{column} IN (SELECT value FROM json_each(%s))", (*params, json.dumps(self.ids))  # noqa: S608
        return f"{column} IN ({', '.join(['%s'] * len(self.ids))})", (*params, *self.ids)


# What a disclosure row needs of an operation, its service and its processor (one joined query).
_OPERATION_FIELDS = (
    "pk",
    "service_id",
    "service__name",
    "service__name_en",
    "service__controller_id",
    "processor_id",
    "processor__name_zh",
    "processor__name_en",
    "processor__kind",
    "processor__contact_phone",
    "recipient_qualifier",
    "cross_border",
    "destination_countries",
    "data_items_text",
    "purpose_text",
    "actions_text",
    "actions_open_ended",
)

# What a disclosure row needs of a data item, a purpose link and an action link; the operation id first.
# The Chinese table prints the published items verbatim, so it leaves the category names in the database.
_ITEM_FIELDS = {
    "zh": ("operation_id", "text", "category_id", "category__sensitive"),
    "en": (
        "operation_id",
        "text",
        "category_id",
        "category__sensitive",
        "category__name_zh",
        "category__name_en",
    ),
}
_PURPOSE_FIELDS = ("operation_id", "purpose__name_zh", "purpose__name_en")
_ACTION_FIELDS = ("operation_id", "processingaction__name_zh", "processingaction__name_en")


def _pick(lang: str, name_zh: str, name_en: str) -> str:
    if lang == "en":
        return name_en or name_zh
    return name_zh or name_en


def _country_name(code: str, lang: str) -> str:
    if lang == "zh" and code in _ZH_REGION_NAMES:
        return _ZH_REGION_NAMES[code]
    # Overridden per call, not around the row generator, whose caller runs in the user's language.
    with translation.override(_COUNTRY_LOCALE[lang]):
        return str(countries.name(code)) or code


class _RowBuilder:
    """Turns operation values and their relations' values into DisclosureRows.

    Values that repeat across rows (country names, list-cell parsing, segments, group members) are
    computed once per export and reused; all of them are immutable.
    """

    def __init__(self, *, lang: str, marks: bool, extra_sensitive: Mapping[int, frozenset[int]]) -> None:
        self.lang = lang
        self.marks = marks
        self.extra_sensitive = extra_sensitive
        self.separator = _LIST_SEPARATOR[lang]
        self.countries_field = Operation._meta.get_field("destination_countries")
        self.country_names: dict[str, tuple[str, ...]] = {}
        self.open_ended: dict[str, bool] = {}
        self.segments: dict[tuple[str, bool], Segment] = {}

    def group_members(self, processors: QuerySet[Processor]) -> dict[int, list[str]]:
        """Group id -> its members' names in this language, by name key."""
        members: dict[int, list[str]] = {}
        for group_id, name_zh, name_en in processors.order_by("name_key").values_list(
            "member_of_id", "name_zh", "name_en"
        ):
            members.setdefault(group_id, []).append(_pick(self.lang, name_zh, name_en))
        return members

    def chunk_rows(self, chunk: list[tuple]) -> Iterator[DisclosureRow]:
        """The rows of a chunk of operation values, their relations loaded by id in 4 queries."""
        ids = [record[0] for record in chunk]
        relations = (
            DataItem.objects.filter(_AmongIds("operation_id", ids))
            .order_by("position", "id")
            .values_list(*_ITEM_FIELDS[self.lang]),
            Operation.purposes.through.objects.filter(_AmongIds("operation_id", ids))
            .order_by("purpose__position", "purpose__code")
            .values_list(*_PURPOSE_FIELDS),
            Operation.actions.through.objects.filter(_AmongIds("operation_id", ids))
            .order_by("processingaction__position", "processingaction__code")
            .values_list(*_ACTION_FIELDS),
        )
        items, purposes, actions = ({}, {}, {})
        for values, by_operation in zip(relations, (items, purposes, actions), strict=True):
            for value in values:
                by_operation.setdefault(value[0], []).append(value)
        members = self.group_members(
            Processor.objects.filter(_AmongIds("member_of_id", sorted({record[5] for record in chunk})))
        )
        for record in chunk:
            yield self.row(
                record,
                items=items.get(record[0], ()),
                purposes=purposes.get(record[0], ()),
                actions=actions.get(record[0], ()),
                members=members.get(record[5], ()),
            )

    def row(
        self,
        record: tuple,
        *,
        items: Sequence[tuple],
        purposes: Sequence[tuple[int, str, str]],
        actions: Sequence[tuple[int, str, str]],
        members: Sequence[str],
    ) -> DisclosureRow:
        (
            _pk,
            service_id,
            service_name,
            service_name_en,
            controller_id,
            processor_id,
            processor_zh,
            processor_en,
            kind,
            phone,
            qualifier,
            cross_border,
            destination_countries,
            data_items_text,
            purpose_text,
            actions_text,
            actions_open_ended,
        ) = record
        lang = self.lang
        destinations = self.destinations(destination_countries) if cross_border else ()
        recipient_name = _pick(lang, processor_zh, processor_en)
        return DisclosureRow(
            service_id=service_id,
            service=(service_name_en or service_name) if lang == "en" else service_name,
            recipient=_recipient_text(
                recipient_name,
                qualifier=qualifier,
                members=members if kind == Processor.Kind.GROUP else (),
                phone=phone,
                cross_border=cross_border,
                lang=lang,
                destinations=destinations,
                marks=self.marks,
            ),
            data_items=self.data_item_segments(
                items, data_items_text, self.extra_sensitive.get(controller_id, frozenset())
            ),
            purpose=_purpose_text(purpose_text, purposes, lang),
            actions=_actions_text(actions_text, actions_open_ended, actions, lang),
            processor_id=processor_id,
            recipient_name=recipient_name,
            destinations=destinations,
        )

    def destinations(self, stored: Any) -> tuple[str, ...]:
        """Country names of a stored destination list, as the model field would read it."""
        key = stored if isinstance(stored, str) else ",".join(stored or ())
        names = self.country_names.get(key)
        if names is None:
            descriptor = Operation.destination_countries
            codes = [
                descriptor.country(code).code for code in self.countries_field.get_clean_value(stored) or ()
            ]
            names = self.country_names[key] = tuple(_country_name(code, self.lang) for code in codes)
        return names

    def segment(self, text: str, bold: bool = False) -> Segment:
        segment = self.segments.get((text, bold))
        if segment is None:
            segment = self.segments[(text, bold)] = Segment(text, bold)
        return segment

    def data_item_segments(
        self, items: Sequence[tuple], data_items_text: str, extra_sensitive: frozenset[int]
    ) -> tuple[Segment, ...]:
        """zh: the published items verbatim; en: the categories' English names, unmapped items verbatim."""
        lang = self.lang
        entries: dict[Any, list] = {}  # identity -> [text, sensitive], in item order
        for _operation_id, text, category_id, category_sensitive, *names in items:
            mapped = category_id is not None
            sensitive = mapped and (category_sensitive or category_id in extra_sensitive)
            if lang == "zh":
                # A composite item has one row per category at the same position and text.
                key = ("text", text)
            elif mapped:
                name_zh, name_en = names
                key, text = ("category", category_id), name_en or name_zh
            else:
                key = ("text", text)
            entry = entries.setdefault(key, [text, False])
            entry[1] = entry[1] or sensitive
        if not entries:
            return (self.segment(data_items_text),) if data_items_text else ()
        separator = self.segment(self.separator)
        segments: list[Segment] = []
        for text, sensitive in entries.values():
            if segments:
                segments.append(separator)
            segments.append(self.segment(text, bool(sensitive)))
        # Only a text with a marker in it can end with one: splitting every other text would be wasted.
        open_ended = False
        if any(marker in data_items_text for marker in OPEN_ENDED_MARKERS):
            open_ended = self.open_ended.get(data_items_text)
            if open_ended is None:
                if len(self.open_ended) >= _CELL_CACHE_SIZE:
                    self.open_ended.clear()  # memory stays flat on a table of all-different texts
                open_ended = self.open_ended[data_items_text] = split_list(data_items_text).open_ended
        if open_ended:
            segments.append(
                self.segment(_OPEN_ENDED[lang] if lang == "zh" else self.separator + _OPEN_ENDED[lang])
            )
        return tuple(segments)


def _recipient_text(
    name: str,
    *,
    qualifier: str,
    members: Sequence[str],
    phone: str,
    cross_border: bool,
    lang: str,
    destinations: tuple[str, ...],
    marks: bool,
) -> str:
    """Name, qualifier, group members and phone, in the shape ``cells.parse_recipient`` takes apart."""
    opening, closing = _BRACKETS[lang]
    text = name
    if qualifier:
        text += f"{opening}{qualifier}{closing}"
    if members:
        text += f"{opening}{_LIST_SEPARATOR[lang].join(members)}{closing}"
    if phone:
        text += f" {phone}"
    if marks and cross_border:
        if destinations:
            text += _CROSS_BORDER_MARK[lang].format(countries=_LIST_SEPARATOR[lang].join(destinations))
        else:
            text += _CROSS_BORDER_MARK_NO_COUNTRY[lang]
    return text


def _purpose_text(purpose_text: str, purposes: Sequence[tuple[int, str, str]], lang: str) -> str:
    """Purposes are (operation id, name_zh, name_en)."""
    if lang == "zh":
        return purpose_text or _LIST_SEPARATOR[lang].join(purpose[1] for purpose in purposes)
    return _LIST_SEPARATOR[lang].join(purpose[2] for purpose in purposes) or purpose_text


def _actions_text(
    actions_text: str, open_ended: bool, actions: Sequence[tuple[int, str, str]], lang: str
) -> str:
    """Actions are (operation id, name_zh, name_en)."""
    if lang == "zh":
        if actions_text:
            return actions_text
        text = _ACTION_SEPARATOR[lang].join(action[1] for action in actions)
        return text + _OPEN_ENDED[lang] if text and open_ended else text
    if not actions:
        return actions_text
    # Read as a list in a sentence: "Collect, store, use, etc."
    names = [actions[0][2]] + [_lower_first(action[2]) for action in actions[1:]]
    if open_ended:
        names.append(_OPEN_ENDED[lang])
    return _ACTION_SEPARATOR[lang].join(names)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def export_disclosure(
    operations: QuerySet[Operation],
    *,
    stream: BinaryIO,
    fmt: str = "xlsx",
    lang: str = "zh",
    encoding: str = DEFAULT_CSV_ENCODING,
    marks: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write the disclosure table of these operations to a binary stream; returns the number of rows."""
    _check_choice(fmt, FORMATS, _("format"))
    _check_choice(lang, LANGUAGES, _("language"))
    _check_choice(encoding, CSV_ENCODINGS, _("encoding"))
    rows = disclosure_rows(operations, lang=lang, marks=marks)
    if fmt == "csv":
        return _write_disclosure_csv(
            rows, stream=stream, lang=lang, encoding=encoding, marks=marks, progress=progress
        )
    return _write_disclosure_xlsx(rows, stream=stream, lang=lang, progress=progress)


def _check_choice(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise ExportError(
            _("Unknown %(what)s “%(value)s”; use one of %(choices)s.")
            % {"what": what, "value": value, "choices": ", ".join(choices)}
        )


def _write_disclosure_csv(
    rows: Iterable[DisclosureRow],
    *,
    stream: BinaryIO,
    lang: str,
    encoding: str,
    marks: bool,
    progress: Progress | None,
) -> int:
    text = io.TextIOWrapper(stream, encoding=encoding, newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(DISCLOSURE_HEADERS[lang])
        count = 0
        mark = SENSITIVE_MARK if marks else ""
        for count, row in enumerate(rows, start=1):
            writer.writerow([neutralise(cell) for cell in row.texts(sensitive_mark=mark)])
            if progress is not None:
                progress(count)
        text.flush()
    finally:
        text.detach()  # the caller owns the stream
    return count


# --- xlsx styling ---------------------------------------------------------------------------------

_THIN = Side(style="thin", color="999999")
_RULE = Side(style="medium", color="404040")
_WRAP_TOP = Alignment(wrap_text=True, vertical="top")


def _styles() -> tuple[NamedStyle, ...]:
    # New objects for every workbook: a named style is bound to the workbook it is added to.
    return (
        NamedStyle(
            name="register header",
            font=Font(bold=True),
            fill=PatternFill("solid", fgColor="D9D9D9"),
            alignment=Alignment(wrap_text=True, vertical="center", horizontal="center"),
            border=Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN),
        ),
        # The first row of a service's group has a rule above it; later rows grey the repeated name.
        NamedStyle(
            name="register group start",
            alignment=_WRAP_TOP,
            border=Border(left=_THIN, right=_THIN, top=_RULE, bottom=_THIN),
        ),
        NamedStyle(
            name="register row",
            alignment=_WRAP_TOP,
            border=Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN),
        ),
        NamedStyle(
            name="register repeated service",
            font=Font(color="8C8C8C"),
            alignment=_WRAP_TOP,
            border=Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN),
        ),
        NamedStyle(name="register title", font=Font(bold=True, size=13)),
        NamedStyle(name="register text", alignment=_WRAP_TOP),
    )


def _new_workbook() -> Workbook:
    workbook = Workbook(write_only=True)
    for style in _styles():
        workbook.add_named_style(style)
    return workbook


def _cell(sheet: Any, value: Any, style: str | None = None) -> WriteOnlyCell:
    if isinstance(value, str):
        value = neutralise(strip_illegal_characters(value)) or None
    cell = WriteOnlyCell(sheet, value=value)
    if style:
        cell._style = copy(_style_array(sheet.parent, style))
    return cell


# A named style's style array per workbook. Setting ``cell.style = name`` looks the name up in a list on
# every cell; an export sets it on half a million cells, so the array is looked up once and copied, which
# is what openpyxl's descriptor does after its lookup.
_STYLE_ARRAYS: "WeakKeyDictionary[Workbook, dict[str, Any]]" = WeakKeyDictionary()


def _style_array(workbook: Workbook, style: str) -> Any:
    arrays = _STYLE_ARRAYS.setdefault(workbook, {})
    array = arrays.get(style)
    if array is None:
        array = arrays[style] = workbook._named_styles[style].as_tuple()
    return array


def _prepare_sheet(sheet: Any, widths: Sequence[float], *, header: bool = True) -> None:
    """Header frozen, widths set, printable on A4 fitted to the page width with the header on every page.

    A write-only sheet writes its views and columns before the first row, so this comes first.
    """
    if header:
        sheet.freeze_panes = "A2"
        sheet.print_title_rows = "1:1"
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0  # as many pages down as needed
    sheet.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.6, header=0.25, footer=0.3)
    sheet.oddFooter.center.text = "&P / &N"


# Points per line of wrapped 11-point text, Chinese fonts included, and the padding of a row.
_LINE_HEIGHT = 15
_ROW_PADDING = 3


def _display_width(text: str) -> float:
    """Width in column units (the width of "0"): a Chinese (wide) character takes two, Latin about 0.9."""
    # In tenths, so that the sum is exact: 9 a character, 11 more for a wide one (found at C speed).
    wide = len(_wide_characters().findall(text))
    return (len(text) * 9 + wide * 11) / 10


@functools.cache
def _wide_characters() -> re.Pattern[str]:
    """Every character Unicode calls East Asian Wide or Fullwidth, as one character class (built once)."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.east_asian_width(chr(code)) in "WF":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


def _line_count(text: str, width: float) -> int:
    # Words wrap whole, so a line is never quite full; 92 % of the cell is a fair estimate.
    usable = max(1.0, (width - 1) * 0.92)
    return sum(max(1, math.ceil(_display_width(line) / usable)) for line in (text or "").split("\n"))


_LINE_COUNT_CACHE_SIZE = 50_000
# Distinct cell texts whose XML is kept for reuse (services, recipients, purposes and actions repeat).
_CELL_CACHE_SIZE = 50_000


class _RowHeights:
    """The height of a row tall enough for its wrapped text, or None for a one-line row.

    Spreadsheet programs do not all fit wrapped rows when they open a file (LibreOffice prints them one
    line high), so the height is estimated here.
    """

    def __init__(self, widths: Sequence[float]) -> None:
        # Services, recipients, purposes and actions repeat from row to row: count each text's lines once
        # per column (one text -> line count dict per column width).
        self.columns: list[tuple[float, dict[str, int]]] = [(width, {}) for width in widths]

    def height(self, texts: Sequence[str]) -> int | None:
        lines = 1
        for text, (width, line_counts) in zip(texts, self.columns, strict=False):
            count = line_counts.get(text)
            if count is None:
                if len(line_counts) >= _LINE_COUNT_CACHE_SIZE:
                    line_counts.clear()  # memory stays flat on a table of all-different texts
                count = line_counts[text] = _line_count(text, width)
            if count > lines:
                lines = count
        return lines * _LINE_HEIGHT + _ROW_PADDING if lines > 1 else None


class _Rows:
    """Appends rows to a write-only sheet, each tall enough for its wrapped text.

    A row's dimension is dropped once the row is written, which keeps memory flat however many rows
    there are.
    """

    def __init__(self, sheet: Any, widths: Sequence[float]) -> None:
        self.sheet = sheet
        self.heights = _RowHeights(widths)
        self.count = 0

    def append(self, cells: Sequence[WriteOnlyCell], texts: Sequence[str] = ()) -> None:
        self.count += 1
        height = self.heights.height(texts)
        if height is not None:
            self.sheet.row_dimensions[self.count].height = height
        self.sheet.append(cells)
        self.sheet.row_dimensions.pop(self.count, None)


class _TableCells:
    """The disclosure table's cells as ``sheetxml`` (style id, content) pairs, cleaned like ``_cell``.

    Text is stripped of the characters an .xlsx cannot hold and neutralised (formula injection) exactly as
    ``_cell`` and openpyxl's rich text did, so the file holds the same cells. Style ids are the
    workbook's own: a named style's array is added to the workbook's cell style table when a cell first
    uses it, as openpyxl does when it writes a styled cell, so the ids come out in the same order.
    """

    def __init__(self, workbook: Workbook) -> None:
        self.workbook = workbook
        self.style_ids: dict[str, int] = {}
        self.contents: dict[str, str] = {}
        self.runs: dict[Segment, tuple[str, bool, str]] = {}

    def style(self, name: str) -> int:
        style_id = self.style_ids.get(name)
        if style_id is None:
            array = copy(_style_array(self.workbook, name))
            style_id = self.style_ids[name] = self.workbook._cell_styles.add(array)
        return style_id

    def text(self, value: str, style: str) -> tuple[int, str]:
        content = self.contents.get(value)
        if content is None:
            text = neutralise(strip_illegal_characters(value)) if value else ""
            content = inline_string(text) if text else ""
            if len(self.contents) >= _CELL_CACHE_SIZE:
                self.contents.clear()
            self.contents[value] = content
        return self.style(style), content

    def rich(self, segments: Sequence[Segment], style: str) -> tuple[int, str]:
        """Bold segments alone are bold (rich text); the first run is neutralised, as the whole text is."""
        if not any(segment.bold for segment in segments):
            return self.text("".join(segment.text for segment in segments), style)
        runs = [run for run in map(self._run, segments) if run[0]]
        if not runs:
            return self.style(style), ""
        first_text, bold, _xml = runs[0]
        first = neutralise(first_text)
        xml = [rich_run(first, bold) if first != first_text else runs[0][2], *(run[2] for run in runs[1:])]
        return self.style(style), rich_inline_runs(xml)

    def _run(self, segment: Segment) -> tuple[str, bool, str]:
        """(cleaned text, bold, run XML) of a segment; data items repeat, so each is written once."""
        run = self.runs.get(segment)
        if run is None:
            text = strip_illegal_characters(segment.text)
            if len(self.runs) >= _CELL_CACHE_SIZE:
                self.runs.clear()
            run = self.runs[segment] = (text, segment.bold, rich_run(text, segment.bold) if text else "")
        return run


def _write_disclosure_xlsx(
    rows: Iterable[DisclosureRow], *, stream: BinaryIO, lang: str, progress: Progress | None
) -> int:
    """The table sheet's rows are written as XML text (``sheetxml``), everything else by openpyxl.

    openpyxl's cell writer cost several times the table's own data; the rows go to a temporary file,
    then openpyxl saves the workbook with the table sheet empty (its columns, views, filter, page setup
    and defined names, the styles and the notes sheet) and the rows are spliced into that package.
    """
    workbook = _new_workbook()
    sheet = workbook.create_sheet(DISCLOSURE_SHEET_TITLES[lang])
    _prepare_sheet(sheet, DISCLOSURE_WIDTHS)
    headers = DISCLOSURE_HEADERS[lang]
    cells = _TableCells(workbook)
    heights = _RowHeights(DISCLOSURE_WIDTHS)
    cross_border: dict[int, _CrossBorderRecipient] = {}
    previous_service = None
    count = 0
    with tempfile.TemporaryFile() as sheet_data:
        table = SheetData(sheet_data, len(headers))
        table.append([cells.text(header, "register header") for header in headers], heights.height(headers))
        for count, row in enumerate(rows, start=1):
            starts_group = row.service_id != previous_service
            previous_service = row.service_id
            style = "register group start" if starts_group else "register row"
            table.append(
                [
                    cells.text(row.service, style if starts_group else "register repeated service"),
                    cells.text(row.recipient, style),
                    cells.rich(row.data_items, style),
                    cells.text(row.purpose, style),
                    cells.text(row.actions, style),
                ],
                heights.height(row.texts()),
            )
            if row.destinations:
                cross_border.setdefault(row.processor_id, _CrossBorderRecipient(row.recipient_name)).add(row)
            if progress is not None:
                progress(count)
        table.close()
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{count + 1}"
        _write_notes(workbook, lang=lang, cross_border=cross_border.values())
        scaffold = io.BytesIO()
        workbook.save(scaffold)
        replace_sheet_data(scaffold, sheet.path.lstrip("/"), sheet_data, stream)
    return count


@dataclass
class _CrossBorderRecipient:
    name: str
    countries: dict[str, None] = field(default_factory=dict)
    services: dict[str, None] = field(default_factory=dict)

    def add(self, row: DisclosureRow) -> None:
        self.countries.update(dict.fromkeys(row.destinations))
        self.services.update(dict.fromkeys([row.service]))


def _write_notes(workbook: Workbook, *, lang: str, cross_border: Iterable[_CrossBorderRecipient]) -> None:
    """The legend and the cross-border recipients, one line per cell.

    Every row has a single cell on purpose: the importer takes the first row with two cells or more as
    a sheet's header, so a sheet of single-cell lines is never mistaken for a table and is skipped.
    """
    notes = NOTES_TEXT[lang]
    # One column as wide as a landscape page: LibreOffice does not shrink a one-column sheet to fit.
    widths = (110,)
    sheet = workbook.create_sheet(NOTES_SHEET_TITLE)
    _prepare_sheet(sheet, widths, header=False)
    rows = _Rows(sheet, widths)
    separator = _LIST_SEPARATOR[lang]
    rows.append([_cell(sheet, notes["title"], "register title")])
    for line in notes["lines"]:
        text = f"• {line}"
        rows.append([_cell(sheet, text, "register text")], [text])
    rows.append([])
    rows.append([_cell(sheet, notes["cross_border"], "register title")])
    recipients = sorted(cross_border, key=attrgetter("name"))
    if not recipients:
        rows.append([_cell(sheet, notes["none"], "register text")])
    for recipient in recipients:
        text = notes["cross_border_line"].format(
            recipient=recipient.name,
            countries=separator.join(recipient.countries),
            services=separator.join(recipient.services),
        )
        rows.append([_cell(sheet, text, "register text")], [text])


# --- The workbook ---------------------------------------------------------------------------------

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


def _workbook_value(column: WorkbookColumn, obj: Any) -> Any:
    value = column.get(obj)
    if column.kind == LIST:
        return LIST_SEPARATOR.join(value) or None
    if column.kind == TEXT:
        return value or None
    return value


def export_workbook(
    operations: QuerySet[Operation], *, stream: BinaryIO, progress: Progress | None = None
) -> int:
    """Write the round-trip workbook (WORKBOOK_SHEETS) for these operations; returns the operation count."""
    workbook = _new_workbook()
    count = 0
    for spec in WORKBOOK_SHEETS:
        sheet = workbook.create_sheet(spec.name)
        _prepare_sheet(sheet, [_workbook_width(column) for column in spec.columns])
        sheet.append([_cell(sheet, header, "register header") for header in spec.headers])
        rows = 0
        for rows, obj in enumerate(spec.rows(operations).iterator(chunk_size=CHUNK_SIZE), start=1):
            sheet.append([_workbook_cell(sheet, column, obj) for column in spec.columns])
            if spec.name == "Operations":
                count = rows
                if progress is not None:
                    progress(count)
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(spec.columns))}{rows + 1}"
    workbook.save(stream)
    return count


def _workbook_cell(sheet: Any, column: WorkbookColumn, obj: Any) -> WriteOnlyCell:
    value = _workbook_value(column, obj)
    cell = _cell(sheet, value)
    if column.kind == NULL_DATE and value is not None:
        cell.number_format = "yyyy-mm-dd"
    return cell


def _workbook_width(column: WorkbookColumn) -> float:
    if column.kind in (BOOL, NULL_BOOL, INT, NULL_INT, NULL_DATE):
        return max(12, len(column.header) + 2)
    return max(18, len(column.header) + 2)
