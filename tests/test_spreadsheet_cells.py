import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.models import Relationship, SharingMethod
from processors.spreadsheets.cells import (
    EU_MEMBER_STATES,
    CellError,
    parse_bool,
    parse_choice,
    parse_countries,
    parse_locations,
    parse_recipient,
    parse_url,
    split_list,
)
from processors.spreadsheets.columns import RELATIONSHIP_SYNONYMS, SHARING_METHOD_SYNONYMS

# --- split_list -----------------------------------------------------------------------------------


def test_a_list_splits_on_chinese_and_ascii_separators():
    cell = split_list("姓名、身份证号、个人图像, 银行卡号，手机号；邮箱;地址\n民族")

    assert cell.items == ["姓名", "身份证号", "个人图像", "银行卡号", "手机号", "邮箱", "地址", "民族"]


def test_a_list_is_not_split_inside_brackets():
    cell = split_list("设备标识信息（Android ID/IDFA、OAID）、IP地址【含端口，协议】")

    assert cell.items == ["设备标识信息（Android ID/IDFA、OAID）", "IP地址【含端口，协议】"]


def test_a_trailing_deng_is_removed_and_marks_the_list_open_ended():
    cell = split_list("收集、存储、使用、加工、传输、提供、删除等")

    assert cell.items == ["收集", "存储", "使用", "加工", "传输", "提供", "删除"]
    assert cell.open_ended


def test_a_deng_deng_on_its_own_marks_the_list_open_ended():
    cell = split_list("姓名、手机号、等等")

    assert cell.items == ["姓名", "手机号"]
    assert cell.open_ended


def test_a_list_without_deng_is_closed():
    assert not split_list("姓名、手机号").open_ended


def test_empty_parts_and_surrounding_spaces_are_dropped():
    assert split_list(" 姓名 、、 数据包 hash ,").items == ["姓名", "数据包 hash"]


def test_an_explanation_after_a_comma_stays_with_its_item():
    assert split_list("钉钉审批流，包含姓名手机").items == ["钉钉审批流，包含姓名手机"]


# --- parse_recipient ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "name", "phone"),
    [
        ("北京市商汤科技开发有限公司 400-900-5986", "北京市商汤科技开发有限公司", "400-900-5986"),
        ("北京银联商务有限公司 95534", "北京银联商务有限公司", "95534"),
        ("福建未来无线信息技术有限公司 0591-83723330", "福建未来无线信息技术有限公司", "0591-83723330"),
        ("贵州数据宝网络科技有限公司 4000-999-656", "贵州数据宝网络科技有限公司", "4000-999-656"),
        ("金联汇通信息技术有限公司 010-56311739", "金联汇通信息技术有限公司", "010-56311739"),
    ],
)
def test_a_phone_number_glued_to_a_company_name_is_separated(cell, name, phone):
    recipient = parse_recipient(cell)

    assert recipient.names == [name]
    assert recipient.phone == phone
    assert not recipient.is_group


def test_icp_and_public_security_filings_are_separated_from_the_name():
    recipient = parse_recipient("至信链京公网安备 11010702002038号 京 ICP 备 19056263 号-1")

    assert recipient.names == ["至信链"]
    assert recipient.icp_filing == "京ICP备19056263号-1"
    assert recipient.public_security_filing == "京公网安备 11010702002038号"


def test_a_group_lists_its_members_in_brackets():
    recipient = parse_recipient(
        "仲裁委(武汉仲裁委员会、宁波仲裁委员会、重庆仲裁委员会、哈尔滨仲裁委员会、郑州仲裁委员会、"
        "十堰仲裁委员会、鹰潭仲裁委)"
    )

    assert recipient.group_name == "仲裁委"
    assert recipient.names == [
        "武汉仲裁委员会",
        "宁波仲裁委员会",
        "重庆仲裁委员会",
        "哈尔滨仲裁委员会",
        "郑州仲裁委员会",
        "十堰仲裁委员会",
        "鹰潭仲裁委",
    ]


def test_several_latin_brands_in_one_cell_are_separate_recipients_of_a_named_group():
    recipient = parse_recipient("Digicert Certum GlobalSign Sectigo Actalis")

    assert recipient.names == ["Digicert", "Certum", "GlobalSign", "Sectigo", "Actalis"]
    assert recipient.group_name == "Digicert, Certum, GlobalSign, Sectigo, Actalis"


@pytest.mark.parametrize("cell", ["Amazon Web Services", "DigiCert, Inc.", "Google LLC"])
def test_a_latin_company_name_with_generic_words_stays_one_name(cell):
    recipient = parse_recipient(cell)

    assert recipient.names == [cell]
    assert not recipient.is_group


def test_companies_separated_by_a_chinese_list_mark_are_separate_recipients():
    assert parse_recipient("北京亿美软通科技有限公司、上海创蓝文化传播有限公司").names == [
        "北京亿美软通科技有限公司",
        "上海创蓝文化传播有限公司",
    ]


