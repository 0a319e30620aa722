"""The two statistical tests the rules use, as pure functions (exact where it is cheap).

- ``two_proportion_z``: one-sided two-proportion z-test with pooled variance, for "is group 1's
  rate above group 2's": z = (p1 − p2) / sqrt(p (1 − p) (1/n1 + 1/n2)), p = (x1 + x2)/(n1 + n2).
  IEEE double arithmetic with only +, −, ×, ÷ and sqrt (all correctly rounded), so the same
  counts give the same z on every platform.
- ``binomial_upper_tail``: exact P(X ≥ k) for X ~ Binomial(n, 1/2), as a fraction of integers.
"""

from __future__ import annotations

import math
from fractions import Fraction


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """z of group 1's rate x1/n1 above group 2's x2/n2; None when undefined (an empty group,
    or every case in both groups decided the same way)."""
    if n1 <= 0 or n2 <= 0 or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return None
    return (x1 / n1 - x2 / n2) / math.sqrt(variance)


def binomial_upper_tail(k: int, n: int) -> Fraction:
    """P(X ≥ k) for X ~ Binomial(n, 1/2), exactly."""
    if n < 0:
        raise ValueError("n must be ≥ 0")
    if k <= 0:
        return Fraction(1)
    if k > n:
        return Fraction(0)
    return Fraction(sum(math.comb(n, i) for i in range(k, n + 1)), 2**n)
