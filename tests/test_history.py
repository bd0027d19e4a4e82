import pytest
from django.conf import settings
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from processors import services
from processors.history import (
    HistoryChannelMiddleware,
    current_history_state,
    history_bulk_create,
    history_bulk_update,
    history_context,
    history_for,
    history_for_queryset,
    history_rows,
    history_search,
    processor_history,
)
from processors.models import Channel, DataItem, ImportRecord, Operation, Processor, Purpose
from processors.spreadsheets.importer import import_register
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "短信服务\t历史测试短信有限公司 010-12345678\t手机号\t发送验证码\t收集、存储\n"
)


def import_record(controller) -> ImportRecord:
    return ImportRecord.objects.create(
        controller=controller,
        channel=Channel.IMPORT,
        file_name="table.tsv",
        sha256="0" * 64,
        result=ImportRecord.Result.IMPORTED,
    )


def test_editing_a_contact_in_the_admin_records_the_user_the_channel_and_both_values(admin_user):
    processor = make_processor(contact_phone="010-11111111")

    with history_context(Channel.ADMIN, user=admin_user):
        services.processor_update(processor=processor, contact_phone="010-22222222")

    entry = history_for(processor)[0]
    assert (entry.type, entry.user, entry.channel) == ("changed", "admin", "admin")
    assert [(change.field, change.old, change.new) for change in entry.changes] == [
        ("contact_phone", "010-11111111", "010-22222222")
    ]


def test_an_import_inside_an_import_context_stamps_the_import_on_every_entry():
    controller = make_controller()
    record = import_record(controller)

    with history_context(Channel.IMPORT, import_record=record):
        report = import_register(TABLE, controller=controller, file_name="table.tsv")

    assert report.committed
    entries = history_search(import_record=record)
    assert {entry.model for entry in entries} >= {
        "processors.processor",
        "processors.service",
        "processors.operation",
        "processors.dataitem",
    }
    assert {(entry.channel, entry.import_id) for entry in entries} == {("import", record.pk)}


def test_purpose_changes_appear_in_the_operation_history():
    operation = make_operation(purposes=("identity_verification",))
    before, after = Purpose.objects.get(code="identity_verification"), Purpose.objects.get(code="esign")

    services.operation_set_terms(operation=operation, purposes=[after])

    purpose_changes = [
        (change.old, change.new)
        for entry in history_for(operation)
        for change in entry.changes
        if change.field == "purposes"
    ]
    assert ("", str(after)) in purpose_changes
    assert (str(before), "") in purpose_changes


def test_data_items_created_through_services_have_history():
    operation = make_operation(data_items=("姓名", "手机号"))

    with history_context(Channel.API):
        services.operation_update(operation=operation, data_items=["身份证号"])

    rows = DataItem.history.filter(operation_id=operation.pk)
    assert rows.filter(history_type="+").count() == 3
    assert rows.filter(history_type="-").count() == 2
    assert set(rows.filter(text="身份证号").values_list("history_channel", flat=True)) == {"api"}


def test_a_write_outside_any_context_and_request_is_recorded_as_a_command():
    processor = make_processor()

    assert history_for(processor)[0].channel == Channel.COMMAND


@pytest.mark.parametrize(
    ("path", "channel"),
    [
        ("/admin/processors/processor/", "admin"),
        ("/api/v1/operations/", "api"),
        ("/controllers/x/", "browser"),
    ],
)
def test_the_middleware_takes_the_channel_from_the_request_path(path, channel):
    middleware = HistoryChannelMiddleware(lambda request: current_history_state().channel)

    assert middleware(RequestFactory().get(path)) == channel


def test_the_channel_context_ends_with_the_request():
    HistoryChannelMiddleware(lambda request: None)(RequestFactory().get("/admin/"))

    assert current_history_state() is None


def test_a_nested_context_keeps_the_outer_user(admin_user):
    with history_context(Channel.ADMIN, user=admin_user), history_context(Channel.IMPORT) as inner:
        assert (inner.channel, inner.user) == ("import", admin_user)


