"""Reads: the querysets behind lists, filters and the "who receives X?" questions."""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from processors.models import (
    Controller,
    DataCategory,
    DataItem,
    ImportRecord,
    Operation,
    OperationStatus,
    Processor,
    ProcessorAlias,
    PublishedVersion,
    Purpose,
    Service,
)
from processors.text import normalize_key


def category_resolve(value: str) -> DataCategory | None:
    """The category a user means by a code, a Chinese or English name, or an alias."""
    value = (value or "").strip()
    if not value:
        return None
    key = normalize_key(value)
    return (
        DataCategory.objects.filter(
            Q(code=value.lower()) | Q(name_zh=value) | Q(name_en__iexact=value) | Q(aliases__key=key)
        )
        .order_by("code")
        .first()
    )


def category_subtree_q(categories: Iterable[DataCategory], prefix: str = "") -> Q:
    """Q matching the given categories and all their descendants (dotted codes are paths)."""
    condition = Q(pk__in=[])
    for category in categories:
        condition |= Q(**{f"{prefix}code": category.code}) | Q(
            **{f"{prefix}code__startswith": category.code + "."}
        )
    return condition


def category_subtree(categories: Iterable[DataCategory]) -> QuerySet[DataCategory]:
    return DataCategory.objects.filter(category_subtree_q(categories))


def category_tree() -> QuerySet[DataCategory]:
    """All categories in tree order (codes sort parents before their children)."""
    return DataCategory.objects.order_by("code")


def operations_with_categories(
    queryset: QuerySet[Operation], categories: Iterable[DataCategory], *, match_all: bool = False
) -> QuerySet[Operation]:
    """Operations carrying any (or, with match_all, every) of the categories, descendants included."""
    categories = list(categories)
    if not categories:
        return queryset
    groups = [[category] for category in categories] if match_all else [categories]
    for group in groups:
        items = DataItem.objects.filter(
            category_subtree_q(group, prefix="category__"), operation=OuterRef("pk")
        )
        queryset = queryset.filter(Exists(items))
    return queryset


def operations_with_sensitive_data(
    queryset: QuerySet[Operation], sensitive: bool = True
) -> QuerySet[Operation]:
    items = DataItem.objects.filter(operation=OuterRef("pk"), category__sensitive=True)
    return queryset.filter(Exists(items)) if sensitive else queryset.exclude(Exists(items))


def operations_with_unmapped_items(
    queryset: QuerySet[Operation], unmapped: bool = True
) -> QuerySet[Operation]:
    items = DataItem.objects.filter(operation=OuterRef("pk"), category__isnull=True)
    return queryset.filter(Exists(items)) if unmapped else queryset.exclude(Exists(items))


def processors_receiving(
    queryset: QuerySet[Processor], categories: Iterable[DataCategory]
) -> QuerySet[Processor]:
    """Processors that receive any of the categories (descendants included), directly or as a group member."""
    categories = list(categories)
    if not categories:
        return queryset
    receiving = operations_with_categories(Operation.objects.all(), categories)
    return queryset.filter(
        Exists(receiving.filter(processor=OuterRef("pk")))
        | Exists(receiving.filter(processor=OuterRef("member_of")))
    )


def operation_list(queryset: QuerySet[Operation] | None = None) -> QuerySet[Operation]:
    """Operations with everything a list shows loaded in a constant number of queries."""
    queryset = Operation.objects.all() if queryset is None else queryset
    return queryset.select_related("service__controller", "processor").prefetch_related(
        Prefetch(
            "data_items", queryset=DataItem.objects.select_related("category").order_by("position", "id")
        ),
        Prefetch("purposes", queryset=Purpose.objects.order_by("position", "code")),
        "actions",
    )


def processor_find(name: str) -> Processor | None:
    """The processor known by this name (legal name or alias, any width/case/spacing)."""
    key = normalize_key(name)
    return Processor.objects.filter(Q(name_key=key) | Q(aliases__key=key)).first()


# --- Added for the REST API: "through which operations?" and the processor × category matrix -------


