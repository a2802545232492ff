"""How a scorecard turns per-criterion scores into a result: pure, no Django.

- Every criterion is scored on the scorecard's scale, 0 to `scale_max` (integers).
- The result is the weighted percentage: sum(weight * score / scale_max) / sum(weight) * 100,
  computed exactly (fractions) and rounded half up to one decimal, so the same scores give the
  same figure on every database and in every language.
- A critical criterion scored 0 (the bottom of the scale) fails the whole call, whatever the
  percentage: the band is `fail` and `critical_failed` is set.
- The thresholds colour the result: below `pass_threshold` is `fail` (red), from it up to below
  `good_threshold` is `pass` (amber), from `good_threshold` on is `good` (green).
"""

from dataclasses import dataclass
import math
from decimal import Decimal
from fractions import Fraction

BANDS = ("fail", "pass", "good")


class ScoreError(ValueError):
    """Scores that do not fit the scorecard; `code` is stable, `criterion` names the culprit."""

    def __init__(self, code, criterion=None):
        super().__init__(code if criterion is None else f"{code}: {criterion}")
        self.code = code
        self.criterion = criterion


@dataclass(frozen=True)
class Criterion:
    key: object  # whatever identifies the criterion to the caller (its primary key)
    weight: int
    critical: bool = False


@dataclass(frozen=True)
class Result:
    percent: Decimal  # 0.0 to 100.0, one decimal
    critical_failed: bool
    band: str  # one of BANDS


def check_scale(scale_max, pass_threshold, good_threshold):
    if not isinstance(scale_max, int) or scale_max < 1:
        raise ScoreError("bad_scale")
    if not (0 <= pass_threshold <= good_threshold <= 100):
        raise ScoreError("bad_thresholds")


def validate(criteria, scores, scale_max):
    """`scores` ({key: int}) must score every criterion, and only those, within 0..scale_max."""
    if not criteria:
        raise ScoreError("no_criteria")
    keys = {criterion.key for criterion in criteria}
    for key in scores:
        if key not in keys:
            raise ScoreError("unknown_criterion", key)
    for criterion in criteria:
        if criterion.weight < 1:
            raise ScoreError("bad_weight", criterion.key)
        if criterion.key not in scores:
            raise ScoreError("missing_score", criterion.key)
        score = scores[criterion.key]
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= scale_max:
            raise ScoreError("out_of_scale", criterion.key)


def weighted_percent(criteria, scores, scale_max):
    total = sum(criterion.weight for criterion in criteria)
    earned = sum(Fraction(criterion.weight * scores[criterion.key], scale_max) for criterion in criteria)
    tenths = earned / total * 1000  # exact; rounded half up to a whole tenth of a percent below
    return Decimal(math.floor(tenths + Fraction(1, 2))).scaleb(-1)


def band_of(percent, pass_threshold, good_threshold, critical_failed=False):
    if critical_failed or percent < pass_threshold:
        return "fail"
    if percent < good_threshold:
        return "pass"
    return "good"


def evaluate(criteria, scores, *, scale_max, pass_threshold, good_threshold):
    """The Result of `scores` on `criteria` (raises ScoreError for scores that do not fit)."""
    check_scale(scale_max, pass_threshold, good_threshold)
    validate(criteria, scores, scale_max)
    percent = weighted_percent(criteria, scores, scale_max)
    critical_failed = any(criterion.critical and scores[criterion.key] == 0 for criterion in criteria)
    return Result(percent, critical_failed, band_of(percent, pass_threshold, good_threshold, critical_failed))
