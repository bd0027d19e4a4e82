"""Readers: rows of cell strings from .xlsx, .csv/.tsv (UTF-8, UTF-16 or GB18030) and pasted text.

Every reader yields ``SheetRow(sheet, number, cells)`` with the row number a spreadsheet program
shows, so that a problem can be located by a person looking at the file. Anything this module cannot
read honestly (legacy .xls, an encrypted workbook, an image or a binary renamed to .csv, a file in two
encodings, an empty file) is refused with a ``SpreadsheetError`` that says what the file is and what to
do, rather than guessed at.

Uploads are untrusted, so a file is refused before it can cost memory or time (limits in settings,
``REGISTER_IMPORT_*``, read by ``limits.ImportLimits``): first the file's size, then, by its first bytes,
what it really is. A workbook is read by ``xlsx`` (its package checked before anything is inflated);
a text file's rows are checked as they are produced (``limits.SheetReader``), and the row, column and
cell-length limits stop reading at the first row past them.
"""

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from django.utils.translation import gettext as _

from processors.spreadsheets.limits import (
    ImportLimits,
    SheetReader,
    SheetRow,
    SpreadsheetError,
    megabytes,
    too_many_rows,
)
from processors.spreadsheets.records import record_tables
from processors.spreadsheets.table_grid import FoundTable
from processors.spreadsheets.tables import (
    DOCUMENT_EXTENSIONS,
    document_kind,
    find_tables,
    likeliest,
    text_is_document,
)
from processors.spreadsheets.xlsx import WORKBOOK_EXTENSIONS, read_workbook

TEXT_EXTENSIONS = {".csv", ".tsv", ".txt"}

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Office stores a password-protected .xlsx as an OLE2 file holding this stream.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_WORD_DOCUMENT = "WordDocument".encode("utf-16-le")
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
_PDF_MAGIC = b"%PDF-"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


# --- Entry points ---------------------------------------------------------------------------------


class DocumentRows:
    """The rows of the table chosen in a document, with every table the document offers."""

    def __init__(self, tables: list[FoundTable], chosen: FoundTable, rows: Iterator[SheetRow]) -> None:
        self.tables = tables
        self.chosen = chosen
        self._rows = rows

    def __iter__(self) -> "DocumentRows":
        return self

    def __next__(self) -> SheetRow:
        return next(self._rows)


def read_rows(
    source: Path | str | bytes | BinaryIO, *, file_name: str = "", table: int | None = None
) -> Iterator[SheetRow]:
    """Rows of a file (path, bytes or binary file object) or of pasted text (a str), skipping empty rows.

    A document (HTML, Markdown, Word, a policy text) gives the rows of its likeliest table, or of
    ``table`` (a ``FoundTable.index``); the ``DocumentRows`` it returns lists every table it offers.
    """
    limits = ImportLimits.from_settings()
    if isinstance(source, str):
        return read_pasted_text(source)
    if isinstance(source, Path):
        file_name = file_name or source.name
        _check_size(source.stat().st_size, file_name, limits)
        data = source.read_bytes()
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        # One byte past the limit is enough to know the file is over it.
        data = source.read(limits.max_bytes + 1)
    return read_bytes(data, file_name=file_name, table=table)


