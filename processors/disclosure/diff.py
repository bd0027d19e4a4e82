"""What changed between two snapshots of a disclosure table (published versions or the live register).

**Matching.** Entries are matched by their key (``snapshots.entry_key``), then (because the key holds
the relationship and the names) by operation id, then by service and processor, so a reclassified or
renamed recipient is a change, not a removal and an addition.

**Change classification** (``version_diff``), decided here and documented in ``CHANGE_KINDS``:

- *material* — people must be told before it applies (PIPL Arts. 14, 17, 23): a new recipient (or a new
  member of a group recipient); a new data category (sensitive first); a new purpose; a new processing
  action other than the protective ones (delete, return, anonymise, de-identify); a cross-border flow that
  starts or a new destination country; a relationship that changes (except away from provision, public
  disclosure or a merger transfer, a reduction); consent that becomes separate or written; any change of
  legal basis.
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
  action added, and any other consent-type change.

An item, purpose or action the taxonomy could not map is compared by its published text (so a new
unmapped item counts as a new category, conservatively). A purpose text that changed is also read for its
meaning: both texts are mapped with the taxonomy's purpose matcher (``Taxonomy.map_purposes``), and a
code the new text maps to that neither the old text nor the old purposes had is a new purpose (发送验证码
→ 发送验证码及营销短信 adds marketing), even when the operation's stored purposes were not updated.
Sensitivity is what the published table shows:
GB/T 35273 Appendix B or the controller's own extra list.

"""

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from processors.disclosure.rows import country_name, party_name
from processors.disclosure.snapshots import Snapshot, snapshot_live, snapshot_sha256
from processors.models import ConsentType, LegalBasis, PublishedVersion, Relationship
from processors.taxonomy import Taxonomy

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Change":
        values = {name: data[name] for name in _CHANGE_FIELDS if name in data}
        values["items"] = tuple(data.get("items") or ())
        return cls(**values)

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


_CHANGE_FIELDS = tuple(name for name in Change.__dataclass_fields__ if name != "items")


@dataclass(frozen=True)
class VersionRef:
    """One side of a diff: a published version, or a snapshot that was never published (``live``)."""

    label: str
    updated_on: datetime.date | None = None
    effective_on: datetime.date | None = None
    sha256: str = ""
    live: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VersionRef":
        return cls(
            label=data["label"],
            updated_on=datetime.date.fromisoformat(data["updated_on"]) if data.get("updated_on") else None,
            effective_on=(
                datetime.date.fromisoformat(data["effective_on"]) if data.get("effective_on") else None
            ),
            sha256=data.get("sha256", ""),
            live=bool(data.get("live")),
        )

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VersionDiff":
        """The diff ``to_dict`` wrote (a stored diff, ``PublishedVersion.stored_diffs``)."""
        return cls(
            old=VersionRef.from_dict(data["old"]),
            new=VersionRef.from_dict(data["new"]),
            controller=data.get("controller"),
            changes=[Change.from_dict(change) for change in data.get("changes", ())],
        )

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


def version_ref(version: PublishedVersion) -> VersionRef:
    """A published version as one side of a diff (read from its own fields, not its snapshot)."""
    return VersionRef(
        label=version.label,
        updated_on=version.updated_on,
        effective_on=version.effective_on,
        sha256=version.snapshot_sha256,
    )


def _ref(side: PublishedVersion | Snapshot, live_label: Any) -> tuple[VersionRef, Snapshot]:
    if isinstance(side, PublishedVersion):
        return version_ref(side), side.snapshot
    return VersionRef(label=str(live_label), sha256=snapshot_sha256(side), live=True), side


def version_diff(
    old: PublishedVersion | Snapshot, new: PublishedVersion | Snapshot, *, taxonomy: Taxonomy | None = None
) -> VersionDiff:
    """What changed from ``old`` to ``new`` (published versions or snapshots such as ``snapshot_live``).

    ``taxonomy`` maps changed purpose texts (loaded from the database when one is needed and not given).
    """
    old_ref, old_snapshot = _ref(old, _("earlier state"))
    new_ref, new_snapshot = _ref(new, _("current register (not published)"))
    return entries_diff(
        old_ref,
        new_ref,
        old_snapshot["operations"],
        new_snapshot["operations"],
        old_controller=old_snapshot.get("controller"),
        new_controller=new_snapshot.get("controller"),
        taxonomy=taxonomy,
    )


