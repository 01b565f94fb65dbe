//! Every security-relevant flag, as the shipped binary runs with it: API keys and roles
//! (PII masking, the audit trail's actor), keys reloaded without a restart, TLS, mutual
//! TLS, and the loopback guard.

use std::path::Path;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_store::{AuditFilter, DatabaseUrl, PoolOptions, Store};

use crate::common::{Server, eventually, http_get, json_field, new_key, with_key};

fn customer() -> pb::Customer {
    pb::Customer {
        external_id: "sec-1".into(),
        display_name: "Grace Hopper".into(),
        email: "grace.hopper@example.com".into(),
        ..Default::default()
    }
}

fn get(id: &str) -> pb::GetCustomerRequest {
    pb::GetCustomerRequest {
        lookup: Some(pb::get_customer_request::Lookup::Id(id.to_owned())),
    }
}

fn write_keys(dir: &Path, lines: &[&str]) -> String {
    write_keys_as(dir, "keys.txt", lines)
}

fn write_keys_as(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the keys file");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_decide_who_may_call_what_and_who_sees_personal_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, reader_line) = new_key("crm", "reader");
    let (pii, pii_line) = new_key("support", "pii-reader");
    let (writer, writer_line) = new_key("ingest", "writer");
    let (admin, admin_line) = new_key("ops", "admin");
    let keys = write_keys(
        dir.path(),
        &[&reader_line, &pii_line, &writer_line, &admin_line],
    );
    // The keys flag after the subcommand, as an operator may write it.
    let server = Server::start(dir.path(), &["serve", "--api-keys", &keys]).expect("serving");
    let mut api = CustomerServiceClient::new(server.channel().await);
    let create = || pb::CreateCustomerRequest {
        customer: Some(customer()),
    };

    // No key, an unknown key, a malformed header: UNAUTHENTICATED, nothing written.
    let none = api.create_customer(create()).await.expect_err("no key");
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    let listed = api
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect_err("no key");
    assert_eq!(listed.code(), Code::Unauthenticated);
    let unknown = api
        .create_customer(with_key(create(), "vk_not-a-key"))
        .await
        .expect_err("unknown key");
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert!(unknown.message().contains("unknown API key"), "{unknown:?}");

    // Each role allowed what it has and refused the rest.
    let refused = api
        .create_customer(with_key(create(), &reader))
        .await
        .expect_err("a reader cannot write");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("writer"), "{refused:?}");
    let id = api
        .create_customer(with_key(create(), &writer))
        .await
        .expect("a writer writes")
        .into_inner()
        .id;
    let refused = api
        .get_customer(with_key(get(&id), &writer))
        .await
        .expect_err("a writer does not read");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // PII masked for a reader, shown to a pii-reader and an admin.
    let seen_by_reader = api
        .get_customer(with_key(get(&id), &reader))
        .await
        .expect("a reader reads");
    // Each answer says what its caller may do, for front ends to offer no more.
    let roles = |response: &tonic::metadata::MetadataMap| {
        response
            .get("x-vitals-roles")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(roles(seen_by_reader.metadata()).as_deref(), Some("reader"));
    let seen_by_reader = seen_by_reader.into_inner();
    assert_eq!(seen_by_reader.email, "***");
    assert_eq!(seen_by_reader.display_name, "***");
    let seen_by_support = api
        .get_customer(with_key(get(&id), &pii))
        .await
        .expect("a pii-reader reads");
    assert_eq!(
        roles(seen_by_support.metadata()).as_deref(),
        Some("reader,pii-reader")
    );
    let seen_by_support = seen_by_support.into_inner();
    assert_eq!(seen_by_support.email, "grace.hopper@example.com");
    assert_eq!(seen_by_support.display_name, "Grace Hopper");

    // Erasure is the admin's alone.
    let erase = || pb::DeleteCustomerRequest {
        id: id.clone(),
        etag: String::new(),
    };
    for key in [&reader, &pii, &writer] {
        let refused = api
            .delete_customer(with_key(erase(), key))
            .await
            .expect_err("only an admin erases");
        assert_eq!(refused.code(), Code::PermissionDenied);
    }
    api.delete_customer(with_key(erase(), &admin))
        .await
        .expect("an admin erases");

    // Health stays open for probes.
    HealthClient::new(server.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no key");

    // The audit trail names each actor; stopping flushes it.
    let (status, _) = server.stop();
    assert!(status.success());
    let store = Store::open(
        &DatabaseUrl::default_in(dir.path()),
        &PoolOptions::default(),
    )
    .expect("the server's database");
    let trail = |actor: &str, method: &str| {
        store
            .list_audit(
                &AuditFilter {
                    actor: Some(actor.into()),
                    method: Some(method.into()),
                    record: None,
                    since: None,
                    until: None,
                },
                100,
            )
            .expect("audit entries")
            .into_iter()
            .map(|e| e.outcome)
            .collect::<Vec<_>>()
    };
    assert_eq!(trail("ingest", "CreateCustomer"), ["Ok"]);
    assert_eq!(trail("crm", "CreateCustomer"), ["PermissionDenied"]);
    assert_eq!(
        trail("support", "GetCustomer"),
        ["Ok"],
        "a PII read is audited"
    );
    assert_eq!(trail("ops", "DeleteCustomer"), ["Ok"]);
    assert_eq!(trail("unauthenticated", "CreateCustomer").len(), 2);
}

/// ListCustomers with `key`: Ok, or the code it was refused with.
async fn lists(
    mut api: CustomerServiceClient<tonic::transport::Channel>,
    key: String,
) -> Result<(), Code> {
    api.list_customers(with_key(pb::ListCustomersRequest::default(), &key))
        .await
        .map(|_| ())
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_reloaded_on_sighup_and_on_change_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, old_line) = new_key("old", "admin");
    let (new, new_line) = new_key("new", "reader");
    let keys = write_keys(dir.path(), &[&old_line]);
    // A poll of an hour: only the signal can make the first change visible.
    let server = Server::start(
        dir.path(),
        &["--api-keys", &keys, "--model-poll-secs", "3600"],
    )
    .expect("serving");
    let api = CustomerServiceClient::new(server.channel().await);
    let works = |key: String| lists(api.clone(), key);
    assert_eq!(works(old.clone()).await, Ok(()));
    assert_eq!(works(new.clone()).await, Err(Code::Unauthenticated));

    write_keys(dir.path(), &[&new_line]);
    server.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || async {
            works(new.clone()).await.is_ok()
        })
        .await,
        "the new key works after SIGHUP: {}",
        server.logs()
    );
    assert_eq!(
        works(old.clone()).await,
        Err(Code::Unauthenticated),
        "the old key is gone"
    );

    // A broken file and an empty one are refused; the keys in force stay. One at a
    // time: two signals sent at once may arrive as one.
    for (n, broken) in [["new superuser 1234"], ["# nobody"]].iter().enumerate() {
        write_keys(dir.path(), broken);
        server.signal("HUP");
        assert!(
            eventually(Duration::from_secs(10), || async {
                server.logs().matches("API keys file refused").count() > n
            })
            .await,
            "{}",
            server.logs()
        );
    }
    assert!(works(new.clone()).await.is_ok(), "the last good keys stay");
    drop(server);

    // Without a signal, a changed file is picked up by the poll.
    write_keys(dir.path(), &[&old_line]);
    let server = Server::start(
        dir.path(),
        &["--api-keys", &keys, "--model-poll-secs", "0.1"],
    )
    .expect("serving");
    let api = CustomerServiceClient::new(server.channel().await);
    let works = |key: String| lists(api.clone(), key);
    assert_eq!(works(new.clone()).await, Err(Code::Unauthenticated));
    write_keys(dir.path(), &[&old_line, &new_line]);
    assert!(
        eventually(Duration::from_secs(10), || async {
            works(new.clone()).await.is_ok()
        })
        .await,
        "{}",
        server.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_guard_refuses_an_open_server_and_enforces_keys_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = Server::start(dir.path(), &["--listen", "0.0.0.0:0"])
        .err()
        .expect("no keys, every interface: refused");
    assert!(!refused.status.success());
    assert!(
        refused.logs.contains("without API keys"),
        "{}",
        refused.logs
    );
    // --insecure: the operator said so; anyone may call.
    let open = Server::start(dir.path(), &["--listen", "0.0.0.0:0", "--insecure"])
        .expect("served when told --insecure");
    CustomerServiceClient::new(open.channel().await)
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect("no key needed");
    drop(open);
    let (reader, line) = new_key("crm", "reader");
    let keys = write_keys(dir.path(), &[&line]);
    let empty = write_keys_as(dir.path(), "empty.txt", &["# no keys yet"]);
    let refused = Server::start(dir.path(), &["--listen", "0.0.0.0:0", "--api-keys", &empty])
        .err()
        .expect("an empty keys file is no keys");
    assert!(!refused.status.success());
    assert!(refused.logs.contains("lists no key"), "{}", refused.logs);
    let server = Server::start(dir.path(), &["--listen", "0.0.0.0:0", "--api-keys", &keys])
        .expect("with keys it serves on every interface");
    assert!(server.addr.starts_with("0.0.0.0:"), "{}", server.addr);
    let mut api = CustomerServiceClient::new(server.channel().await);
    let anonymous = api
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .expect_err("keys enforced");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    api.list_customers(with_key(pb::ListCustomersRequest::default(), &reader))
        .await
        .expect("a key works");
}

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

