"""The read selectors: the group rule, the subtree rule, who receives what, the matrix."""

import pytest

from processors import selectors
from processors.models import DataCategory, Operation, Processor
from tests.builders import make_operation, make_processor

pytestmark = pytest.mark.django_db


@pytest.fixture
def group_register():
    group = make_processor(name_zh="某证书集团", kind=Processor.Kind.GROUP)
    member = make_processor(name_zh="某证书成员公司", member_of=group)
    loner = make_processor(name_zh="独立短信公司")
    return {
        "group": group,
        "member": member,
        "loner": loner,
        "to_group": make_operation(processor=group, data_items=["手机号", "身份证号"], purposes=("esign",)),
        "to_member": make_operation(processor=member, data_items=["姓名", "火星文"]),
        "to_loner": make_operation(processor=loner, data_items=["手机号"]),
    }


def test_a_member_is_reached_by_its_own_and_its_groups_operations(group_register):
    reaching = Operation.objects.filter(selectors.operations_reaching_q([group_register["member"]]))

    assert set(reaching) == {group_register["to_group"], group_register["to_member"]}


def test_an_operation_to_a_group_reaches_the_group_and_every_member(group_register):
    operations = Operation.objects.filter(pk=group_register["to_group"].pk)

    reached = Processor.objects.filter(selectors.processors_reached_q(operations))

    assert set(reached) == {group_register["group"], group_register["member"]}


@pytest.mark.parametrize(
    ("code", "ancestor", "within"),
    [
        ("identity", "identity", True),
        ("identity.passport", "identity", True),
        ("identity_extra.x", "identity", False),
        ("basic.name", "identity", False),
    ],
)
def test_a_category_stands_for_itself_and_its_descendants_only(code, ancestor, within):
    assert selectors.category_within(code, ancestor) is within


def test_who_receives_a_group_category_lists_each_recipient_once_with_what_it_gets(group_register):
    identity = DataCategory.objects.get(code="identity")

    [recipient] = selectors.category_recipients(identity)

    assert recipient.processor == group_register["group"]
    assert list(recipient.operations) == [group_register["to_group"].pk]
    assert [category.code for category in recipient.categories.values()] == ["identity.id_card_number"]
    assert [purpose.code for purpose in recipient.purposes.values()] == ["esign"]
    assert [member.pk for member in recipient.processor.members.all()] == [group_register["member"].pk]


def test_what_a_member_receives_by_category_marks_what_comes_only_through_its_group(group_register):
    member = group_register["member"]

    received = selectors.processor_received_categories(member, Operation.objects.all())

    via_group = {entry["category"].code: entry["via_group"] for entry in received["categories"]}
    assert via_group == {"basic.name": False, "basic.phone_number": True, "identity.id_card_number": True}
    assert received["unmapped_items"] == [{"text": "火星文", "operation": group_register["to_member"].pk}]


def test_what_a_processor_receives_by_purpose_keeps_the_published_text_of_unmapped_purposes(group_register):
    group_register["to_member"].purposes.clear()
    Operation.objects.filter(pk=group_register["to_member"].pk).update(purpose_text="火星探测")
    member = selectors.processor_profile(group_register["member"].pk)

    receipts = selectors.receipts_by_purpose(selectors.processor_operations(member))

    assert [(receipt.purpose and receipt.purpose.code, receipt.purpose_text) for receipt in receipts] == [
        ("esign", ""),
        (None, "火星探测"),
    ]
    assert receipts[1].unmapped == ["火星文"]


def test_the_matrix_counts_operations_per_group_and_per_category_of_a_group(group_register):
    operations = Operation.objects.all()
    recipients = selectors.matrix_recipients(operations)

    by_group = selectors.category_matrix(operations, recipients, by_group=True).grid()
    identity = selectors.category_groups().get(code="identity")
    drilled = selectors.category_matrix(
        operations, selectors.matrix_recipients(operations, identity), group=identity
    ).grid()

    assert [column["code"] for column in by_group["columns"]] == list(
        selectors.category_groups().values_list("code", flat=True)
    )
    assert {
        cell["category"] for cell in selectors.category_matrix(operations, recipients, by_group=True).cells
    } == {
        "basic",
        "identity",
    }
    assert [column["code"] for column in drilled["columns"]] == ["identity.id_card_number"]
    assert drilled["max"] == 1


def test_a_matrix_group_cell_counts_an_operation_once_however_many_of_its_items_it_has(group_register):
    loner = group_register["loner"]
    make_operation(processor=loner, data_items=["姓名", "手机号"])
    operations = Operation.objects.all()

    matrix = selectors.category_matrix(operations, [loner], by_group=True)

    assert [(cell["category"], cell["operations"]) for cell in matrix.cells] == [("basic", 2)]
