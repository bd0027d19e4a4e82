"""What a newcomer does with the register in a real browser, on the iTrus demo register (43 operations)."""

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from processors.models import Operation, Processor

pytestmark = pytest.mark.browser

FOREIGN_AUTHORITIES = {
    "Actalis S.p.A.": "意大利",
    "Asseco Data Systems S.A.": "波兰",
    "DigiCert Inc": "美国",
    "GlobalSign nv-sa": "比利时",
    "Sectigo Limited": "英国",
}


def recipients_of(code: str) -> set[str]:
    operations = Operation.objects.filter(data_items__category__code=code)
    return {processor.primary_name for processor in Processor.objects.filter(operations__in=operations)}


def test_a_newcomer_finds_every_recipient_of_id_card_numbers_in_two_clicks_from_the_dashboard(signed_in):
    page = signed_in
    expect(page.get_by_role("heading", level=1)).to_have_text("概览")

    page.get_by_role("link", name=re.compile("身份证号码")).click()  # the first click

    expect(page.get_by_role("heading", level=1)).to_have_text("身份证号码")
    listed = page.locator("table.recipients tbody th a").all_inner_texts()
    assert set(listed) == recipients_of("identity.id_card_number")
    assert len(listed) == 14


def test_a_processor_page_switches_to_english_labels(signed_in):
    page = signed_in
    page.goto("/categories/basic.phone_number/")
    page.get_by_role("link", name="Digicert, Certum, GlobalSign, Sectigo, Actalis").click()
    expect(page.get_by_role("heading", name="身份与联系方式")).to_be_visible()
    expect(page.get_by_text("Sectigo Limited", exact=True)).to_be_visible()

    page.get_by_role("button", name="English").click()

    expect(page.get_by_role("heading", name="Identity and contacts")).to_be_visible()
    expect(page.get_by_role("heading", name="What it receives, by purpose")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_the_itrus_table_reads_like_the_register_in_chinese_and_in_english(page, demo):
    page.goto("/disclosure/itrus/")  # public: no login

    headers = page.locator("table.disclosure thead th").all_inner_texts()
    assert headers == [
        "服务/功能名称",
        "服务主体",
        "处理个人信息范围",
        "处理个人信息目的",
        "处理个人信息方式",
    ]
    assert page.locator("table.disclosure tbody tr").count() == 43 == Operation.objects.count()
    services = page.locator("table.disclosure th.service").all_inner_texts()
    assert len(services) == len(set(services)) == 16
    expect(page.locator("strong.sensitive").first).to_be_visible()

    page.get_by_role("link", name="View in English").click()

    headers = page.locator("table.disclosure thead th").all_inner_texts()
    assert headers == [
        "Service/feature",
        "Recipient",
        "Personal information processed",
        "Purpose",
        "Processing method",
    ]
    assert page.locator("table.disclosure tbody tr").count() == 43
    expect(page.locator("table.disclosure")).to_contain_text("Resident ID number")


def test_the_table_shows_the_five_certificate_authorities_abroad_with_their_countries(page, demo):
    page.goto("/disclosure/itrus/?lang=zh")

    abroad = page.locator(".abroad-summary li").all_inner_texts()

    assert len(abroad) == 5
    for name, country in FOREIGN_AUTHORITIES.items():
        assert any(name in line and country in line for line in abroad), (name, abroad)


def test_an_import_is_previewed_then_confirmed_and_the_new_operation_appears(signed_in):
    page = signed_in
    page.goto("/import/")
    table = "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    table += "在线客服\t某某客服科技有限公司 010-88886666\t姓名、手机号\t客户服务\t收集、使用\n"
    page.set_input_files(
        "#id_file",
        files=[{"name": "new.tsv", "mimeType": "text/tab-separated-values", "buffer": table.encode()}],
    )

    page.get_by_role("button", name="上传并检查").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("导入前检查")
    counts = page.locator("table.counts tbody tr").all_inner_texts()
    assert re.sub(r"\s+", " ", counts[2]) == "处理活动 1 0 0"
    assert not Operation.objects.filter(processor__name_zh="某某客服科技有限公司").exists()

    page.get_by_role("button", name="导入 1 行").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("导入完成")
    page.get_by_role("link", name="在检索页查看这些处理活动").click()
    expect(page.locator("table.operations")).to_contain_text("某某客服科技有限公司")
    assert Operation.objects.count() == 44


def test_export_what_i_see_downloads_the_filtered_rows(signed_in):
    page = signed_in
    page.goto("/explorer/")
    page.select_option("#f-cross-border", "true")
    page.get_by_role("button", name="应用筛选").click()
    expect(page.locator(".result-count")).to_contain_text("4")

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV", exact=True).first.click()

    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert len(rows) == 1 + 4
    assert {row[0] for row in rows[1:]} == {"分销商", "业支", "阿里云业支", "VcertCloud"}
