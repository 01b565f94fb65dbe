-- Snapshot bodies (about 3 KB of JSON each) compressed with lz4 instead of PostgreSQL's
-- default pglz: at 1,000,000 customers pglz_compress was the largest single cost of a
-- refresh (12% of the machine's CPU; BENCHMARKS.md, "A million customers"), and lz4
-- compresses several times faster. Only values written from now on are lz4; older ones
-- read as before. A server built without lz4 keeps pglz (a notice, not a failure).
DO $$
BEGIN
    ALTER TABLE evaluations ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: snapshot bodies stay pglz-compressed';
END
$$;
