"""Nothing lost: writes change only their fields, versions refuse stale saves (API and admin), imports
keep hand corrections and run one at a time."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import translation
from rest_framework.test import APIClient

from processors import services
from processors.history import history_context
from processors.models import Channel, Operation, Processor, Service
from processors.spreadsheets.importer import import_register, lock_register
from processors.spreadsheets.write import Writer, keep_newer_values
from tests.builders import make_controller, make_operation, make_processor, make_service


@pytest.fixture(autouse=True)
def english(settings):
    # The assertions read the English messages; the default language is Chinese.
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def needs_shared_database() -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("threads need a file SQLite database or PostgreSQL (run this file alone)")


def run_together(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in threads released at the same moment; returns their results (or exceptions)."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as error:  # noqa: BLE001 — reported to the test, which asserts on it
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def processor_url(processor: Processor) -> str:
    return f"/api/v1/processors/{processor.pk}/"


# --- Services write only what they are given ------------------------------------------------------


@pytest.mark.django_db
def test_an_update_writes_only_the_given_fields_over_a_stale_instance():
    processor = make_processor(contact_email="old@example.com")
    stale = Processor.objects.get(pk=processor.pk)
    services.processor_update(processor=processor, contact_email="new@example.com")

    services.processor_update(processor=stale, notes="checked")

    processor.refresh_from_db()
    assert (processor.contact_email, processor.notes) == ("new@example.com", "checked")


@pytest.mark.django_db
def test_every_update_moves_the_version_on():
    processor = make_processor()

    services.processor_update(processor=processor, notes="one")
    services.processor_update(processor=processor, notes="two")

    assert Processor.objects.get(pk=processor.pk).version == processor.version == 3


@pytest.mark.django_db
def test_an_update_expecting_an_older_version_is_refused_and_writes_nothing():
    processor = make_processor()
    services.processor_update(processor=processor, notes="theirs")

    with pytest.raises(services.StaleObject):
        services.processor_update(processor=processor, expected_version=1, notes="mine")

    assert Processor.objects.get(pk=processor.pk).notes == "theirs"


@pytest.mark.django_db
def test_a_name_change_still_updates_the_derived_match_key():
    processor = make_processor(name_zh="甲公司")

    services.processor_update(processor=processor, name_zh="乙公司")

    assert Processor.objects.get(pk=processor.pk).name_key == processor.name_key != "甲公司"


# --- Concurrent PATCHes ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_pairs_of_concurrent_patches_to_different_fields_keep_both_changes(admin_user):
    needs_shared_database()
    processor = make_processor()
    url = processor_url(processor)
    for pair in range(20):
        results = run_together(
            lambda pair=pair: api_as(admin_user).patch(url, {"contact_email": f"p{pair}@example.com"}),
            lambda pair=pair: api_as(admin_user).patch(url, {"notes": f"pair {pair}"}),
        )
        assert [getattr(result, "status_code", result) for result in results] == [200, 200]
        processor.refresh_from_db()
        assert (processor.contact_email, processor.notes) == (f"p{pair}@example.com", f"pair {pair}")


@pytest.mark.django_db(transaction=True)
def test_of_two_concurrent_patches_from_one_version_one_lands_and_the_other_is_412(admin_user):
    needs_shared_database()
    processor = make_processor()
    url = processor_url(processor)
    etag = api_as(admin_user).get(url)["ETag"]

    results = run_together(
        *(
            lambda note=note: api_as(admin_user).patch(url, {"notes": note}, HTTP_IF_MATCH=etag)
            for note in ("first", "second")
        )
    )

    assert sorted(result.status_code for result in results) == [200, 412]


# --- ETag and If-Match ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_single_object_is_sent_with_its_version_as_a_weak_etag(api_client):
    processor = make_processor()

    assert api_client.get(processor_url(processor))["ETag"] == 'W/"1"'


@pytest.mark.django_db
def test_a_write_with_the_current_etag_lands_and_answers_the_new_one(api_client):
    processor = make_processor()
    url = processor_url(processor)
    etag = api_client.get(url)["ETag"]

    response = api_client.patch(url, {"notes": "checked"}, HTTP_IF_MATCH=etag)

    assert response.status_code == 200
    assert response["ETag"] == 'W/"2"'


@pytest.mark.django_db
def test_a_stale_put_is_refused_with_412_and_reverts_nothing(api_client):
    processor = make_processor(name_zh="甲公司")
    url = processor_url(processor)
    etag = api_client.get(url)["ETag"]
    api_client.patch(url, {"contact_email": "theirs@example.com"})

    response = api_client.put(url, {"name_zh": "甲公司", "contact_email": ""}, HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"
    assert Processor.objects.get(pk=processor.pk).contact_email == "theirs@example.com"


@pytest.mark.django_db
def test_a_stale_delete_is_refused_with_412(api_client):
    operation = make_operation()
    url = f"/api/v1/operations/{operation.pk}/"
    etag = api_client.get(url)["ETag"]
    api_client.patch(url, {"notes": "changed meanwhile"}, format="json")

    response = api_client.delete(url, HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert api_client.get(url).status_code == 200


@pytest.mark.django_db
def test_services_and_controllers_honour_if_match_too(api_client):
    service = make_service()
    controller = service.controller

    stale_service = api_client.patch(f"/api/v1/services/{service.pk}/", {"name": "x"}, HTTP_IF_MATCH='W/"9"')
    stale_controller = api_client.patch(
        f"/api/v1/controllers/{controller.code}/", {"name_en": "x"}, HTTP_IF_MATCH='"9"'
    )

    assert (stale_service.status_code, stale_controller.status_code) == (412, 412)


@pytest.mark.django_db
def test_if_match_can_be_required_by_setting(api_client):
    processor = make_processor()

    with override_settings(REGISTER_API_REQUIRE_IF_MATCH=True):
        response = api_client.patch(processor_url(processor), {"notes": "blind"})

    assert response.status_code == 428
    assert response.json()["error"]["code"] == "precondition_required"


@pytest.mark.django_db
def test_if_match_star_matches_any_version(api_client):
    processor = make_processor()

    with override_settings(REGISTER_API_REQUIRE_IF_MATCH=True):
        response = api_client.patch(processor_url(processor), {"notes": "any"}, HTTP_IF_MATCH="*")

    assert response.status_code == 200


# --- The admin's change forms ---------------------------------------------------------------------


def admin_form_data(response) -> dict:
    """The POST data a browser would send back for an admin change form, unchanged."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    for form in forms:
        for bound in form:
            value = bound.value()
            if value is None:
                continue
            if isinstance(value, list | tuple):
                data[bound.html_name] = [str(item) for item in value]
            elif isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            else:
                data[bound.html_name] = str(getattr(value, "pk", value))
    return data


