"""Browser pages: thin views that translate a request, call selectors, FilterSets or the spreadsheet core.

Two audiences: the public reads a controller's disclosure table (when the controller publishes it);
staff with the model's view permission (the same rule as the admin and the API) explore the register.
"""

import contextlib
import datetime
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.generic import TemplateView
from django_filters.views import FilterView

from processors import selectors, versions
from processors.filters import OperationFilterSet
from processors.findings import Severity, findings
from processors.forms import DeletionNoticeForm, FindingsFilterForm, HeaderMapForm, UploadForm
from processors.history import processor_history
from processors.models import (
    Controller,
    DataCategory,
    Operation,
    OperationStatus,
    Processor,
    PublishedVersion,
    Purpose,
    Relationship,
    Service,
)
from processors.notices import NoticeError, deletion_notice, deletion_notice_csv
from processors.spreadsheets import export, uploads
from processors.taxonomy import Taxonomy

# Query parameters that steer a page rather than filter the register.
PAGE_PARAMETERS = ("page", "format", "lang")
EXPORT_FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


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


def filter_parameters(request: HttpRequest) -> list[tuple[str, str]]:
    """The request's filter parameters (without page, format and lang), for links that keep them."""
    data = filter_data(request) or QueryDict()
    return [(name, value) for name, values in data.lists() if name not in PAGE_PARAMETERS for value in values]


# --- Dashboard ------------------------------------------------------------------------------------


def dashboard(request: HttpRequest) -> HttpResponse:
    """Counts and ways in for staff; anonymous visitors get the public disclosure pages and the login."""
    if not request.user.is_authenticated:
        public = Controller.objects.filter(disclosure_public=True).order_by("code")
        return render(request, "processors/landing.html", {"public_controllers": public})
    if not request.user.has_perm("processors.view_operation"):
        raise PermissionDenied
    found = findings()
    return render(
        request,
        "processors/dashboard.html",
        {
            "summary": selectors.register_summary(),
            "top_categories": selectors.categories_most_received(),
            "category_groups": DataCategory.objects.filter(parent__isnull=True).order_by("position", "code"),
            "controllers": Controller.objects.order_by("code"),
            "recent_operations": selectors.operation_list().order_by("-updated_at", "-pk")[:8],
            "recent_processors": Processor.objects.order_by("-updated_at", "-pk")[:6],
            "recent_imports": list(selectors.import_records_recent()),
            "findings_total": len(found),
            "findings_by_severity": findings_by_severity(found),
            "top_findings": found[:DASHBOARD_FINDINGS],
        },
    )


DASHBOARD_FINDINGS = 6


def findings_by_severity(found: list[Any]) -> list[tuple[str, str, int]]:
    """(severity, label, count) for every severity, the worst first."""
    counts = {severity.value: 0 for severity in Severity}
    for finding in found:
        counts[finding.severity] += 1
    return [(severity.value, severity.label, counts[severity.value]) for severity in Severity]


# --- Disclosure -----------------------------------------------------------------------------------


def disclosure_controller(request: HttpRequest, code: str) -> Controller | None:
    """The controller whose table the request may read; None when the visitor has to sign in first."""
    controller = get_object_or_404(Controller, code=code)
    if controller.disclosure_public:
        return controller
    if not request.user.is_authenticated:
        return None
    if not request.user.has_perm("processors.view_operation"):
        raise PermissionDenied
    return controller


@dataclass
class DisclosureEntry:
    """One row of the table: the exporters' texts and the snapshot entry they were made from."""

    row: export.DisclosureRow
    entry: dict[str, Any]
    country: str = ""
    abroad: bool = False
    members: list[dict[str, Any]] = field(default_factory=list)

    @property
    def processor(self) -> dict[str, Any]:
        return self.entry["processor"]


@dataclass
class DisclosureGroup:
    """The rows of one service."""

    service: str
    rows: list[DisclosureEntry]


