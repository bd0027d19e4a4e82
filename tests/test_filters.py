"""The shared FilterSets answer questions by data type the way people ask them."""

import datetime

import pytest

from processors.filters import OperationFilterSet, ProcessorFilterSet
from processors.models import Operation, Processor
from processors.taxonomy import Taxonomy
from tests.builders import make_operation, make_processor

pytestmark = pytest.mark.django_db


def filtered_operations(**params):
    filterset = OperationFilterSet(params, queryset=Operation.objects.all())
    assert filterset.is_valid(), filterset.errors
    return set(filterset.qs)


@pytest.fixture
def register():
    return {
        "sms": make_operation(data_items=["手机号"]),
        "kyc": make_operation(data_items=["姓名", "身份证号"]),
        "passport": make_operation(data_items=["护照"]),
        "face": make_operation(data_items=["人脸照片", "姓名"]),
    }


@pytest.mark.parametrize(
    "value", ["basic.phone_number", "手机号码", "phone number", "Phone Number", "手机号"]
)
def test_operations_can_be_filtered_by_category_code_name_or_alias(register, value):
    assert filtered_operations(category=value) == {register["sms"]}


@pytest.mark.parametrize(
    "value",
    [
        "Ｐｈｏｎｅ\u3000ｎｕｍｂｅｒ",
        "PHONENUMBER",
        "ＢＡＳＩＣ．ＰＨＯＮＥ＿ＮＵＭＢＥＲ",
        " phone  number ",
    ],
)
def test_a_width_case_or_spacing_variant_filters_as_the_importer_maps_it(register, value):
    # The filters once looked names up exactly in the database and refused these as unknown, while the
    # importer (which folds width, case and spacing) mapped the same text onto the phone number.
    assert Taxonomy.load().map_item(value).category_codes == ("basic.phone_number",)
    assert filtered_operations(category=value) == {register["sms"]}


def test_a_category_group_matches_all_its_descendants(register):
    assert filtered_operations(category="identity") == {register["kyc"], register["passport"]}
    assert filtered_operations(category="个人身份信息") == {register["kyc"], register["passport"]}


def test_repeating_the_category_parameter_means_any_of(register):
    from django.http import QueryDict

    params = QueryDict("category=手机号&category=护照")
    filterset = OperationFilterSet(params, queryset=Operation.objects.all())
    assert set(filterset.qs) == {register["sms"], register["passport"]}


def test_category_all_means_all_of(register):
    from django.http import QueryDict

    params = QueryDict("category_all=姓名&category_all=biometric")
    filterset = OperationFilterSet(params, queryset=Operation.objects.all())
    assert set(filterset.qs) == {register["face"]}


def test_an_unknown_category_is_an_error_that_suggests_the_nearest_alias(register):
    filterset = OperationFilterSet({"category": "身份正号"}, queryset=Operation.objects.all())
    assert not filterset.is_valid()
    message = str(filterset.errors["category"])
    assert "身份正号" in message and "身份证号" in message


@pytest.mark.parametrize(
    "value", ["esign", "电子签名与签署", "电子签约", "ＥＬＥＣＴＲＯＮＩＣ　ｓｉｇｎｉｎｇ", "ESIGN"]
)
def test_a_purpose_is_named_by_code_name_or_alias_in_any_width_or_case_as_the_importer_maps_it(value):
    signing = make_operation(purposes=("esign",))
    make_operation(purposes=("identity_verification",))

    assert Taxonomy.load().map_purposes(value).codes == ("esign",)
    assert filtered_operations(purpose=value) == {signing}


def test_an_unknown_purpose_is_an_error():
    filterset = OperationFilterSet({"purpose": "火星探测"}, queryset=Operation.objects.all())

    assert not filterset.is_valid()
    assert "火星探测" in str(filterset.errors["purpose"])


def test_sensitive_filter_finds_operations_with_any_sensitive_category(register):
    assert filtered_operations(sensitive="true") == {register["kyc"], register["passport"], register["face"]}
    assert filtered_operations(sensitive="false") == {register["sms"]}


def test_operations_in_effect_on_a_date():
    old = make_operation(effective_from=datetime.date(2022, 1, 1), effective_to=datetime.date(2022, 12, 31))
    current = make_operation(effective_from=datetime.date(2023, 1, 1))
    retired = make_operation(status="retired")
    assert filtered_operations(as_of="2022-06-01") == {old}
    assert filtered_operations(as_of="2024-06-01") == {current}
    assert retired not in filtered_operations(as_of="2024-06-01")


def test_country_filter_finds_foreign_recipients_and_destinations():
    abroad = make_operation(processor=make_processor(name_en="DigiCert, Inc.", country="US"))
    transferred = make_operation(cross_border=True, destination_countries=["US"])
    make_operation(processor=make_processor(country="CN"))
    assert filtered_operations(country="us") == {abroad, transferred}


def test_processors_receiving_a_category_include_members_of_a_receiving_group():
    group = make_processor(name_en="Certificate authorities", kind=Processor.Kind.GROUP)
    member = make_processor(name_en="Sectigo", member_of=group, country="GB")
    sms_vendor = make_processor(name_zh="短信服务商有限公司")
    other = make_processor(name_zh="只收姓名的公司")
    make_operation(processor=group, data_items=["邮箱", "手机号"])
    make_operation(processor=sms_vendor, data_items=["手机号"])
    make_operation(processor=other, data_items=["姓名"])
    filterset = ProcessorFilterSet({"receives": "手机号码"}, queryset=Processor.objects.all())
    assert set(filterset.qs) == {group, member, sms_vendor}


def test_filtering_operations_by_a_group_member_finds_the_groups_rows():
    group = make_processor(name_en="Certificate authorities", kind=Processor.Kind.GROUP)
    member = make_processor(name_en="Actalis", member_of=group)
    row = make_operation(processor=group)
    make_operation()
    assert filtered_operations(processor=[member.pk]) == {row}


def test_search_matches_item_text_and_processor_names(register):
    assert filtered_operations(search="护照") == {register["passport"]}
    assert register["sms"] in filtered_operations(search=register["sms"].processor.name_zh)


@pytest.mark.parametrize("value", ["maybe", "2", "真"])
def test_a_malformed_yes_no_value_is_an_error_not_an_unfiltered_list(register, value):
    filterset = OperationFilterSet({"sensitive": value}, queryset=Operation.objects.all())
    assert not filterset.is_valid()
    assert value in str(filterset.errors["sensitive"])


@pytest.mark.parametrize("value", ["true", "1", "yes", "是", "True"])
def test_yes_no_values_are_read_in_their_usual_spellings(register, value):
    assert filtered_operations(sensitive=value) == {register["kyc"], register["passport"], register["face"]}


@pytest.mark.parametrize("value", ["²", "99999999999999999999", "٣"])
def test_a_service_that_is_no_row_id_is_looked_up_by_name_not_read_as_a_number(value):
    operation = make_operation()

    assert list(OperationFilterSet({"service": value}, queryset=Operation.objects.all()).qs) == []
    assert list(
        OperationFilterSet({"service": str(operation.service_id)}, queryset=Operation.objects.all()).qs
    ) == [operation]
