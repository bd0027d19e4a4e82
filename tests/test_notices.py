import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from processors import services
from processors.demo import demo_load
from processors.models import Controller, DataItem, Operation, OperationStatus, Processor
from processors.notices import NoticeError, deletion_notice, deletion_notice_csv
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo() -> Controller:
    demo_load()
    return Controller.objects.get()


def test_a_notice_for_phone_numbers_lists_the_sms_vendors_with_their_phones(demo):
    sms_vendors = Processor.objects.filter(operations__service__name="短信服务")

    notice = deletion_notice(["手机号"])

    phones = {recipient.processor.pk: recipient.processor.contact_phone for recipient in notice.recipients}
    assert {vendor.pk: vendor.contact_phone for vendor in sms_vendors}.items() <= phones.items()
    assert phones[Processor.objects.get(name_zh="北京亿美软通科技有限公司").pk] == "010-58750664"


def test_a_notice_for_identity_lists_every_recipient_of_an_identity_document(demo):
    holders = Processor.objects.filter(
        operations__in=DataItem.objects.filter(category__code__startswith="identity.").values("operation")
    ).distinct()
    expected = {member.pk for holder in holders for member in (list(holder.members.all()) or [holder])}

    notice = deletion_notice(["identity"])

    assert {recipient.processor.pk for recipient in notice.recipients} == expected
    assert all(
        category.code.startswith("identity.") for r in notice.recipients for category in r.categories.values()
    )


def test_a_group_is_told_member_by_member(demo):
    notice = deletion_notice(["证件号码"])

    arbitration = [r for r in notice.recipients if "仲裁委" in [g.primary_name for g in r.groups.values()]]

    assert len(arbitration) == 7 and all(r.relationships == ["provision"] for r in arbitration)


def test_an_unknown_category_is_refused_with_suggestions():
    with pytest.raises(NoticeError) as error:
        deletion_notice(["手机好"])

    assert error.value.suggestions["手机好"]


def test_a_retired_flow_counts_unless_left_out():
    operation = make_operation(data_items=("邮箱",))
    services.operation_update(operation=operation, status=OperationStatus.RETIRED)

    assert [r.processor for r in deletion_notice(["basic.email"]).recipients] == [operation.processor]
    assert deletion_notice(["basic.email"], include_retired=False).recipients == []


def test_a_notice_for_one_controller_leaves_the_others_out():
    mine = make_controller()
    make_operation(service=make_service(mine), data_items=("邮箱",))
    make_operation(data_items=("邮箱",))

    notice = deletion_notice(["邮箱"], controller=mine)

    assert [r.operations for r in notice.recipients] == [[Operation.objects.get(service__controller=mine).pk]]


def test_the_csv_neutralises_a_name_beginning_with_equals():
    make_operation(processor=make_processor(name_en='=HYPERLINK("http://evil")'), data_items=("邮箱",))
    stream = io.BytesIO()

    deletion_notice_csv(deletion_notice(["邮箱"]), stream, "en")

    rows = list(csv.reader(io.StringIO(stream.getvalue().decode("utf-8-sig"))))
    assert rows[1][0] == '\'=HYPERLINK("http://evil")'


def test_the_csv_has_one_row_per_recipient_under_a_chinese_header():
    make_operation(processor=make_processor(name_zh="接收方甲", contact_phone="010-1"), data_items=("邮箱",))
    stream = io.BytesIO()

    count = deletion_notice_csv(deletion_notice(["邮箱"]), stream, "zh")

    rows = list(csv.reader(io.StringIO(stream.getvalue().decode("utf-8-sig"))))
    assert count == 1 and rows[0][:3] == ["接收方", "所属名单", "联系电话"]
    assert rows[1][:3] == ["接收方甲", "", "010-1"]


def test_a_page_of_a_notice_is_the_same_recipients_read_in_one_query():
    for number in range(12):
        make_operation(processor=make_processor(name_zh=f"接收方{number:02d}"), data_items=("姓名",))
    notice = deletion_notice(["姓名"])
    everyone = list(notice.recipients)

    with CaptureQueriesContext(connection) as context:
        page = notice.recipients[5:10]

    assert len(context.captured_queries) == 1
    assert [r.processor.name_zh for r in page] == [f"接收方{number:02d}" for number in range(5, 10)]
    assert [(r.processor, r.categories, r.active) for r in page] == [
        (r.processor, r.categories, r.active) for r in everyone[5:10]
    ]
    assert len(notice.recipients) == 12 and notice.recipient(everyone[7].processor.pk).name == "接收方07"


def test_a_notice_takes_the_same_queries_however_many_recipients():
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            deletion_notice(["basic"])
        return len(context.captured_queries)

    make_operation(data_items=("邮箱",))
    few = queries()
    for _number in range(5):
        group = make_processor(kind=Processor.Kind.GROUP)
        make_processor(member_of=group)
        make_operation(processor=group, data_items=("姓名", "手机号"))

    assert queries() == few
