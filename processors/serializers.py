"""API representations: readable on their own when read, forgiving about names when written.

Reads nest what a client needs to understand a row (an operation carries its processor, categories,
verbatim data items, purposes and actions), so nobody has to chase links. Writes accept categories as
data-item texts (codes, names or aliases, mapped by the taxonomy) and purposes and actions by code, name
or alias; serializers only translate input, and the viewsets hand it to ``processors.services``.
"""

import json
from functools import cached_property

from django.utils.translation import gettext_lazy as _
from django_countries.serializer_fields import CountryField
from django_countries.serializers import CountryFieldMixin
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from processors.models import (
    Controller,
    DataCategory,
    DataItem,
    ImportRecord,
    Operation,
    ProcessingAction,
    Processor,
    PublishedVersion,
    Purpose,
    Service,
)
from processors.taxonomy import Taxonomy

# --- Small nested shapes ------------------------------------------------------------------------------


# A processor's own fields, the same in the read and the write representation.
PROCESSOR_OWN_FIELDS = [
    "name_zh",
    "name_en",
    "kind",
    "member_of",
    "aliases",
    "contact_phone",
    "contact_email",
    "address",
    "website",
    "privacy_policy_url",
    "country",
    "uscc",
    "icp_filing",
    "public_security_filing",
    "notes",
]

# The operation's own fields, the same in the read and the write representation.
OPERATION_OWN_FIELDS = [
    "relationship",
    "sharing_method",
    "usage_scenario",
    "feature_necessary",
    "legal_basis",
    "consent_type",
    "retention_at_recipient",
    "cross_border",
    "destination_countries",
    "transfer_mechanism",
    "annual_subjects",
    "annual_sensitive_subjects",
    "contract_reference",
    "pia_reference",
    "pia_date",
    "status",
    "effective_from",
    "effective_to",
    "source_text",
    "notes",
]


class CategorySummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = DataCategory
        fields = ["code", "name_zh", "name_en", "sensitive"]


class PurposeSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Purpose
        fields = ["code", "name_zh", "name_en"]


class ActionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = ProcessingAction
        fields = ["code", "name_zh", "name_en", "pipl_article_4"]


class ControllerSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Controller
        fields = ["code", "name_zh", "name_en"]


class ServiceSummarySerializer(serializers.ModelSerializer):
    controller = ControllerSummarySerializer(read_only=True)

    class Meta:
        model = Service
        fields = ["id", "name", "name_en", "controller"]


class ProcessorSummarySerializer(serializers.ModelSerializer):
    country = CountryField(read_only=True, allow_blank=True)

    class Meta:
        model = Processor
        fields = [
            "id",
            "name_zh",
            "name_en",
            "kind",
            "member_of",
            "contact_phone",
            "contact_email",
            "country",
        ]


class DataItemSerializer(serializers.ModelSerializer):
    category = CategorySummarySerializer(read_only=True, allow_null=True)
    unmapped = serializers.BooleanField(
        source="needs_review", read_only=True, help_text=_("No category matched: needs review.")
    )

    class Meta:
        model = DataItem
        fields = ["position", "text", "category", "match", "unmapped"]


# --- Taxonomy -----------------------------------------------------------------------------------------


class DataCategorySerializer(serializers.ModelSerializer):
    parent = serializers.SerializerMethodField(help_text=_("Code of the parent group; null for a group."))
    depth = serializers.IntegerField(read_only=True, help_text=_("0 for a group, 1 for its categories."))
    aliases = serializers.SerializerMethodField(help_text=_("Other names real tables use for it."))

    class Meta:
        model = DataCategory
        fields = [
            "code",
            "parent",
            "depth",
            "name_zh",
            "name_en",
            "description_zh",
            "description_en",
            "sensitive",
            "sensitive_gbt45574",
            "effective_sensitive_gbt45574",
            "position",
            "aliases",
        ]

    def get_parent(self, category: DataCategory) -> str | None:
        # The dotted code is the path, so the parent needs no join.
        return category.code.rpartition(".")[0] or None

    def get_aliases(self, category: DataCategory) -> list[str]:
        return [alias.text for alias in category.aliases.all()]


