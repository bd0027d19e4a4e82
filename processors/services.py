"""Writes: small typed functions that every caller (admin, importer, API, commands) ends in.

Each validates with ``full_clean()`` so model constraints are reported as field errors before the
database has to refuse them, and runs inside a transaction. Grouped by entity: controllers, processors,
services, operations, data items, the taxonomy's aliases, published versions; one update per entity.

Why one module: every write shares the claimed, version-checked save (``_validated_save``) and the
findings refresh, and "one update service per entity" is checked by reading one file; the entities'
sections are short, and splitting them would spread that one save rule over many modules.
"""

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max, Model, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from processors.findings import findings_refresh
from processors.history import (
    current_history_state,
    history_attrs,
    history_bulk_create,
    history_context,
    merged_into_reason,
    user_has_audit_trail,
)
from processors.models import (
    CategoryAlias,
    Channel,
    Controller,
    ControllerMembership,
    ControllerRole,
    DataItem,
    DeletionNoticeLetter,
    Finding,
    FindingState,
    Operation,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    PublishedVersion,
    Purpose,
    Service,
)
from processors.selectors import controllers_for
from processors.spreadsheets.cells import split_list
from processors.taxonomy import ItemMapping, Taxonomy
from processors.text import normalize_key


class StaleObject(ValidationError):
    """The caller's expected version is no longer the stored one: someone saved the object meanwhile."""

    def __init__(self, instance: Model, expected_version: int) -> None:
        super().__init__(
            _("%(object)s was changed by someone else since you read it.") % {"object": instance},
            code="stale",
        )
        self.instance = instance
        self.expected_version = expected_version


def _has_version_counter(instance: Model) -> bool:
    return any(field.name == "version" for field in instance._meta.concrete_fields)


def _validated_save(instance: Model, *, expected_version: int | None = None, **fields: Any) -> Model:
    if instance.pk is None or not _has_version_counter(instance):
        many = {name: value for name, value in fields.items() if instance._meta.get_field(name).many_to_many}
        for name, value in fields.items():
            if name not in many:
                setattr(instance, name, value)
        instance.full_clean()
        instance.save()
        for name, value in many.items():
            getattr(instance, name).set(value)
        return instance
    return _claimed_update(instance, expected_version=expected_version, fields=fields)


def _claimed_update(instance: Model, *, expected_version: int | None, fields: dict[str, Any]) -> Model:
    """Save only the given fields (and what clean() derives from them) over the newest stored row.

    The row is claimed first by bumping its version in one UPDATE (conditional on the expected version
    when given): that takes the row's write lock, so the fields nobody gave are then re-read as they
    stand and no concurrent save is overwritten with the stale values this instance was loaded with.
    """
    model = type(instance)
    claim = model._default_manager.filter(pk=instance.pk)
    if expected_version is not None:
        claim = claim.filter(version=expected_version)
    if not claim.update(version=F("version") + 1):
        if model._default_manager.filter(pk=instance.pk).exists():
            raise StaleObject(instance, expected_version if expected_version is not None else 0)
        raise model.DoesNotExist
    many = {name: value for name, value in fields.items() if instance._meta.get_field(name).many_to_many}
    given = {instance._meta.get_field(name).name for name in fields if name not in many}
    untouched = [
        field.name
        for field in instance._meta.concrete_fields
        if not field.primary_key and field.name not in given
    ]
    instance.refresh_from_db(fields=untouched)
    for name, value in fields.items():
        if name not in many:
            setattr(instance, name, value)
    before = {name: getattr(instance, instance._meta.get_field(name).attname) for name in untouched}
    instance.full_clean()
    # Fields clean() derives from the given ones (a processor's match key) are written with them.
    derived = {
        name
        for name, value in before.items()
        if getattr(instance, instance._meta.get_field(name).attname) != value
    }
    instance.save(update_fields=sorted((given | derived | {"updated_at"}) - {"version"}))
    for name, value in many.items():
        getattr(instance, name).set(value)
    return instance


# --- Controllers ----------------------------------------------------------------------------------


