//! FollowUpService end to end: tasks opened by bad signals (once per customer and
//! reason), their status moves, the versioned rules, retention actions on the timeline,
//! and campaigns with a control group and their review.

use tonic::Code;
use vitals_proto::v1::{
    self as pb, event::Customer as Who, event::Payload, update_follow_up_request::Action,
};
use vitals_tests::{Backend, TestServer, assert_invalid, both_backends, now_seconds, ts};

both_backends!(
    a_detractor_opens_one_task_however_often_it_is_sent,
    follow_up_moves_are_checked,
    rules_are_versioned_validated_and_applied,
    retention_actions_and_campaigns_close_the_loop,
);

async fn customer(server: &TestServer, external_id: &str) -> String {
    server
        .create_customer(pb::Customer {
            external_id: external_id.into(),
            signup_time: Some(ts(now_seconds() - 86_400 * 400)),
            ..Default::default()
        })
        .await
}

fn event(customer_id: &str, key: &str, seconds_ago: i64, payload: Payload) -> pb::Event {
    pb::Event {
        comment_analysis: None,
        event_key: key.into(),
        customer: Some(Who::CustomerId(customer_id.into())),
        time: Some(ts(now_seconds() - seconds_ago)),
        record_time: None,
        payload: Some(payload),
    }
}

fn nps(score: i32) -> Payload {
    Payload::Feedback(pb::Feedback {
        kind: pb::FeedbackKind::Nps as i32,
        score: Some(score),
        comment: String::new(),
        channel: "web".into(),
    })
}