@pytest.mark.parametrize(
    ("cell", "name", "qualifier"),
    [
        ("法证链科技创新有限公司(及其合作机构)", "法证链科技创新有限公司", "及其合作机构"),
        ("深圳前海微众银行股份有限公司(微众链)", "深圳前海微众银行股份有限公司", "微众链"),
        ("某某科技有限公司（及其关联公司、合作机构）", "某某科技有限公司", "及其关联公司、合作机构"),
    ],
)
def test_a_trailing_bracket_that_is_not_a_member_list_is_a_qualifier(cell, name, qualifier):
    recipient = parse_recipient(cell)

    assert recipient.names == [name]
    assert recipient.qualifier == qualifier
    assert not recipient.is_group


@pytest.mark.parametrize(
    ("cell", "name", "qualifier"),
    [
        (
            "Email provider (e.g., Controller-selected SMTP service)",
            "Email provider",
            "e.g., Controller-selected SMTP service",
        ),
        ("Analytics vendor (such as Mixpanel, Amplitude)", "Analytics vendor", "such as Mixpanel, Amplitude"),
        ("PostHog, Inc. (optional)", "PostHog, Inc.", "optional"),
    ],
)
def test_a_trailing_bracket_giving_an_example_or_a_remark_is_a_qualifier(cell, name, qualifier):
    recipient = parse_recipient(cell)

    assert recipient.names == [name]
    assert recipient.qualifier == qualifier
    assert not recipient.is_group


def test_a_trailing_bracket_listing_members_is_still_a_group():
    recipient = parse_recipient("Email providers (Mailgun, Postmark)")

    assert recipient.names == ["Mailgun", "Postmark"]
    assert recipient.group_name == "Email providers"


@pytest.mark.parametrize(
    ("cell", "countries"),
    [
        ("EU regions", EU_MEMBER_STATES),
        ("USA / EU regions", (*EU_MEMBER_STATES, "US")),
        ("US region", ("US",)),
        ("中国香港", ("HK",)),
        ("新加坡", ("SG",)),
    ],
)
def test_a_place_with_the_word_region_is_the_place(cell, countries):
    assert set(parse_locations(cell).countries) == set(countries)
    assert parse_locations(cell).unknown == ()


@pytest.mark.parametrize("cell", ["Varies by provider", "Depending on the region", "Varies"])
def test_it_depends_said_in_a_phrase_is_vague_not_a_place(cell):
    location = parse_locations(cell)

    assert location.vague == (cell,) and not location.countries and not location.unknown


def test_regions_alone_is_not_a_place():
    assert parse_locations("Regions").unknown == ("Regions",)


def test_a_bracket_inside_a_name_stays_in_the_name():
    recipient = parse_recipient("天聚地合（苏州）数据股份有限公司 400-882-7715")

    assert recipient.names == ["天聚地合（苏州）数据股份有限公司"]
    assert recipient.qualifier == ""


def test_the_raw_cell_is_kept():
    cell = "北京银联商务有限公司 95534"

    assert parse_recipient(cell).raw == cell


def test_a_name_made_only_of_digits_is_not_taken_for_a_phone_number():
    assert parse_recipient("12345").names == ["12345"]


# --- scalar cells ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "value"), [("是", True), ("非必要", False), ("Yes", True), ("", None)])
def test_yes_and_no_are_read_in_both_languages(cell, value):
    assert parse_bool(cell) is value


def test_an_unreadable_yes_or_no_is_a_cell_error():
    with pytest.raises(CellError):
        parse_bool("也许")


@pytest.mark.parametrize(
    ("cell", "method"),
    [
        ("接口传输", SharingMethod.SERVER_TRANSFER),
        ("SDK采集", SharingMethod.SDK_COLLECTION),
        ("通过API接口传输", SharingMethod.SERVER_TRANSFER),
        ("server_transfer", SharingMethod.SERVER_TRANSFER),
    ],
)
def test_sharing_method_texts_map_onto_the_choices(cell, method):
    assert parse_choice(cell, choices=SharingMethod.choices, synonyms=SHARING_METHOD_SYNONYMS) == method


def test_an_unknown_choice_is_a_cell_error_that_suggests_the_codes():
    with pytest.raises(CellError) as raised:
        parse_choice("握手", choices=Relationship.choices, synonyms=RELATIONSHIP_SYNONYMS)

    assert "entrusted" in raised.value.suggestions


def test_countries_are_read_from_codes_and_chinese_or_english_names():
    assert parse_countries("US、英国, Poland；比利时") == ["US", "GB", "PL", "BE"]


def test_a_bare_host_becomes_an_https_address():
    assert parse_url("www.itrus.com.cn") == "https://www.itrus.com.cn"


@given(st.text(alphabet="ab中文 、，,；;\n\r\t\u3000", max_size=30))
def test_a_cell_without_brackets_splits_as_the_bracket_aware_scan_does(text):
    # Cells without brackets take a regular-expression shortcut; with a bracket appended (which the
    # scan treats as text) the slow path runs on the same separators.
    from processors.spreadsheets.cells import LIST_SEPARATORS, _top_level_parts

    fast = _top_level_parts(text, LIST_SEPARATORS)
    slow = _top_level_parts(text + "(", LIST_SEPARATORS)

    assert fast[:-1] == slow[:-1]
    assert (fast[-1][0] + "(", fast[-1][1]) == slow[-1]


@given(st.text(max_size=40))
def test_clean_text_collapses_exactly_the_whitespace_a_regular_expression_would(text):
    import re

    from processors.text import clean_text

    assert clean_text(text) == re.sub(r"\s+", " ", text.replace("\u3000", " ")).strip()
