"""The one disclosure-row renderer: every row of a third-party table, wherever it is shown, is made here.

The page, the .xlsx and .csv downloads, a published version (page, files and API) and the change notice
all take their rows from ``RowRenderer``, so they cannot disagree. Its input is an operation's values
(``OperationValues``) and its relations' values; two readers feed it:

- ``rows_from_operations``: the live register, streamed. Operations are read as plain values in chunks
  of ``CHUNK_SIZE`` and their relations loaded per chunk (a constant number of queries per chunk), so a
  100,000-row export does not build a million model instances to read a few of their fields.
- ``rows_from_snapshot``: a frozen snapshot (``disclosure.snapshots``), entry by entry.

What the cells say, in both languages:
- zh prints the published data items verbatim; en prints the categories' English names (an unmapped
  item verbatim). Sensitive items are bold segments (GB/T 35273 Appendix B, or the controller's own
  extra list). An open-ended list ends with 等 / "etc.".
- The recipient cell is name, qualifier, group members and phone, in the shape
  ``cells.parse_recipient`` takes apart, so the Chinese table re-imports.
- Publication marks (``marks=True``) append the countries to a cross-border recipient (``［境外：美国］``);
  a cross-border flow whose countries are not recorded says only ``［境外］``: a dash in place of the
  countries would read as a country nobody named. (The .csv writer stars sensitive items; that is not
  row text, since the .xlsx shows them bold.)
- English lists use "; " because names contain commas ("HK, Macao and Taiwan travel permit").
- The English table uses English names where the register records them; a name or text it can only
  give in Chinese (a service, recipient or member without an English name, an unmapped item, a purpose
  or actions known only as published) is followed by ``CHINESE_ONLY_MARK``, which the page's legend and
  the notes sheet explain, so a reader knows it is the register's gap, not a translation left out.

Document text is chosen by ``lang``, not by the active locale: a Chinese table must carry exactly the
Chinese headers the importer knows, whatever language the user interface speaks.
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db.models import BooleanField, Expression, F, QuerySet
from django.utils import translation
from django.utils.translation import gettext as _
from django_countries import countries

from processors import selectors
from processors.models import DataItem, Operation, Processor
from processors.spreadsheets.cells import OPEN_ENDED_MARKERS, split_list

LANGUAGES = ("zh", "en")
CHUNK_SIZE = 5000

# The iTrus table's headers. The Chinese ones are the importer's (DISCLOSURE_COLUMNS); the English ones
# are for people and not all known to the importer, which the English table does not need (it names
# categories, not the published items).
DISCLOSURE_HEADERS = {
    "zh": ("服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"),
    "en": ("Service/feature", "Recipient", "Personal information processed", "Purpose", "Processing method"),
}
# Files (.xlsx, .csv) add a sixth column after the five published ones: the countries or regions a
# cross-border row goes to, as the page shows them beside the recipient. The Chinese header is one the
# importer reads as where the data is processed, so a re-imported table keeps the countries.
COUNTRIES_HEADER = {"zh": "境外接收方所在国家或地区", "en": "Countries/regions abroad"}
FILE_HEADERS = {lang: (*headers, COUNTRIES_HEADER[lang]) for lang, headers in DISCLOSURE_HEADERS.items()}
SENSITIVE_MARK = "*"

# Separators and brackets per language.
LIST_SEPARATOR = {"zh": "、", "en": "; "}
ACTION_SEPARATOR = {"zh": "、", "en": ", "}
OPEN_ENDED = {"zh": "等", "en": "etc."}
BRACKETS = {"zh": ("（", "）"), "en": (" (", ")")}
CROSS_BORDER_MARK = {"zh": "［境外：{countries}］", "en": " [cross-border: {countries}]"}
CROSS_BORDER_MARK_NO_COUNTRY = {"zh": "［境外］", "en": " [cross-border]"}
COUNTRY_LOCALE = {"zh": "zh-hans", "en": "en"}
# How Chinese publications must name these regions; django-countries' short names would not do.
ZH_REGION_NAMES = {"HK": "中国香港", "MO": "中国澳门", "TW": "中国台湾"}

# What follows a Chinese name or text in the English table when no English one is recorded.
CHINESE_ONLY_MARK = " [Chinese only]"
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Distinct data-item texts whose open-endedness is kept for reuse.
_TEXT_CACHE_SIZE = 50_000


@dataclass(frozen=True)
class Segment:
    """A run of text in a cell; sensitive data items are bold."""

    text: str
    bold: bool = False


@dataclass(frozen=True)
class DisclosureRow:
    """One row of the disclosure table, in one language, before it is written to a file or a page."""

    service_id: int
    service: str
    recipient: str
    data_items: tuple[Segment, ...]
    purpose: str
    actions: str
    processor_id: int
    recipient_name: str
    destinations: tuple[str, ...] = ()
    countries: str = ""  # the destinations as one cell in this language ("" for a domestic row)

    def data_items_text(self, sensitive_mark: str = "") -> str:
        return "".join(segment.text + (sensitive_mark if segment.bold else "") for segment in self.data_items)

    def texts(self, sensitive_mark: str = "") -> list[str]:
        """A file's cells as plain text (sensitive items followed by ``sensitive_mark``): the five
        published columns, then the countries abroad (``FILE_HEADERS``)."""
        return [
            self.service,
            self.recipient,
            self.data_items_text(sensitive_mark),
            self.purpose,
            self.actions,
            self.countries,
        ]


class OperationValues(NamedTuple):
    """What a row needs of an operation, its service and its processor (``OPERATION_COLUMNS`` in order)."""

    operation_id: int | None
    service_id: int
    service_name: str
    service_name_en: str
    controller_id: int | None  # for the controller's extra sensitive categories (None: already applied)
    processor_id: int
    processor_name_zh: str
    processor_name_en: str
    processor_kind: str
    processor_phone: str
    qualifier: str
    cross_border: bool
    destination_countries: Any  # as stored ("US,JP"), or a list of codes
    data_items_text: str
    purpose_text: str
    actions_text: str
    actions_open_ended: bool


# OperationValues as ORM paths, read with one joined ``values_list`` (plain tuples in the same order).
OPERATION_COLUMNS = (
    "pk",
    "service_id",
    "service__name",
    "service__name_en",
    "service__controller_id",
    "processor_id",
    "processor__name_zh",
    "processor__name_en",
    "processor__kind",
    "processor__contact_phone",
    "recipient_qualifier",
    "cross_border",
    "destination_countries",
    "data_items_text",
    "purpose_text",
    "actions_text",
    "actions_open_ended",
)

# What a row needs of a data item, a purpose link and an action link; the operation id first. An item is
# (operation id, text, category id or code or None, the category's sensitivity[, name_zh, name_en]): the
# Chinese table prints the published items verbatim, so it leaves the category names in the database.
_ITEM_COLUMNS = {
    "zh": ("operation_id", "text", "category_id", "category__sensitive"),
    "en": (
        "operation_id",
        "text",
        "category_id",
        "category__sensitive",
        "category__name_zh",
        "category__name_en",
    ),
}
_PURPOSE_COLUMNS = ("operation_id", "purpose__name_zh", "purpose__name_en")
_ACTION_COLUMNS = ("operation_id", "processingaction__name_zh", "processingaction__name_en")


def check_language(lang: str) -> None:
    """Raise ValueError unless ``lang`` is a table language (zh or en)."""
    if lang not in LANGUAGES:
        raise ValueError(_("Unknown language “%(value)s”; use zh or en.") % {"value": lang})


def pick_name(lang: str, name_zh: str, name_en: str) -> str:
    """A name in this language, else in the other one (marked in English, ``english_or_marked``)."""
    if lang == "en":
        return english_or_marked(name_en, name_zh)
    return name_zh or name_en


def english_or_marked(english: str, chinese: str) -> str:
    """The English text, else the Chinese one followed by ``CHINESE_ONLY_MARK`` (a text without Chinese
    characters, such as a Latin brand name, needs no mark)."""
    if english:
        return english
    return chinese + CHINESE_ONLY_MARK if _HAN.search(chinese or "") else chinese


def party_name(party: Mapping[str, Any], lang: str) -> str:
    """The name of a snapshot's controller, processor or member in this language."""
    return pick_name(lang, party.get("name_zh") or "", party.get("name_en") or "")


