"""Bulk writes at the database driver's speed, with their history, for imports of many thousand rows.

``bulk_create`` compiles every value of every row through the ORM (about 10 µs a value) and, on SQLite,
splits into statements of 999 variables; at 100,000 operations with 550,000 data items that is most of
an import's time. What an import creates is plain data it has already validated, so it goes through the
driver's own bulk path instead — one ``executemany`` on SQLite, one ``COPY`` on PostgreSQL — and the
history rows of what it created are copied inside the database (``INSERT … SELECT``) instead of being
built in Python and sent back.

Decisions:
- Ids of new rows are reserved before the insert (``reserve_ids``), so the caller can link rows to them
  without reading anything back: from the sequence on PostgreSQL; on SQLite from the larger of the
  table's ``AUTOINCREMENT`` counter and its largest id, under the write lock taken first, so an id of a
  deleted row (still named by its history) is never given out again.
- Every statement still goes through Django's cursor wrapper, so query counting (``execute_wrapper``,
  ``CaptureQueriesContext``, ``assertNumQueries``) sees a ``COPY`` as one statement like any other.
- SQL is composed only of identifiers from the models' metadata, quoted by the backend (hence the
  ``noqa: S608``); every value is a parameter.
- Writes of objects a caller already holds as model instances (changed operations, deletions) stay with
  the ORM; the helpers at the end of this module write their history rows in one insert as well.
- Only the ORM's simple field classes are passed to the driver as they are; any other field (dates,
  timestamps, countries, JSON) is converted by its own ``get_db_prep_save``, once per distinct value.
"""

import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.db import connection, models
from django.utils import timezone

from processors.history import current_history_state, history_attrs, history_bulk_update

