//! Lending pools (SPEC section 6a): one per asset, cumulative indices, interest, automatic
//! borrows, and the write-off of a bankrupt debt.
//!
//! **Indices.** Each pool keeps a supply index `S` and a borrow index `B`, both scaled by
//! [`INDEX_ONE`] (1 at listing). An account stores principals, not amounts: its `lent` is
//! `⌊p × S⌋` and its `borrowed` is `⌈q × B⌉` (plus any unfunded debt, below). The pool keeps
//! `P = Σ p` and `Q = Σ q`; its totals are `lent = ⌊P × S⌋` and `borrowed = ⌈Q × B⌉`. An
//! accrual moves the two indices only: O(1) per asset, never a walk over accounts.
//!
//! **Accrual** happens at every tx that touches the pool (lend, redeem, borrow, repay, an
//! automatic borrow or repayment, a write-off) and at `tick` (every pool), linear in the time
//! since the previous accrual (the tx's stamp `ts` is the only clock; a year is
//! [`YEAR_NS`]), at the borrow rate of the utilization before it; compounding happens across
//! accruals. `B` grows by `B × rate × dt / year` rounded up; the interest is the growth of
//! the pool's `borrowed`; the reserve `⌊interest × reserve_factor⌋` goes to the insurance
//! fund; the lenders' share raises `S` by `⌊share / P⌋` (rounded down), and what the
//! rounding keeps back goes to the fee account. The reserve and that rounding are paid out of
//! the pool's cash: when the cash cannot pay them (utilization near 1), the lenders keep them
//! (`S` rises so that the pool's lent covers its borrowed), so **the pool's lent is never below
//! its borrowed**; every other operation below checks the same after its rounding.
//!
//! **Debtors and interest.** Accounts with any debt are listed (`Engine::debtors`). Each
//! evaluation of a debtor lowers its pools' *watch index* to the borrow index at which
//! interest alone could consume its share of the account's slack; an accrual that reaches a
//! pool's watch index queues that pool's debtors for evaluation, so a tick is O(assets)
//! unless someone may actually have fallen below maintenance. An index-price move or a
//! socialized loss queues every debtor and position holder.
//!
//! **Rates.** `U = borrowed / lent` (0 when nothing is lent, at most 1). The borrow rate is
//! linear from `rate_base` at `U = 0` to `rate_at_kink` at `rate_kink_utilization`, then to
//! `rate_max` at `U = 1`, rounded up to a ratio unit (10^-8 a year). Lenders earn
//! `borrow rate × U × (1 − reserve_factor)`.
//!
//! **Rounding and conservation.** Every conversion favours the exchange: a lend gets
//! `⌊amount / S⌋` of principal, a redeem gives up `⌈amount / S⌉`, a borrow owes `⌈amount /
//! B⌉`, a repayment clears `⌊amount / B⌋`. Each operation credits the fee account with the
//! difference between what moved and how much the pool's totals moved, so that
//! `Σ (available + locked) + pool lent − pool borrowed − Σ unfunded + fees + insurance` equals
//! `supply` exactly after every tx. The accounts' own rounded `lent` sum to at most the pool's
//! `lent`, their rounded `borrowed` to at least the pool's, each by less than one unit per
//! account: that dust is the exchange's too, and the fee account as reported
//! ([`crate::Engine::fee_account`]) includes it, so SPEC 7's per-account sum is exact.
//!
//! **Automatic borrows.** A debit beyond an account's `available` (a perp loss, funding, a
//! fee, a liquidation cost) borrows the shortfall from the pool: a `borrow` event with
//! `"auto": true`. When the pool's cash (`lent − borrowed`) is short, the rest is an
//! **unfunded debt**: owed by the account like a borrow (it counts in its margin, and the
//! account is evaluated and liquidated in the same tx), but lent by nobody, so it is not in
//! the pool. It is an event (`borrow` with an `"unfunded"` amount). It lasts only the tx:
//! at its end ([`Engine::fund_unfunded_debts`]) the asset's holders lend the pool the cash
//! it lacks, pro rata to their `available` (an `AutoLend` event each), and the pool lends it
//! to the debtor (`DebtFunded`): the debt becomes an ordinary borrow, paying the pool's rate
//! to its lenders. The money the unfunded debt credited to others (a winner's gain that the
//! loser could not pay in cash) is thereby a claim on the pool, not a balance custody does
//! not hold. Only when the holders hold less than the debt does unfunded debt outlive the
//! tx, and then nobody holds the asset available; the next txs lend what arrives
//! (`check_invariants` asserts: unfunded debt ⇒ no available balance of the asset).
//! A credit to the account repays unfunded debt first, then the pool. An account liquidated
//! while it owes unfunded debt has its collateral sold for it first (`collateral`); what no
//! sale turns into the asset does not count in its bankruptcy prices (`risk`), so the
//! counterparties of its closes (or the insurance fund) pay the unfunded debt back by the
//! price: it ends funded or reversed, never written off to nobody.
//!
//! **Bankruptcy.** A debt left after liquidation (no collateral left, see `collateral`) is
//! written off, each step an event: the insurance fund pays from what its positions do not
//! need (`bad_debt`, `"paid_by": "insurance"`); the asset's lenders take the rest by a cut of
//! `S` (`socialized_loss`): all of the pool debt (their own loan: the pool's cash does not
//! change) and unfunded debt as far as the pool's cash allows; the counterparties of the
//! account's perp fills in this tx pay back what each fill's price credited them against the
//! mark (`"paid_by": "counterparties"`: a fill that closed its last position far from the
//! mark is where the money went); the fee account pays what remains (`"paid_by":
//! "exchange"`). What even that cannot pay is unfunded debt that credited others in earlier
//! txs or through funding: the asset's holders pay it back, pro rata to their `available`
//! (`"paid_by": "holders"`, [`Engine::holders_pay`]), the last resort. No path pays out money
//! that no one deposited (SPEC 6, 6a): the asset's `uncovered` loss stays 0 (the state dump
//! keeps the key; `check_invariants` asserts it). The account owes nothing afterwards; what
//! it holds that nobody buys stays its own. The same last resort pays a rounding the fee
//! account cannot ([`Engine::exchange_pays`]).

use crate::accounts::NIL;
use crate::catalog::Asset;
use crate::engine::Engine;
use crate::events::{DebtPayer, Event, EventBuf};
use crate::fixed::{div_round, Round, RATIO_ONE};

/// How many units an operation sized to the pool's cash gives back for rounding before it
/// gives up (each rounding is at most a unit; two roundings meet in one operation).
pub(crate) const ROUNDING_TRIES: u32 = 4;

