-- Customers and their history. Times are microseconds since the Unix epoch (UTC) in
-- BIGINT, money is integer minor units: the same types and semantics on SQLite.
-- Shard-ready: every per-customer table carries customer_id and its keys start with it.

CREATE TABLE customers (
    id                  TEXT PRIMARY KEY,
    external_id         TEXT NOT NULL,
    display_name        TEXT,
    email               TEXT,
    phone               TEXT,
    region              TEXT NOT NULL DEFAULT '',
    acquisition_channel TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL CHECK (status IN ('active', 'churned', 'erased')),
    contractual         BOOLEAN NOT NULL DEFAULT FALSE,
    signup_time         BIGINT,
    churn_time          BIGINT,
    attributes          TEXT NOT NULL DEFAULT '{}',
    version             BIGINT NOT NULL,
    create_time         BIGINT NOT NULL,
    update_time         BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_external_id ON customers (external_id);
CREATE INDEX customers_status_id ON customers (status, id);
CREATE INDEX customers_region_id ON customers (region, id);
CREATE INDEX customers_update_time ON customers (update_time);

-- Event tables carry no foreign keys: every write goes through one code path
-- (Store::record_events) that resolves the customer and writes the ledger and the kind's
-- row in one transaction, and customers are never deleted (erasure is an update). The
-- checks cost a KEY SHARE lock on a customer row per event and halved bulk loads.

-- Indexes are kept to what queries use: each event is written to five B-trees at most
-- (the ledger's key and timeline, the kind table's key). Per-customer reads of the kind
-- tables use their primary key's customer_id prefix.

-- The ledger of every event: idempotency (one row per customer and event_key, whatever
-- the kind) and the timeline. The kind's own table holds what the event says.
CREATE TABLE events (
    customer_id  TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('transaction', 'payment', 'feedback', 'interaction')),
    time         BIGINT NOT NULL,
    record_time  BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (customer_id, event_key)
);
CREATE INDEX events_customer_time ON events (customer_id, time DESC, event_key DESC);

CREATE TABLE transactions (
    customer_id  TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    time         BIGINT NOT NULL,
    record_time  BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    category     TEXT NOT NULL DEFAULT '',
    channel      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (customer_id, event_key)
);

CREATE TABLE payments (
    customer_id  TEXT NOT NULL,
    event_key    TEXT NOT NULL,
    time         BIGINT NOT NULL,
    record_time  BIGINT NOT NULL,
    invoice_id   TEXT NOT NULL DEFAULT '',
    amount_minor BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    due_time     BIGINT,
    paid_time    BIGINT,
    method       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (customer_id, event_key)
);

CREATE TABLE feedback (
    customer_id TEXT NOT NULL,
    event_key   TEXT NOT NULL,
    time        BIGINT NOT NULL,
    record_time BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('nps', 'csat', 'ces', 'review')),
    score       INTEGER NOT NULL,
    comment     TEXT,
    channel     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (customer_id, event_key)
);

CREATE TABLE interactions (
    customer_id   TEXT NOT NULL,
    event_key     TEXT NOT NULL,
    time          BIGINT NOT NULL,
    record_time   BIGINT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('inquiry', 'complaint', 'support', 'sales', 'other')),
    severity      TEXT NOT NULL,
    category      TEXT NOT NULL DEFAULT '',
    channel       TEXT NOT NULL DEFAULT '',
    ticket_id     TEXT NOT NULL DEFAULT '',
    resolved_time BIGINT,
    PRIMARY KEY (customer_id, event_key)
);
