"""The taxonomy on data items and purposes taken verbatim from the real corpus (tests/data/real, issue 11)."""

from pathlib import Path

import pytest

from processors.taxonomy import Taxonomy, infer_items_from_text

CORPUS = Path(__file__).resolve().parent / "data" / "real"

# (file, item as published, categories, match kind); each text is checked to be in its file.
CORPUS_ITEMS = [
    # generic items map to their group
    ("04-coolapk-privacy.md", "设备信息", ("device",), "alias"),
    ("12-bento-subprocessors.md", "device data", ("device",), "alias"),
    ("12-bento-subprocessors.md", "contact data", ("basic",), "alias"),
    # ... unless their brackets name leaves, which are more specific
    (
        "02-xuexiqiangguo-sdk.md",
        "设备信息（IMEI、IMSI、设备型号、操作系统版本）",
        ("device.id_permanent", "device.model_os"),
        "composite",
    ),
    ("01-jiamai-sdk.md", "设备信息（设备标识符）", ("device.id_permanent",), "composite"),
    # the everyday SDK vocabulary
    ("01-jiamai-sdk.md", "应用包名", ("device.app_info",), "alias"),
    ("01-jiamai-sdk.md", "接入SDK的应用版本", ("device.app_info",), "alias"),
    ("02-xuexiqiangguo-sdk.md", "崩溃日志", ("activity.crash_logs",), "alias"),
    ("01-jiamai-sdk.md", "推送消息令牌", ("device.push_token",), "alias"),
    ("06-usongame-sdk.md", "Token申请记录", ("device.push_token",), "alias"),
    ("01-jiamai-sdk.md", "订单信息", ("financial.orders",), "alias"),
    ("03-qq-sharing.md", "订单金额", ("financial.orders",), "alias"),
    ("06-usongame-sdk.md", "应用的进程名称", ("device.running_apps",), "alias"),
    ("02-xuexiqiangguo-sdk.md", "外部存储", ("device.storage",), "alias"),
    ("06-usongame-sdk.md", "您的外部存储信息", ("device.storage",), "alias"),
    ("05-simpfun-sdk.md", "cpu架构类型", ("device.hardware_settings",), "alias"),
    ("02-xuexiqiangguo-sdk.md", "SIM卡制造商", ("device.sim",), "alias"),
    ("01-jiamai-sdk.md", "相册", ("content.media",), "alias"),
    ("01-jiamai-sdk.md", "经度", ("location.precise",), "alias"),
    ("06-usongame-sdk.md", "精良位置", ("location.precise",), "alias"),
    (
        "06-usongame-sdk.md",
        "您的精良位置(GPS)或粗略位置",
        ("location.precise", "location.coarse"),
        "composite",
    ),
    ("03-qq-sharing.md", "用户标识信息", ("online_id.account",), "alias"),
    ("03-qq-sharing.md", "应用标识信息", ("device.app_info",), "alias"),
    ("06-usongame-sdk.md", "IMEI信息", ("device.id_permanent",), "alias"),
    ("02-xuexiqiangguo-sdk.md", "设备蓝牙地址", ("device.id_permanent",), "alias"),
    ("04-coolapk-privacy.md", "网卡（MAC)地址", ("device.id_permanent",), "alias"),
    # English sub-processor wording
    ("12-bento-subprocessors.md", "Technical logs", ("activity.logs",), "alias"),
    ("12-bento-subprocessors.md", "message metadata", ("comms.metadata",), "alias"),
    ("12-bento-subprocessors.md", "transaction details", ("financial.transactions",), "alias"),
    ("12-bento-subprocessors.md", "subscription data", ("financial.orders",), "alias"),
    ("12-bento-subprocessors.md", "cookies", ("online_id.cookie",), "alias"),
    ("12-bento-subprocessors.md", "Business contact details", ("basic",), "inferred"),
    # push tokens, and the tokens and codes that let a service act as the user (authentication)
    ("23-xiang-cross-border.html", "APNs device token", ("device.push_token",), "alias"),
    ("23-xiang-cross-border.html", "FCM token", ("device.push_token",), "alias"),
    ("23-xiang-cross-border.html", "access token", ("auth",), "alias"),
    # a Latin product name before an item names whose item it is, not another item
    ("23-xiang-cross-border.html", "Spotify OAuth 授权码", ("auth",), "alias"),
    ("23-xiang-cross-border.html", "MusicKit 用户 Token", ("auth",), "alias"),
    ("23-xiang-cross-border.html", "通知文案(标题、正文、deeplink)", ("comms.message_content",), "composite"),
    ("23-xiang-cross-border.html", "播放指令", ("activity.app_usage",), "alias"),
    # 播放/曲库操作 is 播放操作 and 曲库操作: the word before the slash borrows the head after it
    ("23-xiang-cross-border.html", "播放/曲库操作", ("activity.app_usage",), "composite"),
    # generic: the basic group, never the phone number alone
    ("24-xunfeng-sharing.md", "收货信息", ("basic",), "alias"),
    # a guess the item's own brackets make precise is no guess
    (
        "20-xiangpini-sharing.md",
        "用户自填的收货信息（收件人姓名、地址、联系方式）",
        ("basic.name", "basic.address"),
        "composite",
    ),
]