def read_bytes(data: bytes, *, file_name: str, table: int | None = None) -> Iterator[SheetRow]:
    """Rows of a file's content; the format comes from the content, checked against the file name."""
    limits = ImportLimits.from_settings()
    _check_size(len(data), file_name, limits)
    if not data or data.isspace():
        raise SpreadsheetError(_("The file “%(name)s” is empty.") % {"name": file_name}, code="empty")
    extension = Path(file_name).suffix.lower()
    _refuse_foreign_formats(data, file_name)
    tables = document_tables(data, file_name=file_name)
    if tables is not None:
        return _document_rows(tables, file_name=file_name, index=table)
    if data.startswith(_ZIP_MAGIC):
        return read_workbook(data, file_name=file_name, extension=extension)
    if extension in WORKBOOK_EXTENSIONS:
        raise SpreadsheetError(
            _(
                "“%(name)s” is not an .xlsx workbook: its content is not the zip package an .xlsx file is. "
                "Open it in Excel and save it as .xlsx or .csv."
            )
            % {"name": file_name},
            code="not_a_workbook",
        )
    if extension not in TEXT_EXTENSIONS:
        raise SpreadsheetError(
            _("“%(name)s” is not a spreadsheet this register reads. Use .xlsx, .csv or .tsv.")
            % {"name": file_name},
            code="unknown_format",
        )
    encoding = detect_encoding(data, file_name=file_name)
    sample = data[:65536].decode(encoding, errors="ignore")
    delimiter = "\t" if extension == ".tsv" else _guess_delimiter(sample)
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
    return SheetReader("", limits).rows(_delimited_cells(stream, delimiter=delimiter, limits=limits))


def document_tables(data: bytes, *, file_name: str) -> list[FoundTable] | None:
    """Every table a document offers (grids, then record-form lists), or None for a spreadsheet file.

    A .txt is a document only when it is prose with a table inside (``tables.text_is_document``);
    otherwise it is a tab-separated table file.
    """
    extension = Path(file_name).suffix.lower()
    kind = document_kind(data, file_name=file_name)
    is_word = kind == "docx" and extension not in WORKBOOK_EXTENSIONS
    if extension not in DOCUMENT_EXTENSIONS and extension != ".txt" and not is_word:
        return None
    encoding = None if kind == "docx" else detect_encoding(data, file_name=file_name)
    if extension == ".txt" and not text_is_document(data.decode(encoding)):
        return None
    tables = find_tables(data, file_name=file_name, encoding=encoding)
    if kind in ("html", "markdown"):
        following = max((found.index for found in tables), default=-1) + 1
        tables += record_tables(
            data.decode(encoding), file_name=file_name, html=kind == "html", first_index=following
        )
    return tables


def _document_rows(tables: list[FoundTable], *, file_name: str, index: int | None) -> DocumentRows:
    if index is None:
        chosen = likeliest(tables)
        if chosen is None:
            raise SpreadsheetError(
                _(
                    "No table was found in “%(name)s”: nothing in it has rows and columns or a list of "
                    "“name: value” records. Copy the table into a spreadsheet and upload that."
                )
                % {"name": file_name},
                code="no_table",
            )
    else:
        chosen = next((found for found in tables if found.index == index), None)
        if chosen is None:
            raise SpreadsheetError(
                _("“%(name)s” has no table number %(number)s.") % {"name": file_name, "number": index + 1},
                code="no_such_table",
            )
    reader = SheetReader("", ImportLimits.from_settings())
    return DocumentRows(tables, chosen, reader.rows(enumerate(([*row] for row in chosen.rows), start=1)))


def read_pasted_text(text: str) -> Iterator[SheetRow]:
    """Rows of text pasted from a spreadsheet or a web page (tab-separated; comma-separated if no tabs)."""
    limits = ImportLimits.from_settings()
    if not text.strip():
        raise SpreadsheetError(_("Nothing was pasted."), code="empty")
    _check_size(len(text.encode("utf-8")), _("the pasted text"), limits)
    text = text.lstrip("\ufeff")
    delimiter = "\t" if "\t" in text[:65536] else ","
    stream = io.StringIO(text, newline="")
    return SheetReader("", limits).rows(_delimited_cells(stream, delimiter=delimiter, limits=limits))


def _check_size(size: int, file_name: str, limits: ImportLimits) -> None:
    if size > limits.max_bytes:
        raise SpreadsheetError(
            _(
                "“%(name)s” is larger than %(limit)s MB, the most this register imports at once. "
                "Split the table into smaller files."
            )
            % {"name": file_name, "limit": megabytes(limits.max_bytes)},
            code="too_large",
        )


