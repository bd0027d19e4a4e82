"""Fidelity benchmark: every real published table of ``tests/data/real`` imported as a new user would.

Each file of the corpus goes into a fresh register (a throwaway SQLite database, one transaction per file
rolled back afterwards) through the product's own ``import_register``, every table the document offers,
first with no mapping at all, then, if that is refused, with the ``header_map`` its entry in
``labels.toml`` gives. It prints, per file and in total:

- how each table imported: without any mapping / with a header map / not at all;
- the data items the register holds and how many map to a category (inferred matches counted apart);
- the labels answered exactly, each asked of the register the way the API asks it (processors receiving
  a category, directly or as a group member; processors established or processing outside China;
  operations processing in an EU member state);
- the possible duplicates the import reported;
- the purpose texts that name no purpose and the purposes suggested for them by meaning (and, with
  ``--details``, the table the import preselects in a file with several);
- in a second pass, the whole corpus in one register (processors are shared between controllers): the
  labelled ``same_company`` pairs the register reports as possible duplicates ("known duplicate pairs
  reported: X of Y") and the reported pairs no label names (false pairs).

Run::

    .venv/bin/python bench/fidelity.py            # prints the table; --markdown for BENCHMARKS.md
"""

import argparse
import os
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "real"

# Each label and the categories (with their subtrees) whose receivers answer it.
CATEGORY_LABELS = {
    "phone_number": ("basic.phone_number",),
    "device_identifier": ("device.id_permanent", "device.id_resettable"),
    "location": ("location",),
    "id_document_number": (
        "identity.id_card_number",
        "identity.passport",
        "identity.hmt_permit",
        "identity.foreign_pr_card",
        "identity.driving_license",
        "identity.other_certificate",
        "identity.document_number",
    ),
    "face": ("biometric.face",),
}
PLACE_LABELS = ("processing_outside_china", "processing_in_eu")
LABELS = (*CATEGORY_LABELS, *PLACE_LABELS)


@dataclass
class TableResult:
    index: int
    title: str
    outcome: str  # "no mapping", "header map", "not imported"
    errors: list[str] = field(default_factory=list)


@dataclass
class FileResult:
    file: str
    tables: list[TableResult] = field(default_factory=list)
    rows: int = 0
    items: int = 0
    mapped: int = 0
    inferred: int = 0
    answered: dict[str, bool] = field(default_factory=dict)
    wrong: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)
    duplicates: int = 0
    # The table the import preselects when the file has several (index, title); None for one table.
    preselected: tuple[int, str] | None = None
    # Purpose texts that name no purpose, once each, with the purposes suggested for them by meaning.
    purposes_unmapped: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # In the shared register (``run_shared_register``): the labelled same-company pairs and what came of them.
    pairs_known: int = 0
    pairs_reported: int = 0
    pairs_missed: list[tuple[str, ...]] = field(default_factory=list)
    pairs_false: list[tuple[str, ...]] = field(default_factory=list)


