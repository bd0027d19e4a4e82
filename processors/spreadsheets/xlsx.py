"""The .xlsx reader: a workbook's package checked, scanned once as bytes, and its rows read.

A zip package is refused before anything is decompressed when its zip directory promises something
hostile (too many members, a total unpacked size or a part's compression ratio past the limits);
``zipfile`` never inflates a part past the size its directory declares, so a lying directory fails its
CRC check instead of growing. Every XML part is then streamed once, before any reader opens it, to
refuse a DOCTYPE (the carrier of "billion laughs" entity expansion) and to count a sheet's rows, so that
a million-row sheet is refused after reading bytes, not after building rows.

Rows come from python-calamine (Rust), about five times faster than openpyxl's read-only mode on a
register (decisions.md, 16), and only from a package our own pass has accepted. calamine holds a whole
sheet at once, as a rectangle, so a sheet part is searched first for what would make that rectangle
larger than the limits (a reference past the last row or column), and for what calamine reads
differently from openpyxl: error cells (#N/A, #SPILL!), cells without a reference, integers beyond
2**53. Such a sheet, or one calamine fails on, is read by openpyxl's read-only mode as before (its XML
parsed with defusedxml, a second line against entities); calamine's XML parser expands no entities.

Merged cells: neither reader exposes merges to us as we need them, and Excel stores a merged value in the
top-left cell only. The same streaming pass skips a sheet's ``<sheetData>`` as bytes and parses what
surrounds it (where ``<mergeCells>`` lives) with defusedxml, so merges cost no second parse of the rows.
A range merged down several rows is filled down into its first column on every row of the range that
has other content; a merge across columns is left alone, so a value never lands under another header.

Formulas are read as the values Excel cached. When the streaming pass sees formulas in a visible sheet,
that sheet is parsed once more for a formula cell without a cached value (a file written by a library
and never opened in Excel), which is refused rather than read as an empty cell.

Why one module: the package checks, the byte scan and the two readers are one line of defence against
hostile files, each step relying on what the one before it refused; split, they would be read together
anyway.
"""

import datetime
import functools
import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, BinaryIO
from xml.etree.ElementTree import Element, ParseError

import openpyxl
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from defusedxml.ElementTree import fromstring as xml_fromstring
from defusedxml.ElementTree import iterparse as xml_iterparse
from django.utils.translation import gettext as _
from openpyxl.utils.cell import coordinate_to_tuple, range_boundaries
from python_calamine import CalamineSheet, CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

from processors.spreadsheets.limits import (
    ImportLimits,
    SheetReader,
    SheetRow,
    SpreadsheetError,
    check_package_sizes,
    column_name,
    too_many_columns,
    too_many_rows,
)

if TYPE_CHECKING:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

WORKBOOK_EXTENSIONS = {".xlsx", ".xlsm"}

# A workbook has tens of parts; a zip directory of hundreds of thousands costs memory to list.
MAX_ZIP_MEMBERS = 10_000
# Far above any real register, far below what would cost memory to hold.
MAX_MERGED_RANGES = 100_000
# workbook.xml and its relationships are read whole; real ones are a few kilobytes.
MAX_INDEX_PART_BYTES = 8 * 1024 * 1024

_ZIP_DIRECTORY_ENTRY = b"PK\x01\x02"

_CHUNK_BYTES = 1024 * 1024
# Longer than any tag the byte scan looks for, namespace prefix included.
_OVERLAP_BYTES = 256
_DTD_MARKERS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("ascii", "utf-16-le", "utf-16-be")
)
_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"
_SHEET_DATA_START = re.compile(rb"<" + _PREFIX + rb"sheetData(?=[\s/>])")
_SHEET_DATA_END = re.compile(rb"</" + _PREFIX + rb"sheetData\s*>")
_ROW_TAG = re.compile(rb"<" + _PREFIX + rb"row(?=[\s/>])")
_ROW_NUMBER = re.compile(rb"[^>]*?\sr\s*=\s*[\"'](\d+)[\"']")
_FORMULA_TAG = re.compile(rb"<" + _PREFIX + rb"f(?=[\s/>])")
_SHARED_STRING_TAG = re.compile(rb"<" + _PREFIX + rb"si(?=[\s/>])")


# --- Workbooks: the zip package -------------------------------------------------------------------


