//! PortfolioService end to end: metrics on a small history, checked against a hand
//! count (written out below), by month and for a whole period, grouped by region.

use vitals_proto::v1::{self as pb, event::Customer as Who, event::Payload};
use vitals_tests::{Backend, TestServer, assert_invalid, both_backends};

both_backends!(metrics_match_a_hand_count);

/// Seconds since the epoch of `YYYY-MM-DD` at `hour`:00 UTC (days from civil, as in
/// Howard Hinnant's algorithm), so the test needs no date crate.
fn at(y: i64, m: i64, d: i64, hour: i64) -> prost_types::Timestamp {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    prost_types::Timestamp {
        seconds: days * 86_400 + hour * 3_600,
        nanos: 0,
    }
}

async fn create(
    server: &TestServer,
    external_id: &str,
    region: &str,
    contractual: bool,
    signup: prost_types::Timestamp,
    churn: Option<prost_types::Timestamp>,
) -> String {
    server
        .create_customer(pb::Customer {
            external_id: external_id.into(),
            region: region.into(),
            contractual,
            signup_time: Some(signup),
            status: if churn.is_some() {
                pb::CustomerStatus::Churned
            } else {
                pb::CustomerStatus::Active
            } as i32,
            churn_time: churn,
            ..Default::default()
        })
        .await
}

fn event(id: &str, key: &str, time: prost_types::Timestamp, payload: Payload) -> pb::Event {
    pb::Event {
        comment_analysis: None,
        event_key: key.into(),
        customer: Some(Who::CustomerId(id.into())),
        time: Some(time),
        record_time: None,
        payload: Some(payload),
    }
}

fn survey(kind: pb::FeedbackKind, score: i32) -> Payload {
    Payload::Feedback(pb::Feedback {
        kind: kind as i32,
        score: Some(score),
        comment: String::new(),
        channel: "web".into(),
    })
}

fn buy(amount_minor: i64) -> Payload {
    Payload::Transaction(pb::Transaction {
        amount_minor,
        currency: "EUR".into(),
        quantity: 1,
        category: String::new(),
        channel: "web".into(),
    })
}

fn complaint(ticket: &str, resolved: Option<prost_types::Timestamp>) -> Payload {
    Payload::Interaction(pb::Interaction {
        note: String::new(),
        kind: pb::InteractionKind::Complaint as i32,
        severity: pb::Severity::Medium as i32,
        category: String::new(),
        channel: "phone".into(),
        ticket_id: ticket.into(),
        resolved_time: resolved,
    })
}

