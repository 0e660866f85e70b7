"""Billing worked examples: every amount below is computed by hand in the comment beside it."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from collector.billing.export import (
    QBO_HEADER,
    XERO_HEADER,
    generic_csv,
    qbo_csv,
    read_generic_csv,
    xero_csv,
)
from collector.billing.ledger import BillingSettings
from collector.billing.model import (
    BreakFixRates,
    Charge,
    Contract,
    Device,
    Incident,
    Invoice,
    Part,
    Tax,
    TimeEntry,
)
from collector.billing.pricing import (
    Visit,
    breakfix_equivalent,
    classify,
    in_force,
    monthly_invoice,
    price_visit,
)

D = Decimal
NOV = date(2026, 11, 1)
DEC = date(2026, 12, 1)

# 90.00 an hour, at least 60 minutes, 15-minute increments, x1.5 after hours or in an emergency,
# an on-site call-out billed at least 2 hours.
RATES = BreakFixRates(
    effective_from=date(2020, 1, 1),
    effective_to=None,
    hourly_rate=D("90.00"),
    minimum_minutes=60,
    increment_minutes=15,
    after_hours_multiplier=D("1.5"),
    onsite_minimum_minutes=120,
)
# Acme Tooling: 45.00 per workstation, 150.00 per server a month; remote and on-site covered, after hours not;
# onboarding is 2 months' rate per workstation and 3 per server.
CONTRACT = Contract(
    client="acme",
    effective_from=date(2026, 6, 1),
    effective_to=None,
    start=date(2026, 6, 1),
    term_months=24,
    workstation_rate=D("45.00"),
    server_rate=D("150.00"),
    covers_remote=True,
    covers_onsite=True,
    covers_after_hours=False,
    onboarding_workstation_months=D(2),
    onboarding_server_months=D(3),
)
# 12 workstations, one server and a firewall (network devices are not charged).
DEVICES = (
    *(Device(f"ws-{n:02}", "workstation", date(2026, 6, 1)) for n in range(1, 13)),
    Device("srv-01", "server", date(2026, 6, 1)),
    Device("fw-01", "network", date(2026, 6, 1)),
)
DISK = Incident(
    1, "acme", "Failing disk on ws-03", "hardware", datetime(2026, 11, 3, 8, tzinfo=UTC), alert_id=42
)
PRINTER = Incident(
    2, "acme", "Printer address clash", "network", datetime(2026, 11, 9, 9, tzinfo=UTC), alert_id=57
)
HOUSEKEEPING = Incident(3, "acme", "Agent upgrade", "internal", datetime(2026, 11, 20, 9, tzinfo=UTC))


def at(day: int, hour: int = 10, month: int = 11, year: int = 2026) -> datetime:
    """A moment in the billing month, in UTC."""
    return datetime(year, month, day, hour, tzinfo=UTC)


def acme(
    month: date, contracts=(CONTRACT,), devices=DEVICES, incidents=(DISK, PRINTER), entries=(), parts=()
):
    """Acme Tooling's invoice for the month."""
    return monthly_invoice(
        "acme", month, contracts, [RATES], devices, incidents, entries, parts, currency="EUR"
    )


def alone(entry: TimeEntry, incident: Incident, callout: bool = False) -> Decimal:
    """What one entry costs as a visit of its own at RATES."""
    visit = Visit(incident, entry.start.date(), (entry,), entry.after_hours, callout=callout)
    return price_visit(visit, RATES).amount


def amounts(invoice: Invoice) -> list[tuple[str, Decimal]]:
    """The invoice's lines as (kind, amount)."""
    return [(line.kind, line.amount) for line in invoice.lines]


def test_it_charges_only_contract_fees_when_both_incidents_are_covered() -> None:
    entries = [
        TimeEntry(1, DISK.id, "sam", at(3), 45),  # remote, in hours: covered
        TimeEntry(2, PRINTER.id, "sam", at(9), 70, on_site=True),  # on-site, in hours: covered
    ]
    invoice = acme(NOV, entries=entries)
    # 12 workstations x 45.00 = 540.00; 1 server x 150.00 = 150.00; total 690.00
    assert amounts(invoice) == [("contract", D("540.00")), ("contract", D("150.00"))]
    assert [line.quantity for line in invoice.lines] == [D(12), D(1)]
    assert invoice.totals().total == D("690.00")
    assert invoice.totals().time == D("0.00")


