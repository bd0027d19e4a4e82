"""What the ModelAdmins are built from: base admins, inlines, the shared action, the count annotation.

``RegisterAdmin`` routes the tool pages a ModelAdmin lists in ``tool_pages`` (``processors.admin.tools``);
``RegisterHistoryAdmin`` adds the read-only history page; ``ReadOnlyAdmin`` is for records only the
system writes. The inlines are declarative, like the ModelAdmins in ``processors.admin``.
"""

import hashlib
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminTextareaWidget, AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import EmptyResultSet, ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, models
from django.db.models import F, Func, IntegerField, Prefetch, Subquery
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.text import smart_split, unescape_string_literal
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
    Purpose,
    PurposeAlias,
)
from processors.register_cache import STAMPED_MODELS, RegisterFigures, reader_scope

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


def search_terms(search_term: str) -> list[str]:
    """The words of a changelist search as Django's admin splits them ("quoted phrases" kept whole)."""
    terms = []
    for term in smart_split(search_term):
        if term[:1] in "\"'":
            term = unescape_string_literal(term)
        if term := term.strip():
            terms.append(term)
    return terms


def choices_that_can_exist(widget, value) -> list:
    """The selected values that could name a row: what the form posted or the address gave as initial.

    Django's autocomplete widgets look their selected values up to show them, so a value that is no key
    at all ("x", NUL, a 10,000-character string, a 20-digit number) made re-showing a refused form, or an
    add form opened with ?controller=…, a 500; such a value is simply not shown as selected (the form
    refuses it anyway).
    """
    remote = widget.field.remote_field
    model = remote.model
    key = model._meta.get_field(getattr(remote, "field_name", None) or model._meta.pk.name)
    kept = []
    for item in value:
        try:
            prepared = key.get_prep_value(key.to_python(item))
        except (ValidationError, ValueError, TypeError):
            continue
        # A number past a 64-bit integer (99999999999999999999) is no key either: the database driver
        # would refuse it with an OverflowError.
        if isinstance(prepared, int) and not -(2**63) <= prepared < 2**63:
            continue
        kept.append(item)
    return kept


class CheckedAutocompleteSelect(AutocompleteSelect):
    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, choices_that_can_exist(self, value), attr)


class CheckedAutocompleteSelectMultiple(AutocompleteSelectMultiple):
    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, choices_that_can_exist(self, value), attr)


CHECKED_AUTOCOMPLETE = {
    AutocompleteSelect: CheckedAutocompleteSelect,
    AutocompleteSelectMultiple: CheckedAutocompleteSelectMultiple,
}


