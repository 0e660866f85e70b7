"""CSV cells safe to open in a spreadsheet: formulas neutralised, one line per cell, numbers left alone."""

from __future__ import annotations

import csv
import io

import pytest

from shared.spreadsheet import safe_cell, write_csv


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "' =1"),
        ("line one\nline two\r\nthree", "line one line two three"),
        ("\n=1", "' =1"),
        ("-12.50", "-12.50"),
        ("+3", "+3"),
        ("90.00", "90.00"),
        ("Acme = us", "Acme = us"),
        ("", ""),
    ],
)
def test_a_cell_cannot_run_as_a_formula_or_span_lines(raw: str, written: str) -> None:
    assert safe_cell(raw) == written


def test_every_row_of_the_csv_is_one_line_and_reads_back() -> None:
    text = write_csv(("name", "amount"), [("=cmd\nevil", "-5.00"), ("plain", "1")])
    assert text.split("\r\n") == ["name,amount", "'=cmd evil,-5.00", "plain,1", ""]
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=cmd evil", "-5.00"]
