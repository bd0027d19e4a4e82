"""The data-protection officer's admin: every model, bilingual, with changelists in constant queries.

This module holds the declarative ModelAdmins and registers them. Around it: ``base`` (the base admins,
the inlines, the shared action), ``filters`` (changelist filters, which delegate to the FilterSets the
API and the browser use), ``display`` (badges and summaries) and ``tools`` (the tool pages: findings,
deletion notice, import, export, publish), each listed on its ModelAdmin in ``tool_pages``. Forms live
in ``processors.forms``. Writes go through ``processors.services`` where a service exists.

Why one module: the ModelAdmins are declarations read side by side (fieldsets, filters, actions of
related models must agree), and ``admin.site`` registers them in one place; their helpers already live
in the modules named above.
"""

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Q, QuerySet
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from processors import selectors, services
from processors.admin import display, tools, users  # noqa: F401 — users registers the accounts' admin
from processors.admin import findings as findings_admin  # noqa: F401 — registers FindingAdmin
from processors.admin.base import (
    COMPACT_TEXTAREAS,
    OPERATION_ITEMS,
    CategoryAliasInline,
    DataItemInline,
    ProcessorAliasInline,
    ProcessorOperationInline,
    PurposeAliasInline,
    ReadOnlyAdmin,
    RegisterHistoryAdmin,
    ReviewedAdminMixin,
    VersionCheckedAdmin,
    count_subquery,
    mark_reviewed,
    remap_data_items,
    search_terms,
)
from processors.admin.filters import (
    CategoryGroupListFilter,
    CategoryTreeListFilter,
    DataItemCategoryListFilter,
    NeedsReviewListFilter,
    ProcessorCountryListFilter,
    ProcessorInRegisterListFilter,
    PurposeListFilter,
    VisibleControllerListFilter,
    filterset_list_filter,
)
from processors.disclosure import documents, versions
from processors.disclosure.rows import rows_from_snapshot
from processors.filters import OperationFilterSet, ProcessorFilterSet
from processors.findings import findings_refresh, stored_findings_of
from processors.forms import DataItemForm, OperationForm, ProcessorForm, ProcessorMergeForm
from processors.history import processor_ids_merged_into
from processors.models import (
    CategoryAlias,
    Controller,
    ControllerMembership,
    ControllerRole,
    DataCategory,
    DataItem,
    ImportRecord,
    Operation,
    ProcessingAction,
    Processor,
    PublishedVersion,
    Purpose,
    PurposeAlias,
    Service,
    TaxonomyRelease,
)

# Bilingual by design rather than translated: a reader of either language recognises the site.
admin.site.site_header = "个人信息接收方登记册 / Processor Registry"
admin.site.site_title = "个人信息接收方登记册 / Processor Registry"
admin.site.index_title = _("Register administration")

# --- Taxonomy -------------------------------------------------------------------------------------


def term_search(queryset: QuerySet, search_term: str, alias_model: type, alias_of: str) -> QuerySet:
    """A taxonomy term (category, purpose) by code, name or alias, word by word; an alias matches through
    an id subquery, not a join, so no DISTINCT over the (annotated) rows is needed."""
    for term in search_terms(search_term):
        aliases = alias_model.objects.filter(text__icontains=term).values(alias_of)
        queryset = queryset.filter(
            Q(code__icontains=term)
            | Q(name_zh__icontains=term)
            | Q(name_en__icontains=term)
            | Q(pk__in=aliases)
        )
    return queryset


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
        "operations_link",
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

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # A new alias maps the unmapped items worded like it, and their findings follow.
        if any(formset.new_objects or formset.changed_objects for formset in formsets):
            services.data_items_remap_unmapped()

    def get_queryset(self, request):
        # Aliases are few per category; the operations are not counted here (see operations_link).
        aliases = CategoryAlias.objects.filter(category=OuterRef("pk"))
        return super().get_queryset(request).annotate(alias_count=count_subquery(aliases))

    def get_search_results(self, request, queryset, search_term):
        return term_search(queryset, search_term, CategoryAlias, "category"), False

    @admin.display(description=_("Chinese name"), ordering="code")
    def tree_name(self, category: DataCategory) -> str:
        template = (
            '<strong class="tree-name">{}{}</strong>'
            if category.parent_id is None
            else '<span class="tree-name">{}{}</span>'
        )
        return format_html(template, display.TREE_INDENT * category.depth, category.name_zh)

    # The standard's name is the header in both languages; the model field's help text explains it.
    @admin.display(description="GB/T 45574", boolean=True)
    def sensitive_under_gbt45574(self, category: DataCategory) -> bool:
        return category.effective_sensitive_gbt45574

    @admin.display(description=_("aliases"), ordering="alias_count")
    def alias_count(self, category: DataCategory) -> int:
        return category.alias_count

    @admin.display(description=_("operations (incl. subcategories)"))
    def operations_link(self, category: DataCategory) -> str:
        """A link to the operations carrying the category or a subcategory, filtered as the list filter does.

        Not a count: counting the operations of every category on the page reads every data item of
        the register (a category such as 姓名 is on every row), so the page would grow with it.
        """
        url = reverse("admin:processors_operation_changelist") + "?" + urlencode({"category": category.code})
        return format_html('<a href="{}">{}</a>', url, gettext("operations"))


