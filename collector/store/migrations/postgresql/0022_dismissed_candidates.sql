-- Issue 22 (reachability): discovered candidates ("not monitored yet") the technician dismissed, so they are
-- not offered again. By hardware address per site: a device that moves to another address stays dismissed.
-- `address`: where it was seen when dismissed, for the record.

CREATE TABLE dismissed_candidates (
    site_id BIGINT NOT NULL REFERENCES sites (id),
    mac TEXT NOT NULL,
    address TEXT NOT NULL,
    dismissed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, mac)
);