/// Scale of the pool indices: an index of `INDEX_ONE` is 1.
pub const INDEX_ONE: u128 = 1_000_000_000_000_000_000;

/// Nanoseconds in a year of interest: 365 days of 86,400 s.
pub const YEAR_NS: u128 = 31_536_000 * 1_000_000_000;

/// Default share of interest paid to the insurance fund: 0.1.
pub const DEFAULT_RESERVE_FACTOR: i64 = RATIO_ONE / 10;

/// Default utilization above which a borrow or redeem is refused: 0.95.
pub const DEFAULT_MAX_UTILIZATION: i64 = RATIO_ONE / 100 * 95;

/// Initial margin of a net debt: this fraction of its value at the index price joins the
/// initial requirement (on top of the debt's borrow weight in equity).
pub const BORROW_IMF: i64 = RATIO_ONE / 10;

/// Maintenance margin of a net debt: this fraction of its value joins the maintenance
/// requirement, so a debtor is liquidated before its weighted equity reaches zero.
pub const BORROW_MMF: i64 = RATIO_ONE / 20;

/// Largest yearly rate a listing may set: 1000 %.
pub const MAX_RATE: i64 = 10 * RATIO_ONE;

/// One asset's lending pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Supply index, [`INDEX_ONE`] = 1.
    pub supply_index: u128,
    /// Borrow index, [`INDEX_ONE`] = 1.
    pub borrow_index: u128,
    /// Σ of the lent principals: the accounts' and the insurance fund's.
    pub lent_principal: u128,
    /// The insurance fund's lent principal. Part of `lent_principal`. Nothing sets it since
    /// the fund stopped taking unsold collateral for nothing (`collateral`): 0 on a new
    /// exchange, kept so that older snapshots, the state hash and the dump's
    /// `insurance_lent` stay readable and the same.
    pub fund_principal: u64,
    /// Σ of the accounts' borrowed principals.
    pub borrowed_principal: u128,
    /// Σ of the accounts' unfunded debts (units; not part of the pool).
    pub unfunded: u64,
    /// Stamp of the last accrual.
    pub accrued_ts: u64,
    /// The borrow index at which some debtor of the pool may have fallen below maintenance
    /// through interest alone (`u128::MAX`: none): reaching it queues the pool's debtors.
    /// Decides when interest triggers evaluations, not any amount; not in the state hash.
    pub watch_index: u128,
}

impl Pool {
    /// A new pool at index 1, accrued at `ts`.
    #[must_use]
    pub fn new(ts: u64) -> Self {
        Self {
            supply_index: INDEX_ONE,
            borrow_index: INDEX_ONE,
            lent_principal: 0,
            borrowed_principal: 0,
            fund_principal: 0,
            unfunded: 0,
            accrued_ts: ts,
            watch_index: u128::MAX,
        }
    }

    /// The pool's lent total in units: `⌊P × S⌋`.
    #[must_use]
    pub fn lent(&self) -> u64 {
        units(self.lent_principal, self.supply_index, Round::Floor)
    }

    /// The pool's borrowed total in units: `⌈Q × B⌉`.
    #[must_use]
    pub fn borrowed(&self) -> u64 {
        units(self.borrowed_principal, self.borrow_index, Round::Ceil)
    }

    /// Cash in the pool: lent − borrowed.
    #[must_use]
    pub fn cash(&self) -> u64 {
        self.lent().saturating_sub(self.borrowed())
    }

    /// The pool's borrowed after lending `amount` more (its rounding included).
    #[must_use]
    pub fn borrowed_after(&self, amount: u64) -> u64 {
        if amount == 0 {
            return self.borrowed();
        }
        let principal = mul_div(u128::from(amount), INDEX_ONE, self.borrow_index, Round::Ceil).unwrap_or(u128::MAX / 2);
        units(self.borrowed_principal + principal, self.borrow_index, Round::Ceil)
    }

    /// The most of `amount` the pool can lend without its borrowed passing its lent.
    #[must_use]
    pub fn fundable(&self, amount: u64) -> u64 {
        // Only the rounding of the new principal can pass the cash: a unit or two.
        let mut fund = amount.min(self.cash());
        for _ in 0..ROUNDING_TRIES {
            if fund == 0 || self.borrowed_after(fund) <= self.lent() {
                return fund;
            }
            fund -= 1;
        }
        0
    }

    /// The principal a redeem of `amount` out of `principal` gives up: all of it when the
    /// amount is all it is worth, else `⌈amount / S⌉` (rounded up, never more than it has).
    #[must_use]
    pub fn redeem_principal(&self, principal: u64, amount: u64) -> u64 {
        if amount >= self.lent_of(principal) {
            return principal;
        }
        mul_div(u128::from(amount), INDEX_ONE, self.supply_index, Round::Ceil)
            .and_then(|p| u64::try_from(p).ok())
            .map_or(principal, |p| p.min(principal))
    }

    /// The principal a repayment of `amount` out of a debt of `principal` clears: all of it
    /// when the amount is all it owes, else `⌊amount / B⌋` (rounded down).
    #[must_use]
    pub fn repay_principal(&self, principal: u64, amount: u64) -> u64 {
        if amount >= self.borrowed_of(principal) {
            return principal;
        }
        mul_div(u128::from(amount), INDEX_ONE, self.borrow_index, Round::Floor)
            .and_then(|q| u64::try_from(q).ok())
            .map_or(0, |q| q.min(principal))
    }

    /// What the insurance fund has lent (its principal's worth, rounded down).
    #[must_use]
    pub fn fund_lent(&self) -> u64 {
        self.lent_of(self.fund_principal)
    }

    /// An account's lent amount for principal `p`.
    #[must_use]
    pub fn lent_of(&self, principal: u64) -> u64 {
        units(u128::from(principal), self.supply_index, Round::Floor)
    }

    /// An account's pool debt for principal `q`.
    #[must_use]
    pub fn borrowed_of(&self, principal: u64) -> u64 {
        units(u128::from(principal), self.borrow_index, Round::Ceil)
    }
}

/// `principal × index / INDEX_ONE`, rounded; a value beyond `u64` is an engine bug (every
/// amount is bounded by the asset's supply).
fn units(principal: u128, index: u128, round: Round) -> u64 {
    if principal == 0 {
        return 0;
    }
    mul_div(principal, index, INDEX_ONE, round)
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or_else(|| panic!("invariant: pool amount {principal} × {index} bounded by supply"))
}

