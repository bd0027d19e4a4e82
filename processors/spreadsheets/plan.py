"""Plan: parsed rows matched against the register, and what they change there, worked out in memory.

The second stage of the disclosure import (read → ``parse`` → plan → ``write``). ``Register`` is what
the register holds, loaded once per import in a few queries and kept as the import leaves it; a
``Planner`` takes each chunk of rows in the order its entities depend on each other — processors, then
services, then operations, each step after the writes of the one before, since an operation is matched
by the ids of its service and processor — and decides, without writing anything:

- which processors the rows name (a group's members with it), which are new, which facts fill which
  empty fields, and which processors join a group;
- which services are new or change;
- which saved operation each row is (or that it is a new one), and the fields, terms and data items
  the row changes on it, validated by the models' own field validation without a query.

Duplicates are its concern as well: two rows of the file with one identity are an error, and a
processor name close to another one (in the file or the register) is a warning at the end.

The rules the table cannot state (``importer``'s docstring) are decided here, and so is matching a
re-upload without a date to the register's dated operations.

Over 700 lines on purpose: the processor, service and operation steps share one ``Register`` and the
rows' matched state chunk by chunk; split across modules they would pass that state back and forth.

Why one module: see the paragraph above — the planner's steps share the ``Register`` and the chunk's
matched state.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Model
from django.db.models.base import ModelState
from django.utils.translation import gettext as _

from processors.models import Controller, DataItem, Operation, Processor, ProcessorAlias, Service
from processors.names import NearNames, recipient_kind
from processors.spreadsheets.cells import is_latin_name
from processors.spreadsheets.parse import ParsedRow, located_problem, merge_repeated_row, saved_item_tuples
from processors.spreadsheets.report import ERROR, WARNING, ImportReport, Tally, validation_messages
from processors.text import normalize_key

# Which column a model field's validation error belongs to, to locate it in the file.
FIELD_COLUMNS = {
    "name": "service",
    "name_zh": "recipient",
    "name_en": "recipient",
    "contact_phone": "recipient",
    "icp_filing": "recipient",
    "public_security_filing": "recipient",
    "recipient_qualifier": "recipient",
    "data_items_text": "data_items",
    "processing_locations": "processing_locations",
    "recipient_role": "recipient_role",
    "notes": "notes",
    "website": "website",
    "sdk_package": "sdk_package",
    "purpose_text": "purpose",
    "actions_text": "actions",
    "device_permissions": "device_permissions",
}

# Every field of an operation, by name (validation is limited to those a row sets).
OPERATION_FIELDS = tuple(field.name for field in Operation._meta.get_fields() if field.concrete)
# Text fields whose validation cannot reject the text a cell gives (no length, choices or validators).
UNCONSTRAINED_TEXT_FIELDS = frozenset(
    field.name
    for field in Operation._meta.fields
    if isinstance(field, models.TextField)
    and field.blank
    and not field.max_length
    and not field.choices
    and not field.validators
)

# Operation fields a column sets directly when its cell is not empty.
OPERATION_COLUMNS = (
    "usage_scenario",
    "sharing_method",
    "feature_necessary",
    "transfer_mechanism",
    "recipient_role",
    "legal_basis",
    "notes",
)
# Fields holding lists of countries (the instance dict holds Country objects, not codes).
COUNTRY_LIST_FIELDS = frozenset(("destination_countries", "processing_countries"))
# Service fields a column sets.
SERVICE_COLUMNS = ("device_permissions", "sdk_package")

# Validation that needs no query: foreign keys are the importer's own objects, and identity is checked
# in memory (the database constraints stay the last line).
NO_QUERY_CHECKS = {"validate_unique": False, "validate_constraints": False}


@dataclass(slots=True)
class Slot:
    """An operation the import can match a row to: saved (pk) or created in the current chunk (state)."""

    pk: int | None
    relationship: str
    state: "OperationState | None" = None


class Register:
    """What the register already holds, keyed as the file names it; kept up to date as the import writes."""

    def __init__(self, *, controller: Controller, effective_from: Any) -> None:
        """Load it in a few queries, once per import."""
        processors = list(Processor.objects.all())
        self.processor_by_pk = {processor.pk: processor for processor in processors}
        self.processor_by_key = {processor.name_key: processor for processor in processors}
        self.known_names = {processor.name_key: processor.primary_name for processor in processors}
        self.alias_owner: dict[str, str] = {}
        for key, processor_id in ProcessorAlias.objects.values_list("key", "processor_id"):
            self.processor_by_key.setdefault(key, self.processor_by_pk[processor_id])
            self.alias_owner[key] = self.processor_by_pk[processor_id].name_key
        self.services_by_key = {normalize_key(service.name): service for service in controller.services.all()}
        self.slots: dict[tuple[int, int], list[Slot]] = defaultdict(list)
        identities = Operation.objects.filter(
            service__controller=controller, effective_from=effective_from
        ).values_list("pk", "service_id", "processor_id", "relationship")
        for pk, service_id, processor_id, relationship in identities:
            self.slots[(service_id, processor_id)].append(Slot(pk=pk, relationship=relationship))
        # An undated table matches the register's dated operations: re-uploading the published table
        # without its date must not create a twin of every row (the latest date first).
        self.dated_slots: dict[tuple[int, int], list[tuple[Any, Slot]]] = defaultdict(list)
        if effective_from is None:
            dated = (
                Operation.objects.filter(service__controller=controller, effective_from__isnull=False)
                .order_by("-effective_from", "pk")
                .values_list("pk", "service_id", "processor_id", "relationship", "effective_from")
            )
            for pk, service_id, processor_id, relationship, date in dated:
                self.dated_slots[(service_id, processor_id)].append(
                    (date, Slot(pk=pk, relationship=relationship))
                )
        self.group_members: dict[int, list[Processor]] = {}

    def add_processor(self, key: str, processor: Processor) -> None:
        """A processor just created, under the key the file names it by."""
        self.processor_by_key[key] = processor
        self.processor_by_pk[processor.pk] = processor
        self.group_members.pop(processor.member_of_id, None)


@dataclass(eq=False)
class ProcessorPlan:
    """One processor the file names, with the facts the file gives about it."""

    key: str
    name: str
    kind: str
    first_row: ParsedRow
    facts: dict[str, str] = field(default_factory=dict)
    fact_rows: dict[str, ParsedRow] = field(default_factory=dict)
    group: "ProcessorPlan | None" = None  # the group the file names it in first
    member_keys: list[str] = field(default_factory=list)
    processor: Processor | None = None
    applied: set[str] = field(default_factory=set)
    group_warned: bool = False


@dataclass
class ProcessorChanges:
    """A chunk's processors: new ones (groups apart, written first), saved ones and their changed fields."""

    new_groups: list[ProcessorPlan] = field(default_factory=list)
    new_members: list[ProcessorPlan] = field(default_factory=list)
    existing: list[ProcessorPlan] = field(default_factory=list)
    changed: dict[int, set[str]] = field(default_factory=dict)
    # Saved processors that join the group the file names them in (set once the group has its id).
    joining: list[ProcessorPlan] = field(default_factory=list)