def country_name(code: str, lang: str) -> str:
    """A country's name as a disclosure table in this language writes it."""
    if lang == "zh" and code in ZH_REGION_NAMES:
        return ZH_REGION_NAMES[code]
    # Overridden per call, not around a row generator, whose caller runs in the user's language.
    with translation.override(COUNTRY_LOCALE[lang]):
        return str(countries.name(code)) or code


def recipient_text(
    name: str,
    *,
    qualifier: str,
    members: Sequence[str],
    phone: str,
    cross_border: bool,
    lang: str,
    destinations: tuple[str, ...],
    marks: bool,
) -> str:
    """Name, qualifier, group members and phone, in the shape ``cells.parse_recipient`` takes apart."""
    opening, closing = BRACKETS[lang]
    text = name
    if qualifier:
        text += f"{opening}{qualifier}{closing}"
    if members:
        text += f"{opening}{LIST_SEPARATOR[lang].join(members)}{closing}"
    if phone:
        text += f" {phone}"
    if marks and cross_border:
        if destinations:
            text += CROSS_BORDER_MARK[lang].format(countries=LIST_SEPARATOR[lang].join(destinations))
        else:
            text += CROSS_BORDER_MARK_NO_COUNTRY[lang]
    return text


def purpose_text(published: str, purposes: Sequence[tuple[Any, str, str]], lang: str) -> str:
    """zh: the published text, else the purposes' names; en: the names, else the text.

    Purposes are (operation id, name_zh, name_en).
    """
    if lang == "zh":
        return published or LIST_SEPARATOR[lang].join(purpose[1] for purpose in purposes)
    return LIST_SEPARATOR[lang].join(purpose[2] for purpose in purposes) or english_or_marked("", published)


