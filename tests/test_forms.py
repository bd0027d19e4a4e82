"""The forms: one separator rule for typed category lists, and a notice form that only cleans its input."""

import pytest

from processors.forms import DeletionNoticeForm, split_categories
from tests.builders import make_controller

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "typed",
    [
        "手机号、身份证号",
        "手机号,身份证号",
        "手机号，身份证号",
        "手机号;身份证号",
        "手机号；身份证号",
        "手机号\n身份证号",
        "手机号\r\n身份证号",
        " 手机号 、\n、 身份证号 ；",
    ],
)
def test_every_list_separator_splits_a_typed_list(typed):
    assert split_categories(typed) == ["手机号", "身份证号"]


def test_a_category_named_twice_is_kept_once_in_its_first_place():
    assert split_categories("身份证号、手机号、身份证号") == ["身份证号", "手机号"]


def test_the_notice_form_cleans_the_list_and_computes_no_notice():
    controller = make_controller(code="acme")

    form = DeletionNoticeForm({"categories": "手机号、量子态", "controller": "acme"})

    assert form.is_valid(), form.errors
    # An unknown name is the view's to report: it asks processors.notices, the form does not.
    assert form.cleaned_data == {
        "categories": ["手机号", "量子态"],
        "controller": controller,
        "active_only": False,
    }


def test_a_notice_form_of_separators_only_names_no_category():
    form = DeletionNoticeForm({"categories": "、；\n"})

    assert not form.is_valid()
    assert "categories" in form.errors
