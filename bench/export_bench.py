"""Export benchmark: the disclosure table (.xlsx, zh) against openpyxl write-only writing the same strings.

The budget is ``export_disclosure`` at most 1.5x the baseline, with a number of queries that does not grow
per row. The baseline writes exactly the strings of our table (header and five cells a row) to a
write-only workbook and saves it: no styling, no rich text, no row heights, no notes sheet. The strings
are computed before the baseline's clock starts, so it is the cost of the file alone.

    .venv/bin/python bench/export_bench.py                      # SQLite file in /tmp, 100,000 operations
    .venv/bin/python bench/export_bench.py --database postgres://postgres@127.0.0.1:5432/bench_export

Standalone it fills a throwaway database with ``api_bench.generate_register``; ``bench/import_bench.py``
calls ``measure_export`` on the register it has just imported (the same rows as its file).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = Path(tempfile.gettempdir()) / "processor-registry-bench-export.sqlite3"


class QueryCounter:
    """Counts the SQL statements a block sends (``connection.execute_wrapper``), keeping none of them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def write_baseline(rows: list[list[str]], headers: list[str], path: Path) -> None:
    """The floor: the same strings through openpyxl's write-only mode, nothing else."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet")
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    workbook.save(path)


def measure_export(operations=None, *, directory: Path, lang: str = "zh") -> dict:
    """Time export_disclosure (.xlsx) and the write-only baseline on the same operations; count queries."""
    from django.db import connection

    from processors.disclosure.rows import DISCLOSURE_HEADERS, rows_from_operations
    from processors.models import Operation
    from processors.spreadsheets.export import export_disclosure
    from processors.spreadsheets.safety import neutralise, strip_illegal_characters

    operations = Operation.objects.all() if operations is None else operations
    ours_path = directory / "export-ours.xlsx"
    baseline_path = directory / "export-baseline.xlsx"
    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter), ours_path.open("wb") as stream:
        count = export_disclosure(operations, stream=stream, fmt="xlsx", lang=lang)
    ours = time.perf_counter() - started

    # The same cell strings our file holds (cleaned and neutralised the same way), prepared untimed.
    rows = [
        [neutralise(strip_illegal_characters(text)) or None for text in row.texts()]
        for row in rows_from_operations(operations, lang=lang)
    ]
    started = time.perf_counter()
    write_baseline(rows, list(DISCLOSURE_HEADERS[lang]), baseline_path)
    baseline = time.perf_counter() - started
    return {
        "rows": count,
        "export_s": ours,
        "export_queries": counter.count,
        "export_bytes": ours_path.stat().st_size,
        "baseline_s": baseline,
        "baseline_bytes": baseline_path.stat().st_size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=f"sqlite:///{DEFAULT_SQLITE}", help="DATABASE_URL (throwaway)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 rows")
    options = parser.parse_args()
    rows = 5_000 if options.quick else options.rows

    os.environ["DATABASE_URL"] = options.database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.test_settings")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from api_bench import generate_register
    from django.core.management import call_command
    from django.db import connection

    from processors.models import Operation

    call_command("migrate", "--noinput", verbosity=0)
    existing = Operation.objects.count()
    if existing != rows:
        call_command("flush", "--noinput", verbosity=0)
        call_command("migrate", "--noinput", verbosity=0)
        generate_register(rows)
    with tempfile.TemporaryDirectory() as directory:
        result = measure_export(directory=Path(directory))
    ratio = result["export_s"] / result["baseline_s"]
    print(f"database: {connection.vendor}, {result['rows']:,} rows")
    print(f"export_disclosure xlsx zh  {result['export_s']:8.2f} s  {result['export_queries']} queries")
    print(f"openpyxl write-only        {result['baseline_s']:8.2f} s")
    print(
        f"ratio                      {ratio:8.2f}x  ({'within' if ratio <= 1.5 else 'OVER'} the 1.5x budget)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