def read_workbook(data: bytes, *, file_name: str = "", extension: str = ".xlsx") -> Iterator[SheetRow]:
    """Rows of every visible worksheet of an .xlsx workbook, values as Excel shows them."""
    limits = ImportLimits.from_settings()
    archive = _open_package(data, file_name=file_name, extension=extension, limits=limits)
    with archive:
        parts = _workbook_parts(archive, file_name=file_name)
        scans = _scan_parts(archive, parts, file_name=file_name, limits=limits)
    return _workbook_rows(data, scans, file_name=file_name, limits=limits)


def _damaged(file_name: str) -> SpreadsheetError:
    return SpreadsheetError(
        _("“%(name)s” is a damaged .xlsx file. Open it in Excel, save it again and upload it.")
        % {"name": file_name},
        code="damaged",
    )


def _open_package(data: bytes, *, file_name: str, extension: str, limits: ImportLimits) -> zipfile.ZipFile:
    """The zip package, once it is known to be a workbook whose directory promises nothing hostile."""
    if data.count(_ZIP_DIRECTORY_ENTRY) > MAX_ZIP_MEMBERS:
        raise SpreadsheetError(
            _("“%(name)s” holds more files than any workbook does; it was not opened.") % {"name": file_name},
            code="zip_members",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, NotImplementedError):
        raise _damaged(file_name) from None
    try:
        _check_package(archive, file_name=file_name, extension=extension, limits=limits)
    except BaseException:
        archive.close()
        raise
    return archive


def _check_package(archive: zipfile.ZipFile, *, file_name: str, extension: str, limits: ImportLimits) -> None:
    kind = _package_kind(archive)
    if kind != "xlsx":
        raise _foreign_package(kind, file_name)
    if extension not in WORKBOOK_EXTENSIONS:
        raise SpreadsheetError(
            _("“%(name)s” is an Excel workbook (.xlsx) with the wrong extension. Rename it to .xlsx.")
            % {"name": file_name},
            code="wrong_extension",
        )
    # The sizes come from the zip directory: nothing has been decompressed yet.
    members = [info for info in archive.infolist() if not info.is_dir()]
    check_package_sizes(
        members,
        file_name=file_name,
        limits=limits,
        unpacked_message=_(
            "“%(name)s” unpacks to %(size)s MB, more than the %(limit)s MB this register opens. Remove "
            "pictures and unused sheets, or split the table."
        ),
        bomb_message=_(
            "“%(name)s” looks like a zip bomb: its part “%(part)s” unpacks to %(ratio)s times its "
            "size (a workbook stays under %(limit)s). It was not opened."
        ),
    )


def _package_kind(archive: zipfile.ZipFile) -> str:
    names = set(archive.namelist())
    if any(name.lower().endswith("workbook.xml") for name in names):
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
        mimetype = archive.read("mimetype")
        if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
            return "ods"
        if mimetype.startswith(b"application/vnd.oasis.opendocument"):
            return "odf"
    return "zip"


def _foreign_package(kind: str, file_name: str) -> SpreadsheetError:
    messages = {
        "xlsb": _("“%(name)s” is an Excel binary workbook (.xlsb). Save it as .xlsx or .csv in Excel."),
        "docx": _("“%(name)s” is a Word document, not a spreadsheet. Save the table as .xlsx or .csv."),
        "pptx": _(
            "“%(name)s” is a PowerPoint presentation, not a spreadsheet. Save the table as .xlsx or .csv."
        ),
        "ods": _("“%(name)s” is an OpenDocument spreadsheet (.ods). Save it as .xlsx or .csv."),
        "odf": _("“%(name)s” is an OpenDocument file, not a spreadsheet. Save the table as .xlsx or .csv."),
        "zip": _(
            "“%(name)s” is a zip archive, not an Excel workbook. Upload the .xlsx or .csv file itself, "
            "not an archive of it."
        ),
    }
    return SpreadsheetError(messages[kind] % {"name": file_name}, code=kind)


# --- Workbooks: which parts are sheets ------------------------------------------------------------


@dataclass(frozen=True)
class _SheetPart:
    name: str
    path: str


@dataclass(frozen=True)
class _WorkbookParts:
    sheets: list[_SheetPart]
    shared_strings: str = ""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _resolve(base: str, target: str) -> str:
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), target))