class CheckedAutocompleteMixin:
    """For ModelAdmins and inlines: autocomplete widgets that never look up a value that is no key."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        widget = getattr(formfield, "widget", None)
        inner = getattr(widget, "widget", widget)  # inside the "add another" wrapper
        if type(inner) in CHECKED_AUTOCOMPLETE:
            inner.__class__ = CHECKED_AUTOCOMPLETE[type(inner)]
        return formfield


class RefusedSaveForm:
    """Mixed into a change form whose first save was refused: the same data, invalid with that reason."""

    refusal = ""

    def clean(self):
        cleaned = super().clean()
        self.add_error(None, self.refusal)
        return cleaned


class RevisionCountPaginator(Paginator):
    """A changelist's paginator whose count is kept per register revision and reader (register_cache).

    Every view of a list counts its rows: at 100,000 operations ``COUNT(*)`` of the 441,000 findings is
    40 ms on PostgreSQL and a search's count reads every row. The count of the same query by a reader
    who sees the same controllers changes only with a write, which moves the revision. Lists of models
    the revision does not stamp (imports, versions, users) are counted each time.
    """

    def __init__(self, *args, reader: Any = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reader = reader

    @cached_property
    def count(self) -> int:
        def counted() -> int:
            return Paginator.count.func(self)

        query = getattr(self.object_list, "query", None)
        if self.reader is None or query is None or self.object_list.model not in STAMPED_MODELS:
            return counted()
        try:
            sql, params = query.sql_with_params()
        except EmptyResultSet:
            return 0
        name = "admin-count:" + hashlib.sha256(repr((sql, params)).encode()).hexdigest()
        # The reader's scope is read only here: a list the revision does not stamp needs none.
        return RegisterFigures(f"admin:{reader_scope(self.reader)}").get(name, counted)


class RegisterAdmin(CheckedAutocompleteMixin, admin.ModelAdmin):
    """A register model's admin; the tool pages it lists are routed before the model's own URLs.

    Membership narrows it (``selectors.visible_to``): changelists, change forms, actions, exports and
    the autocomplete (which asks the related model's admin) hold only the user's controllers; choices of
    a controller, service or operation only those the user may edit; changing or deleting an object
    needs an editor's role in its controller (a controller's own record: its admin's).
    """

    tool_pages: tuple[ToolPage, ...] = ()

    def get_urls(self):
        return [page.urlpattern(self) for page in self.tool_pages] + super().get_urls()

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return RevisionCountPaginator(
            queryset, per_page, orphans, allow_empty_first_page, reader=request.user
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """The change form, where a save refused after the form validated shows the form again.

        Between the form's checks and the service's write another user may save the same row (the
        service then refuses the stale version), take the name it was to have (IntegrityError), or
        delete it. Django's own transaction around the save rolls everything back; the form is then
        validated once more, with the refusal as its error, so the user sees the posted values, why
        nothing was saved and, for a stale version, who changed what (VersionCheckedForm).
        """
        if request.method != "POST" or getattr(request, "save_refusal", None):
            return super().changeform_view(request, object_id, form_url, extra_context)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ObjectDoesNotExist:
            if object_id is None:
                raise
            # Deleted meanwhile: the second pass answers as for any missing object (back to the index).
            request.save_refusal = gettext("It was deleted by someone else meanwhile; nothing was saved.")
        except ValidationError as error:
            request.save_refusal = gettext("Nothing was saved: %(reason)s") % {
                "reason": " ".join(error.messages)
            }
        except IntegrityError:
            request.save_refusal = gettext(
                "Someone else saved a conflicting change while you were editing; nothing was saved. "
                "Check the values below and save again."
            )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "save_refusal", None)
        if not refusal:
            return form
        return type(form.__name__, (RefusedSaveForm, form), {"refusal": refusal})

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
        # A change form asks several times (buttons, inlines, fields); the answer is the same per request.
        answers = request.__dict__.setdefault("may_change_answers", {})
        key = (type(obj)._meta.label_lower, obj.pk)
        if key not in answers:
            role = ControllerRole.ADMIN if isinstance(obj, Controller) else ControllerRole.EDITOR
            own = type(obj)._default_manager.filter(pk=obj.pk)
            answers[key] = selectors.visible_to(request.user, own, role=role).exists()
        return answers[key]

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

    def history_records(self, obj):
        """The historical rows the history page lists: the object's own."""
        return obj.history.all()

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        records = self.history_records(obj).order_by("-history_date", "-history_id")
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


class ReviewedAdminMixin:
    """The review fields of an operation or processor: an owner chosen among the user's fellow editors,
    without the account admin's add/change buttons (accounts are managed in their own admin)."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            kwargs["queryset"] = selectors.owner_choices(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "owner" and formfield is not None:
            widget = formfield.widget
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = False
            widget.can_view_related = False
        return formfield


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


@admin.action(description=_("Mark reviewed (next review one interval later)"), permissions=["change"])
def mark_reviewed(model_admin, request, queryset):
    """Operations and processors alike: each selected row reviewed now by this user, in its history."""
    if queryset.model is Operation:
        # An operation is reviewed by an editor of its controller; a viewer's selection is skipped.
        allowed = selectors.visible_to(request.user, queryset, role=ControllerRole.EDITOR)
        review = services.operation_mark_reviewed
        keyword = "operation"
    else:
        # Processors are shared: an editor of any register may review them.
        allowed = queryset if selectors.edits_any_controller(request.user) else queryset.none()
        review = services.processor_mark_reviewed
        keyword = "processor"
    rows = list(allowed.order_by("pk"))
    for row in rows:
        review(**{keyword: row}, user=request.user)
    if rows:
        model_admin.message_user(
            request,
            ngettext(
                "%(count)d row marked reviewed by you; next review due %(due)s.",
                "%(count)d rows marked reviewed by you; next review due %(due)s.",
                len(rows),
            )
            % {"count": len(rows), "due": date_format(services.review_due_after(timezone.localdate()))},
            messages.SUCCESS,
        )
    skipped = queryset.count() - len(rows)
    if skipped:
        model_admin.message_user(
            request,
            ngettext(
                "%(count)d row was not marked: reviewing needs an editor's role in its register.",
                "%(count)d rows were not marked: reviewing needs an editor's role in their register.",
                skipped,
            )
            % {"count": skipped},
            messages.WARNING,
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


class DataItemInline(CheckedAutocompleteMixin, admin.TabularInline):
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
        return display.review_flag(item)


# An operation's data items with their categories, in the items' own order (the categories column).
OPERATION_ITEMS = Prefetch(
    "data_items", queryset=DataItem.objects.select_related("category").order_by("position", "id")
)


class FirstRowsInlineFormSet(BaseInlineFormSet):
    """A read-only inline's first ``rows_shown`` rows, in the queryset's order, and how many there are.

    A processor of a large register has hundreds of operations; the change form shows the first ones
    and links to the changelist for the rest, so the page does not grow with the register.
    """

    # Twenty: enough to see what a processor receives at a glance; the admin renders an inline row
    # field by field (about 4 ms a row), and fifty made a group's change form half a second by itself.
    rows_shown = 20

    def get_queryset(self):
        if not getattr(self, "first_rows_taken", False):
            self._queryset = super().get_queryset()[: self.rows_shown]
            self.first_rows_taken = True
        return self._queryset

    @property
    def total_rows(self) -> int:
        """All the rows (counted only when the first ones fill the page)."""
        shown = len(self.get_queryset())
        return self.queryset.count() if shown >= self.rows_shown else shown


class ProcessorOperationInline(admin.TabularInline):
    """The processor's first operations at a glance; they are edited on their own page, and all of them
    are in the operations list filtered by the processor (linked under the rows)."""

    model = Operation
    formset = FirstRowsInlineFormSet
    template = "admin/processors/processor/operations_inline.html"
    verbose_name_plural = _("processing operations")
    fields = ("service", "data_categories", "purposes_list", "relationship", "status")
    readonly_fields = fields
    show_change_link = True
    extra = 0

    def get_queryset(self, request):
        # The processor is shared; what it receives is shown only from the user's controllers.
        # Loaded: what the rows show (service, processor, the items' categories, the purposes).
        operations = selectors.visible_to(request.user, super().get_queryset(request))
        purposes = Prefetch("purposes", queryset=Purpose.objects.order_by("position", "code"))
        return operations.select_related("service__controller", "processor").prefetch_related(
            OPERATION_ITEMS, purposes
        )

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
