"""History in the admin: who, when, which channel and import, old → new; readable, never editable."""

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from simple_history.utils import get_history_model_for_model

from processors import services
from processors.history import Channel, history_context
from processors.models import ImportRecord, Operation, Processor
from tests.builders import make_operation, make_processor

pytestmark = pytest.mark.django_db


def history_url(processor: Processor) -> str:
    return reverse("admin:processors_processor_history", args=[processor.pk])


def processor_form_data(processor: Processor, **changes) -> dict:
    data = {
        "name_zh": processor.name_zh,
        "kind": processor.kind,
        "contact_phone": processor.contact_phone,
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "operations-TOTAL_FORMS": "0",
        "operations-INITIAL_FORMS": "0",
    }
    return {**data, **changes}


def edit_phone(client, processor: Processor, phone: str) -> None:
    url = reverse("admin:processors_processor_change", args=[processor.pk])
    response = client.post(url, processor_form_data(processor, contact_phone=phone))
    assert response.status_code == 302, response.context["adminform"].form.errors
    processor.refresh_from_db()


def test_the_history_of_a_processor_edited_in_the_admin_shows_the_user_and_old_and_new_phone(admin_client):
    processor = make_processor(name_zh="短信服务商", contact_phone="010-1111")
    edit_phone(admin_client, processor, "010-2222")

    response = admin_client.get(history_url(processor), HTTP_ACCEPT_LANGUAGE="en")

    entry = response.context["entries"][0]
    change = next(change for change in entry.changes if change.field == "contact_phone")
    assert (entry.user, entry.channel, change.old, change.new) == ("admin", "admin", "010-1111", "010-2222")
    content = response.content.decode()
    assert "010-1111" in content and "010-2222" in content and "admin" in content


def test_the_history_page_links_an_imported_change_to_its_import(admin_client):
    record = ImportRecord.objects.create(
        file_name="t.tsv", sha256="0" * 64, result=ImportRecord.Result.IMPORTED, channel=Channel.ADMIN
    )
    with history_context(Channel.IMPORT, import_record=record):
        processor = make_processor(name_zh="导入的公司")

    content = admin_client.get(history_url(processor)).content.decode()

    assert reverse("admin:processors_importrecord_change", args=[record.pk]) in content


@pytest.mark.parametrize("model", ["processor", "operation", "controller", "datacategory", "dataitem"])
def test_history_pages_open_for_every_register_model(admin_client, model):
    operation = make_operation()
    objects = {
        "processor": operation.processor,
        "operation": operation,
        "controller": operation.service.controller,
        "datacategory": operation.data_items.first().category,
        "dataitem": operation.data_items.first(),
    }

    response = admin_client.get(reverse(f"admin:processors_{model}_history", args=[objects[model].pk]))

    assert response.status_code == 200


def test_the_per_version_history_form_that_could_revert_is_not_routed():
    with pytest.raises(NoReverseMatch):
        reverse("admin:processors_processor_simple_history", args=[1, 1])


def test_posting_to_the_history_page_changes_nothing(admin_client):
    processor = make_processor(name_zh="原名公司", contact_phone="010-1111")
    edit_phone(admin_client, processor, "010-2222")
    rows_before = processor.history.count()

    admin_client.post(history_url(processor), {"contact_phone": "010-9999"})

    processor.refresh_from_db()
    assert (processor.contact_phone, processor.history.count()) == ("010-2222", rows_before)


@pytest.mark.parametrize("model", [Processor, Operation])
def test_historical_models_are_not_registered_in_the_admin(model):
    assert get_history_model_for_model(model) not in admin.site._registry


@pytest.mark.parametrize("action", ["add", "change", "delete"])
def test_there_are_no_add_change_or_delete_urls_for_history(action):
    with pytest.raises(NoReverseMatch):
        reverse(f"admin:processors_historicalprocessor_{action}", args=[] if action == "add" else [1])


def test_a_user_without_view_permission_cannot_read_the_history(client, django_user_model):
    processor = make_processor()
    client.force_login(django_user_model.objects.create_user("clerk", is_staff=True))

    assert client.get(history_url(processor)).status_code == 403


# Session and user (2), the processor (1), the page count and the page (2), the previous rows (1),
# the related labels (1: the group named by the creation row), the users (1) and the processors merged
# into this one (1: their history is part of the survivor's), for 5 or 45 changes.
HISTORY_QUERIES = 9


@pytest.mark.parametrize("changes", [5, 45])
def test_the_history_page_runs_a_constant_number_of_queries(
    admin_client, admin_user, django_assert_num_queries, changes
):
    group = make_processor(name_zh="集团", kind=Processor.Kind.GROUP)
    processor = make_processor(name_zh="变更很多的公司", member_of=group)
    with history_context(Channel.ADMIN, user=admin_user):
        for number in range(changes):
            processor.contact_phone = f"010-{number:04d}"
            services.processor_update(processor=processor)

    with django_assert_num_queries(HISTORY_QUERIES):
        response = admin_client.get(history_url(processor))

    assert len(response.context["entries"]) == changes + 1
