"""The site's pages on a large register: the dashboard's cached figures, and that no write leaves them stale.

The dashboard's register-wide figures are served from the cache under a revision stamp (the newest
history row of each table they count, ``register_cache``). These tests make each kind of write (a
save as the admin makes it, an API PATCH, a delete, an import, a findings refresh and a decision, a
taxonomy change) and read the dashboard again: the figure must move, never stay as cached.
"""

import datetime
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from processors import register_cache, services, views
from processors.findings import findings_refresh
from processors.models import DataCategory, Finding, FindingState, Operation, Processor
from processors.notices import deletion_notice
from processors.spreadsheets.importer import import_register
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

READER = ("view_operation", "view_processor", "view_datacategory", "view_controller")

TABLE = (
    "服务/功能名称\t服务主体\t处理个人信息范围\t处理个人信息目的\t处理个人信息方式\n"
    "实名认证服务\t甲科技有限公司\t姓名\t实名认证\t收集\n"
    "短信服务\t乙通信有限公司\t手机号\t发送短信\t收集\n"
)


def dashboard(client) -> dict:
    response = client.get(reverse("processors:dashboard"))
    assert response.status_code == 200
    return response.context


def summary(client) -> dict:
    return dashboard(client)["summary"]


@pytest.fixture
def acme():
    return make_controller(code="acme", name_zh="某某科技有限公司", name_en="Acme Ltd")


@pytest.fixture
def operation(acme):
    return make_operation(service=make_service(acme, name="短信服务"), data_items=["手机号"])


# --- Served from the cache, and cheaper the second time -------------------------------------------


def test_the_second_dashboard_reads_the_figures_from_the_cache_in_fewer_queries(admin_client, operation):
    with CaptureQueriesContext(connection) as cold:
        first = dashboard(admin_client)
    with CaptureQueriesContext(connection) as warm:
        second = dashboard(admin_client)

    assert second["summary"] == first["summary"] and second["summary"]["operations"] == 1
    assert [bar.key for bar in second["group_bars"]] == [bar.key for bar in first["group_bars"]]
    assert len(warm.captured_queries) < len(cold.captured_queries)
    # The warm page does not scan the register: no aggregate over operations or data items.
    assert not [q for q in warm.captured_queries if "COUNT(" in q["sql"].upper()]


def test_the_revision_is_one_query_and_moves_with_a_write(operation):
    with CaptureQueriesContext(connection) as context:
        before = register_cache.register_revision()
    assert len(context.captured_queries) == 1

    operation.notes = "checked"
    operation.save()

    assert register_cache.register_revision() != before


# --- Every kind of write moves the figures --------------------------------------------------------


def test_a_save_as_the_admin_makes_it_shows_at_once(admin_client, operation):
    assert summary(admin_client)["cross_border"] == 0

    operation.cross_border = True
    operation.destination_countries = ["US"]
    operation.save()

    page = dashboard(admin_client)
    assert page["summary"]["cross_border"] == 1
    assert [bar.key for bar in page["country_bars"]] == ["US"]


def test_an_api_patch_shows_at_once(admin_client, admin_user, operation):
    assert summary(admin_client)["operations"] == 1
    assert [row["category__code"] for row in dashboard(admin_client)["top_categories"]] == [
        "basic.phone_number"
    ]
    client = APIClient()
    client.force_authenticate(admin_user)

    response = client.patch(
        f"/api/v1/operations/{operation.pk}/", {"data_items_text": "姓名、手机号"}, format="json"
    )

    assert response.status_code == 200, response.content
    codes = {row["category__code"] for row in dashboard(admin_client)["top_categories"]}
    assert "basic.phone_number" in codes and len(codes) == 2


def test_a_delete_shows_at_once(admin_client, operation):
    assert summary(admin_client)["operations"] == 1

    Operation.objects.filter(pk=operation.pk).delete()

    page = dashboard(admin_client)
    assert page["summary"]["operations"] == 0 and page["group_bars"] == []
    assert page["recent_operations"] == []


def test_an_import_shows_at_once(admin_client, acme):
    assert summary(admin_client)["operations"] == 0

    import_register(TABLE, controller=acme, file_name="register.tsv")

    page = dashboard(admin_client)
    assert page["summary"]["operations"] == 2
    assert {operation.service.name for operation in page["recent_operations"]} == {"实名认证服务", "短信服务"}


