-- Device classes and business hours (issue 17): what a device is decides what its silence means;
-- and channels a technician can switch off.
-- The agent reports its class; a technician may override it. A client's business hours are NULL until
-- set: the collector's defaults ([collector.business_hours]) apply.

ALTER TABLE agents ADD COLUMN device_class TEXT CHECK (device_class IN ('server', 'workstation', 'laptop'));
ALTER TABLE agents ADD COLUMN device_class_override TEXT
    CHECK (device_class_override IN ('server', 'workstation', 'laptop'));

ALTER TABLE clients ADD COLUMN business_days TEXT;        -- canonical day list: mon,tue,wed,thu,fri
ALTER TABLE clients ADD COLUMN business_start TIME;       -- local time of day
ALTER TABLE clients ADD COLUMN business_end TIME;         -- local time of day
ALTER TABLE clients ADD COLUMN timezone TEXT;             -- IANA zone of the client's business hours

-- A channel the technician switched off for now: nothing is queued for it, nor sent.
ALTER TABLE channels ADD COLUMN disabled_at TIMESTAMPTZ;
