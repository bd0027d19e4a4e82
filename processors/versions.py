"""Published versions of a disclosure table: the frozen snapshot, its rows, and what changed between two.

**One representation.** A snapshot is a JSON document (``snapshot_from_operations``): the controller's
names and one entry per operation with everything its disclosure row and the change notice need. The
live register (``snapshot_live``), a published version (``PublishedVersion.snapshot``) and the register as
the history tables recorded it at an instant (``register_state_at``) are all snapshots, so
``disclosure_rows`` renders any of them exactly like the exporters render the live table, and
``version_diff`` compares any two.

**Entry keys.** An entry is identified across versions by ``service name | processor name_key |
relationship`` (the operation's identity in words, not database ids, so a re-imported register still
matches); when one controller has two active operations with the same key, the second gets its start
date (and, failing that, its id) appended. A diff matches entries by key, then (because the key holds the
relationship and the names) by operation id, then by service and processor, so a reclassified or renamed
recipient is a change, not a removal and an addition.

**Change classification** (``version_diff``), decided here and documented in ``CHANGE_KINDS``:

- *material* — people must be told before it applies (PIPL Arts. 14, 17, 23): a new recipient (or a new
  member of a group recipient); a new data category (sensitive first); a new purpose; a new processing
  action other than the protective ones (delete, return, anonymise, de-identify); a cross-border flow that
  starts or a new destination country; a relationship that moves to provision, public disclosure or a
  merger transfer; consent that becomes separate or written; a legal basis that becomes consent.
  A material change also sets ``reconsent`` when the flow after the change needs separate consent
  (consent type separate or written; or, unless the legal basis is not consent, sensitive data,
  provision, public disclosure or a cross-border transfer: PIPL Arts. 23, 25, 29, 39). PIPL Art. 14 asks
  for fresh consent to any material change of a consent-based flow; ``reconsent`` marks the flows whose
  consent must be asked for separately, flow by flow, while an ordinary-consent flow is covered by the
  notice and the updated privacy policy.
- *reduction* — less data leaves than before: a recipient, category, purpose, action, destination or
  group member removed, a cross-border flow stopped, a relationship moved away from provision or
  disclosure. Worth announcing, never needs consent.
- *minor* — the same flows described differently: contact details, names, the published wording of
  items, purposes and actions when what they map to is unchanged, the transfer mechanism, a protective
  action added, and any other relationship, consent or legal-basis change.

An item, purpose or action the taxonomy could not map is compared by its published text (so a new
unmapped item counts as a new category, conservatively). Sensitivity is what the published table shows:
GB/T 35273 Appendix B or the controller's own extra list.

Document text (the change notice, the workbook headers) is chosen by ``lang``, not by the active locale,
as the exporters do: a Chinese notice must be Chinese whatever language the user interface speaks.
"""

import datetime
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

from processors import selectors
from processors.models import (
    ConsentType,
    Controller,
    DataCategory,
    DataItem,
    LegalBasis,
    Operation,
    OperationStatus,
    ProcessingAction,
    Processor,
    PublishedVersion,
    Purpose,
    Relationship,
    Service,
    TransferMechanism,
)
from processors.spreadsheets.cells import split_list
from processors.spreadsheets.export import DisclosureRow, Segment
from processors.spreadsheets.safety import neutralise, strip_illegal_characters

SNAPSHOT_FORMAT = 1
LANGUAGES = ("zh", "en")

Snapshot = dict[str, Any]


# --- Snapshots ------------------------------------------------------------------------------------


def snapshot_sha256(snapshot: Snapshot) -> str:
    """SHA-256 of the snapshot's canonical JSON (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def snapshot_from_operations(
    operations: QuerySet[Operation], *, controller: Controller | None = None
) -> Snapshot:
    """The snapshot of these operations, in disclosure-table order, in a constant number of queries."""
    extra_sensitive = selectors.controller_extra_sensitive_category_ids()
    entries = []
    for operation in selectors.operation_disclosure_list(operations):
        processor = operation.processor
        entries.append(
            _entry(
                operation,
                service=operation.service,
                processor=processor,
                members=list(processor.members.all()),
                items=[(item, item.category) for item in operation.data_items.all()],
                purposes=list(operation.purposes.all()),
                actions=list(operation.actions.all()),
                extra_sensitive=extra_sensitive.get(operation.service.controller_id, frozenset()),
            )
        )
    return _document(controller, entries)


def snapshot_live(controller: Controller) -> Snapshot:
    """The controller's register as it stands (its active operations), not saved anywhere."""
    return snapshot_from_operations(selectors.disclosure_operations(controller), controller=controller)


def _document(controller: Controller | None, entries: list[dict[str, Any]]) -> Snapshot:
    seen: dict[str, int] = {}
    for entry in entries:
        key = entry["key"]
        if key in seen:
            # Two active operations with one identity differ by their period (or, at worst, their id).
            key = f"{key}|{entry['effective_from'] or ''}"
            if key in seen:
                key = f"{key}|{entry['operation_id']}"
            entry["key"] = key
        seen[key] = 1
    return {
        "format": SNAPSHOT_FORMAT,
        "controller": _controller_data(controller) if controller is not None else None,
        "operations": entries,
    }


def _controller_data(controller: Controller) -> dict[str, Any]:
    return {
        "code": controller.code,
        "name_zh": controller.name_zh,
        "name_en": controller.name_en,
        "country": controller.country.code if controller.country else "",
    }


def _party(processor: Processor) -> dict[str, Any]:
    return {
        "id": processor.pk,
        "name_zh": processor.name_zh,
        "name_en": processor.name_en,
        "name_key": processor.name_key,
        "kind": processor.kind,
        "contact_phone": processor.contact_phone,
        "contact_email": processor.contact_email,
        "website": processor.website,
        "address": processor.address,
        "country": processor.country.code if processor.country else "",
    }


def _term(term: Purpose | ProcessingAction) -> dict[str, str]:
    return {"code": term.code, "name_zh": term.name_zh, "name_en": term.name_en}


def entry_key(service_name: str, processor_key: str, relationship: str) -> str:
    """The stable identity of an operation across versions."""
    return f"{service_name}|{processor_key}|{relationship}"


