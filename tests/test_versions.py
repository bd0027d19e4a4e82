import datetime
import inspect
import io

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from processors import selectors, services
from processors.demo import demo_load
from processors.disclosure.diff import version_diff, version_diff_live
from processors.disclosure.documents import diff_markdown, diff_xlsx
from processors.disclosure.rows import disclosure_groups, rows_from_operations, rows_from_snapshot
from processors.disclosure.snapshots import (
    operations_as_of,
    register_state_at,
    snapshot_live,
    snapshot_sha256,
)
from processors.models import (
    Controller,
    ControllerRole,
    Operation,
    OperationStatus,
    PublicVersions,
    PublishedVersion,
)
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

MAY = datetime.date(2024, 5, 1)
JUNE = datetime.date(2024, 6, 1)


def publish(controller: Controller, label: str, day: datetime.date = MAY, **fields) -> PublishedVersion:
    fields.setdefault("effective_on", day)
    return services.version_publish(controller=controller, label=label, updated_on=day, **fields)


@pytest.fixture
def controller() -> Controller:
    controller = make_controller()
    make_operation(
        service=make_service(controller, name="短信服务"),
        processor=make_processor(name_zh="短信有限公司", contact_phone="010-11111111"),
        data_items=("手机号",),
        purposes=("sms_otp",),
        relationship="entrusted",
        legal_basis="consent",
        consent_type="ordinary",
    )
    return controller


def test_publishing_freezes_the_active_operations_with_their_hash(controller, admin_user):
    make_operation(service=make_service(controller), status=OperationStatus.RETIRED)

    version = publish(controller, "v1", user=admin_user)

    assert [entry["key"] for entry in version.snapshot["operations"]] == ["短信服务|短信有限公司|entrusted"]
    assert version.snapshot_sha256 == snapshot_sha256(version.snapshot)
    assert version.published_by == admin_user


def test_a_new_recipient_of_id_numbers_is_material_sensitive_first_and_needs_separate_consent(controller):
    first = publish(controller, "v1")
    make_operation(
        service=make_service(controller, name="实名认证"),
        processor=make_processor(name_zh="核验有限公司"),
        data_items=("姓名", "身份证号"),
    )
    second = publish(controller, "v2", JUNE)

    diff = version_diff(first, second)

    [added] = diff.recipients_added
    assert added.material and added.recipient == "核验有限公司"
    assert [item["code"] for item in added.items] == ["identity.id_card_number", "basic.name"]
    assert added.items[0]["sensitive"] and added.reconsent
    assert diff.material[0] is added and diff.reconsent_required


def test_a_contact_change_is_minor(controller):
    first = publish(controller, "v1")
    services.processor_update(
        processor=controller.services.get().operations.get().processor, contact_phone="010-22222222"
    )
    second = publish(controller, "v2", JUNE)

    diff = version_diff(first, second)

    assert [(change.kind, change.impact, change.old, change.new) for change in diff.changes] == [
        ("contact_changed", "minor", "010-11111111", "010-22222222")
    ]
    assert not diff.is_material and not diff.reconsent_required


def test_a_new_category_for_an_existing_recipient_is_material(controller):
    first = publish(controller, "v1")
    services.operation_update(operation=Operation.objects.get(), data_items=["手机号", "银行卡号"])

    diff = version_diff_live(first)

    assert [(change.kind, change.impact, change.sensitive) for change in diff.material] == [
        ("category_added", "material", True)
    ]


def test_turning_an_entrustment_into_a_provision_is_a_material_relationship_change(controller):
    first = publish(controller, "v1")
    services.operation_update(operation=Operation.objects.get(), relationship="provision")

    diff = version_diff_live(first)

    assert [(change.kind, change.impact, change.old, change.new) for change in diff.changes] == [
        ("relationship_changed", "material", "entrusted", "provision")
    ]
    assert diff.reconsent_required


def test_renaming_a_recipient_is_a_minor_name_change(controller):
    first = publish(controller, "v1")
    services.processor_update(processor=Operation.objects.get().processor, name_zh="短信科技有限公司")

    diff = version_diff_live(first)

    assert [(change.kind, change.impact, change.new) for change in diff.changes] == [
        ("name_changed", "minor", "短信科技有限公司")
    ]


def test_removing_a_recipient_is_a_reduction_without_consent(controller):
    first = publish(controller, "v1")
    services.operation_update(operation=Operation.objects.get(), status=OperationStatus.RETIRED)

    diff = version_diff_live(first)

    assert [(change.kind, change.impact) for change in diff.changes] == [("recipient_removed", "reduction")]
    assert not diff.reconsent_required


