"""The data-protection officer's admin: every model, bilingual, with changelists in constant queries.

Changelist filters that mean something in the domain ("carries identity data", "receives phone
numbers") are not re-implemented here: ``FilterSetListFilter`` hands the chosen value to the same
FilterSet the API and the browser use, so the three can never disagree. Writes go through
``processors.services`` where a service exists.
"""

import re

import django_filters
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.widgets import AdminTextareaWidget
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import F, Func, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Concat
from django.forms.models import BaseInlineFormSet
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_filters.filters import QuerySetRequestMixin

from processors import selectors, services
from processors.filters import OperationFilterSet, ProcessorFilterSet
from processors.models import (
    CategoryAlias,
    Controller,
    DataCategory,
    DataItem,
    Operation,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    Purpose,
    PurposeAlias,
    Service,
    TaxonomyRelease,
)
from processors.text import normalize_key

# Bilingual by design rather than translated: a reader of either language recognises the site.
admin.site.site_header = "个人信息接收方登记册 / Processor Registry"
admin.site.site_title = "个人信息接收方登记册 / Processor Registry"
admin.site.index_title = _("Register administration")

# Ideographic spaces survive HTML whitespace collapsing, so the tree stays indented in <select>s and lists.
TREE_INDENT = "\u3000\u3000"
# Categories listed per operation before "+N more"; enough for a row, short enough to scan.
SUMMARY_LIMIT = 6
# Descriptions and notes are usually a line or two; ten-row boxes push the rest of a form off screen.
# Short text areas, and links typed without a scheme read as https (Django 6's default, chosen now).
COMPACT_TEXTAREAS = {
    models.TextField: {"widget": AdminTextareaWidget(attrs={"rows": 3})},
    models.URLField: {"assume_scheme": "https"},
}


# --- Shared display helpers -----------------------------------------------------------------------


def indented_name(category: DataCategory) -> str:
    return f"{TREE_INDENT * category.depth}{category.display_name()}"


def in_taxonomy_order(categories) -> list[DataCategory]:
    """Categories as the taxonomy lists them (basic, identity, …), each group followed by its leaves."""
    categories = list(categories)
    by_code = {category.code: category for category in categories}

    def path(category: DataCategory) -> list[tuple[int, str]]:
        segments = category.code.split(".")
        prefixes = (".".join(segments[: length + 1]) for length in range(len(segments)))
        return [(by_code[prefix].position if prefix in by_code else 0, prefix) for prefix in prefixes]

    return sorted(categories, key=path)


def category_tree_choices() -> list[tuple[str, str]]:
    categories = in_taxonomy_order(selectors.category_tree())
    return [(category.code, indented_name(category)) for category in categories]


def category_badge(category: DataCategory) -> str:
    """A category name, bold and flagged ⚠ when it is sensitive personal information."""
    if category.sensitive:
        return format_html(
            '<strong class="sensitive-category" title="{}">⚠ {}</strong>',
            gettext("sensitive personal information"),
            category.display_name(),
        )
    return format_html("{}", category.display_name())


def needs_review_flag() -> str:
    return format_html('<span class="needs-review">⚑ {}</span>', gettext("unmapped — needs review"))


def join_html(parts) -> str:
    # The list separator is translated: 、 in Chinese, a comma in English.
    return format_html_join(gettext(", "), "{}", ((part,) for part in parts))


def data_categories_summary(operation: Operation) -> str:
    """The operation's categories from its prefetched items: sensitive ones marked, unmapped ones counted."""
    items = list(operation.data_items.all())
    categories = list(dict.fromkeys(item.category for item in items if item.category_id is not None))
    parts = [category_badge(category) for category in categories[:SUMMARY_LIMIT]]
    if len(categories) > SUMMARY_LIMIT:
        parts.append(gettext("+%(count)d more") % {"count": len(categories) - SUMMARY_LIMIT})
    unmapped = sum(1 for item in items if item.category_id is None)
    if unmapped:
        message = ngettext(
            "%(count)d unmapped — needs review", "%(count)d unmapped — needs review", unmapped
        ) % {"count": unmapped}
        parts.append(format_html('<span class="needs-review">⚑ {}</span>', message))
    return join_html(parts) if parts else "—"


def purposes_summary(operation: Operation) -> str:
    return gettext(", ").join(str(purpose) for purpose in operation.purposes.all()) or "—"