@admin.register(Purpose)
class PurposeAdmin(RegisterHistoryAdmin):
    formfield_overrides = COMPACT_TEXTAREAS
    list_display = ("code", "name_zh", "name_en", "position", "operations_link")
    search_fields = ("code", "name_zh", "name_en", "aliases__text")
    fields = ("code", ("name_zh", "name_en"), "description_zh", "description_en", "position")
    inlines = [PurposeAliasInline]

    def get_search_results(self, request, queryset, search_term):
        return term_search(queryset, search_term, PurposeAlias, "purpose"), False

    @admin.display(description=_("operations"))
    def operations_link(self, purpose: Purpose) -> str:
        """A link to the operations with the purpose; not a count, which would read every operation's
        purposes on each page view (as for the categories)."""
        url = reverse("admin:processors_operation_changelist") + "?" + urlencode({"purpose": purpose.code})
        return format_html('<a href="{}">{}</a>', url, gettext("operations"))


@admin.register(ProcessingAction)
class ProcessingActionAdmin(RegisterHistoryAdmin):
    list_display = ("code", "name_zh", "name_en", "pipl_article_4", "position")
    list_filter = ("pipl_article_4",)
    search_fields = ("code", "name_zh", "name_en")


@admin.register(TaxonomyRelease)
class TaxonomyReleaseAdmin(ReadOnlyAdmin):
    """Written by the taxonomy upgrade only; the admin shows which versions have been applied."""

    list_display = ("version", "applied_at")


# --- Parties --------------------------------------------------------------------------------------


class ControllerMembershipInline(admin.TabularInline):
    """Who may see and change this controller's register, and with which role."""

    model = ControllerMembership
    fields = ("user", "group", "role")
    extra = 0


@admin.register(Controller)
class ControllerAdmin(VersionCheckedAdmin):
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
    inlines = [ControllerMembershipInline]

    def get_queryset(self, request):
        services_of = Service.objects.filter(controller=OuterRef("pk"))
        return super().get_queryset(request).annotate(service_count=count_subquery(services_of))

    def save_model(self, request, obj, form, change):
        # The form has filled in the instance (new or existing); the service validates and saves it.
        services.controller_update(controller=obj, **self.update_kwargs(form, change))
        if not change and not selectors.sees_every_controller(request.user):
            # Membership is where a user may act; whoever creates a controller may then administer it.
            services.controller_membership_grant(controller=obj, user=request.user, role=ControllerRole.ADMIN)

    @admin.display(description=_("services"), ordering="service_count")
    def service_count(self, controller: Controller) -> int:
        return controller.service_count


# Members named on a group's change form; the rest are one click away in the processors list.
MEMBERS_SHOWN = 50


