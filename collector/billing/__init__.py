"""Billing: contracts, break/fix rates, incidents and time priced into a monthly invoice, and its CSV exports.

`model` holds the frozen records the store keeps, `pricing` turns them into an `Invoice`, `export` writes and
reads CSV, `report` builds and renders the value report: all pure (no database, HTTP or CLI). `ledger` is the
one module that reads the store, handing those records to the pure code. Money is `decimal.Decimal`, each line
quantised once to cents with ROUND_HALF_UP (see `pricing`).
"""