def _entry(
    operation: Operation,
    *,
    service: Service,
    processor: Processor,
    members: Sequence[Processor],
    items: Sequence[tuple[DataItem, DataCategory | None]],
    purposes: Sequence[Purpose],
    actions: Sequence[ProcessingAction],
    extra_sensitive: frozenset[int],
) -> dict[str, Any]:
    """One operation as a snapshot entry; the caller supplies the related rows (live or historical)."""
    return {
        "key": entry_key(service.name, processor.name_key, operation.relationship),
        "operation_id": operation.pk,
        "effective_from": operation.effective_from.isoformat() if operation.effective_from else None,
        "service": {"id": service.pk, "name": service.name, "name_en": service.name_en},
        "processor": {
            **_party(processor),
            "members": [_party(member) for member in sorted(members, key=lambda member: member.name_key)],
        },
        "qualifier": operation.recipient_qualifier,
        "data_items_text": operation.data_items_text,
        "data_items_open_ended": split_list(operation.data_items_text).open_ended,
        "data_items": [
            {
                "position": item.position,
                "text": item.text,
                "category": category.code if category is not None else None,
                "name_zh": category.name_zh if category is not None else "",
                "name_en": category.name_en if category is not None else "",
                "sensitive": category is not None and (category.sensitive or category.pk in extra_sensitive),
            }
            for item, category in items
        ],
        "purposes": [_term(purpose) for purpose in purposes],
        "purpose_text": operation.purpose_text,
        "actions": [_term(action) for action in actions],
        "actions_text": operation.actions_text,
        "actions_open_ended": operation.actions_open_ended,
        "relationship": operation.relationship,
        "cross_border": operation.cross_border,
        "destination_countries": [country.code for country in operation.destination_countries],
        "transfer_mechanism": operation.transfer_mechanism,
        "consent_type": operation.consent_type,
        "legal_basis": operation.legal_basis,
    }


# --- The register at a past date ------------------------------------------------------------------


def register_state_at(when: datetime.datetime, *, controller: Controller | None = None) -> Snapshot:
    """The active operations (of one controller, or all) as the history tables recorded them at an instant.

    Operations, services, processors (and group members) and data items are read with simple_history's
    ``as_of``; purposes and actions from the operation's historical row. Categories, purposes and actions
    carry today's names (the taxonomy is reference data). History starts when the history tables were
    created: objects never saved since then have no rows (``manage.py populate_history`` records them).
    """
    services_then = Service.history.as_of(when)
    operations_then = Operation.history.as_of(when).filter(status=OperationStatus.ACTIVE)
    if controller is not None:
        services_then = services_then.filter(controller_id=controller.pk)
        operations_then = operations_then.filter(service_id__in=services_then.values("id"))
    services = {service.pk: service for service in services_then}
    operations = [operation for operation in operations_then if operation.service_id in services]
    processor_ids = {operation.processor_id for operation in operations}
    processors = {
        # On a history table ``pk`` is the history row's id; ``id`` is the object's.
        processor.pk: processor
        for processor in Processor.history.as_of(when).filter(id__in=processor_ids)
    }
    members: dict[int, list[Processor]] = {}
    for member in Processor.history.as_of(when).filter(member_of_id__in=processor_ids):
        members.setdefault(member.member_of_id, []).append(member)
    items: dict[int, list[DataItem]] = {}
    item_rows = DataItem.history.as_of(when).filter(
        operation_id__in=[operation.pk for operation in operations]
    )
    for item in sorted(item_rows, key=lambda item: (item.position, item.pk)):
        items.setdefault(item.operation_id, []).append(item)
    categories = DataCategory.objects.in_bulk()
    terms = _historical_terms(operations)
    extra = selectors.controller_extra_sensitive_category_ids()
    entries = []
    for operation in sorted(
        (operation for operation in operations if operation.processor_id in processors),
        key=lambda operation: (
            services[operation.service_id].controller_id,
            services[operation.service_id].name,
            operation.service_id,
            processors[operation.processor_id].name_key,
            operation.pk,
        ),
    ):
        purposes, actions = terms.get(operation.pk, ([], []))
        entries.append(
            _entry(
                operation,
                service=services[operation.service_id],
                processor=processors[operation.processor_id],
                members=members.get(operation.processor_id, []),
                items=[(item, categories.get(item.category_id)) for item in items.get(operation.pk, [])],
                purposes=purposes,
                actions=actions,
                extra_sensitive=extra.get(services[operation.service_id].controller_id, frozenset()),
            )
        )
    return _document(controller, entries)


def _historical_terms(operations: list[Operation]) -> dict[int, tuple[list[Purpose], list[ProcessingAction]]]:
    """Purposes and actions recorded with each operation's historical row (two queries, plus the terms)."""
    from simple_history.models import to_historic

    by_history = {to_historic(operation).history_id: operation.pk for operation in operations}
    history_model = Operation.history.model
    purpose_links = history_model.purposes.model.objects.filter(history_id__in=list(by_history))
    action_links = history_model.actions.model.objects.filter(history_id__in=list(by_history))
    all_purposes = {purpose.pk: purpose for purpose in Purpose.objects.all()}
    all_actions = {action.pk: action for action in ProcessingAction.objects.all()}
    found: dict[int, tuple[list[Purpose], list[ProcessingAction]]] = {
        operation_id: ([], []) for operation_id in by_history.values()
    }
    for history_id, purpose_id in purpose_links.values_list("history_id", "purpose_id"):
        if purpose_id in all_purposes:
            found[by_history[history_id]][0].append(all_purposes[purpose_id])
    for history_id, action_id in action_links.values_list("history_id", "processingaction_id"):
        if action_id in all_actions:
            found[by_history[history_id]][1].append(all_actions[action_id])
    for purposes, actions in found.values():
        purposes.sort(key=lambda purpose: (purpose.position, purpose.code))
        actions.sort(key=lambda action: (action.position, action.code))
    return found


@dataclass(frozen=True)
class RegisterAsOf:
    """What a controller's register said on a day, and where that answer comes from."""

    day: datetime.date
    source: str  # "version": the published version in effect; "history": rebuilt from the history tables
    snapshot: Snapshot
    version: PublishedVersion | None = None

    @property
    def operations(self) -> list[dict[str, Any]]:
        return self.snapshot["operations"]


