"""Change history: who changed which register object, when, through which door, and from what to what.

django-simple-history writes one historical row per save and delete of every register model
(``register_history`` in models.py). This module adds what the library does not know:

- **the channel** (admin, API, browser, import, command, system) and, for imports, **which import**:
  ``history_context`` sets them for a block of code (a ``contextvars`` variable, so threads and async
  tasks do not leak into each other), ``HistoryChannelMiddleware`` sets the channel of a request from its
  path, and ``stamp_historical_record`` (a ``pre_create_historical_record`` receiver connected in
  ``ProcessorsConfig.ready``) copies them onto every historical row;
- **bulk writers** (``history_bulk_create`` / ``history_bulk_update``): simple_history's bulk utilities send
  no signal, so these pass the current context explicitly;
- **reads** (``history_for``, ``history_entries``, ``processor_history`` (with the processors merged
  into it, ``processor_ids_merged_into``), ``history_search``, and
  ``history_rows`` for a paginated list such as the API's /history/): entries with the field-by-field
  changes, computed for a whole page in a constant number of queries.

Decisions:
- Outside any context and outside a request the channel is ``command``: in production the only code that
  writes without a request runs under ``manage.py`` (commands, ``shell``, ``migrate``). ``system`` is for
  code that says so with ``history_context(Channel.SYSTEM)``.
- A nested ``history_context`` without a user keeps the outer one's user (an import started from the admin
  is still that person's); the import record is never inherited, each context names its own.
- A user recorded by simple_history from the request wins over a context's user; the context's user
  covers commands and background imports, where there is no request.
- History is evidence and cannot be edited: ``SIMPLE_HISTORY_REVERT_DISABLED`` is on, and the admin and the
  API must expose historical rows read-only (no add, change, delete or revert).
"""

import contextlib
import contextvars
import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords
from simple_history.utils import (
    bulk_create_with_history,
    bulk_update_with_history,
    get_history_model_for_model,
    get_m2m_reverse_field_name,
)

from processors import selectors
from processors.models import (
    Channel,
    DataItem,
    ImportRecord,
    Operation,
    Processor,
    ProcessorAlias,
    PublishedVersion,
)

# Channel of a write that runs outside any context and any request (see the module docstring).
DEFAULT_CHANNEL = Channel.COMMAND

# Path prefixes that name a channel; anything else served over HTTP is the browser UI.
PATH_CHANNELS = (("/admin/", Channel.ADMIN), ("/api/", Channel.API))

HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}
HISTORY_TYPE_LABELS = {"created": _("created"), "changed": _("changed"), "deleted": _("deleted")}


# --- The context ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryState:
    """What the current block of code stamps on the history rows it causes."""

    channel: str
    import_record: ImportRecord | None = None
    user: Any = None


_state: contextvars.ContextVar[HistoryState | None] = contextvars.ContextVar(
    "processors_history_state", default=None
)


@contextlib.contextmanager
def history_context(
    channel: Channel | str, *, import_record: ImportRecord | None = None, user: Any = None
) -> Iterator[HistoryState]:
    """Stamp every history row written inside the block with this channel, import and user."""
    outer = _state.get()
    if user is None and outer is not None:
        user = outer.user
    state = HistoryState(channel=Channel(channel).value, import_record=import_record, user=user)
    token = _state.set(state)
    try:
        yield state
    finally:
        _state.reset(token)


def current_history_state() -> HistoryState | None:
    """The innermost active ``history_context``, or None outside any."""
    return _state.get()


def channel_for_path(path: str) -> str:
    """The channel a request path belongs to: /admin/ → admin, /api/ → api, anything else → browser."""
    for prefix, channel in PATH_CHANNELS:
        if path.startswith(prefix):
            return channel.value
    return Channel.BROWSER.value


def _current_request() -> HttpRequest | None:
    return getattr(HistoricalRecords.context, "request", None)


def _known_user(user: Any) -> Any:
    """The user when it is a saved account (an anonymous user cannot be recorded)."""
    return user if user is not None and getattr(user, "pk", None) is not None else None


def _current_channel(state: HistoryState | None) -> str:
    if state is not None:
        return state.channel
    request = _current_request()
    # A request that bypassed the middleware (a test's RequestFactory) still says where it came from.
    return channel_for_path(request.path_info) if request is not None else DEFAULT_CHANNEL.value


def history_attrs() -> dict[str, Any]:
    """The history columns the current context stamps (``custom_historical_attrs`` for bulk writers)."""
    state = _state.get()
    import_record = state.import_record if state is not None else None
    user = _known_user(state.user) if state is not None else None
    return {
        "history_channel": _current_channel(state),
        "history_import_id": import_record.pk if import_record is not None else None,
        "history_username": user.get_username() if user is not None else "",
    }


