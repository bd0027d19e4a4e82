"""Formula injection: every trigger is neutralised, and unneutralise is its exact inverse."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.spreadsheets.safety import FORMULA_TRIGGERS, neutralise, unneutralise

FULL_WIDTH_TRIGGERS = ["\uff1d", "\uff0b", "\uff0d", "\uff20"]  # ＝ ＋ － ＠


@pytest.mark.parametrize("trigger", [*FULL_WIDTH_TRIGGERS, "\n"])
def test_full_width_signs_and_a_leading_line_feed_are_neutralised(trigger):
    text = trigger + 'HYPERLINK("http://evil.example", "click")'

    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("trigger", [*FULL_WIDTH_TRIGGERS, "\n"])
def test_unneutralise_removes_the_quote_before_the_new_triggers(trigger):
    assert unneutralise("'" + trigger + "1") == trigger + "1"


def test_the_new_triggers_inside_the_text_are_left_alone():
    assert neutralise("价格＝10") == "价格＝10"


@given(st.text(alphabet=st.sampled_from([*sorted(FORMULA_TRIGGERS), "'", "a", "中", " "]), max_size=6))
def test_unneutralise_undoes_neutralise_for_text_made_of_triggers_and_quotes(text):
    assert unneutralise(neutralise(text)) == text


@given(st.text())
def test_neutralised_text_never_starts_with_any_trigger(text):
    assert neutralise(text)[:1] not in FORMULA_TRIGGERS
