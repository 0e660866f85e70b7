-- Issue 18: TOTP two-factor for dashboard accounts, recovery codes, sessions a person can list and revoke,
-- and a login throttle every collector process on this database shares.

ALTER TABLE technicians ADD COLUMN totp_secret TEXT;          -- base32; NULL: two-factor is off
ALTER TABLE technicians ADD COLUMN totp_pending TEXT;         -- a secret shown for enrolment, not yet confirmed
ALTER TABLE technicians ADD COLUMN totp_last_step INTEGER;    -- the newest 30 s step a code was accepted for

-- Only each code's SHA-256 is kept; a code is spent once.
CREATE TABLE recovery_codes (
    technician_id INTEGER NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TEXT,
    PRIMARY KEY (technician_id, code_hash)
) STRICT;

-- A password was right and the code is still to come (only the cookie's hash is kept).
CREATE TABLE login_challenges (
    token_hash TEXT PRIMARY KEY,
    technician_id INTEGER NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
) STRICT;

ALTER TABLE web_sessions ADD COLUMN last_used_at TEXT;
ALTER TABLE web_sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE web_sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';

-- Failed logins by account or by address, so every collector process throttles alike.
CREATE TABLE login_failures (
    scope TEXT NOT NULL,                    -- 'account' or 'address'
    subject TEXT NOT NULL,
    failures INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (scope, subject)
) STRICT;

CREATE INDEX login_failures_by_time ON login_failures (last_at);