def test_starting_a_transfer_abroad_under_ordinary_consent_needs_separate_consent(controller):
    first = publish(controller, "v1")
    services.operation_update(
        operation=Operation.objects.get(), cross_border=True, destination_countries=["US"]
    )

    [change] = version_diff_live(first).changes

    assert (change.kind, change.impact, change.reconsent) == ("cross_border_started", "material", True)
    assert change.items[0]["code"] == "US"


def test_a_published_version_stays_as_it_was_when_the_register_changes(controller):
    version = publish(controller, "v1")
    frozen = version.snapshot
    services.operation_update(operation=Operation.objects.get(), status=OperationStatus.RETIRED)

    version.refresh_from_db()

    assert version.snapshot == frozen and snapshot_sha256(version.snapshot) == version.snapshot_sha256


def test_no_service_changes_or_deletes_a_published_version():
    version_services = [
        name for name, _ in inspect.getmembers(services, inspect.isfunction) if "version" in name
    ]

    # Withdrawing writes only the withdrawal fields (see the withdrawal tests); nothing edits the content.
    assert [name for name in version_services if not name.startswith("_")] == [
        "version_publish",
        "version_withdraw",
    ]


def test_a_label_already_used_is_refused(controller):
    publish(controller, "2024-05")

    with pytest.raises(ValidationError) as error:
        publish(controller, " 2024-05 ", JUNE)

    assert "label" in error.value.message_dict


def test_an_effective_date_before_the_update_date_is_refused(controller):
    with pytest.raises(ValidationError) as error:
        publish(controller, "v1", JUNE, effective_on=MAY)

    assert "effective_on" in error.value.message_dict


def test_the_current_version_is_the_latest_in_effect(controller):
    may = publish(controller, "may", MAY)
    june = publish(controller, "june", JUNE)
    publish(controller, "future", timezone.localdate() + datetime.timedelta(days=30))

    assert selectors.version_current(controller, on=MAY - datetime.timedelta(days=1)) is None
    assert selectors.version_current(controller, on=datetime.date(2024, 5, 31)) == may
    assert selectors.version_as_of(controller, JUNE) == june
    assert selectors.version_current(controller) == june


def test_a_published_version_renders_exactly_like_the_live_table():
    demo_load()
    controller = Controller.objects.get()
    version = publish(controller, "demo")

    for lang in ("zh", "en"):
        live = list(rows_from_operations(selectors.disclosure_operations(controller), lang=lang))
        assert rows_from_snapshot(version.snapshot, lang) == live


def test_rows_are_grouped_service_by_service(controller):
    make_operation(service=controller.services.get(), data_items=("邮箱",))

    groups = disclosure_groups(rows_from_snapshot(snapshot_live(controller)))

    assert [(service, len(rows)) for service, rows in groups] == [("短信服务", 2)]


def test_a_snapshot_takes_the_same_queries_however_many_operations(controller):
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            snapshot_live(controller)
        return len(context.captured_queries)

    few = queries()
    for _number in range(5):
        make_operation(service=make_service(controller), data_items=("姓名", "身份证号"))

    assert queries() == few


def test_the_change_notice_reads_as_a_chinese_and_an_english_notice(controller):
    first = publish(controller, "v1")
    make_operation(
        service=controller.services.get(),
        processor=make_processor(name_zh="新增接收方*有限公司"),
        data_items=("身份证号",),
    )
    diff = version_diff_live(first)

    chinese, english = diff_markdown(diff, "zh"), diff_markdown(diff, "en")

    assert "对外提供个人信息的对象、范围、目的发生变化" in chinese
    assert "新增接收方\\*有限公司" in chinese and "需重新取得单独同意" in chinese
    assert "## New recipients" in english and "**Resident ID number** (sensitive)" in english


def test_the_change_workbook_neutralises_formulas(controller):
    first = publish(controller, "v1")
    make_operation(service=controller.services.get(), processor=make_processor(name_en='=HYPERLINK("x")'))
    stream = io.BytesIO()

    diff_xlsx(version_diff_live(first), stream, "en")

    sheet = openpyxl.load_workbook(io.BytesIO(stream.getvalue())).active
    assert sheet["D2"].value == '\'=HYPERLINK("x")'


def test_the_diff_as_data_counts_changes_by_impact(controller):
    first = publish(controller, "v1")
    services.operation_update(operation=Operation.objects.get(), status=OperationStatus.RETIRED)

    data = version_diff_live(first).to_dict()

    assert data["counts"] == {"material": 0, "reduction": 1, "minor": 0}
    assert data["new"]["live"] and data["old"]["label"] == "v1"


