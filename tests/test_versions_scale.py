"""Published versions read by index (issue 13): rows from PublishedEntry, diffs stored once, the diff
against the live register computed from what changed since, equal to comparing the whole tables."""

import datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from processors import selectors, services
from processors.api import report_serializers
from processors.disclosure import page as disclosure_page
from processors.disclosure import versions
from processors.disclosure.diff import version_diff, version_diff_live
from processors.models import (
    Operation,
    OperationStatus,
    ProcessingAction,
    Processor,
    PublishedEntry,
    PublishedVersion,
    Purpose,
)
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

MAY = datetime.date(2024, 5, 1)
JUNE = datetime.date(2024, 6, 1)


def publish(controller, label, day=MAY):
    return services.version_publish(controller=controller, label=label, updated_on=day, effective_on=day)


@pytest.fixture
def no_margin(monkeypatch):
    """Only what changed after publication is re-compared (the margin would take in every row here)."""
    monkeypatch.setattr(versions, "PUBLICATION_MARGIN", datetime.timedelta(0))


@pytest.fixture
def register():
    controller = make_controller(name_zh="甲公司", name_en="A Co.")
    sms = make_service(controller, name="短信服务")
    pay = make_service(controller, name="支付")
    group = make_processor(name_zh="集团有限公司", kind=Processor.Kind.GROUP)
    make_processor(name_zh="成员一有限公司", member_of=group)
    for number in range(6):
        make_operation(
            service=sms if number % 2 else pay,
            processor=make_processor(name_zh=f"受托方{number}有限公司", contact_phone="010-1"),
            data_items=("手机号", "姓名"),
            purposes=("sms_otp",),
            relationship="entrusted",
            legal_basis="consent",
            consent_type="ordinary",
        )
    make_operation(service=pay, processor=group, data_items=("姓名",), relationship="entrusted")
    return controller


def same_as_whole_tables(version):
    """The diff against live, by changed rows, and by comparing the whole tables (which hashes live)."""
    fast = versions.live_diff(version).to_dict()
    full = version_diff_live(PublishedVersion.objects.get(pk=version.pk)).to_dict()
    assert full["new"]["sha256"] and not fast["new"]["sha256"]
    fast["new"]["sha256"] = full["new"]["sha256"] = ""
    assert fast == full
    return fast


def kinds(diff):
    return [change["kind"] for change in diff["changes"]]


def test_publishing_writes_the_rows_the_count_and_the_diff_from_the_previous_version(register):
    first = publish(register, "v1")
    Operation.objects.filter(service__name="支付").first().delete()
    second = publish(register, "v2", JUNE)

    entries = list(PublishedEntry.objects.filter(version=second).order_by("position"))
    assert [entry.entry for entry in entries] == second.snapshot["operations"]
    assert [entry.key for entry in entries] == [row["key"] for row in second.snapshot["operations"]]
    assert second.row_count == len(second.snapshot["operations"]) == 6
    stored = PublishedVersion.objects.get(pk=second.pk).stored_diffs
    assert stored[str(first.pk)] == version_diff(first, second).to_dict()
    assert kinds(stored[str(first.pk)]) == ["recipient_removed"]
    assert str(second.pk) not in PublishedVersion.objects.get(pk=first.pk).stored_diffs


def test_a_stored_diff_is_read_without_the_snapshots(register):
    first = publish(register, "v1")
    Operation.objects.first().delete()
    second = publish(register, "v2", JUNE)
    listed = selectors.version_list(register)
    old, new = listed.get(pk=first.pk), listed.get(pk=second.pk)

    with CaptureQueriesContext(connection) as queries:
        diff = versions.stored_diff(old, new)

    assert diff.to_dict() == version_diff(first, second).to_dict()
    assert len(queries) == 1 and '"snapshot"' not in queries[0]["sql"]


def test_a_diff_not_stored_yet_is_computed_once_and_kept(register, monkeypatch):
    first = publish(register, "v1")
    Operation.objects.first().delete()
    second = publish(register, "v2", JUNE)

    backwards = versions.stored_diff(second, first)

    assert backwards.to_dict() == version_diff(second, first).to_dict()
    assert kinds(backwards.to_dict()) == ["recipient_added"]
    kept = PublishedVersion.objects.get(pk=first.pk).stored_diffs
    assert kept[str(second.pk)] == backwards.to_dict() and versions.PUBLISHED_KEY in kept
    # Read as stored from then on (from the database when the cache lost it), never computed again.
    cache.clear()
    monkeypatch.setattr(versions, "version_diff", None)
    assert versions.stored_diff(second, first).to_dict() == backwards.to_dict()


def test_a_version_published_without_its_rows_gets_them_once(register):
    version = publish(register, "v1")
    PublishedEntry.objects.filter(version=version).delete()
    PublishedVersion.objects.filter(pk=version.pk).update(row_count=0, stored_diffs={})
    legacy = selectors.version_list(register).get()

    rows = versions.entries_page(legacy, 2, 3)
    versions.ensure_entries(legacy)  # a second call writes nothing

    assert rows == version.snapshot["operations"][2:5]
    assert PublishedEntry.objects.filter(version=version).count() == 7
    assert PublishedVersion.objects.get(pk=version.pk).row_count == 7
    assert versions.summary(legacy)["controller"]["name_zh"] == "甲公司"


@pytest.mark.usefixtures("no_margin")
def test_an_added_row_is_found_from_the_changed_rows_only(register):
    version = publish(register, "v1")
    added = make_operation(service=make_service(register, name="新服务"), data_items=("身份证号",))

    assert versions.changed_operation_ids(version, register, versions.summary(version)) == {added.pk}
    assert kinds(same_as_whole_tables(version)) == ["recipient_added"]


