"""Background jobs: a confirmed import runs on a worker, and anyone who may see it can follow it.

The engine is Django's tasks API (the ``django-tasks`` backport; decision 27): ``import_job_start``
records the import (an ``ImportRecord`` in state "queued", with the rows its preview counted) and
enqueues ``run_import_job``; with the database backend the database is the queue and ``manage.py
db_worker`` runs the job on any machine that reaches the database and the upload storage. The job is
the same ``upload_confirm`` the request used to call, so an import stays all-or-nothing: a failed job
writes nothing and leaves its located problems on the record (and its upload, for another look).

Progress: the import is one transaction, and on SQLite no other connection may write while it is open,
so the rows done cannot go into the record as they happen. The job writes them to the upload storage
(``jobs/<record id>.json``), which every app server reads; the record gets the final count, and the file
goes, when the job ends. ``import_job_state`` merges the two for the pages and the API.
"""

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import OperationalError
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import TaskContext, task

from processors import selectors
from processors.history import history_context
from processors.models import Channel, ControllerRole, ImportRecord
from processors.spreadsheets import uploads
from processors.spreadsheets.importer import (
    IMPORT_BUSY,
    IMPORT_BUSY_MESSAGE,
    RECORD_PROBLEMS,
    import_lock_wait,
    is_lock_timeout,
)
from processors.spreadsheets.report import ERROR, EntityCounts, ImportReport, Problem

logger = logging.getLogger(__name__)

FINISHED = (ImportRecord.Result.IMPORTED, ImportRecord.Result.FAILED)


@dataclass(frozen=True)
class ImportJobState:
    """Where an import job is: its record, and the rows done of the rows to do (None: not counted)."""

    record: ImportRecord
    rows_done: int
    rows_total: int | None

    @property
    def finished(self) -> bool:
        return self.record.result in FINISHED

    @property
    def committed(self) -> bool:
        return self.record.result == ImportRecord.Result.IMPORTED

    @property
    def percent(self) -> int | None:
        if self.finished:
            return 100
        if not self.rows_total:
            return None
        return min(100, int(self.rows_done * 100 / self.rows_total))

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-serialisable data (the progress page's poll and the API's job resource)."""
        record = self.record
        problems = record.problems if self.finished else []
        return {
            "id": record.pk,
            "status": record.result,
            "status_label": str(record.get_result_display()),
            "finished": self.finished,
            "committed": self.committed,
            "file_name": record.file_name,
            "controller": record.controller.code if record.controller else None,
            "rows_done": self.rows_done,
            "rows_total": self.rows_total,
            "percent": self.percent,
            "started_at": record.started_at.isoformat() if record.started_at else None,
            "duration_ms": record.duration_ms,
            "counts": record.counts if self.finished else {},
            "errors": [problem for problem in problems if problem.get("level") == ERROR],
            "warnings": [problem for problem in problems if problem.get("level") != ERROR],
        }


def _progress_name(record_id: int) -> str:
    return f"jobs/{int(record_id)}.json"


def import_job_progress(record_id: int, done: int) -> None:
    """Say how many rows the running job has imported (its worker calls this when it starts and after
    each chunk); the time it says so is the job's heartbeat (``import_job_state``)."""
    body = json.dumps({"done": done, "at": time.time()}).encode("ascii")
    try:
        uploads.storage_put(_progress_name(record_id), body)
    except OSError:  # progress is a courtesy: a storage hiccup must not fail the import
        logger.warning("Could not write the progress of import job %s", record_id, exc_info=True)


def _progress_read(record_id: int) -> tuple[int, float | None] | None:
    """(rows done, when the worker said so) of a running job, or None before its first word."""
    try:
        progress = json.loads(uploads.storage_read(_progress_name(record_id)))
        at = progress.get("at")
        return int(progress["done"]), float(at) if at is not None else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not started, finished, mid-write
        return None


