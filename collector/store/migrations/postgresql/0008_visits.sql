-- Issue 19: minimums apply per visit, and an emergency's call-out visit has an agreed minimum of its own
-- ("you pay 5 hours minimum for an emergency call-out"). 0: none beyond the usual minimums.
ALTER TABLE breakfix_rates ADD COLUMN emergency_minimum_minutes INTEGER NOT NULL DEFAULT 0
    CHECK (emergency_minimum_minutes >= 0);
