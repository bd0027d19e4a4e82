"""One itemisation rule: a typed "data items as published" text becomes the items an import makes of it.

The admin form (shown for review, then saved), the API and the services split the text as an import
splits its cell and map each item with the one resolver; an unknown item is kept unmapped.
"""

import re

import pytest
from django.urls import reverse

from processors import services
from processors.findings import RULES_BY_CODE
from processors.models import Controller, DataCategory, DataItem, Operation, Purpose, Severity
from processors.spreadsheets.importer import import_register
from tests.builders import make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

TYPED = "手机号、设备标识符、心率"
UNKNOWN = "某某神秘字段"


def recorded(operation: Operation) -> list[tuple[str, str | None]]:
    """(text, category code) of an operation's items in their published order."""
    items = operation.data_items.select_related("category").order_by("position", "category__code")
    return [(item.text, item.category.code if item.category else None) for item in items]


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- The rule itself ------------------------------------------------------------------------------


def test_a_typed_text_gives_the_items_an_import_gives_for_the_same_cell():
    text = f"手机号码；设备标识符（IMEI、OAID），心率、{UNKNOWN}等"
    imported = Controller.objects.create(code="imported", name_zh="导入公司")
    table = f"服务/功能名称\t服务主体\t处理个人信息范围\n登录\t甲科技有限公司\t{text}\n"
    import_register(table, controller=imported, file_name="t.tsv")
    from_import = Operation.objects.get(service__controller=imported)

    typed = services.operation_create(
        service=make_service(), processor=make_processor(), data_items_text=text
    )

    assert recorded(typed) == recorded(from_import)
    assert (UNKNOWN, None) in recorded(typed)


def test_an_unknown_item_is_kept_verbatim_and_unmapped():
    operation = services.operation_create(
        service=make_service(), processor=make_processor(), data_items_text=f"姓名、{UNKNOWN}"
    )

    unknown = operation.data_items.get(text=UNKNOWN)
    assert (unknown.category, unknown.match, unknown.needs_review) == (None, "", True)


def test_changing_the_text_replaces_the_items_but_keeps_a_hand_mapping_of_an_item_still_there():
    operation = services.operation_create(
        service=make_service(), processor=make_processor(), data_items_text=f"姓名、{UNKNOWN}"
    )
    hand = operation.data_items.get(text=UNKNOWN)
    hand.category = DataCategory.objects.get(code="basic.email")
    hand.match = DataItem.Match.MANUAL
    services.data_items_save(operation=operation, saved=[hand])

    services.operation_update(operation=operation, data_items_text=f"手机号、{UNKNOWN}")

    assert recorded(operation) == [("手机号", "basic.phone_number"), (UNKNOWN, "basic.email")]


def test_the_same_text_given_again_leaves_the_items_alone():
    operation = services.operation_create(
        service=make_service(), processor=make_processor(), data_items_text="姓名、手机号"
    )
    before = set(operation.data_items.values_list("pk", flat=True))

    services.operation_update(operation=operation, data_items_text="姓名、手机号", notes="checked")

    assert set(operation.data_items.values_list("pk", flat=True)) == before


# --- The admin: items shown for review, then saved -------------------------------------------------


def admin_form(service, processor, text: str, **extra) -> dict:
    return {
        "service": service.pk,
        "processor": processor.pk,
        "data_items_text": text,
        "status": "active",
        "data_items-TOTAL_FORMS": "0",
        "data_items-INITIAL_FORMS": "0",
        "data_items-MIN_NUM_FORMS": "0",
        "data_items-MAX_NUM_FORMS": "1000",
        **extra,
    }


def confirmation(response) -> str:
    """The token the redisplayed form carries, as a browser would send it back."""
    found = re.search(r'name="items_confirmed" value="([0-9a-f]+)"', response.content.decode())
    assert found, "the redisplayed form carries no confirmation"
    return found.group(1)


