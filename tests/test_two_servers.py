"""Past one machine: two app server processes share one upload — preview on one, confirm on the other.

Two gunicorn processes on different ports and one background worker run on the test's database and
upload folder, as app servers behind a load balancer would on a shared database and storage. Nothing
of the upload lives in a server's memory or temp dir, so the second server (and the worker) find it.
"""

import re
import time

import pytest
import requests
from django.contrib.auth.models import Permission

from processors.models import ControllerRole, ImportRecord, Operation
from tests.builders import make_controller, make_member
from tests.processes import app_server, free_port, worker_process

PASSWORD = "two-servers-password-for-tests"
TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "在线客服\t某某客服科技有限公司\t姓名、手机号\t客户服务\t收集、使用\n"
    "短信通知\t某某短信有限公司\t手机号\t发送通知\t使用\n"
)


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


@pytest.fixture
def importer(transactional_db, django_user_model):
    controller = make_controller(code="acme", name_zh="某某科技有限公司")
    user = django_user_model.objects.create_user("importer", password=PASSWORD)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="processors",
            codename__in=("add_operation", "view_operation", "view_importrecord"),
        )
    )
    make_member(user, controller, role=ControllerRole.EDITOR)
    return user


def test_an_upload_previewed_on_one_server_is_confirmed_on_another(importer, settings, tmp_path):
    uploads = str(tmp_path / "shared-uploads")
    with (
        worker_process(uploads, tmp_path),
        app_server(uploads, tmp_path, free_port()) as first,
        app_server(uploads, tmp_path, free_port()) as second,
    ):
        browser = requests.Session()
        login = browser.get(f"{first}/accounts/login/", timeout=30)
        signed_in = browser.post(
            f"{first}/accounts/login/",
            {"username": "importer", "password": PASSWORD, "csrfmiddlewaretoken": csrf_token(login.text)},
            timeout=30,
            allow_redirects=False,
        )
        assert signed_in.status_code == 302, signed_in.text[-500:]

        form = browser.get(f"{first}/import/", timeout=30)
        uploaded = browser.post(
            f"{first}/import/",
            {"controller": "acme", "text": TABLE, "csrfmiddlewaretoken": csrf_token(form.text)},
            timeout=60,
            allow_redirects=False,
        )
        assert uploaded.status_code == 302, uploaded.text[-800:]
        preview_path = uploaded.headers["Location"]
        token = preview_path.rstrip("/").rsplit("/", 1)[-1]

        preview = browser.get(f"{second}{preview_path}", timeout=60)
        assert preview.status_code == 200 and f"/import/{token}/confirm/" in preview.text
        assert not Operation.objects.exists()

        confirmed = browser.post(
            f"{second}/import/{token}/confirm/",
            {"csrfmiddlewaretoken": csrf_token(preview.text)},
            timeout=60,
            allow_redirects=False,
        )
        assert confirmed.status_code == 302
        job_path = confirmed.headers["Location"]
        assert re.fullmatch(r"/import/jobs/\d+/", job_path), job_path

        deadline = time.monotonic() + 120
        while True:
            status = browser.get(f"{first}{job_path}status/", timeout=30).json()
            if status["finished"] or time.monotonic() > deadline:
                break
            time.sleep(0.3)

    assert status["committed"] is True, (status, (tmp_path / "worker.log").read_text()[-2000:])
    assert (status["rows_done"], status["rows_total"]) == (2, 2)
    assert Operation.objects.filter(service__controller__code="acme").count() == 2
    assert ImportRecord.objects.get(pk=status["id"]).result == ImportRecord.Result.IMPORTED
