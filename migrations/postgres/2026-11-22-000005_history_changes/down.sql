DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['transactions', 'payments', 'feedback', 'interactions', 'retention_actions'] LOOP
        EXECUTE format('DROP TRIGGER %1$s_history_insert ON %1$I', t);
        EXECUTE format('DROP TRIGGER %1$s_history_update ON %1$I', t);
        EXECUTE format('DROP TRIGGER %1$s_history_delete ON %1$I', t);
        EXECUTE format('DROP TRIGGER %1$s_history_truncate ON %1$I', t);
    END LOOP;
END
$$;
DROP TRIGGER customers_history_update ON customers;
DROP TRIGGER customers_history_delete ON customers;
DROP TRIGGER customers_history_truncate ON customers;
DROP FUNCTION vitals_history_truncated();
DROP FUNCTION vitals_customer_rows_changed();
DROP FUNCTION vitals_event_rows_changed();
DROP FUNCTION vitals_announce_history(text, text[]);
DROP FUNCTION vitals_history_channel(text);