def operations_as_of(controller: Controller, day: datetime.date) -> RegisterAsOf:
    """The register on a day: the published version in effect then, else the history at the end of that day.

    Three questions, three functions: "what did we publish for that day" is this; "what did the database
    hold at that instant" is ``register_state_at``; "which rows are dated to be in effect on that day" is
    the ``as_of`` filter of ``OperationFilterSet`` (effective dates of today's rows). The API's ``as_of=``
    stays the effective-date filter, which composes with the other filters; a published-register view
    should call this function.
    """
    version = selectors.version_as_of(controller, day)
    if version is not None:
        return RegisterAsOf(day=day, source="version", snapshot=version.snapshot, version=version)
    next_midnight = timezone.make_aware(
        datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min)
    )
    state = register_state_at(next_midnight - datetime.timedelta(microseconds=1), controller=controller)
    return RegisterAsOf(day=day, source="history", snapshot=state)


# --- Rendering a snapshot as disclosure rows ------------------------------------------------------

# The exporters' conventions (processors/spreadsheets/export.py), so a frozen row reads like a live one.
_LIST_SEPARATOR = {"zh": "、", "en": "; "}
_ACTION_SEPARATOR = {"zh": "、", "en": ", "}
_OPEN_ENDED = {"zh": "等", "en": "etc."}
_BRACKETS = {"zh": ("（", "）"), "en": (" (", ")")}
_CROSS_BORDER_MARK = {"zh": "［境外：{countries}］", "en": " [cross-border: {countries}]"}
_COUNTRY_LOCALE = {"zh": "zh-hans", "en": "en"}
_ZH_REGION_NAMES = {"HK": "中国香港", "MO": "中国澳门", "TW": "中国台湾"}


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(_("Unknown language “%(value)s”; use zh or en.") % {"value": lang})


def _name(party: dict[str, Any], lang: str) -> str:
    if lang == "en":
        return party.get("name_en") or party.get("name_zh") or ""
    return party.get("name_zh") or party.get("name_en") or ""


def country_name(code: str, lang: str) -> str:
    """A country's name as a disclosure table in this language writes it."""
    if lang == "zh" and code in _ZH_REGION_NAMES:
        return _ZH_REGION_NAMES[code]
    with translation.override(_COUNTRY_LOCALE[lang]):
        return str(countries.name(code)) or code


def disclosure_rows(snapshot: Snapshot, lang: str = "zh", *, marks: bool = False) -> list[DisclosureRow]:
    """The disclosure table of a snapshot, service by service, as the exporters and the page show rows."""
    _check_lang(lang)
    return [_row(entry, lang, marks) for entry in snapshot["operations"]]


def disclosure_groups(rows: Iterable[DisclosureRow]) -> list[tuple[str, list[DisclosureRow]]]:
    """Rows grouped under their service, in order (a service's rows are consecutive)."""
    groups: list[tuple[str, list[DisclosureRow]]] = []
    previous = None
    for row in rows:
        if not groups or row.service_id != previous:
            groups.append((row.service, []))
        groups[-1][1].append(row)
        previous = row.service_id
    return groups


def _row(entry: dict[str, Any], lang: str, marks: bool) -> DisclosureRow:
    service = entry["service"]
    processor = entry["processor"]
    destinations = (
        tuple(country_name(code, lang) for code in entry["destination_countries"])
        if entry["cross_border"]
        else ()
    )
    return DisclosureRow(
        service_id=service["id"],
        service=(service["name_en"] or service["name"]) if lang == "en" else service["name"],
        recipient=_recipient_text(entry, lang, destinations, marks),
        data_items=_segments(entry, lang),
        purpose=_purpose_text(entry, lang),
        actions=_actions_text(entry, lang),
        processor_id=processor["id"],
        recipient_name=_name(processor, lang),
        destinations=destinations,
    )


def _recipient_text(entry: dict[str, Any], lang: str, destinations: tuple[str, ...], marks: bool) -> str:
    processor = entry["processor"]
    opening, closing = _BRACKETS[lang]
    text = _name(processor, lang)
    if entry["qualifier"]:
        text += f"{opening}{entry['qualifier']}{closing}"
    if processor["kind"] == Processor.Kind.GROUP:
        members = [_name(member, lang) for member in processor["members"]]
        if members:
            text += f"{opening}{_LIST_SEPARATOR[lang].join(members)}{closing}"
    if processor["contact_phone"]:
        text += f" {processor['contact_phone']}"
    if marks and entry["cross_border"]:
        text += _CROSS_BORDER_MARK[lang].format(countries=_LIST_SEPARATOR[lang].join(destinations) or "—")
    return text


def _segments(entry: dict[str, Any], lang: str) -> tuple[Segment, ...]:
    """zh: the published items verbatim; en: the categories' English names, unmapped items verbatim."""
    found: dict[Any, list] = {}
    for item in entry["data_items"]:
        if lang == "zh" or item["category"] is None:
            key, text = ("text", item["text"]), item["text"]
        else:
            key, text = ("category", item["category"]), item["name_en"] or item["name_zh"]
        slot = found.setdefault(key, [text, False])
        slot[1] = slot[1] or item["sensitive"]
    if not found:
        return (Segment(entry["data_items_text"]),) if entry["data_items_text"] else ()
    separator = _LIST_SEPARATOR[lang]
    segments: list[Segment] = []
    for text, sensitive in found.values():
        if segments:
            segments.append(Segment(separator))
        segments.append(Segment(text, bold=sensitive))
    if entry["data_items_open_ended"]:
        segments.append(Segment(_OPEN_ENDED[lang] if lang == "zh" else separator + _OPEN_ENDED[lang]))
    return tuple(segments)


def _purpose_text(entry: dict[str, Any], lang: str) -> str:
    if lang == "zh":
        return entry["purpose_text"] or _LIST_SEPARATOR[lang].join(p["name_zh"] for p in entry["purposes"])
    return _LIST_SEPARATOR[lang].join(p["name_en"] for p in entry["purposes"]) or entry["purpose_text"]


