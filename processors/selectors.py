"""Reads: the querysets behind lists, filters and the "who receives X?" questions, grouped by entity.

Controllers · processors (and the group rule) · categories (and the subtree rule) · operations · who
receives what (one ``Receipt`` shape) · the processor × category matrix · the dashboard · published
versions · imports · access. Category names are resolved by ``processors.taxonomy``, never here.

Why one module: the access section (who may see which controller) narrows the querysets of every other
section; kept together, every read and its narrowing are reviewed in one place.
"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Left, StrIndex
from django.utils import timezone

from processors.models import (
    CategoryAlias,
    Controller,
    ControllerMembership,
    ControllerRole,
    DataCategory,
    DataItem,
    ImportRecord,
    Operation,
    OperationStatus,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    PublishedVersion,
    Purpose,
    PurposeAlias,
    Service,
)
from processors.text import normalize_key

# --- Controllers ----------------------------------------------------------------------------------


def controller_extra_sensitive_category_ids() -> dict[int, frozenset[int]]:
    """Per controller, the categories it treats as sensitive beyond the standard, in one query."""
    links = Controller.extra_sensitive_categories.through.objects.values_list(
        "controller_id", "datacategory_id"
    )
    extra: dict[int, set[int]] = {}
    for controller_id, category_id in links:
        extra.setdefault(controller_id, set()).add(category_id)
    return {controller_id: frozenset(ids) for controller_id, ids in extra.items()}


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


# --- Processors, and the group rule ---------------------------------------------------------------
# A group (集团, 仲裁委…) named as a recipient stands for its members: what an operation sends to a group,
# each member receives. So a processor receives through its own operations and through its group's, and
# an operation reaches its processor and, for a group, every member. These two functions are that rule.


def operations_reaching_q(processors: Iterable[Processor], prefix: str = "") -> Q:
    """Q on operations that send data to any of the processors: their own and their groups'."""
    owners = {pk for processor in processors for pk in (processor.pk, processor.member_of_id) if pk}
    return Q(**{f"{prefix}processor__in": owners})


def processors_reached_q(operations: QuerySet[Operation]) -> Q:
    """Q on processors the operations send data to: their recipients and, for a group, its members."""
    recipients = operations.values("processor")
    return Q(pk__in=recipients) | Q(member_of__in=recipients)


def processor_find(name: str) -> Processor | None:
    """The processor known by this name (legal name or alias, any width/case/spacing)."""
    key = normalize_key(name)
    return Processor.objects.filter(Q(name_key=key) | Q(aliases__key=key)).first()


def processor_profile(pk: int) -> Processor:
    """A processor with its group, members and aliases loaded (DoesNotExist when there is none)."""
    return (
        Processor.objects.select_related("member_of", "owner")
        .prefetch_related(
            Prefetch("members", queryset=Processor.objects.order_by("name_key")),
            Prefetch("aliases", queryset=ProcessorAlias.objects.order_by("text")),
        )
        .get(pk=pk)
    )


def processor_operations(processor: Processor) -> QuerySet[Operation]:
    """The operations that send a processor data: its own and (for a member) its group's."""
    return operation_list(Operation.objects.filter(operations_reaching_q([processor]))).order_by(
        "service_id", "pk"
    )


def processors_receiving(
    queryset: QuerySet[Processor],
    categories: Iterable[DataCategory],
    operations: QuerySet[Operation] | None = None,
) -> QuerySet[Processor]:
    """Processors that receive any of the categories (descendants included), directly or as a group member.

    Only through the given operations (by default all: ``operations_visible_to`` narrows them to a user).
    """
    categories = list(categories)
    if not categories:
        return queryset
    operations = Operation.objects.all() if operations is None else operations
    return queryset.filter(processors_reached_q(operations_with_categories(operations, categories)))


# --- Categories, and the subtree rule -------------------------------------------------------------
# Dotted codes are paths: a category (a group such as ``identity`` too) stands for itself and every
# category below it. ``category_within`` is the rule in Python, ``category_subtree_q`` in SQL.


def category_within(code: str, ancestor: str) -> bool:
    """Whether a category code is the ancestor's own or one of its descendants'."""
    return code == ancestor or code.startswith(ancestor + ".")


def category_subtree_q(categories: Iterable[DataCategory], prefix: str = "") -> Q:
    """Q matching the given categories and all their descendants."""
    condition = Q(pk__in=[])
    for category in categories:
        condition |= Q(**{f"{prefix}code": category.code}) | Q(
            **{f"{prefix}code__startswith": category.code + "."}
        )
    return condition