def test_it_bills_an_emergency_call_out_at_the_five_hour_minimum() -> None:
    # The bakery has no contract; its break/fix terms bill an emergency call-out at least 5 hours.
    rates = replace(RATES, emergency_minimum_minutes=300)
    restore = Incident(
        9, "bakery", "Restore two tills after a power cut", "hardware", at(14, 7), emergency=True
    )
    entry = TimeEntry(20, restore.id, "sam", at(14, 8), 70, on_site=True)
    invoice = monthly_invoice("bakery", NOV, [], [rates], [], [restore], [entry], [], currency="EUR")
    # 70 min worked -> 300 min billed = 5 h x 90.00 x 1.5 (emergency) = 675.00
    (line,) = invoice.lines
    assert (line.kind, line.quantity, line.unit_price, line.amount) == (
        "time",
        D("5"),
        D("135.00"),
        D("675.00"),
    )
    assert "70 min worked, 300 min billed" in line.description
    assert invoice.totals().total == D("675.00")


def test_it_applies_the_after_hours_multiplier_once() -> None:
    day = TimeEntry(30, DISK.id, "sam", at(5, 14), 70)
    night = replace(day, start=at(5, 22), after_hours=True)
    # 70 min -> rounded up to 75 min = 1.25 h; by day 1.25 x 90.00 = 112.50, after hours x1.5 = 168.75
    assert alone(day, DISK) == D("112.50")
    assert alone(night, DISK) == D("168.75")
    # An after-hours call-out of an emergency is still x1.5, not x2.25: 1.25 h x 135.00 = 168.75
    assert alone(night, replace(DISK, emergency=True), callout=True) == D("168.75")
    # Acme's contract does not cover after hours, so the night entry is billed on top of 690.00: 858.75
    assert acme(NOV, entries=[day, night]).totals().total == D("858.75")


def test_it_prorates_devices_added_and_removed_mid_month_by_days() -> None:
    devices = (
        *DEVICES[:11],  # ws-01 .. ws-11 all month
        replace(DEVICES[11], active_to=date(2026, 11, 10)),  # ws-12 removed after 10 November
        DEVICES[12],  # srv-01
        Device("ws-13", "workstation", date(2026, 11, 16)),  # added on the 16th
    )
    invoice = acme(NOV, devices=devices)
    # 11 x 45.00 = 495.00; 150.00; ws-12 45.00 x 10/30 = 15.00; ws-13 45.00 x 15/30 = 22.50; total 682.50
    assert amounts(invoice) == [
        ("contract", D("495.00")),
        ("contract", D("150.00")),
        ("contract", D("15.00")),
        ("contract", D("22.50")),
    ]
    assert invoice.lines[3].quantity == D("0.5")
    assert invoice.totals().total == D("682.50")
    # December has 31 days: ws-13 added on 22 December is 10/31 of 45.00 = 14.5161... -> 14.52
    late = acme(DEC, devices=(*DEVICES, Device("ws-13", "workstation", date(2026, 12, 22))))
    assert late.lines[-1].amount == D("14.52")


def test_it_rounds_each_line_half_up_to_cents() -> None:
    contract = replace(CONTRACT, workstation_rate=D("45.15"))
    one_day = (Device("ws-01", "workstation", date(2026, 11, 30)),)
    # 45.15 x 1/30 = 1.505 -> 1.51 (banker's rounding would give 1.50)
    assert acme(NOV, contracts=(contract,), devices=one_day).totals().total == D("1.51")


def test_it_keeps_december_at_the_old_rate_when_the_rate_changes_in_january() -> None:
    january = replace(
        CONTRACT, effective_from=date(2027, 1, 1), workstation_rate=D("49.00"), server_rate=D("160.00")
    )
    december_before = acme(DEC)
    december_after = acme(DEC, contracts=(CONTRACT, january))
    # December: 12 x 45.00 + 150.00 = 690.00, whether or not the January version exists yet
    assert december_after == december_before
    assert december_after.totals().total == D("690.00")
    # January: 12 x 49.00 = 588.00 + 160.00 = 748.00 (no second onboarding fee: the contract started in June)
    assert acme(date(2027, 1, 1), contracts=(CONTRACT, january)).totals().total == D("748.00")
    assert in_force([CONTRACT, january], date(2026, 12, 31)) is CONTRACT
    assert in_force([CONTRACT, january], date(2027, 1, 1)) is january


