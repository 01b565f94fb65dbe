//! Generic CSV imports: `vitals-trainer import customers FILE` and `import events FILE`.
//!
//! Both read a comma-separated file, UTF-8, with a header row naming the columns; columns
//! may come in any order. Quoted cells follow RFC 4180 (a cell may contain commas, quotes
//! doubled, line breaks). Every cell is trimmed of surrounding spaces, and an empty cell
//! means "not set". Rows are reported by their line in the file (the header is line 1).
//! A row with a different number of cells than the header, or that is not valid UTF-8, is
//! rejected; the rest of the file is still imported.
//!
//! Times are RFC 3339 timestamps with an offset (`2024-03-01T09:30:00Z`) or dates
//! `YYYY-MM-DD` (midnight UTC); see [`crate::time`].
//!
//! # Customers
//!
//! | column | meaning |
//! |---|---|
//! | `external_id` | required: your id for the customer; re-importing updates by it |
//! | `display_name`, `email`, `phone` | optional contact details (PII) |
//! | `region`, `acquisition_channel` | optional labels |
//! | `status` | `active` or `churned`; empty means `active` |
//! | `contractual` | `true`/`false`, `1`/`0` or `yes`/`no` (any case); empty means `false` |
//! | `signup_time`, `churn_time` | optional times |
//! | any other column | a typed attribute named after the column |
//!
//! An attribute cell that parses as a finite number (`12`, `29.85`, `-1e3`) becomes a
//! number, `true` or `false` (any case) a boolean, anything else a string; an empty cell
//! sets no attribute. Attribute column names are 1 to 64 letters, digits, `_`, `-` or `.`
//! (the API's rule); a header with another name is refused before anything is imported.
//!
//! # Events
//!
//! | column | meaning |
//! |---|---|
//! | `event_key` | required: your id for the event, unique per customer; re-importing the same event is a no-op |
//! | `customer_external_id` or `customer_id` | required: the customer, by your id or by Vitals' id (one per row) |
//! | `time` | required: when it happened |
//! | `kind` | required: `transaction`, `payment`, `feedback` or `interaction` |
//! | `record_time` | optional; when set it must equal `time` (history is recorded as known when it happened) |
//!
//! Then the columns of each kind (a row ignores the columns of other kinds):
//!
//! - transaction: `amount_minor` (integer minor units, e.g. cents) or `amount` (a decimal
//!   such as `12.34`, converted exactly to minor units of the currency, rounded half up
//!   beyond them), `currency` (required, ISO 4217 in upper case), `quantity` (integer;
//!   empty means 1, as in the API), `category`, `channel`;
//! - payment: `invoice_id`, `amount_minor` or `amount`, `currency` (required), `due_time`,
//!   `paid_time`, `method`;
//! - feedback: `feedback_kind` (`nps`, `csat`, `ces` or `review`), `score` (integer in the
//!   kind's range; may be blank for a review, which then needs a `comment`), `comment`,
//!   `channel`;
//! - interaction: `interaction_kind` (`inquiry`, `complaint`, `support`, `sales` or
//!   `other`), `severity` (`low`, `medium`, `high`, `critical`, or empty), `category`,
//!   `channel`, `ticket_id`, `resolved_time`, `note` (free text: what was said).
//!
//! Comments and notes are analysed as they are imported (sentiment, language, topic),
//! with the text model in service, as the API does.
//!
//! A column that is none of these is refused before anything is imported (a misspelt
//! `ammount` would otherwise silently drop every amount). Events of customers that do not
//! exist yet are rejected: import the customers first.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use csv::{ByteRecord, StringRecord};
use vitals_domain::time::{Micros, now_micros};
use vitals_domain::{
    AttributeValue, CustomerData, CustomerRef, CustomerStatus, EventKind, EventPayload, Feedback,
    FeedbackKind, Interaction, InteractionKind, NewEvent, Payment, Severity, Transaction,
};
use vitals_store::Store;

use super::{
    CustomerSink, EventSink, ImportKind, ImportOptions, ImportSummary, check_attribute_name,
    progress_bar,
};
use crate::money::{minor_digits, parse_minor_units};
use crate::time::parse_time;

