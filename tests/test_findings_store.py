"""Stored findings stay current after every kind of write, and a DPO's decision survives a refresh."""

import datetime
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from processors import findings, services
from processors.findings import finding_rank, findings_refresh
from processors.models import (
    CategoryAlias,
    DataCategory,
    DataItem,
    Finding,
    FindingState,
    Operation,
    Processor,
    Purpose,
)
from processors.spreadsheets.importer import import_register
from processors.text import normalize_key
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

UNKNOWN_ITEM = "完全没听说过的字段"


def open_findings(rule: str, **subject) -> list[Finding]:
    return list(Finding.objects.filter(rule=rule, state=FindingState.OPEN, **subject))


def test_creating_an_operation_without_a_purpose_stores_an_open_finding():
    operation = make_operation(purposes=())

    [finding] = open_findings("purpose_missing", operation=operation)

    assert finding.controller_id == operation.service.controller_id
    assert finding.first_seen == finding.last_seen and finding.resolved_at is None


def test_an_api_patch_removing_the_purposes_opens_a_finding_and_restoring_them_resolves_it(api_client):
    operation = make_operation()
    assert not open_findings("purpose_missing", operation=operation)
    url = f"/api/v1/operations/{operation.pk}/"

    assert api_client.patch(url, {"purposes": []}, format="json").status_code == 200
    [finding] = open_findings("purpose_missing", operation=operation)

    assert api_client.patch(url, {"purposes": ["identity_verification"]}, format="json").status_code == 200
    finding.refresh_from_db()
    assert (finding.state, finding.state_by) == (FindingState.FIXED, None)
    assert finding.resolved_at is not None


def test_a_finding_that_holds_again_after_it_was_resolved_is_reopened():
    operation = make_operation(purposes=())
    sms = Purpose.objects.get(code="sms_otp")
    services.operation_update(operation=operation, purposes=[sms])
    services.operation_update(operation=operation, purposes=[])

    [finding] = Finding.objects.filter(rule="purpose_missing", operation=operation)

    assert finding.state == FindingState.OPEN and finding.resolved_at is None
    assert finding.history.count() == 3  # created, resolved, reopened


def test_saving_an_operation_in_the_admin_without_a_purpose_stores_the_finding(admin_client):
    data = {
        "service": make_service().pk,
        "processor": make_processor().pk,
        "relationship": "entrusted",
        "status": "active",
        "data_items-TOTAL_FORMS": "1",
        "data_items-INITIAL_FORMS": "0",
        "data_items-MIN_NUM_FORMS": "0",
        "data_items-MAX_NUM_FORMS": "1000",
        "data_items-0-text": "手机号码",
        "data_items-0-category": "",
    }

    response = admin_client.post(reverse("admin:processors_operation_add"), data)

    assert response.status_code == 302
    operation = Operation.objects.latest("id")
    assert open_findings("purpose_missing", operation=operation)
    assert open_findings("entrustment_without_contract", operation=operation)


def test_an_import_with_an_unmapped_item_stores_the_finding():
    controller = make_controller()
    table = "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    table += f"短信验证\t某短信公司\t手机号、{UNKNOWN_ITEM}\t发送验证码\t收集、存储\n"

    report = import_register(table, controller=controller, file_name="pasted")

    assert report.committed, [problem.to_dict() for problem in report.problems]
    [finding] = open_findings("unmapped_items", controller=controller)
    assert finding.params == {"items": [UNKNOWN_ITEM]}


def test_an_alias_and_a_remap_resolve_the_unmapped_item_finding():
    operation = make_operation(data_items=("姓名", UNKNOWN_ITEM))
    [finding] = open_findings("unmapped_items", operation=operation)
    CategoryAlias.objects.create(
        category=DataCategory.objects.get(code="basic.name"),
        text=UNKNOWN_ITEM,
        key=normalize_key(UNKNOWN_ITEM),
    )

    services.data_items_remap(items=DataItem.objects.filter(operation=operation))

    finding.refresh_from_db()
    assert finding.state == FindingState.FIXED and finding.resolved_at is not None


def test_an_accepted_finding_leaves_the_open_list_and_stays_accepted_after_a_refresh(admin_user):
    operation = make_operation(purposes=())
    [finding] = open_findings("purpose_missing", operation=operation)

    services.finding_accept(finding=finding, user=admin_user, reason="Internal tool, purpose in the DPA.")
    findings_refresh()
    call_command("refresh_findings", verbosity=0)

    finding.refresh_from_db()
    assert (finding.state, finding.state_by, finding.state_reason) == (
        FindingState.ACCEPTED,
        admin_user,
        "Internal tool, purpose in the DPA.",
    )
    assert not open_findings("purpose_missing", operation=operation)
    assert finding.history.first().history_user == admin_user