@transaction.atomic
def controller_create(*, code: str, **fields: Any) -> Controller:
    """Create a controller (the company or app that publishes a register)."""
    return _validated_save(Controller(code=code), **fields)


@transaction.atomic
def controller_update(
    *, controller: Controller, expected_version: int | None = None, **fields: Any
) -> Controller:
    """Change the given fields of a controller (refused with StaleObject if its version moved on)."""
    return _validated_save(controller, expected_version=expected_version, **fields)


# --- Processors -----------------------------------------------------------------------------------


@transaction.atomic
def processor_create(
    *, name_zh: str = "", name_en: str = "", aliases: Iterable[str] = (), **fields: Any
) -> Processor:
    """Create a processor with its other names."""
    processor = _validated_save(Processor(name_zh=name_zh, name_en=name_en), **fields)
    for alias in aliases:
        _validated_save(ProcessorAlias(processor=processor, text=alias))
    findings_refresh(processors=[processor])
    return processor


@transaction.atomic
def processor_update(
    *,
    processor: Processor,
    aliases: Iterable[str] | None = None,
    expected_version: int | None = None,
    **fields: Any,
) -> Processor:
    """Change the given fields of a processor and, when aliases are given, make them its exact set of
    other names (refused with StaleObject if its version moved on)."""
    processor = _validated_save(processor, expected_version=expected_version, **fields)
    if aliases is not None:
        wanted = {normalize_key(text): text for text in aliases if normalize_key(text)}
        processor.aliases.exclude(key__in=wanted).delete()
        known = set(processor.aliases.values_list("key", flat=True))
        for key, text in wanted.items():
            if key not in known:
                processor_alias_create(processor=processor, text=text)
    findings_refresh(processors=[processor])
    return processor


@transaction.atomic
def processor_alias_create(*, processor: Processor, text: str) -> ProcessorAlias:
    """Record another name a processor is known by."""
    return _validated_save(ProcessorAlias(processor=processor, text=text))


# --- Processors: merge ----------------------------------------------------------------------------
# Duplicates (AWS / Amazon Web Services, Inc.; a brand and its company) become one recipient. Nothing is
# lost: operations, group members, aliases and deletion letters move to the survivor; an operation that
# would be a second row of the survivor's (same service, relationship and period) gives its data items
# and purposes to that row instead. Every change is a history row with the user; the merged processors'
# own history stays, and their deletion row names the survivor (history.processor_ids_merged_into).


@transaction.atomic
def processors_merge(survivor: Processor, others: Sequence[Processor], *, user: Any) -> Processor:
    """Merge ``others`` into ``survivor``: their operations, members, aliases and names move, they go."""
    others = [other for other in dict.fromkeys(others) if other.pk != survivor.pk]
    if not others:
        raise ValidationError(_("Choose at least one other processor to merge into the surviving one."))
    _check_may_merge(others, user=user)
    ids = [survivor.pk, *(other.pk for other in others)]
    # Locked in one order, so two merges of overlapping sets wait for each other instead of deadlocking.
    rows = Processor.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    locked = {processor.pk: processor for processor in rows}
    if len(locked) != len(ids):
        raise ValidationError(_("One of the processors was deleted meanwhile; nothing was merged."))
    survivor, others = locked[survivor.pk], [locked[other.pk] for other in others]
    actor = user if getattr(user, "pk", None) is not None else None
    touched: set[int] = set()
    with history_context(history_attrs()["history_channel"], user=actor):
        for other in others:
            touched |= _merge_operations(survivor, other)
            for member in other.members.exclude(pk__in=ids):
                if survivor.kind != Processor.Kind.GROUP:
                    raise ValidationError(
                        _("%(other)s is a group with members; the surviving processor must be a group too.")
                        % {"other": other}
                    )
                _validated_save(member, member_of=survivor)
            for alias in other.aliases.all():
                _validated_save(alias, processor=survivor)
            for letter in other.deletion_letters.all():
                letter.processor = survivor
                letter.save(update_fields=["processor"])
        # The survivor keeps its group; without one (or when its group is merged into it) it takes theirs.
        groups = [other.member_of_id for other in others if other.member_of_id not in (None, *ids)]
        if survivor.member_of_id in ids or (survivor.member_of_id is None and groups):
            _validated_save(survivor, member_of_id=groups[0] if groups else None)
        _add_names_as_aliases(survivor, others)
        for other in others:
            # The deletion row of its history names the survivor, so the survivor's history shows it.
            other._change_reason = merged_into_reason(survivor.pk)
            other.delete()
    findings_refresh(operations=touched, processors=[survivor])
    return survivor