@dataclass
class DisclosureTable:
    """A controller's table from a snapshot: a published version's, or the live register's."""

    controller: Controller
    lang: str
    groups: list[DisclosureGroup]
    last_updated: datetime.datetime | None = None
    effective_from: datetime.date | None = None
    version: PublishedVersion | None = None

    @property
    def row_count(self) -> int:
        return sum(len(group.rows) for group in self.groups)

    @property
    def headers(self) -> tuple[str, ...]:
        return export.DISCLOSURE_HEADERS[self.lang]

    @property
    def abroad(self) -> list[tuple[dict[str, Any], list[str]]]:
        """Recipients established abroad (group members one by one), with the services sending to them."""
        found: dict[Any, tuple[dict[str, Any], list[str]]] = {}
        for group in self.groups:
            for row in group.rows:
                parties = row.members or [
                    {**row.processor, "country_name": row.country, "abroad": row.abroad}
                ]
                for party in parties:
                    if party["abroad"]:
                        services = found.setdefault(party["id"], (party, []))[1]
                        if group.service not in services:
                            services.append(group.service)
        return list(found.values())


def disclosure_table(
    controller: Controller, snapshot: versions.Snapshot, *, lang: str, version: PublishedVersion | None = None
) -> DisclosureTable:
    """The controller's table grouped by service, with the very texts the downloads carry."""
    home = (snapshot.get("controller") or {}).get("country") or controller.country.code or "CN"

    def place(party: dict[str, Any]) -> tuple[str, bool]:
        code = party.get("country") or ""
        return (versions.country_name(code, lang) if code else ""), bool(code) and code != home

    groups: list[DisclosureGroup] = []
    # One row builder for the page and the files, so they cannot disagree.
    for entry, row in zip(snapshot["operations"], versions.disclosure_rows(snapshot, lang), strict=True):
        country, abroad = place(entry["processor"])
        members = [
            {**member, "name": versions._name(member, lang), "country_name": name, "abroad": member_abroad}
            for member in entry["processor"]["members"]
            for name, member_abroad in [place(member)]
        ]
        if not groups or groups[-1].rows[0].row.service_id != row.service_id:
            groups.append(DisclosureGroup(row.service, []))
        groups[-1].rows.append(DisclosureEntry(row, entry, country, abroad, members))
    dates = {} if version is not None else selectors.disclosure_dates(controller)
    return DisclosureTable(controller, lang, groups, **dates, version=version)


def can_read_register(request: HttpRequest) -> bool:
    return request.user.has_perm("processors.view_operation")


def version_find(controller: Controller, ref: str, candidates: Any = None) -> PublishedVersion:
    """A controller's version by label, else by id (404 when there is none)."""
    candidates = list(candidates) if candidates is not None else None
    if candidates is None:
        version = selectors.version_list(controller).filter(label=ref).first()
        if version is None and ref.isdigit():
            version = selectors.version_list(controller).filter(pk=int(ref)).first()
    else:
        version = next((item for item in candidates if item.label == ref), None)
        if version is None and ref.isdigit():
            version = next((item for item in candidates if item.pk == int(ref)), None)
    if version is None:
        raise Http404(_("No such version."))
    return version


class DisclosureView(View):
    """A controller's third-party table as its privacy policy shows it (public if the controller says so).

    The table is the version in effect; before the first one takes effect, the live register (which staff
    see marked as a draft).
    """

    template_name = "processors/disclosure.html"

    def get_version(self) -> PublishedVersion | None:
        if "ref" in self.kwargs:
            return version_find(self.controller, self.kwargs["ref"])
        return selectors.version_current(self.controller)

    def get(self, request: HttpRequest, code: str, **kwargs: Any) -> HttpResponse:
        self.controller = controller = disclosure_controller(request, code)
        if controller is None:
            return redirect_to_login(request.get_full_path())
        lang = table_language(request)
        version = self.get_version()
        snapshot = version.snapshot if version is not None else versions.snapshot_live(controller)
        # The table may be asked for in another language than the page's (?lang= for an embed).
        with translation.override(language_code(lang)):
            table = disclosure_table(controller, snapshot, lang=lang, version=version)
            response = render(request, self.template_name, self.get_context_data(table=table))
        response.headers["Content-Language"] = language_code(lang)
        return response

    def get_context_data(self, **context: Any) -> dict[str, Any]:
        table = context["table"]
        code = table.controller.code
        embed_path = reverse("processors:disclosure-embed", args=[code])
        if table.version is not None and "ref" in self.kwargs:
            download = reverse("processors:version-download", args=[code, version_key(table.version)])
        else:
            download = reverse("processors:disclosure-download", args=[code])
        return {
            **context,
            "lang": table.lang,
            "download_url": download,
            "embed_url": self.request.build_absolute_uri(f"{embed_path}?lang={table.lang}"),
            "staff_view": can_read_register(self.request),
            "archived": "ref" in self.kwargs,
        }