class HistoryChannelMiddleware:
    """Sets the history channel of a request from its path, for the duration of the request.

    Goes after simple_history's ``HistoryRequestMiddleware``, which records the request's user.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with history_context(channel_for_path(request.path_info)):
            return self.get_response(request)


def stamp_historical_record(sender: type[models.Model], *, history_instance: Any, **kwargs: Any) -> None:
    """``pre_create_historical_record`` receiver: the channel, the import and (if none yet) the user."""
    if not hasattr(history_instance, "history_channel"):
        return  # a history table without the register's extra columns
    state = _state.get()
    if not history_instance.history_channel:
        history_instance.history_channel = _current_channel(state)
    if state is not None:
        if state.import_record is not None and history_instance.history_import_id is None:
            history_instance.history_import_id = state.import_record.pk
        # The request's user, set by simple_history, wins; a context's user covers commands and imports.
        user = _known_user(state.user)
        if history_instance.history_user_id is None and user is not None:
            history_instance.history_user_id = user.pk
    if not history_instance.history_username and history_instance.history_user_id is not None:
        history_instance.history_username = history_instance.history_user.get_username()


def stored_username(record: Any) -> str:
    """Who wrote a history row: the name copied at write time, else the user's current name."""
    name = getattr(record, "history_username", "")
    if name or record.history_user_id is None:
        return name
    user = get_user_model()._default_manager.filter(pk=record.history_user_id).first()
    return user.get_username() if user is not None else ""


# --- Bulk writers ---------------------------------------------------------------------------------


def history_bulk_create(
    model: type[models.Model],
    objs: Sequence[models.Model],
    *,
    batch_size: int | None = None,
    ignore_conflicts: bool = False,
    default_date: datetime.datetime | None = None,
) -> list[models.Model]:
    """``bulk_create`` that also writes the history rows, stamped with the current context."""
    state = _state.get()
    return bulk_create_with_history(
        objs,
        model,
        batch_size=batch_size,
        ignore_conflicts=ignore_conflicts,
        default_user=_known_user(state.user) if state is not None else None,
        default_date=default_date,
        custom_historical_attrs=history_attrs(),
    )


def history_bulk_update(
    model: type[models.Model],
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    batch_size: int | None = None,
    default_date: datetime.datetime | None = None,
) -> int:
    """``bulk_update`` that also writes the history rows, stamped with the current context."""
    state = _state.get()
    return bulk_update_with_history(
        objs,
        model,
        fields,
        batch_size=batch_size,
        default_user=_known_user(state.user) if state is not None else None,
        default_date=default_date,
        custom_historical_attrs=history_attrs(),
    )


# --- Reading the history --------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field's value before and after a change; ``old``/``new`` are for reading, ``*_value`` for JSON."""

    field: str
    label: str
    old: str
    new: str
    old_value: Any = None
    new_value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "label": str(self.label),
            "old": self.old,
            "new": self.new,
            "old_value": self.old_value,
            "new_value": self.new_value,
        }


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded create, change or delete of a register object."""

    history_id: int
    model: str  # app_label.model_name, e.g. processors.operation
    model_label: str
    object_id: int
    object_label: str
    date: datetime.datetime
    type: str  # created, changed, deleted
    user_id: int | None
    user: str
    channel: str
    import_id: int | None
    changes: tuple[FieldChange, ...] = ()

    @property
    def type_label(self) -> str:
        return str(HISTORY_TYPE_LABELS[self.type])

    @property
    def channel_label(self) -> str:
        return str(Channel(self.channel).label) if self.channel in Channel.values else self.channel

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-serialisable data (for the API)."""
        return {
            "history_id": self.history_id,
            "model": self.model,
            "model_label": self.model_label,
            "object_id": self.object_id,
            "object_label": self.object_label,
            "date": self.date.isoformat(),
            "type": self.type,
            "type_label": self.type_label,
            "user_id": self.user_id,
            "user": self.user,
            "channel": self.channel,
            "channel_label": self.channel_label,
            "import_id": self.import_id,
            "changes": [change.to_dict() for change in self.changes],
        }


def history_models() -> list[type[models.Model]]:
    """The register models whose changes are recorded."""
    return [
        model
        for model in apps.get_app_config("processors").get_models()
        if hasattr(model._meta, "simple_history_manager_attribute")
        # A stored finding's history (each refresh's work, a DPO's decisions) is kept on the finding
        # (the findings admin): the register's feed is about the register's own data.
        and model._meta.model_name != "finding"
    ]


