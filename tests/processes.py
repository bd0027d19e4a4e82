"""Real processes beside a test: background workers and app servers on the test's own database.

A test that needs them uses a transactional database (``transactional_db`` / ``live_server``), so what it
writes is committed and another process sees it. The processes run the test settings on that database
and on the test's upload folder, and are stopped (by their own process id) when the test ends.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def database_url() -> str:
    """The URL of the database this test runs on (its test database, not the configured one)."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    user = urllib.parse.quote(config.get("USER") or "")
    password = urllib.parse.quote(config.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = f"{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}"
    return f"postgres://{credentials}{host}/{config['NAME']}"


def process_environment(upload_dir: str, **extra: str) -> dict[str, str]:
    """The environment of a process that shares the test's database, uploads and queue."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registry.test_settings",
        "DATABASE_URL": database_url(),
        "DJANGO_REGISTER_UPLOAD_DIR": upload_dir,
        "DJANGO_TASK_BACKEND": "database",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def worker_process(upload_dir: str, log_dir: Path) -> Iterator[subprocess.Popen]:
    """`manage.py db_worker`, polling the test database's queue every 0.2 s."""
    log = log_dir / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--interval",
                "0.2",
                "--no-startup-delay",
                "--no-reload",
            ],
            cwd=ROOT,
            env=process_environment(upload_dir),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            _stop(process)


@contextmanager
def app_server(upload_dir: str, log_dir: Path, port: int) -> Iterator[str]:
    """One gunicorn app server on 127.0.0.1:port with the test settings; yields its base URL."""
    with gunicorn_server(process_environment(upload_dir), log_dir, port) as base:
        yield base


@contextmanager
def gunicorn_server(env: dict[str, str], log_dir: Path, port: int | None = None) -> Iterator[str]:
    """One gunicorn process (one worker) on 127.0.0.1:port with ``env``; yields its URL once it answers."""
    port = port or free_port()
    log = log_dir / f"server-{port}.log"
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "registry.wsgi", "--bind", f"127.0.0.1:{port}"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            # No control socket: two servers would share its one default path.
            [*command, "--workers", "1", "--timeout", "120", "--no-control-socket"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the app server on port {port} stopped: {log.read_text()[-2000:]}")
                try:
                    # The first request loads the application, which takes seconds on a busy machine.
                    requests.get(f"{base}/accounts/login/", timeout=30)
                    break
                except (requests.ConnectionError, requests.Timeout):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
            yield base
        finally:
            _stop(process)
