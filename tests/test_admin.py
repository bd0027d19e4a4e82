"""The admin: every page opens, filters answer by data type, changelists run in constant queries."""

import datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import translation

from processors.admin import TREE_INDENT
from processors.models import (
    CategoryAlias,
    Controller,
    DataCategory,
    DataItem,
    Operation,
    ProcessingAction,
    Processor,
    Purpose,
    Service,
    TaxonomyRelease,
)
from processors.text import normalize_key
from tests.builders import make_controller, make_operation, make_processor, make_service

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


def test_the_processor_page_shows_what_a_member_receives_through_its_group(register):
    processor_admin = admin.site._registry[Processor]

    with translation.override("en"):
        received = processor_admin.received_categories(register["member"])

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


def test_the_category_changelist_counts_operations_including_subcategories(admin_client, register):
    response = admin_client.get(changelist_url("datacategory"), {"group": "identity"})

    counts = {category.code: category.operation_count for category in response.context["cl"].result_list}
    assert counts["identity"] == 2
    assert counts["identity.id_card_number"] == 1
    assert set(counts) == set(
        DataCategory.objects.filter(code__startswith="identity").values_list("code", flat=True)
    )


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
    operations = Operation.objects.bulk_create(
        Operation(
            service=services[index % 2],
            processor=processor,
            relationship="entrusted",
            effective_from=start + datetime.timedelta(days=index),
        )
        for index, processor in enumerate(processors)
    )
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
# read from the database (operations: controllers, processors, purposes, categories; processors:
# countries, categories, controllers; data items: categories, controllers), the paginator's and the
# unfiltered count (2), the page, and on operations the data-item, purpose and action prefetches (3).
# A category filter adds the lookup of the category the user named.
CHANGELIST_QUERIES = [
    ("operation", {}, 12),
    ("operation", {"category": "identity"}, 13),
    ("processor", {}, 8),
    ("processor", {"receives": "basic.phone_number"}, 9),
    ("datacategory", {}, 6),
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