def user_has_audit_trail(user: Any) -> bool:
    """Whether the register names the user as the author of anything: a history row, an import, a version."""
    if getattr(user, "pk", None) is None:
        return False
    if ImportRecord.objects.filter(user=user).exists():
        return True
    if PublishedVersion.objects.filter(published_by=user).exists():
        return True
    return any(model.history.filter(history_user_id=user.pk).exists() for model in history_models())


class MergedHistory:
    """Several history tables as one sequence of historical rows, newest first, to count and slice.

    A slice ending at position n reads at most n rows from each table (one query per table), so a paginator
    can page through the whole register's history; only the rows it keeps then get their changes worked
    out, by ``history_entries``.
    """

    def __init__(self, querysets: Iterable[models.QuerySet]) -> None:
        self.querysets = [queryset.order_by("-history_date", "-history_id") for queryset in querysets]

    def count(self) -> int:
        return sum(queryset.count() for queryset in self.querysets)

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[Any]:
        stop = index.stop if isinstance(index, slice) else index + 1
        rows: list[Any] = []
        for queryset in self.querysets:
            rows.extend(queryset[:stop])
        rows.sort(key=lambda row: (row.history_date, row.history_id), reverse=True)
        return rows[index]


def history_for(obj: models.Model, *, limit: int | None = None) -> list[HistoryEntry]:
    """The history of one object, newest first."""
    records = obj.history.order_by("-history_date", "-history_id")
    return history_entries(records[:limit] if limit else records)


def history_for_queryset(queryset: Iterable[Any], *, limit: int | None = 200) -> list[HistoryEntry]:
    """Entries for register objects (their whole history, newest first) or for historical rows (as given).

    An API or admin list paginates ``Model.history.filter(...)`` itself and passes the page here.
    """
    model = getattr(queryset, "model", None)
    if model is not None and hasattr(model._meta, "simple_history_manager_attribute"):
        records = model.history.filter(id__in=queryset.order_by().values("pk"))
        return history_entries(_newest(MergedHistory([records]), limit))
    return history_entries(queryset)


def merged_into_reason(processor_pk: int) -> str:
    """The change reason on the deletion row of a processor merged into processor ``processor_pk``."""
    return f"merged into processor #{processor_pk}"


def processor_ids_merged_into(processor: Processor) -> list[int]:
    """The ids of the processors merged into this one, and of those merged into them, and so on."""
    found: list[int] = []
    frontier = [processor.pk]
    while frontier:
        reasons = [merged_into_reason(pk) for pk in frontier]
        rows = Processor.history.filter(history_type="-", history_change_reason__in=reasons)
        frontier = [pk for pk in rows.values_list("id", flat=True).distinct() if pk not in found]
        found += frontier
    return found


def processor_history(
    processor: Processor, *, limit: int | None = 200, user: Any = None
) -> list[HistoryEntry]:
    """The history of a processor, its aliases, the operations sending it data and their data items.

    The processors merged into it are part of its history: their own rows stay and are shown with it.
    Given a user, only the operations of the controllers the user may see (the processor is shared).
    """
    ids = [processor.pk, *processor_ids_merged_into(processor)]
    operation_ids = Operation.history.filter(processor_id__in=ids).values("id")
    querysets = [
        Processor.history.filter(id__in=ids),
        ProcessorAlias.history.filter(processor_id__in=ids),
        Operation.history.filter(processor_id__in=ids),
        DataItem.history.filter(operation_id__in=operation_ids),
    ]
    if user is not None:
        querysets = [selectors.history_visible_to(user, queryset) for queryset in querysets]
    return history_entries(_newest(MergedHistory(querysets), limit))


