"""Invoice CSV: a generic layout that reads back into the same totals, and QuickBooks Online / Xero imports.

The QuickBooks Online columns are the ones its invoice import maps automatically (InvoiceNo, Customer,
InvoiceDate, DueDate, ..., ItemAmount); the Xero columns are its sales invoice import template, in order.
Both take one row per line, the invoice number repeated on each. All three are written by
`shared.spreadsheet.write_csv`, which neutralises formula cells and keeps one line per cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation

from collector.billing.model import Invoice, InvoiceLine, Totals
from shared.spreadsheet import write_csv

GENERIC_HEADER = (
    "client",
    "month",
    "currency",
    "kind",
    "description",
    "quantity",
    "unit_price",
    "amount",
    "ref",
)
QBO_HEADER = (
    "InvoiceNo",
    "Customer",
    "InvoiceDate",
    "DueDate",
    "Memo",
    "Item(Product/Service)",
    "ItemDescription",
    "ItemQuantity",
    "ItemRate",
    "ItemAmount",
)
XERO_HEADER = (
    "*ContactName",
    "EmailAddress",
    "POAddressLine1",
    "POAddressLine2",
    "POAddressLine3",
    "POAddressLine4",
    "POCity",
    "PORegion",
    "POPostalCode",
    "POCountry",
    "*InvoiceNumber",
    "Reference",
    "*InvoiceDate",
    "*DueDate",
    "InventoryItemCode",
    "*Description",
    "*Quantity",
    "*UnitAmount",
    "Discount",
    "*AccountCode",
    "*TaxType",
    "TrackingName1",
    "TrackingOption1",
    "TrackingName2",
    "TrackingOption2",
    "Currency",
    "BrandingTheme",
)
# The product/service each kind of line is booked as in the accounting package.
ITEM_NAMES = {
    "contract": "Managed service",
    "onboarding": "Onboarding",
    "fee": "Project work",
    "time": "Labour",
    "parts": "Hardware",
}


def _number(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros beyond what it needs (12, 0.5, 22.50 stays 22.50)."""
    return f"{value:f}"


def _quantity_and_price(line: InvoiceLine) -> tuple[str, str]:
    """Quantity and unit price whose product is exactly the line amount, as both imports recompute it.

    A prorated month (10/31) or a 10-minute increment has no exact quantity; such a line goes out as
    1 x amount, its description still saying what was charged.
    """
    if line.quantity * line.unit_price == line.amount:
        return _number(line.quantity.normalize()), _number(line.unit_price)
    return "1", _number(line.amount)


def generic_csv(invoice: Invoice) -> str:
    """One row per line, then `tax` (its rate as the quantity) and `total` rows, in the invoice's currency."""
    head = (str(invoice.client), f"{invoice.month:%Y-%m}", invoice.currency)
    totals = invoice.totals()
    rows = [
        (
            *head,
            line.kind,
            line.description,
            _number(line.quantity),
            _number(line.unit_price),
            _number(line.amount),
            line.ref,
        )
        for line in invoice.lines
    ]
    rows.append((*head, "tax", invoice.tax.text, _number(invoice.tax.charged.normalize()), "",
                 _number(totals.tax), ""))
    rows.append((*head, "total", "Total", "", "", _number(totals.total), ""))
    return write_csv(GENERIC_HEADER, rows)


def read_generic_csv(text: str) -> Totals:
    """The totals of a generic CSV, checking that its lines and tax add up to its `total` row."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != GENERIC_HEADER:
        raise ValueError(f"not a generic invoice CSV: header {reader.fieldnames}")
    sums = {kind: Decimal("0.00") for kind in ITEM_NAMES}
    currencies, stated, tax = set(), None, Decimal("0.00")
    for row in reader:
        currencies.add(row["currency"])
        try:
            amount = Decimal(row["amount"])
        except InvalidOperation:
            raise ValueError(f"line {reader.line_num}: amount {row['amount']!r} is not a number") from None
        if row["kind"] == "total":
            stated = amount
        elif row["kind"] == "tax":
            tax = amount
        elif row["kind"] in sums:
            sums[row["kind"]] += amount
        else:
            raise ValueError(f"line {reader.line_num}: unknown kind {row['kind']!r}")
    if len(currencies) != 1 or stated is None:
        raise ValueError("an invoice CSV has one currency and a total row")
    subtotal = sum(sums.values(), Decimal("0.00"))
    if stated != subtotal + tax:
        raise ValueError(f"the lines add up to {subtotal} and tax {tax}, the total row says {stated}")
    return Totals(currency=currencies.pop(), subtotal=subtotal, tax=tax, total=stated, **sums)


def qbo_csv(
    invoice: Invoice, *, customer: str, number: str, issued: date, due: date, date_format: str = "%d/%m/%Y"
) -> str:
    """The invoice in QuickBooks Online's invoice import layout (pick the same date format when importing)."""
    memo = f"{customer}, {invoice.month:%B %Y}"
    rows = [
        (
            number,
            customer,
            f"{issued:{date_format}}",
            f"{due:{date_format}}",
            memo,
            ITEM_NAMES[line.kind],
            line.description,
            *_quantity_and_price(line),
            _number(line.amount),
        )
        for line in invoice.lines
    ]
    return write_csv(QBO_HEADER, rows)


def xero_csv(
    invoice: Invoice,
    *,
    customer: str,
    number: str,
    issued: date,
    due: date,
    account_code: str,
    tax_type: str,
    email: str | None = None,
    address: Sequence[str] = (),
    date_format: str = "%d/%m/%Y",
) -> str:
    """The invoice in Xero's sales invoice import template; `account_code` and `tax_type` as named in Xero,
    the contact's e-mail and postal address (lines) from the client's record.

    Xero computes the tax itself from the tax type, so the lines go out without tax.
    """
    # Xero has four address lines: a longer address keeps its first three and joins the rest in the fourth.
    lines = [*address[:3], ", ".join(address[3:])] if len(address) > 4 else list(address)
    contact = {"EmailAddress": email or "", **{f"POAddressLine{n}": text for n, text in enumerate(lines, start=1)}}
    rows = []
    for line in invoice.lines:
        row = dict.fromkeys(XERO_HEADER, "")
        quantity, price = _quantity_and_price(line)
        row.update(
            {
                **contact,
                "*ContactName": customer,
                "*InvoiceNumber": number,
                "Reference": f"{invoice.month:%Y-%m}",
                "*InvoiceDate": f"{issued:{date_format}}",
                "*DueDate": f"{due:{date_format}}",
                "*Description": line.description,
                "*Quantity": quantity,
                "*UnitAmount": price,
                "*AccountCode": account_code,
                "*TaxType": tax_type,
                "Currency": invoice.currency,
            }
        )
        rows.append(list(row.values()))
    return write_csv(XERO_HEADER, rows)