def test_accepting_a_finding_needs_a_reason(admin_user):
    finding = open_findings("purpose_missing", operation=make_operation(purposes=()))[0]

    with pytest.raises(ValidationError) as refused:
        services.finding_accept(finding=finding, user=admin_user, reason="  ")

    assert "reason" in refused.value.message_dict


def test_the_findings_page_accepts_a_finding_with_a_reason_and_leaves_it_out_of_the_open_list(admin_client):
    finding = open_findings("purpose_missing", operation=make_operation(purposes=()))[0]

    response = admin_client.post(
        reverse("processors:findings"), {"finding": finding.pk, "action": "accept", "reason": "Known."}
    )

    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.state == FindingState.ACCEPTED
    listed = admin_client.get(reverse("processors:findings")).context["findings"]
    assert finding.pk not in {row.pk for row in listed}
    accepted = admin_client.get(reverse("processors:findings"), {"state": "accepted"}).context["findings"]
    assert [row.pk for row in accepted] == [finding.pk]


def test_marking_fixed_on_the_page_needs_the_change_finding_permission(client, django_user_model):
    finding = open_findings("purpose_missing", operation=make_operation(purposes=()))[0]
    reader = django_user_model.objects.create_user("reader", password="x")
    client.force_login(reader)

    response = client.post(reverse("processors:findings"), {"finding": finding.pk, "action": "fix"})

    assert response.status_code == 403
    finding.refresh_from_db()
    assert finding.state == FindingState.OPEN


def test_the_daily_refresh_ages_a_pia_out():
    operation = make_operation(
        relationship="provision", pia_reference="PIA-1", pia_date=datetime.date(2024, 1, 10)
    )
    assert not Finding.objects.filter(rule="pia_stale", operation=operation).exists()

    call_command("refresh_findings", "--today", "2027-06-01", verbosity=0)

    [finding] = open_findings("pia_stale", operation=operation)
    assert finding.params == {"reference": "PIA-1", "date": "2024-01-10"}


