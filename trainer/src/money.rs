//! Exact money: decimal strings to integer minor units, without floating point.

/// Digits after the decimal point in a currency's minor unit (ISO 4217 exponent).
///
/// Most currencies have 2; the exceptions in use are listed here. An unknown code gets 2:
/// validation refuses unknown codes anyway.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Parses a decimal amount such as `29.33`, `-4.5`, `12` or `.5` into minor units with
/// `digits` decimals (`"29.33"` with 2 digits is `2933`).
///
/// Accepted: an optional sign, digits, and an optional `.` with more digits; no exponent,
/// no thousands separators, no currency symbol. More decimals than `digits` are rounded
/// half up, i.e. half away from zero (`"1.005"` → `101`, `"-1.005"` → `-101`).
pub fn parse_minor_units(s: &str, digits: u32) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an amount: expected a decimal number such as 12.34");
    let t = s.trim();
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(bad());
    }
    let too_large = || format!("{s:?} is too large an amount");
    let mut value: i64 = 0;
    for b in whole.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    let mut fraction = fraction.bytes();
    for _ in 0..digits {
        let d = fraction.next().map_or(0, |b| i64::from(b - b'0'));
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or_else(too_large)?;
    }
    // Half up: only the first dropped digit decides.
    if fraction.next().is_some_and(|b| b >= b'5') {
        value = value.checked_add(1).ok_or_else(too_large)?;
    }
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_become_exact_cents() {
        let cases = [
            ("29.33", 2933),
            ("0.1", 10),
            ("12", 1200),
            ("1.005", 101),
            ("1.0049", 100),
            ("0.00", 0),
            ("0.995", 100),
            (".5", 50),
            ("7.", 700),
            ("+3.20", 320),
            ("-1.005", -101),
            ("-0.01", -1),
            (" 14.96 ", 1496),
            ("1234567.89", 123_456_789),
        ];
        for (s, cents) in cases {
            assert_eq!(parse_minor_units(s, 2), Ok(cents), "{s}");
        }
    }

    #[test]
    fn other_exponents() {
        assert_eq!(parse_minor_units("1500", 0), Ok(1500));
        assert_eq!(parse_minor_units("1500.5", 0), Ok(1501));
        assert_eq!(parse_minor_units("1.2345", 3), Ok(1235));
        assert_eq!(minor_digits("JPY"), 0);
        assert_eq!(minor_digits("KWD"), 3);
        assert_eq!(minor_digits("USD"), 2);
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for s in [
            "",
            ".",
            "-",
            "+",
            "1,000.00",
            "1e3",
            "$5",
            "5 USD",
            "1.2.3",
            "--1",
            "NaN",
            "inf",
            "١٢",
            "99999999999999999999",
        ] {
            assert!(parse_minor_units(s, 2).is_err(), "{s:?}");
        }
        // Fits as whole units but not once scaled to cents.
        assert_eq!(
            parse_minor_units("92233720368547758", 2),
            Ok(9_223_372_036_854_775_800)
        );
        assert!(parse_minor_units("92233720368547759", 2).is_err());
    }
}
