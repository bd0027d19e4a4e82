"""REST API benchmark: a filtered list page against the hand-written SQL that answers the same question.

On a throwaway register of 100,000 operations (bulk inserts), it times
``GET /api/v1/operations/?category=identity&page_size=50`` through the whole Django stack and the
equivalent hand-written SQL (count, page, data items, purposes, actions) through the same database
driver, and prints p50, p95 and their ratio. The budget is the API at most 3x the SQL.

    .venv/bin/python bench/api_bench.py                                   # SQLite file in /tmp
    .venv/bin/python bench/api_bench.py --database postgres://postgres@127.0.0.1:5432/bench_api

``generate_register`` is also what the query-count tests use to bulk-create their 1,000+ operations.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = Path(tempfile.gettempdir()) / "processor-registry-bench-api.sqlite3"
CATEGORY_GROUP = "identity"
PAGE_SIZE = 50


def generate_register(operations: int, *, processors: int | None = None, seed: int = 4) -> dict:
    """Bulk-insert a register of this many operations (1-4 data items, a purpose, two actions each)."""
    from django.db import transaction

    from processors.models import (
        Controller,
        DataCategory,
        DataItem,
        Operation,
        ProcessingAction,
        Processor,
        Purpose,
        Relationship,
        Service,
        fill_reading_order,
    )

    rng = random.Random(seed)
    with transaction.atomic():
        controller = Controller.objects.create(code=f"bench-{seed}", name_zh=f"基准公司{seed}")
        service_objects = Service.objects.bulk_create(
            Service(controller=controller, name=f"基准服务{number}") for number in range(40)
        )
        processor_count = processors or max(10, operations // 50)
        groups = Processor.objects.bulk_create(
            Processor(
                name_zh=f"基准集团{seed}-{number}", name_key=f"bench-group-{seed}-{number}", kind="group"
            )
            for number in range(max(1, processor_count // 100))
        )
        processor_objects = Processor.objects.bulk_create(
            Processor(
                name_zh=f"基准受托方{seed}-{number}",
                name_key=f"bench-processor-{seed}-{number:06d}",
                country="CN" if number % 10 else "US",
                contact_phone=f"010-{number:08d}",
                member_of=groups[number % len(groups)] if number % 20 == 0 else None,
            )
            for number in range(processor_count)
        )
        recipients = groups + processor_objects
        leaves = list(
            DataCategory.objects.filter(parent__isnull=False).order_by("code").values_list("pk", "name_zh")
        )
        # Nearly every published row names the person, so every operation sends basic.name first.
        name = next(leaf for leaf in leaves if leaf[1] == "姓名")
        others = [leaf for leaf in leaves if leaf != name]
        purpose_ids = list(Purpose.objects.values_list("pk", flat=True))
        action_ids = list(ProcessingAction.objects.values_list("pk", flat=True))
        relationships = list(Relationship.values)
        combinations = len(service_objects) * len(recipients)
        rows = []
        for number in range(operations):
            # Recipient, service and relationship together are unique for every undated row.
            rows.append(
                Operation(
                    service=service_objects[(number // len(recipients)) % len(service_objects)],
                    processor=recipients[number % len(recipients)],
                    relationship=relationships[(number // combinations) % len(relationships)],
                    cross_border=number % 17 == 0,
                    destination_countries=["US"] if number % 17 == 0 else [],
                    status="retired" if number % 23 == 0 else "active",
                    data_items_text="",
                )
            )
        fill_reading_order(rows)  # bulk_create sends no pre_save
        created = Operation.objects.bulk_create(rows, batch_size=2000)
        items, purpose_links, action_links = [], [], []
        PurposeLink = Operation.purposes.through
        ActionLink = Operation.actions.through
        for operation in created:
            chosen = [name, *rng.sample(others, rng.randint(0, 3))]
            for position, (category_id, text) in enumerate(chosen):
                items.append(
                    DataItem(
                        operation_id=operation.pk,
                        position=position,
                        text=text,
                        category_id=category_id,
                        match="alias",
                    )
                )
            if operation.pk % 29 == 0:
                items.append(DataItem(operation_id=operation.pk, position=len(chosen), text="基准未识别项"))
            purpose_links.append(PurposeLink(operation_id=operation.pk, purpose_id=rng.choice(purpose_ids)))
            for action_id in rng.sample(action_ids, 2):
                action_links.append(ActionLink(operation_id=operation.pk, processingaction_id=action_id))
        DataItem.objects.bulk_create(items, batch_size=5000)
        PurposeLink.objects.bulk_create(purpose_links, batch_size=5000)
        ActionLink.objects.bulk_create(action_links, batch_size=5000)
    return {
        "controller": controller,
        "processors": recipients,
        "operations": len(created),
        "items": len(items),
    }


# The same answer written by hand: what a developer would send without the ORM, REST framework or
# django-filter — the page count, one page in the register's order, then its items, purposes and actions.
HAND_WRITTEN_SQL = {
    "count": """
        SELECT COUNT(*) FROM processors_operation o
        WHERE EXISTS (
            SELECT 1 FROM processors_dataitem i JOIN processors_datacategory c ON c.id = i.category_id
            WHERE i.operation_id = o.id AND (c.code = %(code)s OR c.code LIKE %(prefix)s)
        )""",
    "page": """
        SELECT o.id, o.recipient_qualifier, o.relationship, o.status, o.cross_border, o.legal_basis,
               o.effective_from, o.effective_to, o.data_items_text, o.purpose_text,
               s.id, s.name, s.name_en, k.code, k.name_zh, k.name_en,
               p.id, p.name_zh, p.name_en, p.kind, p.contact_phone, p.contact_email, p.country
        FROM processors_operation o
        JOIN processors_service s ON s.id = o.service_id
        JOIN processors_controller k ON k.id = s.controller_id
        JOIN processors_processor p ON p.id = o.processor_id
        WHERE EXISTS (
            SELECT 1 FROM processors_dataitem i JOIN processors_datacategory c ON c.id = i.category_id
            WHERE i.operation_id = o.id AND (c.code = %(code)s OR c.code LIKE %(prefix)s)
        )
        ORDER BY k.code, s.name, p.name_key, o.id
        LIMIT %(limit)s""",
    "items": """
        SELECT i.operation_id, i.position, i.text, i.match, c.code, c.name_zh, c.name_en, c.sensitive
        FROM processors_dataitem i LEFT JOIN processors_datacategory c ON c.id = i.category_id
        WHERE i.operation_id IN ({ids}) ORDER BY i.operation_id, i.position, i.id""",
    "purposes": """
        SELECT l.operation_id, u.code, u.name_zh, u.name_en
        FROM processors_operation_purposes l JOIN processors_purpose u ON u.id = l.purpose_id
        WHERE l.operation_id IN ({ids}) ORDER BY u.position, u.code""",
    "actions": """
        SELECT l.operation_id, a.code, a.name_zh, a.name_en, a.pipl_article_4
        FROM processors_operation_actions l JOIN processors_processingaction a ON a.id = l.processingaction_id
        WHERE l.operation_id IN ({ids}) ORDER BY a.position, a.code""",
}


def run_hand_written_sql(cursor, code: str, limit: int) -> int:
    """Run the hand-written queries for one page; returns the number of operations on it."""
    params = {"code": code, "prefix": code + ".%", "limit": limit}
    cursor.execute(HAND_WRITTEN_SQL["count"], params)
    cursor.fetchone()
    cursor.execute(HAND_WRITTEN_SQL["page"], params)
    ids = [row[0] for row in cursor.fetchall()]
    if ids:
        placeholders = ", ".join(["%s"] * len(ids))
        for name in ("items", "purposes", "actions"):
            cursor.execute(HAND_WRITTEN_SQL[name].format(ids=placeholders), ids)
            cursor.fetchall()
    return len(ids)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=f"sqlite:///{DEFAULT_SQLITE}", help="DATABASE_URL of a throwaway DB"
    )
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--regenerate", action="store_true", help="drop and rebuild the generated register")
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = options.database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.test_settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from processors.models import Operation

    vendor = connection.vendor
    if options.regenerate and vendor == "sqlite" and DEFAULT_SQLITE.exists():
        connection.close()
        DEFAULT_SQLITE.unlink()
    elif options.regenerate:
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", "--noinput", verbosity=0)
    existing = Operation.objects.count()
    if existing < options.operations:
        started = time.perf_counter()
        generate_register(options.operations - existing, seed=existing + 1)
        print(
            f"generated {options.operations - existing:,} operations in {time.perf_counter() - started:.1f} s"
        )
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    total = Operation.objects.count()

    setup_test_environment()
    user = get_user_model().objects.filter(
        username="bench"
    ).first() or get_user_model().objects.create_superuser("bench", "bench@example.com", None)
    client = APIClient()
    client.force_authenticate(user)
    url = f"/api/v1/operations/?category={CATEGORY_GROUP}&page_size={PAGE_SIZE}"

    def api_page() -> None:
        response = client.get(url)
        assert response.status_code == 200, response.content[:500]
        assert len(response.json()["results"]) == PAGE_SIZE

    def sql_page() -> None:
        with connection.cursor() as cursor:
            assert run_hand_written_sql(cursor, CATEGORY_GROUP, PAGE_SIZE) == PAGE_SIZE

    for warm_up in (api_page, sql_page):
        warm_up()
        warm_up()
    # Interleave the two so drift (caches, other load) hits both alike.
    api_samples, sql_samples = [], []
    for _ in range(options.repeat):
        api_samples += timed(api_page, 1)
        sql_samples += timed(sql_page, 1)

    api_p50, api_p95 = percentile(api_samples, 0.5), percentile(api_samples, 0.95)
    sql_p50, sql_p95 = percentile(sql_samples, 0.5), percentile(sql_samples, 0.95)
    database = connection.settings_dict["NAME"]
    print(f"database: {vendor} ({database}), {total:,} operations, {options.repeat} runs")
    print(f"request:  GET {url}")
    for label, samples, p50, p95 in (
        ("API", api_samples, api_p50, api_p95),
        ("hand-written SQL", sql_samples, sql_p50, sql_p95),
    ):
        print(f"{label:<17} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   mean {statistics.mean(samples):8.1f} ms")
    ratio_p50, ratio_p95 = api_p50 / sql_p50, api_p95 / sql_p95
    verdict = "within" if max(ratio_p50, ratio_p95) <= 3 else "OVER"
    print(f"ratio API/SQL    p50 {ratio_p50:.2f}x   p95 {ratio_p95:.2f}x   ({verdict} the 3x budget)")
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    sys.exit(main())
