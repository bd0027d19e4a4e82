"""Text keys: the one definition of "the same name" used by aliases, processors and the importer."""

import functools
import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")

# NFKC already folds full-width letters, digits and （）［］ to ASCII; these corner brackets and
# dashes are the ones Chinese tables use interchangeably with the ASCII forms but NFKC keeps.
_EXTRA_FOLDS = str.maketrans(
    {
        "【": "[",
        "】": "]",
        "〔": "(",
        "〕": ")",
        "〈": "<",
        "〉": ">",
        "—": "-",
        "–": "-",
        "－": "-",
        "、": ",",
        "；": ";",
    }
)


# A register names the same few thousand companies, categories and services over and over.
@functools.lru_cache(maxsize=65536)
def normalize_key(text: str) -> str:
    """Fold width, case and whitespace so that visually equal names compare equal."""
    folded = unicodedata.normalize("NFKC", text or "").translate(_EXTRA_FOLDS).casefold()
    return _WHITESPACE.sub("", folded)


def clean_text(text: str) -> str:
    """Trim and collapse internal whitespace, keeping the characters the user typed."""
    # str.split() splits on exactly what ``\s`` matches (U+3000 included), without a regular expression.
    return " ".join((text or "").split())


def is_row_id(value: str) -> bool:
    """Whether the text can be a row's id: ASCII digits that fit the databases' 64-bit integers
    (``"²".isdigit()`` is true and ``int("²")`` fails; a 20-digit key overflows SQLite)."""
    return value.isascii() and value.isdigit() and len(value) <= 18
