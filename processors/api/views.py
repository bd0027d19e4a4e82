"""The API's viewsets, one per resource the router lists: the taxonomy, the parties, processors,
operations, imports and published versions.

Thin: they translate input (serializers, query parameters) and call the selectors and services, under
the access, paging, filtering and error policy of ``processors.api.policy``. Reads filter with the same
``OperationFilterSet`` / ``ProcessorFilterSet`` as the admin and the browser UI; writes go through
``processors.services`` like the admin and the importer. The views that answer one computed document
(the matrix, findings, history, deletion notices, the export) are in ``processors.api.reports``.
"""

import io
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from processors import history, jobs, selectors, services
from processors.api.policy import (
    LANGUAGE_PARAMETER,
    MARKDOWN,
    XLSX,
    ConditionalObjectMixin,
    FileFormatNegotiation,
    HistoryPermission,
    ImportBusy,
    ImportPermission,
    ImportRateThrottle,
    ImportRejected,
    InvalidFilter,
    RegisterAPIMixin,
    ReviewPermission,
    StableOrderingMixin,
    download,
    limit_choices,
    read_query,
    stable_order,
    valid_filterset,
)
from processors.api.report_serializers import (
    HistoryEntrySerializer,
    ImportJobSerializer,
    ImportRecordSerializer,
    ImportReportSerializer,
    ImportRequestSerializer,
    PublishedVersionDetailSerializer,
    PublishedVersionSerializer,
    VersionDiffPageSerializer,
    VersionPublishSerializer,
    VersionWithdrawSerializer,
)
from processors.api.serializers import (
    ControllerSerializer,
    DataCategorySerializer,
    OperationSerializer,
    OperationWriteSerializer,
    ProcessingActionSerializer,
    ProcessorSerializer,
    ProcessorWriteSerializer,
    PurposeSerializer,
    ServiceSerializer,
)
from processors.disclosure import documents
from processors.disclosure.versions import live_diff, stored_diff, versions_listed
from processors.filters import (
    ImportRecordFilterSet,
    OperationFilterSet,
    ProcessorFilterSet,
    PublishedVersionFilterSet,
)
from processors.models import (
    Channel,
    Controller,
    ControllerRole,
    DataCategory,
    ImportRecord,
    Operation,
    ProcessingAction,
    Processor,
    PublishedVersion,
    Purpose,
    Service,
)
from processors.spreadsheets import uploads
from processors.spreadsheets.importer import IMPORT_BUSY, import_register
from processors.text import is_row_id

# --- Shared by the viewsets ---------------------------------------------------------------------------


HISTORY_LIMIT_PARAMETER = OpenApiParameter(
    "limit", int, description=_("At most this many entries, newest first (default 200, at most 1000).")
)


class HistoryLimitSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=200)


class ReadWriteViewSetMixin(ConditionalObjectMixin, RegisterAPIMixin, StableOrderingMixin):
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
        instance = self.etag_object = self.perform_create(serializer)
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
    ConditionalObjectMixin,
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
        serializer.instance = self.etag_object = services.controller_create(**serializer.validated_data)
        if not selectors.sees_every_controller(self.request.user):
            # Membership is where a user may act; whoever creates a controller may then administer it.
            services.controller_membership_grant(
                controller=serializer.instance, user=self.request.user, role=ControllerRole.ADMIN
            )

    def perform_update(self, serializer: ControllerSerializer) -> None:
        serializer.instance = services.controller_update(
            controller=serializer.instance,
            expected_version=self.expected_version,
            **serializer.validated_data,
        )


