DROP TABLE campaign_members;
DROP TABLE campaigns;
DROP TABLE follow_ups;
DROP TABLE follow_up_rules;
DROP TABLE retention_actions;
DELETE FROM events WHERE kind = 'retention_action';
ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('transaction', 'payment', 'feedback', 'interaction'));
