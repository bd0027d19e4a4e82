"""The disclosure page's model: a controller's table grouped by service, versions by address, change lines.

What the browser pages show, built from the one row renderer (``rows``) and the documents' texts
(``documents``), so the page says what the downloads and the change notice say.
"""

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from processors import findings, selectors
from processors.disclosure.diff import IMPACTS, Change, VersionDiff, version_diff
from processors.disclosure.documents import item_text, value_text
from processors.disclosure.rows import (
    DISCLOSURE_HEADERS,
    DisclosureRow,
    country_name,
    party_name,
    rows_from_snapshot,
)
from processors.disclosure.snapshots import Snapshot, snapshot_live
from processors.models import Controller, FindingState, PublicVersions, PublishedVersion, Severity
from processors.models import Finding as StoredFinding

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


@dataclass
class DisclosureTable:
    """A controller's table from a snapshot: a published version's, or the live register's."""

    controller: Controller
    lang: str
    groups: list[DisclosureGroup]
    last_updated: datetime.datetime | None = None
    effective_from: datetime.date | None = None
    version: PublishedVersion | None = None

    @property
    def row_count(self) -> int:
        return sum(len(group.rows) for group in self.groups)

    @property
    def headers(self) -> tuple[str, ...]:
        return DISCLOSURE_HEADERS[self.lang]

    @property
    def abroad(self) -> list[tuple[dict[str, Any], list[str]]]:
        """Recipients established abroad (group members one by one), with the services sending to them."""
        found: dict[Any, tuple[dict[str, Any], list[str]]] = {}
        for group in self.groups:
            for row in group.rows:
                parties = row.members or [
                    {**row.processor, "country_name": row.country, "abroad": row.abroad}
                ]
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
        if version is None and ref.isdigit():
            version = selectors.version_list(controller).filter(pk=int(ref)).first()
    else:
        version = next((item for item in candidates if item.label == ref), None)
        if version is None and ref.isdigit():
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


def by_recipient(changes: list[Change], lang: str) -> list[dict[str, Any]]:
    """Changes grouped by recipient entry, each group with its lines and whether it is sensitive."""
    groups: dict[str, dict[str, Any]] = {}
    for change in changes:
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
    """The diff page's sections: recipients added (sensitive first) and removed, the other changes."""
    return {
        "recipients_added": by_recipient(
            sorted(diff.recipients_added, key=lambda change: not change.sensitive), lang
        ),
        "recipients_removed": by_recipient(diff.recipients_removed, lang),
        "material": by_recipient(
            [change for change in diff.material if change.kind != "recipient_added"], lang
        ),
        "reductions": by_recipient(
            [change for change in diff.reductions if change.kind != "recipient_removed"], lang
        ),
        "minor": by_recipient(diff.minor, lang),
        "counts": {impact: sum(change.impact == impact for change in diff.changes) for impact in IMPACTS},
    }


# --- Publishing -------------------------------------------------------------------------------


def publish_context(controller: Controller, lang: str) -> dict[str, Any]:
    """What the publish pages show before the form: the diff against the last published version and the
    blocking problems and warnings (the site's page and the admin's tool show the same)."""
    latest = next(iter(versions_published(controller)), None)
    diff = version_diff(latest, snapshot_live(controller)) if latest is not None else None
    context: dict[str, Any] = {"latest": latest, "diff": diff, "checks": publish_checks(controller)}
    if diff is not None:
        context.update(diff_sections(diff, lang))
    return context