/// `a × b / d`, rounded, with a 256-bit intermediate; `None` if the result leaves `u128` or
/// `d` is 0.
#[must_use]
pub fn mul_div(a: u128, b: u128, d: u128, round: Round) -> Option<u128> {
    if d == 0 {
        return None;
    }
    let (q, r) = match a.checked_mul(b) {
        Some(p) => (p / d, p % d),
        None => {
            let (hi, lo) = mul_wide(a, b);
            div_wide(hi, lo, d)?
        }
    };
    match round {
        Round::Floor => Some(q),
        Round::Ceil => q.checked_add(u128::from(r != 0)),
    }
}

/// The 256-bit product `a × b` as (high, low) halves.
fn mul_wide(a: u128, b: u128) -> (u128, u128) {
    const MASK: u128 = u64::MAX as u128;
    let (a1, a0) = (a >> 64, a & MASK);
    let (b1, b0) = (b >> 64, b & MASK);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
    let lo = (p00 & MASK) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// `(hi ‖ lo) / d` and its remainder by long division; `None` if the quotient leaves `u128`.
fn div_wide(hi: u128, lo: u128, d: u128) -> Option<(u128, u128)> {
    if hi >= d {
        return None;
    }
    let (mut rem, mut q) = (hi, 0u128);
    for bit in (0..128).rev() {
        let carry = rem >> 127;
        rem = (rem << 1) | ((lo >> bit) & 1);
        q <<= 1;
        if carry == 1 || rem >= d {
            rem = rem.wrapping_sub(d);
            q |= 1;
        }
    }
    Some((q, rem))
}

/// Utilization `borrowed / lent` in ratio units, rounded down, at most 1 (0 when nothing is lent).
#[must_use]
pub fn utilization(lent: u64, borrowed: u64) -> i64 {
    if lent == 0 {
        return 0;
    }
    let u = u128::from(borrowed) * RATIO_ONE.unsigned_abs() as u128 / u128::from(lent);
    i64::try_from(u.min(RATIO_ONE.unsigned_abs() as u128)).unwrap_or(RATIO_ONE)
}

/// The borrow rate of `asset`'s curve at utilization `borrowed / lent` (exact, then rounded up
/// to a ratio unit): yearly, ratio units.
#[must_use]
pub fn borrow_rate(asset: &Asset, lent: u64, borrowed: u64) -> i64 {
    let one = i128::from(RATIO_ONE);
    let (lent, borrowed) = (i128::from(lent), i128::from(borrowed.min(lent)));
    if lent == 0 || borrowed == 0 {
        return asset.rate_base;
    }
    let kink = i128::from(asset.rate_kink_utilization);
    let (base, at_kink, max) =
        (i128::from(asset.rate_base), i128::from(asset.rate_at_kink), i128::from(asset.rate_max));
    // U × ONE = borrowed × ONE / lent; compare U with the kink without rounding.
    let rate = if borrowed * one <= kink * lent && kink > 0 {
        base + crate::fixed::div_round((at_kink - base) * borrowed * one, lent * kink, Round::Ceil)
    } else {
        at_kink
            + crate::fixed::div_round(
                (max - at_kink) * (borrowed * one - kink * lent),
                lent * (one - kink).max(1),
                Round::Ceil,
            )
    };
    i64::try_from(rate).unwrap_or(MAX_RATE)
}

/// The lenders' yearly rate at that utilization: `borrow rate × U × (1 − reserve factor)`,
/// rounded down (for reports only; accrual works on amounts).
#[must_use]
pub fn lend_rate(asset: &Asset, lent: u64, borrowed: u64) -> i64 {
    if lent == 0 {
        return 0;
    }
    let rate = i128::from(borrow_rate(asset, lent, borrowed));
    let one = i128::from(RATIO_ONE);
    let share = rate * i128::from(borrowed.min(lent)) / i128::from(lent);
    i64::try_from(share * (one - i128::from(asset.reserve_factor)) / one).unwrap_or(0)
}

/// What one accrual did to a pool (for the `accrual` event at `tick`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accrual {
    pub interest: u64,
    pub reserve: u64,
    pub utilization: i64,
    pub borrow_rate: i64,
    pub lend_rate: i64,
}

impl Engine {
    /// The pool of asset `a` as an accrual to the current stamp would leave it, and what that
    /// accrual pays: (pool, accrual, share of interest for the fee account, negative when the
    /// fee account pays the lenders' rounding). Pure: validation reads it, so that a rejected
    /// tx changes nothing.
    pub(crate) fn accrued_pool(&self, a: u16) -> (Pool, Accrual, i128) {
        let mut pool = self.pools[usize::from(a)];
        if self.last_ts <= pool.accrued_ts {
            return (pool, Accrual::default(), 0);
        }
        let dt_ns = self.last_ts - pool.accrued_ts;
        pool.accrued_ts = self.last_ts;
        if pool.borrowed_principal == 0 {
            return (pool, Accrual::default(), 0);
        }
        let asset = self.catalog.asset(a);
        let (lent, borrowed) = (pool.lent(), pool.borrowed());
        let rate = borrow_rate(asset, lent, borrowed);
        let mut accrual = Accrual {
            interest: 0,
            reserve: 0,
            utilization: utilization(lent, borrowed),
            borrow_rate: rate,
            lend_rate: lend_rate(asset, lent, borrowed),
        };
        let one = RATIO_ONE.unsigned_abs() as u128;
        let per_year = u128::try_from(rate).unwrap_or(0) * u128::from(dt_ns);
        let growth = mul_div(pool.borrow_index, per_year, one * YEAR_NS, Round::Ceil)
            .unwrap_or_else(|| panic!("invariant: borrow index growth bounded"));
        if growth == 0 {
            return (pool, accrual, 0);
        }
        pool.borrow_index += growth;
        let interest = pool.borrowed() - borrowed;
        let reserve =
            u64::try_from(u128::from(interest) * u128::try_from(asset.reserve_factor).unwrap_or(0) / one).unwrap_or(0);
        let share = interest - reserve;
        if pool.lent_principal > 0 {
            pool.supply_index += mul_div(u128::from(share), INDEX_ONE, pool.lent_principal, Round::Floor).unwrap_or(0);
            // The pool's lent never falls below its borrowed: when its cash cannot pay the
            // reserve and the rounding out (utilization near 1), the lenders keep them.
            let owed = u128::from(pool.borrowed());
            if u128::from(pool.lent()) < owed {
                pool.supply_index =
                    mul_div(owed, INDEX_ONE, pool.lent_principal, Round::Ceil).unwrap_or(pool.supply_index);
            }
        }
        // With more than INDEX_ONE units of principal (lenders re-lending after a socialized
        // loss cut the index far down) one index step is worth more than a unit, and keeping
        // lent at or above borrowed may give the lenders a unit or two beyond the interest:
        // the fee account pays it (a negative share).
        let rest = i128::from(interest) - i128::from(pool.lent() - lent);
        let reserve = reserve.min(u64::try_from(rest).unwrap_or(0));
        accrual.interest = interest;
        accrual.reserve = reserve;
        (pool, accrual, rest - i128::from(reserve))
    }

