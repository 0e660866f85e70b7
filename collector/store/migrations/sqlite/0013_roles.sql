-- Two roles (issue 18): the owner sets the collector up (accounts, enrolment tokens, notification channels,
-- billing settings, contracts and rates); a technician works alerts, incidents and time. Accounts made
-- before roles existed could do everything, so they are owners.

ALTER TABLE technicians ADD COLUMN role TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'technician'));