async fn record(
    server: &TestServer,
    events: Vec<pb::Event>,
    backfill: bool,
) -> pb::RecordEventsResponse {
    server
        .events()
        .await
        .record_events(pb::RecordEventsRequest { events, backfill })
        .await
        .expect("recorded")
        .into_inner()
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

async fn a_detractor_opens_one_task_however_often_it_is_sent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let id = customer(&server, "fu-1").await;
    // Made once: built again a second later, its time would differ, and the re-sent
    // answer would be a conflicting one rather than the same.
    let answer = event(&id, "nps-1", 60, nps(3));
    let first = record(&server, vec![answer.clone()], false).await;
    assert_eq!((first.accepted, first.follow_ups_opened), (1, 1));
    // The same answer re-sent, and a second detractor answer: still one open task.
    let again = record(&server, vec![answer], false).await;
    assert_eq!((again.duplicates, again.follow_ups_opened), (1, 0));
    let second = record(&server, vec![event(&id, "nps-2", 30, nps(0))], false).await;
    assert_eq!((second.accepted, second.follow_ups_opened), (1, 0));
    // A promoter, a purchase: nothing.
    let fine = record(&server, vec![event(&id, "nps-3", 20, nps(9))], false).await;
    assert_eq!(fine.follow_ups_opened, 0);

    let tasks = tasks_of(&server, &id).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let t = &tasks[0];
    assert_eq!(t.reason, pb::FollowUpReason::Detractor as i32);
    assert_eq!(t.department, "customer_service");
    assert_eq!(t.status, pb::FollowUpStatus::Open as i32);
    assert_eq!(t.source, "nps-1");
    assert!(t.detail.contains("NPS 3"), "{t:?}");
    let due = t.due_time.expect("due").seconds - t.create_time.expect("created").seconds;
    assert_eq!(due, 48 * 3600, "the default service level is 48 hours");
    assert!(!t.overdue);
    let got = server
        .follow_ups()
        .await
        .get_follow_up(pb::GetFollowUpRequest { id: t.id.clone() })
        .await
        .expect("got")
        .into_inner();
    assert_eq!(&got, t);

    // A history load opens nothing: those signals are long past.
    let other = customer(&server, "fu-2").await;
    let loaded = record(
        &server,
        vec![event(&other, "old-nps", 86_400 * 300, nps(1))],
        true,
    )
    .await;
    assert_eq!((loaded.accepted, loaded.follow_ups_opened), (1, 0));
    assert!(tasks_of(&server, &other).await.is_empty());

    // A complaint goes to quality, an invoice two months overdue to finance.
    let complaint = Payload::Interaction(pb::Interaction {
        note: String::new(),
        kind: pb::InteractionKind::Complaint as i32,
        severity: pb::Severity::High as i32,
        category: "billing".into(),
        channel: "phone".into(),
        ticket_id: "t-1".into(),
        resolved_time: None,
    });
    let overdue = Payload::Payment(pb::Payment {
        invoice_id: "inv-1".into(),
        amount_minor: 4_200,
        currency: "EUR".into(),
        due_time: Some(ts(now_seconds() - 86_400 * 60)),
        paid_time: None,
        method: String::new(),
    });
    let out = record(
        &server,
        vec![
            event(&other, "c-1", 10, complaint),
            event(&other, "p-1", 86_400 * 70, overdue),
        ],
        false,
    )
    .await;
    assert_eq!(out.follow_ups_opened, 2);
    let mut departments: Vec<String> = tasks_of(&server, &other)
        .await
        .into_iter()
        .map(|t| t.department)
        .collect();
    departments.sort();
    assert_eq!(departments, ["finance", "quality"]);

    // Filters: by department, by reason, overdue only (none yet).
    let mut api = server.follow_ups().await;
    let quality = api
        .list_follow_ups(pb::ListFollowUpsRequest {
            department: "quality".into(),
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .follow_ups;
    assert_eq!(quality.len(), 1);
    let detractors = api
        .list_follow_ups(pb::ListFollowUpsRequest {
            reason: pb::FollowUpReason::Detractor as i32,
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .follow_ups;
    assert_eq!(detractors.len(), 1);
    let overdue = api
        .list_follow_ups(pb::ListFollowUpsRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await
        .expect("listed")
        .into_inner()
        .follow_ups;
    assert!(overdue.is_empty());
    // Pagination: one at a time, earliest due first, no repeats.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_follow_ups(pb::ListFollowUpsRequest {
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        seen.extend(
            page.follow_ups
                .into_iter()
                .map(|t| (t.due_time.map(|d| d.seconds), t.id)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
}

async fn update(
    server: &TestServer,
    id: &str,
    etag: &str,
    action: Action,
) -> Result<pb::FollowUp, tonic::Status> {
    server
        .follow_ups()
        .await
        .update_follow_up(pb::UpdateFollowUpRequest {
            id: id.into(),
            etag: etag.into(),
            action: Some(action),
        })
        .await
        .map(|r| r.into_inner())
}

async fn follow_up_moves_are_checked(backend: Backend) {
    use pb::update_follow_up_request::{Assign, Dismiss, Resolve, Start};
    let server = TestServer::start(backend).await;
    let id = customer(&server, "mv-1").await;
    record(&server, vec![event(&id, "n1", 60, nps(2))], false).await;
    let task = tasks_of(&server, &id).await.remove(0);

    // Resolving an open task skips a step.
    let status = update(
        &server,
        &task.id,
        &task.etag,
        Action::Resolve(Resolve {
            outcome: "called".into(),
        }),
    )
    .await
    .expect_err("not started");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("start"), "{status:?}");
    // No action, bad etag, unknown id, empty assignee.
    assert_invalid(
        server
            .follow_ups()
            .await
            .update_follow_up(pb::UpdateFollowUpRequest {
                id: task.id.clone(),
                etag: task.etag.clone(),
                action: None,
            })
            .await,
        "action",
    );
    assert_invalid(
        update(
            &server,
            &task.id,
            "x",
            Action::Assign(Assign {
                assignee: "ann".into(),
            }),
        )
        .await,
        "etag",
    );
    let missing = update(
        &server,
        "no-such-task",
        "1",
        Action::Assign(Assign {
            assignee: "ann".into(),
        }),
    )
    .await
    .expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
    assert_invalid(
        update(
            &server,
            &task.id,
            &task.etag,
            Action::Assign(Assign {
                assignee: " ".into(),
            }),
        )
        .await,
        "assign.assignee",
    );

    let assigned = update(
        &server,
        &task.id,
        &task.etag,
        Action::Assign(Assign {
            assignee: "ann".into(),
        }),
    )
    .await
    .expect("assigned");
    assert_eq!(assigned.status, pb::FollowUpStatus::Assigned as i32);
    assert_eq!(assigned.assignee, "ann");
    // The old etag is stale now.
    let stale = update(
        &server,
        &task.id,
        &task.etag,
        Action::Start(Start {
            assignee: String::new(),
        }),
    )
    .await
    .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    let started = update(
        &server,
        &task.id,
        &assigned.etag,
        Action::Start(Start {
            assignee: String::new(),
        }),
    )
    .await
    .expect("started");
    assert_eq!(started.status, pb::FollowUpStatus::InProgress as i32);
    let resolved = update(
        &server,
        &task.id,
        &started.etag,
        Action::Resolve(Resolve {
            outcome: "refund agreed".into(),
        }),
    )
    .await
    .expect("resolved");
    assert_eq!(resolved.status, pb::FollowUpStatus::Resolved as i32);
    assert_eq!(resolved.outcome, "refund agreed");
    assert!(resolved.close_time.is_some());
    let after = update(
        &server,
        &task.id,
        &resolved.etag,
        Action::Dismiss(Dismiss {
            reason: "dup".into(),
        }),
    )
    .await
    .expect_err("closed");
    assert_eq!(after.code(), Code::FailedPrecondition);

    // With the first closed, a new detractor answer opens a new task; dismissing needs a reason.
    let out = record(&server, vec![event(&id, "n2", 30, nps(1))], false).await;
    assert_eq!(out.follow_ups_opened, 1);
    let open: Vec<_> = tasks_of(&server, &id)
        .await
        .into_iter()
        .filter(|t| t.status == pb::FollowUpStatus::Open as i32)
        .collect();
    assert_eq!(open.len(), 1);
    assert_invalid(
        update(
            &server,
            &open[0].id,
            &open[0].etag,
            Action::Dismiss(Dismiss {
                reason: String::new(),
            }),
        )
        .await,
        "dismiss.reason",
    );
    let dismissed = update(
        &server,
        &open[0].id,
        &open[0].etag,
        Action::Dismiss(Dismiss {
            reason: "test answer".into(),
        }),
    )
    .await
    .expect("dismissed");
    assert_eq!(dismissed.dismiss_reason, "test answer");

    // Eight concurrent assignments from one etag: exactly one wins.
    record(&server, vec![event(&id, "n3", 10, nps(0))], false).await;
    let open = tasks_of(&server, &id)
        .await
        .into_iter()
        .find(|t| t.status == pb::FollowUpStatus::Open as i32)
        .expect("a third task");
    let mut handles = Vec::new();
    for k in 0..8 {
        let mut api = server.follow_ups().await;
        let (id, etag) = (open.id.clone(), open.etag.clone());
        handles.push(tokio::spawn(async move {
            api.update_follow_up(pb::UpdateFollowUpRequest {
                id,
                etag,
                action: Some(Action::Assign(Assign {
                    assignee: format!("agent-{k}"),
                })),
            })
            .await
            .map(|_| ())
            .map_err(|s| s.code())
        }));
    }
    let mut wins = 0;
    for h in handles {
        match h.await.expect("joined") {
            Ok(()) => wins += 1,
            Err(code) => assert_eq!(code, Code::Aborted),
        }
    }
    assert_eq!(wins, 1);
}

async fn rules_are_versioned_validated_and_applied(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.follow_ups().await;
    let v1 = api
        .get_follow_up_rules(pb::GetFollowUpRulesRequest { version: 0 })
        .await
        .expect("rules")
        .into_inner();
    assert_eq!(v1.version, 1);
    let detractor = v1.detractor.clone().expect("detractor rule");
    assert_eq!((detractor.nps_at_most, detractor.csat_at_most), (6, 2));

    // Invalid thresholds name their fields; nothing is stored.
    let mut bad = v1.clone();
    if let Some(d) = bad.detractor.as_mut() {
        d.nps_at_most = 11;
    }
    if let Some(c) = bad.churn_risk.as_mut() {
        c.probability_at_least = 1.5;
    }
    bad.complaint = None;
    let status = api
        .update_follow_up_rules(pb::UpdateFollowUpRulesRequest { rules: Some(bad) })
        .await
        .expect_err("invalid");
    let fields: Vec<String> = vitals_tests::violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    for f in [
        "rules.detractor.nps_at_most",
        "rules.churn_risk.probability_at_least",
        "rules.complaint",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }

    // Turn detractors off: version 2. The same edit again from version 1 is stale.
    let mut off = v1.clone();
    if let Some(r) = off.detractor.as_mut().and_then(|d| d.routing.as_mut()) {
        r.enabled = false;
    }
    let v2 = api
        .update_follow_up_rules(pb::UpdateFollowUpRulesRequest {
            rules: Some(off.clone()),
        })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(v2.version, 2);
    let stale = api
        .update_follow_up_rules(pb::UpdateFollowUpRulesRequest { rules: Some(off) })
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::Aborted);
    let old = api
        .get_follow_up_rules(pb::GetFollowUpRulesRequest { version: 1 })
        .await
        .expect("version 1 kept")
        .into_inner();
    assert!(
        old.detractor
            .and_then(|d| d.routing)
            .is_some_and(|r| r.enabled)
    );

    let id = customer(&server, "rules-1").await;
    let out = record(&server, vec![event(&id, "n1", 60, nps(0))], false).await;
    assert_eq!(out.follow_ups_opened, 0, "detractor rule is off");
}

async fn retention_actions_and_campaigns_close_the_loop(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(customer(&server, &format!("camp-{i}")).await);
    }
    // Snapshots to draw from (no models yet: every customer matches an empty target).
    let mut evaluations = server.evaluations().await;
    let mut progress = evaluations
        .refresh_evaluations(pb::RefreshEvaluationsRequest::default())
        .await
        .expect("refresh")
        .into_inner();
    while let Some(p) = tokio_stream::StreamExt::next(&mut progress).await {
        p.expect("progress");
    }
    let mut api = server.follow_ups().await;
    assert_invalid(
        api.create_campaign(pb::CreateCampaignRequest {
            name: "winback".into(),
            action_kind: "call".into(),
            holdout_share: Some(0.9),
            ..Default::default()
        })
        .await,
        "holdout_share",
    );
    let campaign = api
        .create_campaign(pb::CreateCampaignRequest {
            name: "winback".into(),
            action_kind: "call".into(),
            target: None,
            holdout_share: Some(0.2),
            seed: Some(7),
            horizon_days: 30,
        })
        .await
        .expect("created")
        .into_inner();
    assert_eq!((campaign.treated_count, campaign.control_count), (24, 6));
    assert_eq!(campaign.seed, 7);
    let again = api
        .create_campaign(pb::CreateCampaignRequest {
            name: "winback".into(),
            action_kind: "call".into(),
            ..Default::default()
        })
        .await
        .expect_err("names are unique");
    assert_eq!(again.code(), Code::AlreadyExists);

    let treated = api
        .list_campaign_members(pb::ListCampaignMembersRequest {
            campaign: "winback".into(),
            arm: pb::CampaignArm::Treated as i32,
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("members")
        .into_inner()
        .members;
    assert_eq!(treated.len(), 24);
    // Members name their customers: no names here, so the external ids.
    assert!(
        treated
            .iter()
            .all(|m| m.external_id.starts_with("camp-") && m.display_name == m.external_id),
        "{treated:?}"
    );

    // An action naming no existing campaign is refused; the treated get theirs.
    let unknown = api
        .record_retention_action(pb::RecordRetentionActionRequest {
            event_key: "a-x".into(),
            customer: Some(pb::record_retention_action_request::Customer::CustomerId(
                ids[0].clone(),
            )),
            time: Some(ts(now_seconds())),
            action: Some(pb::RetentionAction {
                kind: "call".into(),
                campaign: "nope".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("unknown campaign");
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert_invalid(
        api.record_retention_action(pb::RecordRetentionActionRequest {
            event_key: "a-y".into(),
            customer: Some(pb::record_retention_action_request::Customer::CustomerId(
                ids[0].clone(),
            )),
            time: Some(ts(now_seconds())),
            action: Some(pb::RetentionAction {
                kind: "discount".into(),
                cost_minor: -5,
                currency: "EUR".into(),
                ..Default::default()
            }),
        })
        .await,
        "action.cost_minor",
    );
    // The control group is left alone: a campaign action for one of them is refused.
    let control = api
        .list_campaign_members(pb::ListCampaignMembersRequest {
            campaign: "winback".into(),
            arm: pb::CampaignArm::Control as i32,
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("control members")
        .into_inner()
        .members;
    assert_eq!(control.len(), 6);
    let held_out = api
        .record_retention_action(pb::RecordRetentionActionRequest {
            event_key: "a-c".into(),
            customer: Some(pb::record_retention_action_request::Customer::CustomerId(
                control[0].customer_id.clone(),
            )),
            time: Some(ts(now_seconds())),
            action: Some(pb::RetentionAction {
                kind: "call".into(),
                campaign: "winback".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("control members are left alone");
    assert_eq!(held_out.code(), Code::FailedPrecondition);
    assert!(held_out.message().contains("control group"), "{held_out:?}");
    // After the draw (only actions from the draw on count as treatment).
    let called_at = ts(now_seconds() + 1);
    let call = |customer_id: &str, cost_minor: i64| pb::RecordRetentionActionRequest {
        event_key: "winback-call".into(),
        customer: Some(pb::record_retention_action_request::Customer::CustomerId(
            customer_id.to_owned(),
        )),
        time: Some(called_at),
        action: Some(pb::RetentionAction {
            kind: "call".into(),
            cost_minor,
            currency: "EUR".into(),
            campaign: "winback".into(),
            actor: "ann".into(),
            note: "offered a plan change".into(),
            ..Default::default()
        }),
    };
    for m in &treated {
        let r = api
            .record_retention_action(call(&m.customer_id, 500))
            .await
            .expect("recorded")
            .into_inner();
        assert!(!r.duplicate);
    }
    // A retry is recognised; the same key with other content is a conflict; a time is
    // required so that retries can be recognised at all.
    let first = &treated[0].customer_id;
    let retry = api
        .record_retention_action(call(first, 500))
        .await
        .expect("a retry")
        .into_inner();
    assert!(retry.duplicate);
    let conflict = api
        .record_retention_action(call(first, 900))
        .await
        .expect_err("same key, other content");
    assert_eq!(conflict.code(), Code::AlreadyExists);
    let mut untimed = call(first, 500);
    untimed.time = None;
    assert_invalid(api.record_retention_action(untimed).await, "time");
    let dup = api
        .record_retention_action(pb::RecordRetentionActionRequest {
            event_key: "winback-call".into(),
            customer: Some(pb::record_retention_action_request::Customer::CustomerId(
                first.clone(),
            )),
            time: Some(called_at),
            action: None,
        })
        .await;
    assert_invalid(dup, "action");
    let timeline = server
        .events()
        .await
        .list_customer_events(pb::ListCustomerEventsRequest {
            customer: Some(pb::list_customer_events_request::Customer::CustomerId(
                first.clone(),
            )),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner()
        .events;
    let action = timeline
        .iter()
        .find_map(|e| match &e.payload {
            Some(Payload::RetentionAction(a)) => Some(a),
            _ => None,
        })
        .expect("the action is on the timeline");
    assert_eq!(
        (
            action.kind.as_str(),
            action.campaign.as_str(),
            action.cost_minor
        ),
        ("call", "winback", 500)
    );

    // Reviewed now, every window is still open; reviewed 31 days on, all are counted
    // (nobody bought: everyone churned), with too few in the control group to say anything.
    let now_review = api
        .review_campaign(pb::ReviewCampaignRequest {
            subject: Some(pb::review_campaign_request::Subject::Campaign(
                "winback".into(),
            )),
            as_of: None,
        })
        .await
        .expect("review")
        .into_inner();
    assert_eq!(now_review.pending, 30);
    let later = api
        .review_campaign(pb::ReviewCampaignRequest {
            subject: Some(pb::review_campaign_request::Subject::Campaign(
                "winback".into(),
            )),
            as_of: Some(ts(now_seconds() + 31 * 86_400)),
        })
        .await
        .expect("review")
        .into_inner();
    let (t, c) = (
        later.treated.expect("treated"),
        later.control.expect("control"),
    );
    assert_eq!(
        (t.customers, t.churned, c.customers, c.churned),
        (24, 24, 6, 6)
    );
    assert_eq!(later.verdict, "too_few");
    assert_eq!(later.treatment_cost_minor, 24 * 500);
    assert!(later.summary.contains("Too few"), "{}", later.summary);
    let missing = api
        .review_campaign(pb::ReviewCampaignRequest {
            subject: Some(pb::review_campaign_request::Subject::Campaign(
                "nope".into(),
            )),
            as_of: None,
        })
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), Code::NotFound);
}
