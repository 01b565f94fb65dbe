//! Load generator for `EvaluationService` (issue 4 measurements).
//!
//! ```text
//! # N concurrent callers looping EvaluateCustomer on random customers (listed first
//! # through ListCustomers) for a fixed time or a fixed number of requests:
//! cargo run --release -p vitals-server --example evaluate_load -- \
//!     --addr http://127.0.0.1:50051 --concurrency 16 --duration-secs 30
//! # the same while activating churn versions 1 and 2 alternately, 10 times:
//! cargo run --release -p vitals-server --example evaluate_load -- \
//!     --concurrency 16 --duration-secs 33 --swap-versions 1,2 --swaps 10
//! # the same while another caller records 200 purchases/s for random customers (each
//! # write makes the server forget that customer's history: reads and writes mixed):
//! cargo run --release -p vitals-server --example evaluate_load -- \
//!     --concurrency 16 --duration-secs 30 --writes-per-sec 200
//! # RefreshEvaluations over every customer, printing its progress:
//! cargo run --release -p vitals-server --example evaluate_load -- --refresh
//! ```
//!
//! Prints requests/s, latency percentiles (p50/p90/p99/max, measured by the client, from
//! sending the request to having decoded the answer) and errors by gRPC status code (an
//! answer for another customer than asked counts as an error too), the churn model
//! version of each answer, and answers without a churn part by their reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tonic::transport::{Channel, Endpoint};
use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::evaluation_service_client::EvaluationServiceClient;
use vitals_proto::v1::model_service_client::ModelServiceClient;

#[derive(Debug, Parser)]
#[command(name = "evaluate_load", about = "Load generator for EvaluationService")]
struct Args {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Concurrent callers, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 connections the callers share (round robin).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// How long to run (ignored with --requests).
    #[arg(long, default_value_t = 30.0)]
    duration_secs: f64,
    /// Stop after this many requests instead of after --duration-secs.
    #[arg(long)]
    requests: Option<u64>,
    /// Requests in the first this many seconds are sent but not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Pick among at most this many listed customers (0: all of them).
    #[arg(long, default_value_t = 0)]
    max_customers: usize,
    /// Seed of the callers' random customer choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Target rate over all callers, requests/s (open loop: each caller sends on a fixed
    /// schedule); without it every caller sends as fast as answers come.
    #[arg(long)]
    rate: Option<f64>,
    /// Also report latency per window of this many seconds (to see it stay stable).
    #[arg(long)]
    window_secs: Option<f64>,
    /// Deadline of each request, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Call RefreshEvaluations instead and report its progress.
    #[arg(long)]
    refresh: bool,
    /// During the run, activate these versions of --swap-kind in turn.
    #[arg(long, value_delimiter = ',')]
    swap_versions: Vec<u64>,
    /// How many activations (spread evenly over the run).
    #[arg(long, default_value_t = 10)]
    swaps: u32,
    /// Model kind the swaps activate.
    #[arg(long, default_value = "churn")]
    swap_kind: String,
    /// Meanwhile record this many purchases per second (one RecordEvents call each, a
    /// random listed customer, on a fixed schedule from one more caller).
    #[arg(long)]
    writes_per_sec: Option<f64>,
    /// API key sent as `authorization: Bearer` on the EvaluateCustomer calls (to measure
    /// what authentication costs); the customer list is fetched with it too.
    #[arg(long, env = "VITALS_API_KEY")]
    api_key: Option<String>,
}

/// xorshift64*: enough randomness to pick customers, no dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % n.max(1)
    }
}