def _actions_text(entry: dict[str, Any], lang: str) -> str:
    actions = entry["actions"]
    if lang == "zh":
        if entry["actions_text"]:
            return entry["actions_text"]
        text = _ACTION_SEPARATOR[lang].join(action["name_zh"] for action in actions)
        return text + _OPEN_ENDED[lang] if text and entry["actions_open_ended"] else text
    if not actions:
        return entry["actions_text"]
    names = [actions[0]["name_en"]] + [_lower_first(action["name_en"]) for action in actions[1:]]
    if entry["actions_open_ended"]:
        names.append(_OPEN_ENDED[lang])
    return _ACTION_SEPARATOR[lang].join(names)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


# --- Diffs ----------------------------------------------------------------------------------------

MATERIAL = "material"
REDUCTION = "reduction"
MINOR = "minor"
IMPACTS = (MATERIAL, REDUCTION, MINOR)

# Actions that protect people rather than widen what is done with their data.
PROTECTIVE_ACTIONS = frozenset({"delete", "return", "anonymize", "deidentify"})
# Relationships that make the recipient decide for itself (PIPL Arts. 22, 23, 25).
OWN_USE_RELATIONSHIPS = frozenset(
    {Relationship.PROVISION, Relationship.PUBLIC_DISCLOSURE, Relationship.MERGER_TRANSFER}
)
SEPARATE_CONSENTS = frozenset({ConsentType.SEPARATE, ConsentType.WRITTEN})
SEPARATE_CONSENT_RELATIONSHIPS = frozenset({Relationship.PROVISION, Relationship.PUBLIC_DISCLOSURE})

# Every kind of change, in the order a notice lists them, with its label in the user interface.
CHANGE_KINDS: dict[str, Any] = {
    "recipient_added": _("new recipient"),
    "member_added": _("new member of a group recipient"),
    "category_added": _("new data category"),
    "purpose_added": _("new purpose"),
    "action_added": _("new processing action"),
    "cross_border_started": _("transfer abroad starts"),
    "destination_added": _("new destination country or region"),
    "relationship_changed": _("relationship changed"),
    "consent_changed": _("consent type changed"),
    "legal_basis_changed": _("legal basis changed"),
    "recipient_removed": _("recipient removed"),
    "member_removed": _("member of a group recipient removed"),
    "category_removed": _("data category removed"),
    "purpose_removed": _("purpose removed"),
    "action_removed": _("processing action removed"),
    "cross_border_ended": _("transfer abroad ends"),
    "destination_removed": _("destination country or region removed"),
    "mechanism_changed": _("cross-border mechanism changed"),
    "contact_changed": _("contact details changed"),
    "name_changed": _("name changed"),
    "wording_changed": _("published wording changed"),
}
_KIND_ORDER = {kind: position for position, kind in enumerate(CHANGE_KINDS)}


@dataclass(frozen=True)
class Change:
    """One difference between two snapshots, about one recipient (operation entry)."""

    kind: str
    impact: str
    key: str
    service: str
    service_en: str
    recipient: str
    recipient_en: str
    field: str = ""
    old: Any = None
    new: Any = None
    items: tuple[dict[str, Any], ...] = ()  # the categories, purposes, actions or countries concerned
    sensitive: bool = False
    reconsent: bool = False
    entry: dict[str, Any] | None = None  # the whole entry for an added or removed recipient

    @property
    def material(self) -> bool:
        return self.impact == MATERIAL

    @property
    def kind_label(self) -> str:
        return str(CHANGE_KINDS[self.kind])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "kind_label": self.kind_label,
            "impact": self.impact,
            "key": self.key,
            "service": self.service,
            "service_en": self.service_en,
            "recipient": self.recipient,
            "recipient_en": self.recipient_en,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "items": list(self.items),
            "sensitive": self.sensitive,
            "reconsent": self.reconsent,
            "entry": self.entry,
        }


@dataclass(frozen=True)
class VersionRef:
    """One side of a diff: a published version, or a snapshot that was never published (``live``)."""

    label: str
    updated_on: datetime.date | None = None
    effective_on: datetime.date | None = None
    sha256: str = ""
    live: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "updated_on": self.updated_on.isoformat() if self.updated_on else None,
            "effective_on": self.effective_on.isoformat() if self.effective_on else None,
            "sha256": self.sha256,
            "live": self.live,
        }


