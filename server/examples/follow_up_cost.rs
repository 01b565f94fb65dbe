//! What a follow-up task adds to recording the event that opens it (issue 6 target:
//! at most 10%).
//!
//! ```text
//! cargo run --release -p vitals-server --example follow_up_cost -- \
//!     --addr http://127.0.0.1:50051 --calls 4000 --concurrency 4 --rounds 3
//! ```
//!
//! Creates `calls` fresh customers per round, then records one event per call (one
//! RecordEvents call, one customer each, `concurrency` callers in closed loop) in three
//! kinds, interleaved round by round so drift on a shared machine hits all three alike:
//! - `purchase`: a transaction; no follow-up code runs for it at all;
//! - `promoter`: NPS 9, a survey answer that could signal, checked against the rules,
//!   opens nothing;
//! - `detractor`: NPS 3, opens a task in the same transaction.
//!
//! Prints the mean and percentiles per kind over all rounds, and the detractor's extra
//! cost over the promoter (the task itself) and over the purchase (everything follow-ups
//! add, rules included).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use tonic::transport::{Channel, Endpoint};
use vitals_proto::v1 as pb;
use vitals_proto::v1::customer_service_client::CustomerServiceClient;
use vitals_proto::v1::event_service_client::EventServiceClient;

#[derive(Debug, Parser)]
#[command(
    name = "follow_up_cost",
    about = "The cost a follow-up adds to recording an event"
)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Calls per kind per round (one fresh customer each).
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Purchase,
    Promoter,
    Detractor,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Purchase, Kind::Promoter, Kind::Detractor];

    fn name(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Promoter => "promoter",
            Kind::Detractor => "detractor",
        }
    }

    fn payload(self) -> pb::event::Payload {
        use pb::event::Payload;
        let survey = |score| {
            Payload::Feedback(pb::Feedback {
                kind: pb::FeedbackKind::Nps as i32,
                score: Some(score),
                comment: String::new(),
                channel: "web".into(),
            })
        };
        match self {
            Kind::Purchase => Payload::Transaction(pb::Transaction {
                amount_minor: 4_200,
                currency: "EUR".into(),
                quantity: 1,
                category: "bench".into(),
                channel: "web".into(),
            }),
            Kind::Promoter => survey(9),
            Kind::Detractor => survey(3),
        }
    }
}

async fn customers(channel: &Channel, prefix: &str, n: usize) -> Result<Vec<String>> {
    let mut client = CustomerServiceClient::new(channel.clone());
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let c = client
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    external_id: format!("{prefix}-{i}"),
                    ..Default::default()
                }),
            })
            .await
            .context("create a customer")?
            .into_inner();
        ids.push(c.id);
    }
    Ok(ids)
}

/// Records one event per customer; returns each call's latency.
async fn run(
    channel: &Channel,
    kind: Kind,
    ids: Arc<Vec<String>>,
    concurrency: usize,
) -> Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (ids, next) = (ids.clone(), next.clone());
        let mut client = EventServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else {
                    return Ok::<_, anyhow::Error>(latencies);
                };
                let started = Instant::now();
                let out = client
                    .record_events(pb::RecordEventsRequest {
                        events: vec![pb::Event {
                            comment_analysis: None,
                            event_key: format!("bench-{}", kind.name()),
                            customer: Some(pb::event::Customer::CustomerId(id.clone())),
                            time: Some(prost_types::Timestamp {
                                seconds: std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_secs() as i64 - 60),
                                nanos: 0,
                            }),
                            record_time: None,
                            payload: Some(kind.payload()),
                        }],
                        backfill: false,
                    })
                    .await?
                    .into_inner();
                latencies.push(started.elapsed());
                let opened = usize::from(kind == Kind::Detractor);
                if out.accepted != 1 || out.follow_ups_opened as usize != opened {
                    bail!("{}: unexpected answer {out:?}", kind.name());
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

fn summary(mut d: Vec<Duration>) -> (f64, f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    let mean = d.iter().map(|x| ms(*x)).sum::<f64>() / d.len().max(1) as f64;
    let at = |q: f64| {
        d.get(((d.len() as f64 * q) as usize).min(d.len().saturating_sub(1)))
            .map_or(0.0, |x| ms(*x))
    };
    (mean, at(0.5), at(0.99))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let channel = Endpoint::from_shared(args.addr.clone())?
        .tcp_nodelay(true)
        .connect()
        .await
        .context("connect to the server")?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); 3];
    for round in 0..args.rounds {
        for (k, kind) in Kind::ALL.into_iter().enumerate() {
            let ids = customers(
                &channel,
                &format!("fuc-{stamp}-{round}-{}", kind.name()),
                args.calls,
            )
            .await?;
            let took = run(&channel, kind, Arc::new(ids), args.concurrency).await?;
            latencies[k].extend(took);
        }
    }
    let stats: Vec<(f64, f64, f64)> = latencies.into_iter().map(summary).collect();
    println!(
        "kind        mean ms   p50 ms   p99 ms   ({} calls each, {} callers)",
        args.calls * args.rounds,
        args.concurrency
    );
    for (kind, (mean, p50, p99)) in Kind::ALL.iter().zip(&stats) {
        println!("{:<10} {mean:>8.3} {p50:>8.3} {p99:>8.3}", kind.name());
    }
    for (what, pick) in [("mean", 0), ("median", 1)] {
        let get = |k: usize| match pick {
            0 => stats[k].0,
            _ => stats[k].1,
        };
        let (purchase, promoter, detractor) = (get(0), get(1), get(2));
        println!(
            "{what}: detractor vs promoter (the task) {:+.1}%, detractor vs purchase (all follow-up work) {:+.1}%",
            100.0 * (detractor / promoter - 1.0),
            100.0 * (detractor / purchase - 1.0)
        );
    }
    Ok(())
}