def import_job_state(record: ImportRecord) -> ImportJobState:
    """The job's state now: the record, with the rows done read from the job's progress while it runs.

    A running job whose worker has said nothing for REGISTER_IMPORT_JOB_SILENCE_SECONDS has lost its
    worker (killed, machine gone): the import is one transaction, so the database rolled it back and
    nothing was written. The record is then marked failed with that message instead of "running" for ever.
    """
    done = record.rows_done
    if record.result == ImportRecord.Result.RUNNING:
        progress = _progress_read(record.pk)
        done = progress[0] if progress else 0
        heard = progress[1] if progress and progress[1] is not None else record.started_at.timestamp()
        if time.time() - heard > settings.REGISTER_IMPORT_JOB_SILENCE_SECONDS:
            _job_lost(record)
    return ImportJobState(record=record, rows_done=done, rows_total=record.rows_total)


def _job_lost(record: ImportRecord) -> None:
    minutes = max(1, round(settings.REGISTER_IMPORT_JOB_SILENCE_SECONDS / 60))
    problem = Problem(
        level=ERROR,
        code="job_lost",
        message=_(
            "The worker running this import stopped answering %(minutes)d minutes ago; nothing was "
            "written. Upload the file again to import it."
        )
        % {"minutes": minutes},
    )
    # Conditional, so a worker that finishes meanwhile (or another server marking it) is not overwritten.
    try:
        marked = ImportRecord.objects.filter(pk=record.pk, result=ImportRecord.Result.RUNNING).update(
            result=ImportRecord.Result.FAILED, problems=[problem.to_dict()], rows_done=0
        )
    except OperationalError as error:  # SQLite: a worker alive after all still holds the write lock
        if not is_lock_timeout(error):
            raise
        return
    record.refresh_from_db()
    if marked:
        logger.warning("Import job %s lost its worker; marked failed", record.pk)
        uploads.upload_storage().delete(_progress_name(record.pk))


def import_job_get(user: Any, record_id: int | str) -> ImportJobState | None:
    """The job with this record id if the user may see its controller's imports, else None."""
    record = (
        selectors.imports_visible_to(user)
        .select_related("controller", "user")
        .filter(pk=record_id, dry_run=False)
        .first()
    )
    return import_job_state(record) if record is not None else None


def import_job_start(token: str, user: Any, *, channel: Channel | str = Channel.BROWSER) -> ImportRecord:
    """Queue the real import of the user's upload; returns its record, the job's handle.

    With a worker the record is "queued" when this returns; with the immediate backend the job has
    already run and the record says how it ended.
    """
    upload = uploads.upload_get(token, user)
    editable = selectors.controllers_for(user, role=ControllerRole.EDITOR)
    controller = editable.filter(code=upload.controller_code).first()
    if controller is None:
        raise uploads.UploadError(
            _("The controller %(code)s no longer exists.") % {"code": upload.controller_code},
            code="controller",
        )
    try:
        # On SQLite the record's insert waits for a running import's write lock: as long as an import
        # waits for another (REGISTER_IMPORT_LOCK_TIMEOUT), then a clear refusal rather than a hang.
        with import_lock_wait():  # the record, and the database backend's job row, are writes
            record = _queued_record(upload, controller, user, channel)
            # The job's messages (its located problems) are in the language of the person who started it.
            run_import_job.enqueue(
                record_id=record.pk, token=token, language=translation.get_language() or ""
            )
    except OperationalError as error:
        if not is_lock_timeout(error):
            raise
        raise uploads.UploadError(str(IMPORT_BUSY_MESSAGE), code=IMPORT_BUSY) from None
    record.refresh_from_db()
    return record


def _queued_record(upload: Any, controller: Any, user: Any, channel: Channel | str) -> ImportRecord:
    return ImportRecord.objects.create(
        controller=controller,
        user=user,
        username=user.get_username(),
        channel=Channel(channel),
        file_name=upload.file_name[:255],
        sha256=upload.sha256,
        size=upload.size,
        dry_run=False,
        result=ImportRecord.Result.QUEUED,
        rows_total=upload.rows,
    )


