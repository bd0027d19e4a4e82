"""Cell rules: how one spreadsheet cell becomes values. Pure functions, no database.

Published disclosure tables pack several facts into one cell (a company name with its hotline, a
group with its members in brackets, a list ending in 等), so each rule here undoes one such habit.

Why one module: the sections read a cell the same way. Lists, recipients (a group's members, several
companies in a cell) and countries all split on separators outside brackets (``_top_level_parts``,
``split_list``), and recipients and URLs first take the markup off (``clean_markup``); apart, each would
import the others' private splitting, or copy it.
"""

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _
from django_countries import countries

from processors.text import clean_text, normalize_key

LIST_SEPARATORS = frozenset("、，,；;\n\r")
OPENING_BRACKETS = "(（[【"
CLOSING_BRACKETS = ")）]】"
_BRACKET_CHARACTERS = re.compile("[" + re.escape(OPENING_BRACKETS + CLOSING_BRACKETS) + "]")

# A part that starts with one of these explains the item before it ("钉钉审批流，包含姓名手机") rather than
# naming a new item, so it stays attached to its item.
CONTINUATION_PREFIXES = ("包含", "包括", "其中包括", "含", "即", "例如", "比如")

OPEN_ENDED_MARKERS = ("等等", "等")

# A trailing bracket that starts with these words qualifies the name ("(及其合作机构)") even when it
# contains a list separator, so it is never read as a member list.
QUALIFIER_PREFIXES = ("及", "和", "与", "含", "包括", "包含", "以及", "或")
# A bracket that gives an example ("Email provider (e.g., Controller-selected SMTP service)") is a remark
# on the name, not a list of members, whatever separators it holds.
_EXAMPLE_PREFIX = re.compile(
    r"^(?:e\.\s?g\.?|i\.\s?e\.?|such as|for example|for instance)(?![a-z])", re.IGNORECASE
)


