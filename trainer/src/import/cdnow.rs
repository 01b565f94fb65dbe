//! `vitals-trainer import cdnow FILE`: the CDNOW transactions sample.
//!
//! The file (`cdnow_sample.txt`: 6,919 purchases of 2,357 customers, January 1997 to June
//! 1998) has no header; each line holds five whitespace-separated columns: the master
//! customer id, the customer id within the sample, the date `YYYYMMDD`, the number of CDs
//! bought, and the dollar value (e.g. `29.33`). The import writes:
//!
//! - customers: `external_id` = `cdnow-` + the sample id exactly as written (`cdnow-0001`),
//!   not contractual, status `active` (churn is inferred from inactivity, never declared),
//!   `signup_time` = midnight UTC of the customer's first purchase, no attributes;
//! - one transaction per line: `event_key` = `cdnow-` + the line's 1-based number in the
//!   file (stable across re-imports of the same file), `time` = midnight UTC of the date,
//!   `amount_minor` = the dollar value in cents, parsed exactly from the decimal string
//!   (rounded half up beyond two decimals), currency `USD`, `quantity` = the CDs as given
//!   (0 too), no category or channel.
//!
//! Customers are upserted first, then the transactions. Blank lines are skipped (they still
//! count for line numbers); a malformed line is rejected with its line number and the
//! rest imported. The file is read into memory whole, since every customer's signup is
//! their earliest purchase anywhere in the file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use vitals_domain::time::now_micros;
use vitals_domain::{CustomerData, CustomerRef, EventPayload, NewEvent, Transaction};
use vitals_store::Store;

use super::{CustomerSink, EventSink, ImportKind, ImportOptions, ImportSummary, progress_bar};
use crate::money::parse_minor_units;
use crate::time::{date_micros, parse_compact_date};

/// One purchase line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnowLine {
    pub master_id: String,
    pub sample_id: String,
    pub date: NaiveDate,
    pub cds: i32,
    /// Cents.
    pub amount_minor: i64,
}

impl CdnowLine {
    /// The customer's external id: `cdnow-<sample id>`.
    pub fn external_id(&self) -> String {
        format!("cdnow-{}", self.sample_id)
    }
}

/// The event key of the purchase on `line` (1-based).
pub fn event_key(line: u64) -> String {
    format!("cdnow-{line}")
}

/// Parses one non-blank line; on failure, the column at fault and why.
pub fn parse_line(line: &str) -> Result<CdnowLine, (&'static str, String)> {
    let cells: Vec<&str> = line.split_whitespace().collect();
    let [master_id, sample_id, date, cds, dollars] = cells[..] else {
        return Err((
            "",
            format!(
                "has {} columns, expected 5 (master id, sample id, YYYYMMDD, CDs, dollars)",
                cells.len()
            ),
        ));
    };
    let date = parse_compact_date(date).map_err(|e| ("date", e))?;
    let cds = cds
        .parse()
        .map_err(|_| ("cds", format!("{cds:?} is not a whole number of CDs")))?;
    let amount_minor = parse_minor_units(dollars, 2).map_err(|e| ("dollars", e))?;
    Ok(CdnowLine {
        master_id: master_id.to_owned(),
        sample_id: sample_id.to_owned(),
        date,
        cds,
        amount_minor,
    })
}

/// The transaction of a purchase line.
pub fn purchase_event(line_number: u64, p: &CdnowLine) -> NewEvent {
    NewEvent {
        event_key: event_key(line_number),
        customer: CustomerRef::ExternalId(p.external_id()),
        time: date_micros(p.date),
        payload: EventPayload::Transaction(Transaction {
            amount_minor: p.amount_minor,
            currency: "USD".into(),
            quantity: p.cds,
            category: String::new(),
            channel: String::new(),
        }),
    }
}

