-- Issue 23: an agent's sequence numbers count within a stream (epoch), a random id its outbox picks when it
-- is created. A lost or damaged outbox starts a new stream at seq 1, so a report is the same report only when
-- (agent, epoch, seq) match. Reports stored before epochs belong to the fixed 'legacy' stream, which is also
-- what an envelope naming no epoch (an older agent) is filed under.

ALTER TABLE observations DROP CONSTRAINT observations_agent_id_seq_fkey;
ALTER TABLE reports ADD COLUMN epoch TEXT NOT NULL DEFAULT 'legacy';
ALTER TABLE reports ALTER COLUMN epoch DROP DEFAULT;
ALTER TABLE reports DROP CONSTRAINT reports_pkey;
ALTER TABLE reports ADD PRIMARY KEY (agent_id, epoch, seq);
ALTER TABLE observations ADD COLUMN epoch TEXT NOT NULL DEFAULT 'legacy';
ALTER TABLE observations ALTER COLUMN epoch DROP DEFAULT;
ALTER TABLE observations ADD FOREIGN KEY (agent_id, epoch, seq) REFERENCES reports (agent_id, epoch, seq);

-- Every stream each device has reported in, from its first report: a new one from a known device is a
-- reset of its outbox, shown on the device.
CREATE TABLE agent_epochs (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    epoch TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    first_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent_id, epoch)
);

INSERT INTO agent_epochs (agent_id, epoch, first_seq, first_at)
SELECT agent_id, 'legacy', MIN(seq), MIN(received_at) FROM reports GROUP BY agent_id;

-- Requests refused because the device's clock was off: counted per device, with the last offset seen.
ALTER TABLE agents ADD COLUMN skew_refusals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN last_skew_at TIMESTAMPTZ;
ALTER TABLE agents ADD COLUMN last_skew_seconds BIGINT;