def category_receipts(
    processors: Iterable[Processor], categories: Iterable[DataCategory]
) -> dict[int, list[dict]]:
    """Per processor, the operations (its own or its group's) that send it the categories, in one query."""
    processors = list(processors)
    categories = list(categories)
    if not processors or not categories:
        return {processor.pk: [] for processor in processors}
    owners = {processor.pk for processor in processors} | {
        processor.member_of_id for processor in processors if processor.member_of_id
    }
    rows = (
        DataItem.objects.filter(
            category_subtree_q(categories, prefix="category__"), operation__processor__in=owners
        )
        .order_by("operation_id", "category__code")
        .values_list(
            "operation_id",
            "operation__processor_id",
            "operation__service_id",
            "operation__service__name",
            "operation__service__controller__code",
            "category__code",
        )
    )
    by_owner: dict[int, dict[int, dict]] = {}
    for operation_id, owner_id, service_id, service_name, controller_code, code in rows:
        receipt = by_owner.setdefault(owner_id, {}).setdefault(
            operation_id,
            {
                "operation": operation_id,
                "processor": owner_id,
                "service": {"id": service_id, "name": service_name},
                "controller": controller_code,
                "categories": [],
            },
        )
        if code not in receipt["categories"]:
            receipt["categories"].append(code)
    return {
        processor.pk: [
            *by_owner.get(processor.pk, {}).values(),
            *(by_owner.get(processor.member_of_id, {}).values() if processor.member_of_id else ()),
        ]
        for processor in processors
    }


def processor_received_categories(processor: Processor, operations: QuerySet[Operation]) -> dict:
    """Everything a processor receives (directly and through its group), per category, in two queries."""
    owners = [processor.pk] + ([processor.member_of_id] if processor.member_of_id else [])
    operations = operations.filter(processor__in=owners).order_by().values("pk")
    items = (
        DataItem.objects.filter(operation__in=operations)
        .select_related("category", "operation__service__controller")
        .order_by("category__code", "operation_id", "position")
    )
    links = (
        Operation.purposes.through.objects.filter(operation__in=operations)
        .select_related("purpose")
        .order_by("purpose__position", "purpose__code")
    )
    purposes_by_operation: dict[int, list[Purpose]] = {}
    for link in links:
        purposes_by_operation.setdefault(link.operation_id, []).append(link.purpose)
    categories: dict[int, dict] = {}
    unmapped: list[dict] = []
    for item in items:
        operation = item.operation
        if item.category_id is None:
            unmapped.append({"text": item.text, "operation": operation.pk})
            continue
        entry = categories.setdefault(
            item.category_id,
            {"category": item.category, "via_group": True, "operations": [], "services": {}, "purposes": {}},
        )
        entry["via_group"] = entry["via_group"] and operation.processor_id != processor.pk
        if operation.pk not in entry["operations"]:
            entry["operations"].append(operation.pk)
        entry["services"].setdefault(operation.service_id, operation.service)
        for purpose in purposes_by_operation.get(operation.pk, ()):
            entry["purposes"].setdefault(purpose.pk, purpose)
    return {
        "processor": processor,
        "categories": [
            {
                **entry,
                "services": list(entry["services"].values()),
                "purposes": list(entry["purposes"].values()),
            }
            for entry in categories.values()
        ],
        "unmapped_items": unmapped,
    }


def category_matrix(operations: QuerySet[Operation]) -> dict:
    """Processors × categories with the number of operations in each cell, in two aggregate queries."""
    operation_ids = operations.order_by().values("pk")
    cells = (
        DataItem.objects.filter(operation__in=operation_ids, category__isnull=False)
        .values(
            "operation__processor_id",
            "operation__processor__name_zh",
            "operation__processor__name_en",
            "operation__processor__name_key",
            "category_id",
            "category__code",
            "category__name_zh",
            "category__name_en",
            "category__sensitive",
        )
        .annotate(operations=Count("operation_id", distinct=True))
        .order_by("operation__processor__name_key", "category__code")
    )
    totals = dict(
        Operation.objects.filter(pk__in=operation_ids)
        .order_by()
        .values("processor_id")
        .annotate(total=Count("pk"))
        .values_list("processor_id", "total")
    )
    rows: dict[int, dict] = {}
    columns: dict[str, dict] = {}
    matrix_cells = []
    for cell in cells:
        processor_id, code = cell["operation__processor_id"], cell["category__code"]
        rows.setdefault(
            processor_id,
            {
                "id": processor_id,
                "name_zh": cell["operation__processor__name_zh"],
                "name_en": cell["operation__processor__name_en"],
                "operations": totals.get(processor_id, 0),
            },
        )
        columns.setdefault(
            code,
            {
                "code": code,
                "name_zh": cell["category__name_zh"],
                "name_en": cell["category__name_en"],
                "sensitive": cell["category__sensitive"],
            },
        )
        matrix_cells.append({"processor": processor_id, "category": code, "operations": cell["operations"]})
    return {
        "rows": list(rows.values()),
        "columns": sorted(columns.values(), key=lambda column: column["code"]),
        "cells": matrix_cells,
    }


# --- Added for the exporters: the disclosure table, service by service -------------------------------


