"""Page benchmark: every page and endpoint a user opens, timed on a large register (issue 13).

For each register size (``--sizes``, default 1,000 and 100,000 operations) and database (SQLite file,
PostgreSQL), a register is generated once with ``api_bench.generate_register`` and kept for later runs
(``--rebuild`` regenerates it); two versions are published through the API with a few operations retired
in between, so that the published page, the versions list and the diffs have something to show.
Then, in process, with Django's test client logged in as a superuser, it requests the browser pages,
the admin (index, every changelist with and without search, filtered changelists, change forms and
history pages, the admin tools), every list and report of ``/api/v1/`` (walked from the API root) and the
downloads, each once to warm up (counting its SQL queries, bytes and status) and ``--runs`` times more
for p50 and p95. A request slower than ``--timeout-seconds`` is not repeated: its one time is shown as
``>`` that time.

The tables print SQLite and PostgreSQL side by side for each size, with the growth from the smallest size,
and flag the targets of issue 13: p50 <= 300 ms on PostgreSQL and <= 500 ms on SQLite, the dashboard
<= 200 ms, no HTML page over 1 MB and no API response over 2 MB, and growth <= 2x between the smallest
and the largest register (downloads only report; they must stream, not be small or quick).

    .venv/bin/python bench/pages_bench.py --sizes 1000 --runs 3              # a quick look
    .venv/bin/python bench/pages_bench.py                                    # 1,000 and 100,000
    .venv/bin/python bench/pages_bench.py --db postgres --only findings
    .venv/bin/python bench/pages_bench.py --report-only                      # re-print saved results
    .venv/bin/python bench/pages_bench.py --sizes 20000 --explain            # EXPLAIN of the admin's ?q=

Every (database, size) runs in its own subprocess (Django is set up once per process); its results are
saved as JSON in the work folder, so runs made apart (e.g. 100,000 in the background) print together.
PostgreSQL databases are ``bench_pages_<size>`` on the server of ``bench/import_bench.py``, created here
when missing, so they never clash with test databases.
"""

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_bench import generate_register, percentile  # noqa: E402
from import_bench import POSTGRES_SERVER, setup_django  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = Path(tempfile.gettempdir()) / "processor-registry-bench-pages"
DATABASES = ("sqlite", "postgres")
LABELS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
P50_TARGET_MS = {"sqlite": 500, "postgres": 300}
DASHBOARD_TARGET_MS = 200
SIZE_LIMITS = {"html": 1024 * 1024, "api": 2 * 1024 * 1024}
GROWTH_LIMIT = 2.0
VERSION_LABELS = ("bench-v1", "bench-v2")
RETIRED_BETWEEN_VERSIONS = 10
# Searches a user types: a data item named in many rows, and one processor's exact name.
SEARCH_ITEM = "手机号"
SEARCH_PROCESSOR = "基准受托方1-000007"
# A data item some rows carry (every 29th operation), for the EXPLAIN of the admin's search.
EXPLAIN_TERM = "基准未识别项"


def workdir(tag: str) -> Path:
    return WORKDIR.with_name(f"{WORKDIR.name}-{tag}") if tag else WORKDIR


def postgres_name(size: int, tag: str) -> str:
    return f"bench_pages_{tag}_{size}" if tag else f"bench_pages_{size}"


def database_url(kind: str, size: int, tag: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir(tag) / f'register-{size}.sqlite3'}"
    return f"{POSTGRES_SERVER}/{postgres_name(size, tag)}"


def results_path(kind: str, size: int, tag: str) -> Path:
    return workdir(tag) / f"results-{kind}-{size}.json"


# --- Worker side (runs inside Django) --------------------------------------------------------------