def _refuse_foreign_formats(data: bytes, file_name: str) -> None:
    """Refuse, by their first bytes, the files people upload by mistake, naming what they are."""
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise SpreadsheetError(
                _(
                    "“%(name)s” is password-protected. Remove the password in Excel (File › Info › Protect "
                    "Workbook), save it as .xlsx and upload it again."
                )
                % {"name": file_name},
                code="encrypted",
            )
        if _WORD_DOCUMENT in data:
            raise SpreadsheetError(
                _("“%(name)s” is a Word document, not a spreadsheet. Save the table as .xlsx or .csv.")
                % {"name": file_name},
                code="word_document",
            )
        raise SpreadsheetError(
            _(
                "“%(name)s” is an old Excel 97-2003 workbook (.xls). Open it in Excel, save it as .xlsx "
                "or .csv and upload it again."
            )
            % {"name": file_name},
            code="xls",
        )
    for magic, kind in _IMAGE_MAGIC:
        if data.startswith(magic):
            raise SpreadsheetError(
                _(
                    "“%(name)s” is a %(kind)s image, not a spreadsheet. Upload the table itself, saved as "
                    ".xlsx or .csv."
                )
                % {"name": file_name, "kind": kind},
                code="image",
            )
    if data.startswith(_PDF_MAGIC):
        raise SpreadsheetError(
            _(
                "“%(name)s” is a PDF document, not a spreadsheet. Export the table from where it was made "
                "as .xlsx or .csv."
            )
            % {"name": file_name},
            code="pdf",
        )


# --- Text: encodings ------------------------------------------------------------------------------


def detect_encoding(data: bytes, *, file_name: str = "") -> str:
    """The encoding of a text file: UTF-16 by its BOM, else strict UTF-8 (BOM or not), else GB18030.

    GB18030 is a superset of GBK, which Excel in China uses for "CSV". A file that is partly UTF-8 and
    partly GBK (lines pasted from two sources) is refused rather than decoded as mojibake.
    """
    if data.startswith(_UTF16_BOMS):
        # Excel's "Unicode text" export is UTF-16 with a BOM.
        try:
            data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise _undecodable(data, error.start, file_name) from None
        return "utf-16"
    try:
        data.decode("utf-8")  # a check only: the rows are decoded again, streaming
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8-sig"
    bom = data.startswith(codecs.BOM_UTF8)
    lines = _classify_lines(data[len(codecs.BOM_UTF8) :] if bom else data)
    if lines.broken is not None:
        number, utf8_offset, gbk_offset = lines.broken
        # Where the damage is depends on what the file meant to be: UTF-8 if any line surely is.
        offset = utf8_offset if (bom or lines.utf8) else gbk_offset
        raise _undecodable(data, offset + (len(codecs.BOM_UTF8) if bom else 0), file_name)
    if bom:
        raise SpreadsheetError(
            _(
                "“%(name)s” starts with a UTF-8 byte-order mark, but line %(line)s is not UTF-8 (it looks "
                "like GBK). Save the whole file again as “CSV UTF-8”."
            )
            % {"name": file_name, "line": lines.gbk[0]},
            code="encoding_bom_mismatch",
        )
    if lines.utf8 and lines.gbk:
        # The line to name is the first one in the minority encoding: that is the one pasted in.
        main, odd, line = (
            ("UTF-8", "GBK", lines.gbk[0])
            if len(lines.utf8) >= len(lines.gbk)
            else ("GBK", "UTF-8", lines.utf8[0])
        )
        raise SpreadsheetError(
            _(
                "“%(name)s” mixes two text encodings: most of it is %(main)s, but line %(line)s is %(odd)s. "
                "Save the whole file again as “CSV UTF-8” (or as .xlsx)."
            )
            % {"name": file_name, "main": main, "odd": odd, "line": line},
            code="encoding_mixed",
        )
    return "gb18030"


