"""Writes: small typed functions that every caller (admin, importer, API, commands) ends in.

Each validates with ``full_clean()`` so model constraints are reported as field errors before the
database has to refuse them, and runs inside a transaction.
"""

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Model, QuerySet
from django.utils.translation import gettext as _

from processors.history import history_bulk_create
from processors.models import (
    CategoryAlias,
    Controller,
    DataItem,
    Operation,
    ProcessingAction,
    Processor,
    ProcessorAlias,
    PublishedVersion,
    Purpose,
    Service,
)
from processors.taxonomy import ItemMapping, Taxonomy
from processors.text import normalize_key


def _validated_save(instance: Model, **fields: Any) -> Model:
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance


@transaction.atomic
def controller_create(*, code: str, **fields: Any) -> Controller:
    """Create a controller (the company or app that publishes a register)."""
    return _validated_save(Controller(code=code), **fields)


@transaction.atomic
def processor_create(
    *, name_zh: str = "", name_en: str = "", aliases: Iterable[str] = (), **fields: Any
) -> Processor:
    """Create a processor with its other names."""
    processor = _validated_save(Processor(name_zh=name_zh, name_en=name_en), **fields)
    for alias in aliases:
        _validated_save(ProcessorAlias(processor=processor, text=alias))
    return processor


@transaction.atomic
def processor_update(*, processor: Processor, **fields: Any) -> Processor:
    """Change a processor's fields."""
    return _validated_save(processor, **fields)


@transaction.atomic
def service_create(*, controller: Controller, name: str, **fields: Any) -> Service:
    """Create a service (feature) of a controller."""
    return _validated_save(Service(controller=controller, name=name), **fields)


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
def operation_set_data_items(
    *, operation: Operation, items: Sequence[str], taxonomy: Taxonomy | None = None
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
    return history_bulk_create(DataItem, rows)


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
    """Create one processing operation (a row of a disclosure table) with its data items."""
    fields.setdefault("data_items_text", "、".join(data_items))
    operation = _validated_save(Operation(service=service, processor=processor), **fields)
    operation.purposes.set(purposes)
    operation.actions.set(actions)
    operation_set_data_items(operation=operation, items=data_items, taxonomy=taxonomy)
    return operation


@transaction.atomic
def operation_update(*, operation: Operation, **fields: Any) -> Operation:
    """Change an operation's own fields."""
    return _validated_save(operation, **fields)


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
    return len(newly_mapped)


# --- Added for the spreadsheet import and the demo loader ----------------------------------------


@transaction.atomic
def controller_update(*, controller: Controller, **fields: Any) -> Controller:
    """Change a controller's fields."""
    return _validated_save(controller, **fields)


@transaction.atomic
def processor_alias_create(*, processor: Processor, text: str) -> ProcessorAlias:
    """Record another name a processor is known by."""
    return _validated_save(ProcessorAlias(processor=processor, text=text))


@transaction.atomic
def service_update(*, service: Service, **fields: Any) -> Service:
    """Change a service's fields."""
    return _validated_save(service, **fields)


@transaction.atomic
def operation_set_terms(
    *,
    operation: Operation,
    purposes: Iterable[Purpose | int] | None = None,
    actions: Iterable[ProcessingAction | int] | None = None,
) -> Operation:
    """Replace an operation's purposes and/or actions (None leaves that side as it is)."""
    if purposes is not None:
        operation.purposes.set(purposes)
    if actions is not None:
        operation.actions.set(actions)
    return operation


# --- Added for the REST API ----------------------------------------------------------------------


@transaction.atomic
def processor_edit(*, processor: Processor, aliases: Iterable[str] | None = None, **fields: Any) -> Processor:
    """Change a processor's fields and, when aliases are given, make them its exact set of other names."""
    processor = processor_update(processor=processor, **fields)
    if aliases is not None:
        wanted = {normalize_key(text): text for text in aliases if normalize_key(text)}
        processor.aliases.exclude(key__in=wanted).delete()
        known = set(processor.aliases.values_list("key", flat=True))
        for key, text in wanted.items():
            if key not in known:
                processor_alias_create(processor=processor, text=text)
    return processor


@transaction.atomic
def operation_edit(
    *,
    operation: Operation,
    data_items: Sequence[str] | None = None,
    purposes: Iterable[Purpose] | None = None,
    actions: Iterable[ProcessingAction] | None = None,
    taxonomy: Taxonomy | None = None,
    **fields: Any,
) -> Operation:
    """Change an operation's fields and, where given, replace its data items, purposes and actions."""
    operation = operation_update(operation=operation, **fields)
    operation_set_terms(operation=operation, purposes=purposes, actions=actions)
    if data_items is not None:
        operation_set_data_items(operation=operation, items=data_items, taxonomy=taxonomy)
    return operation


@transaction.atomic
def operation_delete(*, operation: Operation) -> None:
    """Remove an operation with its data items (retiring it, status=retired, keeps the history instead)."""
    operation.delete()


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


@transaction.atomic
def category_aliases_add_from_items(*, items: Iterable[DataItem], taxonomy: Taxonomy | None = None) -> int:
    """Teach the taxonomy the wording of mapped items (aliases are data); returns how many were added.

    Wording the taxonomy already resolves (a code, a name or an alias of any category) is skipped.
    """
    taxonomy = taxonomy or Taxonomy.load()
    new_aliases: dict[str, CategoryAlias] = {}
    for item in items:
        if item.category_id is None:
            continue
        alias = CategoryAlias(category_id=item.category_id, text=item.text.strip())
        alias.clean()
        if alias.key and alias.key not in new_aliases and taxonomy.resolve_category(alias.text) is None:
            new_aliases[alias.key] = alias
    history_bulk_create(CategoryAlias, list(new_aliases.values()))
    return len(new_aliases)


# --- Added for published versions ------------------------------------------------------------------


@transaction.atomic
def version_publish(
    *,
    controller: Controller,
    label: str,
    updated_on: datetime.date,
    effective_on: datetime.date,
    user: Any = None,
    notes: str = "",
) -> PublishedVersion:
    """Freeze the controller's active operations into a published version (immutable: no update service)."""
    # Imported here: versions renders through the exporters, which writers should not have to load.
    from processors.versions import snapshot_live, snapshot_sha256

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
    )
    return _validated_save(version)
