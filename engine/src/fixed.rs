//! Fixed-point arithmetic: decimal wire numbers, unit conversion, and rounded division.
//!
//! verex has no floating point. Every quantity is an integer in some unit: an asset amount
//! in `10^-decimals` of the asset, a price in `10^-price_decimals` of the quote per whole
//! base, a ratio (fee, weight, rate) in `10^-RATIO_DECIMALS`. Intermediate products are
//! `i128`; every division names the direction it rounds, and callers pick the direction
//! that favours the exchange.

use crate::tx::{ArchivedDec, Dec};

/// Largest power of ten the engine will scale by (10^36 still fits in an `i128`).
pub const MAX_POW10: u32 = 36;

/// Decimal places of every ratio (fees, weights, margin fractions, funding rates): 1e-8.
pub const RATIO_DECIMALS: u32 = 8;

/// One whole, in ratio units (`1.0` = `RATIO_ONE`).
pub const RATIO_ONE: i64 = 100_000_000;

/// Powers of ten up to [`MAX_POW10`], computed at compile time (a loop of `pow` per call
/// showed up in profiles of the order path).
const POW10: [i128; MAX_POW10 as usize + 1] = {
    let mut table = [1i128; MAX_POW10 as usize + 1];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Powers of ten that fit an `i64` (up to 10^18), for the 64-bit fast paths.
const POW10_I64: [i64; 19] = {
    let mut table = [1i64; 19];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `10^exp` as an `i128`, or `None` above [`MAX_POW10`].
#[must_use]
pub fn pow10(exp: u32) -> Option<i128> {
    POW10.get(exp as usize).copied()
}

/// Direction of a rounded division.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// Towards negative infinity.
    Floor,
    /// Towards positive infinity.
    Ceil,
}

/// `num / den` rounded as asked. `den` must be positive.
#[must_use]
pub fn div_round(num: i128, den: i128, round: Round) -> i128 {
    debug_assert!(den > 0, "division by a non-positive denominator");
    // Fast path: 64-bit division is an order of magnitude cheaper than the 128-bit routine,
    // and order-flow values almost always fit.
    if let (Ok(num), Ok(den)) = (i64::try_from(num), i64::try_from(den)) {
        let quotient = num.div_euclid(den);
        let bump = i64::from(round == Round::Ceil && num.rem_euclid(den) != 0);
        return i128::from(quotient + bump);
    }
    let quotient = num.div_euclid(den);
    let remainder = num.rem_euclid(den);
    match round {
        Round::Floor => quotient,
        Round::Ceil if remainder != 0 => quotient + 1,
        Round::Ceil => quotient,
    }
}

/// `value × 10^exp` for a signed exponent, rounded as asked when `exp < 0`.
/// `None` on overflow.
#[must_use]
pub fn scale_pow10(value: i128, exp: i32, round: Round) -> Option<i128> {
    if exp >= 0 {
        value.checked_mul(pow10(exp.unsigned_abs())?)
    } else {
        Some(div_round(value, pow10(exp.unsigned_abs())?, round))
    }
}

/// Converts a wire decimal to an integer count of `10^-decimals` units.
/// `None` when the value is not a whole number of those units or does not fit in `i64`.
#[must_use]
pub fn dec_to_units(mantissa: i64, scale: u8, decimals: u32) -> Option<i64> {
    let scale = u32::from(scale);
    // Fast path: the usual case is scaling up by at most 10^18, which fits 64-bit arithmetic.
    if let Some(factor) = decimals.checked_sub(scale).and_then(|up| POW10_I64.get(up as usize)) {
        return mantissa.checked_mul(*factor);
    }
    units_exact(mantissa, scale, decimals)
}

/// [`dec_to_units`] in exact 128-bit arithmetic: its slow path, and the tests' reference.
fn units_exact(mantissa: i64, scale: u32, decimals: u32) -> Option<i64> {
    let value = i128::from(mantissa);
    let units = if decimals >= scale {
        value.checked_mul(pow10(decimals - scale)?)?
    } else {
        let divisor = pow10(scale - decimals)?;
        if value % divisor != 0 {
            return None;
        }
        value / divisor
    };
    i64::try_from(units).ok()
}

impl Dec {
    /// A decimal from its mantissa and scale: `mantissa × 10^-scale`.
    #[must_use]
    pub const fn new(mantissa: i64, scale: u8) -> Self {
        Self { mantissa, scale }
    }

    /// Zero.
    pub const ZERO: Self = Self::new(0, 0);

    /// The number of decimal places this value needs (trailing zeros ignored).
    #[must_use]
    pub fn places(&self) -> u32 {
        let mut mantissa = self.mantissa;
        let mut scale = u32::from(self.scale);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        scale
    }

    /// This value in units of `10^-decimals` (see [`dec_to_units`]).
    #[must_use]
    pub fn to_units(&self, decimals: u32) -> Option<i64> {
        dec_to_units(self.mantissa, self.scale, decimals)
    }
}

/// Why a decimal has no integer form in some unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitsError {
    /// It is not a whole number of units (finer than the unit).
    NotWhole,
    /// It is a whole number of units but does not fit an `i64`.
    OutOfRange,
}