@dataclass
class VersionDiff:
    """What changed from one snapshot to another, change by change, each classified."""

    old: VersionRef
    new: VersionRef
    controller: dict[str, Any] | None
    changes: list[Change] = field(default_factory=list)

    @property
    def material(self) -> list[Change]:
        """Material changes, sensitive ones first."""
        return sorted(
            (change for change in self.changes if change.impact == MATERIAL),
            key=lambda change: not change.sensitive,
        )

    @property
    def reductions(self) -> list[Change]:
        return [change for change in self.changes if change.impact == REDUCTION]

    @property
    def minor(self) -> list[Change]:
        return [change for change in self.changes if change.impact == MINOR]

    @property
    def recipients_added(self) -> list[Change]:
        return [change for change in self.changes if change.kind == "recipient_added"]

    @property
    def recipients_removed(self) -> list[Change]:
        return [change for change in self.changes if change.kind == "recipient_removed"]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def is_material(self) -> bool:
        return any(change.impact == MATERIAL for change in self.changes)

    @property
    def reconsent_required(self) -> bool:
        return any(change.reconsent for change in self.changes)

    def by_recipient(self) -> list[tuple[str, list[Change]]]:
        """The changes grouped by recipient entry key, in the order they were found."""
        groups: dict[str, list[Change]] = {}
        for change in self.changes:
            groups.setdefault(change.key, []).append(change)
        return list(groups.items())

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON-serialisable data (for the API)."""
        return {
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "controller": self.controller,
            "has_changes": self.has_changes,
            "material": self.is_material,
            "reconsent_required": self.reconsent_required,
            "counts": {impact: sum(change.impact == impact for change in self.changes) for impact in IMPACTS},
            "recipients_added": len(self.recipients_added),
            "recipients_removed": len(self.recipients_removed),
            "changes": [change.to_dict() for change in self.changes],
        }


def _ref(side: PublishedVersion | Snapshot, live_label: Any) -> tuple[VersionRef, Snapshot]:
    if isinstance(side, PublishedVersion):
        ref = VersionRef(
            label=side.label,
            updated_on=side.updated_on,
            effective_on=side.effective_on,
            sha256=side.snapshot_sha256,
        )
        return ref, side.snapshot
    return VersionRef(label=str(live_label), sha256=snapshot_sha256(side), live=True), side


def version_diff(old: PublishedVersion | Snapshot, new: PublishedVersion | Snapshot) -> VersionDiff:
    """What changed from ``old`` to ``new`` (published versions or snapshots such as ``snapshot_live``)."""
    old_ref, old_snapshot = _ref(old, _("earlier state"))
    new_ref, new_snapshot = _ref(new, _("current register (not published)"))
    before = {entry["key"]: entry for entry in old_snapshot["operations"]}
    after = {entry["key"]: entry for entry in new_snapshot["operations"]}
    matched = _match_entries(before, after)
    diff = VersionDiff(old=old_ref, new=new_ref, controller=new_snapshot.get("controller"))
    seen_party_changes: set[tuple] = set()
    for key, entry in after.items():
        if key in matched:
            diff.changes.extend(_entry_changes(before[matched[key]], entry, seen_party_changes))
        else:
            diff.changes.append(_recipient_change(entry, "recipient_added", MATERIAL))
    old_matched = set(matched.values())
    for key, entry in before.items():
        if key not in old_matched:
            diff.changes.append(_recipient_change(entry, "recipient_removed", REDUCTION))
    diff.changes.extend(_controller_changes(old_snapshot.get("controller"), new_snapshot.get("controller")))
    return diff


def _match_entries(before: dict[str, dict], after: dict[str, dict]) -> dict[str, str]:
    """New entry key → old entry key of the same recipient.

    By key first; then, because the key holds the relationship and the names, an entry whose relationship,
    service or processor name changed is matched by its operation id, and failing that (a register rebuilt
    from a file) by service and processor.
    """
    matched = {key: key for key in after if key in before}
    identities = (
        lambda entry: entry.get("operation_id"),
        lambda entry: (entry["service"]["name"], entry["processor"]["name_key"]),
    )
    for identity in identities:
        old_left: dict[Any, list[str]] = {}
        taken = set(matched.values())
        for key, entry in before.items():
            if key not in taken:
                old_left.setdefault(identity(entry), []).append(key)
        for key, entry in after.items():
            candidates = old_left.get(identity(entry), [])
            if key not in matched and len(candidates) == 1:
                matched[key] = candidates.pop()
    return matched


def version_diff_live(version: PublishedVersion) -> VersionDiff:
    """What changed in the register since this version was published ("what we have not published yet")."""
    return version_diff(version, snapshot_live(version.controller))


def needs_separate_consent(entry: dict[str, Any]) -> bool:
    """Whether the flow needs separate consent (PIPL Arts. 23, 25, 29, 39) unless consent is not its basis."""
    if entry["consent_type"] in SEPARATE_CONSENTS:
        return True
    if entry["legal_basis"] not in ("", LegalBasis.CONSENT):
        return False
    return (
        entry["relationship"] in SEPARATE_CONSENT_RELATIONSHIPS
        or entry["cross_border"]
        or any(item["sensitive"] for item in entry["data_items"])
    )


def _category_items(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The categories an entry sends (unmapped items by their text), sensitive first."""
    found: dict[str, dict[str, Any]] = {}
    for item in entry["data_items"]:
        identity = item["category"] or f"text:{item['text']}"
        current = found.get(identity)
        if current is None:
            found[identity] = {
                "code": item["category"],
                "text": item["text"],
                "name_zh": item["name_zh"] or item["text"],
                "name_en": item["name_en"] or item["text"],
                "sensitive": item["sensitive"],
            }
        elif item["sensitive"]:
            current["sensitive"] = True
    return dict(sorted(found.items(), key=lambda pair: not pair[1]["sensitive"]))


def _terms(entry: dict[str, Any], name: str, text_field: str) -> dict[str, dict[str, Any]]:
    """Mapped purposes or actions by code; when none is mapped, the published text stands for them."""
    if entry[name]:
        return {term["code"]: dict(term) for term in entry[name]}
    text = entry[text_field]
    return {f"text:{text}": {"code": None, "name_zh": text, "name_en": text}} if text else {}


def _base(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": entry["key"],
        "service": entry["service"]["name"],
        "service_en": entry["service"]["name_en"] or entry["service"]["name"],
        "recipient": _name(entry["processor"], "zh"),
        "recipient_en": _name(entry["processor"], "en"),
    }


def _recipient_change(entry: dict[str, Any], kind: str, impact: str) -> Change:
    categories = tuple(_category_items(entry).values())
    sensitive = any(item["sensitive"] for item in categories)
    return Change(
        kind=kind,
        impact=impact,
        **_base(entry),
        items=categories,
        sensitive=sensitive,
        reconsent=impact == MATERIAL and needs_separate_consent(entry),
        entry=entry,
    )


