"""Browser pages: thin views that translate a request, call selectors, FilterSets or the spreadsheet core.

Two audiences: the public reads a controller's disclosure table (when the controller publishes it; those
pages are ``disclosure.views``); staff with the model's view permission (the same rule as the admin and the
API) explore the register.

Why one module: the register's pages share the reader mixin, the filter form's context and the
explorer's query handling; each view is a few lines over selectors, and the pages with real parts of
their own (disclosure, the upload flow, accounts) already live in their own modules.
"""

import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView
from django_filters.views import FilterView

from processors import flows, notice_letters, selectors, services, taxonomy
from processors.filters import FindingFilterSet, OperationFilterSet
from processors.findings import (
    RULES,
    Severity,
    open_unless_asked,
    stored_findings_for_display,
    stored_findings_of,
    stored_findings_ordered,
    stored_findings_summary,
    stored_findings_summary_cached,
    stored_findings_visible_to,
)
from processors.forms import DeletionNoticeForm, FindingDecisionForm
from processors.history import processor_history
from processors.models import (
    Controller,
    DataCategory,
    FindingState,
    Operation,
    OperationStatus,
    Processor,
    Purpose,
    Relationship,
    Service,
)
from processors.notices import NoticeError, deletion_notice, deletion_notice_csv
from processors.register_cache import RegisterFigures, reader_scope
from processors.spreadsheets import export
from processors.templatetags.registry_ui import bilingual, heat_level
from processors.text import is_row_id

# Query parameters that steer a page rather than filter the register.
PAGE_PARAMETERS = ("page", "format", "lang", "marks")
EXPORT_FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
LETTER_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class RegisterReaderMixin(PermissionRequiredMixin):
    """Anonymous visitors go to the login; signed-in users without the view permission get a 403."""

    permission_required: Any = "processors.view_operation"


def table_language(request: HttpRequest) -> str:
    """The language of a disclosure table: ?lang=zh|en, else the page's language."""
    requested = request.GET.get("lang", "")
    if requested in ("zh", "zh-hans", "en"):
        return "en" if requested == "en" else "zh"
    return "en" if (translation.get_language() or "").startswith("en") else "zh"


def language_code(lang: str) -> str:
    return "en" if lang == "en" else "zh-hans"


def filter_data(request: HttpRequest) -> QueryDict | None:
    """The query without empty values: a form's "any" choice sends processor= and means no filter."""
    data = QueryDict(mutable=True)
    for name, values in request.GET.lists():
        kept = [value for value in values if value.strip()]
        if kept:
            data.setlist(name, kept)
    return data or None


def visible_operations_filterset(request: HttpRequest) -> OperationFilterSet:
    """The explorer's filters from the query, over the operations the user may see."""
    return OperationFilterSet(
        filter_data(request), queryset=selectors.operations_visible_to(request.user), request=request
    )


def filter_parameters(request: HttpRequest) -> list[tuple[str, str]]:
    """The request's filter parameters (without page, format and lang), for links that keep them."""
    data = filter_data(request) or QueryDict()
    return [(name, value) for name, values in data.lists() if name not in PAGE_PARAMETERS for value in values]


# --- Dashboard ------------------------------------------------------------------------------------


