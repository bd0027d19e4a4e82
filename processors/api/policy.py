"""The API's policy, shared by all its views: who may do what, how fast, in which pages, filtered how,
answered in which format, and the one shape of every error.

Every error, whatever raised it (a serializer, a FilterSet, a model's ``full_clean()``, the database),
answers ``{"error": {"code": ..., "message": ..., "fields": {...}}}``; ``exception_handler`` and
``document_errors`` are named in the settings' ``REST_FRAMEWORK`` and ``SPECTACULAR_SETTINGS``.
"""

from typing import Any
from urllib.parse import quote

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, QuerySet, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import ListField
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from processors import selectors
from processors.filters import MultipleValueField
from processors.models import Controller, ControllerRole
from processors.services import StaleObject

# --- Errors -------------------------------------------------------------------------------------------


class InvalidFilter(exceptions.ValidationError):
    default_detail = _("Invalid query parameter.")
    default_code = "invalid_filter"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The change conflicts with data already in the register.")
    default_code = "conflict"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = _("The object was changed since you read it; read it again (its ETag) and retry.")
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = _("Send If-Match with the ETag of the object you read.")
    default_code = "precondition_required"


class ImportBusy(Conflict):
    default_detail = _("Another import into this register is running; try again when it has finished.")
    default_code = "import_busy"


class ImportRejected(exceptions.ValidationError):
    """A file the import core refused; ``problems`` are its located errors and warnings."""

    default_detail = _("The file has errors; nothing was imported.")
    default_code = "import_rejected"

    def __init__(self, detail: Any, problems: list[dict]) -> None:
        super().__init__(detail)
        self.problems = problems


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF error details (dicts and lists, nested for list fields) as {"field.0": ["message", ...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key in ("__all__", None) else str(key)
            flat.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages}


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, StaleObject):
        # The conditional update lost to a concurrent one after If-Match was checked.
        return PreconditionFailed()
    if isinstance(exc, DjangoValidationError):
        # A model's full_clean() inside a service: the same field errors the admin shows.
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return exceptions.ValidationError(detail)
    if isinstance(exc, ProtectedError | RestrictedError):
        return Conflict(_("Other records still refer to this one."))
    if isinstance(exc, IntegrityError):
        # full_clean() catches constraint violations first; reaching the database means a concurrent write.
        return Conflict()
    return exc


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, answering every known error as {"error": {"code", "message", "fields"}}."""
    exc = _as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.values()), [])
        message = first[0] if first else str(exc.default_detail)
        code = exc.default_code
    else:
        fields = {}
        message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc.detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"error": {"code": code, "message": message, "fields": fields}}
    if isinstance(exc, ImportRejected):
        response.data["error"]["problems"] = exc.problems
    return response


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/v1/: a 404 in the API's error shape rather than an HTML page."""
    body = {"error": {"code": "not_found", "message": str(exceptions.NotFound.default_detail), "fields": {}}}
    return JsonResponse(body, status=404)


ERROR_SCHEMA = {
    "type": "object",
    "description": "The one shape of every error answer.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable reason, e.g. invalid_filter, not_found."},
                "message": {"type": "string", "description": "Human-readable summary."},
                "fields": {
                    "type": "object",
                    "description": "Messages per parameter or field; empty when not about one.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                "problems": {
                    "type": "array",
                    "description": "Only for a refused import: every located error and warning in the file.",
                    "items": {"type": "object", "additionalProperties": True},
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}

_ERROR_RESPONSES = {
    "400": "Invalid input or query parameter (unknown category, malformed date…), with reasons per field.",
    "401": "Not authenticated.",
    "403": "Authenticated, but without the permission this needs.",
    "404": "No such object (or page).",
}
_CONDITIONAL_ERROR_RESPONSES = {
    "412": "If-Match named an older version than the stored one (someone saved meanwhile).",
    "428": "If-Match is required (REGISTER_API_REQUIRE_IF_MATCH) and was not sent.",
}
_WRITE_ERROR_RESPONSES = {
    "409": "Conflicts with data already in the register.",
    "429": "Too many writes; try again later.",
}