/// A throwaway CA, a server certificate for localhost and a client certificate.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("leaf key");
        let cert = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&key, &ca, &ca_key)
            .expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca.pem(),
        server: leaf(vec!["localhost".into()]),
        client: leaf(vec!["crm-client".into()]),
    }
}

async fn health(channel: Result<tonic::transport::Channel, String>) -> Result<(), String> {
    HealthClient::new(channel?)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_from_the_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    let file = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path.to_string_lossy().into_owned()
    };
    let (cert, key, ca) = (
        file("server.pem", &pki.server.0),
        file("server.key", &pki.server.1),
        file("ca.pem", &pki.ca_pem),
    );
    let trusting = || ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem));

    let server = Server::start(
        dir.path(),
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
    .expect("serving TLS");
    // Scrapers that speak plain HTTP/1.1 get the metrics on their own port.
    let metrics_addr = server
        .logs()
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .and_then(|l| json_field(l, "addr"))
        .expect("the metrics address is logged");
    let metrics_port = metrics_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let (status, page) = http_get(metrics_port, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert!(page.contains("vitals_database_up 1"), "{page}");
    let plaintext = server.plaintext_channel().await;
    assert!(health(plaintext).await.is_err(), "plaintext is refused");
    health(server.tls_channel(trusting()).await)
        .await
        .expect("a client trusting the CA gets through");
    let untrusting = server.tls_channel(ClientTlsConfig::new()).await;
    assert!(
        health(untrusting).await.is_err(),
        "a client not trusting the CA does not"
    );
    drop(server);

    let server = Server::start(
        dir.path(),
        &[
            "serve",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
    )
    .expect("serving mutual TLS");
    assert!(
        health(server.tls_channel(trusting()).await).await.is_err(),
        "no client certificate: refused"
    );
    let with_identity = trusting().identity(Identity::from_pem(&pki.client.0, &pki.client.1));
    health(server.tls_channel(with_identity).await)
        .await
        .expect("a client certificate signed by the CA gets through");
}
