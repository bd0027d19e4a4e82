"""A data-protection officer's first week, walked in a real browser from sign-in to a sent deletion notice.

Three people of one privacy team, each signing in on the site's own login: a reader who only reads, an
editor who keeps the register in the admin, and a publisher (the DPO) who publishes, withdraws and decides
findings. Every step is what issue 14 says the week must allow; each asserts what the person would see.
"""

import pytest
from playwright.sync_api import expect

from processors import services
from processors.models import (
    Controller,
    ControllerRole,
    DeletionNoticeLetter,
    Finding,
    Operation,
    ProcessingAction,
    Processor,
    Purpose,
)
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.browser

ID_CARD = "identity.id_card_number"
DEVICE_ID = "device.id_permanent"
EDITOR_PERMISSIONS = (
    "view_operation",
    "add_operation",
    "change_operation",
    "view_processor",
    "view_service",
    "view_controller",
    "view_datacategory",
    "view_dataitem",
    "view_purpose",
    "view_processingaction",
)
PUBLISHER_PERMISSIONS = (
    "view_operation",
    "view_processor",
    "view_service",
    "view_controller",
    "view_datacategory",
    "view_dataitem",
    "view_publishedversion",
    "add_publishedversion",
    "change_publishedversion",
    "view_finding",
    "change_finding",
    "view_deletionnoticeletter",
    "change_deletionnoticeletter",
    "add_deletionnoticeletter",
)


def person(django_user_model, username: str, codenames: tuple[str, ...], **fields):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username, password=PASSWORD, **fields)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=codenames)
    )
    return user


@pytest.fixture
def team(demo, django_user_model):
    """The demo register (iTrus) plus a small app register, and the three people who keep it."""
    controller = services.controller_create(code="weekco", name_zh="一周科技有限公司", name_en="Week Tech")
    sms = services.service_create(controller=controller, name="短信服务", name_en="SMS")
    services.operation_create(
        service=sms,
        processor=services.processor_create(name_zh="短信通道有限公司", contact_phone="010-11111111"),
        data_items=["手机号"],
        purposes=list(Purpose.objects.filter(code="sms_otp")),
        actions=list(ProcessingAction.objects.filter(code__in=["collect", "use"])),
        purpose_text="发送验证码",
        relationship="entrusted",
        legal_basis="consent",
        consent_type="ordinary",
    )
    services.service_create(controller=controller, name="运动健康", name_en="Fitness")
    services.processor_create(name_zh="心率云有限公司", contact_phone="010-33333333")

    reader = person(django_user_model, "reader", ("view_operation", "view_processor", "view_datacategory"))
    services.controller_membership_grant(
        controller=Controller.objects.get(code="itrus"), user=reader, role=ControllerRole.VIEWER
    )
    editor = person(django_user_model, "editor", EDITOR_PERMISSIONS, is_staff=True)
    services.controller_membership_grant(controller=controller, user=editor, role=ControllerRole.EDITOR)
    publisher = person(django_user_model, "dpo", PUBLISHER_PERMISSIONS, first_name="Li")
    services.controller_membership_grant(controller=controller, user=publisher, role=ControllerRole.PUBLISHER)
    return controller


def sign_in(page, username: str) -> None:
    page.context.clear_cookies()
    page.goto("/")
    page.get_by_role("link", name="登录").first.click()
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.get_by_role("heading", level=1)).to_have_text("概览")


def recipients_of(code: str) -> set[str]:
    operations = Operation.objects.filter(data_items__category__code=code)
    return {processor.display_name() for processor in Processor.objects.filter(operations__in=operations)}


