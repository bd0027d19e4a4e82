"""Parse: the rows of a disclosure table, as the readers give them, into fields, recipients, items and terms.

The first stage of the disclosure import (``importer`` reads → parse → ``plan`` → ``write``). The first
row of each sheet is its header: ``columns.ColumnSpec`` (with the caller's header map) says which column
is which field. Every later row becomes a ``ParsedRow``: its cells parsed by their columns (``cells``),
the recipient split into names and contact facts, the data items mapped onto categories and the
purposes and actions onto their codes (``taxonomy``), and its identity in the file worked out. The rows
come out in chunks, each with the problems found on its rows, located in the file (sheet, row, column
and header). Nothing here reads the database: the caller loads the taxonomy once.

A sheet with none of the expected headers is skipped with a warning when the file has other sheets (a
workbook's instructions or change log); when it is the only sheet, its headers are errors.
"""

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from openpyxl.utils import get_column_letter

from processors.models import DataItem, Service
from processors.spreadsheets.cells import (
    CellError,
    ListCell,
    LocationCell,
    RecipientCell,
    clean_markup,
    parse_recipient,
    split_list,
    states_no_personal_data,
    unpack_item_cell,
)
from processors.spreadsheets.columns import CJK_TEXT, IGNORE, ColumnSpec, propose_field
from processors.spreadsheets.limits import MAX_TITLE_ROWS, SheetRow, SpreadsheetError
from processors.spreadsheets.report import ERROR, WARNING, Problem
from processors.taxonomy import ItemMapping, Taxonomy, TermMapping
from processors.text import normalize_key

# Cells of an unknown column looked at to propose its field.
PROPOSAL_SAMPLE = 30


# What an unknown term is, in the message reporting it (lazy: translated only when reported).
PURPOSE_KIND = gettext_lazy("purpose")
ACTION_KIND = gettext_lazy("processing operation")


@dataclass
class Sheet:
    """A sheet's header row: its headers, and the column index of each field it has."""

    name: str
    header_row: int
    headers: list[str]
    fields: dict[str, int]  # field -> column index
    # A list without a recipient column names its SDK (the service column) as the recipient.
    recipient_from_service: bool = False
    # A partner list whose only recipient column is the kind (店铺商家, 支付机构) names the kind as recipient.
    recipient_from_role: bool = False
    unknown: list[int] = field(default_factory=list)  # columns whose header no field has


@dataclass(slots=True)
class ParsedRow:
    """One row of the table as its fields; ``plan`` adds what it matched the row to."""

    sheet: Sheet
    number: int
    cells: list[str]
    values: dict[str, Any]
    recipient: RecipientCell
    items: ListCell
    mappings: list[ItemMapping]
    purposes: TermMapping | None
    actions: TermMapping | None
    # Items the purpose or scenario names only by an act (刷脸登录), after the published ones.
    inferred: list[ItemMapping] = field(default_factory=list)
    # Worked out when the row is parsed, for the later stages.
    identity: tuple = ()
    item_rows: list[tuple] = field(default_factory=list)
    purpose_ids: tuple[int, ...] = ()
    action_ids: tuple[int, ...] = ()
    # Set by ``plan``: the processor plan the row names and the service it belongs to.
    target_key: str = ""
    service: Service | None = None

    @property
    def service_name(self) -> str:
        return self.values["service"]


