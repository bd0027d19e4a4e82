"""The admin's tool pages: findings, deletion notice, import, export, publishing a version.

Each page is a thin wrapper: it checks the permission, reads the request through a form of
``processors.forms``, calls the function that does the work (``findings``, ``notices``, the import
flow of ``processors.import_flow``, ``export``, ``services``) and renders it in the admin's look.
A ModelAdmin lists the pages it carries in ``tool_pages``; ``ToolPage.urlpattern`` routes them under
that admin's URLs, wrapped by ``admin_site.admin_view`` (staff login, CSRF, no caching).
"""

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from processors import notices, selectors, services
from processors.disclosure import diff as disclosure_diff
from processors.disclosure import documents, versions
from processors.disclosure.page import publish_context
from processors.findings import (
    RULES_BY_CODE,
    Finding,
    Severity,
    stored_findings_for_display,
    stored_findings_ordered,
    stored_findings_summary,
    stored_findings_summary_cached,
    stored_findings_visible_to,
)
from processors.findings import controllers_q as findings_controllers_q
from processors.forms import DeletionNoticeForm, FindingsFilterForm, PublishVersionForm
from processors.import_flow import (
    ImportConfirmView,
    ImportDiscardView,
    ImportFrame,
    ImportJobView,
    ImportPreviewView,
    ImportUploadView,
)
from processors.models import Channel, ControllerRole, FindingState, PublishedVersion
from processors.register_cache import RegisterFigures, reader_scope
from processors.spreadsheets import export

if TYPE_CHECKING:
    from processors.spreadsheets.report import ImportReport

EXPORT_CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
# What the export button and actions offer: (kind, language) → file format.
EXPORT_KINDS = ("xlsx", "csv", "workbook")
EXPORT_LANGUAGES = ("zh", "en")


def current_lang() -> str:
    """The admin's language as a table language: zh or en."""
    return "en" if (get_language() or "").startswith("en") else "zh"


def admin_context(model_admin: admin.ModelAdmin, request: HttpRequest, **context: Any) -> dict[str, Any]:
    """What the admin's base templates need for a page under ``model_admin``: header and breadcrumbs."""
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "subtitle": None,
        **context,
    }


# --- Routing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolPage:
    """A page under a model's admin URLs: its route, its URL name (``admin:<name>``) and its view.

    The view is a function ``view(model_admin, request, **kwargs)``, or a step of the shared import
    flow (a view class of ``processors.import_flow``), which is shown in the admin's frame.
    """

    route: str
    name: str
    view: Callable[..., HttpResponse] | type

    def urlpattern(self, model_admin: admin.ModelAdmin) -> URLPattern:
        """The page's URL pattern under ``model_admin``, behind the admin's login."""
        if isinstance(self.view, type):
            view = self.view.as_view(frame=AdminImportFrame(model_admin=model_admin))
        else:
            view = functools.partial(self.view, model_admin)
        return path(self.route, model_admin.admin_site.admin_view(view), name=self.name)


# --- Import ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminImportFrame(ImportFrame):
    """The shared import pages in the admin: its base template and context; the import is the admin's."""

    upload_url: str = "admin:processors_operation_import"
    preview_url: str = "admin:processors_operation_import_preview"
    confirm_url: str = "admin:processors_operation_import_confirm"
    discard_url: str = "admin:processors_operation_import_discard"
    job_url: str = "admin:processors_operation_import_job"
    base_template: str = "admin/processors/import_page.html"
    channel: str = Channel.ADMIN
    model_admin: admin.ModelAdmin | None = None

    def context(self, request: HttpRequest) -> dict[str, Any]:
        """The admin's header and breadcrumbs; the step view adds its own title."""
        return admin_context(self.model_admin, request)

    def finished(self, request: HttpRequest, report: "ImportReport") -> HttpResponse:
        """Back to the operations of the controller just imported, with what the import did."""
        counts = report.counts["operations"]
        message = gettext(
            "Imported %(file)s: %(created)d operations created, %(changed)d changed, %(unchanged)d unchanged."
        ) % {
            "file": report.file_name,
            "created": counts.created,
            "changed": counts.changed,
            "unchanged": counts.unchanged,
        }
        messages.success(request, message)
        changelist = reverse("admin:processors_operation_changelist")
        return HttpResponseRedirect(f"{changelist}?controller={report.controller}")


