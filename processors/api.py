"""The REST API at /api/v1/: thin viewsets over the shared FilterSets, the selectors and the services.

Reads filter with the same ``OperationFilterSet`` / ``ProcessorFilterSet`` as the admin and the browser
UI; writes go through ``processors.services`` like the admin and the importer. Every error, whatever
raised it (a serializer, a FilterSet, a model's ``full_clean()``, the database), answers in one shape:
``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

import io
from typing import Any
from urllib.parse import quote

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, Q, QuerySet, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import ListField
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import APIRootView, DefaultRouter
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from processors import history, selectors, services, versions
from processors.filters import MultipleValueField, OperationFilterSet, ProcessorFilterSet
from processors.findings import RULES, Severity, findings
from processors.models import (
    Channel,
    Controller,
    DataCategory,
    ImportRecord,
    Operation,
    ProcessingAction,
    Processor,
    PublishedVersion,
    Purpose,
    Service,
)
from processors.notices import NoticeError, deletion_notice, deletion_notice_csv
from processors.serializers import (
    ControllerCodeField,
    ControllerSerializer,
    DataCategorySerializer,
    DeletionNoticeSerializer,
    FindingsSerializer,
    HistoryEntrySerializer,
    ImportRecordSerializer,
    ImportReportSerializer,
    ImportRequestSerializer,
    MatrixSerializer,
    OperationSerializer,
    OperationWriteSerializer,
    ProcessingActionSerializer,
    ProcessorCategoriesSerializer,
    ProcessorSerializer,
    ProcessorWriteSerializer,
    PublishedVersionDetailSerializer,
    PublishedVersionSerializer,
    PurposeSerializer,
    ServiceSerializer,
    VersionDiffSerializer,
    VersionPublishSerializer,
)
from processors.spreadsheets import export, uploads
from processors.spreadsheets.importer import import_register

# --- Errors -------------------------------------------------------------------------------------------


class InvalidFilter(exceptions.ValidationError):
    default_detail = _("Invalid query parameter.")
    default_code = "invalid_filter"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The change conflicts with data already in the register.")
    default_code = "conflict"


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
            for code, description in errors.items():
                responses.setdefault(code, {"description": description, "content": reference})
    return result


# --- Access, pagination, throttling, filtering --------------------------------------------------------


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


class WriteRateThrottle(UserRateThrottle):
    """Limits writes per user (the "writes" rate); reads are not throttled."""

    scope = "writes"

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class RegisterPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000


class RegisterFilterBackend(DjangoFilterBackend):
    """The shared FilterSets; an invalid value (unknown category, bad date) is a 400, never an empty 200."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            # The form's own messages: already formatted, so a value containing % stays as typed.
            raise InvalidFilter(
                {
                    name: [ErrorDetail(error["message"], code=error["code"]) for error in errors]
                    for name, errors in filterset.errors.get_json_data().items()
                }
            )
        # The view may need the resolved values (e.g. the categories behind ?receives=).
        view.filterset = filterset
        return filterset.qs


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
    """The register's access, paging, throttling and filtering policy, shared by all its API views."""

    permission_classes = [RegisterPermission]
    pagination_class = RegisterPagination
    filter_backends = [RegisterFilterBackend]
    throttle_classes = [WriteRateThrottle]


class StableOrderingMixin:
    """Adds the primary key after any requested ordering, so pages never overlap or skip rows."""

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        ordering = list(queryset.query.order_by)
        if ordering and not {"pk", "-pk", "id", "-id"} & set(map(str, ordering)):
            queryset = queryset.order_by(*ordering, "pk")
        return queryset


class HistoryPermission(DjangoModelPermissions):
    """History names who changed what: it needs an account with the view permission, even on a public
    deployment (REGISTER_PUBLIC_READ opens the register, not its editors' names)."""

    perms_map = RegisterPermission.perms_map


HISTORY_LIMIT_PARAMETER = OpenApiParameter(
    "limit", int, description=_("At most this many entries, newest first (default 200, at most 1000).")
)


class HistoryLimitSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=200)


def history_entry_data(entry: history.HistoryEntry) -> dict[str, Any]:
    """One history entry as the API shows it."""
    return entry.to_dict()