@dataclass
class Chunk:
    """Rows read and parsed together, with the problems found on them; an incomplete one is not written."""

    rows: list[ParsedRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    complete: bool = True


def located_problem(
    level: str,
    code: str,
    message: str,
    *,
    row: ParsedRow | None = None,
    sheet: Sheet | None = None,
    row_number: int | None = None,
    field_name: str = "",
    index: int | None = None,
    value: str = "",
    suggestions: tuple[str, ...] | list[str] = (),
) -> Problem:
    """A problem at a row (or a sheet's row number), in the column of ``field_name`` or ``index``."""
    sheet = row.sheet if row is not None else sheet
    if index is None and field_name and sheet is not None:
        index = sheet.fields.get(field_name)
    column = header = ""
    if index is not None:
        column = get_column_letter(index + 1)
        header = sheet.headers[index] if sheet is not None and index < len(sheet.headers) else ""
    return Problem(
        level=level,
        code=code,
        message=message,
        sheet=sheet.name if sheet is not None else "",
        row=row.number if row is not None else row_number,
        column=column,
        header=header,
        value=value,
        suggestions=tuple(suggestions),
    )


def header_map_problems(spec: ColumnSpec, header_map: dict[str, str]) -> list[Problem]:
    """The caller's header map, checked: each header must map to a field of the table (or to “ignore”)."""
    allowed = [*spec.fields]
    return [
        located_problem(
            ERROR,
            "header_map",
            _("The header “%(header)s” is mapped to “%(field)s”, which is not a field of this table.")
            % {"header": header, "field": target},
            suggestions=allowed,
        )
        for header, target in header_map.items()
        if target not in allowed
    ]


class RowParser:
    """Parses one file's rows; a table repeats its recipients, purposes and actions, each parsed once."""

    def __init__(
        self, *, spec: ColumnSpec, header_map: dict[str, str], taxonomy: Taxonomy, default_service: str = ""
    ) -> None:
        self.spec = spec
        self.header_map = header_map
        self.taxonomy = taxonomy
        self.default_service = default_service
        # Set once a sheet without a service column has used the default service.
        self.default_service_used = False
        self.sheets: dict[str, Sheet | None] = {}
        self.foreign: list[tuple[Sheet, list[int]]] = []
        # A sheet whose first row is no header: rows looked at for one below it (a title, a note).
        self.header_tries: dict[str, int] = {}
        # Samples of the cells of columns whose header is unknown, to propose a field from their content.
        self.samples: dict[tuple[str, int], list[str]] = {}
        self.header_proposals: dict[str, str] = {}
        self.location_cache: dict[str, list[tuple[str, str]]] = {}
        self.cell_cache: dict[str, dict[str, tuple[str, Any]]] = defaultdict(dict)
        # Where ``_problem`` puts what it finds: the chunk being parsed.
        self.problems: list[Problem] = []
        self.suggestion_cache: dict[str, list[str]] = {}
        self.purpose_suggestion_cache: dict[str, list[str]] = {}
        self.recipient_cache: dict[str, RecipientCell] = {}
        self.purpose_cache: dict[str, tuple[TermMapping, tuple[int, ...]]] = {}
        self.action_cache: dict[str, tuple[TermMapping, tuple[int, ...]]] = {}
        self.item_rows_cache: dict[str, tuple[tuple, ...]] = {}
        self.inferred_cache: dict[str, list[ItemMapping]] = {}

    def _problem(self, level: str, code: str, message: str, **where: Any) -> None:
        self.problems.append(located_problem(level, code, message, **where))

    def chunks(self, rows: Iterator[SheetRow], *, size: int) -> Iterator[Chunk]:
        """The rows, parsed, in chunks of ``size``; a file refused mid-way ends in an incomplete chunk."""
        chunk = Chunk()
        self.problems = chunk.problems
        try:
            for sheet_row in rows:
                if sheet_row.sheet not in self.sheets:
                    self.sheets[sheet_row.sheet] = self._read_header(sheet_row)
                    continue
                sheet = self.sheets[sheet_row.sheet]
                if sheet is None and self._header_below(sheet_row):
                    continue
                if sheet is not None:
                    chunk.rows.append(self._parse_row(sheet, sheet_row))
                    if len(chunk.rows) >= size:
                        yield chunk
                        chunk = Chunk()
                        self.problems = chunk.problems
        except SpreadsheetError:
            chunk.complete = False
            yield chunk
            raise
        self._finish_sheets()
        yield chunk

    # --- headers ----------------------------------------------------------------------------------

    def _header_below(self, sheet_row: SheetRow) -> bool:
        """Whether this row, below a first row with no known header, is the sheet's header."""
        tries = self.header_tries.get(sheet_row.sheet, 0)
        if tries >= MAX_TITLE_ROWS:
            return False
        self.header_tries[sheet_row.sheet] = tries + 1
        known = sum(
            1
            for cell in sheet_row.cells
            if cell.strip() and self.spec.field_for(cell.strip(), self.header_map) not in (None, IGNORE)
        )
        if known < 2:
            return True  # a title or note line: skipped
        problems = self.problems
        self.problems = []
        sheet = self._read_header(sheet_row)
        if sheet is None:
            self.problems = problems
            return True
        # The rows above were a title: the first row's unknown headers are no problem.
        self.foreign = [(other, unknown) for other, unknown in self.foreign if other.name != sheet.name]
        problems.extend(self.problems)
        self.problems = problems
        self.sheets[sheet_row.sheet] = sheet
        return True

    def _read_header(self, sheet_row: SheetRow) -> Sheet | None:
        headers = [" ".join(cell.split()) for cell in sheet_row.cells]
        sheet = Sheet(name=sheet_row.sheet, header_row=sheet_row.number, headers=headers, fields={})
        unknown: list[int] = []
        for index, header in enumerate(headers):
            if not header:
                continue
            target = self._header_field(header, sheet_row.cells[index])
            if target is None:
                unknown.append(index)
            elif target == IGNORE:
                continue
            elif target in sheet.fields:
                self._problem(
                    ERROR,
                    "header_duplicate",
                    _("This column and column %(other)s both mean “%(field)s”.")
                    % {
                        "other": get_column_letter(sheet.fields[target] + 1),
                        "field": self.spec.by_field[target].label,
                    },
                    sheet=sheet,
                    row_number=sheet.header_row,
                    index=index,
                )
            else:
                sheet.fields[target] = index
        if not sheet.fields:
            # A workbook often carries an instructions or change-log sheet; one with no known header at
            # all is not a register. Whether the file has other sheets is only known at its end.
            self.foreign.append((sheet, unknown))
            return None
        if "recipient" not in sheet.fields and "service" in sheet.fields:
            sheet.recipient_from_service = True
        elif "recipient" not in sheet.fields and "recipient_role" in sheet.fields:
            sheet.recipient_from_role = True
        if "service" not in sheet.fields and self.default_service:
            self.default_service_used = True
        sheet.unknown = unknown
        self._report_header(sheet, unknown)
        return sheet

    def _header_field(self, header: str, raw: str) -> str | None:
        """The field of a header; a two-language header ("使用目的\npurpose of usage") by either line."""
        target = self.spec.field_for(header, self.header_map)
        if target is None and "\n" in raw.strip():
            for line in raw.split("\n"):
                target = self.spec.field_for(line.strip(), self.header_map) if line.strip() else None
                if target is not None:
                    break
        return target

    def _report_header(self, sheet: Sheet, unknown: list[int]) -> None:
        headers = sheet.headers
        known = sorted(str(header) for column in self.spec.columns for header in column.headers)
        for index in unknown:
            self._problem(
                ERROR,
                "header_unknown",
                _("Unknown column header “%(header)s”. Rename it, or map it to a field (or to “ignore”).")
                % {"header": headers[index]},
                sheet=sheet,
                row_number=sheet.header_row,
                index=index,
                value=headers[index],
                suggestions=difflib.get_close_matches(headers[index], known, n=3, cutoff=0.4),
            )
        missing = [
            column
            for column in self.spec.columns
            if column.required
            and column.field not in sheet.fields
            and not (sheet.recipient_from_service or sheet.recipient_from_role)
        ]
        if missing:
            self._problem(
                ERROR,
                "header_missing",
                _("The header row has no column for %(fields)s.")
                % {"fields": ", ".join(f"“{column.label}”" for column in missing)},
                sheet=sheet,
                row_number=sheet.header_row,
                suggestions=[column.headers[0] for column in missing],
            )

    def _finish_sheets(self) -> None:
        for sheet in self.sheets.values():
            if sheet is None:
                continue
            taken = set(sheet.fields)
            for index in sheet.unknown:
                proposal = propose_field(self.samples.get((sheet.name, index), []), taken, self.taxonomy)
                if proposal:
                    self.header_proposals[sheet.headers[index]] = proposal
                    taken.add(proposal)
        for sheet, unknown in self.foreign:
            if len(self.sheets) > 1:
                self._problem(
                    WARNING,
                    "sheet_skipped",
                    _("This sheet has none of the expected headers and was skipped."),
                    sheet=sheet,
                    row_number=sheet.header_row,
                )
            else:
                self._report_header(sheet, unknown)

    # --- rows -------------------------------------------------------------------------------------

    def _parse_row(self, sheet: Sheet, sheet_row: SheetRow) -> ParsedRow:
        cells = list(sheet_row.cells)
        width = len(sheet.headers)
        for index in range(width, len(cells)):
            if cells[index].strip():
                self._problem(
                    WARNING,
                    "cell_outside_table",
                    _("This cell has no header; its value is kept in the source row only."),
                    sheet=sheet,
                    row_number=sheet_row.number,
                    index=index,
                    value=cells[index],
                )
        cells += [""] * (width - len(cells))
        for index in sheet.unknown:
            sample = self.samples.setdefault((sheet.name, index), [])
            if len(sample) < PROPOSAL_SAMPLE and cells[index].strip():
                sample.append(cells[index])
        values: dict[str, Any] = {}
        row = ParsedRow(
            sheet=sheet,
            number=sheet_row.number,
            cells=cells,
            values=values,
            recipient=RecipientCell(names=[]),
            items=ListCell(items=[], open_ended=False),
            mappings=[],
            purposes=None,
            actions=None,
        )
        for field_name, index in sheet.fields.items():
            column = self.spec.by_field[field_name]
            # A table repeats its cells down a column: each distinct cell is cleaned and parsed once.
            cache = self.cell_cache[field_name]
            raw = cells[index]
            parsed = cache.get(raw)
            if parsed is None:
                cell = clean_markup(raw)
                try:
                    parsed = (cell, column.parse(cell))
                except CellError as error:
                    parsed = (cell, error)
                cache[raw] = parsed
            cell, value = parsed
            if isinstance(value, CellError):
                error = value
                # A cosmetic cell (a link that is not a bare URL, "Global" for a country) never costs the
                # file: its text stays in the operation's source row.
                self._problem(
                    WARNING,
                    "cell_unreadable",
                    _("%(reason)s The text is kept in the source row.") % {"reason": error.message},
                    row=row,
                    index=index,
                    value=cell,
                    suggestions=error.suggestions,
                )
                continue
            if value in ("", None):
                if column.required:
                    self._problem(
                        ERROR,
                        "value_required",
                        _("The %(field)s is empty; every row needs one.") % {"field": column.label},
                        row=row,
                        index=index,
                    )
                continue
            values[field_name] = value
        if "service" not in sheet.fields and self.default_service:
            values["service"] = self.default_service
        elif "service" in sheet.fields and "service" not in values:
            self._problem(
                ERROR,
                "value_required",
                _("The %(field)s is empty; every row needs one.")
                % {"field": self.spec.by_field["service"].label},
                row=row,
                field_name="service",
            )
        if sheet.recipient_from_service and "service" in values:
            values["recipient"] = values["service"]
        elif sheet.recipient_from_role and "recipient_role" in values:
            values["recipient"] = values["recipient_role"]
        if "processing_locations" in values:
            self._report_locations(row, values["processing_locations"])
        if "recipient" in values:
            row.recipient = _cached(self.recipient_cache, values["recipient"], parse_recipient)
            if not row.recipient.names:
                self._problem(
                    ERROR,
                    "value_required",
                    _("No recipient name is left once the phone number and filings are removed."),
                    row=row,
                    field_name="recipient",
                )
        if "data_items" in values:
            published, packed = unpack_item_cell(
                values["data_items"], lambda key: self.spec.field_for(key, self.header_map)
            )
            # 使用目的：… in the item cell of a row whose purpose cell is empty is its purpose.
            for target, text in packed:
                self._fill_from_items(values, target, text)
            row.items = split_list("" if states_no_personal_data(published) else published)
            row.mappings = self.taxonomy.map_items(row.items.items)
            for mapping in row.mappings:
                if not mapping.category_codes:  # unmapped
                    self._problem(
                        WARNING,
                        "item_unmapped",
                        _("“%(item)s” matches no data category; kept as written (unmapped — needs review).")
                        % {"item": mapping.text},
                        row=row,
                        field_name="data_items",
                        value=mapping.text,
                        suggestions=self._suggestions(mapping.text),
                    )
        if "purpose" in values:
            row.purposes, row.purpose_ids = _cached(self.purpose_cache, values["purpose"], self._purposes)
            self._report_unmapped_terms(row, "purpose", row.purposes, PURPOSE_KIND)
        if "actions" in values:
            row.actions, row.action_ids = _cached(self.action_cache, values["actions"], self._actions)
            self._report_unmapped_terms(row, "actions", row.actions, ACTION_KIND)
        self._infer_items(row)
        if "service" in values and row.recipient.names:
            row.identity = _row_identity(row)
        row.item_rows = item_tuples([*row.mappings, *row.inferred], self.taxonomy, self.item_rows_cache)
        return row

    def _fill_from_items(self, values: dict[str, Any], target: str, text: str) -> None:
        text = text.strip()
        if target not in ("purpose", "usage_scenario") or not text or values.get(target):
            return
        try:
            values[target] = self.spec.by_field[target].parse(text)
        except CellError:
            return

    def _infer_items(self, row: ParsedRow) -> None:
        """Data items the purpose or scenario cell names only by an act (刷脸登录), unless the row lists them.

        They are recorded as items of match "inferred" (a person confirms them): queries find them, and the
        review queue shows the cell they came from.
        """
        listed = {code for mapping in row.mappings for code in mapping.category_codes}
        listed |= {code.partition(".")[0] for code in listed}
        for field_name in ("purpose", "usage_scenario"):
            text = row.values.get(field_name)
            if not text:
                continue
            for mapping in _cached(self.inferred_cache, text, self.taxonomy.infer_items):
                code = mapping.category_codes[0]
                if code in listed or code.partition(".")[0] in listed:
                    continue
                listed.add(code)
                row.inferred.append(mapping)
                self._problem(
                    WARNING,
                    "item_inferred",
                    _(
                        "“%(phrase)s” in this cell names personal information the row does not list; "
                        "recorded as an inferred data item (needs review)."
                    )
                    % {"phrase": mapping.text},
                    row=row,
                    field_name=field_name,
                    value=mapping.text,
                )

    def _report_locations(self, row: ParsedRow, places: LocationCell) -> None:
        if places.text not in self.location_cache:
            found = [
                (
                    "location_vague",
                    _("“%(place)s” is not a country; kept as written, with no country.") % {"place": place},
                )
                for place in places.vague
            ] + [
                (
                    "location_unknown",
                    _("“%(place)s” is not a country or region this register knows; kept as written.")
                    % {"place": place},
                )
                for place in places.unknown
            ]
            self.location_cache[places.text] = found
        for code, message in self.location_cache[places.text]:
            self._problem(
                WARNING, code, message, row=row, field_name="processing_locations", value=places.text
            )

    def _purposes(self, text: str) -> tuple[TermMapping, tuple[int, ...]]:
        mapping = self.taxonomy.map_purposes(text)
        return mapping, tuple(self.taxonomy.purpose_id(code) for code in mapping.codes)

    def _actions(self, text: str) -> tuple[TermMapping, tuple[int, ...]]:
        mapping = self.taxonomy.map_actions(text)
        return mapping, tuple(self.taxonomy.action_id(code) for code in mapping.codes)

    def _suggestions(self, text: str) -> list[str]:
        # Fuzzy suggestions cost milliseconds; a file repeats its unmapped wording on many rows.
        if text not in self.suggestion_cache:
            self.suggestion_cache[text] = self.taxonomy.suggest_categories(text)
        return self.suggestion_cache[text]

    def _report_unmapped_terms(
        self, row: ParsedRow, field_name: str, mapping: TermMapping, kind: Any
    ) -> None:
        # ``kind`` is lazy: translating it costs more than the whole check when every term is known.
        for term in mapping.unmapped:
            self._problem(
                WARNING,
                f"{field_name}_unmapped",
                _("“%(term)s” is not a %(kind)s this register knows; the text is kept as written.")
                % {"term": term, "kind": kind},
                row=row,
                field_name=field_name,
                value=term,
                suggestions=self._purpose_suggestions(term) if field_name == "purpose" else (),
            )

    def _purpose_suggestions(self, text: str) -> list[str]:
        # The purposes closest in meaning (by shared words, never characters), named in the user's
        # language; a table repeats its purpose prose on many rows, so each text is looked at once.
        if text not in self.purpose_suggestion_cache:
            codes = self.taxonomy.suggest_purposes(text)
            self.purpose_suggestion_cache[text] = [self.taxonomy.purpose_name(code) for code in codes]
        return self.purpose_suggestion_cache[text]


# The cells two rows of one recipient may differ in and still be one flow, each adding to the other: a
# partner list gives 店铺商家 one row for delivery and one for customs, each with its items and purpose.
ADDITIVE_FIELDS = ("data_items", "purpose", "usage_scenario")


def merge_repeated_row(earlier: ParsedRow, later: ParsedRow) -> bool:
    """Add a later row of the same service and recipient to the earlier one, if they differ only in what
    they list (data items, purpose, scenario); says whether it did. Other differences are conflicts."""
    sheet = earlier.sheet
    if later.sheet is not sheet:
        return False
    additive = {sheet.fields[name] for name in ADDITIVE_FIELDS if name in sheet.fields}
    if any(
        a != b
        for index, (a, b) in enumerate(zip(earlier.cells, later.cells, strict=False))
        if index not in additive
    ):
        return False
    for name in ADDITIVE_FIELDS:
        texts = [text for text in (earlier.values.get(name), later.values.get(name)) if text]
        if texts:
            separator = "；" if CJK_TEXT.search("".join(texts)) else "; "
            earlier.values[name] = separator.join(dict.fromkeys(texts))
    if later.purposes is not None:
        if earlier.purposes is None:
            earlier.purposes = later.purposes
        else:
            earlier.purposes = TermMapping(
                tuple(dict.fromkeys((*earlier.purposes.codes, *later.purposes.codes))),
                tuple(dict.fromkeys((*earlier.purposes.unmapped, *later.purposes.unmapped))),
                earlier.purposes.open_ended or later.purposes.open_ended,
            )
        earlier.purpose_ids = tuple(dict.fromkeys((*earlier.purpose_ids, *later.purpose_ids)))
    earlier.item_rows = _merged_item_rows(earlier, later)
    return True


def _merged_item_rows(earlier: ParsedRow, later: ParsedRow) -> list[tuple]:
    """The earlier row's item rows, then the later row's items it does not have, at the next positions."""
    texts = {text for _position, text, _category, _match in earlier.item_rows}
    categories = {category for _position, _text, category, _match in earlier.item_rows if category}
    inferred = {mapping.text for mapping in later.inferred}
    by_position: dict[int, list[tuple]] = defaultdict(list)
    for item in later.item_rows:
        by_position[item[0]].append(item)
    rows = list(earlier.item_rows)
    position = 1 + max((item[0] for item in rows), default=-1)
    for items in by_position.values():
        text = items[0][1]
        if text in texts or (text in inferred and {item[2] for item in items} <= categories):
            continue
        texts.add(text)
        rows.extend((position, *item[1:]) for item in items)
        position += 1
    return rows


def _row_identity(row: ParsedRow) -> tuple:
    """(service, recipient, relationship) as match keys: two rows of a file with one identity repeat."""
    recipient = row.recipient
    target = recipient.group_name if recipient.is_group else (recipient.names[0] if recipient.names else "")
    return (normalize_key(row.service_name), normalize_key(target), row.values.get("relationship", ""))


def _cached(cache: dict[str, Any], text: str, parse: Callable[[str], Any]) -> Any:
    """``parse(text)``, computed once per distinct text (the results are immutable)."""
    if text not in cache:
        cache[text] = parse(text)
    return cache[text]


def item_tuples(
    mappings: list[ItemMapping], taxonomy: Taxonomy, cache: dict[str, tuple[tuple, ...]]
) -> list[tuple]:
    """The data item rows a row's mapped items make, as comparable tuples (see services.data_item_rows).

    In the order ``saved_item_tuples`` sorts the saved ones: by position, then within a position (one
    text) by category. Each item's own rows are worked out once per import, in ``cache``.
    """
    rows: list[tuple] = []
    for position, mapping in enumerate(mappings):
        # Keyed by text: the taxonomy maps each distinct text to one ItemMapping.
        own = cache.get(mapping.text)
        if own is None:
            own = cache[mapping.text] = (
                ((mapping.text, None, ""),)
                if not mapping.category_codes
                else tuple(
                    sorted(
                        (mapping.text, taxonomy.category_id(code), mapping.match)
                        for code in mapping.category_codes
                    )
                )
            )
        for text, category, match in own:
            rows.append((position, text, category, match))
    return rows


def saved_item_tuples(items: list[DataItem]) -> list[tuple]:
    """Saved data items as the tuples ``item_tuples`` makes, in its order, to compare the two."""
    return sorted(
        ((item.position, item.text, item.category_id, item.match) for item in items),
        key=lambda row: (row[0], row[1], row[2] or 0, row[3]),
    )
