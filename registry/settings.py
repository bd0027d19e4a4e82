"""Settings for the Processor Registry.

Everything that differs between a laptop and production comes from the environment
(cookiecutter-django style). Defaults are safe: DEBUG is off unless DJANGO_DEBUG says otherwise,
and a production start without DJANGO_SECRET_KEY refuses to run.
"""

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_HASHES, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

# lxml is installed for the HTML and Word readers; openpyxl would then switch its own XML reading and
# writing to lxml. Keep openpyxl on defusedxml, which our workbook defences and export byte layout assume.
os.environ.setdefault("OPENPYXL_LXML", "False")


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Core -----------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", default=False)


def _development_secret_key() -> str:
    # A laptop gets a random key kept outside git, so sessions survive restarts and no key is committed.
    path = BASE_DIR / ".dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (_development_secret_key() if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for local development).")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_countries",
    "django_filters",
    "rest_framework",
    "simple_history",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "registry.apps.LoginAttemptsConfig",  # django-axes, with a translated name (registry/apps.py)
    # Background jobs (imports): Django's tasks API, with PostgreSQL (or SQLite) as the queue.
    "django_tasks",
    "registry.apps.JobQueueConfig",  # django-tasks-db, with a translated name
    "processors",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside everything that may answer, so refusals and error pages carry the policy too.
    "processors.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # After the language is known (its refusal page is translated), before anything reads the request.
    "processors.middleware.HostileInputMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # After simple_history's: the channel (admin, API, browser) every history row of the request carries.
    "processors.history.HistoryChannelMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login refused for too many failures into a 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
# SQLite is the embedded default so a newcomer needs nothing installed; production sets
# DATABASE_URL=postgres://user:password@host:5432/name (psycopg 3).

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent requests wait for each other instead of failing with "database is locked": WAL lets
    # readers go on beside the one writer; IMMEDIATE takes the write lock when a transaction begins, since
    # a transaction that reads first and writes later cannot wait for the lock, it fails at once; and
    # timeout is how many seconds a writer waits. PostgreSQL needs none of this.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": int(os.environ.get("DJANGO_SQLITE_TIMEOUT", "20")),
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------------
# API throttles count in this cache, so with several workers it must be one they share:
# REDIS_URL=redis://host:6379/0 in production (`check --deploy` warns otherwise, processors/checks.py).
# Without it each process counts on its own, which is only right for a single process.

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Authentication -------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Everyone signs in on the site's login (processors/accounts.py); the admin keeps its own for staff.
LOGIN_URL = os.environ.get("DJANGO_LOGIN_URL", "accounts:login")
LOGIN_REDIRECT_URL = os.environ.get("DJANGO_LOGIN_REDIRECT_URL", "processors:dashboard")
LOGOUT_REDIRECT_URL = os.environ.get("DJANGO_LOGOUT_REDIRECT_URL", "accounts:login")
# Password-reset links go by e-mail. Without DJANGO_EMAIL_BACKEND they are printed on the console, which
# suits a laptop; a deployment sets django.core.mail.backends.smtp.EmailBackend and the DJANGO_EMAIL_* below.
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "register@localhost")
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS")