# The traps of labels.toml: none of these is a phone number (nor, for the permissions, a data item).
TRAPS = [
    ("05-simpfun-sdk.md", "手机型号", "device.model_os"),
    ("05-simpfun-sdk.md", "手机品牌", "device.model_os"),
    ("06-usongame-sdk.md", "手机厂商名", "device.model_os"),
    ("06-usongame-sdk.md", "手机硬件名", "device.model_os"),
    ("01-jiamai-sdk.md", "手机系统的版本", "device.model_os"),
    ("01-jiamai-sdk.md", "手机制造商", "device.model_os"),
    ("04-coolapk-privacy.md", "并会收集手机机型", "device.model_os"),
    ("06-usongame-sdk.md", "您的通话状态", "permission.phone_state"),
    ("06-usongame-sdk.md", "通话状态", "permission.phone_state"),
    ("06-usongame-sdk.md", "读取电话状态", "permission.phone_state"),
    ("08-dcloud-map-sdk.html", "读取手机状态和身份", "permission.phone_state"),
    ("08-dcloud-map-sdk.html", "android.permission.READ_PHONE_STATE", "permission.phone_state"),
    ("06-usongame-sdk.md", "存储权限", "permission.storage"),
    ("06-usongame-sdk.md", "写入外部存储", "permission.storage"),
    ("06-usongame-sdk.md", "安装其他应用权限", "permission.install_apps"),
    ("02-xuexiqiangguo-sdk.md", "摄像头", "permission.camera"),
    ("02-xuexiqiangguo-sdk.md", "麦克风", "permission.microphone"),
    ("06-usongame-sdk.md", "您手机当前或最近运行的任务信息", "device.running_apps"),
    ("04-coolapk-privacy.md", "sim卡信息", "device.sim"),
]


@pytest.fixture
def taxonomy(db) -> Taxonomy:
    return Taxonomy.load()


def in_corpus(file: str, text: str) -> bool:
    return text in (CORPUS / file).read_text(encoding="utf-8")


@pytest.mark.parametrize(("file", "item", "codes", "match"), CORPUS_ITEMS)
def test_a_corpus_item_maps_where_a_careful_reader_puts_it(taxonomy, file, item, codes, match):
    assert in_corpus(file, item)

    mapping = taxonomy.map_item(item)

    assert (mapping.category_codes, mapping.match) == (codes, match)


@pytest.mark.parametrize(("file", "item", "code"), TRAPS)
def test_a_trap_never_maps_to_the_phone_number(taxonomy, file, item, code):
    assert in_corpus(file, item)

    assert taxonomy.map_item(item).category_codes == (code,)


def test_a_phone_number_the_table_does_name_still_maps(taxonomy):
    # The one 电话号码 of the corpus: the Chromium row of 06 (labels.toml phone_number = ["google"]).
    assert in_corpus("06-usongame-sdk.md", "电话号码信息")

    assert taxonomy.map_item("电话号码信息").category_codes == ("basic.phone_number",)


def test_an_app_anonymous_id_is_not_a_device_identifier(taxonomy):
    # labels.toml: 荣耀 and 华为推送SDK get only AAID, "not a device identifier".
    mapping = taxonomy.map_item("AAID（应用匿名标识）")

    assert mapping.category_codes == ("device.app_instance_id",)


def test_an_unknown_android_permission_is_flagged_as_a_permission(taxonomy):
    mapping = taxonomy.map_item("android.permission.READ_CALENDAR")

    assert (mapping.category_codes, mapping.match) == (("permission",), "inferred")


def test_permissions_are_their_own_group_not_personal_data(taxonomy):
    phone_state = taxonomy.categories(["permission.phone_state"])[0]

    assert phone_state.parent.code == "permission"
    assert phone_state.sensitive is False


