"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server.

The whole suite is skipped, with the reason, when /usr/bin/chromium is missing or Playwright cannot start
it; everything else still runs. Playwright never downloads a browser here (no ``playwright install``).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make there are
# plain synchronous calls, which Django would otherwise refuse as "async unsafe".
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "newcomer-password-for-tests"
READER_PERMISSIONS = (
    "view_operation",
    "view_processor",
    "view_datacategory",
    "view_controller",
    "view_dataitem",
    "add_operation",
)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); the browser tests need it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -r requirements-dev.txt)")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    except Exception as error:  # noqa: BLE001 — any failure to start means "no browser here"
        playwright.stop()
        pytest.skip(f"Playwright cannot start {CHROMIUM}: {error}")
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def demo(transactional_db, settings) -> None:
    """The iTrus demo register (43 operations), its table published, on a database the server sees."""
    from processors.demo import demo_load
    from processors.models import Controller

    # The live server speaks plain http; the production settings would mark these cookies Secure.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    demo_load()
    Controller.objects.filter(code="itrus").update(disclosure_public=True)


@pytest.fixture
def newcomer(demo, django_user_model):
    """A member of the privacy team on the first day: staff, may read the register and import."""
    from django.contrib.auth.models import Permission

    from processors.models import ControllerRole
    from tests.builders import make_member

    user = django_user_model.objects.create_user("newcomer", password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=READER_PERMISSIONS)
    )
    make_member(user, role=ControllerRole.EDITOR)  # of the demo's controller: imports go into it
    return user


@pytest.fixture
def page(browser, live_server) -> Iterator:
    """A fresh page in a Chinese-speaking browser, with downloads allowed."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="zh-CN",
        viewport={"width": 1366, "height": 900},
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def signed_in(page, newcomer):
    """The page after the newcomer has logged in through the login form."""
    log_in(page, newcomer.username)
    return page


def log_in(page, username: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="登录").first.click()
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