impl ArchivedDec {
    /// This value in units of `10^-decimals` (see [`dec_to_units`]).
    #[must_use]
    pub fn to_units(&self, decimals: u32) -> Option<i64> {
        dec_to_units(self.mantissa.to_native(), self.scale, decimals)
    }

    /// Like [`ArchivedDec::to_units`], but says why there is no integer form, so that a
    /// number too large is reported as an overflow and one too fine as off the grid.
    ///
    /// # Errors
    /// [`UnitsError`].
    pub fn to_units_checked(&self, decimals: u32) -> Result<i64, UnitsError> {
        let (mantissa, scale) = (i128::from(self.mantissa.to_native()), u32::from(self.scale));
        // Scaling up (the usual case) cannot leave a fraction: only the range can fail.
        if scale > decimals {
            let divisor = pow10(scale - decimals).ok_or(UnitsError::NotWhole)?;
            if mantissa % divisor != 0 {
                return Err(UnitsError::NotWhole);
            }
        }
        self.to_units(decimals).ok_or(UnitsError::OutOfRange)
    }

    /// The native form.
    #[must_use]
    pub fn to_native(&self) -> Dec {
        Dec::new(self.mantissa.to_native(), self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn div_round_directions() {
        assert_eq!(div_round(7, 2, Round::Floor), 3);
        assert_eq!(div_round(7, 2, Round::Ceil), 4);
        assert_eq!(div_round(-7, 2, Round::Floor), -4);
        assert_eq!(div_round(-7, 2, Round::Ceil), -3);
        assert_eq!(div_round(8, 2, Round::Ceil), 4);
    }

    /// The 64-bit fast path answers what exact 128-bit scaling answers, at every scale and
    /// decimals pair, including the edges of `i64`.
    #[test]
    fn units_conversion_fast_path_equals_exact_scaling() {
        let reference = |mantissa: i64, scale: u8, decimals: u32| units_exact(mantissa, u32::from(scale), decimals);
        let mantissas = [0, 1, -1, 7, 10, 100, 12_345, -12_340, 922_337_203_685_477_580, i64::MAX, i64::MIN];
        for mantissa in mantissas {
            for scale in 0..=20u8 {
                for decimals in 0..=20u32 {
                    let expected = reference(mantissa, scale, decimals);
                    assert_eq!(dec_to_units(mantissa, scale, decimals), expected, "{mantissa} {scale} {decimals}");
                }
            }
        }
    }

    #[test]
    fn units_conversion_is_exact_or_refused() {
        assert_eq!(dec_to_units(15, 3, 6), Some(15_000)); // 0.015 at 6 decimals
        assert_eq!(dec_to_units(15, 3, 2), None); // 0.015 is not whole cents
        assert_eq!(dec_to_units(1500, 3, 1), Some(15)); // 1.500 → 15 tenths
        assert_eq!(dec_to_units(i64::MAX, 0, 1), None);
        assert_eq!(dec_to_units(-5, 1, 1), Some(-5));
    }

    #[test]
    fn places_ignores_trailing_zeros() {
        assert_eq!(Dec::new(100, 2).places(), 0);
        assert_eq!(Dec::new(150, 2).places(), 1);
        assert_eq!(Dec::new(1, 4).places(), 4);
    }

    #[test]
    fn scale_pow10_both_ways() {
        assert_eq!(scale_pow10(5, 2, Round::Floor), Some(500));
        assert_eq!(scale_pow10(599, -2, Round::Floor), Some(5));
        assert_eq!(scale_pow10(599, -2, Round::Ceil), Some(6));
        assert_eq!(scale_pow10(1, 40, Round::Floor), None);
    }
}

/// `round(product × 10^exp × ratio / RATIO_ONE)`, exactly, without overflowing on the way for
/// any `product × 10^exp` that fits an `i64`. `None` when the result does not fit.
///
/// Used for fees and PnL: `product` is `price_units × qty_units`, `exp` the market's notional
/// exponent. Nested rounding is exact because `⌈⌈y⌉ / n⌉ = ⌈y / n⌉` (likewise floor) for a
/// positive integer `n`.
#[must_use]
pub fn mul_ratio(product: i128, exp: i32, ratio: i64, round: Round) -> Option<i128> {
    let ratio = i128::from(ratio);
    let one = i128::from(RATIO_ONE);
    if exp >= 0 {
        let scaled = product.checked_mul(pow10(exp.unsigned_abs())?)?;
        return Some(div_round(scaled.checked_mul(ratio)?, one, round));
    }
    let divisor = pow10(exp.unsigned_abs())?;
    let (whole, fraction) = match (i64::try_from(product), i64::try_from(divisor)) {
        (Ok(p), Ok(d)) => (i128::from(p.div_euclid(d)), i128::from(p.rem_euclid(d))),
        _ => (product.div_euclid(divisor), product.rem_euclid(divisor)),
    };
    let part = whole.checked_mul(ratio)?.checked_add(div_round(fraction.checked_mul(ratio)?, divisor, round))?;
    Some(div_round(part, one, round))
}

/// Converts a wire decimal ratio (fee, weight, rate) into ratio units; `None` if it has more
/// than [`RATIO_DECIMALS`] places or does not fit.
#[must_use]
pub fn ratio_units(dec: &ArchivedDec) -> Option<i64> {
    dec.to_units(RATIO_DECIMALS)
}

#[cfg(test)]
mod ratio_tests {
    use super::*;

    #[test]
    fn mul_ratio_matches_exact_rational() {
        // 0.5 BTC (8 dp) at 100.00 (2 dp) in USDC (6 dp): exp = 6 - 2 - 8 = -4.
        let product = 10_000i128 * 50_000_000;
        assert_eq!(mul_ratio(product, -4, RATIO_ONE, Round::Floor), Some(50_000_000));
        // 0.0005 taker fee on 50 USDC = 0.025 USDC.
        assert_eq!(mul_ratio(product, -4, 50_000, Round::Ceil), Some(25_000));
        // A fee of a third of a unit rounds up for the exchange, down for a rebate.
        assert_eq!(mul_ratio(1, 0, RATIO_ONE / 3, Round::Ceil), Some(1));
        assert_eq!(mul_ratio(1, 0, RATIO_ONE / 3, Round::Floor), Some(0));
        assert_eq!(mul_ratio(-7, -1, RATIO_ONE, Round::Floor), Some(-1));
        assert_eq!(mul_ratio(-7, -1, RATIO_ONE, Round::Ceil), Some(0));
    }
}