@dataclass
class ServiceChanges:
    """A chunk's services: new ones and saved ones with their changed fields."""

    new: list[Service] = field(default_factory=list)
    changed: dict[int, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class OperationState:
    """An operation as the chunk leaves it, with what the rows changed."""

    operation: Operation
    created: bool
    purposes: Sequence[int]
    actions: Sequence[int]
    items: list[DataItem]
    new_items: list[tuple] | None = None
    changed_fields: set[str] = field(default_factory=set)
    terms_changed: bool = False
    rows: list[ParsedRow] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changed_fields or self.terms_changed or self.new_items is not None)


@dataclass
class OperationPlan:
    """A chunk's operations to save (valid and new or matched), and the slots the new ones take."""

    states: list[OperationState]
    new_slots: list[Slot]

    def settle(self) -> None:
        """Once written, the new operations are saved ones for the chunks after this one."""
        for slot in self.new_slots:
            slot.pk, slot.state = slot.state.operation.pk, None


class _RowSkipped(Exception):
    """A row that cannot be written; its error has already been reported."""


class Planner:
    """Plans one import's chunks against the register; its problems go to the report."""

    def __init__(
        self,
        *,
        report: ImportReport,
        register: Register,
        tally: Tally,
        controller: Controller,
        effective_from: Any,
    ) -> None:
        self.report = report
        self.register = register
        self.tally = tally
        self.controller = controller
        self.effective_from = effective_from
        self.plans: dict[str, ProcessorPlan] = {}
        self.seen: dict[tuple, tuple[str, int]] = {}
        self.destination_cache: dict[str, list[str]] = {}
        self.blank_operation: Operation | None = None
        self.validated_fields: dict[frozenset[str], tuple[str, ...]] = {}  # changed -> fields to validate
        self.valid_values: set[tuple[str, Any]] = set()  # (field, value) pairs that passed validation
        self.matched_existing = 0  # rows matched to an operation saved before this import
        self.other_date_rows: dict[tuple[str, int], Any] = {}  # rows matched to an operation of a date

    def _problem(self, level: str, code: str, message: str, **where: Any) -> None:
        self.report.problems.append(located_problem(level, code, message, **where))

    # --- duplicates -------------------------------------------------------------------------------

    def check_repeated_rows(self, rows: list[ParsedRow]) -> list[ParsedRow]:
        """The rows to import: a row repeating another exactly is dropped with a warning; a row differing
        from another of the chunk only in what it lists is added to it (``parse.merge_repeated_row``); any
        other two rows of the file for one service and recipient (and relationship) are an error."""
        kept = []
        chunk_rows: dict[tuple, ParsedRow] = {}
        for row in rows:
            if "service" not in row.values or not row.recipient.names:
                kept.append(row)
                continue
            identity = row.identity
            chunk_rows.setdefault(identity, row)
            # The cells' hash, not the cells: the identities of every row are kept to the end of the import.
            earlier = self.seen.setdefault(identity, (row.sheet.name, row.number, hash(tuple(row.cells))))
            if earlier[:2] == (row.sheet.name, row.number):
                kept.append(row)
            elif earlier[2] == hash(tuple(row.cells)):
                self._problem(
                    WARNING,
                    "row_duplicate",
                    _("This row repeats row %(row)s exactly; it is imported once.") % {"row": earlier[1]},
                    row=row,
                    field_name="recipient",
                )
            elif chunk_rows[identity] is not row and merge_repeated_row(chunk_rows[identity], row):
                self._problem(
                    WARNING,
                    "row_merged",
                    _("Same service and recipient as row %(row)s; its items and purposes are added there.")
                    % {"row": earlier[1]},
                    row=row,
                    field_name="recipient",
                )
            else:
                kept.append(row)
                self._problem(
                    ERROR,
                    "row_repeated",
                    _("Same service and recipient as row %(row)s; merge the two rows.") % {"row": earlier[1]},
                    row=row,
                    field_name="recipient",
                )
        return kept

    def report_matches(self) -> None:
        """Say how many rows matched operations already in the register, and ask about other dates."""
        self.report.matched_existing = self.matched_existing
        self.report.matched_other_date = len(self.other_date_rows)
        if self.other_date_rows:
            dates = sorted({str(date) for date in self.other_date_rows.values()})
            self.report.matched_dates = dates
            self._problem(
                WARNING,
                "dates_differ",
                _(
                    "%(count)s rows match operations of this service and recipient that the register holds "
                    "with the date %(dates)s; they were updated, not duplicated. If this table is a new "
                    "version, import it again with its effective date (--effective-from)."
                )
                % {"count": len(self.other_date_rows), "dates": ", ".join(dates)},
            )

    def report_near_duplicates(self) -> None:
        """Warn of a processor the file names that looks like another one, in the file or the register."""
        names = self.register.known_names
        # A name the file uses and the register knows under an alias is that processor, not a twin.
        canonical = {key: self.register.alias_owner.get(key, key) for key in self.plans}
        keys = set(names) | set(canonical.values())
        display = names | {
            canonical[key]: plan.name for key, plan in self.plans.items() if canonical[key] not in names
        }
        candidates = NearNames(keys)
        reported: set[frozenset[str]] = set()
        for key, plan in self.plans.items():
            own = canonical[key]
            for other in candidates.close_to(own):
                pair = frozenset((own, other))
                if other == own or pair in reported:
                    continue
                reported.add(pair)
                self._problem(
                    WARNING,
                    "processor_near_duplicate",
                    _("“%(name)s” looks like “%(other)s”; if they are one company, add an alias.")
                    % {"name": plan.name, "other": display.get(other, other)},
                    row=plan.first_row,
                    field_name="recipient",
                    value=plan.name,
                )

    # --- validation -------------------------------------------------------------------------------

    def _valid(self, obj: Model, row: ParsedRow, *, exclude: Sequence[str]) -> bool:
        try:
            obj.full_clean(exclude=exclude, **NO_QUERY_CHECKS)
        except ValidationError as error:
            for field_name, field_messages in validation_messages(error).items():
                for message in field_messages:
                    self._problem(
                        ERROR, "invalid", message, row=row, field_name=FIELD_COLUMNS.get(field_name, "")
                    )
            return False
        return True

    # --- processors -------------------------------------------------------------------------------

    def processors(self, rows: list[ParsedRow]) -> list[ProcessorPlan]:
        """The processors a chunk names, with the facts its rows give; each row learns its target's key."""
        self.destination_cache.clear()  # a chunk can give processors their countries and groups
        touched: dict[str, ProcessorPlan] = {}
        for row in rows:
            if "service" not in row.values or not row.recipient.names:
                continue  # already reported
            recipient = row.recipient
            contact = {
                "contact_phone": recipient.phone,
                "icp_filing": recipient.icp_filing,
                "public_security_filing": recipient.public_security_filing,
                "privacy_policy_url": row.values.get("privacy_policy_url", ""),
                "website": row.values.get("website", ""),
            }
            country = row.values.get("country", "")
            if recipient.is_group:
                target = self._plan(recipient.group_name, Processor.Kind.GROUP, row)
                touched[target.key] = target
                for name in recipient.names:
                    member = self._plan(name, recipient_kind(name), row)
                    touched[member.key] = member
                    self._add_fact(member, "country", country, row)
                    if member.key not in target.member_keys:
                        target.member_keys.append(member.key)
                    if member.group is None:
                        member.group = target
                    elif member.group is not target:
                        self._problem(
                            WARNING,
                            "group_conflict",
                            _("%(name)s is named in two groups; it stays a member of “%(group)s”.")
                            % {"name": member.name, "group": member.group.name},
                            row=row,
                            field_name="recipient",
                        )
            else:
                name = recipient.names[0]
                target = self._plan(name, recipient_kind(name, recipient.qualifier), row)
                touched[target.key] = target
                self._add_fact(target, "country", country, row)
            for fact, value in contact.items():
                self._add_fact(target, fact, value, row)
            row.target_key = target.key
        return list(touched.values())

    def _plan(self, name: str, kind: str, row: ParsedRow) -> ProcessorPlan:
        key = normalize_key(name)
        plan = self.plans.get(key)
        if plan is None:
            plan = self.plans[key] = ProcessorPlan(key=key, name=name, kind=kind, first_row=row)
        elif kind == Processor.Kind.GROUP:
            plan.kind = kind
        return plan

    def _add_fact(self, plan: ProcessorPlan, fact: str, value: str, row: ParsedRow) -> None:
        if not value:
            return
        if fact not in plan.facts:
            plan.facts[fact] = value
            plan.fact_rows[fact] = row
        elif plan.facts[fact] != value:
            self._problem(
                WARNING,
                "fact_conflict",
                _("%(name)s: this row gives %(fact)s “%(value)s”; row %(row)s gave “%(kept)s”, kept.")
                % {
                    "name": plan.name,
                    "fact": Processor._meta.get_field(fact).verbose_name,
                    "value": value,
                    "row": plan.fact_rows[fact].number,
                    "kept": plan.facts[fact],
                },
                row=row,
                field_name="country" if fact == "country" else "recipient",
            )

    def processor_changes(self, plans: list[ProcessorPlan]) -> ProcessorChanges:
        """New processors (validated) and the empty fields of saved ones that the file's facts fill."""
        changes = ProcessorChanges()
        # Groups first, so members can point at them.
        for plan in sorted(plans, key=lambda plan: plan.kind != Processor.Kind.GROUP):
            processor = plan.processor or self.register.processor_by_key.get(plan.key)
            if processor is None:
                name_field = "name_en" if is_latin_name(plan.name) else "name_zh"
                processor = Processor(**{name_field: plan.name}, kind=plan.kind, **plan.facts)
                plan.applied = set(plan.facts)
                plan.processor = processor
                if self._valid(processor, plan.first_row, exclude=["member_of"]):
                    is_group = plan.kind == Processor.Kind.GROUP
                    (changes.new_groups if is_group else changes.new_members).append(plan)
                continue
            plan.processor = processor
            fields = self._filled_facts(plan, processor)
            if processor.pk is None:
                continue  # not saved after an earlier error
            changes.existing.append(plan)
            if fields and self._valid(processor, plan.first_row, exclude=["member_of"]):
                changes.changed.setdefault(processor.pk, set()).update(fields)
        return changes

    def _filled_facts(self, plan: ProcessorPlan, processor: Processor) -> set[str]:
        """Fill the processor's empty fields from facts the file gave since the last chunk."""
        fields: set[str] = set()
        for fact, value in plan.facts.items():
            if fact in plan.applied:
                continue
            plan.applied.add(fact)
            current = getattr(processor, fact)
            current = getattr(current, "code", current) or ""
            if not current:
                setattr(processor, fact, value)
                fields.add(fact)
            elif current != value:
                self._problem(
                    WARNING,
                    "fact_kept",
                    _("%(name)s: the table gives %(fact)s “%(value)s”; the register's “%(kept)s” is kept.")
                    % {
                        "name": plan.name,
                        "fact": Processor._meta.get_field(fact).verbose_name,
                        "value": value,
                        "kept": current,
                    },
                    row=plan.fact_rows[fact],
                    field_name="country" if fact == "country" else "recipient",
                )
        if plan.kind == Processor.Kind.GROUP and processor.kind != plan.kind:
            processor.kind = plan.kind
            fields.add("kind")
        return fields

    def memberships(self, changes: ProcessorChanges) -> None:
        """Saved processors join the group the file names them in, unless they belong to another one.

        Decided only for a chunk that is written: every group named then is saved or about to be
        (``changes.new_groups``), so a group without an id yet is one of this chunk's new groups.
        """
        for plan in changes.existing:
            processor = plan.processor
            group = plan.group.processor if plan.group is not None else None
            if group is not None and (group.pk is None or processor.member_of_id != group.pk):
                if processor.member_of_id is None:
                    changes.joining.append(plan)
                    changes.changed.setdefault(processor.pk, set()).add("member_of")
                    continue
                if not plan.group_warned:
                    plan.group_warned = True
                    self._problem(
                        WARNING,
                        "group_conflict",
                        _("%(name)s already belongs to another group, where it stays.") % {"name": plan.name},
                        row=plan.first_row,
                        field_name="recipient",
                    )
            if processor.pk not in changes.changed:
                self.tally.unchanged["processors"].add(processor.pk)

    # --- services ---------------------------------------------------------------------------------

    def services(self, rows: list[ParsedRow]) -> ServiceChanges:
        """The services a chunk names, new or with changed fields; each row learns its service."""
        changes = ServiceChanges()
        services_by_key = self.register.services_by_key
        unchanged = self.tally.unchanged["services"]
        for row in rows:
            if "service" not in row.values:
                continue
            key = normalize_key(row.service_name)
            service = services_by_key.get(key)
            fields = {name: row.values[name] for name in SERVICE_COLUMNS if name in row.values}
            if service is None:
                service = Service(controller=self.controller, name=row.service_name, **fields)
                services_by_key[key] = service
                if self._valid(service, row, exclude=["controller"]):
                    changes.new.append(service)
            else:
                changed = {name for name, value in fields.items() if getattr(service, name) != value}
                for name in changed:
                    setattr(service, name, fields[name])
                if service.pk is not None:
                    if changed and self._valid(service, row, exclude=["controller"]):
                        changes.changed.setdefault(service.pk, set()).update(changed)
                    unchanged.add(service.pk)
            row.service = service
        return changes

    # --- operations -------------------------------------------------------------------------------

    def check_operations(self, rows: list[ParsedRow]) -> None:
        """After an error nothing is saved or matched; the rows are still checked field by field."""
        for row in rows:
            if row.service is None or not row.target_key:
                continue
            operation = self._new_operation(relationship=row.values.get("relationship", ""))
            state = OperationState(operation, True, [], [], [])
            self._apply(row, state, self.plans[row.target_key])
            self._valid_operation(state)

    def operations(self, rows: list[ParsedRow]) -> OperationPlan:
        """Each row matched to its saved operation or a new one, applied to it and validated."""
        slots = self.register.slots
        matched: list[tuple[ParsedRow, Slot]] = []
        for row in rows:
            if row.service is None or not row.target_key:
                continue
            relationship = row.values.get("relationship", "")
            service_id, processor_id = row.service.id, self.plans[row.target_key].processor.id
            candidates = slots[(service_id, processor_id)]
            dated = self.register.dated_slots.get((service_id, processor_id)) if not candidates else None
            try:
                slot = self._find_operation(row, candidates, relationship) if candidates else None
                if slot is None and dated:
                    latest = dated[0][0]
                    slot = self._find_operation(
                        row, [slot for date, slot in dated if date == latest], relationship
                    )
                    if slot is not None:
                        self.other_date_rows[(row.sheet.name, row.number)] = latest
            except _RowSkipped:
                continue
            if slot is not None and slot.pk is not None:
                self.matched_existing += 1
            if slot is None:
                operation = self._new_operation(
                    service_id=service_id, processor_id=processor_id, relationship=relationship
                )
                slot = Slot(
                    pk=None, relationship=relationship, state=OperationState(operation, True, [], [], [])
                )
                candidates.append(slot)
            matched.append((row, slot))
        loaded = self._load_operations({slot.pk for _row, slot in matched if slot.pk is not None})
        states: dict[int, OperationState] = {}
        for row, slot in matched:
            state = slot.state if slot.pk is None else loaded[slot.pk]
            states[id(state)] = state
            self._apply(row, state, self.plans[row.target_key])
        valid = [
            state
            for state in states.values()
            if not state.changed_fields and not state.created or self._valid_operation(state)
        ]
        return OperationPlan(
            states=valid, new_slots=[slot for _row, slot in matched if slot.state is not None]
        )

    def _find_operation(self, row: ParsedRow, candidates: list[Slot], relationship: str) -> Slot | None:
        if relationship:
            return next((slot for slot in candidates if slot.relationship == relationship), None)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        unclassified = [slot for slot in candidates if not slot.relationship]
        if len(unclassified) == 1:
            return unclassified[0]
        self._problem(
            ERROR,
            "row_ambiguous",
            _(
                "The register has %(count)s operations for this service and recipient with different "
                "relationships; add a relationship column to say which one this row is."
            )
            % {"count": len(candidates)},
            row=row,
            field_name="recipient",
        )
        raise _RowSkipped

    def _new_operation(self, **values: Any) -> Operation:
        """A new unsaved operation of this import, as a copy of a blank one.

        ``Operation(**values)`` costs about 20 µs (every field's default, descriptors); a copy of the
        instance dict of one made once costs 1 µs. The dict holds only immutable defaults and None.
        """
        if self.blank_operation is None:
            self.blank_operation = Operation(effective_from=self.effective_from)
        operation = Operation.__new__(Operation)
        operation.__dict__.update(self.blank_operation.__dict__)
        operation._state = ModelState()
        operation.__dict__.update(values)
        return operation

    def _load_operations(self, pks: set[int]) -> dict[int, OperationState]:
        """The operations rows matched, with their terms and data items (four queries)."""
        if not pks:
            return {}
        states = {
            pk: OperationState(operation, False, [], [], [])
            for pk, operation in (
                (operation.pk, operation) for operation in Operation.objects.filter(pk__in=pks)
            )
        }
        for name in ("purposes", "actions"):
            target = f"{Operation._meta.get_field(name).m2m_reverse_field_name()}_id"
            for operation_id, target_id in (
                getattr(Operation, name)
                .through.objects.filter(operation_id__in=pks)
                .values_list("operation_id", target)
            ):
                getattr(states[operation_id], name).append(target_id)
        for item in DataItem.objects.filter(operation_id__in=pks):
            states[item.operation_id].items.append(item)
        return states

    def _apply(self, row: ParsedRow, state: OperationState, plan: ProcessorPlan) -> None:
        """Apply one row to an operation in memory, noting what changes."""
        operation = state.operation
        values = row.values
        fields: dict[str, Any] = {
            "recipient_qualifier": row.recipient.qualifier,
            "data_items_text": values.get("data_items", ""),
            "source_text": "\t".join(row.cells),
        }
        if row.purposes is not None:
            fields["purpose_text"] = values["purpose"]
        if row.actions is not None:
            fields["actions_text"] = values["actions"]
            fields["actions_open_ended"] = row.actions.open_ended
        fields.update({name: values[name] for name in OPERATION_COLUMNS if name in values})
        destinations = self._destinations(plan)
        places = values.get("processing_locations")
        if places is not None:
            fields["processing_locations"] = places.text
            fields["processing_countries"] = list(places.countries)
            home = _country_code(self.controller)
            abroad = [code for code in places.countries if code != home]
            if abroad:
                destinations = sorted({*destinations, *abroad})
        if destinations:
            fields["cross_border"] = True
            fields["destination_countries"] = destinations
        elif fields.get("transfer_mechanism"):
            fields["cross_border"] = True
        stored = operation.__dict__
        if state.created and not state.rows:
            # A new operation's first row: all it states is new, nothing to compare (most rows of a
            # first import, so worth the shortcut).
            for name, value in fields.items():
                if name in COUNTRY_LIST_FIELDS:
                    setattr(operation, name, value)
                else:
                    stored[name] = value
            state.changed_fields.update(fields)
            if row.purposes is not None:
                state.purposes, state.terms_changed = row.purpose_ids, True
            if row.actions is not None:
                state.actions, state.terms_changed = row.action_ids, True
            if row.item_rows:
                state.new_items = row.item_rows
            state.rows.append(row)
            return
        for name, value in fields.items():
            # The instance dict holds each field's value, except the countries (a list of Country).
            current = stored[name] if name not in COUNTRY_LIST_FIELDS else _country_codes(operation, name)
            if current != value:
                setattr(operation, name, value)
                state.changed_fields.add(name)
        if row.purposes is not None and set(row.purpose_ids) != set(state.purposes):
            state.purposes, state.terms_changed = row.purpose_ids, True
        if row.actions is not None and set(row.action_ids) != set(state.actions):
            state.actions, state.terms_changed = row.action_ids, True
        wanted = row.item_rows
        current = state.new_items if state.new_items is not None else saved_item_tuples(state.items)
        if wanted != current:
            state.new_items = wanted
        state.rows.append(row)

    def _valid_operation(self, state: OperationState) -> bool:
        """The model's own validation of the fields the rows set; the others hold checked values already."""
        checked = frozenset(
            state.changed_fields | ({"relationship", "effective_from"} if state.created else set())
        )
        if checked not in self.validated_fields:
            self.validated_fields[checked] = tuple(sorted(checked - UNCONSTRAINED_TEXT_FIELDS))
        validated = self.validated_fields[checked]
        # A field's validation looks at its own value only (an operation has no clean()), so a value that
        # passed once passes again: a table repeats its purposes, actions and qualifiers on many rows.
        stored = state.operation.__dict__
        pending = [
            (name, value)
            for name, value in ((name, _hashable(stored.get(name))) for name in validated)
            if (name, value) not in self.valid_values
        ]
        if not pending:
            return True
        names = {name for name, _value in pending}
        valid = self._valid(
            state.operation, state.rows[-1], exclude=[name for name in OPERATION_FIELDS if name not in names]
        )
        if valid:
            self.valid_values.update(pending)
        return valid

    def _destinations(self, plan: ProcessorPlan) -> list[str]:
        """Countries other than the controller's where the recipient (or a group member) is established."""
        if plan.key not in self.destination_cache:
            self.destination_cache[plan.key] = self._recipient_countries(plan)
        return self.destination_cache[plan.key]

    def _recipient_countries(self, plan: ProcessorPlan) -> list[str]:
        processor = plan.processor
        if plan.kind == Processor.Kind.GROUP:
            if plan.member_keys:
                recipients = [self.plans[key].processor for key in plan.member_keys]
            else:
                group_members = self.register.group_members
                if processor.pk not in group_members:
                    group_members[processor.pk] = [
                        member
                        for member in self.register.processor_by_pk.values()
                        if member.member_of_id == processor.pk
                    ]
                recipients = group_members[processor.pk]
        else:
            recipients = [processor]
        home = _country_code(self.controller)
        return sorted({code for code in map(_country_code, recipients) if code and code != home})


def _country_code(instance: Controller | Processor) -> str:
    # The stored ISO code: the ``country`` attribute builds a translated Country object on every read.
    return instance.__dict__.get("country") or ""


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _country_codes(operation: Operation, name: str) -> list[str]:
    return [country.code for country in getattr(operation, name)]
