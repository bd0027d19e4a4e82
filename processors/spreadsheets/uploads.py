"""The upload → preview → confirm core around the importer, shared by the browser, the admin and the API.

An uploaded file (or pasted text) is kept in the ``uploads`` storage (``STORAGES["uploads"]``: by
default ``UploadFolderStorage``, a folder named by ``settings.REGISTER_UPLOAD_DIR``; any Django storage
backend in production) as two files named by a random token: the bytes and a small JSON record of who
uploaded them, for which controller, when, their SHA-256, the header map chosen so far and the rows the
last preview counted. Going through the storage API rather than a server's temp dir is what lets one
app server preview an upload and another (or a background worker) confirm it. Only the uploading user
can see, preview, confirm or discard an upload; it expires after ``settings.REGISTER_UPLOAD_TTL``
seconds (default one hour) and expired ones are deleted whenever a new one is stored; the bytes are
checked against their SHA-256 before every use, so a file changed in storage is refused rather than
imported. Previewing is a dry run of ``import_register``; confirming is the real import (run by a
background job, ``processors.jobs``), after which the upload is gone. The pages of the flow, one set
for the site and the admin, are ``processors.import_flow``.
"""

import datetime
import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils import timezone
from django.utils.translation import gettext as _

from processors.models import Channel, Controller
from processors.spreadsheets.columns import DISCLOSURE_COLUMNS, IGNORE, ColumnSpec
from processors.spreadsheets.importer import ProgressCallback, import_register
from processors.spreadsheets.report import ImportReport
from processors.validators import remove_unsafe_line_characters

DEFAULT_TTL = 60 * 60
PASTED_FILE_NAME = "pasted.tsv"
# token_urlsafe(32) gives 43 characters of [A-Za-z0-9_-]; anything else never reaches the file system.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


class UploadError(Exception):
    """An upload that cannot be used: unknown, someone else's, expired, changed on disk or empty."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Upload:
    """The record kept beside an upload's bytes."""

    token: str
    user_id: int
    controller_code: str
    file_name: str
    pasted: bool
    sha256: str
    size: int
    created_at: str
    header_map: dict[str, str] = field(default_factory=dict)
    # Rows the last preview read, so a job can show "rows done / total" while it runs.
    rows: int | None = None
    # The person's choices in the preview: a document's table (``ImportReport.tables`` index; the
    # likeliest when None) and the date the table took effect ("" for an undated table), ISO.
    table: int | None = None
    effective_from: str = ""
    # A controller to create when the import is confirmed ({"code", "name_zh", "name_en"}); empty once
    # it exists or when the upload is for an existing one (processors.import_flow creates it).
    new_controller: dict[str, str] = field(default_factory=dict)
    # The service a table without a service column (a sub-processor list) is imported into; the
    # importer's DEFAULT_SERVICE when empty.
    default_service: str = ""

    @property
    def created(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.created_at)

    @property
    def expires(self) -> datetime.datetime:
        return self.created + datetime.timedelta(seconds=upload_ttl())

    @property
    def effective_date(self) -> datetime.date | None:
        return datetime.date.fromisoformat(self.effective_from) if self.effective_from else None


@dataclass(frozen=True)
class UploadPreview:
    """A dry run of an upload: the report, and the headers the caller still has to map (if any)."""

    upload: Upload
    report: ImportReport
    unknown_headers: list[str]

    @property
    def needs_header_map(self) -> bool:
        return bool(self.unknown_headers)

    def to_dict(self) -> dict[str, Any]:
        """The preview as JSON-serialisable data (for the API)."""
        return {
            "token": self.upload.token,
            "file_name": self.upload.file_name,
            "controller": self.upload.controller_code,
            "expires": self.upload.expires.isoformat(),
            "header_map": self.upload.header_map,
            "unknown_headers": self.unknown_headers,
            "report": self.report.to_dict(),
        }


class UploadFolderStorage(FileSystemStorage):
    """The default upload storage: a folder only this user can read, ``REGISTER_UPLOAD_DIR`` unless given.

    The folder is read from the settings when used (not when the storage is made), so a test or a
    deployment that changes ``REGISTER_UPLOAD_DIR`` needs nothing else; a record rewritten in place
    (the header map, a job's progress) overwrites its file instead of getting a new name.
    """

    def __init__(self, location: str | None = None, **options: Any) -> None:
        options.setdefault("file_permissions_mode", 0o600)
        options.setdefault("directory_permissions_mode", 0o700)
        options["allow_overwrite"] = True
        super().__init__(location=location, **options)

    def _save(self, name: str, content: Any) -> str:
        # Written beside its place, then renamed over it: a reader on another server sees the old file or
        # the new one, never half of one (a job's progress is rewritten while the pages poll it).
        target = Path(self.path(name))
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, incoming = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as stream:
                for chunk in content.chunks():
                    stream.write(chunk)
            os.chmod(incoming, 0o600)
            os.replace(incoming, target)
        except BaseException:
            Path(incoming).unlink(missing_ok=True)
            raise
        return name

    @property
    def base_location(self) -> str:  # type: ignore[override]
        return str(self._location or settings.REGISTER_UPLOAD_DIR)

    @property
    def location(self) -> str:  # type: ignore[override]
        return str(Path(self.base_location).resolve())


