-- Issue 19: an issued invoice is immutable. Its body is the invoice as the client received it (JSON: lines,
-- tax, totals, the business's details), so later changes to time, rates or settings never alter it; to
-- change it, void it (it keeps its number) and issue a new one (the next number).
CREATE TABLE invoices (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    month TEXT NOT NULL,                    -- the billed month's first day
    issued_at TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    due TEXT NOT NULL,
    body TEXT NOT NULL,
    voided_at TEXT,
    voided_by TEXT,
    void_reason TEXT
) STRICT;

-- One live invoice per client and month: a second needs the first voided.
CREATE UNIQUE INDEX invoices_one_live ON invoices (client_id, month) WHERE voided_at IS NULL;