# Field classes whose Python value is what the driver stores (exact classes: a subclass such as
# CountryField converts its value and goes through get_db_prep_save).
DRIVER_NATIVE_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.BigIntegerField,
    models.BooleanField,
    models.CharField,
    models.ForeignKey,
    models.IntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.SmallIntegerField,
    models.TextField,
)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _execute(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` primary keys that no row of ``model`` has or had, for rows inserted in this transaction."""
    if count <= 0:
        return []
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        rows = _execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, model._meta.pk.column, count],
        )
        return [row[0] for row in rows]
    # SQLite, the other database this project runs on. A no-op write takes its write lock, so that no
    # other connection can insert until this transaction ends: the ids read next stay free.
    pk = _quote(model._meta.pk.column)
    _execute(f"UPDATE {_quote(table)} SET {pk} = {pk} WHERE 0")  # noqa: S608
    [(last,)] = _execute(
        f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "  # noqa: S608
        f"COALESCE((SELECT MAX({pk}) FROM {_quote(table)}), 0))",
        [table],
    )
    return list(range(last + 1, last + 1 + count))


def insert_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows of database values in one statement: ``executemany`` (SQLite) or ``COPY`` (PostgreSQL)."""
    if not rows:
        return
    names = ", ".join(_quote(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            placeholders = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {_quote(table)} ({names}) VALUES ({placeholders})"  # noqa: S608
            cursor.executemany(sql, rows)
            return
        sql = f"COPY {_quote(table)} ({names}) FROM STDIN"

        def copy(sql: str, params: Sequence[Sequence[Any]], many: bool, context: dict[str, Any]) -> None:
            with context["cursor"].cursor.copy(sql) as stream:
                for row in params:
                    stream.write_row(row)

        debug_sql = getattr(cursor, "debug_sql", None)  # CursorDebugWrapper: DEBUG or a test capturing
        if debug_sql is None:
            cursor._execute_with_wrappers(sql, rows, many=True, executor=copy)
        else:
            with debug_sql(sql, rows, many=True):
                cursor._execute_with_wrappers(sql, rows, many=True, executor=copy)


class RowBuilder:
    """Database-value tuples for new rows of a model, in the order of ``columns``, from instances or, with
    ``read=operator.itemgetter``, from mappings of every concrete field's attribute name.

    The driver-native columns come first, read in one ``attrgetter`` (``itemgetter``) call; the others
    follow, each converted by its field (auto timestamps are ``now``).
    """

    def __init__(
        self,
        model: type[models.Model],
        *,
        now: Any,
        read: Callable[..., Callable[[Any], Any]] = operator.attrgetter,
    ) -> None:
        fields = list(model._meta.local_concrete_fields)
        self.auto_now = [field for field in fields if _is_auto_timestamp(field)]
        native = [field for field in fields if type(field) in DRIVER_NATIVE_FIELDS]
        converted = [field for field in fields if type(field) not in DRIVER_NATIVE_FIELDS]
        self.columns = [field.column for field in [*native, *converted]]
        self.now = now
        self._native = read(*(field.attname for field in native))
        self._converters = [self._converter(field, read) for field in converted]

    def _converter(
        self, field: models.Field, read: Callable[..., Callable[[Any], Any]]
    ) -> Callable[[Any], Any]:
        if _is_auto_timestamp(field):
            value = field.get_db_prep_save(self.now, connection)
            return lambda obj: value
        value_of = read(field.attname)
        cache: dict[Any, Any] = {}

        def convert(obj: Any) -> Any:
            value = value_of(obj)
            try:
                return cache[_cache_key(value)]
            except KeyError:
                prepared = cache[_cache_key(value)] = field.get_db_prep_save(value, connection)
                return prepared
            except TypeError:  # an unhashable value: converted every time
                return field.get_db_prep_save(value, connection)

        return convert

    def rows(self, objs: Iterable[Any]) -> Iterator[tuple]:
        native, converters = self._native, self._converters
        for obj in objs:
            yield (*native(obj), *[convert(obj) for convert in converters])


def _cache_key(value: Any) -> Any:
    """A value as a key of the converted values: a list or a dict (countries, JSON parameters; most
    findings' are alike) as its items with their types, since ``True == 1`` would give one key to two
    JSON texts. An unhashable item raises ``TypeError``."""
    if isinstance(value, list):
        return (list, *((type(item), item) for item in value))
    if isinstance(value, dict):
        return (dict, *((name, type(item), item) for name, item in value.items()))
    return value


def _is_auto_timestamp(field: models.Field) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


def insert_objects(model: type[models.Model], objs: Sequence[models.Model], *, now: Any) -> None:
    """Insert new instances whose primary keys are set (``reserve_ids``); auto timestamps become ``now``."""
    if not objs:
        return
    builder = RowBuilder(model, now=now)
    for obj in objs:
        for field in builder.auto_now:
            setattr(obj, field.attname, now)
        obj._state.adding = False
        obj._state.db = connection.alias
    insert_rows(model._meta.db_table, builder.columns, list(builder.rows(objs)))


def create_with_history(model: type[models.Model], rows: Sequence[dict[str, Any]], *, now: Any) -> list[int]:
    """New rows, given as their field values by attribute name (the model's defaults for the others),
    and their "created" history rows, at the driver's speed: ids reserved, one insert (``executemany`` /
    ``COPY``), the history rows copied inside the database, stamped with the context. Returns the ids.

    What ``history_bulk_create`` writes, without a model instance a row nor compiling every value of
    every row through the ORM twice (the row and its historical row); a findings refresh creating
    400,000 findings at 100,000 operations spent most of an import there. No signal is sent, as with
    ``bulk_create``. Many-to-many fields are not written (the caller has none).
    """
    if not rows:
        return []
    pks = reserve_ids(model, len(rows))
    pk = model._meta.pk.attname
    defaults = {
        field.attname: field.get_default()
        for field in model._meta.local_concrete_fields
        if not _is_auto_timestamp(field)
    }
    builder = RowBuilder(model, now=now, read=operator.itemgetter)
    complete = ({**defaults, **row, pk: row_pk} for row, row_pk in zip(rows, pks, strict=True))
    insert_rows(model._meta.db_table, builder.columns, list(builder.rows(complete)))
    copy_created_history(model, column=model._meta.pk.column, ids=pks, now=now)
    return pks


def _ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ids as inclusive runs: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for pk in sorted(ids):
        if runs and pk == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], pk)
        else:
            runs.append((pk, pk))
    return runs


def _in_ranges(column: str, ids: Iterable[int]) -> tuple[str, list[int]]:
    runs = _ranges(ids)
    sql = " OR ".join(f"{column} BETWEEN %s AND %s" for _run in runs)
    return f"({sql})", [bound for run in runs for bound in run]


def copy_created_history(
    model: type[models.Model], *, column: str, ids: Iterable[int], now: Any, m2m_fields: Sequence[str] = ()
) -> None:
    """Write the "created" history rows of rows just inserted whose ``column`` is in ``ids``.

    The historical rows are copied from the table inside the database, stamped with the current history
    context (user, channel, import); so are the snapshots of the named many-to-many fields, whose rows
    must already be inserted.
    """
    ids = list(ids)
    if not ids:
        return
    history = model.history.model
    state = current_history_state()
    user = state.user if state is not None else None

    stamps = {
        "history_date": history._meta.get_field("history_date").get_db_prep_save(now, connection),
        "history_user_id": user.pk if getattr(user, "pk", None) is not None else None,
        "history_change_reason": "",
        "history_type": "+",
        **history_attrs(),
    }
    tracked = [field.column for field in history.tracked_fields]
    where, params = _in_ranges(_quote(column), ids)
    target = ", ".join(_quote(name) for name in [*tracked, *stamps])
    source = ", ".join([*(_quote(name) for name in tracked), *(["%s"] * len(stamps))])
    _execute(
        f"INSERT INTO {_quote(history._meta.db_table)} ({target}) "  # noqa: S608
        f"SELECT {source} FROM {_quote(model._meta.db_table)} WHERE {where}",
        [*stamps.values(), *params],
    )
    pk = model._meta.pk.column
    for field_name in m2m_fields:
        m2m_history = getattr(history, field_name).model
        through = getattr(model, field_name).through
        owner = model._meta.get_field(field_name).m2m_field_name() + "_id"
        link_columns = [field.column for field in through._meta.fields]
        # The same range on both sides lets the database find the historical rows by their id index
        # instead of scanning every historical row of the table for each batch.
        where, params = _in_ranges(f"t.{_quote(owner)}", ids)
        history_where, history_params = _in_ranges(f"h.{_quote(pk)}", ids)
        _execute(
            f"INSERT INTO {_quote(m2m_history._meta.db_table)} "  # noqa: S608
            f"({', '.join(_quote(name) for name in [*link_columns, 'history_id'])}) "
            f"SELECT {', '.join(f't.{_quote(name)}' for name in link_columns)}, h.history_id "
            f"FROM {_quote(through._meta.db_table)} t JOIN {_quote(history._meta.db_table)} h "
            f"ON h.{_quote(pk)} = t.{_quote(owner)} AND h.history_type = '+' "
            f"WHERE {where} AND {history_where}",
            [*params, *history_params],
        )


# --- Through the ORM, for the objects a write already holds -------------------------------------


def history_rows(
    model: type[models.Model], objs: Sequence[models.Model], history_type: str
) -> list[models.Model]:
    """Write historical rows (``+``, ``~`` or ``-``) for saved objects in one insert; returns them."""
    if not objs:
        return []
    state = current_history_state()
    user = state.user if state is not None else None
    user_id = user.pk if getattr(user, "pk", None) is not None else None
    history_model = model.history.model
    now = timezone.now()
    attrs = history_attrs()
    tracked = [tracked.attname for tracked in history_model.tracked_fields]
    rows = [
        history_model(
            history_date=now,
            history_user_id=user_id,
            history_change_reason="",
            history_type=history_type,
            **{name: getattr(obj, name) for name in tracked},
            **attrs,
        )
        for obj in objs
    ]
    return history_model.objects.bulk_create(rows)


def history_m2m_rows(
    model: type[models.Model], records: Sequence[models.Model], links: dict[str, dict[int, list]]
) -> None:
    """The many-to-many snapshot of each historical row: ``links[field][object pk]`` = through rows."""
    history_model = model.history.model
    for field_name, by_object in links.items():
        m2m_history = getattr(history_model, field_name).model
        through_fields = [f.attname for f in getattr(model, field_name).through._meta.fields]
        m2m_history.objects.bulk_create(
            [
                m2m_history(history_id=record.pk, **{name: getattr(link, name) for name in through_fields})
                for record in records
                for link in by_object.get(record.id, ())
            ]
        )


def bulk_delete_with_history(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Delete objects in one statement and record each deletion (no per-object signal)."""
    if not objs:
        return
    history_rows(model, objs, "-")
    model._base_manager.filter(pk__in=[obj.pk for obj in objs])._raw_delete(model._base_manager.db)


def bulk_update_fields(
    model: type[models.Model], objs: Sequence[models.Model], fields: Iterable[str]
) -> None:
    """``history_bulk_update`` that also moves ``updated_at`` on (bulk_update skips auto_now)."""
    if not objs:
        return
    fields = set(fields)
    if any(f.name == "updated_at" for f in model._meta.fields):
        now = timezone.now()
        for obj in objs:
            obj.updated_at = now
        fields.add("updated_at")
    history_bulk_update(model, objs, sorted(fields))
