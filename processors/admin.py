"""The data-protection officer's admin: every model, bilingual, with changelists in constant queries.

Changelist filters that mean something in the domain ("carries identity data", "receives phone
numbers") are not re-implemented here: ``FilterSetListFilter`` hands the chosen value to the same
FilterSet the API and the browser use, so the three can never disagree. Writes go through
``processors.services`` where a service exists.
"""

import contextlib
import io
import re
from typing import Any

import django_filters
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget, AdminTextareaWidget
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import F, Func, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Concat
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import get_language, gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_filters.filters import QuerySetRequestMixin
from simple_history.admin import SimpleHistoryAdmin

from processors import notices, selectors, services, versions
from processors.filters import OperationFilterSet, ProcessorFilterSet
from processors.findings import Severity, findings
from processors.forms import HeaderMapForm, UploadForm
from processors.history import history_entries
from processors.models import (
    CategoryAlias,
    Channel,
    Controller,
    DataCategory,
    DataItem,
    ImportRecord,
    Operation,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    PublishedVersion,
    Purpose,
    PurposeAlias,
    Service,
    TaxonomyRelease,
)
from processors.spreadsheets import export, uploads
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


class RegisterHistoryAdmin(SimpleHistoryAdmin):
    """A register model's admin whose history page lists who, when, through which door, and old → new.

    History is evidence: simple_history's per-version form (which can save an old state back) is not
    routed at all, and the history page only reads. The page renders ``history_entries`` for one page of
    rows, so its query count does not grow with the number of changes.
    """

    object_history_template = "admin/processors/object_history.html"
    history_list_per_page = 50

    def get_urls(self):
        return [url for url in super().get_urls() if not (url.name or "").endswith("_simple_history")]

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        records = obj.history.order_by("-history_date", "-history_id")
        page = Paginator(records, self.history_list_per_page).get_page(request.GET.get("p"))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Change history: %(object)s") % {"object": obj},
            "subtitle": None,
            "object": obj,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "module_name": str(self.opts.verbose_name_plural).capitalize(),
            "entries": history_entries(page.object_list),
            "page_obj": page,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.object_history_template, context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system only (imports, published versions): to be looked at, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FindingsSectionMixin:
    """A read-only "Findings" field: what the compliance rules report for the object on its page."""

    findings_scope = ""

    @admin.display(description=_("findings"))
    def findings_list(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        found = findings(**{self.findings_scope: obj})
        if not found:
            return format_html('<span class="no-findings">✓ {}</span>', gettext("No findings."))
        return format_html(
            '<ul class="findings-list">{}</ul>',
            format_html_join(
                "",
                '<li class="severity-{}"><strong>{}</strong> {} <code>{}</code> <span class="muted">{}</span>'
                "<br>{}<br><em>{}</em></li>",
                (
                    (
                        finding.severity,
                        Severity(finding.severity).label,
                        finding.rule.title,
                        finding.code,
                        finding.rule.reference,
                        finding.detail or finding.subject_label,
                        finding.rule.fix,
                    )
                    for finding in found
                ),
            ),
        )


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
class DataCategoryAdmin(RegisterHistoryAdmin):
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
class PurposeAdmin(RegisterHistoryAdmin):
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
class ProcessingActionAdmin(RegisterHistoryAdmin):
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


# --- Deletion notices -----------------------------------------------------------------------------

# Categories may be typed as a list: commas (either width), 、, semicolons or new lines between them.
CATEGORY_SEPARATORS = re.compile(r"[,，、;；\n]+")


class DeletionNoticeForm(forms.Form):
    categories = forms.CharField(
        label=_("data categories"),
        help_text=_("Codes, names or aliases, separated by commas, e.g. 手机号, 身份证号."),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    controller = forms.ModelChoiceField(
        label=_("controller"),
        queryset=Controller.objects.order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("all"),
    )

    def clean(self):
        cleaned = super().clean()
        values = [value.strip() for value in CATEGORY_SEPARATORS.split(cleaned.get("categories", ""))]
        values = [value for value in values if value]
        if not values:
            return cleaned
        try:
            cleaned["notice"] = notices.deletion_notice(values, cleaned.get("controller"))
        except notices.NoticeError as error:
            hints = [
                gettext("“%(value)s”: maybe %(suggestions)s")
                % {"value": value, "suggestions": gettext(", ").join(suggestions)}
                for value, suggestions in error.suggestions.items()
                if suggestions
            ]
            self.add_error("categories", [error.message, *hints])
        return cleaned


class DeletionNoticeMixin:
    """Who must be told to delete some categories of data, with their contacts, on screen or as CSV."""

    def deletion_notice_urls(self) -> list:
        view = self.admin_site.admin_view(self.deletion_notice_view)
        return [path("deletion-notice/", view, name="processors_deletion_notice")]

    def deletion_notice_view(self, request):
        if not request.user.has_perm("processors.view_processor"):
            raise PermissionDenied
        form = DeletionNoticeForm(request.GET or None)
        notice = form.cleaned_data.get("notice") if form.is_valid() else None
        if notice is not None and request.GET.get("format") == "csv":
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            response.headers["Content-Disposition"] = 'attachment; filename="deletion-notice.csv"'
            notices.deletion_notice_csv(notice, response, current_lang())
            return response
        query = request.GET.copy()
        query["format"] = "csv"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Deletion notice"),
            "subtitle": None,
            "form": form,
            "notice": notice,
            "csv_query": query.urlencode(),
        }
        return TemplateResponse(request, "admin/processors/deletion_notice.html", context)


# --- Parties --------------------------------------------------------------------------------------


@admin.register(Controller)
class ControllerAdmin(RegisterHistoryAdmin):
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
class ProcessorAdmin(DeletionNoticeMixin, FindingsSectionMixin, RegisterHistoryAdmin):
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
    readonly_fields = (
        "name_key",
        "members",
        "received_categories",
        "findings_list",
        "created_at",
        "updated_at",
    )
    findings_scope = "processor"
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
        (_("Compliance findings"), {"fields": ("findings_list",)}),
        (_("Records"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [ProcessorOperationInline, ProcessorAliasInline]

    def get_urls(self):
        return self.deletion_notice_urls() + super().get_urls()

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
class ServiceAdmin(RegisterHistoryAdmin):
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


# --- Register tools: import, export, findings -----------------------------------------------------

EXPORT_CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
# What the export button and actions offer: (kind, language) → file format.
EXPORT_KINDS = ("xlsx", "csv", "workbook")
EXPORT_LANGUAGES = ("zh", "en")


def spreadsheet_download(operations, *, kind: str, lang: str) -> HttpResponse:
    """The disclosure table (xlsx/csv, zh/en) or the full workbook of these operations, as an attachment."""
    fmt = "xlsx" if kind == "workbook" else kind
    stream = io.BytesIO()
    if kind == "workbook":
        export.export_workbook(operations, stream=stream)
        name = "register-workbook.xlsx"
    else:
        export.export_disclosure(operations, stream=stream, fmt=fmt, lang=lang)
        name = f"register-disclosure-{lang}.{fmt}"
    response = HttpResponse(stream.getvalue(), content_type=EXPORT_CONTENT_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def current_lang() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh"


class OperationImportMixin:
    """Upload → preview (dry run, header mapping) → confirm, in the admin, around ``uploads``.

    The same flow as the browser import: only the pages differ. Each step needs ``add_operation``.
    """

    import_permission = "processors.add_operation"

    def import_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_upload_view), name="processors_operation_import"),
            path(
                "import/<str:token>/",
                view(self.import_preview_view),
                name="processors_operation_import_preview",
            ),
            path(
                "import/<str:token>/confirm/",
                view(self.import_confirm_view),
                name="processors_operation_import_confirm",
            ),
            path(
                "import/<str:token>/discard/",
                view(self.import_discard_view),
                name="processors_operation_import_discard",
            ),
        ]

    def check_import_permission(self, request) -> None:
        if not request.user.has_perm(self.import_permission):
            raise PermissionDenied

    def import_context(self, request, **context) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Import a third-party table"),
            "subtitle": None,
            **context,
        }

    def import_upload_view(self, request):
        self.check_import_permission(request)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                upload = form.store(request.user)
            except uploads.UploadError as error:
                form.add_error(None, error.message)
            else:
                return redirect("admin:processors_operation_import_preview", token=upload.token)
        context = self.import_context(request, form=form)
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/processors/import_upload.html", context, status=status)

    def import_preview_view(self, request, token: str):
        self.check_import_permission(request)
        try:
            preview = uploads.upload_preview(token, request.user, channel=Channel.ADMIN)
            form = HeaderMapForm(
                request.POST if request.method == "POST" else None,
                headers=preview.unknown_headers,
                initial=preview.upload.header_map,
            )
            if request.method == "POST" and form.is_valid():
                uploads.upload_set_header_map(
                    token, request.user, header_map={**preview.upload.header_map, **form.header_map()}
                )
                return redirect("admin:processors_operation_import_preview", token=token)
        except uploads.UploadError as error:
            self.message_user(request, error.message, messages.ERROR)
            return redirect("admin:processors_operation_import")
        report = preview.report
        context = self.import_context(
            request,
            title=gettext("Check before importing"),
            preview=preview,
            report=report,
            upload=preview.upload,
            header_form=form,
            problems=[problem for problem in report.problems if problem.code != "item_unmapped"],
            unmapped_items=report.unmapped_items,
            controller=Controller.objects.filter(code=preview.upload.controller_code).first(),
        )
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/processors/import_preview.html", context, status=status)

    def import_confirm_view(self, request, token: str):
        self.check_import_permission(request)
        if request.method != "POST":
            return redirect("admin:processors_operation_import_preview", token=token)
        try:
            report = uploads.upload_confirm(token, request.user, channel=Channel.ADMIN)
        except uploads.UploadError as error:
            self.message_user(request, error.message, messages.ERROR)
            return redirect("admin:processors_operation_import")
        if not report.committed:
            self.message_user(
                request, gettext("The import found errors and saved nothing; see below."), messages.ERROR
            )
            return redirect("admin:processors_operation_import_preview", token=token)
        counts = report.counts["operations"]
        self.message_user(
            request,
            gettext(
                "Imported %(file)s: %(created)d operations created, %(changed)d changed, "
                "%(unchanged)d unchanged."
            )
            % {
                "file": report.file_name,
                "created": counts.created,
                "changed": counts.changed,
                "unchanged": counts.unchanged,
            },
            messages.SUCCESS,
        )
        changelist = reverse("admin:processors_operation_changelist")
        return HttpResponseRedirect(f"{changelist}?controller={report.controller}")

    def import_discard_view(self, request, token: str):
        self.check_import_permission(request)
        if request.method == "POST":
            with contextlib.suppress(uploads.UploadError):  # a malformed token: nothing to discard
                uploads.upload_discard(token, request.user)
            self.message_user(request, gettext("The upload was discarded; nothing was imported."))
        return redirect("admin:processors_operation_import")


