//! The held-back half of issue 20's sentiment protocol, through the API: the test
//! customers' comments arrive as reviews *without* a score, and their sentiment is read
//! back with ListComments and scored against the corpus labels (ROC-AUC).
//!
//! ```text
//! # bench/text/heldback.sh runs the whole protocol; by hand, against a running server
//! # whose database holds the test customers (external ids as in the file):
//! cargo run --release -p vitals-server --example comment_heldback -- \
//!     --addr http://127.0.0.1:50051 --test target/text-split/en_amazon_snippets/test.tsv
//! ```
//!
//! The file is `customer<TAB>label<TAB>text` with a header (`bench/text/split.py --ids`).
//! Prints one JSON line: comments sent, answered, ROC-AUC, the model versions that
//! analysed them and the languages found.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail};
use clap::Parser;
use vitals_proto::v1 as pb;
use vitals_proto::v1::event_service_client::EventServiceClient;

#[derive(Debug, Parser)]
#[command(
    name = "comment_heldback",
    about = "Scoreless comments in, sentiment out, ROC-AUC"
)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// customer<TAB>label<TAB>text, with a header.
    #[arg(long)]
    test: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.test)
        .with_context(|| format!("reading {}", args.test.display()))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let mut cells = line.splitn(3, '\t');
        let (Some(customer), Some(label), Some(words)) = (cells.next(), cells.next(), cells.next())
        else {
            bail!("line {}: expected customer<TAB>label<TAB>text", n + 1);
        };
        rows.push((customer.to_owned(), label == "1", words.to_owned()));
    }
    let mut api = EventServiceClient::connect(args.addr.clone())
        .await?
        .max_decoding_message_size(64 << 20);
    let now = vitals_domain::time::now_micros() / 1_000_000;
    for chunk in rows.chunks(1_000) {
        let events = chunk
            .iter()
            .map(|(customer, _, words)| pb::Event {
                event_key: "heldback-review".into(),
                customer: Some(pb::event::Customer::CustomerExternalId(customer.clone())),
                time: Some(prost_types::Timestamp {
                    seconds: now - 60,
                    nanos: 0,
                }),
                record_time: None,
                payload: Some(pb::event::Payload::Feedback(pb::Feedback {
                    kind: pb::FeedbackKind::Review as i32,
                    score: None,
                    comment: words.clone(),
                    channel: "heldback".into(),
                })),
                comment_analysis: None,
            })
            .collect();
        let r = api
            .record_events(pb::RecordEventsRequest {
                events,
                backfill: true,
            })
            .await?
            .into_inner();
        if let Some(bad) = r.rejected.first() {
            bail!("{} comments rejected, e.g. {bad:?}", r.rejected.len());
        }
    }
    let mut sentiment: HashMap<String, (f32, i64, String)> = HashMap::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_comments(pb::ListCommentsRequest {
                channel: "heldback".into(),
                page_size: 1_000,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        for c in page.comments {
            if let Some(a) = c.analysis {
                sentiment.insert(
                    c.customer_external_id,
                    (a.sentiment, a.model_version, a.language),
                );
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut scored = Vec::new();
    let mut versions: BTreeMap<i64, usize> = BTreeMap::new();
    let mut languages: BTreeMap<String, usize> = BTreeMap::new();
    for (customer, positive, _) in &rows {
        if let Some((s, version, language)) = sentiment.get(customer) {
            scored.push((f64::from(*s), *positive));
            *versions.entry(*version).or_default() += 1;
            *languages.entry(language.clone()).or_default() += 1;
        }
    }
    let (scores, labels): (Vec<f64>, Vec<bool>) = scored.into_iter().unzip();
    println!(
        "{}",
        serde_json::json!({
            "file": args.test.display().to_string(),
            "sent": rows.len(),
            "answered": scores.len(),
            "roc_auc": vitals_engine::metrics::roc_auc(&labels, &scores).ok(),
            "model_versions": versions,
            "languages": languages,
        })
    );
    Ok(())
}
