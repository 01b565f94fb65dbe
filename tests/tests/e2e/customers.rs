use std::collections::HashSet;

use prost_types::FieldMask;
use tonic::Code;
use vitals_proto::v1::{self as pb, attribute_value::Value, get_customer_request::Lookup};
use vitals_tests::{
    Backend, TestServer, assert_invalid, both_backends, now_seconds, ts, violations,
};

fn customer(external_id: &str) -> pb::Customer {
    pb::Customer {
        external_id: external_id.into(),
        display_name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        phone: "+44 20 7946 0000".into(),
        region: "EU".into(),
        acquisition_channel: "web".into(),
        contractual: true,
        signup_time: Some(ts(1_600_000_000)),
        attributes: [
            ("plan".to_string(), Value::StringValue("gold".into())),
            ("monthly_charge".to_string(), Value::NumberValue(29.85)),
            ("senior".to_string(), Value::BoolValue(false)),
        ]
        .into_iter()
        .map(|(k, v)| (k, pb::AttributeValue { value: Some(v) }))
        .collect(),
        ..Default::default()
    }
}

fn create(c: pb::Customer) -> pb::CreateCustomerRequest {
    pb::CreateCustomerRequest { customer: Some(c) }
}

fn by_id(id: &str) -> pb::GetCustomerRequest {
    pb::GetCustomerRequest {
        lookup: Some(Lookup::Id(id.into())),
    }
}

both_backends!(
    create_then_get_by_id_and_external_id,
    duplicate_external_id_is_already_exists,
    bad_customers_get_field_violations,
    unknown_customer_is_not_found,
    update_applies_the_mask_and_refuses_stale_etags,
    concurrent_updates_with_one_etag_one_wins,
    erasure_wipes_pii_for_good_and_keeps_history,
    list_pages_neither_skip_nor_repeat_under_inserts,
    list_filters_and_bad_page_requests,
    import_upserts_and_reports_bad_rows,
);

async fn create_then_get_by_id_and_external_id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let created = api
        .create_customer(create(customer("crm-1")))
        .await
        .expect("created")
        .into_inner();
    assert!(!created.id.is_empty());
    assert_eq!(created.status, pb::CustomerStatus::Active as i32);
    assert_eq!(created.etag, "1");
    assert!(created.create_time.is_some() && created.update_time.is_some());

    let got = api
        .get_customer(by_id(&created.id))
        .await
        .expect("got")
        .into_inner();
    assert_eq!(got, created);
    let got = api
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(Lookup::ExternalId("crm-1".into())),
        })
        .await
        .expect("got by external id")
        .into_inner();
    assert_eq!(got, created);
    assert_eq!(
        got.attributes["monthly_charge"].value,
        Some(Value::NumberValue(29.85))
    );
    server.stop().await;
}

async fn duplicate_external_id_is_already_exists(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    api.create_customer(create(customer("dup")))
        .await
        .expect("first");
    let err = api
        .create_customer(create(customer("dup")))
        .await
        .expect_err("second is refused");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("dup"), "{}", err.message());
}

async fn bad_customers_get_field_violations(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    type Spoil = Box<dyn Fn(&mut pb::Customer)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("customer.external_id", Box::new(|c| c.external_id.clear())),
        (
            "customer.external_id",
            Box::new(|c| c.external_id = "x".repeat(129)),
        ),
        (
            "customer.email",
            Box::new(|c| c.email = "not-an-email".into()),
        ),
        ("customer.phone", Box::new(|c| c.phone = "12".into())),
        (
            "customer.display_name",
            Box::new(|c| c.display_name = "n".repeat(300)),
        ),
        (
            "customer.signup_time",
            Box::new(|c| c.signup_time = Some(ts(-10))),
        ),
        (
            "customer.signup_time",
            Box::new(|c| c.signup_time = Some(ts(now_seconds() + 3 * 86_400))),
        ),
        (
            "customer.signup_time",
            Box::new(|c| {
                c.signup_time = Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -5,
                })
            }),
        ),
        ("customer.status", Box::new(|c| c.status = 42)),
        (
            "customer.status",
            Box::new(|c| c.status = pb::CustomerStatus::Erased as i32),
        ),
        (
            "customer.attributes",
            Box::new(|c| {
                for i in 0..65 {
                    c.attributes.insert(
                        format!("a{i}"),
                        pb::AttributeValue {
                            value: Some(Value::BoolValue(true)),
                        },
                    );
                }
            }),
        ),
        (
            "customer.attributes[\"plan\"]",
            Box::new(|c| {
                c.attributes
                    .insert("plan".into(), pb::AttributeValue { value: None });
            }),
        ),
        (
            "customer.attributes[\"x\"]",
            Box::new(|c| {
                c.attributes.insert(
                    "x".into(),
                    pb::AttributeValue {
                        value: Some(Value::NumberValue(f64::INFINITY)),
                    },
                );
            }),
        ),
    ];
    for (field, spoil) in cases {
        let mut c = customer("bad");
        spoil(&mut c);
        assert_invalid(api.create_customer(create(c)).await, field);
    }
    assert_invalid(
        api.create_customer(pb::CreateCustomerRequest { customer: None })
            .await,
        "customer",
    );
    // Nothing was stored by any of them.
    let listed = api
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.customers.is_empty());
}