def operation_disclosure_list(queryset: QuerySet[Operation]) -> QuerySet[Operation]:
    """Operations service by service, in the queryset's own order within a service, with each row's data.

    Services come in the order they entered the register (for an imported table, its published order),
    and rows within a service in the order they were added unless the queryset asks for another order
    (the explorer's sortable columns). Everything a disclosure row shows,
    group members included, is prefetched, so iterating with ``.iterator(chunk_size=…)`` costs the same
    few queries per chunk however many rows there are.
    """
    query = queryset.query
    within = list(query.order_by)
    return (
        operation_list(queryset)
        .prefetch_related(Prefetch("processor__members", queryset=Processor.objects.order_by("name_key")))
        .order_by("service__controller__code", "service_id", *within, "pk")
    )


def controller_extra_sensitive_category_ids() -> dict[int, frozenset[int]]:
    """Per controller, the categories it treats as sensitive beyond the standard, in one query."""
    links = Controller.extra_sensitive_categories.through.objects.values_list(
        "controller_id", "datacategory_id"
    )
    extra: dict[int, set[int]] = {}
    for controller_id, category_id in links:
        extra.setdefault(controller_id, set()).add(category_id)
    return {controller_id: frozenset(ids) for controller_id, ids in extra.items()}


# --- Added for the browser UI: disclosure tables, the dashboard, processor and category pages -----


def disclosure_operations(controller: Controller) -> QuerySet[Operation]:
    """The live register's rows of a controller's table; published versions are frozen snapshots instead."""
    return Operation.objects.filter(service__controller=controller, status=OperationStatus.ACTIVE)


def disclosure_dates(controller: Controller) -> dict[str, Any]:
    """When the controller's table last changed (services or operations) and since when it is in effect."""
    # Aggregate names must not shadow the "operations" relation the later aggregates follow.
    dates = controller.services.aggregate(
        service_change=Max("updated_at"),
        operation_change=Max("operations__updated_at"),
        in_effect=Max("operations__effective_from", filter=Q(operations__status=OperationStatus.ACTIVE)),
    )
    changes = [date for date in (dates["service_change"], dates["operation_change"]) if date is not None]
    return {"last_updated": max(changes) if changes else None, "effective_from": dates["in_effect"]}


def register_summary() -> dict[str, int]:
    """The dashboard's counts, in four queries whatever the size of the register."""
    sensitive_items = DataItem.objects.filter(operation=OuterRef("pk"), category__sensitive=True)
    counts = Operation.objects.aggregate(
        operations=Count("pk"),
        sensitive=Count("pk", filter=Q(Exists(sensitive_items))),
        cross_border=Count("pk", filter=Q(cross_border=True)),
    )
    items = DataItem.objects.aggregate(
        categories_used=Count("category", distinct=True),
        unmapped=Count("pk", filter=Q(category__isnull=True)),
    )
    return {
        **counts,
        **items,
        "controllers": Controller.objects.count(),
        "processors": Processor.objects.count(),
    }


def categories_most_received(limit: int | None = 12) -> list[dict]:
    """The categories the most operations send, with their operation counts."""
    return list(
        DataItem.objects.filter(category__isnull=False)
        .values("category__code", "category__name_zh", "category__name_en", "category__sensitive")
        .annotate(operations=Count("operation", distinct=True))
        .order_by("-operations", "category__code")[:limit]
    )


def processor_profile(pk: int) -> Processor:
    """A processor with its group, members and aliases loaded (DoesNotExist when there is none)."""
    return (
        Processor.objects.select_related("member_of")
        .prefetch_related(
            Prefetch("members", queryset=Processor.objects.order_by("name_key")),
            Prefetch("aliases", queryset=ProcessorAlias.objects.order_by("text")),
        )
        .get(pk=pk)
    )


def processor_operations(processor: Processor) -> QuerySet[Operation]:
    """The operations that send a processor data: its own and (for a member) its group's."""
    owners = [processor.pk] + ([processor.member_of_id] if processor.member_of_id else [])
    return operation_list(Operation.objects.filter(processor__in=owners)).order_by("service_id", "pk")


@dataclass
class PurposeReceipt:
    """What a processor receives for one purpose, and through which services."""

    purpose: Purpose | None
    purpose_text: str
    categories: dict[int, DataCategory] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    services: dict[int, Service] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)


