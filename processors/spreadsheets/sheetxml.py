"""A worksheet's ``<sheetData>`` written as text, for a sheet too big for openpyxl's cell writer.

openpyxl (without lxml, which is not a dependency) writes every cell by building a small element tree and
serialising it through et_xmlfile, with a StyleArray looked up per cell: most of a large export's time.
Here the rows are formatted as strings instead, in exactly the markup openpyxl writes for the same cells
(inline strings, the same rich-text runs, the same attributes in the same order), and spliced into the
package openpyxl saved for everything else (styles, other sheets, views, columns, filters, defined names).

The caller owns the meaning of the text: it must already be free of the characters an .xlsx cannot hold
(``safety.strip_illegal_characters``) and neutralised. Text is escaped as openpyxl escapes it (``&``, ``<``
and ``>`` only, as ElementTree does), so a reader sees the same characters in both files.
"""

import re
import shutil
import zipfile
from collections.abc import Sequence
from typing import BinaryIO
from xml.sax.saxutils import escape

# A bold run's properties, as openpyxl writes ``InlineFont(b=True)``.
_BOLD_PROPERTIES = '<rPr><b val="1" /></rPr>'
# openpyxl's write-only sheet with no rows appended writes this; the rows go in its place.
_EMPTY_SHEET_DATA = re.compile(rb"<sheetData\s*/>|<sheetData></sheetData>")
_FLUSH_ROWS = 1000


def _text_element(text: str) -> str:
    """``<t>`` as openpyxl writes it: space kept explicitly when the text has leading or trailing blanks.

    openpyxl's rule (``xml.functions.whitespace``) leaves it off a text of blanks only; so does this.
    """
    stripped = text.strip()
    if stripped and stripped != text:
        return f'<t xml:space="preserve">{escape(text)}</t>'
    return f"<t>{escape(text)}</t>"


def inline_string(text: str) -> str:
    """The content of an inline-string cell holding this text (non-empty)."""
    return f"<is>{_text_element(text)}</is>"


def rich_run(text: str, bold: bool) -> str:
    """One run of a rich-text cell, as openpyxl writes a ``TextBlock`` (bold) or a plain string."""
    return f"<r>{_BOLD_PROPERTIES}{_text_element(text)}</r>" if bold else f"<r>{_text_element(text)}</r>"


def rich_inline_string(runs: Sequence[tuple[str, bool]]) -> str:
    """The content of an inline-string cell of rich text: one run per (text, bold) part, in order.

    Parts are not merged, as openpyxl's CellRichText does not merge them when it writes.
    """
    return rich_inline_runs([rich_run(text, bold) for text, bold in runs])


def rich_inline_runs(runs: Sequence[str]) -> str:
    """The content of an inline-string cell made of runs already written by ``rich_run``."""
    return "<is>" + "".join(runs) + "</is>"


def column_letters(count: int) -> tuple[str, ...]:
    """A, B, … for the first ``count`` columns (up to 26, which is all a table here needs)."""
    if not 0 < count <= 26:
        raise ValueError(f"{count} columns: only A to Z are supported")
    return tuple(chr(ord("A") + index) for index in range(count))


class SheetData:
    """Writes ``<sheetData>`` rows to a binary file, UTF-8, a batch of rows at a time.

    A cell is (style id, content): the id of its style in the workbook's cell style table (what openpyxl
    writes as ``s``), and ``inline_string``/``rich_inline_string`` content, or "" for a styled empty cell.
    """

    def __init__(self, out: BinaryIO, columns: int) -> None:
        self.out = out
        self.letters = column_letters(columns)
        self.count = 0
        self.pending: list[str] = ["<sheetData>"]

    def append(self, cells: Sequence[tuple[int, str]], height: int | None = None) -> None:
        """One row; ``height`` in points sets a custom row height (``ht``), as openpyxl's row dimension."""
        self.count += 1
        row = self.count
        parts = [f'<row r="{row}" ht="{height}" customHeight="1">' if height else f'<row r="{row}">']
        for letter, (style, content) in zip(self.letters, cells, strict=False):
            if content:
                parts.append(f'<c r="{letter}{row}" s="{style}" t="inlineStr">{content}</c>')
            else:
                # openpyxl writes an empty styled cell as a number without a value.
                parts.append(f'<c r="{letter}{row}" s="{style}" t="n" />')
        parts.append("</row>")
        self.pending.append("".join(parts))
        if len(self.pending) >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        self.out.write("".join(self.pending).encode("utf-8"))
        self.pending = []

    def close(self) -> None:
        self.pending.append("</sheetData>")
        self.flush()


def replace_sheet_data(scaffold: BinaryIO, sheet_path: str, sheet_data: BinaryIO, stream: BinaryIO) -> None:
    """Copy the package ``scaffold`` to ``stream`` with ``sheet_data`` in place of one sheet's empty rows.

    Every other part is copied as it is, in the same order and with the same compression. ``sheet_data``
    is read from its start; ``sheet_path`` is the part's name in the package ("xl/worksheets/sheet1.xml").
    """
    with (
        zipfile.ZipFile(scaffold) as source,
        zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as target,
    ):
        for info in source.infolist():
            if info.filename != sheet_path:
                target.writestr(info, source.read(info))
                continue
            head, *tail = _EMPTY_SHEET_DATA.split(source.read(info))
            if len(tail) != 1:
                raise ValueError(f"{sheet_path} does not have exactly one empty <sheetData>")
            size = sheet_data.seek(0, 2)
            sheet_data.seek(0)
            part = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            part.compress_type = info.compress_type
            part.external_attr = info.external_attr
            # The size known in advance lets zipfile choose ZIP64 headers for a part over 2 GiB.
            part.file_size = len(head) + size + len(tail[0])
            with target.open(part, "w") as destination:
                destination.write(head)
                shutil.copyfileobj(sheet_data, destination, 1 << 20)
                destination.write(tail[0])