@pytest.mark.django_db
def test_a_stale_admin_form_is_refused_showing_who_when_and_both_values(client, django_user_model):
    alice = django_user_model.objects.create_superuser("alice", "alice@example.com", "pw")
    bob = django_user_model.objects.create_superuser("bob", "bob@example.com", "pw")
    processor = make_processor(contact_email="old@example.com")
    url = f"/admin/processors/processor/{processor.pk}/change/"
    client.force_login(alice)
    alice_form = admin_form_data(client.get(url))
    bob_client = type(client)()
    bob_client.force_login(bob)
    bob_form = admin_form_data(bob_client.get(url))

    saved = client.post(url, {**alice_form, "contact_email": "alice@example.com"})
    refused = bob_client.post(url, {**bob_form, "contact_email": "bob@example.com"})

    assert saved.status_code == 302
    assert refused.status_code == 200
    page = refused.content.decode()
    assert "Changed by alice at" in page
    assert "alice@example.com" in page and "bob@example.com" in page
    assert Processor.objects.get(pk=processor.pk).contact_email == "alice@example.com"


@pytest.mark.django_db
def test_the_admin_change_form_carries_the_version_it_was_opened_at(admin_client):
    processor = make_processor()
    services.processor_update(processor=processor, notes="second version")

    form = admin_form_data(admin_client.get(f"/admin/processors/processor/{processor.pk}/change/"))

    assert form["opened_version"] == "2"


@pytest.mark.django_db
def test_an_unchanged_admin_form_over_a_newer_version_is_refused(admin_client):
    controller = make_controller()
    url = f"/admin/processors/controller/{controller.pk}/change/"
    form = admin_form_data(admin_client.get(url))
    services.controller_update(controller=controller, name_en="Changed meanwhile")

    response = admin_client.post(url, form)

    assert response.status_code == 200
    assert "since you opened it" in response.content.decode()


# --- A save racing the form: changed between the form's checks and the service's write -------------


