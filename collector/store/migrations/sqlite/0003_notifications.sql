-- Notification channels, silences, the notification queue and the delivery log.

CREATE TABLE channels (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,                      -- an apprise URL: mailto://, ntfy://, pover://, json://, ...
    min_severity TEXT NOT NULL CHECK (min_severity IN ('warning', 'critical')),
    clients TEXT NOT NULL,                  -- JSON list of client names; empty = every client
    kinds TEXT NOT NULL,                    -- JSON list of rules; empty = every rule
    quiet_start TEXT,                       -- local HH:MM; warnings then wait for the digest
    quiet_end TEXT,
    timezone TEXT NOT NULL,
    digest_at TEXT,                         -- local HH:MM of the daily digest, NULL for none
    group_wait_seconds INTEGER NOT NULL,
    group_interval_seconds INTEGER NOT NULL,
    repeat_interval_seconds INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    last_sent_at TEXT,
    last_digest_on TEXT,
    failures INTEGER NOT NULL DEFAULT 0,    -- failed deliveries in a row
    broken_at TEXT,
    broken_reason TEXT
) STRICT;

CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    matchers TEXT NOT NULL,                 -- JSON: client, site, device, kind, severity (absent = any)
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    cron TEXT,                              -- recurring maintenance window: crontab in `timezone` ...
    duration_seconds INTEGER,               -- ... each firing opens a window this long
    timezone TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expired_at TEXT
) STRICT;

-- One row per alert change per channel. The dispatcher claims rows with a conditional UPDATE, so two
-- collectors on one database never send one twice.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL REFERENCES channels (id),
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    event TEXT NOT NULL,
    created_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dropped', 'failed')),
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_by TEXT,
    sent_at TEXT
) STRICT;

CREATE INDEX notifications_pending ON notifications (state, due_at);
CREATE INDEX notifications_by_alert ON notifications (alert_id, channel_id, created_at);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL REFERENCES channels (id),
    at TEXT NOT NULL,
    ok INTEGER NOT NULL,
    items INTEGER NOT NULL,
    title TEXT NOT NULL,
    error TEXT
) STRICT;
