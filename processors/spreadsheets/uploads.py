"""The upload → preview → confirm core around the importer, shared by the browser, the admin and the API.

An uploaded file (or pasted text) is kept server-side under ``settings.REGISTER_UPLOAD_DIR`` (default: a
folder in the system temp dir) as two files named by a random token: the bytes and a small JSON
record of who uploaded them, for which controller, when, their SHA-256 and the header map chosen so
far. Only the uploading user can see, preview, confirm or discard an upload; it expires after
``settings.REGISTER_UPLOAD_TTL`` seconds (default one hour); the bytes are checked against their SHA-256
before every use, so a file changed on disk is refused rather than imported. Previewing is a dry run
of ``import_register``; confirming is the real import, after which the upload is gone. The pages of
the flow, one set for the site and the admin, are ``processors.import_flow``.
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

    @property
    def created(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.created_at)

    @property
    def expires(self) -> datetime.datetime:
        return self.created + datetime.timedelta(seconds=upload_ttl())


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


def upload_dir() -> Path:
    """Where uploads wait for confirmation (created on first use, readable by this process only)."""
    configured = getattr(settings, "REGISTER_UPLOAD_DIR", None)
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "processor-registry-uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def upload_ttl() -> int:
    return int(getattr(settings, "REGISTER_UPLOAD_TTL", DEFAULT_TTL))


def header_choices(spec: ColumnSpec = DISCLOSURE_COLUMNS) -> list[tuple[str, str]]:
    """The fields an unknown header can be mapped to, with their labels, and "ignore"."""
    return [(column.field, str(column.label)) for column in spec.columns if column.field != IGNORE] + [
        (IGNORE, _("ignore this column"))
    ]


def _paths(token: str) -> tuple[Path, Path]:
    if not _TOKEN.match(token or ""):
        raise UploadError(_("This upload does not exist (or has expired)."), code="unknown")
    folder = upload_dir()
    return folder / f"{token}.data", folder / f"{token}.json"


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _save_record(upload: Upload) -> None:
    _write_private(_paths(upload.token)[1], json.dumps(asdict(upload), ensure_ascii=False).encode("utf-8"))


def upload_store(
    *,
    user: Any,
    controller: Controller,
    file_name: str = "",
    data: bytes | None = None,
    text: str | None = None,
) -> Upload:
    """Keep an uploaded file (bytes) or pasted text for this user and controller; returns its record."""
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
    )
    _write_private(_paths(upload.token)[0], payload)
    _save_record(upload)
    return upload


def upload_get(token: str, user: Any) -> Upload:
    """The user's upload with this token, or UploadError when it is unknown, someone else's or expired."""
    data_path, record_path = _paths(token)
    try:
        upload = Upload(**json.loads(record_path.read_text(encoding="utf-8")))
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
    data_path, _record = _paths(upload.token)
    try:
        payload = data_path.read_bytes()
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
    )
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
    )
    if report.committed:
        upload_discard(token, user)
    return report


def upload_discard(token: str, user: Any) -> None:
    """Forget an upload (only its owner can); unknown tokens are ignored."""
    data_path, record_path = _paths(token)
    try:
        owner = json.loads(record_path.read_text(encoding="utf-8")).get("user_id")
    except (OSError, ValueError):
        owner = None
    if owner is not None and owner != getattr(user, "pk", None):
        return
    for path in (data_path, record_path):
        path.unlink(missing_ok=True)


def uploads_purge_expired(now: datetime.datetime | None = None) -> int:
    """Delete every expired upload (anyone's); returns how many were deleted."""
    now = now or timezone.now()
    deleted = 0
    for record_path in upload_dir().glob("*.json"):
        try:
            created = datetime.datetime.fromisoformat(
                json.loads(record_path.read_text("utf-8"))["created_at"]
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if now >= created + datetime.timedelta(seconds=upload_ttl()):
            record_path.with_suffix(".data").unlink(missing_ok=True)
            record_path.unlink(missing_ok=True)
            deleted += 1
    return deleted