class PurposeSerializer(serializers.ModelSerializer):
    aliases = serializers.SerializerMethodField(help_text=_("Other names real tables use for it."))

    class Meta:
        model = Purpose
        fields = ["code", "name_zh", "name_en", "description_zh", "description_en", "position", "aliases"]

    def get_aliases(self, purpose: Purpose) -> list[str]:
        return [alias.text for alias in purpose.aliases.all()]


class ProcessingActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProcessingAction
        fields = ["code", "name_zh", "name_en", "pipl_article_4", "position"]


# --- Parties ------------------------------------------------------------------------------------------


class ControllerSerializer(CountryFieldMixin, serializers.ModelSerializer):
    extra_sensitive_categories = serializers.SlugRelatedField(
        slug_field="code",
        many=True,
        read_only=True,
        help_text=_(
            "Categories this organisation treats as sensitive beyond the standard (edited in the admin)."
        ),
    )

    class Meta:
        model = Controller
        fields = [
            "code",
            "name_zh",
            "name_en",
            "country",
            "website",
            "privacy_policy_url",
            "contact_email",
            "contact_phone",
            "address",
            "disclosure_public",
            "extra_sensitive_categories",
            "created_at",
            "updated_at",
        ]
        # The service's full_clean() checks uniqueness and constraints; doing it here too would only drift.
        validators: list = []
        extra_kwargs = {"code": {"validators": []}}


