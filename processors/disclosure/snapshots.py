"""Snapshots of a disclosure table: the live register, a published version, the register at an instant.

**One representation.** A snapshot is a JSON document (``snapshot_from_operations``): the controller's
names and one entry per operation with everything its disclosure row and the change notice need. The
live register (``snapshot_live``), a published version (``PublishedVersion.snapshot``) and the register as
the history tables recorded it at an instant (``register_state_at``) are all snapshots, so
``rows.rows_from_snapshot`` renders any of them with the renderer the exporters use for the live table,
and ``diff.version_diff`` compares any two.

**Entry keys.** An entry is identified across versions by ``service name | processor name_key |
relationship`` (the operation's identity in words, not database ids, so a re-imported register still
matches); when one controller has two active operations with the same key, the second gets its start
date (and, failing that, its id) appended.
"""

import datetime
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from processors import selectors
from processors.models import (
    Controller,
    DataCategory,
    DataItem,
    Operation,
    OperationStatus,
    ProcessingAction,
    Processor,
    PublishedVersion,
    Purpose,
    Service,
)
from processors.spreadsheets.cells import split_list

SNAPSHOT_FORMAT = 1

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
        "controller": controller_data(controller) if controller is not None else None,
        "operations": entries,
    }


def controller_data(controller: Controller) -> dict[str, Any]:
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