def dashboard(request: HttpRequest) -> HttpResponse:
    """Counts and ways in for staff; anonymous visitors get the public disclosure pages and the login.

    The register-wide figures and the recent changes come from ``register_cache`` (recomputed after
    any write, see there); the imports (not stamped: they keep no history) and controllers are read
    live, each a short indexed query."""
    if not request.user.is_authenticated:
        public = Controller.objects.filter(disclosure_public=True).order_by("code")
        return render(request, "processors/landing.html", {"public_controllers": public})
    if not request.user.has_perm("processors.view_operation"):
        raise PermissionDenied
    user = request.user
    operations = selectors.operations_visible_to(user)
    controllers = list(selectors.controllers_for(user).order_by("code"))
    figures = RegisterFigures(reader_scope(user, [controller.pk for controller in controllers]))
    open_findings = stored_findings_visible_to(user).filter(state=FindingState.OPEN)
    counts = figures.get("findings-summary", lambda: stored_findings_summary(open_findings))
    top = figures.get(
        "findings-top", lambda: list(stored_findings_ordered(open_findings)[:DASHBOARD_FINDINGS])
    )
    imports = selectors.imports_visible_to(user)
    return render(
        request,
        "processors/dashboard.html",
        {
            "summary": figures.get(
                "summary", lambda: selectors.register_summary(operations, selectors.controllers_for(user))
            ),
            "top_categories": figures.get(
                "top-categories", lambda: selectors.categories_most_received(operations=operations)
            ),
            "category_groups": DataCategory.objects.filter(parent__isnull=True).order_by("position", "code"),
            "controllers": controllers,
            "recent_operations": figures.get(
                "recent-operations",
                lambda: list(
                    operations.select_related("service__controller", "processor").order_by(
                        "-updated_at", "-pk"
                    )[:DASHBOARD_RECENT_OPERATIONS]
                ),
            ),
            "recent_processors": figures.get(
                "recent-processors",
                lambda: list(Processor.objects.order_by("-updated_at", "-pk")[:DASHBOARD_RECENT_PROCESSORS]),
            ),
            "recent_imports": [
                (record, import_counts_text(record.counts))
                for record in selectors.import_records_recent(records=imports)
            ],
            **figures.get("charts", lambda: dashboard_charts(operations)),
            "findings_total": counts["total"],
            "findings_by_severity": severity_counts(counts),
            "findings_by_rule": rule_counts(counts),
            "top_findings": stored_findings_for_display(top),
            **figures.get("reviews", lambda: dashboard_reviews(operations), daily=True),
        },
    )


DASHBOARD_FINDINGS = 6
DASHBOARD_RECENT_OPERATIONS = 8
DASHBOARD_RECENT_PROCESSORS = 6
# Overdue reviews listed on the dashboard per kind; the count and a link lead to the rest.
DASHBOARD_REVIEWS = 8


def dashboard_reviews(operations: QuerySet[Operation]) -> dict[str, Any]:
    """What is due for review: the oldest overdue operations and processors, with counts (PIPL Art. 54)."""
    return {
        "overdue_operations": selectors.reviews_overdue(
            operations.select_related("service__controller", "processor"), limit=DASHBOARD_REVIEWS
        ),
        "overdue_processors": selectors.reviews_overdue(
            selectors.processors_in_register(operations), limit=DASHBOARD_REVIEWS
        ),
        "review_overdue_query": urlencode({"review": selectors.REVIEW_OVERDUE}),
        "review_never_query": urlencode({"review": selectors.REVIEW_NEVER}),
    }


def import_counts_text(counts: dict[str, Any]) -> str:
    """An import record's counts as a reader says them: "43 rows · operations: 43 created, 2 changed"."""
    entities = {"processors": _("processors"), "services": _("services"), "operations": _("operations")}
    kinds = {
        "created": _("%(count)d created"),
        "changed": _("%(count)d changed"),
        "unchanged": _("%(count)d unchanged"),
    }
    parts = []
    if isinstance(counts.get("rows"), int):
        parts.append(_("%(count)d rows") % {"count": counts["rows"]})
    for entity, label in entities.items():
        numbers = counts.get(entity)
        if not isinstance(numbers, dict):
            continue
        said = [text % {"count": numbers[kind]} for kind, text in kinds.items() if numbers.get(kind)]
        if said:
            parts.append(f"{label}: {', '.join(said)}")
    return " · ".join(parts)


def dashboard_charts(operations: QuerySet[Operation]) -> dict[str, Any]:
    """The dashboard's two pictures (flows by category group, destinations abroad) and their tables."""
    group_bars = flows.flows_by_category_group(operations)
    country_bars = flows.cross_border_countries(operations)
    return {
        "group_bars": group_bars,
        "group_chart": flows.bars_data(group_bars),
        "country_bars": country_bars,
        "country_chart": flows.bars_data(country_bars),
    }


