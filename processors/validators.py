"""Field validators: identifiers that carry their own check digits or syntax, and one-line text."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# GB 32100-2015: 18 characters from this 31-letter alphabet (no I, O, Z, S, V), the last a check digit.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

CATEGORY_CODE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
SIMPLE_CODE_PATTERN = r"^[a-z][a-z0-9_]*$"


def uscc_check_character(first_17: str) -> str:
    """The check character of a unified social credit code, from its first 17 characters."""
    total = sum(
        USCC_ALPHABET.index(char) * weight for char, weight in zip(first_17, USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> None:
    """Reject a unified social credit code (统一社会信用代码) with a wrong shape or check digit."""
    code = (value or "").strip().upper()
    if len(code) != 18 or any(char not in USCC_ALPHABET for char in code):
        raise ValidationError(
            _("A unified social credit code has 18 characters from 0-9 and A-Y without I, O, S, V, Z."),
            code="uscc_format",
        )
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise ValidationError(
            _("The check digit of this unified social credit code is wrong (expected %(expected)s)."),
            code="uscc_check_digit",
            params={"expected": expected},
        )


def validate_category_code(value: str) -> None:
    if not re.match(CATEGORY_CODE_PATTERN, value or ""):
        raise ValidationError(
            _("Use lower-case dotted segments such as basic.phone_number."), code="category_code"
        )


# One-line text (names, labels, codes) is printed in tables, file names, HTTP headers and diffs, so it
# carries no control character (C0, DEL, C1: a CR/LF label once broke its diff downloads for ever) and no
# bidirectional embedding, override or isolate, which can make "abc\u202edef" display as "abcfed" and
# disguise one name as another ("Trojan Source").
UNSAFE_LINE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def remove_unsafe_line_characters(text: str) -> str:
    """Text without the control and bidirectional-override characters that one-line text refuses."""
    return UNSAFE_LINE_CHARACTERS.sub("", text)


def validate_single_line(value: str) -> None:
    """Refuse one-line text with a control character or a bidirectional override."""
    match = UNSAFE_LINE_CHARACTERS.search(value or "")
    if match:
        raise ValidationError(
            _(
                "Remove the invisible control character U+%(codepoint)s: a name or label is one line "
                "of plain text."
            ),
            code="unsafe_character",
            params={"codepoint": f"{ord(match.group()):04X}"},
        )
