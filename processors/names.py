"""Near-identical company names: possible duplicates for a person to look at, never merged silently.

天聚地合（苏州）数据股份有限公司 and 天聚地合(苏州)科技股份有限公司 may be one company or two; the register
reports such pairs (at import, and as a finding) and leaves the decision to a person, who adds an alias.

Two names are near-identical when the similarity of their match keys (``text.normalize_key``: width,
case, spacing and brackets folded) is at least ``NEAR_DUPLICATE_RATIO``: rapidfuzz's normalised Indel
similarity, ``2·LCS / (len a + len b)``, computed in C++. It was chosen over difflib's ratio, which took
seconds per import on registers of a few thousand similar names (difflib matches blocks greedily, so its
ratio is never above this one: every pair difflib reported is still reported).

Only names that could reach the ratio are compared: lengths within the window the ratio allows, and
names that share a bigram few names have (every name shares 有限公司 with every other; two close names
share something rarer); when a name has no rare bigram, it is compared with every name of a fitting
length.

Names that are far apart as strings can still be one company: a brand and the company behind it (支付宝 /
支付宝（中国）网络技术有限公司, 高德开放平台 / 高德软件有限公司), a romanised or translated name (Alipay),
an acronym (AWS / Amazon Web Services) or a legal name beside its short form (Stripe, Inc. / Stripe).
These are found by three more rules, each reporting a pair the ratio misses: (1) the same *core*, the name
without its legal form and bracketed notes (Amazon Web Services, Inc. / Amazon Web Services); (2) two
names of one entry of the brand list (``fixtures/brands.json``); (3) a name without a legal form that
begins the core of a Chinese legal name once its place name is taken off (百度 /
北京百度网讯科技有限公司). A name written "<company> / <product>" (Apple Inc. / Apple Music Catalog API)
goes by each side's core as well as its own in rules 1 and 2. Group members (华为技术有限公司 /
华为软件技术有限公司) differ in their cores, so rule 1 keeps them apart; the ratio may still report them,
for a person to decide.

``recipient_kind`` says whether a published name is a brand: one with no legal form that the brand list
knows (decision 28).
"""

import functools
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from rapidfuzz import fuzz, process

from processors.text import normalize_key

BRANDS_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "brands.json"

# A legal form at the end of a match key (keys are casefolded, without spaces): what makes a name a
# company's legal name rather than a brand. Taken off, repeatedly, to get a name's core.
# Two- and three-letter forms (co, sa, ab) count only after a comma or period, because a key has no spaces
# and many words end in them (atlas, costco); the longer ones count glued on too (googleinc).
_LEGAL_FORM = re.compile(
    r"(?:[,.]+(?:co|ag|ab|bv|b\.v|nv|n\.v|sa|s\.a|as|oy|kk|k\.k|aps|a/s)"
    r"|[,.]*(?:inc|incorporated|llc|l\.l\.c|ltd|limited|gmbh|corp|corporation|company|plc|pbc|pte|sarl|srl|"
    r"spa|s\.p\.a|s\.r\.o|s\.a\.s|a\.s|sas))\.?$"
    r"|(?:有限责任公司|股份有限公司|有限公司|股份公司|公司|集团)$"
)
# Organisations that are no company but no brand either (电信终端产业协会移动安全工作委员会).
_ORGANISATION_WORD = re.compile(r"(?:协会|委员会|研究院|研究所|中心|大学|学院|医院|银行|基金会|局|部|厅|院)$")
# Words an English company name carries beside its brand (Slack Technologies, Inc. is Slack).
_LATIN_GENERIC_TAIL = re.compile(
    r"(?:technologies|technology|software|labs|holdings|group|systems|solutions)$"
)
_BRACKETED = re.compile(r"\([^()]*\)")
_PUNCTUATION = re.compile(r"[\s,.'\"&+\-/]+")
_CJK = re.compile("[\u4e00-\u9fff]")
# The place a Chinese legal name begins with (北京百度网讯…, 深圳市腾讯…, 广东欢太…).
_PLACE_PREFIX = re.compile(
    r"^(?:(?:北京|上海|天津|重庆|广东|浙江|江苏|湖北|湖南|四川|福建|山东|河南|河北|安徽|江西|陕西|山西|辽宁|"
    r"吉林|黑龙江|云南|贵州|广西|海南|甘肃|青海|宁夏|新疆|西藏|内蒙古|深圳|广州|杭州|南京|成都|武汉|珠海|"
    r"厦门|苏州|西安)(?:省|市)?|[\u4e00-\u9fff]{2,3}[省市])"
)
# A brand beginning a legal name must be this long to count (百度 is; 华 is not).
MIN_BRAND_PREFIX = 2
# "Apple Inc. / Apple Music Catalog API" names a company and its product: each side is a name too.
_SIDES = re.compile(r"\s*/\s*")
# A slash that says "and/or" (广告主和/或其委托的代理商) joins no two names.
_AND_OR = re.compile(r"(?:和|及|与|and)/(?:或|or)")

