-- Issue 18: an audit log of every change a person makes (who, when, what, from where), logins and failed
-- logins included. Rows name what they changed in text, with no foreign keys: they stay when it is deleted.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,                    -- the account's name, "API token", or the name a login tried
    address TEXT NOT NULL,                  -- where the request came from (behind a local proxy: the client's)
    action TEXT NOT NULL,                   -- METHOD route, e.g. "POST /incidents/{incident_id}/time"
    target TEXT NOT NULL,                   -- the route's values, e.g. "incident_id=7"
    status INTEGER NOT NULL,                -- the answer (a refused form still answers 303: see its detail)
    detail TEXT NOT NULL                    -- the fields sent, secrets left out
) STRICT;

CREATE INDEX audit_log_by_time ON audit_log (at);