def decode_text(data: bytes, *, file_name: str = "") -> str:
    """Decode a whole text file with the encoding ``detect_encoding`` finds."""
    return data.decode(detect_encoding(data, file_name=file_name))


def _undecodable(data: bytes, offset: int, file_name: str) -> SpreadsheetError:
    return SpreadsheetError(
        _(
            "“%(name)s” is not text in UTF-8 or GBK: the byte at offset %(offset)s (line %(line)s) is "
            "invalid in both. If it is a spreadsheet, save it as “CSV UTF-8” or as .xlsx."
        )
        % {"name": file_name, "offset": offset, "line": _line_of(data, offset)},
        code="encoding_invalid",
    )


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


class _Lines(NamedTuple):
    utf8: list[int]  # lines that are surely UTF-8
    gbk: list[int]  # lines that are not UTF-8 but are GBK (GB18030)
    broken: tuple[int, int, int] | None  # the first line that is neither: (line, UTF-8 offset, GBK offset)


def _classify_lines(data: bytes) -> _Lines:
    """Which lines are in which encoding.

    A GBK line is sometimes valid UTF-8 by accident, but then it decodes to two-byte characters (Latin,
    Cyrillic...); only a line with a three-byte UTF-8 character (Chinese among them) counts as UTF-8.
    A newline byte never occurs inside a GBK or UTF-8 character, so splitting on it is safe.
    """
    utf8: list[int] = []
    gbk: list[int] = []
    start = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        line_start, start = start, start + len(line) + 1
        if line.isascii():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as utf8_error:
            try:
                line.decode("gb18030")
            except UnicodeDecodeError as gbk_error:
                return _Lines(
                    utf8, gbk, (number, line_start + utf8_error.start, line_start + gbk_error.start)
                )
            gbk.append(number)
            continue
        if any(ord(char) >= 0x800 for char in text):
            utf8.append(number)
    return _Lines(utf8, gbk, None)


def _guess_delimiter(sample: str) -> str:
    # The header is the first line with a delimiter; title lines above it have none.
    for line in sample.lstrip("\ufeff").splitlines():
        tabs, commas = line.count("\t"), line.count(",")
        if tabs or commas:
            return "\t" if tabs >= commas else ","
    return ","


# --- Text: rows -----------------------------------------------------------------------------------


def _delimited_cells(
    stream: io.TextIOBase, *, delimiter: str, limits: ImportLimits
) -> Iterator[tuple[int, list[str]]]:
    """Numbered records of a CSV/TSV stream; a record with a line break in a quoted cell is one row."""
    # strict: a quote left open would otherwise swallow the rest of the file into one cell, silently.
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    number = 0
    while True:
        first_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _csv_error(str(error), row=number + 1, line=first_line, limits=limits) from None
        number += 1
        if number > limits.last_row:
            raise too_many_rows(limits, sheet="", row=number)
        yield number, cells


def _csv_error(reason: str, *, row: int, line: int, limits: ImportLimits) -> SpreadsheetError:
    if "unexpected end of data" in reason:
        message = _(
            'A quoted cell that starts on line %(line)s is never closed: a closing quote (") is missing. '
            "Add it, or save the file again from Excel."
        ) % {"line": line}
        code = "unterminated_quote"
    elif "field larger than field limit" in reason:
        # The csv module's own ceiling (131,072 characters) is met first when a cell is huge.
        message = _(
            "A cell in this row is longer than %(limit)s characters, or a quote opened on line %(line)s "
            "is never closed."
        ) % {"limit": f"{limits.max_cell_chars:,}", "line": line}
        code = "cell_too_long"
    elif "expected after" in reason:
        message = _(
            'A closing quote (") is followed by more text in this row (line %(line)s). Put the whole cell '
            'in quotes and double each quote inside it ("").'
        ) % {"line": line}
        code = "stray_quote"
    else:
        message = _("Line %(line)s cannot be read as CSV (%(reason)s).") % {"line": line, "reason": reason}
        code = "csv"
    return SpreadsheetError(message, row=row, code=code)
