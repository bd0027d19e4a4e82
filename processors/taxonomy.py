"""The one category resolver: text onto the taxonomy's categories, purposes and actions.

``Taxonomy`` is a read-only snapshot (built once from the database or from plain data) that maps
the text real tables publish — 手机号码, 识别身份证信息, 钉钉审批流，包含姓名手机 — onto category,
purpose and action codes. Every comparison goes through ``normalize_key``, the one definition of
"the same text".

Whoever names a category — the API and browser filters, the admin's list filters, deletion notices,
the category pages and the importer — resolves it here, so they all give the same answer for the same
text: ``categories_resolve`` (raises ``UnknownCategory`` with "did you mean" suggestions) and
``category_find`` (None instead) over ``Taxonomy.resolve_category``, which the importer's item mapping
uses too; ``purposes_resolve`` does the same for purposes. ``taxonomy_sync`` is the only write: it
loads the built-in taxonomy fixture.

A data item maps, in this order: (1) exactly, by code, name or alias, also once the words that change
nothing are taken off (您的外部存储信息, IMEI信息, 设备资料 → 设备信息), so a generic item such as 设备信息
or 联系方式 maps to its *group*; (2) without a trailing 等; (3) as an OCR phrase (识别身份证信息); (4) part
by part, split on brackets and 包含/和/及; (5) by the known items inside a part, leftmost and longest first
(手机型号 beats 手机; 手机 and 电话 count only as the head noun, so 读取手机状态 never is a phone number).
A group is dropped when one of its own leaves is found too (设备信息（IMEI）→ the IMEI leaf). An item that
is only known items and filler words (姓名手机) is "composite"; one whose words merely *contain* a known
item (持卡人身份证号码) is "inferred — needs review", unless what it guessed is a group whose leaves the
item names too. Before a slash, a word borrows the head after it (播放/曲库操作: 播放操作). An item that
names no known item outright is tried once more (rules 7 and 8) without what it says it is for (是否在通话
用于提供上报服务) and without Latin product names before it (Spotify OAuth 授权码); and a one-character
item borrows the stem of the item before it (设备宽、高, rule 9). Permissions (存储权限, READ_PHONE_STATE)
belong to the ``permission`` group, not to personal data. ``infer_items_from_text`` finds the items a
purpose or scenario names only by an act (刷脸登录). Purposes are matched by keyword in one text, never
split on 、.

Why one module, over 700 lines: the snapshot and the sync read one document the same way
(``load_fixture``, aliases as text or ``{"text", "since"}``), and the sync, in the last section, is the
only code that writes the vocabulary the snapshot reads. The mapping rules above grew with the SDK
vocabulary (issue 11); the sync section is the one to move out next, as a whole.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from django.db import transaction
from django.db.models import F, Max
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from processors.models import (
    CategoryAlias,
    DataCategory,
    DataItem,
    ProcessingAction,
    Purpose,
    PurposeAlias,
    TaxonomyRelease,
)
from processors.text import normalize_key

FIXTURE_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "taxonomy.json"

# Shorter keys (手, 卡) would match inside almost anything, so the scan (rule 5) ignores them.
MIN_SCAN_KEY_LENGTH = 2

# Rule 5 again: these keys name a thing only as the head noun, the last word of an item. Chinese puts
# the head last, so 姓名手机 names a phone but 手机型号, 手机厂商名 and 您手机当前的任务 name a model, a maker
# and running tasks; 设备蓝牙地址 is no postal address.
HEAD_ONLY_KEYS = frozenset({"手机", "电话", "地址", "phone", "mobile", "address"})

# Rule 6: words around an item that change nothing: 您的外部存储信息 is 外部存储, IMEI信息 is IMEI.
# Possessives chain (您手机当前的服务地信息 is 服务地信息), so the prefix repeats; 手机 only with 的 after it,
# because 手机型号 and 手机号 are items of their own.
_FILLER_PREFIX = re.compile(
    r"^(?:例如|比如|包括|如|您的|您|你的|读取|获取|收集|采集|当前的?|设备的?|手机(?:当前)?的|订单(?:中)?的|加密(?:处理)?的)+"
)
_GENERIC_SUFFIX = re.compile(r"(?:中的|的)?(?:相关)?(?:信息|数据|资料|详情|information|info|data|details)$")
# What may be left of an item once the known items inside it are taken out, for it still to be just
# those items run together (姓名手机) rather than a longer phrase that contains one (持卡人身份证号码).
_FILLER_LEFTOVER = re.compile(r"[\s的之和及与或等、,;:.()\[\]/+-]|信息|数据|以及|包括|包含|您|如")
_BRACKETS = re.compile(r"[()\[\]]")
# Rule 4: Chinese lets words before a slash borrow the head of the word after it (播放/曲库操作 is 播放操作
# and 曲库操作, 登录/注册记录 is 登录记录 and 注册记录).
_SHARED_HEAD = re.compile(
    r"(?<![\u4e00-\u9fff/])([\u4e00-\u9fff]{1,4})/([\u4e00-\u9fff]{3,})(?![\u4e00-\u9fff/])"
)
# Rule 7: what an item is for is no part of it (是否在通话用于提供上报服务 is 是否在通话).
_PURPOSE_CLAUSE = re.compile(r"用于|用以|以便")
# Rule 8: Latin words, then a space, before an item with Chinese in it name the service or product the item
# belongs to (Spotify OAuth 授权码, Facebook 用户ID), not another item.
_LATIN_QUALIFIER = re.compile(r"[A-Za-z][A-Za-z0-9.&'+-]*\s+")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ENGLISH_SEPARATORS = re.compile(r"\s*(?:,|;|/|\band\b|\bor\b|&)\s*", re.IGNORECASE)
_ASCII_LETTER = re.compile(r"[A-Za-z]")

# Purpose prose names its purposes in passing (提供更安全、高效、准确的域名解析服务 is one purpose text):
# it is scanned for keywords, never split. Keys this generic would find a purpose in any sentence.
PURPOSE_SCAN_EXCLUDED = frozenset({"安全", "信息化", "support", "hr", "oa", "推荐", "security"})

# Suggestions for a purpose text that names no purpose (``suggest_purposes``) go by its words: the
# two-character words of its Chinese, the words of its English. These say nothing about which purpose
# a text names (提供短信发送服务 is about 短信 and 发送, not 提供 or 服务), so they never count.
PURPOSE_FILLER_WORDS = frozenset({
    "服务", "提供", "用于", "实现", "功能", "相关", "用户", "信息", "数据", "进行", "帮助", "支持", "使用",
    "以及", "我们", "平台", "应用", "产品", "业务", "管理", "为了", "以便", "通过", "包括", "第三",
    "and", "or", "the", "for", "with", "of", "to", "in", "on", "by", "an", "as", "our", "your", "via",
    "service", "services", "provider", "providers", "data", "purpose", "purposes", "management",
    "platform", "tool", "tools", "user", "users", "processing", "personal", "information", "system",
    "systems", "solution", "solutions", "third", "party", "processor", "processors", "subprocessor",
})  # fmt: skip
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9+]*")
_CJK_FILLER = re.compile("|".join(sorted(word for word in PURPOSE_FILLER_WORDS if not word.isascii())))

# Data items named only in a purpose or scenario (刷脸登录): acts that cannot happen without the data.
# Kept short on purpose: 根据IP识别用户手机号 says how a number is found, not that it is shared.
SCENARIO_ITEMS = (
    ("刷脸", "biometric.face"),
    ("人脸识别", "biometric.face"),
    ("人脸验证", "biometric.face"),
    ("人脸核身", "biometric.face"),
    ("人脸核验", "biometric.face"),
    ("活体检测", "biometric.face"),
    ("面部识别", "biometric.face"),
    ("face id", "biometric.face"),
    ("facial recognition", "biometric.face"),
    ("指纹登录", "biometric.fingerprint"),
    ("指纹解锁", "biometric.fingerprint"),
    ("指纹支付", "biometric.fingerprint"),
    ("指纹识别", "biometric.fingerprint"),
    ("touch id", "biometric.fingerprint"),
    ("声纹识别", "biometric.voiceprint"),
    ("声纹验证", "biometric.voiceprint"),
    ("虹膜识别", "biometric.iris"),
)

# Rule 2: a trailing 等 / 等等 / etc. says "and more", it is not an item. On the text as typed the
# spaces still tell "phone etc." from a word ending in etc; on a normalized key only the rest can.
_OPEN_ENDED_TEXT = re.compile(r"\s*(?:等等|等|(?<![a-z])etc\.?|…+|\.{3,})[\s,.;:。，、；：]*$", re.IGNORECASE)
_OPEN_ENDED = re.compile(r"(?:等等|等|…+|\.{3,})[,.;:。]*$")
_TRAILING_PUNCTUATION = re.compile(r"[,.;:。]+$")

# Rule 3: OCR phrases name the document they read. Tried in order, so 识别X信息 wins over 识别X.
_OCR_PATTERNS = (re.compile(r"^识别(.+)信息$"), re.compile(r"^识别(.+)$"), re.compile(r"^(.+)识别$"))
_OCR_SUFFIXES = ("照片", "图像", "")

# Rule 4, on a normalized key (NFKC and normalize_key have already folded ，、；（）【】 to ASCII).
_COMPOSITE_SEPARATORS = re.compile(r"[,;:/()\[\]]+|包含|包括|以及|及|和")

# Purposes and actions are split before normalising, because "and" needs the spaces around it.
_TERM_SEPARATORS = re.compile(r"[、，,；;/／]|\band\b|以及|和|及", re.IGNORECASE)
_AND_WORD = re.compile(r"\band\b", re.IGNORECASE)
_ASCII_WORD_CHAR = "a-z0-9_"


@dataclass(frozen=True)
class ItemMapping:
    """How one published data item maps onto categories."""

    text: str
    category_codes: tuple[str, ...]
    match: str

    @property
    def unmapped(self) -> bool:
        return not self.category_codes


@dataclass(frozen=True)
class TermMapping:
    """How a published purpose or action text maps onto codes."""

    codes: tuple[str, ...]
    unmapped: tuple[str, ...]
    open_ended: bool


@dataclass
class TaxonomySyncResult:
    """Rows created by one ``taxonomy_sync``; all zero when the version was already applied."""

    version: int
    applied: bool = False
    groups: int = 0
    categories: int = 0
    category_aliases: int = 0
    purposes: int = 0
    purpose_aliases: int = 0
    actions: int = 0
    skipped: list[str] = field(default_factory=list)

    KINDS: ClassVar[tuple[str, ...]] = (
        "groups",
        "categories",
        "category_aliases",
        "purposes",
        "purpose_aliases",
        "actions",
    )

    @property
    def created(self) -> int:
        return sum(getattr(self, kind) for kind in self.KINDS)

    def __str__(self) -> str:
        if not self.applied:
            return f"Taxonomy version {self.version} is already applied; nothing to do."
        counts = ", ".join(f"{getattr(self, kind)} {kind.replace('_', ' ')}" for kind in self.KINDS)
        return f"Applied taxonomy version {self.version}: created {counts}."


class _TermIndex:
    """Lookup of purpose or action codes by code, name or alias.

    A list of terms (收集、存储、使用…等) is split and each part looked up; with ``scan``, a text is one
    text, searched for the names and aliases it contains (prose is never cut into fragments).
    """

    def __init__(
        self,
        terms: Iterable[Sequence],
        aliases: Iterable[Sequence[str]] = (),
        *,
        scan: bool = False,
        scan_excluded: frozenset[str] = frozenset(),
    ) -> None:
        self.scan = scan
        self.scan_excluded = scan_excluded
        self.keys: dict[str, str] = {}
        # The same texts with their word breaks kept, for the scan: "cloud hosting" inside a sentence.
        self._spaced: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        terms = list(terms)
        for term in terms:
            code, name_zh, name_en = term[:3]
            if len(term) > 3 and term[3] is not None:
                self.ids[code] = term[3]
            for text in (code, name_zh, name_en):
                self.keys.setdefault(normalize_key(text), code)
                self._spaced.setdefault(spaced_key(text.replace("_", " ")), code)
        known = {term[0] for term in terms}
        # Every text that names a code, and its weight for suggestions: 2 for a name, 1 otherwise.
        self._texts: dict[str, tuple[str, int]] = {}
        self.names: dict[str, tuple[str, str]] = {}
        for term in terms:
            code, name_zh, name_en = term[:3]
            self.names[code] = (name_zh, name_en)
            self._texts[code.replace("_", " ")] = (code, 1)
            self._texts[name_zh] = self._texts[name_en] = (code, 2)
        for text, code in aliases:
            if code in known:
                self.keys.setdefault(normalize_key(text), code)
                self._spaced.setdefault(spaced_key(text), code)
                self._texts.setdefault(text, (code, 1))

    def map(self, text: str) -> TermMapping:
        stripped, open_ended = _strip_open_ended_text(text)
        # The whole text first, so that a name with "and" or a slash in it stays one term.
        whole = self.keys.get(normalize_key(stripped)) or self.keys.get(
            normalize_key(_AND_WORD.sub("&", stripped))
        )
        if whole:
            return TermMapping((whole,), (), open_ended)
        if self.scan:
            # A list of names (信息化/售后) is still a list; anything else is prose, searched whole.
            parts = [part for part in _TERM_SEPARATORS.split(stripped) if normalize_key(part)]
            listed = [self.keys.get(normalize_key(_strip_open_ended_text(part)[0])) for part in parts]
            if listed and all(listed):
                return TermMapping(tuple(dict.fromkeys(listed)), (), open_ended)
            codes = (
                dict.fromkeys(
                    self._spaced[found.group()] for found in self._pattern.finditer(spaced_key(stripped))
                )
                if self._pattern
                else {}
            )
            unmapped = () if codes or not normalize_key(stripped) else (stripped,)
            return TermMapping(tuple(codes), unmapped, open_ended)
        codes: dict[str, None] = {}
        unmapped: list[str] = []
        for part in _TERM_SEPARATORS.split(stripped):
            part = part.strip()
            if not normalize_key(part):
                continue
            part, _open_ended = _strip_open_ended_text(part)
            code = self.keys.get(normalize_key(part))
            if code:
                codes[code] = None
            elif part:
                unmapped.append(part)
        return TermMapping(tuple(codes), tuple(unmapped), open_ended)

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        keys = (
            key
            for key in self._spaced
            if len(key) >= MIN_SCAN_KEY_LENGTH and normalize_key(key) not in self.scan_excluded
        )
        return _scan_pattern(keys)

    def suggest(self, text: str, limit: int = 3) -> list[str]:
        """The codes whose names and aliases share the most meaningful words with a text, best first.

        A word is a two-character word of the text's Chinese or a word of its English, never a single
        character and never a filler (``PURPOSE_FILLER_WORDS``). A word of a term's own name counts 2, of
        an alias 1; a code needs 2, since one word an alias shares in passing is chance. Among those, the
        text's head word (Chinese and English put it last: 短信发送 is a sending, "notification
        delivery" a delivery) counts 1 more.
        """
        words, head = _meaning_words(text)
        if not words or limit <= 0:
            return []
        scored = []
        for order, (code, weights) in enumerate(self._word_weights.items()):
            score = sum(weights.get(word, 0) for word in words)
            if score >= 2:
                scored.append((-score - (head in weights), order, code))
        return [code for _score, _order, code in sorted(scored)[:limit]]

    @functools.cached_property
    def _word_weights(self) -> dict[str, dict[str, int]]:
        # code -> meaningful word -> 2 (in the term's own name) or 1 (in an alias or the code).
        weights: dict[str, dict[str, int]] = {code: {} for code in dict.fromkeys(self.keys.values())}
        for text, (code, weight) in self._texts.items():
            for word in _meaning_words(text)[0]:
                if weights[code].get(word, 0) < weight:
                    weights[code][word] = weight
        return weights


def _meaning_words(text: str) -> tuple[set[str], str]:
    """The meaningful words of a text (``_TermIndex.suggest``) and its head word ("" without one)."""
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    words: list[str] = []
    for found in re.finditer(f"{_CJK_RUN.pattern}|{_LATIN_WORD.pattern}", folded):
        chunk = found.group()
        if _CJK_RUN.fullmatch(chunk):
            # Fillers are cut out first, so that no word straddles one (提供短信发送服务: 短信, 信发, 发送).
            for piece in _CJK_FILLER.split(chunk):
                words.extend(piece[start : start + 2] for start in range(len(piece) - 1))
        else:
            # Plurals fold onto the singular (payments, notifications); "ss" (access) stays.
            words.append(chunk[:-1] if len(chunk) > 3 and chunk.endswith("s") and chunk[-2] != "s" else chunk)
    meaningful = [word for word in words if word not in PURPOSE_FILLER_WORDS]
    return set(meaningful), meaningful[-1] if meaningful else ""


class Taxonomy:
    """A read-only snapshot of categories, purposes and actions with every lookup precomputed."""

    def __init__(
        self,
        categories: Iterable[Sequence],
        category_aliases: Iterable[Sequence[str]],
        purposes: Iterable[Sequence] = (),
        purpose_aliases: Iterable[Sequence[str]] = (),
        actions: Iterable[Sequence] = (),
    ) -> None:
        categories = list(categories)
        self._category_ids: dict[str, int] = {}
        # key -> (rank, code): a leaf beats a group and a name beats an alias; first come wins a tie.
        ranked: dict[str, tuple[int, str]] = {}
        # key -> the text as the user typed it, for suggestions
        self._display: dict[str, str] = {}
        names: list[tuple[str, str, bool]] = []
        for row in categories:
            code, name_zh, name_en = row[:3]
            if len(row) > 3 and row[3] is not None:
                self._category_ids[code] = row[3]
            names.extend((text, code, True) for text in (name_zh, name_en, code))
        leaf_codes = {row[0] for row in categories if "." in row[0]}
        known = {row[0] for row in categories}
        entries = names + [(text, code, False) for text, code in category_aliases if code in known]
        for text, code, is_name in entries:
            key = normalize_key(text)
            if not key:
                continue
            rank = (0 if code in leaf_codes else 2) + (0 if is_name else 1)
            if key not in ranked or rank < ranked[key][0]:
                ranked[key] = (rank, code)
            if text != code:
                self._display.setdefault(key, text)
        self._categories: dict[str, str] = {key: code for key, (_rank, code) in ranked.items()}
        # Full rows, when the snapshot was built by ``load_categories`` or ``load_purposes``.
        self._category_rows: dict[str, DataCategory] = {}
        self._purpose_rows: dict[str, Purpose] = {}
        self._purposes = _TermIndex(purposes, purpose_aliases, scan=True, scan_excluded=PURPOSE_SCAN_EXCLUDED)
        self._actions = _TermIndex(actions)
        self._by_key: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}
        self._by_text: dict[str, ItemMapping] = {}

    @classmethod
    def load(cls) -> Taxonomy:
        """Build the taxonomy from the database in five queries."""
        return cls(
            DataCategory.objects.values_list("code", "name_zh", "name_en", "id"),
            CategoryAlias.objects.values_list("text", "category__code"),
            Purpose.objects.values_list("code", "name_zh", "name_en", "id"),
            PurposeAlias.objects.values_list("text", "purpose__code"),
            ProcessingAction.objects.values_list("code", "name_zh", "name_en", "id"),
        )

    @classmethod
    def load_categories(cls) -> Taxonomy:
        """Only the categories and their aliases, in one query, with the full category rows.

        Enough to resolve and suggest categories (a filter, a notice, a category page); the purposes,
        actions and the scan for composite items are left out.
        """
        categories, aliases = _rows_with_aliases(DataCategory)
        taxonomy = cls(_terms(categories), aliases)
        taxonomy._category_rows = categories
        return taxonomy

    @classmethod
    def load_purposes(cls) -> Taxonomy:
        """Only the purposes and their aliases, in one query, with the full purpose rows (for filters)."""
        purposes, aliases = _rows_with_aliases(Purpose)
        taxonomy = cls((), (), _terms(purposes), aliases)
        taxonomy._purpose_rows = purposes
        return taxonomy

    @classmethod
    def from_data(
        cls,
        categories: Iterable[Sequence],
        category_aliases: Iterable[Sequence[str]],
        purposes: Iterable[Sequence] = (),
        purpose_aliases: Iterable[Sequence[str]] = (),
        actions: Iterable[Sequence] = (),
    ) -> Taxonomy:
        """Build from plain tuples: categories, purposes and actions as ``(code, name_zh, name_en[, id])``,
        aliases as ``(text, code)``; group codes have no dot, aliases of unknown codes are ignored."""
        return cls(categories, category_aliases, purposes, purpose_aliases, actions)

    @classmethod
    def from_fixture(cls, data: dict[str, Any] | None = None) -> Taxonomy:
        """Build from the taxonomy fixture document without touching the database."""
        data = data if data is not None else load_fixture()
        nodes = [*data["groups"], *data["categories"]]
        return cls(
            [(node["code"], node["zh"], node["en"]) for node in nodes],
            [(_alias_text(alias), node["code"]) for node in nodes for alias in node.get("aliases", ())],
            [(p["code"], p["zh"], p["en"]) for p in data.get("purposes", ())],
            [
                (_alias_text(alias), p["code"])
                for p in data.get("purposes", ())
                for alias in p.get("aliases", ())
            ],
            [(a["code"], a["zh"], a["en"]) for a in data.get("actions", ())],
        )

    # --- data items ---------------------------------------------------------------------------------

    def map_item(self, text: str) -> ItemMapping:
        """Map one published data item onto category codes; never raises for user text."""
        text = text or ""
        mapping = self._by_text.get(text)
        if mapping is None:
            key = normalize_key(text)
            stripped, open_ended = _strip_open_ended_text(text)
            keys = (key, normalize_key(stripped) if open_ended else key)
            found = self._by_key.get(keys)
            if found is None:
                found = self._by_key[keys] = self._map_key(*keys) or self._map_english(stripped)
            if not found[0] or found[1] == DataItem.Match.INFERRED:
                found = self._map_qualified(text) or found
            mapping = self._by_text[text] = ItemMapping(text, *found)
        return mapping

    def _map_qualified(self, text: str) -> tuple[tuple[str, ...], str] | None:
        """Rules 7 and 8: the item of a text that says what it is for (报错日志用于改善SDK性能) or whose
        service it belongs to (Spotify OAuth 授权码, MusicKit 用户 Token), when that item maps outright."""
        clause = _PURPOSE_CLAUSE.search(text)
        if clause and clause.start() > 0:
            found = self.map_item(text[: clause.start()])
            if found.category_codes and found.match != DataItem.Match.INFERRED:
                return found.category_codes, found.match
        rest = text
        while _HAN.search(rest) and (qualifier := _LATIN_QUALIFIER.match(rest)):
            rest = rest[qualifier.end() :]
            found = self.map_item(rest)
            if found.category_codes and found.match != DataItem.Match.INFERRED:
                return found.category_codes, found.match
        return None

    def map_items(self, texts: Iterable[str]) -> list[ItemMapping]:
        """Map many items; each distinct text is worked out once.

        Rule 9: a one-character item borrows the stem of the item before it (设备宽、高 lists 设备宽 and
        设备高) when that reading is a known item; alone, 高 names nothing.
        """
        mappings: list[ItemMapping] = []
        previous = ""
        for text in texts:
            mapping = self.map_item(text)
            stem = previous[:-1] if len(previous) > 1 and _HAN.fullmatch(previous[-1]) else ""
            if mapping.unmapped and stem and _HAN.fullmatch(text):
                borrowed = self.map_item(stem + text)
                if borrowed.category_codes and borrowed.match != DataItem.Match.INFERRED:
                    mapping = ItemMapping(text, borrowed.category_codes, borrowed.match)
            mappings.append(mapping)
            previous = text
        return mappings

    def infer_items(self, text: str) -> list[ItemMapping]:
        """Data items a purpose or scenario text names only by an act (刷脸登录: a face), as inferred items.

        One item per category, in the order of the text, its ``text`` the phrase found (English in lower
        case); codes this taxonomy does not have are left out.
        """
        spaced = spaced_key(text)
        found: dict[str, ItemMapping] = {}
        for phrase, code in SCENARIO_ITEMS:
            at = spaced.find(phrase)
            if at < 0 or code not in self._known_codes or code in found:
                continue
            found[code] = ItemMapping(phrase, (code,), DataItem.Match.INFERRED.value)
        return sorted(found.values(), key=lambda mapping: spaced.find(mapping.text))

    def _map_key(self, key: str, stripped: str) -> tuple[tuple[str, ...], str] | None:
        whole = self._exact_or_ocr(key)
        if whole:
            return whole
        stripped = _strip_open_ended(stripped)
        if not stripped:
            return (), ""
        whole = self._exact_or_ocr(stripped) or self._exact_or_ocr(_BRACKETS.sub("", stripped))
        if whole:
            # 网卡（MAC)地址: brackets around a word inside a name do not split it.
            return whole
        codes: dict[str, None] = {}
        # Codes a part names outright, and codes only found inside a longer part (a guess).
        confident: set[str] = set()
        guessed: set[str] = set()
        for part in _COMPOSITE_SEPARATORS.split(_SHARED_HEAD.sub(self._share_head, stripped)):
            part = _strip_open_ended(part)
            if not part:
                continue
            found = self._exact_or_ocr(part)
            if found:
                codes.update(dict.fromkeys(found[0]))
                confident.update(found[0])
                continue
            scanned, covered = self._scan_codes(part)
            codes.update(dict.fromkeys(scanned))
            (confident if covered else guessed).update(scanned)
        if not codes:
            # A separator word inside an alias (交易和消费记录…) must not hide it.
            scanned, covered = self._scan_codes(stripped)
            codes.update(dict.fromkeys(scanned))
            (confident if covered else guessed).update(scanned)
        if not codes:
            return None
        specific = self._most_specific(codes)
        # A guess that a more specific code found elsewhere in the item replaces says nothing new
        # (自填的收货信息（收件人姓名、地址）: 收货信息 is the basic group, names and addresses its leaves).
        inferred = any(code in guessed and code not in confident for code in specific)
        match = DataItem.Match.INFERRED if inferred else DataItem.Match.COMPOSITE
        return specific, match.value

    def _share_head(self, found: re.Match[str]) -> str:
        """播放/曲库操作 read as 播放操作/曲库操作 when 播放 alone is no item but 播放操作 is (rule 4)."""
        first, second = found.group(1), found.group(2)
        if self._exact_or_ocr(first) is None and self._exact_or_ocr(first + second[-2:]) is not None:
            return f"{first}{second[-2:]}/{second}"
        return found.group()

    def _map_english(self, text: str) -> tuple[tuple[str, ...], str]:
        """An English item by its head: the known words it ends with (Recipient email address)."""
        if not _ASCII_LETTER.search(text):
            return (), ""
        codes: dict[str, None] = {}
        for part in _ENGLISH_SEPARATORS.split(text):
            words = part.split()
            # The longest known ending wins: "billing contact details" before "details".
            for start in range(1, len(words)):
                found = self._exact_or_ocr(normalize_key(" ".join(words[start:])))
                if found:
                    codes.update(dict.fromkeys(found[0]))
                    break
            else:
                found = self._exact_or_ocr(normalize_key(part))
                codes.update(dict.fromkeys(found[0] if found else ()))
        if not codes:
            return (), ""
        return self._most_specific(codes), DataItem.Match.INFERRED.value

    def _most_specific(self, codes: dict[str, None]) -> tuple[str, ...]:
        # 设备信息（IMEI、设备型号）: the group says nothing its own leaves do not say more precisely.
        groups = {code.partition(".")[0] for code in codes if "." in code}
        return tuple(code for code in codes if "." in code or code not in groups)

    def _exact_or_ocr(self, key: str) -> tuple[tuple[str, ...], str] | None:
        code = self._categories.get(key) or self._without_filler(key)
        if code:
            return (code,), DataItem.Match.ALIAS.value
        for pattern in _OCR_PATTERNS:
            found = pattern.match(key)
            if not found:
                continue
            document = found.group(1)
            for suffix in _OCR_SUFFIXES:
                code = self._categories.get(document + suffix)
                if code:
                    return (code,), DataItem.Match.OCR.value
        return None

    def _without_filler(self, key: str) -> str | None:
        """The code of a key once 您的 / 读取 before it and 信息 / 数据 after it are taken off."""
        bare = _GENERIC_SUFFIX.sub("", key)
        # 设备资料, 交易详情, payment info: another generic word for the one a name or alias uses.
        respelt = (bare + "信息", bare + "information", bare + "data") if bare != key else ()
        for candidate in (bare, _FILLER_PREFIX.sub("", key), _FILLER_PREFIX.sub("", bare), *respelt):
            if candidate and candidate != key and candidate in self._categories:
                return self._categories[candidate]
        return None

    @functools.cached_property
    def _known_codes(self) -> frozenset[str]:
        return frozenset(self._categories.values())

    @functools.cached_property
    def _scan(self) -> re.Pattern[str] | None:
        # Built on first use: resolving a category (a filter, a page) never needs it.
        return _scan_pattern(key for key in self._categories if len(key) >= MIN_SCAN_KEY_LENGTH)

    def _scan_codes(self, key: str) -> tuple[list[str], bool]:
        """The codes of the known items inside a key, and whether they cover it (姓名手机) or not."""
        if self._scan is None:
            return [], False
        end = len(_GENERIC_SUFFIX.sub("", key))
        codes: list[str] = []
        leftover = key
        for found in self._scan.finditer(key):
            if found.group() in HEAD_ONLY_KEYS and found.end() < end:
                continue
            codes.append(self._categories[found.group()])
            leftover = leftover.replace(found.group(), " ", 1)
        return codes, bool(codes) and not _FILLER_LEFTOVER.sub("", leftover)

    # --- purposes and actions -----------------------------------------------------------------------

    def map_purposes(self, text: str) -> TermMapping:
        """Map a published purpose text (possibly several, joined by 、/ and) onto purpose codes."""
        return self._purposes.map(text or "")

    def map_actions(self, text: str) -> TermMapping:
        """Map a published action list such as 收集、存储、使用…等 onto action codes."""
        return self._actions.map(text or "")

    def resolve_purpose(self, value: str) -> str | None:
        """The code of the one purpose whose code, name or alias equals the value (no splitting)."""
        return self._purposes.keys.get(normalize_key(value or ""))

    def suggest_purposes(self, text: str, limit: int = 3) -> list[str]:
        """Purpose codes close in meaning to a text that names none, the closest first.

        By the words they share, never by characters: 提供短信发送服务 shares 短信 and 发送 (its head)
        with 短信通知与验证码 and is offered that first, and nothing for sharing 服务 or 提供 (see
        ``_TermIndex.suggest``). An empty list when no purpose shares a meaningful word.
        """
        return self._purposes.suggest(text, limit)

    def purpose_name(self, code: str) -> str:
        """A purpose's name in the active language (the other one when it has none)."""
        name_zh, name_en = self._purposes.names[code]
        if (get_language() or "").startswith("en"):
            return name_en or name_zh
        return name_zh or name_en

    def purposes(self, codes: Sequence[str]) -> list[Purpose]:
        """The purpose rows of codes, in their order (one query unless built by ``load_purposes``)."""
        return _rows_by_code(Purpose, self._purpose_rows, codes)

    # --- lookups ------------------------------------------------------------------------------------

    def resolve_category(self, value: str) -> str | None:
        """The code of the category (group or leaf) whose code, name or alias equals the value."""
        return self._categories.get(normalize_key(value or ""))

    def suggest_categories(self, value: str, limit: int = 3) -> list[str]:
        """Names or aliases close in meaning to a value, at most one per category, the closest first.

        Compared by head: the generic 信息 / 数据 / data / information are taken off both sides first, so
        交易信息 is compared as 交易 (→ 交易记录, 交易订单) and never offered 部门信息 for sharing 信息. A
        candidate containing the head, or contained in it, beats one that is only spelt alike; among
        equals, the group of the best one comes first (交易 → transactions, orders, payment account).
        """
        key = normalize_key(value or "")
        head = _head(key)
        if not head or limit <= 0:
            return []
        matcher = difflib.SequenceMatcher(autojunk=False)
        matcher.set_seq2(head)
        scored: list[tuple[float, str]] = []
        for candidate in self._display:
            other = _head(candidate)
            if not other or candidate == key:
                continue
            matcher.set_seq1(other)
            if head in other or other in head:
                score = 1.0 + matcher.ratio()
            elif matcher.real_quick_ratio() >= 0.5 and matcher.quick_ratio() >= 0.5:
                score = matcher.ratio()
            else:
                continue
            if score >= 0.5:
                scored.append((round(score, 3), candidate))
        if not scored:
            return []
        # Ties go to the shorter, then the first in code-point order: the answer must not depend on the
        # order the database returned the names in (SQLite and PostgreSQL differ).
        scored.sort(key=lambda pair: (-pair[0], len(pair[1]), pair[1]))
        group = self._categories[scored[0][1]].partition(".")[0]
        scored.sort(key=lambda pair: (-pair[0], self._categories[pair[1]].partition(".")[0] != group))
        suggestions: list[str] = []
        seen: set[str] = set()
        for _score, candidate in scored:
            code = self._categories[candidate]
            if code not in seen:
                seen.add(code)
                suggestions.append(self._display[candidate])
            if len(suggestions) == limit:
                break
        return suggestions

    def categories(self, codes: Sequence[str]) -> list[DataCategory]:
        """The category rows of codes, in their order (one query unless built by ``load_categories``)."""
        return _rows_by_code(DataCategory, self._category_rows, codes)

    def category_id(self, code: str) -> int:
        """The database id of a category code (only for a taxonomy built by ``load``)."""
        try:
            return self._category_ids[code]
        except KeyError:
            raise KeyError(f"No category id for {code!r}: build the taxonomy with load().") from None

    def purpose_id(self, code: str) -> int:
        """The database id of a purpose code (only for a taxonomy built by ``load``)."""
        return self._purposes.ids[code]

    def action_id(self, code: str) -> int:
        """The database id of an action code (only for a taxonomy built by ``load``)."""
        return self._actions.ids[code]


