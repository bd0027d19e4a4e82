import pytest
from django.core.cache import cache
from rest_framework.test import APIClient


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser(
        "admin", "admin@example.com", "admin-password-for-tests"
    )


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """API throttles count in the cache; every test starts with none spent."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """Threads need a database they can share: SQLite's in-memory test database cannot wait for a lock.

    The whole SQLite run uses one file database, so the threaded tests of tests/test_concurrency.py run
    in the default `make test` instead of skipping.
    """
    from django.conf import settings

    default = settings.DATABASES["default"]
    if default["ENGINE"] == "django.db.backends.sqlite3":
        default.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "concurrency.sqlite3")
