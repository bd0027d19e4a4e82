"""The API's trust endpoints: exports, published versions and their diffs, findings, history, notices."""

import datetime
import io

import openpyxl
import pytest
from rest_framework.test import APIClient

from processors.demo import demo_load
from processors.models import Controller, Processor, PublishedVersion
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

FINDINGS_QUERIES = 3  # stored findings: the summary, the count and the page, whatever the rows
HISTORY_QUERIES = 38  # per history table: a count and a page; then the page's changes and labels
# The subtree's ids, the register's revision, the categories held (and whether a flow is active) per
# processor, the processors, members and categories (these four cached per revision, read here on a first
# view); then for a page of recipients their processors and groups, operations and services.
NOTICE_QUERIES = 10
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CERTIFICATE_AUTHORITIES = ("DigiCert Inc", "Sectigo Limited", "GlobalSign nv-sa")


@pytest.fixture
def demo() -> Controller:
    demo_load()
    return Controller.objects.get()


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "fields"} <= set(body["error"])
    return body["error"]


def publish(client: APIClient, controller: Controller, label: str, day: str = "2025-01-01"):
    payload = {"controller": controller.code, "label": label, "updated_on": day, "effective_on": day}
    return client.post("/api/v1/versions/", payload, format="json")


# --- Export -------------------------------------------------------------------------------------------


def test_the_export_honours_the_category_filter(api_client):
    controller = make_controller()
    make_operation(service=make_service(controller, name="实名认证"), data_items=["身份证号"])
    make_operation(service=make_service(controller, name="短信服务"), data_items=["手机号"])

    response = api_client.get("/api/v1/operations/export/?category=identity&format=csv&lang=zh")

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"] and ".csv" in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    assert "实名认证" in text and "短信服务" not in text


def test_the_export_is_an_xlsx_workbook_by_default(api_client):
    make_operation(data_items=["手机号"])

    response = api_client.get("/api/v1/operations/export/")

    assert response.status_code == 200 and response["Content-Type"] == XLSX
    assert openpyxl.load_workbook(io.BytesIO(response.content)).sheetnames


def test_the_round_trip_workbook_is_exported_as_xlsx(api_client):
    make_operation(data_items=["手机号"])

    response = api_client.get("/api/v1/operations/export/?shape=workbook")

    assert response.status_code == 200 and response["Content-Type"] == XLSX
    assert "Operations" in openpyxl.load_workbook(io.BytesIO(response.content)).sheetnames


@pytest.mark.parametrize(
    "query, field",
    [("category=身份正号", "category"), ("format=pdf", "format"), ("shape=workbook&format=csv", "format")],
)
def test_an_invalid_export_parameter_is_a_400(api_client, query, field):
    body = error(api_client.get(f"/api/v1/operations/export/?{query}"), 400)
    assert field in body["fields"]


def test_an_anonymous_export_is_refused_with_401():
    assert APIClient().get("/api/v1/operations/export/").status_code == 401


# --- Published versions -------------------------------------------------------------------------------


def test_a_recipient_of_id_numbers_added_between_two_versions_is_material_and_needs_reconsent(api_client):
    controller = make_controller(code="app")
    make_operation(service=make_service(controller, name="短信服务"), data_items=["手机号"])
    first = publish(api_client, controller, "v1", "2025-01-01")
    assert first.status_code == 201, first.content
    make_operation(
        service=make_service(controller, name="实名认证"),
        processor=make_processor(name_zh="新核验公司"),
        data_items=["身份证号"],
    )
    second = publish(api_client, controller, "v2", "2025-02-01")
    assert second.status_code == 201, second.content

    diff = api_client.get(f"/api/v1/versions/{second.json()['id']}/diff/").json()

    assert diff["old"]["label"] == "v1" and diff["new"]["label"] == "v2"
    assert diff["material"] is True and diff["reconsent_required"] is True
    [added] = [change for change in diff["changes"] if change["kind"] == "recipient_added"]
    assert added["recipient"] == "新核验公司" and added["sensitive"] is True


def test_a_diff_is_downloaded_as_markdown_or_xlsx(api_client):
    controller = make_controller(code="app")
    make_operation(service=make_service(controller), data_items=["手机号"])
    version = publish(api_client, controller, "v1").json()

    markdown = api_client.get(f"/api/v1/versions/{version['id']}/diff/?against=live&format=md")
    workbook = api_client.get(f"/api/v1/versions/{version['id']}/diff/?against=live&format=xlsx")

    assert markdown.status_code == 200 and markdown["Content-Type"].startswith("text/markdown")
    assert "attachment" in markdown["Content-Disposition"]
    assert workbook.status_code == 200 and workbook["Content-Type"] == XLSX


def test_the_first_version_has_no_previous_one_to_diff_against(api_client):
    controller = make_controller(code="app")
    version = publish(api_client, controller, "v1").json()

    assert "against" in error(api_client.get(f"/api/v1/versions/{version['id']}/diff/"), 400)["fields"]
    assert (
        api_client.get(f"/api/v1/versions/{version['id']}/diff/?against=live").json()["has_changes"] is False
    )


