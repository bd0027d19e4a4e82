"""Tables of HTML pages and fragments, and of Markdown (pipe tables, and HTML tables written inside it).

Markdown is rendered to HTML by markdown-it-py (CommonMark with GFM tables, raw HTML kept), so both
forms go through one HTML table reader. A cell's text follows ``table_grid``; ``<br>`` and block
elements (``<p>``, ``<li>``, ``<div>``) break lines, scripts and styles are not text. A cell spanning
columns or rows (``colspan``, ``rowspan``) is repeated into every position it spans. A table's title is
its ``<caption>``, else the nearest heading after the table before it, else the nearest text.

Defences: lxml's HTML parser (libxml2) with no network access and without ``huge_tree``, so a page
nested past 256 levels is refused rather than read in part; any entity declaration (``<!ENTITY``,
which no web page needs) is refused before parsing; spans are clamped to the column limit and to the
rows left. markdown-it-py is pure Python and slow on crafted input, so a Markdown file is held to
``MAX_MARKDOWN_BYTES`` and ``MAX_MARKDOWN_TABLE_LINES``, and its tables are counted before it is parsed.
"""

import re

import lxml.etree
import lxml.html
from django.utils.translation import gettext as _
from markdown_it import MarkdownIt

from processors.spreadsheets.limits import SpreadsheetError
from processors.spreadsheets.table_grid import (
    FoundTable,
    TableBudget,
    cell_lines,
    flat_text,
    link_text,
    shape_table,
)

# markdown-it-py parses about 1 MB a second, and up to 17 times slower on crafted input ("[a](" repeated);
# its pipe tables about 4,000 rows a second. A policy in Markdown is tens of kilobytes, so these bound what
# a Markdown upload can cost to seconds; larger tables are for .csv or .xlsx.
MAX_MARKDOWN_BYTES = 512 * 1024
MAX_MARKDOWN_TABLE_LINES = 5_000

_ENTITY_DECLARATION = re.compile(r"<!ENTITY|<!DOCTYPE[^>\[]*\[", re.IGNORECASE)
# Every pipe table has one delimiter row ("|---|:--|"), so their number bounds the number of tables.
_DELIMITER_ROW = re.compile(r"^ {0,3}\|?(?:\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?\s*$", re.MULTILINE)
# YAML front matter (Jekyll, Hugo, Docusaurus) would render as a heading made of its keys.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n---[ \t]*(?:\n|\Z)", re.DOTALL)

_BLOCKS = frozenset(
    (
        "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "ul",
    )
)  # fmt: skip
_HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
_NOT_TEXT = frozenset(
    ("script", "style", "template", "noscript", "head", "title", "iframe", "object", "svg", "math")
)


def markdown_tables(text: str, budget: TableBudget) -> list[FoundTable]:
    """Every pipe table and HTML table of a Markdown document."""
    refuse_entities(text, budget.file_name)
    _check_markdown_cost(text, budget)
    text = _FRONT_MATTER.sub("", text.lstrip("\ufeff"), count=1)
    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return html_tables(renderer.render(text), budget)


def html_tables(text: str, budget: TableBudget) -> list[FoundTable]:
    """Every ``<table>`` of an HTML page or fragment."""
    refuse_entities(text, budget.file_name)
    if not text.strip():
        return []
    parser = lxml.html.HTMLParser(
        no_network=True, huge_tree=False, remove_comments=True, remove_pis=True, default_doctype=False
    )
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return []
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        # libxml2 stops at 256 levels without huge_tree and silently drops the rest of the page.
        raise SpreadsheetError(
            _("“%(name)s” nests its elements deeper than any web page does; it was not read.")
            % {"name": budget.file_name},
            code="too_deep",
        )
    tables = list(root.iter("table"))
    budget.check_tables(len(tables))
    titles = _Titles(root).by_table
    found = []
    for index, table in enumerate(tables):
        caption = next((child for child in table if child.tag == "caption"), None)
        title = element_text(caption) if caption is not None else titles.get(table, "")
        candidate = shape_table(index, title, _grid(table, index, budget))
        if candidate is not None:
            found.append(candidate)
    return found


def refuse_entities(text: str, file_name: str) -> None:
    """Refuse a page that declares entities, the carrier of entity-expansion attacks."""
    if _ENTITY_DECLARATION.search(text):
        raise SpreadsheetError(
            _(
                "“%(name)s” declares entities (<!ENTITY …>). Web pages never need this, and it can hide an "
                "entity-expansion (“billion laughs”) attack, so the file was not read."
            )
            % {"name": file_name},
            code="html_entities",
        )