def category_tree() -> QuerySet[DataCategory]:
    """All categories in tree order (codes sort parents before their children)."""
    return DataCategory.objects.order_by("code")


def category_lineage(category: DataCategory) -> list[DataCategory]:
    """The category's ancestors, root first (dotted codes are paths, so one query)."""
    parts = category.code.split(".")
    prefixes = [".".join(parts[:depth]) for depth in range(1, len(parts))]
    return list(DataCategory.objects.filter(code__in=prefixes).order_by("code")) if prefixes else []


def categories_most_received(
    limit: int | None = 12, operations: QuerySet[Operation] | None = None
) -> list[dict]:
    """The categories the most operations (of all, or of the given ones) send, with their counts."""
    items = DataItem.objects.all()
    if operations is not None and operations.query.has_filters():
        items = items.filter(operation__in=operations.order_by().values("pk"))
    return list(
        items.filter(category__isnull=False)
        .values("category__code", "category__name_zh", "category__name_en", "category__sensitive")
        .annotate(operations=Count("operation_id", distinct=True))
        .order_by("-operations", "category__code")[:limit]
    )


# --- Operations -----------------------------------------------------------------------------------


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


def disclosure_operations(controller: Controller) -> QuerySet[Operation]:
    """The live register's rows of a controller's table; published versions are frozen snapshots instead."""
    return Operation.objects.filter(service__controller=controller, status=OperationStatus.ACTIVE)


def operations_with_categories(
    queryset: QuerySet[Operation], categories: Iterable[DataCategory], *, match_all: bool = False
) -> QuerySet[Operation]:
    """Operations carrying any (or, with match_all, every) of the categories, descendants included."""
    categories = list(categories)
    if not categories:
        return queryset
    groups = [[category] for category in categories] if match_all else [categories]
    for group in groups:
        # Driven from the items' (category, operation) index: the operations holding these categories,
        # as a set, rather than a probe of every operation's items (which grows with the register).
        subtree = DataCategory.objects.filter(category_subtree_q(group)).values("pk")
        items = DataItem.objects.filter(category__in=subtree).values("operation_id")
        queryset = queryset.filter(pk__in=items)
    return queryset


def operations_with_sensitive_data(
    queryset: QuerySet[Operation], sensitive: bool = True
) -> QuerySet[Operation]:
    """Operations sending (or, with False, not sending) a sensitive category."""
    items = DataItem.objects.filter(operation=OuterRef("pk"), category__sensitive=True)
    return queryset.filter(Exists(items)) if sensitive else queryset.exclude(Exists(items))


def operations_with_unmapped_items(
    queryset: QuerySet[Operation], unmapped: bool = True
) -> QuerySet[Operation]:
    """Operations with (or, with False, without) a published item no category matched."""
    items = DataItem.objects.filter(operation=OuterRef("pk"), category__isnull=True)
    return queryset.filter(Exists(items)) if unmapped else queryset.exclude(Exists(items))


def operations_matching_text_q(text: str) -> Q:
    """Operations whose service, recipient (or an alias), data item, purpose or scenario contains ``text``.

    One id subquery per table, not an OR across joined tables: PostgreSQL then answers each part from
    that table's trigram index (migration 0011), and no row is repeated, so no DISTINCT is needed.
    """
    services = Service.objects.filter(Q(name__icontains=text) | Q(name_en__icontains=text)).values("pk")
    processors = Processor.objects.filter(Q(name_zh__icontains=text) | Q(name_en__icontains=text))
    processors = processors.values("pk")
    aliases = ProcessorAlias.objects.filter(text__icontains=text).values("processor")
    items = DataItem.objects.filter(text__icontains=text).values("operation")
    return (
        Q(service__in=services)
        | Q(processor__in=processors)
        | Q(processor__in=aliases)
        | Q(pk__in=items)
        | Q(purpose_text__icontains=text)
        | Q(usage_scenario__icontains=text)
    )


# --- Who receives what ----------------------------------------------------------------------------
# Every "who receives X?" answer is a list of ``Receipt``: the flows (an operation with its data items
# and purposes) reaching a recipient, gathered under one heading — a recipient, a category or a purpose.
# ``flows_of_items`` loads flows in one query (two with purposes); ``flows_of_operations`` reads them
# from operations already loaded by ``operation_list``. The API keeps its own dict shapes through two
# thin adaptors at the end.


@dataclass
class Flow:
    """One operation with the data items of interest it sends and its purposes."""

    operation: Operation
    items: list[DataItem] = field(default_factory=list)
    purposes: list[Purpose] = field(default_factory=list)


