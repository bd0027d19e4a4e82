"""The disclosure page's model: a controller's table grouped by service, versions by address, change lines.

What the browser pages show, built from the one row renderer (``rows``) and the documents' texts
(``documents``), so the page says what the downloads and the change notice say.
"""

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from processors import findings, selectors
from processors.disclosure.diff import IMPACTS, Change, VersionDiff
from processors.disclosure.documents import item_text, value_text
from processors.disclosure.rows import (
    DISCLOSURE_HEADERS,
    DisclosureRow,
    country_name,
    english_or_marked,
    party_name,
    rows_from_snapshot,
)
from processors.disclosure.snapshots import Snapshot, snapshot_from_operations
from processors.disclosure.versions import live_diff
from processors.models import (
    Controller,
    FindingState,
    Operation,
    OperationStatus,
    Processor,
    PublicVersions,
    PublishedVersion,
    Service,
    Severity,
)
from processors.models import Finding as StoredFinding
from processors.text import is_row_id

# --- The table ------------------------------------------------------------------------------------


@dataclass
class DisclosureEntry:
    """One row of the table: the exporters' texts and the snapshot entry they were made from."""

    row: DisclosureRow
    entry: dict[str, Any]
    country: str = ""
    abroad: bool = False
    members: list[dict[str, Any]] = field(default_factory=list)

    @property
    def processor(self) -> dict[str, Any]:
        return self.entry["processor"]


@dataclass
class DisclosureGroup:
    """The rows of one service."""

    service: str
    rows: list[DisclosureEntry]
    # Its first rows are on an earlier page.
    continued: bool = False

    @property
    def anchor(self) -> str:
        return f"service-{self.rows[0].row.service_id}"


@dataclass
class ServiceJump:
    """A service in the table's jump list: where its rows start (page and anchor) and how many there are."""

    id: int
    name: str
    rows: int
    page: int

    @property
    def anchor(self) -> str:
        return f"service-{self.id}"


@dataclass
class DisclosureTable:
    """A controller's table (or one page of it) from a snapshot: a published version's, or the live
    register's. ``total_rows``, ``services`` and ``abroad_parties`` describe the whole table when the
    groups are one page of it."""

    controller: Controller
    lang: str
    groups: list[DisclosureGroup]
    last_updated: datetime.datetime | None = None
    effective_from: datetime.date | None = None
    version: PublishedVersion | None = None
    total_rows: int | None = None
    services: list[ServiceJump] = field(default_factory=list)
    abroad_parties: list[tuple[dict[str, Any], list[str]]] | None = None
    page: int = 1
    pages: int = 1

    @property
    def row_count(self) -> int:
        if self.total_rows is not None:
            return self.total_rows
        return sum(len(group.rows) for group in self.groups)

    @property
    def headers(self) -> tuple[str, ...]:
        return DISCLOSURE_HEADERS[self.lang]

    @property
    def abroad(self) -> list[tuple[dict[str, Any], list[str]]]:
        """Recipients established abroad (group members one by one), with the services sending to them."""
        if self.abroad_parties is not None:
            return self.abroad_parties
        return abroad_in_groups(self.groups)


def abroad_in_groups(groups: list[DisclosureGroup]) -> list[tuple[dict[str, Any], list[str]]]:
    """The recipients abroad among these rows (group members one by one), with their services."""
    found: dict[Any, tuple[dict[str, Any], list[str]]] = {}
    for group in groups:
        for row in group.rows:
            parties = row.members or [{**row.processor, "country_name": row.country, "abroad": row.abroad}]
            for party in parties:
                if party["abroad"]:
                    services = found.setdefault(party["id"], (party, []))[1]
                    if group.service not in services:
                        services.append(group.service)
    return list(found.values())


def disclosure_table(
    controller: Controller,
    snapshot: Snapshot,
    *,
    lang: str,
    version: PublishedVersion | None = None,
    marks: bool = False,
) -> DisclosureTable:
    """The controller's table grouped by service, with the very texts the downloads carry."""
    home = (snapshot.get("controller") or {}).get("country") or controller.country.code or "CN"

    def place(party: dict[str, Any]) -> tuple[str, bool]:
        code = party.get("country") or ""
        return (country_name(code, lang) if code else ""), bool(code) and code != home

    groups: list[DisclosureGroup] = []
    # The rows come from the renderer the downloads use, so the page and the files cannot disagree.
    rows = rows_from_snapshot(snapshot, lang, marks=marks)
    for entry, row in zip(snapshot["operations"], rows, strict=True):
        country, abroad = place(entry["processor"])
        members = [
            {**member, "name": party_name(member, lang), "country_name": name, "abroad": member_abroad}
            for member in entry["processor"]["members"]
            for name, member_abroad in [place(member)]
        ]
        if not groups or groups[-1].rows[0].row.service_id != row.service_id:
            groups.append(DisclosureGroup(row.service, []))
        groups[-1].rows.append(DisclosureEntry(row, entry, country, abroad, members))
    dates = {} if version is not None else selectors.disclosure_dates(controller)
    return DisclosureTable(controller, lang, groups, **dates, version=version)


