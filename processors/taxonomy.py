"""Alias normalisation: free-text data items, purposes and actions onto the taxonomy's codes.

``Taxonomy`` is a read-only snapshot (built once from the database or from plain data) that maps
the text real tables publish — 手机号码, 识别身份证信息, 钉钉审批流，包含姓名手机 — onto category,
purpose and action codes. Every comparison goes through ``normalize_key``, the one definition of
"the same text". ``taxonomy_sync`` is the only write: it loads the built-in taxonomy fixture.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from django.db import transaction
from django.db.models import Max

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
    """Exact lookup of purpose or action codes by code, name or alias."""

    def __init__(self, terms: Iterable[Sequence], aliases: Iterable[Sequence[str]] = ()) -> None:
        self.keys: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        terms = list(terms)
        for term in terms:
            code, name_zh, name_en = term[:3]
            if len(term) > 3 and term[3] is not None:
                self.ids[code] = term[3]
            for text in (code, name_zh, name_en):
                self.keys.setdefault(normalize_key(text), code)
        known = {term[0] for term in terms}
        for text, code in aliases:
            if code in known:
                self.keys.setdefault(normalize_key(text), code)

    def map(self, text: str) -> TermMapping:
        stripped, open_ended = _strip_open_ended_text(text)
        # The whole text first, so that a name with "and" or a slash in it stays one term.
        whole = self.keys.get(normalize_key(stripped)) or self.keys.get(
            normalize_key(_AND_WORD.sub("&", stripped))
        )
        if whole:
            return TermMapping((whole,), (), open_ended)
        codes: dict[str, None] = {}
        unmapped: list[str] = []
        for part in _TERM_SEPARATORS.split(stripped):
            part = part.strip()
            if not normalize_key(part):
                continue
            part, _ = _strip_open_ended_text(part)
            code = self.keys.get(normalize_key(part))
            if code:
                codes[code] = None
            elif part:
                unmapped.append(part)
        return TermMapping(tuple(codes), tuple(unmapped), open_ended)


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
        self._categories: dict[str, str] = {key: code for key, (_, code) in ranked.items()}
        self._scan = _scan_pattern(key for key in self._categories if len(key) >= MIN_SCAN_KEY_LENGTH)
        self._purposes = _TermIndex(purposes, purpose_aliases)
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
                found = self._by_key[keys] = self._map_key(*keys)
            mapping = self._by_text[text] = ItemMapping(text, *found)
        return mapping

    def map_items(self, texts: Iterable[str]) -> list[ItemMapping]:
        """Map many items; each distinct text is worked out once."""
        return [self.map_item(text) for text in texts]

    def _map_key(self, key: str, stripped: str) -> tuple[tuple[str, ...], str]:
        whole = self._exact_or_ocr(key)
        if whole:
            return whole
        stripped = _strip_open_ended(stripped)
        if not stripped:
            return (), ""
        whole = self._exact_or_ocr(stripped)
        if whole:
            return whole
        codes: dict[str, None] = {}
        for part in _COMPOSITE_SEPARATORS.split(stripped):
            part = _strip_open_ended(part)
            if not part:
                continue
            found = self._exact_or_ocr(part)
            codes.update(dict.fromkeys(found[0] if found else self._scan_codes(part)))
        if not codes:
            # A separator word inside an alias (交易和消费记录…) must not hide it.
            codes.update(dict.fromkeys(self._scan_codes(stripped)))
        if not codes:
            return (), ""
        return tuple(codes), DataItem.Match.COMPOSITE.value

    def _exact_or_ocr(self, key: str) -> tuple[tuple[str, ...], str] | None:
        code = self._categories.get(key)
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

    def _scan_codes(self, key: str) -> list[str]:
        if self._scan is None:
            return []
        return [self._categories[found.group()] for found in self._scan.finditer(key)]

    # --- purposes and actions -----------------------------------------------------------------------

    def map_purposes(self, text: str) -> TermMapping:
        """Map a published purpose text (possibly several, joined by 、/ and) onto purpose codes."""
        return self._purposes.map(text or "")

    def map_actions(self, text: str) -> TermMapping:
        """Map a published action list such as 收集、存储、使用…等 onto action codes."""
        return self._actions.map(text or "")

    # --- lookups ------------------------------------------------------------------------------------

    def resolve_category(self, value: str) -> str | None:
        """The code of the category (group or leaf) whose code, name or alias equals the value."""
        return self._categories.get(normalize_key(value or ""))

    def suggest_categories(self, value: str, limit: int = 3) -> list[str]:
        """Names or aliases close to a value that matched nothing, at most one per category."""
        key = normalize_key(value or "")
        if not key or limit <= 0:
            return []
        suggestions: list[str] = []
        seen: set[str] = set()
        for candidate in difflib.get_close_matches(key, self._display, n=limit * 5, cutoff=0.5):
            code = self._categories[candidate]
            if code not in seen:
                seen.add(code)
                suggestions.append(self._display[candidate])
            if len(suggestions) == limit:
                break
        return suggestions

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
    codes = {code for code, _, _ in existing}
    names_zh = {name for _, name, _ in existing}
    names_en = {name for _, _, name in existing}
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