def _entry_changes(old: dict[str, Any], new: dict[str, Any], seen: set[tuple]) -> list[Change]:
    """The changes of one recipient present on both sides."""
    base = _base(new)
    reconsent = needs_separate_consent(new)
    changes: list[Change] = []

    def add(kind: str, impact: str, **values: Any) -> None:
        changes.append(
            Change(kind=kind, impact=impact, **base, reconsent=impact == MATERIAL and reconsent, **values)
        )

    def compare_sets(before: dict, after: dict, added: str, removed: str, added_impact: Any) -> None:
        for identity, item in after.items():
            if identity not in before:
                add(added, added_impact(identity), items=(item,), sensitive=bool(item.get("sensitive")))
        for identity, item in before.items():
            if identity not in after:
                add(removed, REDUCTION, items=(item,), sensitive=bool(item.get("sensitive")))

    compare_sets(_category_items(old), _category_items(new), "category_added", "category_removed", _material)
    compare_sets(
        _terms(old, "purposes", "purpose_text"),
        _terms(new, "purposes", "purpose_text"),
        "purpose_added",
        "purpose_removed",
        _material,
    )
    compare_sets(
        _terms(old, "actions", "actions_text"),
        _terms(new, "actions", "actions_text"),
        "action_added",
        "action_removed",
        lambda code: MINOR if code in PROTECTIVE_ACTIONS else MATERIAL,
    )
    old_members = {member["name_key"]: member for member in old["processor"]["members"]}
    new_members = {member["name_key"]: member for member in new["processor"]["members"]}
    compare_sets(old_members, new_members, "member_added", "member_removed", _material)

    if new["cross_border"] and not old["cross_border"]:
        add("cross_border_started", MATERIAL, items=_countries(new["destination_countries"]))
    elif old["cross_border"] and not new["cross_border"]:
        add("cross_border_ended", REDUCTION, items=_countries(old["destination_countries"]))
    else:
        before, after = set(old["destination_countries"]), set(new["destination_countries"])
        for code in sorted(after - before):
            add("destination_added", MATERIAL, items=_countries([code]))
        for code in sorted(before - after):
            add("destination_removed", REDUCTION, items=_countries([code]))
    if old["transfer_mechanism"] != new["transfer_mechanism"] and new["cross_border"]:
        add(
            "mechanism_changed",
            MINOR,
            field="transfer_mechanism",
            old=old["transfer_mechanism"],
            new=new["transfer_mechanism"],
        )

    if old["relationship"] != new["relationship"]:
        if new["relationship"] in OWN_USE_RELATIONSHIPS:
            impact = MATERIAL
        elif old["relationship"] in OWN_USE_RELATIONSHIPS:
            impact = REDUCTION
        else:
            impact = MINOR
        add(
            "relationship_changed",
            impact,
            field="relationship",
            old=old["relationship"],
            new=new["relationship"],
        )
    if old["consent_type"] != new["consent_type"]:
        impact = (
            MATERIAL
            if new["consent_type"] in SEPARATE_CONSENTS and old["consent_type"] not in SEPARATE_CONSENTS
            else MINOR
        )
        add("consent_changed", impact, field="consent_type", old=old["consent_type"], new=new["consent_type"])
    if old["legal_basis"] != new["legal_basis"]:
        impact = MATERIAL if new["legal_basis"] == LegalBasis.CONSENT else MINOR
        add(
            "legal_basis_changed", impact, field="legal_basis", old=old["legal_basis"], new=new["legal_basis"]
        )

    parties = [(old["processor"], new["processor"], False)] + [
        (old_members[key], new_members[key], True) for key in new_members if key in old_members
    ]
    for party_old, party_new, member in parties:
        for name in ("contact_phone", "contact_email", "website", "address"):
            _party_change(add, seen, party_old, party_new, name, "contact_changed", member=member)
        for name in ("name_zh", "name_en"):
            _party_change(add, seen, party_old, party_new, name, "name_changed", member=member)

    for name in ("data_items_text", "purpose_text", "actions_text", "qualifier"):
        if old[name] != new[name]:
            add("wording_changed", MINOR, field=name, old=old[name], new=new[name])
    if old["service"]["name"] != new["service"]["name"]:
        add(
            "wording_changed",
            MINOR,
            field="service.name",
            old=old["service"]["name"],
            new=new["service"]["name"],
        )
    if old["service"]["name_en"] != new["service"]["name_en"]:
        add(
            "wording_changed",
            MINOR,
            field="service.name_en",
            old=old["service"]["name_en"],
            new=new["service"]["name_en"],
        )
    changes.sort(key=lambda change: _KIND_ORDER[change.kind])
    return changes


def _material(identity: Any) -> str:
    return MATERIAL


def _party_change(
    add: Any, seen: set[tuple], old: dict, new: dict, name: str, kind: str, *, member: bool
) -> None:
    if old.get(name, "") == new.get(name, ""):
        return
    # A processor named in several rows changes once, not once per row.
    identity = (new["name_key"], name, old.get(name, ""), new.get(name, ""))
    if identity in seen:
        return
    seen.add(identity)
    # A group member's change names the member; the recipient itself is already the change's subject.
    party = ({"party": _name(new, "zh"), "party_en": _name(new, "en")},) if member else ()
    add(kind, MINOR, field=name, old=old.get(name, ""), new=new.get(name, ""), items=party)


def _countries(codes: Iterable[str]) -> tuple[dict[str, str], ...]:
    return tuple(
        {"code": code, "name_zh": country_name(code, "zh"), "name_en": country_name(code, "en")}
        for code in codes
    )


def _controller_changes(old: dict | None, new: dict | None) -> list[Change]:
    if not old or not new:
        return []
    changes = []
    for name in ("name_zh", "name_en"):
        if old.get(name) != new.get(name):
            changes.append(
                Change(
                    kind="name_changed",
                    impact=MINOR,
                    key="",
                    service="",
                    service_en="",
                    recipient="",
                    recipient_en="",
                    field=f"controller.{name}",
                    old=old.get(name),
                    new=new.get(name),
                )
            )
    return changes


# --- Renderings: the change notice and the workbook -----------------------------------------------

_DOC_LOCALE = {"zh": "zh-hans", "en": "en"}

