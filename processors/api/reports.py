"""The API views that answer one computed document: what a processor receives, the processors ×
categories matrix, the export, the rules' findings, the register's history and deletion notices.

Thin like the viewsets: each reads its query parameters, calls one selector or core function and
answers its result (JSON, or a file chosen by ?format=); the operation filters go through the same
``OperationFilterSet`` as the list.
"""

import io
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from processors import history, selectors
from processors.api.policy import (
    CSV,
    LANGUAGE_PARAMETER,
    XLSX,
    DownloadMixin,
    FilteredObjectSchema,
    InvalidFilter,
    RegisterAPIMixin,
    RegisterPagination,
    RegisterPermission,
    download,
    read_query,
)
from processors.api.report_serializers import (
    DeletionNoticeSerializer,
    FindingSerializer,
    FindingsSerializer,
    HistoryEntrySerializer,
    MatrixSerializer,
    ProcessorCategoriesSerializer,
)
from processors.api.serializers import ControllerCodeField
from processors.filters import FindingFilterSet, OperationFilterSet
from processors.findings import (
    open_unless_asked,
    stored_findings_for_display,
    stored_findings_ordered,
    stored_findings_summary_cached,
    stored_findings_visible_to,
)
from processors.models import Channel, Controller, Finding, Operation, Processor
from processors.notices import NoticeError, deletion_notice, deletion_notice_csv
from processors.register_cache import RegisterFigures, reader_scope
from processors.spreadsheets import export

# --- What processors receive --------------------------------------------------------------------------


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


class MatrixQuerySerializer(serializers.Serializer):
    group = serializers.SlugRelatedField(
        slug_field="code",
        queryset=selectors.category_groups(),
        required=False,
        help_text=_("Code of a category group: its categories only (a drill-down)."),
    )
    by = serializers.ChoiceField(
        choices=["category", "group"],
        default="category",
        help_text=_("group: one column per category group, counting the operations with any of its items."),
    )


class MatrixPagination(RegisterPagination):
    """Recipients a page: the cells of a page stay bounded whatever the register's size."""

    page_size = 100
    max_page_size = 500


@extend_schema(
    parameters=[MatrixQuerySerializer],
    responses={200: MatrixSerializer},
    summary=_("Processors × data categories"),
)
class CategoryMatrixView(RegisterAPIMixin, GenericAPIView):
    """Processors × categories with the number of operations in each cell, for a heat map.

    Honours every operation filter; rows are the processors (paged by name: ``count``, ``next``,
    ``previous``), columns the categories occurring on the page's rows (with their sensitive flag) or,
    with ``by=group``, the category groups; only non-empty cells are listed.
    """

    queryset = Operation.objects.all()
    filterset_class = OperationFilterSet
    pagination_class = MatrixPagination
    serializer_class = MatrixSerializer
    schema = FilteredObjectSchema()

    def get(self, request: Request) -> Response:
        options = read_query(MatrixQuerySerializer, request)
        operations = self.filter_queryset(self.get_queryset())
        group = options.get("group")
        page = self.paginate_queryset(selectors.matrix_recipients(operations, group))
        matrix = selectors.category_matrix(operations, page, group=group, by_group=options["by"] == "group")
        document = {
            "count": self.paginator.page.paginator.count,
            "next": self.paginator.get_next_link(),
            "previous": self.paginator.get_previous_link(),
            "group": group.code if group else None,
            "rows": matrix.rows,
            "columns": matrix.columns,
            "cells": matrix.cells,
        }
        return Response(self.get_serializer(document).data)


# --- Export -------------------------------------------------------------------------------------------


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
        options = read_query(ExportQuerySerializer, request)
        operations = self.filter_queryset(self.get_queryset())
        stream = io.BytesIO()
        fmt, shape = options["format"], options["shape"]
        if shape == "workbook":
            export.export_workbook(operations, stream=stream)
        else:
            export.export_disclosure(operations, stream=stream, fmt=fmt, lang=options["lang"])
        day = timezone.localdate().isoformat()
        return download(
            stream.getvalue(),
            content_type=XLSX if fmt == "xlsx" else f"{CSV}; charset=utf-8",
            file_name=f"register-{shape}-{day}.{fmt}",
        )