def test_a_findings_refresh_and_a_decision_show_at_once(admin_client, admin_user, operation):
    Finding.objects.all().delete()
    assert dashboard(admin_client)["findings_total"] == 0

    findings_refresh()
    page = dashboard(admin_client)
    total = page["findings_total"]
    assert total > 0 and total == Finding.objects.filter(state=FindingState.OPEN).count()

    services.finding_accept(
        finding=Finding.objects.filter(state=FindingState.OPEN).first(), user=admin_user, reason="ok"
    )

    assert dashboard(admin_client)["findings_total"] == total - 1


def test_a_taxonomy_change_shows_at_once(admin_client, operation):
    assert summary(admin_client)["sensitive"] == 0
    phone = DataCategory.objects.get(code="basic.phone_number")

    phone.sensitive = True
    phone.save()

    page = dashboard(admin_client)
    assert page["summary"]["sensitive"] == 1
    basic = next(bar for bar in page["group_bars"] if bar.key == "basic")
    assert basic.sensitive == 1


def test_a_processor_rename_shows_in_the_recent_changes_at_once(admin_client, operation):
    assert dashboard(admin_client)["recent_processors"][0].pk == operation.processor_id

    processor = operation.processor
    processor.name_zh = "改名后的有限公司"
    processor.save()

    assert "改名后的有限公司" in dashboard(admin_client)["recent_processors"][0].name_zh


# --- Scope: one reader's cached figures are never another's ---------------------------------------


def test_readers_of_different_controllers_never_share_cached_figures(client, django_user_model, acme):
    other = make_controller(code="other", name_zh="另一有限公司")
    make_operation(service=make_service(acme), processor=make_processor(name_zh="某甲有限公司"))
    make_operation(service=make_service(other), processor=make_processor(name_zh="某乙有限公司"))
    make_operation(service=make_service(other), processor=make_processor(name_zh="某丙有限公司"))
    users = {}
    for code, controller in (("acme", acme), ("other", other)):
        user = django_user_model.objects.create_user(code, password="reader-password-for-tests")
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="processors", codename__in=READER)
        )
        make_member(user, controller)
        users[code] = user

    client.force_login(users["acme"])
    assert summary(client)["operations"] == 1
    client.force_login(users["other"])
    assert summary(client)["operations"] == 2
    client.force_login(users["acme"])
    assert summary(client)["operations"] == 1


def test_the_key_holds_the_scope_the_language_and_for_daily_figures_the_date(operation):
    figures = register_cache.RegisterFigures("all")

    with translation.override("en"):
        english = figures.key("charts")
    with translation.override("zh-hans"):
        chinese = figures.key("charts")
        other_scope = register_cache.RegisterFigures("c1", revision=figures.revision).key("charts")
        with mock.patch.object(register_cache.timezone, "localdate", return_value=datetime.date(2030, 1, 1)):
            later = figures.key("reviews", daily=True)
        today = figures.key("reviews", daily=True)

    assert len({english, chinese, other_scope}) == 3
    assert later != today


# --- Category page, deletion notice, matrix: the same content from fewer, cheaper queries ---------


def test_the_category_page_counts_operations_and_recipients_and_lists_its_children(admin_client, acme):
    service = make_service(acme)
    vendor = make_processor(name_zh="某短信有限公司")
    make_operation(service=service, processor=vendor, data_items=["姓名"])
    make_operation(service=make_service(acme, name="实名认证"), processor=vendor, data_items=["身份证号"])
    make_operation(
        service=service, processor=make_processor(name_zh="某核验有限公司"), data_items=["身份证号"]
    )
    make_operation(service=service, processor=make_processor(name_zh="某邮件有限公司"), data_items=["邮箱"])

    context = admin_client.get(reverse("processors:category", args=["identity"])).context

    assert context["operation_count"] == 2 and context["recipient_count"] == 2
    assert context["page_obj"].paginator.count == 2
    children = {child.code for child in context["children"]}
    assert "identity.id_card_number" in children
    assert all(
        child.parent_id == DataCategory.objects.get(code="identity").pk for child in context["children"]
    )
    assert {receipt.processor.name_zh for receipt in context["recipients"]} == {
        "某短信有限公司",
        "某核验有限公司",
    }