def document_errors(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular hook: every operation documents the shared error shape for its error statuses."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            errors = dict(_ERROR_RESPONSES)
            if method.upper() not in SAFE_METHODS:
                errors.update(_WRITE_ERROR_RESPONSES)
            if method.upper() in CONDITIONAL_METHODS:
                errors.update(_CONDITIONAL_ERROR_RESPONSES)
            for code, description in errors.items():
                responses.setdefault(code, {"description": description, "content": reference})
    return result


# --- Access and throttling ----------------------------------------------------------------------------


class RegisterPermission(DjangoModelPermissions):
    """Reading needs the model's view permission, writing its add/change/delete permission.

    DRF's DjangoModelPermissions lets any authenticated user read; the register holds contract and PIA
    references, so reading asks for the same view permission the admin does. A public disclosure
    deployment opens reading to everyone with REGISTER_PUBLIC_READ.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS and settings.REGISTER_PUBLIC_READ:
            return True
        return super().has_permission(request, view)


class HistoryPermission(DjangoModelPermissions):
    """History names who changed what: it needs an account with the view permission, even on a public
    deployment (REGISTER_PUBLIC_READ opens the register, not its editors' names)."""

    perms_map = RegisterPermission.perms_map


class ImportPermission(RegisterPermission):
    """Reading the import records needs their view permission; importing needs to add operations."""

    perms_map = {**RegisterPermission.perms_map, "POST": ["processors.add_operation"]}


class ReviewPermission(RegisterPermission):
    """Marking a row reviewed changes it: the model's change permission (the role is checked by the view)."""

    perms_map = {**RegisterPermission.perms_map, "POST": ["%(app_label)s.change_%(model_name)s"]}


class ReadRateThrottle(UserRateThrottle):
    """Limits reads per user (the "reads" rate), so a script cannot page through the register unchecked."""

    scope = "reads"

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method not in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class WriteRateThrottle(UserRateThrottle):
    """Limits writes per user (the "writes" rate), counted apart from reads."""

    scope = "writes"

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class ImportRateThrottle(UserRateThrottle):
    """Limits imports (and previews) per user with their own, lower "imports" rate."""

    scope = "imports"

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


# --- Pagination and filtering -------------------------------------------------------------------------


class RegisterPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000


class RegisterFilterBackend(DjangoFilterBackend):
    """The shared FilterSets; an invalid value (unknown category, bad date) is a 400, never an empty 200."""

    def get_valid_filterset(
        self, request: Request, queryset: QuerySet, view: Any
    ) -> django_filters.FilterSet | None:
        """The view's FilterSet bound to the request's query; an invalid value raises InvalidFilter (400)."""
        filterset = self.get_filterset(request, queryset, view)
        if filterset is not None and not filterset.is_valid():
            # The form's own messages: already formatted, so a value containing % stays as typed.
            raise InvalidFilter(
                {
                    name: [ErrorDetail(error["message"], code=error["code"]) for error in errors]
                    for name, errors in filterset.errors.get_json_data().items()
                }
            )
        return filterset

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        filterset = self.get_valid_filterset(request, queryset, view)
        return queryset if filterset is None else filterset.qs


def valid_filterset(request: Request, queryset: QuerySet, view: Any) -> django_filters.FilterSet | None:
    """For a view that needs the resolved values too (e.g. the categories behind ?receives=): the FilterSet
    ``RegisterFilterBackend`` applies, validated; its ``qs`` is the filtered queryset."""
    return RegisterFilterBackend().get_valid_filterset(request, queryset, view)


def stable_order(queryset: QuerySet) -> QuerySet:
    """The primary key after any requested ordering, so pages never overlap or skip rows."""
    ordering = list(queryset.query.order_by)
    if ordering and not {"pk", "-pk", "id", "-id"} & set(map(str, ordering)):
        queryset = queryset.order_by(*ordering, "pk")
    return queryset


def read_query(serializer_class: type[BaseSerializer], request: Request) -> dict:
    """Query parameters read by a serializer; invalid ones are the API's invalid_filter 400."""
    data = {
        name: request.query_params.getlist(name)
        if isinstance(field, ListField | serializers.MultipleChoiceField)
        else request.query_params.get(name)
        for name, field in serializer_class().fields.items()
        if name in request.query_params
    }
    serializer = limit_choices(serializer_class(data=data), request.user, role=ControllerRole.VIEWER)
    if not serializer.is_valid():
        raise InvalidFilter(serializer.errors)
    return serializer.validated_data


class FilteredObjectSchema(AutoSchema):
    """Documents the filters of a view that answers one object computed from a filtered queryset."""

    def get_filter_backends(self) -> list:
        return getattr(self.view, "filter_backends", [])


class RegisterFilterExtension(DjangoFilterExtension):
    """Documents the shared FilterSets as clients use them: repeatable values as arrays, label and help."""

    target_class = RegisterFilterBackend
    match_subclasses = True
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field) -> list:
        parameters = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        for parameter in parameters:
            repeatable = issubclass(
                filter_field.field_class, MultipleValueField | forms.ModelMultipleChoiceField
            )
            if repeatable and parameter["schema"].get("type") != "array":
                parameter["schema"] = {"type": "array", "items": parameter["schema"]}
                parameter.update(explode=True, style="form")
            if isinstance(filter_field, django_filters.BooleanFilter):
                parameter["schema"] = {"type": "boolean"}
            label, help_text = filter_field.label, filter_field.extra.get("help_text")
            if label and help_text:
                described = parameter.get("description", "")
                parameter["description"] = f"{capfirst(label)} — {described}"
        return parameters


class RegisterAPIMixin:
    """The register's access, paging, throttling and filtering policy, shared by all its API views.

    Querysets are narrowed to the controllers the user is a member of (``selectors.visible_to``): a
    viewer's for reading, an editor's for writing (the controller's own record: its admin's), so another
    controller's objects are a 404, and its codes and ids are refused by the write serializers' choices.
    """

    permission_classes = [RegisterPermission]
    pagination_class = RegisterPagination
    filter_backends = [RegisterFilterBackend]
    throttle_classes = [ReadRateThrottle, WriteRateThrottle]

    def access_role(self) -> int:
        """The role the request needs in a controller: to read, to change, or to change the controller."""
        if self.request.method in SAFE_METHODS:
            return ControllerRole.VIEWER
        return ControllerRole.ADMIN if self.get_queryset_model() is Controller else ControllerRole.EDITOR

    def get_queryset_model(self) -> type | None:
        queryset = getattr(self, "queryset", None)
        return getattr(queryset, "model", None)

    def get_queryset(self) -> QuerySet:
        return selectors.visible_to(self.request.user, super().get_queryset(), role=self.access_role())

    def get_serializer(self, *args: Any, **kwargs: Any) -> BaseSerializer:
        serializer = super().get_serializer(*args, **kwargs)
        if self.request is not None and self.request.method not in SAFE_METHODS:
            limit_choices(serializer, self.request.user, role=ControllerRole.EDITOR)
        return serializer


def limit_choices(serializer: BaseSerializer, user: Any, *, role: int) -> BaseSerializer:
    """Narrow the serializer's controller, service and operation choices to where the user holds the role.

    Another controller's code or id is then refused exactly as an unknown one is.
    """
    fields = getattr(serializer, "fields", {})
    for name in ("controller", "service", "operation"):
        field = fields.get(name)
        queryset = getattr(field, "queryset", None)
        if queryset is not None and not getattr(field, "read_only", False):
            field.queryset = selectors.visible_to(user, queryset, role=role)
    return serializer


class StableOrderingMixin:
    """Adds the primary key after any requested ordering, so pages never overlap or skip rows."""

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return stable_order(super().filter_queryset(queryset))


# --- Versions: ETag and If-Match ---------------------------------------------------------------------

# A weak ETag (W/"<version>"): the version names the stored state, while the JSON varies with the
# language and the API's version. If-Match is compared weakly on purpose (RFC 9110 asks for a strong
# comparison): the version is what a client must have seen, not the bytes.
CONDITIONAL_METHODS = ("PUT", "PATCH", "DELETE")
ETAG_ACTIONS = ("retrieve", "update", "partial_update", "create")


def etag_for(obj: Any) -> str:
    """The weak ETag of a versioned object."""
    return f'W/"{obj.version}"'


def if_match_version(request: Request, obj: Any) -> int | None:
    """The version the request's If-Match expects of obj (None for none or *); 412 when stale, 428
    when missing and REGISTER_API_REQUIRE_IF_MATCH is set."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        if getattr(settings, "REGISTER_API_REQUIRE_IF_MATCH", False):
            raise PreconditionRequired()
        return None
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags:
        return None
    if any(tag.removeprefix("W/").strip('"') == str(obj.version) for tag in tags):
        return obj.version
    raise PreconditionFailed()


class ConditionalObjectMixin:
    """ETag on the answers about one versioned object; If-Match honoured on PUT, PATCH and DELETE.

    ``expected_version`` is what the view passes to the update service, whose conditional UPDATE also
    catches a write that lands between this check and the save.
    """

    etag_object: Any = None
    expected_version: int | None = None

    def get_object(self) -> Any:
        obj = super().get_object()
        if hasattr(obj, "version"):
            self.etag_object = obj
            if self.request.method in CONDITIONAL_METHODS:
                self.expected_version = if_match_version(self.request, obj)
        return obj

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        obj = self.etag_object
        if obj is not None and getattr(self, "action", None) in ETAG_ACTIONS and response.status_code < 300:
            response["ETag"] = etag_for(obj)
        return response


# --- Formats and downloads ----------------------------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"
MARKDOWN = "text/markdown"
LANGUAGE_PARAMETER = OpenApiParameter(
    "lang", str, enum=["zh", "en"], description=_("Language of the document (zh, the default, or en).")
)


class FileFormatNegotiation(DefaultContentNegotiation):
    """On download endpoints ?format= names the file to make (xlsx, csv, md), not one of DRF's renderers.

    Everything else these endpoints answer (the JSON body, every error) is JSON.
    """

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class DownloadMixin:
    """JSON answers and file downloads chosen by ?format=."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = FileFormatNegotiation


def download(content: bytes, *, content_type: str, file_name: str) -> HttpResponse:
    """A file download whose name survives in any language."""
    response = HttpResponse(content, content_type=content_type)
    # RFC 6266: an ASCII fallback and the UTF-8 name, so Chinese file names survive.
    fallback = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    response["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name)}"
    )
    return response
