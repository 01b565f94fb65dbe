//! Importing history into the store: customers and events from files.
//!
//! Four importers share the machinery here:
//!
//! - [`csv_generic::import_customers`] and [`csv_generic::import_events`]: documented
//!   CSV layouts for any source;
//! - [`telco::import_telco`]: the IBM Telco churn sample (contractual customers);
//! - [`cdnow::import_cdnow`]: the CDNOW transactions sample (non-contractual purchases).
//!
//! Every row is parsed and validated with the same rules as the API
//! (`vitals_domain::validate`) before it is written; a row that fails is reported with its
//! line number, field and reason and never stops the good rows. Writes go through the
//! store's bulk functions in batches: [`CUSTOMER_BATCH`] customers per
//! `Store::upsert_customers` call (which commits every 500 rows) and [`EVENT_BATCH`] events
//! per `Store::record_events` call (one transaction each). Events are recorded in backfill
//! mode, so each event counts as known from when it happened.
//!
//! Re-importing a file is safe: customers are upserted by external id (identical data
//! counts as unchanged) and events are idempotent by `(customer, event_key)` (identical
//! content counts as a duplicate). An error reading the file or writing the database stops
//! the import with an error; batches already committed stay committed, and importing the
//! file again completes it.

pub mod cdnow;
pub mod csv_generic;
pub mod telco;

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use vitals_domain::explain::thousands;
use vitals_domain::time::Micros;
use vitals_domain::validate::{self, MAX_BATCH_EVENTS};
use vitals_domain::{CustomerData, NewEvent, Violations};
use vitals_store::{RecordMode, Store};

/// Customers per `Store::upsert_customers` call.
pub const CUSTOMER_BATCH: usize = 5_000;
/// Events per `Store::record_events` call: one transaction each. Twenty times what an
/// API call may send: the store writes a backfill batch in customer order, and the more
/// events a batch holds, the more of them land on each index page it touches. Measured
/// on 2,000,000 events for 200,000 customers (BENCHMARKS.md, "A million customers"):
/// 10,000 a batch 65,803 events/s, 50,000 85,582, 200,000 100,453, at a peak of 624 MB
/// for two batches in flight.
pub const EVENT_BATCH: usize = 20 * MAX_BATCH_EVENTS;
/// Rejections kept in an [`ImportSummary`] (all are counted).
pub const MAX_KEPT_REJECTIONS: usize = 1_000;

/// How an import runs.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Draw a progress bar on stderr (drawn only when stderr is a terminal).
    pub progress: bool,
    /// The text model that analyses imported comments; the built-in lexicons without one.
    pub text: Option<std::sync::Arc<vitals_engine::evaluation::LoadedText>>,
}

/// Which importer ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Customers,
    Events,
    Telco,
    Cdnow,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Events => "events",
            Self::Telco => "telco",
            Self::Cdnow => "cdnow",
        }
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The line in the file where the row starts (1-based; a CSV header is line 1).
    pub row: u64,
    /// The external id or event key of the row, when known.
    pub key: String,
    /// The column or field at fault, e.g. `email` or `transaction.currency`.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.row)?;
        if !self.key.is_empty() {
            write!(f, " ({})", self.key)?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.reason)
        } else {
            write!(f, ": {}: {}", self.field, self.reason)
        }
    }
}

/// Rejections of one phase: all counted, the first [`MAX_KEPT_REJECTIONS`] kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rejections {
    count: u64,
    kept: Vec<Rejection>,
}

impl Rejections {
    pub(crate) fn push(&mut self, r: Rejection) {
        self.count += 1;
        if self.kept.len() < MAX_KEPT_REJECTIONS {
            self.kept.push(r);
        }
    }

    pub(crate) fn reject(&mut self, row: u64, key: &str, field: &str, reason: impl Into<String>) {
        self.push(Rejection {
            row,
            key: key.to_owned(),
            field: field.to_owned(),
            reason: reason.into(),
        });
    }

    /// One rejection for every violation of a row: the first violation's field, and
    /// every violation in the reason.
    fn violations(&mut self, row: u64, key: &str, v: &Violations) {
        let Some(first) = v.first() else { return };
        let reason = if v.0.len() == 1 {
            first.description.clone()
        } else {
            format!(
                "{} (and {})",
                first.description,
                Violations(v.0[1..].to_vec())
            )
        };
        self.reject(row, key, &first.field, reason);
    }
}

/// What a customer import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerCounts {
    /// Customer rows read (for CDNOW: distinct customers found).
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub seconds: f64,
}

/// What an event import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventCounts {
    /// Event rows read.
    pub read: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub seconds: f64,
}

