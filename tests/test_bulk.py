"""Driver-speed bulk writes (processors/bulk.py): what they write must be what the ORM would have written."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from processors.bulk import (
    copy_created_history,
    create_with_history,
    insert_objects,
    insert_rows,
    reserve_ids,
)
from processors.history import history_context
from processors.models import Channel, DataItem, Finding, ImportRecord, Operation, Purpose
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

ITEM_COLUMNS = ["operation_id", "position", "text", "category_id", "match"]


def test_reserved_ids_are_never_those_of_deleted_rows():
    # A deleted operation's id is still named by its history; a new one must not take it over.
    doomed = make_operation()
    doomed_id = doomed.pk
    doomed.data_items.all().delete()
    doomed.delete()

    ids = reserve_ids(Operation, 3)

    assert len(set(ids)) == 3
    assert min(ids) > doomed_id


def test_inserted_objects_read_back_as_the_orm_wrote_them():
    service, processor = make_service(), make_processor()
    now = timezone.now()
    [pk] = reserve_ids(Operation, 1)
    operation = Operation(
        id=pk,
        service=service,
        processor=processor,
        data_items_text="姓名、手机号",
        cross_border=True,
        destination_countries=["US", "JP"],
        effective_from=datetime.date(2026, 1, 31),
        feature_necessary=True,
    )

    insert_objects(Operation, [operation], now=now)

    saved = Operation.objects.get(pk=pk)
    assert [country.code for country in saved.destination_countries] == ["JP", "US"]  # sorted, as saved
    assert saved.effective_from == datetime.date(2026, 1, 31)
    assert saved.feature_necessary is True
    assert saved.created_at == saved.updated_at == now
    assert (saved.service_id, saved.processor_id, saved.data_items_text) == (
        service.pk,
        processor.pk,
        "姓名、手机号",
    )


def test_a_bulk_insert_is_one_counted_statement():
    # COPY on PostgreSQL goes through the cursor wrapper, so query counts (and pinned tests) see it.
    operation = make_operation()
    rows = [(operation.pk, position, f"项目{position}", None, "") for position in range(10, 60)]

    with CaptureQueriesContext(connection) as queries:
        insert_rows(
            DataItem._meta.db_table, ["operation_id", "position", "text", "category_id", "match"], rows
        )

    assert len(queries) == 1
    assert DataItem.objects.filter(operation=operation, position__gte=10).count() == 50


def test_copied_history_is_stamped_and_carries_the_terms(django_user_model):
    user = django_user_model.objects.create_user("importer")
    controller = make_controller()
    record = ImportRecord.objects.create(controller=controller, file_name="t.xlsx", sha256="0" * 64)
    service, processor = make_service(controller), make_processor()
    purpose = Purpose.objects.order_by("pk").first()
    now = timezone.now()
    [pk] = reserve_ids(Operation, 1)
    insert_objects(Operation, [Operation(id=pk, service=service, processor=processor)], now=now)
    insert_rows(Operation.purposes.through._meta.db_table, ["operation_id", "purpose_id"], [(pk, purpose.pk)])
    insert_rows(
        DataItem._meta.db_table, ITEM_COLUMNS, [(pk, 0, "姓名", None, ""), (pk, 1, "手机号", None, "")]
    )

    with history_context(Channel.IMPORT, import_record=record, user=user):
        copy_created_history(Operation, column="id", ids=[pk], now=now, m2m_fields=("purposes", "actions"))
        copy_created_history(DataItem, column="operation_id", ids=[pk], now=now)

    [entry] = Operation.history.filter(id=pk)
    assert (entry.history_type, entry.history_channel, entry.history_import_id, entry.history_user_id) == (
        "+",
        "import",
        record.pk,
        user.pk,
    )
    assert entry.history_date == now
    assert [link.purpose_id for link in entry.purposes.all()] == [purpose.pk]
    items = DataItem.history.filter(operation_id=pk).order_by("position")
    assert [(item.text, item.history_type, item.history_import_id) for item in items] == [
        ("姓名", "+", record.pk),
        ("手机号", "+", record.pk),
    ]


def test_created_with_history_as_history_bulk_create_writes_them(django_user_model):
    # The findings refresh creates its findings this way: the rows, their ids, and one "+" history row
    # each, stamped with the context, in three statements however many rows there are.
    user = django_user_model.objects.create_user("refresher")
    controller = make_controller()
    record = ImportRecord.objects.create(controller=controller, file_name="t.xlsx", sha256="0" * 64)
    operation = make_operation()
    now = timezone.now()
    rows = [
        {
            "rule": "pia_missing",
            "severity": "high",
            "operation_id": operation.pk,
            "subject_label": f"服务 {number}",
            "params": {"service": "服务", "number": number},
            "fingerprint": f"pia_missing:{operation.pk}:{number}",
            "first_seen": now,
            "last_seen": now,
        }
        for number in range(3)
    ]

    with (
        history_context(Channel.IMPORT, import_record=record, user=user),
        CaptureQueriesContext(connection) as sql,
    ):
        pks = create_with_history(Finding, rows, now=now)

    assert len(sql.captured_queries) <= 4  # the write lock and the ids, the insert, the history copy
    assert len(set(pks)) == 3
    saved = Finding.objects.filter(pk__in=pks).order_by("pk")
    # The fields not given take the model's defaults.
    assert [
        (row.pk, row.subject_label, row.params, row.state, row.state_reason, row.first_seen) for row in saved
    ] == [
        (pk, f"服务 {number}", {"service": "服务", "number": number}, "open", "", now)
        for pk, number in zip(pks, range(3), strict=True)
    ]
    assert all(
        (row.resolved_at, row.state_by_id, row.processor_id, row.rank) == (None, None, None, 0)
        for row in saved
    )
    history = Finding.history.filter(id__in=pks).order_by("id")
    assert [
        (entry.id, entry.history_type, entry.history_import_id, entry.history_user_id, entry.history_date)
        for entry in history
    ] == [(pk, "+", record.pk, user.pk, now) for pk in pks]
    assert [entry.params for entry in history] == [row["params"] for row in rows]


def test_created_rows_keep_each_rows_own_parameters_when_converted_values_are_reused():
    # Equal parameters are converted once; True and 1 are equal in Python but not as JSON.
    operation = make_operation()
    now = timezone.now()
    params = [{"flag": True}, {"flag": 1}, {"flag": True}, {}, {"names": ["甲", "乙"]}, {"flag": 1.0}]
    rows = [
        {
            "rule": "pia_missing",
            "severity": "high",
            "operation_id": operation.pk,
            "subject_label": "服务",
            "params": value,
            "fingerprint": f"test:{number}",
            "first_seen": now,
            "last_seen": now,
        }
        for number, value in enumerate(params)
    ]

    pks = create_with_history(Finding, rows, now=now)

    saved = {row.pk: row.params for row in Finding.objects.filter(pk__in=pks)}
    assert [saved[pk] for pk in pks] == params
    assert [type(saved[pk].get("flag")) for pk in pks] == [bool, int, bool, type(None), type(None), float]
