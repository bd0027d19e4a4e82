"""The import's choices in a browser: which table of a page, which field for a header, a new controller."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, log_in

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
PERMISSIONS = (
    "add_operation",
    "view_operation",
    "view_processor",
    "view_controller",
    "view_datacategory",
    "view_dataitem",
    "add_controller",
)


def page_with_tables() -> bytes:
    """佳麦's SDK list (01-jiamai-sdk.md: three <table>s under Markdown headings) as a saved web page."""
    body = []
    for line in (REAL / "01-jiamai-sdk.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^(#+)\s*(.*)$", line)
        if heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{heading.group(2)}</h{level}>")
        else:
            body.append(line)
    html = (
        '<!doctype html>\n<html lang="zh"><head><meta charset="utf-8"><title>佳麦第三方SDK目录</title></head>'
    )
    return (html + "<body>\n" + "\n".join(body) + "\n</body></html>\n").encode("utf-8")


@pytest.fixture
def dpo(transactional_db, settings, django_user_model, tmp_path):
    """A data-protection officer on an empty register who may create controllers and import."""
    from django.contrib.auth.models import Permission

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.REGISTER_UPLOAD_DIR = str(tmp_path / "uploads")
    user = django_user_model.objects.create_user("dpo", password=PASSWORD)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=PERMISSIONS)
    )
    return user


def test_a_page_with_several_tables_a_header_proposal_and_a_new_controller(page, dpo):
    from processors.models import Controller, ControllerMembership, ControllerRole, Operation

    log_in(page, dpo.username)
    page.goto("/import/")
    # Nothing to import into yet: the only choice is a new controller, whose fields are shown.
    expect(page.locator("#id_controller")).to_have_value("+new")
    page.fill("#id_new_code", "jiamai")
    page.fill("#id_new_name_zh", "佳麦")
    page.set_input_files(
        "#id_file", files=[{"name": "jiamai-sdk.html", "mimeType": "text/html", "buffer": page_with_tables()}]
    )
    page.get_by_role("button", name="上传并检查").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("导入前检查")
    expect(page.locator("#new-controller-notice")).to_contain_text("jiamai")
    picker = page.locator("#table-picker")
    expect(picker.locator("input[name=table]")).to_have_count(3)
    expect(picker).to_contain_text("主要SDK列表")
    likeliest = picker.locator("li", has=page.locator(".tag", has_text="最可能"))
    expect(likeliest.locator("input")).to_be_checked()

    picker.get_by_label(re.compile("主要SDK列表")).check()
    picker.get_by_role("button", name="检查所选表格").click()

    expect(page.locator("#table-0")).to_be_checked()
    expect(page.locator("dl.facts")).to_contain_text("5")
    assert not Controller.objects.filter(code="jiamai").exists()
    page.get_by_role("button", name="导入 5 行").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("导入完成")
    jiamai = Controller.objects.get(code="jiamai")
    assert Operation.objects.filter(service__controller=jiamai).count() == 5
    assert ControllerMembership.objects.get(controller=jiamai, user=dpo).role == ControllerRole.ADMIN

    # A sub-processor list whose "DecisionRules Regions" column holds countries, into the new controller.
    page.goto("/import/")
    expect(page.locator("#id_controller")).to_have_value("")
    page.select_option("#id_controller", "jiamai")
    page.set_input_files("#id_file", str(REAL / "14-decisionrules-subprocessors.md"))
    page.get_by_role("button", name="上传并检查").click()

    mapping = page.locator("#header-mapping")
    select = mapping.get_by_label("“DecisionRules Regions”")
    expect(select).to_have_value("country")
    expect(mapping).to_contain_text("根据该列内容提出的建议")
    expect(page.get_by_role("button", name=re.compile("导入 "))).to_have_count(0)
    mapping.get_by_role("button", name="重新检查").click()

    expect(page.locator("#header-mapping")).to_contain_text("您已对应的列")
    page.get_by_role("button", name="导入 3 行").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("导入完成")
    assert Operation.objects.filter(service__controller=jiamai).count() == 8