def upload_storage() -> Storage:
    """The storage every app server and worker keeps uploads (and job progress) in."""
    return storages["uploads"]


def upload_dir() -> Path:
    """The folder of the default upload storage (created on first use, readable by this process only)."""
    path = Path(settings.REGISTER_UPLOAD_DIR)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def storage_put(name: str, data: bytes) -> None:
    """Write (or replace) one file of the upload storage under exactly this name."""
    storage = upload_storage()
    if not isinstance(storage, UploadFolderStorage):
        # Other backends may keep the old file and save under another name; the old one goes first.
        storage.delete(name)
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        storage.delete(saved)
        raise OSError(f"The upload storage saved {name} as {saved}.")


def storage_read(name: str) -> bytes:
    """One file of the upload storage (OSError when it is missing)."""
    try:
        with upload_storage().open(name, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        raise
    except Exception as error:  # remote backends raise their own errors for a missing object
        raise OSError(str(error)) from error


def upload_ttl() -> int:
    return int(getattr(settings, "REGISTER_UPLOAD_TTL", DEFAULT_TTL))


def header_choices(spec: ColumnSpec = DISCLOSURE_COLUMNS) -> list[tuple[str, str]]:
    """The fields an unknown header can be mapped to, with their labels, and "ignore"."""
    return [(column.field, str(column.label)) for column in spec.columns if column.field != IGNORE] + [
        (IGNORE, _("ignore this column"))
    ]


def _names(token: str) -> tuple[str, str]:
    if not _TOKEN.match(token or ""):
        raise UploadError(_("This upload does not exist (or has expired)."), code="unknown")
    return f"{token}.data", f"{token}.json"


def _save_record(upload: Upload) -> None:
    storage_put(_names(upload.token)[1], json.dumps(asdict(upload), ensure_ascii=False).encode("utf-8"))


def _read_record(token: str) -> dict[str, Any]:
    return json.loads(storage_read(_names(token)[1]).decode("utf-8"))


def upload_store(
    *,
    user: Any,
    controller: Controller,
    file_name: str = "",
    data: bytes | None = None,
    text: str | None = None,
    new_controller: dict[str, str] | None = None,
) -> Upload:
    """Keep an uploaded file (bytes) or pasted text for this user and controller; returns its record.

    ``controller`` may be unsaved, with ``new_controller`` its code and names: it is created when the
    import is confirmed.
    """
    if (data is None) == (text is None):
        raise ValueError("Give either data or text.")
    pasted = text is not None
    payload = text.encode("utf-8") if pasted else data
    if not payload or not payload.strip():
        raise UploadError(_("The file is empty."), code="empty")
    uploads_purge_expired()
    upload = Upload(
        token=secrets.token_urlsafe(32),
        user_id=user.pk,
        controller_code=controller.code,
        # A name is shown in previews, records and downloads: no control characters or bidi overrides
        # (U+202E would make "evil‮xslx.exe" read as "evilexe.xlsx").
        file_name=PASTED_FILE_NAME
        if pasted
        else (remove_unsafe_line_characters(Path(file_name).name) or "upload"),
        pasted=pasted,
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        created_at=timezone.now().isoformat(),
        new_controller=dict(new_controller or {}),
    )
    storage_put(_names(upload.token)[0], payload)
    _save_record(upload)
    return upload


def upload_get(token: str, user: Any) -> Upload:
    """The user's upload with this token, or UploadError when it is unknown, someone else's or expired."""
    try:
        upload = Upload(**_read_record(token))
    except (OSError, ValueError, TypeError):
        raise UploadError(_("This upload does not exist (or has expired)."), code="unknown") from None
    # Someone else's upload is reported exactly like a missing one, so tokens cannot be probed.
    if upload.user_id != getattr(user, "pk", None):
        raise UploadError(_("This upload does not exist (or has expired)."), code="unknown")
    if timezone.now() >= upload.expires:
        upload_discard(token, user)
        raise UploadError(_("This upload has expired; please upload the file again."), code="expired")
    return upload


def _source(upload: Upload) -> bytes | str:
    try:
        payload = storage_read(_names(upload.token)[0])
    except OSError:
        raise UploadError(_("This upload does not exist (or has expired)."), code="unknown") from None
    if hashlib.sha256(payload).hexdigest() != upload.sha256:
        raise UploadError(
            _("The stored file no longer matches what was uploaded; please upload it again."), code="changed"
        )
    return payload.decode("utf-8") if upload.pasted else payload


def _controller(upload: Upload) -> Controller:
    controller = Controller.objects.filter(code=upload.controller_code).first()
    if controller is None:
        raise UploadError(
            _("The controller %(code)s no longer exists.") % {"code": upload.controller_code},
            code="controller",
        )
    return controller


def upload_set_header_map(token: str, user: Any, *, header_map: dict[str, str]) -> Upload:
    """Remember how the upload's unknown headers map onto fields, for the next preview and the confirm."""
    allowed = {value for value, _label in header_choices()}
    unknown = sorted(set(header_map.values()) - allowed)
    if unknown:
        raise UploadError(_("Unknown field: %(fields)s.") % {"fields": ", ".join(unknown)}, code="header_map")
    upload = replace(upload_get(token, user), header_map=dict(header_map))
    _save_record(upload)
    return upload


def upload_preview(
    token: str,
    user: Any,
    *,
    header_map: dict[str, str] | None = None,
    channel: Channel | str = Channel.BROWSER,
) -> UploadPreview:
    """Dry-run the upload (with a new header map, if given) and report what an import would do."""
    upload = upload_get(token, user)
    if header_map is not None:
        upload = upload_set_header_map(token, user, header_map=header_map)
    report = import_register(
        _source(upload),
        controller=_controller(upload),
        file_name=upload.file_name,
        dry_run=True,
        header_map=upload.header_map,
        user=user,
        channel=channel,
        table=upload.table,
        effective_from=upload.effective_date,
        default_service=upload.default_service or None,
    )
    if report.rows != upload.rows:
        upload = upload_set_rows(upload, report.rows)
    unknown = [problem.value for problem in report.errors if problem.code == "header_unknown"]
    return UploadPreview(upload=upload, report=report, unknown_headers=list(dict.fromkeys(unknown)))


def upload_confirm(
    token: str,
    user: Any,
    *,
    progress: ProgressCallback | None = None,
    channel: Channel | str = Channel.BROWSER,
) -> ImportReport:
    """Import the upload for real; on success it is discarded, on errors it stays for another look."""
    upload = upload_get(token, user)
    report = import_register(
        _source(upload),
        controller=_controller(upload),
        file_name=upload.file_name,
        header_map=upload.header_map,
        user=user,
        progress=progress,
        channel=channel,
        table=upload.table,
        effective_from=upload.effective_date,
        default_service=upload.default_service or None,
    )
    if report.committed:
        upload_discard(token, user)
    return report


def upload_set_choices(token: str, user: Any, **choices: Any) -> Upload:
    """Remember the preview's choices (``table``, ``effective_from``, ``new_controller``,
    ``default_service``) for the confirm."""
    unknown = set(choices) - {"table", "effective_from", "new_controller", "default_service"}
    if unknown:
        raise TypeError(f"Not a choice of an upload: {', '.join(sorted(unknown))}")
    upload = replace(upload_get(token, user), **choices)
    _save_record(upload)
    return upload


def upload_set_rows(upload: Upload, rows: int) -> Upload:
    """Remember how many rows the upload's preview read (the total a job's progress counts towards)."""
    upload = replace(upload, rows=rows)
    _save_record(upload)
    return upload


def upload_discard(token: str, user: Any) -> None:
    """Forget an upload (only its owner can); unknown tokens are ignored."""
    data_name, record_name = _names(token)
    try:
        owner = _read_record(token).get("user_id")
    except (OSError, ValueError):
        owner = None
    if owner is not None and owner != getattr(user, "pk", None):
        return
    storage = upload_storage()
    for name in (data_name, record_name):
        storage.delete(name)


def uploads_purge_expired(now: datetime.datetime | None = None) -> int:
    """Delete every expired upload (anyone's); returns how many were deleted."""
    now = now or timezone.now()
    storage = upload_storage()
    deleted = 0
    try:
        _folders, names = storage.listdir("")
    except FileNotFoundError:  # nothing stored yet
        return 0
    for name in names:
        token = name.removesuffix(".json")
        if token == name or not _TOKEN.match(token):
            continue
        try:
            created = datetime.datetime.fromisoformat(_read_record(token)["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if now >= created + datetime.timedelta(seconds=upload_ttl()):
            for stored in _names(token):
                storage.delete(stored)
            deleted += 1
    return deleted
