"""The version diff reads what a changed purpose text means, not only that its words changed."""

import datetime

import pytest

from processors import services
from processors.disclosure.diff import version_diff
from processors.models import Controller, Operation, Purpose, PurposeAlias
from processors.taxonomy import Taxonomy
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

MAY = datetime.date(2024, 5, 1)
JUNE = datetime.date(2024, 6, 1)


@pytest.fixture
def controller() -> Controller:
    controller = make_controller()
    make_operation(
        service=make_service(controller, name="短信服务"),
        processor=make_processor(name_zh="短信有限公司", contact_phone="010-11111111"),
        data_items=("手机号",),
        purposes=("sms_otp",),
        purpose_text="发送验证码",
        relationship="entrusted",
        legal_basis="consent",
        consent_type="ordinary",
    )
    return controller


@pytest.fixture
def marketing_alias() -> None:
    # The fixture's marketing purpose may not name 营销 yet (its keyword matching is being improved).
    marketing = Purpose.objects.get(code="marketing")
    if not PurposeAlias.objects.filter(purpose=marketing, text="营销").exists():
        PurposeAlias.objects.create(purpose=marketing, text="营销")


def publish(controller: Controller, label: str, day: datetime.date):
    return services.version_publish(controller=controller, label=label, updated_on=day, effective_on=day)


def test_marketing_added_to_a_purpose_text_is_a_material_new_purpose(controller, marketing_alias):
    first = publish(controller, "v1", MAY)
    # Only the text changes: the stored purposes still say sms_otp alone.
    services.operation_update(operation=Operation.objects.get(), purpose_text="发送验证码及营销短信")
    second = publish(controller, "v2", JUNE)

    diff = version_diff(first, second)

    added = [change for change in diff.changes if change.kind == "purpose_added"]
    assert [item["code"] for change in added for item in change.items] == ["marketing"]
    assert added[0].material and diff.is_material


def test_rewording_a_purpose_text_that_maps_to_the_same_purpose_is_minor(controller):
    first = publish(controller, "v1", MAY)
    services.operation_update(operation=Operation.objects.get(), purpose_text="短信验证码")
    second = publish(controller, "v2", JUNE)

    diff = version_diff(first, second)

    assert [(change.kind, change.impact) for change in diff.changes] == [("wording_changed", "minor")]
    assert not diff.is_material


def test_a_purpose_text_that_now_maps_to_another_purpose_is_material(controller):
    first = publish(controller, "v1", MAY)
    services.operation_update(operation=Operation.objects.get(), purpose_text="推送通知")
    second = publish(controller, "v2", JUNE)

    diff = version_diff(first, second, taxonomy=Taxonomy.load_purposes())

    kinds = {(change.kind, change.impact) for change in diff.changes}
    assert ("purpose_added", "material") in kinds
    assert diff.is_material


def test_a_new_country_and_a_new_legal_basis_are_material(controller):
    first = publish(controller, "v1", MAY)
    services.operation_update(
        operation=Operation.objects.get(),
        cross_border=True,
        destination_countries=["SG"],
        transfer_mechanism="standard_contract",
    )
    second = publish(controller, "v2", JUNE)
    services.operation_update(
        operation=Operation.objects.get(), destination_countries=["SG", "US"], legal_basis="contract"
    )
    third = publish(controller, "v3", datetime.date(2024, 7, 1))

    assert ("cross_border_started", "material") in {
        (change.kind, change.impact) for change in version_diff(first, second).changes
    }
    later = {(change.kind, change.impact) for change in version_diff(second, third).changes}
    assert ("destination_added", "material") in later
    assert any(kind == "legal_basis_changed" for kind, _impact in later)
