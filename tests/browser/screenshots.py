"""Screenshots of every page a user opens, at 1440×900 and 390×844, in Chinese and English, to look at the UI.

Against a running server with the demo register, the itrus disclosure published twice (labels 2024-v1 and
2024-v2), a superuser and an account without any membership (for the 403 page); docs/screenshots/README.md
has the commands that set this up::

    .venv/bin/python tests/browser/screenshots.py http://127.0.0.1:8791 docs/screenshots admin PASSWORD \
        --stranger stranger:PASSWORD

Each page is saved as ``<page>-<1440|390>-<zh|en>.png`` (viewport-sized, not the full page). Pages wider
than the window (``document.documentElement.scrollWidth > innerWidth``) are printed at the end and make the
script exit with status 1.
"""

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SIZES = {"1440": {"width": 1440, "height": 900}, "390": {"width": 390, "height": 844}}
LOCALES = {"zh": "zh-CN", "en": "en-US"}
IMPORT_TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "在线客服\t某某客服科技有限公司 010-88886666\t姓名、手机号、陀螺仪读数\t客户服务\t收集、使用\n"
    "短信服务\t北京亿美软通科技公司\t手机号\t短信验证码\t使用、传输\n"
)
CONTROLLER = "itrus"
# ECharts animates a chart in for about a second; a shot taken earlier shows half-drawn flows.
CHART_ANIMATION_MS = 1500


def upload(page: Page, base: str, path: str) -> None:
    """The import preview: the upload page's form with IMPORT_TABLE pasted (site or admin)."""
    page.goto(base + path)
    page.select_option("#id_controller", CONTROLLER)
    page.fill("#id_text", IMPORT_TABLE)
    page.locator("form[data-upload] button[type=submit], form[data-upload] input[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/import/(?!jobs/)[^/]+/$"))


def first_link(page: Page, base: str, path: str, selector: str) -> None:
    """A page reached from another: the first link matching ``selector`` on ``path``."""
    page.goto(base + path)
    page.locator(selector).first.click()
    page.wait_for_load_state()


def pages(processor_id: int, operation_id: int) -> dict[str, str | Callable[[Page, str], None]]:
    """Page name → path to open, or a function that opens it (forms to submit, links to follow)."""
    c = CONTROLLER
    return {
        "dashboard": "/",
        "explorer": "/explorer/?category=identity.id_card_number",
        "flows": "/flows/",
        "matrix": "/matrix/",
        "matrix-group": lambda page, base: first_link(page, base, "/matrix/", "a[href*='group=']"),
        "processor": f"/processors/{processor_id}/",
        "categories": "/categories/",
        "category": "/categories/identity.id_card_number/",
        "disclosure": f"/disclosure/{c}/",
        "embed": f"/disclosure/{c}/embed/",
        "versions": f"/disclosure/{c}/versions/",
        "version": f"/disclosure/{c}/versions/2024-v1/",
        "diff": f"/disclosure/{c}/diff/?from=2024-v1&to=2024-v2",
        "publish": f"/disclosure/{c}/publish/",
        "findings": "/findings/",
        "deletion-notice": "/deletion-notice/?categories=手机号",
        "import": "/import/",
        "import-preview": lambda page, base: upload(page, base, "/import/"),
        "account": "/accounts/me/",
        "404": "/processors/999999999/",
        "admin": "/admin/",
        "admin-operations": "/admin/processors/operation/",
        "admin-operation": f"/admin/processors/operation/{operation_id}/change/",
        "admin-processors": "/admin/processors/processor/",
        "admin-processor": f"/admin/processors/processor/{processor_id}/change/",
        "admin-data-items-review": "/admin/processors/dataitem/?unmapped=1",
        "admin-import": "/admin/processors/operation/import/",
        "admin-import-preview": lambda page, base: upload(page, base, "/admin/processors/operation/import/"),
    }


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/accounts/me/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("main form input[type=submit]").first.click()
    page.wait_for_url("**/accounts/me/")


def overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("out")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("--stranger", default="", help="user:password of an account without membership (403)")
    parser.add_argument("--processor", type=int, default=17, help="id of the processor page to take")
    parser.add_argument("--operation", type=int, default=1, help="id of the operation change form to take")
    parser.add_argument("--only", default="", help="comma-separated page names to take (default: all)")
    args = parser.parse_args()
    target = Path(args.out)
    target.mkdir(parents=True, exist_ok=True)
    urls = pages(args.processor, args.operation)
    only = {name for name in args.only.split(",") if name}
    wide: list[str] = []

    def take(page: Page, name: str, size: str, lang: str) -> None:
        page.wait_for_load_state("networkidle")
        if page.locator("[data-chart-ready]").count():
            page.wait_for_timeout(CHART_ANIMATION_MS)
        file_name = f"{name}-{size}-{lang}.png"
        page.screenshot(path=str(target / file_name))
        extra = overflow(page)
        if extra > 0:
            wide.append(f"{file_name}: {extra}px wider than the window ({page.url})")
        print(file_name, flush=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for size, viewport in SIZES.items():
            for lang, locale in LOCALES.items():
                context = browser.new_context(viewport=viewport, locale=locale, device_scale_factor=1)
                page = context.new_page()
                if not only or "login" in only:
                    page.goto(f"{args.base}/accounts/login/?next=/")
                    take(page, "login", size, lang)
                log_in(page, args.base, args.username, args.password)
                for name, opener in urls.items():
                    if only and name not in only:
                        continue
                    if callable(opener):
                        opener(page, args.base)
                    else:
                        page.goto(args.base + opener)
                    take(page, name, size, lang)
                context.close()
                if args.stranger and (not only or "403" in only):
                    context = browser.new_context(viewport=viewport, locale=locale, device_scale_factor=1)
                    page = context.new_page()
                    username, password = args.stranger.split(":", 1)
                    page.goto(f"{args.base}/accounts/login/?next=/")
                    page.fill("#id_username", username)
                    page.fill("#id_password", password)
                    page.locator("main form input[type=submit]").first.click()
                    take(page, "403", size, lang)
                    context.close()
        browser.close()
    for line in wide:
        print("OVERFLOW", line)
    sys.exit(1 if wide else 0)


if __name__ == "__main__":
    main()