def _check_may_merge(others: Sequence[Processor], *, user: Any) -> None:
    if not (user.has_perm("processors.change_processor") and user.has_perm("processors.delete_processor")):
        raise PermissionDenied(_("Merging processors needs the permissions to change and to delete them."))
    # Operations move from every controller that sends data to the others: the user edits each of them.
    moving = Controller.objects.filter(services__operations__processor__in=others).distinct()
    if moving.exclude(pk__in=controllers_for(user, role=ControllerRole.EDITOR)).exists():
        raise PermissionDenied(
            _(
                "These processors receive data from controllers where you are not an editor; only someone "
                "who edits every one of them may merge the processors."
            )
        )


def _merge_operations(survivor: Processor, other: Processor) -> set[int]:
    """Move the other's operations to the survivor; one that would clash joins the survivor's row."""
    touched = set()
    for operation in Operation.objects.select_for_update().filter(processor=other).order_by("pk"):
        twin = Operation.objects.filter(
            service_id=operation.service_id,
            processor=survivor,
            relationship=operation.relationship,
            effective_from=operation.effective_from,
        ).first()
        if twin is None:
            touched.add(_validated_save(operation, processor=survivor).pk)
            continue
        _operation_absorb(twin, operation, other)
        touched.add(twin.pk)
    return touched


def _operation_absorb(twin: Operation, operation: Operation, other: Processor) -> None:
    """Give ``operation``'s data items, purposes and actions to ``twin`` (the survivor's), then delete it."""
    known = {normalize_key(item.text) for item in twin.data_items.all()}
    position = (twin.data_items.aggregate(last=Max("position"))["last"] or 0) + 1
    copies, added = [], []
    by_position: dict[int, list[DataItem]] = {}
    for item in operation.data_items.order_by("position", "id"):
        by_position.setdefault(item.position, []).append(item)
    for rows in by_position.values():
        if normalize_key(rows[0].text) in known:
            continue  # the same item is on the survivor's row already
        known.add(normalize_key(rows[0].text))
        added.append(rows[0].text)
        # Copied with their category and how it was matched: a reviewer's choice is kept.
        copies += [
            DataItem(
                operation=twin, position=position, text=row.text, category_id=row.category_id, match=row.match
            )
            for row in rows
        ]
        position += 1
    history_bulk_create(DataItem, copies)
    twin.purposes.add(*operation.purposes.all())
    twin.actions.add(*operation.actions.all())
    note = _("Merged from %(processor)s: operation #%(id)s.") % {"processor": other, "id": operation.pk}
    _validated_save(
        twin,
        data_items_text="、".join(part for part in (twin.data_items_text, *added) if part),
        notes="\n".join(part for part in (twin.notes, note) if part),
    )
    operation.delete()


def _add_names_as_aliases(survivor: Processor, others: Sequence[Processor]) -> None:
    # Alias keys are unique across processors: a name another processor already uses as alias is skipped.
    taken = {normalize_key(survivor.name_zh), normalize_key(survivor.name_en), ""}
    for other in others:
        for name in (other.name_zh, other.name_en):
            key = normalize_key(name)
            if key in taken or ProcessorAlias.objects.filter(key=key).exists():
                continue
            taken.add(key)
            processor_alias_create(processor=survivor, text=name)


# --- Services -------------------------------------------------------------------------------------


@transaction.atomic
def service_create(*, controller: Controller, name: str, **fields: Any) -> Service:
    """Create a service (feature) of a controller."""
    return _validated_save(Service(controller=controller, name=name), **fields)


