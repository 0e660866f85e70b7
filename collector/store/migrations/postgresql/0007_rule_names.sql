-- Alert rules are named <signal> or <signal>.<aspect> (issue 24), so that a silence or a channel filter
-- naming a signal covers every rule of it. The old names are renamed wherever they were stored, and every
-- alert's fingerprint is recomputed in its new plain-text form, rule|owner|subject (collector.rules.fingerprint),
-- so that the next evaluation finds the alert it belongs to. JSON objects are rebuilt key by key, so their
-- keys stay in the order they were written.

CREATE TEMPORARY TABLE rule_renames (old TEXT PRIMARY KEY, new TEXT NOT NULL);

INSERT INTO rule_renames (old, new) VALUES
    ('device_offline', 'heartbeat.offline'),
    ('site_offline', 'heartbeat.site_offline'),
    ('security_updates', 'updates.security'),
    ('package_index', 'updates.package_index'),
    ('check_failed', 'unknown');

UPDATE alerts SET rule = (SELECT r.new FROM rule_renames r WHERE r.old = alerts.rule)
WHERE rule IN (SELECT old FROM rule_renames);

-- The owner as the code names it: the device, else the site, else the collector itself.
UPDATE alerts SET fingerprint = rule || '|' || COALESCE(agent_id, 'site:' || site_id, 'collector') || '|' || subject;

UPDATE alert_events SET actor = (SELECT 'rule:' || r.new FROM rule_renames r WHERE 'rule:' || r.old = alert_events.actor)
WHERE actor IN (SELECT 'rule:' || old FROM rule_renames);

UPDATE feed_events SET data = (
    SELECT json_object_agg(f.key, CASE WHEN f.key = 'rule' THEN to_json(r.new) ELSE f.value END ORDER BY f.ord)
    FROM json_each(feed_events.data) WITH ORDINALITY AS f(key, value, ord)
    JOIN rule_renames r ON r.old = feed_events.data ->> 'rule'
)
WHERE type LIKE 'alert.%' AND data ->> 'rule' IN (SELECT old FROM rule_renames);

UPDATE silences SET matchers = (
    SELECT json_object_agg(m.key, CASE WHEN m.key = 'kind' THEN to_json(r.new) ELSE m.value END ORDER BY m.ord)
    FROM json_each(silences.matchers) WITH ORDINALITY AS m(key, value, ord)
    JOIN rule_renames r ON r.old = silences.matchers ->> 'kind'
)
WHERE matchers ->> 'kind' IN (SELECT old FROM rule_renames);

UPDATE channels SET kinds = (
    SELECT json_agg(COALESCE(r.new, k.value) ORDER BY k.ord)
    FROM json_array_elements_text(channels.kinds) WITH ORDINALITY AS k(value, ord)
    LEFT JOIN rule_renames r ON r.old = k.value
)
WHERE EXISTS (
    SELECT 1 FROM json_array_elements_text(channels.kinds) AS k(value) JOIN rule_renames r ON r.old = k.value
);

DROP TABLE rule_renames;
