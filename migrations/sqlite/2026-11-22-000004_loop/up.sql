-- Closing the loop: retention actions, follow-up rules and tasks, campaigns.
-- Times are BIGINT microseconds since the Unix epoch (UTC), as everywhere.

-- SQLite cannot alter a CHECK constraint: the ledger is rebuilt with the fifth kind.
CREATE TABLE events_new (
    customer_id  TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('transaction', 'payment', 'feedback', 'interaction', 'retention_action')),
    time         BIGINT NOT NULL,
    record_time  BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (customer_id, event_key)
);
INSERT INTO events_new SELECT customer_id, event_key, kind, time, record_time, content_hash FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_customer_time ON events (customer_id, time DESC, event_key DESC);

-- Retention actions: the fifth event kind. Like the other kind tables it shares the
-- ledger's key; the campaign index serves the effect review, which reads a campaign's
-- actions by name.
CREATE TABLE retention_actions (
    customer_id TEXT NOT NULL,
    event_key   TEXT NOT NULL,
    time        BIGINT NOT NULL,
    record_time BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    cost_minor  BIGINT NOT NULL,
    currency    TEXT NOT NULL DEFAULT '',
    campaign    TEXT NOT NULL DEFAULT '',
    channel     TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT '',
    note        TEXT,
    PRIMARY KEY (customer_id, event_key)
);
CREATE INDEX retention_actions_campaign ON retention_actions (campaign, customer_id, time);

-- Every version of the follow-up rules; the highest is current (as scoring_schemes).
CREATE TABLE follow_up_rules (
    version     BIGINT PRIMARY KEY,
    body        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    create_time BIGINT NOT NULL
);

-- Follow-up tasks. Keyed by customer first like every per-customer table; a task's id is
-- `<customer_id>/<UUIDv7>`, so finding one by id is a primary-key lookup and no second
-- index on id is written with every task. The partial unique index is the "one open task
-- per customer and reason" rule: an insert for a reason already open does nothing,
-- however often a signal repeats. Indexes are kept to three: each costs every event
-- that opens a task (measured: with five, a task added 15-25% to its event's write).
CREATE TABLE follow_ups (
    customer_id    TEXT NOT NULL,
    id             TEXT NOT NULL,
    reason         TEXT NOT NULL CHECK (reason IN ('detractor', 'complaint', 'overdue_payment', 'churn_risk')),
    department     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'assigned', 'in_progress', 'resolved', 'dismissed')),
    detail         TEXT NOT NULL,
    -- The event_key of the triggering event, or 'refresh' for signals found by a refresh.
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
CREATE UNIQUE INDEX follow_ups_one_open ON follow_ups (customer_id, reason)
    WHERE status IN ('open', 'assigned', 'in_progress');
-- ListFollowUps: most urgent first (due_time, id) by status; a department's list reads
-- this index too and filters.
CREATE INDEX follow_ups_status_due ON follow_ups (status, due_time, id);

-- Campaigns and their drawn members. The draw is recorded (arm per customer, the seed,
-- the probability at the draw) so the effect review compares the arms that were drawn.
CREATE TABLE campaigns (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    action_kind     TEXT NOT NULL,
    target          TEXT NOT NULL,
    holdout_share   DOUBLE PRECISION NOT NULL,
    seed            BIGINT NOT NULL,
    horizon_days    INTEGER NOT NULL,
    draw_time       BIGINT NOT NULL,
    treated_count   BIGINT NOT NULL,
    control_count   BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    create_time     BIGINT NOT NULL
);
CREATE UNIQUE INDEX campaigns_name ON campaigns (name);

CREATE TABLE campaign_members (
    customer_id       TEXT NOT NULL,
    campaign_id       TEXT NOT NULL,
    control           BOOLEAN NOT NULL,
    churn_probability DOUBLE PRECISION,
    PRIMARY KEY (customer_id, campaign_id)
);
CREATE INDEX campaign_members_campaign ON campaign_members (campaign_id, customer_id);
