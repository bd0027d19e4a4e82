"""Hardening: the Content-Security-Policy, login throttling, shared rate limits, SQLite waiting for its
lock, hostile input answered with a 400, and one-line text without control characters."""

import base64
import datetime
import hashlib
import re
import runpy
import threading
import time
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from processors.checks import check_rate_limits_share_a_cache
from processors.middleware import parse_policy
from processors.models import Controller, Processor, PublishedVersion, Purpose
from tests.builders import make_controller, make_operation, make_service

PASSWORD = "admin-password-for-tests"  # the conftest admin's


@pytest.fixture
def public_controller(db):
    controller = make_controller(code="acme", name_zh="某某科技有限公司", disclosure_public=True)
    make_operation(service=make_service(controller), data_items=["手机号"])
    return controller


def policy(response) -> dict:
    return parse_policy(response["Content-Security-Policy"])


def settings_under(monkeypatch, **environ) -> dict:
    """The names registry/settings.py defines when run with these environment variables."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(Path(django_settings.BASE_DIR) / "registry" / "settings.py"))


# --- Content-Security-Policy ----------------------------------------------------------------------

PAGES = [
    "/",
    "/explorer/",
    "/admin/",
    "/api/v1/",
    "/disclosure/acme/",
    "/disclosure/acme/embed/",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_a_strict_content_security_policy(admin_client, public_controller, path):
    response = admin_client.get(path)

    assert response.status_code == 200
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]


@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/admin/login/", "/api/v1/auth/login/", "/disclosure/acme/"]
)
def test_anonymous_pages_carry_the_policy_too(client, public_controller, path):
    assert policy(client.get(path))["script-src"] == ["'self'"]


def test_pages_other_than_the_embed_may_not_be_framed(client, public_controller):
    assert policy(client.get("/disclosure/acme/"))["frame-ancestors"] == ["'none'"]


def test_a_public_embed_keeps_the_policy_and_may_be_framed_by_any_site_by_default(client, public_controller):
    directives = policy(client.get("/disclosure/acme/embed/"))

    assert directives["frame-ancestors"] == ["*"]
    assert directives["script-src"] == ["'self'"]


def test_the_embeds_frame_ancestors_follow_the_setting(client, public_controller, settings):
    settings.REGISTER_EMBED_FRAME_ANCESTORS = ["https://www.acme.example", "https://*.acme.example"]

    directives = policy(client.get("/disclosure/acme/embed/"))

    assert directives["frame-ancestors"] == ["https://www.acme.example", "https://*.acme.example"]
    assert directives["default-src"] == ["'self'"]


def test_the_embeds_frame_ancestors_come_from_the_environment(monkeypatch):
    configured = settings_under(
        monkeypatch, DJANGO_REGISTER_EMBED_FRAME_ANCESTORS="https://a.example, https://b.example"
    )

    assert configured["REGISTER_EMBED_FRAME_ANCESTORS"] == ["https://a.example", "https://b.example"]


def test_no_template_runs_an_inline_script():
    """Scripts have no 'unsafe-inline': a <script> without src, or an on…= handler, would not run."""
    inline = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>|\son[a-z]+=\"", re.I)
    offenders = [
        str(path)
        for path in Path(django_settings.BASE_DIR, "templates").rglob("*.html")
        if inline.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_browsable_apis_inline_handlers_are_allowed_by_their_hash_alone(admin_client):
    page = admin_client.get("/api/v1/", HTTP_ACCEPT="text/html")
    handlers = re.findall(r"""\son[a-z]+=(?:'([^']*)'|"([^"]*)")""", page.content.decode())

    allowed = policy(page)["script-src-attr"]
    assert handlers  # DRF's "Log out" link
    for single, double in handlers:
        digest = base64.b64encode(hashlib.sha256((single or double).encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed
    assert "'unsafe-inline'" not in allowed


# --- Login throttling -----------------------------------------------------------------------------

LOGIN_DOORS = ["/accounts/login/", "/admin/login/", "/api/v1/auth/login/"]


def log_in(client, door: str, password: str, address: str = "127.0.0.1"):
    return client.post(door, {"username": "admin", "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("door", LOGIN_DOORS)
def test_the_26th_password_is_refused_even_when_right(client, admin_user, door):
    answers = [log_in(client, door, "wrong-password").status_code for _ in range(25)]

    refused = log_in(client, door, PASSWORD)

    assert set(answers[:24]) == {200}  # the login form again, with its error
    assert answers[24] == 429  # the 25th wrong password is checked, and locks the pair out
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("door", LOGIN_DOORS)
def test_24_wrong_passwords_still_let_the_right_one_in(client, admin_user, door):
    for _ in range(24):
        log_in(client, door, "wrong-password")

    assert log_in(client, door, PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(admin_user.pk)


def test_a_lockout_is_per_user_and_address(client, admin_user):
    for _ in range(25):
        log_in(client, "/admin/login/", "wrong-password", address="192.0.2.1")

    assert log_in(client, "/admin/login/", PASSWORD, address="192.0.2.2").status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, admin_user):
    for _ in range(25):
        log_in(client, "/admin/login/", "wrong-password")
    assert log_in(client, "/admin/login/", PASSWORD).status_code == 429

    AccessAttempt.objects.update(
        attempt_time=timezone.now() - django_settings.AXES_COOLOFF_TIME - datetime.timedelta(seconds=1)
    )

    assert log_in(client, "/admin/login/", PASSWORD).status_code == 302


def test_the_lockout_is_a_page_with_the_policy(client, admin_user):
    for _ in range(26):
        response = client.post(
            "/admin/login/", {"username": "admin", "password": "wrong"}, HTTP_ACCEPT_LANGUAGE="en"
        )

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "Content-Security-Policy" in response


def test_the_limit_and_cool_off_come_from_the_environment(monkeypatch):
    configured = settings_under(monkeypatch, DJANGO_AXES_FAILURE_LIMIT="5", DJANGO_AXES_COOLOFF_MINUTES="90")

    assert configured["AXES_FAILURE_LIMIT"] == 5
    assert configured["AXES_COOLOFF_TIME"] == datetime.timedelta(minutes=90)


def test_a_cool_off_of_zero_locks_out_until_an_administrator_unlocks(monkeypatch):
    assert settings_under(monkeypatch, DJANGO_AXES_COOLOFF_MINUTES="0")["AXES_COOLOFF_TIME"] is None


# --- Rate limits in a shared cache ----------------------------------------------------------------

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://r:6379/0"}
}


def test_throttles_on_a_per_process_cache_are_warned_about():
    with override_settings(CACHES=LOCMEM):
        warnings = check_rate_limits_share_a_cache()

    assert [warning.id for warning in warnings] == ["processors.W001"]
    assert "REDIS_URL" in warnings[0].hint


def test_throttles_on_redis_are_not_warned_about():
    with override_settings(CACHES=REDIS):
        assert check_rate_limits_share_a_cache() == []


def test_the_redis_cache_comes_from_redis_url(monkeypatch):
    configured = settings_under(monkeypatch, REDIS_URL="redis://cache.internal:6379/1")["CACHES"]["default"]

    assert configured == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6379/1",
    }


# --- SQLite waits for its lock --------------------------------------------------------------------


@pytest.fixture
def file_database(tmp_path, django_db_blocker):
    """An alias for a fresh SQLite file with the default database's options, and one table."""
    if connections["default"].vendor != "sqlite":
        pytest.skip("the embedded SQLite default's settings; this run is on another database")
    alias = "concurrency"
    connections.settings[alias] = {**connections.settings["default"], "NAME": str(tmp_path / "db.sqlite3")}
    with django_db_blocker.unblock():
        with connections[alias].cursor() as cursor:
            cursor.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, writer TEXT)")
        connections[alias].close()
        yield alias
        connections[alias].close()
    del connections[alias]
    del connections.settings[alias]


def test_the_embedded_database_uses_wal_and_a_busy_timeout(file_database):
    with connections[file_database].cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA busy_timeout")
        busy_timeout = cursor.fetchone()[0]
    connections[file_database].close()

    assert journal_mode == "wal"
    assert busy_timeout == django_settings.DATABASES["default"]["OPTIONS"]["timeout"] * 1000
    assert connections[file_database].transaction_mode == "IMMEDIATE"


def test_two_concurrent_writers_on_sqlite_both_succeed(file_database):
    """Each reads then writes inside a transaction; the second waits for the first instead of failing."""
    first_holds_the_lock = threading.Event()
    errors: list[BaseException] = []

    def write(name: str, hold: float) -> None:
        try:
            with transaction.atomic(using=file_database), connections[file_database].cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM row")
                if hold:
                    first_holds_the_lock.set()
                    time.sleep(hold)
                cursor.execute("INSERT INTO row (writer) VALUES (%s)", [name])
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            errors.append(error)
            first_holds_the_lock.set()
        finally:
            connections[file_database].close()

    first = threading.Thread(target=write, args=("first", 0.5))
    first.start()
    first_holds_the_lock.wait(5)
    second = threading.Thread(target=write, args=("second", 0))
    second.start()
    first.join(10)
    second.join(10)

    assert errors == []
    with connections[file_database].cursor() as cursor:
        cursor.execute("SELECT writer FROM row ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == ["first", "second"]
    connections[file_database].close()


# --- Hostile input is a 400 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/disclosure/acme/?lang=%00", "/disclosure/acme/?lang=en%1Bx", "/disclosure/ac%00me/", "/?x%0A=1"],
)
def test_a_control_character_in_a_public_address_is_a_400_page(client, public_controller, path):
    response = client.get(path)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert 'class="site-header"' in response.content.decode()
    assert "Content-Security-Policy" in response


def test_a_control_character_in_an_api_path_is_a_400_in_the_error_shape(api_client):
    response = api_client.get("/api/v1/%00/")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid", "message": response.json()["error"]["message"], "fields": {}}
    }


