"""Published versions read by index: their rows (``PublishedEntry``), their diffs (stored once), and what
changed in the register since one was published, at a cost that grows with what is read or what changed,
not with the table (issue 13).

A version's ``snapshot`` stays the signed document (``snapshot_sha256``) and what downloads stream; it is
parsed only once per version, when it is published (or, for a version published before its rows were
kept, the first time its rows are asked for: ``ensure_entries``). Everything else reads:

- ``PublishedEntry`` rows: a page of them, or those of some operations or keys;
- ``PublishedVersion.row_count``;
- ``PublishedVersion.stored_diffs``: ``{"<other version id>": VersionDiff.to_dict()}`` (the diff from that
  version to this one; both sides are immutable, so it is computed once), and under ``PUBLISHED_KEY``
  what the snapshot said about the controller and the taxonomy terms its rows name, so that the diff
  against the live register compares only what changed since (``live_diff``).
"""

import datetime
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from processors import selectors
from processors.disclosure.diff import VersionDiff, VersionRef, entries_diff, version_diff, version_ref
from processors.disclosure.snapshots import (
    Snapshot,
    controller_data,
    snapshot_from_operations,
    snapshot_live,
)
from processors.models import (
    Controller,
    DataCategory,
    DataItem,
    Operation,
    ProcessingAction,
    Processor,
    PublishedEntry,
    PublishedVersion,
    Purpose,
    Service,
)

# The key of ``stored_diffs`` that holds what the snapshot said beside its rows (not a version id).
PUBLISHED_KEY = "published"
ENTRY_BATCH = 1000
PUBLICATION_MARGIN = datetime.timedelta(minutes=5)
STORED_CACHE_SECONDS = 7 * 24 * 3600


# --- Listing ----------------------------------------------------------------------------------------


def versions_listed(versions: QuerySet[PublishedVersion]) -> QuerySet[PublishedVersion]:
    """Versions to list: without their snapshot, stored pages and diffs (``row_count`` says their size)."""
    return versions.defer(*selectors.VERSION_LARGE_FIELDS)


# --- Rows -------------------------------------------------------------------------------------------


def published_summary(snapshot: Snapshot) -> dict[str, Any]:
    """What a diff against the live register needs from a snapshot besides its rows: the controller as
    published and the names (and sensitivity) of the categories, purposes and actions its rows carry."""
    categories: dict[str, list[Any]] = {}
    purposes: dict[str, list[str]] = {}
    actions: dict[str, list[str]] = {}
    for entry in snapshot.get("operations", ()):
        for item in entry["data_items"]:
            if item["category"]:
                categories.setdefault(item["category"], [item["name_zh"], item["name_en"], item["sensitive"]])
        for term in entry["purposes"]:
            purposes.setdefault(term["code"], [term["name_zh"], term["name_en"]])
        for term in entry["actions"]:
            actions.setdefault(term["code"], [term["name_zh"], term["name_en"]])
    return {
        "controller": snapshot.get("controller"),
        "categories": categories,
        "purposes": purposes,
        "actions": actions,
    }


def write_entries(version: PublishedVersion, snapshot: Snapshot) -> None:
    """Write a version's rows, ``row_count`` and published summary from its snapshot (in the caller's
    transaction), once: at publication, or through ``ensure_entries``."""
    rows = snapshot.get("operations") or []
    PublishedEntry.objects.bulk_create(
        (
            PublishedEntry(
                version_id=version.pk,
                position=position,
                key=str(row.get("key", ""))[:700],
                operation_id=row.get("operation_id"),
                entry=row,
            )
            for position, row in enumerate(rows)
        ),
        batch_size=ENTRY_BATCH,
    )
    version.row_count = len(rows)
    PublishedVersion.objects.filter(pk=version.pk).update(row_count=len(rows))
    _store(version, PUBLISHED_KEY, published_summary(snapshot))


def ensure_entries(version: PublishedVersion) -> None:
    """Make sure a version's rows are kept (a version published by older code has only its snapshot).

    Idempotent under concurrency: the version row is locked (PostgreSQL) and the rows are looked for
    again inside the lock; on SQLite writers are serialised, and the unique (version, position) constraint
    turns a duplicate into an IntegrityError that leaves the other writer's rows in place.
    """
    if version.row_count or PublishedEntry.objects.filter(version_id=version.pk).exists():
        return
    try:
        with transaction.atomic():
            locked = PublishedVersion.objects.select_for_update().only("pk").get(pk=version.pk)
            if PublishedEntry.objects.filter(version_id=locked.pk).exists():
                return
            snapshot = PublishedVersion.objects.values_list("snapshot", flat=True).get(pk=version.pk) or {}
            if snapshot.get("operations"):  # an empty version has nothing to write (and is read as empty)
                write_entries(version, snapshot)
    except IntegrityError:
        version.refresh_from_db(fields=["row_count"])