def actions_text(published: str, open_ended: bool, actions: Sequence[tuple[Any, str, str]], lang: str) -> str:
    """zh: the published text, else the actions' names; en: the names as a list in a sentence, else the text.

    Actions are (operation id, name_zh, name_en).
    """
    if lang == "zh":
        if published:
            return published
        text = ACTION_SEPARATOR[lang].join(action[1] for action in actions)
        return text + OPEN_ENDED[lang] if text and open_ended else text
    if not actions:
        return english_or_marked("", published)
    # Read as a list in a sentence: "Collect, store, use, etc."
    names = [actions[0][2]] + [lower_first(action[2]) for action in actions[1:]]
    if open_ended:
        names.append(OPEN_ENDED[lang])
    return ACTION_SEPARATOR[lang].join(names)


def lower_first(text: str) -> str:
    """The text with its first character in lower case."""
    return text[:1].lower() + text[1:]


class RowRenderer:
    """Turns an operation's values and its relations' values into DisclosureRows, in one language.

    Values that repeat across rows (country names, list-cell parsing, segments) are computed once per
    renderer and reused; all of them are immutable.
    """

    def __init__(
        self,
        *,
        lang: str = "zh",
        marks: bool = False,
        extra_sensitive: Mapping[int, frozenset[int]] | None = None,
    ) -> None:
        check_language(lang)
        self.lang = lang
        self.marks = marks
        self.extra_sensitive = extra_sensitive or {}
        self.separator = LIST_SEPARATOR[lang]
        self.countries_field = Operation._meta.get_field("destination_countries")
        self.country_names: dict[str, tuple[str, ...]] = {}
        self.open_ended: dict[str, bool] = {}
        self.segments: dict[tuple[str, bool], Segment] = {}

    def row(
        self,
        values: OperationValues | tuple,
        *,
        items: Sequence[tuple],
        purposes: Sequence[tuple[Any, str, str]],
        actions: Sequence[tuple[Any, str, str]],
        members: Sequence[str],
        data_items_open_ended: bool | None = None,
    ) -> DisclosureRow:
        """The row of one operation; ``members`` are a group's member names in this language, by name key.

        ``data_items_open_ended`` is what a snapshot recorded; None reads it from the published text.
        """
        (
            _operation_id,
            service_id,
            service_name,
            service_name_en,
            controller_id,
            processor_id,
            processor_zh,
            processor_en,
            kind,
            phone,
            qualifier,
            cross_border,
            destination_countries,
            data_items_text,
            published_purposes,
            published_actions,
            actions_open_ended,
        ) = values
        lang = self.lang
        destinations = self.destinations(destination_countries) if cross_border else ()
        recipient_name = pick_name(lang, processor_zh, processor_en)
        return DisclosureRow(
            service_id=service_id,
            service=english_or_marked(service_name_en, service_name) if lang == "en" else service_name,
            recipient=recipient_text(
                recipient_name,
                qualifier=qualifier,
                members=members if kind == Processor.Kind.GROUP else (),
                phone=phone,
                cross_border=cross_border,
                lang=lang,
                destinations=destinations,
                marks=self.marks,
            ),
            data_items=self.data_item_segments(
                items,
                data_items_text,
                self.extra_sensitive.get(controller_id, frozenset()),
                data_items_open_ended,
            ),
            purpose=purpose_text(published_purposes, purposes, lang),
            actions=actions_text(published_actions, actions_open_ended, actions, lang),
            processor_id=processor_id,
            recipient_name=recipient_name,
            destinations=destinations,
            countries=self.separator.join(destinations),
        )

    def entry_row(self, entry: Mapping[str, Any]) -> DisclosureRow:
        """The row of a snapshot entry (``snapshots.snapshot_from_operations``), as of its snapshot."""
        service = entry["service"]
        processor = entry["processor"]
        values = OperationValues(
            operation_id=entry.get("operation_id"),
            service_id=service["id"],
            service_name=service["name"],
            service_name_en=service["name_en"],
            controller_id=None,  # the entry's sensitivity already includes the controller's own list
            processor_id=processor["id"],
            processor_name_zh=processor["name_zh"],
            processor_name_en=processor["name_en"],
            processor_kind=processor["kind"],
            processor_phone=processor["contact_phone"],
            qualifier=entry["qualifier"],
            cross_border=entry["cross_border"],
            destination_countries=entry["destination_countries"],
            data_items_text=entry["data_items_text"],
            purpose_text=entry["purpose_text"],
            actions_text=entry["actions_text"],
            actions_open_ended=entry["actions_open_ended"],
        )
        return self.row(
            values,
            items=[
                (None, item["text"], item["category"], item["sensitive"], item["name_zh"], item["name_en"])
                for item in entry["data_items"]
            ],
            purposes=[(None, term["name_zh"], term["name_en"]) for term in entry["purposes"]],
            actions=[(None, term["name_zh"], term["name_en"]) for term in entry["actions"]],
            members=[party_name(member, self.lang) for member in processor["members"]],
            data_items_open_ended=entry["data_items_open_ended"],
        )

    def destinations(self, stored: Any) -> tuple[str, ...]:
        """Country names of a stored destination list (or a list of codes), as the model field reads it."""
        key = stored if isinstance(stored, str) else ",".join(stored or ())
        names = self.country_names.get(key)
        if names is None:
            descriptor = Operation.destination_countries
            codes = [
                descriptor.country(code).code for code in self.countries_field.get_clean_value(stored) or ()
            ]
            names = self.country_names[key] = tuple(country_name(code, self.lang) for code in codes)
        return names

    def segment(self, text: str, bold: bool = False) -> Segment:
        segment = self.segments.get((text, bold))
        if segment is None:
            segment = self.segments[(text, bold)] = Segment(text, bold)
        return segment

    def data_item_segments(
        self,
        items: Sequence[tuple],
        data_items_text: str,
        extra_sensitive: frozenset[int],
        open_ended: bool | None = None,
    ) -> tuple[Segment, ...]:
        """zh: the published items verbatim; en: the categories' English names, unmapped items verbatim."""
        lang = self.lang
        entries: dict[Any, list] = {}  # identity -> [text, sensitive], in item order
        for _operation_id, text, category, category_sensitive, *names in items:
            mapped = category is not None
            sensitive = mapped and (category_sensitive or category in extra_sensitive)
            if lang == "zh":
                # A composite item has one row per category at the same position and text.
                key = ("text", text)
            elif mapped:
                name_zh, name_en = names
                key, text = ("category", category), name_en or name_zh
            else:
                key, text = ("text", text), english_or_marked("", text)
            entry = entries.setdefault(key, [text, False])
            entry[1] = entry[1] or sensitive
        if not entries:
            if not data_items_text:
                return ()
            return (
                self.segment(english_or_marked("", data_items_text) if lang == "en" else data_items_text),
            )
        separator = self.segment(self.separator)
        segments: list[Segment] = []
        for text, sensitive in entries.values():
            if segments:
                segments.append(separator)
            segments.append(self.segment(text, bool(sensitive)))
        if open_ended is None:
            # Only a text with a marker in it can end with one: splitting every other text would be wasted.
            open_ended = any(
                marker in data_items_text for marker in OPEN_ENDED_MARKERS
            ) and self.text_open_ended(data_items_text)
        if open_ended:
            segments.append(
                self.segment(OPEN_ENDED[lang] if lang == "zh" else self.separator + OPEN_ENDED[lang])
            )
        return tuple(segments)

    def text_open_ended(self, text: str) -> bool:
        """Whether a published list ends with 等 or "etc." (``cells.split_list``), cached per text."""
        open_ended = self.open_ended.get(text)
        if open_ended is None:
            if len(self.open_ended) >= _TEXT_CACHE_SIZE:
                self.open_ended.clear()  # memory stays flat on a table of all-different texts
            open_ended = self.open_ended[text] = split_list(text).open_ended
        return open_ended


