//! Strict readers for the public JSON files: every field named, every value in its one
//! canonical form, every failure a [`Fault`] naming the field.
//!
//! - balances and sums: decimal strings `0|[1-9][0-9]*` below 2^64 (`"-5"` is
//!   `negative_value`, `"18446744073709551616"` is `out_of_range`, `"007"`, `"1e3"`, `" 1"` and
//!   JSON numbers are `not_a_number`);
//! - signed amounts (liabilities): the same with an optional leading `-` (never `-0`), within
//!   `i128`;
//! - counts and ids (`seq`, `account`, `position`, `leaf_count`, `height`, `decimals`): JSON
//!   numbers whose value is whole, `0 ≤ v ≤ 2^53 − 1` (exact in every JSON reader);
//! - hashes, keys, salts, signatures: lower-case hex of exactly their length (`bad_hex`).

use serde_json::{Map, Value};

use crate::por::fault::{Fault, PorError};
use crate::por::format::MAX_JSON_INTEGER;

/// Parses a whole file's text into a JSON object.
///
/// # Errors
/// `empty_input` for an empty (or blank) text, `malformed` for anything but one JSON object.
pub fn parse_object(text: &str, what: &str) -> Result<Map<String, Value>, PorError> {
    if text.trim().is_empty() {
        return Err(PorError::new(Fault::EmptyInput, format!("the {what} is empty")));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(PorError::new(Fault::Malformed, format!("the {what} is not a JSON object"))),
        Err(e) => Err(PorError::new(Fault::Malformed, format!("the {what} is not JSON (truncated?): {e}"))),
    }
}

/// Refuses keys outside `allowed`, then checks `format`.
///
/// # Errors
/// `unknown_field`, `missing_field` (format), `unknown_format`.
pub fn check_keys(map: &Map<String, Value>, allowed: &[&str], format: &str, what: &str) -> Result<(), PorError> {
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(PorError::new(Fault::UnknownField, format!("the {what} has a field `{unknown}`")));
    }
    match field(map, "format", what)? {
        Value::String(found) if found == format => Ok(()),
        other => {
            Err(PorError::new(Fault::UnknownFormat, format!("the {what}'s format is {other}, expected \"{format}\"")))
        }
    }
}

/// A required field.
///
/// # Errors
/// `missing_field`.
pub fn field<'a>(map: &'a Map<String, Value>, name: &str, what: &str) -> Result<&'a Value, PorError> {
    map.get(name).ok_or_else(|| PorError::new(Fault::MissingField, format!("the {what} has no `{name}`")))
}

/// A balance or sum: a canonical decimal string below 2^64.
///
/// # Errors
/// `not_a_number`, `negative_value`, `out_of_range`, naming `name`.
pub fn amount(value: &Value, name: &str) -> Result<u64, PorError> {
    let Value::String(text) = value else {
        return Err(PorError::new(Fault::NotANumber, format!("{name} is {value}, not a decimal string")));
    };
    if let Some(digits) = text.strip_prefix('-') {
        if canonical_digits(digits) && digits != "0" {
            return Err(PorError::new(Fault::NegativeValue, format!("{name} is {text}: values are never negative")));
        }
    }
    if !canonical_digits(text) {
        return Err(PorError::new(Fault::NotANumber, format!("{name} is {value}, not a canonical decimal string")));
    }
    text.parse::<u64>().map_err(|_| PorError::new(Fault::OutOfRange, format!("{name} is {text}, not below 2^64")))
}

/// A signed amount (a liability): canonical decimal with an optional `-`, within `i128`.
///
/// # Errors
/// `not_a_number`, `out_of_range`.
pub fn signed_amount(value: &Value, name: &str) -> Result<i128, PorError> {
    let Value::String(text) = value else {
        return Err(PorError::new(Fault::NotANumber, format!("{name} is {value}, not a decimal string")));
    };
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !canonical_digits(digits) || text == "-0" {
        return Err(PorError::new(Fault::NotANumber, format!("{name} is {value}, not a canonical decimal string")));
    }
    text.parse::<i128>().map_err(|_| PorError::new(Fault::OutOfRange, format!("{name} is {text}, out of range")))
}

fn canonical_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'))
}

