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
- the possible duplicates the import reported.

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


def run_file(entry: dict) -> FileResult:
    from django.db import transaction

    from processors.models import Controller, DataItem
    from processors.spreadsheets.importer import import_register
    from processors.spreadsheets.readers import document_tables
    from processors.text import normalize_key

    path = CORPUS / entry["file"]
    result = FileResult(file=entry["file"])
    header_map = entry.get("header_map", {})
    with transaction.atomic():
        controller = Controller.objects.create(code="fidelity", name_zh="保真度测试")
        data = path.read_bytes()
        tables = document_tables(data, file_name=path.name) or []
        for found in tables:
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
                    break
                table.errors = [str(problem) for problem in report.errors[:3]]
            result.tables.append(table)
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


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "—"


def render(results: list[FileResult], *, details: bool) -> str:
    lines = [
        "| file | tables: no map / map / refused | rows | items mapped (inferred) | labels exact | dups |",
        "|---|---|---|---|---|---|",
    ]
    totals = {"no mapping": 0, "header map": 0, "not imported": 0}
    items = mapped = inferred = exact = asked = duplicates = rows = 0
    for result in results:
        outcomes = [table.outcome for table in result.tables]
        for outcome in outcomes:
            totals[outcome] += 1
        right = sum(result.answered.values())
        lines.append(
            f"| {result.file} | {outcomes.count('no mapping')} / {outcomes.count('header map')} / "
            f"{outcomes.count('not imported')} | {result.rows} | {result.mapped}/{result.items} "
            f"{percent(result.mapped, result.items)} ({result.inferred}) | {right}/{len(result.answered)} "
            f"| {result.duplicates} |"
        )
        items, mapped, inferred = items + result.items, mapped + result.mapped, inferred + result.inferred
        exact, asked = exact + right, asked + len(result.answered)
        duplicates, rows = duplicates + result.duplicates, rows + result.rows
    tables = sum(totals.values())
    lines.append(
        f"| **total** | {totals['no mapping']} / {totals['header map']} / {totals['not imported']} "
        f"of {tables} "
        f"| {rows} | {mapped}/{items} {percent(mapped, items)} ({inferred} inferred, "
        f"{percent(mapped + inferred, items)} with them) | {exact}/{asked} {percent(exact, asked)} "
        f"| {duplicates} |"
    )
    lines.append("")
    lines.append(
        f"Tables imported with no mapping: {percent(totals['no mapping'], tables)}; with a header map only: "
        f"{percent(totals['header map'], tables)}; not imported: {totals['not imported']}."
    )
    if details:
        lines.append("")
        lines.append("Labels not answered exactly (missing → / ← extra), and tables refused:")
        for result in results:
            for label, (missing, extra) in result.wrong.items():
                lines.append(f"- {result.file} `{label}`: missing {sorted(missing)}; extra {sorted(extra)}")
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
    print(render(results, details=options.details))


if __name__ == "__main__":
    main()
