"""The scoring rules (coaching.scoring): weighted percentage, critical failure, threshold bands."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coaching.scoring import Criterion, ScoreError, band_of, evaluate, weighted_percent

SCALE = {"scale_max": 5, "pass_threshold": 70, "good_threshold": 85}


def card(*weights, critical=()):
    return [Criterion(index, weight, index in critical) for index, weight in enumerate(weights)]


def test_weighted_percentage_of_a_worked_example():
    # (2 * 5/5 + 1 * 3/5) / 3 = 0.8666... -> 86.7 %, green from 85
    result = evaluate(card(2, 1), {0: 5, 1: 3}, **SCALE)
    assert result.percent == Decimal("86.7")
    assert result.band == "good" and not result.critical_failed


def test_weights_count():
    heavy_good = evaluate(card(3, 1), {0: 5, 1: 0}, **SCALE)
    light_good = evaluate(card(3, 1), {0: 0, 1: 5}, **SCALE)
    assert heavy_good.percent == Decimal("75.0") and light_good.percent == Decimal("25.0")


def test_a_critical_criterion_scored_zero_fails_the_call_whatever_the_percentage():
    result = evaluate(card(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, critical={9}), {i: 5 if i < 9 else 0 for i in range(10)}, **SCALE)
    assert result.percent == Decimal("90.0")
    assert result.critical_failed and result.band == "fail"


def test_a_critical_criterion_scored_above_zero_does_not_fail():
    result = evaluate(card(1, 1, critical={1}), {0: 5, 1: 1}, **SCALE)
    assert not result.critical_failed and result.percent == Decimal("60.0") and result.band == "fail"


@pytest.mark.parametrize("percent, band", [(0, "fail"), (69.9, "fail"), (70, "pass"), (84.9, "pass"), (85, "good"), (100, "good")])
def test_thresholds_colour_the_result(percent, band):
    assert band_of(Decimal(str(percent)), 70, 85) == band


def test_rounding_is_half_up_to_a_tenth():
    # 1/16 of 100 % = 6.25 -> 6.3 (half up, not to even)
    assert weighted_percent(card(1), {0: 1}, 16) == Decimal("6.3")
    assert weighted_percent(card(1, 2), {0: 1, 1: 0}, 1) == Decimal("33.3")


@pytest.mark.parametrize("scores, code", [
    ({0: 5}, "missing_score"),
    ({0: 5, 1: 6}, "out_of_scale"),
    ({0: 5, 1: -1}, "out_of_scale"),
    ({0: 5, 1: 2.5}, "out_of_scale"),
    ({0: 5, 1: True}, "out_of_scale"),
    ({0: 5, 1: "3"}, "out_of_scale"),
    ({0: 5, 1: 3, 7: 1}, "unknown_criterion"),
])
def test_scores_that_do_not_fit_are_refused_by_name(scores, code):
    with pytest.raises(ScoreError) as raised:
        evaluate(card(1, 1), scores, **SCALE)
    assert raised.value.code == code


def test_a_scorecard_without_criteria_or_with_bad_settings_is_refused():
    with pytest.raises(ScoreError, match="no_criteria"):
        evaluate([], {}, **SCALE)
    with pytest.raises(ScoreError, match="bad_thresholds"):
        evaluate(card(1), {0: 1}, scale_max=5, pass_threshold=90, good_threshold=80)
    with pytest.raises(ScoreError, match="bad_scale"):
        evaluate(card(1), {0: 0}, scale_max=0, pass_threshold=50, good_threshold=80)


scales = st.integers(min_value=1, max_value=100)


@st.composite
def graded(draw):
    scale = draw(scales)
    weights = draw(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=12))
    criteria = card(*weights)
    scores = {c.key: draw(st.integers(min_value=0, max_value=scale)) for c in criteria}
    return criteria, scores, scale


@given(graded())
def test_the_percentage_is_between_0_and_100_with_one_decimal(case):
    criteria, scores, scale = case
    percent = weighted_percent(criteria, scores, scale)
    assert Decimal(0) <= percent <= Decimal(100)
    assert percent == percent.quantize(Decimal("0.1"))


@given(graded())
def test_top_and_bottom_of_the_scale_give_100_and_0(case):
    criteria, _scores, scale = case
    assert weighted_percent(criteria, {c.key: scale for c in criteria}, scale) == Decimal("100.0")
    assert weighted_percent(criteria, {c.key: 0 for c in criteria}, scale) == Decimal("0.0")


@given(graded(), st.data())
def test_a_better_score_never_lowers_the_result(case, data):
    criteria, scores, scale = case
    key = data.draw(st.sampled_from([c.key for c in criteria]))
    if scores[key] == scale:
        return
    better = {**scores, key: scores[key] + 1}
    assert weighted_percent(criteria, better, scale) >= weighted_percent(criteria, scores, scale)


@given(graded(), st.integers(min_value=2, max_value=7))
def test_multiplying_every_weight_changes_nothing(case, factor):
    criteria, scores, scale = case
    scaled = [Criterion(c.key, c.weight * factor, c.critical) for c in criteria]
    assert weighted_percent(scaled, scores, scale) == weighted_percent(criteria, scores, scale)


@given(graded(), st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_the_band_follows_the_thresholds_and_a_critical_zero(case, low, high):
    criteria, scores, scale = case
    pass_threshold, good_threshold = min(low, high), max(low, high)
    criteria = [Criterion(criteria[0].key, criteria[0].weight, True), *criteria[1:]]
    result = evaluate(criteria, scores, scale_max=scale, pass_threshold=pass_threshold, good_threshold=good_threshold)
    assert result.critical_failed == (scores[criteria[0].key] == 0)
    if result.critical_failed or result.percent < pass_threshold:
        assert result.band == "fail"
    elif result.percent < good_threshold:
        assert result.band == "pass"
    else:
        assert result.band == "good"
