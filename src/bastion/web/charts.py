"""Bar charts drawn on the server as SVG geometry: no script needed to see them.

Values in, coordinates out; the template (``_chart.html``) writes the markup,
so every label goes through the autoescaping of Jinja2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH = 720
HEIGHT = 240
LEFT = 44
RIGHT = 8
TOP = 12
BOTTOM = 28


@dataclass(frozen=True, slots=True)
class Bar:
    """One rectangle of one series."""

    x: float
    y: float
    width: float
    height: float
    series: int
    label: str


@dataclass(frozen=True, slots=True)
class Tick:
    """An axis label at ``position`` (y for values, x for times)."""

    position: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A stacked bar chart, ready to draw.

    Attributes:
        title: What it shows (the SVG's accessible name).
        names: Series names, in stacking order (CSS classes ``s0``, ``s1``...).
        labels: One per bucket (the time it starts).
        totals: Per series, the sum over all buckets.
        values: Per series, one count per bucket (the data table).
    """

    title: str
    names: list[str]
    labels: list[str]
    totals: list[int]
    values: list[list[int]]
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM
    right: float = WIDTH - RIGHT


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten at or above ``value``."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def stacked_bars(
    title: str, names: list[str], labels: list[str], values: list[list[int]], *, every: int = 4
) -> Chart:
    """Lay out ``values[series][bucket]`` as stacked bars.

    Args:
        title: The chart's accessible name.
        names: One per series.
        labels: One per bucket.
        values: Counts, one row per series.
        every: Label every ``every``-th bucket on the time axis.
    """
    count = len(labels)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    stack = [sum(row[i] for row in values) for i in range(count)]
    top = nice_ceiling(max(stack, default=0))
    slot = plot_width / max(count, 1)
    bar_width = max(slot * 0.8, 1.0)
    bars: list[Bar] = []
    for i in range(count):
        base = 0
        for series, row in enumerate(values):
            if row[i] == 0:
                continue
            height = row[i] / top * plot_height
            y = TOP + plot_height - (base + row[i]) / top * plot_height
            bars.append(
                Bar(
                    x=round(LEFT + i * slot + (slot - bar_width) / 2, 2),
                    y=round(y, 2),
                    width=round(bar_width, 2),
                    height=round(height, 2),
                    series=series,
                    label=f"{names[series]}: {row[i]} ({labels[i]})",
                )
            )
            base += row[i]
    y_ticks = [
        Tick(round(TOP + plot_height - fraction * plot_height, 2), str(round(top * fraction)))
        for fraction in (0.0, 0.5, 1.0)
    ]
    x_ticks = [
        Tick(round(LEFT + i * slot + slot / 2, 2), labels[i])
        for i in range(0, count, max(every, 1))
    ]
    return Chart(
        title=title,
        names=names,
        labels=labels,
        totals=[sum(row) for row in values],
        values=values,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )
