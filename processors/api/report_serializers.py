"""Representations of the API's computed answers: what a processor receives, the matrix, import reports
and records, published versions and their diffs, findings, history and deletion notices.

Most document the ``to_dict()`` of a domain object (``ImportReport``, ``VersionDiff``, ``HistoryEntry``,
``DeletionNotice``...) for the schema; the views answer those dictionaries as they are.
"""

import json
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from processors.api.serializers import (
    CategorySummarySerializer,
    ControllerCodeField,
    ProcessorSummarySerializer,
    PurposeSummarySerializer,
    ServiceSummarySerializer,
)
from processors.disclosure import versions
from processors.disclosure.rows import rows_from_snapshot
from processors.models import ImportRecord, PublishedVersion

# --- Answers computed by selectors --------------------------------------------------------------------


class CategoryReceiptSerializer(serializers.Serializer):
    category = CategorySummarySerializer()
    via_group = serializers.BooleanField(
        help_text=_("Received only through the group the processor belongs to.")
    )
    operations = serializers.ListField(
        child=serializers.IntegerField(), help_text=_("Ids of the operations.")
    )
    services = ServiceSummarySerializer(many=True)
    purposes = PurposeSummarySerializer(many=True)


class UnmappedReceiptSerializer(serializers.Serializer):
    text = serializers.CharField()
    operation = serializers.IntegerField()


class ProcessorCategoriesSerializer(serializers.Serializer):
    processor = ProcessorSummarySerializer()
    categories = CategoryReceiptSerializer(many=True)
    unmapped_items = UnmappedReceiptSerializer(
        many=True, help_text=_("Items it receives that no category matched.")
    )


class MatrixRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    operations = serializers.IntegerField(help_text=_("Operations of this processor matching the filters."))


class MatrixCellSerializer(serializers.Serializer):
    processor = serializers.IntegerField(help_text=_("Row: id of the processor."))
    category = serializers.CharField(help_text=_("Column: code of the category."))
    operations = serializers.IntegerField(help_text=_("Number of its operations that send this category."))


class MatrixSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text=_("Processors in the whole matrix (rows are paged)."))
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    group = serializers.CharField(allow_null=True, help_text=_("The category group drilled into, if any."))
    rows = MatrixRowSerializer(many=True)
    columns = CategorySummarySerializer(many=True)
    cells = MatrixCellSerializer(many=True)


# --- Imports ------------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "example": "合作单位=recipient"},
        "description": "Repeatable HEADER=field pairs, or one JSON object {header: field}.",
    }
)
class HeaderMapField(serializers.Field):
    """Header mappings as repeated "HEADER=field" values, or a JSON object (a dict, or its text)."""

    default_error_messages = {
        "pair": _("Write a header mapping as “HEADER=field”, not “%(pair)s”."),
        "json": _("A header mapping given as JSON must be an object of header → field names."),
    }

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):  # multipart or form data: every repetition
            values = dictionary.getlist(self.field_name)
            return values if values else serializers.empty
        return dictionary.get(self.field_name, serializers.empty)

    def to_internal_value(self, data) -> dict[str, str]:
        values = data if isinstance(data, list) else [data]
        header_map: dict[str, str] = {}
        for value in values:
            if isinstance(value, str) and value.strip().startswith("{"):
                try:
                    value = json.loads(value)
                except ValueError:
                    self.fail("json")
            if isinstance(value, dict):
                if not all(isinstance(key, str) and isinstance(item, str) for key, item in value.items()):
                    self.fail("json")
                header_map.update({key.strip(): item.strip() for key, item in value.items()})
                continue
            if not isinstance(value, str):
                self.fail("json")
            header, separator, field_name = value.rpartition("=")
            if not separator or not header.strip() or not field_name.strip():
                self.fail("pair", pair=value)
            header_map[header.strip()] = field_name.strip()
        return header_map

    def to_representation(self, value):
        return [f"{header}={field_name}" for header, field_name in value.items()]


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(
        required=False, help_text=_("The disclosure table (.xlsx, .csv or .tsv); or give text.")
    )
    text = serializers.CharField(
        required=False, trim_whitespace=False, help_text=_("The table pasted as tab-separated text.")
    )
    controller = ControllerCodeField()
    dry_run = serializers.BooleanField(
        default=True,
        help_text=_("True (the default) previews and writes nothing; false imports."),
    )
    map = HeaderMapField(required=False, help_text=_("Read an unknown header as this field (or 'ignore')."))

    def validate(self, attrs: dict) -> dict:
        if ("file" in attrs) == ("text" in attrs):
            raise serializers.ValidationError(
                {"file": [_("Give either a file or text, not both or neither.")]}
            )
        if "text" in attrs and not attrs["text"].strip():
            raise serializers.ValidationError({"text": [_("The pasted text is empty.")]})
        return attrs


