"""API representations: readable on their own when read, forgiving about names when written.

Reads nest what a client needs to understand a row (an operation carries its processor, categories,
verbatim data items, purposes and actions), so nobody has to chase links. Writes accept categories as
data-item texts (codes, names or aliases, mapped by the taxonomy) and purposes and actions by code, name
or alias; serializers only translate input, and the viewsets hand it to ``processors.services``. The
shapes of the computed answers (matrix, reports, versions, findings, history, notices) are in
``report_serializers``.
"""

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
    Operation,
    ProcessingAction,
    Processor,
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


# Who answers for a row and when it was last checked; read-only (a POST to …/mark-reviewed/ sets them).
REVIEW_FIELDS = ["owner", "reviewed_at", "reviewed_by", "review_due"]


class ReviewFieldsMixin(serializers.Serializer):
    """The review fields of an operation or processor, read-only, names rather than ids."""

    owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=_("Username of who answers for it.")
    )
    reviewed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    reviewed_by = serializers.CharField(
        source="reviewed_by_name",
        read_only=True,
        help_text=_("Who last marked it reviewed (kept as a name)."),
    )
    review_due = serializers.DateField(read_only=True, allow_null=True, help_text=_("Next review."))


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


class ProcessorSerializer(ReviewFieldsMixin, serializers.ModelSerializer):
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
            *REVIEW_FIELDS,
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


class OperationSerializer(ReviewFieldsMixin, serializers.ModelSerializer):
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
            *REVIEW_FIELDS,
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
            "reported in unmapped_items. On update the list replaces the current items. Without it, a "
            "new or changed data_items_text is split into items as an import splits its cell."
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
