"""FilterSets shared by the API, the admin changelists and the browser explorer.

Category values are resolved by the one resolver (``taxonomy.categories_resolve``), the way people
write them: a code (``basic.phone_number``), a Chinese or English name, or an alias (手机号码), in any
width, case or spacing; a group (``identity``) matches all its descendants. An unknown value is a
validation error with suggestions, never an empty result that looks like "nobody".
"""

import datetime

import django_filters
from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from processors import selectors, taxonomy
from processors.findings import RULES
from processors.findings import controllers_q as findings_controllers_q
from processors.models import (
    ConsentType,
    Controller,
    DataCategory,
    Finding,
    FindingState,
    LegalBasis,
    Operation,
    OperationStatus,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    Purpose,
    Relationship,
    Severity,
    TransferMechanism,
)
from processors.text import is_row_id


class MultipleValueField(forms.Field):
    """A field that takes a parameter repeated any number of times (?category=a&category=b)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if value in (None, ""):
            return []
        values = value if isinstance(value, list | tuple) else [value]
        values = [str(item).strip() for item in values if str(item).strip()]
        # PostgreSQL refuses NUL in text, so such a value would otherwise end in a server error.
        validator = ProhibitNullCharactersValidator()
        for item in values:
            validator(item)
        return values


class StrictBooleanField(forms.Field):
    """true/false (also 1/0, yes/no, 是/否); anything else is an error, never "no filter"."""

    widget = forms.TextInput
    VALUES = {
        "true": True, "1": True, "yes": True, "on": True, "是": True,
        "false": False, "0": False, "no": False, "off": False, "否": False,
    }  # fmt: skip

    def to_python(self, value):
        if value in (None, "") or isinstance(value, bool):
            return None if value == "" else value
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise forms.ValidationError(
                _("'%(value)s' is not a yes/no value; use true or false.") % {"value": value}, code="invalid"
            ) from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class CategoryField(MultipleValueField):
    def clean(self, value):
        values = super().clean(value)
        if not values:
            return []
        try:
            return taxonomy.categories_resolve(values)
        except taxonomy.UnknownCategory as unknown:
            # The first unknown value, as the filters have always reported.
            raise forms.ValidationError(unknown.messages()[0], code="unknown_category") from None


class CategoryFilter(django_filters.Filter):
    field_class = CategoryField


class PurposeField(MultipleValueField):
    def clean(self, value):
        values = super().clean(value)
        if not values:
            return []
        try:
            return taxonomy.purposes_resolve(values)
        except taxonomy.UnknownPurpose as unknown:
            raise forms.ValidationError(unknown.messages()[0], code="unknown_purpose") from None


class PurposeFilter(django_filters.Filter):
    field_class = PurposeField


def visible_controllers(request: HttpRequest | None) -> QuerySet[Controller]:
    """The controller choices: the user's (``selectors.controllers_for``); all of them without a request."""
    if request is None:
        return Controller.objects.all()
    return selectors.controllers_for(getattr(request, "user", None))


def _in_effect_q(day: datetime.date) -> Q:
    started = Q(effective_from__isnull=True) | Q(effective_from__lte=day)
    not_ended = Q(effective_to__gte=day) | (Q(effective_to__isnull=True) & Q(status=OperationStatus.ACTIVE))
    return started & not_ended


def review_filter() -> django_filters.ChoiceFilter:
    """The review state filter of operations and processors (``selectors.review_state_q``)."""
    return django_filters.ChoiceFilter(
        label=_("review"),
        choices=[
            (selectors.REVIEW_OVERDUE, _("review overdue")),
            (selectors.REVIEW_NEVER, _("never reviewed")),
        ],
        method="filter_review",
        help_text=_("overdue: the next review is before today; never: no review recorded yet."),
    )


