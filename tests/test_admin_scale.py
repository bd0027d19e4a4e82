"""The admin on a large register: pages show a bounded part of it and are read off indexes.

What grows with the register (operations, data items, findings, a version's table) is paged, linked or
left unread; the default order of the long lists is an index's order. ``tests/test_admin.py`` pins the
changelists' query counts; here are the bounds themselves.
"""

import datetime

import pytest
from django.db import connection
from django.db.models import Q
from django.urls import reverse

from processors import services
from processors.admin import MEMBERS_SHOWN
from processors.admin.base import FirstRowsInlineFormSet
from processors.admin.display import FINDINGS_SHOWN
from processors.findings import findings_refresh
from processors.models import (
    DataCategory,
    DataItem,
    FindingState,
    Operation,
    Processor,
    PublishedVersion,
    Purpose,
    PurposeAlias,
    fill_reading_order,
)
from processors.models import (
    Finding as StoredFinding,
)
from processors.text import normalize_key
from tests.builders import make_controller, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


def changelist_url(model: str) -> str:
    return reverse(f"admin:processors_{model}_changelist")


def operations_of(processor: Processor, count: int) -> list[Operation]:
    """``count`` operations sending 姓名 to the processor, in a few bulk inserts."""
    service = make_service(controller=make_controller())
    start = datetime.date(2000, 1, 1)
    rows = [
        Operation(
            service=service,
            processor=processor,
            relationship="entrusted",
            effective_from=start + datetime.timedelta(days=index),
        )
        for index in range(count)
    ]
    fill_reading_order(rows)  # bulk_create sends no pre_save
    operations = Operation.objects.bulk_create(rows)
    name = DataCategory.objects.get(code="basic.name")
    DataItem.objects.bulk_create(
        DataItem(operation=operation, position=0, text="姓名", category=name, match="alias")
        for operation in operations
    )
    return operations