/// What one caller saw.
#[derive(Debug, Default)]
struct Tally {
    /// Microseconds of each successful counted request.
    latencies_us: Vec<u32>,
    /// (window index, microseconds), with --window-secs.
    windows: Vec<(u32, u32)>,
    /// Errors by gRPC code name (and our own checks).
    errors: BTreeMap<String, u64>,
    /// Successful answers by the churn model version that served them.
    churn_versions: BTreeMap<u64, u64>,
    /// Successful answers by where the server took the history from (its
    /// `vitals-history-source` header: memory or database).
    sources: BTreeMap<String, u64>,
    /// Successful answers without a churn part, by the reason given (e.g. the customer has
    /// already churned): not errors, but a swap must never cause one.
    churn_absent: BTreeMap<String, u64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.connections == 0 {
        bail!("--concurrency and --connections must be at least 1");
    }
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let channel = Endpoint::from_shared(args.addr.clone())
            .context("--addr")?
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.addr))?;
        channels.push(channel);
    }
    if args.refresh {
        return refresh(channels[0].clone()).await;
    }

    let ids = list_customers(
        channels[0].clone(),
        args.max_customers,
        args.api_key.as_deref(),
    )
    .await?;
    if ids.is_empty() {
        bail!("the server lists no customers");
    }
    println!("{} customers listed", ids.len());
    let ids = Arc::new(ids);

    let started = Instant::now();
    let warmup = Duration::from_secs_f64(args.warmup_secs.max(0.0));
    let run_for = Duration::from_secs_f64(args.duration_secs.max(0.1));
    let deadline = started + warmup + run_for;
    let issued = Arc::new(AtomicU64::new(0));
    let timeout = Duration::from_millis(args.timeout_ms.max(1));

    let swapper = if args.swap_versions.is_empty() {
        None
    } else {
        // Swaps spread over the counted part of the run, the last one well before its end.
        let every = run_for / (args.swaps + 1);
        Some(tokio::spawn(swap_models(
            channels[0].clone(),
            args.swap_kind.clone(),
            args.swap_versions.clone(),
            args.swaps,
            started + warmup,
            every,
        )))
    };

    let writer = args.writes_per_sec.filter(|r| *r > 0.0).map(|rate| {
        tokio::spawn(write_purchases(
            channels[channels.len() - 1].clone(),
            ids.clone(),
            rate,
            started + warmup,
            deadline,
        ))
    });

    let authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> = args
        .api_key
        .as_ref()
        .map(|k| format!("Bearer {k}").parse())
        .transpose()
        .context("the API key must be printable ASCII")?;
    let concurrency = args.concurrency;
    let pace = args
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(concurrency as f64 / r));
    let window = args.window_secs.filter(|w| *w > 0.0);
    let mut callers = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        let authorization = authorization.clone();
        let client = EvaluationServiceClient::new(channels[i % channels.len()].clone());
        let ids = ids.clone();
        let issued = issued.clone();
        let limit = args.requests;
        let mut rng = Rng::new(args.seed.wrapping_add(i as u64 + 1));
        callers.push(tokio::spawn(async move {
            let mut client = client;
            let mut tally = Tally::default();
            let mut sent: u64 = 0;
            loop {
                if let Some(interval) = pace {
                    // Caller i sends at start + offset + k·interval.
                    let due =
                        started + interval.mul_f64(sent as f64 + i as f64 / concurrency as f64);
                    tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                }
                sent += 1;
                let now = Instant::now();
                match limit {
                    Some(n) => {
                        if issued.fetch_add(1, Ordering::Relaxed) >= n {
                            break;
                        }
                    }
                    None => {
                        if now >= deadline {
                            break;
                        }
                    }
                }
                let id = &ids[rng.below(ids.len())];
                let mut request = tonic::Request::new(pb::EvaluateCustomerRequest {
                    lookup: Some(pb::evaluate_customer_request::Lookup::CustomerId(
                        id.clone(),
                    )),
                    as_of: None,
                });
                request.set_timeout(timeout);
                if let Some(value) = &authorization {
                    request
                        .metadata_mut()
                        .insert("authorization", value.clone());
                }
                let result = client.evaluate_customer(request).await;
                let counted = now >= started + warmup || limit.is_some();
                if !counted {
                    continue;
                }
                let latency = now.elapsed();
                match result {
                    Ok(response) => {
                        let source = response
                            .metadata()
                            .get(vitals_server::api::evaluation::HISTORY_SOURCE_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("unsaid")
                            .to_owned();
                        *tally.sources.entry(source).or_default() += 1;
                        let e = response.into_inner();
                        let absent = e
                            .churn
                            .as_ref()
                            .map_or("no churn part", |c| &c.absent_reason);
                        let version = e.versions.as_ref().map_or(0, |v| v.churn);
                        if e.customer_id != *id {
                            *tally.errors.entry("WRONG_CUSTOMER".into()).or_default() += 1;
                        } else {
                            if !absent.is_empty() {
                                *tally.churn_absent.entry(absent.to_owned()).or_default() += 1;
                            }
                            let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
                            tally.latencies_us.push(us);
                            if let Some(w) = window {
                                let at = now.duration_since(started).as_secs_f64();
                                tally.windows.push(((at / w) as u32, us));
                            }
                            *tally.churn_versions.entry(version).or_default() += 1;
                        }
                    }
                    Err(status) => {
                        *tally
                            .errors
                            .entry(format!("{:?}", status.code()))
                            .or_default() += 1;
                    }
                }
            }
            tally
        }));
    }

    let mut latencies = Vec::new();
    let mut windows: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut versions: BTreeMap<u64, u64> = BTreeMap::new();
    let mut absent: BTreeMap<String, u64> = BTreeMap::new();
    let mut sources: BTreeMap<String, u64> = BTreeMap::new();
    for caller in callers {
        let tally = caller.await.context("a caller panicked")?;
        latencies.extend(tally.latencies_us);
        for (w, us) in tally.windows {
            windows.entry(w).or_default().push(us);
        }
        for (k, v) in tally.errors {
            *errors.entry(k).or_default() += v;
        }
        for (k, v) in tally.churn_versions {
            *versions.entry(k).or_default() += v;
        }
        for (k, v) in tally.sources {
            *sources.entry(k).or_default() += v;
        }
        for (k, v) in tally.churn_absent {
            *absent.entry(k).or_default() += v;
        }
    }
    let measured = if args.requests.is_some() {
        started.elapsed()
    } else {
        started.elapsed().saturating_sub(warmup)
    };
    let swap_errors = match swapper {
        Some(handle) => Some(handle.await.context("the swapper panicked")?),
        None => None,
    };

    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    let failed: u64 = errors.values().sum();
    let q = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p * latencies.len() as f64) as usize).min(latencies.len() - 1);
        f64::from(latencies[i]) / 1000.0
    };
    let secs = measured.as_secs_f64();
    println!(
        "EvaluateCustomer: {} ok, {} errors in {:.1} s; {:.0} requests/s; concurrency {} over {} connections",
        ok,
        failed,
        secs,
        (ok + failed) as f64 / secs,
        args.concurrency,
        args.connections
    );
    println!(
        "latency ms: p50={:.3} p90={:.3} p99={:.3} p99.9={:.3} max={:.3}",
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999),
        latencies
            .last()
            .map_or(f64::NAN, |&m| f64::from(m) / 1000.0)
    );
    if let Some(w) = window {
        for (index, mut window) in windows {
            window.sort_unstable();
            let at = |p: f64| {
                let i = ((p * window.len() as f64) as usize).min(window.len().saturating_sub(1));
                window.get(i).map_or(f64::NAN, |&us| f64::from(us) / 1000.0)
            };
            println!(
                "window {:>6.0}-{:<6.0} s: {:>7} ok, p50={:.3} ms p99={:.3} ms",
                f64::from(index) * w,
                f64::from(index + 1) * w,
                window.len(),
                at(0.50),
                at(0.99)
            );
        }
    }
    println!("errors by code: {errors:?}");
    println!("answers by churn version: {versions:?}");
    println!("answers by history source: {sources:?}");
    println!("answers without a churn part, by reason: {absent:?}");
    if let Some(swap_errors) = swap_errors {
        println!("activation errors: {swap_errors}");
    }
    if let Some(writer) = writer {
        let mut writes = writer.await.context("the writer panicked")?;
        writes.latencies_us.sort_unstable();
        let at = |p: f64| {
            let n = writes.latencies_us.len();
            let i = ((p * n as f64) as usize).min(n.saturating_sub(1));
            writes
                .latencies_us
                .get(i)
                .map_or(f64::NAN, |&us| f64::from(us) / 1000.0)
        };
        println!(
            "RecordEvents meanwhile: {} ok, {} errors; latency ms p50={:.3} p99={:.3}",
            writes.latencies_us.len(),
            writes.errors,
            at(0.50),
            at(0.99)
        );
    }
    Ok(())
}