# Similarity of match keys from which two different names are reported as possibly the same company.
NEAR_DUPLICATE_RATIO = 0.85

# At most this many near names are returned for one name (itself included), the closest first.
NEAR_NAMES_REPORTED = 5


def name_core(key: str) -> str:
    """A match key without bracketed notes, legal forms and punctuation: what two spellings share.

    ``amazonwebservices,inc.`` and ``amazonwebservices`` share ``amazonwebservices``; a Chinese legal name
    keeps its place and trade words (华为技术 and 华为软件技术 stay apart).
    """
    core = _BRACKETED.sub("", key)
    while True:
        stripped = _LEGAL_FORM.sub("", core).rstrip(",. ")
        if stripped == core or not stripped:
            break
        core = stripped
    core = _PUNCTUATION.sub("", core)
    if not _CJK.search(core):
        core = _LATIN_GENERIC_TAIL.sub("", core) or core
    return core


def has_legal_form(key: str) -> bool:
    """Whether a match key ends in a company's legal form (有限公司, Inc., GmbH…) or names an institution."""
    bare = _BRACKETED.sub("", key).rstrip(",. ")
    return bool(_LEGAL_FORM.search(bare) or _ORGANISATION_WORD.search(bare))


@functools.cache
def brand_list() -> tuple[dict[str, int], frozenset[str]]:
    """The brand list as (core of every name and company → entry number, cores of the brand names)."""
    with open(BRANDS_PATH, encoding="utf-8") as handle:
        entries = json.load(handle)["brands"]
    entry_of: dict[str, int] = {}
    brands: set[str] = set()
    for number, entry in enumerate(entries):
        for name in (*entry["names"], *entry["companies"]):
            entry_of.setdefault(name_core(normalize_key(name)), number)
        brands.update(name_core(normalize_key(name)) for name in entry["names"])
    return entry_of, frozenset(brands)


def recipient_kind(name: str, qualifier: str = "") -> str:
    """``"brand"`` for a name with no legal form that the brand list knows (支付宝, AWS, 高德开放平台) or that
    carries a legal name in brackets (支付宝（支付宝（中国）网络技术有限公司）); else ``"organisation"``."""
    key = normalize_key(name)
    if not key or has_legal_form(key):
        return "organisation"
    if has_legal_form(normalize_key(qualifier)):
        return "brand"
    return "brand" if name_core(key) in brand_list()[1] else "organisation"


def _side_cores(key: str) -> list[str]:
    """The cores of the sides of a name written "<company> / <product>" (none for a name without one)."""
    key = _AND_OR.sub("", key)
    if "/" not in key:
        return []
    sides = [name_core(side) for side in _SIDES.split(_BRACKETED.sub("", key))]
    return [core for core in sides if core] if len(sides) > 1 else []


def _place_free_core(key: str) -> str:
    return _PLACE_PREFIX.sub("", name_core(key))


def _bigrams(key: str) -> set[str]:
    return {key[index : index + 2] for index in range(len(key) - 1)} or {key}


