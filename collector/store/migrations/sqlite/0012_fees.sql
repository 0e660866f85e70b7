-- Issue 19: a flat monthly fee per client (not per device) in the contract, and one-off charges (project
-- work, a fixed-price installation) that land on the invoice of the month of their day.
ALTER TABLE contracts ADD COLUMN monthly_fee TEXT NOT NULL DEFAULT '0';

CREATE TABLE one_off_charges (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    day TEXT NOT NULL,
    description TEXT NOT NULL,
    amount TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
) STRICT;

CREATE INDEX one_off_charges_by_client ON one_off_charges (client_id, day);