# --- Findings -----------------------------------------------------------------------------------------


def scoped_controller(request: Request, controller: Controller | None) -> Controller | None:
    """The controller a register-wide answer covers for this user (``selectors.controller_scope``)."""
    try:
        return selectors.controller_scope(request.user, controller)
    except selectors.ControllerScopeRequired:
        message = _("Give the code of a controller you are a member of.")
        raise InvalidFilter({"controller": [message]}) from None


class FindingsPermission(RegisterPermission):
    """Reading the findings needs the operations' view permission, as the findings page does."""

    perms_map = {
        **RegisterPermission.perms_map,
        "GET": ["processors.view_operation"],
        "HEAD": ["processors.view_operation"],
    }


@extend_schema(
    summary=_("What the register's rules find"),
    description=_(
        "The stored findings, kept current by every write; open ones unless a state is given. The summary "
        "counts the findings the other filters select, whatever their severity."
    ),
    responses={200: FindingsSerializer},
)
class FindingsView(RegisterAPIMixin, GenericAPIView):
    """Missing contacts, separate consent, PIAs, cross-border mechanisms and more, with how to fix them."""

    queryset = Finding.objects.all()
    permission_classes = [FindingsPermission]
    filterset_class = FindingFilterSet
    serializer_class = FindingSerializer

    def get_queryset(self) -> Any:
        visible = stored_findings_visible_to(self.request.user, Finding.objects.all())
        return open_unless_asked(visible, self.request.query_params)

    def get(self, request: Request) -> Response:
        queryset = self.get_queryset()
        rows = self.filter_queryset(queryset)
        # The summary counts every severity of what the other filters select (as it always has).
        unfiltered_severity = request.query_params.copy()
        unfiltered_severity.pop("severity", None)
        counted = FindingFilterSet(unfiltered_severity, queryset=queryset).qs
        figures = RegisterFigures(reader_scope(request.user))
        summary = stored_findings_summary_cached(counted, figures, unfiltered_severity)
        if "severity" not in request.query_params:
            # The same findings as the summary's: the page's total is the summary's, not a second count.
            rows._stored_findings_total = summary["total"]
        page = self.paginate_queryset(stored_findings_ordered(rows))
        results = self.get_serializer(stored_findings_for_display(page), many=True).data
        response = self.get_paginated_response(results)
        response.data["summary"] = summary
        return response


# --- History ------------------------------------------------------------------------------------------


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
        rows = history.history_rows(
            model_classes=models,
            channel=options.get("channel"),
            import_record=options.get("import_id"),
            since=options.get("since"),
            until=options.get("until"),
        )
        rows = history.MergedHistory(selectors.history_visible_to(request.user, qs) for qs in rows.querysets)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([entry.to_dict() for entry in history.history_entries(page)])


# --- Deletion notices ---------------------------------------------------------------------------------


class DeletionNoticeQuerySerializer(serializers.Serializer):
    category = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    controller = ControllerCodeField(required=False)
    include_retired = serializers.BooleanField(default=True)
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")
    lang = serializers.ChoiceField(choices=["zh", "en"], default="zh")
    recipients_page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)


# Recipients per page of the JSON notice (a category every row holds names every recipient: 4.9 MB at
# 100,000 operations in one answer); the CSV holds them all.
NOTICE_RECIPIENTS_PER_PAGE = 200


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
        OpenApiParameter(
            "recipients_page", int, description=_("Page of recipients (200 a page; the CSV holds them all).")
        ),
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
        options = read_query(DeletionNoticeQuerySerializer, request)
        try:
            notice = deletion_notice(
                options["category"],
                scoped_controller(request, options.get("controller")),
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
            return download(
                stream.getvalue(),
                content_type=f"{CSV}; charset=utf-8",
                file_name=f"deletion-notice-{day}.csv",
            )
        per_page = NOTICE_RECIPIENTS_PER_PAGE
        total = len(notice.recipients)
        pages = max(1, -(-total // per_page))
        page = min(options["recipients_page"], pages)
        body = notice.to_dict(recipients=notice.recipients[(page - 1) * per_page : page * per_page])
        return Response(
            {**body, "recipients_total": total, "recipients_page": page, "recipients_pages": pages}
        )
