"""Write: what ``plan`` decided for a chunk, saved in a few bulk statements with its history rows.

The third stage of the disclosure import (read → ``parse`` → ``plan`` → write). Every object here is
already validated and matched; this module only writes, in the order the rows of one table depend on
each other (groups before their members, processors and services before operations), records in the
``Register`` the ids it gave, and tallies what it created and changed for the report. New operations
with their terms and data items go through the driver's bulk path (``processors.bulk``); changed ones
through the ORM's ``bulk_update``, with one history row each.
"""

from collections import defaultdict

from django.utils import timezone

from processors.bulk import (
    bulk_delete_with_history,
    bulk_update_fields,
    copy_created_history,
    history_m2m_rows,
    history_rows,
    insert_objects,
    insert_rows,
    reserve_ids,
)
from processors.history import history_bulk_create
from processors.models import Controller, DataItem, Operation, Processor, Service
from processors.spreadsheets.plan import OperationState, ProcessorChanges, Register, ServiceChanges
from processors.spreadsheets.report import Tally


def keep_newer_values(model: type, objs: list, changed: dict[int, set[str]]) -> set[str]:
    """Re-read and lock the rows about to be updated; returns the fields to write.

    ``plan`` compared the file with the register as read when the import began. Everything the file
    does not change on a row is taken from the row as it stands now (locked with SELECT ... FOR UPDATE on
    PostgreSQL; SQLite's write lock, held since the transaction began, covers it), so a hand correction
    made meanwhile survives even when another row's change writes the same column. The version moves on,
    so an editor holding the old ETag is refused rather than overwriting the import.
    """
    if not objs:
        return set()
    fresh = model._default_manager.select_for_update().in_bulk([obj.pk for obj in objs])
    columns = [field for field in model._meta.concrete_fields if not field.primary_key]
    for obj in objs:
        row = fresh.get(obj.pk)
        if row is None:
            continue
        own = changed.get(obj.pk, set())
        for field in columns:
            if field.name not in own and field.attname not in own:
                setattr(obj, field.attname, getattr(row, field.attname))
        if hasattr(row, "version"):
            obj.version = row.version + 1
    fields = set().union(*changed.values()) if changed else set()
    return fields | {"version"} if any(field.name == "version" for field in columns) else fields


# Fields of a service or recipient that operations copy into their reading order (Operation.order_*).
READING_ORDER_SOURCE_FIELDS = frozenset(
    {"name", "name_key", "name_zh", "name_en", "controller", "controller_id"}
)


def follow_renames(updated: list, changed: dict[int, set[str]]) -> None:
    """Bulk updates send no post_save: the operations of a renamed service or recipient follow here."""
    for obj in updated:
        if changed.get(obj.pk, set()) & READING_ORDER_SOURCE_FIELDS:
            obj.reading_order_update()