class DisclosureEmbedView(DisclosureView):
    """The table alone, without the site's header and footer, for an iframe on a privacy-policy page.

    Framing: a public table is a read-only document with no controls, so clickjacking has nothing to
    hijack; it may be framed by the origins in settings.REGISTER_EMBED_FRAME_ANCESTORS (a list of CSP
    sources, default ["*"]: anyone). A table that is not public may only be framed by this site itself.
    """

    template_name = "processors/disclosure_embed.html"

    def get(self, request: HttpRequest, code: str, **kwargs: Any) -> HttpResponse:
        response = super().get(request, code, **kwargs)
        if self.controller is not None and self.controller.disclosure_public:
            ancestors = getattr(settings, "REGISTER_EMBED_FRAME_ANCESTORS", None) or ["*"]
            response.headers["Content-Security-Policy"] = "frame-ancestors " + " ".join(ancestors)
        else:
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
            response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
        return response


disclosure_embed = xframe_options_exempt(DisclosureEmbedView.as_view())


class DisclosureDownloadView(DisclosureView):
    """The same table as a spreadsheet (xlsx or csv), in the table's language."""

    def get(self, request: HttpRequest, code: str, **kwargs: Any) -> HttpResponse:
        self.controller = controller = disclosure_controller(request, code)
        if controller is None:
            return redirect_to_login(request.get_full_path())
        fmt = request.GET.get("format", "xlsx")
        if fmt not in EXPORT_FORMATS:
            raise Http404(_("Unknown download format."))
        lang = table_language(request)
        version = self.get_version()
        if version is None:
            operations = selectors.disclosure_operations(controller)
            return _spreadsheet_response(operations, fmt=fmt, lang=lang, name=f"{controller.code}-disclosure")
        response = HttpResponse(content_type=EXPORT_FORMATS[fmt])
        name = slugify(f"{controller.code}-disclosure-{version.label}") or f"{controller.code}-{version.pk}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}-{lang}.{fmt}"'
        rows = versions.disclosure_rows(version.snapshot, lang)
        # The exporters' own writers, so a published version's file looks like the live table's.
        if fmt == "csv":
            export._write_disclosure_csv(
                rows,
                stream=response,
                lang=lang,
                encoding=export.DEFAULT_CSV_ENCODING,
                marks=False,
                progress=None,
            )
        else:
            export._write_disclosure_xlsx(rows, stream=response, lang=lang, progress=None)
        return response


