"""Data-item mapping benchmark: every data item of the real corpus, mapped by the built-in taxonomy.

Collects the data-item cells of ``tests/data/real`` (the grid tables through the importer's own
``find_tables``, their data-item column chosen by header; the record-form lists, ``键：值`` lines, by
their data-item keys), splits them as the importer does (``split_list``) and maps each item with the
taxonomy fixture, no database needed. Prints mapped / inferred / unmapped counts and percentages for
the vocabulary of a fixture given with ``--before`` (default: the committed ``fixtures/taxonomy.json``,
read from git) and for the working-tree fixture, then every item left unmapped or inferred.

The "before" line uses today's rules with the old vocabulary. Measured with the code *and* fixture of
the commit before issue 11's taxonomy work, the corpus gave 329 of 654 items mapped (50.3 %), none
inferred, 325 unmapped; after it, 629 mapped (96.2 %), 14 inferred (2.1 %), 11 unmapped (1.7 %: the
purpose sentences 01 and 06 put in their item cells, and the 高 of 设备宽、高).

Run::

    .venv/bin/python bench/mapping.py            # before (git HEAD fixture) and after
    .venv/bin/python bench/mapping.py --verbose  # also every item with its codes
"""

import argparse
import html
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "real"

# Headers of the data-item column in the grid tables (case-folded substrings).
ITEM_HEADERS = ("收集个人信息", "个人信息类型", "涉及个人信息", "customer data involved")
# Keys of the data-item line in the record-form lists.
ITEM_KEYS = (
    "收集个人信息类型",
    "处理的个人信息类型",
    "收集的个人信息类型",
    "第三方收集的个人信息",
    "共享信息名称",
    "数据类型",
    "信息类型",
)
# The purpose column and keys, to measure the purpose keywords the same way.
PURPOSE_HEADERS = ("目的", "功能", "用途", "purpose", "function", "description", "processing activities")
PURPOSE_KEYS = (
    "使用目的及功能场景",
    "使用目的",
    "实现功能/场景",
    "实现目的",
    "SDK用途",
    "功能/服务",
    "功能",
    "用途",
)
_PURPOSE_LINE = re.compile(
    r"^\s*(?:[*-]\s*)?(?:\*\*)?(" + "|".join(map(re.escape, PURPOSE_KEYS)) + r")[:：](?:\*\*)?\s*(.*)$"
)
_RECORD_LINE = re.compile(r"^\s*(?:[*-]\s*)?(?:\*\*)?(" + "|".join(ITEM_KEYS) + r")[:：](?:\*\*)?\s*(.*)$")
_TAG = re.compile(r"<[^>]+>")


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.test_settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def grid_cells(path: Path, headers: tuple[str, ...] = ITEM_HEADERS) -> list[str]:
    """The cells of every grid table of a document whose header contains one of ``headers``."""
    from processors.spreadsheets.tables import find_tables

    cells = []
    for table in find_tables(path.read_bytes(), file_name=path.name):
        header = [cell.casefold() for cell in table.rows[0]]
        columns = [index for index, cell in enumerate(header) if any(key in cell for key in headers)]
        for row in table.rows[1:]:
            cells.extend(row[index] for index in columns if index < len(row))
    return cells


def record_cells(path: Path, line_pattern: re.Pattern[str] = _RECORD_LINE) -> list[str]:
    """The values of a record-form list's ``key：value`` lines (``收集个人信息类型：…``)."""
    text = path.read_text(encoding="utf-8")
    if "<span" in text:
        # A Word export: one value is spread over several spans and source lines.
        text = html.unescape(_TAG.sub("", text))
        text = re.sub(r"\s*\n\s*", " ", text)
        text = re.sub(r"(?=(?:功能/服务|信息类型|调用权限|运营公司|隐私政策|官网)[:：])", "\n", text)
    cells = []
    for line in text.splitlines():
        found = line_pattern.match(line)
        if found:
            cells.append(found.group(2).strip().rstrip("。"))
    return cells


