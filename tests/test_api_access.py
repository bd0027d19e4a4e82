"""Who may read and write through the API: view permission to read, model permissions to write."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from processors.api import policy
from tests.builders import make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("reader", "reader@example.com", "reader-password-for-tests")


def grant(user, *codenames: str):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # a fresh object: permissions are cached per instance


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def new_processor_payload() -> dict:
    return {"name_zh": "新受托方有限公司"}


def test_an_anonymous_read_is_refused_with_401():
    response = APIClient().get("/api/v1/operations/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_an_anonymous_write_is_refused_and_never_a_500():
    response = APIClient().post("/api/v1/operations/", {"service": 1}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_reading_needs_the_view_permission(user):
    assert as_user(user).get("/api/v1/operations/").status_code == 403
    assert as_user(grant(user, "view_operation")).get("/api/v1/operations/").status_code == 200


def test_the_view_permission_does_not_allow_writing(user):
    client = as_user(grant(user, "view_processor"))
    response = client.post("/api/v1/processors/", new_processor_payload(), format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_the_add_permission_allows_creating(user):
    client = as_user(grant(user, "view_processor", "add_processor"))
    assert client.post("/api/v1/processors/", new_processor_payload(), format="json").status_code == 201


def test_deleting_needs_the_delete_permission(user):
    operation = make_operation()
    client = as_user(grant(user, "view_operation", "change_operation"))
    assert client.delete(f"/api/v1/operations/{operation.pk}/").status_code == 403


def test_a_token_authenticates(admin_user):
    token = Token.objects.create(user=admin_user)
    response = APIClient().get("/api/v1/operations/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_a_wrong_token_is_a_401(admin_user):
    response = APIClient().get("/api/v1/operations/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_session_write_needs_the_csrf_token(admin_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get("/api/v1/processors/").status_code == 200
    response = client.post("/api/v1/processors/", new_processor_payload(), format="json")
    assert response.status_code == 403


def test_public_read_opens_reading_to_anyone(settings):
    settings.REGISTER_PUBLIC_READ = True
    make_operation()
    assert APIClient().get("/api/v1/operations/").status_code == 200
    assert APIClient().get("/api/v1/matrix/").status_code == 200


def test_public_read_does_not_open_writing(settings):
    settings.REGISTER_PUBLIC_READ = True
    assert APIClient().post("/api/v1/processors/", new_processor_payload(), format="json").status_code == 401


def test_writes_are_throttled_per_user(admin_user, monkeypatch):
    monkeypatch.setattr(policy.WriteRateThrottle, "THROTTLE_RATES", {"writes": "2/min"})
    client = as_user(admin_user)
    service = make_service()
    statuses = [
        client.post(
            "/api/v1/operations/", {"service": service.pk, "processor": make_processor().pk}, format="json"
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
    assert client.get("/api/v1/operations/").status_code == 200


def test_reads_are_throttled_per_user_apart_from_writes(admin_user, monkeypatch):
    monkeypatch.setattr(policy.ReadRateThrottle, "THROTTLE_RATES", {"reads": "2/min"})
    client = as_user(admin_user)
    statuses = [client.get("/api/v1/processors/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # The read budget is spent; a write still has its own.
    assert client.post("/api/v1/processors/", {"name_zh": "丙公司"}, format="json").status_code == 201


def test_a_throttled_write_answers_in_the_error_shape(admin_user, monkeypatch):
    monkeypatch.setattr(policy.WriteRateThrottle, "THROTTLE_RATES", {"writes": "1/min"})
    client = as_user(admin_user)
    client.post("/api/v1/processors/", {"name_zh": "甲公司"}, format="json")
    response = client.post("/api/v1/processors/", {"name_zh": "乙公司"}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
