"""The import's pages: upload → preview (dry run, header map) → confirm → result, for site and admin.

One set of views and one set of templates (``templates/processors/import/``) serve both places. What
differs between them is a frame (``ImportFrame``): the URL names of the steps, the base template the
pages extend, the channel the import records, the context the base needs, and where a finished import
goes. The site mounts the views with ``SITE_FRAME`` (``processors/urls.py``); the admin mounts the same
views with its own frame, in its look (``processors/admin/tools.py``). The work itself — storage,
dry run, import — is ``processors.spreadsheets.uploads``.
"""

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from processors import jobs, selectors, services
from processors.forms import (
    DefaultServiceForm,
    HeaderMapForm,
    TableChoiceForm,
    TableVersionForm,
    UploadForm,
    may_create_controller,
)
from processors.models import Channel, Controller, ControllerRole
from processors.spreadsheets import uploads
from processors.taxonomy import Taxonomy

if TYPE_CHECKING:
    from processors.spreadsheets.report import ImportReport


@dataclass(frozen=True)
class ImportFrame:
    """Where the flow is shown: the steps' URL names, the base template, and the import's channel."""

    upload_url: str
    preview_url: str
    confirm_url: str
    discard_url: str
    base_template: str
    channel: str = Channel.BROWSER
    # The page that follows a confirmed import's background job (processors.jobs) until it has finished.
    job_url: str = "processors:import-job"

    def context(self, request: HttpRequest) -> dict[str, Any]:
        """What the base template needs besides the step's own context."""
        return {}

    def finished(self, request: HttpRequest, report: "ImportReport") -> HttpResponse:
        """Where a committed import goes: the site's result page, kept in the session for one look."""
        request.session["import_result"] = report.to_dict()
        return redirect("processors:import-result")


SITE_FRAME = ImportFrame(
    upload_url="processors:import",
    preview_url="processors:import-preview",
    confirm_url="processors:import-confirm",
    discard_url="processors:import-discard",
    base_template="processors/import/site_page.html",
)


class ImportStepView(PermissionRequiredMixin, View):
    """One step of the flow: permission, frame and rendering shared by every step."""

    permission_required: Any = "processors.add_operation"
    frame: ImportFrame = SITE_FRAME
    template_name = ""
    title: Any = ""

    def render(self, context: dict[str, Any], status: int = 200) -> HttpResponse:
        context = {
            **self.frame.context(self.request),
            "frame": self.frame,
            "base_template": self.frame.base_template,
            "title": self.title,
            **context,
        }
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def back_to_upload(self, error: uploads.UploadError) -> HttpResponse:
        messages.error(self.request, error.message)
        return redirect(self.frame.upload_url)

    def check_editable(self, token: str) -> uploads.Upload:
        """The upload, refused as a vanished one when the user may not (or no longer) edit its controller.

        An upload for a controller still to be created needs the right to create one, and its code free.
        """
        user = self.request.user
        upload = uploads.upload_get(token, user)
        if upload.new_controller:
            if not may_create_controller(user):
                raise uploads.UploadError(gettext("You may no longer create controllers."), code="controller")
            if Controller.objects.filter(code=upload.controller_code).exists():
                raise uploads.UploadError(
                    gettext("The code %(code)s was taken meanwhile; upload the file again with another code.")
                    % {"code": upload.controller_code},
                    code="controller",
                )
            return upload
        editable = selectors.controllers_for(user, role=ControllerRole.EDITOR)
        if not editable.filter(code=upload.controller_code).exists():
            raise uploads.UploadError(
                gettext("The controller %(code)s no longer exists.") % {"code": upload.controller_code},
                code="controller",
            )
        return upload

    def create_pending_controller(self, token: str) -> None:
        """Create the upload's new controller, its creator its admin, now that the import is confirmed."""
        upload = uploads.upload_get(token, self.request.user)
        if upload.new_controller:
            pending_controller_create(upload, self.request.user)
            uploads.upload_set_choices(token, self.request.user, new_controller={})


def pending_controller_create(upload: uploads.Upload, user: Any) -> Controller:
    """The controller an upload asked for, created with the user as its admin (else UploadError)."""
    try:
        with transaction.atomic():
            controller = services.controller_create(**upload.new_controller)
            services.controller_membership_grant(controller=controller, user=user, role=ControllerRole.ADMIN)
    except (ValidationError, IntegrityError) as error:
        message = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
        raise uploads.UploadError(message, code="controller") from None
    return controller