/// Why a row could not be parsed: the column and the reason.
pub(crate) type CellError = (&'static str, String);

/// An open CSV file: its header and a reader positioned on the first data row.
pub(crate) struct CsvFile {
    reader: csv::Reader<File>,
    /// Column names, trimmed.
    pub(crate) header: Vec<String>,
    /// The file's size in bytes, for progress.
    pub(crate) len: u64,
}

impl CsvFile {
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(file);
        let header = reader
            .headers()
            .with_context(|| format!("cannot read the header row of {}", path.display()))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_owned())
            .collect::<Vec<_>>();
        if header.iter().all(String::is_empty) {
            bail!(
                "{} is empty: expected a header row naming the columns",
                path.display()
            );
        }
        let mut seen = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            if name.is_empty() {
                bail!(
                    "{}: column {} of the header has no name",
                    path.display(),
                    i + 1
                );
            }
            if seen.insert(name.as_str(), i).is_some() {
                bail!("{}: the header names column {name:?} twice", path.display());
            }
        }
        Ok(Self {
            reader,
            header,
            len,
        })
    }

    /// The index of a column, if the header has it.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Calls `row` with each data row's line number, byte offset and cells, or with the
    /// reason the row is unreadable (wrong number of cells, not UTF-8). Stops at the first
    /// error reading the file or returned by `row`.
    pub(crate) fn for_each_row(
        &mut self,
        path: &Path,
        mut row: impl FnMut(u64, u64, Result<&StringRecord, String>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut raw = ByteRecord::new();
        let width = self.header.len();
        loop {
            let more = self
                .reader
                .read_byte_record(&mut raw)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if !more {
                return Ok(());
            }
            let (line, byte) = raw.position().map_or((0, 0), |p| (p.line(), p.byte()));
            if raw.len() != width {
                let cells = raw.len();
                row(
                    line,
                    byte,
                    Err(format!("has {cells} cells but the header has {width}")),
                )?;
                continue;
            }
            match StringRecord::from_byte_record(std::mem::take(&mut raw)) {
                Ok(record) => {
                    row(line, byte, Ok(&record))?;
                    raw = record.into_byte_record();
                }
                Err(e) => {
                    row(
                        line,
                        byte,
                        Err(format!("is not valid UTF-8: {}", e.utf8_error())),
                    )?;
                    raw = e.into_byte_record();
                }
            }
        }
    }
}

/// The cell of column `i`, or `None` when the column is absent or the cell empty.
pub(crate) fn cell(record: &StringRecord, i: Option<usize>) -> Option<&str> {
    i.and_then(|i| record.get(i)).filter(|s| !s.is_empty())
}

/// Hands every row of `file` to `sink`, parsed by `parse`; a row that cannot be read or
/// parsed is rejected with its line number, its key (the cell at `key`) and the reason.
/// Returns how many rows were read.
pub(crate) fn load_rows<S: super::RowSink>(
    file: &mut CsvFile,
    path: &Path,
    bar: &indicatif::ProgressBar,
    sink: &mut S,
    key: Option<usize>,
    parse: impl Fn(&StringRecord) -> Result<S::Item, CellError>,
) -> anyhow::Result<u64> {
    let mut read = 0;
    file.for_each_row(path, |line, byte, record| {
        read += 1;
        bar.set_position(byte);
        let record = match record {
            Ok(r) => r,
            Err(why) => {
                sink.reject(line, "", "", format!("the row {why}"));
                return Ok(());
            }
        };
        match parse(record) {
            Ok(item) => sink.push(line, item),
            Err((field, why)) => {
                sink.reject(line, cell(record, key).unwrap_or_default(), field, why);
                Ok(())
            }
        }
    })?;
    Ok(read)
}

/// An attribute cell's typed value: a finite number, a boolean, or a string.
pub fn attribute_value(s: &str) -> AttributeValue {
    if s.eq_ignore_ascii_case("true") {
        AttributeValue::Bool(true)
    } else if s.eq_ignore_ascii_case("false") {
        AttributeValue::Bool(false)
    } else {
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() => AttributeValue::Number(x),
            _ => AttributeValue::String(s.to_owned()),
        }
    }
}

/// `true`/`false`, `1`/`0` or `yes`/`no`, in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn optional_time(
    record: &StringRecord,
    i: Option<usize>,
    field: &'static str,
) -> Result<Option<Micros>, CellError> {
    cell(record, i)
        .map(|s| parse_time(s).map_err(|e| (field, e)))
        .transpose()
}

/// The customer columns of a header.
#[derive(Debug)]
struct CustomerColumns {
    external_id: usize,
    display_name: Option<usize>,
    email: Option<usize>,
    phone: Option<usize>,
    region: Option<usize>,
    acquisition_channel: Option<usize>,
    status: Option<usize>,
    contractual: Option<usize>,
    signup_time: Option<usize>,
    churn_time: Option<usize>,
    attributes: Vec<(String, usize)>,
}

