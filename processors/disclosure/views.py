"""The disclosure pages: a controller's table (page, embed, downloads), its versions and their diffs.

Public when the controller says so (``Controller.disclosure_public``); otherwise readers need the
register's view permission, the same rule as the admin and the API. The page, the files and the versions
render their rows through ``disclosure.rows``, so they show one table.
"""

import tempfile
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.clickjacking import xframe_options_exempt

from processors import selectors, services
from processors.disclosure.diff import VersionDiff
from processors.disclosure.documents import diff_markdown, diff_xlsx
from processors.disclosure.page import (
    TABLE_TEMPLATE,
    diff_sections,
    disclosure_page_live,
    publish_context,
    unpublished_changes,
    version_find,
    version_in_force,
    version_key,
    version_page,
    versions_published,
    versions_visible,
)
from processors.disclosure.rows import rows_from_operations, rows_from_snapshot
from processors.disclosure.versions import live_diff, stored_diff
from processors.forms import SitePublishVersionForm, WithdrawVersionForm
from processors.models import Controller, ControllerRole, PublicVersions, PublishedVersion
from processors.spreadsheets.export import write_disclosure
from processors.views import EXPORT_FORMATS, language_code, table_language

DIFF_FORMATS = {"md": "text/markdown; charset=utf-8", "xlsx": EXPORT_FORMATS["xlsx"]}
LIVE = "live"


def disclosure_controller(request: HttpRequest, code: str) -> Controller | None:
    """The controller whose table the request may read; None when the visitor has to sign in first.

    A private controller's code and an unknown one get the same answer: anonymous visitors are sent to
    sign in, signed-in users who are not its members get a 404.
    """
    controller = Controller.objects.filter(code=code).first()
    if controller is not None and controller.disclosure_public:
        return controller
    if not request.user.is_authenticated:
        return None
    if controller is None or not selectors.controller_allows(request.user, controller):
        raise Http404(_("No such controller."))
    if not request.user.has_perm("processors.view_operation"):
        raise PermissionDenied
    return controller


def can_read_register(request: HttpRequest, controller: Controller) -> bool:
    """Whether the visitor may read this controller's register itself (drafts, unpublished changes)."""
    return request.user.has_perm("processors.view_operation") and selectors.controller_allows(
        request.user, controller
    )


def can_publish(request: HttpRequest, controller: Controller) -> bool:
    """Whether the visitor may publish (and withdraw) this controller's versions."""
    return (
        request.user.is_authenticated
        and request.user.has_perm("processors.add_publishedversion")
        and selectors.controllers_for(request.user, role=ControllerRole.PUBLISHER)
        .filter(pk=controller.pk)
        .exists()
    )


class DisclosureView(View):
    """A controller's third-party table as its privacy policy shows it (public if the controller says so).

    The table is the version in effect; before the first one takes effect, the live register (which staff
    see marked as a draft).
    """

    template_name = "processors/disclosure.html"
    # The owner's notice (private, unpublished changes) is for the page itself, not its archived versions
    # or the embed.
    shows_owner_status = True

    def get_version(self) -> PublishedVersion | None:
        if "ref" in self.kwargs:
            owner = can_read_register(self.request, self.controller)
            return version_find(
                self.controller, self.kwargs["ref"], versions_visible(self.controller, owner=owner)
            )
        return version_in_force(self.controller)

    def get(self, request: HttpRequest, code: str, **kwargs: Any) -> HttpResponse:
        self.controller = controller = disclosure_controller(request, code)
        if controller is None:
            return redirect_to_login(request.get_full_path())
        lang = table_language(request)
        version = self.get_version()
        links = self.link_processors()
        # The table may be asked for in another language than the page's (?lang= for an embed).
        with translation.override(language_code(lang)):
            if version is None:
                table = disclosure_page_live(controller, lang=lang, page=request.GET.get("page"))
                table_html = render_to_string(TABLE_TEMPLATE, {"table": table, "link_processors": links})
            else:
                table, table_html = version_page(
                    version, lang=lang, page=request.GET.get("page"), links=links
                )
            self.table = table
            response = render(
                request, self.template_name, self.get_context_data(table=table, table_html=table_html)
            )
        response.headers["Content-Language"] = language_code(lang)
        return response

    def link_processors(self) -> bool:
        """Whether the rows link their recipients to the processor pages (readers of the register only)."""
        return self.request.user.has_perm("processors.view_processor")

    def get_context_data(self, **context: Any) -> dict[str, Any]:
        table = context["table"]
        code = table.controller.code
        embed_path = reverse("processors:disclosure-embed", args=[code])
        if table.version is not None and "ref" in self.kwargs:
            download = reverse("processors:version-download", args=[code, version_key(table.version)])
        else:
            download = reverse("processors:disclosure-download", args=[code])
        staff = can_read_register(self.request, table.controller)
        archived = "ref" in self.kwargs
        return {
            **context,
            "lang": table.lang,
            "download_url": download,
            "embed_url": self.request.build_absolute_uri(f"{embed_path}?lang={table.lang}"),
            "staff_view": staff,
            "archived": archived,
            "withdrawn": table.version is not None and table.version.withdrawn,
            **(
                self.owner_status(table.controller)
                if staff and self.shows_owner_status and not archived
                else {}
            ),
            "can_publish": self.shows_owner_status and can_publish(self.request, table.controller),
        }

    def owner_status(self, controller: Controller) -> dict[str, Any]:
        """What the register's owner should know: whether the page is private, and unpublished changes."""
        latest = next(iter(versions_published(controller)), None)
        return {
            "owner_private": not controller.disclosure_public,
            "owner_unpublished": latest is None or unpublished_changes(controller, latest),
            "publish_url": reverse("processors:publish", args=[controller.code]),
        }


