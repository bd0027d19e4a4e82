"""Signing in on the site's own login in a real browser, and how the login and 403 pages look.

The screenshots go to a temporary folder; with REGISTER_SCREENSHOTS=1 they replace the ones kept in
docs/screenshots/ (ui-login-*.png, ui-403-*.png).
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from processors.models import Operation, Processor
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
ID_CARD = "identity.id_card_number"


@pytest.fixture
def reader(demo, django_user_model):
    """A member of the privacy team who is not staff: reads the register, nothing else."""
    from django.contrib.auth.models import Permission

    from processors.models import ControllerRole
    from tests.builders import make_member

    user = django_user_model.objects.create_user("reader", password=PASSWORD, first_name="Wang")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="processors",
            codename__in=["view_operation", "view_processor", "view_datacategory", "view_controller"],
        )
    )
    make_member(user, role=ControllerRole.VIEWER)  # of the demo's controller
    return user


@pytest.fixture
def stranger(demo, django_user_model):
    """An account the register's administrator has not given any permission yet."""
    return django_user_model.objects.create_user("stranger", password=PASSWORD)


@pytest.fixture
def shots(tmp_path) -> Path:
    if os.environ.get("REGISTER_SCREENSHOTS"):
        return Path(settings.BASE_DIR) / "docs" / "screenshots"
    return tmp_path


def sign_in_on_the_site(page, username: str) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def assert_fits_the_width(page) -> None:
    """Nothing wider than the viewport: no sideways scrolling, no text cut at the edge."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than the viewport"


def recipients_of(code: str) -> set[str]:
    operations = Operation.objects.filter(data_items__category__code=code)
    return {processor.display_name() for processor in Processor.objects.filter(operations__in=operations)}


def test_a_reader_signs_in_on_the_site_and_finds_the_id_card_recipients(page, reader):
    page.goto("/")
    page.get_by_role("link", name="登录").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    sign_in_on_the_site(page, "reader")

    expect(page.get_by_role("heading", level=1)).to_have_text("概览")
    expect(page.get_by_role("link", name="Wang")).to_be_visible()
    page.goto(f"/explorer/?category={ID_CARD}")

    listed = set(page.locator("table.operations tbody th a").all_inner_texts())
    assert listed == recipients_of(ID_CARD)
    assert len(listed) == 14


def test_a_wrong_password_stays_on_the_login_in_english_after_the_switch(page, reader):
    page.goto("/accounts/login/?next=/explorer/")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")

    page.fill("#id_username", "reader")
    page.fill("#id_password", "not-the-password")
    page.click("input[type=submit]")

    expect(page.locator(".error-summary")).to_contain_text("Please enter a correct username and password.")
    sign_in_on_the_site(page, "reader")
    expect(page).to_have_url(re.compile(r"/explorer/$"))


def test_the_login_page_at_desktop_and_phone_widths(page, demo, shots):
    page.set_viewport_size(DESKTOP)
    page.goto("/accounts/login/?next=/")
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    assert_fits_the_width(page)
    page.screenshot(path=shots / "ui-login-zh.png")

    page.set_viewport_size(PHONE)
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_fits_the_width(page)
    page.screenshot(path=shots / "ui-login-en-phone.png")


def test_an_account_without_permission_gets_the_403_with_what_to_do(page, stranger, shots):
    page.set_viewport_size(DESKTOP)
    page.goto("/accounts/login/?next=/")
    sign_in_on_the_site(page, "stranger")

    expect(page.get_by_role("heading", level=1)).to_have_text("您无权查看此页面")
    expect(page.get_by_text("请向登记册的管理员申请权限")).to_be_visible()
    assert_fits_the_width(page)
    page.screenshot(path=shots / "ui-403-zh.png")

    page.set_viewport_size(PHONE)
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You may not see this page")
    assert_fits_the_width(page)
    page.screenshot(path=shots / "ui-403-en-phone.png")

    page.get_by_role("button", name="Sign out, to sign in with another account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_text("You have signed out.")).to_be_visible()


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/accounts/me/", "My account"),
        ("/accounts/password/", "Change your password"),
        ("/accounts/password/reset/", "Reset your password"),
        ("/no-such-page/", "This page does not exist"),
    ],
)
def test_the_account_and_error_pages_fit_a_phone(page, reader, tmp_path, path, heading):
    page.set_viewport_size(PHONE)
    page.goto("/accounts/login/")
    page.get_by_role("button", name="English").click()
    sign_in_on_the_site(page, "reader")
    page.goto(path)

    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    assert_fits_the_width(page)
    page.screenshot(path=tmp_path / "page.png", full_page=True)
