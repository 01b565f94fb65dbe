//! What customers write, end to end: comments and notes analysed on arrival (sentiment,
//! language), a negative comment about a routed subject opening a task for its
//! department in the batch's transaction, the analyses on the timeline and in
//! ListComments, erasure taking them away, and every bad request refused by field.

use tonic::Code;
use vitals_proto::v1::{self as pb, event::Customer as Who, event::Payload};
use vitals_tests::{Backend, TestServer, assert_invalid, both_backends, now_seconds, ts};

both_backends!(
    a_negative_delivery_review_without_a_score_opens_a_task_for_logistics,
    comments_are_listed_by_sentiment_language_and_customer_and_leave_with_erasure,
    bad_comments_and_comment_queries_are_refused_by_field,
    portfolio_metrics_count_comments_by_period_and_group,
    a_re_analysis_pages_through_every_stale_comment_and_stores_what_it_found,
);

async fn customer(server: &TestServer, external_id: &str, name: &str) -> pb::Customer {
    server
        .customers()
        .await
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: external_id.into(),
                display_name: name.into(),
                signup_time: Some(ts(now_seconds() - 86_400 * 400)),
                ..Default::default()
            }),
        })
        .await
        .expect("created")
        .into_inner()
}

fn event(customer_id: &str, key: &str, seconds_ago: i64, payload: Payload) -> pb::Event {
    pb::Event {
        event_key: key.into(),
        customer: Some(Who::CustomerId(customer_id.into())),
        time: Some(ts(now_seconds() - seconds_ago)),
        record_time: None,
        payload: Some(payload),
        comment_analysis: None,
    }
}

fn review(score: Option<i32>, comment: &str, channel: &str) -> Payload {
    Payload::Feedback(pb::Feedback {
        kind: pb::FeedbackKind::Review as i32,
        score,
        comment: comment.into(),
        channel: channel.into(),
    })
}

fn call_note(note: &str) -> Payload {
    Payload::Interaction(pb::Interaction {
        kind: pb::InteractionKind::Support as i32,
        severity: pb::Severity::Low as i32,
        category: String::new(),
        channel: "phone".into(),
        ticket_id: String::new(),
        resolved_time: None,
        note: note.into(),
    })
}