def _spreadsheet_response(operations: QuerySet[Operation], *, fmt: str, lang: str, name: str) -> HttpResponse:
    response = HttpResponse(content_type=EXPORT_FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{lang}.{fmt}"'
    export.export_disclosure(operations, fmt=fmt, lang=lang, stream=response)
    return response


def version_key(version: PublishedVersion) -> str:
    """How a version's address names it: its label, or its id when the label cannot be a path segment."""
    label = version.label
    return (
        label
        if label and "/" not in label and not label.isdigit() and label not in (".", "..")
        else str(version.pk)
    )


class VersionListView(View):
    """A controller's published versions, latest first, each viewable, downloadable and comparable."""

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        controller = disclosure_controller(request, code)
        if controller is None:
            return redirect_to_login(request.get_full_path())
        published = list(selectors.version_list(controller))
        current = selectors.version_current(controller)
        rows = [
            {
                "version": version,
                "key": version_key(version),
                "previous": version_key(published[index + 1]) if index + 1 < len(published) else None,
                "current": current is not None and version.pk == current.pk,
            }
            for index, version in enumerate(published)
        ]
        return render(
            request,
            "processors/versions.html",
            {
                "controller": controller,
                "rows": rows,
                "current": current,
                "staff_view": can_read_register(request),
                "lang": table_language(request),
            },
        )


@dataclass
class ChangeLine:
    """A change as the diff page shows it, in the table's language."""

    change: versions.Change
    items: list[tuple[str, bool]]
    party: str = ""
    old: str = ""
    new: str = ""


DIFF_FORMATS = {"md": "text/markdown; charset=utf-8", "xlsx": EXPORT_FORMATS["xlsx"]}
LIVE = "live"


def _change_line(change: versions.Change, lang: str) -> ChangeLine:
    line = ChangeLine(change, [])
    if change.items and change.kind not in ("contact_changed", "name_changed"):
        line.items = [(versions._item_text(item, lang), bool(item.get("sensitive"))) for item in change.items]
    elif change.field:
        name = change.field.split(".")[-1]
        line.old = versions._value_text(name, change.old, lang)
        line.new = versions._value_text(name, change.new, lang)
        if change.items:
            line.party = versions._item_text(change.items[0], lang)
    return line


def _by_recipient(changes: list[versions.Change], lang: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for change in changes:
        group = groups.setdefault(
            change.key,
            {
                "service": (change.service_en or change.service) if lang == "en" else change.service,
                "recipient": (change.recipient_en or change.recipient) if lang == "en" else change.recipient,
                "lines": [],
                "reconsent": False,
                "sensitive": False,
            },
        )
        group["lines"].append(_change_line(change, lang))
        group["reconsent"] = group["reconsent"] or change.reconsent
        group["sensitive"] = group["sensitive"] or change.sensitive
    return list(groups.values())


class DisclosureDiffView(View):
    """What changed between two versions, or since a version (``to=live``: staff only), with downloads."""

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        controller = disclosure_controller(request, code)
        if controller is None:
            return redirect_to_login(request.get_full_path())
        staff = can_read_register(request)
        published = list(selectors.version_list(controller))
        lang = table_language(request)
        context: dict[str, Any] = {"controller": controller, "lang": lang, "staff_view": staff}
        if not published:
            return render(request, "processors/diff.html", {**context, "diff": None})
        to_ref = request.GET.get("to") or (LIVE if staff else version_key(published[0]))
        if to_ref == LIVE:
            if not staff:
                raise PermissionDenied
            new: Any = None
            newer_index = -1
        else:
            new = version_find(controller, to_ref, published)
            newer_index = published.index(new)
        from_ref = request.GET.get("from")
        if from_ref:
            old = version_find(controller, from_ref, published)
        elif newer_index + 1 < len(published):
            old = published[newer_index + 1]
        else:
            old = new  # the first version has nothing before it: compare it with itself
        diff = versions.version_diff(old, new if new is not None else versions.snapshot_live(controller))
        fmt = request.GET.get("format")
        if fmt:
            return _diff_response(diff, controller=controller, fmt=fmt, lang=lang)
        material = diff.material
        context.update(
            diff=diff,
            old=old,
            new=new,
            from_key=version_key(old),
            to_key=version_key(new) if new is not None else LIVE,
            versions=[(version_key(version), version) for version in published],
            recipients_added=_by_recipient(
                sorted(diff.recipients_added, key=lambda change: not change.sensitive), lang
            ),
            recipients_removed=_by_recipient(diff.recipients_removed, lang),
            material=_by_recipient([change for change in material if change.kind != "recipient_added"], lang),
            reductions=_by_recipient(
                [change for change in diff.reductions if change.kind != "recipient_removed"], lang
            ),
            minor=_by_recipient(diff.minor, lang),
            counts={
                impact: sum(change.impact == impact for change in diff.changes) for impact in versions.IMPACTS
            },
        )
        return render(request, "processors/diff.html", context)


def _diff_response(
    diff: versions.VersionDiff, *, controller: Controller, fmt: str, lang: str
) -> HttpResponse:
    if fmt not in DIFF_FORMATS:
        raise Http404(_("Unknown download format."))
    response = HttpResponse(content_type=DIFF_FORMATS[fmt])
    sides = "-".join(
        slugify(ref.label if not ref.live else LIVE) or "version" for ref in (diff.old, diff.new)
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{controller.code}-changes-{sides}-{lang}.{fmt}"'
    )
    if fmt == "md":
        response.write(versions.diff_markdown(diff, lang).encode("utf-8"))
    else:
        versions.diff_xlsx(diff, response, lang)
    return response


# --- Explorer -------------------------------------------------------------------------------------


class ExplorerView(RegisterReaderMixin, FilterView):
    """The operations list with the API's filters (OperationFilterSet), sortable, paginated, exportable."""

    filterset_class = OperationFilterSet
    template_name = "processors/explorer.html"
    paginate_by = 25

    def get_queryset(self):
        return selectors.operation_list()

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
        "processor_choices": Processor.objects.order_by("name_key").only("pk", "name_zh", "name_en"),
        "service_choices": Service.objects.select_related("controller").order_by("controller__code", "name"),
        "controller_choices": Controller.objects.order_by("code"),
        "relationship_choices": Relationship.choices,
        "status_choices": OperationStatus.choices,
        "values": {name: request.GET.getlist(name) for name in shown},
        "hidden_parameters": [(name, value) for name, value in parameters if name not in shown],
        "query": urlencode(parameters),
        "filtered": any(name != "ordering" for name, _value in parameters),
    }


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
            operations = export.operations_for_export(params)
        except export.ExportFilterError as error:
            for errors in error.errors.values():
                for message in errors:
                    messages.error(request, message)
            return redirect(f"{reverse('processors:explorer')}?{urlencode(filter_parameters(request))}")
        return _spreadsheet_response(operations, fmt=fmt, lang=table_language(request), name="operations")


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
        operations = list(selectors.processor_operations(processor))
        services: dict[int, Service] = {}
        for operation in operations:
            services.setdefault(operation.service_id, operation.service)
        history = processor_history(processor, limit=PROCESSOR_HISTORY)
        return {
            **super().get_context_data(**kwargs),
            "processor": processor,
            "operations": operations,
            "receipts": selectors.receipts_by_purpose(operations),
            "services": list(services.values()),
            "findings": findings(processor=processor),
            "history": history,
            "history_truncated": len(history) >= PROCESSOR_HISTORY,
        }


# The processor page shows the latest changes; the administration keeps the whole history.
PROCESSOR_HISTORY = 50


class CategoryView(RegisterReaderMixin, TemplateView):
    """A data category: its place in the tree, aliases, sensitivity and every recipient."""

    permission_required = ("processors.view_datacategory", "processors.view_operation")
    template_name = "processors/category_detail.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        category = DataCategory.objects.filter(code=kwargs["code"]).prefetch_related("aliases").first()
        if category is None:
            # A name or an alias (/categories/身份证号/) leads to the category's canonical address.
            resolved = selectors.category_resolve(kwargs["code"])
            if resolved is None:
                raise Http404(_("No such data category."))
            return redirect("processors:category", code=resolved.code)
        self.category = category
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        category = self.category
        recipients = selectors.category_recipients(category)
        return {
            **super().get_context_data(**kwargs),
            "category": category,
            "lineage": selectors.category_lineage(category),
            "children": category.children.order_by("position", "code"),
            "recipients": recipients,
            "operation_count": sum(len(recipient.operations) for recipient in recipients),
        }


class CategoryIndexView(RegisterReaderMixin, TemplateView):
    """The category tree; ?q= finds a category by code, name or alias and goes to it."""

    permission_required = ("processors.view_datacategory", "processors.view_operation")
    template_name = "processors/category_index.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        query = request.GET.get("q", "").strip()
        if query:
            category = selectors.category_resolve(query)
            if category is not None:
                return redirect("processors:category", code=category.code)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        query = self.request.GET.get("q", "").strip()
        suggestions: list[str] = []
        if query:
            suggestions = Taxonomy.load().suggest_categories(query)
        counts = {
            row["category__code"]: row["operations"] for row in selectors.categories_most_received(limit=None)
        }
        return {
            **super().get_context_data(**kwargs),
            "query": query,
            "suggestions": suggestions,
            "category_tree": _category_tree(set(), counts),
        }


class MatrixView(RegisterReaderMixin, TemplateView):
    """Processors × categories: how many operations send each category to each processor."""

    template_name = "processors/matrix.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        filterset = OperationFilterSet(
            filter_data(self.request), queryset=Operation.objects.all(), request=self.request
        )
        valid = not filterset.is_bound or filterset.is_valid()
        return {
            **super().get_context_data(**kwargs),
            **filter_form_context(self.request, filterset),
            "grid": selectors.matrix_grid(filterset.qs) if valid else None,
        }