def test_the_deletion_notice_names_each_recipient_with_the_categories_it_holds(admin_client, acme):
    service = make_service(acme)
    vendor = make_processor(name_zh="某短信有限公司")
    make_operation(service=service, processor=vendor, data_items=["姓名", "手机号"])
    make_operation(service=make_service(acme, name="实名认证"), processor=vendor, data_items=["姓名"])
    make_operation(service=service, processor=make_processor(name_zh="某邮件有限公司"), data_items=["邮箱"])

    notice = deletion_notice(["basic"])

    held = {
        recipient.processor.name_zh: sorted(c.code for c in recipient.categories.values())
        for recipient in notice.recipients
    }
    assert held == {
        "某短信有限公司": ["basic.name", "basic.phone_number"],
        "某邮件有限公司": ["basic.email"],
    }
    active_only = deletion_notice(["basic.email"], acme, include_retired=False)
    assert [recipient.processor.name_zh for recipient in active_only.recipients] == ["某邮件有限公司"]


@pytest.mark.parametrize("query", ["?sensitive=false", ""])
def test_matrix_cells_link_as_query_with_would(admin_client, acme, query):
    vendor = make_processor(name_zh="某短信有限公司")
    make_operation(service=make_service(acme), processor=vendor, data_items=["手机号"])

    page = admin_client.get(f"/matrix/{query}").content.decode()

    prefix = f"{query[1:]}&amp;" if query else ""
    assert f'href="/explorer/?{prefix}processor={vendor.pk}&amp;category=basic"' in page
    assert 'aria-label="某短信有限公司 × ' in page


def test_matrix_cells_keep_a_processor_already_in_the_query_in_its_place(admin_client, acme):
    vendor = make_processor(name_zh="某短信有限公司")
    make_operation(service=make_service(acme), processor=vendor, data_items=["手机号"])

    page = admin_client.get(f"/matrix/?processor={vendor.pk}&sensitive=false&page=1").content.decode()

    assert f'href="/explorer/?processor={vendor.pk}&amp;sensitive=false&amp;category=basic"' in page


# --- The filter form does not list every processor of a large register ----------------------------


def explorer_processor_options(client, query: str = "") -> tuple[list[int], bool, int]:
    with CaptureQueriesContext(connection) as context:
        response = client.get(f"/explorer/{query}")
    assert response.status_code == 200
    options = [processor.pk for processor in response.context["processor_choices"]]
    return options, response.context["processor_choices_bounded"], len(context.captured_queries)


def test_the_filter_form_lists_every_processor_up_to_the_limit(admin_client, acme, monkeypatch):
    monkeypatch.setattr(views, "FILTER_PROCESSOR_CHOICES", 3)
    names = ["某甲有限公司", "某乙有限公司", "某丙有限公司"]
    processors = [make_processor(name_zh=name) for name in names]
    make_operation(service=make_service(acme), processor=processors[0])

    options, bounded, _queries = explorer_processor_options(admin_client)

    assert not bounded
    assert options == list(Processor.objects.order_by("name_key", "pk").values_list("pk", flat=True))
    assert len(options) == 3 and "f-processor-help" not in admin_client.get("/explorer/").content.decode()


def test_over_the_limit_the_form_keeps_the_chosen_processor_and_points_to_the_search(
    admin_client, acme, monkeypatch
):
    monkeypatch.setattr(views, "FILTER_PROCESSOR_CHOICES", 3)
    processors = [make_processor(name_zh=f"接收方{number}有限公司") for number in range(3)]
    make_operation(service=make_service(acme), processor=processors[0])
    _options, bounded, small = explorer_processor_options(admin_client)
    assert not bounded
    last = make_processor(name_zh="最后一个有限公司")

    options, bounded, large = explorer_processor_options(admin_client)
    assert bounded and options == [] and large == small
    chosen, bounded, _queries = explorer_processor_options(admin_client, f"?processor={last.pk}")
    assert bounded and chosen == [last.pk]
    page = admin_client.get(f"/explorer/?processor={last.pk}").content.decode()
    assert f'<option value="{last.pk}" selected>' in page and 'id="f-processor-help"' in page
