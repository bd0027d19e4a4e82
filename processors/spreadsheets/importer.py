"""The import core: a disclosure table in, the register updated (or a located list of problems out).

``import_register`` is the one entry point, for the browser, the admin, the API and the commands. It
reads the file (``readers``) and, for a disclosure table, takes its rows down the stages once, chunk by
chunk as they stream from the reader:

    read (readers, xlsx) → parse (row → fields, recipient, items, terms) → plan (matched against the
    register: processors, services, operations; changes; duplicates) → write (bulk, with history) →
    report (problems and counts)

All of it runs in one transaction: a file with any error writes nothing, and a dry run does the same
writes and rolls them back so its counts are exact. Validation is the models' own (``full_clean``
without the queries of unique checks; identity is checked in memory and the database constraints stay
the last line). The round-trip workbook (``export_workbook``) is recognised by its first sheet and goes
to its own importer (``workbook``) in the same transaction. Every import, failed and dry runs included,
leaves an ``ImportRecord`` written outside that transaction, and every history row it causes names that
record. Importing the same file twice changes nothing.

Rules the table cannot state, decided in ``plan``:
- an empty optional cell leaves the register's value alone (it is "not stated", not "none");
- a processor's contact facts from the table fill empty fields only; a different value already in the
  register is kept and reported, so a correction made by hand survives re-importing an old table;
- a row without a relationship matches the register's operation for the same service and processor
  whatever its relationship, so classifying an operation later does not duplicate it on re-import;
- cross-border is derived from the recipients' countries and only ever switched on, never off.
"""

import contextlib
import datetime
import hashlib
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from processors.findings import findings_refresh
from processors.history import current_history_state, history_context
from processors.models import Channel, Controller, ImportRecord
from processors.spreadsheets.columns import DISCLOSURE_COLUMNS, ColumnSpec
from processors.spreadsheets.limits import ImportLimits, SheetRow, SpreadsheetError
from processors.spreadsheets.parse import ParsedRow, RowParser, header_map_problems
from processors.spreadsheets.plan import Planner, Register
from processors.spreadsheets.readers import DocumentRows, read_rows
from processors.spreadsheets.report import (
    ERROR,
    SHAPE_WORKBOOK,
    ImportReport,
    Problem,
    Tally,
    problem_from_error,
)
from processors.spreadsheets.workbook import import_workbook, is_workbook_sheet
from processors.spreadsheets.write import Writer
from processors.taxonomy import Taxonomy

ProgressCallback = Callable[[int], None]

# Rows planned and written together: enough to make each query worth it, few enough to keep memory flat.
CHUNK_ROWS = 5000
# The service of a table that names none (a sub-processor list serves the whole product).
DEFAULT_SERVICE = gettext_lazy("All services")
# Problems kept on the import record; a broken 100,000-row file must not make a huge JSON column.
RECORD_PROBLEMS = 500
# Header cells of each of a document's tables the report lists (the preview's table picker shows them).
TABLE_HEADERS_SHOWN = 4