# --- Findings, deletion notices -------------------------------------------------------------------


class FindingsView(RegisterReaderMixin, TemplateView):
    """What breaks the rules, worst first, filtered by severity and controller."""

    template_name = "processors/findings.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        form = FindingsFilterForm(filter_data(self.request))
        cleaned = form.cleaned_data if form.is_valid() else {}
        found = findings(controller=cleaned.get("controller"))
        severity = cleaned.get("severity")
        return {
            **super().get_context_data(**kwargs),
            "form": form,
            "by_severity": findings_by_severity(found),
            "total": len(found),
            "findings": [finding for finding in found if finding.severity == severity] if severity else found,
            "severity": severity,
            "controllers": form.fields["controller"].queryset,
        }


class DeletionNoticeView(RegisterReaderMixin, TemplateView):
    """Who holds these categories of data and must be told to delete them; as CSV for a mailing."""

    template_name = "processors/deletion_notice.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = DeletionNoticeForm(filter_data(request))
        notice = error = None
        if form.is_bound and form.is_valid():
            try:
                notice = deletion_notice(
                    form.cleaned_data["categories"],
                    form.cleaned_data["controller"],
                    include_retired=not form.cleaned_data["active_only"],
                )
            except NoticeError as failure:
                error = failure
        lang = table_language(request)
        if notice is not None and request.GET.get("format") == "csv":
            response = HttpResponse(content_type=EXPORT_FORMATS["csv"])
            response.headers["Content-Disposition"] = f'attachment; filename="deletion-notice-{lang}.csv"'
            deletion_notice_csv(notice, response, lang)
            return response
        context = self.get_context_data(form=form, notice=notice, error=error, lang=lang, **kwargs)
        return self.render_to_response(context, status=400 if error is not None else 200)