@transaction.atomic
def service_update(*, service: Service, expected_version: int | None = None, **fields: Any) -> Service:
    """Change the given fields of a service (refused with StaleObject if its version moved on)."""
    service = _validated_save(service, expected_version=expected_version, **fields)
    findings_refresh(operations=service.operations.values_list("pk", flat=True))
    return service


# --- Operations -----------------------------------------------------------------------------------


@transaction.atomic
def operation_create(
    *,
    service: Service,
    processor: Processor,
    data_items: Sequence[str] = (),
    purposes: Iterable[Purpose] = (),
    actions: Iterable[ProcessingAction] = (),
    taxonomy: Taxonomy | None = None,
    **fields: Any,
) -> Operation:
    """Create one processing operation (a row of a disclosure table) with its data items.

    Items given one by one are mapped as they are; without them, a typed ``data_items_text`` is split
    into items as an import splits its cell (``operation_set_data_items_from_text``).
    """
    typed_text = fields.get("data_items_text") if not data_items else None
    fields.setdefault("data_items_text", "、".join(data_items))
    operation = _validated_save(Operation(service=service, processor=processor), **fields)
    operation.purposes.set(purposes)
    operation.actions.set(actions)
    if typed_text:
        operation_set_data_items_from_text(
            operation=operation, text=typed_text, taxonomy=taxonomy, refresh=False
        )
    else:
        operation_set_data_items(operation=operation, items=data_items, taxonomy=taxonomy, refresh=False)
    findings_refresh(operations=[operation])
    return operation


@transaction.atomic
def operation_update(
    *,
    operation: Operation,
    data_items: Sequence[str] | None = None,
    purposes: Iterable[Purpose] | None = None,
    actions: Iterable[ProcessingAction] | None = None,
    taxonomy: Taxonomy | None = None,
    expected_version: int | None = None,
    **fields: Any,
) -> Operation:
    """Change the given fields of an operation and, where given, replace its data items, purposes and
    actions (refused with StaleObject if its version moved on).

    A changed ``data_items_text`` given without ``data_items`` replaces the items with the text's, split
    and mapped as an import would; the same text given again (a PUT of the whole row) leaves them alone.
    """
    retyped = None
    if data_items is None and "data_items_text" in fields and operation.pk is not None:
        stored = Operation.objects.filter(pk=operation.pk).values_list("data_items_text", flat=True).first()
        if (fields["data_items_text"] or "") != (stored or ""):
            retyped = fields["data_items_text"] or ""
    operation = _validated_save(operation, expected_version=expected_version, **fields)
    operation_set_terms(operation=operation, purposes=purposes, actions=actions, refresh=False)
    if data_items is not None:
        operation_set_data_items(operation=operation, items=data_items, taxonomy=taxonomy, refresh=False)
    elif retyped is not None:
        operation_set_data_items_from_text(
            operation=operation, text=retyped, taxonomy=taxonomy, refresh=False
        )
    findings_refresh(operations=[operation])
    return operation


@transaction.atomic
def operation_set_terms(
    *,
    operation: Operation,
    purposes: Iterable[Purpose | int] | None = None,
    actions: Iterable[ProcessingAction | int] | None = None,
    refresh: bool = True,
) -> Operation:
    """Replace an operation's purposes and/or actions (None leaves that side as it is)."""
    if purposes is not None:
        operation.purposes.set(purposes)
    if actions is not None:
        operation.actions.set(actions)
    if refresh:
        findings_refresh(operations=[operation])
    return operation


@transaction.atomic
def operation_set_data_items(
    *, operation: Operation, items: Sequence[str], taxonomy: Taxonomy | None = None, refresh: bool = True
) -> list[DataItem]:
    """Replace an operation's data items, mapping each onto the taxonomy (unmapped ones are kept)."""
    taxonomy = taxonomy or Taxonomy.load()
    operation.data_items.all().delete()
    rows = [
        row
        for position, mapping in enumerate(taxonomy.map_items(items))
        for row in data_item_rows(
            operation_id=operation.pk, position=position, mapping=mapping, taxonomy=taxonomy
        )
    ]
    created = history_bulk_create(DataItem, rows)
    if refresh:
        findings_refresh(operations=[operation])
    return created


