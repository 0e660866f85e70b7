"""CSV that is safe to open in a spreadsheet: every CSV fieldpost writes goes through `write_csv`.

Text in an export can come from an agent (a backup job name becomes an alert summary, then an incident title,
then an invoice line), so a cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first,
also after leading spaces) gets a leading `'`, which spreadsheets show as text, and a line break inside a cell
becomes a space, so each record stays one line for importers and `grep`. A plain number such as `-12.50` is
left as it is: it cannot run, and accounting imports need it as a number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
# Said wherever an export is offered (dashboard, CLI --help), so a reader knows why a cell starts with '.
EXPORT_NOTE = (
    "CSV exports are safe to open in a spreadsheet: a cell that would start with =, +, -, @, tab or CR "
    "begins with ' instead (plain numbers excepted), and line breaks inside a cell become spaces."
)


def safe_cell(value: object) -> str:
    """The cell as text: line breaks collapsed to one space, a would-be formula prefixed with `'`."""
    text = _LINE_BREAKS.sub(" ", str(value))
    # A formula after leading spaces (" =1", what a leading CR becomes) still runs in some spreadsheets.
    if text.lstrip(" ").startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text with CRLF line ends (as spreadsheet and accounting imports expect), every cell `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(cell) for cell in header])
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return out.getvalue()