def prepare_register(size: int, client) -> dict:
    """Generate the register when it is empty, then publish the two versions if they are missing."""
    from django.core.management import call_command, get_commands
    from django.db import connection

    from processors.models import Controller, Operation, PublishedVersion

    info: dict = {}
    existing = Operation.objects.count()
    if existing not in (0, size):
        return {"wrong_size": existing}
    if existing == 0:
        started = time.perf_counter()
        generate_register(size, seed=1)
        info["generated_seconds"] = round(time.perf_counter() - started, 1)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
    controller = Controller.objects.order_by("pk").first()
    published = set(PublishedVersion.objects.filter(controller=controller).values_list("label", flat=True))
    today = datetime.date.today().isoformat()
    for number, label in enumerate(VERSION_LABELS):
        if label in published:
            continue
        if number:
            # Something to diff: a few rows retired through the API between the two versions.
            active = Operation.objects.filter(service__controller=controller, status="active")
            for pk in active.order_by("pk").values_list("pk", flat=True)[:RETIRED_BETWEEN_VERSIONS]:
                response = client.patch(
                    f"/api/v1/operations/{pk}/", {"status": "retired"}, content_type="application/json"
                )
                if response.status_code != 200:
                    print(f"!!! PATCH operation {pk}: {response.status_code} {response.content[:300]!r}")
        started = time.perf_counter()
        response = client.post(
            "/api/v1/versions/",
            {"controller": controller.code, "label": label, "updated_on": today, "effective_on": today},
            content_type="application/json",
        )
        if response.status_code != 201:
            raise SystemExit(f"publishing {label} failed: {response.status_code} {response.content[:500]!r}")
        info[f"publish_{label}_seconds"] = round(time.perf_counter() - started, 1)
    # Stored findings (issue 13) are refreshed by this command when the product has it.
    if "refresh_findings" in get_commands():
        started = time.perf_counter()
        call_command("refresh_findings", verbosity=0)
        info["refresh_findings_seconds"] = round(time.perf_counter() - started, 1)
    return info


def admin_pages(request_user) -> list[tuple[str, str, str]]:
    """The admin index, tools, every changelist (and its search), filtered lists, forms and history."""
    from django.contrib import admin
    from django.test import RequestFactory
    from django.urls import NoReverseMatch, reverse

    from processors.models import Operation, Processor, Service

    pages = [("admin index", "/admin/", "html")]
    request = RequestFactory().get("/admin/")
    request.user = request_user
    for app in admin.site.get_app_list(request):
        for entry in app["models"]:
            url = entry.get("admin_url")
            if not url:
                continue
            name = entry["object_name"].lower()
            pages.append((f"admin {name} list", url, "html"))
            model_admin = admin.site.get_model_admin(entry["model"])
            if model_admin.search_fields:
                pages.append((f"admin {name} list ?q=", f"{url}?q={SEARCH_ITEM}", "html"))
    controller_id = Service.objects.values_list("controller_id", flat=True).first()
    pages += [
        ("admin operation ?category=identity", "/admin/processors/operation/?category=identity", "html"),
        ("admin operation ?cross_border=true", "/admin/processors/operation/?cross_border=true", "html"),
        ("admin operation ?status=retired", "/admin/processors/operation/?status=retired", "html"),
        ("admin operation ?q=processor", f"/admin/processors/operation/?q={SEARCH_PROCESSOR}", "html"),
        ("admin processor ?q=processor", f"/admin/processors/processor/?q={SEARCH_PROCESSOR}", "html"),
        ("admin processor ?receives=identity", "/admin/processors/processor/?receives=identity", "html"),
        ("admin processor ?kind=group", "/admin/processors/processor/?kind=group", "html"),
        ("admin dataitem ?unmapped=true", "/admin/processors/dataitem/?unmapped=true", "html"),
        ("admin dataitem ?category=identity", "/admin/processors/dataitem/?category=identity", "html"),
        (
            "admin service ?controller",
            f"/admin/processors/service/?controller__id__exact={controller_id}",
            "html",
        ),
    ]
    operation = Operation.objects.order_by("pk").first()
    group = Processor.objects.filter(kind="group").order_by("pk").first()
    for label, model, pk in (
        ("operation", "operation", operation.pk),
        ("processor (a group)", "processor", group.pk),
    ):
        pages.append((f"admin {label} change form", f"/admin/processors/{model}/{pk}/change/", "html"))
        pages.append((f"admin {label} history", f"/admin/processors/{model}/{pk}/history/", "html"))
    tools = (
        ("admin findings", "admin:processors_findings", ""),
        ("admin deletion notice", "admin:processors_deletion_notice", f"?categories={SEARCH_ITEM}"),
        ("admin import", "admin:processors_operation_import", ""),
    )
    for label, name, query in tools:
        try:
            pages.append((label, reverse(name) + query, "html"))
        except NoReverseMatch:
            print(f"!!! no URL named {name} any more: {label} skipped")
    return pages


