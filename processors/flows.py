"""Chart data: the dashboard's pictures and the flow view, from operations a selector already narrowed.

Every figure is aggregated in the database and bounded however large the register is: a chart shows
the top entries and folds the rest into one "others" entry, so a register of 100,000 operations draws
as many bars and nodes as one of 100. Each shape is plain data (``json_script``-ready) and the same
data renders the table that stands beside every chart for screen readers and print.
"""

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.urls import reverse
from django.utils.translation import gettext as _
from django_countries import countries

from processors.models import Controller, DataCategory, DataItem, Operation, Processor, Service
from processors.selectors import category_group_code

# How many entries a chart shows before folding the rest into "others".
TOP_GROUPS = 16
TOP_COUNTRIES = 12
TOP_CONTROLLERS = 8
TOP_SERVICES = 15
TOP_RECIPIENTS = 15

OTHERS = 0  # the bucket key of "others" in a level of the flow


@dataclass
class Bar:
    """One bar of a chart: operations in all and those sending sensitive data, with where to read more."""

    key: str
    label: str
    url: str
    operations: int = 0
    sensitive: int = 0

    @property
    def not_sensitive(self) -> int:
        return self.operations - self.sensitive


@dataclass
class FlowNode:
    id: str
    label: str
    url: str
    stage: str
    stage_label: str


@dataclass
class FlowLink:
    source: str
    target: str
    operations: int
    sensitive: int


@dataclass
class FlowChart:
    """Controller → service → recipient → country, each level bounded, links counted in operations."""

    nodes: list[FlowNode] = field(default_factory=list)
    links: list[FlowLink] = field(default_factory=list)

    def as_data(self) -> dict[str, Any]:
        return {
            "nodes": [asdict(node) for node in self.nodes],
            "links": [asdict(link) for link in self.links],
        }

    def tables(self) -> list[dict[str, Any]]:
        """The links as one table per step (controller → service, service → recipient, recipient →
        country), each row with both ends' labels and addresses, the largest first."""
        nodes = {node.id: node for node in self.nodes}
        steps: dict[tuple[str, str], dict[str, Any]] = {}
        for link in sorted(self.links, key=lambda link: -link.operations):
            source, target = nodes[link.source], nodes[link.target]
            step = steps.setdefault(
                (source.stage, target.stage),
                {"source_label": source.stage_label, "target_label": target.stage_label, "rows": []},
            )
            step["rows"].append({"source": source, "target": target, "link": link})
        return list(steps.values())


def _explorer(base: list[tuple[str, str]] | None = None, **parameters: Any) -> str:
    """The explorer narrowed by ``base`` (a page's own filters) and the given parameters, which win."""
    pairs = [(name, value) for name, value in base or () if name not in parameters]
    pairs += [(name, value) for name, value in parameters.items() if value not in (None, "")]
    query = urlencode(pairs)
    return reverse("processors:explorer") + (f"?{query}" if query else "")


def _sensitive_items() -> QuerySet[DataItem]:
    return DataItem.objects.filter(operation=OuterRef("pk"), category__sensitive=True)


def _counted(queryset: QuerySet) -> QuerySet:
    """Operations and those sending a sensitive category, per the values() the queryset groups by."""
    return queryset.annotate(
        operations=Count("pk", distinct=True),
        sensitive=Count("pk", distinct=True, filter=Q(Exists(_sensitive_items()))),
    ).order_by()


def bars_data(bars: list[Bar]) -> dict[str, Any]:
    """A stacked bar chart's data: sensitive and other operations per bar, with each bar's address."""
    return {
        "labels": [bar.label for bar in bars],
        "urls": [bar.url for bar in bars],
        "series": [
            {
                "name": _("with sensitive data"),
                "kind": "sensitive",
                "values": [bar.sensitive for bar in bars],
            },
            {
                "name": _("without sensitive data"),
                "kind": "plain",
                "values": [bar.not_sensitive for bar in bars],
            },
        ],
    }


# --- Flows by category group and sensitivity ------------------------------------------------------


