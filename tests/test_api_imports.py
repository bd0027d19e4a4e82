"""POST /api/v1/imports/ previews or imports a disclosure table through the one import core."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from processors.models import ControllerRole, ImportRecord, Operation, Processor, Service
from tests.builders import make_controller, make_member

pytestmark = pytest.mark.django_db

ITRUS_TABLE = Path(settings.BASE_DIR) / "fixtures" / "itrus-sdk-table.tsv"
DATA = Path(__file__).parent / "data"


@pytest.fixture
def controller():
    return make_controller(code="newapp", name_zh="新应用")


def upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes())


def post_import(client: APIClient, **data):
    return client.post("/api/v1/imports/", data, format="multipart")


def row_counts() -> tuple[int, int, int]:
    return Operation.objects.count(), Processor.objects.count(), Service.objects.count()


def test_a_dry_run_on_the_itrus_table_previews_43_operations_and_writes_nothing(api_client, controller):
    before = row_counts()

    response = post_import(api_client, file=upload(ITRUS_TABLE), controller="newapp")

    assert response.status_code == 200, response.content
    report = response.json()
    assert report["dry_run"] is True and report["committed"] is False and report["ok"] is True
    assert report["counts"]["operations"]["created"] == 43
    assert row_counts() == before
    # Only the record of the preview is kept.
    assert ImportRecord.objects.get(pk=report["import_record_id"]).result == ImportRecord.Result.PREVIEWED


def test_dry_run_false_imports_the_table_as_a_job_and_records_the_import(api_client, controller):
    response = post_import(api_client, file=upload(ITRUS_TABLE), controller="newapp", dry_run="false")

    assert response.status_code == 202, response.content
    job = api_client.get(response["Location"]).json()
    assert job["committed"] is True and job["status"] == "imported" and job["rows_done"] == 43
    assert Operation.objects.filter(service__controller=controller).count() == 43
    record = ImportRecord.objects.filter(controller=controller, dry_run=False).get()
    assert record.channel == "api" and response.json()["id"] == job["id"] == record.pk
    assert record.result == ImportRecord.Result.IMPORTED
    assert record.file_name == ITRUS_TABLE.name
    listed = api_client.get("/api/v1/imports/", {"controller": "newapp", "result": "imported"}).json()
    assert [row["id"] for row in listed["results"]] == [record.pk]
    assert api_client.get(f"/api/v1/imports/{record.pk}/").json()["counts"]


def test_a_bad_file_is_a_400_with_the_located_error_and_writes_nothing(api_client, controller):
    before = row_counts()

    response = post_import(api_client, file=upload(DATA / "unknown-header.tsv"), controller="newapp")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "import_rejected"
    [problem] = [problem for problem in error["problems"] if problem["level"] == "error"]
    assert (problem["code"], problem["row"], problem["column"], problem["header"]) == (
        "header_unknown",
        1,
        "D",
        "备注",
    )
    assert "备注" in error["fields"]["file"][0]
    assert row_counts() == before


def test_an_unknown_header_is_read_as_the_field_the_map_parameter_names(api_client, controller):
    response = post_import(
        api_client,
        file=upload(DATA / "custom-header.tsv"),
        controller="newapp",
        dry_run="false",
        map=["合作单位=recipient", "备注=ignore"],
    )

    assert response.status_code == 202, response.content
    assert Operation.objects.get().processor.name_zh == "北京亿美软通科技有限公司"


def test_the_map_parameter_may_be_a_json_object(api_client, controller):
    response = post_import(
        api_client,
        file=upload(DATA / "custom-header.tsv"),
        controller="newapp",
        map='{"合作单位": "recipient", "备注": "ignore"}',
    )

    assert response.status_code == 200, response.content
    assert response.json()["counts"]["operations"]["created"] == 1


def test_a_map_to_no_field_is_a_400_about_the_map(api_client, controller):
    response = post_import(
        api_client, file=upload(DATA / "custom-header.tsv"), controller="newapp", map="合作单位=partner"
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"map"}


def test_pasted_text_is_previewed_like_a_file(api_client, controller):
    text = (DATA / "unmapped-item.tsv").read_text(encoding="utf-8")

    response = post_import(api_client, text=text, controller="newapp")

    assert response.status_code == 200, response.content
    assert response.json()["file_name"] == "pasted.tsv"


def test_neither_file_nor_text_is_a_400(api_client, controller):
    response = post_import(api_client, controller="newapp")

    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_an_unknown_controller_is_a_400(api_client, controller):
    response = post_import(api_client, file=upload(ITRUS_TABLE), controller="nobody")

    assert response.status_code == 400
    assert "controller" in response.json()["error"]["fields"]


def test_an_anonymous_import_is_refused_with_401(controller):
    response = post_import(APIClient(), file=upload(ITRUS_TABLE), controller="newapp", dry_run="false")

    assert response.status_code == 401
    assert Operation.objects.count() == 0


def test_importing_needs_the_add_operation_permission(controller, django_user_model):
    user = django_user_model.objects.create_user("clerk", "clerk@example.com", "clerk-password-for-tests")
    make_member(user, controller, role=ControllerRole.EDITOR)
    client = APIClient()
    client.force_authenticate(user)
    assert post_import(client, file=upload(ITRUS_TABLE), controller="newapp").status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="add_operation"))
    client.force_authenticate(type(user).objects.get(pk=user.pk))
    assert post_import(client, file=upload(ITRUS_TABLE), controller="newapp").status_code == 200


def test_imports_have_their_own_throttle(api_client, controller, monkeypatch):
    from processors.api import policy

    monkeypatch.setattr(policy.ImportRateThrottle, "THROTTLE_RATES", {"imports": "2/hour"})
    text = (DATA / "unmapped-item.tsv").read_text(encoding="utf-8")

    statuses = [post_import(api_client, text=text, controller="newapp").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert api_client.get("/api/v1/imports/").status_code == 200


def make_import_record(controller, **fields) -> ImportRecord:
    defaults = {"file_name": "table.xlsx", "sha256": "0" * 64, "result": ImportRecord.Result.IMPORTED}
    return ImportRecord.objects.create(controller=controller, **{**defaults, **fields})


def test_import_records_are_listed_and_filtered_by_controller_result_and_channel(api_client, controller):
    other = make_controller(code="other")
    wanted = make_import_record(controller, channel="api")
    make_import_record(controller, channel="admin")
    make_import_record(controller, channel="api", result=ImportRecord.Result.FAILED)
    make_import_record(other, channel="api")

    response = api_client.get(
        "/api/v1/imports/", {"controller": "newapp", "result": "imported", "channel": "api"}
    )

    assert [row["id"] for row in response.json()["results"]] == [wanted.pk]
    assert api_client.get("/api/v1/imports/?result=exploded").status_code == 400


@pytest.mark.parametrize("records", [2, 60])
def test_the_import_list_takes_two_queries(api_client, controller, django_assert_num_queries, records):
    # count, page (with controller and user joined)
    for _ in range(records):
        make_import_record(controller, user=None)
    with django_assert_num_queries(2):
        assert api_client.get("/api/v1/imports/?page_size=100").json()["count"] == records


def test_import_records_cannot_be_changed_or_deleted(api_client, controller):
    record = make_import_record(controller)

    assert api_client.delete(f"/api/v1/imports/{record.pk}/").status_code == 405
    assert api_client.patch(f"/api/v1/imports/{record.pk}/", {}, format="json").status_code == 405
    assert api_client.get(f"/api/v1/imports/{record.pk}/").json()["controller"] == "newapp"
