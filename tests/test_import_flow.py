"""One import flow for the site and the admin: the same views and templates, each in its own frame."""

import pytest
from django.urls import reverse

from processors.models import ImportRecord, Operation
from tests.builders import make_controller

pytestmark = pytest.mark.django_db

TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "客服\t某客服有限公司\t姓名\t客户服务\t使用\n"
)
STEPS = {
    "site": ("processors:import", "processors:import-preview", "processors:import-confirm"),
    "admin": (
        "admin:processors_operation_import",
        "admin:processors_operation_import_preview",
        "admin:processors_operation_import_confirm",
    ),
}


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.REGISTER_UPLOAD_DIR = str(tmp_path / "uploads")


@pytest.fixture(autouse=True)
def controller():
    return make_controller(code="acme")


def template_names(response) -> list[str]:
    return [template.name for template in response.templates]


def preview_url(client, place: str) -> str:
    upload, _preview, _confirm = STEPS[place]
    return client.post(reverse(upload), {"controller": "acme", "text": TABLE})["Location"]


@pytest.mark.parametrize(
    ("place", "frame"),
    [("site", "processors/import/site_page.html"), ("admin", "admin/processors/import_page.html")],
)
def test_the_upload_and_preview_pages_are_one_set_of_templates_in_each_places_frame(
    admin_client, place, frame
):
    upload = admin_client.get(reverse(STEPS[place][0]))
    preview = admin_client.get(preview_url(admin_client, place))

    assert template_names(upload)[:2] == ["processors/import/upload.html", frame]
    assert template_names(preview)[:2] == ["processors/import/preview.html", frame]


def test_the_admin_frame_shows_the_admin_header_and_breadcrumbs(admin_client):
    page = admin_client.get(reverse("admin:processors_operation_import")).content.decode()

    assert 'id="site-name"' in page
    assert 'class="breadcrumbs"' in page
    assert reverse("admin:processors_operation_changelist") in page


@pytest.mark.parametrize("place", ["site", "admin"])
def test_the_preview_posts_to_its_own_places_confirm_step(admin_client, place):
    url = preview_url(admin_client, place)
    token = url.rstrip("/").rsplit("/", 1)[-1]

    page = admin_client.get(url).content.decode()

    assert f'action="{reverse(STEPS[place][2], args=[token])}"' in page


@pytest.mark.parametrize("place", ["site", "admin"])
def test_opening_the_confirm_address_goes_back_to_the_check_and_imports_nothing(admin_client, place):
    url = preview_url(admin_client, place)
    token = url.rstrip("/").rsplit("/", 1)[-1]

    response = admin_client.get(reverse(STEPS[place][2], args=[token]))

    assert response.status_code == 302
    assert response["Location"] == url
    assert Operation.objects.count() == 0


@pytest.mark.parametrize(("place", "channel"), [("site", "browser"), ("admin", "admin")])
def test_each_place_records_its_own_channel(admin_client, place, channel):
    url = preview_url(admin_client, place)
    token = url.rstrip("/").rsplit("/", 1)[-1]

    admin_client.post(reverse(STEPS[place][2], args=[token]))

    assert set(ImportRecord.objects.values_list("channel", "result")) == {(channel, "imported")}