@dataclass
class Receipt:
    """What reaches a recipient under one heading (a processor, a category or a purpose), and how."""

    processor: Processor | None = None
    category: DataCategory | None = None
    purpose: Purpose | None = None
    purpose_text: str = ""
    operations: dict[int, Operation] = field(default_factory=dict)
    categories: dict[int, DataCategory] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    services: dict[int, Service] = field(default_factory=dict)
    # Purposes by id; an operation without any keeps its published purpose text (key and value).
    purposes: dict[Any, Purpose | str] = field(default_factory=dict)

    def add(self, flow: Flow, items: Iterable[DataItem] | None = None) -> None:
        """Count a flow under this heading, with its items (or only the given ones)."""
        operation = flow.operation
        self.operations.setdefault(operation.pk, operation)
        self.services.setdefault(operation.service_id, operation.service)
        for purpose in flow.purposes:
            self.purposes.setdefault(purpose.pk, purpose)
        if not flow.purposes and operation.purpose_text:
            self.purposes.setdefault(operation.purpose_text, operation.purpose_text)
        for item in flow.items if items is None else items:
            if item.category_id is None:
                if item.text not in self.unmapped:
                    self.unmapped.append(item.text)
            else:
                self.categories.setdefault(item.category_id, item.category)


def flows_of_items(items: QuerySet[DataItem], *, purposes: bool = True) -> list[Flow]:
    """The items' operations as flows, in the items' order, with service, processor and category joined."""
    items = items.select_related("category", "operation__service__controller", "operation__processor")
    flows: dict[int, Flow] = {}
    for item in items:
        flows.setdefault(item.operation_id, Flow(item.operation)).items.append(item)
    if purposes and flows:
        links = (
            Operation.purposes.through.objects.filter(operation__in=list(flows))
            .select_related("purpose")
            .order_by("purpose__position", "purpose__code")
        )
        for link in links:
            flows[link.operation_id].purposes.append(link.purpose)
    return list(flows.values())


def flows_of_operations(operations: Iterable[Operation]) -> list[Flow]:
    """Flows of operations loaded by ``operation_list`` (no query)."""
    return [
        Flow(operation, list(operation.data_items.all()), list(operation.purposes.all()))
        for operation in operations
    ]


def receipts_by_recipient(flows: Iterable[Flow]) -> list[Receipt]:
    """Flows gathered per processor they name (a group is one recipient), in flow order."""
    receipts: dict[int, Receipt] = {}
    for flow in flows:
        operation = flow.operation
        receipts.setdefault(operation.processor_id, Receipt(processor=operation.processor)).add(flow)
    return list(receipts.values())


def receipts_by_category(flows: Iterable[Flow]) -> list[Receipt]:
    """Flows gathered per category they send (unmapped items left out), in category code order."""
    receipts: dict[int, Receipt] = {}
    for flow in flows:
        for item in flow.items:
            if item.category_id is not None:
                receipts.setdefault(item.category_id, Receipt(category=item.category)).add(flow, [item])
    return sorted(receipts.values(), key=lambda receipt: receipt.category.code)


def receipts_by_purpose(operations: Iterable[Operation]) -> list[Receipt]:
    """Operations (from ``operation_list``) gathered per purpose; unmapped ones keep the published text."""
    receipts: dict[Any, Receipt] = {}
    for flow in flows_of_operations(operations):
        text = flow.operation.purpose_text
        headings = [(purpose.pk, purpose, "") for purpose in flow.purposes] or [(("text", text), None, text)]
        for key, purpose, purpose_text in headings:
            receipts.setdefault(key, Receipt(purpose=purpose, purpose_text=purpose_text)).add(flow)
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


def category_recipients(
    category: DataCategory, operations: QuerySet[Operation] | None = None
) -> list[Receipt]:
    """Every processor receiving the category or a descendant (through all or the given operations)."""
    items = DataItem.objects.all()
    if operations is not None:
        items = items.filter(operation__in=operations.order_by().values("pk"))
    items = (
        items.filter(category_subtree_q([category], prefix="category__"))
        .prefetch_related(
            Prefetch("operation__processor__members", queryset=Processor.objects.order_by("name_key"))
        )
        .order_by("operation__processor__name_key", "operation__service_id", "operation_id", "position", "id")
    )
    return receipts_by_recipient(flows_of_items(items))


def category_subtree(category: DataCategory) -> list[DataCategory]:
    """The category and every category below it, in tree order (one query)."""
    return list(DataCategory.objects.filter(category_subtree_q([category])).order_by("position", "code"))