def _small_part(archive: zipfile.ZipFile, path: str, *, file_name: str) -> Element | None:
    try:
        info = archive.getinfo(path)
    except KeyError:
        return None
    if info.file_size > MAX_INDEX_PART_BYTES:
        raise _damaged(file_name)
    try:
        return xml_fromstring(archive.read(info))
    except DefusedXmlException:
        raise _entities_refused(file_name, path) from None
    except (ParseError, zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError):
        raise _damaged(file_name) from None


def _relationships(archive: zipfile.ZipFile, part: str, *, file_name: str) -> list[tuple[str, str, str]]:
    """(id, type, resolved target) of a part's internal relationships; part "" is the package."""
    rels = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    root = _small_part(archive, rels, file_name=file_name)
    if root is None:
        return []
    return [
        (element.get("Id", ""), element.get("Type", ""), _resolve(part, element.get("Target", "")))
        for element in root
        if _local(element.tag) == "Relationship" and element.get("TargetMode") != "External"
    ]


def _workbook_parts(archive: zipfile.ZipFile, *, file_name: str) -> _WorkbookParts:
    """The worksheet parts by sheet name, found through the relationships as Excel and openpyxl do."""
    workbook = "xl/workbook.xml"
    for _id, rel_type, target in _relationships(archive, "", file_name=file_name):
        if rel_type.endswith("/officeDocument"):
            workbook = target
    root = _small_part(archive, workbook, file_name=file_name)
    if root is None:
        raise _damaged(file_name)
    worksheets: dict[str, str] = {}
    shared_strings = ""
    for rel_id, rel_type, target in _relationships(archive, workbook, file_name=file_name):
        if rel_type.endswith("/worksheet"):
            worksheets[rel_id] = target
        elif rel_type.endswith("/sharedStrings"):
            shared_strings = target
    sheets = []
    for element in root.iter():
        if _local(element.tag) != "sheet":
            continue
        rel_id = next((value for key, value in element.attrib.items() if _local(key) == "id"), "")
        if rel_id in worksheets:
            sheets.append(_SheetPart(name=element.get("name", ""), path=worksheets[rel_id]))
    return _WorkbookParts(sheets=sheets, shared_strings=shared_strings)


# --- Workbooks: the streaming pass ----------------------------------------------------------------


@dataclass
class _SheetScan:
    """What the byte pass over one worksheet part found."""

    path: str
    merges: list[tuple[int, int, int]] = field(default_factory=list)  # (column index, first row, last row)
    has_formulas: bool = False
    rows: int = 0


class _MergeCollector:
    """A parser target that keeps the vertical merges of a sheet (its rows are not fed to it)."""

    def __init__(self, sheet: str, limits: ImportLimits) -> None:
        self.sheet = sheet
        self.limits = limits
        self.count = 0
        self.merges: list[tuple[int, int, int]] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if _local(tag) != "mergeCell":
            return
        self.count += 1
        if self.count > MAX_MERGED_RANGES:
            raise SpreadsheetError(
                _("This sheet has more than %(count)s merged ranges. Unmerge the cells and save it again.")
                % {"count": f"{MAX_MERGED_RANGES:,}"},
                sheet=self.sheet,
                code="too_many_merges",
            )
        try:
            min_col, min_row, _max_col, max_row = range_boundaries(attrib.get("ref", ""))
        except (ValueError, TypeError):
            return  # openpyxl ignores what it cannot read as a range, and so do we
        if min_row is None or max_row is None or min_col is None or min_row >= max_row:
            return
        if min_row <= self.limits.last_row and min_col <= self.limits.max_columns:
            self.merges.append((min_col - 1, min_row, max_row))

    def close(self) -> None:
        return None


def _entities_refused(file_name: str, part: str = "") -> SpreadsheetError:
    # The "part" is known when our own scan finds the declaration, not when openpyxl's defusedxml does.
    message = (
        _(
            "“%(name)s” contains an XML document type declaration (in “%(part)s”). Excel never writes one, "
            "and it can hide an entity-expansion (“billion laughs”) attack, so the file was not opened. "
            "Open it in Excel and save it as .xlsx again."
        )
        if part
        else _(
            "“%(name)s” contains an XML document type declaration. Excel never writes one, and it can hide "
            "an entity-expansion (“billion laughs”) attack, so the file was not opened. Open it in Excel "
            "and save it as .xlsx again."
        )
    )
    return SpreadsheetError(message % {"name": file_name, "part": part}, code="xml_entities")