async fn unknown_customer_is_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let err = api
        .get_customer(by_id("nobody"))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_invalid(api.get_customer(by_id("")).await, "id");
    assert_invalid(
        api.get_customer(pb::GetCustomerRequest { lookup: None })
            .await,
        "id",
    );
    let err = api
        .delete_customer(pb::DeleteCustomerRequest {
            id: "nobody".into(),
            etag: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn update_applies_the_mask_and_refuses_stale_etags(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let created = api
        .create_customer(create(customer("upd")))
        .await
        .expect("created")
        .into_inner();
    let patch = pb::Customer {
        id: created.id.clone(),
        etag: created.etag.clone(),
        email: "new@example.com".into(),
        region: "ignored, not in the mask".into(),
        ..Default::default()
    };
    let updated = api
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch.clone()),
            update_mask: mask(&["email"]),
        })
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.email, "new@example.com");
    assert_eq!(updated.region, "EU");
    assert_eq!(updated.display_name, "Ada Lovelace");
    assert_ne!(updated.etag, created.etag);

    // The same etag again is stale: ABORTED, and nothing changes.
    let stale = pb::Customer {
        email: "stale@example.com".into(),
        ..patch.clone()
    };
    let err = api
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(stale),
            update_mask: mask(&["email"]),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
    let now = api
        .get_customer(by_id(&created.id))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(now, updated);

    // Bad masks and bad values.
    let current = pb::Customer {
        etag: updated.etag.clone(),
        ..patch.clone()
    };
    for (paths, field) in [
        (vec![], "update_mask"),
        (vec!["id"], "update_mask"),
        (vec!["create_time"], "update_mask"),
    ] {
        assert_invalid(
            api.update_customer(pb::UpdateCustomerRequest {
                customer: Some(current.clone()),
                update_mask: mask(&paths),
            })
            .await,
            field,
        );
    }
    assert_invalid(
        api.update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                email: "broken".into(),
                ..current.clone()
            }),
            update_mask: mask(&["email"]),
        })
        .await,
        "customer.email",
    );
    assert_invalid(
        api.update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                etag: String::new(),
                ..current.clone()
            }),
            update_mask: mask(&["email"]),
        })
        .await,
        "customer.etag",
    );
    // external_id can move, but not onto another customer's.
    api.create_customer(create(customer("taken")))
        .await
        .expect("other");
    let err = api
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "taken".into(),
                ..current.clone()
            }),
            update_mask: mask(&["external_id"]),
        })
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    let after = api
        .get_customer(by_id(&created.id))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(after, updated, "failed updates change nothing");
}