class ImportProblemSerializer(serializers.Serializer):
    level = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()
    location = serializers.CharField()
    sheet = serializers.CharField()
    row = serializers.IntegerField(allow_null=True)
    column = serializers.CharField()
    header = serializers.CharField()
    value = serializers.CharField()
    suggestions = serializers.ListField(child=serializers.CharField())


class EntityCountsSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    changed = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class ImportCountsSerializer(serializers.Serializer):
    processors = EntityCountsSerializer()
    services = EntityCountsSerializer()
    operations = EntityCountsSerializer()


class ImportReportSerializer(serializers.Serializer):
    """The import core's report (documentation of ``ImportReport.to_dict()``)."""

    file_name = serializers.CharField()
    controller = serializers.CharField()
    dry_run = serializers.BooleanField()
    committed = serializers.BooleanField()
    ok = serializers.BooleanField()
    rows = serializers.IntegerField()
    imported_by = serializers.CharField()
    counts = ImportCountsSerializer()
    errors = ImportProblemSerializer(many=True)
    warnings = ImportProblemSerializer(many=True)
    import_record_id = serializers.IntegerField(
        allow_null=True, help_text=_("The import record kept of this run (see /imports/{id}/).")
    )
    shape = serializers.CharField(help_text=_("disclosure (the five-column table) or workbook."))


class ImportJobSerializer(serializers.Serializer):
    """A background import's state (documentation of ``processors.jobs.ImportJobState.to_dict()``)."""

    id = serializers.IntegerField(help_text=_("The import record of the job (see /imports/{id}/)."))
    url = serializers.URLField(help_text=_("Where to poll the job."))
    status = serializers.CharField(
        help_text=_("queued (waiting for a worker), running, imported or failed (nothing was written)."),
    )
    status_label = serializers.CharField()
    finished = serializers.BooleanField()
    committed = serializers.BooleanField()
    file_name = serializers.CharField()
    controller = serializers.CharField(allow_null=True)
    rows_done = serializers.IntegerField()
    rows_total = serializers.IntegerField(
        allow_null=True, help_text=_("The rows to import, when a preview counted them.")
    )
    percent = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    counts = serializers.DictField(
        help_text=_("When finished: rows, and created/changed/unchanged per entity.")
    )
    errors = ImportProblemSerializer(many=True)
    warnings = ImportProblemSerializer(many=True)


class ImportRecordSerializer(serializers.ModelSerializer):
    controller = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    # The name stored at import time: it stays when the user account is gone (docs/decisions.md).
    user = serializers.CharField(source="username", read_only=True, allow_null=True)
    counts = serializers.JSONField(read_only=True)
    problems = serializers.JSONField(read_only=True)

    class Meta:
        model = ImportRecord
        fields = [
            "id",
            "controller",
            "user",
            "channel",
            "file_name",
            "sha256",
            "size",
            "shape",
            "dry_run",
            "result",
            "counts",
            "problems",
            "started_at",
            "duration_ms",
        ]


# --- Published versions -------------------------------------------------------------------------------


class PublishedVersionSerializer(serializers.ModelSerializer):
    controller = serializers.SlugRelatedField(slug_field="code", read_only=True)
    published_by = serializers.CharField(source="published_by_name", read_only=True, allow_null=True)
    operations = serializers.SerializerMethodField(help_text=_("Number of operations frozen in it."))
    withdrawn = serializers.BooleanField(read_only=True, help_text=_("Withdrawn: no longer in effect."))
    withdrawn_by = serializers.CharField(source="withdrawn_by_name", read_only=True)

    class Meta:
        model = PublishedVersion
        fields = [
            "id",
            "controller",
            "label",
            "updated_on",
            "effective_on",
            "notes",
            "snapshot_sha256",
            "published_at",
            "published_by",
            "operations",
            "override_reason",
            "withdrawn",
            "withdrawn_at",
            "withdrawn_by",
            "withdrawal_reason",
        ]

    def get_operations(self, version: PublishedVersion) -> int:
        return version_rows(version)