def rows_from_snapshot(
    snapshot: Mapping[str, Any], lang: str = "zh", *, marks: bool = False
) -> list[DisclosureRow]:
    """The disclosure table of a snapshot (a published version, the live register), service by service."""
    renderer = RowRenderer(lang=lang, marks=marks)
    return [renderer.entry_row(entry) for entry in snapshot["operations"]]


def disclosure_groups(rows: Iterable[DisclosureRow]) -> list[tuple[str, list[DisclosureRow]]]:
    """Rows grouped under their service, in order (a service's rows are consecutive)."""
    groups: list[tuple[str, list[DisclosureRow]]] = []
    previous = None
    for row in rows:
        if not groups or row.service_id != previous:
            groups.append((row.service, []))
        groups[-1][1].append(row)
        previous = row.service_id
    return groups


# --- Reading the live register --------------------------------------------------------------------


def rows_from_operations(
    operations: QuerySet[Operation], *, lang: str = "zh", marks: bool = False
) -> Iterator[DisclosureRow]:
    """The disclosure table's rows for these operations, service by service, streamed in chunks."""
    renderer = RowRenderer(
        lang=lang, marks=marks, extra_sensitive=selectors.controller_extra_sensitive_category_ids()
    )
    # The selector's order and filters, read as plain values: a 100,000-row export would otherwise build
    # over a million model instances (operations, items, categories, purposes, actions) only to read a
    # few of their fields. The relations come in the same few queries per chunk as the selector's
    # prefetches, in the same order, selected by the chunk's ids passed as one parameter (AmongIds).
    ordered = selectors.operation_disclosure_list(operations).prefetch_related(None)
    records = ordered.values_list(*OPERATION_COLUMNS).iterator(chunk_size=CHUNK_SIZE)
    chunk: list[tuple] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == CHUNK_SIZE:
            yield from _chunk_rows(renderer, chunk)
            chunk = []
    if chunk:
        yield from _chunk_rows(renderer, chunk)