def change_after_clean(monkeypatch, form_class, change: Callable[[], object]) -> list[int]:
    """Run ``change`` once, right after the form's own checks passed: another user's save in between."""
    original, runs = form_class.clean, []

    def clean_then_change(self):
        cleaned = original(self)
        if not runs:
            runs.append(1)
            change()
        return cleaned

    monkeypatch.setattr(form_class, "clean", clean_then_change)
    return runs


@pytest.mark.django_db
def test_a_save_raced_by_another_users_save_shows_the_form_again_with_both_values(
    client, django_user_model, monkeypatch
):
    from processors.forms import ProcessorForm

    alice = django_user_model.objects.create_superuser("alice", "alice@example.com", "pw")
    bob = django_user_model.objects.create_superuser("bob", "bob@example.com", "pw")
    processor = make_processor(contact_email="old@example.com")
    url = f"/admin/processors/processor/{processor.pk}/change/"
    client.force_login(bob)
    form = admin_form_data(client.get(url))

    def alice_saves():
        with history_context(Channel.ADMIN, user=alice):
            services.processor_update(
                processor=Processor.objects.get(pk=processor.pk), contact_email="a@x.cn"
            )

    runs = change_after_clean(monkeypatch, ProcessorForm, alice_saves)
    response = client.post(url, {**form, "contact_email": "bob@example.com"})

    assert runs == [1]
    assert response.status_code == 200
    page = response.content.decode()
    assert "was changed by someone else since you read it" in page
    assert 'value="bob@example.com"' in page  # what Bob typed is still in the form
    # One connection in a test: Alice's change went with the rolled-back transaction. Committed, as in
    # real life, it stays, and the second look at the form also shows both values (the stale-form test).
    assert Processor.objects.get(pk=processor.pk).contact_email == "old@example.com"


