use tonic::Code;
use vitals_proto::v1::{self as pb, event::Customer as Who, event::Payload};
use vitals_tests::{Backend, TestServer, assert_invalid, both_backends, now_seconds, ts};

async fn new_customer(server: &TestServer, external_id: &str) -> String {
    let mut api = server.customers().await;
    api.create_customer(pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: external_id.into(),
            ..Default::default()
        }),
    })
    .await
    .expect("customer created")
    .into_inner()
    .id
}

fn purchase(key: &str, customer: Who, at: i64, cents: i64) -> pb::Event {
    pb::Event {
        comment_analysis: None,
        event_key: key.into(),
        customer: Some(customer),
        time: Some(ts(at)),
        record_time: None,
        payload: Some(Payload::Transaction(pb::Transaction {
            amount_minor: cents,
            currency: "USD".into(),
            quantity: 2,
            category: "music".into(),
            channel: "web".into(),
        })),
    }
}

fn batch(events: Vec<pb::Event>) -> pb::RecordEventsRequest {
    pb::RecordEventsRequest {
        events,
        backfill: false,
    }
}

fn timeline_of(id: &str) -> pb::ListCustomerEventsRequest {
    pb::ListCustomerEventsRequest {
        customer: Some(pb::list_customer_events_request::Customer::CustomerId(
            id.into(),
        )),
        ..Default::default()
    }
}

both_backends!(
    a_batch_with_no_valid_event_is_invalid_argument,
    every_kind_is_recorded_and_listed_newest_first,
    resending_is_idempotent_and_conflicts_are_refused,
    bad_events_are_rejected_one_by_one,
    oversized_batch_is_invalid_argument,
    record_time_is_now_or_the_event_time_for_backfills,
    stream_events_commits_each_batch,
    timeline_filters_and_pages,
);

async fn every_kind_is_recorded_and_listed_newest_first(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "k1").await;
    let mut api = server.events().await;
    let t = now_seconds() - 10_000;
    let events = vec![
        purchase("tx-1", Who::CustomerExternalId("k1".into()), t, 1999),
        pb::Event {
            comment_analysis: None,
            event_key: "pay-1".into(),
            customer: Some(Who::CustomerId(id.clone())),
            time: Some(ts(t + 1)),
            record_time: None,
            payload: Some(Payload::Payment(pb::Payment {
                invoice_id: "inv-1".into(),
                amount_minor: 1999,
                currency: "USD".into(),
                due_time: Some(ts(t + 86_400)),
                paid_time: Some(ts(t + 2)),
                method: "card".into(),
            })),
        },
        pb::Event {
            comment_analysis: None,
            event_key: "nps-1".into(),
            customer: Some(Who::CustomerId(id.clone())),
            time: Some(ts(t + 3)),
            record_time: None,
            payload: Some(Payload::Feedback(pb::Feedback {
                kind: pb::FeedbackKind::Nps as i32,
                score: Some(9),
                comment: "great".into(),
                channel: "app".into(),
            })),
        },
        pb::Event {
            comment_analysis: None,
            event_key: "ticket-1".into(),
            customer: Some(Who::CustomerId(id.clone())),
            time: Some(ts(t + 4)),
            record_time: None,
            payload: Some(Payload::Interaction(pb::Interaction {
                note: String::new(),
                kind: pb::InteractionKind::Complaint as i32,
                severity: pb::Severity::High as i32,
                category: "billing".into(),
                channel: "phone".into(),
                ticket_id: "T-1".into(),
                resolved_time: Some(ts(t + 400)),
            })),
        },
    ];
    let r = api
        .record_events(batch(events.clone()))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!((r.accepted, r.duplicates), (4, 0), "{:?}", r.rejected);
    assert!(r.rejected.is_empty());

    let listed = api
        .list_customer_events(timeline_of(&id))
        .await
        .expect("timeline")
        .into_inner();
    let keys: Vec<_> = listed.events.iter().map(|e| e.event_key.as_str()).collect();
    assert_eq!(keys, ["ticket-1", "nps-1", "pay-1", "tx-1"]);
    // What was sent comes back exactly, money included.
    for (got, sent) in listed.events.iter().rev().zip(&events) {
        assert_eq!(got.payload, sent.payload);
        assert_eq!(got.time, sent.time);
        assert_eq!(got.customer, Some(Who::CustomerId(id.clone())));
    }
    let unknown = api
        .list_customer_events(timeline_of("nobody"))
        .await
        .expect_err("unknown customer");
    assert_eq!(unknown.code(), Code::NotFound);
}