def _chunk_rows(renderer: RowRenderer, chunk: list[tuple]) -> Iterator[DisclosureRow]:
    """The rows of a chunk of operation values, their relations loaded by id in 4 queries."""
    ids = [record[0] for record in chunk]
    relations = (
        DataItem.objects.filter(AmongIds("operation_id", ids))
        .order_by("position", "id")
        .values_list(*_ITEM_COLUMNS[renderer.lang]),
        Operation.purposes.through.objects.filter(AmongIds("operation_id", ids))
        .order_by("purpose__position", "purpose__code")
        .values_list(*_PURPOSE_COLUMNS),
        Operation.actions.through.objects.filter(AmongIds("operation_id", ids))
        .order_by("processingaction__position", "processingaction__code")
        .values_list(*_ACTION_COLUMNS),
    )
    items, purposes, actions = ({}, {}, {})
    for values, by_operation in zip(relations, (items, purposes, actions), strict=True):
        for value in values:
            by_operation.setdefault(value[0], []).append(value)
    members = _group_members(
        Processor.objects.filter(AmongIds("member_of_id", sorted({record[5] for record in chunk}))),
        renderer.lang,
    )
    for record in chunk:
        yield renderer.row(
            record,
            items=items.get(record[0], ()),
            purposes=purposes.get(record[0], ()),
            actions=actions.get(record[0], ()),
            members=members.get(record[5], ()),
        )