def short_label(label: str) -> str:
    """A choice label without its legal reference, which stays in the tooltip: 委托处理（个保法第21条）."""
    short = re.split(r"\s*[（(]", label, maxsplit=1)[0]
    return format_html('<span title="{}">{}</span>', label, short) if short != label else label


def count_subquery(queryset, field: str = "pk") -> Subquery:
    """COUNT(DISTINCT field) over a correlated queryset, as an annotation that needs no GROUP BY join."""
    # A plain Func is not an aggregate to the ORM, so no GROUP BY is added: one row, 0 when empty.
    count = Func(
        F(field),
        function="COUNT",
        template="%(function)s(DISTINCT %(expressions)s)",
        output_field=IntegerField(),
    )
    return Subquery(queryset.order_by().annotate(count=count).values("count"), output_field=IntegerField())


# --- FilterSet adapter ----------------------------------------------------------------------------


class FilterSetListFilter(admin.SimpleListFilter):
    """A changelist filter that delegates to one filter of a FilterSet, so the admin filters as the API does.

    The title comes from the FilterSet's label, and simple lookups (yes/no, choices, a model queryset)
    from the filter's declaration; subclasses override ``lookups`` when the list needs curating.
    """

    filterset_class: type[django_filters.FilterSet] | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.filterset_class is not None and cls.title is None:
            cls.title = cls.filterset_class.base_filters[cls.parameter_name].label

    @property
    def declared_filter(self) -> django_filters.Filter:
        return self.filterset_class.base_filters[self.parameter_name]

    def lookups(self, request, model_admin):
        declared = self.declared_filter
        if isinstance(declared, django_filters.BooleanFilter):
            return [("true", _("Yes")), ("false", _("No"))]
        if isinstance(declared, QuerySetRequestMixin):
            to_field = declared.extra.get("to_field_name") or "pk"
            # .all(): the declared queryset lives on the class and would cache its rows for the process.
            objects = declared.get_queryset(request).all()
            return [(str(getattr(obj, to_field)), str(obj)) for obj in objects]
        if "choices" in declared.extra:
            choices = declared.extra["choices"]
            return choices() if callable(choices) else choices
        raise ImproperlyConfigured(f"{type(self).__name__} needs lookups() for '{self.parameter_name}'.")

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        data = QueryDict(mutable=True)
        data.setlist(self.parameter_name, [value])
        filterset = self.filterset_class(data, queryset=queryset, request=request)
        if not filterset.is_valid():
            # The changelist turns this into its "?e=1" error page instead of a silent empty list.
            raise IncorrectLookupParameters(filterset.errors)
        return filterset.qs


def filterset_list_filter(filterset_class, name: str, base: type[FilterSetListFilter] = FilterSetListFilter):
    """A list filter class for one named filter of a FilterSet."""
    class_name = "".join(part.title() for part in name.split("_")) + "ListFilter"
    attributes = {"filterset_class": filterset_class, "parameter_name": name, "__module__": __name__}
    return type(class_name, (base,), attributes)


class CategoryTreeListFilter(FilterSetListFilter):
    """The whole category tree, groups above their indented leaves; a group includes its descendants."""

    def lookups(self, request, model_admin):
        return category_tree_choices()


class ProcessorInRegisterListFilter(FilterSetListFilter):
    """Only processors that occur in the register, directly or as a member of a listed group."""

    def lookups(self, request, model_admin):
        listed = Operation.objects.values("processor")
        processors = Processor.objects.filter(Q(pk__in=listed) | Q(member_of__in=listed))
        return [(str(processor.pk), str(processor)) for processor in processors]


class PurposeListFilter(FilterSetListFilter):
    def lookups(self, request, model_admin):
        return [(purpose.code, str(purpose)) for purpose in Purpose.objects.all()]


class ProcessorCountryListFilter(FilterSetListFilter):
    """The countries processors are established in, by name."""

    def lookups(self, request, model_admin):
        codes = Processor.objects.exclude(country="").order_by().values_list("country", flat=True).distinct()
        return sorted(((code, countries.name(code)) for code in codes), key=lambda choice: str(choice[1]))


