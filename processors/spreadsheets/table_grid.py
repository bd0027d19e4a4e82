"""What the document readers share: the table they find, its limits, its shape and its cell text.

``tables`` finds tables in documents through ``table_html`` (HTML, Markdown), ``table_docx`` (Word) and
its own policy-text reader. Each reader builds rows of cell text with ``cell_lines`` and ``link_text``
and hands them to ``shape_table``, which gives every table the same shape:

- empty rows are dropped; leading rows holding one value only (a title inside the table, often one
  cell spanning every column, repeated by the span rule) are dropped and become the table's title;
- a header of 2n cells over rows of n cells, alternating a Chinese and an English name for each
  column (DCloud's English pages do this), becomes n header cells ``"中文名\\nEnglish name"``;
- rows are padded to one width, and columns empty in every row are cut from the right;
- under a numbering column (序号, No.), a row whose first cell is not a number while the row above has
  one and whose last cell is empty lost its number to a merged cell: its cells moved one column left when
  the table was flattened to text (巽风's 京东快递 and 德邦 rows under 6 顺丰速运), so they move back and
  take the number above;
- a table with fewer than two rows or two columns is not a candidate.

Cell text: each line's whitespace runs (source line breaks, tabs, non-breaking spaces) become one space
and the line is stripped; empty lines are dropped; a newline is a line break the reader saw (``<br>``,
a paragraph), which the importer reads as a list separator. A link is its text when its text is its
address (up to a trailing ``/``, a ``mailto:`` or ``tel:``), else ``text <address>``, so that both
the name and the URL survive; an in-page ``#anchor`` link is its text.
"""

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

from processors.spreadsheets.limits import ImportLimits, SpreadsheetError, column_name

# A policy page has a handful of tables; thousands are a generated file meant to cost time.
MAX_TABLES = 200
# Enough to choose a table by; a whole paragraph is not a title.
MAX_TITLE_CHARS = 120
# Title rows inside a table are dropped, but not more than this many (as limits.MAX_TITLE_ROWS).
MAX_TITLE_ROWS = 10

# Data rows past which a table is no likelier for having more (``_score``).
ENOUGH_ROWS = 5

# Headers of a numbering column (as columns.IGNORE's), compared casefolded without spaces.
NUMBER_HEADERS = frozenset({"序号", "编号", "no.", "no", "#", "nr.", "s/n", "sn", "index"})
_NUMBER = re.compile(r"^\d{1,4}[.、]?$")

# Header words of register tables, in both languages (compared case-insensitively, as substrings).
HEADER_WORDS = (
    "名称", "sdk", "第三方", "个人信息", "信息", "目的", "用途", "主体", "公司", "机构", "厂商", "运营",
    "提供方", "接收方", "类型", "范围", "隐私", "方式", "功能", "服务", "权限", "场景", "地区", "所在地",
    "国家", "processor", "entity", "vendor", "supplier", "company", "provider", "name", "purpose",
    "location", "country", "region", "service", "data", "personal", "categor", "function", "privacy",
    "recipient", "third part",
)  # fmt: skip

# Han, kana, bopomofo, CJK punctuation and the full-width forms (（）、，：).
CJK_CHAR = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]"
)
_LINK_SCHEME = re.compile(r"^(mailto|tel):", re.IGNORECASE)


@dataclass(frozen=True)
class FoundTable:
    """One table of a document: rows of cell text, the header row first."""

    index: int  # position among the document's tables, 0-based, non-candidates counted
    title: str  # the table's own title row or caption, else the nearest heading or paragraph before it
    rows: list[list[str]]
    score: float  # how much it looks like a register: header words, rows, columns (0..1)

    @property
    def header(self) -> list[str]:
        """The first row, which is the header when the table has one."""
        return self.rows[0]

    @property
    def width(self) -> int:
        """The number of columns."""
        return len(self.rows[0])


class TableBudget:
    """What one document may cost: tables, and cells in all; each table's rows, columns and cells."""

    def __init__(self, file_name: str, limits: ImportLimits) -> None:
        self.file_name = file_name
        self.limits = limits
        # As many cells as one sheet within the limits may have, for all the tables together.
        self.cells_left = limits.last_row * limits.max_columns

    def check_tables(self, count: int) -> None:
        """Refuse a document with more than MAX_TABLES tables."""
        if count > MAX_TABLES:
            raise SpreadsheetError(
                _(
                    "“%(name)s” holds more than %(limit)s tables, more than any policy does; it was not "
                    "read. Save the table you want on its own and upload that."
                )
                % {"name": self.file_name, "limit": MAX_TABLES},
                code="too_many_tables",
            )

    def check_row(self, table: int, number: int, cells: list[str]) -> None:
        """Refuse row ``number`` of table ``table`` (0-based) when it is past a limit."""
        limits = self.limits
        where = {"table": table + 1, "name": self.file_name}
        if number > limits.last_row:
            raise SpreadsheetError(
                _(
                    "Table %(table)s of “%(name)s” goes on past row %(last)s: at most %(count)s rows "
                    "below the header are read. Split the table into several files."
                )
                % {**where, "last": f"{limits.last_row:,}", "count": f"{limits.max_rows:,}"},
                row=number,
                code="too_many_rows",
            )
        if len(cells) > limits.max_columns:
            raise SpreadsheetError(
                _(
                    "Table %(table)s of “%(name)s” has %(count)s columns in this row; at most %(limit)s "
                    "are read."
                )
                % {**where, "count": len(cells), "limit": limits.max_columns},
                row=number,
                column=column_name(len(cells)),
                code="too_many_columns",
            )
        for position, cell in enumerate(cells):
            if len(cell) > limits.max_cell_chars:
                raise SpreadsheetError(
                    _(
                        "Table %(table)s of “%(name)s”: this cell has %(count)s characters; at most "
                        "%(limit)s are accepted."
                    )
                    % {**where, "count": f"{len(cell):,}", "limit": f"{limits.max_cell_chars:,}"},
                    row=number,
                    column=column_name(position + 1),
                    code="cell_too_long",
                )
        self.cells_left -= len(cells)
        if self.cells_left < 0:
            raise SpreadsheetError(
                _(
                    "“%(name)s” has more table cells than this register reads from one document "
                    "(%(limit)s); it was not read."
                )
                % {"name": self.file_name, "limit": f"{limits.last_row * limits.max_columns:,}"},
                code="too_many_cells",
            )


