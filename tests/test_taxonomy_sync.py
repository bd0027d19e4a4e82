"""Loading the built-in taxonomy (fixtures/taxonomy.json) with taxonomy_sync and post_migrate."""

import copy
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from processors.models import (
    CategoryAlias,
    DataCategory,
    ProcessingAction,
    Purpose,
    PurposeAlias,
    TaxonomyRelease,
)
from processors.taxonomy import Taxonomy, load_fixture, taxonomy_sync
from processors.text import normalize_key

FIXTURE = load_fixture()
NEXT = FIXTURE["version"] + 1
BLOOD_TYPE = {"code": "health.blood_type", "zh": "血型", "en": "Blood type", "sensitive": True, "since": NEXT}


def empty_taxonomy() -> None:
    CategoryAlias.objects.all().delete()
    PurposeAlias.objects.all().delete()
    # Leaves first: a group protects its children.
    DataCategory.objects.filter(parent__isnull=False).delete()
    DataCategory.objects.all().delete()
    Purpose.objects.all().delete()
    ProcessingAction.objects.all().delete()
    TaxonomyRelease.objects.all().delete()


def next_version(*new_categories: dict) -> dict:
    data = copy.deepcopy(FIXTURE)
    data["version"] = NEXT
    data["categories"].extend(copy.deepcopy(new_categories))
    return data


def alias_texts(item: dict) -> list[str]:
    return [alias if isinstance(alias, str) else alias["text"] for alias in item.get("aliases", ())]


def fixture_counts() -> dict[str, int]:
    """How many rows of each kind the fixture describes."""
    nodes = FIXTURE["groups"] + FIXTURE["categories"]
    return {
        "groups": len(FIXTURE["groups"]),
        "categories": len(FIXTURE["categories"]),
        "category_aliases": sum(len(alias_texts(item)) for item in nodes),
        "purposes": len(FIXTURE["purposes"]),
        "purpose_aliases": sum(len(alias_texts(item)) for item in FIXTURE["purposes"]),
        "actions": len(FIXTURE["actions"]),
    }


def created(result) -> dict[str, int]:
    return {kind: getattr(result, kind) for kind in result.KINDS}


def database_counts() -> dict[str, int]:
    return {
        "groups": DataCategory.objects.filter(parent__isnull=True).count(),
        "categories": DataCategory.objects.filter(parent__isnull=False).count(),
        "category_aliases": CategoryAlias.objects.count(),
        "purposes": Purpose.objects.count(),
        "purpose_aliases": PurposeAlias.objects.count(),
        "actions": ProcessingAction.objects.count(),
    }


# --- the fixture ----------------------------------------------------------------------------------


def test_the_fixture_has_the_17_groups_and_107_leaves_of_the_published_taxonomy():
    # Version 2 (issue 11) added the device-permissions group and 20 leaves of the app and SDK vocabulary.
    assert [group["code"] for group in FIXTURE["groups"]] == [
        "basic", "identity", "biometric", "online_id", "auth", "health", "edu_work", "financial",
        "comms", "contacts", "activity", "device", "location", "vehicle", "content", "other_sensitive",
        "permission",
    ]  # fmt: skip
    assert len(FIXTURE["categories"]) == 107


@pytest.mark.parametrize("kind", ["groups", "categories", "purposes", "actions"])
def test_fixture_codes_and_names_are_unique(kind):
    items = FIXTURE[kind] + (FIXTURE["categories"] if kind == "groups" else [])
    for field in ("code", "zh", "en"):
        repeated = [value for value, count in Counter(item[field] for item in items).items() if count > 1]
        assert repeated == [], field


def test_every_leaf_belongs_to_an_existing_group():
    groups = {group["code"] for group in FIXTURE["groups"]}
    orphans = [
        leaf["code"] for leaf in FIXTURE["categories"] if leaf["code"].rpartition(".")[0] not in groups
    ]

    assert orphans == []


def test_every_leaf_says_whether_it_is_sensitive():
    assert all(isinstance(leaf["sensitive"], bool) for leaf in FIXTURE["categories"])


def test_category_names_are_single_names_with_variants_kept_as_aliases():
    assert [leaf["zh"] for leaf in FIXTURE["categories"] if "/" in leaf["zh"]] == []


@pytest.mark.parametrize("kind", ["categories", "purposes"])
def test_no_alias_key_repeats_another_alias_or_any_name(kind):
    items = FIXTURE["groups"] + FIXTURE["categories"] if kind == "categories" else FIXTURE["purposes"]
    owners: dict[str, str] = {}
    for item in items:
        for name in (item["code"], item["zh"], item["en"]):
            assert owners.setdefault(normalize_key(name), item["code"]) == item["code"], name
    clashes = []
    for item in items:
        for text in alias_texts(item):
            if normalize_key(text) in owners:
                clashes.append((text, item["code"], owners[normalize_key(text)]))
            owners[normalize_key(text)] = item["code"]

    assert clashes == []


