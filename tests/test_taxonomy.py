"""Mapping published data items, purposes and actions onto the taxonomy (processors/taxonomy.py)."""

import re
from pathlib import Path

import pytest

from processors.models import CategoryAlias, DataCategory
from processors.taxonomy import Taxonomy

ITRUS_TABLE = Path(__file__).resolve().parent.parent / "fixtures" / "itrus-sdk-table.tsv"


def itrus_rows() -> list[list[str]]:
    lines = ITRUS_TABLE.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines[1:] if line.strip()]


def itrus_data_items() -> list[str]:
    items = [item.strip() for row in itrus_rows() for item in re.split(r"[、,，]", row[2])]
    return list(dict.fromkeys(item for item in items if item))


def itrus_purposes() -> list[str]:
    return list(dict.fromkeys(row[3].strip() for row in itrus_rows()))


@pytest.fixture
def taxonomy(db) -> Taxonomy:
    return Taxonomy.load()


# --- data items -----------------------------------------------------------------------------------


def test_the_itrus_table_has_the_items_the_taxonomy_was_built_for():
    expected = {"身份证号", "识别驾驶证信息", "数据包 hash", "包含姓名手机", "中国绿卡"}

    assert expected <= set(itrus_data_items())


@pytest.mark.parametrize("item", itrus_data_items())
def test_every_itrus_data_item_maps_to_a_category(taxonomy, item):
    mapping = taxonomy.map_item(item)

    assert not mapping.unmapped, item
    assert mapping.text == item


@pytest.mark.parametrize("item", ["手机号", "手机号码", "实名手机号", "电话号码"])
def test_phone_number_spellings_map_to_the_phone_number(taxonomy, item):
    assert taxonomy.map_item(item).category_codes == ("basic.phone_number",)


def test_an_id_card_number_is_not_taken_for_a_document_number(taxonomy):
    assert taxonomy.map_item("身份证号码").category_codes == ("identity.id_card_number",)


def test_the_longest_alias_inside_a_longer_text_wins_and_is_inferred(taxonomy):
    # The item says more than the alias it contains (持卡人), so a person confirms it (issue 11).
    mapping = taxonomy.map_item("持卡人身份证号码")

    assert mapping.category_codes == ("identity.id_card_number",)
    assert mapping.match == "inferred"


@pytest.mark.parametrize("item", ["ＩＰ地址", "ip 地址", "IP地址"])
def test_ip_address_matches_whatever_the_width_case_or_spacing(taxonomy, item):
    assert taxonomy.map_item(item).category_codes == ("online_id.ip_address",)


@pytest.mark.parametrize("item", ["数据包 hash", "数据包hash", "数据包ＨＡＳＨ", "数据包 HASH"])
def test_data_package_hash_variants_map_to_the_document_hash(taxonomy, item):
    mapping = taxonomy.map_item(item)

    assert mapping.category_codes == ("content.document_hash",)
    assert mapping.match == "alias"


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ("识别身份证信息", "identity.id_card_image"),
        ("识别银行卡信息", "financial.bank_card_number"),
        ("识别驾驶证信息", "identity.driving_license"),
        ("身份证识别", "identity.id_card_image"),
    ],
)
def test_a_recognised_document_maps_to_the_document(taxonomy, item, code):
    mapping = taxonomy.map_item(item)

    assert mapping.category_codes == (code,)
    assert mapping.match == "ocr"


@pytest.mark.parametrize(
    "item", ["钉钉审批流，包含姓名手机", "钉钉审批流（包含姓名手机）", "钉钉审批流(包括姓名、手机)"]
)
def test_a_composite_item_maps_to_each_category_it_names(taxonomy, item):
    mapping = taxonomy.map_item(item)

    assert mapping.category_codes == ("edu_work.workflow_record", "basic.name", "basic.phone_number")
    assert mapping.match == "composite"


def test_an_unknown_item_is_unmapped_and_kept_verbatim(taxonomy):
    mapping = taxonomy.map_item(" 火星文 ")

    assert mapping.unmapped
    assert mapping.text == " 火星文 "
    assert mapping.match == ""


def test_a_trailing_deng_is_not_part_of_the_item(taxonomy):
    assert taxonomy.map_item("姓名等").category_codes == ("basic.name",)


def test_a_trailing_etc_is_not_part_of_an_english_item(taxonomy):
    assert taxonomy.map_item("phone etc.").category_codes == ("basic.phone_number",)


@pytest.mark.parametrize("item", ["等", "等等", "", "、"])
def test_an_item_with_nothing_but_deng_or_punctuation_is_unmapped(taxonomy, item):
    assert taxonomy.map_item(item).unmapped


def test_an_ascii_alias_inside_a_longer_word_is_ignored(taxonomy):
    # "ip" is an alias of the IP address, but VIP is not one.
    assert taxonomy.map_item("VIP会员").unmapped


def test_an_alias_added_in_the_database_is_honoured(taxonomy):
    category = DataCategory.objects.get(code="basic.nationality")
    alias = CategoryAlias(text="所属国家", category=category)
    alias.full_clean()
    alias.save()

    assert Taxonomy.load().map_item("所属国家").category_codes == ("basic.nationality",)