class OperationFilterSet(django_filters.FilterSet):
    category = CategoryFilter(
        label=_("data category"),
        method="filter_category",
        help_text=_("Code, name or alias; a group includes its descendants; repeat for any-of."),
    )
    category_all = CategoryFilter(
        label=_("all of these data categories"),
        method="filter_category_all",
        help_text=_("Repeat for all-of."),
    )
    sensitive = StrictBooleanFilter(
        label=_("carries sensitive data"),
        method="filter_sensitive",
        help_text=_("true: sends at least one sensitive category (GB/T 35273-2020 Appendix B); false: none."),
    )
    unmapped = StrictBooleanFilter(
        label=_("has unmapped data items"),
        method="filter_unmapped",
        help_text=_("true: has published items no category matched, which need review."),
    )
    cross_border = StrictBooleanFilter(
        label=_("cross-border transfer"), help_text=_("true: the data leaves the country; false: it stays.")
    )
    country = django_filters.CharFilter(
        label=_("country/region"),
        method="filter_country",
        help_text=_("ISO 3166 code of the recipient's country or a destination, e.g. US."),
    )
    purpose = PurposeFilter(
        label=_("purpose"), method="filter_purpose", help_text=_("Code, name or alias; repeat for any-of.")
    )
    processor = django_filters.ModelMultipleChoiceFilter(
        label=_("processor"),
        queryset=Processor.objects.all(),
        method="filter_processor",
        help_text=_("Processor id; a group's rows count for its members; repeat for any-of."),
    )
    service = django_filters.CharFilter(
        label=_("service"),
        method="filter_service",
        help_text=_("Service id, or its exact Chinese or English name."),
    )
    controller = django_filters.ModelChoiceFilter(
        label=_("controller"),
        queryset=visible_controllers,
        to_field_name="code",
        field_name="service__controller",
        help_text=_("Code of the controller whose services send the data."),
    )
    action = django_filters.ModelMultipleChoiceFilter(
        label=_("processing action"),
        queryset=ProcessingAction.objects.all(),
        to_field_name="code",
        method="filter_action",
        help_text=_("Action code such as collect or store; repeat for any-of."),
    )
    relationship = django_filters.MultipleChoiceFilter(
        distinct=False,
        label=_("relationship"),
        choices=Relationship.choices,
        help_text=_("Repeat for any-of."),
    )
    legal_basis = django_filters.MultipleChoiceFilter(
        distinct=False, label=_("legal basis"), choices=LegalBasis.choices, help_text=_("Repeat for any-of.")
    )
    consent_type = django_filters.MultipleChoiceFilter(
        distinct=False,
        label=_("consent type"),
        choices=ConsentType.choices,
        help_text=_("Repeat for any-of."),
    )
    transfer_mechanism = django_filters.MultipleChoiceFilter(
        distinct=False,
        label=_("cross-border mechanism"),
        choices=TransferMechanism.choices,
        help_text=_("Repeat for any-of."),
    )
    status = django_filters.MultipleChoiceFilter(
        distinct=False, label=_("status"), choices=OperationStatus.choices, help_text=_("Repeat for any-of.")
    )
    as_of = django_filters.DateFilter(
        label=_("in effect on"),
        method="filter_as_of",
        help_text=_("YYYY-MM-DD: operations in effect that day."),
    )
    search = django_filters.CharFilter(
        label=_("search"),
        method="filter_search",
        help_text=_("Text in the service, processor (or its aliases), published items, purpose or scenario."),
    )
    review = review_filter()
    ordering = django_filters.OrderingFilter(
        label=_("ordering"),
        help_text=_("Sort key; prefix - for descending. Ties are broken by id."),
        fields=(
            ("service__name", "service"),
            ("processor__name_key", "processor"),
            ("relationship", "relationship"),
            ("status", "status"),
            ("effective_from", "effective_from"),
            ("updated_at", "updated_at"),
        ),
    )

    class Meta:
        model = Operation
        fields: list[str] = []

    def filter_category(self, queryset: QuerySet, name: str, value: list[DataCategory]) -> QuerySet:
        return selectors.operations_with_categories(queryset, value)

    def filter_category_all(self, queryset: QuerySet, name: str, value: list[DataCategory]) -> QuerySet:
        return selectors.operations_with_categories(queryset, value, match_all=True)

    def filter_sensitive(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset if value is None else selectors.operations_with_sensitive_data(queryset, value)

    def filter_unmapped(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset if value is None else selectors.operations_with_unmapped_items(queryset, value)

    def filter_country(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        code = value.strip().upper()
        return queryset.filter(
            Q(processor__country=code)
            | Q(processor__member_of__country=code)
            | Q(destination_countries__contains=code)
        )

    def filter_purpose(self, queryset: QuerySet, name: str, value: list[Purpose]) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(
            pk__in=Operation.purposes.through.objects.filter(purpose__in=value).values("operation_id")
        )

    def filter_action(self, queryset: QuerySet, name: str, value: list[ProcessingAction]) -> QuerySet:
        if not value:
            return queryset
        links = Operation.actions.through.objects.filter(processingaction__in=value)
        return queryset.filter(pk__in=links.values("operation_id"))

    def filter_processor(self, queryset: QuerySet, name: str, value: list[Processor]) -> QuerySet:
        if not value:
            return queryset
        # A group stands for its members and a member is reached through its group's rows.
        return queryset.filter(selectors.operations_reaching_q(value))

    def filter_service(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if is_row_id(value):
            return queryset.filter(service_id=int(value))
        return queryset.filter(Q(service__name=value) | Q(service__name_en__iexact=value))

    def filter_as_of(self, queryset: QuerySet, name: str, value: datetime.date | None) -> QuerySet:
        return queryset if value is None else queryset.filter(_in_effect_q(value))

    def filter_review(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(selectors.review_state_q(value)) if value else queryset

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(selectors.operations_matching_text_q(value))


class ProcessorFilterSet(django_filters.FilterSet):
    receives = CategoryFilter(
        label=_("receives data category"),
        method="filter_receives",
        help_text=_("Code, name or alias; a group includes its descendants; repeat for any-of."),
    )
    country = django_filters.CharFilter(
        label=_("country/region"),
        method="filter_country",
        help_text=_("ISO 3166 code of the processor's country of establishment, e.g. US."),
    )
    kind = django_filters.ChoiceFilter(
        label=_("kind"), choices=Processor.Kind.choices, help_text=_("An organisation or a named group.")
    )
    controller = django_filters.ModelChoiceFilter(
        label=_("controller"),
        queryset=visible_controllers,
        to_field_name="code",
        method="filter_controller",
        help_text=_("Code of a controller: the processors it sends data to, directly or through a group."),
    )
    search = django_filters.CharFilter(
        label=_("search"),
        method="filter_search",
        help_text=_("Text in the names, aliases or contact phone, or an exact unified social credit code."),
    )
    review = review_filter()

    class Meta:
        model = Processor
        fields: list[str] = []

    def filter_review(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(selectors.review_state_q(value)) if value else queryset

    def filter_receives(self, queryset: QuerySet, name: str, value: list[DataCategory]) -> QuerySet:
        # Only through operations of the controllers the user may see; without a request (the
        # importer, tests) through all of them.
        user = getattr(self.request, "user", None)
        operations = None if self.request is None else selectors.operations_visible_to(user)
        return selectors.processors_receiving(queryset, value, operations)

    def filter_country(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(country=value.strip().upper())

    def filter_controller(self, queryset: QuerySet, name: str, value: Controller | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(
            selectors.processors_reached_q(Operation.objects.filter(service__controller=value))
        )

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name_zh__icontains=value)
            | Q(name_en__icontains=value)
            | Q(pk__in=ProcessorAlias.objects.filter(text__icontains=value).values("processor"))
            | Q(contact_phone__icontains=value)
            | Q(uscc__iexact=value)
        )


# --- Import records and published versions (the API's lists) ------------------------------------------

from processors.models import Channel, ImportRecord, PublishedVersion  # noqa: E402  (merge into the top)


class ImportRecordFilterSet(django_filters.FilterSet):
    controller = django_filters.CharFilter(
        field_name="controller__code", label=_("controller"), help_text=_("Code of the controller.")
    )
    result = django_filters.MultipleChoiceFilter(
        choices=ImportRecord.Result.choices, label=_("result"), distinct=False
    )
    channel = django_filters.MultipleChoiceFilter(choices=Channel.choices, label=_("channel"), distinct=False)

    class Meta:
        model = ImportRecord
        fields = ["controller", "result", "channel"]


class PublishedVersionFilterSet(django_filters.FilterSet):
    controller = django_filters.CharFilter(
        field_name="controller__code", label=_("controller"), help_text=_("Code of the controller.")
    )

    class Meta:
        model = PublishedVersion
        fields = ["controller"]


class FindingFilterSet(django_filters.FilterSet):
    """Stored findings by severity, rule, controller and state (the findings page, the API, the admin).

    The page and the API list the open ones when no state is asked for (``findings.open_unless_asked``):
    accepted and fixed findings are off the DPO's to-do list; the admin shows every state.
    """

    severity = django_filters.MultipleChoiceFilter(
        label=_("severity"), choices=Severity.choices, distinct=False
    )
    rule = django_filters.MultipleChoiceFilter(
        distinct=False, label=_("rule"), choices=[(rule.code, rule.title) for rule in RULES]
    )
    controller = django_filters.ModelChoiceFilter(
        label=_("controller"),
        queryset=Controller.objects.order_by("code"),
        to_field_name="code",
        method="filter_controller",
        help_text=_("Its operations' findings and those of the processors they send data to."),
    )
    state = django_filters.MultipleChoiceFilter(
        label=_("state"), choices=FindingState.choices, distinct=False
    )

    class Meta:
        model = Finding
        fields = ["severity", "rule", "controller", "state"]

    def filter_controller(self, queryset: QuerySet, name: str, value: Controller) -> QuerySet:
        return queryset if value is None else queryset.filter(findings_controllers_q([value.pk]))