class OperationExportMixin:
    """Export what I see: the filtered changelist (a button) or the selected rows (actions) as a file."""

    def export_urls(self) -> list:
        return [
            path(
                "export/<str:kind>/<str:lang>/",
                self.admin_site.admin_view(self.export_view),
                name="processors_operation_export",
            ),
        ]

    def export_view(self, request, kind: str, lang: str):
        if kind not in EXPORT_KINDS or lang not in EXPORT_LANGUAGES:
            raise Http404
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        # The changelist's own filters, search and ordering, read from the same query string.
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return redirect(reverse("admin:processors_operation_changelist") + "?e=1")
        return spreadsheet_download(changelist.get_queryset(request), kind=kind, lang=lang)

    @admin.action(description=_("Export selected: disclosure table (xlsx, Chinese)"), permissions=["view"])
    def export_disclosure_xlsx_zh(self, request, queryset):
        return spreadsheet_download(queryset, kind="xlsx", lang="zh")

    @admin.action(description=_("Export selected: disclosure table (xlsx, English)"), permissions=["view"])
    def export_disclosure_xlsx_en(self, request, queryset):
        return spreadsheet_download(queryset, kind="xlsx", lang="en")

    @admin.action(description=_("Export selected: disclosure table (csv, Chinese)"), permissions=["view"])
    def export_disclosure_csv_zh(self, request, queryset):
        return spreadsheet_download(queryset, kind="csv", lang="zh")

    @admin.action(description=_("Export selected: full workbook (xlsx)"), permissions=["view"])
    def export_full_workbook(self, request, queryset):
        return spreadsheet_download(queryset, kind="workbook", lang="zh")