def _items_in(category: DataCategory, subtree_ids: list[int] | None) -> Q:
    """Q on data items of the category's subtree: by the ids when known (the planner then sees how
    many items each holds, and a category every row sends is hashed, not looped over), else by code."""
    if subtree_ids is not None:
        return Q(category_id__in=subtree_ids)
    return category_subtree_q([category], prefix="category__")


def category_recipient_ids(
    category: DataCategory, operations: QuerySet[Operation], subtree_ids: list[int] | None = None
) -> dict[str, Any]:
    """Who receives the category or a descendant through the given operations: the processors' ids in
    reading order (name, id) and the number of operations, from the items' (category, operation) index."""
    receiving = category_receiving_operations(category, operations, subtree_ids).order_by()
    recipients = Processor.objects.filter(pk__in=receiving.values("processor_id")).order_by("name_key", "pk")
    return {
        "recipients": list(recipients.values_list("pk", flat=True)),
        "operations": receiving.count(),
    }


def processors_in_order(ids: Iterable[int]) -> list[Processor]:
    """The processors of these ids (a page of them) in the ids' order, with their members."""
    ids = list(ids)
    found = Processor.objects.prefetch_related(
        Prefetch("members", queryset=Processor.objects.order_by("name_key"))
    ).in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


def category_recipient_page(
    category: DataCategory,
    processors: Iterable[Processor],
    operations: QuerySet[Operation] | None = None,
    subtree_ids: list[int] | None = None,
) -> list[Receipt]:
    """``category_recipients`` for one page of recipients (of all, or of the given operations),
    aggregated in the database.

    A category every row sends (姓名) reaches thousands of operations of a page's 50 recipients; loading
    them as models made the page grow with the register. Here each column (categories, services,
    purposes) is one ``DISTINCT`` values query over those operations, so Python sees only what is shown.
    The page's operations are found from its recipients (the operations' processor index), each probed
    for an item of the category (``EXISTS``): never the list of every operation sending it.
    """
    processors = list(processors)
    receipts = {processor.pk: Receipt(processor=processor) for processor in processors}
    if not receipts:
        return []
    scope = Operation.objects.all() if operations is None else operations
    holding = DataItem.objects.filter(_items_in(category, subtree_ids), operation=OuterRef("pk"))
    page_operations = scope.filter(Exists(holding), processor__in=list(receipts)).order_by()
    # The items and purposes are joined to the page's processors directly: an ``IN`` of the page's
    # operations as a subquery made PostgreSQL hash every item of the category (姓名: all of them).
    on_page = {"operation__processor__in": list(receipts)}
    if operations is not None and operations.query.where:
        on_page["operation__in"] = operations.order_by().values("pk")
    category_pairs = list(
        DataItem.objects.filter(_items_in(category, subtree_ids), **on_page)
        .values_list("operation__processor_id", "category_id")
        .order_by()  # the model's ordering would join the DISTINCT: one row per item, not per pair
        .distinct()
    )
    categories = DataCategory.objects.in_bulk({category_id for _, category_id in category_pairs})
    for processor_id, category_id in sorted(category_pairs, key=lambda pair: categories[pair[1]].code):
        receipts[processor_id].categories.setdefault(category_id, categories[category_id])
    service_pairs = list(page_operations.values_list("processor_id", "service_id").distinct())
    services = Service.objects.select_related("controller").in_bulk({pair[1] for pair in service_pairs})
    for processor_id, service_id in sorted(service_pairs):
        receipts[processor_id].services.setdefault(service_id, services[service_id])
    link_holding = DataItem.objects.filter(
        _items_in(category, subtree_ids), operation=OuterRef("operation_id")
    )
    links = (
        Operation.purposes.through.objects.filter(Exists(link_holding), **on_page)
        .values_list("operation__processor_id", "purpose_id")
        .order_by()
        .distinct()
    )
    purpose_pairs = list(links)
    purposes = Purpose.objects.in_bulk({pair[1] for pair in purpose_pairs})
    for processor_id, purpose_id in sorted(
        purpose_pairs, key=lambda pair: (purposes[pair[1]].position, purposes[pair[1]].code)
    ):
        receipts[processor_id].purposes.setdefault(purpose_id, purposes[purpose_id])
    # An operation without mapped purposes keeps its published purpose text.
    texts = (
        page_operations.filter(purposes__isnull=True)
        .exclude(purpose_text="")
        .values_list("processor_id", "purpose_text")
        .distinct()
    )
    for processor_id, text in sorted(texts):
        receipts[processor_id].purposes.setdefault(text, text)
    return list(receipts.values())


