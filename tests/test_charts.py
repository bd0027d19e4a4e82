"""The pictures: the dashboard's charts, the flow view, their tables, their bounds and who sees what."""

import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from processors import flows
from processors.models import Operation
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

READER = ("view_operation", "view_processor", "view_datacategory", "view_controller")


def reader(django_user_model, *controllers, username="reader"):
    user = django_user_model.objects.create_user(username, password="reader-password-for-tests")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="processors", codename__in=READER)
    )
    make_member(user, *controllers)
    return user


def chart_data(html: str, element_id: str) -> dict:
    """The JSON a chart draws, read back from its json_script element."""
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert found, f"no {element_id} in the page"
    return json.loads(found.group(1))


@pytest.fixture
def register():
    acme = make_controller(code="acme", name_zh="某某科技有限公司", name_en="Acme Ltd")
    sms = make_service(acme, name="短信服务")
    identity = make_service(acme, name="实名认证")
    vendor = make_processor(name_zh="某短信有限公司")
    checker = make_processor(name_zh="某核验有限公司")
    abroad = make_processor(name_en="Example CA Inc", country="US")
    return {
        "controller": acme,
        "sms": make_operation(service=sms, processor=vendor, data_items=["手机号"]),
        "identity": make_operation(service=identity, processor=checker, data_items=["姓名", "身份证号"]),
        "abroad": make_operation(
            service=identity,
            processor=abroad,
            data_items=["邮箱"],
            cross_border=True,
            destination_countries=["US", "JP"],
        ),
    }


# --- The numbers --------------------------------------------------------------------------------------


def test_flows_by_group_count_operations_and_those_sending_a_sensitive_category(register):
    bars = {bar.key: bar for bar in flows.flows_by_category_group(Operation.objects.all())}

    assert bars["identity"].operations == 1 and bars["identity"].sensitive == 1
    assert bars["basic"].operations == 3  # 手机号, 姓名 and 邮箱 are all basic data
    assert bars["basic"].sensitive == 0


def test_cross_border_countries_count_each_destination_of_a_row(register):
    bars = {bar.key: bar for bar in flows.cross_border_countries(Operation.objects.all())}

    assert set(bars) == {"US", "JP"}
    assert bars["US"].operations == bars["JP"].operations == 1
    assert "cross_border=true" in bars["US"].url and "country=US" in bars["US"].url


def test_the_flow_goes_controller_service_recipient_country_and_marks_sensitive_links(register):
    chart = flows.operation_flow(Operation.objects.all())
    nodes = {node.id: node for node in chart.nodes}
    links = {(nodes[link.source].label, nodes[link.target].label): link for link in chart.links}

    assert {node.stage for node in chart.nodes} == {"controller", "service", "recipient", "country"}
    assert links[("实名认证", "某核验有限公司")].sensitive == 1
    assert links[("短信服务", "某短信有限公司")].sensitive == 0
    assert nodes[f"recipient:{register['abroad'].processor_id}"].url == reverse(
        "processors:processor", args=[register["abroad"].processor_id]
    )
    assert nodes["controller:" + str(register["controller"].pk)].url == reverse(
        "processors:disclosure", args=["acme"]
    )


def test_the_flow_stays_bounded_however_many_services_and_recipients(register):
    controller = register["controller"]
    for number in range(40):
        make_operation(
            service=make_service(controller, name=f"服务{number}"),
            processor=make_processor(name_zh=f"接收方{number}有限公司"),
            data_items=["手机号"],
        )

    chart = flows.operation_flow(Operation.objects.all())
    per_stage = {
        stage: sum(node.stage == stage for node in chart.nodes) for stage in ("service", "recipient")
    }

    assert per_stage["service"] <= flows.TOP_SERVICES + 1
    assert per_stage["recipient"] <= flows.TOP_RECIPIENTS + 1
    assert "service:0" in {node.id for node in chart.nodes}  # the "other services" node
    # Nothing is lost: the links out of the services carry every operation.
    out_of_services = sum(link.operations for link in chart.links if link.source.startswith("service:"))
    assert out_of_services == Operation.objects.count()