/// The documented columns of `import customers`; every other column is an attribute.
pub const CUSTOMER_COLUMNS: [&str; 10] = [
    "external_id",
    "display_name",
    "email",
    "phone",
    "region",
    "acquisition_channel",
    "status",
    "contractual",
    "signup_time",
    "churn_time",
];

impl CustomerColumns {
    fn of(file: &CsvFile, path: &Path) -> anyhow::Result<Self> {
        let Some(external_id) = file.column("external_id") else {
            bail!(
                "{}: the header has no external_id column (columns: {})",
                path.display(),
                file.header.join(", ")
            );
        };
        let mut attributes = Vec::new();
        for (i, name) in file.header.iter().enumerate() {
            if CUSTOMER_COLUMNS.contains(&name.as_str()) {
                continue;
            }
            if let Err(why) = check_attribute_name(name) {
                bail!(
                    "{}: column {name:?} is not one of {} and cannot name an attribute: {why}",
                    path.display(),
                    CUSTOMER_COLUMNS.join(", ")
                );
            }
            attributes.push((name.clone(), i));
        }
        Ok(Self {
            external_id,
            display_name: file.column("display_name"),
            email: file.column("email"),
            phone: file.column("phone"),
            region: file.column("region"),
            acquisition_channel: file.column("acquisition_channel"),
            status: file.column("status"),
            contractual: file.column("contractual"),
            signup_time: file.column("signup_time"),
            churn_time: file.column("churn_time"),
            attributes,
        })
    }

    fn parse(&self, r: &StringRecord) -> Result<CustomerData, CellError> {
        let text = |i| cell(r, i).map(str::to_owned);
        let mut data = CustomerData::new(cell(r, Some(self.external_id)).unwrap_or_default());
        data.display_name = text(self.display_name);
        data.email = text(self.email);
        data.phone = text(self.phone);
        data.region = text(self.region).unwrap_or_default();
        data.acquisition_channel = text(self.acquisition_channel).unwrap_or_default();
        data.status = match cell(r, self.status) {
            None => CustomerStatus::Active,
            Some(s) => match CustomerStatus::parse(&s.to_ascii_lowercase()) {
                Some(s @ (CustomerStatus::Active | CustomerStatus::Churned)) => s,
                _ => return Err(("status", format!("{s:?} is not active or churned"))),
            },
        };
        data.contractual = match cell(r, self.contractual) {
            None => false,
            Some(s) => parse_bool(s).ok_or_else(|| {
                (
                    "contractual",
                    format!("{s:?} is not true/false, 1/0 or yes/no"),
                )
            })?,
        };
        data.signup_time = optional_time(r, self.signup_time, "signup_time")?;
        data.churn_time = optional_time(r, self.churn_time, "churn_time")?;
        for (name, i) in &self.attributes {
            if let Some(s) = cell(r, Some(*i)) {
                data.attributes.insert(name.clone(), attribute_value(s));
            }
        }
        Ok(data)
    }
}

/// Imports customers from a CSV file with the documented columns (see the module docs).
pub fn import_customers(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let now = now_micros();
    let mut file = CsvFile::open(path)?;
    let columns = CustomerColumns::of(&file, path)?;
    let bar = progress_bar(options, file.len, "customers", true);
    let mut sink = CustomerSink::new(store, now, bar.clone());
    let read = load_rows(
        &mut file,
        path,
        &bar,
        &mut sink,
        Some(columns.external_id),
        |r| columns.parse(r),
    )?;
    let customers = sink.finish()?;
    bar.finish_and_clear();
    Ok(ImportSummary::new(
        ImportKind::Customers,
        read,
        Some(customers),
        None,
        started,
    ))
}

/// The event columns of a header.
#[derive(Debug, Default)]
struct EventColumns {
    event_key: Option<usize>,
    customer_external_id: Option<usize>,
    customer_id: Option<usize>,
    time: Option<usize>,
    kind: Option<usize>,
    record_time: Option<usize>,
    amount_minor: Option<usize>,
    amount: Option<usize>,
    currency: Option<usize>,
    quantity: Option<usize>,
    category: Option<usize>,
    channel: Option<usize>,
    invoice_id: Option<usize>,
    due_time: Option<usize>,
    paid_time: Option<usize>,
    method: Option<usize>,
    feedback_kind: Option<usize>,
    score: Option<usize>,
    comment: Option<usize>,
    interaction_kind: Option<usize>,
    severity: Option<usize>,
    ticket_id: Option<usize>,
    resolved_time: Option<usize>,
    note: Option<usize>,
}