# --- Import ---------------------------------------------------------------------------------------


class ImportMixin(PermissionRequiredMixin):
    permission_required: Any = "processors.add_operation"


class ImportUploadView(ImportMixin, View):
    """Step 1: a file or pasted text, and the controller it belongs to."""

    template_name = "processors/import_upload.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": UploadForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                upload = form.store(request.user)
            except uploads.UploadError as error:
                form.add_error(None, error.message)
            else:
                url = reverse("processors:import-preview", args=[upload.token])
                # The upload script follows with its own navigation, so the preview runs once.
                if request.headers.get("Accept") == "application/json":
                    return JsonResponse({"next": url})
                return redirect(url)
        return render(request, self.template_name, {"form": form}, status=400)


class ImportPreviewView(ImportMixin, View):
    """Step 2: a dry run — counts, located problems, unmapped items; unknown headers get mapped here."""

    template_name = "processors/import_preview.html"

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            preview = uploads.upload_preview(token, request.user)
        except uploads.UploadError as error:
            messages.error(request, error.message)
            return redirect("processors:import")
        return render(request, self.template_name, _preview_context(preview))

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            preview = uploads.upload_preview(token, request.user)
            form = HeaderMapForm(
                request.POST, headers=preview.unknown_headers, initial=preview.upload.header_map
            )
            if not form.is_valid():
                return render(request, self.template_name, _preview_context(preview, form), status=400)
            uploads.upload_set_header_map(
                token, request.user, header_map={**preview.upload.header_map, **form.header_map()}
            )
        except uploads.UploadError as error:
            messages.error(request, error.message)
            return redirect("processors:import")
        return redirect("processors:import-preview", token=token)


def _preview_context(preview: uploads.UploadPreview, form: HeaderMapForm | None = None) -> dict[str, Any]:
    report = preview.report
    return {
        "preview": preview,
        "report": report,
        "upload": preview.upload,
        "header_form": form
        or HeaderMapForm(headers=preview.unknown_headers, initial=preview.upload.header_map),
        "problems": [problem for problem in report.problems if problem.code != "item_unmapped"],
        "unmapped_items": report.unmapped_items,
        "controller": Controller.objects.filter(code=preview.upload.controller_code).first(),
    }


class ImportConfirmView(ImportMixin, View):
    """Step 3: the real import; on success the result page, on new errors the preview again."""

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            report = uploads.upload_confirm(token, request.user)
        except uploads.UploadError as error:
            messages.error(request, error.message)
            return redirect("processors:import")
        if not report.committed:
            messages.error(request, _("The import found errors and saved nothing; see below."))
            return redirect("processors:import-preview", token=token)
        request.session["import_result"] = report.to_dict()
        return redirect("processors:import-result")


class ImportDiscardView(ImportMixin, View):
    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        with contextlib.suppress(uploads.UploadError):  # a malformed token: nothing to discard
            uploads.upload_discard(token, request.user)
        messages.info(request, _("The upload was discarded; nothing was imported."))
        return redirect("processors:import")


class ImportResultView(ImportMixin, TemplateView):
    template_name = "processors/import_result.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        result = self.request.session.get("import_result")
        controller = Controller.objects.filter(code=result["controller"]).first() if result else None
        return {**super().get_context_data(**kwargs), "result": result, "controller": controller}