class CategoryGroupListFilter(admin.SimpleListFilter):
    """A top-level group and everything below it."""

    title = _("top-level group")
    parameter_name = "group"
    category_prefix = ""

    def lookups(self, request, model_admin):
        groups = DataCategory.objects.filter(parent__isnull=True).order_by("position", "code")
        return [(group.code, group.display_name()) for group in groups]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        category = selectors.category_resolve(self.value())
        if category is None:
            raise IncorrectLookupParameters(self.value())
        return queryset.filter(selectors.category_subtree_q([category], prefix=self.category_prefix))


class DataItemCategoryListFilter(CategoryGroupListFilter):
    """Items under a category of the tree, descendants included."""

    title = _("data category")
    parameter_name = "category"
    category_prefix = "category__"

    def lookups(self, request, model_admin):
        return category_tree_choices()


class NeedsReviewListFilter(admin.SimpleListFilter):
    title = _("needs review")
    parameter_name = "unmapped"

    def lookups(self, request, model_admin):
        return [("true", _("Yes")), ("false", _("No"))]

    def queryset(self, request, queryset):
        if self.value() not in {"true", "false"}:
            return queryset
        return queryset.filter(category__isnull=self.value() == "true")


# --- Forms ----------------------------------------------------------------------------------------


class DerivedKeyUniqueForm(forms.ModelForm):
    """Reports a clash of a derived, unique match key as a form error on the field it comes from.

    Keys are computed in ``Model.clean()`` and are not form fields, so Django's own unique check skips
    them and a duplicate would only surface as an IntegrityError.
    """

    key_field = "key"
    source_fields: tuple[str, ...] = ("text",)

    def clean(self):
        cleaned = super().clean()
        source = next((name for name in self.source_fields if cleaned.get(name)), None)
        if source is None:
            return cleaned
        key = normalize_key(cleaned[source])
        clash = self._meta.model._default_manager.filter(**{self.key_field: key}).exclude(pk=self.instance.pk)
        if clash.exists():
            self.add_error(source, _("“%(text)s” is already registered.") % {"text": cleaned[source]})
        return cleaned


class ProcessorForm(DerivedKeyUniqueForm):
    key_field = "name_key"
    source_fields = ("name_zh", "name_en")


class AliasInlineFormSet(BaseInlineFormSet):
    """Two rows of one formset must not fold to the same key either."""

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            if form in self.deleted_forms or not form.cleaned_data.get("text"):
                continue
            key = normalize_key(form.cleaned_data["text"])
            if key in seen:
                form.add_error("text", _("This alias appears twice."))
            seen.add(key)


class DataItemForm(forms.ModelForm):
    """A category chosen or changed by hand is a manual match; clearing it leaves the item unmapped."""

    class Meta:
        model = DataItem
        fields = ["operation", "position", "text", "category"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An item stays where it was published; disabled (not read-only) fields still take part in
        # the model's unique-constraint validation.
        if self.instance.pk is not None:
            for name in ("operation", "position"):
                if name in self.fields:
                    self.fields[name].disabled = True

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None or "category" in self.changed_data:
            self.instance.match = DataItem.Match.MANUAL if cleaned.get("category") else ""
        return cleaned


class DataItemInlineFormSet(BaseInlineFormSet):
    """The rows of one composite item share a position, so each may carry a category only once."""

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            category = form.cleaned_data.get("category")
            if form in self.deleted_forms or form.instance.pk is None or category is None:
                continue
            if (form.instance.position, category.pk) in seen:
                form.add_error("category", _("This item already maps to this category."))
            seen.add((form.instance.position, category.pk))


# --- Inlines --------------------------------------------------------------------------------------


class AliasInline(admin.TabularInline):
    form = DerivedKeyUniqueForm
    formset = AliasInlineFormSet
    fields = ("text", "key", "created_at")
    readonly_fields = ("key", "created_at")
    extra = 1


class CategoryAliasInline(AliasInline):
    model = CategoryAlias


class PurposeAliasInline(AliasInline):
    model = PurposeAlias


class ProcessorAliasInline(AliasInline):
    model = ProcessorAlias


class DataItemInline(admin.TabularInline):
    model = DataItem
    form = DataItemForm
    formset = DataItemInlineFormSet
    fields = ("item_position", "text", "category", "match", "review")
    readonly_fields = ("item_position", "match", "review")
    autocomplete_fields = ("category",)
    extra = 1

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("category")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "category":
            # Editing the taxonomy from every item row is noise; the category pages do that.
            widget = formfield.widget
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = False
            widget.can_view_related = False
        return formfield

    @admin.display(description=_("position"))
    def item_position(self, item: DataItem) -> str:
        return str(item.position) if item.pk is not None else ""

    @admin.display(description=_("review"))
    def review(self, item: DataItem) -> str:
        return needs_review_flag() if item.pk is not None and item.needs_review else ""


class ProcessorOperationInline(admin.TabularInline):
    """The processor's operations at a glance; they are edited on their own page."""

    model = Operation
    verbose_name_plural = _("processing operations")
    fields = ("service", "data_categories", "purposes_list", "relationship", "status")
    readonly_fields = fields
    show_change_link = True
    extra = 0

    def get_queryset(self, request):
        return selectors.operation_list(super().get_queryset(request))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("data categories"))
    def data_categories(self, operation: Operation) -> str:
        return data_categories_summary(operation)

    @admin.display(description=_("purposes"))
    def purposes_list(self, operation: Operation) -> str:
        return purposes_summary(operation)


