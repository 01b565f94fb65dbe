//! Assembling the gRPC server: services, health, reflection, gRPC-Web with CORS,
//! limits, per-request tracing, graceful shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Request, Response};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Span;
use vitals_app::followups::RulesCache;
use vitals_app::histories::{HistoryCache, HistoryWriter};
use vitals_app::schemes::SchemeCache;
use vitals_proto::v1::customer_service_server::CustomerServiceServer;
use vitals_proto::v1::evaluation_service_server::EvaluationServiceServer;
use vitals_proto::v1::event_service_server::EventServiceServer;
use vitals_proto::v1::follow_up_service_server::FollowUpServiceServer;
use vitals_proto::v1::model_service_server::ModelServiceServer;
use vitals_proto::v1::portfolio_service_server::PortfolioServiceServer;
use vitals_store::Store;

use crate::api::customers::CustomerApi;
use crate::api::evaluation::EvaluationApi;
use crate::api::events::EventApi;
use crate::api::followups::FollowUpApi;
use crate::api::models::ModelApi;
use crate::api::portfolio::PortfolioApi;
use crate::auth::{AuthLayer, KeyRing, Reload};
use crate::http::PlainHttpLayer;
use crate::metrics::Metrics;
use crate::models::ModelHub;
use crate::observe::ObserveLayer;

/// How the server behaves under load and bad clients.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request message, in bytes.
    pub max_message_bytes: usize,
    /// Deadline for every request.
    pub request_timeout: Duration,
    /// Requests in flight per connection before new ones are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_per_connection: usize,
    /// The model registry the trainer publishes to: a directory, or an object store URL
    /// (`s3://bucket/prefix`, `gs://`, `az://`).
    pub registry: String,
    /// Where versions fetched from an object store registry are kept, verified, for the
    /// loaders (unused for a directory registry).
    pub model_cache: PathBuf,
    /// How long a chunk of a shared refresh stays leased to a server that went quiet.
    pub refresh_lease: Duration,
    /// Customers per chunk of a refresh run.
    pub refresh_chunk_customers: usize,
    /// How often the registry, the scoring scheme and the API keys file are checked for
    /// changes.
    pub model_poll_interval: Duration,
    /// How often the database is probed for gRPC health.
    pub health_probe_interval: Duration,
    /// API keys and their roles, reloaded from their file on SIGHUP and on change; none
    /// means every caller may do everything (the binary then listens on loopback only
    /// unless told `--insecure`).
    pub api_keys: KeyRing,
    /// TLS (rustls); `None` serves plaintext.
    pub tls: Option<TlsFiles>,
    /// Memory for customers' histories kept between evaluations (PostgreSQL only: see
    /// `vitals_app::histories`); 0 turns the cache off.
    pub history_cache_bytes: u64,
    /// A second, plaintext address for `GET /metrics` and gRPC health (the API port
    /// serves both too).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// PEM files for TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn server_config(&self) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
        use anyhow::Context;
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).with_context(|| format!("reading the TLS {what} {}", p.display()))
        };
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
            read(&self.cert, "certificate")?,
            read(&self.key, "key")?,
        ));
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?));
        }
        Ok(config)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            // A full batch of 10,000 events is about 1-3 MiB on the wire.
            max_message_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent_per_connection: 256,
            registry: "./vitals-data/models".to_owned(),
            model_cache: PathBuf::from("./vitals-data/model-cache"),
            refresh_lease: Duration::from_secs(30),
            refresh_chunk_customers: 2_000,
            model_poll_interval: Duration::from_secs(5),
            health_probe_interval: Duration::from_secs(2),
            api_keys: KeyRing::default(),
            tls: None,
            history_cache_bytes: 1 << 30,
            metrics_listen: None,
        }
    }
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_credentials(true)
        .max_age(Duration::from_secs(24 * 60 * 60))
        .allow_methods([http::Method::POST, http::Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("authorization"),
            HeaderName::from_static("x-vitals-actor"),
            HeaderName::from_static("content-type"),
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
            HeaderName::from_static(crate::api::evaluation::HISTORY_SOURCE_HEADER),
            HeaderName::from_static(crate::auth::ROLES_HEADER),
        ])
}