def import_register(
    source: Path | str | bytes | BinaryIO,
    *,
    controller: Controller,
    file_name: str,
    dry_run: bool = False,
    header_map: dict[str, str] | None = None,
    user: Any = None,
    progress: ProgressCallback | None = None,
    effective_from: datetime.date | None = None,
    spec: ColumnSpec = DISCLOSURE_COLUMNS,
    channel: Channel | str = Channel.COMMAND,
    table: int | None = None,
    default_service: str | None = None,
) -> ImportReport:
    """Import a disclosure table or a full workbook (path, bytes, file object, or pasted text as str).

    ``table`` chooses a document's table by its index (``ImportReport.tables``; the likeliest without
    it); ``default_service`` names the service of a table without a service column (a sub-processor
    list), ``DEFAULT_SERVICE`` without it.
    """
    started = time.monotonic()
    report = ImportReport(
        file_name=file_name,
        controller=controller.code,
        dry_run=dry_run,
        imported_by=user.get_username() if user is not None and hasattr(user, "get_username") else "",
    )
    source, digest, size = _fingerprint(source)
    outer = current_history_state()
    # A caller that already keeps a record of this import (a background job) has its record stamped.
    record = outer.import_record if outer is not None else None
    own_record = record is None
    if record is None:
        try:
            with import_lock_wait():  # SQLite: the record's insert waits for a running import, too
                record = ImportRecord.objects.create(
                    controller=controller,
                    user=user if getattr(user, "pk", None) is not None else None,
                    username=user.get_username() if getattr(user, "pk", None) is not None else "",
                    channel=Channel(channel),
                    file_name=file_name[:255],
                    sha256=digest,
                    size=size,
                    dry_run=dry_run,
                    result=ImportRecord.Result.FAILED,
                )
        except OperationalError as error:
            if not is_lock_timeout(error):
                raise
            report.problems.append(import_busy_problem())
            return report
    report.import_record_id = record.pk
    try:
        with (
            import_lock_wait(),
            transaction.atomic(),
            history_context(Channel.IMPORT, import_record=record, user=user),
        ):
            if not dry_run:
                lock_register(controller)
            tally = _run(
                source,
                report=report,
                controller=controller,
                spec=spec,
                header_map=header_map or {},
                effective_from=effective_from,
                progress=progress,
                table=table,
                default_service=default_service or str(DEFAULT_SERVICE),
            )
            report.committed = report.ok and not dry_run
            if report.committed:
                # The stored findings follow the import in its transaction (processors.findings), judged
                # for what the import wrote only: re-judging the controller's whole register cost ~54 s at
                # 20,000 operations.
                if tally is None:
                    findings_refresh()
                else:
                    operations = tally.created["operations"] | tally.changed["operations"]
                    processors = tally.created["processors"] | tally.changed["processors"]
                    if operations or processors:
                        findings_refresh(operations=operations, processors=processors)
            else:
                transaction.set_rollback(True)
    except (OperationalError, IntegrityError) as error:
        # Another import (or an edit) held the register longer than REGISTER_IMPORT_LOCK_TIMEOUT, or
        # wrote the same rows first: nothing was imported, and the caller says so rather than a 500.
        if isinstance(error, OperationalError) and not is_lock_timeout(error):
            raise
        report.committed = False
        report.problems.append(import_busy_problem())
    finally:
        if own_record:
            try:
                _finish_record(record, report, started)
            except OperationalError as error:
                # Still locked out: the record stays "failed", which is what happened.
                if not is_lock_timeout(error):
                    raise
    return report


IMPORT_BUSY = "import_busy"
IMPORT_BUSY_MESSAGE = gettext_lazy(
    "Another import into this register is running; nothing was imported. Try again when it has finished."
)
# The first key of the PostgreSQL advisory lock that makes imports into one controller wait in turn.
_IMPORT_LOCK_CLASS = 0x52656769  # "Regi"


def import_busy_problem() -> Problem:
    """The error of an import that waited too long for another into the same register."""
    return Problem(level=ERROR, code=IMPORT_BUSY, message=str(IMPORT_BUSY_MESSAGE))


def import_lock_timeout() -> float:
    """How many seconds an import waits for another into the same register (REGISTER_IMPORT_LOCK_TIMEOUT)."""
    return float(getattr(settings, "REGISTER_IMPORT_LOCK_TIMEOUT", 60))


@contextlib.contextmanager
def import_lock_wait() -> Iterator[None]:
    """On SQLite, the connection waits up to the import lock timeout for the write lock, then as before."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        before = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout = {int(import_lock_timeout() * 1000)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {int(before)}")


def lock_register(controller: Controller) -> None:
    """Make a second import into the controller wait for this one's transaction (PostgreSQL).

    SQLite needs nothing here: its write lock, taken when the transaction began, serialises every writer.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        before = cursor.fetchone()[0]
        wait = f"{int(import_lock_timeout() * 1000)}ms"
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [wait])
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_IMPORT_LOCK_CLASS, controller.pk])
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])


def is_lock_timeout(error: OperationalError) -> bool:
    """Whether a database error is a lock wait that ran out (PostgreSQL's 55P03, SQLite's "locked")."""
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == "55P03" or "database is locked" in str(error)


def _fingerprint(source: Path | str | bytes | BinaryIO) -> tuple[Path | str | bytes, str, int]:
    """The source in a form that can be read once more, with the SHA-256 and size of its bytes."""
    if isinstance(source, Path):
        digest = hashlib.sha256()
        with source.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return source, digest.hexdigest(), source.stat().st_size
    if isinstance(source, str):
        data = source.encode("utf-8")
    elif isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        # One byte past the limit is enough for the reader to know the file is over it.
        data = source.read(ImportLimits.from_settings().max_bytes + 1)
        source = data
    return source, hashlib.sha256(data).hexdigest(), len(data)


def _finish_record(record: ImportRecord, report: ImportReport, started: float) -> None:
    if report.committed:
        record.result = ImportRecord.Result.IMPORTED
    elif report.ok and report.dry_run:
        record.result = ImportRecord.Result.PREVIEWED
    else:
        record.result = ImportRecord.Result.FAILED
    record.shape = report.shape
    record.counts = {"rows": report.rows, **{name: c.to_dict() for name, c in report.counts.items()}}
    record.problems = [problem.to_dict() for problem in report.problems[:RECORD_PROBLEMS]]
    record.duration_ms = int((time.monotonic() - started) * 1000)
    record.save(update_fields=["result", "shape", "counts", "problems", "duration_ms"])


