"""The admin's changelist filters.

Filters that mean something in the domain ("carries identity data", "receives phone numbers") are not
re-implemented here: ``FilterSetListFilter`` hands the chosen value to the same FilterSet the API and
the browser use, so the three can never disagree. The rest are plain field filters with curated lists.
"""

import django_filters
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_filters.filters import QuerySetRequestMixin

from processors import selectors, taxonomy
from processors.admin.display import category_tree_choices
from processors.models import DataCategory, DataItem, Processor, Purpose
from processors.text import is_row_id

# Long lists (the category tree, purposes, processors, countries) fold and scroll with a search box.
COMPACT_FILTER_TEMPLATE = "admin/processors/compact_filter.html"


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
            objects = selectors.visible_to(request.user, declared.get_queryset(request).all())
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
        # The FilterSets' choice filters on the model's own columns say distinct=False: a DISTINCT would
        # make the database sort every matching row before it could return a page in the index's order.
        return filterset.qs


def filterset_list_filter(filterset_class, name: str, base: type[FilterSetListFilter] = FilterSetListFilter):
    """A list filter class for one named filter of a FilterSet."""
    class_name = "".join(part.title() for part in name.split("_")) + "ListFilter"
    attributes = {"filterset_class": filterset_class, "parameter_name": name, "__module__": __name__}
    return type(class_name, (base,), attributes)


class CategoryTreeListFilter(FilterSetListFilter):
    """The whole category tree, groups above their indented leaves; a group includes its descendants."""

    template = COMPACT_FILTER_TEMPLATE

    def lookups(self, request, model_admin):
        return category_tree_choices()


class ProcessorInRegisterListFilter(FilterSetListFilter):
    """The processor chosen from a link (a processor's change form, "all of its operations").

    Not a list of every recipient: a large register has thousands, which made each operations page
    read every operation and carry a list longer than the page itself. The search box finds rows by
    processor name; this filter shows (and can clear) the processor a link chose.
    """

    template = COMPACT_FILTER_TEMPLATE

    def lookups(self, request, model_admin):
        chosen = request.GET.getlist(self.parameter_name)[:20]
        if not chosen:
            return []  # nothing to show, and nothing to filter
        # A value that names no processor is still listed, so the filter runs and refuses it (?e=1).
        keys = {value: int(value) for value in chosen if is_row_id(value)}
        found = Processor.objects.in_bulk(keys.values())
        return [(value, str(found.get(keys.get(value), value))) for value in chosen]

    def queryset(self, request, queryset):
        # A value that is no key at all is refused before the FilterSet looks it up (a number too large
        # for the database's integers made the lookup itself fail).
        if self.value() is not None and not is_row_id(self.value()):
            raise IncorrectLookupParameters(self.value())
        return super().queryset(request, queryset)


class PurposeListFilter(FilterSetListFilter):
    template = COMPACT_FILTER_TEMPLATE

    def lookups(self, request, model_admin):
        return [(purpose.code, str(purpose)) for purpose in Purpose.objects.all()]


class ProcessorCountryListFilter(FilterSetListFilter):
    """The countries processors are established in, by name."""

    template = COMPACT_FILTER_TEMPLATE

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
        category = taxonomy.category_find(self.value())
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
        # An inferred item is a guess a person confirms (刷脸 read off 刷脸登录): it waits for review too.
        waiting = Q(category__isnull=True) | Q(match=DataItem.Match.INFERRED)
        return queryset.filter(waiting) if self.value() == "true" else queryset.exclude(waiting)


class VisibleControllerListFilter(admin.RelatedFieldListFilter):
    """The controllers the user may see, read from their own table.

    Django's RelatedOnlyFieldListFilter lists the controllers that occur in the changelist's rows, which
    on the data items reads every item of the register (through its operation and service) per page.
    """

    def field_choices(self, field, request, model_admin):
        controllers = selectors.controllers_for(request.user).order_by("code")
        return [(controller.pk, str(controller)) for controller in controllers]