def version_rows(version: PublishedVersion) -> int:
    """The version's number of rows, counted at publication (written once, from its snapshot, for a
    version published before rows were kept)."""
    if not version.row_count:
        versions.ensure_entries(version)
    return version.row_count


class DisclosureRowSerializer(serializers.Serializer):
    service = serializers.CharField()
    recipient = serializers.CharField()
    data_items = serializers.CharField(help_text=_("Sensitive items are followed by a mark (*)."))
    purpose = serializers.CharField()
    actions = serializers.CharField()
    destinations = serializers.ListField(child=serializers.CharField())


# A version's rows come a page at a time (?rows_page=), so a 100,000-row table is not one response.
VERSION_ROWS_PER_PAGE = 1000


class PublishedVersionDetailSerializer(PublishedVersionSerializer):
    rows = serializers.SerializerMethodField(
        help_text=_("The published disclosure table, row by row (one page of rows_page).")
    )
    rows_pages = serializers.SerializerMethodField(help_text=_("Pages of rows (?rows_page=1 … rows_pages)."))

    class Meta(PublishedVersionSerializer.Meta):
        fields = [*PublishedVersionSerializer.Meta.fields, "rows", "rows_pages"]

    def get_rows_pages(self, version: PublishedVersion) -> int:
        return max(1, -(-version_rows(version) // VERSION_ROWS_PER_PAGE))

    @extend_schema_field(DisclosureRowSerializer(many=True))
    def get_rows(self, version: PublishedVersion) -> list[dict]:
        # One page of the version's rows, read by index: never its whole snapshot (issue 13).
        start = (self.context.get("rows_page", 1) - 1) * VERSION_ROWS_PER_PAGE
        entries = versions.entries_page(version, start, VERSION_ROWS_PER_PAGE)
        rows = rows_from_snapshot({"operations": entries}, self.context.get("lang", "zh"))
        return [
            {
                "service": row.service,
                "recipient": row.recipient,
                "data_items": row.data_items_text("*"),
                "purpose": row.purpose,
                "actions": row.actions,
                "destinations": list(row.destinations),
            }
            for row in rows
        ]


class VersionPublishSerializer(serializers.ModelSerializer):
    controller = ControllerCodeField()

    class Meta:
        model = PublishedVersion
        fields = ["controller", "label", "updated_on", "effective_on", "notes", "override_reason"]
        # The service checks the label is new (with its own message) and the dates' order.
        validators: list = []


class VersionWithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text=_("Why the version is withdrawn (kept on it)."))


class VersionRefSerializer(serializers.Serializer):
    label = serializers.CharField()
    updated_on = serializers.DateField(allow_null=True)
    effective_on = serializers.DateField(allow_null=True)
    sha256 = serializers.CharField()
    live = serializers.BooleanField()


class VersionChangeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    kind_label = serializers.CharField()
    impact = serializers.CharField()
    key = serializers.CharField()
    service = serializers.CharField()
    service_en = serializers.CharField()
    recipient = serializers.CharField()
    recipient_en = serializers.CharField()
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)
    items = serializers.ListField(child=serializers.JSONField())
    sensitive = serializers.BooleanField()
    reconsent = serializers.BooleanField()
    entry = serializers.JSONField(allow_null=True)


class VersionDiffSerializer(serializers.Serializer):
    """Documentation of ``VersionDiff.to_dict()``."""

    old = VersionRefSerializer()
    new = VersionRefSerializer()
    controller = serializers.JSONField(allow_null=True)
    has_changes = serializers.BooleanField()
    material = serializers.BooleanField()
    reconsent_required = serializers.BooleanField()
    counts = serializers.DictField(child=serializers.IntegerField())
    recipients_added = serializers.IntegerField()
    recipients_removed = serializers.IntegerField()
    changes = VersionChangeSerializer(many=True)


class VersionDiffPageSerializer(VersionDiffSerializer):
    """``VersionDiff.to_dict()`` with one page of its changes (``?changes_page=``); counts cover them all."""

    changes_total = serializers.IntegerField()
    changes_page = serializers.IntegerField()
    changes_pages = serializers.IntegerField()


