"""Billing: contracts, break/fix rates, incidents and time priced into a monthly invoice, and its CSV exports.

Pure code only (no database, HTTP or CLI): `model` holds the frozen records the store keeps, `pricing` turns
them into an `Invoice`, `export` writes and reads CSV. Money is `decimal.Decimal`, each line quantised once to
cents with ROUND_HALF_UP (see `pricing`).
"""
