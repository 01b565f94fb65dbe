-- Every change to a customer's history is announced, so servers can keep histories in
-- memory and drop exactly what changed, whoever wrote it: another server, the trainer, or
-- someone with psql. Channel: `vitals_history:<schema>` (cut at PostgreSQL's 63 bytes),
-- one per schema, since notifications are per database and several Vitals schemas can
-- share one. Payload: one customer id, or `*` when a statement touched more than 1,000
-- customers (bulk imports) or a table was truncated: drop everything. NOTIFY is sent at
-- commit and never for a rolled-back transaction; PostgreSQL folds identical
-- notifications of one transaction into one. The functions carry the migration's
-- search_path, so a session writing with another search_path still finds them.

CREATE FUNCTION vitals_history_channel(schema_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT left('vitals_history:' || schema_name, 63) $$;

CREATE FUNCTION vitals_announce_history(schema_name text, ids text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF cardinality(ids) > 1000 THEN
        PERFORM pg_notify(vitals_history_channel(schema_name), '*');
    ELSE
        PERFORM pg_notify(vitals_history_channel(schema_name), id) FROM unnest(ids) AS id;
    END IF;
END
$$;

-- Statement-level with transition tables: one call per statement, however many rows.
CREATE FUNCTION vitals_event_rows_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM vitals_announce_history(TG_TABLE_SCHEMA, ARRAY(SELECT DISTINCT customer_id FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM vitals_announce_history(TG_TABLE_SCHEMA, ARRAY(
            SELECT customer_id FROM new_rows UNION SELECT customer_id FROM old_rows));
    ELSE
        PERFORM vitals_announce_history(TG_TABLE_SCHEMA, ARRAY(SELECT DISTINCT customer_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION vitals_customer_rows_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- A new customer has no cached history yet: inserts need no announcement.
    IF TG_OP = 'UPDATE' THEN
        PERFORM vitals_announce_history(TG_TABLE_SCHEMA, ARRAY(SELECT id FROM new_rows UNION SELECT id FROM old_rows));
    ELSE
        PERFORM vitals_announce_history(TG_TABLE_SCHEMA, ARRAY(SELECT id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION vitals_history_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify(vitals_history_channel(TG_TABLE_SCHEMA), '*');
    RETURN NULL;
END
$$;

-- PostgreSQL allows transition tables only on single-event triggers: one per operation.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['transactions', 'payments', 'feedback', 'interactions', 'retention_actions'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_history_insert AFTER INSERT ON %1$I
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
            EXECUTE FUNCTION vitals_event_rows_changed()', t);
        EXECUTE format('CREATE TRIGGER %1$s_history_update AFTER UPDATE ON %1$I
            REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT
            EXECUTE FUNCTION vitals_event_rows_changed()', t);
        EXECUTE format('CREATE TRIGGER %1$s_history_delete AFTER DELETE ON %1$I
            REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
            EXECUTE FUNCTION vitals_event_rows_changed()', t);
        EXECUTE format('CREATE TRIGGER %1$s_history_truncate AFTER TRUNCATE ON %1$I
            FOR EACH STATEMENT EXECUTE FUNCTION vitals_history_truncated()', t);
    END LOOP;
END
$$;

CREATE TRIGGER customers_history_update AFTER UPDATE ON customers
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION vitals_customer_rows_changed();
CREATE TRIGGER customers_history_delete AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION vitals_customer_rows_changed();
CREATE TRIGGER customers_history_truncate AFTER TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION vitals_history_truncated();
