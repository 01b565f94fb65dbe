//! Reading times from import files.
//!
//! Every time column of the importers accepts the same two forms, always meaning UTC:
//!
//! - an RFC 3339 timestamp with its offset, e.g. `2024-03-01T09:30:00Z` or
//!   `2024-03-01T10:30:00+01:00` (a space instead of the `T` is accepted too);
//!   fractions of a second below a microsecond are dropped;
//! - a calendar date `YYYY-MM-DD`, meaning midnight UTC at its start.
//!
//! A timestamp without an offset (`2024-03-01T09:30:00`) is refused rather than guessed.

use chrono::{DateTime, NaiveDate};
use vitals_domain::time::{MICROS_PER_DAY, Micros};

/// Parses an RFC 3339 timestamp or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(s: &str) -> Result<Micros, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = parse_date(s) {
        return Ok(date_micros(d));
    }
    Err(format!(
        "{s:?} is not a time: expected RFC 3339 (e.g. 2024-03-01T09:30:00Z) or YYYY-MM-DD"
    ))
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    // `%Y` alone would also take 5-digit or signed years; insist on the plain form.
    let plain = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !plain {
        return Err(format!("{s:?} is not a date: expected YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("{s:?} is not a valid date: {e}"))
}

/// Parses a compact `YYYYMMDD` date (as in the CDNOW files).
pub fn parse_compact_date(s: &str) -> Result<NaiveDate, String> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a date: expected YYYYMMDD"));
    }
    NaiveDate::parse_from_str(s, "%Y%m%d").map_err(|e| format!("{s:?} is not a valid date: {e}"))
}

/// Midnight UTC at the start of `date`, in microseconds since the epoch.
pub fn date_micros(date: NaiveDate) -> Micros {
    let days = date.signed_duration_since(NaiveDate::default()).num_days();
    // NaiveDate's range (about ±262,000 years) times a day's microseconds fits in i64.
    days * MICROS_PER_DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps() {
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("1970-01-02"), Ok(MICROS_PER_DAY));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00"), Ok(1_000_000));
        assert_eq!(parse_time("1970-01-01 00:00:00.5Z"), Ok(500_000));
        assert_eq!(parse_time(" 2024-02-29 "), Ok(1_709_164_800_000_000));
        assert!(parse_time("2023-02-29").is_err());
        assert!(parse_time("2024-03-01T09:30:00").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_date("12024-01-01").is_err());
        assert!(parse_date("2024-1-01").is_err());
    }

    #[test]
    fn compact_dates() {
        assert_eq!(
            parse_compact_date("19970101").map(date_micros),
            Ok(852_076_800_000_000)
        );
        assert!(parse_compact_date("1997011").is_err());
        assert!(parse_compact_date("19971301").is_err());
        assert!(parse_compact_date("1997-1-1").is_err());
    }

    #[test]
    fn dates_before_1970_are_negative() {
        assert_eq!(parse_time("1969-12-31"), Ok(-MICROS_PER_DAY));
    }
}

/// Parses a duration such as `30d`, `26w`, `12h` or `90` (days) into microseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 30d, 26w or 12h, got {s:?}"))?;
    let unit_micros: i64 = match unit {
        "" | "d" | "day" | "days" => 86_400_000_000,
        "w" | "week" | "weeks" => 7 * 86_400_000_000,
        "h" | "hour" | "hours" => 3_600_000_000,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use h, d or w")),
    };
    if n <= 0 {
        return Err(format!("the duration must be positive, got {s:?}"));
    }
    n.checked_mul(unit_micros)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400_000_000));
        assert_eq!(parse_duration("26w"), Ok(26 * 7 * 86_400_000_000));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600_000_000));
        assert_eq!(parse_duration("90"), Ok(90 * 86_400_000_000));
        for bad in ["", "d", "0d", "-3d", "3m", "3.5d", "99999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
