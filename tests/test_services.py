"""The write services: one update per entity, changing only what it is given."""

import pytest

from processors import services
from processors.models import Purpose
from tests.builders import make_operation, make_processor

pytestmark = pytest.mark.django_db


def test_updating_a_processor_leaves_its_aliases_unless_given():
    processor = make_processor(name_zh="钉钉科技有限公司", aliases=["钉钉", "DingTalk"])

    services.processor_update(processor=processor, contact_phone="0571-00000000")

    processor.refresh_from_db()
    assert processor.contact_phone == "0571-00000000"
    assert sorted(processor.aliases.values_list("text", flat=True)) == ["DingTalk", "钉钉"]


def test_updating_a_processor_with_aliases_makes_them_its_exact_set_of_other_names():
    processor = make_processor(name_zh="钉钉科技有限公司", aliases=["钉钉", "DingTalk"])

    services.processor_update(processor=processor, aliases=["ＤＩＮＧＴＡＬＫ", "阿里钉钉"])

    # DingTalk is kept as written before (same key); 钉钉 goes; 阿里钉钉 is new.
    assert sorted(processor.aliases.values_list("text", flat=True)) == ["DingTalk", "阿里钉钉"]


def test_updating_an_operations_fields_leaves_its_items_and_purposes():
    operation = make_operation(data_items=["姓名", "手机号"], purposes=("esign",))

    services.operation_update(operation=operation, relationship="entrusted")

    operation.refresh_from_db()
    assert operation.relationship == "entrusted"
    assert list(operation.data_items.order_by("position").values_list("text", flat=True)) == [
        "姓名",
        "手机号",
    ]
    assert list(operation.purposes.values_list("code", flat=True)) == ["esign"]


def test_updating_an_operation_replaces_the_items_and_purposes_it_is_given():
    operation = make_operation(data_items=["姓名", "手机号"], purposes=("esign",), actions=("collect",))

    services.operation_update(
        operation=operation,
        data_items=["身份证号"],
        purposes=Purpose.objects.filter(code="identity_verification"),
    )

    assert [(item.text, item.category.code) for item in operation.data_items.all()] == [
        ("身份证号", "identity.id_card_number")
    ]
    assert list(operation.purposes.values_list("code", flat=True)) == ["identity_verification"]
    assert list(operation.actions.values_list("code", flat=True)) == ["collect"]