async fn resending_is_idempotent_and_conflicts_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "idem").await;
    let mut api = server.events().await;
    let t = now_seconds() - 100;
    let first = vec![
        purchase("a", Who::CustomerId(id.clone()), t, 500),
        purchase("b", Who::CustomerId(id.clone()), t, 700),
    ];
    let r = api
        .record_events(batch(first.clone()))
        .await
        .expect("first")
        .into_inner();
    assert_eq!((r.accepted, r.duplicates), (2, 0));

    // The same events again, by id or external id: duplicates, never second rows.
    let mut again = first.clone();
    again[1].customer = Some(Who::CustomerExternalId("idem".into()));
    let r = api
        .record_events(batch(again))
        .await
        .expect("again")
        .into_inner();
    assert_eq!((r.accepted, r.duplicates), (0, 2));
    assert!(r.rejected.is_empty());

    // The same key with other content is a conflict; within one batch too.
    let r = api
        .record_events(batch(vec![
            purchase("a", Who::CustomerId(id.clone()), t, 501),
            purchase("c", Who::CustomerId(id.clone()), t, 100),
            purchase("c", Who::CustomerId(id.clone()), t, 100),
            purchase("c", Who::CustomerId(id.clone()), t, 999),
        ]))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!((r.accepted, r.duplicates), (1, 1));
    let rejected: Vec<_> = r
        .rejected
        .iter()
        .map(|x| (x.index, x.field.as_str()))
        .collect();
    assert_eq!(rejected, [(0, "event_key"), (3, "event_key")]);

    let listed = api
        .list_customer_events(timeline_of(&id))
        .await
        .expect("timeline")
        .into_inner();
    assert_eq!(listed.events.len(), 3);
    let a = listed
        .events
        .iter()
        .find(|e| e.event_key == "a")
        .expect("a stored");
    match &a.payload {
        Some(Payload::Transaction(tx)) => assert_eq!(tx.amount_minor, 500, "first write kept"),
        other => panic!("unexpected {other:?}"),
    }
}

async fn bad_events_are_rejected_one_by_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "bad").await;
    let mut api = server.events().await;
    let t = now_seconds() - 100;
    let good = || purchase("good", Who::CustomerId(id.clone()), t, 100);
    let mut cases: Vec<(pb::Event, &str)> = Vec::new();
    let mut e = good();
    e.event_key = String::new();
    cases.push((e, "event_key"));
    let mut e = good();
    e.event_key = "k".repeat(200);
    cases.push((e, "event_key"));
    let mut e = good();
    e.time = Some(ts(-86_400));
    cases.push((e, "time"));
    let mut e = good();
    e.time = Some(ts(now_seconds() + 2 * 86_400));
    cases.push((e, "time"));
    let mut e = good();
    e.time = None;
    cases.push((e, "time"));
    let mut e = good();
    e.customer = None;
    cases.push((e, "customer_id"));
    let mut e = good();
    e.customer = Some(Who::CustomerId("nobody".into()));
    cases.push((e, "customer_id"));
    let mut e = good();
    e.customer = Some(Who::CustomerExternalId("nobody".into()));
    cases.push((e, "customer_external_id"));
    let mut e = good();
    e.payload = None;
    cases.push((e, "payload"));
    let mut e = good();
    if let Some(Payload::Transaction(tx)) = &mut e.payload {
        tx.currency = "DOLLARS".into();
    }
    cases.push((e, "transaction.currency"));
    for (kind, score) in [
        (pb::FeedbackKind::Nps, 11),
        (pb::FeedbackKind::Csat, 0),
        (pb::FeedbackKind::Ces, 8),
        (pb::FeedbackKind::Review, 6),
    ] {
        let mut e = good();
        e.payload = Some(Payload::Feedback(pb::Feedback {
            kind: kind as i32,
            score: Some(score),
            comment: String::new(),
            channel: String::new(),
        }));
        cases.push((e, "feedback.score"));
    }
    let mut e = good();
    e.payload = Some(Payload::Feedback(pb::Feedback {
        kind: 99,
        score: Some(3),
        comment: String::new(),
        channel: String::new(),
    }));
    cases.push((e, "feedback.kind"));
    let mut e = good();
    e.payload = Some(Payload::Interaction(pb::Interaction {
        kind: pb::InteractionKind::Complaint as i32,
        resolved_time: Some(ts(t - 10)),
        ..Default::default()
    }));
    cases.push((e, "interaction.resolved_time"));

    let mut events: Vec<pb::Event> = cases.iter().map(|(e, _)| e.clone()).collect();
    events.push(good());
    let r = api
        .record_events(batch(events))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(r.accepted, 1, "the good event is kept: {:?}", r.rejected);
    assert_eq!(r.rejected.len(), cases.len());
    for (i, (rejected, (_, field))) in r.rejected.iter().zip(&cases).enumerate() {
        assert_eq!(rejected.index as usize, i);
        assert!(
            rejected.field == format!("events[{i}].{field}") || rejected.field == *field,
            "case {i}: expected {field}, got {} ({})",
            rejected.field,
            rejected.reason
        );
        assert!(!rejected.reason.is_empty());
    }
    let listed = api
        .list_customer_events(timeline_of(&id))
        .await
        .expect("timeline")
        .into_inner();
    assert_eq!(listed.events.len(), 1);
}