def test_it_charges_the_onboarding_fee_once_in_the_first_month() -> None:
    new = replace(CONTRACT, effective_from=date(2026, 11, 1), start=date(2026, 11, 1))
    devices = tuple(replace(d, active_from=date(2026, 11, 1)) for d in DEVICES)
    november = acme(NOV, contracts=(new,), devices=devices)
    # onboarding: 12 workstations x (2 x 45.00 = 90.00) = 1080.00; 1 server x (3 x 150.00 = 450.00) = 450.00
    # plus November's fees 690.00: total 2220.00
    assert [(k, a) for k, a in amounts(november) if k == "onboarding"] == [
        ("onboarding", D("1080.00")),
        ("onboarding", D("450.00")),
    ]
    assert november.totals().onboarding == D("1530.00")
    assert november.totals().total == D("2220.00")
    # December: fees only, 690.00
    assert acme(DEC, contracts=(new,), devices=devices).totals().total == D("690.00")


def test_it_lets_the_technician_override_the_classification_with_a_reason() -> None:
    setup = TimeEntry(
        40,
        DISK.id,
        "sam",
        at(12),
        30,
        override="billable",
        override_reason="new-starter laptop set-up is outside the contract",
    )
    misfire = TimeEntry(
        41,
        PRINTER.id,
        "sam",
        at(12, 23),
        90,
        after_hours=True,
        override="non_billable",
        override_reason="woken by our own false alarm",
    )
    assert classify(replace(setup, override=None, override_reason=None), DISK, CONTRACT) == "covered"
    assert classify(setup, DISK, CONTRACT) == "billable"
    assert classify(replace(misfire, override=None, override_reason=None), PRINTER, CONTRACT) == "billable"
    assert classify(misfire, PRINTER, CONTRACT) == "non_billable"
    # 690.00 fees + set-up 30 min raised to the 60-minute minimum = 90.00; the misfire is not charged: 780.00
    invoice = acme(NOV, entries=[setup, misfire])
    assert amounts(invoice)[2:] == [("time", D("90.00"))]
    assert invoice.totals().total == D("780.00")
    with pytest.raises(ValueError, match="reason"):
        TimeEntry(42, DISK.id, "sam", at(12), 30, override="billable")


def test_it_classifies_by_what_the_contract_covers() -> None:
    remote_only = replace(CONTRACT, covers_onsite=False)
    entry = TimeEntry(50, DISK.id, "sam", at(6), 30)
    assert classify(entry, DISK, remote_only) == "covered"
    assert classify(replace(entry, on_site=True), DISK, remote_only) == "billable"
    assert classify(replace(entry, after_hours=True), DISK, remote_only) == "billable"
    assert (
        classify(replace(entry, after_hours=True), DISK, replace(remote_only, covers_after_hours=True))
        == "covered"
    )
    assert classify(entry, DISK, None) == "billable"
    assert classify(replace(entry, incident_id=HOUSEKEEPING.id), HOUSEKEEPING, remote_only) == "non_billable"


def test_it_bills_covered_time_beyond_the_included_hours() -> None:
    capped = replace(CONTRACT, included_hours=D(2))
    entries = [TimeEntry(60, DISK.id, "sam", at(3), 90), TimeEntry(61, PRINTER.id, "sam", at(9), 60)]
    invoice = acme(NOV, contracts=(capped,), entries=entries)
    # 2 h included: 90 min + the first 30 of 60; the other 30 min at 90.00 an hour = 45.00. No minimum:
    # the contract already pays for the technician's coming.
    assert amounts(invoice)[2:] == [("time", D("45.00"))]
    assert invoice.lines[2].description.endswith("beyond included hours")


def test_it_prices_the_break_fix_equivalent_with_the_same_function() -> None:
    entries = [
        TimeEntry(70, DISK.id, "sam", at(3), 45),  # 45 -> 60 min x 90.00 = 90.00
        TimeEntry(71, PRINTER.id, "sam", at(9), 70, on_site=True),  # 70 -> 120 min call-out = 180.00
        TimeEntry(72, DISK.id, "sam", at(4, 22), 30, after_hours=True),  # 30 -> 60 min x 135.00 = 135.00
        TimeEntry(73, HOUSEKEEPING.id, "sam", at(20), 20),  # internal: not charged even at break/fix
    ]
    incidents = [DISK, PRINTER, HOUSEKEEPING]
    by_id = {i.id: i for i in incidents}
    # 90.00 + 180.00 + 135.00 = 405.00
    assert breakfix_equivalent(incidents, entries, [RATES]) == D("405.00")
    assert breakfix_equivalent(incidents, entries, [RATES]) == sum(
        alone(e, by_id[e.incident_id]) for e in entries[:3]
    )
    # The same work for a client without a contract is invoiced at exactly that figure.
    no_contract = monthly_invoice("acme", NOV, [], [RATES], [], incidents, entries, [], currency="EUR")
    assert no_contract.totals().time == D("405.00")


