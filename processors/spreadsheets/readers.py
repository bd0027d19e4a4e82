"""Readers: rows of cell strings from .xlsx, .csv/.tsv (UTF-8, UTF-16 or GB18030) and pasted text.

Every reader yields ``SheetRow(sheet, number, cells)`` with the row number a spreadsheet program
shows, so that a problem can be located by a person looking at the file. Anything this module cannot
read honestly (legacy .xls, an encrypted workbook, a binary renamed to .csv, an empty file) is refused
with a ``SpreadsheetError`` rather than guessed at.
"""

import csv
import datetime
import io
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, NamedTuple

from django.conf import settings
from django.utils.translation import gettext as _

# Overridable in settings; generous for a register, small enough that a stray upload cannot hurt.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_ROWS = 20_000
# An .xlsx is a zip: its unpacked size is what openpyxl holds, so a zip bomb is stopped here.
DEFAULT_MAX_UNPACKED_BYTES = 200 * 1024 * 1024

TEXT_EXTENSIONS = {".csv", ".tsv", ".txt"}
WORKBOOK_EXTENSIONS = {".xlsx", ".xlsm"}

_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Office stores a password-protected .xlsx as an OLE2 file holding this stream.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


class SpreadsheetError(Exception):
    """A file or cell that cannot be imported, with where it is and what to do about it."""

    def __init__(self, message: str, *, sheet: str = "", row: int | None = None, column: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.sheet = sheet
        self.row = row
        self.column = column

    def __str__(self) -> str:
        where = location_text(sheet=self.sheet, row=self.row, column=self.column)
        return f"{where}: {self.message}" if where else self.message


class SheetRow(NamedTuple):
    sheet: str
    number: int
    cells: list[str]


def location_text(*, sheet: str = "", row: int | None = None, column: str = "", header: str = "") -> str:
    """Where a problem is, as a person says it: sheet 'x', row 5, column B (服务主体)."""
    parts = []
    if sheet:
        parts.append(_("sheet “%(sheet)s”") % {"sheet": sheet})
    if row is not None:
        parts.append(_("row %(row)s") % {"row": row})
    if column and header:
        parts.append(_("column %(column)s (%(header)s)") % {"column": column, "header": header})
    elif column or header:
        parts.append(_("column %(column)s") % {"column": column or header})
    return ", ".join(parts)


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def read_rows(source: Path | str | bytes | BinaryIO, *, file_name: str = "") -> Iterator[SheetRow]:
    """Rows of a file (path, bytes or binary file object) or of pasted text (a str), skipping empty rows."""
    if isinstance(source, str):
        return read_pasted_text(source)
    if isinstance(source, Path):
        file_name = file_name or source.name
        _check_size(source.stat().st_size)
        data = source.read_bytes()
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        data = source.read(_limit("REGISTER_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES) + 1)
    return read_bytes(data, file_name=file_name)


def read_bytes(data: bytes, *, file_name: str) -> Iterator[SheetRow]:
    """Rows of a file's content; the format comes from the content, checked against the file name."""
    _check_size(len(data))
    if not data.strip():
        raise SpreadsheetError(_("The file “%(name)s” is empty.") % {"name": file_name})
    extension = Path(file_name).suffix.lower()
    if data.startswith(_OLE2_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise SpreadsheetError(
                _("“%(name)s” is password-protected. Remove the password in Excel and upload it again.")
                % {"name": file_name}
            )
        raise SpreadsheetError(
            _("“%(name)s” is an old Excel 97-2003 (.xls) workbook. Save it as .xlsx and upload it again.")
            % {"name": file_name}
        )
    if data.startswith(_ZIP_MAGIC):
        if extension not in WORKBOOK_EXTENSIONS:
            raise SpreadsheetError(
                _("“%(name)s” is a workbook or archive with the wrong extension. Save it as .xlsx.")
                % {"name": file_name}
            )
        return read_workbook(data, file_name=file_name)
    if extension in WORKBOOK_EXTENSIONS:
        raise SpreadsheetError(
            _("“%(name)s” is not a valid .xlsx workbook. Open it in Excel and save it as .xlsx again.")
            % {"name": file_name}
        )
    if extension not in TEXT_EXTENSIONS:
        raise SpreadsheetError(
            _("“%(name)s” is not a spreadsheet this register reads. Use .xlsx, .csv or .tsv.")
            % {"name": file_name}
        )
    text = decode_text(data, file_name=file_name)
    delimiter = "\t" if extension == ".tsv" else _guess_delimiter(text)
    return _read_delimited(text, delimiter=delimiter, sheet="")


def read_pasted_text(text: str) -> Iterator[SheetRow]:
    """Rows of text pasted from a spreadsheet (tab-separated; comma-separated if it has no tabs)."""
    if not text.strip():
        raise SpreadsheetError(_("Nothing was pasted."))
    _check_size(len(text.encode("utf-8")))
    return _read_delimited(text.lstrip("\ufeff"), delimiter=_guess_delimiter(text), sheet="")


def decode_text(data: bytes, *, file_name: str = "") -> str:
    """Decode a text file: UTF-16 by its BOM, else strict UTF-8 (BOM or not), else GB18030 (GBK)."""
    # Excel's "Unicode text" export is UTF-16 with a BOM.
    bom = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    encodings = ("utf-16",) if bom else ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise SpreadsheetError(
        _("“%(name)s” is not a text file in UTF-8 or GBK. Save it as “CSV UTF-8” or as .xlsx.")
        % {"name": file_name}
    )


def _guess_delimiter(text: str) -> str:
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    return "\t" if first_line.count("\t") >= max(1, first_line.count(",")) else ","


def _read_delimited(text: str, *, delimiter: str, sheet: str) -> Iterator[SheetRow]:
    max_rows = _limit("REGISTER_IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for number, cells in enumerate(reader, start=1):
        if number > max_rows + 1:
            raise SpreadsheetError(
                _("The file has more than %(count)s rows.") % {"count": max_rows}, row=number
            )
        if any(cell.strip() for cell in cells):
            yield SheetRow(sheet, number, cells)


def read_workbook(data: bytes, *, file_name: str = "") -> Iterator[SheetRow]:
    """Rows of every visible worksheet of an .xlsx workbook, values as Excel shows them."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise SpreadsheetError(_("“%(name)s” is a damaged .xlsx file.") % {"name": file_name}) from None
    if unpacked > _limit("REGISTER_IMPORT_MAX_UNPACKED_BYTES", DEFAULT_MAX_UNPACKED_BYTES):
        raise SpreadsheetError(
            _("“%(name)s” unpacks to more data than this register accepts.") % {"name": file_name}
        )
    return _workbook_rows(data, file_name=file_name)


def _workbook_rows(data: bytes, *, file_name: str) -> Iterator[SheetRow]:
    import openpyxl  # a heavy import that only workbook uploads need

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a broken or foreign zip
        raise SpreadsheetError(
            _("“%(name)s” cannot be read as an .xlsx workbook (%(reason)s).")
            % {"name": file_name, "reason": error}
        ) from error
    max_rows = _limit("REGISTER_IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)
    try:
        for worksheet in workbook.worksheets:
            if worksheet.sheet_state != "visible":
                continue
            for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
                if number > max_rows + 1:
                    raise SpreadsheetError(
                        _("The sheet has more than %(count)s rows.") % {"count": max_rows},
                        sheet=worksheet.title,
                        row=number,
                    )
                cells = [cell_text(value) for value in values]
                if any(cell.strip() for cell in cells):
                    yield SheetRow(worksheet.title, number, cells)
    finally:
        workbook.close()


def cell_text(value: object) -> str:
    """A workbook value as the text a person sees: 95534 not 95534.0, dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)


def _check_size(size: int) -> None:
    limit = _limit("REGISTER_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)
    if size > limit:
        raise SpreadsheetError(
            _("The file is larger than %(limit)s MB.") % {"limit": round(limit / 1024 / 1024, 1)}
        )
