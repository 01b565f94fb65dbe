-- What customers write (see the PostgreSQL twin for why). SQLite can neither drop a NOT
-- NULL nor alter a CHECK constraint: feedback and follow_ups are rebuilt.

CREATE TABLE feedback_new (
    customer_id TEXT NOT NULL,
    event_key   TEXT NOT NULL,
    time        BIGINT NOT NULL,
    record_time BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('nps', 'csat', 'ces', 'review')),
    score       INTEGER,
    comment     TEXT,
    channel     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (customer_id, event_key)
);
INSERT INTO feedback_new SELECT customer_id, event_key, time, record_time, kind, score, comment, channel FROM feedback;
DROP TABLE feedback;
ALTER TABLE feedback_new RENAME TO feedback;

ALTER TABLE interactions ADD COLUMN note TEXT;

CREATE TABLE comment_analyses (
    customer_id   TEXT NOT NULL,
    event_key     TEXT NOT NULL,
    time          BIGINT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('feedback', 'interaction')),
    channel       TEXT NOT NULL DEFAULT '',
    language      TEXT NOT NULL,
    sentiment     REAL NOT NULL CHECK (sentiment >= -1 AND sentiment <= 1),
    topic_id      INTEGER,
    topic         TEXT,
    model_version BIGINT NOT NULL,
    PRIMARY KEY (customer_id, event_key)
);
CREATE INDEX comment_analyses_time ON comment_analyses (time DESC, customer_id, event_key);

CREATE TABLE follow_ups_new (
    customer_id    TEXT NOT NULL,
    id             TEXT NOT NULL,
    reason         TEXT NOT NULL CHECK (reason IN ('detractor', 'complaint', 'overdue_payment', 'churn_risk', 'negative_comment')),
    department     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'assigned', 'in_progress', 'resolved', 'dismissed')),
    detail         TEXT NOT NULL,
    source         TEXT NOT NULL,
    rules_version  BIGINT NOT NULL,
    assignee       TEXT,
    outcome        TEXT,
    dismiss_reason TEXT,
    due_time       BIGINT NOT NULL,
    create_time    BIGINT NOT NULL,
    update_time    BIGINT NOT NULL,
    close_time     BIGINT,
    version        BIGINT NOT NULL,
    PRIMARY KEY (customer_id, id)
);
INSERT INTO follow_ups_new SELECT * FROM follow_ups;
DROP TABLE follow_ups;
ALTER TABLE follow_ups_new RENAME TO follow_ups;
CREATE UNIQUE INDEX follow_ups_one_open ON follow_ups (customer_id, reason)
    WHERE status IN ('open', 'assigned', 'in_progress');
CREATE INDEX follow_ups_status_due ON follow_ups (status, due_time, id);
