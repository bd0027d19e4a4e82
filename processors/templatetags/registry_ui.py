"""Template helpers of the browser pages: bilingual names, sortable headers, links that keep filters."""

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language

from processors.disclosure.page import version_key as disclosure_version_key
from processors.findings import Severity

register = template.Library()


def _english() -> bool:
    return (get_language() or "").startswith("en")


@register.filter
def bilingual(value: Any, prefix: str = "name") -> str:
    """The name in the active language, falling back to the other (objects or dicts with name_zh/name_en)."""
    get = value.get if isinstance(value, dict) else lambda key, default="": getattr(value, key, default)
    zh, en = get(f"{prefix}_zh", "") or "", get(f"{prefix}_en", "") or ""
    return (en or zh) if _english() else (zh or en)


@register.filter
def other_language_name(value: Any) -> str:
    """The name in the language not shown, when it differs (for a secondary line)."""
    get = value.get if isinstance(value, dict) else lambda key, default="": getattr(value, key, default)
    zh, en = get("name_zh", "") or "", get("name_en", "") or ""
    other = zh if _english() else en
    return other if other and other != bilingual(value) else ""


@register.simple_tag(takes_context=True)
def query_with(context: dict, **changes: Any) -> str:
    """The current query string with some parameters replaced (None removes one); resets the page."""
    query = context["request"].GET.copy()
    query.pop("page", None)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def path_without(context: dict, *names: str) -> str:
    """The current path and query string without some parameters (the language switch drops ?lang=)."""
    request = context["request"]
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return f"{request.path}?{query.urlencode()}" if query else request.path


@register.inclusion_tag("processors/includes/sort_header.html", takes_context=True)
def sort_header(context: dict, key: str, label: str) -> dict[str, Any]:
    """A column header that sorts by the FilterSet's ``ordering`` key, with aria-sort for screen readers."""
    current = context["request"].GET.get("ordering", "")
    if current == key:
        state, next_key = "ascending", f"-{key}"
    elif current == f"-{key}":
        state, next_key = "descending", key
    else:
        state, next_key = "none", key
    query = context["request"].GET.copy()
    query.pop("page", None)
    query["ordering"] = next_key
    return {"label": label, "state": state, "href": f"?{query.urlencode()}"}


@register.simple_tag
def explorer_query(**parameters: Any) -> str:
    """A query string for the explorer from keyword parameters (lists repeat the parameter)."""
    pairs = []
    for name, value in parameters.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item not in (None, ""):
                pairs.append((name, item))
    return urlencode(pairs)


@register.filter
def heat_level(count: int, maximum: int) -> int:
    """0 for an empty cell, else 1–5 by the share of the largest count (for the matrix's colours)."""
    if not count or not maximum:
        return 0
    return max(1, min(5, round(5 * count / maximum)))


@register.filter
def abroad(processor: Any, home: Any) -> bool:
    """Whether a processor is established outside the controller's country."""
    code = getattr(processor.country, "code", processor.country) or ""
    home_code = getattr(home, "code", home) or "CN"
    return bool(code) and code != home_code


@register.filter
def field_label(form: Any, name: str) -> str:
    """The label of a form's field by name (for error summaries)."""
    field = form.fields.get(name)
    return str(field.label) if field is not None and field.label else name


@register.filter
def item_categories(operation: Any) -> list[dict[str, Any]]:
    """An operation's categories once each, in item order, then its unmapped items (prefetched data)."""
    seen: set[int] = set()
    entries: list[dict[str, Any]] = []
    for item in operation.data_items.all():
        if item.category_id is None:
            entries.append({"category": None, "text": item.text})
        elif item.category_id not in seen:
            seen.add(item.category_id)
            entries.append({"category": item.category, "text": item.text})
    return entries


@register.simple_tag
def list_separator() -> str:
    """How a list's items are joined in running text: 、 in Chinese, a comma in English."""
    return ", " if _english() else "、"


@register.simple_tag
def services_by_controller(services: Iterable[Any]) -> str:
    """Services grouped by their controller, in the controllers' id order: "短信、推送 (示例科技); …".

    Built in Python rather than with {% regroup %} in a template: a recipient of a category every row
    sends lists dozens of services on each of a page's fifty rows."""
    separator = list_separator()
    by_controller: dict[int, list[Any]] = {}
    for service in services:
        by_controller.setdefault(service.controller_id, []).append(service)
    return mark_safe(  # noqa: S308 — every part is escaped by format_html / conditional_escape
        "; ".join(
            format_html(
                '<span class="services">{}</span> <span class="muted">({})</span>',
                conditional_escape(separator).join(conditional_escape(str(service)) for service in group),
                group[0].controller.display_name(),
            )
            for _controller_id, group in sorted(by_controller.items())
        )
    )


@register.filter
def version_key(version: Any) -> str:
    """How a published version's address names it (its label, or its id)."""
    return disclosure_version_key(version)


@register.filter
def finding_url(finding: Any) -> str:
    """The page of a finding's subject: the processor's page (for an operation, its recipient's)."""
    subject = finding.subject
    if finding.subject_model == "processors.processor":
        return reverse("processors:processor", args=[finding.subject_id])
    if subject is not None and hasattr(subject, "processor_id"):
        return reverse("processors:processor", args=[subject.processor_id])
    return ""


@register.filter
def severity_label(value: str) -> str:
    """A finding's severity in the reader's language."""
    return str(Severity(value).label) if value in Severity.values else value