@pytest.mark.parametrize(
    ("item", "codes"),
    [
        ("当前WiFi接入的状态以及WLAN热点的信息", ("device.network",)),
        ("手机SD卡中的信息及外部存储卡中的信息", ("device.storage",)),
    ],
)
def test_an_item_made_of_known_items_and_filler_words_is_not_a_guess(taxonomy, item, codes):
    assert in_corpus("06-usongame-sdk.md", item)

    mapping = taxonomy.map_item(item)

    assert (mapping.category_codes, mapping.match) == (codes, "composite")


@pytest.mark.parametrize(
    ("file", "item", "codes"),
    [
        ("01-jiamai-sdk.md", "应用内设备标识符", ("device.id_permanent",)),
        ("20-xiangpini-sharing.md", "微信支付订单标识", ("financial.orders",)),
    ],
)
def test_an_item_whose_words_contain_a_known_item_is_inferred(taxonomy, file, item, codes):
    assert in_corpus(file, item)

    mapping = taxonomy.map_item(item)

    assert (mapping.category_codes, mapping.match) == (codes, "inferred")


@pytest.mark.parametrize(
    ("file", "item", "codes"),
    [
        ("04-coolapk-privacy.md", "网关取号报错日志等用于改善SDK性能", ("activity.crash_logs",)),
        ("06-usongame-sdk.md", "是否在通话用于提供上报服务", ("permission.phone_state",)),
    ],
)
def test_what_an_item_is_used_for_is_no_part_of_the_item(taxonomy, file, item, codes):
    assert in_corpus(file, item)

    mapping = taxonomy.map_item(item)

    assert (mapping.category_codes, mapping.match) == (codes, "alias")


@pytest.mark.parametrize(
    ("file", "item", "code"),
    [
        ("06-usongame-sdk.md", "您手机当前的服务地信息", "location.coarse"),
        ("19-tmall-global-partners.html", "订单的收货人姓名", "basic.name"),
    ],
)
def test_a_possessive_before_an_item_changes_nothing(taxonomy, file, item, code):
    assert in_corpus(file, item)

    mapping = taxonomy.map_item(item)

    assert (mapping.category_codes, mapping.match) == ((code,), "alias")


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ("设备标识信息", "device.id_permanent"),
        ("Account identifiers", "online_id.account"),
        ("ssid", "device.network"),
    ],
)
def test_english_and_chinese_spellings_share_their_category(taxonomy, item, code):
    assert taxonomy.map_item(item).category_codes == (code,)


# --- suggestions ----------------------------------------------------------------------------------


def test_suggestions_for_a_transaction_item_are_orders_transactions_and_payments(taxonomy):
    suggestions = taxonomy.suggest_categories("交易信息")
    codes = {taxonomy.resolve_category(text) for text in suggestions}

    assert codes == {"financial.transactions", "financial.orders", "financial.payment_account"}
    assert "部门信息" not in suggestions


def test_suggestions_ignore_the_generic_suffix_they_share(taxonomy):
    for text in taxonomy.suggest_categories("火星信息", limit=5):
        assert not text.endswith("信息") or "火星" in text


# --- purposes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "text", "codes"),
    [
        ("01-jiamai-sdk.md", "为用户提供华为渠道支付、华为账号登录", ("payment", "account_login")),
        (
            "04-coolapk-privacy.md",
            "广告投放、广告归因、反作弊、安全",
            ("advertising", "risk_antifraud", "security"),
        ),
        ("05-simpfun-sdk.md", "排查质量问题，帮助APP提升运行质量", ("crash_monitoring",)),
        ("12-bento-subprocessors.md", "Error tracking and exception monitoring", ("crash_monitoring",)),
        ("12-bento-subprocessors.md", "Billing and payment processing", ("payment",)),
        ("16-sage-subprocessors.md", "Virtual meetings", ("messaging",)),
    ],
)
def test_a_purpose_cell_maps_by_its_keywords_in_both_languages(taxonomy, file, text, codes):
    assert in_corpus(file, text)

    mapping = taxonomy.map_purposes(text)

    assert (mapping.codes, mapping.unmapped) == (codes, ())


def test_purpose_prose_is_one_text_never_fragments(taxonomy):
    mapping = taxonomy.map_purposes("提供更安全、高效、准确的域名解析服务")

    assert mapping.unmapped == ("提供更安全、高效、准确的域名解析服务",)


