"""The register's invariants hold in the database, whichever path writes."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from processors import services
from processors.models import DataCategory, DataItem, Operation, Processor, Service
from processors.validators import uscc_check_character, validate_uscc
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

# A syntactically valid code built with the GB 32100-2015 check digit.
VALID_USCC = "91110108" + "MA01ABCD" + "1"
VALID_USCC = VALID_USCC[:17] + uscc_check_character(VALID_USCC[:17])


def assert_refused_by_database(callable_):
    with pytest.raises(IntegrityError), transaction.atomic():
        callable_()


def test_a_unified_social_credit_code_with_a_correct_check_digit_is_accepted():
    validate_uscc(VALID_USCC)
    validate_uscc("91350100M000100Y43")  # a published code


def test_a_unified_social_credit_code_with_a_wrong_check_digit_is_rejected_with_the_expected_digit():
    wrong = VALID_USCC[:17] + ("0" if VALID_USCC[17] != "0" else "1")
    with pytest.raises(ValidationError) as error:
        validate_uscc(wrong)
    assert VALID_USCC[17] in str(error.value)


def test_a_unified_social_credit_code_with_forbidden_letters_is_rejected():
    with pytest.raises(ValidationError):
        validate_uscc("91110108MA01ABCDIO")


def test_two_processors_cannot_share_a_unified_social_credit_code():
    make_processor(name_zh="甲公司", uscc=VALID_USCC)
    with pytest.raises(ValidationError):
        make_processor(name_zh="乙公司", uscc=VALID_USCC)
    assert_refused_by_database(
        lambda: Processor.objects.create(name_zh="丙公司", name_key="丙公司", uscc=VALID_USCC)
    )


def test_full_width_and_half_width_spellings_are_the_same_processor():
    make_processor(name_zh="天聚地合（苏州）数据股份有限公司")
    with pytest.raises(ValidationError):
        make_processor(name_zh="天聚地合(苏州)数据股份有限公司")


def test_a_processor_needs_a_chinese_or_an_english_name():
    with pytest.raises(ValidationError):
        services.processor_create(name_zh="", name_en="")
    assert_refused_by_database(lambda: Processor.objects.create(name_key="x"))


def test_a_processor_with_only_an_english_name_is_valid():
    processor = make_processor(name_en="DigiCert, Inc.", country="US")
    assert processor.name_key == "digicert,inc."


def test_a_processor_cannot_be_a_member_of_itself():
    processor = make_processor(kind=Processor.Kind.GROUP)
    assert_refused_by_database(lambda: Processor.objects.filter(pk=processor.pk).update(member_of=processor))


def test_service_names_are_unique_within_a_controller_but_not_across_controllers():
    first, second = make_controller(), make_controller()
    make_service(first, name="短信服务")
    make_service(second, name="短信服务")
    with pytest.raises(ValidationError):
        make_service(first, name="短信服务")
    assert_refused_by_database(lambda: Service.objects.create(controller=first, name="短信服务"))


def test_two_identical_undated_operations_are_refused():
    operation = make_operation()
    with pytest.raises(ValidationError):
        make_operation(service=operation.service, processor=operation.processor)
    assert_refused_by_database(
        lambda: Operation.objects.create(service=operation.service, processor=operation.processor)
    )


def test_the_same_flow_may_recur_in_a_later_period():
    operation = make_operation(
        effective_from=datetime.date(2023, 1, 1), effective_to=datetime.date(2023, 12, 31)
    )
    make_operation(
        service=operation.service, processor=operation.processor, effective_from=datetime.date(2024, 1, 1)
    )

    periods = Operation.objects.filter(service=operation.service, processor=operation.processor)
    assert sorted(periods.values_list("effective_from", "effective_to")) == [
        (datetime.date(2023, 1, 1), datetime.date(2023, 12, 31)),
        (datetime.date(2024, 1, 1), None),
    ]


def test_an_operation_cannot_end_before_it_starts():
    with pytest.raises(ValidationError):
        make_operation(effective_from=datetime.date(2024, 5, 20), effective_to=datetime.date(2024, 1, 1))
    operation = make_operation()
    assert_refused_by_database(
        lambda: Operation.objects.filter(pk=operation.pk).update(
            effective_from=datetime.date(2024, 5, 20), effective_to=datetime.date(2024, 1, 1)
        )
    )


def test_a_transfer_mechanism_requires_the_cross_border_flag():
    with pytest.raises(ValidationError):
        make_operation(transfer_mechanism="standard_contract")
    operation = make_operation(
        cross_border=True, destination_countries=["US"], transfer_mechanism="standard_contract"
    )
    assert operation.destination_countries[0].code == "US"
    assert_refused_by_database(lambda: Operation.objects.filter(pk=operation.pk).update(cross_border=False))


def test_category_codes_must_be_dotted_lower_case():
    with pytest.raises(ValidationError):
        DataCategory(code="Basic.Phone", name_zh="x", name_en="x").full_clean()
    assert_refused_by_database(
        lambda: DataCategory.objects.create(code="Bad Code", name_zh="坏", name_en="bad")
    )


def test_a_child_category_code_must_extend_its_parents_code():
    basic = DataCategory.objects.get(code="basic")
    with pytest.raises(ValidationError):
        DataCategory(code="identity.nickname", parent=basic, name_zh="小名", name_en="Pet name").full_clean()
    DataCategory(code="basic.pet_name", parent=basic, name_zh="小名", name_en="Pet name").full_clean()


def test_a_dotted_category_needs_a_parent_in_the_database():
    assert_refused_by_database(
        lambda: DataCategory.objects.create(code="basic.orphan", name_zh="孤", name_en="Orphan")
    )


def test_category_names_are_unique():
    assert_refused_by_database(
        lambda: DataCategory.objects.create(code="dup", name_zh="个人基本资料", name_en="Dup")
    )


def test_a_data_item_has_a_match_method_exactly_when_it_has_a_category():
    operation = make_operation(data_items=["火星文"])
    item = operation.data_items.get()
    assert item.needs_review and item.match == ""
    assert_refused_by_database(lambda: DataItem.objects.filter(pk=item.pk).update(match="alias"))


def test_an_operations_data_items_keep_unmapped_text_verbatim():
    operation = make_operation(data_items=["姓名", "火星文"])
    items = list(operation.data_items.order_by("position"))
    assert [(item.text, item.category.code if item.category else None) for item in items] == [
        ("姓名", "basic.name"),
        ("火星文", None),
    ]