def _full_invoice() -> Invoice:
    """A first month with every kind of line: fees (one at 10/31 of a month), onboarding, time and a part."""
    new = replace(CONTRACT, effective_from=date(2026, 12, 1), start=date(2026, 12, 1))
    devices = (
        *(replace(d, active_from=date(2026, 12, 1)) for d in DEVICES),
        Device("ws-13", "workstation", date(2026, 12, 22)),
    )
    setup = TimeEntry(80, DISK.id, "sam", at(12, month=12), 50, after_hours=True)
    ssd = Part(1, DISK.id, date(2026, 12, 12), "Samsung 870 EVO 1TB SSD", cost=D("84.50"), price=D("119.00"))
    return acme(
        DEC,
        contracts=(new,),
        devices=devices,
        incidents=(replace(DISK, opened_at=at(12, month=12)),),
        entries=[setup],
        parts=[ssd],
    )


def test_it_reads_the_generic_csv_back_into_the_same_totals() -> None:
    invoice = _full_invoice()
    # fees 540.00 + 150.00 + ws-13 14.52 = 704.52; onboarding 13 x 90.00 + 450.00 = 1620.00;
    # time 50 -> 60 min x 135.00 = 135.00; parts 119.00; total 2578.52
    totals = invoice.totals()
    assert (totals.contract, totals.onboarding, totals.time, totals.parts, totals.total) == (
        D("704.52"),
        D("1620.00"),
        D("135.00"),
        D("119.00"),
        D("2578.52"),
    )
    text = generic_csv(invoice)
    assert read_generic_csv(text) == totals
    with pytest.raises(ValueError, match="add up"):
        read_generic_csv(text.replace("119.00,part:1", "191.00,part:1"))


def _rows(text: str) -> list[dict[str, str]]:
    """A CSV's rows by column name."""
    return list(csv.DictReader(io.StringIO(text)))


def test_it_writes_invoices_that_quickbooks_and_xero_import_to_the_same_total() -> None:
    invoice = _full_invoice()
    header = {
        "customer": "Acme Tooling",
        "number": "INV-0042",
        "issued": date(2027, 1, 1),
        "due": date(2027, 1, 15),
    }
    qbo = qbo_csv(invoice, **header)
    assert qbo.splitlines()[0] == ",".join(QBO_HEADER)
    qbo_rows = _rows(qbo)
    assert {r["InvoiceNo"] for r in qbo_rows} == {"INV-0042"}
    assert qbo_rows[0]["InvoiceDate"] == "01/01/2027"
    assert all(D(r["ItemQuantity"]) * D(r["ItemRate"]) == D(r["ItemAmount"]) for r in qbo_rows)
    assert sum(D(r["ItemAmount"]) for r in qbo_rows) == D("2578.52")

    xero = xero_csv(invoice, **header, account_code="200", tax_type="Tax Exempt")
    assert xero.splitlines()[0] == ",".join(XERO_HEADER)
    xero_rows = _rows(xero)
    assert len(xero_rows) == len(invoice.lines)
    assert {r["Currency"] for r in xero_rows} == {"EUR"}
    # Xero computes each line as quantity x unit amount; the prorated 14.52 goes out as 1 x 14.52.
    assert sum(D(r["*Quantity"]) * D(r["*UnitAmount"]) for r in xero_rows) == D("2578.52")


def test_it_refuses_float_money_and_ambiguous_versions() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        replace(RATES, hourly_rate=90.0)
    with pytest.raises(ValueError, match="two versions"):
        in_force([CONTRACT, replace(CONTRACT, workstation_rate=D("50.00"))], date(2026, 11, 1))


