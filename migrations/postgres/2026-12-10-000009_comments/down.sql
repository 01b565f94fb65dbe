ALTER TABLE follow_ups DROP CONSTRAINT follow_ups_reason_check;
DELETE FROM follow_ups WHERE reason = 'negative_comment';
ALTER TABLE follow_ups ADD CONSTRAINT follow_ups_reason_check
    CHECK (reason IN ('detractor', 'complaint', 'overdue_payment', 'churn_risk'));
DROP TABLE comment_analyses;
ALTER TABLE interactions DROP COLUMN note;
DELETE FROM feedback WHERE score IS NULL;
ALTER TABLE feedback ALTER COLUMN score SET NOT NULL;
