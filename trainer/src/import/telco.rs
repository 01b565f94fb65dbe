//! `vitals-trainer import telco FILE --as-of DATE`: the IBM "Telco Customer Churn" sample.
//!
//! The file (`telco_customer_churn.csv`, 7,043 rows) has one row per subscription
//! customer and the columns `customerID, gender, SeniorCitizen, Partner, Dependents,
//! tenure, PhoneService, MultipleLines, InternetService, OnlineSecurity, OnlineBackup,
//! DeviceProtection, TechSupport, StreamingTV, StreamingMovies, Contract,
//! PaperlessBilling, PaymentMethod, MonthlyCharges, TotalCharges, Churn`. It is a
//! snapshot without dates, so the import places it in time at `--as-of`:
//!
//! - `external_id` = `customerID`; every customer is `contractual`; region and
//!   acquisition channel are left empty.
//! - `signup_time` = midnight UTC of the as-of date minus `tenure` calendar months (a day
//!   past the end of a shorter month clamps to its last day: 31 March minus one month is
//!   28 or 29 February).
//! - `Churn=Yes`: status `churned`, with `churn_time` = as-of + N days + 12 hours, where N
//!   is the FNV-1a hash of the `customerID` modulo 30. Churn times thus spread
//!   deterministically over the month after the as-of date (within (as-of, as-of + 31
//!   days]) and are the same on every import. `Churn=No`: status `active`, no churn time.
//!   Any other `Churn` value rejects the row.
//! - Every other column becomes an attribute named exactly as the column:
//!   `SeniorCitizen` as a boolean (`1` is true, `0` false), `tenure`, `MonthlyCharges`
//!   and `TotalCharges` as numbers, the rest as strings. A blank cell sets no attribute
//!   (the 11 customers with tenure 0 have a blank `TotalCharges`). `Churn` is the label
//!   and is deliberately not an attribute.
//! - The attribute `currency` is `USD`: the sample's charges are in US dollars, and
//!   without invoices nothing else says so (it names the currency of the customer's
//!   lifetime value; it is never a model input).
//!
//! The as-of date must be at least 31 days in the past: churn times in the future are
//! refused by validation, so such a date is refused up front.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;
use chrono::{Months, NaiveDate};
use csv::StringRecord;
use vitals_domain::features::CURRENCY_ATTRIBUTE;
use vitals_domain::time::{MICROS_PER_DAY, Micros, now_micros};
use vitals_domain::{AttributeValue, CustomerData, CustomerStatus};
use vitals_store::Store;

use super::csv_generic::{CellError, CsvFile, cell, load_rows};
use super::{
    CustomerSink, ImportKind, ImportOptions, ImportSummary, check_attribute_name, progress_bar,
};
use crate::time::date_micros;

/// The latest churn time lies this many days after the as-of date (at most 30 days and 12
/// hours, rounded up).
pub const CHURN_WINDOW_DAYS: i64 = 31;

/// 64-bit FNV-1a: a stable hash (unlike std's, which may change between releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The signup date of a customer with `tenure` months at `as_of`.
pub fn signup_date(as_of: NaiveDate, tenure_months: u32) -> Option<NaiveDate> {
    as_of.checked_sub_months(Months::new(tenure_months))
}

/// The churn time of a churned customer: as-of + (FNV-1a(id) mod 30) days + 12 hours.
pub fn churn_time(as_of: NaiveDate, customer_id: &str) -> Micros {
    // The remainder is below 30, so the cast is exact.
    let days = (fnv1a(customer_id.as_bytes()) % 30) as i64;
    date_micros(as_of) + days * MICROS_PER_DAY + MICROS_PER_DAY / 2
}

/// Refuses an as-of date whose churn window reaches past `now`.
pub fn check_as_of(as_of: NaiveDate, now: Micros) -> anyhow::Result<()> {
    let window_end = date_micros(as_of) + CHURN_WINDOW_DAYS * MICROS_PER_DAY;
    if window_end > now {
        let latest = NaiveDate::default()
            + chrono::Days::new(
                u64::try_from(
                    (now - CHURN_WINDOW_DAYS * MICROS_PER_DAY).div_euclid(MICROS_PER_DAY),
                )
                .unwrap_or(0),
            );
        bail!(
            "--as-of {as_of} is too recent: churned customers get churn times up to \
             {CHURN_WINDOW_DAYS} days after the as-of date, which would lie in the future; \
             pick an earlier date (at the latest {latest})"
        );
    }
    Ok(())
}

/// How a column becomes an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttributeType {
    /// `1` → true, `0` → false.
    Flag,
    Number,
    Text,
}

#[derive(Debug)]
struct TelcoColumns {
    customer_id: usize,
    tenure: usize,
    churn: usize,
    attributes: Vec<(String, usize, AttributeType)>,
}