def category_receiving_operations(
    category: DataCategory,
    operations: QuerySet[Operation] | None = None,
    subtree_ids: list[int] | None = None,
) -> QuerySet[Operation]:
    """The operations (of all, or of the given ones) sending the category or a descendant
    (``subtree_ids``: the ids of ``category_subtree``, when the caller has them)."""
    items = DataItem.objects.filter(_items_in(category, subtree_ids))
    queryset = Operation.objects.all() if operations is None else operations
    return queryset.filter(pk__in=items.values("operation_id"))


def processor_received_categories(processor: Processor, operations: QuerySet[Operation]) -> dict:
    """The API's shape of ``receipts_by_category`` for a processor (its own and its group's flows)."""
    operations = operations.filter(operations_reaching_q([processor])).order_by().values("pk")
    flows = flows_of_items(
        DataItem.objects.filter(operation__in=operations).order_by("operation_id", "position")
    )
    return {
        "processor": processor,
        "categories": [
            {
                "category": receipt.category,
                "via_group": all(
                    operation.processor_id != processor.pk for operation in receipt.operations.values()
                ),
                "operations": list(receipt.operations),
                "services": list(receipt.services.values()),
                "purposes": [
                    purpose for purpose in receipt.purposes.values() if isinstance(purpose, Purpose)
                ],
            }
            for receipt in receipts_by_category(flows)
        ],
        "unmapped_items": [
            {"text": item.text, "operation": flow.operation.pk}
            for flow in flows
            for item in flow.items
            if item.category_id is None
        ],
    }


def category_receipts(
    processors: Iterable[Processor],
    categories: Iterable[DataCategory],
    operations: QuerySet[Operation] | None = None,
) -> dict[int, list[dict]]:
    """The API's ``via``: per processor, the flows (its own, then its group's) sending the categories."""
    processors = list(processors)
    categories = list(categories)
    if not processors or not categories:
        return {processor.pk: [] for processor in processors}
    items = DataItem.objects.filter(
        category_subtree_q(categories, prefix="category__"), operations_reaching_q(processors, "operation__")
    ).order_by("operation_id", "category__code")
    if operations is not None:
        items = items.filter(operation__in=operations.order_by().values("pk"))
    by_owner: dict[int, list[dict]] = {}
    for flow in flows_of_items(items, purposes=False):
        operation = flow.operation
        by_owner.setdefault(operation.processor_id, []).append(
            {
                "operation": operation.pk,
                "processor": operation.processor_id,
                "service": {"id": operation.service_id, "name": operation.service.name},
                "controller": operation.service.controller.code,
                "categories": list(dict.fromkeys(item.category.code for item in flow.items)),
            }
        )
    return {
        processor.pk: [
            *by_owner.get(processor.pk, ()),
            *(by_owner.get(processor.member_of_id, ()) if processor.member_of_id else ()),
        ]
        for processor in processors
    }


# --- The processor × category matrix --------------------------------------------------------------
# Bounded at any register size: a page shows one page of recipients (rows) and either the category
# groups (the top level) or one group's categories (its drill-down) as columns.


@dataclass
class CategoryMatrix:
    """One page of recipients × categories, with the number of operations in each cell.

    Columns are either the category groups (every one of them, in tree order: ``by_group``) or the
    categories that occur on the page's rows, of one ``group`` when it is given.
    """

    group: DataCategory | None
    by_group: bool
    rows: list[dict]
    columns: list[dict]
    cells: list[dict]

    def grid(self) -> dict:
        """The page laid out for a table: each row with its cells in column order."""
        counts = {(cell["processor"], cell["category"]): cell["operations"] for cell in self.cells}
        rows = [
            {
                **row,
                "cells": [(column, counts.get((row["id"], column["code"]), 0)) for column in self.columns],
            }
            for row in self.rows
        ]
        return {
            "group": self.group,
            "by_group": self.by_group,
            "columns": self.columns,
            "rows": rows,
            "max": max(counts.values(), default=0),
        }


def category_groups() -> QuerySet[DataCategory]:
    """The top-level categories (the matrix's groups), in tree order."""
    return DataCategory.objects.filter(parent__isnull=True).order_by("position", "code")


def matrix_recipients(
    operations: QuerySet[Operation], group: DataCategory | None = None
) -> QuerySet[Processor]:
    """The matrix's rows, by name: recipients of the operations (with an item of ``group`` when given)."""
    if group is None:
        senders = operations.order_by().values("processor_id")
    else:
        senders = DataItem.objects.filter(
            category_subtree_q([group], prefix="category__"),
            operation__in=operations.order_by().values("pk"),
        ).values("operation__processor_id")
    return Processor.objects.filter(pk__in=senders).order_by("name_key", "pk")