def preview_dry_run(upload: uploads.Upload, user: Any, *, channel: str) -> uploads.UploadPreview:
    """The upload's dry run; into a controller still to be created, inside a transaction rolled back.

    Nothing of such a preview stays, not even its import record (which would name a controller that
    does not exist), as with the command's ``--dry-run --create-controller``.
    """
    if not upload.new_controller:
        return uploads.upload_preview(upload.token, user, channel=channel)
    with transaction.atomic():
        pending_controller_create(upload, user)
        preview = uploads.upload_preview(upload.token, user, channel=channel)
        transaction.set_rollback(True)
    return preview


class ImportUploadView(ImportStepView):
    """Step 1: a file or pasted text, and the controller it belongs to (an existing one, or a new one)."""

    template_name = "processors/import/upload.html"
    title = _("Import a third-party table")

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render({"form": UploadForm(user=request.user)})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = UploadForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                upload = form.store(request.user)
            except uploads.UploadError as error:
                form.add_error(None, error.message)
            else:
                url = reverse(self.frame.preview_url, args=[upload.token])
                # The upload script follows with its own navigation, so the preview runs once.
                if request.headers.get("Accept") == "application/json":
                    return JsonResponse({"next": url})
                return redirect(url)
        return self.render({"form": form}, status=400)


class ImportPreviewView(ImportStepView):
    """Step 2: a dry run — counts, located problems, unmapped items — and the person's choices.

    A POST makes one choice, named by its ``step``: ``table`` (which of a document's tables), ``version``
    (whether rows matching operations of another date are a new version of the table), ``service`` (the
    service of a table without a service column) or, by default, the header map; the page then runs the
    dry run again with it.
    """

    template_name = "processors/import/preview.html"
    title = _("Check before importing")

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            upload = self.check_editable(token)
            preview = preview_dry_run(upload, request.user, channel=self.frame.channel)
        except uploads.UploadError as error:
            return self.back_to_upload(error)
        return self.render(preview_context(preview))

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        user = request.user
        try:
            upload = self.check_editable(token)
            preview = preview_dry_run(upload, user, channel=self.frame.channel)
            step = request.POST.get("step", "map")
            if step == "table":
                form = TableChoiceForm(request.POST, tables=preview.report.tables)
                if not form.is_valid():
                    return self.render(preview_context(preview, table_form=form), status=400)
                table = form.cleaned_data["table"]
                if table != preview.report.table:
                    # The header map named another table's headers.
                    uploads.upload_set_header_map(token, user, header_map={})
                    uploads.upload_set_choices(token, user, table=table)
            elif step == "version":
                form = TableVersionForm(request.POST)
                if not form.is_valid():
                    return self.render(preview_context(preview, version_form=form), status=400)
                date = form.cleaned_data["effective_from"]
                uploads.upload_set_choices(token, user, effective_from=date.isoformat() if date else "")
            elif step == "service":
                form = DefaultServiceForm(request.POST)
                if not form.is_valid():
                    return self.render(preview_context(preview, service_form=form), status=400)
                uploads.upload_set_choices(token, user, default_service=form.cleaned_data["default_service"])
            else:
                form = header_map_form(preview, request.POST)
                if not form.is_valid():
                    return self.render(preview_context(preview, header_form=form), status=400)
                uploads.upload_set_header_map(
                    token, user, header_map={**preview.upload.header_map, **form.header_map()}
                )
        except uploads.UploadError as error:
            return self.back_to_upload(error)
        return redirect(self.frame.preview_url, token=token)


def header_map_form(preview: uploads.UploadPreview, data: Any = None) -> HeaderMapForm:
    """The mapping step: the unknown headers (content proposals preselected), then those mapped already."""
    unknown = preview.unknown_headers
    mapped = [header for header in preview.upload.header_map if header not in unknown]
    return HeaderMapForm(
        data,
        headers=[*unknown, *mapped],
        initial=preview.upload.header_map,
        proposals=preview.report.header_proposals,
    )


def table_choices(report: "ImportReport") -> list[dict[str, Any]]:
    """A document's tables for the picker: numbered from 1, the chosen and the likeliest marked."""
    tables = report.tables
    likeliest = max(tables, key=lambda table: table["score"])["index"] if tables else None
    return [
        {
            **table,
            "number": position,
            "chosen": table["index"] == report.table,
            "likeliest": table["index"] == likeliest,
        }
        for position, table in enumerate(tables, start=1)
    ]


def unmapped_item_rows(report: "ImportReport") -> list[dict[str, Any]]:
    """The unmapped items once each (where first seen, how many rows), with the categories suggested.

    The suggestions are the category resolver's (``Taxonomy.suggest_categories``, kept on each
    problem), shown as the categories they name, in the page's language, with their codes.
    """
    rows: dict[str, dict[str, Any]] = {}
    for problem in report.unmapped_items:
        text = problem.value or problem.message
        row = rows.setdefault(text, {"text": text, "location": problem.location, "count": 0, "texts": []})
        row["count"] += 1
        row["texts"] = row["texts"] or list(problem.suggestions)
    if not any(row["texts"] for row in rows.values()):
        return list(rows.values())
    taxonomy = Taxonomy.load_categories()
    for row in rows.values():
        codes = [taxonomy.resolve_category(text) for text in row["texts"]]
        row["categories"] = taxonomy.categories(list(dict.fromkeys(code for code in codes if code)))
    return list(rows.values())


