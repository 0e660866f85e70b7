"""The server-side SVG line chart: where points land, forecasts, empty charts and escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from collector.web.charts import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, Series, line_chart

DAY = datetime(2026, 11, 23, tzinfo=UTC)


def lines(svg: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """Each polyline's classes and points."""
    return [(classes, [tuple(map(float, p.split(","))) for p in points.split()])  # type: ignore[misc]
            for classes, points in re.findall(r'<polyline class="([^"]+)" points="([^"]+)"/>', svg)]


def test_it_spans_the_plot_from_the_first_moment_to_the_last_and_lowest_to_highest_value() -> None:
    svg = line_chart("Temperature", [Series("sda", [(DAY, 30), (DAY + timedelta(days=1), 35),
                                                    (DAY + timedelta(days=2), 40)])])
    [(classes, points)] = lines(svg)
    assert classes == "line s0"
    assert points == [(LEFT, HEIGHT - BOTTOM), ((LEFT + WIDTH - RIGHT) / 2, (TOP + HEIGHT - BOTTOM) / 2),
                      (WIDTH - RIGHT, TOP)]
    assert svg.count("<circle") == 3 and "<title>sda 2026-11-24 00:00: 35</title>" in svg
    assert ">2026-11-23</text>" in svg and ">2026-11-25</text>" in svg


def test_a_forecast_is_dashed_in_the_colour_of_its_line_and_a_floor_widens_the_range() -> None:
    forecast = [(DAY + timedelta(days=1), 60.0), (DAY + timedelta(days=5), 100.0)]
    svg = line_chart("Fill", [Series("C:", [(DAY, 50), (DAY + timedelta(days=1), 60)]),
                              Series("C: forecast", forecast, dashed=True),
                              Series("D:", [(DAY, 10)])], y_floor=0, y_ceiling=100)
    assert [classes for classes, _ in lines(svg)] == ["line s0", "line s0 dashed", "line s1"]
    [_, _, (_, [(x, y)])] = lines(svg)
    assert (x, y) == (LEFT, round(TOP + (HEIGHT - TOP - BOTTOM) * 0.9, 1)), "10 of 0..100: near the bottom"
    assert '<span class="swatch s0 dashed"></span>C: forecast' in svg


def test_a_chart_without_points_says_so_and_names_are_escaped() -> None:
    assert "No data yet." in line_chart("Backups <all>", [Series("nightly", [])])
    assert "Backups &lt;all&gt;" in line_chart("Backups <all>", [])
    svg = line_chart("x", [Series("<script>alert(1)</script>", [(DAY, 1)])])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
