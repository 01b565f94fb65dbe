-- PostgreSQL announces history changes (NOTIFY) for servers' history caches. SQLite has
-- no such channel, and an embedded server reads its file without a round trip, so it keeps
-- no cache: nothing to change here. The migration exists so both backends share names.
SELECT 1;
