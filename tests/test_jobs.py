"""Confirmed imports run as background jobs (processors/jobs.py): a real worker, progress, all-or-nothing."""

import datetime
import time

import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import InMemoryStorage
from django.urls import reverse
from rest_framework.test import APIClient

from processors import jobs
from processors.models import ControllerRole, ImportRecord, Operation
from processors.spreadsheets import uploads
from tests.builders import make_controller, make_member
from tests.processes import worker_process

TSV_HEADER = "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
PERMISSIONS = ("add_operation", "view_operation", "view_importrecord")


def table(rows: int) -> str:
    return TSV_HEADER + "".join(
        f"客服{n // 300}\t某客服{n % 300}有限公司\t姓名\t客户服务\t使用\n" for n in range(rows)
    )


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    settings.REGISTER_UPLOAD_DIR = str(tmp_path / "uploads")
    return settings.REGISTER_UPLOAD_DIR


def importer(django_user_model, *controllers, username="importer"):
    user = django_user_model.objects.create_user(username, password="importer-password-for-tests")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=PERMISSIONS)
    )
    make_member(user, *controllers, role=ControllerRole.EDITOR)
    return user


def previewed(user, controller, text: str) -> uploads.Upload:
    stored = uploads.upload_store(user=user, controller=controller, text=text)
    return uploads.upload_preview(stored.token, user).upload


def test_a_confirmed_import_runs_in_a_worker_process_and_its_progress_climbs_to_the_total(
    transactional_db, settings, django_user_model, upload_dir, tmp_path
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    upload = previewed(user, controller, table(12_000))
    assert upload.rows == 12_000

    with worker_process(upload_dir, tmp_path) as worker:
        record = jobs.import_job_start(upload.token, user)
        assert record.result == ImportRecord.Result.QUEUED  # nothing ran in this process
        seen: list[int] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = jobs.import_job_state(ImportRecord.objects.get(pk=record.pk))
            seen.append(state.rows_done)
            if state.finished:
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.05)

    assert state.committed, (state.to_dict(), (tmp_path / "worker.log").read_text()[-3000:])
    assert (state.rows_done, state.rows_total) == (12_000, 12_000)
    assert Operation.objects.filter(service__controller=controller).count() == 12_000
    # The rows done rose while the job ran: each chunk of 5,000 was reported before the end.
    assert any(0 < done < 12_000 for done in seen), seen
    assert seen == sorted(seen)
    record.refresh_from_db()
    assert record.job_id and record.user == user and record.duration_ms is not None
    with pytest.raises(uploads.UploadError):  # a committed upload is gone from the storage
        uploads.upload_get(upload.token, user)


