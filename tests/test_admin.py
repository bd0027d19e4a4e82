"""The admin: every page opens, filters answer by data type, changelists run in constant queries."""

import datetime
import io

import openpyxl
import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from processors import services
from processors.admin.display import TREE_INDENT
from processors.demo import demo_load
from processors.models import (
    CategoryAlias,
    Controller,
    ControllerRole,
    DataCategory,
    DataItem,
    ImportRecord,
    Operation,
    OperationStatus,
    ProcessingAction,
    Processor,
    PublishedVersion,
    Purpose,
    Service,
    TaxonomyRelease,
    fill_reading_order,
)
from processors.text import normalize_key
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db

MODELS = [
    "controller",
    "processor",
    "datacategory",
    "purpose",
    "processingaction",
    "service",
    "operation",
    "dataitem",
    "taxonomyrelease",
]
UNKNOWN_ITEM = "量子纠缠参数"


def changelist_url(model: str) -> str:
    return reverse(f"admin:processors_{model}_changelist")


def results(response) -> set:
    return set(response.context["cl"].result_list)


@pytest.fixture
def register():
    """A small register: one object of every model, a group with a member, and unmapped items."""
    controller = make_controller(name_zh="天威诚信")
    service = make_service(controller=controller, name="实名认证服务")
    group = make_processor(name_zh="短信服务商集团", kind=Processor.Kind.GROUP)
    member = make_processor(name_zh="某短信成员公司", member_of=group)
    return {
        "controller": controller,
        "service": service,
        "group": group,
        "member": member,
        "kyc": make_operation(service=service, data_items=["姓名", "身份证号"]),
        "passport": make_operation(service=service, data_items=["护照"]),
        "sms": make_operation(service=service, data_items=["手机号码"]),
        "group_sms": make_operation(service=service, processor=group, data_items=["手机号", "短信内容"]),
        "names_only": make_operation(service=service, data_items=["姓名", UNKNOWN_ITEM]),
    }


def any_object(model: str, register) -> object:
    objects = {
        "controller": Controller.objects.first(),
        "processor": register["group"],
        "datacategory": DataCategory.objects.get(code="basic.phone_number"),
        "purpose": Purpose.objects.first(),
        "processingaction": ProcessingAction.objects.first(),
        "service": register["service"],
        "operation": register["kyc"],
        "dataitem": DataItem.objects.first(),
        "taxonomyrelease": TaxonomyRelease.objects.first(),
    }
    return objects[model]


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_opens_for_a_superuser(admin_client, register, model):
    assert admin_client.get(changelist_url(model)).status_code == 200


@pytest.mark.parametrize("model", [model for model in MODELS if model != "taxonomyrelease"])
def test_every_add_page_opens_for_a_superuser(admin_client, model):
    assert admin_client.get(reverse(f"admin:processors_{model}_add")).status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_every_change_page_opens_for_a_superuser(admin_client, register, model):
    url = reverse(f"admin:processors_{model}_change", args=[any_object(model, register).pk])

    assert admin_client.get(url).status_code == 200


def test_taxonomy_releases_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:processors_taxonomyrelease_add")).status_code == 403


@pytest.mark.parametrize("model", MODELS)
def test_a_staff_user_without_permissions_is_refused(client, django_user_model, model):
    client.force_login(django_user_model.objects.create_user("clerk", is_staff=True))

    assert client.get(changelist_url(model)).status_code == 403


def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader"))

    response = client.get(changelist_url("operation"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


@pytest.mark.parametrize("model", MODELS)
def test_anonymous_visitors_are_sent_to_the_login_page(client, model):
    response = client.get(changelist_url(model))

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_a_user_with_view_permission_sees_operations_without_the_remap_action(
    client, django_user_model, register
):
    user = django_user_model.objects.create_user("auditor", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_operation"))
    client.force_login(user)

    response = client.get(changelist_url("operation"))

    assert response.status_code == 200
    assert "remap_data_items" not in response.content.decode()


# --- Operation changelist filters -----------------------------------------------------------------


def test_the_identity_group_filter_returns_every_operation_with_an_id_document(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"category": "identity"})

    assert results(response) == {register["kyc"], register["passport"]}


def test_a_leaf_category_filter_returns_the_operations_carrying_it(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"category": "basic.phone_number"})

    assert results(response) == {register["sms"], register["group_sms"]}


def test_the_category_filter_lists_groups_with_their_leaves_indented(admin_client, register):
    response = admin_client.get(changelist_url("operation"))

    choices = [
        choice["display"]
        for spec in response.context["cl"].filter_specs
        for choice in spec.choices(response.context["cl"])
        if spec.parameter_name == "category"
    ]
    assert "个人身份信息" in choices
    assert f"{TREE_INDENT}身份证号码" in choices


def test_an_unknown_category_in_the_url_shows_the_error_page_not_an_empty_list(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"category": "no-such-category"})

    assert response.status_code == 302
    assert response.url.endswith("?e=1")


def test_the_sensitive_filter_returns_operations_with_sensitive_data(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"sensitive": "true"})

    assert results(response) == {register["kyc"], register["passport"], register["group_sms"]}