# Login throttling (django-axes) on every door that takes a password: the admin login and the browsable
# API's (/api/v1/auth/login/); API tokens are not guessed. After AXES_FAILURE_LIMIT wrong passwords for
# one username from one address, that pair is refused (429) until the cool-off has passed, or for good
# with DJANGO_AXES_COOLOFF_MINUTES=0 until an administrator deletes the attempts in the admin. Failures
# are counted in the database, which every worker shares. Per username *and* address: by username alone
# anyone could lock the administrators out; by address alone an office behind one NAT shares a budget.
# Behind a proxy every request comes from the proxy's address, so the budget is per username there.
AUTHENTICATION_BACKENDS = [
    # First, so a locked-out pair is refused before its password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("DJANGO_AXES_FAILURE_LIMIT", "25"))
_axes_cooloff_minutes = int(os.environ.get("DJANGO_AXES_COOLOFF_MINUTES", "30"))
AXES_COOLOFF_TIME = timedelta(minutes=_axes_cooloff_minutes) if _axes_cooloff_minutes else None
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A successful login forgets that pair's earlier typos, so an occasional mistake never adds up to a lockout.
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "processors.middleware.login_lockout_response"
# The username as recorded, cut to the length of its column (a longer one made PostgreSQL fail the login).
AXES_USERNAME_CALLABLE = "processors.middleware.login_attempt_username"
# No start-up banner: it would be printed before every management command's own output.
AXES_VERBOSE = False

# --- Internationalisation -------------------------------------------------------------------------
# The register is bilingual: every label exists in Simplified Chinese and English.

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Uploads waiting between preview and confirm, and the progress of import jobs: one store every app
    # server and worker shares (see "Uploads and background jobs" below).
    "uploads": {
        "BACKEND": os.environ.get(
            "DJANGO_REGISTER_UPLOAD_STORAGE", "processors.spreadsheets.uploads.UploadFolderStorage"
        ),
        "OPTIONS": json.loads(os.environ.get("DJANGO_REGISTER_UPLOAD_STORAGE_OPTIONS") or "{}"),
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security -------------------------------------------------------------------------------------
# Production defaults; a deployment behind a TLS-terminating proxy sets DJANGO_SECURE_PROXY_SSL_HEADER=1.

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (django-csp): scripts only from our own static files, no
# plugins, forms and <base> only to this site, and no framing (the disclosure embed sets its own
# frame-ancestors from REGISTER_EMBED_FRAME_ANCESTORS below). No template has an inline script, so none
# needs a nonce; the one inline handler is the browsable API's "Log out" link (DRF's optional_logout
# tag), allowed by its hash alone. Styles may be inline: Django's admin, the browsable API and our admin
# templates write <style> blocks and style="" attributes, and a style cannot run code. Images may be
# data: URIs (Swagger UI's icons).
DRF_LOGOUT_ONCLICK_HASH = "'sha256-tHTC1YgZ5UbAs8E2Ib4NjuSS8R05d1nfPHtbmXq05WA='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "script-src-attr": [UNSAFE_HASHES, DRF_LOGOUT_ONCLICK_HASH],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging --------------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}

# --- Change history -------------------------------------------------------------------------------
# History is evidence of who changed the register: it is read-only everywhere (processors/history.py).

SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Reviews --------------------------------------------------------------------------------------
# Marking an operation or processor reviewed sets its next review this many days later (PIPL Art. 54
# expects regular audits); the dashboard lists what is overdue.

REGISTER_REVIEW_INTERVAL_DAYS = int(os.environ.get("DJANGO_REGISTER_REVIEW_INTERVAL_DAYS", 365))

# --- REST framework -------------------------------------------------------------------------------
# The API at /api/v1/ (processors/api.py). Reading needs the model's view permission, as in the admin,
# unless DJANGO_REGISTER_PUBLIC_READ=1 opens it for a public disclosure deployment; writing needs the
# add/change/delete permission and is throttled per user.

REGISTER_PUBLIC_READ = env_bool("DJANGO_REGISTER_PUBLIC_READ", default=False)
# API writes without If-Match are answered 428 when this is on; a stale If-Match is a 412 either way.
REGISTER_API_REQUIRE_IF_MATCH = env_bool("DJANGO_REGISTER_API_REQUIRE_IF_MATCH", default=False)

REST_FRAMEWORK = {
    # Token first, so an anonymous request is told how to authenticate (401) rather than refused (403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The register's own policy classes (processors.api.policy.RegisterAPIMixin) are set on its views, because
    # DRF imports these defaults while defining APIView, before processors.api can be imported; these
    # defaults only keep any other DRF view closed and paginated.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Imports (previews included) parse whole files, so they have their own, lower rate. Reads are
    # counted per user, or per address when anonymous (DJANGO_REGISTER_PUBLIC_READ=1).
    "DEFAULT_THROTTLE_RATES": {
        "reads": os.environ.get("DJANGO_API_READ_RATE", "600/min"),
        "writes": os.environ.get("DJANGO_API_WRITE_RATE", "60/min"),
        "imports": os.environ.get("DJANGO_API_IMPORT_RATE", "30/hour"),
    },
    "EXCEPTION_HANDLER": "processors.api.policy.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Processor Registry API",
    "DESCRIPTION": (
        "The register of every third party that receives personal information: query it by data category "
        "(code, Chinese or English name, or alias), by processor, purpose, country and more."
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The interactive docs load Swagger UI from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One ISO 3166 enum for every country field (recipients, controllers, transfer destinations).
    "ENUM_NAME_OVERRIDES": {"CountryEnum": "django_countries.countries"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "processors.api.policy.document_errors",
    ],
}

# --- Spreadsheet import limits --------------------------------------------------------------------
# What one uploaded register may cost before it is refused (processors/spreadsheets/readers.py):
# generous for a real disclosure table, small enough that a stray or hostile file cannot hurt. Each
# can be raised from the environment, e.g. DJANGO_REGISTER_IMPORT_MAX_ROWS=50000.

REGISTER_IMPORT_MAX_BYTES = int(os.environ.get("DJANGO_REGISTER_IMPORT_MAX_BYTES", 10 * 1024 * 1024))
# An .xlsx is a zip; this is what it unpacks to, read from its directory before anything is inflated.
REGISTER_IMPORT_MAX_UNPACKED_BYTES = int(
    os.environ.get("DJANGO_REGISTER_IMPORT_MAX_UNPACKED_BYTES", 100 * 1024 * 1024)
)
# Per part of the zip: real workbooks compress 5-20 times, zip bombs hundreds of times.
REGISTER_IMPORT_MAX_COMPRESSION_RATIO = int(
    os.environ.get("DJANGO_REGISTER_IMPORT_MAX_COMPRESSION_RATIO", 100)
)
# Data rows per sheet, below the header. Confirmed imports run as background jobs, so a large register
# (100,000 rows import in about a minute) no longer holds a request.
REGISTER_IMPORT_MAX_ROWS = int(os.environ.get("DJANGO_REGISTER_IMPORT_MAX_ROWS", 200_000))
# A second import into the same register waits this many seconds for the first, then is refused with
# "another import into this register is running" (never a 500).
REGISTER_IMPORT_LOCK_TIMEOUT = float(os.environ.get("DJANGO_REGISTER_IMPORT_LOCK_TIMEOUT", 60))
# A running import job whose worker has not reported progress for this long lost its worker (killed,
# machine gone); its transaction was rolled back, and the record is marked failed (processors/jobs.py).
# A chunk of an import reports within seconds; the final commit of 200,000 rows within a few minutes.
REGISTER_IMPORT_JOB_SILENCE_SECONDS = int(os.environ.get("DJANGO_REGISTER_IMPORT_JOB_SILENCE_SECONDS", 900))
REGISTER_IMPORT_MAX_COLUMNS = int(os.environ.get("DJANGO_REGISTER_IMPORT_MAX_COLUMNS", 100))
# Excel's own limit for one cell, so nothing typed in Excel is refused.
REGISTER_IMPORT_MAX_CELL_CHARS = int(os.environ.get("DJANGO_REGISTER_IMPORT_MAX_CELL_CHARS", 32_767))

# --- Uploads and background jobs ------------------------------------------------------------------
# Uploads wait between preview and confirm in the "uploads" storage (STORAGES above;
# processors/spreadsheets/uploads.py), bound to their user and deleted after REGISTER_UPLOAD_TTL
# seconds. Several app servers and workers must share it, so it is never a server's temp dir: by
# default a folder, DJANGO_REGISTER_UPLOAD_DIR (a shared volume when there are several machines); any
# Django storage backend instead with DJANGO_REGISTER_UPLOAD_STORAGE=dotted.path.Storage and its options
# as JSON in DJANGO_REGISTER_UPLOAD_STORAGE_OPTIONS (e.g. django-storages' S3 backend).
REGISTER_UPLOAD_DIR = os.environ.get("DJANGO_REGISTER_UPLOAD_DIR") or str(BASE_DIR / "var" / "uploads")
REGISTER_UPLOAD_TTL = int(os.environ.get("DJANGO_REGISTER_UPLOAD_TTL", 3600))
# Confirmed imports run as background jobs (processors/jobs.py, decision 27) on Django's tasks API: the
# database backend by default, so the database is the queue and `manage.py db_worker` runs them on any
# machine (`make run` starts one beside the server). DJANGO_TASK_BACKEND=immediate runs each job inside
# the request that starts it, for a process that has no worker (the test suite does).
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
}
_task_backend = os.environ.get("DJANGO_TASK_BACKEND", "database")
if _task_backend not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f"DJANGO_TASK_BACKEND must be one of {', '.join(_TASK_BACKENDS)}.")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[_task_backend]}}

# --- Browser UI -----------------------------------------------------------------------------------
# Who may frame a public disclosure table (/disclosure/<code>/embed/), as CSP frame-ancestors sources;
# empty means any site, since the embedded table is public and read-only.
REGISTER_EMBED_FRAME_ANCESTORS = env_list("DJANGO_REGISTER_EMBED_FRAME_ANCESTORS")
