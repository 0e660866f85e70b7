-- The collector's first schema. Datetimes are ISO 8601 UTC text with microseconds and a `Z`, so they sort.
-- JSON columns hold text. STRICT makes SQLite refuse a value of the wrong type, as PostgreSQL would.

CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE sites (
    id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients (id),
    name TEXT NOT NULL,
    UNIQUE (client_id, name)
) STRICT;

CREATE TABLE enrolment_tokens (
    token_hash TEXT PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites (id),
    created_at TEXT NOT NULL,
    expires_at TEXT,                                -- NULL: never expires
    uses_left INTEGER CHECK (uses_left >= 0),       -- NULL: unlimited
    revoked_at TEXT
) STRICT;

CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    hostname TEXT NOT NULL,
    site_id INTEGER NOT NULL REFERENCES sites (id),
    enrolled_at TEXT NOT NULL,
    last_seen_at TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    revoked_at TEXT
) STRICT;

CREATE INDEX agents_by_site ON agents (site_id);

-- One row per envelope: the primary key is what makes a resent envelope a no-op.
CREATE TABLE reports (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    seq INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, seq)
) STRICT;

CREATE TABLE observations (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    FOREIGN KEY (agent_id, seq) REFERENCES reports (agent_id, seq)
) STRICT;

CREATE INDEX observations_latest ON observations (agent_id, kind, id DESC);
-- Rules that correlate a site's devices read one kind over a time span.
CREATE INDEX observations_by_kind_time ON observations (kind, collected_at);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    -- NULL for alerts about a whole site (site offline) or the collector itself (a broken channel).
    agent_id TEXT REFERENCES agents (agent_id),
    site_id INTEGER REFERENCES sites (id),
    -- Names as they were when the alert opened, so every alert reads the same way in the feed.
    client TEXT NOT NULL,
    site TEXT NOT NULL,
    hostname TEXT NOT NULL,
    subject TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('warning', 'critical', 'unknown')),
    state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    resolved_at TEXT,
    occurrences INTEGER NOT NULL DEFAULT 1,
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    snoozed_until TEXT,
    -- Hysteresis: consecutive good evaluations, and since when, before an automatic resolve.
    good_streak INTEGER NOT NULL DEFAULT 0,
    good_since TEXT,
    flapping INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The database, not a lock in memory, decides which of two collectors opens the alert.
CREATE UNIQUE INDEX alerts_one_open_per_fingerprint ON alerts (fingerprint) WHERE state = 'open';
CREATE INDEX alerts_by_state ON alerts (state, opened_at);
CREATE INDEX alerts_by_fingerprint ON alerts (fingerprint, resolved_at);
CREATE INDEX alerts_open_by_agent ON alerts (agent_id) WHERE state = 'open';

CREATE TABLE alert_events (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;

CREATE INDEX alert_events_by_alert ON alert_events (alert_id, id);

-- AUTOINCREMENT: an id is never reused, so an SSE client's Last-Event-ID always means what it meant.
CREATE TABLE feed_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL
) STRICT;

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