def test_the_sensitive_filter_set_to_no_returns_the_others(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"sensitive": "false"})

    assert results(response) == {register["sms"], register["names_only"]}


def test_the_unmapped_filter_returns_operations_that_need_review(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"unmapped": "true"})

    assert results(response) == {register["names_only"]}


def test_the_processor_filter_reaches_a_member_through_its_group(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"processor": register["member"].pk})

    assert results(response) == {register["group_sms"]}


def test_the_purpose_filter_accepts_a_purpose_code(admin_client, register):
    make_operation(purposes=["sms_otp"], data_items=["手机号"])

    response = admin_client.get(changelist_url("operation"), {"purpose": "identity_verification"})

    assert results(response) == {
        register[key] for key in ("kyc", "passport", "sms", "group_sms", "names_only")
    }


def test_the_operation_changelist_marks_sensitive_categories(admin_client, register):
    content = admin_client.get(changelist_url("operation")).content.decode()

    assert "⚠ 身份证号码" in content


def test_the_operation_changelist_flags_unmapped_items(admin_client, register):
    content = admin_client.get(changelist_url("operation"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "1 unmapped — needs review" in content


def test_a_controller_added_after_a_page_was_shown_appears_in_the_filter(admin_client, register):
    admin_client.get(changelist_url("operation"))
    make_controller(code="late-arrival", name_zh="后来的公司")

    content = admin_client.get(changelist_url("operation")).content.decode()

    assert "后来的公司" in content


def test_operations_can_be_found_by_data_item_text(admin_client, register):
    response = admin_client.get(changelist_url("operation"), {"q": "护照"})

    assert results(response) == {register["passport"]}


# --- Processor changelist -------------------------------------------------------------------------


def test_the_receives_filter_returns_phone_recipients_and_members_of_their_groups(admin_client, register):
    response = admin_client.get(changelist_url("processor"), {"receives": "basic.phone_number"})

    assert results(response) == {register["sms"].processor, register["group"], register["member"]}


def test_the_receives_filter_leaves_out_processors_without_phone_numbers(admin_client, register):
    response = admin_client.get(changelist_url("processor"), {"receives": "basic.phone_number"})

    assert register["kyc"].processor not in results(response)
    assert register["names_only"].processor not in results(response)


def test_the_processor_changelist_counts_each_processors_operations(admin_client, register):
    response = admin_client.get(changelist_url("processor"))

    counts = {processor: processor.operation_count for processor in response.context["cl"].result_list}
    assert counts[register["group"]] == 1
    assert counts[register["member"]] == 0


@pytest.mark.parametrize("term", ["短信服务商", "SMSGroup", "4008001234", "91110000100000000A"])
def test_processors_can_be_found_by_name_alias_phone_or_uscc(admin_client, term):
    processor = make_processor(
        name_zh="短信服务商有限公司", aliases=["SMSGroup"], contact_phone="400-800-1234 / 4008001234"
    )
    Processor.objects.filter(pk=processor.pk).update(uscc="91110000100000000A")

    response = admin_client.get(changelist_url("processor"), {"q": term})

    assert results(response) == {processor}


def test_the_processor_page_lists_its_operations_with_their_categories(admin_client, register):
    url = reverse("admin:processors_processor_change", args=[register["group"].pk])

    content = admin_client.get(url).content.decode()

    assert "个人电话号码" in content
    assert reverse("admin:processors_operation_change", args=[register["group_sms"].pk]) in content


def test_the_processor_page_shows_what_a_member_receives_through_its_group(register, admin_user):
    processor_admin = admin.site._registry[Processor]
    member = register["member"]
    member.viewer = admin_user  # the change form's get_object says whose controllers to show

    with translation.override("en"):
        received = processor_admin.received_categories(member)

    assert "Phone number" in received
    assert "⚠ SMS records" in received


def test_a_reviewer_finds_a_category_by_alias_in_the_item_autocomplete(admin_client):
    params = {
        "app_label": "processors",
        "model_name": "dataitem",
        "field_name": "category",
        "term": "手机号码",
    }

    response = admin_client.get(reverse("admin:autocomplete"), params)

    assert [result["text"] for result in response.json()["results"]] == ["basic.phone_number 个人电话号码"]


# --- Category changelist --------------------------------------------------------------------------


def test_the_category_changelist_indents_leaves_under_their_group(admin_client):
    content = admin_client.get(changelist_url("datacategory")).content.decode()

    assert '<strong class="tree-name">个人身份信息</strong>' in content
    assert f"{TREE_INDENT}身份证号码" in content


def test_the_category_changelist_links_each_category_to_its_operations_including_subcategories(
    admin_client, register
):
    response = admin_client.get(changelist_url("datacategory"), {"group": "identity"})
    content = response.content.decode()

    codes = {category.code for category in response.context["cl"].result_list}
    identity = DataCategory.objects.filter(code__startswith="identity")
    assert codes == set(identity.values_list("code", flat=True))
    for code in codes:
        assert f'href="{changelist_url("operation")}?category={code}"' in content
    group = admin_client.get(changelist_url("operation"), {"category": "identity"})
    leaf = admin_client.get(changelist_url("operation"), {"category": "identity.id_card_number"})
    assert (len(results(group)), len(results(leaf))) == (2, 1)


def test_categories_can_be_found_by_alias(admin_client):
    response = admin_client.get(changelist_url("datacategory"), {"q": "手机号码"})

    assert [category.code for category in results(response)] == ["basic.phone_number"]


# --- Data items -----------------------------------------------------------------------------------


def test_the_data_item_changelist_filters_items_that_need_review(admin_client, register):
    response = admin_client.get(changelist_url("dataitem"), {"unmapped": "true"})

    assert [item.text for item in results(response)] == [UNKNOWN_ITEM]


def test_the_data_item_changelist_filters_by_a_category_group(admin_client, register):
    response = admin_client.get(changelist_url("dataitem"), {"category": "identity"})

    assert {item.text for item in results(response)} == {"身份证号", "护照"}


def test_setting_a_category_by_hand_records_a_manual_match(admin_client, register):
    item = DataItem.objects.get(text=UNKNOWN_ITEM)
    category = DataCategory.objects.get(code="other_sensitive.special_identity")

    response = admin_client.post(
        reverse("admin:processors_dataitem_change", args=[item.pk]),
        {"text": item.text, "category": category.pk},
    )

    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.category, item.match) == (category, DataItem.Match.MANUAL)


def test_clearing_a_category_by_hand_leaves_the_item_unmapped(admin_client, register):
    item = DataItem.objects.get(text="护照")

    admin_client.post(reverse("admin:processors_dataitem_change", args=[item.pk]), {"text": item.text})

    item.refresh_from_db()
    assert (item.category, item.match) == (None, "")


def test_the_add_alias_action_teaches_the_taxonomy_the_items_wording(admin_client, register):
    item = DataItem.objects.get(text=UNKNOWN_ITEM)
    DataItem.objects.filter(pk=item.pk).update(
        category=DataCategory.objects.get(code="basic.name"), match=DataItem.Match.MANUAL
    )

    admin_client.post(
        changelist_url("dataitem"), {"action": "add_text_as_alias", "_selected_action": [item.pk]}
    )

    alias = CategoryAlias.objects.get(key=normalize_key(UNKNOWN_ITEM))
    assert (alias.text, alias.category.code) == (UNKNOWN_ITEM, "basic.name")


def test_the_add_alias_action_skips_wording_that_is_already_an_alias(admin_client, register):
    items = DataItem.objects.filter(text__in=["手机号码", "姓名"])
    aliases_before = CategoryAlias.objects.count()

    response = admin_client.post(
        changelist_url("dataitem"),
        {"action": "add_text_as_alias", "_selected_action": [item.pk for item in items]},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert CategoryAlias.objects.count() == aliases_before
    assert "Aliases added: 0" in response.content.decode()


def test_the_remap_action_maps_items_once_their_wording_is_an_alias(admin_client, register):
    CategoryAlias.objects.create(
        category=DataCategory.objects.get(code="basic.name"),
        text=UNKNOWN_ITEM,
        key=normalize_key(UNKNOWN_ITEM),
    )

    admin_client.post(
        changelist_url("operation"),
        {"action": "remap_data_items", "_selected_action": [register["names_only"].pk]},
    )

    item = register["names_only"].data_items.get(text=UNKNOWN_ITEM)
    assert (item.category.code, item.match) == ("basic.name", DataItem.Match.ALIAS)


# --- Saving an operation --------------------------------------------------------------------------


def operation_form_data(service: Service, processor: Processor, items: list[str]) -> dict:
    data = {
        "service": service.pk,
        "processor": processor.pk,
        "relationship": "entrusted",
        "status": "active",
        "purposes": [Purpose.objects.get(code="sms_otp").pk],
        "data_items-TOTAL_FORMS": str(len(items)),
        "data_items-INITIAL_FORMS": "0",
        "data_items-MIN_NUM_FORMS": "0",
        "data_items-MAX_NUM_FORMS": "1000",
    }
    for index, text in enumerate(items):
        data[f"data_items-{index}-text"] = text
        data[f"data_items-{index}-category"] = ""
    return data


def add_operation(admin_client, items: list[str]) -> Operation:
    data = operation_form_data(make_service(), make_processor(), items)
    response = admin_client.post(reverse("admin:processors_operation_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    return Operation.objects.latest("id")


def test_saving_an_operation_maps_a_typed_item_onto_the_taxonomy(admin_client):
    operation = add_operation(admin_client, ["手机号码"])

    item = operation.data_items.get()
    assert (item.text, item.category.code, item.match) == (
        "手机号码",
        "basic.phone_number",
        DataItem.Match.ALIAS,
    )


def test_saving_an_operation_keeps_an_unknown_item_flagged_for_review(admin_client):
    operation = add_operation(admin_client, ["手机号码", UNKNOWN_ITEM])

    item = operation.data_items.get(text=UNKNOWN_ITEM)
    assert (item.category, item.match, item.needs_review) == (None, "", True)


def test_the_operation_page_flags_unmapped_items_for_review(admin_client, register):
    url = reverse("admin:processors_operation_change", args=[register["names_only"].pk])

    content = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "unmapped — needs review" in content


def test_new_items_are_placed_after_the_published_ones(admin_client):
    operation = add_operation(admin_client, ["姓名", "手机号码"])

    assert list(operation.data_items.order_by("position").values_list("text", flat=True)) == [
        "姓名",
        "手机号码",
    ]


def test_an_item_given_a_category_on_the_operation_page_is_a_manual_match(admin_client):
    data = operation_form_data(make_service(), make_processor(), [UNKNOWN_ITEM])
    data["data_items-0-category"] = DataCategory.objects.get(code="basic.name").pk

    admin_client.post(reverse("admin:processors_operation_add"), data)

    item = Operation.objects.latest("id").data_items.get()
    assert (item.category.code, item.match) == ("basic.name", DataItem.Match.MANUAL)


def test_a_duplicate_processor_name_is_a_form_error_not_a_crash(admin_client):
    make_processor(name_zh="重名公司")

    response = admin_client.post(
        reverse("admin:processors_processor_add"),
        {
            "name_zh": "重名公司",
            "kind": "organisation",
            "aliases-TOTAL_FORMS": "0",
            "aliases-INITIAL_FORMS": "0",
            "operations-TOTAL_FORMS": "0",
            "operations-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "name_zh" in response.context["adminform"].form.errors


# --- Query counts ---------------------------------------------------------------------------------


def bulk_register(count: int) -> None:
    """``count`` processors and operations with items, purposes and actions, in a handful of bulk inserts."""
    controller = make_controller()
    services = [make_service(controller=controller), make_service(controller=controller)]
    group = make_processor(name_zh="批量集团", kind=Processor.Kind.GROUP)
    processors = Processor.objects.bulk_create(
        Processor(
            name_zh=f"批量受托方{index}",
            name_key=normalize_key(f"批量受托方{index}"),
            member_of=group if index % 3 == 0 else None,
            country="CN" if index % 2 else "US",
            contact_phone=f"400-{index:07d}",
        )
        for index in range(count)
    )
    start = datetime.date(2000, 1, 1)
    rows = [
        Operation(
            service=services[index % 2],
            processor=processor,
            relationship="entrusted",
            effective_from=start + datetime.timedelta(days=index),
        )
        for index, processor in enumerate(processors)
    ]
    fill_reading_order(rows)  # bulk_create sends no pre_save
    operations = Operation.objects.bulk_create(rows)
    categories = dict(DataCategory.objects.values_list("code", "pk"))
    items = []
    for index, operation in enumerate(operations):
        items.append(
            DataItem(
                operation=operation,
                position=0,
                text="姓名",
                category_id=categories["basic.name"],
                match="alias",
            )
        )
        if index % 2:
            items.append(
                DataItem(
                    operation=operation,
                    position=1,
                    text="手机号",
                    match="alias",
                    category_id=categories["basic.phone_number"],
                )
            )
        if index % 3 == 0:
            items.append(
                DataItem(
                    operation=operation,
                    position=2,
                    text="身份证号",
                    match="alias",
                    category_id=categories["identity.id_card_number"],
                )
            )
        if index % 5 == 0:
            items.append(DataItem(operation=operation, position=3, text=UNKNOWN_ITEM))
    DataItem.objects.bulk_create(items)
    purposes = list(Purpose.objects.values_list("pk", flat=True)[:2])
    actions = list(ProcessingAction.objects.values_list("pk", flat=True)[:2])
    Operation.purposes.through.objects.bulk_create(
        Operation.purposes.through(operation=operation, purpose_id=purpose)
        for operation in operations
        for purpose in purposes
    )
    Operation.actions.through.objects.bulk_create(
        Operation.actions.through(operation=operation, processingaction_id=action)
        for operation in operations
        for action in actions
    )


# Exact counts, the same for ten rows and a thousand: session and user (2), one query per filter list
# read from the database (operations: controllers, purposes, categories; processors: countries,
# categories, controllers; data items: categories, controllers), the register's revision and the
# paginator's count (kept per revision: a first view), the page, on the small tables (categories) the
# unfiltered count too, and on operations the data-item prefetch.
# The operations' processor filter lists only a processor a link chose, so it reads nothing here.
# A category filter adds the lookup of the category the user named.
CHANGELIST_QUERIES = [
    ("operation", {}, 9),
    ("operation", {"category": "identity"}, 10),
    ("processor", {}, 8),
    ("processor", {"receives": "basic.phone_number"}, 9),
    ("datacategory", {}, 7),
    ("dataitem", {}, 7),
    ("dataitem", {"unmapped": "true"}, 7),
]


@pytest.mark.parametrize("rows", [10, 1000])
@pytest.mark.parametrize(("model", "params", "queries"), CHANGELIST_QUERIES)
def test_changelists_run_a_constant_number_of_queries(
    admin_client, django_assert_num_queries, rows, model, params, queries
):
    bulk_register(rows)

    with django_assert_num_queries(queries):
        response = admin_client.get(changelist_url(model), params)

    assert response.status_code == 200
    assert response.context["cl"].result_count > 0


# --- Export what I see ----------------------------------------------------------------------------


def exported_text(response, sheet: str | None = None) -> str:
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    sheets = [workbook[sheet]] if sheet else workbook.worksheets
    return "\n".join(str(cell) for each in sheets for row in each.iter_rows(values_only=True) for cell in row)


def processor_names(register, keys) -> set[str]:
    return {register[key].processor.name_zh for key in keys}


def test_the_export_button_exports_only_the_filtered_rows(admin_client, register):
    url = reverse("admin:processors_operation_export", args=["xlsx", "zh"])

    response = admin_client.get(url, {"category": "identity"})

    text = exported_text(response)
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert all(name in text for name in processor_names(register, ["kyc", "passport"]))
    assert not any(name in text for name in processor_names(register, ["sms", "names_only"]))


def test_the_changelist_export_links_carry_its_filters(admin_client, register):
    content = admin_client.get(changelist_url("operation"), {"category": "identity"}).content.decode()

    assert reverse("admin:processors_operation_export", args=["xlsx", "en"]) + "?category=identity" in content


def test_the_full_workbook_export_honours_the_filter(admin_client, register):
    url = reverse("admin:processors_operation_export", args=["workbook", "zh"])

    text = exported_text(admin_client.get(url, {"category": "identity"}), sheet="Operations")

    assert register["kyc"].processor.name_zh in text
    assert register["sms"].processor.name_zh not in text


def test_the_csv_export_is_a_chinese_disclosure_table(admin_client, register):
    url = reverse("admin:processors_operation_export", args=["csv", "zh"])

    response = admin_client.get(url, {"category": "identity"})

    text = response.content.decode("utf-8-sig")
    assert register["kyc"].processor.name_zh in text and register["sms"].processor.name_zh not in text


def test_the_export_action_exports_the_selected_rows_within_the_filter(admin_client, register):
    everything = [operation.pk for operation in Operation.objects.all()]

    response = admin_client.post(
        changelist_url("operation") + "?category=identity",
        {"action": "export_disclosure_xlsx_zh", "_selected_action": everything},
    )

    text = exported_text(response)
    assert all(name in text for name in processor_names(register, ["kyc", "passport"]))
    assert register["sms"].processor.name_zh not in text


def test_an_unknown_export_kind_is_not_found(admin_client):
    assert (
        admin_client.get(reverse("admin:processors_operation_export", args=["pdf", "zh"])).status_code == 404
    )


# --- Import records and published versions --------------------------------------------------------


def make_import_record(**fields) -> ImportRecord:
    fields.setdefault("file_name", "table.tsv")
    fields.setdefault("sha256", "a" * 64)
    fields.setdefault("result", ImportRecord.Result.IMPORTED)
    fields.setdefault("counts", {"operations": {"created": 3, "changed": 1, "unchanged": 0}})
    fields.setdefault(
        "problems",
        [
            {
                "level": "warning",
                "code": "item_unmapped",
                "message": "无法识别",
                "location": "第 3 行",
                "value": "X",
            }
        ],
    )
    return ImportRecord.objects.create(**fields)


@pytest.mark.parametrize("model", ["importrecord", "publishedversion"])
def test_records_and_versions_cannot_be_added_by_hand(admin_client, model):
    assert admin_client.get(reverse(f"admin:processors_{model}_add")).status_code == 403


def test_an_import_record_opens_read_only_with_its_problems(admin_client):
    record = make_import_record(controller=make_controller())
    url = reverse("admin:processors_importrecord_change", args=[record.pk])

    response = admin_client.get(url)

    assert response.status_code == 200
    assert "无法识别" in response.content.decode()
    assert not response.context["has_change_permission"]


def test_an_import_record_cannot_be_changed_or_deleted(admin_client):
    record = make_import_record()

    change = admin_client.post(reverse("admin:processors_importrecord_change", args=[record.pk]), {})
    delete = admin_client.post(
        reverse("admin:processors_importrecord_delete", args=[record.pk]), {"post": "yes"}
    )

    assert (change.status_code, delete.status_code) == (403, 403)
    assert ImportRecord.objects.filter(pk=record.pk).exists()


def test_the_import_records_filter_by_result(admin_client):
    failed = make_import_record(result=ImportRecord.Result.FAILED)
    make_import_record()

    response = admin_client.get(changelist_url("importrecord"), {"result__exact": "failed"})

    assert results(response) == {failed}


def publish(admin_client, controller: Controller, label: str) -> PublishedVersion:
    today = datetime.date.today().isoformat()
    response = admin_client.post(
        reverse("admin:processors_publishedversion_publish"),
        # The test register has blocking problems (on purpose); publishing over them takes a reason.
        {
            "controller": controller.code,
            "label": label,
            "updated_on": today,
            "effective_on": today,
            "override": "on",
            "override_reason": "test register",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    return PublishedVersion.objects.get(controller=controller, label=label)


def test_publishing_in_the_admin_creates_a_version(admin_client, admin_user, register):
    version = publish(admin_client, register["controller"], "2026-01")

    assert version.published_by == admin_user
    assert len(version.snapshot["operations"]) == 5


def test_publishing_a_label_twice_is_a_form_error(admin_client, register):
    publish(admin_client, register["controller"], "v1")
    today = datetime.date.today().isoformat()

    response = admin_client.post(
        reverse("admin:processors_publishedversion_publish"),
        {
            "controller": register["controller"].code,
            "label": "v1",
            "updated_on": today,
            "effective_on": today,
        },
    )

    assert response.status_code == 400
    assert "label" in response.context["form"].errors


def test_a_published_version_cannot_be_changed_or_deleted(admin_client, register):
    version = publish(admin_client, register["controller"], "v1")

    change = admin_client.post(reverse("admin:processors_publishedversion_change", args=[version.pk]), {})
    delete = admin_client.post(
        reverse("admin:processors_publishedversion_delete", args=[version.pk]), {"post": "yes"}
    )

    assert (change.status_code, delete.status_code) == (403, 403)


def test_the_version_page_shows_a_material_diff_after_an_id_number_recipient_is_added(admin_client, register):
    publish(admin_client, register["controller"], "v1")
    make_operation(
        service=register["service"],
        processor=make_processor(name_zh="核验有限公司"),
        data_items=("姓名", "身份证号"),
    )
    version = publish(admin_client, register["controller"], "v2")

    response = admin_client.get(reverse("admin:processors_publishedversion_change", args=[version.pk]))

    diff = response.context["version_diffs"][0]["diff"]
    added = diff.material[0]
    assert (added.kind, added.recipient, added.sensitive, diff.reconsent_required) == (
        "recipient_added",
        "核验有限公司",
        True,
        True,
    )
    assert "核验有限公司" in response.content.decode()


def test_the_version_page_shows_its_published_table_and_unpublished_changes(admin_client, register):
    version = publish(admin_client, register["controller"], "v1")
    make_operation(service=register["service"], processor=make_processor(name_zh="后加的公司"))

    response = admin_client.get(reverse("admin:processors_publishedversion_change", args=[version.pk]))

    assert len(response.context["disclosure_rows"]) == 5
    live = response.context["version_diffs"][1]["diff"]
    assert [change.recipient for change in live.recipients_added] == ["后加的公司"]


@pytest.mark.parametrize(("fmt", "marker"), [("md", "后加的公司"), ("xlsx", "")])
def test_a_diff_downloads_as_markdown_and_xlsx(admin_client, register, fmt, marker):
    version = publish(admin_client, register["controller"], "v1")
    make_operation(service=register["service"], processor=make_processor(name_zh="后加的公司"))

    response = admin_client.get(
        reverse("admin:processors_publishedversion_diff", args=[version.pk, "live", fmt])
    )

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert marker in response.content.decode() if fmt == "md" else response.content[:2] == b"PK"


# --- Findings and deletion notices ----------------------------------------------------------------


def test_the_findings_page_lists_the_demos_cross_border_flows_without_a_mechanism(admin_client):
    demo_load()

    response = admin_client.get(
        reverse("admin:processors_findings"), {"severity": "high"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    rows = [
        row for row in response.context["rows"] if row["finding"].code == "cross_border_without_mechanism"
    ]
    assert len(rows) == 4
    assert all(row["url"].startswith("/admin/processors/operation/") for row in rows)
    assert "PIPL Art. 38" in response.content.decode()


def test_the_findings_page_filters_by_severity(admin_client):
    demo_load()

    response = admin_client.get(reverse("admin:processors_findings"), {"severity": "low"})

    assert {row["finding"].severity for row in response.context["rows"]} <= {"low"}


def test_the_admin_index_links_to_the_findings(admin_client):
    content = admin_client.get(reverse("admin:index")).content.decode()

    assert reverse("admin:processors_findings") in content


@pytest.mark.parametrize("term", ["states no purpose", "未说明处理目的", "purpose_missing"])
def test_the_admin_finds_findings_by_their_rules_title_in_either_language(admin_client, term):
    without_purpose = make_operation(service=make_service(name="会员服务"), purposes=())
    make_operation(service=make_service(name="客服服务"))  # states its purpose: other rules only
    url = reverse("admin:processors_finding_changelist")

    listed = admin_client.get(url, {"q": term}).context["cl"].result_list

    assert {finding.rule for finding in listed} == {"purpose_missing"}
    assert [finding.operation_id for finding in listed] == [without_purpose.pk]


def test_the_admin_finds_findings_by_subject_and_nothing_for_a_term_matching_neither(admin_client):
    make_operation(service=make_service(name="会员服务"), purposes=())
    make_operation(service=make_service(name="客服服务"), purposes=())
    url = reverse("admin:processors_finding_changelist")

    by_subject = admin_client.get(url, {"q": "客服"}).context["cl"].result_list

    assert by_subject and {finding.subject_label.split(" → ")[0] for finding in by_subject} == {"客服服务"}
    assert not admin_client.get(url, {"q": "身份证 会员"}).context["cl"].result_list


def test_a_processor_page_shows_its_findings(admin_client):
    processor = make_processor(name_zh="没有联系方式的公司")
    make_operation(processor=processor, relationship="provision")

    url = reverse("admin:processors_processor_change", args=[processor.pk])
    content = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "recipient_without_contact" in content


def test_the_deletion_notice_for_phone_numbers_lists_the_sms_vendors_with_phones(admin_client):
    demo_load()

    response = admin_client.get(reverse("admin:processors_deletion_notice"), {"categories": "手机号"})

    names = {recipient.processor.name_zh for recipient in response.context["notice"].recipients}
    assert "北京亿美软通科技有限公司" in names
    assert "010-58750664" in response.content.decode()


def test_the_deletion_notice_downloads_as_csv(admin_client):
    demo_load()

    response = admin_client.get(
        reverse("admin:processors_deletion_notice"), {"categories": "手机号", "format": "csv"}
    )

    assert response["Content-Type"].startswith("text/csv")
    assert "010-58750664" in response.content.decode("utf-8-sig")


def test_an_unknown_category_in_a_deletion_notice_is_a_form_error(admin_client):
    response = admin_client.get(reverse("admin:processors_deletion_notice"), {"categories": "量子态"})

    assert response.context["notice"] is None
    assert "categories" in response.context["form"].errors


def retired_email_recipient() -> Processor:
    operation = make_operation(processor=make_processor(name_zh="已停用的接收方"), data_items=("邮箱",))
    services.operation_update(operation=operation, status=OperationStatus.RETIRED)
    return operation.processor


def notice_recipients(response) -> list[Processor]:
    return [recipient.processor for recipient in response.context["notice"].recipients]


def test_the_deletion_notice_with_active_only_leaves_out_retired_flows(admin_client):
    retired_email_recipient()
    active = make_operation(data_items=("邮箱",)).processor

    response = admin_client.get(
        reverse("admin:processors_deletion_notice"), {"categories": "邮箱", "active_only": "on"}
    )

    assert notice_recipients(response) == [active]


def test_the_deletion_notice_includes_retired_flows_unless_active_only_is_ticked(admin_client):
    # As on the site and in the API: a recipient of a flow that has stopped may still hold the data.
    retired = retired_email_recipient()

    response = admin_client.get(reverse("admin:processors_deletion_notice"), {"categories": "邮箱"})

    assert notice_recipients(response) == [retired]
    assert 'name="active_only"' in response.content.decode()


def test_the_deletion_notice_takes_categories_one_per_line(admin_client):
    url = reverse("admin:processors_deletion_notice")

    response = admin_client.get(url, {"categories": "手机号\n身份证号"})

    assert [category.code for category in response.context["notice"].categories] == [
        "basic.phone_number",
        "identity.id_card_number",
    ]


def test_a_lists_count_is_read_again_only_after_a_write(admin_client):
    service = make_service()
    for _number in range(3):
        make_operation(service=service)
    url = reverse("admin:processors_operation_changelist")
    assert admin_client.get(url).context["cl"].result_count == 3

    with CaptureQueriesContext(connection) as again:
        assert admin_client.get(url).context["cl"].result_count == 3
    make_operation(service=service)

    assert not [query for query in again.captured_queries if "COUNT(" in query["sql"].upper()]
    assert admin_client.get(url).context["cl"].result_count == 4


def test_a_lists_count_is_kept_apart_for_readers_who_see_other_controllers(admin_client, django_user_model):
    mine, other = make_controller(code="mine"), make_controller(code="other")
    make_operation(service=make_service(mine))
    make_operation(service=make_service(other))
    editor = django_user_model.objects.create_user("editor-mine", password="editor-password-1", is_staff=True)
    editor.user_permissions.set(Permission.objects.filter(content_type__app_label="processors"))
    make_member(editor, mine, role=ControllerRole.EDITOR)
    client = Client()  # admin_client is pytest-django's ``client`` logged in
    client.force_login(editor)
    url = reverse("admin:processors_operation_changelist")

    assert admin_client.get(url).context["cl"].result_count == 2
    assert client.get(url).context["cl"].result_count == 1


# --- Query counts of the register tools -----------------------------------------------------------


def bulk_records(count: int) -> None:
    controller = make_controller()
    ImportRecord.objects.bulk_create(
        ImportRecord(file_name=f"t{index}.tsv", sha256="b" * 64, result="imported", controller=controller)
        for index in range(count)
    )
    for index in range(count):
        services.version_publish(
            controller=controller,
            label=f"v{index}",
            updated_on=datetime.date(2026, 1, 1),
            effective_on=datetime.date(2026, 1, 1),
        )


# Session and user (2), the controller filter list (1), the paginator's and the unfiltered count (2),
# the page with its user and controller joined (1); import records add the date hierarchy's range
# and its list of years (2).
TOOL_CHANGELIST_QUERIES = [("importrecord", 8), ("publishedversion", 6)]


@pytest.mark.parametrize("rows", [3, 30])
@pytest.mark.parametrize(("model", "queries"), TOOL_CHANGELIST_QUERIES)
def test_the_record_and_version_changelists_run_a_constant_number_of_queries(
    admin_client, django_assert_num_queries, rows, model, queries
):
    bulk_records(rows)

    with django_assert_num_queries(queries):
        response = admin_client.get(changelist_url(model))

    assert response.context["cl"].result_count == rows


def publish_twice(controller: Controller) -> PublishedVersion:
    for label in ("v1", "v2"):
        version = services.version_publish(
            controller=controller,
            label=label,
            updated_on=datetime.date(2026, 1, 1),
            effective_on=datetime.date(2026, 1, 1),
        )
    return version


# Findings (stored): session and user (2), the controller filter list (1), the register's revision and
# the counts by severity and rule (cached per revision), which also give the paginator its total (2);
# bulk_register stores no findings, so the empty page reads nothing.
# The deletion notice: session and user (2), the controller list (1), the category lookup and its
# subtree's ids, the register's revision, the categories held per processor with whether a flow is
# active, the processors, members and categories (these four cached per revision, read here on a first
# view), then for the page shown its recipients (processors and groups), their operations and services.
# A version page: session and user (2), the version with its controller (twice: the diffs' and the
# form's) and its previous version (3), and the live snapshot (6: controller, extra sensitive categories,
# operations, and their items, purposes and actions).
TOOL_PAGE_QUERIES = [
    ("admin:processors_findings", {}, 5),
    ("admin:processors_deletion_notice", {"categories": "手机号"}, 13),
]


@pytest.mark.parametrize("rows", [10, 60])
@pytest.mark.parametrize(("name", "params", "queries"), TOOL_PAGE_QUERIES)
def test_the_findings_and_notice_pages_run_a_constant_number_of_queries(
    admin_client, django_assert_num_queries, rows, name, params, queries
):
    bulk_register(rows)

    with django_assert_num_queries(queries):
        response = admin_client.get(reverse(name), params)

    assert response.status_code == 200


@pytest.mark.parametrize("rows", [20, 60])
def test_the_version_page_runs_a_constant_number_of_queries(admin_client, django_assert_num_queries, rows):
    bulk_register(rows)
    version = publish_twice(Controller.objects.get())
    ContentType.objects.get_for_model(PublishedVersion)  # cached per process, whichever test runs first

    # The live diff reads only the rows changed since publication (versions.live_diff): a constant 16
    # queries of histories and entries instead of the whole register; the table's rows are one page.
    with django_assert_num_queries(27):
        response = admin_client.get(reverse("admin:processors_publishedversion_change", args=[version.pk]))

    assert len(response.context["disclosure_rows"]) == rows


def test_the_deletion_notice_tool_lists_its_recipients_a_page_at_a_time(admin_client):
    bulk_register(120)  # every row sends 姓名; a third of the processors are members of one group
    url = reverse("admin:processors_deletion_notice")

    first = admin_client.get(url, {"categories": "姓名"}, HTTP_ACCEPT_LANGUAGE="en")
    total = len(first.context["notice"].recipients)
    second = admin_client.get(url, {"categories": "姓名", "page": 2}, HTTP_ACCEPT_LANGUAGE="en")

    assert total == 120 and len(first.context["recipients"]) == 50
    assert first.context["recipients"][0].services  # the page's recipients come with their services
    shown = {recipient.processor.pk for recipient in first.context["recipients"]}
    assert not shown & {recipient.processor.pk for recipient in second.context["recipients"]}
    page = first.content.decode()
    assert "120 recipients" in page and "page 1 of 3" in page and "page=2" in page
    csv = admin_client.get(url, {"categories": "姓名", "format": "csv", "page": 2}).content.decode(
        "utf-8-sig"
    )
    assert len(csv.strip().splitlines()) == 1 + total  # the download holds every recipient


def test_the_category_page_shows_a_new_recipient_at_once(admin_client):
    bulk_register(12)
    url = reverse("processors:category", args=["basic.name"])
    before = admin_client.get(url).context["recipient_count"]

    make_operation(processor=make_processor(name_zh="新来的姓名接收方"), data_items=("姓名",))
    after = admin_client.get(url)

    assert after.context["recipient_count"] == before + 1
    assert "新来的姓名接收方" in after.content.decode()


@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999", "x"])
def test_a_key_no_row_can_have_is_refused_with_the_form_not_a_500(admin_client, value):
    url = reverse("admin:processors_dataitem_add")

    posted = admin_client.post(url, {"operation": value, "text": "姓名", "position": "0"})
    opened = admin_client.get(url, {"operation": value})

    assert posted.status_code == 200 and posted.context["adminform"].form.errors
    assert opened.status_code == 200


def test_the_deletion_notice_names_a_new_recipient_at_once(admin_client):
    bulk_register(12)
    url = reverse("admin:processors_deletion_notice")
    before = len(admin_client.get(url, {"categories": "姓名"}).context["notice"].recipients)

    make_operation(processor=make_processor(name_zh="新来的通知接收方"), data_items=("姓名",))
    after = admin_client.get(url, {"categories": "姓名"}).context["notice"]

    assert len(after.recipients) == before + 1
    assert "新来的通知接收方" in [recipient.processor.name_zh for recipient in after.recipients]