def _check_markdown_cost(text: str, budget: TableBudget) -> None:
    budget.check_tables(len(_DELIMITER_ROW.findall(text)))
    size = len(text.encode("utf-8"))
    table_lines = sum(1 for line in text.splitlines() if "|" in line) if "|" in text else 0
    if size > MAX_MARKDOWN_BYTES or table_lines > MAX_MARKDOWN_TABLE_LINES:
        raise SpreadsheetError(
            _(
                "“%(name)s” is too large to read as Markdown (%(size)s KB, %(lines)s table lines; at "
                "most %(limit)s KB and %(limit_lines)s table lines). Save the table as .csv or .xlsx "
                "and upload that."
            )
            % {
                "name": budget.file_name,
                "size": f"{size / 1024:,.0f}",
                "lines": f"{table_lines:,}",
                "limit": MAX_MARKDOWN_BYTES // 1024,
                "limit_lines": f"{MAX_MARKDOWN_TABLE_LINES:,}",
            },
            code="markdown_too_large",
        )


def _grid(table, index: int, budget: TableBudget) -> list[list[str]]:
    """The table's cells, colspan and rowspan repeated into every position they span."""
    row_elements = table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr")
    widest = budget.limits.max_columns + 1  # one past the limit is enough for check_row to refuse
    spanned: dict[int, tuple[int, str]] = {}  # column -> (rows it still spans below, text)
    rows: list[list[str]] = []
    for number, row_element in enumerate(row_elements, start=1):
        cells = {column: text for column, (_left, text) in spanned.items()}
        spanned = {column: (left - 1, text) for column, (left, text) in spanned.items() if left > 1}
        column = 0
        for cell in row_element.xpath("./td | ./th"):
            while column in cells:
                column += 1
            text = element_text(cell)
            across = min(_span(cell.get("colspan")), widest)
            rows_left = len(row_elements) - number + 1
            # rowspan="0" spans the rest of the table.
            down = min(_span(cell.get("rowspan"), zero=rows_left), rows_left)
            for offset in range(across):
                cells[column + offset] = text
                if down > 1:
                    spanned[column + offset] = (down - 1, text)
            column += across
            if column > widest:
                break
        row = [cells.get(position, "") for position in range(max(cells, default=-1) + 1)]
        budget.check_row(index, number, row)
        rows.append(row)
    return rows


def _span(value: str | None, *, zero: int = 1) -> int:
    try:
        span = int((value or "1").strip())
    except ValueError:
        return 1
    return zero if span == 0 else max(span, 1)


def element_text(element) -> str:
    """What a reader sees in an element: lines broken at ``<br>`` and blocks, links as ``text <url>``."""
    parts: list[str] = []
    _collect(element, parts)
    return cell_lines("".join(parts))


def _collect(element, parts: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if not tag or tag in _NOT_TEXT:
        return
    if tag == "br":
        parts.append("\n")
        return
    if tag == "a" and element.get("href"):
        inner = [flat_text(element.text)]
        for child in element:
            _collect(child, inner)
            inner.append(flat_text(child.tail))
        parts.append(link_text("".join(inner), element.get("href", "")))
        return
    block = tag in _BLOCKS
    if block:
        parts.append("\n")
    parts.append(flat_text(element.text))
    for child in element:
        _collect(child, parts)
        parts.append(flat_text(child.tail))
    if block:
        parts.append("\n")


class _Titles:
    """For each table: its nearest heading after the table before it, else the nearest text, else the
    last heading of the page."""

    def __init__(self, root) -> None:
        self.by_table: dict = {}
        self.recent: list[tuple[str, bool]] = []  # (text, is a heading) since the previous table
        self.last_heading = ""
        self.pending: list[str] = []
        self._walk(root)

    def _flush(self, *, heading: bool = False) -> None:
        text = cell_lines("".join(self.pending)).replace("\n", " ")
        self.pending.clear()
        if text:
            self.recent.append((text, heading))
            if heading:
                self.last_heading = text

    def _text(self, text: str | None, *, bare: bool) -> None:
        # Text straight in the page (a fragment's bare lines) has no paragraphs: each line is one.
        lines = text.split("\n") if bare and text else [text]
        for number, line in enumerate(lines):
            if number:
                self._flush()
            self.pending.append(flat_text(line))

    def _walk(self, element, *, bare: bool = False) -> None:
        self._visit(element)
        self._text(element.tail, bare=bare)

    def _visit(self, element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "table":
            self._flush()
            headings = [text for text, heading in self.recent if heading]
            self.by_table[element] = (
                headings[-1] if headings else self.recent[-1][0] if self.recent else self.last_heading
            )
            self.recent.clear()
            return
        if not tag or tag in _NOT_TEXT:
            return
        block = tag in _BLOCKS or tag == "br"
        if block:
            self._flush()
        bare = tag in ("html", "body")
        self._text(element.text, bare=bare)
        for child in element:
            self._walk(child, bare=bare)
        if block:
            self._flush(heading=tag in _HEADINGS)
