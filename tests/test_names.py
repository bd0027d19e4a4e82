"""Near-identical company names (processors/names.py): reported for a person, never merged."""

from processors.names import NEAR_NAMES_REPORTED, NearNames, near_duplicate_pairs
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