/// What an import did, printed at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub kind: ImportKind,
    /// Data rows (or lines) read from the file, header and blank lines not counted.
    pub read: u64,
    pub customers: Option<CustomerCounts>,
    pub events: Option<EventCounts>,
    /// Rows not imported, for any reason.
    pub rejected: u64,
    /// The first [`MAX_KEPT_REJECTIONS`] rejections of each phase, by line.
    pub rejections: Vec<Rejection>,
    pub seconds: f64,
}

/// The summary as one flat JSON object (`--json`).
#[derive(Debug, Serialize)]
struct JsonSummary {
    kind: ImportKind,
    read: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    seconds: f64,
}

impl ImportSummary {
    fn new(
        kind: ImportKind,
        read: u64,
        customers: Option<(CustomerCounts, Rejections)>,
        events: Option<(EventCounts, Rejections)>,
        started: Instant,
    ) -> Self {
        let mut rejected = 0;
        let mut rejections = Vec::new();
        let customers = customers.map(|(counts, r)| {
            rejected += r.count;
            rejections.extend(r.kept);
            counts
        });
        let events = events.map(|(counts, r)| {
            rejected += r.count;
            rejections.extend(r.kept);
            counts
        });
        rejections.sort_by_key(|r| r.row);
        Self {
            kind,
            read,
            customers,
            events,
            rejected,
            rejections,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// The summary as one flat JSON object with the keys `kind`, `read`, `created`,
    /// `updated`, `unchanged`, `accepted`, `duplicates`, `rejected` and `seconds`, in that
    /// order. `read` counts the file's data rows; `rejected` counts rows rejected for any
    /// reason; the counts of a phase the import does not have are 0.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.flat()).unwrap_or_default()
    }

    /// [`Self::to_json_string`] as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.flat()).unwrap_or_default()
    }

    fn flat(&self) -> JsonSummary {
        let c = self.customers.clone().unwrap_or_default();
        let e = self.events.clone().unwrap_or_default();
        JsonSummary {
            kind: self.kind,
            read: self.read,
            created: c.created,
            updated: c.updated,
            unchanged: c.unchanged,
            accepted: e.accepted,
            duplicates: e.duplicates,
            rejected: self.rejected,
            // Milliseconds are plenty.
            seconds: (self.seconds * 1000.0).round() / 1000.0,
        }
    }
}

impl fmt::Display for ImportSummary {
    /// One line per phase, e.g.
    /// `customers: 7043 read, 7043 created, 0 updated, 0 unchanged, 0 rejected (1.2 s, 5,800 rows/s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if let Some(c) = &self.customers {
            write!(
                f,
                "customers: {} read, {} created, {} updated, {} unchanged, {} rejected ({})",
                c.read,
                c.created,
                c.updated,
                c.unchanged,
                c.rejected,
                rate(c.read, c.seconds)
            )?;
            first = false;
        }
        if let Some(e) = &self.events {
            if !first {
                writeln!(f)?;
            }
            write!(
                f,
                "events: {} read, {} accepted, {} duplicates, {} rejected ({})",
                e.read,
                e.accepted,
                e.duplicates,
                e.rejected,
                rate(e.read, e.seconds)
            )?;
        }
        Ok(())
    }
}

/// `1.2 s, 5,800 rows/s`.
fn rate(rows: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return format!("{seconds:.1} s");
    }
    // Rounded to the row; a float to u64 cast saturates.
    let per_second = (rows as f64 / seconds).round() as u64;
    format!("{seconds:.1} s, {} rows/s", thousands(per_second))
}

/// A progress bar on stderr, hidden unless `options.progress` and stderr is a terminal.
pub(crate) fn progress_bar(
    options: &ImportOptions,
    len: u64,
    label: &str,
    bytes: bool,
) -> ProgressBar {
    if !options.progress {
        return ProgressBar::hidden();
    }
    let template = if bytes {
        "{prefix:>9} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {msg}"
    } else {
        "{prefix:>9} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {msg}"
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar =
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()).with_style(style);
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Validates customers and upserts them in batches.
/// Where parsed rows go: a customer or an event sink.
pub(crate) trait RowSink {
    type Item;
    fn push(&mut self, row: u64, item: Self::Item) -> anyhow::Result<()>;
    fn reject(&mut self, row: u64, key: &str, field: &str, reason: String);
}

impl RowSink for CustomerSink<'_> {
    type Item = CustomerData;
    fn push(&mut self, row: u64, item: CustomerData) -> anyhow::Result<()> {
        CustomerSink::push(self, row, item)
    }
    fn reject(&mut self, row: u64, key: &str, field: &str, reason: String) {
        CustomerSink::reject(self, row, key, field, reason);
    }
}