/// A count or id: a JSON number whose value is a whole number `0 ≤ v ≤ 2^53 − 1` (`5` and
/// `5.0` alike, as every JSON reader, JavaScript's included, sees the same value).
///
/// # Errors
/// `not_a_number` (not a number, or not whole), `negative_value`, `out_of_range`.
pub fn integer(value: &Value, name: &str) -> Result<u64, PorError> {
    let Value::Number(n) = value else {
        return Err(PorError::new(Fault::NotANumber, format!("{name} is {value}, not an integer")));
    };
    let out_of_range = || PorError::new(Fault::OutOfRange, format!("{name} is {n}, above 2^53 − 1"));
    if let Some(v) = n.as_u64() {
        return if v > MAX_JSON_INTEGER { Err(out_of_range()) } else { Ok(v) };
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f < 0.0 {
        return Err(PorError::new(Fault::NegativeValue, format!("{name} is {n}: never negative")));
    }
    if f.fract() != 0.0 || f.is_nan() {
        return Err(PorError::new(Fault::NotANumber, format!("{name} is {n}, not a whole number")));
    }
    if f > MAX_JSON_INTEGER as f64 {
        return Err(out_of_range());
    }
    Ok(f as u64)
}

/// Lower-case hex of exactly `N` bytes.
///
/// # Errors
/// `bad_hex`.
pub fn hex<const N: usize>(value: &Value, name: &str) -> Result<[u8; N], PorError> {
    let bad = || PorError::new(Fault::BadHex, format!("{name} is {value}, not {} lower-case hex digits", 2 * N));
    let Value::String(text) = value else { return Err(bad()) };
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(bad());
    }
    crate::signing::parse_hex::<N>(text).ok_or_else(bad)
}

/// A JSON array.
///
/// # Errors
/// `malformed`.
pub fn array<'a>(value: &'a Value, name: &str) -> Result<&'a Vec<Value>, PorError> {
    value.as_array().ok_or_else(|| PorError::new(Fault::Malformed, format!("{name} is not an array")))
}

/// An array of exactly `len` balances.
///
/// # Errors
/// `asset_mismatch` for another length, else as [`amount`].
pub fn amounts(value: &Value, name: &str, len: usize) -> Result<Vec<u64>, PorError> {
    let items = array(value, name)?;
    if items.len() != len {
        return Err(PorError::new(
            Fault::AssetMismatch,
            format!("{name} has {} values, the root has {len} assets", items.len()),
        ));
    }
    items.iter().enumerate().map(|(i, v)| amount(v, &format!("{name}[{i}]"))).collect()
}

/// An asset symbol.
///
/// # Errors
/// `bad_symbol`.
pub fn symbol(value: &Value, name: &str) -> Result<crate::tx::Symbol, PorError> {
    value
        .as_str()
        .and_then(crate::tx::Symbol::new)
        .ok_or_else(|| PorError::new(Fault::BadSymbol, format!("{name} is {value}, not an asset symbol")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fault<T: std::fmt::Debug>(r: Result<T, PorError>) -> Fault {
        r.expect_err("must fail").fault
    }

    #[test]
    fn amounts_have_one_canonical_form() {
        assert_eq!(amount(&json!("0"), "v"), Ok(0));
        assert_eq!(amount(&json!("18446744073709551615"), "v"), Ok(u64::MAX));
        assert_eq!(fault(amount(&json!("18446744073709551616"), "v")), Fault::OutOfRange);
        assert_eq!(fault(amount(&json!("-1"), "v")), Fault::NegativeValue);
        for bad in [json!("-0"), json!("01"), json!("1e3"), json!(" 1"), json!(""), json!(5), json!("+1"), json!(null)]
        {
            assert_eq!(fault(amount(&bad, "v")), Fault::NotANumber, "{bad}");
        }
        assert_eq!(signed_amount(&json!("-12"), "v"), Ok(-12));
        assert_eq!(fault(signed_amount(&json!("-0"), "v")), Fault::NotANumber);
    }

    #[test]
    fn integers_stay_exact_in_every_reader() {
        assert_eq!(integer(&json!(9_007_199_254_740_991u64), "n"), Ok(MAX_JSON_INTEGER));
        assert_eq!(fault(integer(&json!(9_007_199_254_740_992u64), "n")), Fault::OutOfRange);
        assert_eq!(fault(integer(&json!(-1), "n")), Fault::NegativeValue);
        assert_eq!(fault(integer(&json!(1.5), "n")), Fault::NotANumber);
        assert_eq!(fault(integer(&json!(-1.5), "n")), Fault::NegativeValue);
        assert_eq!(fault(integer(&json!("1"), "n")), Fault::NotANumber);
        assert_eq!(fault(integer(&json!(1e300), "n")), Fault::OutOfRange);
        assert_eq!(integer(&json!(5.0), "n"), Ok(5), "5.0 is the value 5 to every reader");
    }

    #[test]
    fn hex_is_lower_case_and_exact() {
        assert_eq!(hex::<2>(&json!("0aff"), "h"), Ok([10, 255]));
        for bad in [json!("0AFF"), json!("0xff"), json!("0af"), json!("0aff00"), json!(1)] {
            assert_eq!(fault(hex::<2>(&bad, "h")), Fault::BadHex, "{bad}");
        }
    }

    #[test]
    fn a_file_is_one_object() {
        assert_eq!(fault(parse_object("  \n", "proof")), Fault::EmptyInput);
        assert_eq!(fault(parse_object("{\"a\":", "proof")), Fault::Malformed);
        assert_eq!(fault(parse_object("[1]", "proof")), Fault::Malformed);
    }
}
