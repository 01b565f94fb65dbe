-- What customers write: a review may come without a score, an interaction carries a note,
-- and every comment or note is analysed on arrival (sentiment, language, topic) in the
-- event batch's transaction. Analyses live in their own table, keyed like the events they
-- describe: the kind tables and the history reads that scan them stay as they were, and a
-- newer text model re-analyses without touching an event.

ALTER TABLE feedback ALTER COLUMN score DROP NOT NULL;
ALTER TABLE interactions ADD COLUMN note TEXT;

CREATE TABLE comment_analyses (
    customer_id   TEXT NOT NULL,
    event_key     TEXT NOT NULL,
    -- The event's time and channel, copied so that listing comments and counting them by
    -- period read this table alone.
    time          BIGINT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('feedback', 'interaction')),
    channel       TEXT NOT NULL DEFAULT '',
    -- A BCP 47 tag: en, zh-Hans, zh-Hant, und.
    language      TEXT NOT NULL,
    -- -1 (negative) to +1 (positive).
    sentiment     REAL NOT NULL CHECK (sentiment >= -1 AND sentiment <= 1),
    topic_id      INTEGER,
    -- The topic's name (its top terms) in the text model that analysed the comment.
    topic         TEXT,
    -- The text model version that analysed it; 0: the built-in lexicons.
    model_version BIGINT NOT NULL,
    PRIMARY KEY (customer_id, event_key)
);
-- ListComments and the portfolio's comment series: newest first, over a period.
CREATE INDEX comment_analyses_time ON comment_analyses (time DESC, customer_id, event_key);

ALTER TABLE follow_ups DROP CONSTRAINT follow_ups_reason_check;
ALTER TABLE follow_ups ADD CONSTRAINT follow_ups_reason_check
    CHECK (reason IN ('detractor', 'complaint', 'overdue_payment', 'churn_risk', 'negative_comment'));
