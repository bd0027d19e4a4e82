"""A 100,000-row register imported through the browser, end to end, by a real background worker.

Upload → check (the dry run) → confirm; the confirm queues a job that a separate `manage.py db_worker`
process runs, and the page shows its rows done of the total while it runs, then the result. Slow by
nature (minutes on a 2-core machine).
"""

import os
import random
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from processors.models import Operation
from tests.processes import worker_process

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason=(
            "100,000 rows through the browser take several minutes; this runs on PostgreSQL, where "
            "production runs its jobs (the worker on SQLite: tests/test_jobs.py, tests/test_two_servers.py)"
        ),
    ),
]

ROWS = 100_000
ROWS_PER_SERVICE = 500
PROCESSORS = 2_000
# Minutes, not the suite's ten seconds: the check and the import of 100,000 rows each take a while here.
SLOW = 900_000


@pytest.fixture
def large_register(demo, tmp_path) -> Path:
    """The disclosure table of 100,000 rows: 200 services × 500 recipients each, of 2,000 in all.

    Its items, purposes and actions are the taxonomy's names, so all map and the check lists no problems.
    """
    from openpyxl import Workbook

    from processors.models import DataCategory, ProcessingAction, Purpose

    items = list(
        DataCategory.objects.filter(parent__isnull=False).order_by("code").values_list("name_zh", flat=True)
    )
    purposes = list(Purpose.objects.order_by("code").values_list("name_zh", flat=True))
    actions = list(ProcessingAction.objects.order_by("code").values_list("name_zh", flat=True))
    rng = random.Random(7)
    path = tmp_path / "register-100000.xlsx"
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("第三方信息共享清单")
    sheet.append(["服务/功能名称", "服务主体", "处理个人信息范围", "处理个人信息目的", "处理个人信息方式"])
    for number in range(ROWS):
        service = number // ROWS_PER_SERVICE
        # 7 is prime to 2,000, so one service's 500 rows name 500 different recipients.
        recipient = (number * 7 + service * 131) % PROCESSORS
        sheet.append(
            [
                f"大表服务{service:03d}",
                f"大表受托方P{recipient:04d}科技有限公司",
                "、".join(rng.sample(items, rng.randint(2, 5))),
                "、".join(rng.sample(purposes, rng.randint(1, 2))),
                "、".join(sorted(rng.sample(actions, rng.randint(2, 4)), key=actions.index)),
            ]
        )
    workbook.save(path)
    return path


def test_a_100000_row_file_is_imported_through_the_browser_by_a_worker_with_visible_progress(
    signed_in, settings, tmp_path, large_register
):
    page = signed_in
    page.set_default_timeout(SLOW)
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.REGISTER_UPLOAD_DIR = str(tmp_path / "uploads")
    before = Operation.objects.count()

    with worker_process(settings.REGISTER_UPLOAD_DIR, tmp_path) as worker:
        page.goto("/import/")
        page.set_input_files("#id_file", str(large_register))
        page.get_by_role("button", name="上传并检查").click()

        expect(page.get_by_role("heading", level=1)).to_have_text("导入前检查", timeout=SLOW)
        assert not Operation.objects.count() - before
        page.get_by_role("button", name=f"导入 {ROWS} 行").click()

        # The job's page: the rows done climb while the worker imports, of the total the check counted.
        expect(page.get_by_role("heading", level=1)).to_have_text("正在导入", timeout=60_000)
        expect(page.locator("[data-job-total]")).to_have_text(str(ROWS))
        page.wait_for_function(
            """(total) => {
                const done = document.querySelector("[data-job-done]");
                const bar = document.querySelector(".import-progress progress");
                const rows = done ? Number(done.textContent) : 0;
                return rows > 0 && rows < total && bar && bar.value === rows;
            }""",
            arg=ROWS,
            timeout=SLOW,
            polling=200,
        )
        assert worker.poll() is None

        expect(page.get_by_role("heading", level=1)).to_have_text("导入完成", timeout=SLOW)
        expect(page.get_by_role("status")).to_contain_text(re.compile(rf"\b{ROWS}\b"))

    assert Operation.objects.count() - before == ROWS