/// What the writer saw.
#[derive(Debug, Default)]
struct Writes {
    latencies_us: Vec<u32>,
    errors: u64,
}

/// Records one purchase for a random customer every 1/`rate` s from `from` to `until`.
async fn write_purchases(
    channel: Channel,
    ids: Arc<Vec<String>>,
    rate: f64,
    from: Instant,
    until: Instant,
) -> Writes {
    use pb::event::{Customer as Who, Payload};
    let client = vitals_proto::v1::event_service_client::EventServiceClient::new(channel);
    let mut rng = Rng::new(0x5EED);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let every = Duration::from_secs_f64(1.0 / rate);
    // Open loop: each write leaves at its due time whatever the earlier ones are doing,
    // so a slow write delays no other (and its own latency counts in full).
    let mut in_flight = tokio::task::JoinSet::new();
    let mut n: u32 = 0;
    loop {
        let due = from + every * n;
        if due >= until {
            break;
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let event = pb::Event {
            comment_analysis: None,
            event_key: format!("load-{run}-{n}"),
            customer: Some(Who::CustomerId(ids[rng.below(ids.len())].clone())),
            time: Some(prost_types::Timestamp {
                seconds: seconds - 60,
                nanos: 0,
            }),
            record_time: None,
            payload: Some(Payload::Transaction(pb::Transaction {
                amount_minor: 2_500,
                currency: "USD".into(),
                quantity: 1,
                category: String::new(),
                channel: "web".into(),
            })),
        };
        n += 1;
        let mut client = client.clone();
        in_flight.spawn(async move {
            let sent = Instant::now();
            let result = client
                .record_events(pb::RecordEventsRequest {
                    events: vec![event],
                    backfill: false,
                })
                .await;
            match result {
                Ok(r) if r.get_ref().accepted == 1 => {
                    Some(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX))
                }
                _ => None,
            }
        });
    }
    let mut writes = Writes::default();
    while let Some(done) = in_flight.join_next().await {
        match done.ok().flatten() {
            Some(us) => writes.latencies_us.push(us),
            None => writes.errors += 1,
        }
    }
    writes
}

