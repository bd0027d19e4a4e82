"""How the admin shows register objects: category badges and trees, summaries, findings and report tables.

Pure presentation: each helper takes objects already fetched (prefetched, on changelists) and returns
safe HTML or text, so a changelist column never adds a query per row.
"""

from collections.abc import Iterable
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext

from processors import selectors, taxonomy
from processors.disclosure import documents
from processors.disclosure.diff import VersionDiff
from processors.findings import Severity
from processors.models import DataCategory, DataItem, ImportRecord, Operation
from processors.models import Finding as StoredFinding

# Ideographic spaces survive HTML whitespace collapsing, so the tree stays indented in <select>s and lists.
TREE_INDENT = "\u3000\u3000"
# Categories listed per operation before "+N more"; enough for a row, short enough to scan.
SUMMARY_LIMIT = 6


def indented_name(category: DataCategory) -> str:
    """The category's name, indented by its depth in the tree."""
    return f"{TREE_INDENT * category.depth}{category.display_name()}"


def in_taxonomy_order(categories: Iterable[DataCategory]) -> list[DataCategory]:
    """Categories as the taxonomy lists them (basic, identity, …), each group followed by its leaves."""
    categories = list(categories)
    by_code = {category.code: category for category in categories}

    def path(category: DataCategory) -> list[tuple[int, str]]:
        segments = category.code.split(".")
        prefixes = (".".join(segments[: length + 1]) for length in range(len(segments)))
        return [(by_code[prefix].position if prefix in by_code else 0, prefix) for prefix in prefixes]

    return sorted(categories, key=path)


def category_tree_choices() -> list[tuple[str, str]]:
    """The whole category tree as (code, indented name) choices, groups above their leaves."""
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
    """The ⚑ mark of a data item no category matched."""
    return format_html('<span class="needs-review">⚑ {}</span>', gettext("unmapped — needs review"))


def review_flag(item: DataItem) -> str:
    """The ⚑ mark of an item a person must look at: unmapped, or inferred, with what it was inferred from."""
    if item.pk is None:
        return ""
    if item.category_id is None:
        return needs_review_flag()
    if item.match != DataItem.Match.INFERRED:
        return ""
    source, text = taxonomy.item_inferred_from(item)
    why = {
        "purpose": gettext("inferred from the purpose “%(text)s”"),
        "usage_scenario": gettext("inferred from the usage scenario “%(text)s”"),
    }.get(source, gettext("its words contain a known item: “%(text)s”"))
    return format_html(
        '<span class="needs-review">⚑ {}</span> <span class="help">{}</span>',
        gettext("inferred — needs review"),
        why % {"text": text},
    )


def join_html(parts: Iterable[Any]) -> str:
    """Safe HTML parts joined by the language's list separator."""
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


def items_preview_html(rows: list[DataItem]) -> str:
    """Unsaved data items (``services.operation_items_planned``) as a table: item, category, how matched."""
    if not rows:
        return format_html('<span class="muted">{}</span>', gettext("No data items in the typed text."))
    categories = DataCategory.objects.in_bulk({row.category_id for row in rows if row.category_id})
    cells = []
    for row in rows:
        category = categories.get(row.category_id)
        if category is None:
            shown = needs_review_flag()
        else:
            # Code and match under the name, so three narrow columns fit a phone's width.
            detail = format_html(
                '<span class="category-code"><code>{}</code> · {}</span>',
                category.code,
                row.get_match_display(),
            )
            shown = format_html("{}<br>{}", category_badge(category), detail)
        cells.append((row.position + 1, row.text, shown))
    return format_html(
        '<table class="items-preview"><thead><tr><th>#</th><th>{}</th><th>{}</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        gettext("item as published"),
        gettext("data category"),
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", cells),
    )


def purposes_summary(operation: Operation) -> str:
    """The operation's prefetched purposes, joined."""
    return gettext(", ").join(str(purpose) for purpose in operation.purposes.all()) or "—"


# Findings listed on a change form; a group's operations can break the rules hundreds of times.
FINDINGS_SHOWN = 30


def findings_html(shown: list[StoredFinding], total: int, more_url: str = "") -> str:
    """What the compliance rules report for one object, worst first, for its change page: the stored
    findings ``shown`` (the first ``FINDINGS_SHOWN``, ``findings.stored_findings_of``), then how many
    more of the ``total`` there are and, given ``more_url``, a link to where all of them are."""
    if not shown:
        return format_html('<span class="no-findings">✓ {}</span>', gettext("No findings."))
    listed = findings_list_html(shown)
    hidden = total - len(shown)
    if hidden <= 0:
        return listed
    more = ngettext("… and %(count)d more finding.", "… and %(count)d more findings.", hidden) % {
        "count": hidden
    }
    if more_url:
        return format_html(
            '{}<p class="help">{} <a href="{}">{}</a></p>',
            listed,
            more,
            more_url,
            gettext("See all findings"),
        )
    return format_html('{}<p class="help">{}</p>', listed, more)


def findings_list_html(shown: list[StoredFinding]) -> str:
    """Stored findings (``stored_findings_for_display``) as a list: severity, rule, reference, what is
    wrong and how to fix it."""
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
                    finding.rule_info.title if finding.rule_info else finding.rule,
                    finding.rule,
                    finding.rule_info.reference if finding.rule_info else "",
                    finding.message or finding.subject_label,
                    finding.rule_info.fix if finding.rule_info else "",
                )
                for finding in shown
            ),
        ),
    )


# --- Import records -------------------------------------------------------------------------------


def import_counts_summary(record: ImportRecord) -> str:
    """The record's operation counts in one line."""
    operations = (record.counts or {}).get("operations") or {}
    if not operations:
        return "—"
    return gettext("%(created)s created, %(changed)s changed, %(unchanged)s unchanged") % {
        "created": operations.get("created", 0),
        "changed": operations.get("changed", 0),
        "unchanged": operations.get("unchanged", 0),
    }


def import_counts_table(record: ImportRecord) -> str:
    """The record's counts per entity, as a table."""
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


def import_problems_table(record: ImportRecord) -> str:
    """The problems the importer recorded, located, with their suggestions, as a table."""
    problems = [problem for problem in record.problems or [] if isinstance(problem, dict)]
    if not problems:
        return "—"
    return format_html(
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
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


# --- Published versions ---------------------------------------------------------------------------


def diff_table(diff: VersionDiff, lang: str) -> list[dict[str, Any]]:
    """The diff's rows as ``diff_rows`` orders them (material, sensitive first), each with its change."""
    changes = [*diff.material, *diff.reductions, *diff.minor]
    return [
        {"cells": cells, "change": change}
        for cells, change in zip(documents.diff_rows(diff, lang)[1:], changes, strict=True)
    ]