def data_items_split(text: str) -> list[str]:
    """The items of a typed "data items as published" text, split exactly as an import splits its items.

    Typed text is items only: an import first moves a packed 使用目的：… line or 用于… segment out of its
    item cell (``unpack_item_cell``) into the row's purpose, but the admin has a purpose field beside the
    items, and dropping part of what a person typed would lose it silently."""
    return split_list(text).items


def operation_items_planned(
    *, text: str, operation: Operation | None = None, taxonomy: Taxonomy | None = None
) -> list[DataItem]:
    """The data items a typed text becomes, unsaved: what ``operation_set_data_items_from_text`` writes.

    Split as an import splits its cell and mapped by the taxonomy (an unknown item is one row without a
    category, kept verbatim); an item the operation already has with a category set by hand keeps it,
    so correcting another item's spelling does not undo a reviewer's mapping. Writes nothing, so the
    admin shows the same rows for review before they are saved.
    """
    taxonomy = taxonomy or Taxonomy.load()
    by_hand: dict[str, list[int]] = {}
    if operation is not None and operation.pk is not None:
        for item_text, category_id in operation.data_items.filter(
            match=DataItem.Match.MANUAL, category__isnull=False
        ).values_list("text", "category_id"):
            by_hand.setdefault(item_text, []).append(category_id)
    operation_id = operation.pk if operation is not None else None
    rows: list[DataItem] = []
    for position, item_text in enumerate(data_items_split(text)):
        if item_text in by_hand:
            rows += [
                DataItem(
                    operation_id=operation_id,
                    position=position,
                    text=item_text,
                    category_id=category_id,
                    match=DataItem.Match.MANUAL,
                )
                for category_id in by_hand[item_text]
            ]
            continue
        mapping = taxonomy.map_item(item_text)
        rows += data_item_rows(
            operation_id=operation_id, position=position, mapping=mapping, taxonomy=taxonomy
        )
    return rows


@transaction.atomic
def operation_set_data_items_from_text(
    *, operation: Operation, text: str, taxonomy: Taxonomy | None = None, refresh: bool = True
) -> list[DataItem]:
    """Replace an operation's data items with those of a typed text (``operation_items_planned``).

    The one itemisation rule of the register outside an import: the admin form, the API and any other
    door that takes a typed list end here, so "手机号、设备标识符、心率" gives the items an import gives.
    """
    rows = operation_items_planned(text=text, operation=operation, taxonomy=taxonomy)
    operation.data_items.all().delete()
    created = history_bulk_create(DataItem, rows)
    if refresh:
        findings_refresh(operations=[operation])
    return created


@transaction.atomic
def operation_delete(*, operation: Operation, expected_version: int | None = None) -> None:
    """Remove an operation with its data items (retiring it, status=retired, keeps the history instead)."""
    if expected_version is not None:
        # Claimed like an update, so a delete never removes a state its caller has not seen.
        claimed = Operation.objects.filter(pk=operation.pk, version=expected_version)
        if not claimed.update(version=F("version") + 1):
            raise StaleObject(operation, expected_version)
    processor_id = operation.processor_id
    operation.delete()
    # Its findings went with it; its recipient's (a contact owed for its flows) may have gone too.
    findings_refresh(processors=[processor_id])


# --- Review and ownership -------------------------------------------------------------------------
# PIPL Art. 54 expects regular audits: who last checked a row, when, and when it is next due.


def review_due_after(day: datetime.date) -> datetime.date:
    """The next review of a row reviewed on ``day`` (REGISTER_REVIEW_INTERVAL_DAYS later)."""
    return day + datetime.timedelta(days=settings.REGISTER_REVIEW_INTERVAL_DAYS)


