"""The REST API at /api/v1/: thin viewsets over the shared FilterSets, the selectors and the services.

Reads filter with the same ``OperationFilterSet`` / ``ProcessorFilterSet`` as the admin and the browser
UI; writes go through ``processors.services`` like the admin and the importer. Every error, whatever
raised it (a serializer, a FilterSet, a model's ``full_clean()``, the database), answers in one shape:
``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, QuerySet, RestrictedError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.exceptions import ErrorDetail
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import APIRootView, DefaultRouter
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from processors import selectors, services
from processors.filters import MultipleValueField, OperationFilterSet, ProcessorFilterSet
from processors.models import (
    Controller,
    DataCategory,
    Operation,
    ProcessingAction,
    Processor,
    Purpose,
    Service,
)
from processors.serializers import (
    ControllerSerializer,
    DataCategorySerializer,
    MatrixSerializer,
    OperationSerializer,
    OperationWriteSerializer,
    ProcessingActionSerializer,
    ProcessorCategoriesSerializer,
    ProcessorSerializer,
    ProcessorWriteSerializer,
    PurposeSerializer,
    ServiceSerializer,
)

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
    extra_root_links = {"matrix": "matrix", "schema": "schema", "docs": "docs"}

    def get_api_root_view(self, api_urls: Any = None) -> Any:
        list_name = self.routes[0].name
        links = {prefix: list_name.format(basename=basename) for prefix, _viewset, basename in self.registry}
        links.update(self.extra_root_links)
        return self.APIRootView.as_view(api_root_dict=links)