async fn a_batch_with_no_valid_event_is_invalid_argument(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "inv").await;
    let mut api = server.events().await;
    let t = now_seconds() - 100;
    let mut bad_score = purchase("s", Who::CustomerId(id.clone()), t, 1);
    bad_score.payload = Some(Payload::Feedback(pb::Feedback {
        kind: pb::FeedbackKind::Nps as i32,
        score: Some(11),
        comment: String::new(),
        channel: String::new(),
    }));
    assert_invalid(
        api.record_events(batch(vec![bad_score.clone()])).await,
        "events[0].feedback.score",
    );
    let mut bad_currency = purchase("c", Who::CustomerId(id.clone()), t, 1);
    if let Some(Payload::Transaction(tx)) = &mut bad_currency.payload {
        tx.currency = "ZZZ".into();
    }
    let both = api
        .record_events(batch(vec![bad_score, bad_currency]))
        .await
        .expect_err("nothing valid");
    let fields: Vec<String> = vitals_tests::violations(&both)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        fields,
        ["events[0].feedback.score", "events[1].transaction.currency"]
    );
    // An unknown customer is not a validation error: the batch is answered.
    let r = api
        .record_events(batch(vec![purchase(
            "u",
            Who::CustomerId("nobody".into()),
            t,
            1,
        )]))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!((r.accepted, r.rejected.len()), (0, 1));
}

async fn oversized_batch_is_invalid_argument(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "big").await;
    let mut api = server.events().await;
    let t = now_seconds() - 100;
    let events: Vec<_> = (0..10_001)
        .map(|i| purchase(&format!("e{i}"), Who::CustomerId(id.clone()), t, 1))
        .collect();
    assert_invalid(api.record_events(batch(events.clone())).await, "events");
    let listed = api
        .list_customer_events(timeline_of(&id))
        .await
        .expect("timeline")
        .into_inner();
    assert!(listed.events.is_empty(), "nothing half-written");
    // The largest allowed batch goes through whole.
    let r = api
        .record_events(batch(events[..10_000].to_vec()))
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(r.accepted, 10_000);
}