def entries_page(version: PublishedVersion, start: int, count: int) -> list[dict[str, Any]]:
    """``count`` rows of a version's table from position ``start`` (one indexed query)."""
    ensure_entries(version)
    return list(
        PublishedEntry.objects.filter(version_id=version.pk, position__gte=start, position__lt=start + count)
        .order_by("position")
        .values_list("entry", flat=True)
    )


def summary(version: PublishedVersion) -> dict[str, Any]:
    """The version's published summary (``published_summary``), written from its snapshot once if missing."""
    found = _stored_value(version, PUBLISHED_KEY)
    if found is None:
        snapshot = PublishedVersion.objects.values_list("snapshot", flat=True).get(pk=version.pk) or {}
        ensure_entries(version)
        found = published_summary(snapshot)
        _store(version, PUBLISHED_KEY, found)
    return found


# --- Stored diffs -------------------------------------------------------------------------------------


def _cache_key(version: PublishedVersion, key: str) -> str:
    # The publication instant as well as the id: a test database may give a later version an earlier id.
    return f"version-stored:{version.pk}:{version.published_at.timestamp()}:{key}"


def _stored_value(version: PublishedVersion, key: str) -> Any:
    """One value of ``stored_diffs`` (None when it is not there yet), through the cache: a stored value
    never changes, and reading the column costs, on SQLite, a walk past the whole snapshot stored before it
    in the row."""
    found = cache.get(_cache_key(version, key))
    if found is not None:
        return found
    stored = PublishedVersion.objects.values_list("stored_diffs", flat=True).get(pk=version.pk) or {}
    for name, value in stored.items():
        cache.set(_cache_key(version, name), value, STORED_CACHE_SECONDS)
    return stored.get(key)


def _store(version: PublishedVersion, key: str, value: Any) -> None:
    """Add one key to ``stored_diffs`` (the row locked, so concurrent writers of other keys lose nothing;
    two writers of one key write the same value, both sides being immutable)."""
    with transaction.atomic():
        locked = PublishedVersion.objects.select_for_update().values_list("stored_diffs", flat=True)
        current = locked.get(pk=version.pk)
        PublishedVersion.objects.filter(pk=version.pk).update(stored_diffs={**(current or {}), key: value})
    transaction.on_commit(lambda: cache.set(_cache_key(version, key), value, STORED_CACHE_SECONDS))


def stored_diff(old: PublishedVersion, new: PublishedVersion) -> VersionDiff:
    """What changed from ``old`` to ``new``: computed once from both snapshots, then read as stored on
    ``new`` (under ``old``'s id)."""
    if old.pk == new.pk:
        controller = summary(new)["controller"]
        return VersionDiff(old=version_ref(old), new=version_ref(new), controller=controller)
    key = str(old.pk)
    found = _stored_value(new, key)
    if found is not None:
        return VersionDiff.from_dict(found)
    full = {pk: PublishedVersion.objects.select_related("controller").get(pk=pk) for pk in (old.pk, new.pk)}
    diff = version_diff(full[old.pk], full[new.pk])
    _store(new, key, diff.to_dict())
    return diff


def publish_entries(version: PublishedVersion, snapshot: Snapshot) -> None:
    """At publication (in its transaction): the version's rows, and its diff from the version before it
    in the controller's order (the one the diff pages compare it with by default), stored."""
    write_entries(version, snapshot)
    ordered = list(selectors.version_list(version.controller).values_list("pk", flat=True))
    position = ordered.index(version.pk)
    if position + 1 < len(ordered):
        previous = PublishedVersion.objects.select_related("controller").get(pk=ordered[position + 1])
        _store(version, str(previous.pk), version_diff(previous, version).to_dict())


# --- Against the live register ---------------------------------------------------------------------------


