"""Import benchmark: ``import_register`` against the floor and against django-import-export, then the export.

One run measures, on SQLite and on PostgreSQL side by side, a generated disclosure table (.xlsx, the
five published columns) of ``--rows`` operations (default 100,000; 2,000 processors, 3-8 data items a
row drawn from the real taxonomy's leaf categories, 1-2 purposes and 2-4 actions a row):

- **floor**: the file parsed by python-calamine (openpyxl read-only as a second figure), then the same
  rows, normalised in plain Python, inserted through the database driver alone (``executemany`` on
  SQLite, ``COPY`` on PostgreSQL): services, processors, operations, data items and both M2M tables;
- **ours**: ``import_register`` of the file, for real (not a dry run), its SQL statements counted;
- **django-import-export**: a ModelResource over Operation (ForeignKey widgets for service and recipient,
  ManyToMany widgets for purposes and actions) importing the same file; at most 10,000 rows, extrapolated
  linearly when ``--rows`` is larger (it sends several queries per row);
- **export**: ``export_disclosure`` (.xlsx, zh) of the imported register against openpyxl write-only
  writing the same strings (``bench/export_bench.py``).

Every measurement runs in its own subprocess on a fresh copy of a migrated database, so that its peak
RSS (``os.wait4``) is its own. Budgets: ours <= 3x the floor, constant queries, peak RSS < 300 MB,
>= 10x faster than django-import-export; export <= 1.5x the baseline.

    .venv/bin/pip install -r bench/requirements.txt          # benchmark-only packages
    .venv/bin/python bench/import_bench.py                   # 100,000 rows, SQLite and PostgreSQL
    .venv/bin/python bench/import_bench.py --quick           # 5,000 rows
    .venv/bin/python bench/import_bench.py --database sqlite # one database only

The import row and size limits are raised inside the benchmark's own processes, not in the settings.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = Path(tempfile.gettempdir()) / "processor-registry-bench-import"
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
POSTGRES_DATABASE = "bench_import"
HEADERS = ["服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"]
PROCESSORS = 2_000
ROWS_PER_SERVICE = 500  # each service's rows name distinct processors
IMPORT_EXPORT_MAX_ROWS = 10_000
CONTROLLER = "bench-import"
MB = 1024 * 1024


# --- Worker side (runs inside Django) --------------------------------------------------------------


def setup_django(database: str, *, rows: int) -> None:
    os.environ["DATABASE_URL"] = database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.test_settings")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    from django.test.utils import override_settings

    # The benchmark's file is far above the upload limits; raise them here, never in the settings.
    override_settings(
        REGISTER_IMPORT_MAX_ROWS=rows + 100,
        REGISTER_IMPORT_MAX_BYTES=2**40,
        REGISTER_IMPORT_MAX_UNPACKED_BYTES=2**40,
        REGISTER_IMPORT_MAX_COMPRESSION_RATIO=10_000,
    ).enable()


def processor_name(number: int) -> str:
    # Letters around the number keep it from reading as a phone number.
    return f"基准受托方P{number:04d}科技有限公司"


def generate_file(directory: Path, rows: int, seed: int = 3) -> dict:
    """Write the disclosure-shape .xlsx and .csv (openpyxl write-only) from the migrated taxonomy."""
    import csv

    from openpyxl import Workbook

    from processors.models import DataCategory, ProcessingAction, Purpose

    rng = random.Random(seed)
    leaves = list(
        DataCategory.objects.filter(parent__isnull=False).order_by("code").values_list("name_zh", flat=True)
    )
    purposes = list(Purpose.objects.order_by("code").values_list("name_zh", flat=True))
    actions = list(ProcessingAction.objects.order_by("code").values_list("name_zh", flat=True))
    services = max(1, -(-rows // ROWS_PER_SERVICE))
    xlsx, csv_path = directory / f"register-{rows}.xlsx", directory / f"register-{rows}.csv"
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("第三方信息共享清单")
    sheet.append(HEADERS)
    with csv_path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        items_total = 0
        for number in range(rows):
            service = number // ROWS_PER_SERVICE
            processor = (number * 7 + service * 131) % PROCESSORS
            recipient = processor_name(processor)
            if processor % 3 == 0:
                recipient += f" 010-{processor:08d}"
            chosen = rng.sample(leaves, rng.randint(3, 8))
            items_total += len(chosen)
            row = [
                f"基准服务{service:03d}",
                recipient,
                "、".join(chosen),
                "、".join(rng.sample(purposes, rng.randint(1, 2))),
                "、".join(sorted(rng.sample(actions, rng.randint(2, 4)), key=actions.index)),
            ]
            sheet.append(row)
            writer.writerow(row)
    workbook.save(xlsx)
    return {
        "xlsx": str(xlsx),
        "csv": str(csv_path),
        "rows": rows,
        "services": services,
        "items": items_total,
        "categories": len(leaves),
        "xlsx_bytes": xlsx.stat().st_size,
    }


def make_controller():
    from processors.models import Controller

    return Controller.objects.get_or_create(code=CONTROLLER, defaults={"name_zh": "基准公司"})[0]


def _template(model, connection) -> dict:
    """Column -> database value for a new instance's defaults (the driver does not know Django's)."""
    obj = model()
    values = {}
    for field in model._meta.local_concrete_fields:
        if field.primary_key:
            continue
        value = field.pre_save(obj, True)
        values[field.column] = field.get_db_prep_save(value, connection)
    return values


def worker_floor(options) -> dict:
    """Parse with calamine (and openpyxl read-only), normalise, insert with the driver alone."""
    from django.db import connection, transaction
    from openpyxl import load_workbook
    from python_calamine import CalamineWorkbook

    from processors.models import (
        CategoryAlias,
        DataCategory,
        DataItem,
        Operation,
        ProcessingAction,
        Processor,
        Purpose,
        Service,
    )
    from processors.text import normalize_key

    controller = make_controller()
    started = time.perf_counter()
    table = CalamineWorkbook.from_path(options.file).get_sheet_by_index(0).to_python()
    parse_calamine = time.perf_counter() - started

    started = time.perf_counter()
    workbook = load_workbook(options.file, read_only=True, data_only=True)
    openpyxl_rows = sum(1 for _row in workbook.worksheets[0].iter_rows(values_only=True))
    workbook.close()
    parse_openpyxl = time.perf_counter() - started
    assert openpyxl_rows == len(table)

    # Normalise: what every importer must do before inserting, kept minimal (the file is known-good).
    started = time.perf_counter()
    categories = {name: pk for pk, name in DataCategory.objects.values_list("pk", "name_zh")}
    for pk, text in CategoryAlias.objects.values_list("category_id", "text"):
        categories.setdefault(text, pk)
    purposes = {name: pk for pk, name in Purpose.objects.values_list("pk", "name_zh")}
    actions = {name: pk for pk, name in ProcessingAction.objects.values_list("pk", "name_zh")}
    services: dict[str, int] = {}
    processors: dict[str, tuple[int, str]] = {}
    operations, items, purpose_links, action_links = [], [], [], []
    for operation_id, (service, recipient, data_items, purpose_text, actions_text) in enumerate(
        table[1:], start=1
    ):
        service_id = services.setdefault(service, len(services) + 1)
        name, _space, phone = recipient.partition(" ")
        processor_id = processors.setdefault(name, (len(processors) + 1, phone))[0]
        operations.append((operation_id, service_id, processor_id, data_items, purpose_text, actions_text))
        for position, text in enumerate(data_items.split("、")):
            items.append((operation_id, position, text, categories.get(text)))
        for text in purpose_text.split("、"):
            purpose_links.append((operation_id, purposes[text]))
        for text in actions_text.split("、"):
            action_links.append((operation_id, actions[text]))
    normalise = time.perf_counter() - started

    templates = {model: _template(model, connection) for model in (Service, Processor, Operation, DataItem)}

    def full_rows(model, fixed_columns, rows):
        template = templates[model]
        rest = [column for column in template if column not in fixed_columns]
        defaults = tuple(template[column] for column in rest)
        return ["id", *fixed_columns[1:], *rest], [(*row, *defaults) for row in rows]

    tables = [
        (
            Service,
            *full_rows(
                Service,
                ["id", "controller_id", "name"],
                [(pk, controller.pk, name) for name, pk in services.items()],
            ),
        ),
        (
            Processor,
            *full_rows(
                Processor,
                ["id", "name_zh", "name_key", "contact_phone"],
                [(pk, name, normalize_key(name), phone) for name, (pk, phone) in processors.items()],
            ),
        ),
        (
            Operation,
            *full_rows(
                Operation,
                ["id", "service_id", "processor_id", "data_items_text", "purpose_text", "actions_text"],
                operations,
            ),
        ),
        (
            DataItem,
            *full_rows(
                DataItem,
                ["id", "operation_id", "position", "text", "category_id", "match"],
                [
                    (number, *item, "alias" if item[3] is not None else "")
                    for number, item in enumerate(items, start=1)
                ],
            ),
        ),
    ]
    purpose_table = Operation.purposes.through._meta.db_table
    action_table = Operation.actions.through._meta.db_table
    links = [
        (purpose_table, ["operation_id", "purpose_id"], purpose_links),
        (action_table, ["operation_id", "processingaction_id"], action_links),
    ]
    # The ids are ours, so nothing needs to come back from the database.
    statements = [(model._meta.db_table, columns, rows) for model, columns, rows in tables] + links
    counted = sum(len(rows) for _table, _columns, rows in statements)
    started = time.perf_counter()
    with transaction.atomic():
        raw = connection.connection
        if connection.vendor == "sqlite":
            cursor = raw.cursor()
            for name, columns, rows in statements:
                sql = f'INSERT INTO "{name}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
                cursor.executemany(sql, rows)
        else:
            with raw.cursor() as cursor:
                for name, columns, rows in statements:
                    with cursor.copy(f'COPY "{name}" ({", ".join(columns)}) FROM STDIN') as copy:
                        for row in rows:
                            copy.write_row(row)
    insert = time.perf_counter() - started
    assert Operation.objects.count() == len(operations)
    return {
        "parse_calamine_s": parse_calamine,
        "parse_openpyxl_s": parse_openpyxl,
        "normalise_s": normalise,
        "insert_s": insert,
        "floor_s": parse_calamine + insert,
        "floor_with_normalise_s": parse_calamine + normalise + insert,
        "inserted_rows": counted,
        "operations": len(operations),
        "processors": len(processors),
        "services": len(services),
        "data_items": len(items),
        "mapped_items": sum(1 for item in items if item[3] is not None),
    }


def worker_ours(options) -> dict:
    """import_register of the file, for real, its statements counted."""
    from django.db import connection
    from export_bench import QueryCounter

    from processors.models import DataItem, Operation, Processor
    from processors.spreadsheets.importer import import_register

    controller = make_controller()
    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        report = import_register(Path(options.file), controller=controller, file_name=Path(options.file).name)
    elapsed = time.perf_counter() - started
    ok = getattr(report, "ok", None)
    errors = [str(error) for error in (getattr(report, "errors", None) or [])][:5]
    return {
        "import_s": elapsed,
        "queries": counter.count,
        "ok": ok,
        "committed": getattr(report, "committed", None),
        "errors": errors,
        "operations": Operation.objects.count(),
        "data_items": DataItem.objects.count(),
        "unmapped_items": DataItem.objects.filter(category__isnull=True).count(),
        "processors": Processor.objects.count(),
    }


def worker_export(options) -> dict:
    from export_bench import measure_export

    directory = Path(tempfile.mkdtemp(prefix="export-", dir=WORKDIR))
    try:
        return measure_export(directory=directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def worker_import_export(options) -> dict:
    """django-import-export: a ModelResource over Operation importing the same file."""
    import tablib
    from django.db import connection
    from export_bench import QueryCounter
    from import_export import fields, resources, widgets

    from processors.models import Operation, ProcessingAction, Processor, Purpose, Service
    from processors.spreadsheets.cells import parse_recipient
    from processors.text import normalize_key

    controller = make_controller()

    class RecipientWidget(widgets.ForeignKeyWidget):
        """The recipient cell's name (its phone taken off by our own parser) looked up by name."""

        def clean(self, value, row=None, **kwargs):
            parsed = parse_recipient(value)
            return super().clean(parsed.names[0] if parsed.names else None, row=row, **kwargs)

    class ServiceWidget(widgets.ForeignKeyWidget):
        def get_queryset(self, value, row, *args, **kwargs):
            return Service.objects.filter(controller=controller)

    class OperationResource(resources.ModelResource):
        service = fields.Field(
            attribute="service", column_name=HEADERS[0], widget=ServiceWidget(Service, field="name")
        )
        processor = fields.Field(
            attribute="processor", column_name=HEADERS[1], widget=RecipientWidget(Processor, field="name_zh")
        )
        data_items_text = fields.Field(attribute="data_items_text", column_name=HEADERS[2])
        purposes = fields.Field(
            attribute="purposes",
            column_name=HEADERS[3],
            widget=widgets.ManyToManyWidget(Purpose, separator="、", field="name_zh"),
        )
        actions = fields.Field(
            attribute="actions",
            column_name=HEADERS[4],
            widget=widgets.ManyToManyWidget(ProcessingAction, separator="、", field="name_zh"),
        )

        class Meta:
            model = Operation
            fields = ("service", "processor", "data_items_text", "purposes", "actions")
            import_id_fields = ("service", "processor")

    # Its widgets only look foreign keys up, so services and processors exist beforehand (untimed).
    from python_calamine import CalamineWorkbook

    table = CalamineWorkbook.from_path(options.file).get_sheet_by_index(0).to_python()[: options.limit + 1]
    services = dict.fromkeys(row[0] for row in table[1:])
    Service.objects.bulk_create(Service(controller=controller, name=name) for name in services)
    names = {}
    for row in table[1:]:
        parsed = parse_recipient(row[1])
        names.setdefault(parsed.names[0], parsed.phone)
    Processor.objects.bulk_create(
        Processor(name_zh=name, name_key=normalize_key(name), contact_phone=phone or "")
        for name, phone in names.items()
    )
    # Its own reader path, limited to the rows measured: the file's first ``limit`` rows.
    path = Path(options.file)
    if options.limit < options.rows:
        from openpyxl import Workbook

        path = WORKDIR / f"import-export-{options.limit}.xlsx"
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("Sheet")
        for row in table:
            sheet.append(row)
        workbook.save(path)

    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        dataset = tablib.Dataset().load(path.read_bytes(), format="xlsx")
        result = OperationResource().import_data(
            dataset, dry_run=False, raise_errors=True, use_transactions=True
        )
    elapsed = time.perf_counter() - started
    return {
        "import_s": elapsed,
        "queries": counter.count,
        "rows": len(dataset),
        "errors": result.has_errors(),
        "operations": Operation.objects.count(),
    }