class DisclosureEmbedView(DisclosureView):
    """The table alone, without the site's header and footer, for an iframe on a privacy-policy page.

    Framing: a public table is a read-only document with no controls, so clickjacking has nothing to
    hijack; it may be framed by the origins in settings.REGISTER_EMBED_FRAME_ANCESTORS (a list of CSP
    sources, default ["*"]: anyone). A table that is not public may only be framed by this site itself.
    """

    template_name = "processors/disclosure_embed.html"
    shows_owner_status = False

    def link_processors(self) -> bool:
        return False

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
        # ?marks=1: publication marks (sensitive items starred in a .csv, countries after a cross-border
        # recipient), the option the notes sheet names; off by default so a table re-imports cleanly.
        marks = request.GET.get("marks") == "1"
        version = self.get_version()
        if version is None:
            # The live register streams in chunks; a version is its snapshot. One renderer, one writer.
            rows: Any = rows_from_operations(
                selectors.disclosure_operations(controller), lang=lang, marks=marks
            )
            name = f"{controller.code}-disclosure"
        else:
            rows = rows_from_snapshot(version.snapshot, lang, marks=marks)
            name = (
                slugify(f"{controller.code}-disclosure-{version.label}") or f"{controller.code}-{version.pk}"
            )
        # Written to a temporary file (on disk past a few MB), then streamed from it in chunks: a table of
        # any length downloads whole without being held in memory.
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it when sent)
        write_disclosure(rows, stream=spool, fmt=fmt, lang=lang, marks=marks)
        spool.seek(0)
        response = FileResponse(spool, content_type=EXPORT_FORMATS[fmt])
        response.headers["Content-Disposition"] = f'attachment; filename="{name}-{lang}.{fmt}"'
        return response


class VersionListView(View):
    """A controller's published versions, latest first, each viewable, downloadable and comparable."""

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        controller = disclosure_controller(request, code)
        if controller is None:
            return redirect_to_login(request.get_full_path())
        staff = can_read_register(request, controller)
        if not staff and controller.public_versions == PublicVersions.NONE:
            raise Http404(_("This controller does not publish its versions."))
        published = versions_visible(controller, owner=staff)
        current = version_in_force(controller)
        # "Compare with previous" skips withdrawn versions, as the public page does.
        if staff or controller.public_versions == PublicVersions.ALL:
            standing = [version for version in published if not version.withdrawn]
        else:
            standing = versions_published(controller)  # the latest's diff names the one before it
        rows = []
        for version in published:
            earlier = [other for other in standing if _before(other, version)]
            rows.append(
                {
                    "version": version,
                    "key": version_key(version),
                    "previous": version_key(earlier[0]) if earlier else None,
                    "current": current is not None and version.pk == current.pk,
                }
            )
        return render(
            request,
            "processors/versions.html",
            {
                "controller": controller,
                "rows": rows,
                "current": current,
                "staff_view": staff,
                "can_publish": can_publish(request, controller),
                "lang": table_language(request),
            },
        )


def _before(version: PublishedVersion, other: PublishedVersion) -> bool:
    """Whether ``version`` comes before ``other`` in the order of ``selectors.version_list``."""
    return (version.effective_on, version.published_at, version.pk) < (
        other.effective_on,
        other.published_at,
        other.pk,
    )