def test_a_version_reads_with_its_disclosure_rows(api_client):
    controller = make_controller(code="app")
    make_operation(service=make_service(controller, name="短信服务"), data_items=["手机号"])
    version = publish(api_client, controller, "v1").json()

    body = api_client.get(f"/api/v1/versions/{version['id']}/?lang=en").json()

    assert body["label"] == "v1" and body["operations"] == 1
    # The API speaks English unless asked otherwise: a name recorded only in Chinese is marked so.
    assert [row["service"] for row in body["rows"]] == ["短信服务 [Chinese only]"]


def test_a_label_is_published_only_once_and_versions_never_change(api_client):
    controller = make_controller(code="app")
    version = publish(api_client, controller, "v1").json()

    assert "label" in error(publish(api_client, controller, "v1"), 400)["fields"]
    assert api_client.patch(f"/api/v1/versions/{version['id']}/", {"label": "x"}).status_code == 405
    assert api_client.delete(f"/api/v1/versions/{version['id']}/").status_code == 405
    assert PublishedVersion.objects.get().label == "v1"


def test_publishing_needs_the_add_publishedversion_permission(django_user_model):
    from django.contrib.auth.models import Permission

    controller = make_controller(code="app")
    user = django_user_model.objects.create_user("clerk", "clerk@example.com", "clerk-password-for-tests")
    user.user_permissions.add(Permission.objects.get(codename="view_publishedversion"))
    client = APIClient()
    client.force_authenticate(user)

    assert client.get("/api/v1/versions/").status_code == 200
    assert publish(client, controller, "v1").status_code == 403


@pytest.mark.parametrize("versions", [2, 30])
def test_the_version_list_takes_two_queries(api_client, django_assert_num_queries, versions):
    # count, page (with controller and publisher joined)
    controller = make_controller(code="app")
    make_operation(service=make_service(controller), data_items=["手机号"])
    for number in range(versions):
        publish(api_client, controller, f"v{number}")
    with django_assert_num_queries(2):
        assert api_client.get("/api/v1/versions/?controller=app&page_size=100").json()["count"] == versions


# --- Findings -----------------------------------------------------------------------------------------


def test_findings_on_the_demo_include_the_certificate_authorities_abroad_without_a_mechanism(
    api_client, demo
):
    body = api_client.get("/api/v1/findings/", {"controller": demo.code, "severity": "high"}).json()

    abroad = [row for row in body["results"] if row["code"] == "cross_border_without_mechanism"]
    assert len(abroad) == 4 and {row["severity"] for row in abroad} == {"high"}
    assert all(name in row["detail"] for row in abroad for name in CERTIFICATE_AUTHORITIES)
    assert {row["subject"]["model"] for row in abroad} == {"processors.operation"}
    assert body["summary"]["by_rule"]["cross_border_without_mechanism"] == 4
    assert body["summary"]["total"] >= len(body["results"])
    assert {row["severity"] for row in body["results"]} == {"high"}


def test_an_unknown_controller_for_findings_is_a_400(api_client):
    assert "controller" in error(api_client.get("/api/v1/findings/?controller=nobody"), 400)["fields"]


def findings_register(numbers: range, controller: Controller, group: Processor) -> None:
    for number in numbers:
        make_operation(
            service=make_service(controller),
            processor=group,
            data_items=("身份证号", f"未知字段{number}"),
            purposes=(),
            relationship="provision" if number % 2 else "entrusted",
            cross_border=True,
            destination_countries=["US"],
        )


@pytest.mark.parametrize("operations", [5, 60])
def test_findings_take_a_constant_number_of_queries(api_client, django_assert_num_queries, operations):
    controller = make_controller()
    group = make_processor(name_zh="某集团", kind=Processor.Kind.GROUP)
    make_processor(name_zh="某集团成员公司", member_of=group, country="US")
    findings_register(range(operations), controller, group)

    with django_assert_num_queries(FINDINGS_QUERIES):
        assert api_client.get("/api/v1/findings/").json()["results"]


# --- History ------------------------------------------------------------------------------------------


def test_a_processors_history_after_an_api_patch_shows_old_and_new_phone_user_and_channel(
    api_client, admin_user
):
    processor = make_processor(name_zh="某短信公司", contact_phone="010-1")

    patched = api_client.patch(
        f"/api/v1/processors/{processor.pk}/", {"contact_phone": "010-2"}, format="json"
    )
    assert patched.status_code == 200, patched.content

    entries = api_client.get(f"/api/v1/processors/{processor.pk}/history/").json()
    [change] = [
        change
        for entry in entries
        if entry["type"] == "changed"
        for change in entry["changes"]
        if change["field"] == "contact_phone"
    ]
    [entry] = [entry for entry in entries if change in entry["changes"]]
    assert (change["old"], change["new"]) == ("010-1", "010-2")
    assert entry["user"] == admin_user.username and entry["channel"] == "api"


