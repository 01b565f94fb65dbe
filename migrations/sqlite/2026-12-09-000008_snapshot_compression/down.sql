-- PostgreSQL compresses snapshot bodies with lz4 from this migration on; SQLite stores
-- text as it is, so there is nothing to change (the migration exists so that both
-- backends count the same versions).
SELECT 1;
