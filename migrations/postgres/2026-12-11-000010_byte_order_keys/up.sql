-- Keys compared as bytes: every id and key column (customer and event ids, external ids,
-- campaign, run, invoice and ticket ids) takes the "C" collation, whatever the database's
-- locale.
--
-- Why: PostgreSQL 15 compares text under any other collation through the C library's
-- strcoll, even under "C.UTF-8", whose order is the same as the bytes'. In a bulk import,
-- comparing keys led the database's profile (B-tree inserts into the events' keys:
-- `_bt_compare`, then `varstr_cmp`, `strcoll` and the locale lookups); "C" compares with
-- memcmp, and the import was about 10% faster (BENCHMARKS.md, "2026-12-08, second
-- session"). It also makes PostgreSQL's key order the order in which Rust compares
-- strings, under any locale (under en_US.UTF-8, say, the two differ).
-- No table is rewritten (the type is the same); the indexes on these columns are rebuilt.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT table_name, column_name
        FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND data_type = 'text'
          AND column_name IN ('id', 'customer_id', 'event_key', 'external_id', 'campaign_id',
                              'run_id', 'after_id', 'last_id', 'invoice_id', 'ticket_id')
          AND table_name IN (SELECT table_name FROM information_schema.tables
                             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE')
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE text COLLATE "C"',
                       c.table_name, c.column_name);
    END LOOP;
END
$$;
