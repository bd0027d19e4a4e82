"""The audit trail outlives its users: an author is deactivated, not deleted, and is named regardless."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from rest_framework.test import APIClient

from processors import services
from processors.history import history_for, user_has_audit_trail
from processors.models import ImportRecord, PublishedVersion
from processors.spreadsheets.importer import import_register
from tests.builders import make_controller, make_processor

pytestmark = pytest.mark.django_db

TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "实名认证服务\t甲科技有限公司\t姓名\t实名认证\t收集\n"
)


@pytest.fixture(autouse=True)
def english(settings):
    # The assertions read the English messages; the default language is Chinese.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def carol(django_user_model):
    """An editor who imported a table, edited a processor over the API and published a version."""
    user = django_user_model.objects.create_superuser("carol", "carol@example.com", "pw")
    controller = make_controller()
    import_register(TABLE, controller=controller, file_name="register.tsv", user=user)
    processor = make_processor()
    client = APIClient()
    client.force_authenticate(user)
    assert client.patch(f"/api/v1/processors/{processor.pk}/", {"notes": "checked"}).status_code == 200
    today = datetime.date(2026, 1, 1)
    services.version_publish(
        controller=controller, label="v1", updated_on=today, effective_on=today, user=user
    )
    user.processor = processor
    return user


def test_a_user_who_changed_the_register_has_an_audit_trail(carol, django_user_model):
    newcomer = django_user_model.objects.create_user("dave", password="pw")

    assert (user_has_audit_trail(carol), user_has_audit_trail(newcomer)) == (True, False)


def test_deleting_an_author_is_refused_and_deactivating_is_offered(carol):
    with pytest.raises(ValidationError, match="Deactivate the account instead"):
        services.user_delete(user=carol)

    services.user_deactivate(user=carol)

    carol.refresh_from_db()
    assert carol.is_active is False


def test_a_user_without_an_audit_trail_can_be_deleted(django_user_model):
    newcomer = django_user_model.objects.create_user("dave", password="pw")

    services.user_delete(user=newcomer)

    assert not django_user_model.objects.filter(username="dave").exists()


def test_the_admin_refuses_to_delete_an_author_with_the_reason(carol, admin_client):
    response = admin_client.post(f"/admin/auth/user/{carol.pk}/delete/", {"post": "yes"}, follow=True)

    assert "Deactivate the account instead" in response.content.decode()
    assert type(carol).objects.filter(pk=carol.pk).exists()


def test_the_admin_bulk_delete_keeps_authors(carol, admin_client, django_user_model):
    newcomer = django_user_model.objects.create_user("dave", password="pw")

    admin_client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [carol.pk, newcomer.pk], "post": "yes"},
    )

    assert set(django_user_model.objects.values_list("username", flat=True)) >= {"carol"}
    assert not django_user_model.objects.filter(username="dave").exists()


def test_history_imports_and_versions_still_name_an_author_whose_account_is_gone(carol):
    processor = carol.processor
    type(carol).objects.filter(pk=carol.pk).delete()  # past the refusal, as a database shell would

    edits = [entry for entry in history_for(processor) if entry.type == "changed"]
    assert [entry.user for entry in edits] == ["carol"]
    assert ImportRecord.objects.get(file_name="register.tsv").username == "carol"
    assert PublishedVersion.objects.get(label="v1").published_by_name == "carol"


def test_the_processor_history_api_names_an_author_whose_account_is_gone(carol, api_client):
    processor = carol.processor
    type(carol).objects.filter(pk=carol.pk).delete()

    entries = api_client.get(f"/api/v1/processors/{processor.pk}/history/").json()

    assert "carol" in {entry["user"] for entry in entries}
