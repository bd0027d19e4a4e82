"""Deletion notices: who holds these categories of data and must be told to delete them.

When personal information must be deleted (PIPL Art. 47: purpose met, service ended, consent withdrawn,
unlawful processing), the recipients that received it are told to delete it too: trustees under PIPL
Art. 21, other recipients under GB/T 35273-2020 §8.3. ``deletion_notice`` lists them with how to reach
them, what they hold and through which services; ``deletion_notice_csv`` writes the list for a mailing.

Decisions:
- Categories are named as people write them (a code, a Chinese or English name, or an alias) and
  resolved by the one resolver (``taxonomy.categories_resolve``), so they include their descendants
  (``identity`` is every identity document) and mean what they mean in the filters and the importer.
- Retired operations count by default: a recipient that received data before a flow stopped may still
  hold it. ``include_retired=False`` limits the notice to active flows.
- A group recipient is expanded to its members, each told separately; a group without recorded members
  is listed as itself.
"""

import csv
import datetime
import functools
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

from django.db.models import Case, Max, QuerySet, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from processors import selectors, taxonomy
from processors.models import (
    Controller,
    DataCategory,
    DataItem,
    Operation,
    OperationStatus,
    Processor,
    Relationship,
    Service,
)
from processors.register_cache import RegisterFigures
from processors.spreadsheets.safety import neutralise

CSV_ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")
# Processors named in one query's parameters (their members, a page's operations).
BATCH = 1000
# What a notice, its letters and its CSV read of a recipient: a notice for 姓名 loads every processor
# of the register, and the other columns (dates above all) were a fifth of its time.
NOTICE_FIELDS = (
    "id", "name_zh", "name_en", "name_key", "kind", "member_of_id",
    "contact_phone", "contact_email", "website", "address", "country",
)  # fmt: skip


