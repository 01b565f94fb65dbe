-- The audit trail: every write and every read of PII, who made it, on which record, when,
-- and how it ended. Append-only; ids are UUIDv7, so id order is time order.
CREATE TABLE audit_log (
    id      TEXT PRIMARY KEY,
    time    BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    method  TEXT NOT NULL,
    record  TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_record ON audit_log (record, id);