def test_the_register_on_a_day_with_a_published_version_is_that_version(controller):
    version = publish(controller, "v1")

    state = operations_as_of(controller, JUNE)

    assert (state.source, state.version) == ("version", version)


def test_the_register_on_a_day_before_any_version_comes_from_the_history(controller):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)

    assert (
        operations_as_of(controller, yesterday).operations,
        operations_as_of(controller, yesterday).source,
    ) == (
        [],
        "history",
    )
    assert len(operations_as_of(controller, timezone.localdate()).operations) == 1


def test_the_register_at_an_instant_shows_the_values_of_that_instant(controller):
    operation = Operation.objects.get()
    before = timezone.now()
    services.processor_update(processor=operation.processor, contact_phone="010-99999999")
    services.operation_update(operation=operation, data_items=["手机号", "邮箱"])

    [entry] = register_state_at(before, controller=controller)["operations"]

    assert entry["processor"]["contact_phone"] == "010-11111111"
    assert [item["text"] for item in entry["data_items"]] == ["手机号"]
    assert [purpose["code"] for purpose in entry["purposes"]] == ["sms_otp"]
    assert version_diff(
        register_state_at(before, controller=controller), snapshot_live(controller)
    ).has_changes


# --- Publishing with checks, withdrawal, who sees versions ------------------------------------------


def add_row_without_purpose(controller: Controller) -> Operation:
    return make_operation(
        service=make_service(controller, name="客服"),
        processor=make_processor(name_zh="客服外包有限公司", contact_phone="010-33333333"),
        data_items=("手机号",),
        purposes=(),
        relationship="entrusted",
        legal_basis="consent",
        consent_type="ordinary",
    )


def publish_form(controller: Controller, label: str, **fields) -> dict:
    return {
        "controller": controller.code,
        "label": label,
        "updated_on": "2024-05-01",
        "effective_on": "2024-05-01",
        **fields,
    }


def test_a_blocking_problem_refuses_the_publish_and_lists_the_problems(client, admin_user, controller):
    add_row_without_purpose(controller)
    client.force_login(admin_user)
    url = reverse("processors:publish", args=[controller.code])

    response = client.post(url, publish_form(controller, "v1"))

    assert response.status_code == 400
    assert not PublishedVersion.objects.exists()
    page = response.content.decode()
    blocking = page.split('class="notice notice-blocking"')[1]
    assert "客服外包有限公司" in blocking


def test_a_blocking_problem_overridden_with_a_reason_publishes_and_keeps_the_reason(
    client, admin_user, controller
):
    add_row_without_purpose(controller)
    client.force_login(admin_user)
    url = reverse("processors:publish", args=[controller.code])

    response = client.post(
        url, publish_form(controller, "v1", override="on", override_reason="客服目的本周补录")
    )

    assert response.status_code == 302
    version = PublishedVersion.objects.get()
    assert version.override_reason == "客服目的本周补录"
    assert [problem["rule"] for problem in version.overridden_problems] == ["purpose_missing"]


def test_an_override_without_a_reason_is_refused(client, admin_user, controller):
    add_row_without_purpose(controller)
    client.force_login(admin_user)

    response = client.post(
        reverse("processors:publish", args=[controller.code]), publish_form(controller, "v1", override="on")
    )

    assert response.status_code == 400 and not PublishedVersion.objects.exists()