NOTICE_TEXT: dict[str, dict[str, Any]] = {
    "zh": {
        "title": "个人信息对外提供清单变更说明",
        "intro": "{controller}的第三方信息共享清单由{old}更新为{new}。",
        "version": "版本 {label}（{date} 生效）",
        "version_undated": "版本 {label}",
        "live": "当前登记册（尚未发布）",
        "earlier": "此前的状态",
        "material": "对外提供个人信息的对象、范围、目的发生变化，详见下文。",
        "not_material": "本次更新没有新增接收方、个人信息种类或处理目的。",
        "reconsent": "标注“需重新取得单独同意”的变更涉及敏感个人信息、向其他个人信息处理者提供、"
        "公开或向境外提供，我们将在按变更后的范围处理前再次取得您的单独同意。",
        "none": "两个版本的内容相同，没有变化。",
        "added": "新增的个人信息接收方",
        "changed": "处理范围扩大的接收方",
        "reductions": "不再提供或范围缩减",
        "minor": "其他变更（联系方式、名称和文字表述）",
        "contact": "联系方式",
        "categories": "个人信息种类",
        "purposes": "处理目的",
        "actions": "处理方式",
        "abroad": "境外接收方所在国家或地区",
        "sensitive": "敏感个人信息",
        "reconsent_mark": "需重新取得单独同意",
        "controller": "个人信息处理者",
        "separator": "、",
        "colon": "：",
        "arrow": " → ",
        "empty": "（空）",
        "yes": "是",
        "no": "否",
        "kinds": {
            "recipient_added": "新增接收方",
            "member_added": "新增接收方成员",
            "category_added": "新增个人信息种类",
            "purpose_added": "新增处理目的",
            "action_added": "新增处理方式",
            "cross_border_started": "开始向境外提供",
            "destination_added": "新增境外接收方所在国家或地区",
            "relationship_changed": "接收方关系变更",
            "consent_changed": "同意方式变更",
            "legal_basis_changed": "合法性基础变更",
            "recipient_removed": "不再向该接收方提供",
            "member_removed": "接收方成员减少",
            "category_removed": "不再提供的个人信息种类",
            "purpose_removed": "不再用于的处理目的",
            "action_removed": "不再进行的处理方式",
            "cross_border_ended": "停止向境外提供",
            "destination_removed": "不再提供的境外国家或地区",
            "mechanism_changed": "出境机制变更",
            "contact_changed": "联系方式变更",
            "name_changed": "名称变更",
            "wording_changed": "文字表述调整",
        },
        "impacts": {MATERIAL: "重大变更（需告知）", REDUCTION: "范围缩减", MINOR: "一般变更"},
        "headers": (
            "影响",
            "变更",
            "服务/功能",
            "接收方",
            "涉及内容",
            "原内容",
            "新内容",
            "敏感个人信息",
            "需重新取得单独同意",
        ),
        "sheet": "变更明细",
    },
    "en": {
        "title": "Change notice: third parties receiving personal information",
        "intro": "{controller} has updated its list of third parties receiving personal information from "
        "{old} to {new}.",
        "version": "version {label} (in effect from {date})",
        "version_undated": "version {label}",
        "live": "the current register (not yet published)",
        "earlier": "the earlier state",
        "material": "The recipients of personal information, the information provided or the purposes have "
        "changed; see below.",
        "not_material": "This update adds no recipient, no category of personal information and no purpose.",
        "reconsent": "Changes marked “separate consent required” concern sensitive personal information, "
        "provision to another handler, public disclosure or a transfer abroad: we will ask for your "
        "separate consent again before processing within the new scope.",
        "none": "The two versions are the same; nothing changed.",
        "added": "New recipients",
        "changed": "Recipients receiving more",
        "reductions": "No longer provided, or provided less",
        "minor": "Other changes (contact details, names and wording)",
        "contact": "Contact",
        "categories": "Personal information",
        "purposes": "Purposes",
        "actions": "Processing",
        "abroad": "Countries or regions of the recipients abroad",
        "sensitive": "sensitive",
        "reconsent_mark": "separate consent required",
        "controller": "Controller",
        "separator": "; ",
        "colon": ": ",
        "arrow": " → ",
        "empty": "(empty)",
        "yes": "yes",
        "no": "no",
        "kinds": {
            "recipient_added": "New recipient",
            "member_added": "New member of the recipient group",
            "category_added": "New personal information",
            "purpose_added": "New purpose",
            "action_added": "New processing",
            "cross_border_started": "Transfer abroad starts",
            "destination_added": "New country or region abroad",
            "relationship_changed": "Relationship changed",
            "consent_changed": "Consent changed",
            "legal_basis_changed": "Legal basis changed",
            "recipient_removed": "No longer provided to this recipient",
            "member_removed": "Member of the recipient group removed",
            "category_removed": "Personal information no longer provided",
            "purpose_removed": "Purpose no longer pursued",
            "action_removed": "Processing no longer done",
            "cross_border_ended": "Transfer abroad ends",
            "destination_removed": "Country or region abroad removed",
            "mechanism_changed": "Cross-border mechanism changed",
            "contact_changed": "Contact details changed",
            "name_changed": "Name changed",
            "wording_changed": "Wording changed",
        },
        "impacts": {MATERIAL: "Material (notify)", REDUCTION: "Reduction", MINOR: "Minor"},
        "headers": (
            "Impact",
            "Change",
            "Service/feature",
            "Recipient",
            "Concerns",
            "Before",
            "After",
            "Sensitive",
            "Separate consent required",
        ),
        "sheet": "Changes",
    },
}