BAKERY_RATES = replace(RATES, emergency_minimum_minutes=300)
POWER_CUT = Incident(9, "bakery", "Tills down after a power cut", "hardware", at(14, 7), emergency=True)
PRINTER_JAM = Incident(10, "bakery", "Receipt printer jams", "hardware", at(16, 9))
CAPPED = replace(CONTRACT, included_hours=D(2))
ONE_YEAR = replace(CONTRACT, effective_from=date(2026, 11, 1), start=date(2026, 11, 1), term_months=12)


@pytest.mark.parametrize(
    ("contracts", "incidents", "entries", "expected"),
    [
        pytest.param(
            (),
            (POWER_CUT,),
            [TimeEntry(1, 9, "sam", at(14, 8), 70, on_site=True), TimeEntry(2, 9, "sam", at(16, 10), 40)],
            # Saturday call-out: 70 min worked -> the agreed 300 min, x1.5: 5 h x 135.00 = 675.00.
            # Monday follow-up on the same incident: an ordinary visit, 40 -> 60 min x 90.00 = 90.00.
            [("Tills down after a power cut, 14 Nov 2026", D("675.00")),
             ("Tills down after a power cut, 16 Nov 2026", D("90.00"))],
            id="emergency call-out at its 5-hour minimum, follow-up at normal rates",
        ),
        pytest.param(
            (),
            (PRINTER_JAM,),
            [TimeEntry(3, 10, "sam", at(16, 9), 2), TimeEntry(4, 10, "sam", at(16, 11), 5),
             TimeEntry(5, 10, "sam", at(17, 9), 20)],
            # One visit on the 16th: 2 + 5 = 7 min -> one 60-minute minimum = 90.00 (not 2 x 90.00).
            # Another visit on the 17th: 20 -> 60 min = 90.00.
            [("Receipt printer jams, 16 Nov 2026, 2 time entries, 7 min worked, 60 min billed", D("90.00")),
             ("Receipt printer jams, 17 Nov 2026, 20 min worked, 60 min billed", D("90.00"))],
            id="two short entries are one visit, a visit on another day its own",
        ),
        pytest.param(
            (),
            (PRINTER_JAM,),
            [TimeEntry(6, 10, "sam", at(16, 9), 70), TimeEntry(7, 10, "sam", at(16, 21), 20, after_hours=True)],
            # The day's work: 70 -> 75 min x 90.00 = 112.50; the evening: 20 -> 60 min x 135.00 = 135.00.
            [("Receipt printer jams, 16 Nov 2026, 70 min worked, 75 min billed", D("112.50")),
             ("Receipt printer jams, 16 Nov 2026, 20 min worked, 60 min billed, after hours, x1.5", D("135.00"))],
            id="after-hours work the same day is a visit of its own",
        ),
        pytest.param(
            (CAPPED,),
            (DISK, PRINTER),
            [TimeEntry(8, 1, "sam", at(3), 90), TimeEntry(9, 2, "sam", at(9), 45),
             TimeEntry(10, 2, "sam", at(9, 14), 20)],
            # 2 h included: 90 min + 30 of the 45 on the 9th; beyond: 15 + 20 = 35 min, one visit,
            # no minimum, rounded up to 45 min: 0.75 h x 90.00 = 67.50. Fees: 540.00 + 150.00.
            [("Workstations under contract, November 2026", D("540.00")),
             ("Servers under contract, November 2026", D("150.00")),
             ("Printer address clash, 9 Nov 2026, 2 time entries, 35 min worked, 45 min billed, "
              "beyond included hours", D("67.50"))],
            id="a contract with 2 included hours bills the overflow, labelled",
        ),
        pytest.param(
            (ONE_YEAR,),
            (DISK,),
            [],
            # First month of a one-year contract: fees 540.00 + 150.00; onboarding 2 months' rate per
            # workstation (12 x 90.00 = 1080.00) and 3 per server (450.00).
            [("Workstations under contract, November 2026", D("540.00")),
             ("Servers under contract, November 2026", D("150.00")),
             ("Onboarding, workstations: 2 months' rate each", D("1080.00")),
             ("Onboarding, servers: 3 months' rate each", D("450.00"))],
            id="onboarding fee in a one-year contract's first month",
        ),
    ],
)
def test_priced_scenarios_worked_by_hand(contracts, incidents, entries, expected) -> None:
    client = incidents[0].client
    devices = DEVICES if contracts else ()
    invoice = monthly_invoice(client, NOV, contracts, [BAKERY_RATES], devices, incidents, entries, [], currency="EUR")
    got = [(line.description, line.amount) for line in invoice.lines]
    assert [amount for _, amount in got] == [amount for _, amount in expected]
    for (description, _), (start, _) in zip(got, expected, strict=True):
        assert description.startswith(start), description
    assert invoice.totals().total == sum(amount for _, amount in expected)