def publish(page, label: str, reason: str) -> None:
    page.goto("/disclosure/weekco/publish/")
    expect(page.locator("#id_controller option")).to_have_count(1)  # the only one is chosen already
    page.fill("#id_label", label)
    page.check("#id_override")
    page.fill("#id_override_reason", reason)
    page.click("#publish-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text(label)


def test_a_dpo_first_week(page, team):
    # Monday: a reader signs in on the site (not the admin) and finds every recipient of ID-card numbers.
    sign_in(page, "reader")
    page.goto(f"/explorer/?category={ID_CARD}")
    listed = set(page.locator("table.operations tbody th a").all_inner_texts())
    assert listed == recipients_of(ID_CARD) and len(listed) == 14

    # Tuesday: the editor adds an operation in the admin by typing its items as the policy prints them;
    # the category query finds its recipient at once.
    sign_in(page, "editor")
    fitness = team.services.get(name="运动健康")
    heart = Processor.objects.get(name_zh="心率云有限公司")
    page.goto(f"/admin/processors/operation/add/?service={fitness.pk}&processor={heart.pk}")
    page.fill("#id_data_items_text", "手机号、设备标识符、心率")
    page.locator("input[name=_save]").click()
    # Not saved yet: the items are shown as they will be recorded, each with its category.
    preview = page.locator("table.items-preview")
    expect(preview).to_contain_text("设备标识符")
    expect(preview).to_contain_text(DEVICE_ID)
    assert not Operation.objects.filter(service=fitness).exists()
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_be_visible()
    assert Operation.objects.filter(service=fitness, processor=heart).exists()
    page.goto(f"/explorer/?category={DEVICE_ID}")
    expect(page.locator("table.operations tbody")).to_contain_text("心率云有限公司")

    # Wednesday: the DPO publishes over the one blocking problem (the new row states no purpose), with a
    # written reason; finds the version was a mistake, withdraws it, publishes again.
    sign_in(page, "dpo")
    page.goto("/disclosure/weekco/publish/")
    expect(page.locator(".notice-blocking")).to_have_count(1)
    expect(page.locator(".notice-blocking")).to_contain_text("心率云有限公司")
    publish(page, "v1", "运动健康的目的周五前补录")
    page.goto("/disclosure/weekco/versions/v1/")
    page.get_by_role("link", name="撤回此版本").click()
    page.fill("#id_reason", "误将未核对的表格发布")
    page.get_by_role("button", name="撤回").click()
    expect(page.locator(".version-withdrawn")).to_be_visible()
    publish(page, "v2", "运动健康的目的周五前补录")

    # Thursday: the SMS purpose now adds marketing; the diff against v2 calls it material.
    sign_in(page, "editor")
    sms = Operation.objects.get(service__controller=team, service__name="短信服务")
    page.goto(f"/admin/processors/operation/{sms.pk}/change/")
    page.fill("#id_purpose_text", "发送验证码及营销短信")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_be_visible()
    sms.refresh_from_db()
    assert sms.purpose_text == "发送验证码及营销短信"
    sign_in(page, "dpo")
    publish(page, "v3", "运动健康的目的周五前补录")
    page.goto("/disclosure/weekco/diff/?from=v2&to=v3")
    expect(page.locator("body")).to_contain_text("营销")
    expect(page.locator(".material-flag")).to_be_visible()
    expect(page.locator(".diff-material")).to_contain_text("营销")

    # Friday: a deletion notice for mobile numbers — the letter to the SMS vendor is downloaded as .docx
    # and marked sent; the open list still shows it until the vendor acknowledges.
    page.goto("/deletion-notice/?categories=手机号&controller=weekco")
    row = page.locator("tr", has_text="短信通道有限公司").first
    with page.expect_download() as download:
        row.get_by_role("link", name="中文").click()
    assert download.value.suggested_filename.endswith(".docx")
    row.get_by_role("button", name="标记为已发送").click()
    assert DeletionNoticeLetter.objects.filter(processor__name_zh="短信通道有限公司").exists()
    expect(page.locator("tr", has_text="短信通道有限公司").first).to_contain_text("已发送")

    # And a finding is accepted with a reason: it leaves the open list, the reason and who are kept.
    page.goto("/findings/?controller=weekco&rule=purpose_missing")
    finding = page.locator("li.finding").first
    finding.locator("input[name=reason]").fill("目的由产品部周五补录，已登记")
    finding.get_by_role("button", name="说明理由并接受").click()
    stored = Finding.objects.get(rule="purpose_missing", controller=team)
    assert stored.state == "accepted" and stored.state_reason.startswith("目的由产品部")
    page.goto("/findings/?controller=weekco&rule=purpose_missing")
    expect(page.locator("li.finding-none")).to_be_visible()
