-- Evaluation snapshots and scoring schemes. Times are BIGINT microseconds since the Unix
-- epoch (UTC), as in the foundation migration. The JSON bodies are opaque to the store:
-- the columns beside them are copies of what ListAtRisk and the segment summaries filter,
-- sort and aggregate on, so those queries never parse JSON.

-- The latest evaluation of each customer, replaced wholesale by each scoring run.
-- Keyed by customer_id alone, so it shards with the customer's other tables.
CREATE TABLE evaluations (
    customer_id       TEXT PRIMARY KEY,
    external_id       TEXT NOT NULL,
    as_of             BIGINT NOT NULL,
    computed_at       BIGINT NOT NULL,
    churn_probability REAL,
    value             REAL,
    -- churn_probability * value, computed by the caller; NULL when either is unknown.
    expected_loss     REAL,
    segment_id        INTEGER,
    tier              TEXT,
    composite         REAL,
    churn_version     BIGINT,
    segments_version  BIGINT,
    scheme_version    BIGINT NOT NULL,
    body              TEXT NOT NULL
);
-- The two keyset orders of ListAtRisk: highest first, ties by customer_id ascending.
CREATE INDEX evaluations_probability ON evaluations (churn_probability DESC, customer_id);
CREATE INDEX evaluations_expected_loss ON evaluations (expected_loss DESC, customer_id);
CREATE INDEX evaluations_segment ON evaluations (segment_id);

-- Every version of the scoring scheme; the highest is current. The primary key is what
-- makes optimistic concurrency safe: two writers of the same next version cannot both win.
CREATE TABLE scoring_schemes (
    version     BIGINT PRIMARY KEY,
    body        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    create_time BIGINT NOT NULL
);
