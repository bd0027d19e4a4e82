"""The REST API answers questions by data type, reads on its own, writes through the services."""

import datetime

import pytest

from processors.api import policy
from processors.models import DataItem, Operation, Processor
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def register():
    return {
        "sms": make_operation(data_items=["手机号"]),
        "kyc": make_operation(data_items=["姓名", "身份证号"]),
        "passport": make_operation(data_items=["护照"]),
        "face": make_operation(data_items=["人脸照片", "姓名"]),
    }


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# --- Queries by data type -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["basic.phone_number", "手机号码", "phone number", "手机号"])
def test_operations_are_filtered_by_category_code_name_or_alias(api_client, register, value):
    assert ids(api_client.get("/api/v1/operations/", {"category": value})) == {register["sms"].pk}


def test_a_category_group_matches_all_its_descendants(api_client, register):
    assert ids(api_client.get("/api/v1/operations/?category=identity")) == {
        register["kyc"].pk,
        register["passport"].pk,
    }


def test_repeating_the_category_parameter_means_any_of(api_client, register):
    response = api_client.get("/api/v1/operations/?category=手机号&category=护照")
    assert ids(response) == {register["sms"].pk, register["passport"].pk}


def test_category_all_means_all_of(api_client, register):
    assert ids(api_client.get("/api/v1/operations/?category_all=姓名&category_all=biometric")) == {
        register["face"].pk
    }


def test_an_unknown_category_is_a_400_that_suggests_the_nearest_name(api_client, register):
    body = error(api_client.get("/api/v1/operations/?category=身份正号"), 400)
    assert body["code"] == "invalid_filter"
    assert "身份正号" in body["message"] and "身份证号" in body["message"]
    assert "身份证号" in body["fields"]["category"][0]


def test_an_unknown_received_category_is_a_400_too(api_client, register):
    body = error(api_client.get("/api/v1/processors/?receives=身份正号"), 400)
    assert "身份证号" in body["fields"]["receives"][0]


def test_a_malformed_date_is_a_400_naming_the_parameter(api_client, register):
    body = error(api_client.get("/api/v1/operations/?as_of=2024-13-45"), 400)
    assert list(body["fields"]) == ["as_of"]


def test_operation_filters_combine(api_client):
    abroad = make_operation(
        data_items=["身份证号"],
        processor=make_processor(name_en="DigiCert, Inc.", country="US"),
        cross_border=True,
        destination_countries=["US"],
        legal_basis="consent",
    )
    make_operation(data_items=["身份证号"], legal_basis="consent")
    make_operation(data_items=["手机号"], cross_border=True, destination_countries=["US"])
    response = api_client.get(
        "/api/v1/operations/",
        {"sensitive": "true", "cross_border": "true", "country": "US", "legal_basis": "consent"},
    )
    assert ids(response) == {abroad.pk}


def test_operations_in_effect_on_a_date(api_client):
    old = make_operation(effective_from=datetime.date(2022, 1, 1), effective_to=datetime.date(2022, 12, 31))
    make_operation(effective_from=datetime.date(2023, 1, 1))
    assert ids(api_client.get("/api/v1/operations/?as_of=2022-06-01")) == {old.pk}


def test_processors_receiving_a_category_say_through_which_operations(api_client, register):
    response = api_client.get("/api/v1/processors/?receives=手机号码")
    [row] = response.json()["results"]
    sms = register["sms"]
    assert row["id"] == sms.processor_id
    assert row["via"] == [
        {
            "operation": sms.pk,
            "processor": sms.processor_id,
            "service": {"id": sms.service_id, "name": sms.service.name},
            "controller": sms.service.controller.code,
            "categories": ["basic.phone_number"],
        }
    ]


