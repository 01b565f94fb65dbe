-- PostgreSQL compares id and key columns as bytes from this migration on (the "C"
-- collation); SQLite's default collation (BINARY) already does, so there is nothing to
-- change (the migration exists so that both backends count the same versions).
SELECT 1;