class FindingsFilterForm(forms.Form):
    severity = forms.ChoiceField(
        label=_("severity"), choices=[("", _("all"))] + list(Severity.choices), required=False
    )
    controller = forms.ModelChoiceField(
        label=_("controller"),
        queryset=Controller.objects.order_by("code"),
        to_field_name="code",
        required=False,
        empty_label=_("all"),
    )


class FindingsViewMixin:
    """The compliance findings of the register (or one controller), worst first, linked to their subjects."""

    def findings_urls(self) -> list:
        return [path("findings/", self.admin_site.admin_view(self.findings_view), name="processors_findings")]

    def findings_view(self, request):
        if not request.user.has_perm("processors.view_operation"):
            raise PermissionDenied
        form = FindingsFilterForm(request.GET or None)
        found = []
        if form.is_valid() or not request.GET:
            cleaned = form.cleaned_data if form.is_bound else {}
            found = findings(controller=cleaned.get("controller"))
            if cleaned.get("severity"):
                found = [finding for finding in found if finding.severity == cleaned["severity"]]
        rows = [
            {
                "finding": finding,
                "severity_label": Severity(finding.severity).label,
                "url": reverse(
                    f"admin:{finding.subject_model.replace('.', '_')}_change", args=[finding.subject_id]
                ),
            }
            for finding in found
        ]
        counts = {severity.value: 0 for severity in Severity}
        for finding in found:
            counts[finding.severity] += 1
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Compliance findings"),
            "subtitle": None,
            "form": form,
            "rows": rows,
            "counts": [(Severity(value).label, value, count) for value, count in counts.items()],
        }
        return TemplateResponse(request, "admin/processors/findings.html", context)