    /// Accrues the pool of asset `a` to the current stamp (module docs). O(1), except when the
    /// borrow index reaches the pool's watch index: its debtors are then queued for an
    /// evaluation (interest may have consumed a debtor's slack).
    #[inline]
    pub(crate) fn accrue(&mut self, a: u16) -> Accrual {
        if self.last_ts <= self.pools[usize::from(a)].accrued_ts {
            return Accrual::default();
        }
        let (pool, accrual, to_fees) = self.accrued_pool(a);
        self.pools[usize::from(a)] = pool;
        if accrual.interest > 0 {
            self.adjust_insurance(a, i128::from(accrual.reserve));
            self.exchange_pays(a, to_fees);
            if pool.borrow_index >= pool.watch_index {
                self.pools[usize::from(a)].watch_index = u128::MAX;
                self.touch_debtors_of(a);
            }
        }
        accrual
    }

    /// Credits `amount` to the fee account of `a`, or when negative takes it from the fee
    /// account (a rounding the exchange pays: a unit or two); what that does not hold the
    /// asset's holders pay ([`Engine::holders_pay`]), never nobody.
    pub(crate) fn exchange_pays(&mut self, a: u16, amount: i128) {
        if amount >= 0 {
            self.add_fees(a, amount);
            return;
        }
        let owed = u64::try_from(-amount).unwrap_or(u64::MAX);
        let from_fees = self.fees[usize::from(a)].min(owed);
        self.fees[usize::from(a)] -= from_fees;
        if owed > from_fees {
            self.holders_pay(a, owed - from_fees);
        }
    }

    /// `tick`: accrues every pool; an `accrual` event for each that charged interest.
    pub(crate) fn tick(&mut self, out: &mut EventBuf) {
        for a in 0..u16::try_from(self.pools.len()).unwrap_or(u16::MAX) {
            let accrual = self.accrue(a);
            if accrual.interest > 0 {
                out.push(Event::Accrual {
                    asset: a,
                    interest: accrual.interest,
                    reserve: accrual.reserve,
                    utilization: accrual.utilization,
                    borrow_rate: accrual.borrow_rate,
                    lend_rate: accrual.lend_rate,
                });
            }
        }
    }

    /// Moves `amount` of an account's available into the pool (`lend`).
    pub(crate) fn lend_units(&mut self, account: u32, a: u16, amount: u64) -> Result<(), crate::RejectReason> {
        use crate::RejectReason;
        let (pool, _, _) = self.accrued_pool(a);
        let h = *self.accounts.holding(account, a);
        if h.available < amount {
            return Err(RejectReason::InsufficientBalance);
        }
        let principal = mul_div(u128::from(amount), INDEX_ONE, pool.supply_index, Round::Floor)
            .and_then(|p| u64::try_from(p).ok())
            .ok_or(RejectReason::Overflow)?;
        if principal == 0 {
            return Err(RejectReason::InvalidAmount);
        }
        h.lent.checked_add(principal).ok_or(RejectReason::Overflow)?;
        self.accrue(a);
        let grew = self.put_lent(account, a, amount, principal);
        self.add_fees(a, i128::from(amount - grew));
        Ok(())
    }

    /// Moves `amount` of an account's available into the pool as `principal` (the caller
    /// checked the available and that the principal fits); returns what the pool's lent grew
    /// by, for the caller to settle the rounding with the fee account.
    fn put_lent(&mut self, account: u32, a: u16, amount: u64, principal: u64) -> u64 {
        let p = &mut self.pools[usize::from(a)];
        let before = p.lent();
        p.lent_principal += u128::from(principal);
        let grew = p.lent() - before;
        let h = self.accounts.holding_mut(account, a);
        h.available -= amount;
        h.lent += principal;
        grew
    }

    /// Moves `amount` of an account's lent back to available (`redeem`): needs cash in the
    /// pool and keeps utilization within `max_utilization`.
    pub(crate) fn redeem_units(&mut self, account: u32, a: u16, amount: u64) -> Result<(), crate::RejectReason> {
        use crate::RejectReason;
        let (pool, _, _) = self.accrued_pool(a);
        let h = *self.accounts.holding(account, a);
        if pool.lent_of(h.lent) < amount {
            return Err(RejectReason::InsufficientBalance);
        }
        if pool.cash() < amount {
            return Err(RejectReason::InsufficientLiquidity);
        }
        let lent_after = pool.lent() - amount;
        if pool.borrowed() > 0 && utilization_above(pool.borrowed(), lent_after, self.catalog.asset(a).max_utilization)
        {
            return Err(RejectReason::UtilizationCap);
        }
        let principal = pool.redeem_principal(h.lent, amount);
        // The pool's cash must cover what its lent falls by (the amount and its rounding).
        let mut after = pool;
        after.lent_principal -= u128::from(principal);
        if after.lent() < pool.borrowed() {
            return Err(RejectReason::InsufficientLiquidity);
        }
        self.accrue(a);
        self.take_lent(account, a, amount, principal);
        Ok(())
    }

    /// Moves `amount` out of an account's lent into its available, giving up `principal`
    /// ([`Pool::redeem_principal`]; the caller checked the pool's cash); the fee account takes
    /// what the pool's lent fell by beyond the amount.
    pub(crate) fn take_lent(&mut self, account: u32, a: u16, amount: u64, principal: u64) {
        let p = &mut self.pools[usize::from(a)];
        let before = p.lent();
        p.lent_principal -= u128::from(principal);
        let fell = before - p.lent();
        let h = self.accounts.holding_mut(account, a);
        h.lent -= principal;
        h.available += amount;
        self.add_fees(a, i128::from(fell) - i128::from(amount));
    }

    /// Checks an explicit `borrow` of `amount` against the pool (cash, utilization cap).
    pub(crate) fn check_pool_borrow(&self, a: u16, amount: u64) -> Result<(), crate::RejectReason> {
        use crate::RejectReason;
        let (pool, _, _) = self.accrued_pool(a);
        if pool.borrowed_after(amount) > pool.lent() {
            return Err(RejectReason::InsufficientLiquidity);
        }
        let borrowed_after = pool.borrowed() + amount;
        if utilization_above(borrowed_after, pool.lent(), self.catalog.asset(a).max_utilization) {
            return Err(RejectReason::UtilizationCap);
        }
        Ok(())
    }