# --- Findings -----------------------------------------------------------------------------------------


class FindingSubjectSerializer(serializers.Serializer):
    model = serializers.CharField(help_text=_("app_label.model_name, e.g. processors.operation."))
    id = serializers.IntegerField()
    label = serializers.CharField()


class FindingSerializer(serializers.Serializer):
    """A stored finding: its rule (worded in the request's language), subject, message and state."""

    id = serializers.IntegerField()
    code = serializers.CharField(source="rule")
    severity = serializers.CharField()
    reference = serializers.SerializerMethodField()
    title = serializers.SerializerMethodField()
    fix = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    detail = serializers.CharField(source="message")
    state = serializers.CharField()
    state_reason = serializers.CharField()
    state_by = serializers.SerializerMethodField()
    state_at = serializers.DateTimeField(allow_null=True)
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)

    def _rule_text(self, row: Any, name: str) -> str:
        return str(getattr(row.rule_info, name)) if row.rule_info is not None else ""

    def get_reference(self, row: Any) -> str:
        return self._rule_text(row, "reference")

    def get_title(self, row: Any) -> str:
        return self._rule_text(row, "title")

    def get_fix(self, row: Any) -> str:
        return self._rule_text(row, "fix")

    @extend_schema_field(FindingSubjectSerializer)
    def get_subject(self, row: Any) -> dict[str, Any]:
        model, pk = (
            ("processors.operation", row.operation_id)
            if row.operation_id
            else ("processors.processor", row.processor_id)
        )
        return {"model": model, "id": pk, "label": row.subject_label}

    def get_state_by(self, row: Any) -> str:
        return row.state_by.get_username() if row.state_by is not None else ""


class FindingsSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()
    by_rule = serializers.DictField(child=serializers.IntegerField())


class FindingsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    summary = FindingsSummarySerializer()
    results = FindingSerializer(many=True)


# --- History ------------------------------------------------------------------------------------------


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()
    old = serializers.CharField()
    new = serializers.CharField()
    old_value = serializers.JSONField(allow_null=True)
    new_value = serializers.JSONField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    """Documentation of ``HistoryEntry.to_dict()``."""

    history_id = serializers.IntegerField()
    model = serializers.CharField()
    model_label = serializers.CharField()
    object_id = serializers.IntegerField()
    object_label = serializers.CharField()
    date = serializers.DateTimeField()
    type = serializers.CharField()
    type_label = serializers.CharField()
    user_id = serializers.IntegerField(allow_null=True)
    user = serializers.CharField()
    channel = serializers.CharField()
    channel_label = serializers.CharField()
    import_id = serializers.IntegerField(allow_null=True)
    changes = FieldChangeSerializer(many=True)


# --- Deletion notices ---------------------------------------------------------------------------------


class NoticeProcessorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    contact_phone = serializers.CharField()
    contact_email = serializers.CharField()
    website = serializers.CharField()
    address = serializers.CharField()
    country = serializers.CharField()


class NoticeGroupSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class NoticeServiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    name_en = serializers.CharField()


class NoticeRecipientSerializer(serializers.Serializer):
    processor = NoticeProcessorSerializer()
    groups = NoticeGroupSerializer(many=True)
    direct = serializers.BooleanField()
    has_contact = serializers.BooleanField()
    categories = CategorySummarySerializer(many=True)
    services = NoticeServiceSerializer(many=True)
    relationships = serializers.ListField(child=serializers.CharField())
    operations = serializers.ListField(child=serializers.IntegerField())
    active = serializers.BooleanField()


class NoticeCategorySerializer(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()


class DeletionNoticeSerializer(serializers.Serializer):
    """Documentation of ``DeletionNotice.to_dict()``."""

    categories = NoticeCategorySerializer(many=True)
    controller = serializers.CharField(allow_null=True)
    include_retired = serializers.BooleanField()
    generated_on = serializers.DateField()
    recipients = NoticeRecipientSerializer(
        many=True, help_text=_("One page of recipients (recipients_page).")
    )
    without_contact = serializers.IntegerField()
    recipients_total = serializers.IntegerField()
    recipients_page = serializers.IntegerField()
    recipients_pages = serializers.IntegerField()