# --- Mixins ---------------------------------------------------------------------------------------


class DataItemActionsMixin:
    """Actions shared by operations and data items; ``items_for`` says which items a selection means."""

    def items_for(self, queryset):
        raise NotImplementedError

    @admin.action(description=_("Map unmapped data items again"), permissions=["change"])
    def remap_data_items(self, request, queryset):
        mapped = services.data_items_remap(items=self.items_for(queryset))
        left = self.items_for(queryset).filter(category__isnull=True).count()
        self.message_user(
            request,
            ngettext(
                "%(mapped)d data item was mapped; %(left)d still need review.",
                "%(mapped)d data items were mapped; %(left)d still need review.",
                mapped,
            )
            % {"mapped": mapped, "left": left},
            messages.SUCCESS if mapped else messages.INFO,
        )


# --- Taxonomy -------------------------------------------------------------------------------------


@admin.register(DataCategory)
class DataCategoryAdmin(admin.ModelAdmin):
    formfield_overrides = COMPACT_TEXTAREAS
    list_display = (
        "code",
        "tree_name",
        "name_en",
        "sensitive",
        "sensitive_under_gbt45574",
        "alias_count",
        "operation_count",
    )
    list_display_links = ("code", "tree_name")
    list_filter = ("sensitive", CategoryGroupListFilter)
    search_fields = ("code", "name_zh", "name_en", "aliases__text")
    ordering = ("code",)
    list_per_page = 200
    autocomplete_fields = ("parent",)
    fields = (
        ("code", "parent"),
        ("name_zh", "name_en"),
        "description_zh",
        "description_en",
        ("sensitive", "sensitive_gbt45574"),
        "position",
    )
    inlines = [CategoryAliasInline]

    def get_queryset(self, request):
        # Counted in subqueries: joining aliases and items at once would multiply the rows.
        in_subtree = Q(category=OuterRef("pk")) | Q(
            category__code__startswith=Concat(OuterRef("code"), Value("."))
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                alias_count=count_subquery(CategoryAlias.objects.filter(category=OuterRef("pk"))),
                operation_count=count_subquery(DataItem.objects.filter(in_subtree), "operation"),
            )
        )

    @admin.display(description=_("Chinese name"), ordering="code")
    def tree_name(self, category: DataCategory) -> str:
        template = (
            '<strong class="tree-name">{}{}</strong>'
            if category.parent_id is None
            else '<span class="tree-name">{}{}</span>'
        )
        return format_html(template, TREE_INDENT * category.depth, category.name_zh)

    # The standard's name is the header in both languages; the model field's help text explains it.
    @admin.display(description="GB/T 45574", boolean=True)
    def sensitive_under_gbt45574(self, category: DataCategory) -> bool:
        return category.effective_sensitive_gbt45574

    @admin.display(description=_("aliases"), ordering="alias_count")
    def alias_count(self, category: DataCategory) -> int:
        return category.alias_count

    @admin.display(description=_("operations (incl. subcategories)"), ordering="operation_count")
    def operation_count(self, category: DataCategory) -> int:
        return category.operation_count


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    formfield_overrides = COMPACT_TEXTAREAS
    list_display = ("code", "name_zh", "name_en", "position", "operation_count")
    search_fields = ("code", "name_zh", "name_en", "aliases__text")
    fields = ("code", ("name_zh", "name_en"), "description_zh", "description_en", "position")
    inlines = [PurposeAliasInline]

    def get_queryset(self, request):
        operations = Operation.purposes.through.objects.filter(purpose=OuterRef("pk"))
        return super().get_queryset(request).annotate(operation_count=count_subquery(operations, "operation"))

    @admin.display(description=_("operations"), ordering="operation_count")
    def operation_count(self, purpose: Purpose) -> int:
        return purpose.operation_count