class ServiceViewSet(
    ConditionalObjectMixin,
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
        serializer.instance = self.etag_object = services.service_create(**serializer.validated_data)

    def perform_update(self, serializer: ServiceSerializer) -> None:
        serializer.instance = services.service_update(
            service=serializer.instance, expected_version=self.expected_version, **serializer.validated_data
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

    queryset = Processor.objects.select_related("member_of", "owner").prefetch_related("aliases")
    serializer_class = ProcessorSerializer
    write_serializer_class = ProcessorWriteSerializer
    filterset_class = ProcessorFilterSet

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # The FilterSet itself, not only its queryset: its resolved ?receives= categories say through
        # which operations each processor of the page receives them.
        filterset = valid_filterset(request, self.get_queryset(), self)
        page = self.paginate_queryset(stable_order(filterset.qs))
        context = self.get_serializer_context()
        categories = filterset.form.cleaned_data.get("receives")
        if categories:
            context["receipts"] = selectors.category_receipts(
                page, categories, selectors.operations_visible_to(request.user)
            )
        return self.get_paginated_response(ProcessorSerializer(page, many=True, context=context).data)

    def perform_create(self, serializer: ProcessorWriteSerializer) -> Processor:
        return services.processor_create(**serializer.validated_data)

    def perform_update(self, serializer: ProcessorWriteSerializer) -> Processor:
        return services.processor_update(
            processor=serializer.instance, expected_version=self.expected_version, **serializer.validated_data
        )

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
        limit = read_query(HistoryLimitSerializer, request)["limit"]
        processor = get_object_or_404(Processor.objects.all(), pk=pk)
        entries = history.processor_history(processor, limit=limit, user=request.user)
        return Response([entry.to_dict() for entry in entries])

    @extend_schema(
        summary=_("Mark the processor reviewed"), request=None, responses={200: ProcessorSerializer}
    )
    @action(detail=True, methods=["post"], url_path="mark-reviewed", permission_classes=[ReviewPermission])
    def mark_reviewed(self, request: Request, pk: str) -> Response:
        """Record that you reviewed the processor now; review_due moves one review interval on."""
        processor = self.get_object()
        if not selectors.edits_any_controller(request.user):
            # Processors are shared; reviewing one needs an editor's role in at least one register.
            raise exceptions.PermissionDenied(
                _("Reviewing a processor needs an editor's role in a register.")
            )
        services.processor_mark_reviewed(processor=processor, user=request.user)
        read = self.get_read_object(processor)
        return Response(ProcessorSerializer(read, context=self.get_serializer_context()).data)


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
        return selectors.operation_list(super().get_queryset()).select_related("owner")

    def get_read_object(self, instance: Operation) -> Operation:
        return self.get_queryset().get(pk=instance.pk)

    def perform_create(self, serializer: OperationWriteSerializer) -> Operation:
        fields = _with_published_items_text(serializer.validated_data)
        return services.operation_create(taxonomy=serializer.taxonomy, **fields)

    def perform_update(self, serializer: OperationWriteSerializer) -> Operation:
        fields = _with_published_items_text(serializer.validated_data)
        return services.operation_update(
            operation=serializer.instance,
            taxonomy=serializer.taxonomy,
            expected_version=self.expected_version,
            **fields,
        )

    def perform_destroy(self, instance: Operation) -> None:
        services.operation_delete(operation=instance, expected_version=self.expected_version)

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
        limit = read_query(HistoryLimitSerializer, request)["limit"]
        operation = get_object_or_404(selectors.operations_visible_to(request.user), pk=pk)
        return Response([entry.to_dict() for entry in history.history_for(operation, limit=limit)])

    @extend_schema(
        summary=_("Mark the operation reviewed"), request=None, responses={200: OperationSerializer}
    )
    @action(detail=True, methods=["post"], url_path="mark-reviewed", permission_classes=[ReviewPermission])
    def mark_reviewed(self, request: Request, pk: str) -> Response:
        """Record that you reviewed the operation now; review_due moves one review interval on."""
        # get_object narrows to the controllers where the user is an editor (a POST): others are a 404.
        operation = services.operation_mark_reviewed(operation=self.get_object(), user=request.user)
        read = self.get_read_object(operation)
        return Response(OperationSerializer(read, context=self.get_serializer_context()).data)


def _with_published_items_text(validated_data: dict) -> dict:
    # Items given as a list still leave the register a published form of them, as an import would.
    fields = dict(validated_data)
    if fields.get("data_items") and not fields.get("data_items_text"):
        fields["data_items_text"] = "、".join(fields["data_items"])
    return fields


# --- Imports ------------------------------------------------------------------------------------------


_IMPORT_FIELD_CODES = {"header_map": "map"}


@extend_schema_view(
    create=extend_schema(
        summary=_("Import (or preview) a disclosure table"),
        request={"multipart/form-data": ImportRequestSerializer},
        responses={
            200: OpenApiResponse(ImportReportSerializer, description=_("The preview of a dry run.")),
            202: OpenApiResponse(
                ImportJobSerializer,
                description=_("The import runs as a background job; poll the URL in its Location header."),
            ),
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

    dry_run defaults to true, so nothing is written unless asked. A preview with any error answers 400
    with every located problem. A real import answers 202 at once: it runs as a background job
    (processors.jobs), whose state — rows done of the total, then the counts or the located problems of a
    failed import, which writes nothing — is at the job URL in the Location header. GET lists the import
    records.
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
        limit_choices(serializer, request.user, role=ControllerRole.EDITOR)
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
        if not data["dry_run"]:
            return self._start_job(request, data, source, file_name)
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
        if any(problem.code == IMPORT_BUSY for problem in report.errors):
            raise ImportBusy()
        if not report.ok:
            source_field = "file" if upload is not None else "text"
            fields: dict[str, list[str]] = {}
            for problem in report.errors:
                fields.setdefault(_IMPORT_FIELD_CODES.get(problem.code, source_field), []).append(
                    str(problem)
                )
            raise ImportRejected(fields, problems=[problem.to_dict() for problem in report.problems])
        return Response(body, status=status.HTTP_201_CREATED if report.committed else status.HTTP_200_OK)

    def _start_job(self, request: Request, data: dict, source: bytes | str, file_name: str) -> Response:
        source_field = "text" if isinstance(source, str) else "file"
        try:
            stored = uploads.upload_store(
                user=request.user,
                controller=data["controller"],
                file_name=file_name,
                **({"text": source} if isinstance(source, str) else {"data": source}),
            )
            if data.get("map"):
                uploads.upload_set_header_map(stored.token, request.user, header_map=data["map"])
            record = jobs.import_job_start(stored.token, request.user, channel=Channel.API)
        except uploads.UploadError as error:
            if error.code == IMPORT_BUSY:
                raise ImportBusy() from None
            field = "map" if error.code == "header_map" else source_field
            raise exceptions.ValidationError({field: [error.message]}) from None
        url = request.build_absolute_uri(reverse("api:import-job", args=[record.pk]))
        body = {**jobs.import_job_state(record).to_dict(), "url": url}
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})

    @extend_schema(summary=_("An import job's state"), responses={200: ImportJobSerializer})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def job(self, request: Request, pk: str) -> Response:
        """Where a background import is: queued, running (rows done of the total), imported or failed."""
        state = jobs.import_job_get(request.user, pk) if is_row_id(pk) else None
        if state is None:
            raise exceptions.NotFound()
        url = request.build_absolute_uri(reverse("api:import-job", args=[state.record.pk]))
        return Response({**state.to_dict(), "url": url})


# --- Published versions -------------------------------------------------------------------------------


class VersionDiffQuerySerializer(serializers.Serializer):
    against = serializers.RegexField(
        r"^(live|[0-9]+)$",
        required=False,
        error_messages={"invalid": _("Give a version id or “live”.")},
    )
    format = serializers.ChoiceField(choices=["json", "md", "xlsx"], default="json")
    lang = serializers.ChoiceField(choices=["zh", "en"], default="zh")
    changes_page = serializers.IntegerField(
        min_value=1,
        default=1,
        help_text=_("Page of the changes (500 a page; see changes_pages). The counts are of all of them."),
    )


# A diff's changes come a page at a time: one change of a new recipient carries its whole row.
DIFF_CHANGES_PER_PAGE = 500


class VersionDetailQuerySerializer(serializers.Serializer):
    lang = serializers.ChoiceField(choices=["zh", "en"], default="zh")
    rows_page = serializers.IntegerField(
        min_value=1, default=1, help_text=_("Page of the table's rows (1,000 a page; see rows_pages).")
    )


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

    def get_queryset(self) -> QuerySet[PublishedVersion]:
        # The snapshot, stored pages and diffs are never read whole here: rows and diffs come by index.
        return versions_listed(super().get_queryset())

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        options = read_query(VersionDetailQuerySerializer, request)
        context = {**self.get_serializer_context(), **options}
        return Response(PublishedVersionDetailSerializer(self.get_object(), context=context).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = VersionPublishSerializer(data=request.data)
        limit_choices(serializer, request.user, role=ControllerRole.PUBLISHER)
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
            OpenApiParameter(
                "changes_page",
                int,
                description=_(
                    "Page of the changes (500 a page; see changes_pages). The counts are of all of them."
                ),
            ),
            LANGUAGE_PARAMETER,
        ],
        responses={
            (200, "application/json"): VersionDiffPageSerializer,
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
        options = read_query(VersionDiffQuerySerializer, request)
        version = self.get_object()
        against = options.get("against")
        if against == "live":
            diff = live_diff(version)
        else:
            diff = stored_diff(self._other_version(version, against), version)
        fmt, lang = options["format"], options["lang"]
        if fmt == "json":
            data = diff.to_dict()
            total = len(data["changes"])
            pages = max(1, -(-total // DIFF_CHANGES_PER_PAGE))
            page = min(options["changes_page"], pages)
            start = (page - 1) * DIFF_CHANGES_PER_PAGE
            data["changes"] = data["changes"][start : start + DIFF_CHANGES_PER_PAGE]
            return Response({**data, "changes_total": total, "changes_page": page, "changes_pages": pages})
        name = f"{version.controller.code}-{version.label}-diff"
        if fmt == "md":
            return download(
                documents.diff_markdown(diff, lang).encode("utf-8"),
                content_type=f"{MARKDOWN}; charset=utf-8",
                file_name=f"{name}.md",
            )
        stream = io.BytesIO()
        documents.diff_xlsx(diff, stream, lang)
        return download(stream.getvalue(), content_type=XLSX, file_name=f"{name}.xlsx")

    @extend_schema(
        summary=_("Withdraw a version"),
        request=VersionWithdrawSerializer,
        responses={200: PublishedVersionSerializer},
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        """Mark the version withdrawn with a reason; its content stays as published."""
        version = self.get_object()
        publishable = selectors.controllers_for(request.user, role=ControllerRole.PUBLISHER)
        if not request.user.has_perm("processors.add_publishedversion") or not (
            publishable.filter(pk=version.controller_id).exists()
        ):
            raise exceptions.PermissionDenied
        serializer = VersionWithdrawSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_withdraw(
            version=version, user=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(PublishedVersionSerializer(version, context=self.get_serializer_context()).data)

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
        other = versions_listed(PublishedVersion.objects.filter(pk=int(against))).first()
        if other is None or other.controller_id != version.controller_id:
            raise InvalidFilter({"against": [_("No version with this id for the same controller.")]})
        return other
