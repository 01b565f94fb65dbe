-- Not reversible on SQLite without rebuilding three tables again; the embedded database
-- is a development default, recreated rather than migrated down.
SELECT 1;
