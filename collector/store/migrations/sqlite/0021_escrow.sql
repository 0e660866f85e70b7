-- Issue 22 (encryption escrow): recovery passwords escrowed only where a technician turned escrow on for the
-- client, sealed on the device to the collector's escrow key (never opened on ingest). escrow_policy: the
-- client's switch, who turned it on or off and when; `round` grows at each turn-on and purge, so devices send
-- their keys again. escrowed_keys: one sealed password per device, volume and protector; turning escrow off
-- keeps them until a technician purges them.

CREATE TABLE escrow_policy (
    client_id INTEGER PRIMARY KEY REFERENCES clients (id),
    enabled INTEGER NOT NULL DEFAULT 0,
    round INTEGER NOT NULL DEFAULT 0,
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL
) STRICT;

CREATE TABLE escrowed_keys (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id),
    volume TEXT NOT NULL,
    protector_id TEXT NOT NULL,
    sealed TEXT NOT NULL,
    escrowed_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, volume, protector_id)
) STRICT;