/// Imports the CDNOW sample (see the module docs).
pub fn import_cdnow(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let now = now_micros();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;

    // Parse every line first: a customer's signup is their first purchase in the file.
    let mut purchases: Vec<(u64, CdnowLine)> = Vec::new();
    let mut bad_lines: Vec<(u64, &'static str, String)> = Vec::new();
    // external id → (first purchase date, the line of that purchase)
    let mut customers: BTreeMap<String, (NaiveDate, u64)> = BTreeMap::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let number = i as u64 + 1;
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                bad_lines.push((number, "", format!("the line is not valid UTF-8: {e}")));
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match parse_line(text) {
            Ok(p) => {
                let first = customers.entry(p.external_id()).or_insert((p.date, number));
                if p.date < first.0 {
                    *first = (p.date, number);
                }
                purchases.push((number, p));
            }
            Err((field, why)) => bad_lines.push((number, field, why)),
        }
    }
    let read = (purchases.len() + bad_lines.len()) as u64;
    tracing::info!(
        lines = read,
        customers = customers.len(),
        malformed = bad_lines.len(),
        "read {}",
        path.display()
    );

    let bar = progress_bar(options, customers.len() as u64 + read, "cdnow", false);
    let mut customer_sink = CustomerSink::new(store, now, bar.clone());
    for (external_id, (first, line)) in customers {
        let mut data = CustomerData::new(external_id);
        data.contractual = false;
        data.signup_time = Some(date_micros(first));
        customer_sink.push(line, data)?;
        bar.inc(1);
    }
    let customers = customer_sink.finish()?;

    let mut event_sink = EventSink::new(store, options, now, bar.clone());
    for (line, field, why) in bad_lines {
        event_sink.reject(line, "", field, why);
        bar.inc(1);
    }
    for (line, p) in &purchases {
        event_sink.push(*line, purchase_event(*line, p))?;
        bar.inc(1);
    }
    let events = event_sink.finish()?;
    bar.finish_and_clear();
    Ok(ImportSummary::new(
        ImportKind::Cdnow,
        read,
        Some(customers),
        Some(events),
        started,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_purchase_lines() {
        let p = parse_line(" 00004 0001 19970101  2   29.33");
        assert_eq!(
            p,
            Ok(CdnowLine {
                master_id: "00004".into(),
                sample_id: "0001".into(),
                date: NaiveDate::from_ymd_opt(1997, 1, 1).unwrap_or_default(),
                cds: 2,
                amount_minor: 2933,
            })
        );
        let p = parse_line("01101 0087 19970105  1    0.00\r").map(|p| (p.amount_minor, p.cds));
        assert_eq!(p, Ok((0, 1)));
        let p = parse_line("1 2 19980630 12 506.1").map(|p| (p.external_id(), p.amount_minor));
        assert_eq!(p, Ok(("cdnow-2".to_owned(), 50610)));
    }

    #[test]
    fn refuses_malformed_lines() {
        let field = |s: &str| parse_line(s).err().map(|(f, _)| f);
        assert_eq!(field("00004 0001 19970101 2"), Some(""));
        assert_eq!(field("00004 0001 19970101 2 29.33 x"), Some(""));
        assert_eq!(field("00004 0001 1997-01-01 2 29.33"), Some("date"));
        assert_eq!(field("00004 0001 19970231 2 29.33"), Some("date"));
        assert_eq!(field("00004 0001 19970101 two 29.33"), Some("cds"));
        assert_eq!(field("00004 0001 19970101 2 $29.33"), Some("dollars"));
    }

    #[test]
    fn purchase_events_are_exact() {
        let p = parse_line("00004 0001 19970118 2 29.73");
        let e = p.map(|p| purchase_event(2, &p));
        let Ok(e) = e else {
            panic!("line parses: {e:?}");
        };
        assert_eq!(e.event_key, "cdnow-2");
        assert_eq!(e.customer, CustomerRef::ExternalId("cdnow-0001".into()));
        assert_eq!(
            e.time,
            date_micros(NaiveDate::from_ymd_opt(1997, 1, 18).unwrap_or_default())
        );
        match e.payload {
            EventPayload::Transaction(t) => {
                assert_eq!(
                    (t.amount_minor, t.currency.as_str(), t.quantity),
                    (2973, "USD", 2)
                );
            }
            other => panic!("expected a transaction, got {other:?}"),
        }
    }
}
