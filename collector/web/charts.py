"""A small server-side SVG line chart: time on x, one line per series, colours from the page's stylesheet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 180
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 22
TICKS = 4
MARKED_POINTS = 40
COLOURS = 6


@dataclass(frozen=True)
class Series:
    """A named line: (moment, value) points in time order; a dashed line is a forecast."""

    name: str
    points: Sequence[tuple[datetime, float]]
    dashed: bool = False


def plain(value: float) -> str:
    """A tick label: whole numbers without decimals, others with one."""
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 or abs(value) >= 100 else f"{value:.1f}"


def _span(low: float, high: float) -> tuple[float, float]:
    """A range that is never empty, so a flat line sits in the middle instead of dividing by zero."""
    if high > low:
        return low, high
    pad = abs(low) * 0.1 or 1.0
    return low - pad, high + pad


def _colours(series: Sequence[Series]) -> list[int]:
    """Each series' colour number: a new one per solid line; a forecast keeps its line's colour."""
    numbers: list[int] = []
    for line in series:
        numbers.append(numbers[-1] if line.dashed and numbers else len(set(numbers)))
    return numbers


def line_chart(
    title: str, series: Sequence[Series], fmt: Callable[[float], str] = plain,
    y_floor: float | None = None, y_ceiling: float | None = None,
) -> Markup:
    """A figure with the chart and its legend; a note instead when no series has a point."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return Markup('<figure class="chart"><figcaption>{}</figcaption><p class="muted">No data yet.</p>'
                      "</figure>").format(title)
    moments = [at for s in drawn for at, _ in s.points]
    values = [value for s in drawn for _, value in s.points]
    first, last = min(moments), max(moments)
    if first == last:
        first, last = first - timedelta(hours=1), last + timedelta(hours=1)
    low, high = _span(min([*values, *([y_floor] if y_floor is not None else [])]),
                      max([*values, *([y_ceiling] if y_ceiling is not None else [])]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    seconds = (last - first).total_seconds()

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - first).total_seconds() / seconds

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - low) / (high - low))

    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">']
    for tick in range(TICKS + 1):
        value = low + (high - low) * tick / TICKS
        level = f"{y(value):.1f}"
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{level}" y2="{level}"/>'
                     f'<text class="tick" x="{LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end">'
                     f"{escape(fmt(value))}</text>")
    for at, anchor in ((first, "start"), (last, "end")):
        parts.append(f'<text class="tick" x="{x(at):.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                     f"{at:%Y-%m-%d}</text>")
    colours = _colours(series)
    for line, index in zip(series, colours, strict=True):
        if not line.points:
            continue
        colour = f"s{index % COLOURS}{' dashed' if line.dashed else ''}"
        coords = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in line.points)
        parts.append(f'<polyline class="line {colour}" points="{coords}"/>')
        if len(line.points) <= MARKED_POINTS and not line.dashed:
            parts.extend(f'<circle class="dot {colour}" cx="{x(at):.1f}" cy="{y(value):.1f}" r="2.5">'
                         f"<title>{escape(line.name)} {at:%Y-%m-%d %H:%M}: {escape(fmt(value))}</title>"
                         "</circle>"
                         for at, value in line.points)
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch s{i % COLOURS}{" dashed" if s.dashed else ""}"></span>{escape(s.name)}</li>'
        for s, i in zip(series, colours, strict=True) if s.points
    )
    return Markup(f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{"".join(parts)}'
                  f'<ul class="legend">{legend}</ul></figure>')
