"""The red-flag rules' statistical tests, as pure functions."""

from __future__ import annotations

import math
from fractions import Fraction

from projections.red_flags.statistics import binomial_upper_tail, two_proportion_z


def test_binomial_tail_is_exact() -> None:
    assert binomial_upper_tail(8, 8) == Fraction(1, 256)
    assert binomial_upper_tail(6, 8) == Fraction(28 + 8 + 1, 256)
    assert binomial_upper_tail(0, 5) == 1
    assert binomial_upper_tail(6, 5) == 0
    # symmetric: P(X >= k) + P(X >= n - k + 1) = 1 for p = 1/2
    assert binomial_upper_tail(4, 7) + binomial_upper_tail(4, 7) == 1


def test_binomial_tail_thresholds_of_the_default_configuration() -> None:
    # 20 means tests near the line: 18 under is significant at 0.001, 17 is not
    assert binomial_upper_tail(18, 20) <= Fraction(1, 1000) < binomial_upper_tail(17, 20)


def test_two_proportion_z_matches_the_textbook_formula() -> None:
    z = two_proportion_z(6, 6, 4, 9)
    assert z is not None
    pooled = 10 / 15
    expected = (1 - 4 / 9) / math.sqrt(pooled * (1 - pooled) * (1 / 6 + 1 / 9))
    assert math.isclose(z, expected)
    assert 2.2 < z < 2.3


def test_two_proportion_z_is_undefined_without_variance_or_samples() -> None:
    assert two_proportion_z(5, 5, 7, 7) is None  # everyone approved: no variance
    assert two_proportion_z(0, 0, 3, 7) is None
    assert two_proportion_z(3, 2, 1, 5) is None  # impossible counts


def test_two_proportion_z_is_negative_when_the_group_is_below() -> None:
    z = two_proportion_z(1, 10, 9, 10)
    assert z is not None and z < 0