def category_group_code() -> Case:
    """A data item's category group (an expression over ``category__code``): its code up to the first
    dot, the code of its top-level category."""
    code = F("category__code")
    return Case(
        When(category__code__contains=".", then=Left(code, StrIndex(code, Value(".")) - 1)),
        default=code,
        output_field=CharField(),
    )


def category_matrix(
    operations: QuerySet[Operation],
    recipients: Iterable[Processor],
    *,
    group: DataCategory | None = None,
    by_group: bool = False,
) -> CategoryMatrix:
    """The matrix rows of these recipients (one page of ``matrix_recipients``), in two aggregate queries
    (and one for the groups with ``by_group``). Columns: the category groups (``by_group``), else the
    categories that occur on these rows (of ``group`` only, when given)."""
    recipients = list(recipients)
    ids = [recipient.pk for recipient in recipients]
    items = DataItem.objects.filter(
        operation__in=operations.order_by().values("pk"), operation__processor_id__in=ids
    )
    if by_group:
        cells = (
            items.filter(category__isnull=False)
            .annotate(group_code=category_group_code())
            .values("operation__processor_id", "group_code")
            .annotate(operations=Count("operation_id", distinct=True))
            .order_by()
        )
        found = [(cell["operation__processor_id"], cell["group_code"], cell["operations"]) for cell in cells]
        columns = [_column(category) for category in category_groups()]
    else:
        within = category_subtree_q([group], prefix="category__") if group else Q(category__isnull=False)
        cells = (
            items.filter(within)
            .values(
                "operation__processor_id",
                "category__code",
                "category__name_zh",
                "category__name_en",
                "category__sensitive",
            )
            .annotate(operations=Count("operation_id", distinct=True))
            .order_by()
        )
        occurring: dict[str, dict] = {}
        found = []
        for cell in cells:
            code = cell["category__code"]
            occurring.setdefault(
                code,
                {
                    "code": code,
                    "name_zh": cell["category__name_zh"],
                    "name_en": cell["category__name_en"],
                    "sensitive": cell["category__sensitive"],
                },
            )
            found.append((cell["operation__processor_id"], code, cell["operations"]))
        columns = sorted(occurring.values(), key=lambda column: column["code"])
    totals = dict(
        operations.filter(processor_id__in=ids)
        .order_by()
        .values("processor_id")
        .annotate(total=Count("pk"))
        .values_list("processor_id", "total")
    )
    rows = [
        {
            "id": recipient.pk,
            "name_zh": recipient.name_zh,
            "name_en": recipient.name_en,
            "operations": totals.get(recipient.pk, 0),
        }
        for recipient in recipients
    ]
    return CategoryMatrix(
        group=group,
        by_group=by_group,
        rows=rows,
        columns=columns,
        cells=[
            {"processor": processor_id, "category": code, "operations": count}
            for processor_id, code, count in sorted(found, key=lambda cell: (ids.index(cell[0]), cell[1]))
        ],
    )


def _column(category: DataCategory) -> dict:
    return {
        "code": category.code,
        "name_zh": category.name_zh,
        "name_en": category.name_en,
        "sensitive": category.sensitive,
    }


# --- The dashboard --------------------------------------------------------------------------------


def register_summary(
    operations: QuerySet[Operation] | None = None, controllers: QuerySet[Controller] | None = None
) -> dict[str, int]:
    """The dashboard's counts (of the whole register or the given operations), in four queries: the
    operations (all, cross-border), their data items (operations sending a sensitive category,
    categories in use, unmapped items), controllers and processors. Each a single scan."""
    items = DataItem.objects.all()
    if operations is not None and operations.query.has_filters():
        items = items.filter(operation__in=operations.order_by().values("pk"))
    operations = Operation.objects.all() if operations is None else operations
    controllers = Controller.objects.all() if controllers is None else controllers
    counts = operations.order_by().aggregate(
        operations=Count("pk"),
        cross_border=Count("pk", filter=Q(cross_border=True)),
    )
    item_counts = items.aggregate(
        sensitive=Count("operation_id", distinct=True, filter=Q(category__sensitive=True)),
        categories_used=Count("category", distinct=True),
        unmapped=Count("pk", filter=Q(category__isnull=True)),
    )
    return {
        "operations": counts["operations"],
        "sensitive": item_counts["sensitive"],
        "cross_border": counts["cross_border"],
        "categories_used": item_counts["categories_used"],
        "unmapped": item_counts["unmapped"],
        "controllers": controllers.count(),
        "processors": Processor.objects.count(),
    }


