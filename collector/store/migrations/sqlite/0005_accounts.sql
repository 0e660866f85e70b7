-- Technician accounts for the web dashboard and their browser sessions.

CREATE TABLE technicians (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,            -- argon2id, in the PHC string format argon2-cffi writes
    created_at TEXT NOT NULL
) STRICT;

-- Only the SHA-256 of the session cookie is kept, so a leaked database opens no browser session.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    technician_id INTEGER NOT NULL REFERENCES technicians (id),
    csrf_token TEXT NOT NULL,               -- sent back in every form and in the JS POSTs' X-CSRF-Token
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX web_sessions_by_technician ON web_sessions (technician_id);