def test_bulk_writes_carry_the_context_channel_user_and_import(admin_user):
    controller = make_controller()
    record = import_record(controller)
    operation = make_operation(service=make_service(controller), data_items=())

    with history_context(Channel.IMPORT, import_record=record, user=admin_user):
        [item] = history_bulk_create(DataItem, [DataItem(operation=operation, position=0, text="邮箱")])
        item.text = "电子邮箱"
        history_bulk_update(DataItem, [item], ["text"])

    rows = DataItem.history.filter(id=item.pk).order_by("history_id")
    assert [row.history_type for row in rows] == ["+", "~"]
    assert {(row.history_channel, row.history_import_id, row.history_user_id) for row in rows} == {
        ("import", record.pk, admin_user.pk)
    }


def test_a_deletion_records_the_last_values():
    operation = make_operation(recipient_qualifier="及其合作机构")
    operation_id = operation.pk

    services.operation_delete(operation=operation)

    entry = history_search(model_classes=[Operation])[0]
    assert (entry.object_id, entry.type) == (operation_id, "deleted")
    assert ("recipient_qualifier", "及其合作机构", "") in [
        (change.field, change.old, change.new) for change in entry.changes
    ]


def test_foreign_keys_are_shown_by_name():
    operation = make_operation()
    old, new = operation.processor, make_processor(name_zh="新的接收方有限公司")

    services.operation_update(operation=operation, processor=new)

    [change] = history_for(operation)[0].changes
    label = str(Operation._meta.get_field("processor").verbose_name)
    assert (change.label, change.old, change.new) == (label, str(old), "新的接收方有限公司")


def test_processor_history_covers_its_aliases_operations_and_data_items():
    processor = make_processor(aliases=["旧名"])
    make_operation(processor=processor, data_items=("姓名",))

    models = {entry.model for entry in processor_history(processor)}

    assert models == {
        "processors.processor",
        "processors.processoralias",
        "processors.operation",
        "processors.dataitem",
    }


def test_the_history_of_a_queryset_covers_each_of_its_objects():
    first, second, _other = make_processor(), make_processor(), make_processor()

    entries = history_for_queryset(Processor.objects.filter(pk__in=[first.pk, second.pk]))

    assert sorted(entry.object_id for entry in entries) == [first.pk, second.pk]


def queries_for_processor_history(processor: Processor) -> int:
    with CaptureQueriesContext(connection) as context:
        processor_history(processor, limit=None)
    return len(context.captured_queries)


def test_processor_history_takes_the_same_queries_however_long_it_is():
    processor = make_processor(aliases=["别名"])
    make_operation(processor=processor)
    short = queries_for_processor_history(processor)

    for number in range(5):
        operation = make_operation(processor=processor, data_items=("姓名", "身份证号", "手机号"))
        services.operation_set_terms(operation=operation, purposes=Purpose.objects.filter(code="esign"))
        services.processor_update(processor=processor, contact_phone=f"010-0000000{number}")

    assert queries_for_processor_history(processor) == short


def test_history_cannot_be_reverted():
    assert settings.SIMPLE_HISTORY_REVERT_DISABLED is True


def test_history_rows_count_and_slice_several_tables_as_one_list_newest_first():
    processor = make_processor()
    make_operation(processor=processor)
    services.processor_update(processor=processor, contact_phone="010-33333333")

    rows = history_rows(model_classes=[Operation, Processor])
    total = Processor.history.count() + Operation.history.count()
    merged = rows[:total]

    assert rows.count() == len(merged) == total
    assert {row.instance_type for row in merged} == {Operation, Processor}
    keys = [(row.history_date, row.history_id) for row in merged]
    assert keys == sorted(keys, reverse=True)
    assert (merged[0].instance_type, merged[0].contact_phone) == (Processor, "010-33333333")
    assert rows[1:3] == merged[1:3]
