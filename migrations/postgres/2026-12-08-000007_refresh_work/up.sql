-- RefreshEvaluations shared between servers: a run is cut into chunks of customers (by id
-- range); every server's worker leases chunks one at a time, evaluates them and marks
-- them done. A chunk whose lease ran out (its server died) is leased again by another, so
-- a run finishes once whatever happens to the servers. Coordination rows, not customer
-- data: under Citus these would be reference tables (docs/CITUS.md).
CREATE TABLE refresh_runs (
    id              TEXT PRIMARY KEY,
    as_of           BIGINT NOT NULL,
    create_time     BIGINT NOT NULL,
    customers_total BIGINT NOT NULL,
    finish_time     BIGINT
);
-- At most one unfinished run, whichever servers start one at the same moment.
CREATE UNIQUE INDEX refresh_runs_one_running ON refresh_runs ((finish_time IS NULL))
    WHERE finish_time IS NULL;

CREATE TABLE refresh_chunks (
    run_id      TEXT NOT NULL REFERENCES refresh_runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    -- Customers with after_id < id <= last_id; NULL: unbounded on that side.
    after_id    TEXT,
    last_id     TEXT,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    done_time   BIGINT,
    customers   BIGINT NOT NULL DEFAULT 0,
    stored      BIGINT NOT NULL DEFAULT 0,
    opened      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX refresh_chunks_open ON refresh_chunks (done_time, run_id, seq);