/// Every column `import events` knows.
pub const EVENT_COLUMNS: [&str; 24] = [
    "event_key",
    "customer_external_id",
    "customer_id",
    "time",
    "kind",
    "record_time",
    "amount_minor",
    "amount",
    "currency",
    "quantity",
    "category",
    "channel",
    "invoice_id",
    "due_time",
    "paid_time",
    "method",
    "feedback_kind",
    "score",
    "comment",
    "interaction_kind",
    "severity",
    "ticket_id",
    "resolved_time",
    "note",
];

fn parse_int<T: std::str::FromStr>(s: &str, field: &'static str) -> Result<T, CellError> {
    s.parse()
        .map_err(|_| (field, format!("{s:?} is not an integer in range")))
}

impl EventColumns {
    fn of(file: &CsvFile, path: &Path) -> anyhow::Result<Self> {
        let mut c = Self::default();
        for (i, name) in file.header.iter().enumerate() {
            let slot = match name.as_str() {
                "event_key" => &mut c.event_key,
                "customer_external_id" => &mut c.customer_external_id,
                "customer_id" => &mut c.customer_id,
                "time" => &mut c.time,
                "kind" => &mut c.kind,
                "record_time" => &mut c.record_time,
                "amount_minor" => &mut c.amount_minor,
                "amount" => &mut c.amount,
                "currency" => &mut c.currency,
                "quantity" => &mut c.quantity,
                "category" => &mut c.category,
                "channel" => &mut c.channel,
                "invoice_id" => &mut c.invoice_id,
                "due_time" => &mut c.due_time,
                "paid_time" => &mut c.paid_time,
                "method" => &mut c.method,
                "feedback_kind" => &mut c.feedback_kind,
                "score" => &mut c.score,
                "comment" => &mut c.comment,
                "interaction_kind" => &mut c.interaction_kind,
                "severity" => &mut c.severity,
                "ticket_id" => &mut c.ticket_id,
                "resolved_time" => &mut c.resolved_time,
                "note" => &mut c.note,
                other => bail!(
                    "{}: unknown column {other:?}; the columns of an events file are {}",
                    path.display(),
                    EVENT_COLUMNS.join(", ")
                ),
            };
            *slot = Some(i);
        }
        let mut missing = Vec::new();
        for (name, present) in [
            ("event_key", c.event_key.is_some()),
            (
                "customer_external_id or customer_id",
                c.customer_external_id.is_some() || c.customer_id.is_some(),
            ),
            ("time", c.time.is_some()),
            ("kind", c.kind.is_some()),
        ] {
            if !present {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            bail!(
                "{}: the header lacks the required column(s) {}",
                path.display(),
                missing.join(", ")
            );
        }
        Ok(c)
    }

    fn text(r: &StringRecord, i: Option<usize>) -> String {
        cell(r, i).unwrap_or_default().to_owned()
    }

    /// The amount in minor units, from `amount_minor` or `amount`.
    fn amount(&self, r: &StringRecord, currency: &str) -> Result<i64, CellError> {
        match (cell(r, self.amount_minor), cell(r, self.amount)) {
            (Some(_), Some(_)) => Err(("amount", "set amount_minor or amount, not both".into())),
            (Some(minor), None) => parse_int(minor, "amount_minor"),
            (None, Some(decimal)) => {
                parse_minor_units(decimal, minor_digits(currency)).map_err(|e| ("amount", e))
            }
            (None, None) => Err(("amount_minor", "set amount_minor or amount".into())),
        }
    }

    fn parse(&self, r: &StringRecord) -> Result<NewEvent, CellError> {
        let event_key = Self::text(r, self.event_key);
        let customer = match (
            cell(r, self.customer_external_id),
            cell(r, self.customer_id),
        ) {
            (Some(_), Some(_)) => {
                return Err((
                    "customer_external_id",
                    "set customer_external_id or customer_id, not both".into(),
                ));
            }
            (Some(ext), None) => CustomerRef::ExternalId(ext.to_owned()),
            (None, Some(id)) => CustomerRef::Id(id.to_owned()),
            (None, None) => {
                return Err((
                    "customer_external_id",
                    "must be set (or customer_id)".into(),
                ));
            }
        };
        let time = cell(r, self.time)
            .ok_or(("time", "must be set".to_owned()))
            .and_then(|s| parse_time(s).map_err(|e| ("time", e)))?;
        if let Some(record_time) = optional_time(r, self.record_time, "record_time")?
            && record_time != time
        {
            return Err((
                "record_time",
                "record_time other than time is not supported yet".into(),
            ));
        }
        let kind = match cell(r, self.kind) {
            None => return Err(("kind", "must be set".into())),
            Some(s) => EventKind::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
                (
                    "kind",
                    format!("{s:?} is not transaction, payment, feedback or interaction"),
                )
            })?,
        };
        let payload = match kind {
            EventKind::RetentionAction => {
                return Err((
                    "kind",
                    "retention actions are recorded as they happen (FollowUpService.RecordRetentionAction), not imported".into(),
                ));
            }
            EventKind::Transaction => {
                let currency = Self::text(r, self.currency);
                EventPayload::Transaction(Transaction {
                    amount_minor: self.amount(r, &currency)?,
                    quantity: match cell(r, self.quantity) {
                        None => 1,
                        Some(q) => parse_int(q, "quantity")?,
                    },
                    currency,
                    category: Self::text(r, self.category),
                    channel: Self::text(r, self.channel),
                })
            }
            EventKind::Payment => {
                let currency = Self::text(r, self.currency);
                EventPayload::Payment(Payment {
                    invoice_id: Self::text(r, self.invoice_id),
                    amount_minor: self.amount(r, &currency)?,
                    currency,
                    due_time: optional_time(r, self.due_time, "due_time")?,
                    paid_time: optional_time(r, self.paid_time, "paid_time")?,
                    method: Self::text(r, self.method),
                })
            }
            EventKind::Feedback => EventPayload::Feedback(Feedback {
                kind: match cell(r, self.feedback_kind) {
                    None => return Err(("feedback_kind", "must be set for feedback".into())),
                    Some(s) => FeedbackKind::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
                        (
                            "feedback_kind",
                            format!("{s:?} is not nps, csat, ces or review"),
                        )
                    })?,
                },
                // Blank only for a review; validation says so for the other kinds.
                score: cell(r, self.score)
                    .map(|s| parse_int(s, "score"))
                    .transpose()?,
                comment: cell(r, self.comment).map(str::to_owned),
                channel: Self::text(r, self.channel),
            }),
            EventKind::Interaction => EventPayload::Interaction(Interaction {
                kind: match cell(r, self.interaction_kind) {
                    None => {
                        return Err(("interaction_kind", "must be set for an interaction".into()));
                    }
                    Some(s) => {
                        InteractionKind::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
                            (
                                "interaction_kind",
                                format!("{s:?} is not inquiry, complaint, support, sales or other"),
                            )
                        })?
                    }
                },
                severity: match cell(r, self.severity) {
                    None => Severity::Unspecified,
                    Some(s) => Severity::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
                        (
                            "severity",
                            format!("{s:?} is not low, medium, high, critical or empty"),
                        )
                    })?,
                },
                category: Self::text(r, self.category),
                channel: Self::text(r, self.channel),
                ticket_id: Self::text(r, self.ticket_id),
                resolved_time: optional_time(r, self.resolved_time, "resolved_time")?,
                note: cell(r, self.note).map(str::to_owned),
            }),
        };
        Ok(NewEvent {
            event_key,
            customer,
            time,
            payload,
        })
    }
}