impl TelcoColumns {
    fn of(file: &CsvFile, path: &Path) -> anyhow::Result<Self> {
        let required = |name: &str| {
            file.column(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: the header has no {name} column; is this the IBM Telco churn file? (columns: {})",
                    path.display(),
                    file.header.join(", ")
                )
            })
        };
        let customer_id = required("customerID")?;
        let tenure = required("tenure")?;
        let churn = required("Churn")?;
        let mut attributes = Vec::new();
        for (i, name) in file.header.iter().enumerate() {
            if i == customer_id || i == churn {
                continue;
            }
            if let Err(why) = check_attribute_name(name) {
                bail!(
                    "{}: column {name:?} cannot name an attribute: {why}",
                    path.display()
                );
            }
            let kind = match name.as_str() {
                "SeniorCitizen" => AttributeType::Flag,
                "tenure" | "MonthlyCharges" | "TotalCharges" => AttributeType::Number,
                _ => AttributeType::Text,
            };
            attributes.push((name.clone(), i, kind));
        }
        Ok(Self {
            customer_id,
            tenure,
            churn,
            attributes,
        })
    }

    fn parse(&self, r: &StringRecord, as_of: NaiveDate) -> Result<CustomerData, CellError> {
        let id = cell(r, Some(self.customer_id)).unwrap_or_default();
        let mut data = CustomerData::new(id);
        data.contractual = true;
        let tenure: u32 = match cell(r, Some(self.tenure)) {
            None => return Err(("tenure", "must be set".into())),
            Some(s) => s
                .parse()
                .map_err(|_| ("tenure", format!("{s:?} is not a whole number of months")))?,
        };
        let signup = signup_date(as_of, tenure).ok_or_else(|| {
            (
                "tenure",
                format!("{tenure} months before {as_of} is out of range"),
            )
        })?;
        data.signup_time = Some(date_micros(signup));
        match cell(r, Some(self.churn)) {
            Some("Yes") => {
                data.status = CustomerStatus::Churned;
                data.churn_time = Some(churn_time(as_of, id));
            }
            Some("No") => {}
            other => {
                return Err((
                    "Churn",
                    format!("{:?} is not Yes or No", other.unwrap_or_default()),
                ));
            }
        }
        for (name, i, kind) in &self.attributes {
            let Some(s) = cell(r, Some(*i)) else { continue };
            let value = match kind {
                AttributeType::Flag => match s {
                    "1" => AttributeValue::Bool(true),
                    "0" => AttributeValue::Bool(false),
                    _ => return Err(("SeniorCitizen", format!("{s:?} is not 0 or 1"))),
                },
                AttributeType::Number => match s.parse::<f64>() {
                    Ok(x) if x.is_finite() => AttributeValue::Number(x),
                    _ => return Err((attribute_field(name), format!("{s:?} is not a number"))),
                },
                AttributeType::Text => AttributeValue::String(s.to_owned()),
            };
            data.attributes.insert(name.clone(), value);
        }
        // IBM's sample gives charges in US dollars and has no invoices to say so.
        data.attributes.insert(
            CURRENCY_ATTRIBUTE.to_owned(),
            AttributeValue::String("USD".into()),
        );
        Ok(data)
    }
}

/// The static name of a numeric column, for rejections.
fn attribute_field(name: &str) -> &'static str {
    match name {
        "tenure" => "tenure",
        "MonthlyCharges" => "MonthlyCharges",
        _ => "TotalCharges",
    }
}

/// Imports the Telco churn file as of `as_of` (see the module docs).
pub fn import_telco(
    store: &Store,
    path: &Path,
    as_of: NaiveDate,
    options: &ImportOptions,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let now = now_micros();
    check_as_of(as_of, now)?;
    let mut file = CsvFile::open(path)?;
    let columns = TelcoColumns::of(&file, path)?;
    let bar = progress_bar(options, file.len, "customers", true);
    let mut sink = CustomerSink::new(store, now, bar.clone());
    let read = load_rows(
        &mut file,
        path,
        &bar,
        &mut sink,
        Some(columns.customer_id),
        |r| columns.parse(r, as_of),
    )?;
    let customers = sink.finish()?;
    bar.finish_and_clear();
    Ok(ImportSummary::new(
        ImportKind::Telco,
        read,
        Some(customers),
        None,
        started,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn signup_is_tenure_calendar_months_back() {
        assert_eq!(signup_date(date(2024, 1, 1), 0), Some(date(2024, 1, 1)));
        assert_eq!(signup_date(date(2024, 1, 1), 1), Some(date(2023, 12, 1)));
        assert_eq!(signup_date(date(2024, 1, 1), 34), Some(date(2021, 3, 1)));
        assert_eq!(signup_date(date(2024, 1, 1), 72), Some(date(2018, 1, 1)));
        // Month ends clamp.
        assert_eq!(signup_date(date(2024, 3, 31), 1), Some(date(2024, 2, 29)));
        assert_eq!(signup_date(date(2023, 3, 31), 1), Some(date(2023, 2, 28)));
        assert_eq!(signup_date(date(2024, 5, 31), 12), Some(date(2023, 5, 31)));
    }

    #[test]
    fn churn_times_fall_in_the_month_after_as_of() {
        let as_of = date(2024, 1, 1);
        let start = date_micros(as_of);
        for id in ["7590-VHVEG", "5575-GNVDE", "3668-QPYBK", "", "x"] {
            let t = churn_time(as_of, id);
            assert!(t > start && t <= start + 31 * MICROS_PER_DAY, "{id}");
            assert_eq!(t % MICROS_PER_DAY, MICROS_PER_DAY / 2, "{id}");
            assert_eq!(t, churn_time(as_of, id), "deterministic");
        }
    }

    #[test]
    fn fnv1a_matches_the_reference() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn as_of_must_leave_room_for_the_churn_window() {
        let now = date_micros(date(2024, 6, 1));
        assert!(check_as_of(date(2024, 5, 1), now).is_ok());
        let err = check_as_of(date(2024, 5, 2), now)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("pick an earlier date"), "{err}");
        assert!(err.contains("2024-05-01"), "{err}");
    }
}