def test_an_operations_history_lists_its_creation(api_client):
    operation = make_operation()

    entries = api_client.get(f"/api/v1/operations/{operation.pk}/history/").json()

    assert entries[-1]["type"] == "created" and entries[-1]["object_id"] == operation.pk
    assert api_client.post(f"/api/v1/operations/{operation.pk}/history/").status_code == 405


def test_the_history_is_filtered_by_model_channel_and_time(api_client):
    processor = make_processor(name_zh="某短信公司", contact_phone="010-1")
    start = datetime.datetime.now(datetime.UTC)
    api_client.patch(f"/api/v1/processors/{processor.pk}/", {"contact_phone": "010-2"}, format="json")

    body = api_client.get(
        "/api/v1/history/", {"model": "processor", "channel": "api", "since": start.isoformat()}
    ).json()

    assert body["count"] == 1
    [entry] = body["results"]
    assert entry["object_id"] == processor.pk and entry["type"] == "changed"
    assert api_client.get("/api/v1/history/?import=1").json()["count"] == 0
    assert "model" in error(api_client.get("/api/v1/history/?model=nothing"), 400)["fields"]
    assert api_client.delete("/api/v1/history/").status_code == 405


def test_the_history_needs_the_view_permission_of_every_model_it_covers(django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("clerk", "clerk@example.com", "clerk-password-for-tests")
    user.user_permissions.add(Permission.objects.get(codename="view_processor"))
    client = APIClient()
    client.force_authenticate(user)

    assert client.get("/api/v1/history/?model=processor").status_code == 200
    assert client.get("/api/v1/history/").status_code == 403
    assert APIClient().get("/api/v1/history/").status_code == 401


@pytest.mark.parametrize("operations", [3, 40])
def test_the_history_list_takes_a_constant_number_of_queries(
    api_client, django_assert_num_queries, operations
):
    for _ in range(operations):
        make_operation()
    with django_assert_num_queries(HISTORY_QUERIES):
        body = api_client.get("/api/v1/history/?page_size=20").json()
    assert len(body["results"]) == 20 and body["count"] > 20


# --- Deletion notices ---------------------------------------------------------------------------------

SMS_VENDOR_PHONES = {"北京亿美软通科技有限公司": "010-58750664"}


def test_a_deletion_notice_for_phone_numbers_lists_the_sms_vendors_with_their_phones(api_client, demo):
    sms_vendors = Processor.objects.filter(operations__service__name="短信服务").distinct()

    body = api_client.get("/api/v1/deletion-notices/", {"category": "手机号", "controller": demo.code}).json()

    phones = {row["processor"]["name_zh"]: row["processor"]["contact_phone"] for row in body["recipients"]}
    assert {vendor.name_zh for vendor in sms_vendors} <= set(phones)
    assert SMS_VENDOR_PHONES.items() <= phones.items()
    assert [category["code"] for category in body["categories"]] == ["basic.phone_number"]


def test_a_deletion_notice_downloads_as_csv(api_client, demo):
    response = api_client.get("/api/v1/deletion-notices/?category=手机号&format=csv")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "010-58750664" in response.content.decode("utf-8-sig")


def test_an_unknown_category_in_a_deletion_notice_is_a_400_with_suggestions(api_client):
    body = error(api_client.get("/api/v1/deletion-notices/?category=身份正号"), 400)

    assert body["code"] == "invalid_filter"
    assert any("身份证" in message for message in body["fields"]["category"])


@pytest.mark.parametrize("operations", [3, 40])
def test_a_deletion_notice_takes_a_constant_number_of_queries(
    api_client, django_assert_num_queries, operations
):
    group = make_processor(name_zh="某集团", kind=Processor.Kind.GROUP)
    make_processor(name_zh="某集团成员公司", member_of=group)
    for number in range(operations):
        make_operation(processor=group if number % 2 else None, data_items=["手机号", "姓名"])
    with django_assert_num_queries(NOTICE_QUERIES):
        body = api_client.get("/api/v1/deletion-notices/?category=手机号&category=姓名").json()
    assert body["recipients"]


def test_a_deletion_notice_for_many_recipients_comes_a_page_at_a_time(api_client, monkeypatch):
    from processors.api import reports

    monkeypatch.setattr(reports, "NOTICE_RECIPIENTS_PER_PAGE", 2)
    for _ in range(5):
        make_operation(data_items=["手机号"])
    url = "/api/v1/deletion-notices/"

    pages = [
        api_client.get(url, {"category": "手机号", "recipients_page": page}).json() for page in (1, 2, 3, 9)
    ]

    assert [len(body["recipients"]) for body in pages] == [2, 2, 1, 1]  # past the last page: the last
    assert {(body["recipients_total"], body["recipients_pages"]) for body in pages} == {(5, 3)}
    named = [row["processor"]["id"] for body in pages[:3] for row in body["recipients"]]
    assert len(set(named)) == 5  # every recipient once across the pages
    csv_rows = (
        api_client.get(url, {"category": "手机号", "format": "csv"})
        .content.decode("utf-8-sig")
        .strip()
        .splitlines()
    )
    assert len(csv_rows) == 1 + 5  # the CSV holds them all
