"""The exporters: what comes out of the register.

Two shapes, both written from a queryset of operations that the caller has already filtered with
``OperationFilterSet`` ("export what I see"; ``operations_for_export`` builds it from request-like
parameters):

- **The disclosure table** (``export_disclosure``): the five columns of a published third-party table
  (服务/功能名称 | 服务主体 | 处理个人信息范围 | 处理个人信息目的 | 处理个人信息方式), then the countries
  or regions of a cross-border row (境外接收方所在国家或地区), in Chinese or English, as .xlsx or .csv,
  rows grouped service by service. Row 1 is the header and every cell is
  written in the importer's own vocabulary, so the Chinese table re-imports with ``import_register``.
  The rows come from ``disclosure.rows``, the one renderer behind the page and published versions too;
  ``write_disclosure`` writes any such rows (a published version's file is the same writer's).
- **The workbook** (``export_workbook``): one sheet per entity with stable keys, laid out by
  ``workbook_spec.WORKBOOK_SHEETS``, so that a later importer can read the whole register back losslessly.

Both stream: operations are read with ``.iterator(chunk_size=CHUNK_SIZE)`` (the disclosure rows by
``disclosure.rows.rows_from_operations``) and their relations prefetched per chunk (a constant number of
queries per chunk), the .xlsx is written by a write-only openpyxl workbook (the disclosure table's rows
as XML text, ``sheetxml``, spliced into the package openpyxl saves) and the .csv row by row. Every text
cell goes through ``safety.neutralise`` (formula injection).

Decisions the columns cannot state:
- Sensitive items are bold in the .xlsx (rich text, only those items). A .csv has no formatting: it stays
  a clean, re-importable table unless ``marks=True`` asks for publication marks, which append ``*`` to
  sensitive items and ``［境外：美国］`` to cross-border recipients (``disclosure.rows``). Marks are off
  by default because the importer would read them as part of the text (``识别身份证信息*`` maps to another
  category; a bracket after a group's member list breaks the group), so a marked table does not round-trip.
- The .xlsx always has a second sheet, 说明 (Notes), with the legend and the cross-border recipients and
  their countries; its first row is not a table header, so the importer skips that sheet.
- The service cell is repeated on every row rather than merged (merged cells read back empty in most
  tools); the rows of one service are grouped visually (a rule above the group, the name greyed below).
- Document text (headers, notes) is chosen by ``lang``, not by the active locale: a Chinese table must
  carry exactly the Chinese headers the importer knows, whatever language the user interface speaks.
"""

import csv
import datetime
import io
import math
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, BinaryIO
from weakref import WeakKeyDictionary

from django.db.models import QuerySet
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from processors.disclosure.rows import (
    FILE_HEADERS,
    LANGUAGES,
    SENSITIVE_MARK,
    DisclosureRow,
    Segment,
    rows_from_operations,
)
from processors.disclosure.rows import LIST_SEPARATOR as TABLE_LIST_SEPARATOR
from processors.filters import OperationFilterSet
from processors.models import Operation
from processors.spreadsheets.safety import neutralise, strip_illegal_characters
from processors.spreadsheets.sheetxml import (
    SheetData,
    inline_string,
    replace_sheet_data,
    rich_inline_runs,
    rich_run,
)
from processors.spreadsheets.workbook_spec import (
    BOOL,
    INT,
    LIST,
    LIST_SEPARATOR,
    NULL_BOOL,
    NULL_DATE,
    NULL_INT,
    TEXT,
    WORKBOOK_SHEETS,
    WorkbookColumn,
)

CHUNK_SIZE = 5000

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

DISCLOSURE_SHEET_TITLES = {"zh": "第三方信息共享清单", "en": "Third parties"}
NOTES_SHEET_TITLE = "说明 Notes"  # Excel forbids "/" in a sheet name
# Column widths in characters of the default font; a Chinese character is about two.
DISCLOSURE_WIDTHS = (16, 36, 50, 18, 44, 22)

NOTES_TEXT = {
    "zh": {
        "title": "说明",
        "lines": (
            "加粗显示的个人信息为敏感个人信息（《个人信息保护法》第二十八条；GB/T 35273-2020 附录 B）。",
            "以英文单引号（'）开头的单元格：为防止电子表格把文字当作公式执行，以 = + - @ 开头的文字前加了"
            "单引号，该引号不属于原文。",
            "CSV 文件不带格式；导出时选择“发布标记”，则在敏感个人信息后加 *，"
            "在境外接收方后注明所在国家或地区。",
            "最后一列为跨境传输的接收方所在国家或地区。",
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
            "The last column names the countries or regions a cross-border recipient's data goes to.",
            "[Chinese only] follows a name or text the register records only in Chinese (no English name "
            "is recorded for it).",
        ),
        "cross_border": "Recipients outside mainland China",
        "cross_border_line": "{recipient}: {countries} (services: {services})",
        "none": "No recipient outside mainland China.",
    },
}


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
    return write_disclosure(
        rows_from_operations(operations, lang=lang, marks=marks),
        stream=stream,
        fmt=fmt,
        lang=lang,
        encoding=encoding,
        marks=marks,
        progress=progress,
    )


def write_disclosure(
    rows: Iterable[DisclosureRow],
    *,
    stream: BinaryIO,
    fmt: str = "xlsx",
    lang: str = "zh",
    encoding: str = DEFAULT_CSV_ENCODING,
    marks: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write disclosure rows (from ``disclosure.rows``) to a binary stream; returns the number of rows.

    The rows must be rendered in ``lang`` and with the same ``marks``, which also stars a .csv's sensitive
    items (the .xlsx shows them bold).
    """
    _check_choice(fmt, FORMATS, _("format"))
    _check_choice(lang, LANGUAGES, _("language"))
    _check_choice(encoding, CSV_ENCODINGS, _("encoding"))
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
        writer.writerow(FILE_HEADERS[lang])
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
    # In tenths, so that the sum is exact: 9 a character, 11 more for a wide one (counted at C speed:
    # ``str.translate`` keeps the wide characters and drops the others, looking each up in a table
    # filled as characters are first met).
    if len(_WIDE_CHARACTERS) > _WIDE_CHARACTERS_KEPT:
        _WIDE_CHARACTERS.clear()  # memory stays flat on texts of very many distinct characters
    wide = len(text.translate(_WIDE_CHARACTERS))
    return (len(text) * 9 + wide * 11) / 10


class _WideCharacters(dict):
    """``str.translate`` table: a character Unicode calls East Asian Wide or Fullwidth maps to itself,
    any other to None (dropped). Filled on first sight of each character: building the whole table (or
    one character class of it) meant looking up all 1.1 million code points, about a second an export."""

    def __missing__(self, code: int) -> int | None:
        value = self[code] = code if unicodedata.east_asian_width(chr(code)) in ("W", "F") else None
        return value


_WIDE_CHARACTERS = _WideCharacters()
_WIDE_CHARACTERS_KEPT = 100_000


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
    headers = FILE_HEADERS[lang]
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
                    cells.text(row.countries, style),
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
    separator = TABLE_LIST_SEPARATOR[lang]
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


# --- The workbook (laid out by workbook_spec.WORKBOOK_SHEETS) -------------------------------------


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
