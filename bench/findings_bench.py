"""Findings benchmark: what refreshing the stored findings costs on a large register (issue 13).

For each size (``--sizes``, default 1,000 and 20,000 operations) the register is grown to that size with
``api_bench.generate_register`` (one more generated controller per step, so the sizes add up), then it
times, best of ``--runs``:

- the first full refresh (``manage.py refresh_findings`` on a register without stored findings: every
  finding is created) and the daily one (nothing changed: every finding is found again);
- the refresh after one write of each kind, through the services every caller ends in: one operation's
  purposes removed (and restored), one processor renamed (the near-duplicate rule compares it with the
  register), one service renamed (its operations are judged again), and ``findings_refresh`` alone for
  one operation, with its SQL query count.

It runs on the database of ``DATABASE_URL`` (a throwaway one: it is emptied first), or a SQLite file in
the temporary folder when that is unset:

    .venv/bin/python bench/findings_bench.py
    .venv/bin/python bench/findings_bench.py --sizes 1000 20000 100000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_findings .venv/bin/python bench/findings_bench.py

``--existing`` times a register that is already there (a copy of a pages-benchmark register, migrated):
nothing is generated or emptied and the first full refresh is not timed, only the daily one and the
refreshes after writes (the writes are undone, but the copy's findings and history change: use a copy):

    DATABASE_URL=sqlite:////tmp/copy.sqlite3 .venv/bin/python bench/findings_bench.py --existing --runs 1
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
DEFAULT_SQLITE = Path(tempfile.gettempdir()) / "processor-registry-bench-findings.sqlite3"


def best_of(runs: int, function) -> tuple[float, object]:
    """The shortest of ``runs`` timings of ``function`` (seconds) and its last result."""
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def setup(database: str | None, existing: bool = False) -> None:
    if database is None:
        DEFAULT_SQLITE.unlink(missing_ok=True)
        database = f"sqlite:///{DEFAULT_SQLITE}"
    os.environ["DATABASE_URL"] = database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.test_settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    from processors.models import Operation

    if Operation.objects.exists() and not existing:
        # A throwaway database left by an earlier run: empty it and load the taxonomy again.
        call_command("flush", "--noinput", verbosity=0)
        call_command("sync_taxonomy", verbosity=0)


def measure(size: int | None, runs: int) -> dict[str, float | int]:
    """Grow the register to ``size`` operations and time the refreshes at that size (``None``: time the
    register as it is, without its first full refresh)."""
    from api_bench import generate_register
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from processors import services
    from processors.findings import findings_refresh
    from processors.models import Finding, Operation, Processor, Service

    figures: dict[str, float | int] = {}
    if size is None:
        figures["operations"] = Operation.objects.count()
        figures["full_first_s"] = float("nan")
        figures["full_daily_s"], counts = best_of(runs, findings_refresh)
        figures["findings"] = counts["found"]
    else:
        existing = Operation.objects.count()
        figures["operations"] = size
        started = time.perf_counter()
        generate_register(size - existing, seed=existing + 1)
        figures["generated_s"] = time.perf_counter() - started
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        Finding.history.model.objects.all().delete()
        Finding.objects.all().delete()

        started = time.perf_counter()
        counts = findings_refresh()
        figures["full_first_s"] = time.perf_counter() - started
        figures["findings"] = counts["found"]
        figures["full_daily_s"], _ = best_of(runs, findings_refresh)

    operation = Operation.objects.filter(status="active").order_by("pk").last()
    purposes = list(operation.purposes.all())

    def purposes_removed_and_restored() -> None:
        services.operation_update(operation=operation, purposes=[])
        services.operation_update(operation=operation, purposes=purposes)

    seconds, _ = best_of(runs, purposes_removed_and_restored)
    figures["operation_write_s"] = seconds / 2

    with CaptureQueriesContext(connection) as queries:
        figures["refresh_one_operation_s"], _ = best_of(
            runs, lambda: findings_refresh(operations=[operation])
        )
    figures["refresh_one_operation_queries"] = len(queries.captured_queries) // runs

    processor = Processor.objects.filter(kind="organisation").order_by("pk").last()
    names = [processor.name_zh, processor.name_zh + "（新）"]

    def processor_renamed() -> None:
        names.reverse()
        services.processor_update(processor=processor, name_zh=names[0])

    figures["processor_rename_s"], _ = best_of(runs, processor_renamed)

    service = Service.objects.order_by("pk").last()
    service_names = [service.name, service.name + "（新）"]

    def service_renamed() -> None:
        service_names.reverse()
        services.service_update(service=service, name=service_names[0])

    figures["service_rename_s"], _ = best_of(runs, service_renamed)
    figures["service_operations"] = service.operations.count()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 20_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--existing", action="store_true", help="time the register of DATABASE_URL as it is (no --sizes)"
    )
    options = parser.parse_args()
    if options.existing and not os.environ.get("DATABASE_URL"):
        parser.error("--existing times the register of DATABASE_URL: set it")
    setup(os.environ.get("DATABASE_URL"), existing=options.existing)
    from django.db import connection

    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}), best of {options.runs}")
    header = (
        f"{'operations':>10} {'findings':>9} {'full, first':>12} {'full, daily':>12} {'1 operation':>12} "
        f"{'(queries)':>9} {'op. write':>10} {'proc. rename':>13} {'svc. rename':>12}"
    )
    print(header)
    for size in [None] if options.existing else sorted(options.sizes):
        figures = measure(size, options.runs)
        print(
            f"{figures['operations']:>10,} {figures['findings']:>9,} {figures['full_first_s']:>11.2f}s "
            f"{figures['full_daily_s']:>11.2f}s {figures['refresh_one_operation_s'] * 1000:>10.1f}ms "
            f"{figures['refresh_one_operation_queries']:>9} {figures['operation_write_s'] * 1000:>8.1f}ms "
            f"{figures['processor_rename_s'] * 1000:>11.1f}ms {figures['service_rename_s'] * 1000:>10.1f}ms "
            f"  (service of {figures['service_operations']} operations)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