class ControllerCodeField(serializers.SlugRelatedField):
    """A controller by its code; a code no database can hold (a NUL character) is unknown, not a 500."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("slug_field", "code")
        kwargs.setdefault("queryset", Controller.objects.all())
        kwargs.setdefault("help_text", _("Code of the controller."))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class ServiceSerializer(serializers.ModelSerializer):
    controller = ControllerCodeField()

    class Meta:
        model = Service
        fields = [
            "id",
            "controller",
            "name",
            "name_en",
            "description",
            "sdk_name",
            "sdk_package",
            "sdk_version",
            "sdk_privacy_policy_url",
            "device_permissions",
            "created_at",
            "updated_at",
        ]
        validators: list = []


class ReceiptServiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ReceiptSerializer(serializers.Serializer):
    """One operation through which a processor receives the asked-for categories."""

    operation = serializers.IntegerField(help_text=_("Id of the operation."))
    processor = serializers.IntegerField(
        help_text=_("The operation's processor: this processor, or the group it belongs to.")
    )
    service = ReceiptServiceSerializer()
    controller = serializers.CharField(help_text=_("Code of the controller."))
    categories = serializers.ListField(
        child=serializers.CharField(), help_text=_("Codes of the matched categories this operation sends.")
    )


class ProcessorSerializer(serializers.ModelSerializer):
    country = CountryField(read_only=True, allow_blank=True)
    member_of = ProcessorSummarySerializer(read_only=True, allow_null=True)
    aliases = serializers.SerializerMethodField(help_text=_("Other names the processor is known by."))
    via = serializers.SerializerMethodField(
        help_text=_("With ?receives=: the operations through which it receives those categories; else null.")
    )

    class Meta:
        model = Processor
        fields = [
            "id",
            *PROCESSOR_OWN_FIELDS,
            "created_at",
            "updated_at",
            "via",
        ]

    def get_aliases(self, processor: Processor) -> list[str]:
        return [alias.text for alias in processor.aliases.all()]

    @extend_schema_field(ReceiptSerializer(many=True, allow_null=True))
    def get_via(self, processor: Processor) -> list[dict] | None:
        receipts = self.context.get("receipts")
        return None if receipts is None else receipts.get(processor.pk, [])


class ProcessorWriteSerializer(CountryFieldMixin, serializers.ModelSerializer):
    member_of = serializers.PrimaryKeyRelatedField(
        queryset=Processor.objects.filter(kind=Processor.Kind.GROUP),
        allow_null=True,
        required=False,
        help_text=_("Id of the group this processor belongs to."),
    )
    aliases = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        write_only=True,
        help_text=_("Other names; on update the list replaces the current ones."),
    )

    class Meta:
        model = Processor
        fields = [
            *PROCESSOR_OWN_FIELDS,
        ]
        validators: list = []

    def to_representation(self, processor: Processor) -> dict:
        # What the browsable API pre-fills in its edit form: the same shape the client sends.
        return {
            **super().to_representation(processor),
            "aliases": [alias.text for alias in processor.aliases.all()],
        }


# --- Operations ---------------------------------------------------------------------------------------


class OperationSerializer(serializers.ModelSerializer):
    service = ServiceSummarySerializer(read_only=True)
    processor = ProcessorSummarySerializer(read_only=True)
    categories = serializers.SerializerMethodField(
        help_text=_("The distinct categories its data items map to, in code order.")
    )
    data_items = DataItemSerializer(many=True, read_only=True)
    unmapped_items = serializers.SerializerMethodField(
        help_text=_("Published items no category matched (kept verbatim, needing review).")
    )
    purposes = PurposeSummarySerializer(many=True, read_only=True)
    actions = ActionSummarySerializer(many=True, read_only=True)
    destination_countries = serializers.ListField(child=CountryField(), read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "service",
            "processor",
            "recipient_qualifier",
            "categories",
            "data_items",
            "unmapped_items",
            "data_items_text",
            "purposes",
            "purpose_text",
            "actions",
            "actions_text",
            "actions_open_ended",
            *OPERATION_OWN_FIELDS,
            "created_at",
            "updated_at",
        ]
        # Never used for input (OperationWriteSerializer is), but not read-only either: DRF drops
        # allow_blank from read-only choice fields, and the schema must say "" is a possible answer.

    @extend_schema_field(CategorySummarySerializer(many=True))
    def get_categories(self, operation: Operation) -> list[dict]:
        # Plain dicts: a serializer built per row would cost more than the whole row's SQL.
        categories = {
            item.category.code: item.category for item in operation.data_items.all() if item.category
        }
        return [
            {
                "code": code,
                "name_zh": category.name_zh,
                "name_en": category.name_en,
                "sensitive": category.sensitive,
            }
            for code, category in sorted(categories.items())
        ]

    def get_unmapped_items(self, operation: Operation) -> list[str]:
        return [item.text for item in operation.data_items.all() if item.category_id is None]


class TermListField(serializers.ListField):
    """A list of purposes or actions given by code, Chinese or English name, or alias."""

    child = serializers.CharField(max_length=200)


class OperationWriteSerializer(serializers.ModelSerializer):
    service = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(), help_text=_("Id of the service.")
    )
    processor = serializers.PrimaryKeyRelatedField(
        queryset=Processor.objects.all(), help_text=_("Id of the processor (an organisation or a group).")
    )
    data_items = serializers.ListField(
        child=serializers.CharField(max_length=500),
        required=False,
        write_only=True,
        help_text=_(
            "Data items as published (手机号, basic.phone_number, phone number…), each mapped onto "
            "categories by code, name or alias; one no category matches is kept as an unmapped item and "
            "reported in unmapped_items. On update the list replaces the current items."
        ),
    )
    purposes = TermListField(
        required=False,
        write_only=True,
        help_text=_(
            "Purposes by code, name or alias; an unknown one is an error. On update the list replaces."
        ),
    )
    destination_countries = serializers.ListField(
        child=CountryField(), required=False, help_text=_("ISO 3166 codes, only on a cross-border transfer.")
    )
    actions = TermListField(
        required=False,
        write_only=True,
        help_text=_(
            "Processing actions by code or name; an unknown one is an error. On update the list replaces."
        ),
    )

    class Meta:
        model = Operation
        fields = [
            "service",
            "processor",
            "recipient_qualifier",
            "data_items",
            "data_items_text",
            "purposes",
            "purpose_text",
            "actions",
            "actions_text",
            "actions_open_ended",
            *OPERATION_OWN_FIELDS,
        ]
        validators: list = []

    def to_representation(self, operation: Operation) -> dict:
        # What the browsable API pre-fills in its edit form: the same shape the client sends.
        items = {item.position: item.text for item in operation.data_items.all()}
        return {
            **super().to_representation(operation),
            "data_items": list(items.values()),
            "purposes": [purpose.code for purpose in operation.purposes.all()],
            "actions": [action.code for action in operation.actions.all()],
        }

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return self.context.get("taxonomy") or Taxonomy.load()

    def validate_purposes(self, values: list[str]) -> list[Purpose]:
        codes = self._resolve_terms(values, self.taxonomy.map_purposes, _("Unknown purpose '%(value)s'."))
        by_code = Purpose.objects.in_bulk(codes, field_name="code")
        return [by_code[code] for code in codes]

    def validate_actions(self, values: list[str]) -> list[ProcessingAction]:
        codes = self._resolve_terms(
            values, self.taxonomy.map_actions, _("Unknown processing action '%(value)s'.")
        )
        by_code = ProcessingAction.objects.in_bulk(codes, field_name="code")
        return [by_code[code] for code in codes]

    @staticmethod
    def _resolve_terms(values: list[str], resolve, message: str) -> list[str]:
        codes: dict[str, None] = {}
        errors = []
        for value in values:
            mapping = resolve(value)
            if mapping.unmapped or not mapping.codes:
                errors.append(message % {"value": value})
            codes.update(dict.fromkeys(mapping.codes))
        if errors:
            raise serializers.ValidationError(errors, code="unknown_term")
        return list(codes)


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


class ImportRecordSerializer(serializers.ModelSerializer):
    controller = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
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
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    operations = serializers.SerializerMethodField(help_text=_("Number of operations frozen in it."))

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
        ]

    def get_operations(self, version: PublishedVersion) -> int:
        return len(version.snapshot.get("operations", ()))


class DisclosureRowSerializer(serializers.Serializer):
    service = serializers.CharField()
    recipient = serializers.CharField()
    data_items = serializers.CharField(help_text=_("Sensitive items are followed by a mark (*)."))
    purpose = serializers.CharField()
    actions = serializers.CharField()
    destinations = serializers.ListField(child=serializers.CharField())


class PublishedVersionDetailSerializer(PublishedVersionSerializer):
    rows = serializers.SerializerMethodField(help_text=_("The published disclosure table, row by row."))

    class Meta(PublishedVersionSerializer.Meta):
        fields = [*PublishedVersionSerializer.Meta.fields, "rows"]

    @extend_schema_field(DisclosureRowSerializer(many=True))
    def get_rows(self, version: PublishedVersion) -> list[dict]:
        from processors.versions import disclosure_rows

        rows = disclosure_rows(version.snapshot, self.context.get("lang", "zh"))
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
        fields = ["controller", "label", "updated_on", "effective_on", "notes"]
        # The service checks the label is new (with its own message) and the dates' order.
        validators: list = []


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


# --- Findings -----------------------------------------------------------------------------------------


class FindingSubjectSerializer(serializers.Serializer):
    model = serializers.CharField(help_text=_("app_label.model_name, e.g. processors.operation."))
    id = serializers.IntegerField()
    label = serializers.CharField()


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField()
    reference = serializers.CharField()
    title = serializers.CharField()
    fix = serializers.CharField()
    subject = FindingSubjectSerializer()
    detail = serializers.CharField()


class FindingsSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()
    by_rule = serializers.DictField(child=serializers.IntegerField())


class FindingsSerializer(serializers.Serializer):
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
    recipients = NoticeRecipientSerializer(many=True)
    without_contact = serializers.IntegerField()