async fn metrics(
    server: &TestServer,
    start: prost_types::Timestamp,
    end: prost_types::Timestamp,
    group_by: pb::Grouping,
    granularity: pb::Granularity,
) -> Vec<pb::MetricsBucket> {
    server
        .portfolio()
        .await
        .get_portfolio_metrics(pb::GetPortfolioMetricsRequest {
            start_time: Some(start),
            end_time: Some(end),
            group_by: group_by as i32,
            granularity: granularity as i32,
        })
        .await
        .expect("metrics")
        .into_inner()
        .buckets
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

async fn metrics_match_a_hand_count(backend: Backend) {
    use pb::FeedbackKind::{Csat, Nps};
    let server = TestServer::start(backend).await;
    // A and B have contracts (A cancels on Feb 10); C and D just buy.
    let a = create(
        &server,
        "A",
        "north",
        true,
        at(2023, 6, 1, 0),
        Some(at(2024, 2, 10, 12)),
    )
    .await;
    let b = create(&server, "B", "north", true, at(2023, 12, 1, 0), None).await;
    let c = create(&server, "C", "south", false, at(2023, 10, 1, 0), None).await;
    let d = create(&server, "D", "south", false, at(2023, 11, 1, 0), None).await;
    let events = vec![
        event(&a, "a1", at(2024, 1, 5, 9), survey(Nps, 10)),
        event(
            &a,
            "a2",
            at(2024, 1, 10, 9),
            complaint("t1", Some(at(2024, 1, 11, 9))),
        ),
        event(&b, "b1", at(2024, 1, 20, 9), survey(Nps, 5)),
        event(&b, "b2", at(2024, 2, 3, 9), survey(Csat, 4)),
        event(&c, "c0", at(2023, 12, 15, 9), buy(10_000)),
        event(&c, "c1", at(2024, 1, 3, 9), buy(20_000)),
        event(&c, "c2", at(2024, 1, 25, 9), buy(30_000)),
        event(&c, "c3", at(2024, 3, 2, 9), buy(5_000)),
        event(&d, "d0", at(2023, 12, 20, 9), buy(100_000)),
        event(&d, "d1", at(2024, 2, 14, 9), buy(40_000)),
        event(&d, "d2", at(2024, 2, 15, 9), survey(Nps, 8)),
        event(&d, "d3", at(2024, 2, 16, 9), survey(Csat, 2)),
        event(&d, "d4", at(2024, 2, 20, 9), complaint("", None)),
    ];
    let out = server
        .events()
        .await
        .record_events(pb::RecordEventsRequest {
            events,
            backfill: true,
        })
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(out.accepted, 13, "{out:?}");

    let months = metrics(
        &server,
        at(2024, 1, 1, 0),
        at(2024, 3, 1, 0),
        pb::Grouping::Unspecified,
        pb::Granularity::Month,
    )
    .await;
    assert_eq!(months.len(), 2, "{months:?}");
    let (jan, feb) = (&months[0], &months[1]);
    assert_eq!(jan.start_time, Some(at(2024, 1, 1, 0)));
    assert_eq!(feb.end_time, Some(at(2024, 3, 1, 0)));
    assert_eq!(jan.group, "all");
    assert_eq!(jan.group_name, "all customers");

    // January. NPS: A 10 (promoter), B 5 (detractor): 2 answers, (1 - 1) / 2 = 0.
    assert_eq!(jan.nps_answers, 2);
    assert!(close(jan.nps, 0.0));
    assert_eq!((jan.csat_answers, jan.mean_csat), (0, None));
    // At the start: A and B on contract, C and D bought in December: 4. Churned: no
    // contract ended; D did not buy again (C did): 1 of 4.
    assert_eq!((jan.customers_at_start, jan.churned), (4, 1));
    assert!(close(jan.churn_rate, 0.25) && close(jan.retention_rate, 0.75));
    // Buyers: C, twice.
    assert_eq!((jan.buyers, jan.repeat_buyers), (1, 1));
    assert!(close(jan.repeat_purchase_rate, 1.0));
    // A's complaint, resolved in 24 hours; 4 customers on the books.
    assert_eq!(
        (
            jan.complaints,
            jan.complaining_customers,
            jan.customers_on_books
        ),
        (1, 1, 4)
    );
    assert!(close(jan.complaint_rate, 0.25));
    assert_eq!(jan.resolved_interactions, 1);
    assert!(close(jan.mean_resolution_hours, 24.0));
    assert_eq!(jan.revenue_minor.get("EUR"), Some(&50_000));

    // February. NPS: D 8 (passive): 1 answer, 0. CSAT: B 4, D 2: mean 3.
    assert_eq!(feb.nps_answers, 1);
    assert!(close(feb.nps, 0.0));
    assert_eq!(feb.csat_answers, 2);
    assert!(close(feb.mean_csat, 3.0));
    // At the start: A, B, and January's buyer C: 3. Churned: A's contract ended, C did
    // not buy in February (D did, but was not a January buyer): 2 of 3.
    assert_eq!((feb.customers_at_start, feb.churned), (3, 2));
    assert!(close(feb.churn_rate, 2.0 / 3.0));
    assert_eq!((feb.buyers, feb.repeat_buyers), (1, 0));
    assert!(close(feb.repeat_purchase_rate, 0.0));
    assert_eq!((feb.complaints, feb.customers_on_books), (1, 4));
    assert_eq!(
        (feb.resolved_interactions, feb.mean_resolution_hours),
        (0, None)
    );
    assert_eq!(feb.revenue_minor.get("EUR"), Some(&40_000));

    // The same two months as one period, by region. The base is the two months before
    // (Nov-Dec): C and D bought then, both bought again; A and B were on contract, A left.
    let regions = metrics(
        &server,
        at(2024, 1, 1, 0),
        at(2024, 3, 1, 0),
        pb::Grouping::Region,
        pb::Granularity::Unspecified,
    )
    .await;
    let groups: Vec<&str> = regions.iter().map(|m| m.group.as_str()).collect();
    assert_eq!(groups, ["north", "south"]);
    let names: Vec<&str> = regions.iter().map(|m| m.group_name.as_str()).collect();
    assert_eq!(names, ["north", "south"]);
    // Without a segmentation nobody has a segment: the group says so in words.
    let by_segment = metrics(
        &server,
        at(2024, 1, 1, 0),
        at(2024, 3, 1, 0),
        pb::Grouping::Segment,
        pb::Granularity::Unspecified,
    )
    .await;
    assert!(
        by_segment
            .iter()
            .all(|m| m.group == "none" && m.group_name == "no segment"),
        "{by_segment:?}"
    );
    let (north, south) = (&regions[0], &regions[1]);
    assert_eq!((north.customers_at_start, north.churned), (2, 1));
    assert_eq!((north.nps_answers, north.complaints), (2, 1));
    assert_eq!((south.customers_at_start, south.churned), (2, 0));
    assert_eq!((south.buyers, south.repeat_buyers), (2, 1));
    assert_eq!(south.revenue_minor.get("EUR"), Some(&90_000));
    assert_eq!(north.revenue_minor.get("EUR"), None);

    // Weeks over almost three years (157 buckets); whole weeks cover the period, so the week of March 1st brings C's purchase
    // of March 2nd in.
    let weeks = metrics(
        &server,
        at(2021, 6, 1, 0),
        at(2024, 3, 1, 0),
        pb::Grouping::Unspecified,
        pb::Granularity::Week,
    )
    .await;
    let sum = |f: fn(&pb::MetricsBucket) -> i64| weeks.iter().map(f).sum::<i64>();
    assert_eq!(sum(|m| m.nps_answers), 3);
    assert_eq!(sum(|m| m.csat_answers), 2);
    assert_eq!(sum(|m| m.complaints), 2);
    assert_eq!(sum(|m| m.buyers), 6);
    assert_eq!(
        sum(|m| m.revenue_minor.get("EUR").copied().unwrap_or(0)),
        205_000
    );
    assert!(
        weeks
            .windows(2)
            .all(|w| w[0].start_time.map(|t| t.seconds) < w[1].start_time.map(|t| t.seconds))
    );

    // Bad periods.
    assert_invalid(
        server
            .portfolio()
            .await
            .get_portfolio_metrics(pb::GetPortfolioMetricsRequest {
                start_time: Some(at(2024, 3, 1, 0)),
                end_time: Some(at(2024, 1, 1, 0)),
                ..Default::default()
            })
            .await,
        "end_time",
    );
    assert_invalid(
        server
            .portfolio()
            .await
            .get_portfolio_metrics(pb::GetPortfolioMetricsRequest::default())
            .await,
        "start_time",
    );
}