async fn tasks_of(server: &TestServer, customer_id: &str) -> Vec<pb::FollowUp> {
    server
        .follow_ups()
        .await
        .list_follow_ups(pb::ListFollowUpsRequest {
            customer_id: customer_id.into(),
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .follow_ups
}

async fn timeline(server: &TestServer, customer_id: &str) -> Vec<pb::Event> {
    server
        .events()
        .await
        .list_customer_events(pb::ListCustomerEventsRequest {
            customer: Some(pb::list_customer_events_request::Customer::CustomerId(
                customer_id.into(),
            )),
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .events
}

async fn comments(server: &TestServer, request: pb::ListCommentsRequest) -> Vec<pb::Comment> {
    server
        .events()
        .await
        .list_comments(request)
        .await
        .expect("listed")
        .into_inner()
        .comments
}

async fn a_negative_delivery_review_without_a_score_opens_a_task_for_logistics(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = customer(&server, "c-ada", "Ada Lovelace").await;
    let late = "The parcel arrived two weeks late and the courier was rude. Terrible delivery.";
    let outcome = server
        .record_events(vec![event(&ada.id, "r-1", 60, review(None, late, "web"))])
        .await;
    assert_eq!(
        (outcome.accepted, outcome.follow_ups_opened),
        (1, 1),
        "{outcome:?}"
    );

    let tasks = tasks_of(&server, &ada.id).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    assert_eq!(task.reason, pb::FollowUpReason::NegativeComment as i32);
    assert_eq!(task.department, "logistics");
    assert_eq!(task.source, "r-1");
    assert!(task.detail.contains("about delivery"), "{task:?}");
    let due = task.due_time.expect("due").seconds - task.create_time.expect("created").seconds;
    assert_eq!(due, 48 * 3600, "the rule's default service level");

    // The timeline carries the analysis: English, negative, by the built-in lexicons.
    let events = timeline(&server, &ada.id).await;
    let analysis = events[0].comment_analysis.clone().expect("analysed");
    assert_eq!(analysis.language, "en");
    assert!(analysis.sentiment <= -0.3, "{analysis:?}");
    assert_eq!(
        analysis.model_version, 0,
        "no text model trained yet: the lexicons"
    );
    match &events[0].payload {
        Some(Payload::Feedback(f)) => assert_eq!(f.score, None, "a review without a score"),
        other => panic!("expected the review, got {other:?}"),
    }

    // A happy delivery review opens nothing, and a second negative one does not open a
    // second task for the same reason.
    let happy = "Fast delivery, lovely packaging, thank you!";
    let more = server
        .record_events(vec![
            event(&ada.id, "r-2", 50, review(Some(5), happy, "web")),
            event(
                &ada.id,
                "r-3",
                40,
                review(
                    None,
                    "Late again, the courier lost my package. Awful.",
                    "web",
                ),
            ),
        ])
        .await;
    assert_eq!((more.accepted, more.follow_ups_opened), (2, 0), "{more:?}");
    let happy_analysis = timeline(&server, &ada.id)
        .await
        .into_iter()
        .find(|e| e.event_key == "r-2")
        .and_then(|e| e.comment_analysis)
        .expect("analysed");
    assert!(happy_analysis.sentiment >= 0.3, "{happy_analysis:?}");

    // The evaluation reads the last 90 days' comments: three, two of them negative.
    let evaluation = server
        .evaluations()
        .await
        .evaluate_customer(pb::EvaluateCustomerRequest {
            lookup: Some(pb::evaluate_customer_request::Lookup::CustomerId(
                ada.id.clone(),
            )),
            as_of: None,
        })
        .await
        .expect("evaluated")
        .into_inner();
    let summary = evaluation.comments.expect("a comment summary");
    assert_eq!((summary.comments, summary.negative), (3, 2), "{summary:?}");
    assert!(
        summary.mean_sentiment.is_some_and(|m| m < 0.0),
        "{summary:?}"
    );
    assert!(
        summary.negative_topics.is_empty(),
        "no text model, no topics: {summary:?}"
    );

    // Chinese, simplified and traditional, and a call note about billing.
    let li = customer(&server, "c-li", "李雷").await;
    let zh = "快递太慢了，包装也破了，非常失望";
    let zh_hant = "這次購物很滿意，質量很好，客服也很耐心";
    let billing =
        "Customer was charged twice for the same invoice and is very angry about the refund delay.";
    let written = server
        .record_events(vec![
            event(&li.id, "zh-1", 30, review(None, zh, "app")),
            event(&li.id, "zh-2", 20, review(None, zh_hant, "app")),
            event(&li.id, "call-1", 10, call_note(billing)),
        ])
        .await;
    assert_eq!(written.accepted, 3);
    assert_eq!(
        written.follow_ups_opened, 1,
        "one task per customer and reason: {written:?}"
    );
    let li_tasks = tasks_of(&server, &li.id).await;
    assert_eq!(li_tasks.len(), 1);
    assert_eq!(li_tasks[0].department, "logistics", "{:?}", li_tasks[0]);
    let by_key = |events: &[pb::Event], key: &str| {
        events
            .iter()
            .find(|e| e.event_key == key)
            .and_then(|e| e.comment_analysis.clone())
            .expect("analysed")
    };
    let li_events = timeline(&server, &li.id).await;
    let simplified = by_key(&li_events, "zh-1");
    assert_eq!(simplified.language, "zh-Hans");
    assert!(simplified.sentiment < 0.0, "{simplified:?}");
    let traditional = by_key(&li_events, "zh-2");
    assert_eq!(traditional.language, "zh-Hant");
    assert!(traditional.sentiment > 0.0, "{traditional:?}");
    let note = by_key(&li_events, "call-1");
    assert_eq!(note.language, "en");
    assert!(note.sentiment < 0.0, "{note:?}");
}

async fn comments_are_listed_by_sentiment_language_and_customer_and_leave_with_erasure(
    backend: Backend,
) {
    let server = TestServer::start(backend).await;
    let ada = customer(&server, "c-ada", "Ada Lovelace").await;
    let li = customer(&server, "c-li", "李雷").await;
    server
        .record_events(vec![
            event(
                &ada.id,
                "a-1",
                300,
                review(Some(1), "Terrible service, rude and useless staff.", "web"),
            ),
            event(
                &ada.id,
                "a-2",
                200,
                review(Some(5), "Excellent quality, I love it.", "email"),
            ),
            event(
                &li.id,
                "l-1",
                100,
                review(None, "质量很差，非常失望", "app"),
            ),
        ])
        .await;

    let all = comments(&server, pb::ListCommentsRequest::default()).await;
    let keys: Vec<&str> = all.iter().map(|c| c.event_key.as_str()).collect();
    assert_eq!(keys, ["l-1", "a-2", "a-1"], "newest first");
    let first = &all[2];
    assert_eq!(first.customer_name, "Ada Lovelace");
    assert_eq!(first.customer_external_id, "c-ada");
    assert_eq!(first.text, "Terrible service, rude and useless staff.");
    assert_eq!(first.score, Some(1));
    assert_eq!(
        first.source,
        Some(pb::comment::Source::FeedbackKind(
            pb::FeedbackKind::Review as i32
        ))
    );

    let negative = comments(
        &server,
        pb::ListCommentsRequest {
            sentiment_at_most: Some(-0.3),
            ..Default::default()
        },
    )
    .await;
    let keys: Vec<&str> = negative.iter().map(|c| c.event_key.as_str()).collect();
    assert_eq!(keys, ["l-1", "a-1"]);
    let chinese = comments(
        &server,
        pb::ListCommentsRequest {
            language: "zh-Hans".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(chinese.len(), 1);
    assert_eq!(chinese[0].customer_name, "李雷");
    let by_channel = comments(
        &server,
        pb::ListCommentsRequest {
            channel: "email".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_channel.len(), 1);
    assert_eq!(by_channel[0].event_key, "a-2");

    // Paging: one at a time, the same three in the same order.
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let page = server
            .events()
            .await
            .list_comments(pb::ListCommentsRequest {
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        paged.extend(page.comments.into_iter().map(|c| c.event_key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, ["l-1", "a-2", "a-1"]);

    // Erasure takes the words and what was read from them.
    server
        .customers()
        .await
        .delete_customer(pb::DeleteCustomerRequest {
            id: ada.id.clone(),
            etag: ada.etag.clone(),
        })
        .await
        .expect("erased");
    let left = comments(&server, pb::ListCommentsRequest::default()).await;
    let keys: Vec<&str> = left.iter().map(|c| c.event_key.as_str()).collect();
    assert_eq!(keys, ["l-1"]);
    let ada_only = comments(
        &server,
        pb::ListCommentsRequest {
            customer: Some(pb::list_comments_request::Customer::CustomerExternalId(
                "c-ada".into(),
            )),
            ..Default::default()
        },
    )
    .await;
    assert!(ada_only.is_empty(), "{ada_only:?}");
    assert!(
        timeline(&server, &ada.id)
            .await
            .iter()
            .all(|e| e.comment_analysis.is_none())
    );
}

async fn bad_comments_and_comment_queries_are_refused_by_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = customer(&server, "c-ada", "Ada Lovelace").await;
    let mut api = server.events().await;
    let send = |payload: Payload| pb::RecordEventsRequest {
        events: vec![event(&ada.id, "bad", 10, payload)],
        backfill: false,
    };
    // A review without a score says nothing without words; an NPS answer needs a score.
    assert_invalid(
        api.record_events(send(review(None, "  ", "web"))).await,
        "events[0].feedback.comment",
    );
    assert_invalid(
        api.record_events(send(Payload::Feedback(pb::Feedback {
            kind: pb::FeedbackKind::Nps as i32,
            score: None,
            comment: "fine".into(),
            channel: String::new(),
        })))
        .await,
        "events[0].feedback.score",
    );
    assert_invalid(
        api.record_events(send(call_note(&"x".repeat(4_001)))).await,
        "events[0].interaction.note",
    );
    // Nothing was stored by the refused batches.
    assert!(
        comments(&server, pb::ListCommentsRequest::default())
            .await
            .is_empty()
    );

    assert_invalid(
        api.list_comments(pb::ListCommentsRequest {
            sentiment_at_most: Some(2.0),
            ..Default::default()
        })
        .await,
        "sentiment_at_most",
    );
    assert_invalid(
        api.list_comments(pb::ListCommentsRequest {
            sentiment_at_most: Some(-0.5),
            sentiment_at_least: Some(0.5),
            ..Default::default()
        })
        .await,
        "sentiment_at_least",
    );
    assert_invalid(
        api.list_comments(pb::ListCommentsRequest {
            language: "fr".into(),
            ..Default::default()
        })
        .await,
        "language",
    );
    let unknown = api
        .list_comments(pb::ListCommentsRequest {
            customer: Some(pb::list_comments_request::Customer::CustomerExternalId(
                "nobody".into(),
            )),
            ..Default::default()
        })
        .await
        .expect_err("no such customer");
    assert_eq!(unknown.code(), Code::NotFound);

    // A route term must be one lower-case word; the rules stay as they were.
    let mut rules_api = server.follow_ups().await;
    let current = rules_api
        .get_follow_up_rules(pb::GetFollowUpRulesRequest { version: 0 })
        .await
        .expect("rules")
        .into_inner();
    let mut bad = current.clone();
    if let Some(rule) = bad.negative_comment.as_mut() {
        rule.routes[0].terms.push("Two Words".into());
    }
    assert_invalid(
        rules_api
            .update_follow_up_rules(pb::UpdateFollowUpRulesRequest { rules: Some(bad) })
            .await,
        "rules.negative_comment.routes[0].terms[17]",
    );
    // Left out by an older client: the rule stays as it is.
    let mut older = current.clone();
    older.negative_comment = None;
    let updated = rules_api
        .update_follow_up_rules(pb::UpdateFollowUpRulesRequest { rules: Some(older) })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.negative_comment, current.negative_comment);
}

async fn portfolio_metrics_count_comments_by_period_and_group(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = customer(&server, "c-ada", "Ada Lovelace").await;
    let li = customer(&server, "c-li", "李雷").await;
    let day = 86_400;
    // The period: the last 20 days, in one bucket; the ten before it are the bucket before.
    server
        .record_events(vec![
            event(
                &ada.id,
                "old",
                25 * day,
                review(Some(1), "Terrible, rude and useless.", "web"),
            ),
            event(
                &ada.id,
                "p-1",
                15 * day,
                review(Some(1), "Awful service, I am furious.", "web"),
            ),
            event(
                &ada.id,
                "p-2",
                10 * day,
                review(Some(5), "Wonderful, thank you so much!", "web"),
            ),
            event(
                &li.id,
                "p-3",
                5 * day,
                review(None, "质量很差，非常失望", "app"),
            ),
        ])
        .await;
    let now = now_seconds();
    let buckets = server
        .portfolio()
        .await
        .get_portfolio_metrics(pb::GetPortfolioMetricsRequest {
            start_time: Some(ts(now - 20 * day)),
            end_time: Some(ts(now)),
            group_by: pb::Grouping::Unspecified as i32,
            granularity: pb::Granularity::Unspecified as i32,
        })
        .await
        .expect("metrics")
        .into_inner()
        .buckets;
    assert_eq!(buckets.len(), 1, "{buckets:?}");
    let b = &buckets[0];
    // The comment 25 days ago is before the period: not counted in it.
    assert_eq!((b.comments, b.negative_comments), (3, 2), "{b:?}");
    let share = b.negative_comment_share.expect("a share");
    assert!((share - 2.0 / 3.0).abs() < 1e-9, "{b:?}");
    assert!(
        b.mean_sentiment.is_some_and(|m| (-1.0..=1.0).contains(&m)),
        "{b:?}"
    );
    assert!(
        b.rising_topics.is_empty(),
        "no text model, no topics: {b:?}"
    );
}

/// Re-analysis at the store: paging through the comments another text model version read
/// (small pages, so that a page ends inside one customer's comments), and the new analyses
/// stored in one statement a page: every comment once, each with its own values, and none
/// left stale afterwards.
async fn a_re_analysis_pages_through_every_stale_comment_and_stores_what_it_found(
    backend: Backend,
) {
    use vitals_domain::comments::{CommentAnalysis, CommentTopic};
    use vitals_domain::{
        CustomerData, CustomerRef, EventPayload, Feedback, FeedbackKind, NewEvent,
    };
    use vitals_store::RecordMode;

    let db = vitals_tests::TestDb::new(backend);
    let store = db.store();
    let now = vitals_domain::time::now_micros();
    let customers = (0..7u64)
        .map(|i| (i, CustomerData::new(format!("rc{i}"))))
        .collect();
    store.upsert_customers(customers, now).expect("customers");
    // Three comments each for seven customers.
    let events = (0..21usize)
        .map(|n| {
            (
                n,
                NewEvent {
                    event_key: format!("c{n}"),
                    customer: CustomerRef::ExternalId(format!("rc{}", n % 7)),
                    time: now - n as i64 * 1_000_000,
                    payload: EventPayload::Feedback(Feedback {
                        kind: FeedbackKind::Review,
                        score: None,
                        comment: Some(format!("comment number {n}")),
                        channel: "web".into(),
                    }),
                },
            )
        })
        .collect();
    let lexicon = |_: &str| CommentAnalysis {
        language: "en".into(),
        sentiment: 0.0,
        topic: None,
        model_version: 0,
    };
    store
        .record_events(events, RecordMode::Backfill, None, Some(&lexicon), now)
        .expect("comments");

    // What "version 2" finds: a value of its own for each comment.
    let analysis_of = |text: &str| {
        let n: i32 = text
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1);
        CommentAnalysis {
            language: "en".into(),
            sentiment: -1.0 + n as f32 / 10.0,
            topic: Some(CommentTopic {
                id: n as u32,
                name: format!("topic {n}"),
            }),
            model_version: 2,
        }
    };
    let mut from: Option<(String, String)> = None;
    let (mut seen, mut changed) = (0, 0);
    loop {
        let (page, next) = store
            .comments_analysed_by_another(
                2,
                (None, None),
                from.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
                4,
            )
            .expect("a page");
        seen += page.len();
        let updates: Vec<_> = page
            .iter()
            .map(|c| {
                (
                    c.customer_id.clone(),
                    c.event_key.clone(),
                    analysis_of(&c.text),
                )
            })
            .collect();
        changed += store.update_comment_analyses(&updates).expect("stored");
        match next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    assert_eq!((seen, changed), (21, 21));
    let (left, _) = store
        .comments_analysed_by_another(2, (None, None), None, 100)
        .expect("none left");
    assert!(left.is_empty(), "{left:?}");
    for i in 0..7 {
        let c = store
            .get_customer_by_external_id(&format!("rc{i}"))
            .expect("customer");
        let keys: Vec<String> = (0..21)
            .filter(|n| n % 7 == i)
            .map(|n| format!("c{n}"))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let stored = store.comment_analyses_of(&c.id, &keys).expect("analyses");
        assert_eq!(stored.len(), 3, "rc{i}");
        for (key, a) in stored {
            let n: i32 = key.trim_start_matches('c').parse().expect("a key c<n>");
            assert_eq!(a.model_version, 2);
            assert!(
                (a.sentiment - (-1.0 + n as f32 / 10.0)).abs() < 1e-6,
                "{key}: {a:?}"
            );
            assert_eq!(
                a.topic.map(|t| (t.id, t.name)),
                Some((n as u32, format!("topic {n}")))
            );
        }
    }
}