WORKERS = {
    "floor": worker_floor,
    "ours": worker_ours,
    "export": worker_export,
    "import-export": worker_import_export,
}


def run_worker(options) -> int:
    setup_django(options.worker_database, rows=options.rows)
    if options.worker == "generate":
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        result = generate_file(Path(options.file), options.rows)
    elif options.worker == "migrate":
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        result = {}
    else:
        result = WORKERS[options.worker](options)
    print("RESULT " + json.dumps(result, default=str))
    return 0


# --- Orchestrator side ------------------------------------------------------------------------------


class Database:
    """A throwaway database: migrated once into a template, copied fresh for every measurement."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.template = WORKDIR / "template.sqlite3"
            self.path = WORKDIR / "bench.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = f"{POSTGRES_SERVER}/{POSTGRES_DATABASE}"

    def _admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    def create_template(self, rows: int) -> None:
        if self.kind == "sqlite":
            self.template.unlink(missing_ok=True)
            worker("migrate", f"sqlite:///{self.template}", rows=rows)
        else:
            self._admin(
                f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE}",
                f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE}_template",
                f"CREATE DATABASE {POSTGRES_DATABASE}_template",
            )
            worker("migrate", f"{POSTGRES_SERVER}/{POSTGRES_DATABASE}_template", rows=rows)

    def fresh(self) -> None:
        if self.kind == "sqlite":
            shutil.copyfile(self.template, self.path)
        else:
            self._admin(
                f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE}",
                f"CREATE DATABASE {POSTGRES_DATABASE} TEMPLATE {POSTGRES_DATABASE}_template",
            )

    def drop(self) -> None:
        if self.kind == "sqlite":
            self.path.unlink(missing_ok=True)
            self.template.unlink(missing_ok=True)
        else:
            self._admin(
                f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE}",
                f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE}_template",
            )


def use_tag(tag: str) -> None:
    """Keep this run's files and databases apart from another run's (``--tag``), so two can run at once."""
    global WORKDIR, POSTGRES_DATABASE
    if tag:
        WORKDIR = WORKDIR.with_name(f"{WORKDIR.name}-{tag}")
        POSTGRES_DATABASE = f"{POSTGRES_DATABASE}_{tag}"


TAG = ""


def worker(name: str, database: str, *, rows: int, file: str = "", limit: int = 0) -> dict:
    """Run one measurement in a fresh interpreter; its result and its own peak RSS (os.wait4)."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--worker-database",
        database,
        "--rows",
        str(rows),
        "--file",
        file,
        "--limit",
        str(limit or rows),
        "--tag",
        TAG,
    ]
    output = WORKDIR / f"worker-{name}.log"
    with output.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    text = output.read_text()
    if process.returncode != 0 or "RESULT " not in text:
        raise SystemExit(f"worker {name} on {database} failed:\n{text[-4000:]}")
    result = json.loads(text.rsplit("RESULT ", 1)[1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def importer_version() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--short", "--", "processors/spreadsheets/importer.py")
    digest = git("hash-object", "processors/spreadsheets/importer.py")[:10]
    return f"importer.py at {head}{' + uncommitted changes' if dirty else ''} (blob {digest})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 rows, for development")
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql", "both"), default="both", help="which databases"
    )
    parser.add_argument("--skip-import-export", action="store_true", help="leave django-import-export out")
    parser.add_argument(
        "--tag", default="", help="name of this run's work directory and databases (runs side by side)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-database", help=argparse.SUPPRESS)
    parser.add_argument("--file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.quick:
        options.rows = 5_000
    if options.tag and not options.tag.replace("_", "").isalnum():
        parser.error("--tag: letters, digits and underscores only")
    global TAG
    TAG = options.tag.lower()  # PostgreSQL folds unquoted names to lower case
    use_tag(TAG)
    if options.worker:
        return run_worker(options)

    WORKDIR.mkdir(exist_ok=True)
    kinds = ["sqlite", "postgresql"] if options.database == "both" else [options.database]
    databases = [Database(kind) for kind in kinds]
    print(f"{importer_version()}; {os.cpu_count()} cores; {options.rows:,} rows", flush=True)
    started = time.perf_counter()
    generated = worker(
        "generate", f"sqlite:///{WORKDIR / 'generate.sqlite3'}", rows=options.rows, file=str(WORKDIR)
    )
    (WORKDIR / "generate.sqlite3").unlink(missing_ok=True)
    print(
        f"generated {generated['xlsx']} ({generated['xlsx_bytes'] / MB:.1f} MB): "
        f"{generated['rows']:,} rows, {generated['services']} services, {PROCESSORS:,} processors, "
        f"{generated['items']:,} data items over {generated['categories']} leaf categories "
        f"(the real taxonomy), in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    file = generated["xlsx"]
    limit = min(options.rows, IMPORT_EXPORT_MAX_ROWS)
    results = {}
    for database in databases:
        database.create_template(options.rows)
        measured = {}
        for name in ("floor", "ours", "export", "import-export"):
            if name == "import-export" and options.skip_import_export:
                continue
            if name != "export":  # the export reads the register the import has just written
                database.fresh()
            measured[name] = worker(name, database.url, rows=options.rows, file=file, limit=limit)
            print(f"  {database.kind} {name}: {json.dumps(measured[name])}", flush=True)
        database.drop()
        results[database.kind] = measured

    print()
    print("| database | measure | seconds | ratio | queries | peak RSS MB | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    verdicts = []
    for kind, measured in results.items():
        floor, ours = measured["floor"], measured["ours"]
        ratio = ours["import_s"] / floor["floor_s"]
        verdicts.append(ratio <= 3 and ours["peak_rss_mb"] < 300)
        rows = [
            ("floor: calamine parse", floor["parse_calamine_s"], "", "", "", ""),
            ("floor: openpyxl read-only parse", floor["parse_openpyxl_s"], "", "", "", "second figure"),
            ("floor: normalise (Python)", floor["normalise_s"], "", "", "", "not in the floor"),
            ("floor: driver insert", floor["insert_s"], "", "", "", f"{floor['inserted_rows']:,} rows"),
            (
                "**floor** (calamine + insert)",
                floor["floor_s"],
                "1.00×",
                "",
                f"{floor['peak_rss_mb']:.0f}",
                "",
            ),
            (
                "**import_register**",
                ours["import_s"],
                f"{ratio:.2f}×",
                ours["queries"],
                f"{ours['peak_rss_mb']:.0f}",
                f"ok={ours['ok']}, {ours['operations']:,} ops, {ours['data_items']:,} items",
            ),
        ]
        if "import-export" in measured:
            iie = measured["import-export"]
            projected = iie["import_s"] * options.rows / iie["rows"]
            note = f"{iie['rows']:,} rows measured" + (
                f", ×{options.rows / iie['rows']:.0f} extrapolated" if iie["rows"] < options.rows else ""
            )
            queries = iie["queries"] * options.rows // iie["rows"]
            rows.append(
                (
                    "django-import-export",
                    projected,
                    f"{projected / ours['import_s']:.1f}× ours",
                    f"{queries:,}" + ("*" if iie["rows"] < options.rows else ""),
                    f"{iie['peak_rss_mb']:.0f}",
                    note,
                )
            )
            verdicts.append(projected / ours["import_s"] >= 10)
        export = measured["export"]
        export_ratio = export["export_s"] / export["baseline_s"]
        verdicts.append(export_ratio <= 1.5)
        rows += [
            ("openpyxl write-only (same strings)", export["baseline_s"], "1.00×", "", "", ""),
            (
                "**export_disclosure** xlsx zh",
                export["export_s"],
                f"{export_ratio:.2f}×",
                export["export_queries"],
                f"{export['peak_rss_mb']:.0f}",
                f"{export['rows']:,} rows (RSS includes the baseline's strings)",
            ),
        ]
        for label, seconds, ratio_text, queries, rss, note in rows:
            print(f"| {kind} | {label} | {seconds:.2f} | {ratio_text} | {queries} | {rss} | {note} |")
    print()
    print("budgets:", "all met" if all(verdicts) else "NOT all met (see the ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
