-- Issue 20: clients and sites as records of their own. Archived ones leave lists and billing (their history
-- stays); a demo client (the `make run` machine) is never billed; contacts, one of them for billing/reports.
ALTER TABLE clients ADD COLUMN archived_at TEXT;                -- NULL: active
ALTER TABLE clients ADD COLUMN demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1));
ALTER TABLE clients ADD COLUMN billing_email TEXT;
ALTER TABLE clients ADD COLUMN billing_address TEXT;            -- lines separated by newlines
ALTER TABLE clients ADD COLUMN notes TEXT NOT NULL DEFAULT '';

ALTER TABLE sites ADD COLUMN archived_at TEXT;                  -- NULL: active

CREATE TABLE client_contacts (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    role TEXT NOT NULL DEFAULT '',
    billing INTEGER NOT NULL DEFAULT 0 CHECK (billing IN (0, 1)),  -- the one that gets invoices and reports
    UNIQUE (client_id, name)
) STRICT;

-- At most one billing contact per client.
CREATE UNIQUE INDEX client_contacts_one_billing ON client_contacts (client_id) WHERE billing = 1;
