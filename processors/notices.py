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
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.db.models import Prefetch, QuerySet
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
from processors.spreadsheets.safety import neutralise

CSV_ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")


class NoticeError(ValueError):
    """Categories that cannot be resolved; ``suggestions`` maps each unknown value to likely ones."""

    def __init__(self, message: str, suggestions: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.suggestions = suggestions or {}


@dataclass
class NoticeRecipient:
    """One organisation to tell, with what it holds and how it got it."""

    processor: Processor
    groups: dict[int, Processor] = field(default_factory=dict)  # the groups it receives through
    direct: bool = False  # it is also named on its own
    categories: dict[int, DataCategory] = field(default_factory=dict)
    services: dict[int, Service] = field(default_factory=dict)
    relationships: list[str] = field(default_factory=list)
    operations: list[int] = field(default_factory=list)
    active: bool = False  # at least one of its flows is active

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
    """The recipients that hold any of the categories and must be told to delete them."""

    categories: list[DataCategory]
    controller: Controller | None
    recipients: list[NoticeRecipient]
    include_retired: bool = True
    generated_on: datetime.date = field(default_factory=timezone.localdate)

    @property
    def without_contact(self) -> list[NoticeRecipient]:
        """Recipients that cannot be told until a contact is found."""
        return [recipient for recipient in self.recipients if not recipient.has_contact]

    def to_dict(self, recipients: list | None = None) -> dict[str, Any]:
        """The notice as JSON-serialisable data (for the API): every recipient, or the given ones (a page)."""
        recipients = self.recipients if recipients is None else recipients
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
    categories: list[DataCategory], controller: Controller | None, include_retired: bool
) -> QuerySet[Operation]:
    operations = Operation.objects.all()
    if controller is not None:
        operations = operations.filter(service__controller=controller)
    if not include_retired:
        operations = operations.filter(status=OperationStatus.ACTIVE)
    return selectors.operations_with_categories(operations, categories).order_by(
        "processor__name_key", "service__name", "pk"
    )


def deletion_notice(
    categories: Iterable[str | DataCategory],
    controller: Controller | None = None,
    *,
    include_retired: bool = True,
) -> DeletionNotice:
    """The recipients holding any of these categories (descendants included), group members expanded.

    A category every row sends (姓名) is held through every operation of the register, so operations are
    read as value tuples and the categories each recipient holds as ``DISTINCT`` pairs: only the
    processors, services and categories named in the notice become model objects."""
    resolved = resolve_categories(categories)
    holding = _holding_operations(resolved, controller, include_retired)
    flows = list(holding.values_list("pk", "processor_id", "service_id", "relationship", "status"))
    # The items of the holding operations in these categories: the operations' own conditions on the
    # items' join, not a second pass over the holding operations.
    held = DataItem.objects.filter(selectors.category_subtree_q(resolved, prefix="category__"))
    if controller is not None:
        held = held.filter(operation__service__controller=controller)
    if not include_retired:
        held = held.filter(operation__status=OperationStatus.ACTIVE)
    held_by: dict[int, set[int]] = {}
    # order_by(): the model's ordering would otherwise join the DISTINCT and make it one row per item.
    pairs = held.values_list("operation__processor_id", "category_id").order_by().distinct()
    for processor_id, category_id in pairs:
        held_by.setdefault(processor_id, set()).add(category_id)
    processors = Processor.objects.prefetch_related(
        Prefetch("members", queryset=Processor.objects.order_by("name_key"))
    ).in_bulk({flow[1] for flow in flows})
    services = Service.objects.in_bulk({flow[2] for flow in flows})
    held_categories = DataCategory.objects.in_bulk(set().union(*held_by.values()))
    recipients: dict[int, NoticeRecipient] = {}
    for operation_id, processor_id, service_id, relationship, status in flows:
        processor = processors[processor_id]
        members = list(processor.members.all()) if processor.kind == Processor.Kind.GROUP else []
        for target in members or [processor]:
            recipient = recipients.setdefault(target.pk, NoticeRecipient(target))
            if members:
                recipient.groups.setdefault(processor.pk, processor)
            else:
                recipient.direct = True
            for category_id in held_by.get(processor_id, ()):
                recipient.categories.setdefault(category_id, held_categories[category_id])
            recipient.services.setdefault(service_id, services[service_id])
            if relationship and relationship not in recipient.relationships:
                recipient.relationships.append(relationship)
            recipient.operations.append(operation_id)
            recipient.active = recipient.active or status == OperationStatus.ACTIVE
    ordered = sorted(recipients.values(), key=lambda recipient: recipient.processor.name_key)
    for recipient in ordered:
        recipient.categories = dict(sorted(recipient.categories.items(), key=lambda pair: pair[1].code))
    return DeletionNotice(
        categories=resolved, controller=controller, recipients=ordered, include_retired=include_retired
    )


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
        for recipient in notice.recipients:
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
