"""Alert and device facts read as words with units, not as raw field names and long floats."""

from __future__ import annotations

import pytest

from collector.web.render import environment, fact_value, label


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("temperature_c", 41, ("Temperature", "41 °C")),
    ("duration_seconds", 1.038348, ("Duration", "1.0 s")),
    ("duration_seconds", 5400, ("Duration", "1.5 h")),
    ("free_bytes", 10 * 1024**3, ("Free", "10.0 GiB")),
    ("free_percent", 9.87654, ("Free", "9.9 %")),
    ("latency_ms", 0.4321, ("Latency", "0.4 ms")),
    ("reallocated_sectors", 24, ("Reallocated sectors", "24")),
    ("ratio", 0.123456789, ("Ratio", "0.1235")),
    ("encrypted", False, ("Encrypted", "no")),
    ("serial", None, ("Serial", "—")),
])
def test_a_fact_shows_its_unit_in_the_value_and_not_in_the_label(
    key: str, value: object, shown: tuple[str, str]
) -> None:
    assert (label(key), fact_value(key, value)) == shown


def test_the_facts_macro_renders_labels_and_values_with_units() -> None:
    template = environment().from_string('{% from "macros.html" import facts %}{{ facts(value) }}')
    html = template.render(value={"temperature_c": 41, "duration_seconds": 1.038348})
    assert "<dt>Temperature</dt><dd>41 °C" in html and "<dt>Duration</dt><dd>1.0 s" in html, html
    assert "Temperature c" not in html and "1.038348" not in html