def query_plan(queryset) -> str:
    """The database's plan of a queryset's query, as text (PostgreSQL told to avoid full scans and
    sorts, so a tiny test table still shows which index the order can come from)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_sort = off")  # a sort is then chosen only if no index serves
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(" ".join(str(cell) for cell in row) for row in cursor.fetchall())


# --- Processor change form ------------------------------------------------------------------------


def test_a_processor_page_shows_its_first_operations_and_links_to_all_of_them(admin_client):
    processor = make_processor(name_zh="大型受托方")
    operations = operations_of(processor, FirstRowsInlineFormSet.rows_shown + 5)

    response = admin_client.get(reverse("admin:processors_processor_change", args=[processor.pk]))
    content = response.content.decode()

    formset = next(
        inline.formset
        for inline in response.context["inline_admin_formsets"]
        if inline.formset.model is Operation
    )
    assert len(formset.forms) == FirstRowsInlineFormSet.rows_shown
    assert formset.total_rows == len(operations)
    assert f"{changelist_url('operation')}?processor={processor.pk}" in content
    shown = {form.instance.pk for form in formset.forms}
    assert shown == {operation.pk for operation in operations[: FirstRowsInlineFormSet.rows_shown]}


def test_a_processor_page_with_few_operations_lists_them_all_without_the_link(admin_client):
    processor = make_processor(name_zh="小型受托方")
    operations_of(processor, 3)

    response = admin_client.get(reverse("admin:processors_processor_change", args=[processor.pk]))

    assert f"{changelist_url('operation')}?processor={processor.pk}" not in response.content.decode()


def test_saving_a_processor_with_more_operations_than_shown_keeps_them(admin_client):
    processor = make_processor(name_zh="保存受托方")
    operations_of(processor, FirstRowsInlineFormSet.rows_shown + 2)
    url = reverse("admin:processors_processor_change", args=[processor.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {
        **{name: value for name, value in form.initial.items() if value is not None and name != "owner"},
        "name_zh": "保存受托方（新名）",
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "operations-TOTAL_FORMS": str(FirstRowsInlineFormSet.rows_shown),
        "operations-INITIAL_FORMS": str(FirstRowsInlineFormSet.rows_shown),
    }
    data = {name: value for name, value in data.items() if not isinstance(value, list | dict)}

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    processor.refresh_from_db()
    assert processor.name_zh == "保存受托方（新名）"
    assert processor.operations.count() == FirstRowsInlineFormSet.rows_shown + 2


def test_a_group_page_names_its_first_members_and_links_to_all_of_them(admin_client):
    group = make_processor(name_zh="大集团", kind=Processor.Kind.GROUP)
    Processor.objects.bulk_create(
        Processor(name_zh=f"成员{index:03d}", name_key=normalize_key(f"成员{index:03d}"), member_of=group)
        for index in range(MEMBERS_SHOWN + 1)
    )

    content = admin_client.get(reverse("admin:processors_processor_change", args=[group.pk])).content.decode()

    assert "成员000" in content and f"成员{MEMBERS_SHOWN - 1:03d}" in content
    assert f"成员{MEMBERS_SHOWN:03d}" not in content
    members_url = f"{changelist_url('processor')}?member_of__id__exact={group.pk}"
    assert members_url in content
    listed = admin_client.get(members_url).context["cl"]
    assert listed.result_count == MEMBERS_SHOWN + 1


def test_a_change_form_lists_the_first_stored_findings_and_links_to_the_rest(admin_client):
    # Rows without purpose, action, relationship or legal basis: several findings each.
    processor = make_processor(name_zh="许多发现受托方")
    for index in range(12):
        make_operation(
            processor=processor, service=make_service(name=f"服务{index:02d}"), purposes=(), actions=()
        )
    findings_refresh()
    total = StoredFinding.objects.filter(
        Q(processor=processor) | Q(operation__processor=processor), state=FindingState.OPEN
    ).count()
    assert total > FINDINGS_SHOWN

    page = admin_client.get(
        reverse("admin:processors_processor_change", args=[processor.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    block = page.split('class="findings-list"', 1)[1].split("</ul>", 1)[0]
    assert block.count("<li ") == FINDINGS_SHOWN
    assert f"and {total - FINDINGS_SHOWN} more findings" in page
    assert "/admin/processors/finding/?q=" in page

    operation = processor.operations.first()
    form = admin_client.get(
        reverse("admin:processors_operation_change", args=[operation.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    own = StoredFinding.objects.filter(operation=operation, state=FindingState.OPEN).count()
    assert form.split('class="findings-list"', 1)[1].split("</ul>", 1)[0].count("<li ") == own
    assert "more finding" not in form


# --- Changelists ----------------------------------------------------------------------------------


def test_the_operations_list_offers_no_list_of_every_processor(admin_client):
    operation = make_operation()

    response = admin_client.get(changelist_url("operation"))

    shown = [getattr(spec, "parameter_name", None) for spec in response.context["cl"].filter_specs]
    assert "processor" not in shown and "controller" in shown
    assert operation.processor.name_zh not in response.content.decode().split('id="changelist-filter"')[-1]


def test_the_operations_list_filtered_by_a_processor_shows_that_filter(admin_client):
    kept = make_operation()
    make_operation()

    response = admin_client.get(changelist_url("operation"), {"processor": kept.processor_id})

    assert set(response.context["cl"].result_list) == {kept}
    chosen = [spec for spec in response.context["cl"].filter_specs if spec.parameter_name == "processor"]
    assert [str(label) for _value, label in chosen[0].lookup_choices] == [str(kept.processor)]


@pytest.mark.parametrize("value", ["abc", "99999999999999999999999", "0"])
def test_a_processor_filter_value_that_names_no_processor_is_refused_not_ignored(admin_client, value):
    make_operation()

    response = admin_client.get(changelist_url("operation"), {"processor": value})

    assert response.status_code == 302 and response.url.endswith("?e=1")


def test_the_operations_list_is_read_in_the_reading_order_index(admin_client):
    make_operation()

    cl = admin_client.get(changelist_url("operation")).context["cl"]

    plan = query_plan(cl.result_list)
    assert "operation_reading_order" in plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan
    assert cl.full_result_count is None  # the register is not counted again on every page


def test_the_findings_list_is_read_in_the_rank_index(admin_client):
    make_operation(relationship="entrusted")
    make_operation(relationship="entrusted")
    findings_refresh()
    assert StoredFinding.objects.filter(state=FindingState.OPEN).exists()

    cl = admin_client.get(changelist_url("finding"), {"state": FindingState.OPEN}).context["cl"]

    plan = query_plan(cl.result_list)
    assert "finding_state_rank" in plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan
    ranks = [finding.rank for finding in cl.result_list]
    assert ranks == sorted(ranks)


def test_the_versions_list_reads_no_version_table_and_shows_its_row_count(admin_client):
    controller = make_controller()
    make_operation(service=make_service(controller=controller))
    services.version_publish(
        controller=controller,
        label="v1",
        updated_on=datetime.date(2026, 1, 1),
        effective_on=datetime.date(2026, 1, 1),
    )

    response = admin_client.get(changelist_url("publishedversion"))

    (version,) = response.context["cl"].result_list
    assert {"snapshot", "rendered_pages", "stored_diffs"} <= version.get_deferred_fields()
    assert PublishedVersion.objects.get().row_count == 1
    assert '<td class="field-row_count">1</td>' in response.content.decode()


@pytest.mark.parametrize(
    "term", ["短信验证码", "个人电话号码", "basic.phone_number", "检索受托方", "检索服务"]
)
def test_data_items_are_found_by_text_category_processor_or_service(admin_client, term):
    operation = make_operation(
        service=make_service(name="检索服务"),
        processor=make_processor(name_zh="检索受托方有限公司"),
        data_items=("短信验证码", "手机号"),
    )
    make_operation(data_items=("姓名",))

    response = admin_client.get(changelist_url("dataitem"), {"q": term})

    found = set(response.context["cl"].result_list)
    assert found and {item.operation_id for item in found} == {operation.pk}


def test_the_data_items_controller_filter_lists_the_controllers_from_their_table(admin_client):
    first, second = make_controller(code="first-co"), make_controller(code="second-co")
    make_operation(service=make_service(controller=first))

    response = admin_client.get(changelist_url("dataitem"))

    specs = response.context["cl"].filter_specs
    spec = next(spec for spec in specs if getattr(spec, "field_path", "") == "operation__service__controller")
    assert [pk for pk, _label in spec.lookup_choices] == [first.pk, second.pk]
    filtered = admin_client.get(
        changelist_url("dataitem"), {"operation__service__controller__id__exact": second.pk}
    )
    assert filtered.context["cl"].result_count == 0


def test_purposes_link_to_their_operations_and_are_found_by_alias(admin_client):
    purpose = Purpose.objects.get(code="identity_verification")
    PurposeAlias.objects.create(purpose=purpose, text="核验身份别名", key=normalize_key("核验身份别名"))
    make_operation(purposes=("identity_verification",))

    listed = admin_client.get(changelist_url("purpose"))
    searched = admin_client.get(changelist_url("purpose"), {"q": "核验身份别名"})

    assert f'href="{changelist_url("operation")}?purpose=identity_verification"' in listed.content.decode()
    assert list(searched.context["cl"].result_list) == [purpose]


def test_a_filter_on_the_rows_own_column_keeps_the_index_order(admin_client):
    make_operation()

    cl = admin_client.get(changelist_url("operation"), {"status": "active"}).context["cl"]

    assert not cl.result_list.query.distinct  # django-filter's DISTINCT would sort every matching row
    assert "operation_reading_order" in query_plan(cl.result_list)
    assert cl.result_count == 1
