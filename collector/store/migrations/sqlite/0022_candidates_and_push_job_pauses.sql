-- Issue 22 (reachability): discovered candidates ("not monitored yet") the technician dismissed, so they are
-- not offered again. By hardware address per site: a device that moves to another address stays dismissed.
-- `address`: where it was seen when dismissed, for the record.

CREATE TABLE dismissed_candidates (
    site_id INTEGER NOT NULL REFERENCES sites (id),
    mac TEXT NOT NULL,
    address TEXT NOT NULL,
    dismissed_at TEXT NOT NULL,
    PRIMARY KEY (site_id, mac)
) STRICT;

-- Push jobs paused (not judged: no late or failed alert while the NAS is away) and deleted (its URL refused,
-- hidden from lists; the row and its pings stay, so past value reports keep their verified backups).
ALTER TABLE backup_push_jobs ADD COLUMN paused_at TEXT;
ALTER TABLE backup_push_jobs ADD COLUMN deleted_at TEXT;