    /// Adds `amount` to an account's pool debt and its available (the caller checked the
    /// pool's cash). Returns nothing; the fee account takes the rounding.
    pub(crate) fn borrow_from_pool(&mut self, account: u32, a: u16, amount: u64) {
        self.accrue(a);
        let pool = self.pools[usize::from(a)];
        debug_assert!(pool.borrowed_after(amount) <= pool.lent(), "a pool borrow within cash");
        let principal = mul_div(u128::from(amount), INDEX_ONE, pool.borrow_index, Round::Ceil)
            .and_then(|p| u64::try_from(p).ok())
            .unwrap_or_else(|| panic!("invariant: borrow of {amount} bounded"));
        let before = pool.borrowed();
        let p = &mut self.pools[usize::from(a)];
        p.borrowed_principal += u128::from(principal);
        let grew = p.borrowed() - before;
        let h = self.accounts.holding_mut(account, a);
        h.borrowed += principal;
        h.available += amount;
        self.add_fees(a, i128::from(grew - amount));
    }

    /// Pays `amount` (at most the debt) of an account's debt from its available: unfunded
    /// debt first, then the pool. Returns what was paid to the pool and what of unfunded debt.
    pub(crate) fn repay_debt(&mut self, account: u32, a: u16, amount: u64) -> (u64, u64) {
        self.accrue(a);
        let h = *self.accounts.holding(account, a);
        debug_assert!(h.available >= amount, "a repayment from available");
        let unfunded = amount.min(h.unfunded);
        {
            let hm = self.accounts.holding_mut(account, a);
            hm.unfunded -= unfunded;
            hm.available -= unfunded;
        }
        self.pools[usize::from(a)].unfunded -= unfunded;
        (self.repay_pool(account, a, amount - unfunded), unfunded)
    }

    /// Pays up to `amount` of an account's pool debt of `a` from its available (the pool is
    /// accrued); returns what was paid. The fee account takes the rounding.
    pub(crate) fn repay_pool(&mut self, account: u32, a: u16, amount: u64) -> u64 {
        let h = *self.accounts.holding(account, a);
        if amount == 0 || h.borrowed == 0 {
            return 0;
        }
        let pool = self.pools[usize::from(a)];
        let rest = amount.min(pool.borrowed_of(h.borrowed));
        let principal = pool.repay_principal(h.borrowed, rest);
        let before = pool.borrowed();
        let p = &mut self.pools[usize::from(a)];
        p.borrowed_principal -= u128::from(principal);
        let fell = before - p.borrowed();
        let hm = self.accounts.holding_mut(account, a);
        hm.borrowed -= principal;
        hm.available -= rest;
        self.add_fees(a, i128::from(rest) - i128::from(fell));
        rest
    }

    /// An account's whole debt of asset `a` in units: pool debt (rounded up) + unfunded.
    #[inline]
    pub(crate) fn debt_of(&self, account: u32, a: u16) -> u64 {
        let h = self.accounts.holding(account, a);
        if h.borrowed == 0 {
            return h.unfunded;
        }
        self.pools[usize::from(a)].borrowed_of(h.borrowed) + h.unfunded
    }

    /// An account's lent amount of asset `a` in units (rounded down).
    #[inline]
    pub(crate) fn lent_amount(&self, account: u32, a: u16) -> u64 {
        let h = self.accounts.holding(account, a);
        if h.lent == 0 {
            return 0;
        }
        self.pools[usize::from(a)].lent_of(h.lent)
    }

    /// The slow half of `adjust`: a credit pays down debt first; a debit beyond available
    /// borrows the shortfall from the pool, and what the pool's cash cannot fund becomes an
    /// unfunded debt (module docs). Each automatic borrow is an event.
    pub(crate) fn adjust_with_debt(&mut self, account: u32, a: u16, delta: i128, out: &mut EventBuf) {
        self.accrue(a);
        let h = *self.accounts.holding(account, a);
        if delta >= 0 {
            let credit = u64::try_from(delta).unwrap_or_else(|_| panic!("invariant: credit {delta} bounded"));
            self.accounts.holding_mut(account, a).available += credit;
            let pay = self.debt_of(account, a).min(credit);
            if pay > 0 {
                let (pool, unfunded) = self.repay_debt(account, a, pay);
                out.push(Event::Repay { account: u64::from(account) + 1, asset: a, amount: pool + unfunded });
            }
            return;
        }
        let debit = u64::try_from(-delta).unwrap_or_else(|_| panic!("invariant: debit {delta} bounded"));
        let shortfall = debit.saturating_sub(h.available);
        let from_pool = self.pools[usize::from(a)].fundable(shortfall);
        if from_pool > 0 {
            self.borrow_from_pool(account, a, from_pool);
        }
        let unfunded = shortfall - from_pool;
        let hm = self.accounts.holding_mut(account, a);
        hm.available -= debit - unfunded;
        hm.unfunded += unfunded;
        self.pools[usize::from(a)].unfunded += unfunded;
        self.unfunded_open |= unfunded > 0;
        if shortfall > 0 {
            out.push(Event::Borrow { account: u64::from(account) + 1, asset: a, amount: shortfall, unfunded });
        }
    }

    /// The end of a tx that left automatic borrows unfunded (module docs, "Automatic
    /// borrows"): per asset, the holders lend the cash the pool lacks, pro rata to their
    /// `available` ([`Engine::holders_lend`]), and the pool funds the unfunded debts with it
    /// ([`Engine::pool_funds_unfunded`]); a few rounds absorb the roundings. Afterwards an
    /// asset either has no unfunded debt or no account holds any of it available (everything
    /// was lent): no balance anyone can withdraw is one that custody does not hold. Clears
    /// `unfunded_open` once no pool has unfunded debt. O(accounts) per asset that needs it:
    /// never reached while pools have cash.
    pub(crate) fn fund_unfunded_debts(&mut self, out: &mut EventBuf) {
        let mut open = false;
        for a in 0..u16::try_from(self.pools.len()).unwrap_or(u16::MAX) {
            for _ in 0..ROUNDING_TRIES {
                if self.pools[usize::from(a)].unfunded == 0 {
                    break;
                }
                self.accrue(a);
                let pool = self.pools[usize::from(a)];
                let need = pool.unfunded.saturating_sub(pool.cash());
                if need > 0 && !self.holders_lend(a, need, out) && pool.cash() == 0 {
                    break;
                }
                self.pool_funds_unfunded(a, out);
            }
            open |= self.pools[usize::from(a)].unfunded != 0;
        }
        self.unfunded_open = open;
    }

