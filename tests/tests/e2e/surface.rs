//! The server's surface beyond the Vitals services: health, reflection, gRPC-Web with
//! CORS, and how it answers when its database is gone.

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use vitals_proto::v1 as pb;
use vitals_server::ServerConfig;
use vitals_store::{DatabaseUrl, PoolOptions, Store};
use vitals_tests::{Backend, TestDb, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_service_serving() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mut health = HealthClient::new(server.channel().await);
    for service in [
        "",
        "vitals.v1.CustomerService",
        "vitals.v1.EventService",
        "vitals.v1.EvaluationService",
        "vitals.v1.ModelService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start(Backend::Sqlite).await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("a response")
        .expect("not empty");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "vitals.v1.CustomerService",
        "vitals.v1.EventService",
        "vitals.v1.EvaluationService",
        "vitals.v1.ModelService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

/// Sends one raw HTTP/1.1 request and returns the whole response.
async fn http1(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_from_a_browser_works_on_the_same_port() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mut api = server.customers().await;
    api.create_customer(pb::CreateCustomerRequest {
        customer: Some(pb::Customer {
            external_id: "web-1".into(),
            region: "EU".into(),
            ..Default::default()
        }),
    })
    .await
    .expect("created");

    // CORS preflight, as a browser on another origin sends it.
    let preflight = http1(
        server.addr,
        "OPTIONS /vitals.v1.CustomerService/GetCustomer HTTP/1.1\r\nHost: localhost\r\n\
         Origin: https://crm.example.com\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type,x-grpc-web\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    let text = String::from_utf8_lossy(&preflight).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        text.contains("access-control-allow-origin: https://crm.example.com"),
        "{text}"
    );

    // A gRPC-Web call: a length-prefixed message over HTTP/1.1.
    let message = pb::GetCustomerRequest {
        lookup: Some(pb::get_customer_request::Lookup::ExternalId("web-1".into())),
    }
    .encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let head = format!(
        "POST /vitals.v1.CustomerService/GetCustomer HTTP/1.1\r\nHost: localhost\r\n\
         Origin: https://crm.example.com\r\nContent-Type: application/grpc-web+proto\r\n\
         X-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let response = http1(server.addr, &head, &body).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("application/grpc-web"), "{text}");
    assert!(
        text.contains("web-1"),
        "the customer is in the body: {text}"
    );
    assert!(text.contains("grpc-status:0"), "trailers say OK: {text}");
}

/// One gRPC-Web call over HTTP/1.1 as a browser makes it; returns the decoded message.
async fn grpc_web_call<M: Message + Default>(
    addr: std::net::SocketAddr,
    method: &str,
    request: &impl Message,
) -> M {
    let message = request.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let head = format!(
        "POST /{method} HTTP/1.1\r\nHost: localhost\r\n\
         Origin: https://crm.example.com\r\nContent-Type: application/grpc-web+proto\r\n\
         X-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let response = http1(addr, &head, &body).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let headers = String::from_utf8_lossy(&response[..split]).to_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(headers.contains("application/grpc-web"), "{headers}");
    let mut rest = &response[split + 4..];
    // The body may be chunked: undo it.
    let mut payload = Vec::new();
    if headers.contains("transfer-encoding: chunked") {
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16)
                .expect("hex chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            payload.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        payload.extend_from_slice(rest);
    }
    // Frames: flag byte, 4-byte length, bytes; the data frame (flag 0) comes first and
    // the trailers frame (flag 0x80) carries grpc-status.
    assert_eq!(payload[0], 0, "a data frame first");
    let len = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]) as usize;
    let trailers = String::from_utf8_lossy(&payload[5 + len..]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    M::decode(&payload[5..5 + len]).expect("a message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_evaluates_and_lists_at_risk_over_grpc_web() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.train_synthetic(300, true);
    server
        .models()
        .await
        .reload_models(pb::ReloadModelsRequest {})
        .await
        .expect("reload");
    let mut refresh = server
        .evaluations()
        .await
        .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
        .await
        .expect("refresh")
        .into_inner();
    while let Some(p) = tokio_stream::StreamExt::next(&mut refresh).await {
        p.expect("progress");
    }
    let list: pb::ListAtRiskResponse = grpc_web_call(
        server.addr,
        "vitals.v1.EvaluationService/ListAtRisk",
        &pb::ListAtRiskRequest {
            page_size: 5,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(list.evaluations.len(), 5);
    let top = &list.evaluations[0];
    let evaluation: pb::Evaluation = grpc_web_call(
        server.addr,
        "vitals.v1.EvaluationService/EvaluateCustomer",
        &pb::EvaluateCustomerRequest {
            lookup: Some(pb::evaluate_customer_request::Lookup::ExternalId(
                top.external_id.clone(),
            )),
            as_of: None,
        },
    )
    .await;
    assert_eq!(evaluation.customer_id, top.customer_id);
    assert!(
        evaluation
            .churn
            .as_ref()
            .is_some_and(|c| c.absent_reason.is_empty() && c.probability > 0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_down_means_unavailable() {
    // Nothing listens on port 1: every connection attempt is refused at once.
    let db = TestDb::new(Backend::Sqlite);
    let url = DatabaseUrl::Postgres("postgres://postgres@127.0.0.1:1/none".into());
    let store = Store::open(
        &url,
        &PoolOptions {
            max_connections: 2,
            checkout_timeout: std::time::Duration::from_millis(500),
        },
    )
    .expect("a pool opens without connecting");
    let server = TestServer::start_on(db, store, ServerConfig::default()).await;
    let mut api = server.customers().await;
    let started = std::time::Instant::now();
    let err = api
        .get_customer(pb::GetCustomerRequest {
            lookup: Some(pb::get_customer_request::Lookup::Id("x".into())),
        })
        .await
        .expect_err("no database");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let mut events = server.events().await;
    let err = events
        .record_events(pb::RecordEventsRequest {
            events: vec![pb::Event {
                comment_analysis: None,
                event_key: "k".into(),
                customer: Some(pb::event::Customer::CustomerExternalId("c".into())),
                time: Some(vitals_tests::ts(1_700_000_000)),
                record_time: None,
                payload: Some(pb::event::Payload::Transaction(pb::Transaction {
                    amount_minor: 1,
                    currency: "USD".into(),
                    ..Default::default()
                })),
            }],
            backfill: false,
        })
        .await
        .expect_err("no database");
    assert_eq!(err.code(), Code::Unavailable);
}