# --- One page of a table ------------------------------------------------------------------------------
# A 100,000-row table is not one page: rows are paged in table order, a jump list names every service
# with the page its rows start on, and the recipients abroad are summed up over the whole table.

DISCLOSURE_PAGE_ROWS = 250


def service_name(lang: str, name: str, name_en: str) -> str:
    """A service's name as the rows show it."""
    return english_or_marked(name_en, name) if lang == "en" else name


def page_count(rows: int) -> int:
    return max(1, -(-rows // DISCLOSURE_PAGE_ROWS))


def page_number(asked: Any, pages: int) -> int:
    """The page asked for (?page=), kept within the table: a bad or missing value is the first page."""
    try:
        number = int(asked)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), pages)


def service_jumps(counts: list[tuple[int, str, int]]) -> list[ServiceJump]:
    """Services in table order with their row counts, each with the page its first row is on."""
    jumps, start = [], 0
    for service_id, name, rows in counts:
        jumps.append(ServiceJump(service_id, name, rows, start // DISCLOSURE_PAGE_ROWS + 1))
        start += rows
    return jumps


def disclosure_page_from_snapshot(
    controller: Controller, snapshot: Snapshot, *, lang: str, page: int, version: PublishedVersion | None
) -> DisclosureTable:
    """One page of a snapshot's table, with the whole table's jump list and recipients abroad."""
    entries = snapshot["operations"]
    pages = page_count(len(entries))
    page = page_number(page, pages)
    counts: list[tuple[int, str, int]] = []
    for entry in entries:
        service = entry["service"]
        if not counts or counts[-1][0] != service["id"]:
            counts.append((service["id"], service_name(lang, service["name"], service.get("name_en", "")), 0))
        counts[-1] = (*counts[-1][:2], counts[-1][2] + 1)
    start = (page - 1) * DISCLOSURE_PAGE_ROWS
    table = disclosure_table(
        controller,
        {**snapshot, "operations": entries[start : start + DISCLOSURE_PAGE_ROWS]},
        lang=lang,
        version=version,
    )
    table.total_rows = len(entries)
    table.services = service_jumps(counts)
    table.abroad_parties = abroad_in_snapshot(controller, snapshot, lang) if pages > 1 else None
    table.page, table.pages = page, pages
    _mark_continued(table)
    return table


def abroad_in_snapshot(
    controller: Controller, snapshot: Snapshot, lang: str
) -> list[tuple[dict[str, Any], list[str]]]:
    """The recipients abroad of a whole snapshot, as ``abroad_in_groups`` finds them, rows unrendered."""
    home = (snapshot.get("controller") or {}).get("country") or controller.country.code or "CN"
    found: dict[Any, tuple[dict[str, Any], list[str]]] = {}
    for entry in snapshot["operations"]:
        service = service_name(lang, entry["service"]["name"], entry["service"].get("name_en", ""))
        processor = entry["processor"]
        for party in processor["members"] or [processor]:
            code = party.get("country") or ""
            if code and code != home:
                shown = {**party, "name": party_name(party, lang), "country_name": country_name(code, lang)}
                services = found.setdefault(party["id"], ({**shown, "abroad": True}, []))[1]
                if service not in services:
                    services.append(service)
    return list(found.values())


def disclosure_page_live(controller: Controller, *, lang: str, page: Any) -> DisclosureTable:
    """One page of the live register's table, read page by page (its cost does not grow with the table)."""
    operations = selectors.disclosure_operations(controller)
    counts = [
        (row["service_id"], service_name(lang, row["service__name"], row["service__name_en"]), row["rows"])
        for row in operations.order_by("service_id")
        .values("service_id", "service__name", "service__name_en")
        .annotate(rows=Count("pk"))
    ]
    total = sum(rows for _id, _name, rows in counts)
    pages = page_count(total)
    number = page_number(page, pages)
    start = (number - 1) * DISCLOSURE_PAGE_ROWS
    # The same order as operation_disclosure_list: service by service, then as the rows were added.
    ids = list(
        operations.order_by("service_id", "pk").values_list("pk", flat=True)[
            start : start + DISCLOSURE_PAGE_ROWS
        ]
    )
    snapshot = snapshot_from_operations(operations.filter(pk__in=ids), controller=controller)
    table = disclosure_table(controller, snapshot, lang=lang)
    table.total_rows = total
    table.services = service_jumps(counts)
    table.abroad_parties = abroad_live(controller, operations, lang)
    table.page, table.pages = number, pages
    _mark_continued(table)
    return table


def _mark_continued(table: DisclosureTable) -> None:
    if table.groups and table.page > 1:
        first = table.groups[0]
        starts = {jump.anchor: jump.page for jump in table.services}
        first.continued = starts.get(first.anchor, table.page) < table.page


def abroad_live(controller: Controller, operations: Any, lang: str) -> list[tuple[dict[str, Any], list[str]]]:
    """The recipients abroad of the whole live table (group members one by one), with their services,
    as ``abroad_in_groups`` finds them on a page (a group with members stands for its members); two
    queries whatever the table's size."""
    home = controller.country.code or "CN"
    has_members = Exists(Processor.objects.filter(member_of=OuterRef("processor_id")))
    fields = ("name_key", "pk", "name_zh", "name_en", "country")
    direct = (
        operations.alias(grouped=has_members)
        .filter(grouped=False, processor__country__gt="")
        .exclude(processor__country=home)
        .values_list(*(f"processor__{name}" for name in fields), "service__name", "service__name_en")
        .distinct()
    )
    through_group = (
        operations.filter(processor__members__country__gt="")
        .exclude(processor__members__country=home)
        .values_list(*(f"processor__members__{name}" for name in fields), "service__name", "service__name_en")
        .distinct()
    )
    found: dict[int, tuple[dict[str, Any], list[str]]] = {}
    for _key, pk, name_zh, name_en, country, service, service_en in sorted({*direct, *through_group}):
        party = {
            "id": pk,
            "name_zh": name_zh,
            "name_en": name_en,
            "country_name": country_name(country, lang),
            "abroad": True,
        }
        services = found.setdefault(pk, (party, []))[1]
        name = service_name(lang, service, service_en)
        if name not in services:
            services.append(name)
    return list(found.values())


# --- Publishing checks ------------------------------------------------------------------------

# Rules that block publishing whatever their severity: the table would name items or rows it cannot
# explain (PIPL Art. 17 asks for the purpose and the kinds of data of every recipient).
BLOCKING_RULES = frozenset({"unmapped_items", "purpose_missing"})


@dataclass
class PublishChecks:
    """What stands in the way of publishing a controller's table (blocking) and what is worth a look."""

    blocking: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)


def publish_checks(controller: Controller) -> PublishChecks:
    """The controller's findings split into blocking problems and warnings.

    Blocking: high-severity findings, unmapped data items and rows without a purpose, unless the DPO
    accepted the finding with a reason (it is then a warning). Judged now, not from the stored rows,
    because what is published is the register as it stands.
    """
    found = findings.findings(controller)
    prints = {
        id(finding): findings.fingerprint(finding.rule, finding.subject)
        for finding in found
        if finding.subject
    }
    accepted = set(
        StoredFinding.objects.filter(
            fingerprint__in=list(prints.values()), state=FindingState.ACCEPTED
        ).values_list("fingerprint", flat=True)
    )
    checks = PublishChecks()
    for finding in found:
        problem = {
            "rule": finding.code,
            "severity": finding.severity,
            "severity_label": str(Severity(finding.severity).label),
            "title": str(finding.rule.title),
            "fix": str(finding.rule.fix),
            "subject": finding.subject_label,
            "detail": finding.detail,
        }
        is_accepted = prints.get(id(finding)) in accepted
        problem["accepted"] = is_accepted
        blocking = finding.severity == Severity.HIGH or finding.code in BLOCKING_RULES
        (checks.blocking if blocking and not is_accepted else checks.warnings).append(problem)
    return checks


# --- Versions ---------------------------------------------------------------------------------


def versions_published(controller: Controller) -> list[PublishedVersion]:
    """A controller's versions that were not withdrawn, the one in effect latest first."""
    return list(selectors.version_list(controller).filter(withdrawn_at__isnull=True))


def version_in_force(controller: Controller, on: datetime.date | None = None) -> PublishedVersion | None:
    """The version in effect today (or on ``on``), passing over withdrawn ones to the one before."""
    day = on or timezone.localdate()
    return selectors.version_list(controller).filter(withdrawn_at__isnull=True, effective_on__lte=day).first()


def versions_visible(controller: Controller, *, owner: bool) -> list[PublishedVersion]:
    """The versions a visitor may open: an owner every one (withdrawn ones too), the public what the
    controller's ``public_versions`` allows (never a withdrawn one)."""
    if owner:
        return list(selectors.version_list(controller))
    if controller.public_versions == PublicVersions.NONE:
        return []
    if controller.public_versions == PublicVersions.LATEST:
        current = version_in_force(controller)
        return [current] if current is not None else []
    return versions_published(controller)


def version_find(controller: Controller, ref: str, candidates: Any = None) -> PublishedVersion:
    """A controller's version by label, else by id (404 when there is none)."""
    candidates = list(candidates) if candidates is not None else None
    if candidates is None:
        version = selectors.version_list(controller).filter(label=ref).first()
        if version is None and is_row_id(ref):
            version = selectors.version_list(controller).filter(pk=int(ref)).first()
    else:
        version = next((item for item in candidates if item.label == ref), None)
        if version is None and is_row_id(ref):
            version = next((item for item in candidates if item.pk == int(ref)), None)
    if version is None:
        raise Http404(_("No such version."))
    return version


def version_key(version: PublishedVersion) -> str:
    """How a version's address names it: its label, or its id when the label cannot be a path segment."""
    label = version.label
    return (
        label
        if label and "/" not in label and not label.isdigit() and label not in (".", "..")
        else str(version.pk)
    )


# --- Changes ----------------------------------------------------------------------------------


@dataclass
class ChangeLine:
    """A change as the diff page shows it, in the table's language."""

    change: Change
    items: list[tuple[str, bool]]
    party: str = ""
    old: str = ""
    new: str = ""


def change_line(change: Change, lang: str) -> ChangeLine:
    """A change's items, or its old and new values, as the diff page shows them."""
    line = ChangeLine(change, [])
    if change.items and change.kind not in ("contact_changed", "name_changed"):
        line.items = [(item_text(item, lang), bool(item.get("sensitive"))) for item in change.items]
    elif change.field:
        name = change.field.split(".")[-1]
        line.old = value_text(name, change.old, lang)
        line.new = value_text(name, change.new, lang)
        if change.items:
            line.party = item_text(change.items[0], lang)
    return line


# A diff page shows at most this many recipients per section (the totals and the downloads have them all),
# so a diff of a whole 100,000-row table stays a page of a few hundred kilobytes.
DIFF_GROUPS_SHOWN = 200


def by_recipient(changes: list[Change], lang: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Changes grouped by recipient entry, each group with its lines and whether it is sensitive (the
    first ``limit`` groups when one is given)."""
    groups: dict[str, dict[str, Any]] = {}
    for change in changes:
        if limit is not None and change.key not in groups and len(groups) >= limit:
            continue
        group = groups.setdefault(
            change.key,
            {
                "service": (change.service_en or change.service) if lang == "en" else change.service,
                "recipient": (change.recipient_en or change.recipient) if lang == "en" else change.recipient,
                "lines": [],
                "reconsent": False,
                "sensitive": False,
            },
        )
        group["lines"].append(change_line(change, lang))
        group["reconsent"] = group["reconsent"] or change.reconsent
        group["sensitive"] = group["sensitive"] or change.sensitive
    return list(groups.values())


def diff_sections(diff: VersionDiff, lang: str) -> dict[str, Any]:
    """The diff page's sections: recipients added (sensitive first) and removed, the other changes; each
    section's first ``DIFF_GROUPS_SHOWN`` recipients, with how many there are in all (``totals``)."""
    sections = {
        "recipients_added": sorted(diff.recipients_added, key=lambda change: not change.sensitive),
        "recipients_removed": diff.recipients_removed,
        "material": [change for change in diff.material if change.kind != "recipient_added"],
        "reductions": [change for change in diff.reductions if change.kind != "recipient_removed"],
        "minor": diff.minor,
    }
    totals = {name: len({change.key for change in changes}) for name, changes in sections.items()}
    return {
        **{name: by_recipient(changes, lang, DIFF_GROUPS_SHOWN) for name, changes in sections.items()},
        "totals": totals,
        "shown_limit": DIFF_GROUPS_SHOWN,
        "truncated": any(total > DIFF_GROUPS_SHOWN for total in totals.values()),
        "counts": {impact: sum(change.impact == impact for change in diff.changes) for impact in IMPACTS},
    }


# --- Publishing -------------------------------------------------------------------------------


def publish_context(controller: Controller, lang: str) -> dict[str, Any]:
    """What the publish pages show before the form: the diff against the last published version and the
    blocking problems and warnings (the site's page and the admin's tool show the same)."""
    latest = next(iter(versions_published(controller)), None)
    diff = live_diff(latest) if latest is not None else None
    context: dict[str, Any] = {"latest": latest, "diff": diff, "checks": publish_checks(controller)}
    if diff is not None:
        context.update(diff_sections(diff, lang))
    return context


# --- A published version's stored pages ----------------------------------------------------------------
# A version is immutable, so its table is rendered once per language (and per variant: with links to the
# processor pages for readers of the register, without for the public) and served as stored. Only the
# table is stored: the page around it (CSRF token, user menu, CSP nonce, notices) is per request. The
# first page and the jump list live in ``PublishedVersion.rendered_pages``, which a request reads whole,
# so it is kept small; the later pages of a very long table go through the cache framework (shared
# between app servers with Redis) and are rendered from the snapshot again when the cache lost them.

TABLE_TEMPLATE = "processors/includes/disclosure_table.html"
# Bumped when the table's template or renderer changes what a stored page shows: older ones re-render.
RENDERED_FORMAT = 1
STORED_PAGE = 1
CACHED_PAGE_SECONDS = 7 * 24 * 3600


def version_page(
    version: PublishedVersion, *, lang: str, page: Any, links: bool
) -> tuple[DisclosureTable, str]:
    """A page of a version's table (its header data and its HTML), rendered once and then read as stored."""
    variant = f"{lang}+links" if links else lang
    stored = PublishedVersion.objects.values_list("rendered_pages", flat=True).get(pk=version.pk) or {}
    meta = stored.get(variant)
    if meta is not None and meta.get("format") != RENDERED_FORMAT:
        meta = None
    html = None
    if meta is not None:
        number = page_number(page, meta["pages"])
        html = meta["html"].get(str(number)) or cache.get(_page_cache_key(version, variant, number))
    if html is None:
        snapshot = PublishedVersion.objects.values_list("snapshot", flat=True).get(pk=version.pk)
        table = disclosure_page_from_snapshot(
            version.controller, snapshot, lang=lang, page=page, version=version
        )
        number = table.page
        html = render_to_string(TABLE_TEMPLATE, {"table": table, "link_processors": links})
        created = meta is None
        if meta is None:
            meta = {
                "format": RENDERED_FORMAT,
                "rows": table.row_count,
                "pages": table.pages,
                "services": [[jump.id, jump.name, jump.rows, jump.page] for jump in table.services],
                "html": {},
            }
        if number == STORED_PAGE:
            meta["html"][str(number)] = html
        else:
            cache.set(_page_cache_key(version, variant, number), html, CACHED_PAGE_SECONDS)
        if created or number == STORED_PAGE:
            # Only this variant is written: a concurrent render of another one is not overwritten.
            _store_variant(version, variant, meta)
    table = DisclosureTable(
        version.controller,
        lang,
        [],
        version=version,
        total_rows=meta["rows"],
        services=[ServiceJump(*jump) for jump in meta["services"]],
        page=number,
        pages=meta["pages"],
    )
    # Our own rendering, read back from the database or the cache.
    return table, mark_safe(html)  # noqa: S308


def _page_cache_key(version: PublishedVersion, variant: str, number: int) -> str:
    return f"disclosure-version:{version.pk}:{RENDERED_FORMAT}:{variant}:{number}"


def _store_variant(version: PublishedVersion, variant: str, meta: dict[str, Any]) -> None:
    with transaction.atomic():
        current = (
            PublishedVersion.objects.select_for_update()
            .values_list("rendered_pages", flat=True)
            .get(pk=version.pk)
        )
        PublishedVersion.objects.filter(pk=version.pk).update(
            rendered_pages={**(current or {}), variant: meta}
        )


def unpublished_changes(controller: Controller, latest: PublishedVersion) -> bool:
    """Whether the register changed since the latest version was published: its services, operations
    or their recipients (one query, where comparing two whole snapshots would grow with the table; a
    change undone since still counts)."""
    since = latest.published_at
    operations = Operation.objects.filter(service__controller=controller)
    active = operations.filter(status=OperationStatus.ACTIVE).values("processor_id")
    recipients = Processor.objects.filter(Q(pk__in=active) | Q(member_of__in=active), updated_at__gt=since)
    return Controller.objects.filter(
        Exists(Service.objects.filter(controller=controller, updated_at__gt=since))
        | Exists(operations.filter(updated_at__gt=since))
        | Exists(recipients),
        pk=controller.pk,
    ).exists()