    /// Lends `need` of asset `a` from the accounts' `available` to the pool: each holder its
    /// share `⌈need × available / Σ available⌉` (all of it when they hold less than `need`
    /// together), an `AutoLend` event each. The principal is `⌊share / S⌋`, at least 1 (a
    /// unit the index would round away is lent as one principal, the fee account paying the
    /// difference of less than a unit). Returns whether anything was lent.
    pub(crate) fn holders_lend(&mut self, a: u16, need: u64, out: &mut EventBuf) -> bool {
        let total: u128 = self.accounts.column(a).iter().map(|h| u128::from(h.available)).sum();
        if total == 0 {
            return false;
        }
        let mut lent_any = false;
        for index in 0..u32::try_from(self.accounts.column(a).len()).unwrap_or(u32::MAX) {
            let available = self.accounts.holding(index, a).available;
            if available == 0 {
                continue;
            }
            let share = (u128::from(need) * u128::from(available)).div_ceil(total);
            let share = u64::try_from(share).unwrap_or(u64::MAX).min(available);
            let pool = self.pools[usize::from(a)];
            let principal = mul_div(u128::from(share), INDEX_ONE, pool.supply_index, Round::Floor)
                .and_then(|p| u64::try_from(p).ok())
                .unwrap_or(0)
                .max(1);
            if self.accounts.holding(index, a).lent.checked_add(principal).is_none() {
                continue;
            }
            let grew = self.put_lent(index, a, share, principal);
            self.exchange_pays(a, i128::from(share) - i128::from(grew));
            out.push(Event::AutoLend { account: u64::from(index) + 1, asset: a, amount: share });
            self.touch(index);
            lent_any = true;
        }
        lent_any
    }

    /// Turns unfunded debts of asset `a` into pool borrows as far as the pool's cash allows
    /// (in the order of the debtor list): a `DebtFunded` event each.
    pub(crate) fn pool_funds_unfunded(&mut self, a: u16, out: &mut EventBuf) {
        for i in 0..self.debtors.len() {
            let account = self.debtors[i];
            let unfunded = self.accounts.holding(account, a).unfunded;
            if unfunded == 0 {
                continue;
            }
            let fund = self.pools[usize::from(a)].fundable(unfunded);
            if fund == 0 {
                return;
            }
            self.borrow_from_pool(account, a, fund);
            let (pool, paid) = self.repay_debt(account, a, fund);
            debug_assert_eq!((pool, paid), (0, fund), "the pool's loan repays the unfunded debt");
            out.push(Event::DebtFunded { account: u64::from(account) + 1, asset: a, amount: fund });
            self.touch(account);
        }
    }

    /// Writes off a bankrupt account's debt of asset `a` (it holds nothing else to sell): the
    /// insurance fund pays what it holds of `a`; the lenders of `a` take the rest by a cut of
    /// the supply index, as far as the pool's cash allows; the fee account (the exchange's own
    /// money) pays what remains, and what even that cannot pay is recorded as the asset's
    /// `uncovered` loss. Each step is an event; the account owes nothing afterwards.
    pub(crate) fn write_off(&mut self, account: u32, a: u16, out: &mut EventBuf) {
        self.accrue(a);
        debug_assert_eq!(self.accounts.holding(account, a).available, 0, "written off only with nothing available");
        let id = u64::from(account) + 1;
        // Each step reads what is still owed (a partial repayment's rounding may leave a unit).
        let fund = self.fund_free(a).min(self.debt_of(account, a));
        if fund > 0 {
            self.adjust_insurance(a, -i128::from(fund));
            self.pay_debt_for(account, a, fund);
            out.push(Event::BadDebt { account: id, asset: a, amount: fund, paid_by: DebtPayer::Insurance });
        }
        self.socialize(account, a, out);
        self.fill_counterparties_pay(account, a, out);
        let fees = self.fees[usize::from(a)].min(self.debt_of(account, a));
        if fees > 0 {
            self.fees[usize::from(a)] -= fees;
            self.pay_debt_for(account, a, fees);
            out.push(Event::BadDebt { account: id, asset: a, amount: fees, paid_by: DebtPayer::Exchange });
        }
        let rest = self.debt_of(account, a);
        if rest > 0 {
            self.holders_pay(a, rest);
            self.pay_debt_for(account, a, rest);
            out.push(Event::BadDebt { account: id, asset: a, amount: rest, paid_by: DebtPayer::Holders });
        }
        self.sync_debtor(account);
    }

    /// The counterparties of the bankrupt account's perp fills in this tx (settled in `a`, in
    /// fill order) pay back what each fill's price credited them against the mark, up to the
    /// debt: that credit is where the money the account could not pay went (a fill that
    /// closed its last position at a price far from the mark). Each is a `settlement` of the
    /// counterparty in that market; one `bad_debt` with `"paid_by": "counterparties"`.
    fn fill_counterparties_pay(&mut self, account: u32, a: u16, out: &mut EventBuf) {
        let id = u64::from(account) + 1;
        let mut paid = 0u64;
        let mut i = 0;
        while i < out.events().len() && self.debt_of(account, a) > 0 {
            let event = out.events()[i];
            i += 1;
            let Event::Fill { market: m, price, qty, taker_side, maker, taker, .. } = event else { continue };
            let market = *self.catalog.market(m);
            if market.kind != crate::tx::MarketKind::Perp
                || market.quote != a
                || maker == taker
                || (maker != id && taker != id)
            {
                continue;
            }
            let buys = (taker == id) == (taker_side == crate::tx::Side::Buy);
            let other = if taker == id { maker } else { taker };
            let qty = i64::try_from(qty).unwrap_or_else(|_| panic!("invariant: qty {qty} bounded"));
            // The other side's gain from the fill's price against the mark.
            let delta = if buys { price - market.last_mark } else { market.last_mark - price };
            let gain = crate::perp::pnl(&market, qty, delta);
            let take = u64::try_from(gain.max(0)).unwrap_or(0).min(self.debt_of(account, a));
            let Some(counterparty) = other.checked_sub(1).and_then(|c| u32::try_from(c).ok()) else { continue };
            if take == 0 {
                continue;
            }
            out.push(Event::Settlement { market: m, account: other, pnl: -i64::try_from(take).unwrap_or(i64::MAX) });
            self.adjust(counterparty, a, -i128::from(take), out);
            self.touch(counterparty);
            self.pay_debt_for(account, a, take);
            paid += take;
        }
        if paid > 0 {
            out.push(Event::BadDebt { account: id, asset: a, amount: paid, paid_by: DebtPayer::Counterparties });
        }
    }

