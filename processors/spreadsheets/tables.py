"""Tables inside documents: HTML pages and fragments, Markdown, Word .docx, and a whole policy text.

Published registers rarely come as spreadsheets: they are a ``<table>`` on a policy page, a pipe table
in a Markdown file, a table in a Word document, or a tab-separated block inside a privacy policy copied
out of a PDF. ``find_tables`` returns every table of such a document as a ``FoundTable`` (its position,
its title for a person to choose by, its rows of cell text, and a score for how much it looks like a
register), ``likeliest`` the one to preselect, and ``document_rows`` the chosen table's rows as the
other readers give theirs. The cell text conventions and the common shape are in ``table_grid``; the
HTML and Markdown reader is ``table_html``, the Word reader ``table_docx``.

A policy text (``.txt``) holds its table as lines of tab-separated cells between paragraphs of prose.
Extracted from a PDF, the table is damaged in three ways, repaired here as a person reading it would:

- a row cut by a page break or by a cell's line wrap goes on in a line whose first cell is empty: that
  line is merged into the row above, cell by cell (blank lines inside the block are page breaks);
- a cell's line wraps leave a space inside a Chinese word ("北京亿美软通科 技有限公司", "发送验证 码"):
  a space between two Chinese characters is dropped when neither of the chunks it separates holds a
  Latin letter or a digit, because Chinese puts spaces only around numbers and Latin words, and there a
  space may be the author's ("11010702002038号 京 ICP 备");
- a bracket pair split across lines may come back in two widths ("（北京)"): the closing bracket takes
  the width of the one it closes.
"""

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

from django.utils.translation import gettext as _

from processors.spreadsheets.limits import ImportLimits, SheetReader, SheetRow, SpreadsheetError
from processors.spreadsheets.table_docx import docx_tables
from processors.spreadsheets.table_grid import (
    CJK_CHAR,
    MAX_TITLE_ROWS,
    FoundTable,
    TableBudget,
    shape_table,
)
from processors.spreadsheets.table_html import html_tables, markdown_tables

HTML_EXTENSIONS = {".html", ".htm"}
MARKDOWN_EXTENSIONS = {".md", ".markdown"}
WORD_EXTENSIONS = {".docx"}
DOCUMENT_EXTENSIONS = HTML_EXTENSIONS | MARKDOWN_EXTENSIONS | WORD_EXTENSIONS

_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_OPENING = {"(": ")", "（": "）"}
_CLOSING = frozenset(_OPENING.values())


def find_tables(data: bytes, *, file_name: str, encoding: str | None = None) -> list[FoundTable]:
    """Every table of a document (HTML, Markdown, .docx, policy text) with two rows and two columns.

    ``encoding`` is the one ``readers.detect_encoding`` found for a text document; without it, UTF-8
    (or UTF-16 by its BOM) is tried, then GB18030; an HTML page that is not UTF-8 is read in the
    charset its ``<meta>`` declares. A ``.txt`` is read as a policy text, so call this for one only
    when ``text_is_document`` says it is one; a table file goes to the TSV reader.
    """
    budget = TableBudget(file_name, ImportLimits.from_settings())
    kind = document_kind(data, file_name=file_name)
    if kind == "docx":
        return docx_tables(data, budget)
    if kind == "html":
        # A page says its encoding; an English page in windows-1252 would decode as GB18030 mojibake.
        encoding = _declared_charset(data) or encoding
    text = _decode(data, file_name=file_name, encoding=encoding)
    if kind == "html":
        return html_tables(text, budget)
    if kind == "markdown":
        return markdown_tables(text, budget)
    return _text_tables(text, budget)


def likeliest(tables: list[FoundTable]) -> FoundTable | None:
    """The table to preselect: the highest score, the first of equals."""
    return max(tables, key=lambda table: table.score, default=None)


def document_kind(data: bytes, *, file_name: str) -> str:
    """The reader a document needs, "html", "markdown", "docx" or "text": by extension, else content."""
    extension = Path(file_name).suffix.lower()
    if extension in HTML_EXTENSIONS:
        return "html"
    if extension in MARKDOWN_EXTENSIONS:
        return "markdown"
    if extension in WORD_EXTENSIONS or (data.startswith(b"PK\x03\x04") and b"word/document.xml" in data):
        return "docx"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<table" in head:
        return "html"
    return "text"


def text_is_document(text: str) -> bool:
    """Whether a .txt is prose with a tab-separated table inside it, rather than a table file."""
    lines = text.splitlines()
    in_blocks = {number for start, end in _tab_blocks(lines) for number in range(start, end)}
    prose = sum(1 for number, line in enumerate(lines) if line.strip() and number not in in_blocks)
    # A table file may have a title and a note or two around it; a policy has paragraphs.
    return bool(in_blocks) and prose > MAX_TITLE_ROWS