fn request_span<B>(request: &Request<B>) -> Span {
    tracing::info_span!(
        "request",
        method = %request.uri().path(),
        status = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    )
}

/// Serves Vitals on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    store: Store,
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let hub = Arc::new(ModelHub::open(&config.registry, &config.model_cache)?);
    let schemes = {
        let (hub, store) = (hub.clone(), store.clone());
        tokio::task::spawn_blocking(move || {
            for kind in hub.reload() {
                tracing::info!(kind = %kind.kind, serving = ?kind.serving, problem = ?kind.problem, "models at start");
            }
            SchemeCache::load(&store)
        })
        .await?
    };
    let schemes = Arc::new(schemes);
    let metrics = Metrics::new();
    let poller = tokio::spawn(poll_registry(
        hub.clone(),
        schemes.clone(),
        store.clone(),
        config.api_keys.clone(),
        metrics.clone(),
        config.model_poll_interval,
    ));
    let key_reloader = tokio::spawn(reload_keys_on_sighup(
        config.api_keys.clone(),
        metrics.clone(),
    ));

    let histories = Arc::new(HistoryCache::new(config.history_cache_bytes));
    // The cache serves only while a listener hears every change; on SQLite (no channel,
    // no round trip to save) or with a zero budget it never goes live.
    let listener_task =
        (store.postgres_url().is_some() && config.history_cache_bytes > 0).then(|| {
            tokio::spawn(vitals_app::histories::listen(
                histories.clone(),
                store.clone(),
            ))
        });

    metrics.attach(
        hub.clone(),
        histories.clone(),
        store.clone(),
        config.api_keys.clone(),
    );
    let (audit, audit_writer) = crate::audit::spawn_writer(store.clone(), metrics.clone());
    let limit = config.max_message_bytes;
    let rules = Arc::new(RulesCache::default());
    let writer = HistoryWriter::new(store.clone(), histories.clone(), rules.clone());
    let customers = CustomerServiceServer::new(CustomerApi::new(store.clone(), writer.clone()))
        .max_decoding_message_size(limit);
    let events = EventServiceServer::new(EventApi::new(store.clone(), writer.clone(), hub.clone()))
        .max_decoding_message_size(limit);
    let refresh = crate::refresh::RefreshSettings::new(
        config.refresh_lease,
        config.refresh_chunk_customers,
        config.model_poll_interval,
        histories.clone(),
    );
    let refresh_worker = tokio::spawn(crate::refresh::work(
        store.clone(),
        hub.clone(),
        schemes.clone(),
        refresh.clone(),
    ));
    let evaluations = EvaluationServiceServer::new(EvaluationApi::new(
        store.clone(),
        hub.clone(),
        schemes.clone(),
        histories.clone(),
        metrics.clone(),
        refresh,
    ))
    .max_decoding_message_size(limit);
    let models =
        ModelServiceServer::new(ModelApi::new(hub.clone())).max_decoding_message_size(limit);
    let follow_ups = FollowUpServiceServer::new(FollowUpApi::new(store.clone(), writer, rules))
        .max_decoding_message_size(limit);
    let portfolio = PortfolioServiceServer::new(PortfolioApi::new(
        store.clone(),
        hub.clone(),
        histories.clone(),
    ))
    .max_decoding_message_size(limit);

    let (health, health_service) = tonic_health::server::health_reporter();
    // Every service but ModelService needs the database; ModelService answers from the
    // registry. The first probe runs before the first request is answered.
    health.set_serving::<ModelServiceServer<ModelApi>>().await;
    let database_up = crate::health::probe_once(&store, &health, &metrics).await;
    let prober = tokio::spawn(crate::health::probe_database(
        store.clone(),
        health.clone(),
        metrics.clone(),
        config.health_probe_interval,
        database_up,
    ));

    // Both reflection versions: grpcurl and current tools ask v1; older grpcurl,
    // Postman, Kreya and Python's grpcio-reflection ask v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(vitals_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let metrics_server = match config.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(addr = %listener.local_addr()?, "serving /metrics and health in plaintext");
            let server = Server::builder()
                .accept_http1(true)
                .layer(PlainHttpLayer::new(metrics.clone()))
                .add_service(health_service.clone())
                .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)));
            Some(tokio::spawn(server))
        }
        None => None,
    };

    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = store.backend_name(), registry = %config.registry, "serving gRPC and gRPC-Web");

    let trace = tower_http::trace::TraceLayer::new_for_grpc()
        .make_span_with(request_span)
        .on_request(())
        .on_response(|response: &Response<_>, latency: Duration, span: &Span| {
            let status = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0");
            span.record("status", status);
            span.record("duration_ms", latency.as_secs_f64() * 1e3);
            tracing::info!("done");
        })
        .on_failure(());

    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.server_config()?)?;
        tracing::info!(mutual = tls.client_ca.is_some(), "TLS on");
    }
    builder
        .accept_http1(true)
        .timeout(config.request_timeout)
        .concurrency_limit_per_connection(config.max_concurrent_per_connection)
        .load_shed(true)
        // Outermost: plain HTTP GETs (the metrics page, the console, the training
        // reports) never reach tonic-web.
        .layer(PlainHttpLayer::new(metrics.clone()).with_console(hub.registry_handle()))
        .layer(trace)
        .layer(cors())
        .layer(tonic_web::GrpcWebLayer::new())
        // Inside gRPC-Web, so it sees gRPC statuses (in trailers, not a gRPC-Web body) and
        // its corrections reach browsers too; outside auth, so refusals are counted.
        .layer(ObserveLayer::new(metrics.clone()))
        // Inside gRPC-Web, so a refusal reaches a browser as a gRPC-Web status.
        .layer(AuthLayer::new(config.api_keys.clone(), Some(audit.clone())))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(customers)
        .add_service(events)
        .add_service(evaluations)
        .add_service(models)
        .add_service(follow_ups)
        .add_service(portfolio)
        // TCP_NODELAY: without it Nagle's algorithm holds the tail of each response until
        // the client's delayed ACK, about 40 ms per unary call (tonic's own nodelay setting
        // does not apply to a listener passed in).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    poller.abort();
    refresh_worker.abort();
    key_reloader.abort();
    if let Some(task) = metrics_server {
        task.abort();
    }
    prober.abort();
    if let Some(task) = listener_task {
        task.abort();
    }
    // The last calls' audit entries are stored before the server reports it stopped.
    drop(audit);
    match tokio::time::timeout(Duration::from_secs(5), audit_writer).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the audit writer failed"),
        Err(_) => tracing::error!("the audit writer did not finish within 5 s"),
    }
    tracing::info!("server stopped");
    Ok(())
}