    /// Last resort for money owed that nobody lent and nobody else can pay (module docs,
    /// "Bankruptcy"): takes `amount` of asset `a` out of the accounts' `available`, pro rata
    /// (rounded down, then a unit each from the lowest account index until it is all taken),
    /// for the caller to pay out. The money exists: it is what the unfunded debt credited to
    /// others. O(accounts): a bankruptcy that nothing else covers, never the order path.
    /// Everyone with a requirement is evaluated afterwards.
    pub(crate) fn holders_pay(&mut self, a: u16, amount: u64) {
        let total: u128 = self.accounts.column(a).iter().map(|h| u128::from(h.available)).sum();
        let mut taken = 0u64;
        if total > 0 {
            for index in 0..self.accounts.column(a).len() {
                let h = self.accounts.holding_mut(u32::try_from(index).unwrap_or(u32::MAX), a);
                let share = (u128::from(amount) * u128::from(h.available)).checked_div(total).unwrap_or(0);
                let share = u64::try_from(share).unwrap_or(0).min(h.available).min(amount - taken);
                h.available -= share;
                taken += share;
            }
            for index in 0..self.accounts.column(a).len() {
                if taken == amount {
                    break;
                }
                let h = self.accounts.holding_mut(u32::try_from(index).unwrap_or(u32::MAX), a);
                if h.available > 0 {
                    h.available -= 1;
                    taken += 1;
                }
            }
        }
        debug_assert_eq!(taken, amount, "the accounts hold what an unfunded debt credited them");
        // What even the holders could not pay (unreachable: Σ available ≥ Σ unfunded debt).
        self.uncovered[usize::from(a)] += amount - taken;
        self.touch_all_holders();
        self.touch_all_debtors();
    }

    /// The lenders of `a` take a bankrupt account's remaining debt (a `socialized_loss`): all
    /// of its pool debt (their own loan, so the pool's cash is unchanged) and of its unfunded
    /// debt as much as the pool's cash allows, by cutting the supply index so that the pool's
    /// lent falls by at least that much (the rounding beyond it is the fee account's).
    fn socialize(&mut self, account: u32, a: u16, out: &mut EventBuf) {
        let pool = self.pools[usize::from(a)];
        let h = *self.accounts.holding(account, a);
        if pool.lent_principal == 0 || (h.borrowed == 0 && h.unfunded == 0) {
            return;
        }
        let pool_debt = pool.borrowed_of(h.borrowed);
        let mut after = pool;
        after.borrowed_principal -= u128::from(h.borrowed);
        // The pool debt leaves lent and borrowed alike; unfunded debt comes out of the cash,
        // less two units for the rounding of both cuts.
        let unfunded = h.unfunded.min(pool.cash().saturating_sub(2));
        let loss = pool_debt + unfunded;
        let lent = pool.lent();
        if loss == 0 || loss > lent {
            return;
        }
        after.supply_index =
            mul_div(u128::from(lent - loss), INDEX_ONE, pool.lent_principal, Round::Floor).unwrap_or(0);
        if after.lent() < after.borrowed() {
            // At utilization near 1 the cut's rounding would leave lent below borrowed: the
            // lenders lose a unit or two less.
            after.supply_index =
                mul_div(u128::from(after.borrowed()), INDEX_ONE, pool.lent_principal, Round::Ceil).unwrap_or(0);
        }
        after.unfunded -= unfunded;
        let (lent_fell, borrowed_fell) = (lent - after.lent(), pool.borrowed() - after.borrowed());
        self.pools[usize::from(a)] = after;
        let hm = self.accounts.holding_mut(account, a);
        hm.borrowed = 0;
        hm.unfunded -= unfunded;
        // What the cut's rounding took beyond the debt is the fee account's; what it fell short
        // of the debt by (a unit or two, see above) the exchange pays.
        self.exchange_pays(a, i128::from(lent_fell) - i128::from(borrowed_fell) - i128::from(unfunded));
        out.push(Event::BadDebt {
            account: u64::from(account) + 1,
            asset: a,
            amount: loss,
            paid_by: DebtPayer::Lenders,
        });
        // Every lender's equity fell: those with a requirement (a position or a debt) are
        // evaluated, as after an index move.
        self.touch_all_holders();
        self.touch_all_debtors();
    }

    /// Clears `amount` of an account's debt of `a` with money from outside the account.
    fn pay_debt_for(&mut self, account: u32, a: u16, amount: u64) {
        self.accounts.holding_mut(account, a).available += amount;
        let (pool, unfunded) = self.repay_debt(account, a, amount);
        debug_assert_eq!(pool + unfunded, amount, "a write-off within the debt");
    }

    /// Is the account a debtor (any pool or unfunded debt)?
    #[inline]
    pub(crate) fn is_debtor(&self, account: u32) -> bool {
        self.debtor_slot[account as usize] != NIL
    }

    /// Keeps `debtors` exact after an account's debts changed. O(assets).
    pub(crate) fn sync_debtor(&mut self, account: u32) {
        let owes = (0..u16::try_from(self.pools.len()).unwrap_or(u16::MAX)).any(|a| {
            let h = self.accounts.holding(account, a);
            h.borrowed != 0 || h.unfunded != 0
        });
        let slot = self.debtor_slot[account as usize];
        match (owes, slot == NIL) {
            (true, true) => {
                self.debtor_slot[account as usize] = u32::try_from(self.debtors.len()).unwrap_or(NIL);
                self.debtors.push(account);
            }
            (false, false) => {
                let last = self.debtors.len() - 1;
                self.debtors.swap_remove(slot as usize);
                if slot as usize != last {
                    let moved = self.debtors[slot as usize];
                    self.debtor_slot[moved as usize] = slot;
                }
                self.debtor_slot[account as usize] = NIL;
            }
            _ => {}
        }
    }

    /// Queues every debtor for an evaluation (an index price moved).
    pub(crate) fn touch_all_debtors(&mut self) {
        for i in 0..self.debtors.len() {
            let account = self.debtors[i];
            self.touch(account);
        }
    }

    /// Queues every debtor of asset `a`'s pool (interest reached the pool's watch index).
    fn touch_debtors_of(&mut self, a: u16) {
        for i in 0..self.debtors.len() {
            let account = self.debtors[i];
            if self.accounts.holding(account, a).borrowed != 0 {
                self.touch(account);
            }
        }
    }