def document_rows(
    data: bytes, *, file_name: str, encoding: str | None = None, index: int | None = None
) -> Iterator[SheetRow]:
    """The rows of a document's likeliest table (or of table ``index``), checked as a sheet's rows are."""
    tables = find_tables(data, file_name=file_name, encoding=encoding)
    if index is None:
        table = likeliest(tables)
        if table is None:
            raise SpreadsheetError(
                _(
                    "No table was found in “%(name)s”: nothing in it has rows and columns (a list of "
                    "“name: value” lines is not a table). Copy the table into a spreadsheet and upload "
                    "that."
                )
                % {"name": file_name},
                code="no_table",
            )
    else:
        table = next((table for table in tables if table.index == index), None)
        if table is None:
            raise SpreadsheetError(
                _("“%(name)s” has no table number %(number)s.") % {"name": file_name, "number": index + 1},
                code="no_such_table",
            )
    reader = SheetReader("", ImportLimits.from_settings())
    return reader.rows(enumerate(([*row] for row in table.rows), start=1))


def _declared_charset(data: bytes) -> str | None:
    """The charset a page's <meta> declares, when its bytes are not UTF-8 and Python knows it."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return None
    match = _META_CHARSET.search(data[:4096])
    if match is None:
        return None
    name = match.group(1).decode("ascii").lower()
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    # GB18030 is a superset of what pages call gb2312 or gbk.
    return "gb18030" if name in ("gb2312", "gbk", "x-gbk") else name


def _decode(data: bytes, *, file_name: str, encoding: str | None) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass  # a page that declared its encoding wrongly: try the usual ones
    candidates = ("utf-16",) if data.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig", "gb18030")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise SpreadsheetError(
        _("“%(name)s” is not text in UTF-8 or GBK. Save it again as UTF-8.") % {"name": file_name},
        code="encoding_invalid",
    )


# --- A policy text with a tab-separated table in it -----------------------------------------------


def _text_tables(text: str, budget: TableBudget) -> list[FoundTable]:
    lines = text.lstrip("\ufeff").splitlines()
    blocks = _tab_blocks(lines)
    budget.check_tables(len(blocks))
    found = []
    previous_end = 0
    for index, (start, end) in enumerate(blocks):
        title = next((line for line in reversed(lines[previous_end:start]) if line.strip()), "")
        previous_end = end
        rows: list[list[str]] = []
        for line in lines[start:end]:
            if not line.strip():
                continue
            cells = [" ".join(cell.split()) for cell in line.split("\t")]
            if rows and not cells[0]:
                _continue_row(rows[-1], cells)
                continue
            rows.append(cells)
            if len(rows) > budget.limits.last_row:
                budget.check_row(index, len(rows), [])  # refuses: past the last row
        rows = [[_repair_cell(cell) for cell in row] for row in rows]
        for number, row in enumerate(rows, start=1):
            budget.check_row(index, number, row)
        candidate = shape_table(index, title, rows)
        if candidate is not None:
            found.append(candidate)
    return found


def _tab_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, past last) line numbers of each tab-separated block; blank lines inside are page breaks."""
    blocks = []
    start = last = None
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        if "\t" in line:
            # A block starts at a line of two cells or more: its header.
            if start is None and sum(1 for cell in line.split("\t") if cell.strip()) >= 2:
                start = number
            last = number
        elif start is not None:
            blocks.append((start, last + 1))
            start = None
    if start is not None:
        blocks.append((start, last + 1))
    return blocks


def _continue_row(row: list[str], cells: list[str]) -> None:
    row.extend([""] * (len(cells) - len(row)))
    for position, cell in enumerate(cells):
        if cell:
            # Joined with a space, which _join_chinese_chunks drops between two Chinese chunks.
            row[position] = f"{row[position]} {cell}".strip()


def _repair_cell(cell: str) -> str:
    return _join_chinese_chunks(_match_bracket_widths(cell))


def _match_bracket_widths(text: str) -> str:
    openers: list[str] = []
    out = []
    for char in text:
        if char in _OPENING:
            openers.append(char)
        elif char in _CLOSING and openers:
            char = _OPENING[openers.pop()]
        out.append(char)
    return "".join(out)


def _join_chinese_chunks(text: str) -> str:
    chunks = text.split(" ")
    out = chunks[0]
    for before, chunk in zip(chunks, chunks[1:], strict=False):
        stray = bool(
            out
            and chunk
            and CJK_CHAR.match(out[-1])
            and CJK_CHAR.match(chunk[0])
            and not _ASCII_ALNUM.search(before)
            and not _ASCII_ALNUM.search(chunk)
        )
        out = f"{out}{chunk}" if stray else f"{out} {chunk}"
    return out
