//! Timing `PortfolioService.GetPortfolioMetrics` (issue 6 target: under a second over
//! 100,000 customers and 2,000,000 events on PostgreSQL).
//!
//! ```text
//! cargo run --release -p vitals-server --example portfolio_load -- \
//!     --addr http://127.0.0.1:50053 --start 2025-06-01 --end 2026-11-01 --repeat 5
//! ```
//!
//! Runs each combination of grouping (all, segment, region, tier) and granularity
//! (period, week, month) `repeat` times, one call at a time, and prints the
//! fastest, median and slowest latency of each with the number of buckets returned.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use tonic::transport::Endpoint;
use vitals_proto::v1 as pb;
use vitals_proto::v1::portfolio_service_client::PortfolioServiceClient;

#[derive(Debug, Parser)]
#[command(name = "portfolio_load", about = "Latency of GetPortfolioMetrics")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// First day of the period, YYYY-MM-DD (UTC).
    #[arg(long)]
    start: String,
    /// Day after the period, YYYY-MM-DD (UTC).
    #[arg(long)]
    end: String,
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

fn timestamp(day: &str) -> Result<prost_types::Timestamp> {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").context("a YYYY-MM-DD date")?;
    let seconds = d
        .and_hms_opt(0, 0, 0)
        .context("midnight")?
        .and_utc()
        .timestamp();
    Ok(prost_types::Timestamp { seconds, nanos: 0 })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let channel = Endpoint::from_shared(args.addr.clone())?
        .connect()
        .await
        .context("connect to the server")?;
    let mut client = PortfolioServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let (start, end) = (timestamp(&args.start)?, timestamp(&args.end)?);
    println!("group     granularity  buckets   min ms  median ms   max ms");
    for (group, group_name) in [
        (pb::Grouping::Unspecified, "all"),
        (pb::Grouping::Segment, "segment"),
        (pb::Grouping::Region, "region"),
        (pb::Grouping::Tier, "tier"),
    ] {
        for (granularity, granularity_name) in [
            (pb::Granularity::Unspecified, "period"),
            (pb::Granularity::Week, "week"),
            (pb::Granularity::Month, "month"),
        ] {
            let mut took: Vec<Duration> = Vec::new();
            let mut buckets = 0;
            for _ in 0..args.repeat {
                let started = Instant::now();
                let answer = client
                    .get_portfolio_metrics(pb::GetPortfolioMetricsRequest {
                        start_time: Some(start),
                        end_time: Some(end),
                        group_by: group as i32,
                        granularity: granularity as i32,
                    })
                    .await?
                    .into_inner();
                took.push(started.elapsed());
                buckets = answer.buckets.len();
            }
            took.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{group_name:<9} {granularity_name:<12} {buckets:>7} {:>8.1} {:>10.1} {:>8.1}",
                ms(took[0]),
                ms(took[took.len() / 2]),
                ms(took[took.len() - 1])
            );
        }
    }
    Ok(())
}