def receipts_by_purpose(operations: Iterable[Operation]) -> list[PurposeReceipt]:
    """Operations (from ``operation_list``) regrouped by purpose; unmapped ones keep the published text."""
    receipts: dict[Any, PurposeReceipt] = {}
    for operation in operations:
        purposes = list(operation.purposes.all())
        keys = [(purpose.pk, purpose, "") for purpose in purposes] or [
            (("text", operation.purpose_text), None, operation.purpose_text)
        ]
        for key, purpose, text in keys:
            receipt = receipts.setdefault(key, PurposeReceipt(purpose, text))
            receipt.operations.append(operation)
            receipt.services.setdefault(operation.service_id, operation.service)
            for item in operation.data_items.all():
                if item.category_id is None:
                    if item.text not in receipt.unmapped:
                        receipt.unmapped.append(item.text)
                else:
                    receipt.categories.setdefault(item.category_id, item.category)
    ordered = sorted(
        receipts.values(),
        key=lambda receipt: (
            receipt.purpose is None,
            receipt.purpose.position if receipt.purpose else 0,
            receipt.purpose.code if receipt.purpose else receipt.purpose_text,
        ),
    )
    for receipt in ordered:
        receipt.categories = dict(sorted(receipt.categories.items(), key=lambda pair: pair[1].code))
    return ordered


def category_lineage(category: DataCategory) -> list[DataCategory]:
    """The category's ancestors, root first (dotted codes are paths, so one query)."""
    parts = category.code.split(".")
    prefixes = [".".join(parts[:depth]) for depth in range(1, len(parts))]
    return list(DataCategory.objects.filter(code__in=prefixes).order_by("code")) if prefixes else []


@dataclass
class CategoryRecipient:
    """A processor receiving a category (or a descendant), with how and why."""

    processor: Processor
    categories: dict[int, DataCategory] = field(default_factory=dict)
    services: dict[int, Service] = field(default_factory=dict)
    purposes: dict[Any, Purpose | str] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)


def category_recipients(category: DataCategory) -> list[CategoryRecipient]:
    """Every processor receiving the category or a descendant, with the services and purposes involved."""
    subtree = {category.code}
    operations = operations_with_categories(Operation.objects.all(), [category])
    operations = operation_list(operations).prefetch_related(
        Prefetch("processor__members", queryset=Processor.objects.order_by("name_key"))
    )
    recipients: dict[int, CategoryRecipient] = {}
    for operation in operations.order_by("processor__name_key", "service_id", "pk"):
        recipient = recipients.setdefault(operation.processor_id, CategoryRecipient(operation.processor))
        recipient.operations.append(operation)
        recipient.services.setdefault(operation.service_id, operation.service)
        for purpose in operation.purposes.all():
            recipient.purposes.setdefault(purpose.pk, purpose)
        if not operation.purposes.all() and operation.purpose_text:
            recipient.purposes.setdefault(operation.purpose_text, operation.purpose_text)
        for item in operation.data_items.all():
            code = item.category.code if item.category_id else ""
            if code in subtree or code.startswith(category.code + "."):
                recipient.categories.setdefault(item.category_id, item.category)
    return list(recipients.values())


def matrix_grid(operations: QuerySet[Operation]) -> dict:
    """``category_matrix`` laid out for a table: columns grouped under their top-level category."""
    matrix = category_matrix(operations)
    roots = {
        root.code: root
        for root in DataCategory.objects.filter(
            code__in={column["code"].split(".")[0] for column in matrix["columns"]}
        )
    }
    groups: dict[str, dict] = {}
    for column in matrix["columns"]:
        root = column["code"].split(".")[0]
        groups.setdefault(root, {"category": roots.get(root), "columns": []})["columns"].append(column)
    columns = [column for group in groups.values() for column in group["columns"]]
    counts = {(cell["processor"], cell["category"]): cell["operations"] for cell in matrix["cells"]}
    rows = [
        {**row, "cells": [(column, counts.get((row["id"], column["code"]), 0)) for column in columns]}
        for row in matrix["rows"]
    ]
    return {
        "groups": list(groups.values()),
        "columns": columns,
        "rows": rows,
        "max": max(counts.values(), default=0),
    }


# --- Added for published versions ---------------------------------------------------------------------


def version_list(controller: Controller) -> QuerySet[PublishedVersion]:
    """A controller's published versions, the one in effect latest first."""
    return controller.versions.select_related("published_by").order_by(
        "-effective_on", "-published_at", "-id"
    )


def version_as_of(controller: Controller, day: datetime.date) -> PublishedVersion | None:
    """The version in effect on a day: the latest whose effective date is on or before it."""
    return version_list(controller).filter(effective_on__lte=day).first()


def version_current(controller: Controller, on: datetime.date | None = None) -> PublishedVersion | None:
    """The version in effect today (or on ``on``); None before the first one takes effect."""
    return version_as_of(controller, on or timezone.localdate())


# --- Added for the dashboard's recent imports ---------------------------------------------------------


def import_records_recent(limit: int = 5) -> QuerySet[ImportRecord]:
    """The latest imports and previews, with their user and controller."""
    return ImportRecord.objects.select_related("user", "controller").order_by("-started_at", "-id")[:limit]