def test_the_publish_page_shows_the_diff_against_the_last_published_version(client, admin_user, controller):
    publish(controller, "v1")
    services.operation_update(operation=Operation.objects.get(), data_items=["手机号", "银行卡号"])
    client.force_login(admin_user)

    response = client.get(reverse("processors:publish", args=[controller.code]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "v1" in page and "material-flag" in page


def test_the_only_controller_is_preselected(client, admin_user, controller):
    from processors.forms import PublishVersionForm

    form = PublishVersionForm(controllers=Controller.objects.all())

    assert form.fields["controller"].empty_label is None
    assert form["controller"].value() == controller.code
    assert "---------" not in str(form["controller"])


def test_with_several_controllers_the_choice_starts_empty(controller):
    from processors.forms import PublishVersionForm

    make_controller()

    assert "---------" in str(PublishVersionForm(controllers=Controller.objects.all())["controller"])


def test_a_withdrawn_version_gives_way_to_the_previous_one_on_the_public_page(client, admin_user, controller):
    Controller.objects.filter(pk=controller.pk).update(disclosure_public=True)
    publish(controller, "v1")
    services.operation_update(operation=Operation.objects.get(), data_items=["手机号", "银行卡号"])
    second = publish(controller, "v2", JUNE)
    frozen = dict(second.snapshot)

    services.version_withdraw(version=second, user=admin_user, reason="误发布")

    second.refresh_from_db()
    assert second.withdrawn and second.withdrawal_reason == "误发布" and second.withdrawn_by == admin_user
    assert second.snapshot == frozen and snapshot_sha256(second.snapshot) == second.snapshot_sha256
    page = client.get(reverse("processors:disclosure", args=[controller.code])).content.decode()
    assert "银行卡号" not in page and "手机号" in page


def test_a_withdrawal_needs_a_reason(admin_user, controller):
    version = publish(controller, "v1")

    with pytest.raises(ValidationError):
        services.version_withdraw(version=version, user=admin_user, reason="  ")


def test_withdrawing_in_the_browser_marks_the_version_in_the_list(client, admin_user, controller):
    publish(controller, "v1")
    client.force_login(admin_user)

    response = client.post(
        reverse("processors:version-withdraw", args=[controller.code, "v1"]), {"reason": "数据有误"}
    )

    assert response.status_code == 302
    page = client.get(reverse("processors:versions", args=[controller.code])).content.decode()
    assert "version-withdrawn" in page and "数据有误" in page
    version_page = client.get(reverse("processors:version", args=[controller.code, "v1"])).content.decode()
    assert "notice-withdrawn" in version_page


def test_the_api_withdraws_a_version_and_marks_it(api_client, controller):
    version = publish(controller, "v1")

    refused = api_client.post(f"/api/v1/versions/{version.pk}/withdraw/", {}, format="json")
    response = api_client.post(
        f"/api/v1/versions/{version.pk}/withdraw/", {"reason": "wrong table"}, format="json"
    )

    assert refused.status_code == 400
    assert response.status_code == 200 and response.json()["withdrawn"] is True
    listed = api_client.get(f"/api/v1/versions/{version.pk}/").json()
    assert listed["withdrawn"] and listed["withdrawal_reason"] == "wrong table"


def test_the_api_withdraw_needs_the_publish_permission(client, django_user_model, controller):
    from rest_framework.test import APIClient

    version = publish(controller, "v1")
    reader = django_user_model.objects.create_user("reader", password="x")
    make_member(reader, controller, role=ControllerRole.VIEWER)
    api = APIClient()
    api.force_authenticate(reader)

    response = api.post(f"/api/v1/versions/{version.pk}/withdraw/", {"reason": "x"}, format="json")

    assert response.status_code in (403, 404)
    assert not PublishedVersion.objects.get().withdrawn


@pytest.mark.parametrize(
    ("setting", "list_status", "old_status", "diff_status"),
    [
        (PublicVersions.NONE, 404, 404, 404),
        (PublicVersions.LATEST, 200, 404, 200),
        (PublicVersions.ALL, 200, 200, 200),
    ],
)
def test_anonymous_visitors_see_what_the_controller_allows(
    client, controller, setting, list_status, old_status, diff_status
):
    Controller.objects.filter(pk=controller.pk).update(disclosure_public=True, public_versions=setting)
    publish(controller, "v1")
    publish(controller, "v2", JUNE)
    code = controller.code

    versions_page = client.get(reverse("processors:versions", args=[code]))
    old_page = client.get(reverse("processors:version", args=[code, "v1"]))
    diff_page = client.get(reverse("processors:diff", args=[code]))
    old_diff = client.get(reverse("processors:diff", args=[code]) + "?from=v1&to=v1")

    assert versions_page.status_code == list_status
    assert old_page.status_code == old_status
    assert diff_page.status_code == diff_status
    assert old_diff.status_code == (200 if setting == PublicVersions.ALL else 404)
    if setting == PublicVersions.LATEST:
        listed = versions_page.content.decode().split("<tbody>")[1]
        assert listed.count("<tr>") == 1 and ">v2</a>" in listed and ">v1</a>" not in listed
        assert client.get(reverse("processors:version", args=[code, "v2"])).status_code == 200


def test_the_owner_is_told_the_register_is_private_with_a_link_to_publish(client, admin_user, controller):
    client.force_login(admin_user)

    page = client.get(reverse("processors:disclosure", args=[controller.code])).content.decode()

    assert "notice-owner" in page
    assert reverse("processors:publish", args=[controller.code]) in page


def test_the_admin_publish_tool_applies_the_same_checks(admin_client, controller):
    add_row_without_purpose(controller)
    url = reverse("admin:processors_publishedversion_publish")

    refused = admin_client.post(url, publish_form(controller, "v1"))
    accepted = admin_client.post(url, publish_form(controller, "v1", override="on", override_reason="ok"))

    assert refused.status_code == 400 and "客服外包有限公司" in refused.content.decode()
    assert accepted.status_code == 302 and PublishedVersion.objects.get().override_reason == "ok"