class CellError(ValueError):
    """A cell value that cannot be read; carries a translated message and suggestions."""

    def __init__(self, message: str, suggestions: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.suggestions = tuple(suggestions)


# --- Lists ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListCell:
    items: list[str]
    open_ended: bool


@functools.lru_cache(maxsize=8)
def _separator_pattern(separators: frozenset[str]) -> re.Pattern[str]:
    return re.compile("([" + re.escape("".join(sorted(separators))) + "])")


def _top_level_parts(text: str, separators: frozenset[str]) -> list[tuple[str, str]]:
    """(part, separator before it) pairs, splitting only outside brackets."""
    if not _BRACKET_CHARACTERS.search(text):
        # Most cells have no brackets: a regular expression split gives the same pairs, at C speed.
        pieces = _separator_pattern(separators).split(text)
        return list(zip(pieces[::2], ["", *pieces[1::2]], strict=True))
    parts: list[tuple[str, str]] = []
    depth = 0
    current: list[str] = []
    before = ""
    for char in text:
        if char in OPENING_BRACKETS:
            depth += 1
        elif char in CLOSING_BRACKETS:
            # An unbalanced closing bracket must not make the rest of the cell unsplittable.
            depth = max(0, depth - 1)
        if char in separators and depth == 0:
            parts.append(("".join(current), before))
            current, before = [], char
            continue
        current.append(char)
    parts.append(("".join(current), before))
    return parts


# A plus with spaces around it joins two items ("FCM token + 通知文案"); glued on, it is part of a name (C++).
_SPACED_PLUS = re.compile(r"\s+\+\s+")


def _plus_parts(part: str, separator: str) -> list[tuple[str, str]]:
    """A part split again on a spaced plus outside brackets; each later piece has "+" as its separator."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for found in _SPACED_PLUS.finditer(part):
        before = part[: found.start()]
        depth = sum(before.count(char) for char in OPENING_BRACKETS)
        if depth > sum(before.count(char) for char in CLOSING_BRACKETS):
            continue
        pieces.append((part[start : found.start()], separator))
        start, separator = found.end(), "+"
    pieces.append((part[start:], separator))
    return pieces


# A data item cell may pack other fields, each on its own line under a short label as a record does
# (收集个人信息类型：…<br>使用目的：…), or end its list by saying what the items are for (用于广告定向投放).
_LABELLED_LINE = re.compile(r"^\s*(?P<key>[^:：]{1,24}?)\s*[:：]\s*(?P<value>.*)$")
_PURPOSE_SEGMENT = re.compile(r"^\s*(?:用于|用以|以便)")
_PACKED_CELL = re.compile(r"[:：]|用于|用以|以便")


def unpack_item_cell(cell: str, field_of: Callable[[str], str | None]) -> tuple[str, list[tuple[str, str]]]:
    """The items of a data item cell, and the other fields it packs as (field, text) pairs.

    A line labelled with the item column's own header (收集个人信息类型：…) is items; one labelled with
    another column's header (使用目的：…, ``field_of`` says which) and a ；-segment that says what the items
    are for (用于广告定向投放、提高用户体验) are not items: they are returned as that field's and the
    purpose's text. A label ``field_of`` does not know (IMEI：…) is part of the item.
    """
    if not _PACKED_CELL.search(cell):
        return cell, []
    kept: list[str] = []
    packed: list[tuple[str, str]] = []
    for line in cell.split("\n"):
        labelled = _LABELLED_LINE.match(line)
        target = field_of(labelled["key"]) if labelled else None
        if target == "data_items":
            line = labelled["value"]
        elif target is not None:
            packed.append((target, labelled["value"].strip()))
            continue
        segments = []
        for segment, separator in _top_level_parts(line, frozenset("；;")):
            if _PURPOSE_SEGMENT.match(segment):
                packed.append(("purpose", segment.strip()))
            else:
                segments.append(separator + segment)
        kept.append("".join(segments).lstrip("；;"))
    return "\n".join(kept), packed


def split_list(cell: str | None) -> ListCell:
    """Split a list cell on 、，,；;, a spaced + and line breaks outside brackets; a trailing 等 marks it
    open-ended."""
    items: list[str] = []
    parts = _top_level_parts(cell or "", LIST_SEPARATORS)
    if "+" in (cell or ""):
        parts = [piece for part, separator in parts for piece in _plus_parts(part, separator)]
    for part, separator in parts:
        part = clean_text(part)
        if not part:
            continue
        if items and separator not in "\n\r" and part.startswith(CONTINUATION_PREFIXES):
            items[-1] = f"{items[-1]}{separator}{part}"
            continue
        items.append(part)
    open_ended = False
    if items:
        last = items[-1].rstrip("。.")
        for marker in OPEN_ENDED_MARKERS:
            if last.endswith(marker):
                open_ended = True
                last = last[: -len(marker)].strip()
                break
        if last:
            items[-1] = last
        else:
            items.pop()
    return ListCell(items=items, open_ended=open_ended)


# --- Recipients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientCell:
    """A recipient cell taken apart. ``group_name`` is set when the cell names several organisations."""

    names: list[str]
    group_name: str = ""
    phone: str = ""
    icp_filing: str = ""
    public_security_filing: str = ""
    qualifier: str = ""
    raw: str = ""

    @property
    def is_group(self) -> bool:
        return bool(self.group_name)


_CJK = r"\u4e00-\u9fff"
_ICP_FILING = re.compile(rf"([{_CJK}])\s*ICP\s*([证备])\s*(\d+)\s*号(?:\s*-\s*(\d+))?", re.IGNORECASE)
_PUBLIC_SECURITY_FILING = re.compile(rf"([{_CJK}])\s*公网安备\s*(\d+)\s*号")
# A phone number at the end of the cell, optionally labelled; at least five digits (95534).
_TRAILING_PHONE = re.compile(
    r"(?:(?:联系|客服)?电话|热线|Tel\.?|Phone)?\s*[:：]?\s*"
    r"(?<![A-Za-z0-9.\-])(?P<phone>\+?\d[\d\-]{3,}\d)\s*$",
    re.IGNORECASE,
)
_HAS_CJK = re.compile(rf"[{_CJK}]")
_LATIN_BRAND = re.compile(r"^[A-Z][A-Za-z0-9&+'.\-]*$")

# Words that make a space-separated Latin name one organisation ("Amazon Web Services", "Google LLC")
# or one product ("Google Places API", in tattou.ink's list) rather than a list of brands; casefolded.
GENERIC_NAME_WORDS = frozenset(
    {
        "ab",
        "ag",
        "ads",
        "analytics",
        "api",
        "apis",
        "app",
        "apps",
        "bank",
        "bv",
        "b.v.",
        "cloud",
        "co",
        "co.",
        "company",
        "corp",
        "corp.",
        "corporation",
        "data",
        "digital",
        "gmbh",
        "group",
        "holding",
        "holdings",
        "inc",
        "inc.",
        "international",
        "labs",
        "limited",
        "maps",
        "messaging",
        "llc",
        "ltd",
        "ltd.",
        "network",
        "networks",
        "nv",
        "n.v.",
        "pay",
        "places",
        "plc",
        "push",
        "platform",
        "pte",
        "sa",
        "s.a.",
        "sas",
        "sdk",
        "services",
        "service",
        "software",
        "solutions",
        "spa",
        "storage",
        "s.p.a.",
        "systems",
        "technologies",
        "technology",
        "web",
        "workspace",
    }
)


def _strip_filings(text: str) -> tuple[str, str, str]:
    icp = ""
    match = _ICP_FILING.search(text)
    if match:
        province, kind, number, suffix = match.groups()
        icp = f"{province}ICP{kind}{number}号" + (f"-{suffix}" if suffix else "")
        text = text[: match.start()] + " " + text[match.end() :]
    public_security = ""
    match = _PUBLIC_SECURITY_FILING.search(text)
    if match:
        public_security = f"{match.group(1)}公网安备 {match.group(2)}号"
        text = text[: match.start()] + " " + text[match.end() :]
    return _clean_lines(text), icp, public_security


def _clean_lines(text: str) -> str:
    """Each line's whitespace collapsed, empty lines dropped: a line break separates names."""
    return "\n".join(line for line in (clean_text(line) for line in text.split("\n")) if line)


def _strip_phone(text: str) -> tuple[str, str]:
    match = _TRAILING_PHONE.search(text)
    if not match:
        return text, ""
    phone = match.group("phone")
    name = _clean_lines(text[: match.start()])
    if sum(char.isdigit() for char in phone) < 5 or not name:
        return text, ""
    return name, phone


def _trailing_bracket(text: str) -> tuple[str, str] | None:
    """(text before, text inside) when the cell ends with a balanced bracket; else None."""
    if not text or text[-1] not in CLOSING_BRACKETS:
        return None
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        char = text[index]
        if char in CLOSING_BRACKETS:
            depth += 1
        elif char in OPENING_BRACKETS:
            depth -= 1
            if depth == 0:
                before, inside = clean_text(text[:index]), clean_text(text[index + 1 : -1])
                return (before, inside) if before and inside else None
    return None


def _latin_brands(text: str) -> list[str]:
    """The brands of a cell such as "Digicert Certum GlobalSign", or [] when it reads as one name."""
    tokens = text.split()
    if len(tokens) < 3 or _HAS_CJK.search(text):
        return []
    if all(_LATIN_BRAND.match(token) and token.casefold() not in GENERIC_NAME_WORDS for token in tokens):
        return tokens
    return []


def group_display_name(names: Iterable[str]) -> str:
    """The synthetic name of an unnamed group of recipients: its members joined by ", "."""
    return ", ".join(names)


def parse_recipient(cell: str | None) -> RecipientCell:
    """Take a recipient cell apart: names, group, phone, ICP and public-security filings, qualifier."""
    raw = cell or ""
    # A linked name ("Stripe <https://stripe.com>") is the name; the address is not part of it.
    lines = [clean_text(_LINK_ADDRESS.sub("", line)) for line in clean_markup(raw).split("\n")]
    text, icp, public_security = _strip_filings("\n".join(line for line in lines if line))
    text, phone = _strip_phone(text)
    text = text.strip(" ，,；;、。\n")
    common = {"phone": phone, "icp_filing": icp, "public_security_filing": public_security, "raw": raw}

    qualifier = ""
    bracket = _trailing_bracket(text)
    if bracket:
        before, inside = bracket
        members = split_list(inside).items
        if (
            len(members) >= 2
            and not inside.startswith(QUALIFIER_PREFIXES)
            and not _EXAMPLE_PREFIX.match(inside)
        ):
            return RecipientCell(names=members, group_name=before, **common)
        if not _separated(before):
            name, marker = _open_ended(before)
            # "腾讯云等（以实际合作为准）": one name, "and others", and the note on both.
            qualifier = f"{marker}（{inside}）" if marker else inside
            return RecipientCell(names=[name], qualifier=qualifier, **common)
        # "顺丰速运、中通快递等（以实际合作为准）": a list with a note on it.
        text, qualifier = before, inside

    # Several organisations in one cell without a group name: 、；; + " and ", line breaks always separate
    # them; spaces only between capitalised Latin brands (an ASCII comma does not: "DigiCert, Inc." is
    # one name).
    listed = [clean_text(part) for part in _split_recipients(text) if clean_text(part)]
    if _shares_head(listed):
        listed = [text]
    if listed:
        listed[-1], marker = _open_ended(listed[-1])
        if marker:
            qualifier = f"{marker}（{qualifier}）" if qualifier else marker
    names = listed if len(listed) != 1 else (_latin_brands(text) or listed)
    group_name = group_display_name(names) if len(names) >= 2 else ""
    return RecipientCell(names=names, group_name=group_name, qualifier=qualifier, **common)


def _open_ended(name: str) -> tuple[str, str]:
    """(name, 等) for a name ending in 等 / 等等 ("and others"), else (name, "")."""
    for marker in OPEN_ENDED_MARKERS:
        if name.endswith(marker) and len(name) > len(marker) + 1:
            return name[: -len(marker)].strip(), marker
    return name, ""


_LINK_ADDRESS = re.compile(r"\s*<(?:https?|mailto|tel):[^>\s]*>")
_RECIPIENT_SEPARATORS = re.compile(r"\s+(?:and|\+|&)\s+|\s*\+\s*|[、；;\n]", re.IGNORECASE)


# The head nouns of a kind of recipient (合作伙伴, 服务商, 机构): 广告、分析合作伙伴 is one kind, "advertising
# and analytics partners", whose first part has no head of its own.
_KIND_HEAD = re.compile(r"(?:合作伙伴|伙伴|合作方|服务商|提供商|供应商|代理商|机构|商家|公司|平台)$")


def _shares_head(parts: list[str]) -> bool:
    """Whether a 、-list is one kind of recipient whose earlier parts borrow the last part's head noun."""
    if len(parts) < 2 or not _KIND_HEAD.search(parts[-1]):
        return False
    return any(
        len(part) <= 4 and _HAS_CJK.search(part) and not _KIND_HEAD.search(part) for part in parts[:-1]
    )


def _separated(text: str) -> bool:
    return len([part for part in _split_recipients(text) if clean_text(part)]) >= 2


def _split_recipients(text: str) -> list[str]:
    """The names of a recipient cell, split outside brackets on 、；; + " and " " & " and line breaks."""
    if not _BRACKET_CHARACTERS.search(text):
        return _RECIPIENT_SEPARATORS.split(text)
    parts: list[str] = []
    for part, _separator in _top_level_parts(text, frozenset("、；;\n")):
        parts.extend(_RECIPIENT_SEPARATORS.split(part) if "(" not in part and "（" not in part else [part])
    return parts


def is_latin_name(name: str) -> bool:
    """A name without Chinese characters belongs in the English-name field."""
    return not _HAS_CJK.search(name or "")


# --- Scalar cells ---------------------------------------------------------------------------------

TRUE_WORDS = frozenset(
    normalize_key(word) for word in ("是", "必要", "必需", "必须", "yes", "y", "true", "1", "√")
)
FALSE_WORDS = frozenset(
    normalize_key(word) for word in ("否", "非必要", "不必要", "可选", "no", "n", "false", "0", "×")
)


def parse_bool(cell: str | None) -> bool | None:
    """是/否, yes/no, 必要/非必要 and the like; an empty cell is unknown (None)."""
    key = normalize_key(cell or "")
    if not key:
        return None
    if key in TRUE_WORDS:
        return True
    if key in FALSE_WORDS:
        return False
    raise CellError(_("Write yes or no (是 or 否), not “%(value)s”.") % {"value": clean_text(cell or "")})


def parse_choice(cell: str | None, *, choices: Iterable[tuple[str, str]], synonyms: Mapping[str, str]) -> str:
    """A TextChoices value from its code, its label or a synonym; an empty cell gives ""."""
    text = clean_text(cell or "")
    if not text:
        return ""
    choices = list(choices)
    key = normalize_key(text)
    known = {normalize_key(code): code for code, _label in choices}
    known |= {normalize_key(str(label)): code for code, label in choices}
    known |= {normalize_key(word): code for word, code in synonyms.items()}
    if key in known:
        return known[key]
    # Longer phrases ("通过 API 接口传输") contain a synonym; the longest contained synonym wins.
    contained = sorted((word for word in known if len(word) >= 2 and word in key), key=len, reverse=True)
    if contained:
        return known[contained[0]]
    raise CellError(
        _("“%(value)s” is not one of the accepted values.") % {"value": text},
        suggestions=[code for code, _label in choices],
    )


# Names people write that django-countries does not know in either language.
COUNTRY_SYNONYMS = {
    normalize_key(name): code
    for name, code in {
        "USA": "US",
        "U.S.": "US",
        "U.S.A.": "US",
        "US": "US",
        "America": "US",
        "United States": "US",
        "美国": "US",
        "英国": "GB",
        "Great Britain": "GB",
        "Czech republic": "CZ",
        "South Korea": "KR",
        "Korea": "KR",
        "韩国": "KR",
        "Russia": "RU",
        "Vietnam": "VN",
        "Taiwan": "TW",
        "Hong Kong": "HK",
        "香港": "HK",
        "澳门": "MO",
        "台湾": "TW",
        "中国": "CN",
        "China": "CN",
        "Mainland China": "CN",
        "UK": "GB",
        "England": "GB",
        "中国大陆": "CN",
        "中国内地": "CN",
        "境内": "CN",
        "中国香港": "HK",
        "中国澳门": "MO",
        "中国台湾": "TW",
    }.items()
}


def parse_countries(cell: str | None) -> list[str]:
    """ISO 3166 alpha-2 codes from codes or English or Chinese country names, one or several."""
    codes: list[str] = []
    for item in split_list(cell).items:
        code = (
            COUNTRY_SYNONYMS.get(normalize_key(item))
            or countries.alpha2(item)
            or countries.by_name(item)
            or countries.by_name(item, language="zh-hans")
        )
        if not code:
            raise CellError(
                _("“%(value)s” is not a country or region this register knows.") % {"value": item}
            )
        if code not in codes:
            codes.append(code)
    return codes


# Regions a table names where a country would go. A region is stored as its member states, so that every
# query by country finds it ("in Germany" matches "EU") and "in the EU" is "in any of these"; the words
# as published are kept beside them (``Operation.processing_locations``).
EU_MEMBER_STATES = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT",
    "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
)  # fmt: skip
EEA_MEMBER_STATES = (*EU_MEMBER_STATES, "IS", "LI", "NO")
REGIONS = {
    normalize_key(name): (code, members)
    for names, code, members in (
        (("EU", "European Union", "欧盟", "E.U."), "EU", EU_MEMBER_STATES),
        (("EEA", "European Economic Area", "欧洲经济区"), "EEA", EEA_MEMBER_STATES),
    )
    for name in names
}
# Words that say "anywhere" or "it depends": kept as text and flagged, never read as a country.
VAGUE_LOCATIONS = frozenset(
    normalize_key(word)
    for word in (
        "Global", "Worldwide", "World", "Varies", "Various", "Multiple", "International", "Everywhere",
        "全球", "全世界", "境外", "海外", "多地", "不定",
    )
)  # fmt: skip
# "Varies by provider", "Depending on the region": "it depends", said in a phrase.
_VAGUE_PHRASE = re.compile(r"^(?:varies|varying|various|depends|depending)\b", re.IGNORECASE)
# "EU regions", "US region": a cloud provider's regions in a place are the place.
_REGION_WORD = re.compile(r"\s+(?:cloud\s+)?regions?$", re.IGNORECASE)
_LOCATION_SEPARATORS = re.compile(r"\s+(?:and|&|\+)\s+|[、，,；;/\n]", re.IGNORECASE)