def api_pages(client) -> list[tuple[str, str, str]]:
    """Every link of the API root, the reports with their parameters, detail views and filtered lists."""
    from processors.models import Controller, Operation, Processor, PublishedVersion

    root = client.get("/api/v1/", HTTP_ACCEPT="application/json")
    if root.status_code != 200:
        raise SystemExit(f"the API root answered {root.status_code}")
    pages = [("api root", "/api/v1/", "api")]
    for name, url in root.json().items():
        path = re.sub(r"^https?://[^/]+", "", url)
        if name == "deletion-notices":
            path += f"?category={SEARCH_ITEM}"
        pages.append((f"api {name}", path, "html" if name == "docs" else "api"))
    operation = Operation.objects.order_by("pk").first()
    group = Processor.objects.filter(kind="group").order_by("pk").first()
    controller = Controller.objects.order_by("pk").first()
    newest = PublishedVersion.objects.filter(label=VERSION_LABELS[-1]).first()
    pages += [
        ("api processors ?receives=手机号", f"/api/v1/processors/?receives={SEARCH_ITEM}", "api"),
        ("api processors ?q=processor", f"/api/v1/processors/?q={SEARCH_PROCESSOR}", "api"),
        ("api operations ?category=identity", "/api/v1/operations/?category=identity", "api"),
        ("api operations ?cross_border=true", "/api/v1/operations/?cross_border=true", "api"),
        ("api operations ?q=手机号", f"/api/v1/operations/?q={SEARCH_ITEM}", "api"),
        ("api deletion-notices 姓名 (every row)", "/api/v1/deletion-notices/?category=姓名", "api"),
        ("api controller", f"/api/v1/controllers/{controller.code}/", "api"),
        ("api processor (a group)", f"/api/v1/processors/{group.pk}/", "api"),
        ("api processor categories", f"/api/v1/processors/{group.pk}/categories/", "api"),
        ("api processor history", f"/api/v1/processors/{group.pk}/history/", "api"),
        ("api operation", f"/api/v1/operations/{operation.pk}/", "api"),
        ("api operation history", f"/api/v1/operations/{operation.pk}/history/", "api"),
        ("api version", f"/api/v1/versions/{newest.pk}/", "api"),
        ("api version diff (previous)", f"/api/v1/versions/{newest.pk}/diff/", "api"),
        ("api version diff against live", f"/api/v1/versions/{newest.pk}/diff/?against=live", "api"),
        ("download api operations csv", "/api/v1/operations/export/?format=csv", "download"),
        (
            "download api deletion-notices csv",
            f"/api/v1/deletion-notices/?category={SEARCH_ITEM}&format=csv",
            "download",
        ),
    ]
    return pages


def site_pages() -> list[tuple[str, str, str]]:
    """The browser pages, with the filters and searches a user applies, and their downloads."""
    from processors.models import Controller, DataCategory, Processor

    code = Controller.objects.order_by("pk").values_list("code", flat=True).first()
    group = Processor.objects.filter(kind="group").order_by("pk").first()
    plain = Processor.objects.filter(kind="organisation").order_by("pk").first() or group
    every_row = DataCategory.objects.filter(name_zh="姓名").values_list("code", flat=True).first()
    first, last = VERSION_LABELS
    return [
        ("dashboard /", "/", "html"),
        ("explorer", "/explorer/", "html"),
        ("explorer ?category=identity", "/explorer/?category=identity", "html"),
        ("explorer ?cross_border=true", "/explorer/?cross_border=true", "html"),
        ("explorer ?q=手机号", f"/explorer/?q={SEARCH_ITEM}", "html"),
        ("explorer ?q=processor", f"/explorer/?q={SEARCH_PROCESSOR}", "html"),
        ("explorer page 20", "/explorer/?page=20", "html"),
        ("processor page (a group)", f"/processors/{group.pk}/", "html"),
        ("processor page (an organisation)", f"/processors/{plain.pk}/", "html"),
        ("categories index", "/categories/", "html"),
        ("category page identity", "/categories/identity/", "html"),
        ("category page 姓名 (every row)", f"/categories/{every_row}/", "html"),
        ("matrix", "/matrix/", "html"),
        ("findings", "/findings/", "html"),
        ("deletion notice ?categories=手机号", f"/deletion-notice/?categories={SEARCH_ITEM}", "html"),
        ("deletion notice ?categories=姓名", "/deletion-notice/?categories=姓名", "html"),
        ("disclosure live", f"/disclosure/{code}/", "html"),
        ("disclosure embed", f"/disclosure/{code}/embed/", "html"),
        ("disclosure published version", f"/disclosure/{code}/versions/{last}/", "html"),
        ("versions list", f"/disclosure/{code}/versions/", "html"),
        ("diff (latest against live)", f"/disclosure/{code}/diff/", "html"),
        ("diff v1 to v2", f"/disclosure/{code}/diff/?from={first}&to={last}", "html"),
        ("import upload", "/import/", "html"),
        ("download explorer csv", "/explorer/export/?format=csv", "download"),
        ("download explorer xlsx", "/explorer/export/", "download"),
        ("download disclosure xlsx", f"/disclosure/{code}/download/", "download"),
        ("download disclosure csv", f"/disclosure/{code}/download/?format=csv", "download"),
        ("download diff md", f"/disclosure/{code}/diff/?from={first}&to={last}&format=md", "download"),
        (
            "download deletion notice csv",
            f"/deletion-notice/?categories={SEARCH_ITEM}&format=csv",
            "download",
        ),
    ]


