"""What the ModelAdmins are built from: base admins, inlines, the shared action, the count annotation.

``RegisterAdmin`` routes the tool pages a ModelAdmin lists in ``tool_pages`` (``processors.admin.tools``);
``RegisterHistoryAdmin`` adds the read-only history page; ``ReadOnlyAdmin`` is for records only the
system writes. The inlines are declarative, like the ModelAdmins in ``processors.admin``.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminTextareaWidget
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models import F, Func, IntegerField, Subquery
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from processors import selectors, services
from processors.admin import display
from processors.admin.tools import ToolPage
from processors.forms import (
    AliasInlineFormSet,
    DataItemForm,
    DataItemInlineFormSet,
    DerivedKeyUniqueForm,
    VersionCheckedForm,
)
from processors.history import history_entries
from processors.models import (
    CategoryAlias,
    Controller,
    ControllerRole,
    DataItem,
    Operation,
    ProcessorAlias,
    PurposeAlias,
)

# Descriptions and notes are usually a line or two; ten-row boxes push the rest of a form off screen.
# Short text areas, and links typed without a scheme read as https (Django 6's default, chosen now).
COMPACT_TEXTAREAS = {
    models.TextField: {"widget": AdminTextareaWidget(attrs={"rows": 3})},
    models.URLField: {"assume_scheme": "https"},
}


def count_subquery(queryset, field: str = "pk") -> Subquery:
    """COUNT(DISTINCT field) over a correlated queryset, as an annotation that needs no GROUP BY join."""
    # MOVE: selectors
    # A plain Func is not an aggregate to the ORM, so no GROUP BY is added: one row, 0 when empty.
    count = Func(
        F(field),
        function="COUNT",
        template="%(function)s(DISTINCT %(expressions)s)",
        output_field=IntegerField(),
    )
    return Subquery(queryset.order_by().annotate(count=count).values("count"), output_field=IntegerField())


class RegisterAdmin(admin.ModelAdmin):
    """A register model's admin; the tool pages it lists are routed before the model's own URLs.

    Membership narrows it (``selectors.visible_to``): changelists, change forms, actions, exports and
    the autocomplete (which asks the related model's admin) hold only the user's controllers; choices of
    a controller, service or operation only those the user may edit; changing or deleting an object
    needs an editor's role in its controller (a controller's own record: its admin's).
    """

    tool_pages: tuple[ToolPage, ...] = ()

    def get_urls(self):
        return [page.urlpattern(self) for page in self.tool_pages] + super().get_urls()

    def get_queryset(self, request):
        return selectors.visible_to(request.user, super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and getattr(field, "queryset", None) is not None:
            field.queryset = selectors.visible_to(request.user, field.queryset, role=ControllerRole.EDITOR)
        return field

    def may_change(self, request, obj) -> bool:
        """Whether the user holds the role that changing this object needs in its controller."""
        if obj is None or obj.pk is None:
            return True
        role = ControllerRole.ADMIN if isinstance(obj, Controller) else ControllerRole.EDITOR
        own = type(obj)._default_manager.filter(pk=obj.pk)
        return selectors.visible_to(request.user, own, role=role).exists()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self.may_change(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self.may_change(request, obj)


class RegisterHistoryAdmin(RegisterAdmin, SimpleHistoryAdmin):
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


class VersionCheckedAdmin(RegisterHistoryAdmin):
    """A versioned model's admin: the change form carries the version it was opened at (a hidden field),
    a save over a newer version is refused with who changed it, when, and both values; a save writes only
    the fields the form changed."""

    form = VersionCheckedForm

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None or not fieldsets:
            return fieldsets
        if any("opened_version" in options["fields"] for _name, options in fieldsets):
            return fieldsets  # no declared fieldsets: Django listed the form's fields, this one too
        (name, options), *rest = fieldsets
        return [(name, {**options, "fields": (*options["fields"], "opened_version")}), *rest]

    def update_kwargs(self, form, change: bool) -> dict:
        """What the update service is given: the changed fields and the version the form was opened at."""
        if not change:
            return {}
        return {"expected_version": form.cleaned_data.get("opened_version"), **form.changed_fields()}


class ReadOnlyAdmin(RegisterAdmin):
    """Records written by the system only (imports, published versions): to be looked at, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.action(description=_("Map unmapped data items again"), permissions=["change"])
def remap_data_items(model_admin, request, queryset):
    """Operations and data items alike: the selection's items that are still unmapped, mapped again."""
    if queryset.model is DataItem:
        items = queryset
    else:
        items = DataItem.objects.filter(operation__in=queryset.values("pk"))
    mapped = services.data_items_remap(items=items)
    left = items.filter(category__isnull=True).count()
    model_admin.message_user(
        request,
        ngettext(
            "%(mapped)d data item was mapped; %(left)d still need review.",
            "%(mapped)d data items were mapped; %(left)d still need review.",
            mapped,
        )
        % {"mapped": mapped, "left": left},
        messages.SUCCESS if mapped else messages.INFO,
    )


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
        return display.needs_review_flag() if item.pk is not None and item.needs_review else ""


class ProcessorOperationInline(admin.TabularInline):
    """The processor's operations at a glance; they are edited on their own page."""

    model = Operation
    verbose_name_plural = _("processing operations")
    fields = ("service", "data_categories", "purposes_list", "relationship", "status")
    readonly_fields = fields
    show_change_link = True
    extra = 0

    def get_queryset(self, request):
        # The processor is shared; what it receives is shown only from the user's controllers.
        return selectors.operation_list(selectors.visible_to(request.user, super().get_queryset(request)))

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("data categories"))
    def data_categories(self, operation: Operation) -> str:
        return display.data_categories_summary(operation)

    @admin.display(description=_("purposes"))
    def purposes_list(self, operation: Operation) -> str:
        return display.purposes_summary(operation)