# --- Reviews --------------------------------------------------------------------------------------
# A row is overdue when its next review is before today; a row never reviewed is counted apart (it has
# no due date until someone reviews it or sets one).

REVIEW_OVERDUE = "overdue"
REVIEW_NEVER = "never"


def review_state_q(state: str, *, today: datetime.date | None = None) -> Q:
    """Rows of a reviewed model (operation, processor) in a review state: overdue or never reviewed."""
    if state == REVIEW_NEVER:
        return Q(reviewed_at__isnull=True)
    return Q(review_due__lt=today or timezone.localdate())


def reviews_overdue(queryset: QuerySet, *, limit: int, today: datetime.date | None = None) -> dict[str, Any]:
    """The first overdue rows (oldest due first, owner loaded), how many are overdue, how many never
    reviewed: two counts in one query."""
    today = today or timezone.localdate()
    overdue = queryset.filter(review_state_q(REVIEW_OVERDUE, today=today))
    counts = queryset.aggregate(
        overdue=Count("pk", filter=review_state_q(REVIEW_OVERDUE, today=today)),
        never=Count("pk", filter=review_state_q(REVIEW_NEVER)),
    )
    rows = list(overdue.select_related("owner").order_by("review_due", "pk")[:limit])
    return {"rows": rows, **counts}


def processors_in_register(operations: QuerySet[Operation]) -> QuerySet[Processor]:
    """The processors the operations send data to, directly or as the group they belong to."""
    return Processor.objects.filter(processors_reached_q(operations))


# --- Published versions ---------------------------------------------------------------------------


# What a list of versions never reads: the snapshot, the stored pages and the stored diffs hold every
# row of a version's table (megabytes on a large register); read when a version's content is asked for.
VERSION_LARGE_FIELDS = ("snapshot", "rendered_pages", "stored_diffs")


def version_list(controller: Controller) -> QuerySet[PublishedVersion]:
    """A controller's published versions, the one in effect latest first, without their large fields."""
    return (
        controller.versions.select_related("published_by")
        .defer(*VERSION_LARGE_FIELDS)
        .order_by("-effective_on", "-published_at", "-id")
    )


def version_as_of(controller: Controller, day: datetime.date) -> PublishedVersion | None:
    """The version in effect on a day: the latest not withdrawn whose effective date is on or before it."""
    return version_list(controller).filter(effective_on__lte=day, withdrawn_at__isnull=True).first()


def version_current(controller: Controller, on: datetime.date | None = None) -> PublishedVersion | None:
    """The version in effect today (or on ``on``); None before the first one takes effect."""
    return version_as_of(controller, on or timezone.localdate())


# --- Imports --------------------------------------------------------------------------------------


def import_records_recent(
    limit: int = 5, records: QuerySet[ImportRecord] | None = None
) -> QuerySet[ImportRecord]:
    """The latest imports and previews (of all, or of the given ones), with their user and controller."""
    records = ImportRecord.objects.all() if records is None else records
    return records.select_related("user", "controller").order_by("-started_at", "-id")[:limit]


# --- Access ---------------------------------------------------------------------------------------
# Model permissions say what kind of thing a user may do; membership of a controller (with a role)
# says where. Every read and write path narrows its querysets here, so the API, the browser, the admin
# and the importer cannot disagree. Superusers see everything; an authenticated user without a
# membership sees no controller (fail closed); anonymous visitors see none either, except the
# controllers whose disclosure is public when REGISTER_PUBLIC_READ opens reading. Processors and the
# taxonomy are shared and never narrowed; what a processor receives is narrowed through its operations.

# The path from each scoped model to its controller.
_CONTROLLER_PATHS = {
    Controller: "pk",
    Service: "controller",
    Operation: "service__controller",
    DataItem: "operation__service__controller",
    ImportRecord: "controller",
    PublishedVersion: "controller",
    ControllerMembership: "controller",
}


# Shared by every controller: never narrowed, their history shown to every reader.
SHARED_MODELS = frozenset(
    {Processor, ProcessorAlias, DataCategory, CategoryAlias, Purpose, PurposeAlias, ProcessingAction}
)


def sees_every_controller(user: Any) -> bool:
    """Whether the user is above membership (an active superuser)."""
    return bool(user is not None and user.is_active and user.is_superuser)


