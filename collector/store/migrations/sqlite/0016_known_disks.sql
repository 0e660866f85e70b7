-- Issue 15: the disks each device had, stored rather than rebuilt from its recent reports, so that a disk
-- missing for longer than the reports the rule looks back on is still known (and a replacement arriving
-- later resolves its alert). One row per disk ever seen, by its serial as compared across paths and buses.
-- `missing`: gone from the newest report; `replaced_by`: the serial of the disk that took its place.

CREATE TABLE known_disks (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    serial_key TEXT NOT NULL,
    serial TEXT NOT NULL,
    model TEXT,
    last_path TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    missing INTEGER NOT NULL DEFAULT 0,
    replaced_by TEXT,
    PRIMARY KEY (agent_id, serial_key)
) STRICT;
