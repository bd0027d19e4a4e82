"""Two app servers share one write budget when REDIS_URL points them at one cache.

Two gunicorn processes run the production settings on the test's own (committed) database, one port
each, so the requests are known to be split between them. Writes alternate between the two; with Redis
the accepted count is the write rate, not twice it. The same run on the per-process cache (no
REDIS_URL) accepts twice the rate, which is what `check --deploy` warns about (processors.W001,
tests/test_deployment.py) and shows that this test can tell the two apart.
"""

import os
import secrets
import socket
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from rest_framework.authtoken.models import Token

from tests.processes import database_url, gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)

# A database number of its own, emptied before each run, so nothing else's keys are touched or counted.
REDIS_URL = "redis://127.0.0.1:6379/13"
WRITE_BUDGET = 10


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def server_environment(redis_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env.pop("REDIS_URL", None)
    env.update(
        {
            # The production settings, as a deployment runs them; only TLS is off on the loopback.
            "DJANGO_SETTINGS_MODULE": "registry.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_CONN_MAX_AGE": "0",
            "DJANGO_API_WRITE_RATE": f"{WRITE_BUDGET}/min",
            "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def writes_accepted(tmp_path: Path, token: str, *, redis_url: str, attempts: int) -> dict[int, int]:
    """POST ``attempts`` new processors, alternating between two servers; returns {status: count}."""
    statuses: dict[int, int] = {}
    with ExitStack() as stack:
        env = server_environment(redis_url)
        servers = [stack.enter_context(gunicorn_server(env, tmp_path)) for _ in range(2)]
        headers = {"Authorization": f"Token {token}", "Accept-Language": "en"}
        for number in range(attempts):
            response = requests.post(
                f"{servers[number % 2]}/api/v1/processors/",
                json={"name_en": f"Throttled {redis_url[-2:]} {number}"},
                headers=headers,
                timeout=30,
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


@pytest.fixture
def token(django_user_model) -> str:
    user = django_user_model.objects.create_superuser("writer", "writer@example.com", "writer-password")
    return Token.objects.create(user=user).key


@pytest.fixture
def empty_redis_db():
    if not redis_reachable():
        pytest.skip("no Redis on 127.0.0.1:6379 (.ci/run starts one)")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield
    client.flushdb()


def test_two_servers_on_redis_share_one_write_budget(tmp_path, token, empty_redis_db):
    statuses = writes_accepted(tmp_path, token, redis_url=REDIS_URL, attempts=3 * WRITE_BUDGET)

    assert statuses == {201: WRITE_BUDGET, 429: 2 * WRITE_BUDGET}


def test_two_servers_on_a_per_process_cache_each_allow_the_whole_budget(tmp_path, token):
    # What the deployment check warns about: each process counts on its own, so the limit doubles.
    statuses = writes_accepted(tmp_path, token, redis_url="", attempts=3 * WRITE_BUDGET)

    assert statuses == {201: 2 * WRITE_BUDGET, 429: WRITE_BUDGET}
