-- Issue 23: an agent's sequence numbers count within a stream (epoch), a random id its outbox picks when it
-- is created. A lost or damaged outbox starts a new stream at seq 1, so a report is the same report only when
-- (agent, epoch, seq) match. Reports stored before epochs belong to the fixed 'legacy' stream, which is also
-- what an envelope naming no epoch (an older agent) is filed under.
-- SQLite cannot change a primary key in place: reports and observations are rebuilt (row ids kept).

CREATE TABLE reports_by_epoch (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    epoch TEXT NOT NULL,
    seq INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, epoch, seq)
) STRICT;

INSERT INTO reports_by_epoch (agent_id, epoch, seq, boot_id, sent_at, received_at)
SELECT agent_id, 'legacy', seq, boot_id, sent_at, received_at FROM reports;

CREATE TABLE observations_by_epoch (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL,
    epoch TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    collected_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    FOREIGN KEY (agent_id, epoch, seq) REFERENCES reports_by_epoch (agent_id, epoch, seq)
) STRICT;

INSERT INTO observations_by_epoch (id, agent_id, epoch, seq, kind, collected_at, payload)
SELECT id, agent_id, 'legacy', seq, kind, collected_at, payload FROM observations;

DROP TABLE observations;
DROP TABLE reports;
-- Renaming also renames the foreign key's target in observations_by_epoch.
ALTER TABLE reports_by_epoch RENAME TO reports;
ALTER TABLE observations_by_epoch RENAME TO observations;

CREATE INDEX observations_latest ON observations (agent_id, kind, id DESC);
CREATE INDEX observations_by_kind_time ON observations (kind, collected_at);

-- Every stream each device has reported in, from its first report: a new one from a known device is a
-- reset of its outbox, shown on the device.
CREATE TABLE agent_epochs (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    epoch TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, epoch)
) STRICT;

INSERT INTO agent_epochs (agent_id, epoch, first_seq, first_at)
SELECT agent_id, 'legacy', MIN(seq), MIN(received_at) FROM reports GROUP BY agent_id;

-- Requests refused because the device's clock was off: counted per device, with the last offset seen.
ALTER TABLE agents ADD COLUMN skew_refusals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN last_skew_at TEXT;
ALTER TABLE agents ADD COLUMN last_skew_seconds INTEGER;