def test_the_admin_shows_the_split_items_and_their_categories_before_saving(admin_client):
    service, processor = make_service(), make_processor()

    response = admin_client.post(
        reverse("admin:processors_operation_add"),
        admin_form(service, processor, f"{TYPED}、{UNKNOWN}"),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 200
    assert not Operation.objects.filter(service=service).exists()
    preview = response.content.decode().split('class="items-preview"', 1)[1].split("</table>", 1)[0]
    for text, code in (("手机号", "basic.phone_number"), ("设备标识符", "device."), ("心率", "")):
        assert text in preview
        assert code in preview
    assert UNKNOWN in preview and "unmapped — needs review" in preview
    assert "save again to record them" in response.content.decode()


def test_an_admin_added_operation_is_found_by_the_category_of_a_typed_item(admin_client, api_client):
    service, processor = make_service(), make_processor()
    url = reverse("admin:processors_operation_add")
    first = admin_client.post(url, admin_form(service, processor, TYPED))

    second = admin_client.post(
        url, admin_form(service, processor, TYPED, items_confirmed=confirmation(first))
    )

    assert second.status_code == 302
    operation = Operation.objects.get(service=service)
    assert [text for text, _code in recorded(operation)] == ["手机号", "设备标识符", "心率"]
    found = rows(api_client.get("/api/v1/processors/", {"receives": "设备标识符"}))
    assert [row["id"] for row in found] == [processor.pk]
    device = operation.data_items.get(text="设备标识符").category
    page = admin_client.get(reverse("processors:category", args=[device.code])).content.decode()
    assert processor.display_name() in page


def test_a_confirmation_of_another_text_asks_again(admin_client):
    service, processor = make_service(), make_processor()
    url = reverse("admin:processors_operation_add")
    first = admin_client.post(url, admin_form(service, processor, "姓名"))

    again = admin_client.post(url, admin_form(service, processor, TYPED, items_confirmed=confirmation(first)))

    assert again.status_code == 200
    assert not Operation.objects.filter(service=service).exists()


def test_a_changed_text_in_the_admin_is_itemised_and_an_unchanged_one_saves_at_once(admin_client):
    operation = make_operation(data_items=("姓名",))
    operation.refresh_from_db()
    url = reverse("admin:processors_operation_change", args=[operation.pk])
    page = admin_client.get(url)
    data = {
        **page.context["adminform"].form.initial,
        **admin_form(operation.service, operation.processor, operation.data_items_text),
        "opened_version": operation.version,
        "purposes": [purpose.pk for purpose in operation.purposes.all()],
        "actions": [action.pk for action in operation.actions.all()],
        "notes": "looked at",
    }
    data = {key: value for key, value in data.items() if value is not None}

    unchanged = admin_client.post(url, data)
    assert unchanged.status_code == 302
    operation.refresh_from_db()

    data.update(data_items_text=TYPED, opened_version=operation.version)
    held = admin_client.post(url, data)
    assert held.status_code == 200
    assert [text for text, _code in recorded(operation)] == ["姓名"]
    saved = admin_client.post(url, {**data, "items_confirmed": confirmation(held)})
    assert saved.status_code == 302
    assert [text for text, _code in recorded(operation)] == ["手机号", "设备标识符", "心率"]


# --- The API --------------------------------------------------------------------------------------


def test_an_api_write_of_the_typed_text_itemises_it_as_the_admin_does(api_client):
    service, processor = make_service(), make_processor()

    response = api_client.post(
        "/api/v1/operations/",
        {"service": service.pk, "processor": processor.pk, "data_items_text": f"{TYPED}、{UNKNOWN}"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert [item["text"] for item in response.json()["data_items"]] == [
        "手机号",
        "设备标识符",
        "心率",
        UNKNOWN,
    ]
    assert response.json()["unmapped_items"] == [UNKNOWN]
    found = rows(api_client.get("/api/v1/processors/", {"receives": "设备标识符"}))
    assert [row["id"] for row in found] == [processor.pk]


def test_an_api_patch_of_the_text_replaces_the_items(api_client):
    operation = make_operation(data_items=("姓名",))

    response = api_client.patch(
        f"/api/v1/operations/{operation.pk}/", {"data_items_text": TYPED}, format="json"
    )

    assert response.status_code == 200, response.content
    assert [text for text, _code in recorded(operation)] == ["手机号", "设备标识符", "心率"]


def test_an_api_user_of_another_controller_cannot_itemise_its_operation(django_user_model):
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    theirs = make_operation(data_items=("姓名",))
    user = django_user_model.objects.create_user("editor-a", password="x")
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_operation", "change_operation"]))
    make_member(user, make_service().controller)
    client = APIClient()
    client.force_authenticate(user)

    response = client.patch(f"/api/v1/operations/{theirs.pk}/", {"data_items_text": TYPED}, format="json")

    assert response.status_code == 404
    assert [text for text, _code in recorded(theirs)] == ["姓名"]


# --- Findings on the admin form -------------------------------------------------------------------


def test_an_operation_without_purpose_action_relationship_or_basis_is_saved_and_its_findings_shown(
    admin_client,
):
    service, processor = make_service(), make_processor()
    url = reverse("admin:processors_operation_add")
    first = admin_client.post(url, admin_form(service, processor, "姓名"))
    saved = admin_client.post(
        url, admin_form(service, processor, "姓名", items_confirmed=confirmation(first))
    )
    assert saved.status_code == 302
    operation = Operation.objects.get(service=service)
    assert not operation.purposes.exists() and not operation.relationship and not operation.legal_basis

    page = admin_client.get(
        reverse("admin:processors_operation_change", args=[operation.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    block = page.split('class="findings-list"', 1)[1].split("</ul>", 1)[0]
    # purpose_missing is the register's own; the other three rules say what else such a row lacks.
    codes = ["purpose_missing"] + [
        code
        for code in ("action_missing", "relationship_missing", "legal_basis_missing")
        if code in RULES_BY_CODE
    ]
    for code in codes:
        rule = RULES_BY_CODE[code]
        assert f"<code>{code}</code>" in block
        assert (
            f'class="severity-{rule.severity}"><strong>{Severity(rule.severity).label}</strong> {rule.title}'
            in block
        )
    assert not Purpose.objects.filter(operations=operation).exists()


def test_an_editor_who_may_only_view_items_changes_the_purpose_without_an_error(client, django_user_model):
    """The item rows are read-only for them (no change_dataitem); saving the operation must still work."""
    from django.contrib.auth.models import Permission

    from processors.models import ControllerRole

    controller = services.controller_create(code="viewitems", name_zh="只读条目科技有限公司")
    service = services.service_create(controller=controller, name="短信服务")
    operation = services.operation_create(
        service=service,
        processor=services.processor_create(name_zh="短信通道有限公司", contact_phone="010-11111111"),
        data_items=["手机号"],
        purpose_text="发送验证码",
    )
    editor = django_user_model.objects.create_user("item-viewer", password="x", is_staff=True)
    editor.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="processors",
            codename__in=["view_operation", "change_operation", "view_dataitem", "view_datacategory"],
        )
    )
    services.controller_membership_grant(controller=controller, user=editor, role=ControllerRole.EDITOR)
    client.force_login(editor)
    url = f"/admin/processors/operation/{operation.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name in form.fields}
    data.update(
        {
            "service": service.pk,
            "processor": operation.processor_id,
            "purpose_text": "发送验证码及营销短信",
            "version": operation.version,
            "data_items-TOTAL_FORMS": "1",
            "data_items-INITIAL_FORMS": "1",
            "data_items-MIN_NUM_FORMS": "0",
            "data_items-MAX_NUM_FORMS": "1000",
            "data_items-0-id": operation.data_items.get().pk,
            "data_items-0-operation": operation.pk,
            "_save": "1",
        }
    )
    data = {key: value for key, value in data.items() if not isinstance(value, list) or value}
    response = client.post(url, data)
    assert response.status_code in (200, 302)
    operation.refresh_from_db()
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert operation.purpose_text == "发送验证码及营销短信"