def test_a_worker_killed_mid_import_leaves_a_failed_record_and_nothing_written(
    transactional_db, settings, django_user_model, upload_dir, tmp_path
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.REGISTER_IMPORT_JOB_SILENCE_SECONDS = 3
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    upload = previewed(user, controller, table(12_000))

    with worker_process(upload_dir, tmp_path) as worker:
        record = jobs.import_job_start(upload.token, user)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = jobs.import_job_state(ImportRecord.objects.get(pk=record.pk))
            if state.record.result == ImportRecord.Result.RUNNING:
                break
            assert not state.finished, state.to_dict()
            time.sleep(0.02)
        assert state.record.result == ImportRecord.Result.RUNNING, (tmp_path / "worker.log").read_text()
        worker.kill()  # SIGKILL mid-import: no handler runs, the record stays "running"
        worker.wait(10)
    assert jobs.import_job_state(ImportRecord.objects.get(pk=record.pk)).record.result == "running"

    time.sleep(settings.REGISTER_IMPORT_JOB_SILENCE_SECONDS + 1)
    api = APIClient()
    api.force_authenticate(user)
    job = api.get(f"/api/v1/imports/{record.pk}/job/", HTTP_ACCEPT_LANGUAGE="en").json()

    assert (job["status"], job["finished"], job["committed"]) == ("failed", True, False)
    assert job["errors"][0]["code"] == "job_lost"
    assert "nothing was written" in job["errors"][0]["message"]
    assert Operation.objects.filter(service__controller=controller).count() == 0


def test_a_running_job_that_reports_progress_is_not_taken_for_lost(db, settings, django_user_model):
    settings.REGISTER_IMPORT_JOB_SILENCE_SECONDS = 60
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    record = ImportRecord.objects.create(
        controller=controller,
        user=user,
        username=user.username,
        file_name="t.tsv",
        sha256="0" * 64,
        size=1,
        dry_run=False,
        result=ImportRecord.Result.RUNNING,
        rows_total=10,
    )
    ImportRecord.objects.filter(pk=record.pk).update(
        started_at=record.started_at - datetime.timedelta(hours=1)
    )
    jobs.import_job_progress(record.pk, 4)  # heard just now, although it started an hour ago

    state = jobs.import_job_state(ImportRecord.objects.get(pk=record.pk))

    assert (state.record.result, state.rows_done) == (ImportRecord.Result.RUNNING, 4)


def test_a_failed_job_writes_nothing_and_keeps_its_located_problems(db, django_user_model):
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    upload = previewed(
        user, controller, TSV_HEADER + "客服\t某客服有限公司\t姓名\t客户服务\t使用\n\t某有限公司\t姓名\t\t\n"
    )

    record = jobs.import_job_start(upload.token, user)

    state = jobs.import_job_state(record)
    assert state.finished and not state.committed and state.rows_done == 0
    [error] = state.to_dict()["errors"]
    assert (error["row"], error["column"]) == (3, "A")
    assert not Operation.objects.exists()
    assert uploads.upload_get(upload.token, user)  # kept for another look


def test_the_browser_confirm_follows_the_job_and_a_finished_one_shows_its_result(
    client, db, django_user_model
):
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    client.force_login(user)
    upload = previewed(user, controller, table(3))

    response = client.post(reverse("processors:import-confirm", args=[upload.token]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("processors:import-result")
    assert Operation.objects.count() == 3


def test_the_progress_page_shows_rows_done_of_the_total_and_polls_with_a_static_script(
    client, db, django_user_model
):
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    client.force_login(user)
    record = ImportRecord.objects.create(
        controller=controller,
        user=user,
        file_name="big.xlsx",
        sha256="0" * 64,
        result=ImportRecord.Result.RUNNING,
        rows_total=100_000,
    )
    jobs.import_job_progress(record.pk, 35_000)

    page = client.get(reverse("processors:import-job", args=[record.pk]), HTTP_ACCEPT_LANGUAGE="en")
    status = client.get(reverse("processors:import-job-status", args=[record.pk])).json()

    html = page.content.decode()
    assert page.status_code == 200
    assert "<span data-job-done>35000</span> / <span data-job-total>100000</span>" in html
    assert 'src="/static/processors/import_progress.js"' in html and "<script>" not in html
    assert (status["status"], status["rows_done"], status["rows_total"], status["percent"]) == (
        "running",
        35_000,
        100_000,
        35,
    )
    assert status["finished"] is False
    admin_page = client.get(reverse("admin:processors_operation_import_job", args=[record.pk]))
    assert admin_page.status_code in (200, 302)  # staff-only admin: redirected to its login, never a 500


def test_a_member_of_a_cannot_see_the_job_of_b(client, db, django_user_model):
    alpha, bravo = make_controller(code="alpha"), make_controller(code="bravo")
    owner = importer(django_user_model, bravo, username="bravo-importer")
    record = jobs.import_job_start(previewed(owner, bravo, table(2)).token, owner)
    outsider = importer(django_user_model, alpha, username="alpha-importer")
    client.force_login(outsider)
    api = APIClient()
    api.force_authenticate(outsider)

    assert client.get(reverse("processors:import-job", args=[record.pk])).status_code == 404
    assert client.get(reverse("processors:import-job-status", args=[record.pk])).status_code == 404
    assert api.get(f"/api/v1/imports/{record.pk}/job/").status_code == 404
    client.force_login(owner)
    assert client.get(reverse("processors:import-job-status", args=[record.pk])).json()["committed"] is True


def test_the_api_answers_202_with_a_job_url_that_reports_the_outcome(db, django_user_model):
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    api = APIClient()
    api.force_authenticate(user)

    response = api.post("/api/v1/imports/", {"controller": "acme", "text": table(4), "dry_run": "false"})

    assert response.status_code == 202, response.content
    assert response["Location"] == response.json()["url"]
    assert response["Location"].endswith(f"/api/v1/imports/{response.json()['id']}/job/")
    job = api.get(response["Location"]).json()
    assert (job["status"], job["committed"], job["counts"]["operations"]["created"]) == ("imported", True, 4)
    failed = api.post(
        "/api/v1/imports/",
        {"controller": "acme", "text": TSV_HEADER + "\t某\t姓名\t\t\n", "dry_run": "false"},
    )
    assert failed.status_code == 202
    job = api.get(failed["Location"]).json()
    assert job["status"] == "failed" and job["errors"][0]["row"] == 2
    assert Operation.objects.count() == 4


def test_uploads_go_through_any_configured_storage_backend(settings, db, django_user_model):
    settings.STORAGES = {
        **settings.STORAGES,
        "uploads": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert isinstance(uploads.upload_storage(), InMemoryStorage)
    controller = make_controller(code="acme")
    user = importer(django_user_model, controller)
    upload = previewed(user, controller, table(2))

    record = jobs.import_job_start(upload.token, user)

    assert record.result == ImportRecord.Result.IMPORTED and Operation.objects.count() == 2
    stale = uploads.upload_store(user=user, controller=controller, text=table(1))
    settings.REGISTER_UPLOAD_TTL = 0
    assert uploads.uploads_purge_expired() == 1
    with pytest.raises(uploads.UploadError):
        uploads.upload_get(stale.token, user)
