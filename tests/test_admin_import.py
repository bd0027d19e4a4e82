"""The admin import: upload → preview (dry run) → header mapping → confirm, around the shared upload flow."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from processors.models import Operation
from tests.builders import make_controller

pytestmark = pytest.mark.django_db

DEMO_TABLE = Path(settings.BASE_DIR) / "fixtures" / "itrus-sdk-table.tsv"
UNKNOWN_HEADER_TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t神秘的一列\n短信服务\t某短信公司\t手机号\t随便\n"
)
IMPORT_URL = reverse("admin:processors_operation_import")


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.REGISTER_UPLOAD_DIR = str(tmp_path / "uploads")


@pytest.fixture
def controller():
    return make_controller(code="new-controller", name_zh="新公司")


def upload_demo(client, controller):
    data = DEMO_TABLE.read_bytes()
    file = SimpleUploadedFile(DEMO_TABLE.name, data, content_type="text/tab-separated-values")
    return client.post(IMPORT_URL, {"controller": controller.code, "file": file})


def preview_counts(response) -> dict:
    return {name: counts.to_dict() for name, counts in response.context["report"].counts.items()}


def test_the_upload_page_opens_with_a_controller_choice(admin_client, controller):
    response = admin_client.get(IMPORT_URL)

    assert response.status_code == 200
    assert 'name="controller"' in response.content.decode()


def test_uploading_the_demo_table_leads_to_its_preview(admin_client, controller):
    response = upload_demo(admin_client, controller)

    assert response.status_code == 302
    assert "/admin/processors/operation/import/" in response.url


def test_the_preview_shows_43_operations_to_be_created_and_writes_nothing(admin_client, controller):
    preview = admin_client.get(upload_demo(admin_client, controller).url)

    assert preview.status_code == 200
    assert preview_counts(preview)["operations"] == {"created": 43, "changed": 0, "unchanged": 0}
    assert Operation.objects.count() == 0


def test_confirming_the_preview_creates_the_operations_and_returns_to_the_changelist(
    admin_client, controller
):
    token = upload_demo(admin_client, controller).url.rstrip("/").rsplit("/", 1)[-1]

    response = admin_client.post(reverse("admin:processors_operation_import_confirm", args=[token]))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:processors_operation_changelist"))
    assert Operation.objects.filter(service__controller=controller).count() == 43


def test_the_result_message_counts_the_created_operations(admin_client, controller):
    token = upload_demo(admin_client, controller).url.rstrip("/").rsplit("/", 1)[-1]

    response = admin_client.post(
        reverse("admin:processors_operation_import_confirm", args=[token]),
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert "43 operations created" in response.content.decode()


def test_a_pasted_table_with_an_unknown_header_shows_the_mapping_step(admin_client, controller):
    response = admin_client.post(
        IMPORT_URL, {"controller": controller.code, "text": UNKNOWN_HEADER_TABLE}, follow=True
    )

    assert response.context["preview"].unknown_headers == ["神秘的一列"]
    assert 'id="header-mapping"' in response.content.decode()


def test_mapping_the_unknown_header_to_ignore_clears_the_mapping_step(admin_client, controller):
    preview_url = admin_client.post(
        IMPORT_URL, {"controller": controller.code, "text": UNKNOWN_HEADER_TABLE}
    ).url

    admin_client.post(preview_url, {"header_0": "ignore"})
    response = admin_client.get(preview_url)

    assert not response.context["preview"].needs_header_map
    assert response.context["report"].ok


def test_discarding_an_upload_imports_nothing(admin_client, controller):
    token = upload_demo(admin_client, controller).url.rstrip("/").rsplit("/", 1)[-1]

    admin_client.post(reverse("admin:processors_operation_import_discard", args=[token]))
    response = admin_client.get(reverse("admin:processors_operation_import_preview", args=[token]))

    assert response.status_code == 302
    assert Operation.objects.count() == 0


def test_a_staff_user_without_add_permission_is_refused(client, django_user_model, controller):
    user = django_user_model.objects.create_user("reader", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_operation"))
    client.force_login(user)

    assert client.get(IMPORT_URL).status_code == 403
    assert (
        client.post(IMPORT_URL, {"controller": controller.code, "text": UNKNOWN_HEADER_TABLE}).status_code
        == 403
    )


def test_another_users_upload_cannot_be_confirmed(admin_client, client, django_user_model, controller):
    token = upload_demo(admin_client, controller).url.rstrip("/").rsplit("/", 1)[-1]
    other = django_user_model.objects.create_superuser("other", "other@example.com", "pw")
    client.force_login(other)

    client.post(reverse("admin:processors_operation_import_confirm", args=[token]))

    assert Operation.objects.count() == 0


def test_the_confirm_step_refuses_a_request_without_a_csrf_token(admin_user, controller):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user)

    response = csrf_client.post(IMPORT_URL, {"controller": controller.code, "text": UNKNOWN_HEADER_TABLE})

    assert response.status_code == 403


def test_the_operation_and_processor_changelists_link_to_the_import(admin_client):
    for model in ("operation", "processor"):
        content = admin_client.get(reverse(f"admin:processors_{model}_changelist")).content.decode()
        assert IMPORT_URL in content


def test_an_import_confirmed_in_the_admin_is_recorded_as_coming_from_the_admin(admin_client, controller):
    from processors.models import ImportRecord

    token = upload_demo(admin_client, controller).url.rstrip("/").rsplit("/", 1)[-1]
    admin_client.get(reverse("admin:processors_operation_import_preview", args=[token]))
    admin_client.post(reverse("admin:processors_operation_import_confirm", args=[token]))

    records = ImportRecord.objects.filter(controller=controller)
    assert {(record.channel, record.result) for record in records} == {
        ("admin", "previewed"),
        ("admin", "imported"),
    }


def test_an_import_into_a_new_controller_ends_on_the_operations_of_that_controller(admin_client, admin_user):
    from processors.models import Controller, ControllerMembership, ControllerRole

    real = Path(settings.BASE_DIR) / "tests" / "data" / "real" / "16-sage-subprocessors.md"
    file = SimpleUploadedFile(real.name, real.read_bytes())
    new = {"controller": "+new", "new_code": "sage", "new_name_en": "Sage Bionetworks"}
    preview = admin_client.post(IMPORT_URL, {**new, "file": file})["Location"]
    token = preview.rstrip("/").rsplit("/", 1)[-1]
    assert not Controller.objects.filter(code="sage").exists()

    done = admin_client.post(reverse("admin:processors_operation_import_confirm", args=[token]))

    assert done["Location"].endswith("?controller=sage")
    assert Operation.objects.filter(service__controller__code="sage").count() == 13
    assert ControllerMembership.objects.filter(
        controller__code="sage", user=admin_user, role=ControllerRole.ADMIN
    ).exists()