def _mark_reviewed(instance: Operation | Processor, *, user: Any) -> Operation | Processor:
    reviewer = user if getattr(user, "pk", None) is not None else None
    now = timezone.now()
    # The history row says who, when and through which door; the copied name outlives the account.
    with history_context(history_attrs()["history_channel"], user=reviewer):
        return _validated_save(
            instance,
            reviewed_at=now,
            reviewed_by=reviewer,
            reviewed_by_name=reviewer.get_username() if reviewer is not None else "",
            review_due=review_due_after(timezone.localdate(now)),
        )


@transaction.atomic
def operation_mark_reviewed(*, operation: Operation, user: Any) -> Operation:
    """Record that the user reviewed the operation now; its next review is due one interval later."""
    return _mark_reviewed(operation, user=user)


@transaction.atomic
def processor_mark_reviewed(*, processor: Processor, user: Any) -> Processor:
    """Record that the user reviewed the processor now; its next review is due one interval later."""
    return _mark_reviewed(processor, user=user)


# --- Data items -----------------------------------------------------------------------------------


def data_item_rows(
    *, operation_id: int, position: int, mapping: ItemMapping, taxonomy: Taxonomy
) -> list[DataItem]:
    """Unsaved DataItem rows for one item: one per category, or one unmapped row kept verbatim."""
    if mapping.unmapped:
        return [DataItem(operation_id=operation_id, position=position, text=mapping.text)]
    return [
        DataItem(
            operation_id=operation_id,
            position=position,
            text=mapping.text,
            category_id=taxonomy.category_id(code),
            match=mapping.match,
        )
        for code in mapping.category_codes
    ]


@transaction.atomic
def data_items_save(
    *, operation: Operation, saved: Sequence[DataItem], deleted: Sequence[DataItem] = ()
) -> None:
    """Apply hand edits to an operation's data items; new items go after the published ones."""
    for item in deleted:
        item.delete()
    # Composite rows share their published position, so a new item takes the next free one.
    position = (operation.data_items.aggregate(last=Max("position"))["last"] or 0) + 1
    for item in saved:
        if item.pk is None:
            item.operation = operation
            item.position, position = position, position + 1
        _validated_save(item)
    findings_refresh(operations=[operation])


@transaction.atomic
def data_items_remap(*, items: QuerySet[DataItem], taxonomy: Taxonomy | None = None) -> int:
    """Map unmapped data items again (after aliases were added); returns how many are now mapped."""
    taxonomy = taxonomy or Taxonomy.load()
    unmapped = list(items.filter(category__isnull=True))
    newly_mapped = [item for item in unmapped if not taxonomy.map_item(item.text).unmapped]
    replacements = [
        row
        for item in newly_mapped
        for row in data_item_rows(
            operation_id=item.operation_id,
            position=item.position,
            mapping=taxonomy.map_item(item.text),
            taxonomy=taxonomy,
        )
    ]
    DataItem.objects.filter(pk__in=[item.pk for item in newly_mapped]).delete()
    history_bulk_create(DataItem, replacements, ignore_conflicts=True)
    if newly_mapped:
        findings_refresh(operations={item.operation_id for item in newly_mapped})
    return len(newly_mapped)


# --- The taxonomy's aliases -----------------------------------------------------------------------


@transaction.atomic
def category_aliases_add_from_items(*, items: Iterable[DataItem], taxonomy: Taxonomy | None = None) -> int:
    """Teach the taxonomy the wording of mapped items (aliases are data); returns how many were added.

    Wording the taxonomy already resolves (a code, a name or an alias of any category) is skipped.
    """
    taxonomy = taxonomy or Taxonomy.load_categories()
    new_aliases: dict[str, CategoryAlias] = {}
    for item in items:
        if item.category_id is None:
            continue
        alias = CategoryAlias(category_id=item.category_id, text=item.text.strip())
        alias.clean()
        if alias.key and alias.key not in new_aliases and taxonomy.resolve_category(alias.text) is None:
            new_aliases[alias.key] = alias
    history_bulk_create(CategoryAlias, list(new_aliases.values()))
    if new_aliases:
        data_items_remap_unmapped()
    return len(new_aliases)


