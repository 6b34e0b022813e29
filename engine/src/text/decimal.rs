//! Decimal strings: the only text form of numbers in verex (`"0.015"`, `"-1.5"`, `"100"`).
//!
//! Parsing is strict: optional `-`, digits, optional `.` and digits; no `+`, no exponent, no
//! spaces, at most 18 decimal places, and the digits must fit an `i64` mantissa. A parsed value is
//! canonical: trailing fractional zeros are dropped (`"1.50"` is `Dec { 15, 1 }`). Formatting is
//! normalised: no trailing zeros, no exponent, `-` only for negative values.

use crate::tx::Dec;

/// Most decimal places a decimal string may carry.
pub const MAX_DECIMAL_PLACES: u8 = 18;

/// Why a decimal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Nothing to parse.
    #[error("empty decimal string")]
    Empty,
    /// A character that is not part of a plain decimal.
    #[error("{0:?} is not a plain decimal (digits, one optional '.', optional leading '-')")]
    Malformed(String),
    /// More places than allowed.
    #[error("{0:?} has more than {MAX_DECIMAL_PLACES} decimal places")]
    TooPrecise(String),
    /// Too many digits.
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

/// Parses a decimal string into a wire [`Dec`].
///
/// # Errors
/// [`DecimalError`] naming what is wrong with the text.
pub fn parse_dec(text: &str) -> Result<Dec, DecimalError> {
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (body, None),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fraction_text = fraction.unwrap_or("");
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction_text) || fraction == Some("") {
        return Err(DecimalError::Malformed(text.to_string()));
    }
    if fraction_text.len() > usize::from(MAX_DECIMAL_PLACES) {
        return Err(DecimalError::TooPrecise(text.to_string()));
    }
    let mut mantissa: i64 = 0;
    for b in whole.bytes().chain(fraction_text.bytes()) {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i64::from(b - b'0')))
            .ok_or_else(|| DecimalError::OutOfRange(text.to_string()))?;
    }
    let mut scale = u8::try_from(fraction_text.len()).map_err(|_| DecimalError::TooPrecise(text.to_string()))?;
    // Canonical form: no trailing fractional zeros, so "1.50" and "1.5" are the same bytes
    // on the wire (a signature covers the value, not its spelling) and rendering round-trips.
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    Ok(Dec::new(if negative { -mantissa } else { mantissa }, scale))
}

/// Formats `units × 10^-decimals` as a normalised decimal string.
#[must_use]
pub fn format_units(units: i128, decimals: u32) -> String {
    let negative = units < 0;
    let magnitude = units.unsigned_abs();
    let divisor = 10u128.pow(decimals);
    let whole = magnitude / divisor;
    let mut fraction = magnitude % divisor;
    let mut places = decimals;
    while places > 0 && fraction.is_multiple_of(10) {
        fraction /= 10;
        places -= 1;
    }
    let sign = if negative && magnitude != 0 { "-" } else { "" };
    if places == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction:0width$}", width = places as usize)
    }
}

/// Formats a wire decimal as a normalised decimal string.
#[must_use]
pub fn format_dec(dec: Dec) -> String {
    format_units(i128::from(dec.mantissa), u32::from(dec.scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(parse_dec("0.015"), Ok(Dec::new(15, 3)));
        assert_eq!(parse_dec("100"), Ok(Dec::new(100, 0)));
        assert_eq!(parse_dec("-1.5"), Ok(Dec::new(-15, 1)));
        assert_eq!(parse_dec("1.50"), Ok(Dec::new(15, 1)));
        assert_eq!(parse_dec("100.00"), Ok(Dec::new(100, 0)));
        assert_eq!(parse_dec("-0.0"), Ok(Dec::new(0, 0)));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", "+1", "1e5", "1.", ".5", " 1", "1 ", "1.2.3", "--1", "0x10", "NaN", "1,5", "-"] {
            assert!(parse_dec(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(matches!(parse_dec("0.0000000000000000001"), Err(DecimalError::TooPrecise(_))));
        assert!(matches!(parse_dec("99999999999999999999"), Err(DecimalError::OutOfRange(_))));
    }

    #[test]
    fn formats_normalised() {
        assert_eq!(format_units(15_000, 6), "0.015");
        assert_eq!(format_units(10_000_000_000, 6), "10000");
        assert_eq!(format_units(-1_500_000, 6), "-1.5");
        assert_eq!(format_units(0, 6), "0");
        assert_eq!(format_units(5, 0), "5");
        assert_eq!(format_dec(Dec::new(150, 2)), "1.5");
    }
}
