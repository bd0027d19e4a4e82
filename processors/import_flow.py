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
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from processors import selectors
from processors.forms import HeaderMapForm, UploadForm
from processors.models import Channel, Controller, ControllerRole
from processors.spreadsheets import uploads

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

    def check_editable(self, token: str) -> None:
        """Refuse an upload whose controller the user may not (or no longer) edit, as a vanished one."""
        upload = uploads.upload_get(token, self.request.user)
        editable = selectors.controllers_for(self.request.user, role=ControllerRole.EDITOR)
        if not editable.filter(code=upload.controller_code).exists():
            raise uploads.UploadError(
                gettext("The controller %(code)s no longer exists.") % {"code": upload.controller_code},
                code="controller",
            )


class ImportUploadView(ImportStepView):
    """Step 1: a file or pasted text, and the controller it belongs to."""

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
    """Step 2: a dry run — counts, located problems, unmapped items; unknown headers get mapped here."""

    template_name = "processors/import/preview.html"
    title = _("Check before importing")

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            self.check_editable(token)
            preview = uploads.upload_preview(token, request.user, channel=self.frame.channel)
        except uploads.UploadError as error:
            return self.back_to_upload(error)
        return self.render(preview_context(preview))

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            self.check_editable(token)
            preview = uploads.upload_preview(token, request.user, channel=self.frame.channel)
            form = HeaderMapForm(
                request.POST, headers=preview.unknown_headers, initial=preview.upload.header_map
            )
            if not form.is_valid():
                return self.render(preview_context(preview, form), status=400)
            uploads.upload_set_header_map(
                token, request.user, header_map={**preview.upload.header_map, **form.header_map()}
            )
        except uploads.UploadError as error:
            return self.back_to_upload(error)
        return redirect(self.frame.preview_url, token=token)


def preview_context(preview: uploads.UploadPreview, form: HeaderMapForm | None = None) -> dict[str, Any]:
    """The preview page's context: the report split into problems and unmapped items, and the mapping form."""
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


class ImportConfirmView(ImportStepView):
    """Step 3: the real import; on success the frame's result, on new errors the preview again."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        # Only a POST imports; an address typed or reloaded goes back to the check.
        return redirect(self.frame.preview_url, token=token)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            self.check_editable(token)
            report = uploads.upload_confirm(token, request.user, channel=self.frame.channel)
        except uploads.UploadError as error:
            return self.back_to_upload(error)
        if not report.committed:
            messages.error(request, gettext("The import found errors and saved nothing; see below."))
            return redirect(self.frame.preview_url, token=token)
        return self.frame.finished(request, report)


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