/// Every customer id the server lists, page by page (at most `max`, 0 meaning all).
async fn list_customers(channel: Channel, max: usize, key: Option<&str>) -> Result<Vec<String>> {
    let mut client = CustomerServiceClient::new(channel);
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let mut request = tonic::Request::new(pb::ListCustomersRequest {
            page_size: 1000,
            page_token: token.clone(),
            ..Default::default()
        });
        if let Some(key) = key {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {key}")
                    .parse()
                    .context("the API key must be printable ASCII")?,
            );
        }
        let page = client
            .list_customers(request)
            .await
            .context("ListCustomers")?
            .into_inner();
        ids.extend(page.customers.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() || (max > 0 && ids.len() >= max) {
            break;
        }
        token = page.next_page_token;
    }
    if max > 0 {
        ids.truncate(max);
    }
    Ok(ids)
}

/// Activates `versions` in turn, `swaps` times, one every `every` from `start`; returns
/// how many activations failed.
async fn swap_models(
    channel: Channel,
    kind: String,
    versions: Vec<u64>,
    swaps: u32,
    start: Instant,
    every: Duration,
) -> u64 {
    let mut client = ModelServiceClient::new(channel);
    let mut failed = 0;
    for i in 0..swaps {
        tokio::time::sleep_until((start + every * (i + 1)).into()).await;
        let version = versions[i as usize % versions.len()];
        let t = Instant::now();
        let answer = client
            .activate_model(pb::ActivateModelRequest {
                kind: kind.clone(),
                version,
                reason: "evaluate_load swap test".into(),
                actor: "evaluate_load".into(),
            })
            .await;
        match answer {
            Ok(r) => println!(
                "swap {}: {kind} {} -> {version} in {:.1} ms",
                i + 1,
                r.into_inner().previous_version,
                t.elapsed().as_secs_f64() * 1e3
            ),
            Err(status) => {
                failed += 1;
                println!("swap {}: {kind} -> {version} failed: {status}", i + 1);
            }
        }
    }
    failed
}

/// Runs RefreshEvaluations, printing every tenth progress message and the last.
async fn refresh(channel: Channel) -> Result<()> {
    let mut client = EvaluationServiceClient::new(channel);
    let t = Instant::now();
    let mut stream = client
        .refresh_evaluations(pb::RefreshEvaluationsRequest { as_of: None })
        .await
        .context("RefreshEvaluations")?
        .into_inner();
    let mut n = 0u64;
    let mut last = None;
    while let Some(progress) = stream.message().await.context("refresh progress")? {
        if n.is_multiple_of(10) || progress.finished {
            println!(
                "{} / {} customers, {} stored, {:.2} s{}",
                progress.customers_done,
                progress.customers_total,
                progress.evaluations_stored,
                progress.seconds,
                if progress.finished { ", finished" } else { "" }
            );
        }
        n += 1;
        last = Some(progress);
    }
    let Some(last) = last.filter(|p| p.finished) else {
        bail!("the refresh stream ended without a finished message");
    };
    println!(
        "refresh: {} customers, {} evaluations stored, server {:.2} s, client {:.2} s",
        last.customers_done,
        last.evaluations_stored,
        last.seconds,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