impl RowSink for EventSink<'_> {
    type Item = NewEvent;
    fn push(&mut self, row: u64, item: NewEvent) -> anyhow::Result<()> {
        EventSink::push(self, row, item)
    }
    fn reject(&mut self, row: u64, key: &str, field: &str, reason: String) {
        EventSink::reject(self, row, key, field, reason);
    }
}

pub(crate) struct CustomerSink<'a> {
    store: &'a Store,
    now: Micros,
    batch: Vec<(u64, CustomerData)>,
    counts: CustomerCounts,
    rejections: Rejections,
    progress: ProgressBar,
    started: Instant,
}

impl<'a> CustomerSink<'a> {
    pub(crate) fn new(store: &'a Store, now: Micros, progress: ProgressBar) -> Self {
        Self {
            store,
            now,
            batch: Vec::with_capacity(CUSTOMER_BATCH),
            counts: CustomerCounts::default(),
            rejections: Rejections::default(),
            progress,
            started: Instant::now(),
        }
    }

    /// A row read from line `row`: validated, then queued for the next batch.
    pub(crate) fn push(&mut self, row: u64, data: CustomerData) -> anyhow::Result<()> {
        self.counts.read += 1;
        let mut v = Violations::new();
        validate::check_customer(&mut v, "", &data, self.now);
        if !v.is_empty() {
            self.counts.rejected += 1;
            self.rejections.violations(row, &data.external_id, &v);
            return Ok(());
        }
        self.batch.push((row, data));
        if self.batch.len() >= CUSTOMER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// A row read from line `row` that could not be parsed.
    pub(crate) fn reject(&mut self, row: u64, key: &str, field: &str, reason: impl Into<String>) {
        self.counts.read += 1;
        self.counts.rejected += 1;
        self.rejections.reject(row, key, field, reason);
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(CUSTOMER_BATCH));
        let (first, last) = line_range(batch.iter().map(|(row, _)| *row));
        let outcome = self
            .store
            .upsert_customers(batch, self.now)
            .with_context(|| format!("writing the customers of lines {first} to {last}"))?;
        tracing::debug!(
            first,
            last,
            created = outcome.created,
            updated = outcome.updated,
            "customer batch written"
        );
        self.counts.created += outcome.created;
        self.counts.updated += outcome.updated;
        self.counts.unchanged += outcome.unchanged;
        self.counts.rejected += outcome.rejected.len() as u64;
        for r in outcome.rejected {
            self.rejections
                .reject(r.position, &r.external_id, &r.field, r.reason);
        }
        self.progress
            .set_message(format!("{} customers", thousands(self.counts.read)));
        Ok(())
    }

    pub(crate) fn finish(mut self) -> anyhow::Result<(CustomerCounts, Rejections)> {
        self.flush()?;
        self.counts.seconds = self.started.elapsed().as_secs_f64();
        Ok((self.counts, self.rejections))
    }
}

/// Validates events and records them in batches, in backfill mode.
/// Batches written at once: one converts and validates the next batch while the database
/// writes the previous ones, and PostgreSQL gets one busy connection per core.
const WRITERS: usize = 2;

type Pending = std::thread::JoinHandle<anyhow::Result<vitals_store::BatchOutcome>>;

pub(crate) struct EventSink<'a> {
    store: &'a Store,
    text: Option<std::sync::Arc<vitals_engine::evaluation::LoadedText>>,
    now: Micros,
    batch: Vec<(usize, NewEvent)>,
    in_flight: std::collections::VecDeque<Pending>,
    counts: EventCounts,
    rejections: Rejections,
    progress: ProgressBar,
    started: Instant,
}

impl<'a> EventSink<'a> {
    pub(crate) fn new(
        store: &'a Store,
        options: &ImportOptions,
        now: Micros,
        progress: ProgressBar,
    ) -> Self {
        Self {
            store,
            text: options.text.clone(),
            now,
            batch: Vec::with_capacity(EVENT_BATCH),
            in_flight: std::collections::VecDeque::new(),
            counts: EventCounts::default(),
            rejections: Rejections::default(),
            progress,
            started: Instant::now(),
        }
    }