def flows_by_category_group(operations: QuerySet[Operation]) -> list[Bar]:
    """Per top-level category group: the operations sending any of its categories, and those sending a
    sensitive one of them. One grouped scan of the data items (a data item's group is its category
    code up to the first dot), whatever the number of groups; one bar per group shown."""
    groups = list(DataCategory.objects.filter(parent__isnull=True).order_by("position", "code")[:TOP_GROUPS])
    if not groups:
        return []
    items = DataItem.objects.filter(category__isnull=False)
    if operations.query.has_filters():
        items = items.filter(operation__in=operations.order_by().values("pk"))
    rows = (
        items.annotate(group_code=category_group_code())
        .values("group_code")
        .annotate(
            operations=Count("operation_id", distinct=True),
            sensitive=Count("operation_id", distinct=True, filter=Q(category__sensitive=True)),
        )
        .order_by()
    )
    counts = {row["group_code"]: row for row in rows}
    bars = [
        Bar(
            key=group.code,
            label=group.display_name(),
            url=_explorer(category=group.code),
            operations=counts.get(group.code, {}).get("operations", 0),
            sensitive=counts.get(group.code, {}).get("sensitive", 0),
        )
        for group in groups
    ]
    return [bar for bar in bars if bar.operations]


# --- Destinations by country ----------------------------------------------------------------------


def _country_label(code: str) -> str:
    return countries.name(code) or code


def cross_border_countries(operations: QuerySet[Operation], *, top: int = TOP_COUNTRIES) -> list[Bar]:
    """Cross-border operations per destination country (the recipient's own country when the row names
    no destination), most first; an operation to two countries counts for each; the rest as "others"."""
    rows = _counted(
        operations.filter(cross_border=True).values("destination_countries", "processor__country")
    )
    per_country: dict[str, Bar] = {}
    for row in rows:
        codes = [code for code in (row["destination_countries"] or "").split(",") if code]
        if not codes:
            codes = [row["processor__country"] or ""]
        for code in codes:
            bar = per_country.setdefault(
                code,
                Bar(
                    key=code,
                    label=_country_label(code) if code else _("not recorded"),
                    url=_explorer(cross_border="true", country=code),
                ),
            )
            bar.operations += row["operations"]
            bar.sensitive += row["sensitive"]
    ranked = sorted(per_country.values(), key=lambda bar: (-bar.operations, bar.label))
    if len(ranked) <= top:
        return ranked
    shown, rest = ranked[: top - 1], ranked[top - 1 :]
    others = Bar(key="others", label=_("other countries (%(count)d)") % {"count": len(rest)}, url="")
    others.url = _explorer(cross_border="true")
    for bar in rest:
        others.operations += bar.operations
        others.sensitive += bar.sensitive
    return [*shown, others]


# --- The flow: controller → service → recipient → country -----------------------------------------


def _top_ids(operations: QuerySet[Operation], field_name: str, top: int) -> list[int]:
    rows = operations.order_by().values(field_name).annotate(count=Count("pk")).order_by("-count", field_name)
    return [row[field_name] for row in rows[:top]]


def _bucket(field_name: str, ids: list[int]) -> Case:
    """The id itself when it is among the top ones, else the "others" bucket."""
    return Case(
        When(**{f"{field_name}__in": ids}, then=F(field_name)),
        default=Value(OTHERS),
        output_field=IntegerField(),
    )