    /// After an evaluation: lowers each of the account's debt pools' watch index to the borrow
    /// index at which interest alone could consume its share of the account's slack
    /// (slack split evenly over its debt assets, each debt at its borrow weight and
    /// maintenance fraction). Conservative: a watch index only falls until it is reached.
    pub(crate) fn refresh_watch(&mut self, account: u32, slack: i128) {
        let assets = u16::try_from(self.pools.len()).unwrap_or(u16::MAX);
        let debts = (0..assets).filter(|&a| self.accounts.holding(account, a).borrowed != 0).count();
        if debts == 0 {
            return;
        }
        let share = u128::try_from(slack.max(0)).unwrap_or(0) / debts as u128;
        for a in 0..assets {
            let h = *self.accounts.holding(account, a);
            if h.borrowed == 0 {
                continue;
            }
            let pool = self.pools[usize::from(a)];
            let weight = i128::from(self.catalog.asset(a).borrow_weight) + i128::from(BORROW_MMF);
            let value = self.units_value(a, i128::from(pool.borrowed_of(h.borrowed)));
            let at_risk =
                u128::try_from(div_round(value * weight, i128::from(RATIO_ONE), Round::Ceil)).unwrap_or(0).max(1);
            let threshold = pool
                .borrow_index
                .saturating_add(mul_div(pool.borrow_index, share, at_risk, Round::Floor).unwrap_or(u128::MAX));
            let watch = &mut self.pools[usize::from(a)].watch_index;
            *watch = (*watch).min(threshold);
        }
    }
}

/// `borrowed / lent > max` (exactly, no rounding); with nothing lent, any borrow is above.
fn utilization_above(borrowed: u64, lent: u64, max: i64) -> bool {
    if borrowed == 0 {
        return false;
    }
    u128::from(borrowed) * RATIO_ONE.unsigned_abs() as u128 > u128::from(lent) * u128::try_from(max).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_mul_div_matches_narrow() {
        let mut x = 0x9E37_79B9_7F4A_7C15_u128;
        for _ in 0..10_000 {
            x = x.wrapping_mul(0x5851_F42D_4C95_7F2D).wrapping_add(1_442_695_040_888_963_407);
            let a = x >> 70;
            let b = (x >> 3) & u128::from(u64::MAX);
            let d = (x & 0xFFFF_FFFF) + 1;
            let exact = mul_div(a, b, d, Round::Floor);
            let (hi, lo) = mul_wide(a, b);
            assert_eq!(div_wide(hi, lo, d).map(|(q, _)| q), exact);
        }
        // 2^100 × 2^100 / 2^90 = 2^110.
        assert_eq!(mul_div(1 << 100, 1 << 100, 1 << 90, Round::Floor), Some(1 << 110));
        assert_eq!(mul_div((1 << 100) + 1, 1 << 100, 1 << 101, Round::Ceil), Some((1 << 99) + 1));
        assert_eq!(mul_div(u128::MAX, u128::MAX, 1, Round::Floor), None);
    }

    /// The last resort takes exactly what is owed from the accounts' available, pro rata
    /// (rounded down, then a unit each from the lowest account index), and records nothing as
    /// uncovered.
    #[test]
    fn the_holders_pay_exactly_pro_rata() {
        let mut runner = crate::text::runner::TextRunner::dev(crate::Limits::small()).expect("limits");
        runner.run_line(r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#).expect("line");
        for (account, units) in [(1, "0.0001"), (2, "0.0002"), (3, "0.0004")] {
            runner.run_line(r#"{"op":"create_account"}"#).expect("line");
            let deposit = format!(r#"{{"op":"deposit","account":{account},"asset":"USDC","amount":"{units}"}}"#);
            runner.run_line(&deposit).expect("line");
        }
        let e = &mut runner.engine;
        // 10 units of 700: 1.43, 2.86 and 5.71, rounded down to 1, 2 and 5; the other two
        // from accounts 1 and 2.
        e.holders_pay(0, 10);
        let available = |e: &Engine, id| e.balance(id, 0).map(|b| b.available);
        assert_eq!((available(e, 1), available(e, 2), available(e, 3)), (Some(98), Some(197), Some(395)));
        assert_eq!(e.uncovered(0), 0);
        // The caller pays the 10 out (here to the fee account): conservation is exact.
        e.add_fees(0, 10);
        assert_eq!(e.check_invariants(), Ok(()));
    }

    fn holders(units: [&str; 3]) -> crate::text::runner::TextRunner {
        let mut runner = crate::text::runner::TextRunner::dev(crate::Limits::small()).expect("limits");
        runner.run_line(r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#).expect("line");
        for (account, units) in (1..).zip(units) {
            runner.run_line(r#"{"op":"create_account"}"#).expect("line");
            let deposit = format!(r#"{{"op":"deposit","account":{account},"asset":"USDC","amount":"{units}"}}"#);
            runner.run_line(&deposit).expect("line");
        }
        runner
    }

    #[test]
    fn the_holders_lend_pro_rata_rounded_up_and_keep_what_they_lent() {
        let mut runner = holders(["0.0001", "0.0002", "0.0004"]);
        let e = &mut runner.engine;
        let mut out = e.event_buf();
        // 10 units of 700: 1.43, 2.86 and 5.71, each rounded up: 2, 3 and 6 (11 in all).
        assert!(e.holders_lend(0, 10, &mut out));
        let held = |e: &Engine, id| e.balance(id, 0).map(|b| (b.available, b.lent));
        assert_eq!((held(e, 1), held(e, 2), held(e, 3)), (Some((98, 2)), Some((197, 3)), Some((394, 6))));
        let lends: Vec<_> = out.events().iter().filter(|ev| matches!(ev, Event::AutoLend { .. })).collect();
        assert_eq!(lends.len(), 3, "{:?}", out.events());
        assert_eq!(e.pool_state(0).map(|p| p.lent()), Some(11));
        assert_eq!(e.check_invariants(), Ok(()));
    }

    #[test]
    fn holders_holding_less_than_the_need_lend_everything() {
        let mut runner = holders(["0.0001", "0.0002", "0"]);
        let e = &mut runner.engine;
        let mut out = e.event_buf();
        assert!(e.holders_lend(0, 1_000, &mut out));
        let held = |e: &Engine, id| e.balance(id, 0).map(|b| (b.available, b.lent));
        assert_eq!((held(e, 1), held(e, 2), held(e, 3)), (Some((0, 100)), Some((0, 200)), Some((0, 0))));
        // Nothing left to lend: a second call lends nothing.
        assert!(!e.holders_lend(0, 1_000, &mut out));
    }
}