def test_members_of_a_receiving_group_are_listed_through_the_groups_operation(api_client):
    group = make_processor(name_en="Certificate authorities", kind=Processor.Kind.GROUP)
    member = make_processor(name_en="Sectigo", member_of=group, country="GB")
    row = make_operation(processor=group, data_items=["邮箱", "手机号"])
    make_operation(data_items=["姓名"])
    results = {
        item["id"]: item
        for item in api_client.get("/api/v1/processors/?receives=phone number").json()["results"]
    }
    assert set(results) == {group.pk, member.pk}
    assert [via["operation"] for via in results[member.pk]["via"]] == [row.pk]
    assert results[member.pk]["via"][0]["processor"] == group.pk


def test_processors_without_the_receives_filter_have_no_via(api_client, register):
    rows = api_client.get("/api/v1/processors/").json()["results"]
    assert rows and all(row["via"] is None for row in rows)


def test_a_processors_categories_include_those_it_receives_through_its_group(api_client):
    group = make_processor(name_en="Certificate authorities", kind=Processor.Kind.GROUP)
    member = make_processor(name_en="Actalis", member_of=group)
    through_group = make_operation(processor=group, data_items=["手机号"], purposes=["certificate_issuance"])
    direct = make_operation(processor=member, data_items=["姓名", "神秘字段"])
    body = api_client.get(f"/api/v1/processors/{member.pk}/categories/").json()
    by_code = {entry["category"]["code"]: entry for entry in body["categories"]}
    assert set(by_code) == {"basic.phone_number", "basic.name"}
    assert by_code["basic.phone_number"]["via_group"] is True
    assert by_code["basic.phone_number"]["operations"] == [through_group.pk]
    assert [purpose["code"] for purpose in by_code["basic.phone_number"]["purposes"]] == [
        "certificate_issuance"
    ]
    assert [service["id"] for service in by_code["basic.name"]["services"]] == [direct.service_id]
    assert body["unmapped_items"] == [{"text": "神秘字段", "operation": direct.pk}]


def test_an_unknown_processors_categories_are_a_404(api_client):
    assert error(api_client.get("/api/v1/processors/999999/categories/"), 404)["code"] == "not_found"


def test_the_matrix_counts_operations_per_processor_and_category(api_client):
    vendor = make_processor(name_zh="短信服务商有限公司")
    make_operation(processor=vendor, data_items=["手机号"])
    make_operation(processor=vendor, data_items=["手机号码", "姓名"])
    body = api_client.get("/api/v1/matrix/").json()
    assert body["rows"] == [{"id": vendor.pk, "name_zh": vendor.name_zh, "name_en": "", "operations": 2}]
    assert [column["code"] for column in body["columns"]] == ["basic.name", "basic.phone_number"]
    assert {(cell["category"], cell["operations"]) for cell in body["cells"]} == {
        ("basic.phone_number", 2),
        ("basic.name", 1),
    }


def test_the_matrix_honours_the_operation_filters(api_client, register):
    body = api_client.get("/api/v1/matrix/?category=identity").json()
    assert {row["id"] for row in body["rows"]} == {
        register["kyc"].processor_id,
        register["passport"].processor_id,
    }
    sensitive = {column["code"]: column["sensitive"] for column in body["columns"]}
    assert sensitive == {"basic.name": False, "identity.id_card_number": True, "identity.passport": True}


def test_the_matrix_refuses_an_unknown_category(api_client):
    assert error(api_client.get("/api/v1/matrix/?category=身份正号"), 400)["code"] == "invalid_filter"


def test_the_matrix_pages_its_processors_and_drills_into_a_group(api_client):
    vendors = [make_processor(name_zh=f"矩阵接收方{number}") for number in range(3)]
    for vendor in vendors:
        make_operation(processor=vendor, data_items=["手机号", "身份证号"])

    first = api_client.get("/api/v1/matrix/?page_size=2").json()
    second = api_client.get(first["next"]).json()
    identity = api_client.get("/api/v1/matrix/?group=identity").json()
    groups = api_client.get("/api/v1/matrix/?by=group&page_size=1").json()

    assert first["count"] == 3 and len(first["rows"]) == 2 and len(second["rows"]) == 1
    assert {cell["processor"] for cell in first["cells"]} == {row["id"] for row in first["rows"]}
    assert identity["group"] == "identity"
    assert [column["code"] for column in identity["columns"]] == ["identity.id_card_number"]
    assert {(cell["category"], cell["operations"]) for cell in groups["cells"]} == {
        ("basic", 1),
        ("identity", 1),
    }