async fn record_time_is_now_or_the_event_time_for_backfills(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "rt").await;
    let mut api = server.events().await;
    let old = now_seconds() - 90 * 86_400;
    let before = now_seconds();
    api.record_events(batch(vec![purchase(
        "live",
        Who::CustomerId(id.clone()),
        old,
        1,
    )]))
    .await
    .expect("live");
    api.record_events(pb::RecordEventsRequest {
        events: vec![purchase("hist", Who::CustomerId(id.clone()), old - 5, 1)],
        backfill: true,
    })
    .await
    .expect("backfill");
    let listed = api
        .list_customer_events(timeline_of(&id))
        .await
        .expect("timeline")
        .into_inner();
    let live = &listed.events[0];
    let hist = &listed.events[1];
    assert_eq!(live.event_key, "live");
    let live_recorded = live.record_time.expect("record time").seconds;
    assert!(live_recorded >= before && live_recorded <= now_seconds());
    assert_eq!(
        hist.record_time, hist.time,
        "a backfill is known when it happened"
    );
}

async fn stream_events_commits_each_batch(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "stream").await;
    let mut api = server.events().await;
    let t = now_seconds() - 1_000;
    let batches: Vec<_> = (0..5)
        .map(|b| {
            let mut events: Vec<_> = (0..200)
                .map(|i| purchase(&format!("s{b}-{i}"), Who::CustomerId(id.clone()), t + i, 10))
                .collect();
            events.push(purchase("s-bad", Who::CustomerId("nobody".into()), t, 1));
            batch(events)
        })
        .collect();
    let r = api
        .stream_events(tokio_stream::iter(batches.clone()))
        .await
        .expect("streamed")
        .into_inner();
    assert_eq!((r.batches, r.accepted, r.duplicates), (5, 1000, 0));
    assert_eq!(r.rejected.len(), 5);
    assert_eq!(
        r.rejected.iter().map(|x| x.batch_index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(r.rejected.iter().all(|x| x.index == 200));
    let r = api
        .stream_events(tokio_stream::iter(batches))
        .await
        .expect("again")
        .into_inner();
    assert_eq!((r.accepted, r.duplicates), (0, 1000));
}

async fn timeline_filters_and_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = new_customer(&server, "tl").await;
    let mut api = server.events().await;
    let t = now_seconds() - 100_000;
    let mut events: Vec<_> = (0..30)
        // Pairs share a time, so the key breaks ties.
        .map(|i| {
            purchase(
                &format!("p{i:02}"),
                Who::CustomerId(id.clone()),
                t + i / 2,
                1,
            )
        })
        .collect();
    events.push(pb::Event {
        comment_analysis: None,
        event_key: "csat".into(),
        customer: Some(Who::CustomerId(id.clone())),
        time: Some(ts(t + 5)),
        record_time: None,
        payload: Some(Payload::Feedback(pb::Feedback {
            kind: pb::FeedbackKind::Csat as i32,
            score: Some(4),
            comment: String::new(),
            channel: String::new(),
        })),
    });
    api.record_events(batch(events)).await.expect("recorded");

    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_customer_events(pb::ListCustomerEventsRequest {
                page_size: 4,
                page_token: token.clone(),
                kinds: vec![pb::EventKind::Transaction as i32],
                ..timeline_of(&id)
            })
            .await
            .expect("page")
            .into_inner();
        keys.extend(page.events.into_iter().map(|e| e.event_key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<_> = (0..30).rev().map(|i| format!("p{i:02}")).collect();
    assert_eq!(keys, expected);

    let window = api
        .list_customer_events(pb::ListCustomerEventsRequest {
            start_time: Some(ts(t + 5)),
            end_time: Some(ts(t + 6)),
            ..timeline_of(&id)
        })
        .await
        .expect("window")
        .into_inner();
    let keys: Vec<_> = window.events.iter().map(|e| e.event_key.as_str()).collect();
    assert_eq!(keys, ["p11", "p10", "csat"]);

    assert_invalid(
        api.list_customer_events(pb::ListCustomerEventsRequest {
            kinds: vec![42],
            ..timeline_of(&id)
        })
        .await,
        "kinds[0]",
    );
    assert_invalid(
        api.list_customer_events(pb::ListCustomerEventsRequest {
            page_token: "bogus".into(),
            ..timeline_of(&id)
        })
        .await,
        "page_token",
    );
    assert_invalid(
        api.list_customer_events(pb::ListCustomerEventsRequest {
            customer: None,
            ..Default::default()
        })
        .await,
        "customer_id",
    );
}