def import_job_report(record: ImportRecord) -> ImportReport:
    """A finished job's report, rebuilt from its record (for the pages that show what an import did)."""
    counts = record.counts or {}
    report = ImportReport(
        file_name=record.file_name,
        controller=record.controller.code if record.controller else "",
        dry_run=False,
        rows=int(counts.get("rows") or 0),
        committed=record.result == ImportRecord.Result.IMPORTED,
        imported_by=record.username,
        import_record_id=record.pk,
        shape=record.shape or ImportReport.__dataclass_fields__["shape"].default,
    )
    for name, entity in counts.items():
        if isinstance(entity, dict) and name in report.counts:
            report.counts[name] = EntityCounts(**entity)
    known = set(Problem.__dataclass_fields__)
    for problem in record.problems or []:
        fields = {key: value for key, value in problem.items() if key in known}
        fields["suggestions"] = tuple(fields.get("suggestions") or ())
        report.problems.append(Problem(**fields))
    return report


@task(takes_context=True)
def run_import_job(context: TaskContext, *, record_id: int, token: str, language: str = "") -> dict[str, Any]:
    """The worker's side of an import: the upload's real import, its progress, its record finished."""
    with translation.override(language or None):
        return _import_job_run(context, record_id=record_id, token=token)


def _import_job_run(context: TaskContext, *, record_id: int, token: str) -> dict[str, Any]:
    record = ImportRecord.objects.select_related("user", "controller").get(pk=record_id)
    claimed = ImportRecord.objects.filter(pk=record_id, result=ImportRecord.Result.QUEUED).update(
        result=ImportRecord.Result.RUNNING, job_id=str(context.task_result.id)[:64]
    )
    if not claimed:  # run already (a job delivered twice): nothing to do twice
        return {"record": record_id, "result": record.result}
    record.result = ImportRecord.Result.RUNNING
    import_job_progress(record_id, 0)  # the first heartbeat: a worker holds the job
    started = time.monotonic()
    user = record.user
    report: ImportReport | None = None
    problems: list[Problem] = []
    try:
        editable = selectors.controllers_for(user, role=ControllerRole.EDITOR) if user else None
        if editable is None or not editable.filter(pk=record.controller_id).exists():
            raise uploads.UploadError(_("You may no longer import into this register."), code="controller")
        with history_context(record.channel, import_record=record, user=user):
            report = uploads.upload_confirm(
                token,
                user,
                channel=record.channel,
                progress=lambda done: import_job_progress(record_id, done),
            )
    except uploads.UploadError as error:
        problems = [Problem(level=ERROR, code=error.code, message=error.message)]
    except Exception:
        problems = [Problem(level=ERROR, code="job_failed", message=_("The import stopped unexpectedly."))]
        raise  # the task result keeps the traceback
    finally:
        _job_finish(record, report, problems, started)
    return {"record": record_id, "result": record.result}


def _job_finish(
    record: ImportRecord, report: ImportReport | None, problems: list[Problem], started: float
) -> None:
    committed = report is not None and report.committed
    record.result = ImportRecord.Result.IMPORTED if committed else ImportRecord.Result.FAILED
    if report is not None:
        record.shape = report.shape
        record.counts = {"rows": report.rows, **{name: c.to_dict() for name, c in report.counts.items()}}
        problems = [*problems, *report.problems]
    record.problems = [problem.to_dict() for problem in problems[:RECORD_PROBLEMS]]
    record.rows_done = report.rows if committed and report is not None else 0
    record.duration_ms = int((time.monotonic() - started) * 1000)
    record.save(update_fields=["result", "shape", "counts", "problems", "rows_done", "duration_ms"])
    uploads.upload_storage().delete(_progress_name(record.pk))
