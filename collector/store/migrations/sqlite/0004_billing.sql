-- Billing: device classes and contacts, contracts, break/fix rate cards, incidents, time and parts.
-- Money is TEXT holding a decimal string ('45.00'), never REAL: binary floats cannot hold cents exactly.
-- Days (effective dates, a part's day) are ISO dates 'YYYY-MM-DD'; moments are ISO UTC text as elsewhere.

-- What billing needs to know about a device beyond enrolment. A device without a row is a workstation
-- under management from its enrolment day until it is revoked.
CREATE TABLE device_billing (
    agent_id TEXT PRIMARY KEY REFERENCES agents (agent_id),
    device_class TEXT NOT NULL CHECK (device_class IN ('workstation', 'server', 'network')),
    contact TEXT NOT NULL DEFAULT '',       -- who uses it or whom to call about it
    active_from TEXT,                       -- NULL: the day it enrolled
    active_to TEXT                          -- NULL: until revoked (or still managed)
) STRICT;

-- One row per effective-dated version; a rate change is a new row with a later effective_from.
CREATE TABLE contracts (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    effective_from TEXT NOT NULL,
    effective_to TEXT,                      -- last day in force, inclusive; NULL: open-ended
    start TEXT NOT NULL,                    -- the contract's first day (onboarding is charged that month)
    term_months INTEGER NOT NULL CHECK (term_months > 0),
    workstation_rate TEXT NOT NULL,
    server_rate TEXT NOT NULL,
    covers_remote INTEGER NOT NULL,
    covers_onsite INTEGER NOT NULL,
    covers_after_hours INTEGER NOT NULL,
    included_hours TEXT,                    -- NULL: unlimited covered time
    onboarding_workstation_months TEXT NOT NULL,
    onboarding_server_months TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (client_id, effective_from)
) STRICT;

-- Break/fix rate cards: client_id NULL is the card for everyone; a client with cards of its own uses those.
CREATE TABLE breakfix_rates (
    id INTEGER PRIMARY KEY,
    client_id INTEGER REFERENCES clients (id),
    effective_from TEXT NOT NULL,
    effective_to TEXT,
    hourly_rate TEXT NOT NULL,
    minimum_minutes INTEGER NOT NULL CHECK (minimum_minutes >= 0),
    increment_minutes INTEGER NOT NULL CHECK (increment_minutes >= 1),
    after_hours_multiplier TEXT NOT NULL,
    onsite_minimum_minutes INTEGER NOT NULL CHECK (onsite_minimum_minutes >= 0),
    created_at TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX breakfix_rates_one_per_day ON breakfix_rates (coalesce(client_id, 0), effective_from);

CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    emergency INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    alert_id INTEGER REFERENCES alerts (id),    -- the alert that caught it; NULL when opened by hand
    opened_at TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    closed_at TEXT,
    closed_by TEXT,
    resolution TEXT
) STRICT;

CREATE INDEX incidents_by_client ON incidents (client_id, opened_at);

-- Every alert an incident covers (the one that caught it too). An alert belongs to at most one incident,
-- so two technicians opening an incident from the same alert get one incident, decided by the database.
CREATE TABLE incident_alerts (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    alert_id INTEGER NOT NULL UNIQUE REFERENCES alerts (id),
    linked_at TEXT NOT NULL,
    PRIMARY KEY (incident_id, alert_id)
) STRICT;

CREATE TABLE incident_notes (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL
) STRICT;

CREATE INDEX incident_notes_by_incident ON incident_notes (incident_id, id);

-- A running timer has minutes NULL; stopping it fills minutes and stopped_at. An entry added by duration
-- has both from the start.
CREATE TABLE time_entries (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    technician TEXT NOT NULL,
    started_at TEXT NOT NULL,
    stopped_at TEXT,
    minutes INTEGER CHECK (minutes >= 0),
    on_site INTEGER NOT NULL DEFAULT 0,
    after_hours INTEGER NOT NULL DEFAULT 0,
    override TEXT CHECK (override IN ('covered', 'billable', 'non_billable')),
    override_reason TEXT,
    note TEXT NOT NULL DEFAULT '',
    CHECK (override IS NULL OR length(trim(coalesce(override_reason, ''))) > 0)
) STRICT;

CREATE INDEX time_entries_by_incident ON time_entries (incident_id, started_at);
-- One running timer per technician per incident.
CREATE UNIQUE INDEX time_entries_one_running ON time_entries (incident_id, technician) WHERE minutes IS NULL;

CREATE TABLE parts (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    day TEXT NOT NULL,
    description TEXT NOT NULL,
    cost TEXT NOT NULL,
    price TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 1)
) STRICT;

CREATE INDEX parts_by_incident ON parts (incident_id);
