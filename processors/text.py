"""Text keys: the one definition of "the same name" used by aliases, processors and the importer."""

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


def normalize_key(text: str) -> str:
    """Fold width, case and whitespace so that visually equal names compare equal."""
    folded = unicodedata.normalize("NFKC", text or "").translate(_EXTRA_FOLDS).casefold()
    return _WHITESPACE.sub("", folded)


def clean_text(text: str) -> str:
    """Trim and collapse internal whitespace, keeping the characters the user typed."""
    return _WHITESPACE.sub(" ", (text or "").replace("\u3000", " ")).strip()
