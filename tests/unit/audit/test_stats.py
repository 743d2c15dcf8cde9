"""The rank test and bootstrap interval behind the timing check."""

from __future__ import annotations

import random

import pytest

from bastion.audit.stats import bootstrap_median_difference, compare, mann_whitney_u


def test_mann_whitney_matches_a_worked_example() -> None:
    """U and p for fully separated groups of 8 (exact U = 0, normal-approx p ~ 0.0009)."""
    u, p = mann_whitney_u([1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16])
    assert u == 0
    assert p == pytest.approx(0.00094, abs=0.0002)


def test_identical_groups_are_not_significant() -> None:
    """All values tied: no evidence of a difference."""
    _, p = mann_whitney_u([5.0] * 10, [5.0] * 10)
    assert p == 1.0


def test_bootstrap_interval_covers_the_shift() -> None:
    """A shift of 50 lies inside the interval; 0 does not."""
    rng = random.Random(1)
    a = [100 + rng.gauss(0, 5) for _ in range(30)]
    b = [50 + rng.gauss(0, 5) for _ in range(30)]
    low, high = bootstrap_median_difference(a, b, rng=random.Random(2))
    assert low < 50 < high
    assert low > 0


def test_compare_reports_effect_and_thresholds() -> None:
    """A clear 40 ms gap differs; the same samples against themselves do not."""
    rng = random.Random(3)
    fast = [0.002 + rng.random() * 0.001 for _ in range(12)]
    slow = [0.042 + rng.random() * 0.001 for _ in range(12)]
    result = compare(slow, fast, rng=random.Random(4))
    assert result.differs(alpha=0.01, min_ms=5, min_percent=10)
    assert result.effect == pytest.approx(1.0)
    assert "Mann-Whitney p=" in result.describe()
    same = compare(fast, list(reversed(fast)), rng=random.Random(5))
    assert not same.differs(alpha=0.01, min_ms=5, min_percent=10)