def fetch(client, url: str, kind: str) -> tuple[int, int]:
    """One GET, its body read to the end (streamed or not); its status and size in bytes."""
    headers = {"HTTP_ACCEPT": "application/json"} if kind == "api" else {}
    response = client.get(url, **headers)
    if response.streaming:
        size = sum(len(chunk) for chunk in response.streaming_content)
    else:
        size = len(response.content)
    response.close()
    return response.status_code, size


def measure(client, label: str, url: str, kind: str, *, runs: int, timeout_ms: float) -> dict:
    """Warm up once (queries, bytes, status), then time ``runs`` more unless one is over the timeout."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        status, size = fetch(client, url, kind)
        first = (time.perf_counter() - started) * 1000
    # Counted now: the next request's request_started signal empties the connection's query log.
    query_count = len(queries)
    samples: list[float] = []
    if first <= timeout_ms:
        for _ in range(runs):
            started = time.perf_counter()
            fetch(client, url, kind)
            samples.append((time.perf_counter() - started) * 1000)
            if samples[-1] > timeout_ms:
                break
    over = first > timeout_ms or (bool(samples) and samples[-1] > timeout_ms)
    timed = samples or [first]
    result = {
        "label": label,
        "url": url,
        "kind": kind,
        "status": status,
        "bytes": size,
        "queries": query_count,
        "runs": len(samples),
        "over_timeout": over,
        "p50": percentile(timed, 0.5),
        "p95": percentile(timed, 0.95),
    }
    loud = "" if status == 200 else f"   !!! STATUS {status} !!!"
    print(
        f"  {label:<44} {result['p50']:9.1f} ms p50 {result['p95']:9.1f} ms p95 "
        f"{result['queries']:5d} q {size / 1024:10.1f} KB{loud}",
        flush=True,
    )
    return result


def explain_admin_search(user, term: str) -> None:
    """EXPLAIN ANALYZE of the admin's operations search, as the changelist runs it and as one subquery per
    searched table (the form the trigram indexes of migration 0011 can serve), on PostgreSQL."""
    from django.contrib import admin
    from django.db import connection
    from django.db.models import Q
    from django.test import RequestFactory

    from processors.models import DataItem, Operation, Processor, ProcessorAlias, Service

    request = RequestFactory().get("/admin/processors/operation/", {"q": term})
    request.user = user
    model_admin = admin.site.get_model_admin(Operation)
    changelist = model_admin.get_changelist_instance(request)
    by_table = (
        Q(
            service__in=Service.objects.filter(Q(name__icontains=term) | Q(name_en__icontains=term)).values(
                "pk"
            )
        )
        | Q(
            processor__in=Processor.objects.filter(
                Q(name_zh__icontains=term) | Q(name_en__icontains=term)
            ).values("pk")
        )
        | Q(processor__in=ProcessorAlias.objects.filter(text__icontains=term).values("processor_id"))
        | Q(pk__in=DataItem.objects.filter(text__icontains=term).values("operation_id"))
    )
    for title, queryset in (
        (f"admin changelist ?q={term} {model_admin.search_fields}", changelist.get_queryset(request)),
        (f"one subquery per searched table, ?q={term}", Operation.objects.filter(by_table)),
    ):
        sql, params = queryset.order_by("-pk").values("pk")[:100].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
            print(f"\n-- EXPLAIN {title}")
            for (line,) in cursor.fetchall():
                print(line)


def run_worker(options) -> int:
    setup_django(options.worker_database, rows=options.worker_size)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    # The test client's host, without setup_test_environment's template instrumentation (which copies
    # every rendered context and would slow the big pages down by itself).
    override_settings(ALLOWED_HOSTS=["testserver"]).enable()
    call_command("migrate", "--noinput", verbosity=0)
    User = get_user_model()
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", None
    )
    client = Client()
    client.force_login(user)
    info = prepare_register(options.worker_size, client)
    if "wrong_size" in info:
        print("RESULT " + json.dumps(info))
        return 0
    if options.explain:
        if connection.vendor == "postgresql":
            explain_admin_search(user, EXPLAIN_TERM)
        print("RESULT " + json.dumps({"info": info, "pages": []}))
        return 0
    pages = site_pages() + admin_pages(user) + api_pages(client)
    if options.only:
        pages = [page for page in pages if options.only.lower() in (page[0] + " " + page[1]).lower()]
    print(
        f"{connection.vendor} ({connection.settings_dict['NAME']}), {options.worker_size:,} operations, "
        f"{len(pages)} pages, {options.runs} runs after a warm-up {info}",
        flush=True,
    )
    results = [
        measure(client, label, url, kind, runs=options.runs, timeout_ms=options.timeout_seconds * 1000)
        for label, url, kind in pages
    ]
    print("RESULT " + json.dumps({"info": info, "pages": results}, ensure_ascii=False))
    return 0


# --- Orchestrator side ------------------------------------------------------------------------------


def postgres_admin(*statements: str) -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def postgres_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
        return (
            connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        )


def drop_database(kind: str, size: int, tag: str) -> None:
    if kind == "sqlite":
        Path(database_url(kind, size, tag).removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:
        postgres_admin(f"DROP DATABASE IF EXISTS {postgres_name(size, tag)}")


def ensure_database(kind: str, size: int, tag: str) -> None:
    if kind == "postgres" and not postgres_exists(postgres_name(size, tag)):
        postgres_admin(f"CREATE DATABASE {postgres_name(size, tag)}")


def run_one(kind: str, size: int, options) -> dict:
    """Benchmark one database at one size in a subprocess; its output goes through, its result is saved."""
    if options.rebuild:
        drop_database(kind, size, options.tag)
    for _attempt in range(2):
        ensure_database(kind, size, options.tag)
        command = [
            sys.executable,
            __file__,
            "--worker-database",
            database_url(kind, size, options.tag),
            "--worker-size",
            str(size),
            "--runs",
            str(options.runs),
            "--timeout-seconds",
            str(options.timeout_seconds),
        ]
        if options.only:
            command += ["--only", options.only]
        if options.explain:
            command.append("--explain")
        print(f"== {LABELS[kind]}, {size:,} operations", flush=True)
        lines = []
        with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
            for line in process.stdout:  # passed through as it comes: a long run shows its progress
                lines.append(line.rstrip("\n"))
                if not line.startswith("RESULT "):
                    print(line, end="", flush=True)
        if process.returncode != 0 or not any(line.startswith("RESULT ") for line in lines):
            raise SystemExit(f"the worker for {kind} at {size} failed ({process.returncode})")
        result = json.loads(next(line for line in reversed(lines) if line.startswith("RESULT "))[7:])
        if "wrong_size" not in result:
            break
        print(f"{kind} holds {result['wrong_size']:,} operations, not {size:,}: rebuilding it")
        drop_database(kind, size, options.tag)
    if options.explain:
        return result
    result.update(database=kind, size=size, commit=git_commit(), when=datetime.datetime.now().isoformat())
    saved = load_result(kind, size, options.tag) if options.only else None
    if saved:  # a partial run updates its pages in the saved full result, and prints only its own
        fresh = {page["label"]: page for page in result["pages"]}
        pages = [fresh.pop(page["label"], page) for page in saved["pages"]] + list(fresh.values())
        saved = {**result, "pages": pages}
    results_path(kind, size, options.tag).write_text(
        json.dumps(saved or result, ensure_ascii=False, indent=1)
    )
    return result


def load_result(kind: str, size: int, tag: str) -> dict | None:
    path = results_path(kind, size, tag)
    return json.loads(path.read_text()) if path.exists() else None


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    # Figures from a working tree with uncommitted edits are not the commit's: say so.
    return commit + "+edits" if git("status", "--porcelain", "--untracked-files=no").strip() else commit


def short_size(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def time_text(page: dict | None) -> tuple[str, str]:
    if page is None:
        return "–", "–"
    if page["over_timeout"] and page["runs"] <= 1:
        return f"> {page['p50'] / 1000:.1f} s", "–"
    return f"{page['p50']:.0f}", f"{page['p95']:.0f}"


def bytes_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} B"


def misses(page: dict, kind: str, smallest: dict | None, *, sizes: bool) -> list[str]:
    """The targets of issue 13 this page misses on this database."""
    short = {"sqlite": "SQ", "postgres": "PG"}[kind]
    found = []
    if page["status"] != 200:
        found.append(f"{short} STATUS {page['status']}")
    if page["kind"] == "download":
        return found
    if page["p50"] > P50_TARGET_MS[kind]:
        found.append(f"{short} p50>{P50_TARGET_MS[kind]}")
    if page["label"].startswith("dashboard") and page["p50"] > DASHBOARD_TARGET_MS:
        found.append(f"{short} dashboard>{DASHBOARD_TARGET_MS}")
    limit = SIZE_LIMITS.get(page["kind"])
    if sizes and limit and page["bytes"] > limit:
        found.append(f"{page['kind'].upper()}>{limit // 1024 // 1024}MB")
    if smallest is not None and smallest["p50"] > 0 and page["p50"] / smallest["p50"] > GROWTH_LIMIT:
        found.append(f"{short} growth")
    return found


def report(results: dict, sizes: list[int], kinds: list[str]) -> str:
    """Markdown tables: one per size, the databases side by side, growth from the smallest size."""
    out = []
    smallest_size = sizes[0]
    for size in sizes:
        by_kind = {kind: results.get((kind, size)) for kind in kinds}
        present = {kind: result for kind, result in by_kind.items() if result}
        if not present:
            continue
        labels = list(dict.fromkeys(page["label"] for result in present.values() for page in result["pages"]))
        index = {kind: {page["label"]: page for page in result["pages"]} for kind, result in present.items()}
        base = {
            kind: {page["label"]: page for page in results[(kind, smallest_size)]["pages"]}
            for kind in present
            if size != smallest_size and results.get((kind, smallest_size))
        }
        commits = sorted({result.get("commit", "?") for result in present.values()})
        out.append(f"### {size:,} operations (commit {', '.join(commits)})\n")
        header = ["page", "kind"]
        align = ["---", "---"]
        for kind in present:
            name = LABELS[kind]
            header += [f"{name} p50 ms", "p95", "queries", "bytes"]
            align += ["---:"] * 4
        for kind in base:
            header.append(f"{LABELS[kind]} {short_size(size)} / {short_size(smallest_size)}")
            align.append("---:")
        header.append("misses")
        align.append("---")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(align) + "|")
        for label in labels:
            row = [label.replace("|", "\\|"), ""]
            flags = []
            for kind in present:
                page = index[kind].get(label)
                p50, p95 = time_text(page)
                row[1] = row[1] or (page or {}).get("kind", "")
                if page is None:
                    row += ["–"] * 4
                    continue
                row += [p50, p95, str(page["queries"]), bytes_text(page["bytes"])]
                # The same bytes on both databases: the size is flagged once, on the first.
                flags += misses(page, kind, base.get(kind, {}).get(label), sizes=kind == next(iter(present)))
            for kind in base:
                page, smallest = index[kind].get(label), base[kind].get(label)
                if page and smallest and smallest["p50"] > 0:
                    row.append(f"{page['p50'] / smallest['p50']:.1f}×")
                else:
                    row.append("–")
            row.append(", ".join(flags))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000", help="register sizes, comma-separated")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per page after one warm-up")
    parser.add_argument("--only", default="", help="only pages whose label or URL contains this")
    parser.add_argument("--timeout-seconds", type=float, default=30, help="a slower page is not repeated")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the registers")
    parser.add_argument(
        "--tag", default="", help="keep this checkout's registers and results apart (to compare two trees)"
    )
    parser.add_argument("--report-only", action="store_true", help="print the saved results, run nothing")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="on PostgreSQL, print EXPLAIN ANALYZE of the admin's operations search instead of timing pages",
    )
    parser.add_argument("--worker-database", help=argparse.SUPPRESS)
    parser.add_argument("--worker-size", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker_database:
        return run_worker(options)

    sizes = sorted(int(size.replace("_", "")) for size in options.sizes.split(","))
    kinds = [kind for kind in DATABASES if kind in options.db.split(",")]
    if options.explain:
        for size in sizes:
            run_one("postgres", size, options)
        return 0
    workdir(options.tag).mkdir(parents=True, exist_ok=True)
    results = {}
    for size in sizes:
        for kind in kinds:
            results[(kind, size)] = (
                load_result(kind, size, options.tag) if options.report_only else run_one(kind, size, options)
            )
    print()
    print(report(results, sizes, kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