def _history_response(entries: list) -> Response:
    return Response([history_entry_data(entry) for entry in entries])


def _query(serializer_class: type[BaseSerializer], request: Request) -> dict:
    """Query parameters read by a serializer; invalid ones are the API's invalid_filter 400."""
    data = {
        name: request.query_params.getlist(name)
        if isinstance(field, ListField | serializers.MultipleChoiceField)
        else request.query_params.get(name)
        for name, field in serializer_class().fields.items()
        if name in request.query_params
    }
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidFilter(serializer.errors)
    return serializer.validated_data


class ReadWriteViewSetMixin(RegisterAPIMixin, StableOrderingMixin):
    """Accepts the write serializer, answers with the read one; perform_* return the saved object."""

    write_serializer_class: type[BaseSerializer]

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.request is not None and self.request.method in ("POST", "PUT", "PATCH"):
            return self.write_serializer_class
        return self.serializer_class

    def get_read_object(self, instance: Any) -> Any:
        return instance

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.perform_create(serializer)
        data = self.serializer_class(
            self.get_read_object(instance), context=self.get_serializer_context()
        ).data
        return Response(data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        instance = self.perform_update(serializer)
        data = self.serializer_class(
            self.get_read_object(instance), context=self.get_serializer_context()
        ).data
        return Response(data)


# --- Taxonomy (read-only: it is curated in the admin, where re-mapping lives) -------------------------


class DataCategoryViewSet(RegisterAPIMixin, viewsets.ReadOnlyModelViewSet):
    """The bilingual data-category tree in tree order (a group, then its categories), with aliases."""

    queryset = DataCategory.objects.order_by("code").prefetch_related("aliases")
    serializer_class = DataCategorySerializer
    lookup_field = "code"
    lookup_value_regex = r"[^/]+"  # dotted codes; a malformed one is a JSON 404 from the view


class PurposeViewSet(RegisterAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Coded bilingual purposes with their aliases."""

    queryset = Purpose.objects.order_by("position", "code").prefetch_related("aliases")
    serializer_class = PurposeSerializer
    lookup_field = "code"


class ProcessingActionViewSet(RegisterAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Processing actions: the eight of PIPL Art. 4 and the extended ones."""

    queryset = ProcessingAction.objects.order_by("position", "code")
    serializer_class = ProcessingActionSerializer
    lookup_field = "code"


# --- Parties ------------------------------------------------------------------------------------------


class ControllerViewSet(
    RegisterAPIMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """The companies or apps that publish a register."""

    queryset = Controller.objects.order_by("code").prefetch_related("extra_sensitive_categories")
    serializer_class = ControllerSerializer
    lookup_field = "code"

    def perform_create(self, serializer: ControllerSerializer) -> None:
        serializer.instance = services.controller_create(**serializer.validated_data)

    def perform_update(self, serializer: ControllerSerializer) -> None:
        serializer.instance = services.controller_update(
            controller=serializer.instance, **serializer.validated_data
        )


class ServiceViewSet(
    RegisterAPIMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Features of a controller for which data flows, optionally an embedded SDK."""

    queryset = Service.objects.select_related("controller").order_by("controller__code", "name", "pk")
    serializer_class = ServiceSerializer

    def perform_create(self, serializer: ServiceSerializer) -> None:
        serializer.instance = services.service_create(**serializer.validated_data)

    def perform_update(self, serializer: ServiceSerializer) -> None:
        serializer.instance = services.service_update(
            service=serializer.instance, **serializer.validated_data
        )


@extend_schema_view(
    create=extend_schema(request=ProcessorWriteSerializer, responses={201: ProcessorSerializer}),
    update=extend_schema(request=ProcessorWriteSerializer, responses={200: ProcessorSerializer}),
    partial_update=extend_schema(request=ProcessorWriteSerializer, responses={200: ProcessorSerializer}),
)
class ProcessorViewSet(
    ReadWriteViewSetMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Recipients; ?receives= answers "which processors receive X?" and says through which operations."""

    queryset = Processor.objects.select_related("member_of").prefetch_related("aliases")
    serializer_class = ProcessorSerializer
    write_serializer_class = ProcessorWriteSerializer
    filterset_class = ProcessorFilterSet

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = self.get_serializer_context()
        categories = self.filterset.form.cleaned_data.get("receives")
        if categories:
            context["receipts"] = selectors.category_receipts(page, categories)
        return self.get_paginated_response(ProcessorSerializer(page, many=True, context=context).data)

    def perform_create(self, serializer: ProcessorWriteSerializer) -> Processor:
        return services.processor_create(**serializer.validated_data)

    def perform_update(self, serializer: ProcessorWriteSerializer) -> Processor:
        return services.processor_edit(processor=serializer.instance, **serializer.validated_data)

    def get_read_object(self, instance: Processor) -> Processor:
        return self.get_queryset().get(pk=instance.pk)

    @extend_schema(
        summary=_("A processor's history"),
        parameters=[HISTORY_LIMIT_PARAMETER],
        responses={200: HistoryEntrySerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        permission_classes=[HistoryPermission],
        pagination_class=None,
        filter_backends=[],
    )
    def history(self, request: Request, pk: str) -> Response:
        """Changes to the processor, its aliases, the operations sending it data and their data items."""
        limit = _query(HistoryLimitSerializer, request)["limit"]
        processor = get_object_or_404(Processor.objects.all(), pk=pk)
        return _history_response(history.processor_history(processor, limit=limit))


# --- Operations ---------------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(request=OperationWriteSerializer, responses={201: OperationSerializer}),
    update=extend_schema(request=OperationWriteSerializer, responses={200: OperationSerializer}),
    partial_update=extend_schema(request=OperationWriteSerializer, responses={200: OperationSerializer}),
)
class OperationViewSet(ReadWriteViewSetMixin, viewsets.ModelViewSet):
    """Rows of the disclosure tables, each readable on its own; filter by data category and much more."""

    queryset = Operation.objects.all()
    serializer_class = OperationSerializer
    write_serializer_class = OperationWriteSerializer
    filterset_class = OperationFilterSet

    def get_queryset(self) -> QuerySet[Operation]:
        return selectors.operation_list(Operation.objects.all())

    def get_read_object(self, instance: Operation) -> Operation:
        return self.get_queryset().get(pk=instance.pk)

    def perform_create(self, serializer: OperationWriteSerializer) -> Operation:
        fields = _with_published_items_text(serializer.validated_data)
        return services.operation_create(taxonomy=serializer.taxonomy, **fields)

    def perform_update(self, serializer: OperationWriteSerializer) -> Operation:
        fields = _with_published_items_text(serializer.validated_data)
        return services.operation_edit(operation=serializer.instance, taxonomy=serializer.taxonomy, **fields)

    def perform_destroy(self, instance: Operation) -> None:
        services.operation_delete(operation=instance)

    @extend_schema(
        summary=_("An operation's history"),
        parameters=[HISTORY_LIMIT_PARAMETER],
        responses={200: HistoryEntrySerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        permission_classes=[HistoryPermission],
        pagination_class=None,
        filter_backends=[],
    )
    def history(self, request: Request, pk: str) -> Response:
        """Every recorded change to the operation, newest first, with old and new values."""
        limit = _query(HistoryLimitSerializer, request)["limit"]
        operation = get_object_or_404(Operation.objects.all(), pk=pk)
        return _history_response(history.history_for(operation, limit=limit))


def _with_published_items_text(validated_data: dict) -> dict:
    # Items given as a list still leave the register a published form of them, as an import would.
    fields = dict(validated_data)
    if fields.get("data_items") and not fields.get("data_items_text"):
        fields["data_items_text"] = "、".join(fields["data_items"])
    return fields


_PROCESSOR_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description=_("Id of the processor."))


@extend_schema(
    parameters=[_PROCESSOR_ID],
    responses={200: ProcessorCategoriesSerializer},
    summary=_("Everything one processor receives"),
)
class ProcessorCategoriesView(RegisterAPIMixin, GenericAPIView):
    """Every category a processor receives, directly or through its group, with the services and purposes.

    The operation filters narrow which operations count (e.g. ?as_of=2025-01-01 or ?status=active).
    """

    queryset = Operation.objects.all()
    filterset_class = OperationFilterSet
    pagination_class = None
    serializer_class = ProcessorCategoriesSerializer
    schema = FilteredObjectSchema()

    def get(self, request: Request, pk: str) -> Response:
        processor = get_object_or_404(Processor.objects.all(), pk=pk)
        operations = self.filter_queryset(self.get_queryset())
        received = selectors.processor_received_categories(processor, operations)
        return Response(self.get_serializer(received).data)


@extend_schema(responses={200: MatrixSerializer}, summary=_("Processors × data categories"))
class CategoryMatrixView(RegisterAPIMixin, GenericAPIView):
    """Processors × categories with the number of operations in each cell, for a heat map.

    Honours every operation filter; rows are the processors, columns the categories (with their
    sensitive flag), and only non-empty cells are listed.
    """

    queryset = Operation.objects.all()
    filterset_class = OperationFilterSet
    pagination_class = None
    serializer_class = MatrixSerializer
    schema = FilteredObjectSchema()

    def get(self, request: Request) -> Response:
        operations = self.filter_queryset(self.get_queryset())
        return Response(self.get_serializer(selectors.category_matrix(operations)).data)


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/v1/: a 404 in the API's error shape rather than an HTML page."""
    body = {"error": {"code": "not_found", "message": str(exceptions.NotFound.default_detail), "fields": {}}}
    return JsonResponse(body, status=404)


# --- Routing ------------------------------------------------------------------------------------------


class RegisterRootView(APIRootView):
    """Processor Registry API, version 1. The schema is at schema/, interactive documentation at docs/."""

    permission_classes = [RegisterPermission]


class RegisterRouter(DefaultRouter):
    """The default router, whose root also links the views that are not viewsets."""

    APIRootView = RegisterRootView
    extra_root_links = {
        "matrix": "matrix",
        "findings": "findings",
        "history": "history",
        "deletion-notices": "deletion-notice",
        "schema": "schema",
        "docs": "docs",
    }

    def get_api_root_view(self, api_urls: Any = None) -> Any:
        list_name = self.routes[0].name
        links = {prefix: list_name.format(basename=basename) for prefix, _viewset, basename in self.registry}
        links.update(self.extra_root_links)
        return self.APIRootView.as_view(api_root_dict=links)


# --- Downloads ----------------------------------------------------------------------------------------

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


def _download(content: bytes, *, content_type: str, file_name: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    # RFC 6266: an ASCII fallback and the UTF-8 name, so Chinese file names survive.
    fallback = file_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    response["Content-Disposition"] = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name)}"
    )
    return response


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["xlsx", "csv"], default="xlsx")
    shape = serializers.ChoiceField(choices=["disclosure", "workbook"], default="disclosure")
    lang = serializers.ChoiceField(choices=["zh", "en"], default="zh")

    def validate(self, attrs: dict) -> dict:
        if attrs["shape"] == "workbook" and attrs["format"] != "xlsx":
            raise serializers.ValidationError(
                {"format": [_("The round-trip workbook is only made as xlsx.")]}
            )
        return attrs


@extend_schema(
    summary=_("Download operations as a spreadsheet"),
    parameters=[
        OpenApiParameter("format", str, enum=["xlsx", "csv"], description=_("File format (default xlsx).")),
        OpenApiParameter(
            "shape",
            str,
            enum=["disclosure", "workbook"],
            description=_(
                "disclosure (the default): the published five-column table; workbook: the round-trip "
                "workbook the importer reads back (xlsx only)."
            ),
        ),
        LANGUAGE_PARAMETER,
    ],
    responses={
        (200, XLSX): OpenApiTypes.BINARY,
        (200, CSV): OpenApiTypes.BINARY,
    },
)
class OperationExportView(DownloadMixin, RegisterAPIMixin, GenericAPIView):
    """The operations the list filters select, as the disclosure table or the round-trip workbook.

    Takes every filter of /operations/ (e.g. ?category=identity), through the same FilterSet.
    """

    queryset = Operation.objects.all()
    filterset_class = OperationFilterSet
    pagination_class = None
    schema = FilteredObjectSchema()

    def get(self, request: Request) -> HttpResponse:
        options = _query(ExportQuerySerializer, request)
        operations = self.filter_queryset(self.get_queryset())
        stream = io.BytesIO()
        fmt, shape = options["format"], options["shape"]
        if shape == "workbook":
            export.export_workbook(operations, stream=stream)
        else:
            export.export_disclosure(operations, stream=stream, fmt=fmt, lang=options["lang"])
        day = timezone.localdate().isoformat()
        return _download(
            stream.getvalue(),
            content_type=XLSX if fmt == "xlsx" else f"{CSV}; charset=utf-8",
            file_name=f"register-{shape}-{day}.{fmt}",
        )


# --- Imports ------------------------------------------------------------------------------------------


class ImportRejected(exceptions.ValidationError):
    """A file the import core refused; ``problems`` are its located errors and warnings."""

    default_detail = _("The file has errors; nothing was imported.")
    default_code = "import_rejected"

    def __init__(self, detail: Any, problems: list[dict]) -> None:
        super().__init__(detail)
        self.problems = problems


class ImportPermission(RegisterPermission):
    """Reading the import records needs their view permission; importing needs to add operations."""

    perms_map = {**RegisterPermission.perms_map, "POST": ["processors.add_operation"]}


class ImportRateThrottle(UserRateThrottle):
    """Limits imports (and previews) per user with their own, lower "imports" rate."""

    scope = "imports"

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class ImportRecordFilterSet(django_filters.FilterSet):
    controller = django_filters.CharFilter(
        field_name="controller__code", label=_("controller"), help_text=_("Code of the controller.")
    )
    result = django_filters.MultipleChoiceFilter(choices=ImportRecord.Result.choices, label=_("result"))
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices, label=_("channel"))

    class Meta:
        model = ImportRecord
        fields = ["controller", "result", "channel"]