async fn concurrent_updates_with_one_etag_one_wins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let created = api
        .create_customer(create(customer("race")))
        .await
        .expect("created")
        .into_inner();
    let mut handles = Vec::new();
    for i in 0..8 {
        let mut api = server.customers().await;
        let req = pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: created.id.clone(),
                etag: created.etag.clone(),
                region: format!("region-{i}"),
                ..Default::default()
            }),
            update_mask: mask(&["region"]),
        };
        handles.push(tokio::spawn(async move { api.update_customer(req).await }));
    }
    let mut wins = Vec::new();
    let mut aborted = 0;
    for h in handles {
        match h.await.expect("task") {
            Ok(r) => wins.push(r.into_inner()),
            Err(s) if s.code() == Code::Aborted => aborted += 1,
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one writer wins");
    assert_eq!(aborted, 7);
    let stored = api
        .get_customer(by_id(&created.id))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(stored, wins[0]);
}

async fn erasure_wipes_pii_for_good_and_keeps_history(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let mut events = server.events().await;
    let created = api
        .create_customer(create(customer("gdpr")))
        .await
        .expect("created")
        .into_inner();
    let feedback = pb::Event {
        comment_analysis: None,
        event_key: "survey-1".into(),
        customer: Some(pb::event::Customer::CustomerId(created.id.clone())),
        time: Some(ts(now_seconds() - 60)),
        record_time: None,
        payload: Some(pb::event::Payload::Feedback(pb::Feedback {
            kind: pb::FeedbackKind::Nps as i32,
            score: Some(2),
            comment: "Call me at +44 20 7946 0000, Ada".into(),
            channel: "email".into(),
        })),
    };
    let r = events
        .record_events(pb::RecordEventsRequest {
            events: vec![feedback.clone()],
            backfill: false,
        })
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(r.accepted, 1);

    // A stale etag refuses the erasure.
    let err = api
        .delete_customer(pb::DeleteCustomerRequest {
            id: created.id.clone(),
            etag: "999".into(),
        })
        .await
        .expect_err("stale");
    assert_eq!(err.code(), Code::Aborted);

    let erased = api
        .delete_customer(pb::DeleteCustomerRequest {
            id: created.id.clone(),
            etag: created.etag.clone(),
        })
        .await
        .expect("erased")
        .into_inner();
    assert_eq!(erased.status, pb::CustomerStatus::Erased as i32);
    assert!(erased.display_name.is_empty() && erased.email.is_empty() && erased.phone.is_empty());
    assert_eq!(erased.external_id, "gdpr");
    assert_eq!(erased.region, "EU");

    // Stored for good: a fresh read shows no PII, the event is kept without its comment.
    let got = api
        .get_customer(by_id(&created.id))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, erased);
    let timeline = events
        .list_customer_events(pb::ListCustomerEventsRequest {
            customer: Some(pb::list_customer_events_request::Customer::CustomerId(
                created.id.clone(),
            )),
            ..Default::default()
        })
        .await
        .expect("timeline")
        .into_inner();
    assert_eq!(timeline.events.len(), 1);
    match &timeline.events[0].payload {
        Some(pb::event::Payload::Feedback(f)) => {
            assert_eq!(f.score, Some(2));
            assert!(f.comment.is_empty(), "comment wiped");
        }
        other => panic!("unexpected payload {other:?}"),
    }

    // Erasing again is a no-op; updating an erased customer is refused; no new events.
    let again = api
        .delete_customer(pb::DeleteCustomerRequest {
            id: created.id.clone(),
            etag: String::new(),
        })
        .await
        .expect("idempotent")
        .into_inner();
    assert_eq!(again, erased);
    let err = api
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: created.id.clone(),
                etag: erased.etag.clone(),
                email: "back@example.com".into(),
                ..Default::default()
            }),
            update_mask: mask(&["email"]),
        })
        .await
        .expect_err("erased");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let r = events
        .record_events(pb::RecordEventsRequest {
            events: vec![pb::Event {
                event_key: "survey-2".into(),
                ..feedback
            }],
            backfill: false,
        })
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(r.accepted, 0);
    assert_eq!(r.rejected.len(), 1);
    assert!(r.rejected[0].reason.contains("erased"));
}