def _group_members(processors: QuerySet[Processor], lang: str) -> dict[int, list[str]]:
    """Group id -> its members' names in this language, by name key."""
    members: dict[int, list[str]] = {}
    for group_id, name_zh, name_en in processors.order_by("name_key").values_list(
        "member_of_id", "name_zh", "name_en"
    ):
        members.setdefault(group_id, []).append(pick_name(lang, name_zh, name_en))
    return members


class AmongIds(Expression):
    """``column IN ids`` with the ids as one parameter (an array, a JSON list), not one parameter each.

    ``operation_id__in=<2,000 ids>`` costs more than the rows it selects: Django prepares every
    parameter, psycopg splices each into the statement, and the database parses and plans a 2,000-term
    list. Measured on 100,000 operations with 549,060 data items, loading the items per chunk took 1.8 s
    (SQLite) and 4.0 s (PostgreSQL) with IN lists, 1.4 s and 1.45 s with one parameter; one query for the
    whole export, sorted like the operations and merged in Python, took 2.75 s and 1.75 s (the sort).
    Other databases get the IN list.
    """

    output_field = BooleanField()

    def __init__(self, column: str, ids: Sequence[int]) -> None:
        super().__init__()
        self.column = F(column)
        self.ids = list(ids)

    def resolve_expression(self, *args: Any, **kwargs: Any) -> "AmongIds":
        resolved = self.copy()
        resolved.column = self.column.resolve_expression(*args, **kwargs)
        return resolved

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple]:
        # The column is the compiler's quoted name and the ids are parameters: no text is spliced in.
        column, params = compiler.compile(self.column)
        if connection.vendor == "postgresql":
            return f"{column} = ANY(%s)", (*params, self.ids)
        if connection.vendor == "sqlite":
            return f"{column} IN (SELECT value FROM json_each(%s))", (*params, json.dumps(self.ids))  # noqa: S608
        return f"{column} IN ({', '.join(['%s'] * len(self.ids))})", (*params, *self.ids)