def changed_operation_ids(
    version: PublishedVersion, controller: Controller, published: dict[str, Any]
) -> set[int] | None:
    """The operations whose row can differ from the version's: every operation of the controller that a
    history row recorded after publication (saved, retired, deleted, purposes or actions changed), whose
    data items, service or recipient (or a group member of it) changed since, whose categories, purposes
    or actions are named or marked differently now, and those that share a row identity with one of them
    (``snapshots._document`` tells such rows apart by their order). None when they cannot be told
    (a term the version's rows name was deleted from the taxonomy): compare the whole tables then."""
    # From a little before publication: a change saved while the snapshot was being read carries an
    # earlier date than ``published_at`` (set when the version is saved); re-comparing a row that did not
    # change costs a little and finds nothing.
    since = version.published_at - PUBLICATION_MARGIN
    services = Service.history.filter(history_date__gt=since, controller_id=controller.pk).values("id")
    own = Operation.objects.filter(service__controller=controller)
    ids = set(
        Operation.history.filter(history_date__gt=since)
        .filter(Q(service_id__in=controller.services.values("pk")) | Q(service_id__in=services))
        .values_list("id", flat=True)
    )
    ids.update(
        DataItem.history.filter(
            history_date__gt=since, operation__service__controller=controller
        ).values_list("operation_id", flat=True)
    )
    ids.update(own.filter(service_id__in=services).values_list("pk", flat=True))
    parties = set(Processor.history.filter(history_date__gt=since).values_list("id", flat=True))
    if parties:
        # A member that changed (or joined or left a group) changes the row of its group, then and now.
        parties.update(
            Processor.history.filter(id__in=parties, member_of_id__isnull=False).values_list(
                "member_of_id", flat=True
            )
        )
        ids.update(own.filter(processor_id__in=parties).values_list("pk", flat=True))
    renamed = _renamed_term_operations(own, controller, published)
    if renamed is None:
        return None
    ids.update(renamed)
    if ids:
        # Rows with one identity are told apart by their order: all of them are compared together.
        identities = set(
            own.filter(pk__in=ids).values_list("service__name", "processor__name_key", "relationship")
        )
        if identities:
            same = own.filter(
                service__name__in={service for service, _key, _relationship in identities},
                processor__name_key__in={key for _service, key, _relationship in identities},
            ).values_list("pk", "service__name", "processor__name_key", "relationship")
            ids.update(pk for pk, *identity in same if tuple(identity) in identities)
    return ids


def _renamed_term_operations(
    own: QuerySet[Operation], controller: Controller, published: dict[str, Any]
) -> set[int] | None:
    """Operations carrying a category, purpose or action whose names (or, for a category, whether this
    controller's table marks it sensitive) differ from what the version's rows say; None when one of
    those terms is gone from the taxonomy (its rows cannot be found by it any more)."""
    extra = selectors.controller_extra_sensitive_category_ids().get(controller.pk, frozenset())
    terms = published["categories"]
    current = DataCategory.objects.filter(code__in=list(terms)).values_list(
        "code", "name_zh", "name_en", "sensitive", "pk"
    )
    seen = 0
    categories = []
    for code, name_zh, name_en, sensitive, pk in current:
        seen += 1
        if terms[code] != [name_zh, name_en, sensitive or pk in extra]:
            categories.append(code)
    if seen < len(terms):
        return None
    found: set[int] = set()
    if categories:
        found.update(own.filter(data_items__category__code__in=categories).values_list("pk", flat=True))
    for model, name, relation in (
        (Purpose, "purposes", "purposes__code__in"),
        (ProcessingAction, "actions", "actions__code__in"),
    ):
        terms = published[name]
        rows = list(model.objects.filter(code__in=list(terms)).values_list("code", "name_zh", "name_en"))
        if len(rows) < len(terms):
            return None
        changed = [code for code, name_zh, name_en in rows if terms[code] != [name_zh, name_en]]
        if changed:
            found.update(own.filter(**{relation: changed}).values_list("pk", flat=True))
    return found


def live_diff(version: PublishedVersion) -> VersionDiff:
    """What changed in the register since this version was published, reading only the rows that can
    have changed (``changed_operation_ids``) on both sides: the same changes as ``diff.version_diff_live``,
    except that the live side's ``sha256`` is left empty (hashing the live register reads all of it)."""
    published = summary(version)
    controller = Controller.objects.get(pk=version.controller_id)
    ids = changed_operation_ids(version, controller, published)
    if ids is None:
        full = PublishedVersion.objects.select_related("controller").get(pk=version.pk)
        return version_diff(full, snapshot_live(controller))
    new_entries: list[dict[str, Any]] = []
    old_entries: list[dict[str, Any]] = []
    if ids:
        live = snapshot_from_operations(
            selectors.disclosure_operations(controller).filter(pk__in=ids), controller=controller
        )
        new_entries = live["operations"]
        keys = [entry["key"] for entry in new_entries]
        # Sorted here: ordering by position in SQL lets SQLite walk the (version, position) index, all of it.
        rows = PublishedEntry.objects.filter(
            Q(operation_id__in=ids) | Q(key__in=keys), version_id=version.pk
        ).values_list("position", "entry")
        old_entries = [entry for _position, entry in sorted(rows, key=lambda row: row[0])]
    return entries_diff(
        version_ref(version),
        VersionRef(label=str(_("current register (not published)")), live=True),
        old_entries,
        new_entries,
        old_controller=published["controller"],
        new_controller=controller_data(controller),
    )
