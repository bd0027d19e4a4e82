"""Near-identical company names (processors/names.py): reported for a person, never merged."""

from processors.names import NEAR_NAMES_REPORTED, NearNames, name_core, near_duplicate_pairs, recipient_kind
from processors.text import normalize_key


def test_the_issue_example_is_a_near_duplicate():
    first = normalize_key("天聚地合（苏州）数据股份有限公司")
    second = normalize_key("天聚地合(苏州)科技股份有限公司")

    assert NearNames([first, second]).close_to(first) == [first, second]


def test_different_companies_are_not_near_duplicates():
    names = {1: normalize_key("阿里云计算有限公司"), 2: normalize_key("腾讯云计算（北京）有限责任公司")}

    assert near_duplicate_pairs(names) == []


def test_each_pair_is_reported_once_and_identical_keys_of_one_id_are_not_a_pair():
    names = {
        1: normalize_key("天聚地合（苏州）数据股份有限公司"),
        2: normalize_key("天聚地合(苏州)科技股份有限公司"),
        3: normalize_key("上海寻梦信息技术有限公司"),
    }

    assert near_duplicate_pairs(names) == [(1, 2)]


def test_a_name_like_hundreds_of_others_reports_only_the_closest_few():
    # A register of numbered entities ("…P0001…", "…P0002…") makes every name close to every other.
    keys = [normalize_key(f"基准受托方P{number:04d}科技有限公司") for number in range(400)]

    close = NearNames(keys).close_to(keys[7])

    assert len(close) == NEAR_NAMES_REPORTED  # itself, then the closest others
    assert close[0] == keys[7]


def pairs_of(*names: str) -> set[frozenset[str]]:
    keyed = {number: normalize_key(name) for number, name in enumerate(names)}
    return {frozenset((names[first], names[second])) for first, second in near_duplicate_pairs(keyed)}


def test_a_brand_and_the_legal_name_it_begins_are_a_possible_duplicate():
    assert pairs_of("支付宝", "支付宝（中国）网络技术有限公司") == {
        frozenset(("支付宝", "支付宝（中国）网络技术有限公司"))
    }
    # The place a Chinese legal name begins with is not part of the brand.
    assert pairs_of("百度", "北京百度网讯科技有限公司") == {frozenset(("百度", "北京百度网讯科技有限公司"))}


def test_a_romanised_or_translated_brand_is_paired_through_the_brand_list():
    assert frozenset(("Alipay", "支付宝（中国）网络技术有限公司")) in pairs_of(
        "Alipay", "支付宝（中国）网络技术有限公司"
    )
    assert pairs_of("微信支付", "财付通支付科技有限公司") == {
        frozenset(("微信支付", "财付通支付科技有限公司"))
    }


def test_an_acronym_a_short_form_and_the_legal_name_are_one_company():
    found = pairs_of("AWS", "Amazon Web Services, Inc.", "Amazon Web Services")

    assert found == {
        frozenset(("AWS", "Amazon Web Services, Inc.")),
        frozenset(("AWS", "Amazon Web Services")),
        frozenset(("Amazon Web Services, Inc.", "Amazon Web Services")),
    }


def test_entities_of_one_group_and_look_alike_brands_are_not_paired_by_their_core():
    assert pairs_of("OVH US, LLC", "OVH Groupe SA") == set()
    assert pairs_of("Mailgun Technologies Inc.", "Mailchimp") == set()
    assert (
        pairs_of("腾讯云IM", "腾讯云计算（北京）有限责任公司") == set()
    )  # a product, not the company's name


def test_name_core_drops_legal_forms_and_bracketed_notes_only():
    assert name_core(normalize_key("SCALEWAY S.A.S.")) == "scaleway"
    assert name_core(normalize_key("Slack Technologies, Inc.")) == "slack"
    assert name_core(normalize_key("支付宝（中国）网络技术有限公司")) == "支付宝网络技术"
    assert name_core(normalize_key("Atlassian")) == "atlassian"  # "as" is a legal form only after a comma


def test_a_name_is_a_brand_only_when_the_brand_list_knows_it_and_it_has_no_legal_form():
    assert recipient_kind("支付宝") == "brand"
    assert recipient_kind("微信支付") == "brand"
    assert recipient_kind("AWS") == "brand"
    assert recipient_kind("支付宝（中国）网络技术有限公司") == "organisation"
    assert recipient_kind("Stripe") == "organisation"  # unknown: nothing says it is a brand
    assert recipient_kind("电信终端产业协会移动安全工作委员会") == "organisation"


def test_a_name_with_its_legal_name_in_brackets_is_a_brand():
    assert recipient_kind("某某钱包", qualifier="某某支付科技有限公司") == "brand"


def test_a_product_the_brand_list_names_is_paired_with_the_company_behind_it():
    assert pairs_of("Apple Inc.", "Apple Music") == {frozenset(("Apple Inc.", "Apple Music"))}
    assert recipient_kind("Apple Music") == "brand"


def test_a_company_and_product_name_pairs_with_the_company_by_its_company_side():
    found = pairs_of("Apple Inc.", "Apple Inc. / Apple Music Catalog API", "Google LLC", "Spotify AB")

    assert found == {frozenset(("Apple Inc.", "Apple Inc. / Apple Music Catalog API"))}
    assert pairs_of("Stripe, Inc. / Stripe Billing", "Stripe") == {
        frozenset(("Stripe, Inc. / Stripe Billing", "Stripe"))
    }


def test_and_or_in_a_name_is_no_company_and_product_slash():
    # QQ's 03 table: one kind of recipient, and a list that begins with it; no company side in either
    assert pairs_of("广告主和/或其委托的代理商", "广告主和/或其委托的代理商,第三方广告监测服务商") == set()
