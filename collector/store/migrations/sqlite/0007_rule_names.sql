-- Alert rules are named <signal> or <signal>.<aspect> (issue 24), so that a silence or a channel filter
-- naming a signal covers every rule of it. The old names are renamed wherever they were stored, and every
-- alert's fingerprint is recomputed in its new plain-text form, rule|owner|subject (collector.rules.fingerprint),
-- so that the next evaluation finds the alert it belongs to.

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

UPDATE feed_events SET data = json_set(data, '$.rule',
    (SELECT r.new FROM rule_renames r WHERE r.old = json_extract(feed_events.data, '$.rule')))
WHERE type LIKE 'alert.%' AND json_extract(data, '$.rule') IN (SELECT old FROM rule_renames);

UPDATE silences SET matchers = json_set(matchers, '$.kind',
    (SELECT r.new FROM rule_renames r WHERE r.old = json_extract(silences.matchers, '$.kind')))
WHERE json_extract(matchers, '$.kind') IN (SELECT old FROM rule_renames);

UPDATE channels SET kinds = (
    SELECT json_group_array(COALESCE((SELECT r.new FROM rule_renames r WHERE r.old = k.value), k.value))
    FROM (SELECT value FROM json_each(channels.kinds) ORDER BY key) AS k
)
WHERE EXISTS (SELECT 1 FROM json_each(channels.kinds) AS k WHERE k.value IN (SELECT old FROM rule_renames));

DROP TABLE rule_renames;
