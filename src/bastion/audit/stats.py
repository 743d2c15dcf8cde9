"""Small, dependency-free statistics for timing comparisons.

Response times are skewed and heavy-tailed (a GC pause, a scheduler hiccup),
so means of a few samples mislead. A rank test (Mann-Whitney U) asks whether
one group tends to be slower without assuming a distribution, and a
bootstrap interval of the difference of medians says by how much.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The U statistic of ``a`` and the two-sided p-value.

    Normal approximation with continuity and tie correction (fine from about
    eight samples a group).
    """
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("both groups need samples")
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    tie_term = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = rank
        size = j - i + 1
        tie_term += size**3 - size
        i = j + 1
    r1 = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:
        return u1, 1.0
    z = (abs(u1 - mean) - 0.5) / math.sqrt(variance)
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return u1, min(1.0, p)


def bootstrap_median_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    rng: random.Random,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``median(a) - median(b)``."""
    differences = []
    for _ in range(resamples):
        sa = rng.choices(a, k=len(a))
        sb = rng.choices(b, k=len(b))
        differences.append(statistics.median(sa) - statistics.median(sb))
    differences.sort()
    tail = (1 - confidence) / 2
    low = differences[int(tail * resamples)]
    high = differences[min(resamples - 1, int((1 - tail) * resamples))]
    return low, high


@dataclass(frozen=True)
class Comparison:
    """Two timing samples compared.

    Attributes:
        n_a: Samples in the first group.
        n_b: Samples in the second group.
        median_a_ms: Median of the first group, in ms.
        median_b_ms: Median of the second group, in ms.
        difference_ms: ``median_a - median_b``.
        ci_ms: 95 % bootstrap interval of the difference.
        percent: Difference relative to the faster median.
        p_value: Two-sided Mann-Whitney p-value.
        effect: Rank-biserial correlation (-1..1; 0 = no tendency).
    """

    n_a: int
    n_b: int
    median_a_ms: float
    median_b_ms: float
    difference_ms: float
    ci_ms: tuple[float, float]
    percent: float
    p_value: float
    effect: float

    def differs(self, *, alpha: float, min_ms: float, min_percent: float) -> bool:
        """Significant, and the whole interval beyond both thresholds."""
        low, high = self.ci_ms
        beyond = min(abs(low), abs(high)) if low * high > 0 else 0.0
        return self.p_value < alpha and beyond >= min_ms and abs(self.percent) >= min_percent

    def describe(self) -> str:
        """One line with the figures."""
        return (
            f"median {self.median_a_ms:.1f} ms vs {self.median_b_ms:.1f} ms "
            f"(n={self.n_a}/{self.n_b}): difference {self.difference_ms:+.1f} ms "
            f"[95% CI {self.ci_ms[0]:+.1f} .. {self.ci_ms[1]:+.1f}], {self.percent:+.0f}%, "
            f"Mann-Whitney p={self.p_value:.2g}, rank-biserial r={self.effect:+.2f}"
        )


def compare(a: Sequence[float], b: Sequence[float], *, rng: random.Random) -> Comparison:
    """Compare two samples of durations given in seconds."""
    ms_a = [v * 1000 for v in a]
    ms_b = [v * 1000 for v in b]
    u, p = mann_whitney_u(ms_a, ms_b)
    med_a, med_b = statistics.median(ms_a), statistics.median(ms_b)
    low, high = bootstrap_median_difference(ms_a, ms_b, rng=rng)
    faster = max(min(med_a, med_b), 1e-6)
    return Comparison(
        n_a=len(ms_a),
        n_b=len(ms_b),
        median_a_ms=med_a,
        median_b_ms=med_b,
        difference_ms=med_a - med_b,
        ci_ms=(low, high),
        percent=(med_a - med_b) / faster * 100,
        p_value=p,
        effect=2 * u / (len(ms_a) * len(ms_b)) - 1,
    )