def test_the_country_chart_folds_the_long_tail_into_others():
    controller = make_controller()
    codes = ["US", "JP", "DE", "FR", "GB", "IT", "ES", "NL", "BE", "SE", "NO", "DK", "FI", "PL", "AT"]
    for code in codes:
        make_operation(
            service=make_service(controller),
            processor=make_processor(name_en=f"Vendor {code}"),
            cross_border=True,
            destination_countries=[code],
        )

    bars = flows.cross_border_countries(Operation.objects.all())

    assert len(bars) == flows.TOP_COUNTRIES
    assert bars[-1].key == "others"
    assert sum(bar.operations for bar in bars) == len(codes)


# --- The pages ----------------------------------------------------------------------------------------


def test_the_dashboard_carries_both_charts_and_their_tables(client, django_user_model, register):
    client.force_login(reader(django_user_model))

    html = client.get("/").content.decode()

    groups = chart_data(html, "group-chart-data")
    countries = chart_data(html, "country-chart-data")
    assert "Identity documents" in groups["labels"] or "个人身份信息" in groups["labels"]
    assert len(countries["labels"]) == 2
    assert 'class="chart-table"' in html  # the table equivalent, for screen readers and print
    assert "vendor/echarts/echarts.min.js" in html and "<script>" not in html  # no inline script (CSP)


def test_the_flow_page_shows_the_chart_and_its_tables_with_links(client, django_user_model, register):
    client.force_login(reader(django_user_model))

    response = client.get(reverse("processors:flows"))
    html = response.content.decode()

    data = chart_data(html, "flow-chart-data")
    assert {node["stage"] for node in data["nodes"]} == {"controller", "service", "recipient", "country"}
    assert reverse("processors:processor", args=[register["abroad"].processor_id]) in html
    assert 'class="flow-sensitive"' in html


def test_the_flow_page_is_filtered_by_the_shared_filterset(client, django_user_model, register):
    client.force_login(reader(django_user_model))

    html = client.get(reverse("processors:flows"), {"category": "身份证号"}).content.decode()

    labels = {node["label"] for node in chart_data(html, "flow-chart-data")["nodes"]}
    assert "某核验有限公司" in labels
    assert "某短信有限公司" not in labels


def test_an_unknown_category_on_the_flow_page_says_so_instead_of_drawing(client, django_user_model, register):
    client.force_login(reader(django_user_model))

    response = client.get(reverse("processors:flows"), {"category": "身分证"})

    assert response.status_code == 200
    assert 'id="flow-chart-data"' not in response.content.decode()


def test_a_member_of_one_controller_sees_only_its_flows(client, django_user_model, register):
    other = make_controller(code="other", name_zh="别家公司")
    make_operation(
        service=make_service(other, name="别家服务"), processor=make_processor(name_zh="别家接收方")
    )
    client.force_login(reader(django_user_model, register["controller"]))

    flow_page = client.get(reverse("processors:flows")).content.decode()
    dashboard = client.get("/").content.decode()

    labels = {node["label"] for node in chart_data(flow_page, "flow-chart-data")["nodes"]}
    assert "别家接收方" not in labels and "别家服务" not in labels and "别家公司" not in labels
    assert "某核验有限公司" in labels
    groups = chart_data(dashboard, "group-chart-data")
    basic = [index for index, url in enumerate(groups["urls"]) if url.endswith("category=basic")][0]
    # 姓名, 手机号 and 邮箱 of acme's three rows; the other controller's row (姓名、手机号) is not counted.
    assert groups["series"][0]["values"][basic] + groups["series"][1]["values"][basic] == 3


def test_the_flow_page_needs_the_view_permission(client, django_user_model, register):
    user = django_user_model.objects.create_user("nobody", password="nobody-password-for-tests")
    client.force_login(user)

    assert client.get(reverse("processors:flows")).status_code == 403
