"""Stored findings read quickly on a large register (issue 13): a page in the findings' order is read off
an index (the stored rank), and the refresh keeps the rank current, also when a rule moves in RULES."""

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.http import QueryDict

from processors import findings
from processors.filters import FindingFilterSet
from processors.findings import (
    RULES,
    SEVERITY_ORDER,
    finding_rank,
    findings_refresh,
    stored_findings_ordered,
    stored_findings_summary,
)
from processors.models import Finding, FindingState
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

RULE_POSITIONS = {rule.code: position for position, rule in enumerate(RULES)}


def reading_order(finding: Finding) -> tuple:
    """The order the findings pages promise: worst first, the rules' order, the subject, the id."""
    return (SEVERITY_ORDER[finding.severity], RULE_POSITIONS[finding.rule], finding.subject_label, finding.pk)


@pytest.fixture
def register() -> None:
    """Findings of every severity, their subjects' labels out of the order they were created in."""
    controller = make_controller()
    service = make_service(controller)
    for number in (7, 2, 9, 4, 1):
        make_operation(
            service=service,
            processor=make_processor(name_zh=f"受托方{number}号"),
            data_items=("姓名", f"未知字段{number}"),
            purposes=(),
            relationship="entrusted",
        )
    make_operation(
        service=make_service(controller, name="海外支付"),
        processor=make_processor(name_zh="某境外公司"),
        cross_border=True,
        relationship="provision",
    )


def open_findings(data: dict | None = None):
    query = QueryDict(mutable=True)
    for name, values in (data or {}).items():
        query.setlist(name, values)
    return FindingFilterSet(query, queryset=Finding.objects.filter(state=FindingState.OPEN)).qs


def test_every_stored_finding_carries_the_rank_of_its_severity_and_rule(register):
    stored = list(Finding.objects.all())

    assert {finding.severity for finding in stored} == set(SEVERITY_ORDER)
    assert all(finding.rank == finding_rank(finding.severity, finding.rule) for finding in stored)
    assert finding_rank("high", RULES[0].code) < finding_rank("medium", RULES[0].code)
    assert finding_rank("low", "a_rule_since_removed") > max(finding.rank for finding in stored)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"rule": ["unmapped_items"]},
        {"severity": ["low"]},
        {"severity": ["low", "high"]},
        {"rule": ["pia_missing", "legal_basis_missing"]},
        {"rule": ["pia_missing"], "severity": ["low"]},
    ],
)
def test_the_ordered_findings_are_worst_first_then_in_the_rules_order_then_by_subject(register, data):
    rows = open_findings(data)
    expected = sorted(rows, key=reading_order)

    ordered = list(stored_findings_ordered(rows))

    assert [finding.pk for finding in ordered] == [finding.pk for finding in expected]
    assert len(ordered) == len(expected) and (expected or data.get("severity") == ["low"])
    assert "DISTINCT" not in str(stored_findings_ordered(rows).query)


def test_a_filter_of_several_choices_counts_and_pages_the_same_rows_without_distinct(register):
    rows = open_findings({"severity": ["low", "medium"], "rule": ["pia_missing", "unmapped_items"]})
    assert "DISTINCT" not in str(rows.query)  # the choice filters on own columns say distinct=False

    summary = stored_findings_summary(rows)
    page = Paginator(stored_findings_ordered(rows), 3).get_page(1)

    stored = Finding.objects.filter(state=FindingState.OPEN, rule__in=["pia_missing", "unmapped_items"])
    # Six operations need a PIA; the five with an unknown item have it unmapped.
    assert summary["total"] == page.paginator.count == stored.count() == 11
    assert (summary["by_rule"]["pia_missing"], summary["by_rule"]["unmapped_items"]) == (6, 5)
    assert (summary["medium"], summary["low"]) == (
        stored.filter(severity="medium").count(),
        stored.filter(severity="low").count(),
    )
    first = [finding.pk for finding in sorted(stored, key=reading_order)][:3]
    assert [finding.pk for finding in page] == first


def test_the_page_count_is_the_summarys_total_or_a_count_without_the_join(
    register, django_assert_num_queries
):
    rows = open_findings()
    summary = stored_findings_summary(rows)
    with django_assert_num_queries(0):
        assert Paginator(stored_findings_ordered(rows), 5).count == summary["total"]

    other = open_findings({"severity": ["medium"]})
    expected = other.count()
    with django_assert_num_queries(1) as context:
        assert Paginator(stored_findings_ordered(other), 5).count == expected > 0
    assert "JOIN" not in context.captured_queries[0]["sql"]


def test_a_rule_moved_in_the_rules_order_gets_its_new_rank_at_the_next_refresh_without_history(
    register, monkeypatch
):
    history_rows = Finding.history.count()
    moved = {**RULE_POSITIONS, "pia_missing": RULE_POSITIONS["entrustment_without_retention"] + 1}
    monkeypatch.setattr(findings, "RULE_POSITIONS", moved)

    counts = findings_refresh()

    assert (counts["created"], counts["changed"], counts["resolved"]) == (0, 0, 0)
    stored = list(Finding.objects.all())
    assert all(finding.rank == finding_rank(finding.severity, finding.rule) for finding in stored)
    assert {finding.rank for finding in stored if finding.rule == "pia_missing"} == {
        SEVERITY_ORDER["medium"] * 100 + moved["pia_missing"]
    }
    ordered = [finding.rule for finding in stored_findings_ordered(open_findings({"severity": ["medium"]}))]
    assert ordered.index("pia_missing") > max(
        position for position, rule in enumerate(ordered) if rule == "entrustment_without_retention"
    )
    assert Finding.history.count() == history_rows


def test_a_stale_rank_is_rewritten_by_the_refresh_of_its_subject():
    operation = make_operation(purposes=())
    Finding.objects.filter(operation=operation).update(rank=999)
    other = make_operation(purposes=())
    Finding.objects.filter(operation=other).update(rank=999)

    findings_refresh(operations=[operation])

    assert set(Finding.objects.filter(operation=operation).values_list("rank", flat=True)) <= {
        finding_rank(rule.severity, rule.code) for rule in RULES
    }
    # The other operation was not judged: its rank waits for the daily refresh.
    assert set(Finding.objects.filter(operation=other).values_list("rank", flat=True)) == {999}


def query_plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A tiny test table is cheapest to sort; forbid sorting to see whether an index gives the order.
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(row[-1] for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("data", "index"),
    [
        ({}, "finding_state_rank"),
        ({"severity": ["low"]}, "finding_state_rank"),
        ({"rule": ["pia_missing"]}, "finding_state_rule_subject"),
    ],
)
def test_a_page_of_findings_is_read_off_an_index_in_the_findings_order(register, data, index):
    plan = query_plan(stored_findings_ordered(open_findings(data))[:50])

    assert index in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
