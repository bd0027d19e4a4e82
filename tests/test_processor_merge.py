"""Merging duplicate processors (AWS / Amazon Web Services, Inc.): nothing lost, history kept, access checked.

``services.processors_merge`` moves operations (joining the survivor's row where one would clash), group
members, aliases and deletion letters, adds the others' names as aliases, deletes the others and keeps
every change in the history with its user; the admin's "Merge into one…" action asks which one stays.
"""

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import translation

from processors import services
from processors.findings import NEAR_DUPLICATE_RULE
from processors.history import history_context, processor_history
from processors.models import (
    Channel,
    ControllerRole,
    DataItem,
    DeletionNoticeLetter,
    Finding,
    FindingState,
    Operation,
    Processor,
    ProcessorAlias,
    Purpose,
)
from tests.builders import make_controller, make_member, make_operation, make_processor, make_service

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def aws():
    """The same recipient twice, as real tables name it, each with operations of its own."""
    controller = make_controller(code="acme")
    cloud, sms = make_service(controller, name="云存储"), make_service(controller, name="短信")
    survivor = make_processor(name_zh="", name_en="Amazon Web Services, Inc.", aliases=["AWS Inc"])
    duplicate = make_processor(name_zh="亚马逊云科技", name_en="Amazon Web Services (AWS)", aliases=["AWS"])
    kept = make_operation(service=cloud, processor=survivor, data_items=("姓名", "手机号"))
    clashing = make_operation(
        service=cloud,
        processor=duplicate,
        data_items=("手机号", "设备标识符", "钉钉审批流，包含姓名手机"),
        purposes=("identity_verification", "customer_service"),
    )
    moving = make_operation(service=sms, processor=duplicate, data_items=("手机号",))
    return {
        "controller": controller,
        "survivor": survivor,
        "duplicate": duplicate,
        "kept": kept,
        "clashing": clashing,
        "moving": moving,
    }


def item_texts(operation: Operation) -> list[str]:
    return list(dict.fromkeys(operation.data_items.order_by("position").values_list("text", flat=True)))


# --- The service ----------------------------------------------------------------------------------


def test_operations_move_to_the_survivor_and_the_duplicate_is_gone(aws, admin_user):
    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)

    assert not Processor.objects.filter(pk=aws["duplicate"].pk).exists()
    moved = Operation.objects.get(pk=aws["moving"].pk)
    assert moved.processor_id == aws["survivor"].pk
    assert item_texts(moved) == ["手机号"]
    assert set(Operation.objects.values_list("processor_id", flat=True)) == {aws["survivor"].pk}


def test_a_clashing_operation_gives_its_items_and_purposes_to_the_survivors_row(aws, admin_user):
    composite_rows = aws["clashing"].data_items.filter(text="钉钉审批流，包含姓名手机").count()

    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)

    assert not Operation.objects.filter(pk=aws["clashing"].pk).exists()
    kept = Operation.objects.get(pk=aws["kept"].pk)
    # Every item is kept once: the shared one (手机号) is not doubled, the new ones are added.
    assert item_texts(kept) == ["姓名", "手机号", "设备标识符", "钉钉审批流，包含姓名手机"]
    assert kept.data_items.filter(text="钉钉审批流，包含姓名手机").count() == composite_rows
    assert kept.data_items.filter(text="设备标识符", category__isnull=False).exists()
    assert set(kept.purposes.values_list("code", flat=True)) == {"identity_verification", "customer_service"}
    assert kept.data_items_text.endswith("设备标识符、钉钉审批流，包含姓名手机")
    assert f"operation #{aws['clashing'].pk}" in kept.notes


def test_the_duplicates_names_and_aliases_become_the_survivors(aws, admin_user):
    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)

    aliases = set(ProcessorAlias.objects.filter(processor=aws["survivor"]).values_list("text", flat=True))
    assert aliases == {"AWS Inc", "AWS", "亚马逊云科技", "Amazon Web Services (AWS)"}
    # A search by any of the old names finds the survivor.
    assert Processor.objects.filter(aliases__text="亚马逊云科技").get() == aws["survivor"]


def test_a_name_the_survivor_already_has_is_not_added_as_an_alias(admin_user):
    survivor = make_processor(name_zh="腾讯云", name_en="Tencent Cloud")
    duplicate = make_processor(name_zh="", name_en="TENCENT  CLOUD")

    services.processors_merge(survivor, [duplicate], user=admin_user)

    assert not survivor.aliases.exists()