def _run(
    source: Path | str | bytes,
    *,
    report: ImportReport,
    controller: Controller,
    spec: ColumnSpec,
    header_map: dict[str, str],
    effective_from: datetime.date | None,
    progress: ProgressCallback | None,
    table: int | None = None,
    default_service: str = "",
) -> Tally | None:
    """Read the file and take its rows through the importer its shape needs.

    Returns what a table import wrote; None for a workbook, which may touch any controller.
    """
    try:
        rows = read_rows(source, file_name=report.file_name, table=table)
        if isinstance(rows, DocumentRows):
            report.tables = [
                {
                    "index": found.index,
                    "title": found.title,
                    "rows": len(found.rows) - 1,
                    "columns": found.width,
                    "score": found.score,
                    # The first header cells, for a person choosing among similar tables.
                    "headers": [" ".join(cell.split()) for cell in found.header[:TABLE_HEADERS_SHOWN]],
                }
                for found in rows.tables
            ]
            report.table = rows.chosen.index
        first = next(rows, None)
    except SpreadsheetError as error:
        report.problems.append(problem_from_error(error))
        return Tally()
    rows = itertools.chain([first] if first is not None else [], rows)
    if first is not None and not isinstance(source, str) and is_workbook_sheet(first.sheet):
        report.shape = SHAPE_WORKBOOK
        try:
            import_workbook(rows, report=report, controller=controller)
        except SpreadsheetError as error:
            report.problems.append(problem_from_error(error))
        return None
    return _import_table(
        rows,
        report=report,
        controller=controller,
        spec=spec,
        header_map=header_map,
        effective_from=effective_from,
        progress=progress,
        default_service=default_service,
    )


def _import_table(
    rows: Iterator[SheetRow],
    *,
    report: ImportReport,
    controller: Controller,
    spec: ColumnSpec,
    header_map: dict[str, str],
    effective_from: datetime.date | None,
    progress: ProgressCallback | None,
    default_service: str = "",
) -> Tally:
    """A disclosure table, chunk by chunk: parsed, planned and written, then reported."""
    problems = header_map_problems(spec, header_map)
    if problems:
        report.problems.extend(problems)
        return Tally()
    parser = RowParser(
        spec=spec, header_map=header_map, taxonomy=Taxonomy.load(), default_service=default_service
    )
    register = Register(controller=controller, effective_from=effective_from)
    tally = Tally()
    planner = Planner(
        report=report, register=register, tally=tally, controller=controller, effective_from=effective_from
    )
    writer = Writer(register=register, tally=tally)
    done = 0
    # The problems found while parsing a chunk join the report just before the chunk is written, so
    # that whether it may be written depends on them and on the chunks before it only.
    try:
        for chunk in parser.chunks(rows, size=CHUNK_ROWS):
            report.problems.extend(chunk.problems)
            report.rows += len(chunk.rows)
            if chunk.complete and chunk.rows:
                _import_chunk(chunk.rows, report=report, planner=planner, writer=writer)
                done += len(chunk.rows)
                if progress is not None:
                    progress(done)
    except SpreadsheetError as error:
        # The file is refused whatever its rows said: that is the first thing to read.
        report.problems.insert(0, problem_from_error(error))
        return tally
    if not report.rows and report.ok:
        report.problems.append(
            Problem(ERROR, "no_rows", _("The file has no rows to import below its header."))
        )
    planner.report_near_duplicates()
    planner.report_matches()
    report.header_proposals = parser.header_proposals
    if parser.default_service_used:
        report.default_service = default_service
    tally.count_into(report)
    return tally


def _import_chunk(rows: list[ParsedRow], *, report: ImportReport, planner: Planner, writer: Writer) -> None:
    """Plan and write one chunk: processors, services, then operations, each matched by the ids before.

    Nothing is written once the report has an error, but every later step is still planned, so that
    one run reports every problem of the file.
    """
    rows = planner.check_repeated_rows(rows)
    plans = planner.processors(rows)
    writing = report.ok
    processors = planner.processor_changes(plans)
    if writing and report.ok:
        planner.memberships(processors)
        writer.processors(processors)
    writing = writing and report.ok
    services = planner.services(rows)
    if writing and report.ok:
        writer.services(services)
    writing = writing and report.ok
    if not writing:
        planner.check_operations(rows)
        return
    operations = planner.operations(rows)
    if report.ok:
        writer.operations(operations.states)
    operations.settle()