/// Re-reads the API keys file, logging and counting what happened.
fn reload_keys(keys: &KeyRing, metrics: &Metrics) {
    match keys.reload() {
        Ok(Reload::Unchanged) => {}
        Ok(Reload::Loaded { keys }) => {
            metrics.key_reloads.with_label_values(&["loaded"]).inc();
            tracing::info!(keys, "API keys reloaded");
        }
        Err(e) => {
            metrics.key_reloads.with_label_values(&["refused"]).inc();
            tracing::error!(error = %e, "API keys file refused; the keys in force stay");
        }
    }
}

/// Reloads the API keys at once on SIGHUP (the registry poll also notices a change).
async fn reload_keys_on_sighup(keys: KeyRing, metrics: Arc<Metrics>) {
    if keys.file().is_none() {
        return;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; API keys reload on change only");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            let (keys, metrics) = (keys.clone(), metrics.clone());
            // A file read: off the async threads.
            let _ = tokio::task::spawn_blocking(move || reload_keys(&keys, &metrics)).await;
        }
    }
    #[cfg(not(unix))]
    let _ = metrics;
}

/// Brings the models, the scoring scheme and the API keys up to date every `interval`.
async fn poll_registry(
    hub: Arc<ModelHub>,
    schemes: Arc<SchemeCache>,
    store: Store,
    keys: KeyRing,
    metrics: Arc<Metrics>,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(50)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let (hub, schemes, store) = (hub.clone(), schemes.clone(), store.clone());
        let (keys, metrics) = (keys.clone(), metrics.clone());
        let polled = tokio::task::spawn_blocking(move || {
            reload_keys(&keys, &metrics);
            hub.reload();
            schemes.refresh(&store)
        })
        .await;
        match polled {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot refresh the scoring scheme"),
            Err(e) => tracing::error!(error = %e, "registry poll failed"),
        }
    }
}
