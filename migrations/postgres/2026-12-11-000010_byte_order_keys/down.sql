DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT table_name, column_name
        FROM information_schema.columns
        WHERE table_schema = current_schema()
          AND data_type = 'text'
          AND collation_name = 'C'
          AND table_name IN (SELECT table_name FROM information_schema.tables
                             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE')
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE text COLLATE "default"',
                       c.table_name, c.column_name);
    END LOOP;
END
$$;