def shape_table(index: int, title: str, rows: list[list[str]]) -> FoundTable | None:
    """The table in its common shape (see the module docstring); None when it is not a candidate."""
    rows = [row for row in rows if any(row)]
    titles: list[str] = []
    while len(rows) > 1 and len(titles) < MAX_TITLE_ROWS and len({cell for cell in rows[0] if cell}) == 1:
        titles.append(next(cell for cell in rows[0] if cell))
        rows.pop(0)
    rows = _bilingual_header(rows)
    width = max((len(row) for row in rows), default=0)
    used = [column for column in range(width) if any(column < len(row) and row[column] for row in rows)]
    if len(rows) < 2 or len(used) < 2:
        return None
    width = used[-1] + 1
    grid = _restore_spanned_numbers([row[:width] + [""] * (width - len(row)) for row in rows])
    return FoundTable(
        index=index, title=short_title(titles[0] if titles else title), rows=grid, score=_score(grid)
    )


def _restore_spanned_numbers(grid: list[list[str]]) -> list[list[str]]:
    """Rows that lost a merged number cell moved back under their header (see the module docstring)."""
    if len(grid[0]) < 3 or "".join(grid[0][0].split()).casefold() not in NUMBER_HEADERS:
        return grid
    restored = [grid[0]]
    for row in grid[1:]:
        above = restored[-1][0] if len(restored) > 1 else ""
        if row[0] and not _NUMBER.match(row[0]) and not row[-1] and _NUMBER.match(above):
            row = [above, *row[:-1]]
        restored.append(row)
    return restored


def _bilingual_header(rows: list[list[str]]) -> list[list[str]]:
    if len(rows) < 2:
        return rows
    header, body = rows[0], rows[1:]
    half = len(header) // 2
    if half < 2 or len(header) % 2 or any(len(row) != half for row in body):
        return rows
    pairs = [(header[2 * column], header[2 * column + 1]) for column in range(half)]
    if not all(CJK_CHAR.search(zh) and english and not CJK_CHAR.search(english) for zh, english in pairs):
        return rows
    return [[f"{zh}\n{english}" for zh, english in pairs], *body]


def _score(rows: list[list[str]]) -> float:
    # Mostly the header's words; then enough rows, and a register's number of columns. "Enough" stops at
    # ENOUGH_ROWS: past it a table is plainly a list, and one more row does not make it the main one (佳麦's
    # 主要SDK列表 has 5 rows, the 厂商通道SDK list after it 6), so equals keep the document's order, and
    # a document puts its main list first.
    header = [cell.casefold() for cell in rows[0]]
    named = sum(1 for cell in header if any(word in cell for word in HEADER_WORDS))
    width = len(header)
    shape = 1.0 if 3 <= width <= 12 else 0.5 if width == 2 else 0.25
    return round(0.6 * named / width + 0.2 * min(len(rows) - 1, ENOUGH_ROWS) / ENOUGH_ROWS + 0.2 * shape, 3)


def short_title(title: str) -> str:
    """A title on one line, cut to MAX_TITLE_CHARS."""
    title = " ".join(title.split())
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"


def cell_lines(text: str) -> str:
    """Each line's whitespace runs collapsed and the line stripped; empty lines dropped."""
    return "\n".join(line for line in (" ".join(part.split()) for part in text.split("\n")) if line)


def flat_text(text: str | None) -> str:
    """Source text with its line breaks as spaces: only markup breaks lines for a reader."""
    return re.sub(r"\s", " ", text or "")


def link_text(text: str, address: str) -> str:
    """A link as a cell shows it: its text, and its address where that says more."""
    text = cell_lines(text)
    address = address.strip()
    if not address or address.startswith(("#", "javascript:")):
        return text
    bare = _LINK_SCHEME.sub("", address)
    if not text or text.rstrip("/") in (address.rstrip("/"), bare.rstrip("/")):
        return text or address
    return f"{text} <{address}>"