def test_the_matrix_refuses_a_group_that_is_not_a_top_level_category(api_client):
    assert error(api_client.get("/api/v1/matrix/?group=basic.name"), 400)["code"] == "invalid_filter"


# --- Read representations -----------------------------------------------------------------------------


def test_an_operation_reads_with_its_processor_categories_items_purposes_and_actions(api_client):
    processor = make_processor(name_zh="北京银联商务有限公司", contact_phone="95534", country="CN")
    operation = make_operation(processor=processor, data_items=["姓名", "身份证号", "神秘字段"])
    body = api_client.get(f"/api/v1/operations/{operation.pk}/").json()
    assert body["processor"]["name_zh"] == "北京银联商务有限公司"
    assert body["processor"]["contact_phone"] == "95534" and body["processor"]["country"] == "CN"
    assert body["categories"] == [
        {"code": "basic.name", "name_zh": "姓名", "name_en": "Name", "sensitive": False},
        {
            "code": "identity.id_card_number",
            "name_zh": "身份证号码",
            "name_en": "Resident ID number",
            "sensitive": True,
        },
    ]
    assert [(item["text"], item["unmapped"]) for item in body["data_items"]] == [
        ("姓名", False),
        ("身份证号", False),
        ("神秘字段", True),
    ]
    assert body["unmapped_items"] == ["神秘字段"]
    assert [purpose["code"] for purpose in body["purposes"]] == ["identity_verification"]
    assert {action["code"] for action in body["actions"]} == {"collect", "store"}
    assert body["service"]["controller"]["code"] == operation.service.controller.code


def test_the_category_tree_lists_groups_before_their_children_with_aliases(api_client):
    rows = api_client.get("/api/v1/categories/?page_size=500").json()["results"]
    codes = [row["code"] for row in rows]
    assert codes == sorted(codes) and codes.index("basic") < codes.index("basic.phone_number")
    phone = rows[codes.index("basic.phone_number")]
    assert phone["parent"] == "basic" and phone["depth"] == 1 and "手机号" in phone["aliases"]


def test_a_category_is_read_by_its_dotted_code(api_client):
    assert api_client.get("/api/v1/categories/identity.passport/").json()["name_en"] == "Passport"


def test_purposes_and_actions_are_read_by_code(api_client):
    assert api_client.get("/api/v1/purposes/identity_verification/").json()["name_zh"] == "实名认证"
    assert api_client.get("/api/v1/actions/collect/").json()["pipl_article_4"] is True


# --- Pagination and ordering --------------------------------------------------------------------------


def test_page_size_is_a_parameter_capped_at_the_maximum(api_client, register, monkeypatch):
    monkeypatch.setattr(policy.RegisterPagination, "max_page_size", 3)
    body = api_client.get("/api/v1/operations/?page_size=100").json()
    assert body["count"] == 4 and len(body["results"]) == 3 and body["next"]


def test_an_ordering_gets_the_id_as_tiebreaker(api_client):
    service = make_service()
    operations = [make_operation(service=service) for _ in range(5)]
    pages = [
        api_client.get(f"/api/v1/operations/?ordering=service&page_size=2&page={page}") for page in (1, 2, 3)
    ]
    assert [row for page in pages for row in sorted(ids(page))] == sorted(
        operation.pk for operation in operations
    )
    assert [row["id"] for row in pages[0].json()["results"]] == sorted(
        operation.pk for operation in operations
    )[:2]


