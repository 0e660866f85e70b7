-- Issue 22 (reachability): devices without an agent (recorders, cameras, NAS, switches...) declared per site.
-- The site's agents receive them in a signed, versioned document and probe them; `config_version` counts the
-- site's changes, so an agent sees that its copy is old and the collector which copy a report was made from.
-- probe: icmp (echo), tcp (connect to `port`) or http (GET `url`, expecting `expect_status`, and the TLS
-- certificate to last `tls_days` more days when set). hours: local "HH:MM-HH:MM" it is expected to answer;
-- NULL: always.

CREATE TABLE network_devices (
    id INTEGER PRIMARY KEY,
    site_id INTEGER NOT NULL REFERENCES sites (id),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('camera_recorder', 'camera', 'nas', 'switch', 'access_point', 'printer',
                                       'ups', 'router')),
    probe TEXT NOT NULL CHECK (probe IN ('icmp', 'tcp', 'http')),
    port INTEGER,
    url TEXT,
    expect_status INTEGER,
    tls_days INTEGER,
    hours TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (site_id, name)
) STRICT;

ALTER TABLE sites ADD COLUMN config_version INTEGER NOT NULL DEFAULT 0;