class DisclosureDiffView(View):
    """What changed between two versions, or since a version (``to=live``: staff only), with downloads."""

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        controller = disclosure_controller(request, code)
        if controller is None:
            return redirect_to_login(request.get_full_path())
        staff = can_read_register(request, controller)
        if not staff and controller.public_versions == PublicVersions.NONE:
            raise Http404(_("This controller does not publish its versions."))
        published = versions_visible(controller, owner=staff)
        if not staff and controller.public_versions == PublicVersions.LATEST and published:
            # The latest version's changes: the one before it may be named as its "from" side only.
            earlier = [other for other in versions_published(controller) if _before(other, published[0])]
            published = published + earlier[:1]
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
            if not staff and controller.public_versions == PublicVersions.LATEST and newer_index:
                raise Http404(_("No such version."))
        from_ref = request.GET.get("from")
        if from_ref:
            old = version_find(controller, from_ref, published)
        elif newer_index + 1 < len(published):
            old = published[newer_index + 1]
        else:
            old = new  # the first version has nothing before it: compare it with itself
        # Read as stored (two versions) or from the rows changed since (live): never two whole tables.
        diff = live_diff(old) if new is None else stored_diff(old, new)
        fmt = request.GET.get("format")
        if fmt:
            return _diff_response(diff, controller=controller, fmt=fmt, lang=lang)
        context.update(
            diff=diff,
            old=old,
            new=new,
            from_key=version_key(old),
            to_key=version_key(new) if new is not None else LIVE,
            versions=[(version_key(version), version) for version in published],
            **diff_sections(diff, lang),
        )
        return render(request, "processors/diff.html", context)


def _diff_response(diff: VersionDiff, *, controller: Controller, fmt: str, lang: str) -> HttpResponse:
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
        response.write(diff_markdown(diff, lang).encode("utf-8"))
    else:
        diff_xlsx(diff, response, lang)
    return response


def publishable_controller(request: HttpRequest, code: str) -> Controller:
    """The controller the signed-in user may publish (404 when it is unknown or not theirs)."""
    if not request.user.has_perm("processors.add_publishedversion"):
        raise PermissionDenied
    controller = Controller.objects.filter(code=code).first()
    if controller is None or not can_publish(request, controller):
        raise Http404(_("No such controller."))
    return controller


class PublishView(View):
    """Publish a controller's table after seeing what changed and what is wrong with it."""

    template_name = "processors/publish.html"

    def dispatch(self, request: HttpRequest, code: str) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        self.controller = publishable_controller(request, code)
        return super().dispatch(request, code)

    def form(self, data: Any = None) -> SitePublishVersionForm:
        today = timezone.localdate()
        return SitePublishVersionForm(
            data,
            controllers=Controller.objects.filter(pk=self.controller.pk),
            initial={"updated_on": today, "effective_on": today},
        )

    def render(self, form: SitePublishVersionForm, status: int = 200) -> HttpResponse:
        lang = table_language(self.request)
        context = {
            "controller": self.controller,
            "form": form,
            "lang": lang,
            **publish_context(self.controller, lang),
        }
        return render(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        return self.render(self.form())

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        form = self.form(request.POST)
        if form.is_valid():
            version = version_publish_from_form(form, request)
            if version is not None:
                messages.success(request, _("Published %(version)s.") % {"version": version.label})
                return redirect("processors:version", self.controller.code, version_key(version))
        return self.render(form, status=400)


def version_publish_from_form(form: Any, request: HttpRequest) -> PublishedVersion | None:
    """Publish what a valid publish form says, with the checks; errors go onto the form (then None)."""
    data = form.cleaned_data
    try:
        return services.version_publish(
            controller=data["controller"],
            label=data["label"],
            updated_on=data["updated_on"],
            effective_on=data["effective_on"],
            notes=data["notes"],
            user=request.user,
            checked=True,
            override_reason=data["override_reason"] if data.get("override") else "",
        )
    except ValidationError as error:
        form.add_error(None, error)
        return None


class WithdrawView(View):
    """Withdraw a published version with a reason; the public page falls back to the version before."""

    template_name = "processors/version_withdraw.html"

    def dispatch(self, request: HttpRequest, code: str, ref: str) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        self.controller = publishable_controller(request, code)
        self.version = version_find(self.controller, ref)
        return super().dispatch(request, code, ref)

    def render(self, form: WithdrawVersionForm, status: int = 200) -> HttpResponse:
        context = {"controller": self.controller, "version": self.version, "form": form}
        return render(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, code: str, ref: str) -> HttpResponse:
        return self.render(WithdrawVersionForm())

    def post(self, request: HttpRequest, code: str, ref: str) -> HttpResponse:
        form = WithdrawVersionForm(request.POST)
        if form.is_valid():
            try:
                services.version_withdraw(
                    version=self.version, user=request.user, reason=form.cleaned_data["reason"]
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Withdrew %(version)s.") % {"version": self.version.label})
                return redirect("processors:versions", self.controller.code)
        return self.render(form, status=400)
