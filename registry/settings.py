"""Settings for the Processor Registry.

Everything that differs between a laptop and production comes from the environment
(cookiecutter-django style). Defaults are safe: DEBUG is off unless DJANGO_DEBUG says otherwise,
and a production start without DJANGO_SECRET_KEY refuses to run.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


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
    "processors",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # After simple_history's: the channel (admin, API, browser) every history row of the request carries.
    "processors.history.HistoryChannelMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Authentication -------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

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

# --- REST framework -------------------------------------------------------------------------------
# The API at /api/v1/ (processors/api.py). Reading needs the model's view permission, as in the admin,
# unless DJANGO_REGISTER_PUBLIC_READ=1 opens it for a public disclosure deployment; writing needs the
# add/change/delete permission and is throttled per user.

REGISTER_PUBLIC_READ = env_bool("DJANGO_REGISTER_PUBLIC_READ", default=False)

REST_FRAMEWORK = {
    # Token first, so an anonymous request is told how to authenticate (401) rather than refused (403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The register's own policy classes (processors.api.RegisterAPIMixin) are set on its views, because
    # DRF imports these defaults while defining APIView, before processors.api can be imported; these
    # defaults only keep any other DRF view closed and paginated.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Imports (previews included) parse whole files, so they have their own, lower rate.
    "DEFAULT_THROTTLE_RATES": {
        "writes": os.environ.get("DJANGO_API_WRITE_RATE", "60/min"),
        "imports": os.environ.get("DJANGO_API_IMPORT_RATE", "30/hour"),
    },
    "EXCEPTION_HANDLER": "processors.api.exception_handler",
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
        "processors.api.document_errors",
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
# Data rows per sheet, below the header.
REGISTER_IMPORT_MAX_ROWS = int(os.environ.get("DJANGO_REGISTER_IMPORT_MAX_ROWS", 20_000))
REGISTER_IMPORT_MAX_COLUMNS = int(os.environ.get("DJANGO_REGISTER_IMPORT_MAX_COLUMNS", 100))
# Excel's own limit for one cell, so nothing typed in Excel is refused.
REGISTER_IMPORT_MAX_CELL_CHARS = int(os.environ.get("DJANGO_REGISTER_IMPORT_MAX_CELL_CHARS", 32_767))

# --- Browser UI -----------------------------------------------------------------------------------
# Uploads wait here between preview and confirm (processors/spreadsheets/uploads.py), bound to their
# user and deleted after REGISTER_UPLOAD_TTL seconds. Default: a folder in the system temp directory.
REGISTER_UPLOAD_DIR = os.environ.get("DJANGO_REGISTER_UPLOAD_DIR") or None
REGISTER_UPLOAD_TTL = int(os.environ.get("DJANGO_REGISTER_UPLOAD_TTL", 3600))
# Who may frame a public disclosure table (/disclosure/<code>/embed/), as CSP frame-ancestors sources;
# empty means any site, since the embedded table is public and read-only.
REGISTER_EMBED_FRAME_ANCESTORS = env_list("DJANGO_REGISTER_EMBED_FRAME_ANCESTORS")