@pytest.mark.django_db
def test_a_new_row_whose_name_is_taken_after_the_check_shows_the_form_again(admin_client, monkeypatch):
    from processors.forms import ProcessorForm

    def another_user_takes_the_name():
        # Written straight into the table, as a concurrent transaction's commit would appear.
        Processor.objects.bulk_create([Processor(name_zh="竞速公司", name_key="竞速公司")])

    change_after_clean(monkeypatch, ProcessorForm, another_user_takes_the_name)
    response = admin_client.post(
        "/admin/processors/processor/add/",
        {
            "name_zh": "竞速公司",
            "kind": "organisation",
            "operations-TOTAL_FORMS": "0",
            "operations-INITIAL_FORMS": "0",
            "aliases-TOTAL_FORMS": "0",
            "aliases-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors()
    assert "Nothing was saved" in response.content.decode()


@pytest.mark.django_db
def test_a_save_that_hits_a_database_constraint_after_validation_is_shown_not_a_500(
    admin_client, monkeypatch
):
    processor = make_processor(name_zh="", name_en="Racer")
    url = f"/admin/processors/processor/{processor.pk}/change/"
    form = admin_form_data(admin_client.get(url))
    original_save = Processor.save

    def conflict_then_save(self, *args, **kwargs):
        # The name is taken between the service's validation and its UPDATE: the database refuses.
        if self.pk == processor.pk and not Processor.objects.filter(name_key=self.name_key).exists():
            Processor.objects.bulk_create([Processor(name_en=self.name_en, name_key=self.name_key)])
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(Processor, "save", conflict_then_save)
    response = admin_client.post(url, {**form, "name_en": "Taken meanwhile"})

    assert response.status_code == 200
    assert "Someone else saved a conflicting change" in response.content.decode()
    assert 'value="Taken meanwhile"' in response.content.decode()
    assert Processor.objects.get(pk=processor.pk).name_en == "Racer"


@pytest.mark.django_db
def test_a_row_deleted_between_the_check_and_the_save_is_said_so(admin_client, monkeypatch):
    from processors.forms import VersionCheckedForm

    service = make_service()
    url = f"/admin/processors/service/{service.pk}/change/"
    form = admin_form_data(admin_client.get(url))
    change_after_clean(
        monkeypatch, VersionCheckedForm, lambda: Service.objects.filter(pk=service.pk).delete()
    )

    response = admin_client.post(url, {**form, "name": "Renamed"})

    # With one test connection the deletion was rolled back with the save; committed, the second look
    # finds no row and goes back to the index, as for any missing object.
    assert response.status_code == 200
    assert "It was deleted by someone else meanwhile; nothing was saved." in response.content.decode()


# --- Imports --------------------------------------------------------------------------------------

TABLE_HEADER = "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"


def table(*rows: str) -> str:
    return TABLE_HEADER + "".join(f"{row}\t姓名、手机号\t实名认证\t收集、存储\n" for row in rows)


@pytest.mark.django_db
def test_an_import_of_a_table_without_an_email_column_leaves_the_email_as_it_was():
    controller = make_controller()
    processor = make_processor(name_zh="甲科技有限公司", contact_email="dpo@jia.example")

    report = import_register(
        table("实名认证服务\t甲科技有限公司 010-12345678"), controller=controller, file_name="t.tsv"
    )

    assert report.committed
    processor.refresh_from_db()
    assert (processor.contact_phone, processor.contact_email) == ("010-12345678", "dpo@jia.example")


@pytest.mark.django_db
def test_a_hand_correction_made_while_an_import_runs_survives_it(monkeypatch):
    controller = make_controller()
    processor = make_processor(name_zh="甲科技有限公司")
    write_processors = Writer.processors

    def edited_between_plan_and_write(self, changes):
        services.processor_update(
            processor=Processor.objects.get(pk=processor.pk), contact_email="fixed@jia.example"
        )
        write_processors(self, changes)

    monkeypatch.setattr(Writer, "processors", edited_between_plan_and_write)

    report = import_register(
        table("实名认证服务\t甲科技有限公司 010-22222222"), controller=controller, file_name="t.tsv"
    )

    assert report.committed
    processor.refresh_from_db()
    assert (processor.contact_phone, processor.contact_email) == ("010-22222222", "fixed@jia.example")
    assert processor.version == 3  # created, corrected by hand, changed by the import
    newest = processor.history.order_by("-history_date", "-history_id").first()
    assert newest.contact_email == "fixed@jia.example"  # the history row is not the stale snapshot


@pytest.mark.django_db
def test_the_writer_takes_what_a_row_does_not_change_from_the_row_as_it_stands():
    processor = make_processor(contact_phone="010-1")
    stale = Processor.objects.get(pk=processor.pk)
    services.processor_update(processor=processor, contact_phone="010-hand")
    stale.notes = "from the file"

    fields = keep_newer_values(Processor, [stale], {stale.pk: {"notes"}})

    assert fields == {"notes", "version"}
    assert (stale.contact_phone, stale.notes, stale.version) == ("010-hand", "from the file", 3)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_imports_into_one_register_both_succeed_in_turn():
    needs_shared_database()
    controller = make_controller()

    reports = run_together(
        lambda: import_register(
            table("实名认证服务\t甲科技有限公司", "身份认证服务\t乙科技有限公司"),
            controller=controller,
            file_name="one.tsv",
        ),
        lambda: import_register(
            table("实名认证服务\t丙科技有限公司", "身份认证服务\t甲科技有限公司"),
            controller=controller,
            file_name="two.tsv",
        ),
    )

    assert [getattr(report, "committed", report) for report in reports] == [True, True]
    assert Operation.objects.filter(service__controller=controller).count() == 4


@pytest.mark.django_db(transaction=True)
def test_an_import_waiting_longer_than_the_setting_says_another_import_is_running(admin_user):
    needs_shared_database()
    controller = make_controller()
    holding, release = threading.Event(), threading.Event()

    def hold_the_register() -> None:
        # As a running import does: the register's lock on PostgreSQL, the write lock on SQLite.
        with transaction.atomic():
            lock_register(controller)
            Processor.objects.create(name_zh="占用有限公司", name_key="占用有限公司")
            holding.set()
            release.wait(10)

    def import_meanwhile():
        holding.wait(10)
        try:
            with override_settings(REGISTER_IMPORT_LOCK_TIMEOUT=0.2):
                return api_as(admin_user).post(
                    "/api/v1/imports/",
                    {
                        "controller": controller.code,
                        "text": table("实名认证服务\t甲科技有限公司"),
                        "dry_run": False,
                    },
                )
        finally:
            release.set()

    _, response = run_together(hold_the_register, import_meanwhile)

    # The import is a job (decision 27). On SQLite queuing it already waits for the register's write
    # lock and is refused (409); on PostgreSQL it is accepted, then the job waits for the register's
    # lock and gives up with the same reason. Either way nothing is written and it is never a 500.
    if response.status_code == 409:
        assert response.json()["error"]["code"] == "import_busy"
    else:
        assert response.status_code == 202
        job = api_as(admin_user).get(response["Location"]).json()
        assert job["finished"] and not job["committed"]
        assert [error["code"] for error in job["errors"]] == ["import_busy"]
    assert not Processor.objects.filter(name_zh="甲科技有限公司").exists()
