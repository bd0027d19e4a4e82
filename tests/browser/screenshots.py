"""Screenshots of the browser pages at desktop (1366×900) and phone (390×844) widths, to look at the UI.

Against a running server with the demo register, its table published and an admin account::

    .venv/bin/python tests/browser/screenshots.py http://127.0.0.1:8000 /tmp/shots admin PASSWORD
    .venv/bin/python tests/browser/screenshots.py http://127.0.0.1:8000 docs/screenshots admin PASSWORD --keep

Without ``--keep`` every page is taken at both widths in Chinese and English for review; with it, only
the few kept in docs/screenshots/ui-*.png (viewport-sized PNGs, not full pages).
"""

import argparse
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
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LOCALES = {"zh": "zh-CN", "en": "en-US"}
IMPORT_TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "在线客服\t某某客服科技有限公司 010-88886666\t姓名、手机号、陀螺仪读数\t客户服务\t收集、使用\n"
    "短信服务\t北京亿美软通科技公司\t手机号\t短信验证码\t使用、传输\n"
)


def pages(processor_id: int) -> dict[str, str]:
    return {
        "dashboard": "/",
        "explorer": "/explorer/?category=identity.id_card_number",
        "explorer-error": "/explorer/?category=身分证",
        "matrix": "/matrix/",
        "processor": f"/processors/{processor_id}/",
        "category": "/categories/identity.id_card_number/",
        "categories": "/categories/",
        "disclosure": "/disclosure/itrus/",
        "embed": "/disclosure/itrus/embed/",
        "import": "/import/",
        "import-preview": "",  # uploads IMPORT_TABLE
        "versions": "/disclosure/itrus/versions/",
        "diff": "/disclosure/itrus/diff/?from=2024-v1&to=2024-v2",
        "findings": "/findings/",
        "deletion-notice": "/deletion-notice/?categories=手机号",
    }


# The screenshots kept in docs/screenshots: (file, page, size, language).
KEEP = [
    ("ui-dashboard.png", "dashboard", "desktop", "zh"),
    ("ui-explorer.png", "explorer", "desktop", "zh"),
    ("ui-disclosure-zh.png", "disclosure", "desktop", "zh"),
    ("ui-disclosure-en-phone.png", "disclosure", "phone", "en"),
    ("ui-processor.png", "processor", "desktop", "en"),
    ("ui-category.png", "category", "desktop", "zh"),
    ("ui-matrix.png", "matrix", "desktop", "zh"),
    ("ui-import-preview.png", "import-preview", "desktop", "zh"),
    ("ui-diff.png", "diff", "desktop", "zh"),
    ("ui-findings.png", "findings", "desktop", "zh"),
    ("ui-deletion-notice.png", "deletion-notice", "desktop", "zh"),
]


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def open_page(page: Page, base: str, name: str, path: str) -> None:
    if name != "import-preview":
        page.goto(base + path)
        return
    page.goto(f"{base}/import/")
    page.fill("#id_text", IMPORT_TABLE)
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url("**/import/*/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("out")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("--processor", type=int, default=46, help="id of the processor page to take")
    parser.add_argument("--keep", action="store_true", help="only the screenshots kept in docs/screenshots")
    args = parser.parse_args()
    target = Path(args.out)
    target.mkdir(parents=True, exist_ok=True)
    urls = pages(args.processor)
    shots = (
        KEEP
        if args.keep
        else [
            (f"{name}-{size}-{lang}.png", name, size, lang)
            for size in SIZES
            for lang in LOCALES
            for name in urls
        ]
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for size in SIZES:
            for lang, locale in LOCALES.items():
                wanted = [shot for shot in shots if shot[2] == size and shot[3] == lang]
                if not wanted:
                    continue
                context = browser.new_context(viewport=SIZES[size], locale=locale, device_scale_factor=1)
                page = context.new_page()
                log_in(page, args.base, args.username, args.password)
                for file_name, name, _size, _lang in wanted:
                    open_page(page, args.base, name, urls[name])
                    page.screenshot(path=str(target / file_name))
                context.close()
        browser.close()


if __name__ == "__main__":
    main()