@transaction.atomic
def data_items_remap_unmapped() -> int:
    """Map every unmapped item again after the taxonomy learnt wording (an alias added here or in the
    admin), so the items and their findings follow it; returns how many are now mapped."""
    return data_items_remap(items=DataItem.objects.filter(category__isnull=True))


# --- Users ----------------------------------------------------------------------------------------


@transaction.atomic
def user_delete(*, user: Any) -> None:
    """Delete an account that never changed the register; one that did is refused: deactivate it instead.

    History rows, import records and versions keep the name they copied, but a deleted account can no
    longer be asked about, reactivated or told apart from a new one with the same name.
    """
    if user_has_audit_trail(user):
        raise ValidationError(
            _(
                "%(user)s has changed the register (history, imports or published versions); deleting the "
                "account would leave that evidence without its author. Deactivate the account instead."
            )
            % {"user": user.get_username()},
            code="has_audit_trail",
        )
    user.delete()


@transaction.atomic
def user_deactivate(*, user: Any) -> Any:
    """Stop an account from signing in, keeping it as the author of what it did."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    return user


# --- Published versions ---------------------------------------------------------------------------


@transaction.atomic
def version_publish(
    *,
    controller: Controller,
    label: str,
    updated_on: datetime.date,
    effective_on: datetime.date,
    user: Any = None,
    notes: str = "",
    checked: bool = False,
    override_reason: str = "",
) -> PublishedVersion:
    """Freeze the controller's active operations into a published version (immutable: no update service).

    With ``checked``, blocking problems (``disclosure.page.publish_checks``) refuse the publication unless
    an ``override_reason`` is written; the reason and the problems it overrode are kept on the version.
    """
    # Imported here: snapshots render through the disclosure rows, which writers should not have to load.
    from processors.disclosure.page import publish_checks
    from processors.disclosure.snapshots import snapshot_live, snapshot_sha256
    from processors.disclosure.versions import publish_entries

    label = (label or "").strip()
    errors: dict[str, list[str]] = {}
    if not label:
        errors["label"] = [_("Give the version a label.")]
    elif PublishedVersion.objects.filter(controller=controller, label=label).exists():
        errors["label"] = [
            _("%(controller)s already has a version labelled “%(label)s”; published versions never change.")
            % {"controller": controller, "label": label}
        ]
    if updated_on and effective_on and effective_on < updated_on:
        errors["effective_on"] = [_("A version cannot take effect before the date it was updated.")]
    override_reason = (override_reason or "").strip()
    overridden: list[dict[str, Any]] = []
    if checked:
        overridden = publish_checks(controller).blocking
        if overridden and not override_reason:
            errors["override_reason"] = [
                _("%(count)d blocking problem(s): fix them, or publish anyway with a written reason.")
                % {"count": len(overridden)}
            ] + [f"{problem['title']}: {problem['subject']}" for problem in overridden]
    if errors:
        raise ValidationError(errors)
    snapshot = snapshot_live(controller)
    version = PublishedVersion(
        controller=controller,
        label=label,
        updated_on=updated_on,
        effective_on=effective_on,
        notes=notes,
        snapshot=snapshot,
        snapshot_sha256=snapshot_sha256(snapshot),
        published_by=user if getattr(user, "pk", None) is not None else None,
        published_by_name=user.get_username() if getattr(user, "pk", None) is not None else "",
        override_reason=override_reason if overridden or not checked else "",
        overridden_problems=overridden,
    )
    version = _validated_save(version)
    # Its rows by index, its row count and its diff from the version before it, in this transaction.
    publish_entries(version, snapshot)
    return version


@transaction.atomic
def version_withdraw(*, version: PublishedVersion, user: Any, reason: str) -> PublishedVersion:
    """Withdraw a published version: kept unchanged, marked withdrawn with who, when and why."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Say why the version is withdrawn.")]})
    # Locked so two withdrawals do not both record themselves.
    version = PublishedVersion.objects.select_for_update().get(pk=version.pk)
    if version.withdrawn_at is not None:
        raise ValidationError({"reason": [_("This version was already withdrawn.")]})
    known = getattr(user, "pk", None) is not None
    version.withdrawn_at = timezone.now()
    version.withdrawn_by = user if known else None
    version.withdrawn_by_name = user.get_username() if known else ""
    version.withdrawal_reason = reason
    # Only the withdrawal fields are written: the snapshot and its hash never change.
    version.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawn_by_name", "withdrawal_reason"])
    return version


