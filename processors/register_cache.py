"""Register-wide figures served from Django's cache, keyed by the reader's scope and a revision stamp.

The dashboard's counts (summary, chart bars, most received categories, findings by severity and rule,
reviews due) are aggregates over the whole visible register: exact, but each a scan of every operation
or data item. They change only when the register does, so they are computed once per **revision** and
served from ``django.core.cache.cache`` (local memory by default, Redis in production) until a write
moves the stamp.

The stamp is one query reading the newest history row (id and date) of each table the figures are drawn from.
Every write path of the register records ``simple_history`` rows (a save, an admin edit, an API PATCH,
a delete, the importer's and the findings refresh's bulk writers, a taxonomy change), so any write
moves it. Today's date is part of the key of what depends on it (reviews due), and the key holds the
reader's scope (the controllers they may see, or "all") and the language (labels are translated).

Sequence ids are allocated at insert, not at commit: two writers committing out of order could leave
a figure computed between their commits under the newer stamp. ``TIMEOUT`` bounds how long such a
figure can outlive the race (and how long an entry stays in the cache at all).
"""

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection
from django.utils import timezone, translation

from processors import selectors
from processors.models import Controller, DataCategory, DataItem, Finding, Operation, Processor, Service

T = TypeVar("T")

# Seconds a cached figure lives at most (see the module's note on out-of-order commits).
TIMEOUT = 300
KEY_PREFIX = "register-figures"

# The models whose rows the cached figures count; each has a history table.
STAMPED_MODELS = (Operation, DataItem, Processor, Service, Controller, Finding, DataCategory)


def _history_tables() -> list[str]:
    return [model.history.model._meta.db_table for model in STAMPED_MODELS]


def register_revision() -> str:
    """The register's revision, in one query: per stamped table, its newest history row's id and date
    (the date too, so that an id used again after its row was deleted still moves the stamp). Each
    part is one descent of the history table's primary key, however large the table."""
    quote = connection.ops.quote_name
    history_id, history_date = quote("history_id"), quote("history_date")
    # Table and column names come from the models' _meta (quoted), never from a request.
    parts = ", ".join(
        f"(SELECT MAX({history_id}) FROM {quote(table)}), "  # noqa: S608
        f"(SELECT {history_date} FROM {quote(table)} ORDER BY {history_id} DESC LIMIT 1)"
        for table in _history_tables()
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {parts}")
        row = cursor.fetchone()
    return ".".join(str(value or 0) for value in row)


def reader_scope(user: Any, controller_ids: list[int] | None = None) -> str:
    """The part of the key that says what the reader may see: "all", or their controllers' ids."""
    if selectors.sees_every_controller(user):
        return "all"
    if controller_ids is None:
        controller_ids = list(selectors.controllers_for(user).values_list("pk", flat=True))
    return "c" + ",".join(str(pk) for pk in sorted(controller_ids))


class RegisterFigures:
    """One reader's view of the cached figures at one revision: ``get(name, compute)`` returns the
    cached value or computes and stores it. The revision is read once, when the object is made."""

    def __init__(self, scope: str, revision: str | None = None) -> None:
        self.scope = scope
        self.revision = register_revision() if revision is None else revision

    def key(self, name: str, *, daily: bool = False) -> str:
        parts = [name, self.scope, self.revision, translation.get_language() or ""]
        if daily:
            parts.append(timezone.localdate().isoformat())
        digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
        return f"{KEY_PREFIX}:{name}:{digest}"

    def get(self, name: str, compute: Callable[[], T], *, daily: bool = False) -> T:
        key = self.key(name, daily=daily)
        value = cache.get(key)
        if value is None:
            value = compute()
            cache.set(key, value, TIMEOUT)
        return value
