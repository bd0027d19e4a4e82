"""The report of an import: located problems and counts, for both the disclosure table and the workbook.

Every stage of the import core (``parse``, ``plan``, ``write``, ``workbook``) reports into the one
``ImportReport`` that ``import_register`` returns and keeps on its ``ImportRecord``; this module is the
bottom of them all and imports none of them.
"""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from processors.spreadsheets.limits import SpreadsheetError, location_text

ERROR = "error"
WARNING = "warning"

ENTITIES = ("processors", "services", "operations")

SHAPE_DISCLOSURE = "disclosure"
SHAPE_WORKBOOK = "workbook"


@dataclass(frozen=True)
class Problem:
    """One error or warning, located in the file as precisely as it can be."""

    level: str
    code: str
    message: str
    sheet: str = ""
    row: int | None = None
    column: str = ""
    header: str = ""
    value: str = ""
    suggestions: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = self.location
        text = f"{where}: {self.message}" if where else self.message
        if self.suggestions:
            text += " " + _("Suggestions: %(suggestions)s.") % {"suggestions": ", ".join(self.suggestions)}
        return text

    @property
    def location(self) -> str:
        return location_text(sheet=self.sheet, row=self.row, column=self.column, header=self.header)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "location": self.location,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "header": self.header,
            "value": self.value,
            "suggestions": list(self.suggestions),
        }


@dataclass
class EntityCounts:
    created: int = 0
    changed: int = 0
    unchanged: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"created": self.created, "changed": self.changed, "unchanged": self.unchanged}


@dataclass
class ImportReport:
    """What an import did (or, for a dry run or a file with errors, would have done)."""

    file_name: str
    controller: str
    dry_run: bool
    rows: int = 0
    committed: bool = False
    imported_by: str = ""
    counts: dict[str, EntityCounts] = field(
        default_factory=lambda: {name: EntityCounts() for name in ENTITIES}
    )
    problems: list[Problem] = field(default_factory=list)
    import_record_id: int | None = None
    shape: str = SHAPE_DISCLOSURE
    # A document's tables, for a person to choose by (index, title, rows, columns, score), and the
    # index of the one imported.
    tables: list[dict[str, Any]] = field(default_factory=list)
    table: int | None = None
    # For each header the importer does not know: the field its column's content suggests (the preview
    # shows it preselected; the command prints it as a --map to add).
    header_proposals: dict[str, str] = field(default_factory=dict)
    # The service the rows of a table without a service column belong to ("" when it has one).
    default_service: str = ""
    # Rows that matched an operation already in the register, and how many of those carry another date.
    matched_existing: int = 0
    matched_other_date: int = 0
    # The dates (ISO) those operations carry, for the preview's "is this a new version?" question.
    matched_dates: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def unmapped_items(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.code == "item_unmapped"]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable data (for the API)."""
        return {
            "file_name": self.file_name,
            "controller": self.controller,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "ok": self.ok,
            "rows": self.rows,
            "imported_by": self.imported_by,
            "import_record_id": self.import_record_id,
            "shape": self.shape,
            "counts": {name: counts.to_dict() for name, counts in self.counts.items()},
            "tables": self.tables,
            "table": self.table,
            "header_proposals": self.header_proposals,
            "default_service": self.default_service,
            "matched_existing": self.matched_existing,
            "matched_other_date": self.matched_other_date,
            "matched_dates": self.matched_dates,
            "errors": [problem.to_dict() for problem in self.errors],
            "warnings": [problem.to_dict() for problem in self.warnings],
        }

    def as_text(self) -> str:
        """The report as a person reads it on a terminal."""
        if not self.ok:
            state = _("not imported: the file has errors, nothing was saved")
        elif self.dry_run:
            state = _("dry run: nothing was saved")
        else:
            state = _("imported")
        lines = [
            _("%(file)s → %(controller)s: %(rows)s rows, %(state)s.")
            % {"file": self.file_name, "controller": self.controller, "rows": self.rows, "state": state}
        ]
        if len(self.tables) > 1:
            lines.append(
                _("The document has %(count)s tables; this is table %(number)s:")
                % {"count": len(self.tables), "number": (self.table or 0) + 1}
            )
            for table in self.tables:
                mark = "*" if table["index"] == self.table else " "
                lines.append(
                    f"  {mark} {table['index'] + 1}. {table['title'] or '—'} "
                    + _("(%(rows)s rows × %(columns)s columns)") % table
                )
        if self.default_service:
            lines.append(
                _(
                    "The table has no service column: its rows belong to the service “%(name)s” "
                    "(change it with --default-service)."
                )
                % {"name": self.default_service}
            )
        if self.matched_existing:
            lines.append(
                _("%(count)s rows match operations already in the register.")
                % {"count": self.matched_existing}
            )
        labels = {"processors": _("processors"), "services": _("services"), "operations": _("operations")}
        for name, counts in self.counts.items():
            lines.append(
                "  "
                + _("%(entity)s: %(created)s created, %(changed)s changed, %(unchanged)s unchanged")
                % {"entity": labels.get(name, name), **counts.to_dict()}
            )
        if self.header_proposals:
            lines.append(_("Proposed from the columns' content (add these --map options to accept them):"))
            lines.extend(f'  --map "{header}={target}"' for header, target in self.header_proposals.items())
        for title, problems in ((_("Errors"), self.errors), (_("Warnings"), self.warnings)):
            if problems:
                lines.append(f"{title} ({len(problems)}):")
                lines.extend(f"  {problem}" for problem in problems)
        return "\n".join(lines)


class Tally:
    """The primary keys an import created, changed or left unchanged, by entity, until they are counted.

    Sets, not counters: one processor or service is named on many rows and in many chunks, and an object
    created or changed by one row is not "unchanged" because another row leaves it alone.
    """

    def __init__(self) -> None:
        self.created: dict[str, set[int]] = {name: set() for name in ENTITIES}
        self.changed: dict[str, set[int]] = {name: set() for name in ENTITIES}
        self.unchanged: dict[str, set[int]] = {name: set() for name in ENTITIES}

    def count_into(self, report: ImportReport) -> None:
        """Set the report's counts: created wins over changed, changed over unchanged."""
        for name in ENTITIES:
            created, changed = self.created[name], self.changed[name]
            counts = report.counts[name]
            counts.created = len(created)
            counts.changed = len(changed - created)
            counts.unchanged = len(self.unchanged[name] - changed - created)


def problem_from_error(error: SpreadsheetError) -> Problem:
    """A refused file as the report's error."""
    return Problem(ERROR, "file", error.message, sheet=error.sheet, row=error.row, column=error.column)


def validation_messages(error: ValidationError) -> dict[str, list[str]]:
    """A ValidationError as field → messages ("" for errors of the whole object)."""
    return error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
