//! Prometheus metrics, served as text at `GET /metrics` on the API's own port (see
//! [`crate::http`]): requests and their latency per method and gRPC status, the models in
//! service, the history cache, the database pool and health, the audit trail, API key
//! reloads and RefreshEvaluations' progress.
//!
//! Counters the request path bumps live here; what other parts already know (models
//! serving, cache size, pool state) is read from them when the page is scraped, so the
//! scoring path pays nothing for it.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use prost::Message;
use vitals_store::Store;

use crate::auth::KeyRing;
use crate::models::ModelHub;
use vitals_app::histories::HistoryCache;

/// The method label of a path no service knows: unknown paths must not each make a new
/// time series.
const UNKNOWN_METHOD: &str = "unknown";

/// What the scrape reads from other parts of the server.
#[derive(Debug)]
struct Sources {
    hub: Arc<ModelHub>,
    histories: Arc<HistoryCache>,
    store: Store,
    keys: KeyRing,
}

pub struct Metrics {
    registry: Registry,
    /// Every method the server serves, as `/package.Service/Method`.
    methods: HashSet<String>,
    sources: OnceLock<Sources>,

    requests: HistogramVec,
    pub audit_written: IntCounter,
    pub audit_dropped: IntCounter,
    pub refresh_running: IntGauge,
    pub refresh_customers_done: IntGauge,
    pub refresh_customers_total: IntGauge,
    pub database_up: IntGauge,
    pub key_reloads: IntCounterVec,

    models_serving: IntGaugeVec,
    models_active: IntGaugeVec,
    models_refused: IntGaugeVec,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    cache_bytes: IntGauge,
    cache_entries: IntGauge,
    cache_live: IntGauge,
    pool_max: IntGauge,
    pool_open: IntGauge,
    pool_in_use: IntGauge,
    pool_waiting: IntGauge,
    api_keys: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("methods", &self.methods.len())
            .finish_non_exhaustive()
    }
}

/// Latency buckets in seconds: from a cached evaluation (well under a millisecond) to a
/// refresh of every customer (minutes).
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    60.0, 300.0,
];

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are this file's constants and each is registered once per registry: a
    // failure here is a programming error caught by the first test that builds a server.
    if let Err(e) = registry.register(Box::new(metric.clone())) {
        tracing::error!(error = %e, "a metric could not be registered");
    }
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).unwrap_or_else(|_| unreachable_metric(name)),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(
        registry,
        IntGauge::new(name, help).unwrap_or_else(|_| unreachable_metric(name)),
    )
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|_| unreachable_metric(name)),
    )
}

