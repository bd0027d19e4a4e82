import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from processors.demo import demo_load
from processors.findings import RULES, Finding, findings, findings_summary
from processors.models import Controller, Operation, Processor, TransferMechanism
from processors.taxonomy import Taxonomy
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The assertions read the English wording of finding details."""
    from django.utils import translation

    with translation.override("en"):
        yield


CERTIFICATE_SERVICES = {"分销商", "业支", "阿里云业支", "VcertCloud"}
CERTIFICATE_AUTHORITIES = (
    "DigiCert Inc",
    "Asseco Data Systems S.A.",
    "GlobalSign nv-sa",
    "Sectigo Limited",
    "Actalis S.p.A.",
)
TODAY = datetime.date(2025, 6, 1)


def flagged(code: str, **scope) -> list[Finding]:
    return [finding for finding in findings(**scope, today=TODAY) if finding.code == code]


def abroad(**fields) -> Operation:
    fields.setdefault("destination_countries", ["US"])
    return make_operation(cross_border=True, **fields)


@pytest.fixture
def demo() -> Controller:
    demo_load()
    return Controller.objects.get()


def test_the_demo_flags_the_certificate_authorities_transfers_abroad_without_a_mechanism(demo):
    found = flagged("cross_border_without_mechanism")

    services = set(
        Operation.objects.filter(pk__in=[f.subject_id for f in found]).values_list("service__name", flat=True)
    )
    assert services == CERTIFICATE_SERVICES and len(found) == 4
    assert all(name in finding.detail for finding in found for name in CERTIFICATE_AUTHORITIES)
    assert {finding.severity for finding in found} == {"high"}


def test_the_demo_flags_the_recipients_told_about_without_a_contact(demo):
    found = flagged("recipient_without_contact")

    assert {finding.subject_label for finding in found} == {
        "Digicert, Certum, GlobalSign, Sectigo, Actalis",
        "仲裁委",
        "法证链科技创新有限公司",
        "杭州度言软件有限公司",
    }


def test_two_million_people_under_a_standard_contract_need_a_security_assessment():
    operation = abroad(transfer_mechanism=TransferMechanism.STANDARD_CONTRACT, annual_subjects=2_000_000)

    [finding] = flagged("cross_border_mechanism_insufficient")

    assert finding.subject_id == operation.pk and "security assessment" in finding.detail


def test_a_security_assessment_answers_any_volume():
    abroad(transfer_mechanism=TransferMechanism.SECURITY_ASSESSMENT, annual_subjects=2_000_000)

    assert flagged("cross_border_mechanism_insufficient") == []


def test_fifty_thousand_people_under_a_standard_contract_pass():
    abroad(transfer_mechanism=TransferMechanism.STANDARD_CONTRACT, annual_subjects=50_000)

    assert flagged("cross_border_mechanism_insufficient") == []


def test_the_volume_exemption_does_not_cover_sensitive_data():
    operation = abroad(
        transfer_mechanism=TransferMechanism.EXEMPT_VOLUME, annual_subjects=5_000, data_items=("身份证号",)
    )

    [finding] = flagged("cross_border_mechanism_insufficient")

    assert finding.subject_id == operation.pk and "standard contract" in finding.detail


def test_the_volume_exemption_without_a_headcount_cannot_be_checked():
    abroad(transfer_mechanism=TransferMechanism.EXEMPT_VOLUME, data_items=("姓名",))

    assert len(flagged("cross_border_volume_unknown")) == 1


def test_provision_under_ordinary_consent_lacks_separate_consent():
    make_operation(relationship="provision", legal_basis="consent", consent_type="ordinary")

    assert len(flagged("separate_consent_missing")) == 1


def test_separate_consent_is_not_needed_when_consent_is_not_the_legal_basis():
    make_operation(
        relationship="provision",
        data_items=("身份证号",),
        legal_basis="legal_duty",
        consent_type="not_applicable",
    )

    assert flagged("separate_consent_missing") == []


def test_an_entrustment_without_a_pia_contract_or_retention_is_flagged_three_times():
    operation = make_operation(relationship="entrusted")

    codes = {finding.code for finding in findings(operation=operation, today=TODAY)}

    assert codes >= {"pia_missing", "entrustment_without_contract", "entrustment_without_retention"}


def test_a_pia_older_than_three_years_is_stale():
    make_operation(relationship="entrusted", pia_reference="PIA-1", pia_date=datetime.date(2022, 5, 31))
    make_operation(relationship="entrusted", pia_reference="PIA-2", pia_date=datetime.date(2022, 6, 1))

    assert [finding.detail for finding in flagged("pia_stale")] == ["PIA PIA-1 dated 2022-05-31."]


def test_a_group_whose_members_all_have_a_contact_is_not_flagged():
    group = make_processor(name_zh="某集团", kind=Processor.Kind.GROUP)
    make_processor(name_zh="成员甲", member_of=group, contact_phone="010-1")
    make_processor(name_zh="成员乙", member_of=group, contact_email="b@example.com")
    make_operation(processor=group, relationship="provision")

    assert flagged("recipient_without_contact") == []


def test_a_group_with_a_member_without_contact_names_that_member():
    group = make_processor(name_zh="某集团", kind=Processor.Kind.GROUP)
    make_processor(name_zh="成员甲", member_of=group, contact_phone="010-1")
    make_processor(name_zh="成员乙", member_of=group)
    make_operation(processor=group, relationship="provision")

    [finding] = flagged("recipient_without_contact")

    assert "成员乙" in finding.detail and "成员甲" not in finding.detail


def test_unmapped_items_are_flagged_with_their_text():
    make_operation(data_items=("姓名", "神秘字段"))

    [finding] = flagged("unmapped_items")

    assert finding.detail == "神秘字段"


def test_an_operation_without_any_purpose_is_flagged():
    make_operation(purposes=())

    assert len(flagged("purpose_missing")) == 1


def test_near_duplicate_processors_are_flagged_once():
    make_processor(name_zh="天聚地合（苏州）数据股份有限公司")
    make_processor(name_zh="天聚地合(苏州)科技股份有限公司")

    [finding] = flagged("processor_near_duplicate")

    assert "天聚地合" in finding.detail


def test_findings_for_one_controller_leave_the_others_out():
    mine, other = make_controller(), make_controller()
    make_operation(service=make_service(mine), relationship="entrusted")
    make_operation(service=make_service(other), relationship="entrusted")

    found = [
        f.subject_id
        for f in findings(controller=mine, today=TODAY)
        if f.subject_model == "processors.operation"
    ]

    assert found and {Operation.objects.get(pk=pk).service.controller for pk in found} == {mine}


def test_findings_for_a_member_include_its_groups_transfers():
    group = make_processor(name_zh="某集团", kind=Processor.Kind.GROUP)
    member = make_processor(name_zh="成员甲", member_of=group, country="US")
    operation = abroad(processor=group)

    found = flagged("cross_border_without_mechanism", processor=member)

    assert [finding.subject_id for finding in found] == [operation.pk]


def test_the_summary_counts_findings_by_severity():
    abroad(relationship="provision", legal_basis="consent", consent_type="separate")

    summary = findings_summary(today=TODAY)

    assert summary["high"] == 2 and summary["by_rule"]["cross_border_without_mechanism"] == 1
    assert summary["total"] == summary["high"] + summary["medium"] + summary["low"]


def every_kind_of_operation(numbers: range, controller: Controller, group: Processor) -> None:
    """Operations that trip every rule, so each rule's prefetches run."""
    taxonomy = Taxonomy.load()
    for number in numbers:
        make_operation(
            taxonomy=taxonomy,
            service=make_service(controller),
            processor=group,
            data_items=("身份证号", f"未知字段{number}"),
            purposes=(),
            relationship="provision" if number % 2 else "entrusted",
            cross_border=True,
            destination_countries=["US"],
            transfer_mechanism=TransferMechanism.EXEMPT_VOLUME if number % 3 else "",
            pia_reference="PIA" if number % 4 == 0 else "",
            pia_date=datetime.date(2020, 1, 1),
        )