/// Imports events from a CSV file with the documented columns (see the module docs).
pub fn import_events(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let now = now_micros();
    let mut file = CsvFile::open(path)?;
    let columns = EventColumns::of(&file, path)?;
    let bar = progress_bar(options, file.len, "events", true);
    let mut sink = EventSink::new(store, options, now, bar.clone());
    let read = load_rows(&mut file, path, &bar, &mut sink, columns.event_key, |r| {
        columns.parse(r)
    })?;
    let events = sink.finish()?;
    bar.finish_and_clear();
    Ok(ImportSummary::new(
        ImportKind::Events,
        read,
        None,
        Some(events),
        started,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_cells_are_typed() {
        assert_eq!(attribute_value("12"), AttributeValue::Number(12.0));
        assert_eq!(attribute_value("29.85"), AttributeValue::Number(29.85));
        assert_eq!(attribute_value("TRUE"), AttributeValue::Bool(true));
        assert_eq!(attribute_value("false"), AttributeValue::Bool(false));
        assert_eq!(attribute_value("NaN"), AttributeValue::String("NaN".into()));
        assert_eq!(attribute_value("inf"), AttributeValue::String("inf".into()));
        assert_eq!(
            attribute_value("Two year"),
            AttributeValue::String("Two year".into())
        );
    }

    #[test]
    fn booleans() {
        for (s, b) in [
            ("true", true),
            ("Yes", true),
            ("1", true),
            ("FALSE", false),
            ("no", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(s), Some(b), "{s}");
        }
        assert_eq!(parse_bool("y"), None);
        assert_eq!(parse_bool(""), None);
    }
}
