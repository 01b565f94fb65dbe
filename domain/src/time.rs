//! Time as Vitals stores it: microseconds since the Unix epoch, UTC.
//!
//! One integer type works the same on SQLite and PostgreSQL, sorts correctly, and is
//! exact; conversions to and from calendar types happen at the edges.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

pub const MICROS_PER_SECOND: Micros = 1_000_000;
pub const MICROS_PER_DAY: Micros = 86_400 * MICROS_PER_SECOND;

/// The current time in microseconds.
pub fn now_micros() -> Micros {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX),
        // A clock before 1970 is a broken clock; 0 keeps the arithmetic defined.
        Err(_) => 0,
    }
}

/// Converts seconds and nanoseconds (as in `google.protobuf.Timestamp`) to microseconds,
/// or `None` when out of range.
pub fn micros_from_parts(seconds: i64, nanos: i32) -> Option<Micros> {
    if !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    seconds
        .checked_mul(MICROS_PER_SECOND)?
        .checked_add(i64::from(nanos / 1_000))
}

/// Splits microseconds into seconds and nanoseconds.
pub fn parts_from_micros(micros: Micros) -> (i64, i32) {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    // rem_euclid is in 0..1_000_000, so the product fits in i32.
    let nanos = (micros.rem_euclid(MICROS_PER_SECOND) * 1_000) as i32;
    (seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_parts() {
        for m in [
            0,
            1,
            999_999,
            1_000_000,
            -1,
            -1_500_000,
            1_700_000_000_123_456,
        ] {
            let (s, n) = parts_from_micros(m);
            assert_eq!(micros_from_parts(s, n), Some(m), "{m}");
        }
    }

    #[test]
    fn rejects_bad_nanos_and_overflow() {
        assert_eq!(micros_from_parts(0, -1), None);
        assert_eq!(micros_from_parts(0, 1_000_000_000), None);
        assert_eq!(micros_from_parts(i64::MAX, 0), None);
    }
}