@dataclass(frozen=True)
class LocationCell:
    """The places a cell names: countries (regions expanded), its regions, vague words and the rest."""

    text: str
    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    vague: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def country_code(name: str) -> str | None:
    """The ISO code of one country name (English or Chinese, synonyms and codes too), or None."""
    name = clean_text(name)
    if not name:
        return None
    if name.endswith(".") and not COUNTRY_SYNONYMS.get(normalize_key(name)):
        name = name.rstrip(".")  # a sentence's full stop, not "U.S."
    return (
        COUNTRY_SYNONYMS.get(normalize_key(name))
        or (countries.alpha2(name) if len(name) == 2 and name.isupper() else None)
        or countries.by_name(name, insensitive=True)
        or countries.by_name(name, language="zh-hans")
        or None
    )


def parse_locations(cell: str | None) -> LocationCell:
    """Where a cell says data is (or a company sits): "USA, Germany, Ireland", "EU (Amsterdam)", "Global"."""
    text = clean_text((cell or "").replace("\n", ", "))
    found: list[str] = []
    regions: list[str] = []
    vague: list[str] = []
    unknown: list[str] = []
    for part in _LOCATION_SEPARATORS.split(cell or ""):
        part = clean_text(part)
        if not part:
            continue
        places = [part]
        bracket = _trailing_bracket(part)
        if bracket:
            # "EU (Sweden)" is Sweden; "EU (Amsterdam)" is the EU (a city is not a country).
            before, inside = bracket
            places = [inside] if country_code(inside) else [before]
        for place in places:
            key = normalize_key(place)
            if key not in REGIONS and not country_code(place) and _REGION_WORD.search(place):
                bare = _REGION_WORD.sub("", place)
                if normalize_key(bare) in REGIONS or country_code(bare):
                    place, key = bare, normalize_key(bare)
            if key in VAGUE_LOCATIONS or _VAGUE_PHRASE.match(place):
                vague.append(place)
            elif key in REGIONS:
                code, members = REGIONS[key]
                regions.append(code)
                found.extend(members)
            elif code := country_code(place):
                found.append(code)
            else:
                unknown.append(place)
    return LocationCell(
        text=text,
        countries=tuple(dict.fromkeys(found)),
        regions=tuple(dict.fromkeys(regions)),
        vague=tuple(vague),
        unknown=tuple(unknown),
    )