def _scan_parts(
    archive: zipfile.ZipFile, parts: _WorkbookParts, *, file_name: str, limits: ImportLimits
) -> dict[str, _SheetScan]:
    """Stream every XML part once: refuse DTDs, count rows and shared strings, note merges and formulas."""
    sheets = {sheet.path: sheet.name for sheet in parts.sheets}
    scans: dict[str, _SheetScan] = {}
    for info in archive.infolist():
        # Sheets are scanned whatever their names end with, as openpyxl finds them by relationship.
        known = info.filename in sheets or info.filename == parts.shared_strings
        if info.is_dir() or not (known or info.filename.lower().endswith((".xml", ".rels", ".vml"))):
            continue
        try:
            with archive.open(info) as stream:
                chunks = iter(lambda stream=stream: stream.read(_CHUNK_BYTES), b"")
                checked = _refusing_dtds(chunks, file_name=file_name, part=info.filename)
                if info.filename in sheets:
                    name = sheets[info.filename]
                    scans[name] = _scan_sheet(
                        checked, path=info.filename, sheet=name, file_name=file_name, limits=limits
                    )
                elif info.filename == parts.shared_strings:
                    _count_shared_strings(checked, file_name=file_name, limits=limits)
                else:
                    for _chunk in checked:
                        pass
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            ValueError,
            NotImplementedError,
            RuntimeError,
            OSError,
        ):
            # A CRC mismatch (a directory that lied about a size), an encrypted or unknown compression.
            raise _damaged(file_name) from None
    return scans


def _refusing_dtds(chunks: Iterable[bytes], *, file_name: str, part: str) -> Iterator[bytes]:
    previous = b""
    for chunk in chunks:
        window = previous[-_OVERLAP_BYTES:] + chunk
        if any(marker in window for marker in _DTD_MARKERS):
            raise _entities_refused(file_name, part)
        previous = chunk
        yield chunk


def _count_shared_strings(chunks: Iterable[bytes], *, file_name: str, limits: ImportLimits) -> None:
    # openpyxl holds every shared string in memory; a sheet within the limits cannot use more.
    ceiling = limits.last_row * limits.max_columns
    count = 0
    for window, cut in _windows(chunks):
        count += sum(1 for match in _SHARED_STRING_TAG.finditer(window) if match.start() < cut)
        if count > ceiling:
            raise SpreadsheetError(
                _(
                    "“%(name)s” holds more texts than a sheet within this register's limits can use; it was "
                    "not opened."
                )
                % {"name": file_name},
                code="too_many_strings",
            )