@admin.register(Processor)
class ProcessorAdmin(ReviewedAdminMixin, VersionCheckedAdmin):
    form = ProcessorForm
    formfield_overrides = COMPACT_TEXTAREAS
    show_full_result_count = False
    list_display = ("name", "kind", "member_of", "country_name", "contact_phone", "operation_count")
    list_select_related = ("member_of",)
    list_filter = (
        filterset_list_filter(ProcessorFilterSet, "kind"),
        filterset_list_filter(ProcessorFilterSet, "country", base=ProcessorCountryListFilter),
        filterset_list_filter(ProcessorFilterSet, "receives", base=CategoryTreeListFilter),
        filterset_list_filter(ProcessorFilterSet, "controller"),
        filterset_list_filter(ProcessorFilterSet, "review"),
    )
    search_fields = ("name_zh", "name_en", "aliases__text", "contact_phone", "uscc")
    autocomplete_fields = ("member_of",)
    readonly_fields = (
        "name_key",
        "members",
        "received_categories",
        "findings_list",
        "reviewed_at",
        "reviewed_by_name",
        "created_at",
        "updated_at",
    )
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
        (_("Review"), {"fields": ("owner", ("reviewed_at", "reviewed_by_name"), "review_due")}),
        (_("Records"), {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [ProcessorOperationInline, ProcessorAliasInline]
    actions = [mark_reviewed, "merge_processors"]
    tool_pages = tools.PROCESSOR_TOOLS

    def get_queryset(self, request):
        # The processor is shared; what it receives is counted only from the user's controllers.
        operations = selectors.operations_visible_to(request.user).filter(processor=OuterRef("pk"))
        return super().get_queryset(request).annotate(operation_count=count_subquery(operations))

    def get_object(self, request, object_id, from_field=None):
        processor = super().get_object(request, object_id, from_field)
        if processor is not None:
            processor.viewer = request.user  # what it receives is shown from the viewer's controllers
        return processor

    def save_model(self, request, obj, form, change):
        # The form has filled in the instance (new or existing); the service validates and saves it.
        services.processor_update(processor=obj, **self.update_kwargs(form, change))

    def history_records(self, processor):
        # The processors merged into this one are part of its history (their rows outlive them).
        return Processor.history.filter(id__in=[processor.pk, *processor_ids_merged_into(processor)])

    def has_merge_permission(self, request) -> bool:
        # Django offers an action when any one of its permissions is held; merging needs both.
        return self.has_change_permission(request) and self.has_delete_permission(request)

    @admin.action(description=_("Merge into one…"), permissions=["merge"])
    def merge_processors(self, request, queryset):
        """Duplicates become one: a page to choose the survivor, then processors_merge does the rest."""
        if queryset.count() < 2:
            self.message_user(request, gettext("Select at least two processors to merge."), messages.WARNING)
            return None
        form = ProcessorMergeForm(request.POST if "post" in request.POST else None, processors=queryset)
        if form.is_valid():
            survivor = form.cleaned_data["survivor"]
            others = list(queryset.exclude(pk=survivor.pk))
            try:
                services.processors_merge(survivor, others, user=request.user)
            except (PermissionDenied, ValidationError) as error:
                reason = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
                message = gettext("Nothing was merged: %(reason)s") % {"reason": reason}
                self.message_user(request, message, messages.ERROR)
                return None
            self.message_user(
                request,
                ngettext(
                    "%(count)d processor was merged into %(survivor)s; its names are now aliases.",
                    "%(count)d processors were merged into %(survivor)s; their names are now aliases.",
                    len(others),
                )
                % {"count": len(others), "survivor": survivor},
                messages.SUCCESS,
            )
            return redirect("admin:processors_processor_change", survivor.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Merge processors into one"),
            "opts": self.opts,
            "form": form,
            "processors": queryset.prefetch_related("aliases"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/processors/merge_processors.html", context)

    @admin.display(description=_("name"), ordering="name_key")
    def name(self, processor: Processor) -> str:
        return str(processor)

    @admin.display(description=_("operations"), ordering="operation_count")
    def operation_count(self, processor: Processor) -> int:
        return processor.operation_count

    @admin.display(description=_("country/region of establishment"), ordering="country")
    def country_name(self, processor: Processor) -> str:
        # The country's own name: Django's column display flattens all ~250 country choices per row.
        return processor.country.name if processor.country else "—"

    @admin.display(description=_("receives"))
    def received_categories(self, processor: Processor) -> str:
        """What the processor receives, through its own operations or those of its group."""
        if processor.pk is None:
            return "—"
        recipients = [processor.pk] + ([processor.member_of_id] if processor.member_of_id else [])
        visible = selectors.operations_visible_to(getattr(processor, "viewer", None))
        received = DataCategory.objects.filter(
            data_items__operation__processor__in=recipients, data_items__operation__in=visible.values("pk")
        ).distinct()
        badges = (display.category_badge(category) for category in display.in_taxonomy_order(received))
        return display.join_html(badges) or "—"

    @admin.display(description=_("members"))
    def members(self, processor: Processor) -> str:
        """The group's first members by name, and a link to all of them when there are more."""
        members = list(processor.members.all()[: MEMBERS_SHOWN + 1]) if processor.pk else []
        links = (
            (reverse("admin:processors_processor_change", args=[member.pk]), str(member))
            for member in members[:MEMBERS_SHOWN]
        )
        shown = format_html_join(gettext(", "), '<a href="{}">{}</a>', links)
        if len(members) > MEMBERS_SHOWN:
            url = (
                reverse("admin:processors_processor_changelist")
                + "?"
                + urlencode({"member_of__id__exact": processor.pk})
            )
            return format_html('{} … <a href="{}">{}</a>', shown, url, gettext("all members"))
        return shown or "—"

    @admin.display(description=_("findings"))
    def findings_list(self, processor: Processor) -> str:
        if processor.pk is None:
            return "—"
        shown, total = stored_findings_of(
            getattr(processor, "viewer", None), processor=processor, limit=display.FINDINGS_SHOWN
        )
        # The stored findings' list holds every one; its search matches the subject's label.
        more_url = reverse("admin:processors_finding_changelist") + "?" + urlencode({"q": str(processor)})
        return display.findings_html(shown, total, more_url)


# --- Services and operations ----------------------------------------------------------------------


@admin.register(Service)
class ServiceAdmin(VersionCheckedAdmin):
    formfield_overrides = COMPACT_TEXTAREAS
    list_display = ("name", "name_en", "controller", "sdk_name", "operation_count")
    list_select_related = ("controller",)
    list_filter = (("controller", admin.RelatedOnlyFieldListFilter),)
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
        services.service_update(service=obj, **self.update_kwargs(form, change))

    @admin.display(description=_("operations"), ordering="operation_count")
    def operation_count(self, service: Service) -> int:
        return service.operation_count


class OperationChangeList(ChangeList):
    """The operations list loads what its columns show: the rows with their service, controller and
    processor (one join), and their data items with categories (one prefetch for the page)."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.prefetch_related(OPERATION_ITEMS)


@admin.register(Operation)
class OperationAdmin(ReviewedAdminMixin, VersionCheckedAdmin):
    # What fits beside the filters at 1440 px; controller, purposes and relationship are filters and
    # on the change form.
    list_display = ("service", "processor", "data_categories", "cross_border", "status")
    list_select_related = ("service__controller", "processor")
    # The register's size is not counted on every page view (the filtered count still is).
    show_full_result_count = False
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
        filterset_list_filter(OperationFilterSet, "review"),
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
    form = OperationForm

    def get_object(self, request, object_id, from_field=None):
        operation = super().get_object(request, object_id, from_field)
        if operation is not None:
            operation.viewer = request.user  # its findings are read as the viewer may see them
        return operation

    def get_search_results(self, request, queryset, search_term):
        # The site's search, word by word (every word must match): one id subquery per table, which
        # PostgreSQL answers from trigram indexes, instead of Django's OR over four joined tables that
        # needs DISTINCT and reads every row. search_fields above only make the admin show its box.
        for term in search_terms(search_term):
            queryset = queryset.filter(selectors.operations_matching_text_q(term))
        return queryset, False

    formfield_overrides = COMPACT_TEXTAREAS
    readonly_fields = (
        "source_text",
        "items_preview",
        "findings_list",
        "reviewed_at",
        "reviewed_by_name",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            _("What"),
            {
                "fields": (
                    "service",
                    "data_items_text",
                    "items_preview",
                    "items_confirmed",
                    ("purposes", "purpose_text"),
                    ("actions", "actions_text", "actions_open_ended"),
                    "usage_scenario",
                    "feature_necessary",
                )
            },
        ),
        (_("Compliance findings"), {"fields": ("findings_list",)}),
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
        (_("Review"), {"fields": ("owner", ("reviewed_at", "reviewed_by_name"), "review_due")}),
        (_("Source"), {"fields": ("source_text", "created_at", "updated_at"), "classes": ("collapse",)}),
    )
    inlines = [DataItemInline]
    actions = [remap_data_items, mark_reviewed, *tools.EXPORT_ACTIONS]
    tool_pages = tools.OPERATION_TOOLS

    def get_changelist(self, request, **kwargs):
        return OperationChangeList

    def save_model(self, request, obj, form, change):
        # The form has filled in the instance (new or existing); the service validates and saves it.
        # A changed text is itemised by operation_update; a new operation's text here, by the same rule.
        services.operation_update(operation=obj, **self.update_kwargs(form, change))
        if not change and form.items_text_changed():
            services.operation_set_data_items_from_text(
                operation=obj, text=obj.data_items_text, refresh=False
            )

    def save_formset(self, request, form, formset, change):
        if formset.model is not DataItem:
            return super().save_formset(request, form, formset, change)
        if form.items_text_changed():
            # The items were just recorded from the typed text; rows edited beside it are not applied
            # over them (the text is the source), and the user is told so.
            if formset.has_changed():
                self.message_user(
                    request,
                    gettext(
                        "The data items were recorded from the typed text; changes to the item rows in the "
                        "same save were not applied."
                    ),
                    messages.WARNING,
                )
            # What the admin's change message reads from a saved formset: nothing, as nothing was saved.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return None
        items = formset.save(commit=False)
        services.data_items_save(operation=form.instance, saved=items, deleted=formset.deleted_objects)
        formset.save_m2m()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Items typed without a category are mapped by the taxonomy; the rest stay flagged for review.
        services.data_items_remap(items=form.instance.data_items.all())
        # The form saved the purposes and actions itself (save_m2m), after operation_update's refresh.
        findings_refresh(operations=[form.instance])
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

    @admin.display(description=_("data categories"))
    def data_categories(self, operation: Operation) -> str:
        return display.data_categories_summary(operation)

    @admin.display(description=_("findings"))
    def findings_list(self, operation: Operation) -> str:
        if operation.pk is None:
            return "—"
        shown, total = stored_findings_of(
            getattr(operation, "viewer", None), operation=operation, limit=display.FINDINGS_SHOWN
        )
        return display.findings_html(shown, total)

    @admin.display(description=_("items as they will be recorded"))
    def items_preview(self, operation: Operation) -> str:
        """The typed text split and mapped by the one itemisation rule, before (and after) it is saved."""
        if not (operation.data_items_text or "").strip():
            return gettext("Type the data items above (separated by 、 , ; or new lines) to see them here.")
        rows = services.operation_items_planned(text=operation.data_items_text, operation=operation)
        return display.items_preview_html(rows)


@admin.register(DataItem)
class DataItemAdmin(RegisterHistoryAdmin):
    """Where a reviewer finds the items the taxonomy could not map, across the whole register."""

    form = DataItemForm
    show_full_result_count = False
    list_display = ("text", "category_name", "match", "review", "operation_link", "controller")
    list_select_related = ("category", "operation__service__controller", "operation__processor")
    list_filter = (
        NeedsReviewListFilter,
        DataItemCategoryListFilter,
        "match",
        ("operation__service__controller", VisibleControllerListFilter),
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
    actions = [remap_data_items, "add_text_as_alias"]

    def get_search_results(self, request, queryset, search_term):
        # Each word in the item's text, its category or the operation's processor or service. The
        # categories, processors and services matching are looked up on their own (small) tables and
        # the items reached through their indexed keys, instead of Django's OR over four joined tables.
        for term in search_terms(search_term):
            categories = DataCategory.objects.filter(
                Q(code__icontains=term) | Q(name_zh__icontains=term) | Q(name_en__icontains=term)
            )
            operations = Operation.objects.filter(
                Q(processor__in=Processor.objects.filter(name_zh__icontains=term).values("pk"))
                | Q(service__in=Service.objects.filter(name__icontains=term).values("pk"))
            )
            queryset = queryset.filter(
                Q(text__icontains=term)
                | Q(category__in=categories.values("pk"))
                | Q(operation__in=operations.values("pk"))
            )
        return queryset, False

    def save_model(self, request, obj, form, change):
        services.data_items_save(operation=obj.operation, saved=[obj])

    @admin.display(description=_("data category"), ordering="category__code")
    def category_name(self, item: DataItem) -> str:
        return display.category_badge(item.category) if item.category_id else "—"

    @admin.display(description=_("review"))
    def review(self, item: DataItem) -> str:
        return display.review_flag(item)

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
        "username",
        "channel",
        "controller",
        "result",
        "counts_summary",
        "started_at",
        "duration",
    )
    list_select_related = ("user", "controller")
    list_filter = ("result", "channel", ("controller", admin.RelatedOnlyFieldListFilter))
    search_fields = ("file_name", "sha256")
    date_hierarchy = "started_at"
    fields = (
        ("file_name", "shape"),
        ("controller", "username", "channel"),  # the name copied at import time outlives the account
        ("result", "dry_run"),
        ("started_at", "duration"),
        ("sha256", "size"),
        "counts_table",
        "problems_table",
    )
    readonly_fields = ("duration", "counts_table", "problems_table")

    @admin.display(description=_("counts"))
    def counts_summary(self, record: ImportRecord) -> str:
        return display.import_counts_summary(record)

    @admin.display(description=_("duration"), ordering="duration_ms")
    def duration(self, record: ImportRecord) -> str:
        return "—" if record.duration_ms is None else f"{record.duration_ms / 1000:.1f} s"

    @admin.display(description=_("counts"))
    def counts_table(self, record: ImportRecord) -> str:
        return display.import_counts_table(record)

    @admin.display(description=_("problems"))
    def problems_table(self, record: ImportRecord) -> str:
        return display.import_problems_table(record)


# Rows of a version's table its change page shows; the public page and the downloads hold them all.
VERSION_ROWS_SHOWN = 200


class PublishedVersionChangeList(ChangeList):
    """The versions list reads none of a version's frozen table: the snapshot, its rendered pages and
    stored diffs hold every row (megabytes on a large register); the list shows the stored row count."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return versions.versions_listed(queryset)


@admin.register(PublishedVersion)
class PublishedVersionAdmin(ReadOnlyAdmin):
    """Published versions are immutable: a page to publish one, and each version's table and diffs."""

    list_display = (
        "label",
        "controller",
        "updated_on",
        "effective_on",
        "published_at",
        "published_by_name",
        "row_count",
        "withdrawn_at",
    )
    list_select_related = ("controller", "published_by")
    list_filter = (("controller", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("label", "controller__code", "controller__name_zh")
    fields = (
        ("controller", "label"),
        ("updated_on", "effective_on"),
        ("published_at", "published_by_name"),
        "notes",
        "snapshot_sha256",
        "override_reason",
        ("withdrawn_at", "withdrawn_by_name"),
        "withdrawal_reason",
    )
    tool_pages = tools.VERSION_TOOLS

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("controller", "published_by")

    def get_changelist(self, request, **kwargs):
        return PublishedVersionChangeList

    def changelist_view(self, request, extra_context=None):
        can_publish = request.user.has_perm("processors.add_publishedversion")
        return super().changelist_view(request, {"can_publish": can_publish, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        version = self.get_object(request, unquote(object_id))
        if version is not None:
            lang = tools.current_lang()
            titles = (
                _("Changes since the previous version"),
                _("Changes in the live register not yet published"),
            )
            diffs = [
                {
                    "key": key,
                    "title": title,
                    "diff": diff,
                    "rows": display.diff_table(diff, lang) if diff is not None else [],
                    "headers": documents.diff_rows(diff, lang)[0] if diff is not None else [],
                }
                for (key, diff), title in zip(tools.version_diffs(version).items(), titles, strict=True)
            ]
            extra_context = {
                # The first rows only: a version of 100,000 rows is read whole by its downloads.
                "disclosure_rows": rows_from_snapshot(
                    {"operations": versions.entries_page(version, 0, VERSION_ROWS_SHOWN)}, lang
                ),
                "disclosure_rows_total": version.row_count,
                "version_diffs": diffs,
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)