def history_rows(
    *,
    model_classes: Iterable[type[models.Model]] | None = None,
    channel: str | None = None,
    import_record: ImportRecord | int | None = None,
    user: Any = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> MergedHistory:
    """Changes across the register as historical rows, newest first, for a paginator to count and slice."""
    condition = Q()
    if channel:
        condition &= Q(history_channel=channel)
    if import_record is not None:
        condition &= Q(history_import_id=getattr(import_record, "pk", import_record))
    if user is not None:
        condition &= Q(history_user_id=getattr(user, "pk", user))
    if since is not None:
        condition &= Q(history_date__gte=since)
    if until is not None:
        condition &= Q(history_date__lt=until)
    return MergedHistory(model.history.filter(condition) for model in (model_classes or history_models()))


def history_search(
    *,
    model_classes: Iterable[type[models.Model]] | None = None,
    channel: str | None = None,
    import_record: ImportRecord | int | None = None,
    user: Any = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    limit: int | None = 200,
) -> list[HistoryEntry]:
    """Recent changes across the register, newest first, e.g. everything one import did."""
    rows = history_rows(
        model_classes=model_classes,
        channel=channel,
        import_record=import_record,
        user=user,
        since=since,
        until=until,
    )
    return history_entries(_newest(rows, limit))


def _newest(rows: MergedHistory, limit: int | None) -> list[Any]:
    """The newest ``limit`` rows (all of them without a limit), in one query per table."""
    return rows[:limit] if limit else rows[:]


def history_entries(records: Iterable[Any]) -> list[HistoryEntry]:
    """Entries with their field changes for historical rows, in their order, in a constant number of queries.

    Per history table: one query for the previous rows, one per many-to-many field; then one query per
    related model named by a foreign key, and one for the users.
    """
    records = list(records)
    by_model: dict[type, list[Any]] = defaultdict(list)
    for record in records:
        by_model[type(record)].append(record)
    previous: dict[int, Any] = {}
    m2m: dict[tuple[type, str], dict[int, list[int]]] = {}
    for history_model, rows in by_model.items():
        previous.update(_previous_rows(history_model, rows))
        for m2m_field in getattr(history_model, "_history_m2m_fields", ()):
            wanted = [row.history_id for row in rows] + [
                previous[id(row)].history_id for row in rows if id(row) in previous
            ]
            m2m[(history_model, m2m_field.name)] = _m2m_rows(history_model, m2m_field, wanted)
    labels = _RelatedLabels()
    raw = [_raw_changes(record, previous.get(id(record)), m2m, labels) for record in records]
    labels.load()
    users = get_user_model()._default_manager.in_bulk(
        {record.history_user_id for record in records if record.history_user_id is not None}
    )
    entries = []
    for record, changes in zip(records, raw, strict=True):
        user = users.get(record.history_user_id)
        model = record.instance_type
        entries.append(
            HistoryEntry(
                history_id=record.history_id,
                model=model._meta.label_lower,
                model_label=str(model._meta.verbose_name),
                object_id=record.id,
                object_label=_object_label(record, labels),
                date=record.history_date,
                type=HISTORY_TYPES[record.history_type],
                user_id=record.history_user_id,
                user=getattr(record, "history_username", "") or (user.get_username() if user else ""),
                channel=getattr(record, "history_channel", ""),
                import_id=getattr(record, "history_import_id", None),
                changes=tuple(change.render(labels) for change in changes),
            )
        )
    return entries


def _previous_rows(history_model: type, rows: list[Any]) -> dict[int, Any]:
    """For each row (by ``id()``), the object's row just before it, in one query."""
    ids = [row.history_id for row in rows]
    just_before = (
        history_model.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
        .order_by("-history_id")
        .values("history_id")[:1]
    )
    wanted = history_model.objects.filter(history_id__in=ids).annotate(before=Subquery(just_before))
    candidates: dict[int, list[Any]] = defaultdict(list)
    for row in [*rows, *history_model.objects.filter(history_id__in=wanted.values("before"))]:
        candidates[row.id].append(row)
    found = {}
    for row in rows:
        earlier = [other for other in candidates[row.id] if other.history_id < row.history_id]
        if earlier:
            found[id(row)] = max(earlier, key=lambda other: other.history_id)
    return found


def _m2m_rows(history_model: type, m2m_field: models.ManyToManyField, history_ids: list[int]) -> dict:
    """history_id → target ids of a many-to-many field as recorded with that history row."""
    through = getattr(history_model, m2m_field.name).model
    target = get_m2m_reverse_field_name(m2m_field)
    targets: dict[int, list[int]] = defaultdict(list)
    rows = through.objects.filter(history_id__in=history_ids).order_by(f"{target}_id")
    for history_id, target_id in rows.values_list("history_id", f"{target}_id"):
        targets[history_id].append(target_id)
    return targets


class _RelatedLabels:
    """Readable names of the objects foreign keys point to, fetched in one query per related model."""

    def __init__(self) -> None:
        self.wanted: dict[type, set[int]] = defaultdict(set)
        self.names: dict[tuple[type, int], str] = {}

    def want(self, model: type, pk: Any) -> None:
        if pk is not None:
            self.wanted[model].add(pk)

    def load(self) -> None:
        for model, pks in self.wanted.items():
            queryset = model._default_manager.all()
            if model is Operation:
                queryset = queryset.select_related("service", "processor")
            for pk, obj in queryset.in_bulk(pks).items():
                self.names[(model, pk)] = str(obj)

    def label(self, model: type, pk: Any) -> str:
        if pk is None:
            return ""
        return self.names.get(
            (model, pk),
            str(_("%(model)s #%(id)s (deleted)") % {"model": model._meta.verbose_name, "id": pk}),
        )


@dataclass
class _RawChange:
    field: models.Field
    old: Any
    new: Any
    related: type | None = None

    def render(self, labels: _RelatedLabels) -> FieldChange:
        return FieldChange(
            field=self.field.name,
            label=str(self.field.verbose_name),
            old=_display(self.field, self.old, labels, self.related),
            new=_display(self.field, self.new, labels, self.related),
            old_value=_json_value(self.old),
            new_value=_json_value(self.new),
        )


def _raw_changes(record: Any, before: Any, m2m: dict, labels: _RelatedLabels) -> list[_RawChange]:
    """The changes of one row against the row before it (all set values for a creation or a deletion)."""
    model = record.instance_type
    m2m_fields = list(getattr(type(record), "_history_m2m_fields", ()))
    m2m_names = {m2m_field.name for m2m_field in m2m_fields}
    kind = HISTORY_TYPES[record.history_type]
    changes: list[_RawChange] = []
    if kind == "changed" and before is not None:
        # diff_against on plain fields reads only the two rows; M2M and names come from the batches.
        delta = record.diff_against(before, excluded_fields=m2m_names)
        for change in delta.changes:
            changes.append(_RawChange(model._meta.get_field(change.field), change.old, change.new))
    else:
        source = before if kind == "deleted" and before is not None else record
        for tracked in type(record).tracked_fields:
            if not tracked.editable or tracked.primary_key:
                continue
            value = tracked.value_from_object(source)
            if value in (None, "", [], ()) or value is False:
                continue
            model_field = model._meta.get_field(tracked.name)
            old, new = (value, None) if kind == "deleted" else (None, value)
            changes.append(_RawChange(model_field, old, new))
    for m2m_field in m2m_fields:
        targets = m2m[(type(record), m2m_field.name)]
        old = targets.get(before.history_id, []) if before is not None else []
        new = targets.get(record.history_id, []) if kind != "deleted" else []
        if sorted(old) != sorted(new):
            changes.append(_RawChange(m2m_field, old, new, related=m2m_field.related_model))
    for change in changes:
        related = change.related or (
            change.field.related_model if isinstance(change.field, models.ForeignKey) else None
        )
        change.related = related
        if related is not None:
            for value in (change.old, change.new):
                for pk in value if isinstance(value, list) else [value]:
                    labels.want(related, pk)
    if model is Operation:
        labels.want(Operation._meta.get_field("service").related_model, record.service_id)
        labels.want(Processor, record.processor_id)
    changes.sort(key=lambda change: _field_position(model, change.field.name))
    return changes


def _field_position(model: type, name: str) -> int:
    names = [model_field.name for model_field in model._meta.get_fields()]
    return names.index(name) if name in names else len(names)


def _display(model_field: models.Field, value: Any, labels: _RelatedLabels, related: type | None) -> str:
    """A value as a person reads it: choice labels, related objects' names, yes/no, ISO dates."""
    if value is None or value == "":
        return ""
    if related is not None:
        if isinstance(value, list):
            return ", ".join(labels.label(related, pk) for pk in value)
        return labels.label(related, value)
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if isinstance(value, list | tuple):
        return ", ".join(_display(model_field, item, labels, None) for item in value)
    if hasattr(value, "code") and hasattr(value, "name"):
        return str(value.name or value.code)  # a Country
    if model_field.flatchoices:
        return str(dict(model_field.flatchoices).get(value, value))
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def _json_value(value: Any) -> Any:
    """A value fit for JSON: history keeps some values as objects (dates, countries, lists of countries)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    code = getattr(value, "code", None)
    if isinstance(code, str):
        return code  # a Country
    try:
        # Lists, tuples and django-countries' multiple-country descriptor.
        return [_json_value(item) for item in value]
    except TypeError:
        return str(value)


def _object_label(record: Any, labels: _RelatedLabels) -> str:
    """How the object was called at the time of the row (no query: from the row or the batched names)."""
    if record.instance_type is Operation:
        service = labels.label(Operation._meta.get_field("service").related_model, record.service_id)
        return f"{service} → {labels.label(Processor, record.processor_id)}"
    for name in ("name_zh", "name_en", "text", "name", "code"):
        value = getattr(record, name, "")
        if value:
            return str(value)
    return f"#{record.id}"


def history_model(model: type[models.Model]) -> type[models.Model]:
    """The historical model of a register model (e.g. for read-only admin or API views)."""
    return get_history_model_for_model(model)