def controllers_for(user: Any, *, role: int = ControllerRole.VIEWER) -> QuerySet[Controller]:
    """The controllers where the user holds at least the role (directly or through a group)."""
    if sees_every_controller(user):
        return Controller.objects.all()
    if user is None or not user.is_authenticated:
        if role <= ControllerRole.VIEWER and settings.REGISTER_PUBLIC_READ:
            return Controller.objects.filter(disclosure_public=True)
        return Controller.objects.none()
    if not user.is_active:
        return Controller.objects.none()
    memberships = ControllerMembership.objects.filter(Q(user=user) | Q(group__user=user), role__gte=role)
    return Controller.objects.filter(pk__in=memberships.values("controller_id"))


def controller_allows(user: Any, controller: Controller | None, *, role: int = ControllerRole.VIEWER) -> bool:
    """Whether the user holds at least the role in this controller."""
    if controller is None:
        return sees_every_controller(user)
    return sees_every_controller(user) or controllers_for(user, role=role).filter(pk=controller.pk).exists()


def owner_choices(user: Any) -> QuerySet:
    """Who may be named owner of a row by this user: active members of the controllers they edit (directly
    or through a group), and themselves; a superuser may name any active account."""
    from django.contrib.auth import get_user_model  # the user model is configuration, read when asked

    users = get_user_model().objects.filter(is_active=True)
    if not sees_every_controller(user):
        controllers = controllers_for(user, role=ControllerRole.EDITOR)
        users = users.filter(
            Q(controller_memberships__controller__in=controllers)
            | Q(groups__controller_memberships__controller__in=controllers)
            | Q(pk=getattr(user, "pk", None))
        ).distinct()
    return users.order_by("username")


def edits_any_controller(user: Any) -> bool:
    """Whether the user edits at least one register: the role shared records (a processor's review) need."""
    return sees_every_controller(user) or controllers_for(user, role=ControllerRole.EDITOR).exists()


def visible_to(user: Any, queryset: QuerySet, *, role: int = ControllerRole.VIEWER) -> QuerySet:
    """The queryset narrowed to the controllers where the user holds the role; shared models unchanged."""
    path = _CONTROLLER_PATHS.get(queryset.model)
    if path is None or sees_every_controller(user):
        return queryset
    return queryset.filter(**{f"{path}__in": controllers_for(user, role=role)})


def operations_visible_to(user: Any, *, role: int = ControllerRole.VIEWER) -> QuerySet[Operation]:
    """The operations of the controllers where the user holds the role."""
    return visible_to(user, Operation.objects.all(), role=role)


def services_visible_to(user: Any, *, role: int = ControllerRole.VIEWER) -> QuerySet[Service]:
    """The services of the controllers where the user holds the role."""
    return visible_to(user, Service.objects.all(), role=role)


def imports_visible_to(user: Any, *, role: int = ControllerRole.VIEWER) -> QuerySet[ImportRecord]:
    """The import records of those controllers (a record without a controller: superusers only)."""
    return visible_to(user, ImportRecord.objects.all(), role=role)


def versions_visible_to(user: Any, *, role: int = ControllerRole.VIEWER) -> QuerySet[PublishedVersion]:
    """The published versions of the controllers where the user holds the role."""
    return visible_to(user, PublishedVersion.objects.all(), role=role)


def history_visible_to(user: Any, rows: QuerySet) -> QuerySet:
    """Historical rows narrowed to objects of the controllers the user may see (deleted ones included).

    History outlives its objects, so the path to a controller follows the historical rows themselves.
    """
    model = getattr(rows.model, "instance_type", None)
    if model in SHARED_MODELS or sees_every_controller(user):
        return rows
    controllers = controllers_for(user).values("pk")
    services = Service.history.filter(controller_id__in=controllers).values("id")
    operations = Operation.history.filter(service_id__in=services).values("id")
    conditions = {
        Controller: Q(id__in=controllers),
        Service: Q(controller_id__in=controllers),
        Operation: Q(service_id__in=services),
        DataItem: Q(operation_id__in=operations),
    }
    # Any other history (a model added later, m2m links) is hidden until its path is known: fail closed.
    return rows.filter(conditions.get(model, Q(pk__in=[])))


class ControllerScopeRequired(Exception):
    """A register-wide answer asked by a user who may not see the whole register: name a controller."""


def controller_scope(user: Any, controller: Controller | None = None) -> Controller | None:
    """The controller a register-wide answer (findings, deletion notices) covers for the user.

    The given one if the user may see it; without one, None (everything) for a superuser, or the only
    controller the user may see. Otherwise ``ControllerScopeRequired``.
    """
    if sees_every_controller(user):
        return controller
    visible = controllers_for(user)
    if controller is not None:
        if not visible.filter(pk=controller.pk).exists():
            raise ControllerScopeRequired
        return controller
    only = list(visible[:2])
    if len(only) != 1:
        raise ControllerScopeRequired
    return only[0]