def setup_django(database: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.test_settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def labelled_files() -> list[dict]:
    return tomllib.loads((CORPUS / "labels.toml").read_text(encoding="utf-8"))["table"]


def recipient_names(operations) -> dict[int, str]:
    """The processors the operations reach (group members, not the groups), named as the table names them."""
    from processors.models import Processor
    from processors.selectors import processors_reached_q

    qualifiers = {}
    for processor_id, qualifier in operations.values_list("processor_id", "recipient_qualifier"):
        qualifiers.setdefault(processor_id, qualifier)
    names = {}
    for processor in Processor.objects.filter(processors_reached_q(operations)).exclude(
        kind=Processor.Kind.GROUP
    ):
        qualifier = qualifiers.get(processor.pk, "")
        names[processor.pk] = (
            f"{processor.primary_name} ({qualifier})" if qualifier else processor.primary_name
        )
    return names


def answers(controller) -> dict[str, set[str]]:
    """Each label, answered by querying the register."""
    from django.db.models import Q

    from processors.models import DataCategory, Operation
    from processors.selectors import operations_with_categories
    from processors.spreadsheets.cells import EU_MEMBER_STATES

    own = Operation.objects.filter(service__controller=controller)
    found: dict[str, set[str]] = {}
    for label, codes in CATEGORY_LABELS.items():
        categories = DataCategory.objects.filter(code__in=codes)
        found[label] = set(recipient_names(operations_with_categories(own, categories)).values())
    outside = own.filter(Q(cross_border=True) | (~Q(processor__country="") & ~Q(processor__country="CN")))
    found["processing_outside_china"] = set(recipient_names(outside).values())
    in_eu = Q(pk__in=[])
    for code in EU_MEMBER_STATES:
        in_eu |= Q(processing_countries__contains=code)
    found["processing_in_eu"] = set(recipient_names(own.filter(in_eu)).values())
    return found


def import_tables(entry: dict, controller, result: FileResult) -> None:
    """Every table of a corpus file into the controller's register: no mapping first, then the header map."""
    from processors.spreadsheets.importer import import_register
    from processors.spreadsheets.readers import document_tables
    from processors.spreadsheets.tables import likeliest

    path = CORPUS / entry["file"]
    header_map = entry.get("header_map", {})
    data = path.read_bytes()
    found_tables = document_tables(data, file_name=path.name) or []
    if len(found_tables) > 1:
        chosen = likeliest(found_tables)
        result.preselected = (chosen.index, chosen.title)
    for found in found_tables:
        table = TableResult(index=found.index, title=found.title, outcome="not imported")
        for outcome, mapping in (("no mapping", {}), ("header map", header_map)):
            if outcome == "header map" and not header_map:
                break
            report = import_register(
                data, controller=controller, file_name=path.name, table=found.index, header_map=mapping
            )
            if report.ok:
                table.outcome = outcome
                result.rows += report.rows
                result.duplicates += sum(
                    1 for problem in report.warnings if problem.code == "processor_near_duplicate"
                )
                for problem in report.warnings:
                    if problem.code == "purpose_unmapped":
                        result.purposes_unmapped.setdefault(problem.value, tuple(problem.suggestions))
                break
            table.errors = [str(problem) for problem in report.errors[:3]]
        result.tables.append(table)


def run_file(entry: dict) -> FileResult:
    from django.db import transaction

    from processors.models import Controller, DataItem
    from processors.text import normalize_key

    result = FileResult(file=entry["file"])
    with transaction.atomic():
        controller = Controller.objects.create(code="fidelity", name_zh="保真度测试")
        import_tables(entry, controller, result)
        items = DataItem.objects.filter(operation__service__controller=controller)
        positions = {}
        for operation_id, position, category_id, match in items.values_list(
            "operation_id", "position", "category_id", "match"
        ):
            key = (operation_id, position)
            mapped, inferred = positions.get(key, (False, False))
            positions[key] = (mapped or category_id is not None, inferred or match == "inferred")
        result.items = len(positions)
        result.mapped = sum(1 for mapped, inferred in positions.values() if mapped and not inferred)
        result.inferred = sum(1 for mapped, inferred in positions.values() if mapped and inferred)
        found_answers = answers(controller)
        for label in LABELS:
            expected = {normalize_key(name) for name in entry.get(label, [])}
            got = {normalize_key(name) for name in found_answers[label]}
            result.answered[label] = expected == got
            if expected != got:
                result.wrong[label] = (expected - got, got - expected)
        transaction.set_rollback(True)
    return result


def known_pairs(entry: dict) -> set[frozenset[str]]:
    """The entry's ``same_company`` pairs, as pairs of match keys."""
    from processors.text import normalize_key

    return {frozenset(normalize_key(name) for name in pair) for pair in entry.get("same_company", [])}


def reported_pairs() -> set[frozenset[str]]:
    """The pairs of processors the register reports as possible duplicates (the findings rule's pairs)."""
    from processors.models import Processor
    from processors.names import near_duplicate_pairs

    keys = dict(Processor.objects.values_list("pk", "name_key"))
    return {frozenset((keys[first], keys[second])) for first, second in near_duplicate_pairs(keys)}


def run_shared_register(entries: list[dict], results: list[FileResult]) -> None:
    """The corpus imported file after file into one register, as a user with many tables would: processors
    are shared, so a name in one table meets its twins from the earlier ones. Each file is credited with its
    labelled pairs that the register reports once it is in, and with the new pairs it brought that no label
    names (false pairs)."""
    from django.db import transaction

    from processors.models import Controller

    # One company's names are all one another's twins: a pair inside one labelled group is not false.
    company: dict[str, str] = {}

    def root(key: str) -> str:
        while company.get(key, key) != key:
            key = company[key]
        return key

    for entry in entries:
        for first, second in map(sorted, known_pairs(entry)):
            company[root(second)] = root(first)
    with transaction.atomic():
        before: set[frozenset[str]] = set()
        for number, (entry, result) in enumerate(zip(entries, results, strict=True)):
            controller = Controller.objects.create(code=f"shared{number}", name_zh=f"共享登记册 {number}")
            import_tables(entry, controller, FileResult(file=entry["file"]))
            reported = reported_pairs()
            expected = known_pairs(entry)
            result.pairs_known = len(expected)
            result.pairs_reported = len(expected & reported)
            result.pairs_missed = sorted(tuple(sorted(pair)) for pair in expected - reported)
            result.pairs_false = sorted(
                (first, second)
                for first, second in map(sorted, reported - before)
                if root(first) != root(second)
            )
            before = reported
        transaction.set_rollback(True)


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "—"


def render(results: list[FileResult], *, details: bool) -> str:
    lines = [
        "| file | tables: no map / map / refused | rows | items mapped (inferred) | labels exact | dups "
        "| known duplicate pairs reported | false pairs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals = {"no mapping": 0, "header map": 0, "not imported": 0}
    items = mapped = inferred = exact = asked = duplicates = rows = 0
    pairs_known = pairs_reported = pairs_false = 0
    for result in results:
        outcomes = [table.outcome for table in result.tables]
        for outcome in outcomes:
            totals[outcome] += 1
        right = sum(result.answered.values())
        lines.append(
            f"| {result.file} | {outcomes.count('no mapping')} / {outcomes.count('header map')} / "
            f"{outcomes.count('not imported')} | {result.rows} | {result.mapped}/{result.items} "
            f"{percent(result.mapped, result.items)} ({result.inferred}) | {right}/{len(result.answered)} "
            f"| {result.duplicates} | {result.pairs_reported} of {result.pairs_known} "
            f"| {len(result.pairs_false)} |"
        )
        pairs_known, pairs_reported = pairs_known + result.pairs_known, pairs_reported + result.pairs_reported
        pairs_false += len(result.pairs_false)
        items, mapped, inferred = items + result.items, mapped + result.mapped, inferred + result.inferred
        exact, asked = exact + right, asked + len(result.answered)
        duplicates, rows = duplicates + result.duplicates, rows + result.rows
    tables = sum(totals.values())
    lines.append(
        f"| **total** | {totals['no mapping']} / {totals['header map']} / {totals['not imported']} "
        f"of {tables} "
        f"| {rows} | {mapped}/{items} {percent(mapped, items)} ({inferred} inferred, "
        f"{percent(mapped + inferred, items)} with them) | {exact}/{asked} {percent(exact, asked)} "
        f"| {duplicates} | {pairs_reported} of {pairs_known} | {pairs_false} |"
    )
    lines.append("")
    lines.append(
        f"Known duplicate pairs reported: {pairs_reported} of {pairs_known}; false pairs: {pairs_false}."
    )
    lines.append(
        f"Tables imported with no mapping: {percent(totals['no mapping'], tables)}; with a header map only: "
        f"{percent(totals['header map'], tables)}; not imported: {totals['not imported']}."
    )
    unmapped = [text for result in results for text in result.purposes_unmapped]
    suggested = [
        text for result in results for text, suggestions in result.purposes_unmapped.items() if suggestions
    ]
    lines.append(
        f"Purpose texts that name no purpose: {len(unmapped)}, {len(suggested)} of them with purposes "
        "suggested by meaning."
    )
    if details:
        lines.append("")
        lines.append("Preselected table of each file with several (the likeliest):")
        for result in results:
            if result.preselected:
                index, title = result.preselected
                lines.append(f"- {result.file}: table {index + 1} ({title})")
        lines.append("")
        lines.append("Purpose texts that name no purpose → the purposes suggested:")
        for result in results:
            for text, suggestions in result.purposes_unmapped.items():
                lines.append(f"- {result.file} “{text}” → {', '.join(suggestions) or '—'}")
        lines.append("")
        lines.append("Labels not answered exactly (missing → / ← extra), and tables refused:")
        for result in results:
            for label, (missing, extra) in result.wrong.items():
                lines.append(f"- {result.file} `{label}`: missing {sorted(missing)}; extra {sorted(extra)}")
            for pair in result.pairs_missed:
                lines.append(f"- {result.file} same company, not reported: {' / '.join(pair)}")
            for pair in result.pairs_false:
                lines.append(f"- {result.file} reported, not the same company: {' / '.join(pair)}")
            for table in result.tables:
                if table.outcome == "not imported":
                    lines.append(
                        f"- {result.file} table {table.index + 1} refused: {' / '.join(table.errors)}"
                    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="List each wrong label and refused table.")
    parser.add_argument("--only", help="Only the corpus file whose name contains this.")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        setup_django(Path(directory) / "fidelity.sqlite3")
        entries = [entry for entry in labelled_files() if not options.only or options.only in entry["file"]]
        results = [run_file(entry) for entry in entries]
        run_shared_register(entries, results)
    print(render(results, details=options.details))


if __name__ == "__main__":
    main()