def test_group_members_move_to_a_surviving_group(admin_user):
    group = make_processor(name_en="Alibaba Group", kind=Processor.Kind.GROUP)
    twin = make_processor(name_en="Alibaba Group Holding", kind=Processor.Kind.GROUP)
    member = make_processor(name_en="Alipay", member_of=twin)

    services.processors_merge(group, [twin], user=admin_user)

    assert Processor.objects.get(pk=member.pk).member_of_id == group.pk


def test_a_group_with_members_cannot_merge_into_an_organisation(admin_user):
    company = make_processor(name_en="Alibaba")
    group = make_processor(name_en="Alibaba Group", kind=Processor.Kind.GROUP)
    make_processor(name_en="Alipay", member_of=group)

    with pytest.raises(ValidationError, match="must be a group too"):
        services.processors_merge(company, [group], user=admin_user)

    assert Processor.objects.filter(pk=group.pk).exists()


def test_deletion_letters_follow_the_recipient(aws, admin_user):
    letter = services.notice_letter_record_sent(
        processor=aws["duplicate"],
        controller=aws["controller"],
        categories=["basic.phone_number"],
        reply_by="2026-01-31",
        user=admin_user,
    )

    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)

    assert DeletionNoticeLetter.objects.get(pk=letter.pk).processor_id == aws["survivor"].pk


def test_merging_a_processor_into_itself_or_nothing_is_refused(aws, admin_user):
    with pytest.raises(ValidationError):
        services.processors_merge(aws["survivor"], [aws["survivor"]], user=admin_user)


def test_the_near_duplicate_finding_is_resolved_by_the_merge(admin_user):
    first = make_processor(name_zh="", name_en="Amazon Web Services, Inc.")
    second = make_processor(name_zh="", name_en="Amazon Web Services Inc")
    duplicate_findings = Finding.objects.filter(rule=NEAR_DUPLICATE_RULE, processor=first)
    assert duplicate_findings.filter(state=FindingState.OPEN).exists()

    services.processors_merge(first, [second], user=admin_user)

    assert not duplicate_findings.filter(state=FindingState.OPEN).exists()


# --- History --------------------------------------------------------------------------------------


def test_every_change_is_in_the_history_with_the_user(aws, admin_user):
    with history_context(Channel.ADMIN, user=admin_user):
        services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)

    moved = Operation.history.filter(id=aws["moving"].pk).order_by("-history_id").first()
    assert (moved.processor_id, moved.history_user_id) == (aws["survivor"].pk, admin_user.pk)
    deleted = Processor.history.get(id=aws["duplicate"].pk, history_type="-")
    assert deleted.history_user_id == admin_user.pk
    assert str(aws["survivor"].pk) in deleted.history_change_reason
    alias = ProcessorAlias.history.filter(text="亚马逊云科技", history_type="+").get()
    assert alias.history_user_id == admin_user.pk
    added_item = DataItem.history.filter(operation_id=aws["kept"].pk, text="设备标识符").get()
    assert added_item.history_user_id == admin_user.pk


def test_the_merged_processors_history_is_read_with_the_survivors(aws, admin_user):
    services.processor_update(processor=aws["duplicate"], contact_phone="400-910-5656")

    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)

    entries = processor_history(aws["survivor"], user=admin_user)
    changed_fields = {change.field for entry in entries for change in entry.changes}
    assert "contact_phone" in changed_fields  # a change made to the duplicate before the merge
    labels = " ".join(entry.object_label for entry in entries)
    assert "Amazon Web Services (AWS)" in labels or "亚马逊云科技" in labels


def test_a_merge_of_a_merge_keeps_both_histories(admin_user):
    first, second, third = (make_processor(name_zh="", name_en=f"Tencent {n}") for n in ("A", "B", "C"))
    services.processors_merge(second, [first], user=admin_user)
    services.processors_merge(third, [second], user=admin_user)

    from processors.history import processor_ids_merged_into

    assert set(processor_ids_merged_into(third)) == {first.pk, second.pk}


