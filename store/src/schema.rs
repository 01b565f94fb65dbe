// The tables of `migrations/{postgres,sqlite}`; both backends share this one schema.

diesel::table! {
    customers (id) {
        id -> Text,
        external_id -> Text,
        display_name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        region -> Text,
        acquisition_channel -> Text,
        status -> Text,
        contractual -> Bool,
        signup_time -> Nullable<BigInt>,
        churn_time -> Nullable<BigInt>,
        attributes -> Text,
        version -> BigInt,
        create_time -> BigInt,
        update_time -> BigInt,
    }
}

diesel::table! {
    events (customer_id, event_key) {
        customer_id -> Text,
        event_key -> Text,
        kind -> Text,
        time -> BigInt,
        record_time -> BigInt,
        content_hash -> Text,
    }
}

diesel::table! {
    transactions (customer_id, event_key) {
        customer_id -> Text,
        event_key -> Text,
        time -> BigInt,
        record_time -> BigInt,
        amount_minor -> BigInt,
        currency -> Text,
        quantity -> Integer,
        category -> Text,
        channel -> Text,
    }
}

diesel::table! {
    payments (customer_id, event_key) {
        customer_id -> Text,
        event_key -> Text,
        time -> BigInt,
        record_time -> BigInt,
        invoice_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        due_time -> Nullable<BigInt>,
        paid_time -> Nullable<BigInt>,
        method -> Text,
    }
}

diesel::table! {
    feedback (customer_id, event_key) {
        customer_id -> Text,
        event_key -> Text,
        time -> BigInt,
        record_time -> BigInt,
        kind -> Text,
        score -> Nullable<Integer>,
        comment -> Nullable<Text>,
        channel -> Text,
    }
}

diesel::table! {
    interactions (customer_id, event_key) {
        customer_id -> Text,
        event_key -> Text,
        time -> BigInt,
        record_time -> BigInt,
        kind -> Text,
        severity -> Text,
        category -> Text,
        channel -> Text,
        ticket_id -> Text,
        resolved_time -> Nullable<BigInt>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    comment_analyses (customer_id, event_key) {
        customer_id -> Text,
        event_key -> Text,
        time -> BigInt,
        source -> Text,
        channel -> Text,
        language -> Text,
        sentiment -> Float,
        topic_id -> Nullable<Integer>,
        topic -> Nullable<Text>,
        model_version -> BigInt,
    }
}

diesel::table! {
    evaluations (customer_id) {
        customer_id -> Text,
        external_id -> Text,
        as_of -> BigInt,
        computed_at -> BigInt,
        churn_probability -> Nullable<Double>,
        value -> Nullable<Double>,
        expected_loss -> Nullable<Double>,
        segment_id -> Nullable<Integer>,
        tier -> Nullable<Text>,
        composite -> Nullable<Double>,
        churn_version -> Nullable<BigInt>,
        segments_version -> Nullable<BigInt>,
        scheme_version -> BigInt,
        body -> Text,
        value_lost -> Nullable<Double>,
        currency -> Nullable<Text>,
        lifecycle_stage -> Nullable<Text>,
    }
}

diesel::table! {
    scoring_schemes (version) {
        version -> BigInt,
        body -> Text,
        actor -> Text,
        create_time -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        time -> BigInt,
        actor -> Text,
        method -> Text,
        record -> Text,
        outcome -> Text,
    }
}

diesel::table! {
    retention_actions (customer_id, event_key) {
        customer_id -> Text,
        event_key -> Text,
        time -> BigInt,
        record_time -> BigInt,
        kind -> Text,
        cost_minor -> BigInt,
        currency -> Text,
        campaign -> Text,
        channel -> Text,
        actor -> Text,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    follow_up_rules (version) {
        version -> BigInt,
        body -> Text,
        actor -> Text,
        create_time -> BigInt,
    }
}

diesel::table! {
    follow_ups (customer_id, id) {
        customer_id -> Text,
        id -> Text,
        reason -> Text,
        department -> Text,
        status -> Text,
        detail -> Text,
        source -> Text,
        rules_version -> BigInt,
        assignee -> Nullable<Text>,
        outcome -> Nullable<Text>,
        dismiss_reason -> Nullable<Text>,
        due_time -> BigInt,
        create_time -> BigInt,
        update_time -> BigInt,
        close_time -> Nullable<BigInt>,
        version -> BigInt,
    }
}

diesel::table! {
    campaigns (id) {
        id -> Text,
        name -> Text,
        action_kind -> Text,
        target -> Text,
        holdout_share -> Double,
        seed -> BigInt,
        horizon_days -> Integer,
        draw_time -> BigInt,
        treated_count -> BigInt,
        control_count -> BigInt,
        actor -> Text,
        create_time -> BigInt,
    }
}

diesel::table! {
    campaign_members (customer_id, campaign_id) {
        customer_id -> Text,
        campaign_id -> Text,
        control -> Bool,
        churn_probability -> Nullable<Double>,
    }
}

diesel::table! {
    refresh_runs (id) {
        id -> Text,
        as_of -> BigInt,
        create_time -> BigInt,
        customers_total -> BigInt,
        finish_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_chunks (run_id, seq) {
        run_id -> Text,
        seq -> Integer,
        after_id -> Nullable<Text>,
        last_id -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        attempts -> Integer,
        done_time -> Nullable<BigInt>,
        customers -> BigInt,
        stored -> BigInt,
        opened -> BigInt,
    }
}

diesel::joinable!(refresh_chunks -> refresh_runs (run_id));

diesel::allow_tables_to_appear_in_same_query!(
    refresh_runs,
    refresh_chunks,
    retention_actions,
    follow_up_rules,
    follow_ups,
    campaigns,
    campaign_members,
    audit_log,
    customers,
    events,
    transactions,
    payments,
    feedback,
    comment_analyses,
    interactions,
    evaluations,
    scoring_schemes,
);