@pytest.mark.parametrize(
    ("tax", "expected"),
    [
        # 690.00 in fees + 90.00 of billable time = 780.00; 19 % of it = 148.20; total 928.20
        (Tax(D(19)), ("VAT 19%", D("780.00"), D("148.20"), D("928.20"))),
        # A charity's invoice: no tax, and the reason is printed where the tax would be.
        (Tax(D(19), exemption="Charity: exempt from VAT"), ("Charity: exempt from VAT", D("780.00"), D("0.00"),
                                                            D("780.00"))),
        # 7.7 % of 780.00 = 60.06; the tax is rounded once, on the subtotal: total 840.06
        (Tax(D("7.7"), label="MWST"), ("MWST 7.7%", D("780.00"), D("60.06"), D("840.06"))),
    ],
    ids=["taxed at 19 %", "exempt client at 0 %", "a rate with a decimal"],
)
def test_tax_is_charged_once_on_the_subtotal_or_the_exemption_is_named(tax: Tax, expected: tuple) -> None:
    setup = TimeEntry(90, DISK.id, "sam", at(12), 30, override="billable", override_reason="not in the contract")
    invoice = replace(acme(NOV, entries=[setup]), tax=tax)
    totals = invoice.totals()
    assert (invoice.tax.text, totals.subtotal, totals.tax, totals.total) == expected
    text = generic_csv(invoice)
    assert read_generic_csv(text) == totals
    with pytest.raises(ValueError, match="add up"):
        read_generic_csv(text.replace(f",{totals.tax},", ",1.00,"))
    with pytest.raises(ValueError, match="percentage"):
        Tax(D(100))


def test_a_flat_monthly_fee_is_prorated_and_one_off_charges_land_in_their_month() -> None:
    # From 11 November: 20 of 30 days. A flat 300.00 a month for the client, no device rates.
    flat = replace(CONTRACT, effective_from=date(2026, 11, 11), start=date(2026, 11, 11), workstation_rate=D(0),
                   server_rate=D(0), onboarding_workstation_months=D(0), onboarding_server_months=D(0),
                   monthly_fee=D("300.00"))
    migration = Charge(1, "acme", date(2026, 11, 20), "Server migration, fixed price", D("1200.00"))
    later = Charge(2, "acme", date(2026, 12, 2), "New printer set up", D("150.00"))
    other = Charge(3, "bakery", date(2026, 11, 20), "Till set-up", D("99.00"))
    invoice = monthly_invoice("acme", NOV, [flat], [RATES], DEVICES, [], [], [], currency="EUR",
                              charges=[later, migration, other])
    # 300.00 x 20/30 = 200.00; the migration 1200.00; December's charge and the bakery's are not here.
    assert [(line.kind, line.description, line.amount) for line in invoice.lines if line.amount] == [
        ("contract", "Monthly service fee, November 2026, 20/30 days", D("200.00")),
        ("fee", "Server migration, fixed price, 20 Nov 2026", D("1200.00")),
    ]
    assert (invoice.totals().fee, invoice.totals().total) == (D("1200.00"), D("1400.00"))
    december = monthly_invoice("acme", DEC, [flat], [RATES], (), [], [], [], currency="EUR", charges=[later])
    # A whole month: 300.00; the printer 150.00: 450.00
    assert december.totals().total == D("450.00")
    assert read_generic_csv(generic_csv(invoice)) == invoice.totals()


def test_contract_terms_the_business_offers() -> None:
    terms = BillingSettings(minimum_term_months=36, term_with_onboarding_months=12)
    plain = replace(CONTRACT, onboarding_workstation_months=D(0), onboarding_server_months=D(0))
    assert terms.check_term(replace(plain, term_months=36)) is None
    assert terms.check_term(replace(plain, term_months=12)) == (
        "the minimum term is 36 months; 12 months with an onboarding fee")
    assert terms.check_term(replace(CONTRACT, term_months=12)) is None  # CONTRACT charges onboarding
    assert terms.check_term(replace(CONTRACT, term_months=6)) is not None
    assert BillingSettings().check_term(replace(plain, term_months=1)) is None
