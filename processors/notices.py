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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

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


@dataclass
class DeletionNotice:
    """The recipients that hold any of the categories and must be told to delete them.

    Every recipient comes with what it holds, whether a flow is active and how to reach it; the
    services, relationships and operations through which it holds them are read for the recipients
    shown (``with_details``): a category every row sends names every recipient of the register, and a
    page shows fifty of them."""

    categories: list[DataCategory]
    controller: Controller | None
    recipients: list[NoticeRecipient]
    include_retired: bool = True
    generated_on: datetime.date = field(default_factory=timezone.localdate)

    @property
    def without_contact(self) -> list[NoticeRecipient]:
        """Recipients that cannot be told until a contact is found."""
        return [recipient for recipient in self.recipients if not recipient.has_contact]

    def with_details(self, recipients: list[NoticeRecipient] | None = None) -> list[NoticeRecipient]:
        """The recipients (every one by default) with their services, relationships and operations."""
        recipients = self.recipients if recipients is None else recipients
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
    subtree: QuerySet[DataCategory], controller: Controller | None, include_retired: bool
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
    active; only processors and categories become model objects. Services and operations are read per
    recipient shown (``DeletionNotice.with_details``)."""
    resolved = resolve_categories(categories)
    subtree = DataCategory.objects.filter(selectors.category_subtree_q(resolved)).values("pk")
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
    # register, so it is kept per revision (register_cache, as the dashboard's figures are).
    name = "notice-held:{}:{}:{}".format(
        controller.pk if controller is not None else "all",
        int(include_retired),
        ",".join(sorted(category.code for category in resolved)),
    )
    pairs = RegisterFigures("notices").get(name, lambda: list(aggregate))
    active_by: dict[int, bool] = {}
    held_by: dict[int, set[int]] = {}
    for processor_id, category_id, active in pairs:
        active_by[processor_id] = active_by.get(processor_id, False) or bool(active)
        held_by.setdefault(processor_id, set()).add(category_id)
    processors = Processor.objects.only(*NOTICE_FIELDS).in_bulk(active_by)
    # The members of the groups among them, in one query: a prefetch would build a queryset for each of
    # the (thousands of) processors, groups or not.
    members_of: dict[int, list[Processor]] = {}
    ids = list(processors)
    for start in range(0, max(len(ids), 1), BATCH):
        members = (
            Processor.objects.only(*NOTICE_FIELDS)
            .filter(member_of__in=ids[start : start + BATCH])
            .order_by("name_key", "pk")
        )
        for member in members:
            if processors[member.member_of_id].kind == Processor.Kind.GROUP:
                members_of.setdefault(member.member_of_id, []).append(member)
    held_categories = DataCategory.objects.in_bulk(set().union(*held_by.values()))
    loader = functools.partial(_add_details, _holding_operations(subtree, controller, include_retired))
    recipients: dict[int, NoticeRecipient] = {}
    for processor_id, active in active_by.items():
        processor = processors[processor_id]
        members = members_of.get(processor_id, [])
        for target in members or [processor]:
            recipient = recipients.setdefault(target.pk, NoticeRecipient(target, loader=loader))
            if members:
                recipient.groups[processor.pk] = processor
            else:
                recipient.direct = True
            for category_id in held_by.get(processor_id, ()):
                recipient.categories.setdefault(category_id, held_categories[category_id])
            recipient.active = recipient.active or bool(active)
    ordered = sorted(
        recipients.values(), key=lambda recipient: (recipient.processor.name_key, recipient.processor.pk)
    )
    for recipient in ordered:
        recipient.categories = dict(sorted(recipient.categories.items(), key=lambda pair: pair[1].code))
        recipient.groups = dict(sorted(recipient.groups.items(), key=lambda pair: pair[1].name_key))
    return DeletionNotice(
        categories=resolved,
        controller=controller,
        recipients=ordered,
        include_retired=include_retired,
    )


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
