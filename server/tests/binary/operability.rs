//! What tools and operators expect of a gRPC server: Prometheus metrics on the API's
//! port, health that follows the database, reflection in both versions, and
//! RESOURCE_EXHAUSTED for a request over the size limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;

use crate::common::{FreshDatabase, Server, eventually, http_get, new_key};

/// The value of one sample line (`name{labels} value`) on a metrics page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_on_the_api_port_without_a_key() {
    // A server with keys: the page holds no data, so it needs none; the API still does.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, line) = new_key("ops", "admin");
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, line + "\n").expect("keys");
    let server =
        Server::start(dir.path(), &["--api-keys", &keys.to_string_lossy()]).expect("serving");
    let (status, page) = http_get(server.port(), "/").await;
    assert!(status.contains("200"), "{status}");
    assert!(
        page.contains("<main id=\"main\">") && page.contains("/console.js"),
        "{page}"
    );
    let (status, script) = http_get(server.port(), "/console.js").await;
    assert!(status.contains("200"), "{status}");
    assert!(
        script.contains("Customers most likely to leave"),
        "the console's bundle"
    );
    let (status, _) = http_get(server.port(), "/console.css").await;
    assert!(status.contains("200"), "{status}");
    let (status, card) = http_get(server.port(), "/card.js").await;
    assert!(status.contains("200"), "{status}");
    assert!(card.contains("vitals-customer-card"), "the card's bundle");
    // Anything else plain is still tonic-web's to refuse.
    let (status, _) = http_get(server.port(), "/nothing-here").await;
    assert!(!status.contains("200"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_api_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]).expect("serving");
    let mut api = CustomerServiceClient::new(server.channel().await);
    api.create_customer(pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "m-1".into(),
            ..Default::default()
        }),
    })
    .await
    .expect("created");
    for _ in 0..2 {
        let missing = api
            .get_customer(pb::GetCustomerRequest {
                lookup: Some(pb::get_customer_request::Lookup::ExternalId(
                    "nobody".into(),
                )),
            })
            .await
            .expect_err("not there");
        assert_eq!(missing.code(), Code::NotFound);
    }
    // A server-streaming call: its status arrives in the trailers, after the messages.
    let mut evaluations = EvaluationServiceClient::new(server.channel().await);
    let mut stream = evaluations
        .evaluate_customers(pb::EvaluateCustomersRequest::default())
        .await
        .expect("a stream")
        .into_inner();
    let mut evaluated = 0;
    while stream.message().await.expect("a good stream").is_some() {
        evaluated += 1;
    }
    assert_eq!(evaluated, 1);

    let (status, page) = http_get(server.port(), "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let requests = |method: &str, code: &str| {
        sample(
            &page,
            &format!(
                "vitals_grpc_request_duration_seconds_count{{code=\"{code}\",method=\"vitals.v1.{method}\"}}"
            ),
        )
    };
    assert_eq!(
        requests("CustomerService/CreateCustomer", "OK"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        requests("CustomerService/GetCustomer", "NOT_FOUND"),
        Some(2.0),
        "{page}"
    );
    assert_eq!(
        requests("EvaluationService/EvaluateCustomers", "OK"),
        Some(1.0),
        "{page}"
    );
    for series in [
        "vitals_model_version_serving{kind=\"churn\"}",
        "vitals_model_version_refused{kind=\"churn\"}",
        "vitals_history_cache_hits_total",
        "vitals_history_cache_bytes",
        "vitals_db_pool_in_use",
        "vitals_db_pool_waiting",
        "vitals_audit_entries_written_total",
        "vitals_audit_entries_dropped_total",
        "vitals_refresh_customers_done",
        "vitals_api_keys",
    ] {
        assert!(sample(&page, series).is_some(), "{series} missing:\n{page}");
    }
    assert_eq!(sample(&page, "vitals_database_up"), Some(1.0));
    assert_eq!(
        sample(&page, "vitals_model_version_serving{kind=\"churn\"}"),
        Some(0.0)
    );

    // Anything else over plain HTTP is not a page.
    let (status, _) = http_get(server.port(), "/nothing-here").await;
    assert!(!status.contains("200"), "{status}");
}

