"""Cell safety: text written to a spreadsheet must never run as a formula (CSV/formula injection).

Excel, LibreOffice and Numbers evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, after
a tab, a carriage return or a line feed, the same), so a processor called ``=HYPERLINK("http://evil",
"click")`` could run in the reader's spreadsheet. Their full-width forms ``＝＋－＠`` count too: a
Chinese input method types them, and a spreadsheet may fold them to ASCII before it parses. Following
OWASP, such text is written with a leading single quote and stays text; numbers, dates and booleans are
left alone. Phone numbers such as ``+86 10 …`` get the quote too: a cell cannot know it is "only" a
phone number.

``neutralise`` and ``unneutralise`` are exact inverses on every string, so an importer that calls
``unneutralise`` on each text cell reads back exactly what was exported. To keep them inverse, text that
already starts with a quote gets one more (``'x`` is written ``''x``).
"""

from typing import TypeVar

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
QUOTE = "'"

T = TypeVar("T")


def needs_quote(text: str) -> bool:
    """Whether a spreadsheet could read this text as a formula (or it already starts with the quote)."""
    return bool(text) and (text[0] in FORMULA_TRIGGERS or text[0] == QUOTE)


def neutralise(value: T) -> T | str:
    """The value with text that could run as a formula prefixed by a single quote; non-text unchanged."""
    if isinstance(value, str) and needs_quote(value):
        return QUOTE + value
    return value


def unneutralise(text: str) -> str:
    """The text ``neutralise`` was given: one leading quote removed where ``neutralise`` added it."""
    if len(text) >= 2 and text[0] == QUOTE and needs_quote(text[1:]):
        return text[1:]
    return text


def strip_illegal_characters(text: str) -> str:
    """Text without the control characters an .xlsx file cannot hold (openpyxl refuses them)."""
    return ILLEGAL_CHARACTERS_RE.sub("", text)
