//! API keys and roles end to end: who may call what, and PII masked for plain readers.

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vitals_proto::v1 as pb;
use vitals_server::ServerConfig;
use vitals_server::auth::{ApiKeys, Caller, KeyRing, Role, hash_key};
use vitals_tests::{Backend, TestDb, TestServer, both_backends};

both_backends!(api_keys_decide_who_may_call_what);

fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii metadata"),
    );
    request
}

async fn api_keys_decide_who_may_call_what(backend: Backend) {
    let mut keys = ApiKeys::default();
    for (name, role) in [
        ("crm", Role::Reader),
        ("support", Role::PiiReader),
        ("ingest", Role::Writer),
        ("ops", Role::Admin),
    ] {
        keys.insert(&hash_key(&format!("key-{name}")), Caller::new(name, [role]));
    }
    let db = TestDb::new(backend);
    let store = db.store();
    let server = TestServer::start_on(
        db,
        store,
        ServerConfig {
            api_keys: KeyRing::fixed(keys),
            ..ServerConfig::default()
        },
    )
    .await;
    let mut customers = server.customers().await;
    let create = || pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "auth-1".into(),
            display_name: "Grace Hopper".into(),
            email: "grace@example.com".into(),
            ..Default::default()
        }),
    };

    // No key, a wrong key: UNAUTHENTICATED, and nothing is written.
    let none = customers
        .create_customer(create())
        .await
        .expect_err("no key");
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    let wrong = customers
        .create_customer(with_key(create(), "key-nobody"))
        .await
        .expect_err("wrong key");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    // A reader may not write.
    let denied = customers
        .create_customer(with_key(create(), "key-crm"))
        .await
        .expect_err("reader");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("writer"), "{denied:?}");
    assert_eq!(server.store.count_customers().expect("count"), 0);

    // A writer may; readers see the PII masked, pii-readers see it.
    let created = customers
        .create_customer(with_key(create(), "key-ingest"))
        .await
        .expect("writer creates")
        .into_inner();
    let get = || pb::GetCustomerRequest {
        lookup: Some(pb::get_customer_request::Lookup::Id(created.id.clone())),
    };
    let masked = customers
        .get_customer(with_key(get(), "key-crm"))
        .await
        .expect("reader reads")
        .into_inner();
    assert_eq!(masked.email, "***");
    assert_eq!(masked.display_name, "***");
    let listed = customers
        .list_customers(with_key(pb::ListCustomersRequest::default(), "key-crm"))
        .await
        .expect("reader lists")
        .into_inner();
    assert!(
        listed
            .customers
            .iter()
            .all(|c| c.email != "grace@example.com")
    );
    let clear = customers
        .get_customer(with_key(get(), "key-support"))
        .await
        .expect("pii-reader reads")
        .into_inner();
    assert_eq!(clear.email, "grace@example.com");

    // Erasure and model changes are for admins; the history names the key, not a claim.
    let erase = || pb::DeleteCustomerRequest {
        id: created.id.clone(),
        etag: created.etag.clone(),
    };
    let denied = customers
        .delete_customer(with_key(erase(), "key-ingest"))
        .await
        .expect_err("writer may not erase");
    assert_eq!(denied.code(), Code::PermissionDenied);
    customers
        .delete_customer(with_key(erase(), "key-ops"))
        .await
        .expect("admin erases");
    let mut models = server.models().await;
    let denied = models
        .reload_models(with_key(pb::ReloadModelsRequest {}, "key-support"))
        .await
        .expect_err("reader may not reload");
    assert_eq!(denied.code(), Code::PermissionDenied);
    models
        .reload_models(with_key(pb::ReloadModelsRequest {}, "key-ops"))
        .await
        .expect("admin reloads");
    let mut evaluations = server.evaluations().await;
    let scheme = evaluations
        .get_scoring_scheme(with_key(
            pb::GetScoringSchemeRequest { version: 0 },
            "key-crm",
        ))
        .await
        .expect("reader reads the scheme")
        .into_inner();
    let updated = evaluations
        .update_scoring_scheme(with_key(
            pb::UpdateScoringSchemeRequest {
                scheme: Some(scheme),
            },
            "key-ops",
        ))
        .await
        .expect("admin updates the scheme")
        .into_inner();
    assert_eq!(updated.actor, "ops", "the key's name is the actor");

    // The audit trail: every write (refused ones too) and every read that showed PII,
    // with who, what, on which record, and how it ended; masked reads are not PII reads.
    let entries = {
        let mut waited = 0;
        loop {
            let entries = server
                .store
                .list_audit(&vitals_store::AuditFilter::default(), 100)
                .expect("audit");
            if entries.len() >= 10 || waited > 50 {
                break entries;
            }
            waited += 1;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let seen: Vec<(String, String, String, String)> = entries
        .iter()
        .rev()
        .map(|e| {
            (
                e.actor.clone(),
                e.method.rsplit('/').next().unwrap_or_default().to_owned(),
                e.record.clone(),
                e.outcome.clone(),
            )
        })
        .collect();
    let id = created.id.clone();
    let expected: Vec<(&str, &str, &str, &str)> = vec![
        ("unauthenticated", "CreateCustomer", "", "Unauthenticated"),
        ("unauthenticated", "CreateCustomer", "", "Unauthenticated"),
        ("crm", "CreateCustomer", "", "PermissionDenied"),
        ("ingest", "CreateCustomer", &id, "Ok"),
        ("support", "GetCustomer", &id, "Ok"),
        ("ingest", "DeleteCustomer", "", "PermissionDenied"),
        ("ops", "DeleteCustomer", &id, "Ok"),
        ("support", "ReloadModels", "", "PermissionDenied"),
        ("ops", "ReloadModels", "", "Ok"),
        ("ops", "UpdateScoringScheme", "scoring scheme v2", "Ok"),
    ];
    let expected: Vec<(String, String, String, String)> = expected
        .into_iter()
        .map(|(a, m, r, o)| (a.into(), m.into(), r.into(), o.into()))
        .collect();
    assert_eq!(seen, expected);

    // Health stays open, for load balancers.
    HealthClient::new(server.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no key");
}