# --- Markup and markers in cells ------------------------------------------------------------------

# What tables write for "nothing here" (casefolded; all of them short, so longer cells are not looked up).
EMPTY_MARKERS = frozenset(
    word.casefold()
    for word in ("-", "--", "—", "－", "/", "／", "无", "暂无", "N/A", "NA", "none", "nil", "不涉及", "×")
)
_EMPTY_MARKER_CHARS = max(len(word) for word in EMPTY_MARKERS)
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_HTML_LINK = re.compile(
    r"<a\b[^>]*\bhref\s*=\s*[\"']([^\"']+)[\"'][^>]*>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL
)
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_FOOTNOTE_STARS = re.compile(r"(?<=\S)\s*(?:\\?\*)+$")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})
_MARKUP_HINT = re.compile(r"[\[<*_“”‘’]|  ")


def _link(text: str, address: str) -> str:
    """A link as the document readers show it: its text, and its address where that says more."""
    text, address = clean_text(text), address.strip()
    bare = re.sub(r"^(mailto|tel):", "", address, flags=re.IGNORECASE)
    if not text or text.rstrip("/") in (address.rstrip("/"), bare.rstrip("/")):
        return text or address
    return f"{text} <{address}>"


# A data-items cell that says the recipient gets no personal data at all ("No personal data (code only)",
# 不涉及个人信息): no items, and not an unmapped one; the text stays in the operation's published items.
_NO_PERSONAL_DATA = re.compile(
    r"^\s*(?:no\s+personal\s+(?:data|information)|(?:不涉及|无|不收集|不处理)(?:任何)?个人信息)(?![\w\u4e00-\u9fff])",
    re.IGNORECASE,
)