def test_a_page_past_the_end_is_a_404_in_the_error_shape(api_client, register):
    assert error(api_client.get("/api/v1/operations/?page=99"), 404)["code"] == "not_found"


# --- Writes -------------------------------------------------------------------------------------------


def operation_payload(**fields) -> dict:
    return {
        "service": make_service().pk,
        "processor": make_processor().pk,
        "data_items": ["手机号码", "basic.name", "Passport", "神秘字段"],
        "purposes": ["实名认证", "sms_otp"],
        "actions": ["收集", "store"],
        **fields,
    }


def test_creating_an_operation_maps_items_by_code_name_or_alias_and_reports_unmapped_ones(api_client):
    response = api_client.post("/api/v1/operations/", operation_payload(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert [category["code"] for category in body["categories"]] == [
        "basic.name",
        "basic.phone_number",
        "identity.passport",
    ]
    assert body["unmapped_items"] == ["神秘字段"]
    assert [purpose["code"] for purpose in body["purposes"]] == ["identity_verification", "sms_otp"]
    assert {action["code"] for action in body["actions"]} == {"collect", "store"}
    assert Operation.objects.get(pk=body["id"]).data_items_text == "手机号码、basic.name、Passport、神秘字段"


def test_an_unknown_purpose_is_a_400(api_client):
    body = error(
        api_client.post("/api/v1/operations/", operation_payload(purposes=["算命"]), format="json"), 400
    )
    assert "算命" in body["fields"]["purposes"][0]


def test_a_model_validation_error_answers_400_in_the_error_shape(api_client):
    payload = operation_payload(transfer_mechanism="standard_contract", cross_border=False)
    body = error(api_client.post("/api/v1/operations/", payload, format="json"), 400)
    assert body["code"] == "invalid" and body["fields"]


def test_a_duplicate_operation_is_a_400_not_a_500(api_client):
    existing = make_operation()
    payload = operation_payload(service=existing.service_id, processor=existing.processor_id)
    assert (
        "non_field_errors"
        in error(api_client.post("/api/v1/operations/", payload, format="json"), 400)["fields"]
    )


def test_an_integrity_error_is_a_409_not_a_500(api_client, monkeypatch):
    from django.db import IntegrityError

    def collide(**fields):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr("processors.services.operation_create", collide)
    assert (
        error(api_client.post("/api/v1/operations/", operation_payload(), format="json"), 409)["code"]
        == "conflict"
    )


def test_updating_an_operations_items_replaces_them(api_client):
    operation = make_operation(data_items=["姓名"])
    response = api_client.patch(
        f"/api/v1/operations/{operation.pk}/", {"data_items": ["邮箱"]}, format="json"
    )
    assert [category["code"] for category in response.json()["categories"]] == ["basic.email"]
    assert list(DataItem.objects.filter(operation=operation).values_list("text", flat=True)) == ["邮箱"]


def test_a_partial_update_leaves_the_rest_alone(api_client):
    operation = make_operation(data_items=["姓名"])
    response = api_client.patch(f"/api/v1/operations/{operation.pk}/", {"status": "retired"}, format="json")
    assert response.json()["status"] == "retired"
    assert [item["text"] for item in response.json()["data_items"]] == ["姓名"]


def test_deleting_an_operation_removes_it(api_client):
    operation = make_operation()
    assert api_client.delete(f"/api/v1/operations/{operation.pk}/").status_code == 204
    assert not Operation.objects.filter(pk=operation.pk).exists()


def test_creating_a_processor_with_aliases(api_client):
    response = api_client.post(
        "/api/v1/processors/", {"name_zh": "钉钉（中国）信息技术有限公司", "aliases": ["钉钉"]}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["aliases"] == ["钉钉"]


def test_updating_a_processors_aliases_replaces_them(api_client):
    processor = make_processor(aliases=["旧名"])
    response = api_client.patch(f"/api/v1/processors/{processor.pk}/", {"aliases": ["新名"]}, format="json")
    assert response.json()["aliases"] == ["新名"]


def test_a_wrong_uscc_check_digit_is_reported_on_the_field(api_client):
    response = api_client.post(
        "/api/v1/processors/", {"name_zh": "某公司", "uscc": "91110000802100433A"}, format="json"
    )
    assert "uscc" in error(response, 400)["fields"]


def test_a_second_processor_with_the_same_name_is_a_400(api_client):
    make_processor(name_zh="重名公司")
    assert error(api_client.post("/api/v1/processors/", {"name_zh": "重名公司"}, format="json"), 400)[
        "fields"
    ]


def test_controllers_and_services_are_created_and_renamed(api_client):
    assert (
        api_client.post(
            "/api/v1/controllers/", {"code": "acme", "name_en": "Acme"}, format="json"
        ).status_code
        == 201
    )
    response = api_client.post("/api/v1/services/", {"controller": "acme", "name": "短信服务"}, format="json")
    assert response.status_code == 201, response.content
    service = response.json()["id"]
    response = api_client.patch(f"/api/v1/services/{service}/", {"name_en": "SMS"}, format="json")
    assert response.json()["name_en"] == "SMS"
    assert (
        api_client.patch("/api/v1/controllers/acme/", {"name_zh": "阿克米"}, format="json").json()["name_zh"]
        == "阿克米"
    )


def test_a_service_name_is_unique_per_controller(api_client):
    controller = make_controller()
    make_service(controller=controller, name="短信服务")
    payload = {"controller": controller.code, "name": "短信服务"}
    assert error(api_client.post("/api/v1/services/", payload, format="json"), 400)["fields"]


def test_malformed_json_is_a_400_in_the_error_shape(api_client):
    response = api_client.post("/api/v1/operations/", "{not json", content_type="application/json")
    assert error(response, 400)["code"] == "parse_error"


# --- The browsable API and the documentation ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/operations/?category=identity",
        "/api/v1/operations/{operation}/",
        "/api/v1/processors/?receives=手机号",
        "/api/v1/processors/{processor}/",
        "/api/v1/processors/{processor}/categories/",
        "/api/v1/matrix/",
        "/api/v1/controllers/{controller}/",
        "/api/v1/services/{service}/",
    ],
)
def test_the_browsable_api_renders_lists_details_and_edit_forms(api_client, register, path):
    operation = register["sms"]
    url = path.format(
        operation=operation.pk,
        processor=operation.processor_id,
        controller=operation.service.controller.code,
        service=operation.service_id,
    )
    response = api_client.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"<html" in response.content


def test_the_api_root_links_the_resources_and_the_docs(api_client):
    body = api_client.get("/api/v1/").json()
    assert {"operations", "processors", "categories", "matrix", "schema", "docs"} <= set(body)


@pytest.mark.parametrize("parameter", ["category", "category_all", "purpose", "search", "country", "service"])
def test_a_nul_character_in_a_filter_is_a_400_not_a_500(api_client, register, parameter):
    assert error(api_client.get(f"/api/v1/operations/?{parameter}=%00手机"), 400)["code"] == "invalid_filter"


def test_a_nul_character_in_a_data_item_is_a_400_not_a_500(api_client):
    response = api_client.post(
        "/api/v1/operations/", operation_payload(data_items=["手\x00机"]), format="json"
    )
    assert "data_items.0" in error(response, 400)["fields"]


def test_a_nul_character_in_a_service_controller_is_a_400_not_a_500(api_client):
    # Found by the contract test on PostgreSQL, which cannot even look such a code up.
    response = api_client.post(
        "/api/v1/services/", {"controller": "\x00acme", "name": "短信服务"}, format="json"
    )
    assert "controller" in error(response, 400)["fields"]


def test_an_unknown_path_under_the_api_is_a_json_404(api_client):
    assert error(api_client.get("/api/v1/no-such-thing/"), 404)["code"] == "not_found"