def entries_diff(
    old_ref: VersionRef,
    new_ref: VersionRef,
    old_entries: Iterable[dict[str, Any]],
    new_entries: Iterable[dict[str, Any]],
    *,
    old_controller: dict[str, Any] | None,
    new_controller: dict[str, Any] | None,
    taxonomy: Taxonomy | None = None,
) -> VersionDiff:
    """What changed from one list of entries to another (each in table order), and in the controller.

    ``version_diff`` passes two whole snapshots; ``disclosure.versions.live_diff`` only the entries that
    can have changed since a version, on both sides, which gives the same changes in the same order
    (the entries left out are equal on both sides and matched by their key).
    """
    before = {entry["key"]: entry for entry in old_entries}
    after = {entry["key"]: entry for entry in new_entries}
    matched = _match_entries(before, after)
    diff = VersionDiff(old=old_ref, new=new_ref, controller=new_controller)
    seen_party_changes: set[tuple] = set()
    reader = PurposeReader(taxonomy)
    for key, entry in after.items():
        if key in matched:
            diff.changes.extend(_entry_changes(before[matched[key]], entry, seen_party_changes, reader))
        else:
            diff.changes.append(_recipient_change(entry, "recipient_added", MATERIAL))
    old_matched = set(matched.values())
    for key, entry in before.items():
        if key not in old_matched:
            diff.changes.append(_recipient_change(entry, "recipient_removed", REDUCTION))
    diff.changes.extend(_controller_changes(old_controller, new_controller))
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
        "recipient": party_name(entry["processor"], "zh"),
        "recipient_en": party_name(entry["processor"], "en"),
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


class PurposeReader:
    """Maps purpose texts onto purpose terms, loading the taxonomy the first time a text changed."""

    def __init__(self, taxonomy: Taxonomy | None = None) -> None:
        self.taxonomy = taxonomy
        self._terms: dict[str, dict[str, Any]] = {}

    def terms(self, text: str) -> dict[str, dict[str, Any]]:
        """The purposes a text maps to, by code, with their names."""
        if self.taxonomy is None:
            self.taxonomy = Taxonomy.load_purposes()
        codes = self.taxonomy.map_purposes(text).codes
        missing = [code for code in codes if code not in self._terms]
        if missing:
            for purpose in self.taxonomy.purposes(missing):
                self._terms[purpose.code] = {
                    "code": purpose.code,
                    "name_zh": purpose.name_zh,
                    "name_en": purpose.name_en,
                }
        return {
            code: dict(self._terms.get(code) or {"code": code, "name_zh": code, "name_en": code})
            for code in codes
        }


def _purpose_terms(
    old: dict[str, Any], new: dict[str, Any], reader: PurposeReader
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Both sides' purposes, each widened by what its text maps to when the purpose text changed."""
    before = _terms(old, "purposes", "purpose_text")
    after = _terms(new, "purposes", "purpose_text")
    if old["purpose_text"] == new["purpose_text"]:
        return before, after
    read_before = reader.terms(old["purpose_text"])
    read_after = reader.terms(new["purpose_text"])
    # Only what the texts differ in counts: a stored purpose the text never named is not a change.
    for code, term in read_after.items():
        if code not in read_before and code not in before:
            after.setdefault(code, term)
    for code, term in read_before.items():
        if code not in read_after and code not in after:
            before.setdefault(code, term)
    return before, after


def _entry_changes(
    old: dict[str, Any], new: dict[str, Any], seen: set[tuple], reader: PurposeReader
) -> list[Change]:
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
        *_purpose_terms(old, new, reader),
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
            # Entrusted → joint processing and the like change who answers to people: they must be told.
            impact = MATERIAL
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
        # Any other basis changes people's rights (a consent they could withdraw, a contract they signed).
        impact = MATERIAL
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
    party = ({"party": party_name(new, "zh"), "party_en": party_name(new, "en")},) if member else ()
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