def test_no_item_is_newer_than_the_fixture_version():
    items = [item for kind in ("groups", "categories", "purposes", "actions") for item in FIXTURE[kind]]

    assert max(item.get("since", 1) for item in items) <= FIXTURE["version"]


def test_the_eight_pipl_article_4_actions_are_flagged():
    flagged = {action["code"] for action in FIXTURE["actions"] if action["pipl_article_4"]}

    assert flagged == {"collect", "store", "use", "process", "transmit", "provide", "disclose", "delete"}


# --- syncing --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_migrate_loads_every_group_leaf_purpose_and_action_of_the_fixture():
    def codes(*kinds: str) -> set[str]:
        return {item["code"] for kind in kinds for item in FIXTURE[kind]}

    assert set(DataCategory.objects.values_list("code", flat=True)) == codes("groups", "categories")
    assert set(Purpose.objects.values_list("code", flat=True)) == codes("purposes")
    assert set(ProcessingAction.objects.values_list("code", flat=True)) == codes("actions")
    assert TaxonomyRelease.objects.get().version == FIXTURE["version"]


@pytest.mark.django_db
def test_a_leaf_hangs_under_the_group_its_code_extends():
    leaf = DataCategory.objects.select_related("parent").get(code="identity.id_card_number")

    assert leaf.parent.code == "identity"
    assert leaf.sensitive is True
    assert leaf.sensitive_gbt45574 is False


@pytest.mark.django_db
def test_an_empty_database_gets_every_item_and_alias_of_the_fixture():
    empty_taxonomy()

    result = taxonomy_sync()

    assert created(result) == fixture_counts()
    assert result.skipped == []
    assert database_counts() == fixture_counts()
    assert CategoryAlias.objects.get(text="数据包hash").key == "数据包hash"


@pytest.mark.django_db
def test_a_second_sync_creates_nothing():
    empty_taxonomy()
    taxonomy_sync()

    result = taxonomy_sync()

    assert not result.applied
    assert result.created == 0
    assert TaxonomyRelease.objects.count() == 1


@pytest.mark.django_db
def test_a_user_deleted_builtin_alias_is_not_recreated_by_a_later_version():
    CategoryAlias.objects.filter(text="几类卡").delete()

    taxonomy_sync(data=next_version(BLOOD_TYPE))

    assert not CategoryAlias.objects.filter(text="几类卡").exists()


@pytest.mark.django_db
def test_a_later_version_adds_only_its_new_items():
    leaf = {**BLOOD_TYPE, "aliases": ["ABO血型"]}

    result = taxonomy_sync(data=next_version(leaf))

    assert (result.groups, result.categories, result.category_aliases) == (0, 1, 1)
    assert (result.purposes, result.purpose_aliases, result.actions) == (0, 0, 0)
    assert DataCategory.objects.get(code="health.blood_type").parent.code == "health"
    assert TaxonomyRelease.objects.filter(version=NEXT).exists()


@pytest.mark.django_db
def test_a_later_version_leaves_a_user_edited_category_name_untouched():
    DataCategory.objects.filter(code="basic.name").update(name_zh="姓名（全称）")

    taxonomy_sync(data=next_version(BLOOD_TYPE))

    assert DataCategory.objects.get(code="basic.name").name_zh == "姓名（全称）"


@pytest.mark.django_db
def test_a_new_alias_whose_key_is_taken_is_skipped():
    data = next_version()
    nationality = next(item for item in data["categories"] if item["code"] == "basic.nationality")
    nationality["aliases"].append({"text": "手 机 号", "since": NEXT})

    result = taxonomy_sync(data=data)

    assert result.category_aliases == 0
    assert CategoryAlias.objects.get(key="手机号").category.code == "basic.phone_number"


@pytest.mark.django_db
def test_a_new_category_whose_name_a_user_took_is_skipped_not_fatal():
    DataCategory.objects.filter(code="health.metrics").update(name_zh="血型")

    result = taxonomy_sync(data=next_version(BLOOD_TYPE))

    assert result.categories == 0
    assert result.skipped == ["DataCategory health.blood_type: its name is taken"]
    assert result.applied


@pytest.mark.django_db
def test_the_sync_taxonomy_command_prints_what_it_created():
    empty_taxonomy()
    out = StringIO()

    call_command("sync_taxonomy", stdout=out)

    counts = fixture_counts()
    assert out.getvalue() == (
        f"Applied taxonomy version {FIXTURE['version']}: created {counts['groups']} groups, "
        f"{counts['categories']} categories, {counts['category_aliases']} category aliases, "
        f"{counts['purposes']} purposes, {counts['purpose_aliases']} purpose aliases, "
        f"{counts['actions']} actions.\n"
    )


