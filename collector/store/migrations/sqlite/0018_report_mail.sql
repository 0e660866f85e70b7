-- Issue 20: the time a technician's preparation saved on an incident, and the value report e-mailed on a schedule.

-- What the work would have taken without the preparation (an image backup, monitoring, ...), per incident.
CREATE TABLE time_saved (
    incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
    minutes_without INTEGER NOT NULL CHECK (minutes_without > 0),
    preparation TEXT NOT NULL
        CHECK (preparation IN ('backup_image', 'monitoring', 'documentation', 'spare_part', 'other')),
    detail TEXT NOT NULL DEFAULT '',        -- what the preparation was, in words (required for 'other')
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
) STRICT;

-- A client's opt-in to receive the value report by e-mail, monthly or quarterly on a day of the next month.
CREATE TABLE report_schedules (
    client_id INTEGER PRIMARY KEY REFERENCES clients (id),
    frequency TEXT NOT NULL CHECK (frequency IN ('monthly', 'quarterly')),
    day INTEGER NOT NULL CHECK (day BETWEEN 1 AND 28),
    recipients TEXT NOT NULL,               -- JSON list of e-mail addresses
    channel_id INTEGER REFERENCES channels (id) ON DELETE SET NULL,  -- the mail channel it is sent through
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- One row per client and period: the key makes a report go out once, whichever collector process claims it.
CREATE TABLE report_sends (
    client_id INTEGER NOT NULL REFERENCES clients (id),
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL,
    claimed_at TEXT NOT NULL,
    next_try_at TEXT,
    sent_at TEXT,
    recipients TEXT NOT NULL,               -- JSON list, as sent
    error TEXT,
    PRIMARY KEY (client_id, first_day)
) STRICT;