_IMPORT_FIELD_CODES = {"header_map": "map"}


@extend_schema_view(
    create=extend_schema(
        summary=_("Import (or preview) a disclosure table"),
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            200: OpenApiResponse(ImportReportSerializer, description=_("The preview of a dry run.")),
            201: OpenApiResponse(ImportReportSerializer, description=_("The committed import.")),
        },
    ),
)
class ImportViewSet(
    RegisterAPIMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Spreadsheet imports: POST a file (or pasted text) to preview it, or with dry_run=false to import it.

    dry_run defaults to true, so nothing is written unless asked. A file with any error writes nothing
    and answers 400 with every located problem. GET lists the import records.
    """

    queryset = ImportRecord.objects.select_related("controller", "user")
    serializer_class = ImportRecordSerializer
    filterset_class = ImportRecordFilterSet
    permission_classes = [ImportPermission]
    throttle_classes = [ImportRateThrottle]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.request is not None and self.request.method == "POST":
            return ImportRequestSerializer
        return ImportRecordSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ImportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data.get("file")
        if upload is not None:
            if upload.size > settings.REGISTER_IMPORT_MAX_BYTES:
                raise exceptions.ValidationError(
                    {
                        "file": [
                            _("The file is larger than %(limit)s bytes.")
                            % {"limit": settings.REGISTER_IMPORT_MAX_BYTES}
                        ]
                    }
                )
            source: bytes | str = upload.read()
            file_name = upload.name
        else:
            source, file_name = data["text"], uploads.PASTED_FILE_NAME
        report = import_register(
            source,
            controller=data["controller"],
            file_name=file_name,
            dry_run=data["dry_run"],
            header_map=data.get("map") or {},
            user=request.user,
            channel=Channel.API,
        )
        body = report.to_dict()
        if not report.ok:
            source_field = "file" if upload is not None else "text"
            fields: dict[str, list[str]] = {}
            for problem in report.errors:
                fields.setdefault(_IMPORT_FIELD_CODES.get(problem.code, source_field), []).append(
                    str(problem)
                )
            raise ImportRejected(fields, problems=[problem.to_dict() for problem in report.problems])
        return Response(body, status=status.HTTP_201_CREATED if report.committed else status.HTTP_200_OK)


# --- Published versions -------------------------------------------------------------------------------


class PublishedVersionFilterSet(django_filters.FilterSet):
    controller = django_filters.CharFilter(
        field_name="controller__code", label=_("controller"), help_text=_("Code of the controller.")
    )

    class Meta:
        model = PublishedVersion
        fields = ["controller"]


class VersionDiffQuerySerializer(serializers.Serializer):
    against = serializers.RegexField(
        r"^(live|[0-9]+)$",
        required=False,
        error_messages={"invalid": _("Give a version id or “live”.")},
    )
    format = serializers.ChoiceField(choices=["json", "md", "xlsx"], default="json")
    lang = serializers.ChoiceField(choices=["zh", "en"], default="zh")


class VersionDetailQuerySerializer(serializers.Serializer):
    lang = serializers.ChoiceField(choices=["zh", "en"], default="zh")


@extend_schema_view(
    retrieve=extend_schema(
        parameters=[LANGUAGE_PARAMETER], responses={200: PublishedVersionDetailSerializer}
    ),
    create=extend_schema(
        summary=_("Publish a version"),
        request=VersionPublishSerializer,
        responses={201: PublishedVersionSerializer},
    ),
)
class PublishedVersionViewSet(
    RegisterAPIMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Published versions of a controller's disclosure table: frozen snapshots, never changed or deleted."""

    queryset = PublishedVersion.objects.select_related("controller", "published_by")
    serializer_class = PublishedVersionSerializer
    filterset_class = PublishedVersionFilterSet

    def get_serializer_class(self) -> type[BaseSerializer]:
        if self.request is not None and self.request.method == "POST":
            return VersionPublishSerializer
        return PublishedVersionSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        options = _query(VersionDetailQuerySerializer, request)
        context = {**self.get_serializer_context(), "lang": options["lang"]}
        return Response(PublishedVersionDetailSerializer(self.get_object(), context=context).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = VersionPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_publish(user=request.user, **serializer.validated_data)
        return Response(
            PublishedVersionSerializer(version, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary=_("What changed between two versions"),
        parameters=[
            OpenApiParameter(
                "against",
                str,
                pattern=r"^(live|[0-9]+)$",
                description=_(
                    "The version to compare with (its id), or live for the register as it stands; by default "
                    "the controller's previous version."
                ),
            ),
            OpenApiParameter(
                "format", str, enum=["json", "md", "xlsx"], description=_("json (the default), md or xlsx.")
            ),
            LANGUAGE_PARAMETER,
        ],
        responses={
            (200, "application/json"): VersionDiffSerializer,
            (200, MARKDOWN): OpenApiTypes.BINARY,
            (200, XLSX): OpenApiTypes.BINARY,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[JSONRenderer],
        content_negotiation_class=FileFormatNegotiation,
    )
    def diff(self, request: Request, pk: str) -> Response | HttpResponse:
        """The changes from the other version (by default the previous one) to this one; against=live gives
        the changes from this version to the register as it stands."""
        options = _query(VersionDiffQuerySerializer, request)
        version = self.get_object()
        against = options.get("against")
        if against == "live":
            diff = versions.version_diff_live(version)
        else:
            old = self._other_version(version, against)
            diff = versions.version_diff(old, version)
        fmt, lang = options["format"], options["lang"]
        if fmt == "json":
            return Response(diff.to_dict())
        name = f"{version.controller.code}-{version.label}-diff"
        if fmt == "md":
            return _download(
                versions.diff_markdown(diff, lang).encode("utf-8"),
                content_type=f"{MARKDOWN}; charset=utf-8",
                file_name=f"{name}.md",
            )
        stream = io.BytesIO()
        versions.diff_xlsx(diff, stream, lang)
        return _download(stream.getvalue(), content_type=XLSX, file_name=f"{name}.xlsx")

    def _other_version(self, version: PublishedVersion, against: str | None) -> PublishedVersion:
        if against is None:
            ordered = list(selectors.version_list(version.controller))
            position = ordered.index(version) if version in ordered else -1
            earlier = ordered[position + 1 :]
            if not earlier:
                raise InvalidFilter(
                    {"against": [_("This is the controller's first version; give against=<id> or live.")]}
                )
            return earlier[0]
        other = PublishedVersion.objects.filter(pk=int(against)).select_related("controller").first()
        if other is None or other.controller_id != version.controller_id:
            raise InvalidFilter({"against": [_("No version with this id for the same controller.")]})
        return other


# --- Findings -----------------------------------------------------------------------------------------


class FindingsQuerySerializer(serializers.Serializer):
    controller = ControllerCodeField(required=False)
    processor = serializers.PrimaryKeyRelatedField(
        queryset=Processor.objects.all(), required=False, help_text=_("Processor id.")
    )
    operation = serializers.PrimaryKeyRelatedField(
        queryset=Operation.objects.all(), required=False, help_text=_("Operation id.")
    )
    severity = serializers.MultipleChoiceField(choices=Severity.choices, required=False)


@extend_schema(
    summary=_("What the register's rules find"),
    parameters=[
        OpenApiParameter("controller", str, description=_("Only this controller's operations (its code).")),
        OpenApiParameter("processor", int, description=_("Only what concerns this processor (its id).")),
        OpenApiParameter("operation", int, description=_("Only this operation (its id).")),
        OpenApiParameter(
            "severity",
            {"type": "array", "items": {"type": "string", "enum": list(Severity.values)}},
            explode=True,
            description=_("Only findings of these severities (repeatable); the summary counts them all."),
        ),
    ],
    responses={200: FindingsSerializer},
)
class FindingsView(RegisterAPIMixin, GenericAPIView):
    """Missing contacts, separate consent, PIAs, cross-border mechanisms and more, with how to fix them."""

    queryset = Operation.objects.all()
    filter_backends: list = []
    pagination_class = None
    serializer_class = FindingsSerializer

    def get(self, request: Request) -> Response:
        options = _query(FindingsQuerySerializer, request)
        found = findings(options.get("controller"), options.get("processor"), options.get("operation"))
        summary: dict[str, Any] = {"total": len(found), **dict.fromkeys(Severity.values, 0)}
        by_rule = {rule.code: 0 for rule in RULES}
        for finding in found:
            summary[finding.severity] += 1
            by_rule[finding.code] += 1
        severities = options.get("severity")
        results = [finding.to_dict() for finding in found if not severities or finding.severity in severities]
        return Response({"summary": {**summary, "by_rule": by_rule}, "results": results})


# --- History ------------------------------------------------------------------------------------------


class _MergedHistory:
    """Several history tables as one sequence, newest first, that a paginator can count and slice.

    A page of n rows from position p reads at most p + n rows from each table, and then only the page's
    rows get their changes worked out.
    """

    def __init__(self, querysets: list[QuerySet]) -> None:
        self.querysets = [queryset.order_by("-history_date", "-history_id") for queryset in querysets]

    def count(self) -> int:
        return sum(queryset.count() for queryset in self.querysets)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list:
        stop = index.stop if isinstance(index, slice) else index + 1
        rows: list = []
        for queryset in self.querysets:
            rows.extend(queryset[:stop])
        rows.sort(key=lambda row: (row.history_date, row.history_id), reverse=True)
        return rows[index]


HISTORY_MODELS = {model._meta.model_name: model for model in history.history_models()}


class HistoryQuerySerializer(serializers.Serializer):
    model = serializers.MultipleChoiceField(choices=sorted(HISTORY_MODELS), required=False)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    # ?import= (a Python keyword) arrives here as import_id.
    import_id = serializers.IntegerField(required=False, min_value=1)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


@extend_schema(
    summary=_("Recent changes across the register"),
    parameters=[
        OpenApiParameter(
            "model",
            {"type": "array", "items": {"type": "string", "enum": sorted(HISTORY_MODELS)}},
            explode=True,
            description=_("Only changes to these kinds of record (repeatable)."),
        ),
        OpenApiParameter("channel", str, enum=list(Channel.values), description=_("Only through this door.")),
        OpenApiParameter("import", int, description=_("Only what this import (its id) changed.")),
        OpenApiParameter(
            "since", OpenApiTypes.DATETIME, description=_("Only changes at or after this time.")
        ),
        OpenApiParameter("until", OpenApiTypes.DATETIME, description=_("Only changes before this time.")),
    ],
    responses={200: HistoryEntrySerializer(many=True)},
)
class HistoryView(RegisterAPIMixin, GenericAPIView):
    """Every recorded create, change and delete, newest first, with who, when, through which channel and
    import, and each field's old and new value. Read-only."""

    permission_classes = [IsAuthenticated]
    filter_backends: list = []
    serializer_class = HistoryEntrySerializer

    def get(self, request: Request) -> Response:
        params = request.query_params.copy()
        if "import" in params:
            params.setlist("import_id", params.pop("import"))
        data = {
            name: params.getlist(name) if name == "model" else params.get(name)
            for name in HistoryQuerySerializer().fields
            if name in params
        }
        query = HistoryQuerySerializer(data=data)
        if not query.is_valid():
            raise InvalidFilter(
                {"import" if name == "import_id" else name: e for name, e in query.errors.items()}
            )
        options = query.validated_data
        models = [HISTORY_MODELS[name] for name in sorted(options.get("model") or HISTORY_MODELS)]
        missing = [
            model
            for model in models
            if not request.user.has_perm(f"processors.view_{model._meta.model_name}")
        ]
        if missing:
            raise exceptions.PermissionDenied()
        condition = Q()
        if options.get("channel"):
            condition &= Q(history_channel=options["channel"])
        if options.get("import_id"):
            condition &= Q(history_import_id=options["import_id"])
        if options.get("since"):
            condition &= Q(history_date__gte=options["since"])
        if options.get("until"):
            condition &= Q(history_date__lt=options["until"])
        rows = _MergedHistory([model.history.filter(condition) for model in models])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            [history_entry_data(entry) for entry in history.history_entries(page)]
        )


# --- Deletion notices ---------------------------------------------------------------------------------


class DeletionNoticeQuerySerializer(serializers.Serializer):
    category = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    controller = ControllerCodeField(required=False)
    include_retired = serializers.BooleanField(default=True)
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")
    lang = serializers.ChoiceField(choices=["zh", "en"], default="zh")


@extend_schema(
    summary=_("Who must be told to delete these data categories"),
    parameters=[
        OpenApiParameter(
            "category",
            {"type": "array", "items": {"type": "string"}},
            required=True,
            explode=True,
            description=_("Data category code, name or alias (repeatable; a group includes its categories)."),
        ),
        OpenApiParameter("controller", str, description=_("Only this controller's recipients (its code).")),
        OpenApiParameter(
            "include_retired", bool, description=_("Also recipients whose flow has ended (default true).")
        ),
        OpenApiParameter("format", str, enum=["json", "csv"], description=_("json (the default) or csv.")),
        LANGUAGE_PARAMETER,
    ],
    responses={(200, "application/json"): DeletionNoticeSerializer, (200, CSV): OpenApiTypes.BINARY},
)
class DeletionNoticeView(DownloadMixin, RegisterAPIMixin, GenericAPIView):
    """The recipients holding any of the categories, with their contacts, what they hold and why.

    Group recipients are expanded to their members; an unknown category is a 400 with suggestions.
    """

    queryset = Operation.objects.all()
    filter_backends: list = []
    pagination_class = None
    serializer_class = DeletionNoticeSerializer

    def get(self, request: Request) -> Response | HttpResponse:
        options = _query(DeletionNoticeQuerySerializer, request)
        try:
            notice = deletion_notice(
                options["category"],
                options.get("controller"),
                include_retired=options["include_retired"],
            )
        except NoticeError as error:
            messages = [error.message] + [
                _("“%(value)s”: did you mean %(suggestions)s?")
                % {"value": value, "suggestions": ", ".join(suggestions)}
                for value, suggestions in error.suggestions.items()
                if suggestions
            ]
            raise InvalidFilter({"category": messages}) from None
        if options["format"] == "csv":
            stream = io.BytesIO()
            deletion_notice_csv(notice, stream, options["lang"])
            day = timezone.localdate().isoformat()
            return _download(
                stream.getvalue(),
                content_type=f"{CSV}; charset=utf-8",
                file_name=f"deletion-notice-{day}.csv",
            )
        return Response(notice.to_dict())
