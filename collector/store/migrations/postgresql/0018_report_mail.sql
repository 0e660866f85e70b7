-- Issue 20: the time a technician's preparation saved on an incident, and the value report e-mailed on a schedule.

-- What the work would have taken without the preparation (an image backup, monitoring, ...), per incident.
CREATE TABLE time_saved (
    incident_id BIGINT PRIMARY KEY REFERENCES incidents (id),
    minutes_without INTEGER NOT NULL CHECK (minutes_without > 0),
    preparation TEXT NOT NULL
        CHECK (preparation IN ('backup_image', 'monitoring', 'documentation', 'spare_part', 'other')),
    detail TEXT NOT NULL DEFAULT '',        -- what the preparation was, in words (required for 'other')
    recorded_at TIMESTAMPTZ NOT NULL,
    recorded_by TEXT NOT NULL
);

-- A client's opt-in to receive the value report by e-mail, monthly or quarterly on a day of the next month.
CREATE TABLE report_schedules (
    client_id BIGINT PRIMARY KEY REFERENCES clients (id),
    frequency TEXT NOT NULL CHECK (frequency IN ('monthly', 'quarterly')),
    day INTEGER NOT NULL CHECK (day BETWEEN 1 AND 28),
    recipients TEXT NOT NULL,               -- JSON list of e-mail addresses
    channel_id BIGINT REFERENCES channels (id) ON DELETE SET NULL,  -- the mail channel it is sent through
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per client and period: the key makes a report go out once, whichever collector process claims it.
CREATE TABLE report_sends (
    client_id BIGINT NOT NULL REFERENCES clients (id),
    first_day DATE NOT NULL,
    last_day DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL,
    next_try_at TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    recipients TEXT NOT NULL,               -- JSON list, as sent
    error TEXT,
    PRIMARY KEY (client_id, first_day)
);