# --- Export ---------------------------------------------------------------------------------------


def spreadsheet_download(operations, *, kind: str, lang: str) -> HttpResponse:
    """The disclosure table (xlsx/csv, zh/en) or the full workbook of these operations, as an attachment."""
    fmt = "xlsx" if kind == "workbook" else kind
    stream = io.BytesIO()
    if kind == "workbook":
        export.export_workbook(operations, stream=stream)
        name = "register-workbook.xlsx"
    else:
        export.export_disclosure(operations, stream=stream, fmt=fmt, lang=lang)
        name = f"register-disclosure-{lang}.{fmt}"
    response = HttpResponse(stream.getvalue(), content_type=EXPORT_CONTENT_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def export_view(model_admin: admin.ModelAdmin, request: HttpRequest, kind: str, lang: str) -> HttpResponse:
    """Export what I see: the changelist's own filters, search and ordering, read from the same query."""
    if kind not in EXPORT_KINDS or lang not in EXPORT_LANGUAGES:
        raise Http404
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        return redirect(reverse("admin:processors_operation_changelist") + "?e=1")
    return spreadsheet_download(changelist.get_queryset(request), kind=kind, lang=lang)


@admin.action(description=_("Export selected: disclosure table (xlsx, Chinese)"), permissions=["view"])
def export_disclosure_xlsx_zh(model_admin, request, queryset):
    return spreadsheet_download(queryset, kind="xlsx", lang="zh")


@admin.action(description=_("Export selected: disclosure table (xlsx, English)"), permissions=["view"])
def export_disclosure_xlsx_en(model_admin, request, queryset):
    return spreadsheet_download(queryset, kind="xlsx", lang="en")


@admin.action(description=_("Export selected: disclosure table (csv, Chinese)"), permissions=["view"])
def export_disclosure_csv_zh(model_admin, request, queryset):
    return spreadsheet_download(queryset, kind="csv", lang="zh")


@admin.action(description=_("Export selected: full workbook (xlsx)"), permissions=["view"])
def export_full_workbook(model_admin, request, queryset):
    return spreadsheet_download(queryset, kind="workbook", lang="zh")


EXPORT_ACTIONS = (
    export_disclosure_xlsx_zh,
    export_disclosure_xlsx_en,
    export_disclosure_csv_zh,
    export_full_workbook,
)


# --- Findings and deletion notices ----------------------------------------------------------------


def findings_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """The open stored findings of the register (or one controller), worst first, linked to their
    subjects; a page of them (the findings changelist acts on them)."""
    if not request.user.has_perm("processors.view_operation"):
        raise PermissionDenied
    form = FindingsFilterForm(request.GET or None)
    form.fields["controller"].queryset = selectors.controllers_for(request.user).order_by("code")
    stored = stored_findings_visible_to(request.user).filter(state=FindingState.OPEN)
    if form.is_valid() or not request.GET:
        cleaned = form.cleaned_data if form.is_bound else {}
        if cleaned.get("controller"):
            stored = stored.filter(findings_controllers_q([cleaned["controller"].pk]))
        # Counted over every severity, once per register revision (decision 36).
        counted_by = request.GET.copy()
        counted_by.pop("severity", None)
        counts = stored_findings_summary_cached(
            stored, RegisterFigures(reader_scope(request.user)), counted_by
        )
        if cleaned.get("severity"):
            stored = stored.filter(severity=cleaned["severity"])
    else:
        stored, counts = stored.none(), stored_findings_summary(stored.none())
    page = Paginator(stored_findings_ordered(stored), TOOL_FINDINGS_PAGE).get_page(request.GET.get("page"))
    rows = []
    for row in stored_findings_for_display(page.object_list):
        model = "operation" if row.operation_id else "processor"
        subject_id = row.operation_id or row.processor_id
        computed = Finding(
            rule=row.rule_info or RULES_BY_CODE[row.rule],
            subject_model=f"processors.{model}",
            subject_id=subject_id,
            subject_label=row.subject_label,
            detail=row.message,
        )
        rows.append(
            {
                "finding": computed,
                "stored": row,
                "severity_label": Severity(row.severity).label,
                "url": reverse(f"admin:processors_{model}_change", args=[subject_id]),
            }
        )
    context = admin_context(
        model_admin,
        request,
        title=gettext("Compliance findings"),
        form=form,
        rows=rows,
        page_obj=page,
        counts=[(severity.label, severity.value, counts[severity.value]) for severity in Severity],
    )
    return TemplateResponse(request, "admin/processors/findings.html", context)


# The tool page lists a page of open findings; the findings changelist filters, pages and acts on all.
TOOL_FINDINGS_PAGE = 100


def notice_error_messages(error: notices.NoticeError) -> list[str]:
    """A notice's refusal as form errors: the message, then one "maybe …" line per unknown name."""
    hints = [
        gettext("“%(value)s”: maybe %(suggestions)s")
        % {"value": value, "suggestions": gettext(", ").join(suggestions)}
        for value, suggestions in error.suggestions.items()
        if suggestions
    ]
    return [error.message, *hints]


# Recipients listed per page of the deletion-notice tool.
NOTICE_RECIPIENTS_PER_PAGE = 50


def deletion_notice_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Who must be told to delete some categories of data, with their contacts, on screen or as CSV."""
    if not request.user.has_perm("processors.view_processor"):
        raise PermissionDenied
    form = DeletionNoticeForm(request.GET or None)
    form.fields["controller"].queryset = selectors.controllers_for(request.user).order_by("code")
    notice = None
    if form.is_valid():
        try:
            notice = notices.deletion_notice(
                form.cleaned_data["categories"],
                selectors.controller_scope(request.user, form.cleaned_data["controller"]),
                include_retired=not form.cleaned_data["active_only"],
            )
        except notices.NoticeError as error:
            form.add_error("categories", notice_error_messages(error))
        except selectors.ControllerScopeRequired:
            form.add_error("controller", gettext("Choose the controller whose recipients to list."))
    if notice is not None and request.GET.get("format") == "csv":
        response = HttpResponse(content_type=EXPORT_CONTENT_TYPES["csv"])
        response.headers["Content-Disposition"] = 'attachment; filename="deletion-notice.csv"'
        notices.deletion_notice_csv(notice, response, current_lang())
        return response
    query = request.GET.copy()
    query.pop("page", None)
    query["format"] = "csv"
    page_obj = recipients = None
    if notice is not None:
        # A category every row sends names every recipient: a page of them (the CSV holds them all).
        page_obj = Paginator(notice.recipients, NOTICE_RECIPIENTS_PER_PAGE).get_page(request.GET.get("page"))
        recipients = notice.with_details(list(page_obj.object_list))
    context = admin_context(
        model_admin,
        request,
        title=gettext("Deletion notice"),
        form=form,
        notice=notice,
        recipients=recipients,
        page_obj=page_obj,
        csv_query=query.urlencode(),
    )
    return TemplateResponse(request, "admin/processors/deletion_notice.html", context)


# --- Published versions ---------------------------------------------------------------------------


def publish_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Freeze a controller's active operations as a published version, after the site page's checks."""
    if not request.user.has_perm("processors.add_publishedversion"):
        raise PermissionDenied
    today = timezone.localdate()
    # Publishing needs a publisher's role in the controller; another one is an unknown choice.
    publishable = selectors.controllers_for(request.user, role=ControllerRole.PUBLISHER)
    initial = {"updated_on": today, "effective_on": today}
    if request.GET.get("controller"):
        initial["controller"] = request.GET["controller"]
    form = PublishVersionForm(request.POST or None, controllers=publishable, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.version_publish(
                controller=data["controller"],
                label=data["label"],
                updated_on=data["updated_on"],
                effective_on=data["effective_on"],
                notes=data["notes"],
                user=request.user,
                checked=True,
                override_reason=data["override_reason"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, gettext("Published %(version)s.") % {"version": version})
            return redirect("admin:processors_publishedversion_change", version.pk)
    # The checks and the diff of the chosen controller (or the only one), as the site's page shows them.
    chosen = form["controller"].value() or form.fields["controller"].initial
    controller = publishable.filter(code=chosen).first() if chosen else None
    review = publish_context(controller, current_lang()) if controller is not None else {}
    title = gettext("Publish a version")
    context = admin_context(
        model_admin,
        request,
        title=title,
        form=form,
        media=model_admin.media + form.media,
        review_controller=controller,
        lang=current_lang(),
        **review,
    )
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(request, "admin/processors/publish_version.html", context, status=status)


def previous_version(version: PublishedVersion) -> PublishedVersion | None:
    """The controller's version in force before this one."""
    # MOVE: selectors
    earlier = PublishedVersion.objects.filter(controller=version.controller_id).exclude(pk=version.pk)
    earlier = earlier.filter(
        Q(effective_on__lt=version.effective_on)
        | Q(effective_on=version.effective_on, published_at__lt=version.published_at)
    )
    return earlier.order_by("-effective_on", "-published_at", "-id").first()


def version_diffs(version: PublishedVersion) -> dict[str, disclosure_diff.VersionDiff | None]:
    """What changed since the previous version (None for the first) and what is live but unpublished."""
    previous = previous_version(version)
    # Both read what they need by index: the stored diff of two immutable versions, and the live diff
    # over the rows changed since publication (processors/disclosure/versions.py).
    return {
        "previous": versions.stored_diff(previous, version) if previous is not None else None,
        "live": versions.live_diff(version),
    }


def diff_download_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: int, against: str, fmt: str
) -> HttpResponse:
    """One of a version's diffs as a change notice (Markdown) or a workbook."""
    version = model_admin.get_object(request, str(object_id))
    if version is None or against not in {"previous", "live"} or fmt not in {"md", "xlsx"}:
        raise Http404
    if not model_admin.has_view_permission(request, version):
        raise PermissionDenied
    diff = version_diffs(version)[against]
    if diff is None:
        raise Http404
    lang = request.GET.get("lang") if request.GET.get("lang") in EXPORT_LANGUAGES else current_lang()
    name = f"{version.controller.code}-{version.label}-{against}-{lang}"
    if fmt == "md":
        response = HttpResponse(
            documents.diff_markdown(diff, lang), content_type="text/markdown; charset=utf-8"
        )
    else:
        stream = io.BytesIO()
        documents.diff_xlsx(diff, stream, lang)
        response = HttpResponse(stream.getvalue(), content_type=EXPORT_CONTENT_TYPES["xlsx"])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


# --- The pages each admin carries -----------------------------------------------------------------

OPERATION_TOOLS = (
    ToolPage("import/", "processors_operation_import", ImportUploadView),
    ToolPage("import/jobs/<int:pk>/", "processors_operation_import_job", ImportJobView),
    ToolPage("import/<str:token>/", "processors_operation_import_preview", ImportPreviewView),
    ToolPage("import/<str:token>/confirm/", "processors_operation_import_confirm", ImportConfirmView),
    ToolPage("import/<str:token>/discard/", "processors_operation_import_discard", ImportDiscardView),
    ToolPage("export/<str:kind>/<str:lang>/", "processors_operation_export", export_view),
    ToolPage("findings/", "processors_findings", findings_view),
)
PROCESSOR_TOOLS = (ToolPage("deletion-notice/", "processors_deletion_notice", deletion_notice_view),)
VERSION_TOOLS = (
    ToolPage("publish/", "processors_publishedversion_publish", publish_view),
    ToolPage(
        "<int:object_id>/diff/<str:against>.<str:fmt>", "processors_publishedversion_diff", diff_download_view
    ),
)