def test_the_message_is_worded_in_the_readers_language(admin_client):
    make_operation(data_items=("姓名", UNKNOWN_ITEM), purposes=(), purpose_text="内部某用途乙")

    english = admin_client.get(reverse("processors:findings"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = admin_client.get(
        reverse("processors:findings"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()

    assert "Published as “内部某用途乙”." in english
    assert "Published as" not in chinese and "内部某用途乙" in chinese


def test_the_api_findings_are_paginated_and_filtered_by_rule(api_client):
    for _ in range(3):
        make_operation(purposes=())

    body = api_client.get("/api/v1/findings/", {"rule": "purpose_missing", "page_size": 2}).json()

    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert {row["code"] for row in body["results"]} == {"purpose_missing"}
    assert body["results"][0]["state"] == "open"


def test_the_findings_admin_accepts_the_selection_with_the_reason(admin_client):
    finding = open_findings("purpose_missing", operation=make_operation(purposes=()))[0]

    admin_client.post(
        reverse("admin:processors_finding_changelist"),
        {"action": "accept_findings", "_selected_action": [finding.pk], "reason": "Covered by contract."},
    )

    finding.refresh_from_db()
    assert (finding.state, finding.state_reason) == (FindingState.ACCEPTED, "Covered by contract.")


def register_of(count: int, start: int = 0) -> list[Operation]:
    controller = make_controller()
    service = make_service(controller)
    return [
        make_operation(
            service=service,
            processor=make_processor(name_zh=f"受托方{number:04d}号"),
            data_items=("姓名", f"未知字段{number}"),
            purposes=(),
            relationship="entrusted",
        )
        for number in range(start, start + count)
    ]


# Session and user (2), the controller choices (1), the register's revision (1), the summary (1, then
# cached for that revision), the page's rows (1): the page's count is the summary's total.
FINDINGS_PAGE_QUERIES = 6


@pytest.mark.parametrize("operations", [10, 200])
def test_the_findings_page_takes_a_constant_number_of_queries(
    admin_client, django_assert_num_queries, operations
):
    register_of(operations)

    with django_assert_num_queries(FINDINGS_PAGE_QUERIES):
        response = admin_client.get(reverse("processors:findings"))

    # Six findings an operation: no purpose, an unmapped item, no PIA, no contract, no retention term, no
    # legal basis.
    assert response.status_code == 200 and len(response.context["findings"]) == min(50, 6 * operations)


def dashboard_queries(admin_client) -> int:
    with CaptureQueriesContext(connection) as context:
        response = admin_client.get(reverse("processors:dashboard"))
    assert response.status_code == 200 and len(response.context["top_findings"]) == 6
    return len(context.captured_queries)


def test_the_dashboard_reads_the_findings_in_as_many_queries_for_200_operations_as_for_10(admin_client):
    register_of(10)
    ten = dashboard_queries(admin_client)

    register_of(190, start=10)

    # The findings are read (their counts and top rows), not computed: the count does not grow.
    assert dashboard_queries(admin_client) == ten


# --- Every kind of write keeps the findings current, and costs what it touched ---------------------


def form_data(form) -> dict:
    """What a browser sends back for an unchanged form: its current values, checkboxes as "on"."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[form.add_prefix(name)] = "on" if value is True else value
    return data


def test_adding_a_category_alias_in_the_admin_maps_the_item_and_resolves_its_finding(admin_client):
    operation = make_operation(data_items=("姓名", UNKNOWN_ITEM))
    [finding] = open_findings("unmapped_items", operation=operation)
    category = DataCategory.objects.get(code="basic.name")
    url = reverse("admin:processors_datacategory_change", args=[category.pk])
    page = admin_client.get(url)
    data = form_data(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        for form in formset.initial_forms:
            data.update(form_data(form))
        new = formset.initial_form_count()
        data[f"{formset.prefix}-{new}-text"] = UNKNOWN_ITEM
        data[f"{formset.prefix}-TOTAL_FORMS"] = str(new + 1)
        data[f"{formset.prefix}-INITIAL_FORMS"] = str(new)

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert DataItem.objects.get(operation=operation, text=UNKNOWN_ITEM).category == category
    finding.refresh_from_db()
    assert finding.state == FindingState.FIXED and finding.resolved_at is not None


def test_teaching_an_items_wording_maps_the_same_wording_elsewhere_and_resolves_its_finding():
    elsewhere = make_operation(data_items=(UNKNOWN_ITEM,))
    [finding] = open_findings("unmapped_items", operation=elsewhere)
    reviewed = make_operation(data_items=(UNKNOWN_ITEM,))
    item = DataItem.objects.get(operation=reviewed)
    item.category, item.match = DataCategory.objects.get(code="basic.name"), DataItem.Match.MANUAL
    services.data_items_save(operation=reviewed, saved=[item])

    assert services.category_aliases_add_from_items(items=[item]) == 1

    finding.refresh_from_db()
    assert finding.resolved_at is not None
    assert not open_findings("unmapped_items")


def test_renaming_a_processor_flags_its_near_twin_and_renaming_it_away_resolves_that_finding():
    first = make_processor(name_zh="天聚地合（苏州）数据股份有限公司")
    second = make_processor(name_zh="某完全不同的公司")
    assert not open_findings("processor_near_duplicate")

    services.processor_update(processor=second, name_zh="天聚地合(苏州)科技股份有限公司")
    [finding] = open_findings("processor_near_duplicate")
    assert {finding.processor_id, *finding.params["ids"]} == {first.pk, second.pk}

    services.processor_update(processor=second, name_zh="某完全不同的公司")
    finding.refresh_from_db()
    assert finding.resolved_at is not None and not open_findings("processor_near_duplicate")


def stored_state() -> set[tuple]:
    rows = Finding.objects.filter(resolved_at__isnull=True).values_list(
        "fingerprint", "severity", "subject_label", "params", "controller_id", "service_id", "rank"
    )
    return {(*row[:3], json.dumps(row[3], sort_keys=True), *row[4:]) for row in rows}


def test_the_refresh_after_each_write_stores_what_judging_the_whole_register_stores():
    controller = make_controller()
    group = make_processor(name_zh="某集团", kind="group")
    make_processor(name_zh="成员甲", member_of=group)
    abroad = make_operation(service=make_service(controller), processor=group, cross_border=True)
    vendor = make_processor(name_zh="某短信有限公司")
    sms = make_operation(service=make_service(controller), processor=vendor, data_items=(UNKNOWN_ITEM,))
    services.operation_update(operation=abroad, relationship="provision", destination_countries=["US"])
    services.processor_update(processor=vendor, name_zh="某短信有限公司。", contact_phone="010-1")
    services.service_update(service=sms.service, name="短信验证码")
    services.operation_update(operation=sms, purposes=[], actions=[])
    make_processor(name_zh="某短信有限公司")
    services.operation_delete(operation=abroad)
    table = "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    table += f"短信验证\t某短信有限公司\t手机号、{UNKNOWN_ITEM}\t发送验证码\t收集、存储\n"
    assert import_register(table, controller=controller, file_name="pasted").committed
    after_writes = stored_state()

    counts = findings_refresh()

    assert (counts["created"], counts["changed"], counts["resolved"]) == (0, 0, 0)
    assert stored_state() == after_writes and after_writes


def queries_of_one_write(register_size: int) -> int:
    register_of(register_size, start=1000 + register_size)
    operation = Operation.objects.latest("id")
    with CaptureQueriesContext(connection) as context:
        findings_refresh(operations=[operation])
        findings_refresh(processors=[operation.processor_id])
    return len(context.captured_queries)


def test_the_refresh_after_one_write_takes_as_many_queries_on_a_large_register_as_on_a_small_one():
    small = queries_of_one_write(3)

    assert queries_of_one_write(60) == small


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL's autovacuum keeps its own statistics")
def test_the_daily_refresh_gives_sqlite_planner_statistics(db):
    make_operation()
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone():
            cursor.execute("DELETE FROM sqlite_stat1")

    call_command("refresh_findings", verbosity=0)

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'processors_operation'")
        assert cursor.fetchone()[0] > 0


def test_the_cached_counts_of_findings_follow_every_decision_and_write(admin_client, admin_user, api_client):
    register_of(3)

    def shown() -> tuple[int, int]:
        page = admin_client.get(reverse("processors:findings")).context["total"]
        api = api_client.get("/api/v1/findings/").json()
        assert api["count"] == api["summary"]["total"]
        return page, api["summary"]["total"]

    def stored() -> tuple[int, int]:
        count = Finding.objects.filter(state=FindingState.OPEN).count()
        return count, count

    first = shown()
    assert first == stored() and first[0] > 0
    finding = Finding.objects.filter(state=FindingState.OPEN).order_by("pk").first()
    services.finding_accept(finding=finding, user=admin_user, reason="Internal tool, purpose in the DPA.")
    assert shown() == stored() == (first[0] - 1, first[0] - 1)
    make_operation(data_items=("姓名",), purposes=())
    assert shown() == stored() and stored()[0] > first[0] - 1


# --- A whole refresh judges the operations in chunks of ids (findings.OPERATION_CHUNK) -------------


def register_across_chunks(admin_user) -> dict[str, Operation]:
    """Nine operations with findings, then changes written past the refresh (queryset updates) that a
    whole refresh must bring the stored rows in line with: every kind of change, in different chunks of
    two operations, with ids missing where operations were deleted (the first one among them)."""
    operations = register_of(9)
    services.operation_delete(operation=operations[0])
    services.operation_delete(operation=operations[4])
    named = dict(
        zip(
            ("retired", "accepted", "resolved", "pia_given", "stale_rank", "forgotten", "renamed"),
            [operation for number, operation in enumerate(operations) if number not in (0, 4)],
            strict=True,
        )
    )
    Operation.objects.filter(pk=named["retired"].pk).update(status="retired")
    Finding.objects.filter(operation=named["accepted"], rule="purpose_missing").update(
        state=FindingState.ACCEPTED, state_reason="Internal tool.", state_by=admin_user
    )
    Finding.objects.filter(operation=named["resolved"], rule="purpose_missing").update(
        state=FindingState.FIXED, resolved_at=timezone.now()
    )
    Operation.objects.filter(pk=named["pia_given"].pk).update(
        pia_reference="PIA-7", pia_date=timezone.localdate()
    )
    Finding.objects.filter(operation=named["stale_rank"]).update(rank=999)
    Finding.objects.filter(operation=named["forgotten"], rule="pia_missing").delete()
    Processor.objects.filter(pk=named["renamed"].processor_id).update(name_zh="受托方改名")
    # A removed rule's findings, of an operation (read with its chunk) and of a processor (with the rest).
    for subject in ({"operation": named["stale_rank"]}, {"processor": named["renamed"].processor}):
        kind, value = next(iter(subject.items()))
        Finding.objects.create(
            rule="rule_since_removed",
            severity="low",
            subject_label="…",
            fingerprint=f"rule_since_removed:{kind}:{value.pk}",
            first_seen=timezone.now(),
            last_seen=timezone.now(),
            **subject,
        )
    return named


def refreshed_in_chunks(monkeypatch, size: int) -> tuple[dict[str, int], dict[str, tuple], list[tuple]]:
    """A whole refresh in chunks of ``size`` operations: its counts, the stored rows by fingerprint and
    the history rows it wrote, the refresh's time written as "now"; then rolled back."""
    monkeypatch.setattr(findings, "OPERATION_CHUNK", size)
    with transaction.atomic():
        started = timezone.now()
        counts = findings_refresh()

        def when(moment):
            return "now" if moment is not None and moment >= started else moment

        rows = {
            row.fingerprint: (
                row.rule,
                row.severity,
                row.subject_label,
                json.dumps(row.params, sort_keys=True),
                row.operation_id,
                row.processor_id,
                row.service_id,
                row.controller_id,
                row.state,
                row.state_reason,
                row.state_by_id,
                when(row.state_at),
                when(row.resolved_at),
                when(row.first_seen),
                when(row.last_seen),
                row.rank,
            )
            for row in Finding.objects.all()
        }
        history = sorted(
            (entry.fingerprint, entry.history_type, entry.state, when(entry.resolved_at), entry.subject_label)
            for entry in Finding.history.filter(history_date__gte=started)
        )
        transaction.set_rollback(True)
    return counts, rows, history


def test_a_whole_refresh_in_chunks_stores_what_one_pass_over_the_register_stores(monkeypatch, admin_user):
    named = register_across_chunks(admin_user)
    monkeypatch.setattr(findings, "OPERATION_CHUNK", 2)
    assert len(list(findings._operation_ranges())) == 4  # seven operations left, two a chunk

    counts, rows, history = refreshed_in_chunks(monkeypatch, 2)

    assert (counts, rows, history) == refreshed_in_chunks(monkeypatch, 10_000)
    assert counts["created"] == 1 and counts["changed"] > 0 and counts["resolved"] > 0

    def stored(operation: Operation, rule: str) -> tuple:
        return rows[f"{rule}:operation:{operation.pk}"]

    state, reason, decided_by, resolved_at = 8, 9, 10, 12
    retired = [row for key, row in rows.items() if key.endswith(f":operation:{named['retired'].pk}")]
    assert retired and {(row[state], row[resolved_at]) for row in retired} == {("fixed", "now")}
    accepted = stored(named["accepted"], "purpose_missing")
    assert (accepted[state], accepted[reason], accepted[decided_by]) == (
        "accepted",
        "Internal tool.",
        admin_user.pk,
    )
    reopened = stored(named["resolved"], "purpose_missing")
    assert (reopened[state], reopened[resolved_at]) == ("open", None)
    fixed = stored(named["pia_given"], "pia_missing")
    assert (fixed[state], fixed[resolved_at]) == ("fixed", "now")
    assert all(row[-1] == finding_rank(row[1], row[0]) for row in rows.values())
    assert stored(named["forgotten"], "pia_missing")[state] == "open"
    assert "受托方改名" in stored(named["renamed"], "pia_missing")[2]
    removed = [row for key, row in rows.items() if key.startswith("rule_since_removed:")]
    assert len(removed) == 2 and {row[state] for row in removed} == {"fixed"}
    assert {entry[1] for entry in history} == {"+", "~"}


def test_a_whole_refresh_after_another_changes_nothing_whatever_the_chunks(monkeypatch, admin_user):
    register_across_chunks(admin_user)
    findings_refresh()

    for size in (1, 2, 10_000):
        counts, _rows, history = refreshed_in_chunks(monkeypatch, size)
        assert (counts["created"], counts["changed"], counts["resolved"], history) == (0, 0, 0, [])


def queries_of_a_whole_refresh_creating_every_finding(monkeypatch, size: int) -> int:
    monkeypatch.setattr(findings, "OPERATION_CHUNK", size)
    with transaction.atomic(), CaptureQueriesContext(connection) as context:
        Finding.objects.all().delete()
        counts = findings_refresh()
        assert counts["created"] == counts["found"] > 0
        transaction.set_rollback(True)
    return len(context.captured_queries)


def test_a_whole_refresh_costs_the_same_queries_for_each_chunk_of_operations(monkeypatch):
    register_of(6)

    one, two, three = (
        queries_of_a_whole_refresh_creating_every_finding(monkeypatch, size) for size in (6, 3, 2)
    )

    assert three - two == two - one > 0