def test_the_admin_history_page_of_the_survivor_lists_the_merged_processor(admin_client, aws, admin_user):
    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)

    page = admin_client.get(reverse("admin:processors_processor_history", args=[aws["survivor"].pk]))

    assert page.status_code == 200
    assert "亚马逊云科技" in page.content.decode()


# --- Who may merge --------------------------------------------------------------------------------


def staff_with(django_user_model, *codenames: str):
    user = django_user_model.objects.create_user("dpo", password="dpo-password", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return django_user_model.objects.get(pk=user.pk)


def test_merging_needs_the_change_and_delete_permissions(aws, django_user_model):
    user = staff_with(django_user_model, "change_processor", "view_processor")
    make_member(user, aws["controller"], role=ControllerRole.EDITOR)

    with pytest.raises(PermissionDenied):
        services.processors_merge(aws["survivor"], [aws["duplicate"]], user=user)

    assert Processor.objects.filter(pk=aws["duplicate"].pk).exists()


def test_merging_needs_editing_every_controller_whose_operations_move(aws, django_user_model):
    other = make_controller(code="other")
    make_operation(service=make_service(other), processor=aws["duplicate"])
    user = staff_with(django_user_model, "change_processor", "delete_processor", "view_processor")
    make_member(user, aws["controller"], role=ControllerRole.EDITOR)
    make_member(user, other, role=ControllerRole.VIEWER)

    with pytest.raises(PermissionDenied, match="not an editor"):
        services.processors_merge(aws["survivor"], [aws["duplicate"]], user=user)

    assert Operation.objects.filter(processor=aws["duplicate"]).count() == 3

    make_member(user, other, role=ControllerRole.EDITOR)
    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=user)
    assert not Operation.objects.filter(processor_id=aws["duplicate"].pk).exists()


# --- The admin action -----------------------------------------------------------------------------


def action_post(client, processors, **extra):
    data = {"action": "merge_processors", "_selected_action": [p.pk for p in processors], **extra}
    return client.post(reverse("admin:processors_processor_changelist"), data)


def test_the_action_asks_which_processor_survives(admin_client, aws):
    page = action_post(admin_client, [aws["survivor"], aws["duplicate"]])

    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="survivor"' in text and "Amazon Web Services (AWS)" in text and "AWS Inc" in text
    assert Processor.objects.filter(pk=aws["duplicate"].pk).exists()  # nothing done yet


def test_confirming_merges_and_opens_the_survivor(admin_client, aws):
    response = action_post(
        admin_client, [aws["survivor"], aws["duplicate"]], post="yes", survivor=aws["duplicate"].pk
    )

    assert response.status_code == 302
    assert response.url == reverse("admin:processors_processor_change", args=[aws["duplicate"].pk])
    assert not Processor.objects.filter(pk=aws["survivor"].pk).exists()
    assert Operation.objects.filter(processor=aws["duplicate"]).count() == 2
    history = Processor.history.get(id=aws["survivor"].pk, history_type="-")
    assert history.history_channel == Channel.ADMIN and history.history_user is not None


def test_a_refused_merge_is_a_message_and_changes_nothing(client, aws, django_user_model):
    user = staff_with(django_user_model, "change_processor", "delete_processor", "view_processor")
    client.force_login(user)  # a member of no controller: the operations' controllers are not theirs

    response = action_post(
        client, [aws["survivor"], aws["duplicate"]], post="yes", survivor=aws["survivor"].pk
    )

    assert response.status_code == 302
    followed = client.get(response.url)
    assert "Nothing was merged" in followed.content.decode()
    assert Processor.objects.filter(pk=aws["duplicate"].pk).exists()


def test_the_action_needs_two_processors(admin_client, aws):
    response = action_post(admin_client, [aws["survivor"]])

    assert response.status_code == 302
    assert Processor.objects.count() == 2


def test_the_action_is_not_offered_without_the_delete_permission(client, django_user_model, aws):
    user = staff_with(django_user_model, "change_processor", "view_processor")
    client.force_login(user)

    page = client.get(reverse("admin:processors_processor_changelist"))

    assert "merge_processors" not in page.content.decode()


def test_purposes_stay_codes_of_the_taxonomy(aws, admin_user):
    # The clashing row's purposes are added by reference, not copied: the taxonomy keeps one of each.
    before = Purpose.objects.count()
    services.processors_merge(aws["survivor"], [aws["duplicate"]], user=admin_user)
    assert Purpose.objects.count() == before