def _windows(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """(window, cut): count matches starting before cut; the bytes from cut on come again next time."""
    carry = b""
    for chunk in chunks:
        window = carry + chunk
        cut = max(len(window) - _OVERLAP_BYTES, 0)
        yield window, cut
        carry = window[cut:]
    if carry:
        yield carry, len(carry)


def _scan_sheet(
    chunks: Iterable[bytes], *, path: str, sheet: str, file_name: str, limits: ImportLimits
) -> _SheetScan:
    """Count rows and look for formulas in <sheetData> as bytes; parse what surrounds it for merges."""
    scan = _SheetScan(path=path)
    collector = _MergeCollector(sheet, limits)
    parser = DefusedXMLParser(target=collector, forbid_dtd=True)
    head = b""
    in_data = False
    after_data = False
    carry = b""

    def feed(data: bytes) -> None:
        try:
            parser.feed(data)
        except DefusedXmlException:
            raise _entities_refused(file_name, path) from None
        except ParseError:
            raise _damaged(file_name) from None

    for chunk in chunks:
        if after_data:
            feed(chunk)
            continue
        if not in_data:
            head += chunk
            match = _SHEET_DATA_START.search(head)
            end_of_tag = head.find(b">", match.end()) if match else -1
            if end_of_tag < 0:
                if len(head) > MAX_INDEX_PART_BYTES:
                    raise _damaged(file_name)
                continue
            start_tag = head[match.start() : end_of_tag + 1]
            empty = start_tag.endswith(b"/>")
            # The document without its rows: what precedes <sheetData>, an empty one, and what follows.
            feed(head[: match.start()] + (start_tag if empty else start_tag[:-1] + b"/>"))
            rest = head[end_of_tag + 1 :]
            head = b""
            if empty:
                after_data = True
                feed(rest)
                continue
            in_data = True
            chunk = rest
        window = carry + chunk
        end = _SHEET_DATA_END.search(window)
        cut = end.start() if end else max(len(window) - _OVERLAP_BYTES, 0)
        for match in _ROW_TAG.finditer(window, 0, end.start() if end else len(window)):
            if match.start() >= cut:
                break
            scan.rows += 1
            if scan.rows > limits.last_row:
                number = _ROW_NUMBER.match(window, match.end())
                raise too_many_rows(
                    limits, sheet=sheet, row=int(number.group(1)) if number else scan.rows, workbook=True
                )
        if not scan.has_formulas and _FORMULA_TAG.search(window, 0, end.start() if end else len(window)):
            scan.has_formulas = True
        if end:
            in_data = False
            after_data = True
            feed(window[end.end() :])
        else:
            carry = window[cut:]
    if head:
        feed(head)  # a sheet without <sheetData>: all of it is "around" the rows
    try:
        parser.close()
    except DefusedXmlException:
        raise _entities_refused(file_name, path) from None
    except ParseError:
        raise _damaged(file_name) from None
    scan.merges = collector.merges
    return scan


_COLUMN_LETTERS = re.compile(r"\s*([A-Za-z]+)")


def _first_cell_past(stream: BinaryIO, max_columns: int, last_row: int) -> tuple[int, int] | None:
    """(row, width) of the first row with a cell right of column ``max_columns``, by reference or count.

    openpyxl computes a letter or an index for every cell and fails with a bare ValueError past column
    18,278 (ZZZ); this pass finds a too-wide row first, so that it is refused where it is.
    """
    row = column = widest = 0
    for event, element in xml_iterparse(stream, events=("start", "end")):
        name = _local(element.tag)
        if event == "start":
            if name == "row":
                number = (element.get("r") or "").strip()
                row, column, widest = (int(number) if number.isdigit() else row + 1), 0, 0
                if row > last_row:
                    return None  # the rows past the limit are refused as too many, where they start
            continue
        if name == "c":
            letters = _COLUMN_LETTERS.match(element.get("r") or "")
            column = _column_number(letters.group(1)) if letters else column + 1
            widest = max(widest, column)
            element.clear()
        elif name == "row":
            if widest > max_columns:
                return row, widest  # the whole row is read, so the message gives its real width
            element.clear()
    return (row, widest) if widest > max_columns else None


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _first_formula_without_value(stream: BinaryIO) -> tuple[int, int] | None:
    """(row, column) of the first cell with a formula and no cached value, in document order."""
    row = column = 0
    for event, element in xml_iterparse(stream, events=("start", "end")):
        name = _local(element.tag)
        if event == "start":
            if name == "row":
                row = int(element.get("r") or row + 1)
                column = 0
            continue
        if name == "c":
            reference = element.get("r")
            row, column = coordinate_to_tuple(reference) if reference else (row, column + 1)
            children = {_local(child.tag): child.text for child in element}
            # Libraries write an empty <v/> after a formula they cannot compute; Excel writes an empty
            # <v></v> only for a formula whose result is the empty string, and marks it t="str".
            if "f" in children and not children.get("v") and element.get("t") != "str":
                return row, column
            element.clear()
        elif name == "row":
            element.clear()
    return None


# --- Workbooks: rows ------------------------------------------------------------------------------


def _workbook_rows(
    data: bytes, scans: dict[str, _SheetScan], *, file_name: str, limits: ImportLimits
) -> Iterator[SheetRow]:
    try:
        workbook = _calamine(CalamineWorkbook.from_filelike, io.BytesIO(data))
        titles = [
            sheet.name
            for sheet in workbook.sheets_metadata
            if sheet.typ == SheetTypeEnum.WorkSheet and sheet.visible == SheetVisibleEnum.Visible
        ]
    except _CalamineFailure:
        # openpyxl says what is wrong with a package calamine cannot open, in the words users already get.
        yield from _openpyxl_rows(data, scans, file_name=file_name, limits=limits)
        return
    with workbook:
        for title in titles:
            scan = scans.get(title)
            if scan is None:
                raise _damaged(file_name)  # calamine found a sheet the relationships did not name
            _refuse_formula_without_value(data, title, scan)
            sheet = _calamine_sheet(data, workbook, title, scan, limits=limits)
            if sheet is None:
                yield from _openpyxl_rows(data, scans, file_name=file_name, limits=limits, only=title)
                continue
            try:
                yield from SheetReader(title, limits, scan.merges).rows(_calamine_cells(sheet, title, limits))
            except _CalamineFailure as error:
                raise _unreadable(file_name, error) from None


class _CalamineFailure(Exception):
    """What calamine raised, or a Rust panic (a BaseException, so never caught by ``except Exception``)."""


def _calamine(function, *args):
    try:
        return function(*args)
    except Exception as error:  # CalamineError and its kinds, or whatever the Rust side let through
        raise _CalamineFailure(str(error)) from error
    except BaseException as error:
        if type(error).__name__ != "PanicException":
            raise
        raise _CalamineFailure(str(error)) from error


def _unreadable(file_name: str, error: BaseException) -> SpreadsheetError:
    return SpreadsheetError(
        _("“%(name)s” cannot be read as an .xlsx workbook (%(reason)s).")
        % {"name": file_name, "reason": error},
        code="unreadable",
    )


# Separate searches, each starting with a literal so that re skips ahead quickly: one combined pattern
# took a third of a second on a 9 MB sheet, these take a tenth together. A false alarm costs only speed.
_ERROR_CELL = re.compile(rb"t\s*=\s*[\"']e[\"']")
# calamine holds every number as a float; openpyxl keeps an integer past 2**53 (an 18-digit ID number a
# library wrote) exact.
_LONG_INTEGER = re.compile(rb"v>\s*[-+]?[0-9]{16,}\s*<")
_CELL_WITHOUT_REFERENCE = (
    re.compile(rb"<c(?=[\s/>])(?![^>]*\sr\s*=)"),
    re.compile(rb":c(?=[\s/>])(?![^>]*\sr\s*=)"),  # the same, namespace-prefixed
)


@functools.lru_cache(maxsize=8)
def _beyond_calamine(last_row: int, max_columns: int) -> tuple[re.Pattern[bytes], ...]:
    """What calamine would not read as openpyxl did, or would hold in memory before our limits see it.

    calamine builds a sheet as one rectangle from its cells' references, so a single reference far down
    or right would cost rows times columns before a row is checked, and a cell without a reference has a
    place only by counting. It reads #N/A and the other classic error cells as empty and refuses the
    newer ones (#SPILL!, #CALC!...), where openpyxl reads the text Excel shows. Such a sheet is rare and
    is read by openpyxl, as every sheet was before.
    """
    column_beyond = _letters_after(column_name(max_columns))
    row_beyond = _number_above(last_row)
    reference_beyond = re.compile(
        rb"r\s*=\s*[\"']\s*(?:(?:" + column_beyond + rb")[0-9]|[A-Za-z]*0*(?:" + row_beyond + rb")(?![0-9]))"
    )
    return (_ERROR_CELL, _LONG_INTEGER, *_CELL_WITHOUT_REFERENCE, reference_beyond)


def _letters_after(column: str) -> bytes:
    """A pattern for the column letters after column: more letters, or as many and later in A-Z."""
    options = [f"[A-Za-z]{{{len(column) + 1},}}"]
    for index, letter in enumerate(column):
        if letter != "Z":
            after = chr(ord(letter) + 1)
            later = f"[{after}-Z{after.lower()}-z]"
            same = "".join(f"[{earlier}{earlier.lower()}]" for earlier in column[:index])
            options.append(f"{same}{later}[A-Za-z]{{{len(column) - index - 1}}}")
    return "|".join(options).encode("ascii")


def _number_above(limit: int) -> bytes:
    """A pattern for the numbers above limit, written without leading zeros."""
    digits = str(limit)
    options = [f"[1-9][0-9]{{{len(digits)},}}"]
    for index, digit in enumerate(digits):
        if digit != "9":
            options.append(f"{digits[:index]}[{int(digit) + 1}-9][0-9]{{{len(digits) - index - 1}}}")
    return "|".join(options).encode("ascii")


def _calamine_sheet(
    data: bytes, workbook: CalamineWorkbook, title: str, scan: _SheetScan, *, limits: ImportLimits
) -> CalamineSheet | None:
    """The sheet as calamine reads it, or None where openpyxl must read it to give what it always gave."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        part = archive.read(scan.path)  # already read once by our own pass, so known to be sound
    if any(pattern.search(part) for pattern in _beyond_calamine(limits.last_row, limits.max_columns)):
        return None
    try:
        return _calamine(workbook.get_sheet_by_name, title)
    except _CalamineFailure:
        return None  # openpyxl reads it, or refuses it with the reason users have always been given


def _calamine_cells(
    sheet: CalamineSheet, title: str, limits: ImportLimits
) -> Iterator[tuple[int, list[str]]]:
    start = sheet.start
    if start is None:
        return  # an empty sheet; calamine panics when asked for its rows
    # calamine's rows begin at row 1 but at the first column that holds a value.
    leading = [""] * start[1]
    rows = _calamine(sheet.iter_rows)
    for number, values in enumerate(rows, start=1):
        if number > limits.last_row:
            raise too_many_rows(limits, sheet=title, row=number, workbook=True)
        cells = leading + [cell_text(value) for value in values]
        # A row ends at its last value, as openpyxl's did for rows without formatted empty cells.
        while cells and not cells[-1]:
            cells.pop()
        yield number, cells


def _refuse_formula_without_value(data: bytes, title: str, scan: _SheetScan) -> None:
    if not scan.has_formulas:
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(scan.path) as stream:
        uncomputed = _first_formula_without_value(stream)
    if uncomputed is not None:
        raise SpreadsheetError(
            _(
                "This cell holds a formula without a computed value — open and save the file in Excel, "
                "or paste values instead of formulas."
            ),
            sheet=title,
            row=uncomputed[0],
            column=column_name(uncomputed[1]),
            code="formula_without_value",
        )


def _openpyxl_rows(
    data: bytes, scans: dict[str, _SheetScan], *, file_name: str, limits: ImportLimits, only: str = ""
) -> Iterator[SheetRow]:
    """Rows as openpyxl's read-only mode reads them: of every visible sheet, or of the one named."""
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a broken or foreign package
        if _caused_by_entities(error):
            raise _entities_refused(file_name) from None
        raise _unreadable(file_name, error) from error
    try:
        for worksheet in workbook.worksheets:
            if worksheet.sheet_state != "visible" or (only and worksheet.title != only):
                continue
            scan = scans.get(worksheet.title)
            if scan is None:
                raise _damaged(file_name)  # openpyxl found a sheet the relationships did not name
            yield from _openpyxl_worksheet_rows(data, worksheet, scan, limits=limits)
            if only:
                return
        if only:
            raise _damaged(file_name)  # calamine found a visible sheet that openpyxl does not
    except SpreadsheetError:
        raise
    except Exception as error:  # a part that is damaged, found only when its rows are read
        if _caused_by_entities(error):
            raise _entities_refused(file_name) from None
        raise _unreadable(file_name, error) from error
    finally:
        workbook.close()


def _caused_by_entities(error: BaseException | None) -> bool:
    # openpyxl wraps what its parser raised in a ValueError of its own; defusedxml's refusal is inside.
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, DefusedXmlException):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _openpyxl_worksheet_rows(
    data: bytes, worksheet: "ReadOnlyWorksheet", scan: _SheetScan, *, limits: ImportLimits
) -> Iterator[SheetRow]:
    title = worksheet.title
    with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(scan.path) as stream:
        past = _first_cell_past(stream, limits.max_columns, limits.last_row)
    if past is not None:
        raise too_many_columns(limits, sheet=title, row=past[0], width=past[1])
    _refuse_formula_without_value(data, title, scan)
    # The stored dimension can be wrong: too small, openpyxl would stop early; too large, it would pad
    # every row out to it. Without it, each row is as long as its last cell.
    worksheet.reset_dimensions()

    def numbered_cells() -> Iterator[tuple[int, list[str]]]:
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if number > limits.last_row:
                raise too_many_rows(limits, sheet=title, row=number, workbook=True)
            yield number, [cell_text(value) for value in values]

    yield from SheetReader(title, limits, scan.merges).rows(numbered_cells())


def cell_text(value: object) -> str:
    """A workbook value as the text a person sees: 95534 not 95534.0, dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        # Excel shows at most 15 significant digits: 0.1 + 0.2 is "0.3" there, and so here.
        return str(int(value)) if value.is_integer() else format(value, ".15g")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)
