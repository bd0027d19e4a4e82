"""Reads: the querysets behind lists, filters and the "who receives X?" questions."""

from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from processors.models import (
    DataCategory,
    DataItem,
    Operation,
    Processor,
    Purpose,
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


def operations_with_sensitive_data(queryset: QuerySet[Operation], sensitive: bool = True) -> QuerySet[Operation]:
    items = DataItem.objects.filter(operation=OuterRef("pk"), category__sensitive=True)
    return queryset.filter(Exists(items)) if sensitive else queryset.exclude(Exists(items))


def operations_with_unmapped_items(queryset: QuerySet[Operation], unmapped: bool = True) -> QuerySet[Operation]:
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
        Prefetch("data_items", queryset=DataItem.objects.select_related("category").order_by("position", "id")),
        Prefetch("purposes", queryset=Purpose.objects.order_by("position", "code")),
        "actions",
    )


def processor_find(name: str) -> Processor | None:
    """The processor known by this name (legal name or alias, any width/case/spacing)."""
    key = normalize_key(name)
    return Processor.objects.filter(Q(name_key=key) | Q(aliases__key=key)).first()