class NearNames:
    """An index of match keys answering "which keys are near-identical to this one?"."""

    def __init__(self, keys: Iterable[str], ratio: float = NEAR_DUPLICATE_RATIO) -> None:
        self.keys = sorted(set(keys))
        self.ratio = ratio
        self.postings: dict[str, list[str]] = defaultdict(list)
        self.by_length: dict[int, list[str]] = defaultdict(list)
        for key in self.keys:
            self.by_length[len(key)].append(key)
            for gram in _bigrams(key):
                self.postings[gram].append(key)
        self.common = max(50, len(self.keys) // 20)
        # The three rules beside the ratio (see the module docstring): keys by core, by brand-list entry,
        # and the Chinese legal names by each beginning of their place-free core.
        entry_of = brand_list()[0]
        self.by_core: dict[str, list[str]] = defaultdict(list)
        self.by_entry: dict[int, list[str]] = defaultdict(list)
        self.legal_by_prefix: dict[str, list[str]] = defaultdict(list)
        self.brand_by_core: dict[str, list[str]] = defaultdict(list)
        for key in self.keys:
            core = name_core(key)
            if not core:
                continue
            self.by_core[core].append(key)
            sides = _side_cores(key)
            for side in sides:
                self.by_core[side].append(key)
            for entry in {entry_of[name] for name in (core, *sides) if name in entry_of}:
                self.by_entry[entry].append(key)
            if not _CJK.search(key):
                continue
            if has_legal_form(key):
                place_free = _place_free_core(key)
                for end in range(MIN_BRAND_PREFIX, len(place_free)):
                    self.legal_by_prefix[place_free[:end]].append(key)
            else:
                self.brand_by_core[core].append(key)

    def close_to(self, key: str) -> list[str]:
        """Keys near-identical to ``key`` (itself included if indexed), closest first, then by key; then the
        keys ``related_to`` it."""
        size = len(key)
        # ratio = 2·lcs / (a + b) ≤ 2·min(a, b) / (a + b): lengths outside this window never reach it.
        low = math.ceil(size * self.ratio / (2 - self.ratio))
        high = math.floor(size * (2 - self.ratio) / self.ratio)
        rare = [gram for gram in _bigrams(key) if len(self.postings.get(gram, ())) <= self.common]
        if rare:
            pool = {other for gram in rare for other in self.postings[gram]}
            candidates = sorted(other for other in pool if low <= len(other) <= high)
        else:
            lengths = range(low, high + 1)
            candidates = [other for length in lengths for other in self.by_length.get(length, ())]
        # The key itself, when indexed, is one of the matches (the callers skip it).
        matches = process.extract(
            key,
            candidates,
            scorer=fuzz.ratio,
            processor=None,
            score_cutoff=self.ratio * 100,
            limit=NEAR_NAMES_REPORTED,
        )
        matches.sort(key=lambda match: (-match[1], match[0]))
        close = [other for other, _score, _index in matches]
        return close + [other for other in self.related_to(key) if other not in close]

    def related_to(self, key: str) -> list[str]:
        """Keys one company may go by beside ``key`` though spelt far apart: the same core, one brand-list
        entry, or a brand beginning a Chinese legal name (itself included if indexed), sorted."""
        core = name_core(key)
        if not core:
            return []
        related = set(self.by_core.get(core, ()))
        sides = _side_cores(key)
        entry_of = brand_list()[0]
        for name in (core, *sides):
            related.update(self.by_core.get(name, ()))
            if name in entry_of:
                related.update(self.by_entry.get(entry_of[name], ()))
        if _CJK.search(key):
            if has_legal_form(key):
                place_free = _place_free_core(key)
                for end in range(MIN_BRAND_PREFIX, len(place_free)):
                    related.update(self.brand_by_core.get(place_free[:end], ()))
            else:
                related.update(self.legal_by_prefix.get(core, ()))
        return sorted(related)


def near_duplicate_pairs(names: dict[int, str], ratio: float = NEAR_DUPLICATE_RATIO) -> list[tuple[int, int]]:
    """Pairs of ids whose match keys are near-identical, each pair once, in the order of ``names``."""
    owners = {key: pk for pk, key in names.items() if key}
    index = NearNames(owners, ratio)
    pairs: list[tuple[int, int]] = []
    seen: set[frozenset[int]] = set()
    for pk, key in names.items():
        if not key:
            continue
        for other in index.close_to(key):
            other_pk = owners[other]
            pair = frozenset((pk, other_pk))
            if other_pk != pk and pair not in seen:
                seen.add(pair)
                pairs.append((pk, other_pk))
    return pairs