    /// An event read from line `row`: validated, then queued for the next batch.
    pub(crate) fn push(&mut self, row: u64, event: NewEvent) -> anyhow::Result<()> {
        self.counts.read += 1;
        let mut v = Violations::new();
        validate::check_event(&mut v, "", &event, self.now);
        if !v.is_empty() {
            self.counts.rejected += 1;
            self.rejections.violations(row, &event.event_key, &v);
            return Ok(());
        }
        // The store reports rejections by this index: the line number.
        let index = usize::try_from(row).unwrap_or(usize::MAX);
        self.batch.push((index, event));
        if self.batch.len() >= EVENT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// An event row read from line `row` that could not be parsed.
    pub(crate) fn reject(&mut self, row: u64, key: &str, field: &str, reason: impl Into<String>) {
        self.counts.read += 1;
        self.counts.rejected += 1;
        self.rejections.reject(row, key, field, reason);
    }

    /// Starts writing the queued batch (in the background), after waiting for the oldest
    /// write if `WRITERS` are already running.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(EVENT_BATCH));
        let (first, last) = line_range(batch.iter().map(|(row, _)| *row as u64));
        let store = self.store.clone();
        let now = self.now;
        let text = self.text.clone();
        self.in_flight.push_back(std::thread::spawn(move || {
            let analyse =
                |said: &str| vitals_engine::evaluation::analyse_comment(text.as_deref(), said);
            let outcome = store
                .record_events(batch, RecordMode::Backfill, None, Some(&analyse), now)
                .with_context(|| format!("writing the events of lines {first} to {last}"))?;
            tracing::debug!(
                first,
                last,
                accepted = outcome.accepted,
                duplicates = outcome.duplicates,
                "event batch written"
            );
            Ok(outcome)
        }));
        while self.in_flight.len() >= WRITERS {
            self.wait_oldest()?;
        }
        Ok(())
    }

    fn wait_oldest(&mut self) -> anyhow::Result<()> {
        let Some(pending) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let outcome = pending
            .join()
            .map_err(|_| anyhow::anyhow!("an event writer thread panicked"))??;
        self.counts.accepted += outcome.accepted;
        self.counts.duplicates += outcome.duplicates;
        self.counts.rejected += outcome.rejected.len() as u64;
        for r in outcome.rejected {
            self.rejections
                .reject(r.index as u64, &r.event_key, &r.field, r.reason);
        }
        self.progress
            .set_message(format!("{} events", thousands(self.counts.read)));
        Ok(())
    }

    pub(crate) fn finish(mut self) -> anyhow::Result<(EventCounts, Rejections)> {
        self.flush()?;
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        self.counts.seconds = self.started.elapsed().as_secs_f64();
        Ok((self.counts, self.rejections))
    }
}

fn line_range(rows: impl Iterator<Item = u64>) -> (u64, u64) {
    rows.fold((u64::MAX, 0), |(lo, hi), r| (lo.min(r), hi.max(r)))
}

/// Checks that `name` may name a customer attribute, with the API's rules.
pub(crate) fn check_attribute_name(name: &str) -> Result<(), String> {
    let mut probe = CustomerData::new("probe");
    probe
        .attributes
        .insert(name.to_owned(), vitals_domain::AttributeValue::Bool(true));
    let mut v = Violations::new();
    validate::check_customer(&mut v, "", &probe, 0);
    match v.first() {
        None => Ok(()),
        Some(violation) => Err(violation.description.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_follow_the_api() {
        assert!(check_attribute_name("MonthlyCharges").is_ok());
        assert!(check_attribute_name("plan.tier-2_x").is_ok());
        assert!(check_attribute_name("monthly charges").is_err());
        assert!(check_attribute_name("").is_err());
    }

    #[test]
    fn summary_reads_well() {
        let summary = ImportSummary {
            kind: ImportKind::Cdnow,
            read: 6919,
            customers: Some(CustomerCounts {
                read: 2357,
                created: 2357,
                seconds: 0.5,
                ..CustomerCounts::default()
            }),
            events: Some(EventCounts {
                read: 6919,
                accepted: 6919,
                seconds: 1.0,
                ..EventCounts::default()
            }),
            rejected: 0,
            rejections: Vec::new(),
            seconds: 1.5,
        };
        assert_eq!(
            summary.to_string(),
            "customers: 2357 read, 2357 created, 0 updated, 0 unchanged, 0 rejected (0.5 s, 4,714 rows/s)\n\
             events: 6919 read, 6919 accepted, 0 duplicates, 0 rejected (1.0 s, 6,919 rows/s)"
        );
        assert_eq!(
            summary.to_json_string(),
            r#"{"kind":"cdnow","read":6919,"created":2357,"updated":0,"unchanged":0,"accepted":6919,"duplicates":0,"rejected":0,"seconds":1.5}"#
        );
        let json = summary.to_json();
        assert_eq!(json["kind"], "cdnow");
        assert_eq!(json["read"], 6919);
        assert_eq!(json["created"], 2357);
        assert_eq!(json["accepted"], 6919);
        assert_eq!(json["rejected"], 0);
    }
}