# Fields whose codes are shown with their (translated) model labels.
_CODE_FIELDS = {
    "relationship": Relationship,
    "consent_type": ConsentType,
    "legal_basis": LegalBasis,
    "transfer_mechanism": TransferMechanism,
}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: Any) -> str:
    """Text with Markdown's special characters escaped, so a name cannot format or link the notice."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text or "")).replace("\n", " ")


def _side(ref: VersionRef, text: dict[str, Any], unpublished: str) -> str:
    """How the notice names one side: a version with its date, or an unpublished state."""
    if ref.live:
        return text[unpublished]
    if ref.effective_on:
        return text["version"].format(label=ref.label, date=ref.effective_on.isoformat())
    return text["version_undated"].format(label=ref.label)


def _value_text(field_name: str, value: Any, lang: str) -> str:
    text = NOTICE_TEXT[lang]
    if value in (None, ""):
        return text["empty"]
    choices = _CODE_FIELDS.get(field_name)
    if choices is not None:
        with translation.override(_DOC_LOCALE[lang]):
            return str(dict(choices.choices).get(value, value))
    return str(value)


def _item_text(item: dict[str, Any], lang: str) -> str:
    if "party" in item:
        return item["party_en"] if lang == "en" else item["party"]
    name = item.get(f"name_{lang}") or item.get("name_zh") or item.get("text") or item.get("code") or ""
    return name


def _items_text(items: Iterable[dict[str, Any]], lang: str, *, markdown: bool) -> str:
    text = NOTICE_TEXT[lang]
    parts = []
    for item in items:
        name = _md(_item_text(item, lang)) if markdown else _item_text(item, lang)
        if item.get("sensitive"):
            mark = f"（{text['sensitive']}）" if lang == "zh" else f" ({text['sensitive']})"
            name = f"**{name}**{mark}" if markdown else f"{name}{mark}"
        parts.append(name)
    return text["separator"].join(parts)


def _change_text(change: Change, lang: str, *, markdown: bool) -> str:
    """One change as a phrase: what changed, and on what or from what to what."""
    text = NOTICE_TEXT[lang]
    label = text["kinds"][change.kind]
    if change.items and change.kind not in ("contact_changed", "name_changed"):
        return f"{label}{text['colon']}{_items_text(change.items, lang, markdown=markdown)}"
    if change.field:
        old = _value_text(change.field.split(".")[-1], change.old, lang)
        new = _value_text(change.field.split(".")[-1], change.new, lang)
        if markdown:
            old, new = _md(old), _md(new)
        who = ""
        if change.items:
            party = _item_text(change.items[0], lang)
            who = f"{_md(party) if markdown else party}{text['colon']}"
        return f"{label}{text['colon']}{who}{old}{text['arrow']}{new}"
    return label


def _heading(change: Change, lang: str) -> str:
    text = NOTICE_TEXT[lang]
    if not change.key:
        return text["controller"]
    service = change.service_en if lang == "en" else change.service
    recipient = change.recipient_en if lang == "en" else change.recipient
    return f"**{_md(service)}**{' | ' if lang == 'en' else '｜'}{_md(recipient)}"


def diff_markdown(diff: VersionDiff, lang: str = "zh") -> str:
    """The diff as a change notice in Markdown, ready to paste into a privacy-policy update (zh or en)."""
    _check_lang(lang)
    text = NOTICE_TEXT[lang]
    controller = diff.controller or {}
    lines = [
        f"# {text['title']}",
        "",
        text["intro"].format(
            controller=_md(_name(controller, lang)) if controller else "",
            old=_md(_side(diff.old, text, "earlier")),
            new=_md(_side(diff.new, text, "live")),
        ),
        "",
    ]
    if not diff.has_changes:
        lines.append(text["none"])
        return "\n".join(lines) + "\n"
    lines.append(text["material"] if diff.is_material else text["not_material"])
    if diff.reconsent_required:
        lines += ["", text["reconsent"]]
    added = diff.recipients_added
    if added:
        lines += ["", f"## {text['added']}", ""]
        for change in sorted(added, key=lambda change: not change.sensitive):
            lines += _added_lines(change, lang)
    sections = (
        ("changed", [c for c in diff.material if c.kind != "recipient_added"]),
        ("reductions", diff.reductions),
        ("minor", diff.minor),
    )
    for title, changes in sections:
        if not changes:
            continue
        lines += ["", f"## {text[title]}", ""]
        grouped: dict[str, list[Change]] = {}
        for change in changes:
            grouped.setdefault(change.key, []).append(change)
        for group in grouped.values():
            first = group[0]
            lines.append(f"- {_heading(first, lang)}")
            lines.extend(f"  - {_change_text(change, lang, markdown=True)}" for change in group)
            if any(change.reconsent for change in group):
                lines.append(f"  - **{text['reconsent_mark']}**")
    return "\n".join(lines) + "\n"


def _added_lines(change: Change, lang: str) -> list[str]:
    text = NOTICE_TEXT[lang]
    entry = change.entry or {}
    processor = entry.get("processor", {})
    colon = text["colon"]
    lines = [f"- {_heading(change, lang)}"]
    contacts = [processor.get(name) for name in ("contact_phone", "contact_email", "website")]
    contacts = [value for value in contacts if value]
    if contacts:
        lines.append(f"  - {text['contact']}{colon}{_md(text['separator'].join(contacts))}")
    lines.append(f"  - {text['categories']}{colon}{_items_text(change.items, lang, markdown=True)}")
    purposes = _purpose_text(entry, lang) if entry else ""
    if purposes:
        lines.append(f"  - {text['purposes']}{colon}{_md(purposes)}")
    actions = _actions_text(entry, lang) if entry else ""
    if actions:
        lines.append(f"  - {text['actions']}{colon}{_md(actions)}")
    if entry.get("cross_border"):
        names = [country_name(code, lang) for code in entry["destination_countries"]] or ["—"]
        lines.append(f"  - {text['abroad']}{colon}{_md(text['separator'].join(names))}")
    if change.reconsent:
        lines.append(f"  - **{text['reconsent_mark']}**")
    return lines


def diff_rows(diff: VersionDiff, lang: str = "zh") -> list[list[str]]:
    """The diff as table rows (header first): material changes (sensitive first), reductions, then minor."""
    _check_lang(lang)
    text = NOTICE_TEXT[lang]
    rows = [list(text["headers"])]
    for change in [*diff.material, *diff.reductions, *diff.minor]:
        field_name = change.field.split(".")[-1]
        has_values = bool(change.field)
        rows.append(
            [
                text["impacts"][change.impact],
                text["kinds"][change.kind],
                (change.service_en if lang == "en" else change.service) if change.key else text["controller"],
                change.recipient_en if lang == "en" else change.recipient,
                _items_text(change.items, lang, markdown=False),
                _value_text(field_name, change.old, lang) if has_values else "",
                _value_text(field_name, change.new, lang) if has_values else "",
                text["yes"] if change.sensitive else text["no"],
                text["yes"] if change.reconsent else text["no"],
            ]
        )
    return rows


def diff_xlsx(diff: VersionDiff, stream: BinaryIO, lang: str = "zh") -> int:
    """Write the diff as an .xlsx workbook (formula-safe); returns the number of change rows."""
    rows = diff_rows(diff, lang)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = NOTICE_TEXT[lang]["sheet"]
    for row in rows:
        sheet.append([neutralise(strip_illegal_characters(cell)) or None for cell in row])
    header_fill = PatternFill("solid", fgColor="D9D9D9")
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = header_fill
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = wrap
    for letter, width in zip("ABCDEFGHI", (16, 22, 18, 30, 40, 24, 24, 10, 14), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    workbook.save(stream)
    return len(rows) - 1
