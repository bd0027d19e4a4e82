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
"""

import math
from collections import defaultdict
from collections.abc import Iterable

from rapidfuzz import fuzz, process

# Similarity of match keys from which two different names are reported as possibly the same company.
NEAR_DUPLICATE_RATIO = 0.85

# At most this many near names are returned for one name (itself included), the closest first.
NEAR_NAMES_REPORTED = 5


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

    def close_to(self, key: str) -> list[str]:
        """Keys near-identical to ``key`` (itself included if indexed), closest first, then by key."""
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
        return [other for other, _score, _index in matches]


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
