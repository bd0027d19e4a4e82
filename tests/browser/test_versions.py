"""Published versions, what changed, and deletion notices in a real browser, on the iTrus demo register."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from processors import services
from processors.models import Controller, Processor, Purpose, Service

pytestmark = pytest.mark.browser

DAY = datetime.date(2024, 3, 1)
NEXT_DAY = DAY + datetime.timedelta(days=1)


def publish(label: str, day: datetime.date) -> None:
    services.version_publish(
        controller=Controller.objects.get(code="itrus"), label=label, updated_on=day, effective_on=day
    )


def test_the_disclosure_page_shows_the_published_versions_label_and_dates(page, demo):
    services.version_publish(
        controller=Controller.objects.get(code="itrus"),
        label="2024年第1版",
        updated_on=DAY,
        effective_on=DAY + datetime.timedelta(days=14),
    )

    page.goto("/disclosure/itrus/")

    dates = page.locator(".version-dates")
    expect(dates).to_contain_text("2024年第1版")
    expect(dates).to_contain_text("2024-03-01")
    expect(dates).to_contain_text("2024-03-15")


def test_a_new_recipient_of_id_numbers_is_a_material_change_between_two_versions(signed_in):
    page = signed_in
    publish("v1", DAY)
    services.operation_create(
        service=Service.objects.get(controller__code="itrus", name="短信服务"),
        processor=services.processor_create(name_zh="某新核验科技有限公司", contact_phone="010-66667777"),
        data_items=["姓名", "身份证号"],
        purposes=list(Purpose.objects.filter(code="identity_verification")),
    )
    publish("v2", NEXT_DAY)

    page.goto("/disclosure/itrus/versions/")
    page.locator("a.compare-previous").first.click()  # the label waits for its translation

    material = page.locator(".diff-material")
    expect(material).to_contain_text("某新核验科技有限公司")
    expect(material.locator("strong.sensitive", has_text="身份证号")).to_be_visible()
    expect(page.locator(".diff-summary .material-flag")).to_be_visible()


def test_the_deletion_notice_for_mobile_numbers_lists_an_sms_vendor_with_its_phone(signed_in):
    page = signed_in
    vendor = Processor.objects.get(name_zh="北京亿美软通科技有限公司")
    assert vendor.contact_phone

    page.goto("/deletion-notice/")
    page.fill("#id_categories", "手机号")
    page.get_by_role("button", name="查找接收方").click()

    row = page.locator("table.notice-recipients tbody tr", has_text=vendor.name_zh)
    expect(row).to_contain_text(vendor.contact_phone)
    expect(page.get_by_role("link", name="CSV")).to_be_visible()
    assert re.search(r"\d+", page.locator("#notice-heading").inner_text())