/// A TCP proxy to PostgreSQL that the test can cut and restore, so the database becomes
/// unreachable for the server without touching the database itself.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let flag = flag.clone();
                tokio::spawn(async move {
                    if !flag.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
                    tokio::pin!(copy);
                    // Every connection is cut when the proxy goes down.
                    loop {
                        tokio::select! {
                            _ = &mut copy => return,
                            () = tokio::time::sleep(Duration::from_millis(50)) => {
                                if !flag.load(Ordering::SeqCst) {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Self { port, up }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_not_serving_while_the_database_is_unreachable() {
    let db = FreshDatabase::create();
    let proxy = Proxy::start(5432).await;
    let via_proxy = db.url.replacen(":5432/", &format!(":{}/", proxy.port), 1);
    assert_ne!(via_proxy, db.url, "the test database is on port 5432");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        &[
            "--database-url",
            &via_proxy,
            "--health-probe-secs",
            "0.1",
            "--db-timeout-secs",
            "0.3",
        ],
    )
    .expect("serving");
    let health = HealthClient::new(server.channel().await);
    let status_of = |service: &'static str| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .map(|r| r.into_inner().status())
                .ok()
        }
    };
    let serving = Some(ServingStatus::Serving);
    let not_serving = Some(ServingStatus::NotServing);
    assert_eq!(status_of("").await, serving);
    assert_eq!(status_of("vitals.v1.EvaluationService").await, serving);

    proxy.set_up(false);
    assert!(
        eventually(Duration::from_secs(15), || async {
            status_of("").await == not_serving
                && status_of("vitals.v1.CustomerService").await == not_serving
        })
        .await,
        "NOT_SERVING while the database is unreachable: {}",
        server.logs()
    );
    assert_eq!(
        status_of("vitals.v1.ModelService").await,
        serving,
        "models answer from the registry"
    );
    let (_, page) = http_get(server.port(), "/metrics").await;
    assert_eq!(sample(&page, "vitals_database_up"), Some(0.0), "{page}");

    proxy.set_up(true);
    assert!(
        eventually(Duration::from_secs(15), || async {
            status_of("").await == serving
        })
        .await,
        "SERVING again once it answers: {}",
        server.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_answers_v1_and_v1alpha() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &[]).expect("serving");
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = ServerReflectionClient::new(server.channel().await)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("v1alpha answers")
            .into_inner();
        let response = stream.message().await.expect("a message").expect("one");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("unexpected reflection response {response:?}");
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"vitals.v1.EvaluationService"), "{names:?}");
    }
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        ServerReflectionClient::new(server.channel().await)
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("v1 answers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_size_limit_is_resource_exhausted_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &["--max-message-kib", "64"]).expect("serving");
    let mut customers = CustomerServiceClient::new(server.channel().await);
    let big = |external_id: &str, bytes: usize| pb::Customer {
        external_id: external_id.into(),
        display_name: "x".repeat(bytes),
        ..Default::default()
    };
    // Unary.
    let refused = customers
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(big("too-big", 100 * 1024)),
        })
        .await
        .expect_err("over 64 KiB");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("limit"), "{refused:?}");
    // Client streaming: the second message is over the limit; the stream is refused.
    let refused = customers
        .import_customers(tokio_stream::iter(vec![
            pb::ImportCustomersRequest {
                customers: vec![big("small", 10)],
            },
            pb::ImportCustomersRequest {
                customers: vec![big("too-big-too", 100 * 1024)],
            },
        ]))
        .await
        .expect_err("over 64 KiB");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // Under the limit is fine (200 customers, about 45 KiB, in one message). Of the
    // refused requests nothing over the limit was stored; an import applies each message
    // whole as it arrives, so the stream's first message stays (an upsert by external id:
    // sending the stream again is safe).
    let fits: Vec<_> = (0..200).map(|i| big(&format!("fits-{i}"), 200)).collect();
    let imported = customers
        .import_customers(tokio_stream::iter(vec![pb::ImportCustomersRequest {
            customers: fits,
        }]))
        .await
        .expect("under the limit")
        .into_inner();
    assert_eq!(imported.created, 200);
    let listed = customers
        .list_customers(pb::ListCustomersRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<_> = listed
        .customers
        .iter()
        .map(|c| c.external_id.as_str())
        .collect();
    assert_eq!(ids.len(), 201, "{ids:?}");
    assert!(ids.contains(&"small"), "{ids:?}");
    assert!(
        !ids.contains(&"too-big") && !ids.contains(&"too-big-too"),
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn excess_calls_on_one_connection_are_shed_as_the_flag_says() {
    use vitals_proto::v1::event_service_client::EventServiceClient;
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        Server::start(dir.path(), &["--max-concurrent-per-connection", "1"]).expect("serving");
    let channel = server.channel().await;
    CustomerServiceClient::new(channel.clone())
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                external_id: "busy".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("created");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // Eight slow calls (10,000 events each) at once on one connection.
    let calls: Vec<_> = (0..8)
        .map(|c| {
            let mut events = EventServiceClient::new(channel.clone());
            let batch: Vec<pb::Event> = (0..10_000)
                .map(|i| pb::Event {
                    comment_analysis: None,
                    event_key: format!("c{c}-{i}"),
                    customer: Some(pb::event::Customer::CustomerExternalId("busy".into())),
                    time: Some(prost_types::Timestamp {
                        seconds: now - 3_600,
                        nanos: 0,
                    }),
                    record_time: None,
                    payload: Some(pb::event::Payload::Transaction(pb::Transaction {
                        amount_minor: 100,
                        currency: "USD".into(),
                        ..Default::default()
                    })),
                })
                .collect();
            tokio::spawn(async move {
                events
                    .record_events(pb::RecordEventsRequest {
                        events: batch,
                        backfill: false,
                    })
                    .await
                    .map(|_| ())
                    .map_err(|s| s.code())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.expect("the call's task"));
    }
    assert!(outcomes.contains(&Ok(())), "one runs: {outcomes:?}");
    assert!(
        outcomes.contains(&Err(Code::ResourceExhausted)),
        "the rest are shed, not queued: {outcomes:?}"
    );
}
