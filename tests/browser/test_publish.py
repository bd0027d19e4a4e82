"""A publisher's week in a real browser: publish over one blocking problem, withdraw, publish again."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from processors import services
from processors.models import ControllerRole, ProcessingAction, Purpose
from tests.browser.conftest import PASSWORD, log_in

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PUBLISHER_PERMISSIONS = (
    "view_operation",
    "view_processor",
    "view_datacategory",
    "view_controller",
    "view_dataitem",
    "view_publishedversion",
    "add_publishedversion",
)


@pytest.fixture
def publisher(transactional_db, settings, django_user_model):
    """A publisher of one controller whose register has one row without a purpose (a blocking problem)."""
    from django.contrib.auth.models import Permission

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    controller = services.controller_create(code="pubco", name_zh="示例科技有限公司", name_en="Example Tech")
    sms = services.service_create(controller=controller, name="短信服务", name_en="SMS")
    services.operation_create(
        service=sms,
        processor=services.processor_create(name_zh="短信有限公司", contact_phone="010-11111111"),
        data_items=["手机号"],
        purposes=list(Purpose.objects.filter(code="sms_otp")),
        actions=list(ProcessingAction.objects.filter(code__in=["collect", "use"])),
        purpose_text="发送验证码",
        relationship="entrusted",
        legal_basis="consent",
        consent_type="ordinary",
    )
    services.operation_create(
        service=services.service_create(controller=controller, name="在线客服", name_en="Customer service"),
        processor=services.processor_create(name_zh="客服外包有限公司", contact_phone="010-22222222"),
        data_items=["姓名", "手机号"],
        purposes=[],
        relationship="entrusted",
        legal_basis="consent",
        consent_type="ordinary",
    )
    user = django_user_model.objects.create_user("publisher", password=PASSWORD)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=PUBLISHER_PERMISSIONS)
    )
    services.controller_membership_grant(controller=controller, user=user, role=ControllerRole.PUBLISHER)
    return user


def publish_with_override(page, label: str, reason: str) -> None:
    page.goto("/disclosure/pubco/publish/")
    page.fill("#id_label", label)
    page.check("#id_override")
    page.fill("#id_override_reason", reason)
    page.click("#publish-form button[type=submit]")


def test_a_publisher_overrides_one_blocking_problem_withdraws_and_publishes_again(page, publisher):
    log_in(page, publisher.username)

    page.goto("/disclosure/pubco/")
    expect(page.locator(".notice-owner")).to_contain_text("未公开")
    page.locator(".notice-owner a").click()
    expect(page.locator(".notice-blocking").first).to_contain_text("客服外包有限公司")
    # Only one controller: it is chosen already, with no "---------".
    expect(page.locator("#id_controller option")).to_have_count(1)

    page.fill("#id_label", "v1")
    page.click("#publish-form button[type=submit]")
    expect(page.locator("#publish-form .form-row-override_reason")).to_contain_text("客服外包有限公司")

    publish_with_override(page, "v1", "客服的目的本周内补录")
    expect(page.locator(".messages")).to_contain_text("v1")

    page.goto("/disclosure/pubco/versions/")
    expect(page.locator("tbody")).to_contain_text("客服的目的本周内补录")
    page.goto("/disclosure/pubco/versions/v1/")
    page.get_by_role("link", name="撤回此版本").click()
    page.fill("#id_reason", "误将未核对的表格发布")
    page.get_by_role("button", name="撤回").click()
    expect(page.locator(".version-withdrawn")).to_be_visible()
    page.goto("/disclosure/pubco/versions/v1/")
    expect(page.locator(".notice-withdrawn")).to_be_visible()

    publish_with_override(page, "v2", "客服的目的本周内补录")
    page.goto("/disclosure/pubco/versions/")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody tr").first).to_contain_text("v2")


@pytest.mark.parametrize(
    ("name", "locale", "width"),
    [("ui-publish-zh.png", "zh-CN", 1440), ("ui-publish-en-phone.png", "en-US", 390)],
)
def test_the_publish_page_fits_desktop_and_phone(browser, live_server, publisher, name, locale, width):
    context = browser.new_context(
        base_url=live_server.url, locale=locale, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    # Anonymous, the publish page sends the visitor to sign in and back.
    page.goto("/disclosure/pubco/publish/")
    page.fill("#id_username", publisher.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/publish/")

    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    context.close()

    assert overflow <= 0