@pytest.mark.usefixtures("no_margin")
def test_a_retired_row_and_a_deleted_row(register):
    version = publish(register, "v1")
    first, second = Operation.objects.order_by("pk")[:2]
    deleted = second.pk
    services.operation_update(operation=first, status=OperationStatus.RETIRED)
    services.operation_delete(operation=second)

    changed = versions.changed_operation_ids(version, register, versions.summary(version))
    assert changed == {first.pk, deleted}
    assert kinds(same_as_whole_tables(version)) == ["recipient_removed", "recipient_removed"]


@pytest.mark.usefixtures("no_margin")
def test_changed_items_purposes_and_actions(register):
    version = publish(register, "v1")
    first, second = Operation.objects.order_by("pk")[:2]
    services.operation_update(operation=first, data_items=["手机号", "银行卡号"])
    services.operation_update(
        operation=second,
        purposes=list(Purpose.objects.filter(code="marketing")),
        actions=list(ProcessingAction.objects.filter(code="delete")),
    )

    diff = same_as_whole_tables(version)

    assert "category_added" in kinds(diff) and "purpose_added" in kinds(diff)


@pytest.mark.usefixtures("no_margin")
def test_a_renamed_service(register):
    version = publish(register, "v1")
    services.service_update(service=register.services.get(name="短信服务"), name="短信验证服务")

    diff = same_as_whole_tables(version)

    assert kinds(diff) == ["wording_changed"] * 3


@pytest.mark.usefixtures("no_margin")
def test_a_renamed_recipient_and_a_changed_group_member(register):
    version = publish(register, "v1")
    processor = Operation.objects.order_by("pk").first().processor
    services.processor_update(processor=processor, name_zh="改名有限公司")
    member = register.services.get(name="支付").operations.get(processor__name_zh="集团有限公司").processor
    services.processor_update(processor=member.members.get(), contact_phone="020-2")

    diff = same_as_whole_tables(version)

    assert sorted(kinds(diff)) == ["contact_changed", "name_changed"]


@pytest.mark.usefixtures("no_margin")
def test_a_changed_controller_name_reads_no_row(register):
    version = publish(register, "v1")
    services.controller_update(controller=register, name_zh="乙公司")

    assert versions.changed_operation_ids(version, register, versions.summary(version)) == set()
    diff = same_as_whole_tables(version)

    assert [(change["field"], change["new"]) for change in diff["changes"]] == [
        ("controller.name_zh", "乙公司")
    ]


@pytest.mark.usefixtures("no_margin")
def test_a_category_marked_sensitive_by_the_controller_since(register):
    version = publish(register, "v1")
    name = Operation.objects.first().data_items.get(text="姓名").category
    assert not name.sensitive
    register.extra_sensitive_categories.add(name)

    same_as_whole_tables(version)
    assert versions.changed_operation_ids(version, register, versions.summary(version))


@pytest.mark.usefixtures("no_margin")
def test_a_second_row_with_the_same_identity(register):
    version = publish(register, "v1")
    existing = Operation.objects.order_by("pk").first()
    make_operation(
        service=existing.service,
        processor=existing.processor,
        relationship=existing.relationship,
        effective_from=datetime.date(2025, 1, 1),
    )

    assert kinds(same_as_whole_tables(version)) == ["recipient_added"]


@pytest.mark.usefixtures("no_margin")
def test_no_change_since_publication(register):
    version = publish(register, "v1")

    assert versions.live_diff(version).changes == []


def test_the_api_reads_a_page_of_rows_and_lists_counts_without_snapshots(api_client, register, monkeypatch):
    version = publish(register, "v1")
    monkeypatch.setattr(report_serializers, "VERSION_ROWS_PER_PAGE", 3)

    with CaptureQueriesContext(connection) as queries:
        answer = api_client.get(f"/api/v1/versions/{version.pk}/", {"rows_page": 2}).json()
    listed = api_client.get("/api/v1/versions/").json()

    assert answer["operations"] == 7 and answer["rows_pages"] == 3
    assert [row["recipient"] for row in answer["rows"]] == [
        row.recipient for row in disclosure_page.rows_from_snapshot(version.snapshot)[3:6]
    ]
    assert not any('"snapshot"' in query["sql"] for query in queries.captured_queries)
    assert listed["results"][0]["operations"] == 7


def test_the_api_diff_comes_a_page_of_changes_at_a_time(api_client, register, monkeypatch):
    first = publish(register, "v1")
    Operation.objects.filter(status=OperationStatus.ACTIVE).update(status=OperationStatus.RETIRED)
    second = publish(register, "v2", JUNE)
    monkeypatch.setattr("processors.api.views.DIFF_CHANGES_PER_PAGE", 3)

    answer = api_client.get(f"/api/v1/versions/{second.pk}/diff/", {"changes_page": 3}).json()

    assert answer["changes_total"] == 7 and answer["changes_pages"] == 3 and answer["changes_page"] == 3
    assert len(answer["changes"]) == 1 and answer["counts"]["reduction"] == 7
    assert answer["changes"] == version_diff(first, second).to_dict()["changes"][6:]


def test_the_diff_page_shows_a_bounded_number_of_recipients_with_the_totals(
    admin_client, register, monkeypatch
):
    first = publish(register, "v1")
    Operation.objects.filter(status=OperationStatus.ACTIVE).update(status=OperationStatus.RETIRED)
    publish(register, "v2", JUNE)
    monkeypatch.setattr(disclosure_page, "DIFF_GROUPS_SHOWN", 2)

    response = admin_client.get(
        reverse("processors:diff", args=[register.code]), {"from": first.label, "to": "v2"}
    )

    assert response.status_code == 200
    assert len(response.context["recipients_removed"]) == 2
    assert response.context["totals"]["recipients_removed"] == 7 and response.context["truncated"]