@admin.register(Operation)
class OperationAdmin(
    OperationImportMixin,
    OperationExportMixin,
    FindingsViewMixin,
    FindingsSectionMixin,
    DataItemActionsMixin,
    RegisterHistoryAdmin,
):
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
    readonly_fields = ("source_text", "findings_list", "created_at", "updated_at")
    findings_scope = "operation"
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
        (_("Compliance findings"), {"fields": ("findings_list",)}),
        (_("Source"), {"fields": ("source_text", "created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [DataItemInline]
    actions = [
        "remap_data_items",
        "export_disclosure_xlsx_zh",
        "export_disclosure_xlsx_en",
        "export_disclosure_csv_zh",
        "export_full_workbook",
    ]

    def get_urls(self):
        return self.import_urls() + self.export_urls() + self.findings_urls() + super().get_urls()

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
class DataItemAdmin(DataItemActionsMixin, RegisterHistoryAdmin):
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


# --- Imports and published versions ---------------------------------------------------------------


@admin.register(ImportRecord)
class ImportRecordAdmin(ReadOnlyAdmin):
    """Every import and preview, as the importer recorded it; evidence, so nothing here can change."""

    list_display = (
        "file_name",
        "user",
        "channel",
        "controller",
        "result",
        "counts_summary",
        "started_at",
        "duration",
    )
    list_select_related = ("user", "controller")
    list_filter = ("result", "channel", "controller")
    search_fields = ("file_name", "sha256")
    date_hierarchy = "started_at"
    fields = (
        ("file_name", "shape"),
        ("controller", "user", "channel"),
        ("result", "dry_run"),
        ("started_at", "duration"),
        ("sha256", "size"),
        "counts_table",
        "problems_table",
    )
    readonly_fields = ("duration", "counts_table", "problems_table")

    @admin.display(description=_("counts"))
    def counts_summary(self, record: ImportRecord) -> str:
        operations = (record.counts or {}).get("operations") or {}
        if not operations:
            return "—"
        return gettext("%(created)s created, %(changed)s changed, %(unchanged)s unchanged") % {
            "created": operations.get("created", 0),
            "changed": operations.get("changed", 0),
            "unchanged": operations.get("unchanged", 0),
        }

    @admin.display(description=_("duration"), ordering="duration_ms")
    def duration(self, record: ImportRecord) -> str:
        return "—" if record.duration_ms is None else f"{record.duration_ms / 1000:.1f} s"

    @admin.display(description=_("counts"))
    def counts_table(self, record: ImportRecord) -> str:
        counts = record.counts if isinstance(record.counts, dict) else {}
        rows = [(name, values) for name, values in counts.items() if isinstance(values, dict)]
        if not rows:
            return "—"
        return format_html(
            "<table><thead><tr><th></th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            gettext("created"),
            gettext("changed"),
            gettext("unchanged"),
            format_html_join(
                "",
                "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (name, values.get("created", 0), values.get("changed", 0), values.get("unchanged", 0))
                    for name, values in rows
                ),
            ),
        )

    @admin.display(description=_("problems"))
    def problems_table(self, record: ImportRecord) -> str:
        problems = [problem for problem in record.problems or [] if isinstance(problem, dict)]
        if not problems:
            return "—"
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            gettext("Level"),
            gettext("Where"),
            gettext("Problem"),
            gettext("Suggestions"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{} <code>{}</code></td><td>{}</td></tr>",
                (
                    (
                        problem.get("level", ""),
                        problem.get("location", "") or "—",
                        problem.get("message", ""),
                        problem.get("value", ""),
                        gettext(", ").join(problem.get("suggestions") or []) or "—",
                    )
                    for problem in problems
                ),
            ),
        )


class PublishVersionForm(forms.Form):
    controller = forms.ModelChoiceField(
        label=_("controller"), queryset=Controller.objects.order_by("code"), to_field_name="code"
    )
    label = forms.CharField(label=_("version label"), max_length=60)
    updated_on = forms.DateField(label=_("version update date"), widget=AdminDateWidget)
    effective_on = forms.DateField(label=_("version effective date"), widget=AdminDateWidget)
    notes = forms.CharField(label=_("notes"), required=False, widget=AdminTextareaWidget(attrs={"rows": 3}))


@admin.register(PublishedVersion)
class PublishedVersionAdmin(ReadOnlyAdmin):
    """Published versions are immutable: a page to publish one, and each version's table and diffs."""

    list_display = ("label", "controller", "updated_on", "effective_on", "published_at", "published_by")
    list_select_related = ("controller", "published_by")
    list_filter = ("controller",)
    search_fields = ("label", "controller__code", "controller__name_zh")
    fields = (
        ("controller", "label"),
        ("updated_on", "effective_on"),
        ("published_at", "published_by"),
        "notes",
        "snapshot_sha256",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("controller", "published_by")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("publish/", view(self.publish_view), name="processors_publishedversion_publish"),
            path(
                "<int:object_id>/diff/<str:against>.<str:fmt>",
                view(self.diff_download_view),
                name="processors_publishedversion_diff",
            ),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        can_publish = request.user.has_perm("processors.add_publishedversion")
        return super().changelist_view(request, {"can_publish": can_publish, **(extra_context or {})})

    def publish_view(self, request):
        if not request.user.has_perm("processors.add_publishedversion"):
            raise PermissionDenied
        today = timezone.localdate()
        form = PublishVersionForm(request.POST or None, initial={"updated_on": today, "effective_on": today})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                version = services.version_publish(
                    controller=data["controller"],
                    label=data["label"],
                    updated_on=data["updated_on"],
                    effective_on=data["effective_on"],
                    notes=data["notes"],
                    user=request.user,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.message_user(
                    request,
                    gettext("Published %(version)s.") % {"version": version},
                    messages.SUCCESS,
                )
                return redirect("admin:processors_publishedversion_change", version.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Publish a version"),
            "subtitle": None,
            "form": form,
            "media": self.media + form.media,
        }
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/processors/publish_version.html", context, status=status)

    def previous_version(self, version: PublishedVersion) -> PublishedVersion | None:
        earlier = PublishedVersion.objects.filter(controller=version.controller_id).exclude(pk=version.pk)
        earlier = earlier.filter(
            Q(effective_on__lt=version.effective_on)
            | Q(effective_on=version.effective_on, published_at__lt=version.published_at)
        )
        return earlier.order_by("-effective_on", "-published_at", "-id").first()

    def diffs(self, version: PublishedVersion) -> dict[str, versions.VersionDiff | None]:
        previous = self.previous_version(version)
        return {
            "previous": versions.version_diff(previous, version) if previous is not None else None,
            "live": versions.version_diff_live(version),
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, unquote(object_id))
        if version is not None:
            lang = current_lang()
            diffs = [
                {
                    "key": key,
                    "title": title,
                    "diff": diff,
                    "rows": diff_table(diff, lang) if diff is not None else [],
                    "headers": versions.diff_rows(diff, lang)[0] if diff is not None else [],
                }
                for (key, diff), title in zip(
                    self.diffs(version).items(),
                    (
                        _("Changes since the previous version"),
                        _("Changes in the live register not yet published"),
                    ),
                    strict=True,
                )
            ]
            extra_context = {
                "disclosure_rows": versions.disclosure_rows(version.snapshot, lang),
                "version_diffs": diffs,
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def diff_download_view(self, request, object_id: int, against: str, fmt: str):
        version = self.get_object(request, str(object_id))
        if version is None or against not in {"previous", "live"} or fmt not in {"md", "xlsx"}:
            raise Http404
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        diff = self.diffs(version)[against]
        if diff is None:
            raise Http404
        lang = request.GET.get("lang") if request.GET.get("lang") in EXPORT_LANGUAGES else current_lang()
        name = f"{version.controller.code}-{version.label}-{against}-{lang}"
        if fmt == "md":
            response = HttpResponse(
                versions.diff_markdown(diff, lang), content_type="text/markdown; charset=utf-8"
            )
        else:
            stream = io.BytesIO()
            versions.diff_xlsx(diff, stream, lang)
            response = HttpResponse(stream.getvalue(), content_type=EXPORT_CONTENT_TYPES["xlsx"])
        response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
        return response


def diff_table(diff: versions.VersionDiff, lang: str) -> list[dict[str, Any]]:
    """The diff's rows as ``diff_rows`` orders them (material, sensitive first), each with its change."""
    changes = [*diff.material, *diff.reductions, *diff.minor]
    return [
        {"cells": cells, "change": change}
        for cells, change in zip(versions.diff_rows(diff, lang)[1:], changes, strict=True)
    ]