def queries_for_findings() -> int:
    with CaptureQueriesContext(connection) as context:
        findings(today=TODAY)
    return len(context.captured_queries)


def test_findings_take_the_same_number_of_queries_for_10_and_200_operations():
    controller = make_controller()
    group = make_processor(name_zh="某集团", kind=Processor.Kind.GROUP)
    make_processor(name_zh="某集团成员公司", member_of=group, country="US")
    make_processor(name_zh="某集团成员公司。")  # a near duplicate
    every_kind_of_operation(range(10), controller, group)
    ten = queries_for_findings()

    every_kind_of_operation(range(10, 200), controller, group)

    assert Operation.objects.count() == 200
    assert queries_for_findings() == ten <= 2 * len(RULES)


# --- Rows that leave out what a notice must say (issues 11 and 14) -------------------------------------


def test_an_operation_without_data_items_is_saved_and_flagged():
    operation = make_operation(data_items=(), relationship="entrusted", legal_basis="contract")

    [finding] = flagged("data_items_missing")

    assert finding.subject_id == operation.pk and finding.severity == "medium"
    assert str(finding.rule.reference) == "PIPL Arts. 17, 23"
    assert flagged("unmapped_items") == []


def test_an_operation_without_an_action_is_flagged_with_its_published_wording():
    make_operation(
        actions=(), actions_text="某种特别的处理", relationship="entrusted", legal_basis="contract"
    )
    make_operation(actions=(), relationship="entrusted", legal_basis="contract")

    details = sorted(finding.detail for finding in flagged("action_missing"))

    assert details == ["", "Published as “某种特别的处理”, which names no known processing action."]


def test_an_operation_without_a_relationship_or_legal_basis_is_flagged_once_for_each():
    operation = make_operation()

    codes = [finding.code for finding in findings(operation=operation, today=TODAY)]

    assert codes.count("relationship_missing") == 1 and codes.count("legal_basis_missing") == 1
    assert {
        f.severity for f in findings(operation=operation, today=TODAY) if f.code == "legal_basis_missing"
    } == {"low"}


def test_a_complete_row_trips_none_of_the_missing_field_rules():
    operation = make_operation(relationship="entrusted", legal_basis="contract")

    codes = {finding.code for finding in findings(operation=operation, today=TODAY)}

    assert not codes & {"data_items_missing", "action_missing", "relationship_missing", "legal_basis_missing"}


def test_a_retired_operation_without_anything_is_not_flagged():
    make_operation(data_items=(), actions=(), purposes=(), status="retired")

    assert findings(today=TODAY) == []