class Writer:
    """Writes one import's chunks; the ids it gives are recorded in the register for later chunks."""

    def __init__(self, *, register: Register, tally: Tally) -> None:
        self.register = register
        self.tally = tally

    def processors(self, changes: ProcessorChanges) -> None:
        """New groups, then new members (pointing at their groups), then the changed processors."""
        created = self.tally.created["processors"]
        for plans in (changes.new_groups, changes.new_members):
            new = [plan.processor for plan in plans]
            for plan in plans:
                plan.processor.member_of = plan.group.processor if plan.group is not None else None
            history_bulk_create(Processor, new)
            for plan in plans:
                self.register.add_processor(plan.key, plan.processor)
                created.add(plan.processor.pk)
        for plan in changes.joining:
            plan.processor.member_of = plan.group.processor  # saved by now
        changed = changes.changed
        updated = [self.register.processor_by_pk[pk] for pk in changed]
        fields = keep_newer_values(Processor, updated, changed)
        bulk_update_fields(Processor, updated, fields)
        follow_renames(updated, changed)
        self.tally.changed["processors"].update(changed)

    def services(self, changes: ServiceChanges) -> None:
        """New services, then the changed ones."""
        history_bulk_create(Service, changes.new)
        self.tally.created["services"].update(service.pk for service in changes.new)
        changed = changes.changed
        by_pk = {service.pk: service for service in self.register.services_by_key.values()}
        updated = [by_pk[pk] for pk in changed]
        bulk_update_fields(Service, updated, keep_newer_values(Service, updated, changed))
        follow_renames(updated, changed)
        self.tally.changed["services"].update(changed)

    def operations(self, states: list[OperationState]) -> None:
        """New operations, then the saved ones the rows changed; every one tallied."""
        self._create_operations([state for state in states if state.created])
        self._update_operations([state for state in states if not state.created])
        tally = self.tally
        for state in states:
            counted = tally.created if state.created else tally.changed if state.changed else tally.unchanged
            counted["operations"].add(state.operation.id)

    def _create_operations(self, created: list[OperationState]) -> None:
        """New operations with their terms, data items and history, at the driver's speed (see bulk.py)."""
        if not created:
            return
        now = timezone.now()
        pks = reserve_ids(Operation, len(created))
        for state, pk in zip(created, pks, strict=True):
            state.operation.id = pk
        self._fill_reading_order([state.operation for state in created])
        insert_objects(Operation, [state.operation for state in created], now=now)
        for name in ("purposes", "actions"):
            through = getattr(Operation, name).through
            target = f"{Operation._meta.get_field(name).m2m_reverse_field_name()}_id"
            insert_rows(
                through._meta.db_table,
                ["operation_id", target],
                [
                    (pk, target_id)
                    for state, pk in zip(created, pks, strict=True)
                    for target_id in dict.fromkeys(getattr(state, name))
                ],
            )
        insert_rows(
            DataItem._meta.db_table,
            ["operation_id", "position", "text", "category_id", "match"],
            [
                (pk, *item)
                for state, pk in zip(created, pks, strict=True)
                if state.new_items is not None
                for item in state.new_items
            ],
        )
        copy_created_history(Operation, column="id", ids=pks, now=now, m2m_fields=("purposes", "actions"))
        copy_created_history(DataItem, column="operation_id", ids=pks, now=now)

    def _fill_reading_order(self, operations: list[Operation]) -> None:
        """The reading order of new operations (Operation.order_*) from the services and recipients this
        import holds in memory; one query for their controllers' codes."""
        services = {service.pk: service for service in self.register.services_by_key.values()}
        codes = dict(
            Controller.objects.filter(
                pk__in={service.controller_id for service in services.values()}
            ).values_list("pk", "code")
        )
        for operation in operations:
            service = services.get(operation.service_id)
            processor = self.register.processor_by_pk.get(operation.processor_id)
            if service is None or processor is None or service.controller_id not in codes:
                operation.fill_reading_order()  # not held by this import: read in a query or two
                continue
            operation.order_controller = codes[service.controller_id]
            operation.order_service = service.name
            operation.order_processor = processor.name_key

    def _update_operations(self, states: list[OperationState]) -> None:
        """Operations the register had: changed fields, replaced terms and data items, with history."""
        recorded = [state for state in states if state.changed_fields or state.terms_changed]
        bulk_fields = keep_newer_values(
            Operation,
            [state.operation for state in recorded],
            {state.operation.pk: set(state.changed_fields) for state in recorded},
        )
        if recorded:
            now = timezone.now()
            for state in recorded:
                state.operation.updated_at = now
            Operation.objects.bulk_update(
                [state.operation for state in recorded], sorted(bulk_fields | {"updated_at"})
            )
        # Terms: replace the through rows of the operations whose terms changed.
        links: dict[str, dict[int, list]] = {}
        reterm = [state for state in states if state.terms_changed]
        for name in ("purposes", "actions"):
            through = getattr(Operation, name).through
            target = f"{Operation._meta.get_field(name).m2m_reverse_field_name()}_id"
            stale = [state.operation.pk for state in reterm]
            if stale:
                through.objects.filter(operation_id__in=stale).delete()
            new_links = through.objects.bulk_create(
                [
                    through(operation_id=state.operation.pk, **{target: target_id})
                    for state in reterm
                    for target_id in dict.fromkeys(getattr(state, name))
                ]
            )
            by_operation: dict[int, list] = defaultdict(list)
            for link in new_links:
                by_operation[link.operation_id].append(link)
            links[name] = by_operation
        # One history row per changed operation, with its terms as they now stand.
        kept_terms = [state.operation.pk for state in recorded if not state.terms_changed]
        if kept_terms:
            for name in ("purposes", "actions"):
                for link in getattr(Operation, name).through.objects.filter(operation_id__in=kept_terms):
                    links[name][link.operation_id].append(link)
        records = history_rows(Operation, [state.operation for state in recorded], "~")
        history_m2m_rows(Operation, records, links)
        # Data items: replaced as a whole where they differ.
        replaced = [state for state in states if state.new_items is not None]
        bulk_delete_with_history(DataItem, [item for state in replaced for item in state.items])
        history_bulk_create(
            DataItem,
            [
                DataItem(
                    operation_id=state.operation.pk,
                    position=position,
                    text=text,
                    category_id=category,
                    match=match,
                )
                for state in replaced
                for position, text, category, match in state.new_items
            ],
        )