@pytest.mark.parametrize("query", ["search=%00", "x=%1B", "%00=1"])
def test_a_control_character_in_an_api_query_is_a_400_naming_the_parameter(api_client, query):
    response = api_client.get(f"/api/v1/processors/?{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter"
    assert list(error["fields"]) == [
        {"search=%00": "search", "x=%1B": "x", "%00=1": "non_field_errors"}[query]
    ]


def test_a_nul_in_a_form_field_is_a_400(admin_client, public_controller):
    response = admin_client.post(
        "/i18n/setlang/", "language=en&next=/%00", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 400


def test_line_breaks_and_tabs_in_a_query_value_are_not_refused(client, public_controller):
    assert client.get("/disclosure/acme/?lang=en%0D%0A%09").status_code != 400


def test_line_breaks_and_tabs_in_a_form_field_are_not_refused(client, admin_user):
    response = client.post(
        "/admin/login/",
        "username=a%09b%0D%0Ac&password=x",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200


def test_a_nul_in_an_api_form_body_is_a_400_in_the_error_shape(api_client):
    response = api_client.generic(
        "POST",
        "/api/v1/processors/",
        "name_zh=%E6%9F%90%00",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == ["name_zh"]


def test_an_oversized_urlencoded_api_body_is_answered_in_json(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api_client.generic(
        "POST",
        "/api/v1/processors/",
        "name_zh=" + "x" * 2000,
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert response.json()["error"]["fields"] == {}


def test_an_oversized_multipart_api_body_is_answered_in_json(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api_client.post("/api/v1/imports/", {"text": "x" * 2000}, format="multipart")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_an_oversized_browser_form_is_a_page(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = client.post(
        "/i18n/setlang/", "language=en&next=/" + "x" * 2000, content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")


# --- One-line text refuses control characters and bidirectional overrides -------------------------


def version(label: str) -> PublishedVersion:
    return PublishedVersion(
        controller=make_controller(),
        label=label,
        updated_on=datetime.date(2024, 1, 1),
        effective_on=datetime.date(2024, 1, 1),
        snapshot={"rows": []},
        snapshot_sha256="0" * 64,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("label", ["abc\u202edef", "a\r\nb", "v1\x00", "v\u2066 2", "v\x852"])
def test_a_version_label_refuses_control_and_bidirectional_characters(label):
    with pytest.raises(ValidationError) as refused:
        version(label).full_clean()

    assert [error.code for error in refused.value.error_dict["label"]] == ["unsafe_character"]


@pytest.mark.django_db
def test_a_plain_version_label_is_accepted():
    version("2024 年第一版 (v1.0)").full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (Processor, "name_zh", "某\u202e司公限有"),
        (Controller, "name_en", "Acme\nLtd"),
        (Purpose, "code", "sms_otp\n"),  # `$` in the code pattern alone lets a trailing line feed through
    ],
)
def test_names_and_codes_refuse_control_characters(model, field, value):
    with pytest.raises(ValidationError) as refused:
        model(**{field: value}).full_clean()

    assert "unsafe_character" in [error.code for error in refused.value.error_dict[field]]