def corpus_items() -> list[tuple[str, str]]:
    """(file, item) for every data item of the corpus, split as the importer splits a list cell."""
    from processors.spreadsheets.cells import clean_markup, split_list

    items = []
    for path in sorted(CORPUS.glob("[0-9][0-9]-*")):
        cells = grid_cells(path) or record_cells(path)
        for cell in cells:
            items.extend((path.name, item) for item in split_list(clean_markup(cell)).items)
    return items


def corpus_purposes() -> list[tuple[str, str]]:
    """(file, purpose cell) for every purpose text of the corpus, whole (a purpose cell is one text)."""
    from processors.spreadsheets.cells import clean_markup

    purposes = []
    for path in sorted(CORPUS.glob("[0-9][0-9]-*")):
        cells = grid_cells(path, PURPOSE_HEADERS) or record_cells(path, _PURPOSE_LINE)
        purposes.extend((path.name, clean_markup(cell)) for cell in cells if cell.strip())
    return purposes


def measure(taxonomy, items: list[tuple[str, str]]) -> tuple[Counter, dict[str, list[str]]]:
    counts: Counter = Counter()
    left: dict[str, list[str]] = {"unmapped": [], "inferred": []}
    for _file, item in items:
        mapping = taxonomy.map_item(item)
        if mapping.unmapped:
            kind = "unmapped"
        elif mapping.match == "inferred":
            kind = "inferred"
        else:
            kind = "mapped"
        counts[kind] += 1
        if kind in left:
            left[kind].append(f"{item} -> {', '.join(mapping.category_codes) or '—'}")
    return counts, left


def line(label: str, counts: Counter) -> str:
    total = sum(counts.values()) or 1
    parts = [
        f"{kind} {counts[kind]} ({100 * counts[kind] / total:.1f} %)"
        for kind in ("mapped", "inferred", "unmapped")
    ]
    return f"{label:<8} {sum(counts.values())} items: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before", help="fixture to compare with (default: fixtures/taxonomy.json at git HEAD)"
    )
    parser.add_argument("--verbose", action="store_true", help="print every item with its codes")
    args = parser.parse_args()
    setup_django()
    from processors.taxonomy import Taxonomy

    if args.before:
        before = json.loads(Path(args.before).read_text(encoding="utf-8"))
    else:
        shown = subprocess.run(
            ["git", "show", "HEAD:fixtures/taxonomy.json"], cwd=ROOT, capture_output=True, check=True
        )
        before = json.loads(shown.stdout)
    items = corpus_items()
    before_counts, _left = measure(Taxonomy.from_fixture(before), items)
    after = Taxonomy.from_fixture()
    after_counts, left = measure(after, items)
    print(f"{len({file for file, _item in items})} files, {len(items)} data items")
    print(line("before", before_counts) + "  (old vocabulary, current rules)")
    print(line("after", after_counts))
    for kind in ("unmapped", "inferred"):
        print(f"\n{kind}:")
        for text, count in Counter(left[kind]).most_common():
            print(f"  {count:>3} × {text}")
    purposes = corpus_purposes()
    unmapped = [text for _file, text in purposes if not after.map_purposes(text).codes]
    print(
        f"\npurposes: {len(purposes)} cells, {len(purposes) - len(unmapped)} with a purpose code; none for:"
    )
    for text in unmapped:
        print(f"  {text}")
    if args.verbose:
        print("\nall:")
        for file, item in items:
            mapping = after.map_item(item)
            print(f"  {file[:2]} {item} -> {', '.join(mapping.category_codes) or '—'} [{mapping.match}]")
        for file, text in purposes:
            print(f"  {file[:2]} purpose {text!r} -> {', '.join(after.map_purposes(text).codes) or '—'}")


if __name__ == "__main__":
    main()