def test_a_purpose_that_mentions_a_phone_number_does_not_make_it_a_purpose_keyword(taxonomy):
    # 王卡 (03): the purpose talks about 手机号; the shared item is only the IP address.
    text = "根据IP识别用户手机号，进而识别用户是否为王卡"
    assert in_corpus("03-qq-sharing.md", text)

    assert infer_items_from_text(text, taxonomy=taxonomy) == []


@pytest.mark.parametrize(
    ("file", "text", "codes"),
    [
        # Shares 音视 / 视频 / 播放 with 音视频播放 (app features), 音视频 with 音视频通话 (messaging).
        ("02-xuexiqiangguo-sdk.md", "音视频文件播放", ["app_features", "messaging"]),
        # 短信 and the head 发送: SMS first; 邮件发送 shares the head. Nothing for 提供 or 服务.
        ("20-xiangpini-sharing.md", "提供短信发送服务", ["sms_otp", "email_delivery"]),
        ("20-xiangpini-sharing.md", "内容安全审核", ["security"]),
        ("20-xiangpini-sharing.md", "驱动业务决策分析", ["analytics"]),
        ("19-tmall-global-partners.html", "清关", []),
        ("14-decisionrules-subprocessors.md", "Intellectual property provider", []),
        # "processor" is what every row of a sub-processor list is, not a payment processor.
        ("13-stakater-subprocessors.md", "Stakater Processor", []),
        # One word ("search") shared in passing with an alias of AI services is not a suggestion.
        ("21-tattou-subprocessors.md", "Studio address search", []),
    ],
)
def test_an_unknown_purpose_is_offered_the_purposes_closest_in_meaning(taxonomy, file, text, codes):
    assert in_corpus(file, text)
    assert taxonomy.map_purposes(text).unmapped == (text,)

    assert taxonomy.suggest_purposes(text) == codes


def test_purpose_suggestions_never_come_from_shared_characters(taxonomy):
    # 提供短信发送服务 shares 服务 with 客户服务 and 支付服务, 信 with 信用评估: none of them is offered.
    suggested = taxonomy.suggest_purposes("提供短信发送服务", limit=10)

    assert not {"customer_service", "payment", "credit_assessment"} & set(suggested)


def test_purpose_suggestions_are_named_in_the_users_language(taxonomy):
    from django.utils import translation

    with translation.override("en"):
        assert taxonomy.purpose_name("sms_otp") == "SMS & OTP"
    with translation.override("zh-hans"):
        assert taxonomy.purpose_name("sms_otp") == "短信通知与验证码"


# --- items named only in the purpose or scenario --------------------------------------------------


def test_a_scenario_names_face_data_by_the_act(taxonomy):
    items = infer_items_from_text("支持刷脸登录", taxonomy=taxonomy)

    assert [(item.text, item.category_codes, item.match) for item in items] == [
        ("刷脸", ("biometric.face",), "inferred")
    ]


def test_a_corpus_purpose_with_face_recognition_infers_face_data(taxonomy):
    text = "支付宝支付，支付宝人脸识别"
    assert in_corpus("02-xuexiqiangguo-sdk.md", text)

    items = infer_items_from_text(text, taxonomy=taxonomy)

    assert [item.category_codes for item in items] == [("biometric.face",)]


@pytest.mark.parametrize(
    ("file", "item"),
    [
        # a store-region code is no location, and the taxonomy has no place for it: flagged for a person
        ("23-xiang-cross-border.html", "Apple Music storefront 标识"),
        ("23-xiang-cross-border.html", "查询参数"),
    ],
)
def test_an_item_the_taxonomy_has_no_place_for_stays_unmapped(taxonomy, file, item):
    assert in_corpus(file, item)

    assert taxonomy.map_item(item).unmapped


def test_a_one_character_item_borrows_the_stem_of_the_item_before_it(taxonomy):
    assert in_corpus("06-usongame-sdk.md", "设备宽、高")

    mappings = taxonomy.map_items(["手机型号", "设备宽", "高", "IMEI信息"])

    assert [(mapping.text, mapping.category_codes) for mapping in mappings[1:3]] == [
        ("设备宽", ("device.hardware_settings",)),
        ("高", ("device.hardware_settings",)),
    ]
    # alone, or after an item whose stem makes no known item, it names nothing
    assert taxonomy.map_items(["高"])[0].unmapped
    assert taxonomy.map_items(["姓名", "高"])[1].unmapped