def preview_context(
    preview: uploads.UploadPreview,
    *,
    header_form: HeaderMapForm | None = None,
    table_form: TableChoiceForm | None = None,
    version_form: TableVersionForm | None = None,
    service_form: DefaultServiceForm | None = None,
) -> dict[str, Any]:
    """The preview page's context: the report split into problems and unmapped items, and the choices."""
    report, upload = preview.report, preview.upload
    # Rows that matched operations of another date raise the question; an answered one stays changeable.
    asks_version = bool(report.matched_other_date or upload.effective_from)
    problems = [
        problem
        for problem in report.problems
        if problem.code != "item_unmapped" and not (asks_version and problem.code == "dates_differ")
    ]
    if version_form is None:
        answer = TableVersionForm.NEW_VERSION if upload.effective_from else TableVersionForm.UPDATE
        version_form = TableVersionForm(initial={"version": answer, "effective_from": upload.effective_date})
    header_form = header_form or header_map_form(preview)
    service_form = service_form or DefaultServiceForm(initial={"default_service": report.default_service})
    return {
        "preview": preview,
        "report": report,
        "upload": upload,
        "header_form": header_form,
        "header_proposed": [field for field in header_form if field.name in header_form.proposed],
        "tables": table_choices(report) if len(report.tables) > 1 else [],
        "table_form": table_form,
        "asks_version": asks_version,
        "version_form": version_form,
        "service_form": service_form,
        "problems": problems,
        "problems_have_suggestions": any(problem.suggestions for problem in problems),
        "unmapped_items": unmapped_item_rows(report),
        "controller": Controller.objects.filter(code=upload.controller_code).first()
        if not upload.new_controller
        else None,
    }


class ImportConfirmView(ImportStepView):
    """Step 3: the real import; on success the frame's result, on new errors the preview again."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        # Only a POST imports; an address typed or reloaded goes back to the check.
        return redirect(self.frame.preview_url, token=token)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            self.check_editable(token)
            self.create_pending_controller(token)
            record = jobs.import_job_start(token, request.user, channel=self.frame.channel)
        except uploads.UploadError as error:
            return self.back_to_upload(error)
        if record.result == record.Result.IMPORTED:  # a job run in process has finished already
            return self.frame.finished(request, jobs.import_job_report(record))
        return redirect(self.frame.job_url, pk=record.pk)


class ImportJobView(ImportStepView):
    """Step 3 while the import's job runs: rows done of the total, kept current by import_progress.js.

    A finished job's page is its outcome: a committed one goes where the frame sends finished imports,
    a failed one shows its located problems (nothing was written).
    """

    template_name = "processors/import/progress.html"
    title = _("Importing")

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        state = jobs.import_job_get(request.user, pk)
        if state is None:
            raise Http404
        if state.committed:
            return self.frame.finished(request, jobs.import_job_report(state.record))
        return self.render(
            {
                "job": state,
                "report": jobs.import_job_report(state.record) if state.finished else None,
                "status_url": reverse("processors:import-job-status", args=[pk]),
                "page_url": reverse(self.frame.job_url, args=[pk]),
            }
        )


class ImportJobStatusView(ImportStepView):
    """A job's state as JSON, for the progress page to poll (the same permission as the page)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        state = jobs.import_job_get(request.user, pk)
        if state is None:
            return JsonResponse({"detail": gettext("Not found.")}, status=404)
        response = JsonResponse(state.to_dict())
        response["Cache-Control"] = "no-store"
        return response


class ImportDiscardView(ImportStepView):
    """Forget an upload; nothing is imported."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        return redirect(self.frame.upload_url)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        with contextlib.suppress(uploads.UploadError):  # a malformed token: nothing to discard
            uploads.upload_discard(token, request.user)
        messages.info(request, gettext("The upload was discarded; nothing was imported."))
        return redirect(self.frame.upload_url)


class ImportResultView(ImportStepView):
    """The site's last step: what the import did, from the session, with links onwards."""

    template_name = "processors/import/result.html"
    title = _("Import finished")

    def get(self, request: HttpRequest) -> HttpResponse:
        result = request.session.get("import_result")
        visible = selectors.controllers_for(request.user)
        controller = visible.filter(code=result["controller"]).first() if result else None
        return self.render({"result": result, "controller": controller})
