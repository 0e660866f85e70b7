-- Backup jobs that report by calling a push URL (any script, `curl`), and the calls they made.

-- A push job protects one device: its alerts and its lines in the value report are that device's.
CREATE TABLE backup_push_jobs (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,                -- SHA-256 of the URL's token; the token itself is not kept
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    name TEXT NOT NULL,
    schedule TEXT NOT NULL,                         -- daily, weekly or a five-field cron expression
    timezone TEXT NOT NULL,                         -- IANA zone a cron schedule is read in
    grace_seconds REAL CHECK (grace_seconds >= 0),  -- NULL: the rule's default for the schedule
    created_at TEXT NOT NULL,
    UNIQUE (agent_id, name)
) STRICT;

CREATE TABLE backup_pings (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES backup_push_jobs (id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('start', 'success', 'warning', 'fail')),
    bytes INTEGER CHECK (bytes >= 0),
    log TEXT                                        -- the end of the body the script sent, if any
) STRICT;

CREATE INDEX backup_pings_by_job ON backup_pings (job_id, id);