def operation_flow(
    operations: QuerySet[Operation], filters: list[tuple[str, str]] | None = None
) -> FlowChart:
    """The operations as a four-level flow; each level keeps its top entries and one "others" node, so
    the chart stays readable at any register size. ``filters`` (the page's query) keep the links from
    "others" nodes to the explorer narrowed as the chart is."""
    filters = list(filters or ())
    operations = operations.order_by()
    controller_ids = _top_ids(operations, "service__controller_id", TOP_CONTROLLERS)
    service_ids = _top_ids(operations, "service_id", TOP_SERVICES)
    processor_ids = _top_ids(operations, "processor_id", TOP_RECIPIENTS)
    bucketed = operations.annotate(
        controller_bucket=_bucket("service__controller_id", controller_ids),
        service_bucket=_bucket("service_id", service_ids),
        processor_bucket=_bucket("processor_id", processor_ids),
    )
    nodes: dict[str, FlowNode] = {}
    links: dict[tuple[str, str], FlowLink] = {}
    controllers = Controller.objects.in_bulk(controller_ids)
    services = Service.objects.in_bulk(service_ids)
    processors = Processor.objects.in_bulk(processor_ids)
    stage_labels = {
        "controller": _("Controller"),
        "service": _("Service"),
        "recipient": _("Recipient"),
        "country": _("Country/region"),
    }

    def node(stage: str, key: Any) -> str:
        node_id = f"{stage}:{key}"
        if node_id in nodes:
            return node_id
        label, url = _node_label(stage, key, controllers, services, processors, filters)
        nodes[node_id] = FlowNode(node_id, label, url, stage, stage_labels[stage])
        return node_id

    def link(source: str, target: str, row: dict[str, Any]) -> None:
        existing = links.setdefault((source, target), FlowLink(source, target, 0, 0))
        existing.operations += row["operations"]
        existing.sensitive += row["sensitive"]

    for row in _counted(bucketed.values("controller_bucket", "service_bucket")).order_by("-operations"):
        link(node("controller", row["controller_bucket"]), node("service", row["service_bucket"]), row)
    for row in _counted(bucketed.values("service_bucket", "processor_bucket")).order_by("-operations"):
        link(node("service", row["service_bucket"]), node("recipient", row["processor_bucket"]), row)
    destinations = bucketed.values(
        "processor_bucket", "cross_border", "destination_countries", "processor__country"
    )
    per_country: dict[tuple[Any, str], dict[str, int]] = {}
    for row in _counted(destinations):
        codes = ["home"]
        if row["cross_border"]:
            codes = [code for code in (row["destination_countries"] or "").split(",") if code] or [
                row["processor__country"] or "unknown"
            ]
        for code in codes:
            counts = per_country.setdefault(
                (row["processor_bucket"], code), {"operations": 0, "sensitive": 0}
            )
            counts["operations"] += row["operations"]
            counts["sensitive"] += row["sensitive"]
    country_totals: dict[str, int] = {}
    for (_processor, code), counts in per_country.items():
        country_totals[code] = country_totals.get(code, 0) + counts["operations"]
    kept = {
        code
        for code, _total in sorted(country_totals.items(), key=lambda pair: -pair[1])[: TOP_COUNTRIES - 1]
    }
    if len(country_totals) <= TOP_COUNTRIES:
        kept = set(country_totals)
    for (processor_key, code), counts in sorted(per_country.items(), key=lambda pair: -pair[1]["operations"]):
        target = code if code in kept else "others"
        link(node("recipient", processor_key), node("country", target), counts)
    return FlowChart(nodes=list(nodes.values()), links=list(links.values()))


def _node_label(
    stage: str,
    key: Any,
    controllers: dict[int, Controller],
    services: dict[int, Service],
    processors: dict[int, Processor],
    filters: list[tuple[str, str]],
) -> tuple[str, str]:
    """A node's label and the page it leads to."""
    if stage == "country":
        if key == "home":
            return _("stays in the country"), _explorer(filters, cross_border="false")
        if key == "others":
            return _("other countries"), _explorer(filters, cross_border="true")
        if key == "unknown":
            return _("abroad, country not recorded"), _explorer(filters, cross_border="true")
        return _country_label(key), _explorer(filters, cross_border="true", country=key)
    if key == OTHERS:
        others = {
            "controller": _("other controllers"),
            "service": _("other services"),
            "recipient": _("other recipients"),
        }
        return others[stage], _explorer(filters)
    if stage == "controller":
        controller = controllers[key]
        return controller.display_name(), reverse("processors:disclosure", args=[controller.code])
    if stage == "service":
        service = services[key]
        return str(service), _explorer(service=service.pk)
    processor = processors[key]
    return processor.display_name(), reverse("processors:processor", args=[processor.pk])