async fn list_pages_neither_skip_nor_repeat_under_inserts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let mut originals = HashSet::new();
    for i in 0..25 {
        let c = api
            .create_customer(create(customer(&format!("page-{i:02}"))))
            .await
            .expect("created")
            .into_inner();
        originals.insert(c.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut inserted = 0;
    loop {
        let page = api
            .list_customers(pb::ListCustomersRequest {
                page_size: 7,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.customers.len() <= 7);
        seen.extend(page.customers.into_iter().map(|c| c.id));
        // Others insert between our pages.
        for _ in 0..3 {
            api.create_customer(create(customer(&format!("late-{inserted}"))))
                .await
                .expect("late insert");
            inserted += 1;
        }
        if page.next_page_token.is_empty() || inserted > 60 {
            break;
        }
        token = page.next_page_token;
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no row served twice");
    assert!(originals.is_subset(&unique), "no existing row skipped");
}

async fn list_filters_and_bad_page_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let t0 = now_seconds() - 1;
    for (ext, region, status) in [
        ("f1", "EU", pb::CustomerStatus::Active),
        ("f2", "US", pb::CustomerStatus::Active),
        ("f3", "EU", pb::CustomerStatus::Churned),
    ] {
        let mut c = customer(ext);
        c.region = region.into();
        c.status = status as i32;
        if status == pb::CustomerStatus::Churned {
            c.churn_time = Some(ts(1_700_000_000));
        }
        api.create_customer(create(c)).await.expect("created");
    }
    let lister = api.clone();
    let list = |req: pb::ListCustomersRequest| {
        let mut api = lister.clone();
        async move {
            api.list_customers(req).await.map(|r| {
                r.into_inner()
                    .customers
                    .into_iter()
                    .map(|c| c.external_id)
                    .collect::<Vec<_>>()
            })
        }
    };
    let eu = list(pb::ListCustomersRequest {
        region: "EU".into(),
        ..Default::default()
    })
    .await
    .expect("eu");
    assert_eq!(eu, ["f1", "f3"]);
    let churned_eu = list(pb::ListCustomersRequest {
        region: "EU".into(),
        status: pb::CustomerStatus::Churned as i32,
        ..Default::default()
    })
    .await
    .expect("churned");
    assert_eq!(churned_eu, ["f3"]);
    let recent = list(pb::ListCustomersRequest {
        updated_after: Some(ts(t0)),
        ..Default::default()
    })
    .await
    .expect("recent");
    assert_eq!(recent.len(), 3);
    let none = list(pb::ListCustomersRequest {
        updated_before: Some(ts(t0)),
        ..Default::default()
    })
    .await
    .expect("old");
    assert!(none.is_empty());

    assert_invalid(
        list(pb::ListCustomersRequest {
            page_size: 1001,
            ..Default::default()
        })
        .await,
        "page_size",
    );
    assert_invalid(
        list(pb::ListCustomersRequest {
            page_size: -1,
            ..Default::default()
        })
        .await,
        "page_size",
    );
    assert_invalid(
        list(pb::ListCustomersRequest {
            page_token: "not a token".into(),
            ..Default::default()
        })
        .await,
        "page_token",
    );
    assert_invalid(
        list(pb::ListCustomersRequest {
            status: 17,
            ..Default::default()
        })
        .await,
        "status",
    );
    // A token is bound to its filters.
    let page = api
        .list_customers(pb::ListCustomersRequest {
            page_size: 1,
            region: "EU".into(),
            ..Default::default()
        })
        .await
        .expect("page")
        .into_inner();
    assert!(!page.next_page_token.is_empty());
    assert_invalid(
        list(pb::ListCustomersRequest {
            page_size: 1,
            region: "US".into(),
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await,
        "page_token",
    );
}

async fn import_upserts_and_reports_bad_rows(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut api = server.customers().await;
    let mut bad = customer("bad-email");
    bad.email = "nope".into();
    let batches = vec![
        pb::ImportCustomersRequest {
            customers: vec![customer("imp-1"), bad, customer("imp-2")],
        },
        pb::ImportCustomersRequest {
            customers: vec![customer(""), customer("imp-3")],
        },
    ];
    let r = api
        .import_customers(tokio_stream::iter(batches.clone()))
        .await
        .expect("imported")
        .into_inner();
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.rejected),
        (3, 0, 0, 2)
    );
    let positions: Vec<_> = r.rejected_rows.iter().map(|x| x.position).collect();
    assert_eq!(positions, [1, 3]);
    assert_eq!(r.rejected_rows[0].field, "email");
    assert_eq!(r.rejected_rows[0].external_id, "bad-email");

    // The same import again changes nothing; a changed row is an update.
    let r = api
        .import_customers(tokio_stream::iter(batches))
        .await
        .expect("again")
        .into_inner();
    assert_eq!(
        (r.created, r.updated, r.unchanged, r.rejected),
        (0, 0, 3, 2)
    );
    let mut changed = customer("imp-2");
    changed.region = "APAC".into();
    let r = api
        .import_customers(tokio_stream::iter(vec![pb::ImportCustomersRequest {
            customers: vec![changed],
        }]))
        .await
        .expect("update")
        .into_inner();
    assert_eq!((r.created, r.updated), (0, 1));
    let got = api
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(Lookup::ExternalId("imp-2".into())),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.region, "APAC");
    assert_eq!(got.etag, "2");
    let _ = violations;
}