def states_no_personal_data(text: str) -> bool:
    """Whether a data-items cell says that no personal data is involved."""
    return bool(_NO_PERSONAL_DATA.match(text or ""))


def is_empty_marker(text: str) -> bool:
    """Whether a cell says "nothing here" (-, /, 无, N/A, none…)."""
    text = text.strip()
    return len(text) <= _EMPTY_MARKER_CHARS and text.casefold() in EMPTY_MARKERS


def clean_markup(cell: str | None) -> str:
    """A cell without the markup of the page it was copied from: links kept (URL, and text where it
    differs), ``<br>`` as a line break, bold markers, tags, footnote stars and smart quotes dropped, and an
    empty marker (-, /, 无, N/A, none) as an empty cell."""
    text = cell or ""
    if is_empty_marker(text):
        return ""
    # Most cells of a spreadsheet have no markup: two cheap checks, no cache entry.
    if not _MARKUP_HINT.search(text):
        return text
    return _clean_markup(text)


@functools.lru_cache(maxsize=8192)
def _clean_markup(text: str) -> str:
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_LINK.sub(lambda match: _link(_HTML_TAG.sub("", match.group(2)), match.group(1)), text)
    text = _MARKDOWN_LINK.sub(lambda match: _link(match.group(1), match.group(2)), text)
    if "<" in text:
        text = _HTML_TAG.sub(
            lambda match: "" if match.group(0).startswith(("<http", "<mailto")) else "", text
        )
    text = _BOLD.sub(r"\2", text).replace("\\_", "_").translate(_SMART_QUOTES)
    text = "\n".join(_FOOTNOTE_STARS.sub("", " ".join(line.split())) for line in text.split("\n"))
    text = "\n".join(line for line in text.split("\n") if line)
    return "" if is_empty_marker(text) else text


def cell_url(cell: str | None) -> str:
    """The address in a link cell: "text <https://…>", "[text](https://…)" or a bare address."""
    text = clean_markup(cell or "")
    match = re.search(r"<(https?://[^>\s]+)>", text) or re.search(r"https?://\S+", text)
    if match:
        return match.group(1) if match.re.pattern.startswith("<") else match.group(0)
    return text


def parse_url(cell: str | None) -> str:
    """A web address; a bare host (www.example.com) gets https:// in front."""
    text = clean_text(cell_url(cell))
    if not text:
        return ""
    if "://" not in text:
        text = f"https://{text}"
    try:
        URLValidator(schemes=["http", "https"])(text)
    except ValidationError:
        raise CellError(_("“%(value)s” is not a web address.") % {"value": clean_text(cell or "")}) from None
    return text
