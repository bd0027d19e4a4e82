"""Production settings pass Django's deployment checks, and no secret is needed in the repository."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env_overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJANGO_") and key != "REDIS_URL"
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def check_deploy(**env_overrides):
    env = {
        "DJANGO_SETTINGS_MODULE": "registry.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "registry.example.com",
        **env_overrides,
    }
    return run_manage("check", "--deploy", "--fail-level", "WARNING", **env)


def test_check_deploy_is_clean_under_production_settings():
    # Nothing connects to Redis during the checks: the address only has to be configured.
    result = check_deploy(REDIS_URL="redis://localhost:6379/0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_throttles_count_per_process():
    result = check_deploy()
    assert result.returncode != 0
    assert "processors.W001" in result.stdout + result.stderr
    assert "REDIS_URL" in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DJANGO_SETTINGS_MODULE="registry.settings")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_debug_is_off_unless_asked_for():
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.DEBUG, settings.SESSION_COOKIE_SECURE)",
        DJANGO_SETTINGS_MODULE="registry.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
    )
    assert result.stdout.split() == ["False", "True"], result.stderr


@pytest.mark.django_db
def test_create_local_admin_prints_a_generated_password_once(django_user_model):
    from io import StringIO

    from django.core.management import call_command

    first, second = StringIO(), StringIO()
    call_command("create_local_admin", stdout=first)
    call_command("create_local_admin", stdout=second)
    password = first.getvalue().split("password: ")[1].split()[0]
    assert django_user_model.objects.get(username="admin").check_password(password)
    assert password not in second.getvalue()
    assert "http://127.0.0.1:8000/admin/" in second.getvalue()