def severity_counts(summary: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(severity, label, count) for every severity, the worst first, from a stored-findings summary."""
    return [(severity.value, severity.label, summary.get(severity.value, 0)) for severity in Severity]


def rule_counts(summary: dict[str, Any]) -> list[tuple[Any, int]]:
    """(rule, count) for the rules with findings, in the rules' order, from a stored-findings summary."""
    return [(rule, summary["by_rule"][rule.code]) for rule in RULES if summary["by_rule"].get(rule.code)]


def findings_by_severity(found: list[Any]) -> list[tuple[str, str, int]]:
    """(severity, label, count) for every severity, the worst first."""
    counts = {severity.value: 0 for severity in Severity}
    for finding in found:
        counts[finding.severity] += 1
    return [(severity.value, severity.label, counts[severity.value]) for severity in Severity]


# --- Explorer -------------------------------------------------------------------------------------


def _spreadsheet_response(
    operations: QuerySet[Operation], *, fmt: str, lang: str, name: str, marks: bool = False
) -> HttpResponse:
    response = HttpResponse(content_type=EXPORT_FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{lang}.{fmt}"'
    export.export_disclosure(operations, fmt=fmt, lang=lang, stream=response, marks=marks)
    return response


class ExplorerView(RegisterReaderMixin, FilterView):
    """The operations list with the API's filters (OperationFilterSet), sortable, paginated, exportable."""

    filterset_class = OperationFilterSet
    template_name = "processors/explorer.html"
    paginate_by = 25

    def get_queryset(self):
        return selectors.operation_list(selectors.operations_visible_to(self.request.user))

    def get_filterset_kwargs(self, filterset_class: type[OperationFilterSet]) -> dict[str, Any]:
        return {**super().get_filterset_kwargs(filterset_class), "data": filter_data(self.request)}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        page = context.get("page_obj")
        page_range = page.paginator.get_elided_page_range(page.number) if page is not None else []
        return {**context, **filter_form_context(self.request, self.filterset), "page_range": page_range}


def filter_form_context(request: HttpRequest, filterset: OperationFilterSet) -> dict[str, Any]:
    """What the shared filter form needs: choices, the current values and the parameters it cannot show."""
    cleaned = filterset.form.cleaned_data if filterset.is_bound and filterset.is_valid() else {}
    selected_categories = {category.code for category in cleaned.get("category") or ()}
    selected_purposes = {purpose.code for purpose in cleaned.get("purpose") or ()}
    shown = {
        "category", "sensitive", "cross_border", "purpose", "processor", "service", "relationship",
        "status", "search", "controller", "country", "unmapped", "ordering",
    }  # fmt: skip
    parameters = filter_parameters(request)
    return {
        "filterset": filterset,
        "category_tree": _category_tree(selected_categories),
        "selected_purposes": selected_purposes,
        "purposes": Purpose.objects.order_by("position", "code"),
        **processor_choices(request),
        "service_choices": selectors.services_visible_to(request.user)
        .select_related("controller")
        .order_by("controller__code", "name"),
        "controller_choices": selectors.controllers_for(request.user).order_by("code"),
        "relationship_choices": Relationship.choices,
        "status_choices": OperationStatus.choices,
        "values": {name: request.GET.getlist(name) for name in shown},
        "hidden_parameters": [(name, value) for name, value in parameters if name not in shown],
        "query": urlencode(parameters),
        # The matrix's group is where the reader is, not a filter: a drill-down keeps the panel closed.
        "filtered": any(name not in ("ordering", "group") for name, _value in parameters),
    }


# The filter form lists every processor up to this many; a larger register gets the ones chosen and the
# search box (which matches processors' names and aliases), so the form does not grow with the register.
FILTER_PROCESSOR_CHOICES = 250


def processor_choices(request: HttpRequest) -> dict[str, Any]:
    """The filter form's processor options, in one query: the first ``FILTER_PROCESSOR_CHOICES`` (and
    one more, to tell whether there are more) by name, and the ones the query chose."""
    # Ids the database can hold only: a longer number names no processor (and must not be a 500).
    chosen = [value for value in request.GET.getlist("processor") if is_row_id(value)]
    ranked = Processor.objects.annotate(
        rank=Window(RowNumber(), order_by=[F("name_key").asc(), F("pk").asc()])
    ).only("pk", "name_zh", "name_en", "name_key")
    rows = list(ranked.filter(Q(rank__lte=FILTER_PROCESSOR_CHOICES + 1) | Q(pk__in=chosen)).order_by("rank"))
    bounded = sum(1 for row in rows if row.rank <= FILTER_PROCESSOR_CHOICES + 1) > FILTER_PROCESSOR_CHOICES
    if bounded:
        rows = [row for row in rows if str(row.pk) in chosen]
    return {"processor_choices": rows, "processor_choices_bounded": bounded}


def _category_tree(selected: set[str], counts: dict[str, int] | None = None) -> list[dict[str, Any]]:
    nodes = {
        category.code: {
            "category": category,
            "checked": category.code in selected,
            "operations": (counts or {}).get(category.code, 0),
            "children": [],
        }
        for category in selectors.category_tree()
    }
    roots = []
    for code, node in nodes.items():
        parent = nodes.get(code.rpartition(".")[0]) if "." in code else None
        (parent["children"] if parent else roots).append(node)
    # Codes put parents first; within a level the taxonomy's own position decides.
    for node in nodes.values():
        node["children"].sort(key=lambda child: (child["category"].position, child["category"].code))
        node["open"] = node["checked"] or any(child["checked"] for child in node["children"])
    roots.sort(key=lambda root: (root["category"].position, root["category"].code))
    return roots


class ExplorerExportView(RegisterReaderMixin, View):
    """Export what I see: the operations the explorer's filters select, as a spreadsheet."""

    def get(self, request: HttpRequest) -> HttpResponse:
        fmt = request.GET.get("format", "xlsx")
        if fmt not in EXPORT_FORMATS:
            raise Http404(_("Unknown download format."))
        params: dict[str, list[str]] = {}
        for name, value in filter_parameters(request):
            params.setdefault(name, []).append(value)
        try:
            operations = selectors.visible_to(request.user, export.operations_for_export(params))
        except export.ExportFilterError as error:
            for errors in error.errors.values():
                for message in errors:
                    messages.error(request, message)
            return redirect(f"{reverse('processors:explorer')}?{urlencode(filter_parameters(request))}")
        marks = request.GET.get("marks") == "1"
        return _spreadsheet_response(
            operations, fmt=fmt, lang=table_language(request), name="operations", marks=marks
        )


# --- Processor, category, matrix ------------------------------------------------------------------


class ProcessorView(RegisterReaderMixin, TemplateView):
    """A recipient: identity, contacts, group, and everything it receives grouped by purpose."""

    permission_required = ("processors.view_processor", "processors.view_operation")
    template_name = "processors/processor_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        try:
            processor = selectors.processor_profile(self.kwargs["pk"])
        except Processor.DoesNotExist:
            raise Http404(_("No such processor.")) from None
        user = self.request.user
        operations = list(selectors.visible_to(user, selectors.processor_operations(processor)))
        services: dict[int, Service] = {}
        for operation in operations:
            services.setdefault(operation.service_id, operation.service)
        history = processor_history(processor, limit=PROCESSOR_HISTORY, user=user)
        return {
            **super().get_context_data(**kwargs),
            "processor": processor,
            "operations": operations,
            "receipts": selectors.receipts_by_purpose(operations),
            "services": list(services.values()),
            **processor_findings(user, processor),
            "may_review": may_review_processor(user),
            "review_overdue": bool(processor.review_due and processor.review_due < timezone.localdate()),
            "history": history,
            "history_truncated": len(history) >= PROCESSOR_HISTORY,
            "history_shown": PROCESSOR_HISTORY_SHOWN,
        }


def processor_findings(user: Any, processor: Processor) -> dict[str, Any]:
    """The open stored findings of a recipient and of the operations sending to it, worst first."""
    shown, total = stored_findings_of(user, processor=processor, limit=PROCESSOR_FINDINGS)
    return {"findings": shown, "findings_total": total}


# Findings listed on a processor's page; the findings page lists them all.
PROCESSOR_FINDINGS = 50
# The processor page shows the latest changes; the administration keeps the whole history.
PROCESSOR_HISTORY = 50
# Changes listed before "show all"; each is one line until opened.
PROCESSOR_HISTORY_SHOWN = 8


def may_review_processor(user: Any) -> bool:
    """Whether the user may mark a processor reviewed: its change permission and an editor's role."""
    return user.has_perm("processors.change_processor") and selectors.edits_any_controller(user)


class ProcessorReviewView(RegisterReaderMixin, View):
    """POST: the signed-in user marks the processor reviewed now (kept in its history)."""

    permission_required = ("processors.view_processor", "processors.change_processor")
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        processor = Processor.objects.filter(pk=pk).first()
        if processor is None:
            raise Http404(_("No such processor."))
        if not may_review_processor(request.user):
            raise PermissionDenied
        processor = services.processor_mark_reviewed(processor=processor, user=request.user)
        messages.success(
            request,
            _("Marked reviewed; the next review is due on %(date)s.")
            % {"date": date_format(processor.review_due)},
        )
        return redirect(reverse("processors:processor", args=[processor.pk]) + "#review")


class CategoryView(RegisterReaderMixin, TemplateView):
    """A data category: its place in the tree, aliases, sensitivity and every recipient."""

    permission_required = ("processors.view_datacategory", "processors.view_operation")
    template_name = "processors/category_detail.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        category = DataCategory.objects.filter(code=kwargs["code"]).prefetch_related("aliases").first()
        if category is None:
            # A name or an alias (/categories/身份证号/) leads to the category's canonical address.
            resolved = taxonomy.category_find(kwargs["code"])
            if resolved is None:
                raise Http404(_("No such data category."))
            return redirect("processors:category", code=resolved.code)
        self.category = category
        return super().get(request, *args, **kwargs)

    # A category every row sends (姓名) has every recipient: they come a page at a time.
    paginate_by = 50

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        category = self.category
        # The subtree in one query: its ids narrow the items, its direct children are listed.
        subtree = selectors.category_subtree(category)
        subtree_ids = [node.pk for node in subtree]
        visible = selectors.operations_visible_to(self.request.user)
        # Who receives the category (in reading order) and through how many operations: a scan of every
        # operation sending it (all of them for 姓名), so computed once per register revision and
        # reader, as the dashboard's figures are; a page is then a slice of the ids.
        received = RegisterFigures(reader_scope(self.request.user)).get(
            f"category-recipients-{category.pk}",
            lambda: selectors.category_recipient_ids(category, visible, subtree_ids),
        )
        paginator = Paginator(received["recipients"], self.paginate_by)
        recipients_page = paginator.get_page(self.request.GET.get("page"))
        recipients = selectors.category_recipient_page(
            category, selectors.processors_in_order(recipients_page.object_list), visible, subtree_ids
        )
        return {
            **super().get_context_data(**kwargs),
            "category": category,
            "lineage": selectors.category_lineage(category),
            "children": [node for node in subtree if node.parent_id == category.pk],
            "recipients": recipients,
            "recipient_count": recipients_page.paginator.count,
            "operation_count": received["operations"],
            "page_obj": recipients_page,
            "is_paginated": recipients_page.has_other_pages(),
            "page_range": recipients_page.paginator.get_elided_page_range(recipients_page.number),
        }


class CategoryIndexView(RegisterReaderMixin, TemplateView):
    """The category tree; ?q= finds a category by code, name or alias and goes to it."""

    permission_required = ("processors.view_datacategory", "processors.view_operation")
    template_name = "processors/category_index.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.query = request.GET.get("q", "").strip()
        self.suggestions: list[str] = []
        if self.query:
            try:
                [category] = taxonomy.categories_resolve([self.query])
            except taxonomy.UnknownCategory as unknown:
                self.suggestions = unknown.suggestions[self.query]
            else:
                return redirect("processors:category", code=category.code)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = self.request.user
        operations = selectors.operations_visible_to(user)
        # Operations per category count the whole visible register: cached per revision, as the
        # dashboard's figures are (register_cache).
        received = RegisterFigures(reader_scope(user)).get(
            "categories-received",
            lambda: selectors.categories_most_received(limit=None, operations=operations),
        )
        counts = {row["category__code"]: row["operations"] for row in received}
        return {
            **super().get_context_data(**kwargs),
            "query": self.query,
            "suggestions": self.suggestions,
            "category_tree": _category_tree(set(), counts),
        }


class MatrixView(RegisterReaderMixin, TemplateView):
    """Recipients × category groups, and ``?group=`` one group's categories: how many operations send
    them to each recipient, a page of recipients at a time (the page's size does not grow with the
    register)."""

    template_name = "processors/matrix.html"
    paginate_by = 50

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        filterset = visible_operations_filterset(self.request)
        valid = not filterset.is_bound or filterset.is_valid()
        code = self.request.GET.get("group", "")
        group = selectors.category_groups().filter(code=code).first() if code else None
        if code and group is None:
            raise Http404(_("No such category group."))
        context = {
            **super().get_context_data(**kwargs),
            **filter_form_context(self.request, filterset),
            "grid": None,
        }
        if valid:
            page = Paginator(selectors.matrix_recipients(filterset.qs, group), self.paginate_by).get_page(
                self.request.GET.get("page")
            )
            grid = selectors.category_matrix(
                filterset.qs, page.object_list, group=group, by_group=group is None
            ).grid()
            context.update(
                grid=matrix_cells_linked(self.request, grid),
                page_obj=page,
                is_paginated=page.has_other_pages(),
                page_range=page.paginator.get_elided_page_range(page.number),
            )
        return context


def matrix_cells_linked(request: HttpRequest, grid: dict) -> dict:
    """The grid with each row's cells also as dicts (``linked``): column, count, heat level, explorer
    address and label.

    Worked out here once per cell (the page's query string encoded once) rather than by template tags
    per cell; the address is the one ``query_with group=None processor=… category=…`` gives."""
    explorer = reverse("processors:explorer")
    base = request.GET.copy()
    base.pop("page", None)
    base.pop("group", None)
    # Without processor= or category= in the query, both are appended after it, in this order.
    appended = "processor" not in base and "category" not in base
    prefix = base.urlencode()
    column_labels = {column["code"]: bilingual(column) for column in grid["columns"]}
    for row in grid["rows"]:
        row_label = bilingual(row)
        cells = []
        for column, count in row["cells"]:
            href = label = ""
            if count:
                if appended:
                    query = urlencode([("processor", row["id"]), ("category", column["code"])])
                    query = f"{prefix}&{query}" if prefix else query
                else:
                    changed = base.copy()
                    changed["processor"] = row["id"]
                    changed["category"] = column["code"]
                    query = changed.urlencode()
                href = f"{explorer}?{query}"
                label = f"{row_label} × {column_labels[column['code']]}: {count}"
            cells.append(
                {
                    "column": column,
                    "count": count,
                    "heat": heat_level(count, grid["max"]),
                    "href": href,
                    "label": label,
                }
            )
        row["linked"] = cells
    return grid


class FlowView(RegisterReaderMixin, TemplateView):
    """Controller → service → recipient → country as a chart and a table, narrowed by the explorer's
    filters (OperationFilterSet) and bounded by ``processors.flows``."""

    template_name = "processors/flows.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        filterset = visible_operations_filterset(self.request)
        valid = not filterset.is_bound or filterset.is_valid()
        chart = flows.operation_flow(filterset.qs, filter_parameters(self.request)) if valid else None
        country_bars = flows.cross_border_countries(filterset.qs) if valid else []
        return {
            **super().get_context_data(**kwargs),
            **filter_form_context(self.request, filterset),
            "chart": chart,
            "chart_data": chart.as_data() if chart is not None else None,
            "country_bars": country_bars,
            "country_chart": flows.bars_data(country_bars),
        }


# --- Findings, deletion notices -------------------------------------------------------------------


class FindingsView(RegisterReaderMixin, TemplateView):
    """The stored findings grouped by rule with counts, filtered (FindingFilterSet), 50 a page; a user
    with ``change_finding`` accepts one with a reason, marks it fixed or reopens it (POST)."""

    template_name = "processors/findings.html"
    paginate_by = 50

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = self.request.user
        visible = stored_findings_visible_to(user)
        data = filter_data(self.request)
        filterset = FindingFilterSet(data, queryset=open_unless_asked(visible, data))
        filterset.form.fields["controller"].queryset = selectors.controllers_for(user).order_by("code")
        # An unbound FilterSet (no filters asked) lists everything open; an invalid one nothing.
        rows = filterset.qs if not filterset.is_bound or filterset.is_valid() else visible.none()
        figures = RegisterFigures(reader_scope(user))
        summary = stored_findings_summary_cached(rows, figures, data)
        page = Paginator(stored_findings_ordered(rows), self.paginate_by).get_page(
            self.request.GET.get("page")
        )
        return {
            **super().get_context_data(**kwargs),
            "filterset": filterset,
            "form": filterset.form,
            "total": summary["total"],
            "by_severity": severity_counts(summary),
            "by_rule": rule_counts(summary),
            "page_obj": page,
            "findings": stored_findings_for_display(page.object_list),
            "page_range": page.paginator.get_elided_page_range(page.number),
            "can_decide": user.has_perm("processors.change_finding"),
        }

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm("processors.change_finding"):
            raise PermissionDenied
        form = FindingDecisionForm(request.POST)
        visible = stored_findings_visible_to(request.user)
        if not form.is_valid():
            messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
            return redirect(request.get_full_path())
        finding = visible.filter(pk=form.cleaned_data["finding"]).first()
        if finding is None:
            raise Http404(_("No such finding."))
        action, note = form.cleaned_data["action"], form.cleaned_data["reason"]
        try:
            if action == "accept":
                services.finding_accept(finding=finding, user=request.user, reason=note)
            elif action == "fix":
                services.finding_fix(finding=finding, user=request.user, note=note)
            else:
                services.finding_reopen(finding=finding, user=request.user, note=note)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("Finding updated: %(finding)s") % {"finding": finding.subject_label})
        return redirect(request.get_full_path())


LETTER_PERMISSION = "processors.change_deletionnoticeletter"


def reply_by_date(request: HttpRequest) -> datetime.date:
    """The reply-by date asked (?reply_by=YYYY-MM-DD), else today + 15 days."""
    try:
        asked = django_forms.DateField(required=False).clean(request.GET.get("reply_by", ""))
    except ValidationError:
        asked = None
    return asked or notice_letters.default_reply_by()


class DeletionNoticeView(RegisterReaderMixin, TemplateView):
    """Who holds these categories of data and must be told to delete them; as CSV for a mailing; a letter
    per recipient (.docx or e-mail text); a user with ``change_deletionnoticeletter`` records it sent or
    acknowledged (POST)."""

    template_name = "processors/deletion_notice.html"
    paginate_by = 50

    def notice(self, request: HttpRequest) -> tuple[DeletionNoticeForm, Any, NoticeError | None]:
        form = DeletionNoticeForm(filter_data(request))
        form.fields["controller"].queryset = selectors.controllers_for(request.user).order_by("code")
        notice = error = None
        if form.is_bound and form.is_valid():
            try:
                notice = deletion_notice(
                    form.cleaned_data["categories"],
                    selectors.controller_scope(request.user, form.cleaned_data["controller"]),
                    include_retired=not form.cleaned_data["active_only"],
                )
            except NoticeError as failure:
                error = failure
            except selectors.ControllerScopeRequired:
                form.add_error("controller", _("Choose the controller whose recipients to list."))
        return form, notice, error

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form, notice, error = self.notice(request)
        lang = table_language(request)
        reply_by = reply_by_date(request)
        output = request.GET.get("format")
        if notice is not None and output == "csv":
            response = HttpResponse(content_type=EXPORT_FORMATS["csv"])
            response.headers["Content-Disposition"] = f'attachment; filename="deletion-notice-{lang}.csv"'
            deletion_notice_csv(notice, response, lang)
            return response
        if notice is not None and output in ("docx", "txt"):
            return self.letter(request, notice, lang=lang, reply_by=reply_by, output=output)
        rows = []
        page_obj = None
        open_count = 0
        if notice is not None:
            latest = notice_letters.notice_letters_latest(notice)
            open_count = sum(
                1
                for entry in notice.entries
                if (letter := latest.get(entry.processor_id)) is None or not letter.acknowledged
            )
            # A category every row sends (姓名) names every recipient: the letters come a page at a time
            # (the CSV still holds them all).
            page_obj = Paginator(notice.recipients, self.paginate_by).get_page(request.GET.get("page"))
            for recipient in notice.with_details(list(page_obj.object_list)):
                text = notice_letters.notice_letter_text(
                    recipient, lang=lang, reply_by=reply_by, controller=notice.controller
                )
                rows.append(
                    {"recipient": recipient, "letter": latest.get(recipient.processor.pk), "email_text": text}
                )
        context = self.get_context_data(
            form=form,
            notice=notice,
            error=error,
            lang=lang,
            reply_by=reply_by,
            rows=rows,
            open_rows=[row for row in rows if row["letter"] is None or not row["letter"].acknowledged],
            open_count=open_count,
            page_obj=page_obj,
            is_paginated=page_obj is not None and page_obj.has_other_pages(),
            page_range=page_obj.paginator.get_elided_page_range(page_obj.number) if page_obj else (),
            can_record=request.user.has_perm(LETTER_PERMISSION),
            **kwargs,
        )
        return self.render_to_response(context, status=400 if error is not None else 200)

    def letter(
        self, request: HttpRequest, notice: Any, *, lang: str, reply_by: datetime.date, output: str
    ) -> HttpResponse:
        recipient = self.recipient(request.GET.get("recipient", ""), notice)
        name = f"deletion-notice-{recipient.processor.pk}-{lang}"
        if output == "txt":
            text = notice_letters.notice_letter_text(
                recipient, lang=lang, reply_by=reply_by, controller=notice.controller
            )
            response = HttpResponse(text, content_type="text/plain; charset=utf-8")
            response.headers["Content-Disposition"] = f'attachment; filename="{name}.txt"'
            return response
        response = HttpResponse(content_type=LETTER_DOCX)
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.docx"'
        notice_letters.notice_letter_docx(
            recipient, lang=lang, reply_by=reply_by, stream=response, controller=notice.controller
        )
        return response

    @staticmethod
    def recipient(value: str, notice: Any) -> Any:
        recipient = notice.recipient(int(value)) if is_row_id(value) else None
        if recipient is None:
            raise Http404(_("No such recipient in this notice."))
        return recipient

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(LETTER_PERMISSION):
            raise PermissionDenied
        form, notice, error = self.notice(request)
        if notice is None:
            messages.error(request, _("The notice could not be computed; check the categories."))
            return redirect(request.get_full_path())
        recipient = self.recipient(request.POST.get("recipient", ""), notice)
        note = request.POST.get("note", "")
        try:
            if request.POST.get("action") == "acknowledge":
                letter = notice_letters.notice_letters_latest(notice).get(recipient.processor.pk)
                if letter is None:
                    raise ValidationError(_("A notice that was not sent cannot be acknowledged."))
                services.notice_letter_acknowledge(letter=letter, user=request.user, note=note)
                done = _("Acknowledgement recorded: %(recipient)s")
            else:
                services.notice_letter_record_sent(
                    processor=recipient.processor,
                    controller=notice.controller,
                    categories=notice_letters.recipient_category_codes(recipient),
                    reply_by=reply_by_date(request),
                    user=request.user,
                    note=note,
                )
                done = _("Notice recorded as sent: %(recipient)s")
        except ValidationError as failure:
            messages.error(request, " ".join(failure.messages))
        else:
            messages.success(request, done % {"recipient": recipient.processor.display_name})
        return redirect(request.get_full_path())