def test_a_deleted_alias_no_longer_maps(taxonomy):
    CategoryAlias.objects.filter(text="几类卡").delete()

    assert Taxonomy.load().map_item("几类卡").unmapped


def test_map_items_keeps_order_and_reuses_the_mapping_of_a_repeated_text(taxonomy):
    first, second, third = taxonomy.map_items(["姓名", "手机号", "姓名"])

    assert [first.text, second.text, third.text] == ["姓名", "手机号", "姓名"]
    assert first is third


# --- purposes and actions -------------------------------------------------------------------------


def test_the_itrus_actions_map_to_seven_core_actions_and_are_open_ended(taxonomy):
    mapping = taxonomy.map_actions("收集、存储、使用、加工、传输、提供、删除等")

    assert mapping.codes == ("collect", "store", "use", "process", "transmit", "provide", "delete")
    assert mapping.unmapped == ()
    assert mapping.open_ended


def test_english_actions_joined_by_and_map(taxonomy):
    assert taxonomy.map_actions("Collect, store and delete").codes == ("collect", "store", "delete")


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("实名认证", ("identity_verification",)),
        ("发送验证码", ("sms_otp",)),
        ("开具电子发票", ("invoicing",)),
        ("印章制作", ("seal_making",)),
        ("裁决", ("dispute_resolution",)),
        ("案件渠道", ("dispute_resolution",)),
        ("上链存储", ("evidence_timestamp",)),
        ("手写签名比对", ("esign",)),
        ("信息化/售后", ("hr_office", "customer_service")),
        ("金融调解", ("dispute_resolution",)),
        ("签发证书", ("certificate_issuance",)),
    ],
)
def test_an_itrus_purpose_maps_to_its_purposes(taxonomy, text, codes):
    mapping = taxonomy.map_purposes(text)

    assert mapping.codes == codes
    assert mapping.unmapped == ()


def test_every_itrus_purpose_is_covered_by_the_expectations_above():
    expected = {"实名认证", "发送验证码", "开具电子发票", "印章制作", "裁决", "案件渠道", "上链存储"}
    expected |= {"手写签名比对", "信息化/售后", "金融调解", "签发证书"}

    assert set(itrus_purposes()) == expected


def test_a_purpose_name_spelt_with_and_stays_one_purpose(taxonomy):
    assert taxonomy.map_purposes("Maps and location").codes == ("maps_location",)


def test_a_purpose_text_is_not_split_into_fragments(taxonomy):
    # A purpose cell is one text mapped by the keywords in it (issue 11): no "火星探测" fragment.
    mapping = taxonomy.map_purposes("实名认证、火星探测")

    assert mapping.codes == ("identity_verification",)
    assert mapping.unmapped == ()


def test_a_purpose_text_with_no_known_keyword_is_reported_whole(taxonomy):
    mapping = taxonomy.map_purposes("火星探测、星际旅行")

    assert mapping.codes == ()
    assert mapping.unmapped == ("火星探测、星际旅行",)


# --- lookups --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("basic.name", "basic.name"),
        ("姓名", "basic.name"),
        ("NAME", "basic.name"),
        ("手机号", "basic.phone_number"),
        ("identity", "identity"),
        ("个人身份信息", "identity"),
        ("Identity Documents", "identity"),
    ],
)
def test_resolve_category_accepts_a_code_a_name_or_an_alias(taxonomy, value, code):
    assert taxonomy.resolve_category(value) == code


def test_resolve_category_returns_none_for_an_unknown_value(taxonomy):
    assert taxonomy.resolve_category("火星文") is None


def test_suggestions_for_a_typo_include_the_intended_alias(taxonomy):
    assert "身份证号" in taxonomy.suggest_categories("身份正号")


def test_suggestions_name_each_category_at_most_once(taxonomy):
    suggestions = taxonomy.suggest_categories("身份正号", limit=5)
    codes = [taxonomy.resolve_category(text) for text in suggestions]

    assert len(codes) == len(set(codes))


def test_category_id_is_the_database_id(taxonomy):
    assert taxonomy.category_id("basic.name") == DataCategory.objects.get(code="basic.name").pk


def test_loading_uses_a_bounded_number_of_queries(db, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        Taxonomy.load()


# --- plain data -----------------------------------------------------------------------------------


def test_from_data_builds_a_taxonomy_without_the_database():
    taxonomy = Taxonomy.from_data(
        categories=[("basic", "个人基本资料", "Basic data"), ("basic.name", "姓名", "Name")],
        category_aliases=[("真实姓名", "basic.name")],
        actions=[("collect", "收集", "Collect")],
    )

    assert taxonomy.map_item("客户真实姓名").category_codes == ("basic.name",)
    assert taxonomy.map_actions("收集").codes == ("collect",)


def test_a_leaf_wins_over_a_group_with_the_same_name():
    taxonomy = Taxonomy.from_data(
        categories=[("contacts", "联系人", "Contacts"), ("contacts.book", "通讯录", "Address book")],
        category_aliases=[("联系人", "contacts.book")],
    )

    assert taxonomy.resolve_category("联系人") == "contacts.book"