def _rows_with_aliases(model) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A model's rows by code, in its own order, and its alias texts, in one query."""
    rows: dict[str, Any] = {}
    aliases: list[tuple[str, str]] = []
    # One row per alias (LEFT JOIN): every row is the whole term, plus one alias text or None.
    for row in model.objects.annotate(alias_text=F("aliases__text")):
        rows.setdefault(row.code, row)
        if row.alias_text is not None:
            aliases.append((row.alias_text, row.code))
    return rows, aliases


def _terms(rows: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [(row.code, row.name_zh, row.name_en, row.pk) for row in rows.values()]


def _rows_by_code(model, rows: dict[str, Any], codes: Sequence[str]) -> list[Any]:
    missing = [code for code in codes if code not in rows]
    if missing:
        rows = {**rows, **model.objects.in_bulk(missing, field_name="code")}
    return [rows[code] for code in codes]


# --- resolving what a person names ----------------------------------------------------------------


class UnknownCategory(LookupError):
    """Values that name no data category; ``suggestions`` maps each to close names or aliases."""

    def __init__(self, suggestions: dict[str, list[str]]) -> None:
        super().__init__(", ".join(suggestions))
        self.suggestions = suggestions

    def messages(self) -> list[str]:
        """One sentence per unknown value, with its "did you mean" when there is one."""
        messages = []
        for value, suggestions in self.suggestions.items():
            message = _("Unknown data category '%(value)s'.") % {"value": value}
            if suggestions:
                message += " " + _("Did you mean %(suggestions)s?") % {"suggestions": ", ".join(suggestions)}
            messages.append(message)
        return messages


def categories_resolve(
    values: Iterable[str | DataCategory], *, taxonomy: Taxonomy | None = None
) -> list[DataCategory]:
    """The categories named by codes, Chinese or English names or aliases (any width, case or spacing).

    Each category comes once, in the order named; categories pass through. ``UnknownCategory`` lists
    every value that names nothing, with suggestions. Costs one query, none when nothing needs resolving.
    """
    codes: dict[str, None] = {}
    given: dict[str, DataCategory] = {}
    unknown: list[str] = []
    for value in values:
        if isinstance(value, DataCategory):
            given.setdefault(value.code, value)
            codes.setdefault(value.code)
            continue
        taxonomy = taxonomy or Taxonomy.load_categories()
        code = taxonomy.resolve_category(value)
        if code is None:
            unknown.append(value)
        else:
            codes.setdefault(code)
    if unknown:
        raise UnknownCategory({value: taxonomy.suggest_categories(value) for value in unknown})
    wanted = [code for code in codes if code not in given]
    found = dict(zip(wanted, taxonomy.categories(wanted), strict=True)) if wanted else {}
    return [given.get(code) or found[code] for code in codes]


class UnknownPurpose(LookupError):
    """Values that name no purpose."""

    def __init__(self, values: list[str]) -> None:
        super().__init__(", ".join(values))
        self.values = values

    def messages(self) -> list[str]:
        """One sentence per unknown value."""
        return [_("Unknown purpose '%(value)s'.") % {"value": value} for value in self.values]


def purposes_resolve(values: Iterable[str], *, taxonomy: Taxonomy | None = None) -> list[Purpose]:
    """The purposes named by codes, names or aliases (any width, case or spacing), each once, in order.

    ``UnknownPurpose`` lists the values that name nothing. Costs one query.
    """
    taxonomy = taxonomy or Taxonomy.load_purposes()
    codes: dict[str, None] = {}
    unknown: list[str] = []
    for value in values:
        code = taxonomy.resolve_purpose(value)
        if code is None:
            unknown.append(value)
        else:
            codes.setdefault(code)
    if unknown:
        raise UnknownPurpose(unknown)
    return taxonomy.purposes(list(codes))


def infer_items_from_text(text: str, *, taxonomy: Taxonomy | None = None) -> list[ItemMapping]:
    """Data items a purpose or scenario text names only by an act (刷脸登录 → face data), match "inferred".

    For the importer: call it on a row's purpose and scenario cells and record each result as a data
    item of the row (its ``text`` is the phrase found, e.g. 刷脸) unless the row's own items already
    have that category. Costs one query without a taxonomy.
    """
    taxonomy = taxonomy or Taxonomy.load_categories()
    return taxonomy.infer_items(text or "")


def item_inferred_from(item: DataItem) -> tuple[str, str]:
    """Why an inferred item was inferred, for the review queue: ``(field, text)``.

    ``("purpose", …)`` or ``("usage_scenario", …)`` with the operation's cell, for an item found there
    (刷脸 in 刷脸登录) that the published items do not name; else ``("data_items", item text)``: its words
    contain a known item. Reads the item's operation (select it with the item).
    """
    operation = item.operation
    phrase = spaced_key(item.text)
    if phrase and phrase not in spaced_key(operation.data_items_text):
        for field_name in ("purpose_text", "usage_scenario"):
            text = getattr(operation, field_name)
            if phrase in spaced_key(text):
                return field_name.removesuffix("_text"), text
    return "data_items", item.text


def category_find(value: str, *, taxonomy: Taxonomy | None = None) -> DataCategory | None:
    """The category a code, a name or an alias names, or None (``categories_resolve`` without the error)."""
    taxonomy = taxonomy or Taxonomy.load_categories()
    code = taxonomy.resolve_category(value)
    return taxonomy.categories([code])[0] if code is not None else None


# --- the mapping rules' helpers -------------------------------------------------------------------


def _head(key: str) -> str:
    """A normalized key without the generic words around its head noun (交易信息 → 交易)."""
    return _FILLER_PREFIX.sub("", _GENERIC_SUFFIX.sub("", key)) or _GENERIC_SUFFIX.sub("", key)


def spaced_key(text: str) -> str:
    """``normalize_key`` word by word, the words kept apart by one space (for scanning English)."""
    return " ".join(key for key in (normalize_key(word) for word in (text or "").split()) if key)


def _strip_open_ended(key: str) -> str:
    return _TRAILING_PUNCTUATION.sub("", _OPEN_ENDED.sub("", key))


def _strip_open_ended_text(text: str) -> tuple[str, bool]:
    """Strip a trailing 等/etc. from text as typed; says whether there was one."""
    stripped = text.strip()
    found = _OPEN_ENDED_TEXT.search(stripped)
    if not found:
        return stripped, False
    return stripped[: found.start()].rstrip(), True


def _scan_pattern(keys: Iterable[str]) -> re.Pattern[str] | None:
    """One regex finding keys leftmost-longest, not inside a longer ASCII word.

    Keys are laid out as a trie so that each position costs a few character comparisons rather
    than one per alias; at every node the longer continuations come before stopping there.
    """
    trie: dict[str, dict] = {}
    for key in keys:
        node = trie
        for char in key:
            node = node.setdefault(char, {})
        node[""] = {}
    if not trie:
        return None
    word = f"[{_ASCII_WORD_CHAR}]"

    def branch(node: dict, last: str) -> str:
        options = [re.escape(char) + branch(child, char) for char, child in sorted(node.items()) if char]
        if "" in node:
            # An alias ending in an ASCII letter must not end inside an ASCII word (IP in IPhone).
            options.append(f"(?!{word})" if re.match(word, last) else "")
        if len(options) == 1:
            return options[0]
        return "(?:" + "|".join(options) + ")"

    ascii_start = {char: child for char, child in trie.items() if re.match(word, char)}
    other_start = {char: child for char, child in trie.items() if not re.match(word, char)}
    # Every key at one position starts with the same character, so one lookbehind covers them all.
    parts = []
    if ascii_start:
        parts.append(f"(?<!{word})" + branch(ascii_start, ""))
    if other_start:
        parts.append(branch(other_start, ""))
    return re.compile("|".join(parts))


# --- loading the built-in taxonomy ----------------------------------------------------------------


def load_fixture(path: Path = FIXTURE_PATH) -> dict[str, Any]:
    """The built-in taxonomy document (fixtures/taxonomy.json)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _alias_text(alias: str | dict[str, Any]) -> str:
    return alias if isinstance(alias, str) else alias["text"]


def _since(item: dict[str, Any], default: int = 1) -> int:
    return int(item.get("since", default)) if isinstance(item, dict) else default


def taxonomy_schema_ready(state_apps) -> bool:
    """Whether the migrated schema (post_migrate's ``apps``) has every column the taxonomy models use."""
    for model in (DataCategory, CategoryAlias, Purpose, PurposeAlias, ProcessingAction, TaxonomyRelease):
        try:
            migrated = state_apps.get_model(model._meta.label)
        except LookupError:
            return False
        columns = {f.column for f in migrated._meta.concrete_fields}
        if any(f.column not in columns for f in model._meta.concrete_fields):
            return False
    return True


def taxonomy_sync(*, data: dict[str, Any] | None = None, stdout: TextIO | None = None) -> TaxonomySyncResult:
    """Add the built-in taxonomy items newer than the last applied release; never touch existing rows."""
    data = data if data is not None else load_fixture()
    result = TaxonomySyncResult(version=int(data["version"]))
    with transaction.atomic():
        applied = TaxonomyRelease.objects.aggregate(latest=Max("version"))["latest"] or 0
        if result.version <= applied:
            return result
        _sync_categories(data, applied, result)
        _sync_purposes(data, applied, result)
        _sync_actions(data, applied, result)
        TaxonomyRelease.objects.create(version=result.version)
    result.applied = True
    if stdout is not None:
        stdout.write(str(result) + "\n")
        for message in result.skipped:
            stdout.write(f"  skipped: {message}\n")
    return result


def _new_nodes(items: list[dict], model, applied: int, result: TaxonomySyncResult) -> list[dict]:
    """Items newer than ``applied`` whose code and names are all still free."""
    existing = model.objects.values_list("code", "name_zh", "name_en")
    codes = {code for code, _zh, _en in existing}
    names_zh = {name for _code, name, _en in existing}
    names_en = {name for _code, _zh, name in existing}
    fresh = []
    for item in items:
        if _since(item) <= applied or item["code"] in codes:
            continue
        if item["zh"] in names_zh or item["en"] in names_en:
            # A user already named something else this way; theirs stays, ours waits for review.
            result.skipped.append(f"{model.__name__} {item['code']}: its name is taken")
            continue
        codes.add(item["code"])
        names_zh.add(item["zh"])
        names_en.add(item["en"])
        fresh.append(item)
    return fresh


def _new_aliases(items: list[dict], alias_model, owner_field: str, owners: dict[str, int], applied: int):
    """Alias rows newer than ``applied`` whose key is free and whose owner still exists."""
    taken = set(alias_model.objects.values_list("key", flat=True))
    rows = []
    for item in items:
        owner_id = owners.get(item["code"])
        if owner_id is None:
            continue
        for alias in item.get("aliases", ()):
            text = _alias_text(alias)
            if _since(alias, _since(item)) <= applied or normalize_key(text) in taken:
                continue
            row = alias_model(text=text, **{f"{owner_field}_id": owner_id})
            # The key is derived in clean(); the owner was just looked up, so skip its query.
            row.full_clean(exclude=[owner_field, "key"], validate_unique=False, validate_constraints=False)
            taken.add(row.key)
            rows.append(row)
    alias_model.objects.bulk_create(rows)
    return len(rows)


def _category(item: dict[str, Any], position: int, parent: DataCategory | None) -> DataCategory:
    node = DataCategory(
        code=item["code"],
        parent=parent,
        name_zh=item["zh"],
        name_en=item["en"],
        description_zh=item.get("description_zh", ""),
        description_en=item.get("description_en", ""),
        sensitive=bool(item.get("sensitive", False)),
        sensitive_gbt45574=item.get("sensitive_gbt45574"),
        position=position,
    )
    node.full_clean(exclude=["parent"], validate_unique=False, validate_constraints=False)
    return node


def _sync_categories(data: dict[str, Any], applied: int, result: TaxonomySyncResult) -> None:
    groups = data.get("groups", [])
    leaves = data.get("categories", [])
    positions = {item["code"]: index for index, item in enumerate(groups + leaves)}
    new_groups = _new_nodes(groups, DataCategory, applied, result)
    DataCategory.objects.bulk_create([_category(item, positions[item["code"]], None) for item in new_groups])
    result.groups = len(new_groups)

    parents = {node.code: node for node in DataCategory.objects.filter(parent__isnull=True)}
    new_leaves = []
    for item in _new_nodes(leaves, DataCategory, applied, result):
        parent = parents.get(item["code"].rpartition(".")[0])
        if parent is None:
            result.skipped.append(f"DataCategory {item['code']}: its group does not exist")
            continue
        new_leaves.append(_category(item, positions[item["code"]], parent))
    DataCategory.objects.bulk_create(new_leaves)
    result.categories = len(new_leaves)

    owners = dict(DataCategory.objects.values_list("code", "id"))
    result.category_aliases = _new_aliases(groups + leaves, CategoryAlias, "category", owners, applied)


def _sync_purposes(data: dict[str, Any], applied: int, result: TaxonomySyncResult) -> None:
    items = data.get("purposes", [])
    positions = {item["code"]: index for index, item in enumerate(items)}
    rows = []
    for item in _new_nodes(items, Purpose, applied, result):
        purpose = Purpose(
            code=item["code"],
            name_zh=item["zh"],
            name_en=item["en"],
            description_zh=item.get("description_zh", ""),
            description_en=item.get("description_en", ""),
            position=positions[item["code"]],
        )
        purpose.full_clean(validate_unique=False, validate_constraints=False)
        rows.append(purpose)
    Purpose.objects.bulk_create(rows)
    result.purposes = len(rows)
    owners = dict(Purpose.objects.values_list("code", "id"))
    result.purpose_aliases = _new_aliases(items, PurposeAlias, "purpose", owners, applied)


def _sync_actions(data: dict[str, Any], applied: int, result: TaxonomySyncResult) -> None:
    items = data.get("actions", [])
    positions = {item["code"]: index for index, item in enumerate(items)}
    rows = []
    for item in _new_nodes(items, ProcessingAction, applied, result):
        action = ProcessingAction(
            code=item["code"],
            name_zh=item["zh"],
            name_en=item["en"],
            pipl_article_4=bool(item.get("pipl_article_4", False)),
            position=positions[item["code"]],
        )
        action.full_clean(validate_unique=False, validate_constraints=False)
        rows.append(action)
    ProcessingAction.objects.bulk_create(rows)
    result.actions = len(rows)
