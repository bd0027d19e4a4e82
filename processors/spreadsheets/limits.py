"""What every reader shares: the limits an upload is read under, the refusal, and the rows it yields.

``readers`` (format dispatch, CSV/TSV, pasted text) and ``xlsx`` (workbooks) both yield
``SheetRow(sheet, number, cells)`` through ``SheetReader``, which checks each row against the limits as
it is produced (columns, cell length, NUL characters) so that reading stops at the first row past them,
fills merged cells down and drops title lines above the header. Anything refused is a
``SpreadsheetError`` that says where it is and what to do.

Title lines: published tables often carry a title ("XX公司第三方信息共享清单") and a date above the
header. Leading rows with a single filled cell are dropped once a row with two or more appears (a header
has at least two columns); rows keep their numbers, so every location still matches the file.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.utils.translation import gettext as _

# Fallbacks for settings.REGISTER_IMPORT_*: generous for a register, small enough that a stray upload
# cannot hurt. registry/settings.py states the values in force.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# 20,000 rows of 100 columns of Excel XML stay well under this; what an .xlsx unpacks to is what
# openpyxl would hold and parse.
DEFAULT_MAX_UNPACKED_BYTES = 100 * 1024 * 1024
# Real workbook parts compress 5-20 times; a zip bomb compresses hundreds or thousands of times.
DEFAULT_MAX_COMPRESSION_RATIO = 100
DEFAULT_MAX_ROWS = 20_000
DEFAULT_MAX_COLUMNS = 100
# Excel's own limit for one cell, so no cell typed in Excel is ever refused.
DEFAULT_MAX_CELL_CHARS = 32_767


# Title lines above the header ("XX公司第三方共享清单") are skipped, but not more than this many.
MAX_TITLE_ROWS = 10


class SpreadsheetError(Exception):
    """A file or cell that cannot be imported, with where it is and what to do about it."""

    def __init__(
        self, message: str, *, sheet: str = "", row: int | None = None, column: str = "", code: str = "file"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sheet = sheet
        self.row = row
        self.column = column
        # A stable name for the kind of refusal, for callers and tests that must not depend on wording.
        self.code = code

    def __str__(self) -> str:
        where = location_text(sheet=self.sheet, row=self.row, column=self.column)
        return f"{where}: {self.message}" if where else self.message


class SheetRow(NamedTuple):
    sheet: str
    number: int
    cells: list[str]


@dataclass(frozen=True)
class ImportLimits:
    """What one upload may cost; read from settings at each import so tests and operators can change it."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_compression_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO
    max_rows: int = DEFAULT_MAX_ROWS
    max_columns: int = DEFAULT_MAX_COLUMNS
    max_cell_chars: int = DEFAULT_MAX_CELL_CHARS

    @classmethod
    def from_settings(cls) -> "ImportLimits":
        """The limits in force: settings.REGISTER_IMPORT_*, else this module's defaults."""
        return cls(
            max_bytes=int(getattr(settings, "REGISTER_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)),
            max_unpacked_bytes=int(
                getattr(settings, "REGISTER_IMPORT_MAX_UNPACKED_BYTES", DEFAULT_MAX_UNPACKED_BYTES)
            ),
            max_compression_ratio=int(
                getattr(settings, "REGISTER_IMPORT_MAX_COMPRESSION_RATIO", DEFAULT_MAX_COMPRESSION_RATIO)
            ),
            max_rows=int(getattr(settings, "REGISTER_IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)),
            max_columns=int(getattr(settings, "REGISTER_IMPORT_MAX_COLUMNS", DEFAULT_MAX_COLUMNS)),
            max_cell_chars=int(getattr(settings, "REGISTER_IMPORT_MAX_CELL_CHARS", DEFAULT_MAX_CELL_CHARS)),
        )

    @property
    def last_row(self) -> int:
        """The last row number read: the header plus max_rows rows."""
        return self.max_rows + 1


def column_name(number: int) -> str:
    """The letters a spreadsheet program shows for column ``number`` (1 → A, 28 → AB), for any number.

    openpyxl's get_column_letter stops at 18,278 (ZZZ) with a ValueError, and a hostile row can be far
    wider than that; the location of a refusal must never be what fails.
    """
    letters = ""
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


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


def megabytes(size: int) -> str:
    """A size in bytes as the megabytes a message names: 10, 2.5, 0.5."""
    amount = size / 1024 / 1024
    return f"{amount:,.1f}".removesuffix(".0") if amount >= 1 else f"{amount:.2g}"


def too_many_rows(
    limits: ImportLimits, *, sheet: str, row: int | None, workbook: bool = False
) -> SpreadsheetError:
    message = (
        _(
            "This sheet goes on past row %(last)s: at most %(count)s rows below the header are read (empty "
            "rows that still carry formatting count too). Split the table into several files, or delete "
            "the empty rows below it."
        )
        if workbook
        else _(
            "This file goes on past row %(last)s: at most %(count)s rows below the header are read. Split "
            "the table into several files."
        )
    )
    return SpreadsheetError(
        message % {"count": f"{limits.max_rows:,}", "last": f"{limits.last_row:,}"},
        sheet=sheet,
        row=row,
        code="too_many_rows",
    )


def too_many_columns(limits: ImportLimits, *, sheet: str, row: int, width: int) -> SpreadsheetError:
    """The refusal of a row with cells in ``width`` columns, more than the limit, located at its last one."""
    return SpreadsheetError(
        _(
            "This row has cells in %(count)s columns; at most %(limit)s are read. Delete the unused "
            "columns on the right."
        )
        % {"count": f"{width:,}", "limit": limits.max_columns},
        sheet=sheet,
        row=row,
        column=column_name(width),
        code="too_many_columns",
    )


class SheetReader:
    """Checks and tidies the rows of one sheet: limits, merged cells filled down, title lines skipped."""

    def __init__(self, sheet: str, limits: ImportLimits, merges: Iterable[tuple[int, int, int]] = ()) -> None:
        self.sheet = sheet
        self.limits = limits
        # first row -> [(column index, last row)] for the merges that start on that row
        self.merges_from: dict[int, list[tuple[int, int]]] = {}
        for column, first_row, last_row in merges:
            self.merges_from.setdefault(first_row, []).append((column, last_row))

    def rows(self, numbered_cells: Iterable[tuple[int, list[str]]]) -> Iterator[SheetRow]:
        """The non-empty rows, checked, filled down and with any title lines above the header dropped."""
        filling: dict[int, tuple[int, str]] = {}  # column index -> (last row, value)
        titles: list[SheetRow] = []
        header_seen = False
        for number, cells in numbered_cells:
            self._check(number, cells)
            if not "".join(cells).strip():
                continue
            if filling:
                filling = {column: fill for column, fill in filling.items() if fill[0] >= number}
            for column, (_last, value) in filling.items():
                if column >= len(cells):
                    cells.extend([""] * (column + 1 - len(cells)))
                if not cells[column].strip():
                    cells[column] = value
            for column, last_row in self.merges_from.get(number, ()):
                if column < len(cells) and cells[column].strip():
                    filling[column] = (last_row, cells[column])
            row = SheetRow(self.sheet, number, cells)
            if header_seen:
                yield row
            elif sum(1 for cell in cells if cell.strip()) >= 2:
                # A header has at least two columns; single-cell lines above it are a title.
                header_seen = True
                titles.clear()
                yield row
            else:
                titles.append(row)
                if len(titles) > MAX_TITLE_ROWS:
                    header_seen = True
                    yield from titles
                    titles.clear()
        yield from titles

    def _check(self, number: int, cells: list[str]) -> None:
        width = len(cells)
        while width and not cells[width - 1]:
            width -= 1
        limits = self.limits
        if width > limits.max_columns:
            raise too_many_columns(limits, sheet=self.sheet, row=number, width=width)
        if width and max(map(len, cells)) <= limits.max_cell_chars and "\x00" not in "".join(cells):
            return  # the usual row, checked at C speed; the loop below says which cell is wrong
        for index in range(width):
            cell = cells[index]
            if len(cell) > limits.max_cell_chars:
                raise SpreadsheetError(
                    _("This cell has %(count)s characters; at most %(limit)s are accepted.")
                    % {"count": f"{len(cell):,}", "limit": f"{limits.max_cell_chars:,}"},
                    sheet=self.sheet,
                    row=number,
                    column=column_name(index + 1),
                    code="cell_too_long",
                )
            if "\x00" in cell:
                raise SpreadsheetError(
                    _(
                        "This cell contains a NUL character: the file is binary, or UTF-16 text without a "
                        "byte-order mark. Save it as “CSV UTF-8” or as .xlsx."
                    ),
                    sheet=self.sheet,
                    row=number,
                    column=column_name(index + 1),
                    code="nul",
                )


# A part smaller than this cannot hurt whatever its ratio, and tiny XML parts compress oddly well.
RATIO_FLOOR_BYTES = 1024 * 1024


def check_package_sizes(
    members: list, *, file_name: str, limits: ImportLimits, unpacked_message: str, bomb_message: str
) -> None:
    """Refuse a zip package (.xlsx, .docx) by the sizes its directory states, before decompressing anything.

    The messages are the caller's, each naming its own kind of file: ``unpacked_message`` takes name, size
    and limit; ``bomb_message`` takes name, part, ratio and limit.
    """
    unpacked = sum(info.file_size for info in members)
    if unpacked > limits.max_unpacked_bytes:
        raise SpreadsheetError(
            unpacked_message
            % {"name": file_name, "size": megabytes(unpacked), "limit": megabytes(limits.max_unpacked_bytes)},
            code="unpacked_too_large",
        )
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
            raise SpreadsheetError(
                bomb_message
                % {
                    "name": file_name,
                    "part": info.filename,
                    "ratio": f"{ratio:,.0f}",
                    "limit": limits.max_compression_ratio,
                },
                code="zip_bomb",
            )