class NoticeError(ValueError):
    """Categories that cannot be resolved; ``suggestions`` maps each unknown value to likely ones."""

    def __init__(self, message: str, suggestions: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestions = suggestions or {}


@dataclass
class NoticeDetails:
    """Through which services, relationships and operations a recipient holds the data."""

    services: dict[int, Service] = field(default_factory=dict)
    relationships: list[str] = field(default_factory=list)
    operations: list[int] = field(default_factory=list)


@dataclass
class NoticeRecipient:
    """One organisation to tell, with what it holds and how it got it.

    Its ``details`` (services, relationships, operations) are read when first asked for, by the notice's
    ``loader``; a page reads those of all its recipients at once (``DeletionNotice.with_details``)."""

    processor: Processor
    groups: dict[int, Processor] = field(default_factory=dict)  # the groups it receives through
    direct: bool = False  # it is also named on its own
    categories: dict[int, DataCategory] = field(default_factory=dict)
    active: bool = False  # at least one of its flows is active
    details: NoticeDetails | None = field(default=None, repr=False)
    loader: Callable[[list["NoticeRecipient"]], None] | None = field(default=None, repr=False, compare=False)

    def read_details(self) -> NoticeDetails:
        if self.details is None:
            if self.loader is not None:
                self.loader([self])
            if self.details is None:
                self.details = NoticeDetails()
        return self.details

    @property
    def services(self) -> dict[int, Service]:
        return self.read_details().services

    @property
    def relationships(self) -> list[str]:
        return self.read_details().relationships

    @property
    def operations(self) -> list[int]:
        return self.read_details().operations

    @property
    def name(self) -> str:
        return self.processor.primary_name

    @property
    def has_contact(self) -> bool:
        return bool(self.processor.contact_phone or self.processor.contact_email)

    def to_dict(self) -> dict[str, Any]:
        processor = self.processor
        return {
            "processor": {
                "id": processor.pk,
                "name_zh": processor.name_zh,
                "name_en": processor.name_en,
                "contact_phone": processor.contact_phone,
                "contact_email": processor.contact_email,
                "website": processor.website,
                "address": processor.address,
                "country": processor.country.code if processor.country else "",
            },
            "groups": [{"id": group.pk, "name": group.primary_name} for group in self.groups.values()],
            "direct": self.direct,
            "has_contact": self.has_contact,
            "categories": [
                {
                    "code": category.code,
                    "name_zh": category.name_zh,
                    "name_en": category.name_en,
                    "sensitive": category.sensitive,
                }
                for category in self.categories.values()
            ],
            "services": [
                {"id": service.pk, "name": service.name, "name_en": service.name_en}
                for service in self.services.values()
            ],
            "relationships": self.relationships,
            "operations": self.operations,
            "active": self.active,
        }


class NoticeEntry(NamedTuple):
    """One recipient of a notice as the cache keeps it: ids and flags, no model objects (a notice for
    姓名 names every recipient of the register; a page makes objects of fifty of them)."""

    processor_id: int
    group_ids: tuple[int, ...]  # the groups it receives through, in name order
    direct: bool  # it is also named on its own
    category_ids: tuple[int, ...]  # what it holds, in code order
    active: bool  # at least one of its flows is active
    has_contact: bool


class NoticeRecipients(Sequence):
    """The recipients of a notice in reading order, made into ``NoticeRecipient`` objects only for the
    part that is read: a page's slice, one recipient, or every one in batches (the CSV)."""

    def __init__(self, entries: list[NoticeEntry], notice: "DeletionNotice") -> None:
        self.entries = entries
        self.notice = notice

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.notice.recipients_of(self.entries[index])
        return self.notice.recipients_of([self.entries[index]])[0]

    def __iter__(self):
        for start in range(0, len(self.entries), BATCH):
            yield from self.notice.recipients_of(self.entries[start : start + BATCH])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass
class DeletionNotice:
    """The recipients that hold any of the categories and must be told to delete them.

    Every recipient comes with what it holds, whether a flow is active and how to reach it; the
    services, relationships and operations through which it holds them are read for the recipients
    shown (``with_details``): a category every row sends names every recipient of the register, and a
    page shows fifty of them."""

    categories: list[DataCategory]
    controller: Controller | None
    entries: list[NoticeEntry]
    held: dict[int, DataCategory] = field(default_factory=dict)  # what the entries hold, by id
    include_retired: bool = True
    generated_on: datetime.date = field(default_factory=timezone.localdate)
    loader: Callable[[list[NoticeRecipient]], None] | None = field(default=None, repr=False, compare=False)

    @property
    def recipients(self) -> NoticeRecipients:
        return NoticeRecipients(self.entries, self)

    @property
    def without_contact(self) -> NoticeRecipients:
        """Recipients that cannot be told until a contact is found."""
        return NoticeRecipients([entry for entry in self.entries if not entry.has_contact], self)

    def held_codes(self) -> dict[int, list[str]]:
        """Per recipient (processor id), the sorted codes of what it holds (as letters record them)."""
        held = self.held
        return {
            entry.processor_id: sorted(held[pk].code for pk in entry.category_ids) for entry in self.entries
        }

    def recipient(self, processor_id: int) -> NoticeRecipient | None:
        """The recipient of this processor id, with its details; ``None`` when it is not told."""
        for entry in self.entries:
            if entry.processor_id == processor_id:
                return self.with_details(self.recipients_of([entry]))[0]
        return None

    def recipients_of(self, entries: list[NoticeEntry]) -> list[NoticeRecipient]:
        """These entries as recipient objects: their processors and groups read in one query."""
        wanted = {pk for entry in entries for pk in (entry.processor_id, *entry.group_ids)}
        processors = Processor.objects.only(*NOTICE_FIELDS).in_bulk(wanted) if wanted else {}
        held = self.held
        return [
            NoticeRecipient(
                processors[entry.processor_id],
                groups={pk: processors[pk] for pk in entry.group_ids},
                direct=entry.direct,
                categories={pk: held[pk] for pk in entry.category_ids},
                active=entry.active,
                loader=self.loader,
            )
            for entry in entries
        ]

    def with_details(self, recipients: list[NoticeRecipient] | None = None) -> list[NoticeRecipient]:
        """The recipients (every one by default) with their services, relationships and operations."""
        recipients = list(self.recipients) if recipients is None else list(recipients)
        pending = [recipient for recipient in recipients if recipient.details is None]
        # In batches: each is one query with its processors' ids as parameters (SQLite takes 32,766).
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            if batch[0].loader is not None:
                batch[0].loader(batch)
        return recipients

    def to_dict(self, recipients: list | None = None) -> dict[str, Any]:
        """The notice as JSON-serialisable data (for the API): every recipient, or the given ones (a page)."""
        recipients = self.with_details(recipients)
        return {
            "categories": [
                {"code": category.code, "name_zh": category.name_zh, "name_en": category.name_en}
                for category in self.categories
            ],
            "controller": self.controller.code if self.controller is not None else None,
            "include_retired": self.include_retired,
            "generated_on": self.generated_on.isoformat(),
            "recipients": [recipient.to_dict() for recipient in recipients],
            "without_contact": len(self.without_contact),
        }


def resolve_categories(values: Iterable[str | DataCategory]) -> list[DataCategory]:
    """Categories from codes, names or aliases (or categories); NoticeError names the unknown ones."""
    try:
        resolved = taxonomy.categories_resolve(values)
    except taxonomy.UnknownCategory as unknown:
        raise NoticeError(
            str(_("Unknown data category: %(values)s.")) % {"values": ", ".join(unknown.suggestions)},
            unknown.suggestions,
        ) from None
    if not resolved:
        raise NoticeError(str(_("Name at least one data category.")))
    return resolved


def _holding_operations(
    subtree: list[int], controller: Controller | None, include_retired: bool
) -> QuerySet[Operation]:
    """The operations sending an item of these categories, for the recipients they are filtered to
    (``processor_id__in``): joined to their items, since a page reads a few recipients' operations, and
    an ``IN`` or ``EXISTS`` over the items made PostgreSQL hash every item of the category."""
    operations = Operation.objects.filter(data_items__category__in=subtree).distinct()
    if controller is not None:
        operations = operations.filter(service__controller=controller)
    if not include_retired:
        operations = operations.filter(status=OperationStatus.ACTIVE)
    return operations.order_by("processor__name_key", "service__name", "pk")


def deletion_notice(
    categories: Iterable[str | DataCategory],
    controller: Controller | None = None,
    *,
    include_retired: bool = True,
) -> DeletionNotice:
    """The recipients holding any of these categories (descendants included), group members expanded.

    A category every row sends (姓名) is held through every operation of the register, so nothing here
    reads one row per operation: the recipients come from one aggregate of the held items, driven from
    the items' (category, operation) index, grouped by (processor, category) with whether a flow is
    active. What is kept (per register revision) is a list of ``NoticeEntry`` values; the processors and
    categories of the recipients read become model objects, and their services and operations are read
    for the recipients shown (``DeletionNotice.with_details``)."""
    resolved = resolve_categories(categories)
    # The ids, not a subquery: the planner then sees how many items each holds, and drives a page's
    # operations from its recipients instead of looping over every item of 姓名 (114 → 25 ms).
    subtree = list(
        DataCategory.objects.filter(selectors.category_subtree_q(resolved)).values_list("pk", flat=True)
    )
    held = DataItem.objects.filter(category__in=subtree)
    if controller is not None:
        held = held.filter(operation__service__controller=controller)
    if not include_retired:
        held = held.filter(operation__status=OperationStatus.ACTIVE)
    active_flow = Case(When(operation__status=OperationStatus.ACTIVE, then=Value(1)), default=Value(0))
    # order_by(): the model's ordering would otherwise join the GROUP BY and make it one row per item.
    aggregate = (
        held.order_by()
        .values("operation__processor_id", "category_id")
        .annotate(active=Max(active_flow))
        .values_list("operation__processor_id", "category_id", "active")
    )
    # The aggregate reads every item of the categories (all of them for 姓名); it changes only with the
    # register, so the recipients made of it are kept per revision (register_cache, as the dashboard's
    # figures are).
    name = "notice-held:{}:{}:{}".format(
        controller.pk if controller is not None else "all",
        int(include_retired),
        ",".join(sorted(category.code for category in resolved)),
    )
    entries, held_categories = RegisterFigures("notices").get(name, lambda: _notice_entries(aggregate))
    return DeletionNotice(
        categories=resolved,
        controller=controller,
        entries=entries,
        held=held_categories,
        include_retired=include_retired,
        loader=functools.partial(_add_details, _holding_operations(subtree, controller, include_retired)),
    )


def _notice_entries(aggregate: QuerySet) -> tuple[list[NoticeEntry], dict[int, DataCategory]]:
    """The notice's recipients from the (processor, category, active) aggregate, group recipients
    expanded to their members, in reading order (name, id), as plain values; and the categories they
    hold."""
    active_by: dict[int, bool] = {}
    held_by: dict[int, set[int]] = {}
    for processor_id, category_id, active in aggregate:
        active_by[processor_id] = active_by.get(processor_id, False) or bool(active)
        held_by.setdefault(processor_id, set()).add(category_id)
    columns = ("id", "name_key", "kind", "member_of_id", "contact_phone", "contact_email")
    processors: dict[int, tuple] = {}
    ids = list(active_by)
    for start in range(0, len(ids), BATCH):
        for row in Processor.objects.filter(pk__in=ids[start : start + BATCH]).values_list(*columns):
            processors[row[0]] = row
    # The members of the groups among them, in one query per batch: a prefetch would build a queryset
    # for each of the (thousands of) processors, groups or not.
    members_of: dict[int, list[tuple]] = {}
    for start in range(0, len(ids), BATCH):
        members = Processor.objects.filter(member_of__in=ids[start : start + BATCH]).values_list(*columns)
        for member in members:
            if processors[member[3]][2] == Processor.Kind.GROUP:
                members_of.setdefault(member[3], []).append(member)
    held_categories = DataCategory.objects.in_bulk({pk for held in held_by.values() for pk in held})
    names = {pk: row[1] for pk, row in processors.items()}
    gathered: dict[int, dict[str, Any]] = {}
    for processor_id, active in active_by.items():
        members = members_of.get(processor_id, [])
        for target in members or [processors[processor_id]]:
            recipient = gathered.setdefault(
                target[0],
                {"row": target, "groups": set(), "direct": False, "categories": set(), "active": False},
            )
            if members:
                recipient["groups"].add(processor_id)
            else:
                recipient["direct"] = True
            recipient["categories"] |= held_by[processor_id]
            recipient["active"] = recipient["active"] or active
    ordered = sorted(gathered.values(), key=lambda recipient: (recipient["row"][1], recipient["row"][0]))
    entries = [
        NoticeEntry(
            processor_id=recipient["row"][0],
            group_ids=tuple(sorted(recipient["groups"], key=lambda pk: (names[pk], pk))),
            direct=recipient["direct"],
            category_ids=tuple(sorted(recipient["categories"], key=lambda pk: held_categories[pk].code)),
            active=recipient["active"],
            has_contact=bool(recipient["row"][4] or recipient["row"][5]),
        )
        for recipient in ordered
    ]
    return entries, held_categories


def _add_details(holding: QuerySet[Operation], recipients: list[NoticeRecipient]) -> None:
    """Fill in the services, relationships and operations through which each recipient holds the data:
    its own operations and those of the groups it receives through, in the register's order."""
    sources: dict[int, list[NoticeRecipient]] = {}
    for recipient in recipients:
        recipient.details = NoticeDetails()
        for source in ([recipient.processor.pk] if recipient.direct else []) + list(recipient.groups):
            sources.setdefault(source, []).append(recipient)
    flows = list(
        holding.filter(processor_id__in=sources).values_list(
            "pk", "processor_id", "service_id", "relationship"
        )
    )
    services = Service.objects.in_bulk({flow[2] for flow in flows})
    for operation_id, processor_id, service_id, relationship in flows:
        for recipient in sources[processor_id]:
            details = recipient.details
            details.services.setdefault(service_id, services[service_id])
            if relationship and relationship not in details.relationships:
                details.relationships.append(relationship)
            details.operations.append(operation_id)


# --- The CSV --------------------------------------------------------------------------------------

# Document text is chosen by ``lang``, not the interface language, as in the exporters.
CSV_HEADERS = {
    "zh": (
        "接收方",
        "所属名单",
        "联系电话",
        "电子邮箱",
        "网站",
        "国家/地区",
        "个人信息种类",
        "服务/功能",
        "关系",
        "仍在提供",
    ),
    "en": (
        "Recipient",
        "Named in group",
        "Phone",
        "Email",
        "Website",
        "Country/region",
        "Personal information",
        "Services",
        "Relationship",
        "Still provided",
    ),
}
_SEPARATOR = {"zh": "、", "en": "; "}
_YES_NO = {"zh": ("是", "否"), "en": ("yes", "no")}
_LOCALE = {"zh": "zh-hans", "en": "en"}


def _text(obj: Any, lang: str) -> str:
    if lang == "en":
        return obj.name_en or obj.name_zh
    return obj.name_zh or obj.name_en


def deletion_notice_rows(notice: DeletionNotice, lang: str = "zh") -> list[list[str]]:
    """The notice as table rows, header first, one row per recipient."""
    if lang not in CSV_HEADERS:
        raise ValueError(_("Unknown language “%(value)s”; use zh or en.") % {"value": lang})
    separator = _SEPARATOR[lang]
    yes, no = _YES_NO[lang]
    rows = [list(CSV_HEADERS[lang])]
    with translation.override(_LOCALE[lang]):
        for recipient in notice.with_details():
            processor = recipient.processor
            rows.append(
                [
                    _text(processor, lang),
                    separator.join(_text(group, lang) for group in recipient.groups.values()),
                    processor.contact_phone,
                    processor.contact_email,
                    processor.website,
                    str(processor.country.name) if processor.country else "",
                    separator.join(_text(category, lang) for category in recipient.categories.values()),
                    separator.join(
                        (service.name_en or service.name) if lang == "en" else service.name
                        for service in recipient.services.values()
                    ),
                    separator.join(str(Relationship(code).label) for code in recipient.relationships),
                    yes if recipient.active else no,
                ]
            )
    return rows


def deletion_notice_csv(
    notice: DeletionNotice, stream: BinaryIO, lang: str = "zh", *, encoding: str = "utf-8-sig"
) -> int:
    """Write the notice as CSV (every cell formula-safe); returns the number of recipients."""
    if encoding not in CSV_ENCODINGS:
        raise ValueError(_("Unknown encoding “%(value)s”.") % {"value": encoding})
    rows = deletion_notice_rows(notice, lang)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\r\n")
        for row in rows:
            writer.writerow([neutralise(cell) for cell in row])
        text.flush()
    finally:
        text.detach()  # the caller owns the stream
    return len(rows) - 1