# --- Access ---------------------------------------------------------------------------------------


@transaction.atomic
def controller_membership_grant(*, controller: Controller, user: Any, role: int) -> ControllerMembership:
    """Make the user a member of the controller with at least the role (a creator becomes its admin)."""
    membership, _created = ControllerMembership.objects.get_or_create(
        controller=controller, user=user, defaults={"role": role}
    )
    if membership.role < role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


# --- Findings -------------------------------------------------------------------------------------
# A DPO's decision on a stored finding; the refresh keeps it while the rule holds (see findings.py).


def _finding_decide(*, finding: Finding, user: Any, state: str, reason: str) -> Finding:
    finding.state, finding.state_reason = state, reason
    finding.state_by = user if getattr(user, "pk", None) is not None else None
    finding.state_at = timezone.now()
    outer = current_history_state()
    channel = outer.channel if outer is not None else Channel.SYSTEM
    with history_context(channel, user=finding.state_by):
        finding.save(update_fields=["state", "state_reason", "state_by", "state_at"])
    return finding


@transaction.atomic
def finding_accept(*, finding: Finding, user: Any, reason: str) -> Finding:
    """Accept a finding as a known, justified exception (the reason is required and kept in history)."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the finding is accepted.")}, code="required")
    return _finding_decide(finding=finding, user=user, state=FindingState.ACCEPTED, reason=reason.strip())


@transaction.atomic
def finding_fix(*, finding: Finding, user: Any, note: str = "") -> Finding:
    """Mark a finding fixed (by a change outside the register, say); the next refresh reopens it only if
    the rule, after having stopped holding, holds again."""
    return _finding_decide(finding=finding, user=user, state=FindingState.FIXED, reason=note.strip())


@transaction.atomic
def finding_reopen(*, finding: Finding, user: Any, note: str = "") -> Finding:
    """Put an accepted or fixed finding back on the open list."""
    return _finding_decide(finding=finding, user=user, state=FindingState.OPEN, reason=note.strip())


# --- Deletion notices -----------------------------------------------------------------------------
# The letters themselves are worded by notice_letters.py; here only the record of sending and reply.


@transaction.atomic
def notice_letter_record_sent(
    *,
    processor: Processor,
    controller: Controller | None,
    categories: Sequence[str],
    reply_by: datetime.date,
    user: Any,
    note: str = "",
) -> DeletionNoticeLetter:
    """Record that a deletion notice for these category codes was sent to the recipient now."""
    sender = user if getattr(user, "pk", None) is not None else None
    letter = DeletionNoticeLetter(
        controller=controller,
        processor=processor,
        categories=sorted(set(categories)),
        reply_by=reply_by,
        sent_at=timezone.now(),
        sent_by=sender,
        sent_by_name=sender.get_username() if sender is not None else "",
        note=note.strip(),
    )
    outer = current_history_state()
    with history_context(outer.channel if outer is not None else Channel.SYSTEM, user=sender):
        return _validated_save(letter)


@transaction.atomic
def notice_letter_acknowledge(
    *, letter: DeletionNoticeLetter, user: Any, note: str = ""
) -> DeletionNoticeLetter:
    """Record that the recipient confirmed the deletion (now); a note is appended to the letter's."""
    if letter.sent_at is None:
        raise ValidationError(_("A notice that was not sent cannot be acknowledged."), code="not_sent")
    letter.acknowledged_at = timezone.now()
    if note.strip():
        letter.note = "\n".join(part for part in (letter.note, note.strip()) if part)
    outer = current_history_state()
    actor = user if getattr(user, "pk", None) is not None else None
    with history_context(outer.channel if outer is not None else Channel.SYSTEM, user=actor):
        letter.save(update_fields=["acknowledged_at", "note"])
    return letter