/// Metric names and labels are constants checked by the tests; prometheus refuses only
/// malformed names, so this cannot be reached with the names above.
fn unreachable_metric(name: &str) -> ! {
    panic!("the metric name {name:?} is malformed")
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let r = Registry::new();
        let requests = register(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "vitals_grpc_request_duration_seconds",
                    "gRPC requests by method and status code, and how long they took \
                     (to the last message of a stream)",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["method", "code"],
            )
            .unwrap_or_else(|_| unreachable_metric("vitals_grpc_request_duration_seconds")),
        );
        let key_reloads = register(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "vitals_api_key_reloads_total",
                    "Re-reads of the API keys file that changed it, by outcome (loaded, refused)",
                ),
                &["outcome"],
            )
            .unwrap_or_else(|_| unreachable_metric("vitals_api_key_reloads_total")),
        );
        Arc::new(Self {
            methods: known_methods(),
            sources: OnceLock::new(),
            requests,
            audit_written: counter(
                &r,
                "vitals_audit_entries_written_total",
                "Audit entries stored",
            ),
            audit_dropped: counter(
                &r,
                "vitals_audit_entries_dropped_total",
                "Audit entries lost after the database refused them five times",
            ),
            refresh_running: gauge(
                &r,
                "vitals_refresh_running",
                "1 while RefreshEvaluations runs",
            ),
            refresh_customers_done: gauge(
                &r,
                "vitals_refresh_customers_done",
                "Customers evaluated by the running (or last) RefreshEvaluations",
            ),
            refresh_customers_total: gauge(
                &r,
                "vitals_refresh_customers_total",
                "Customers to evaluate in the running (or last) RefreshEvaluations",
            ),
            database_up: gauge(
                &r,
                "vitals_database_up",
                "1 when the last health probe reached the database",
            ),
            key_reloads,
            models_serving: gauge_vec(
                &r,
                "vitals_model_version_serving",
                "The model version in service per kind (absent: none)",
                &["kind"],
            ),
            models_active: gauge_vec(
                &r,
                "vitals_model_version_active",
                "The version the registry marks active per kind",
                &["kind"],
            ),
            models_refused: gauge_vec(
                &r,
                "vitals_model_version_refused",
                "The active version this server refused to serve per kind (0: none refused)",
                &["kind"],
            ),
            cache_hits: counter(
                &r,
                "vitals_history_cache_hits_total",
                "Evaluations answered from the history cache",
            ),
            cache_misses: counter(
                &r,
                "vitals_history_cache_misses_total",
                "Evaluations that read the history from the database",
            ),
            cache_bytes: gauge(
                &r,
                "vitals_history_cache_bytes",
                "Estimated bytes of histories kept in memory",
            ),
            cache_entries: gauge(
                &r,
                "vitals_history_cache_entries",
                "Histories kept in memory",
            ),
            cache_live: gauge(
                &r,
                "vitals_history_cache_live",
                "1 while the cache hears every change and serves",
            ),
            pool_max: gauge(&r, "vitals_db_pool_max_connections", "The pool's limit"),
            pool_open: gauge(&r, "vitals_db_pool_connections", "Connections open"),
            pool_in_use: gauge(&r, "vitals_db_pool_in_use", "Connections checked out"),
            pool_waiting: gauge(
                &r,
                "vitals_db_pool_waiting",
                "Callers waiting for a connection",
            ),
            api_keys: gauge(
                &r,
                "vitals_api_keys",
                "API keys in force (0: no authentication, loopback only)",
            ),
            registry: r,
        })
    }

    /// Connects the parts read at scrape time (once; later calls are ignored).
    pub fn attach(
        &self,
        hub: Arc<ModelHub>,
        histories: Arc<HistoryCache>,
        store: Store,
        keys: KeyRing,
    ) {
        let _ = self.sources.set(Sources {
            hub,
            histories,
            store,
            keys,
        });
    }

    /// The label for a request path: the method, or `unknown`.
    pub fn method_label<'a>(&self, path: &'a str) -> &'a str {
        if self.methods.contains(path) {
            path.trim_start_matches('/')
        } else {
            UNKNOWN_METHOD
        }
    }

    pub fn observe_request(&self, method: &str, code: tonic::Code, seconds: f64) {
        self.requests
            .with_label_values(&[method, code_name(code)])
            .observe(seconds);
    }

    /// The page in Prometheus' text format.
    pub fn render(&self) -> String {
        if let Some(s) = self.sources.get() {
            self.sample(s);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn sample(&self, s: &Sources) {
        for status in s.hub.status() {
            let kind = status.kind;
            let as_gauge = |v: Option<u64>| i64::try_from(v.unwrap_or(0)).unwrap_or(i64::MAX);
            self.models_serving
                .with_label_values(&[kind])
                .set(as_gauge(status.serving));
            self.models_active
                .with_label_values(&[kind])
                .set(as_gauge(status.active));
            self.models_refused
                .with_label_values(&[kind])
                .set(as_gauge(status.refused));
        }
        let cache = s.histories.stats();
        catch_up(&self.cache_hits, cache.hits);
        catch_up(&self.cache_misses, cache.misses);
        self.cache_bytes
            .set(i64::try_from(cache.bytes).unwrap_or(i64::MAX));
        self.cache_entries
            .set(i64::try_from(cache.entries).unwrap_or(i64::MAX));
        self.cache_live.set(i64::from(s.histories.is_live()));
        let pool = s.store.pool_stats();
        self.pool_max.set(i64::from(pool.max));
        self.pool_open.set(i64::from(pool.open));
        self.pool_in_use
            .set(i64::from(pool.open.saturating_sub(pool.idle)));
        self.pool_waiting
            .set(i64::try_from(pool.waiting).unwrap_or(i64::MAX));
        self.api_keys
            .set(i64::try_from(s.keys.current().len()).unwrap_or(i64::MAX));
    }
}

/// Brings a counter up to a total counted elsewhere.
fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

/// The gRPC status code as the spec spells it (`OK`, `NOT_FOUND`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Every method of the services the server registers, read from their descriptors.
fn known_methods() -> HashSet<String> {
    let mut methods = HashSet::new();
    for encoded in [
        vitals_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    for version in ["v1", "v1alpha"] {
        methods.insert(format!(
            "/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
        ));
    }
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_labelled_by_name_and_unknown_paths_share_one_label() {
        let metrics = Metrics::new();
        assert_eq!(
            metrics.method_label("/vitals.v1.EvaluationService/EvaluateCustomer"),
            "vitals.v1.EvaluationService/EvaluateCustomer"
        );
        assert_eq!(
            metrics.method_label("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(
            metrics.method_label("/vitals.v1.Nope/Nothing"),
            UNKNOWN_METHOD
        );
        metrics.observe_request(
            "vitals.v1.EvaluationService/EvaluateCustomer",
            tonic::Code::NotFound,
            0.003,
        );
        let page = metrics.render();
        assert!(
            page.contains(
                "vitals_grpc_request_duration_seconds_count{code=\"NOT_FOUND\",method=\"vitals.v1.EvaluationService/EvaluateCustomer\"} 1"
            ),
            "{page}"
        );
    }

    #[test]
    fn counters_catch_up_with_totals_kept_elsewhere() {
        let metrics = Metrics::new();
        catch_up(&metrics.cache_hits, 5);
        catch_up(&metrics.cache_hits, 3);
        catch_up(&metrics.cache_hits, 9);
        assert_eq!(metrics.cache_hits.get(), 9);
    }
}