@admin.register(ProcessingAction)
class ProcessingActionAdmin(admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "pipl_article_4", "position")
    list_filter = ("pipl_article_4",)
    search_fields = ("code", "name_zh", "name_en")


@admin.register(TaxonomyRelease)
class TaxonomyReleaseAdmin(admin.ModelAdmin):
    """Written by the taxonomy upgrade only; the admin shows which versions have been applied."""

    list_display = ("version", "applied_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Parties --------------------------------------------------------------------------------------


@admin.register(Controller)
class ControllerAdmin(admin.ModelAdmin):
    formfield_overrides = COMPACT_TEXTAREAS
    list_display = ("code", "name_zh", "name_en", "country", "disclosure_public", "service_count")
    list_filter = ("disclosure_public", "country")
    search_fields = ("code", "name_zh", "name_en")
    autocomplete_fields = ("extra_sensitive_categories",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("code", ("name_zh", "name_en"), "country")}),
        (
            _("Contact"),
            {"fields": ("website", "privacy_policy_url", "contact_email", "contact_phone", "address")},
        ),
        (_("Disclosure"), {"fields": ("disclosure_public", "extra_sensitive_categories")}),
        (_("Records"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_queryset(self, request):
        services_of = Service.objects.filter(controller=OuterRef("pk"))
        return super().get_queryset(request).annotate(service_count=count_subquery(services_of))

    def save_model(self, request, obj, form, change):
        # The form has filled in the instance (new or existing); the service validates and saves it.
        services.controller_update(controller=obj)

    @admin.display(description=_("services"), ordering="service_count")
    def service_count(self, controller: Controller) -> int:
        return controller.service_count


@admin.register(Processor)
class ProcessorAdmin(admin.ModelAdmin):
    form = ProcessorForm
    formfield_overrides = COMPACT_TEXTAREAS
    list_display = ("name", "kind", "member_of", "country", "contact_phone", "operation_count")
    list_select_related = ("member_of",)
    list_filter = (
        filterset_list_filter(ProcessorFilterSet, "kind"),
        filterset_list_filter(ProcessorFilterSet, "country", base=ProcessorCountryListFilter),
        filterset_list_filter(ProcessorFilterSet, "receives", base=CategoryTreeListFilter),
        filterset_list_filter(ProcessorFilterSet, "controller"),
    )
    search_fields = ("name_zh", "name_en", "aliases__text", "contact_phone", "uscc")
    autocomplete_fields = ("member_of",)
    readonly_fields = ("name_key", "members", "received_categories", "created_at", "updated_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("name_zh", "name_en"),
                    "name_key",
                    ("kind", "member_of"),
                    "members",
                    "received_categories",
                )
            },
        ),
        (
            _("Registration"),
            {"fields": ("country", "uscc", "icp_filing", "public_security_filing")},
        ),
        (
            _("Contact"),
            {"fields": ("contact_phone", "contact_email", "address", "website", "privacy_policy_url")},
        ),
        (_("Notes"), {"fields": ("notes",)}),
        (_("Records"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [ProcessorOperationInline, ProcessorAliasInline]

    def get_queryset(self, request):
        operations = Operation.objects.filter(processor=OuterRef("pk"))
        return super().get_queryset(request).annotate(operation_count=count_subquery(operations))

    def save_model(self, request, obj, form, change):
        # The form has filled in the instance (new or existing); the service validates and saves it.
        services.processor_update(processor=obj)

    @admin.display(description=_("name"), ordering="name_key")
    def name(self, processor: Processor) -> str:
        return str(processor)

    @admin.display(description=_("operations"), ordering="operation_count")
    def operation_count(self, processor: Processor) -> int:
        return processor.operation_count

    @admin.display(description=_("receives"))
    def received_categories(self, processor: Processor) -> str:
        """What the processor receives, through its own operations or those of its group."""
        if processor.pk is None:
            return "—"
        recipients = [processor.pk] + ([processor.member_of_id] if processor.member_of_id else [])
        received = DataCategory.objects.filter(data_items__operation__processor__in=recipients).distinct()
        return join_html(category_badge(category) for category in in_taxonomy_order(received)) or "—"

    @admin.display(description=_("members"))
    def members(self, processor: Processor) -> str:
        members = processor.members.all() if processor.pk else []
        links = (
            (reverse("admin:processors_processor_change", args=[member.pk]), str(member))
            for member in members
        )
        return format_html_join(gettext(", "), '<a href="{}">{}</a>', links) or "—"


# --- Services and operations ----------------------------------------------------------------------


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    formfield_overrides = COMPACT_TEXTAREAS
    list_display = ("name", "name_en", "controller", "sdk_name", "operation_count")
    list_select_related = ("controller",)
    list_filter = ("controller",)
    search_fields = (
        "name",
        "name_en",
        "sdk_name",
        "sdk_package",
        "controller__name_zh",
        "controller__name_en",
    )
    autocomplete_fields = ("controller",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("controller", ("name", "name_en"), "description")}),
        (
            _("SDK"),
            {
                "fields": (
                    "sdk_name",
                    "sdk_package",
                    "sdk_version",
                    "sdk_privacy_policy_url",
                    "device_permissions",
                )
            },
        ),
        (_("Records"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_queryset(self, request):
        operations = Operation.objects.filter(service=OuterRef("pk"))
        return super().get_queryset(request).annotate(operation_count=count_subquery(operations))

    def save_model(self, request, obj, form, change):
        # The form has filled in the instance (new or existing); the service validates and saves it.
        services.service_update(service=obj)

    @admin.display(description=_("operations"), ordering="operation_count")
    def operation_count(self, service: Service) -> int:
        return service.operation_count


@admin.register(Operation)
class OperationAdmin(DataItemActionsMixin, admin.ModelAdmin):
    list_display = (
        "service",
        "controller",
        "processor",
        "data_categories",
        "purposes_list",
        "relationship_name",
        "cross_border",
        "status",
    )
    list_select_related = ("service__controller", "processor")
    # Short lists first; the long ones (purposes, processors) at the end of the sidebar.
    list_filter = (
        filterset_list_filter(OperationFilterSet, "controller"),
        filterset_list_filter(OperationFilterSet, "sensitive"),
        filterset_list_filter(OperationFilterSet, "unmapped"),
        filterset_list_filter(OperationFilterSet, "cross_border"),
        filterset_list_filter(OperationFilterSet, "relationship"),
        filterset_list_filter(OperationFilterSet, "status"),
        filterset_list_filter(OperationFilterSet, "legal_basis"),
        filterset_list_filter(OperationFilterSet, "consent_type"),
        filterset_list_filter(OperationFilterSet, "category", base=CategoryTreeListFilter),
        filterset_list_filter(OperationFilterSet, "purpose", base=PurposeListFilter),
        filterset_list_filter(OperationFilterSet, "processor", base=ProcessorInRegisterListFilter),
    )
    search_fields = (
        "service__name",
        "service__name_en",
        "processor__name_zh",
        "processor__name_en",
        "processor__aliases__text",
        "data_items__text",
    )
    autocomplete_fields = ("service", "processor", "purposes", "actions")
    formfield_overrides = COMPACT_TEXTAREAS
    readonly_fields = ("source_text", "created_at", "updated_at")
    fieldsets = (
        (
            _("What"),
            {
                "fields": (
                    "service",
                    "data_items_text",
                    ("purposes", "purpose_text"),
                    ("actions", "actions_text", "actions_open_ended"),
                    "usage_scenario",
                    "feature_necessary",
                )
            },
        ),
        (_("Who"), {"fields": (("processor", "recipient_qualifier"), "relationship", "sharing_method")}),
        (
            _("Legal footing"),
            {"fields": ("legal_basis", "consent_type", "contract_reference", "retention_at_recipient")},
        ),
        (
            _("Cross-border"),
            {
                "fields": (
                    "cross_border",
                    "destination_countries",
                    "transfer_mechanism",
                    ("annual_subjects", "annual_sensitive_subjects"),
                )
            },
        ),
        (
            _("Records"),
            {
                "fields": (
                    "status",
                    ("effective_from", "effective_to"),
                    ("pia_reference", "pia_date"),
                    "notes",
                )
            },
        ),
        (_("Source"), {"fields": ("source_text", "created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [DataItemInline]
    actions = ["remap_data_items"]

    def get_queryset(self, request):
        return selectors.operation_list(super().get_queryset(request))

    def save_model(self, request, obj, form, change):
        # The form has filled in the instance (new or existing); the service validates and saves it.
        services.operation_update(operation=obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not DataItem:
            return super().save_formset(request, form, formset, change)
        items = formset.save(commit=False)
        services.data_items_save(operation=form.instance, saved=items, deleted=formset.deleted_objects)
        formset.save_m2m()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Items typed without a category are mapped by the taxonomy; the rest stay flagged for review.
        services.data_items_remap(items=form.instance.data_items.all())
        unmapped = form.instance.data_items.filter(category__isnull=True).count()
        if unmapped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d data item could not be mapped and needs review.",
                    "%(count)d data items could not be mapped and need review.",
                    unmapped,
                )
                % {"count": unmapped},
                messages.WARNING,
            )

    def items_for(self, queryset):
        return DataItem.objects.filter(operation__in=queryset.values("pk"))

    @admin.display(description=_("controller"), ordering="service__controller__code")
    def controller(self, operation: Operation) -> Controller:
        return operation.service.controller

    @admin.display(description=_("data categories"))
    def data_categories(self, operation: Operation) -> str:
        return data_categories_summary(operation)

    @admin.display(description=_("purposes"))
    def purposes_list(self, operation: Operation) -> str:
        return purposes_summary(operation)

    @admin.display(description=_("relationship"), ordering="relationship")
    def relationship_name(self, operation: Operation) -> str:
        return short_label(operation.get_relationship_display()) if operation.relationship else "—"


@admin.register(DataItem)
class DataItemAdmin(DataItemActionsMixin, admin.ModelAdmin):
    """Where a reviewer finds the items the taxonomy could not map, across the whole register."""

    form = DataItemForm
    list_display = ("text", "category_name", "match", "review", "operation_link", "controller")
    list_select_related = ("category", "operation__service__controller", "operation__processor")
    list_filter = (
        NeedsReviewListFilter,
        DataItemCategoryListFilter,
        "match",
        "operation__service__controller",
    )
    search_fields = (
        "text",
        "category__code",
        "category__name_zh",
        "category__name_en",
        "operation__processor__name_zh",
        "operation__service__name",
    )
    autocomplete_fields = ("operation", "category")
    fields = ("operation", "position", "text", "category", "match", "review")
    readonly_fields = ("match", "review")
    actions = ["remap_data_items", "add_text_as_alias"]

    def items_for(self, queryset):
        return queryset

    def save_model(self, request, obj, form, change):
        services.data_items_save(operation=obj.operation, saved=[obj])

    @admin.display(description=_("data category"), ordering="category__code")
    def category_name(self, item: DataItem) -> str:
        return category_badge(item.category) if item.category_id else "—"

    @admin.display(description=_("review"))
    def review(self, item: DataItem) -> str:
        return needs_review_flag() if item.pk is not None and item.needs_review else ""

    @admin.display(description=_("processing operation"), ordering="operation_id")
    def operation_link(self, item: DataItem) -> str:
        url = reverse("admin:processors_operation_change", args=[item.operation_id])
        return format_html('<a href="{}">{}</a>', url, item.operation)

    @admin.display(description=_("controller"), ordering="operation__service__controller__code")
    def controller(self, item: DataItem) -> Controller:
        return item.operation.service.controller

    @admin.action(description=_("Add the item text as an alias of its category"), permissions=["change"])
    def add_text_as_alias(self, request, queryset):
        # Aliases are data: a reviewer's confirmed mapping teaches the taxonomy the table's wording.
        # Wording the taxonomy already knows (a code, a name or an alias of any category) is skipped.
        mapped = list(queryset.filter(category__isnull=False).order_by("id"))
        created = services.category_aliases_add_from_items(items=mapped)
        skipped = len(mapped) - created
        unmapped = queryset.filter(category__isnull=True).count()
        self.message_user(
            request,
            gettext(
                "Aliases added: %(created)d; already known: %(skipped)d; "
                "items without a category: %(unmapped)d."
            )
            % {"created": created, "skipped": skipped, "unmapped": unmapped},
            messages.SUCCESS if created else messages.INFO,
        )