@pytest.mark.django_db
def test_the_sync_taxonomy_command_says_when_there_is_nothing_to_do():
    out = StringIO()

    call_command("sync_taxonomy", stdout=out)

    assert out.getvalue() == f"Taxonomy version {FIXTURE['version']} is already applied; nothing to do.\n"


@pytest.mark.django_db(transaction=True)
def test_flushing_the_database_reloads_the_taxonomy():
    call_command("flush", interactive=False, verbosity=0)

    assert DataCategory.objects.filter(code="basic.phone_number").exists()
    assert TaxonomyRelease.objects.get().version == FIXTURE["version"]


def as_of(version: int) -> dict:
    """The fixture as it was at an earlier version: only the items and aliases introduced by then."""

    def since(item: dict, default: int = 1) -> int:
        return item.get("since", default) if isinstance(item, dict) else default

    data = copy.deepcopy(FIXTURE)
    data["version"] = version
    for kind in ("groups", "categories", "purposes", "actions"):
        data[kind] = [item for item in data[kind] if since(item) <= version]
        for item in data[kind]:
            if "aliases" in item:
                item["aliases"] = [a for a in item["aliases"] if since(a, since(item)) <= version]
    return data


def newer_than(version: int) -> dict[str, int]:
    old = as_of(version)
    return {
        kind: count - len_old
        for (kind, count), len_old in zip(
            fixture_counts().items(),
            [
                len(old["groups"]),
                len(old["categories"]),
                sum(len(alias_texts(item)) for item in old["groups"] + old["categories"]),
                len(old["purposes"]),
                sum(len(alias_texts(item)) for item in old["purposes"]),
                len(old["actions"]),
            ],
            strict=True,
        )
    }


@pytest.mark.django_db
def test_upgrading_a_version_1_register_adds_only_what_version_2_introduced():
    empty_taxonomy()
    taxonomy_sync(data=as_of(1))
    DataCategory.objects.filter(code="basic.name").update(name_zh="姓名（全称）")

    result = taxonomy_sync()

    assert result.skipped == []
    assert created(result) == newer_than(1)
    assert database_counts() == fixture_counts()
    assert DataCategory.objects.get(code="basic.name").name_zh == "姓名（全称）"
    assert DataCategory.objects.get(code="permission.phone_state").parent.code == "permission"
    assert CategoryAlias.objects.get(text="设备信息").category.code == "device"


def test_version_2_adds_the_sdk_vocabulary():
    added = {
        kind: count - later
        for (kind, count), later in zip(newer_than(1).items(), newer_than(2).values(), strict=True)
    }

    assert (added["groups"], added["categories"]) == (1, 20)
    assert added["category_aliases"] > 400


def added_by(version: int) -> dict[str, int]:
    return {
        kind: count - later
        for (kind, count), later in zip(
            newer_than(version - 1).items(), newer_than(version).values(), strict=True
        )
    }


def test_version_3_adds_only_aliases_of_the_partner_and_sdk_lists_of_files_19_and_20():
    added = added_by(3)

    assert (added["groups"], added["categories"], added["purposes"], added["actions"]) == (0, 0, 0, 0)
    assert added["category_aliases"] == 42


def test_version_4_adds_only_aliases_of_the_cross_border_and_sharing_lists_of_files_23_and_24():
    added = added_by(4)

    assert FIXTURE["version"] == 4
    assert (added["groups"], added["categories"], added["purposes"], added["actions"]) == (0, 0, 0, 0)
    assert added["category_aliases"] == 43


@pytest.mark.django_db
def test_upgrading_a_version_3_register_maps_access_tokens_to_authentication_not_push_tokens():
    empty_taxonomy()
    taxonomy_sync(data=as_of(3))
    assert Taxonomy.load().map_item("access token").category_codes == ("device.push_token",)

    result = taxonomy_sync()

    assert result.skipped == [] and created(result) == newer_than(3)
    assert database_counts() == fixture_counts()
    taxonomy = Taxonomy.load()
    assert taxonomy.map_item("access token").category_codes == ("auth",)
    assert taxonomy.map_item("APNs device token").category_codes == ("device.push_token",)


@pytest.mark.django_db
def test_upgrading_a_version_2_register_maps_the_consignee_phone_of_a_partner_list():
    empty_taxonomy()
    taxonomy_sync(data=as_of(2))
    assert not CategoryAlias.objects.filter(text="收货人联系电话").exists()

    result = taxonomy_sync()

    assert result.skipped == [] and created(result) == newer_than(2)
    assert CategoryAlias.objects.get(text="收货人联系电话").category.code == "basic.phone_number"
