"""Hardening every request goes through: the Content-Security-Policy, and hostile input refused early.

A control character in a path, a query parameter or a form field means nothing to the register and
breaks things further in (PostgreSQL refuses NUL in text: a 500), so it is answered here with a 400
before any view, form or query sees it: in the API's error shape under /api/, as a page elsewhere. Only
tab, CR and LF pass, in values, where a textarea sends them. JSON bodies are the API's serializers' to
check (DRF's CharField refuses NUL), and one-line model fields refuse the rest (validators.py) — except a
lone surrogate escaped in JSON, which no text can hold, refused here too. A body
too large for Django's limits (DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FIELDS) gets the
same treatment.
"""

import json
import re
from typing import Any

from csp.constants import HEADER
from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, QueryDict
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin
from django.utils.translation import gettext as _

API_PREFIX = "/api/"

# A path and the names of parameters are one line: every C0 control character is refused there.
NAME_CONTROL_CHARACTERS = re.compile("[\x00-\x1f]")
# Values may be multi-line text (a textarea sends CR LF, also in a GET form such as the deletion notice's
# list of categories) and tab-separated pastes; every other C0 control character is refused.
VALUE_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def is_api_request(request: HttpRequest) -> bool:
    """Whether the request is for the REST API, which answers errors in its own JSON shape."""
    return request.path_info.startswith(API_PREFIX)


def refusal(
    request: HttpRequest,
    message: str,
    *,
    status: int = 400,
    code: str = "invalid",
    field: str = "",
    title: str = "",
) -> HttpResponse:
    """A request refused before any view: the API's error shape under /api/, a plain page elsewhere."""
    if is_api_request(request):
        fields = {field: [message]} if field else {}
        return JsonResponse({"error": {"code": code, "message": message, "fields": fields}}, status=status)
    context = {"title": title or _("Bad request"), "message": message}
    return render(request, "400.html", context, status=status)


def parameter_with_control_character(parameters: QueryDict) -> str | None:
    """The first parameter with a control character in its name, or besides tab, CR, LF in a value."""
    for name, values in parameters.lists():
        if NAME_CONTROL_CHARACTERS.search(name) or any(VALUE_CONTROL_CHARACTERS.search(v) for v in values):
            return NAME_CONTROL_CHARACTERS.sub("", name) or "non_field_errors"
    return None


# A JSON escape of a surrogate; only when there is one is the body parsed here to see if it stands alone.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_field_with_lone_surrogate(body: bytes) -> str | None:
    """The top-level field of a JSON body whose name or value holds a lone surrogate, or None."""
    if not SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None  # not JSON: the API's parser says so in its own words
    items = document.items() if isinstance(document, dict) else [("non_field_errors", document)]
    for name, value in items:
        pending = [name, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str) and LONE_SURROGATE.search(item):
                return LONE_SURROGATE.sub("", name) or "non_field_errors"
            if isinstance(item, dict):
                pending += [*item.keys(), *item.values()]
            elif isinstance(item, list):
                pending += item
    return None


class HostileInputMiddleware(MiddlewareMixin):
    """Refuse control characters in the path, query and urlencoded form fields, and oversized bodies."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        try:
            return self.refuse_control_characters(request) or self.refuse_lone_surrogates(request)
        except (RequestDataTooBig, TooManyFieldsSent) as error:
            return self.process_exception(request, error)

    def refuse_control_characters(self, request: HttpRequest) -> HttpResponse | None:
        message = _("The address contains a control character, such as NUL.")
        if NAME_CONTROL_CHARACTERS.search(request.path):
            return refusal(request, message)
        if parameter := parameter_with_control_character(request.GET):
            # The API's own code for a query parameter it cannot use.
            return refusal(request, message, code="invalid_filter", field=parameter)
        # Multipart bodies carry files and are left to their parsers; urlencoded ones are parsed here
        # anyway by CSRF protection or the view, so reading them now costs nothing.
        if request.method != "POST" or request.content_type != "application/x-www-form-urlencoded":
            return None
        if field := parameter_with_control_character(request.POST):
            return refusal(request, _("A form field contains a control character, such as NUL."), field=field)
        return None

    def refuse_lone_surrogates(self, request: HttpRequest) -> HttpResponse | None:
        # JSON may escape a lone surrogate ("\udcff"); no text can hold it, so every later step that
        # encodes it (the database, the error that echoes it) fails with a 500.
        if request.method not in ("POST", "PUT", "PATCH") or request.content_type != "application/json":
            return None
        if field := json_field_with_lone_surrogate(request.body):
            return refusal(
                request, _("A value contains a lone surrogate, which is not a character."), field=field
            )
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # Raised while a view (the API's parsers included) reads the body; Django would answer a bare 400.
        if isinstance(exception, RequestDataTooBig):
            return refusal(
                request,
                _("The request is too large."),
                status=413,
                code="too_large",
                title=_("Request too large"),
            )
        if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
            return refusal(request, _("The request has too many fields or files."))
        return None


def login_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes' answer to a login refused after too many failures (settings.AXES_LOCKOUT_CALLABLE)."""
    return refusal(
        request,
        _("Too many failed logins for this user from this address. Try again later."),
        status=429,
        code="throttled",
        title=_("Too many failed logins"),
    )


# django-axes keeps the username of every failed login in a 255-character column.
AXES_USERNAME_LENGTH = 255


def login_attempt_username(request: HttpRequest, credentials: dict | None = None) -> str:
    """The username django-axes records for a login (settings.AXES_USERNAME_CALLABLE), cut to its column.

    A login form passes a username of any length to authentication (Django sets the field's max_length
    without its validator), and PostgreSQL refuses to store a longer one: a 500 instead of a failed login.
    """
    username = (credentials or {}).get("username") if credentials else None
    if username is None:
        username = getattr(request, "data", request.POST).get("username", "")
    return str(username or "")[:AXES_USERNAME_LENGTH]


def parse_policy(header: str) -> dict[str, list[str] | bool]:
    """A Content-Security-Policy header as django-csp directives: {"frame-ancestors": ["*"], ...}."""
    directives: dict[str, list[str] | bool] = {}
    for part in header.split(";"):
        if tokens := part.split():
            directives[tokens[0].lower()] = tokens[1:] or True
    return directives


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, where a view's own Content-Security-Policy refines the site's policy.

    django-csp leaves a header a view has set alone, so the disclosure embed, which sets only its
    frame-ancestors, would lose the rest of the policy. Here the view's directives replace the site's
    directives of the same name, and the rest of the site's policy still applies.
    """

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        own = response.headers.get(HEADER, "").strip()
        if not own:
            return super().process_response(request, response)
        del response.headers[HEADER]
        response.csp_view_directives = parse_policy(own)
        response = super().process_response(request, response)
        if HEADER not in response:
            # The policy is off for this response (an excluded path, DEBUG's error pages): keep the view's.
            response.headers[HEADER] = own
        return response

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        view_directives = getattr(response, "csp_view_directives", None)
        if view_directives and not report_only:
            parts.replace = {**view_directives, **(parts.replace or {})}
        return parts
