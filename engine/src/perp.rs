//! Perpetual futures: positions, settlement to the mark, funding, and the money of a perp fill.
//!
//! Every position is always settled to its market's last mark: a `mark` moves each holder's
//! `size × (mark − last_mark)` into its settle-asset balance at once, and a fill at price `p`
//! realises `qty × (mark − p)` between the two sides at once. Unrealised PnL is therefore
//! always zero and open PnL is physical money (SPEC section 6). Every division rounds down
//! (in the exchange's favour for both signs) and the remainder goes to the fee account, so
//! conservation stays exact. Positions of a market sum to zero, the insurance fund's included.
//! The fund is settled like any holder; every change of its balance or positions queues it
//! for a margin evaluation at the end of the tx (`insurance`).

use crate::accounts::NIL;
use crate::catalog::Market;
use crate::engine::Engine;
use crate::events::{Event, EventBuf};
use crate::fixed::{mul_ratio, scale_pow10, Round};

/// The positions of one perp market.
#[derive(Clone, Debug, Default)]
pub(crate) struct Positions {
    /// Signed size per account index, base units.
    pub size: Vec<i64>,
    /// Per account index: its index in `holders`, or `NIL`.
    slot: Vec<u32>,
    /// Accounts with a non-zero size, in no particular (but deterministic) order.
    pub holders: Vec<u32>,
    /// Per holder (parallel to `holders`): the mark band inside which the holder cannot fall
    /// below maintenance through this market's moves (see `risk`).
    pub band_low: Vec<i64>,
    /// Upper edge of the band.
    pub band_high: Vec<i64>,
    /// The insurance fund's position (taken over in liquidations).
    pub insurance: i64,
}

impl Positions {
    /// Columns for `accounts` existing accounts, reserved for `max_accounts`.
    pub(crate) fn new(accounts: usize, max_accounts: usize) -> Self {
        let mut p = Self {
            size: Vec::with_capacity(max_accounts),
            slot: Vec::with_capacity(max_accounts),
            holders: Vec::with_capacity(max_accounts),
            band_low: Vec::with_capacity(max_accounts),
            band_high: Vec::with_capacity(max_accounts),
            insurance: 0,
        };
        p.size.resize(accounts, 0);
        p.slot.resize(accounts, NIL);
        p
    }

    /// A new account (no position).
    pub(crate) fn push_account(&mut self) {
        self.size.push(0);
        self.slot.push(NIL);
    }

    /// Sets an account's size, keeping the holder list exact.
    pub(crate) fn set(&mut self, account: u32, size: i64) {
        let a = account as usize;
        self.size[a] = size;
        let slot = self.slot[a];
        match (slot == NIL, size == 0) {
            (true, false) => {
                self.slot[a] = u32::try_from(self.holders.len()).unwrap_or(NIL);
                self.holders.push(account);
                // A new holder is evaluated at once: an empty band.
                self.band_low.push(i64::MAX);
                self.band_high.push(i64::MIN);
            }
            (false, true) => {
                let at = slot as usize;
                let last = self.holders.len() - 1;
                self.holders.swap_remove(at);
                self.band_low.swap_remove(at);
                self.band_high.swap_remove(at);
                if at != last {
                    let moved = self.holders[at];
                    self.slot[moved as usize] = slot;
                }
                self.slot[a] = NIL;
            }
            _ => {}
        }
    }

    /// The band of an account that holds a position.
    pub(crate) fn set_band(&mut self, account: u32, low: i64, high: i64) {
        let slot = self.slot[account as usize];
        if slot != NIL {
            self.band_low[slot as usize] = low;
            self.band_high[slot as usize] = high;
        }
    }
}

/// `floor(size × price_delta × 10^notional_exp)`: PnL in settle units, rounded down.
pub(crate) fn pnl(market: &Market, size: i64, price_delta: i64) -> i128 {
    let product = i128::from(size) * i128::from(price_delta);
    scale_pow10(product, market.notional_exp, Round::Floor)
        .unwrap_or_else(|| panic!("invariant: pnl {product} bounded"))
}

impl Engine {
    /// Adds `delta` (signed) to an account's balance in `asset`: a credit first pays down its
    /// debt, a debit beyond `available` borrows the shortfall from the asset's lending pool
    /// (SPEC sections 6 and 6a; `lending`), each an event.
    #[inline]
    pub(crate) fn adjust(&mut self, account: u32, asset: u16, delta: i128, out: &mut EventBuf) {
        let b = self.accounts.holding_mut(account, asset);
        if b.borrowed == 0 && b.unfunded == 0 {
            // The common case (a credit, or a debit within available) in 64-bit arithmetic.
            if let Ok(credit) = u64::try_from(delta) {
                b.available += credit;
                return;
            }
            if let Ok(debit) = u64::try_from(-delta) {
                if debit <= b.available {
                    b.available -= debit;
                    return;
                }
            }
        }
        self.adjust_debt_path(account, asset, delta, out);
    }

    /// The slow path of [`Engine::adjust`] (the account owes, or the debit is beyond its
    /// available): kept out of line so the common path stays a few instructions.
    #[cold]
    #[inline(never)]
    fn adjust_debt_path(&mut self, account: u32, asset: u16, delta: i128, out: &mut EventBuf) {
        self.adjust_with_debt(account, asset, delta, out);
        self.sync_debtor(account);
        self.touch(account);
    }

    /// Adds `delta` to the insurance fund of `asset`. It may dip below zero inside a tx (a
    /// mark, funding); the fund is then queued and deleveraged before the tx ends.
    pub(crate) fn adjust_insurance(&mut self, asset: u16, delta: i128) {
        let fund = &mut self.insurance[usize::from(asset)];
        *fund = i64::try_from(i128::from(*fund) + delta).unwrap_or_else(|_| panic!("invariant: insurance bounded"));
    }

    /// Adds a non-negative rounding remainder to the fee account of `asset`.
    pub(crate) fn add_fees(&mut self, asset: u16, amount: i128) {
        debug_assert!(amount >= 0, "rounding remainders favour the exchange");
        let fees = &mut self.fees[usize::from(asset)];
        *fees = u64::try_from(i128::from(*fees) + amount).unwrap_or_else(|_| panic!("invariant: fees bounded"));
    }

    /// Moves market `m` to a new mark: settles every holder and the insurance fund to it.
    /// Returns nothing; liquidation checks are the caller's (see `risk`).
    pub(crate) fn settle_mark(&mut self, m: u16, new_mark: i64, out: &mut EventBuf) {
        let market = *self.catalog.market(m);
        let old_mark = market.last_mark;
        self.catalog.market_mut(m).last_mark = new_mark;
        let delta = new_mark - old_mark;
        if old_mark == 0 || delta == 0 {
            return;
        }
        let mut total = 0i128;
        let holders = self.positions[usize::from(m)].holders.len();
        for i in 0..holders {
            let account = self.positions[usize::from(m)].holders[i];
            let size = self.positions[usize::from(m)].size[account as usize];
            let amount = pnl(&market, size, delta);
            total += amount;
            if amount != 0 {
                out.push(Event::Settlement { market: m, account: u64::from(account) + 1, pnl: clamp_i64(amount) });
                self.adjust(account, market.quote, amount, out);
            }
        }
        let insurance_size = self.positions[usize::from(m)].insurance;
        if insurance_size != 0 {
            let insurance_pnl = pnl(&market, insurance_size, delta);
            total += insurance_pnl;
            self.adjust_insurance(market.quote, insurance_pnl);
            self.touch_fund();
        }
        self.add_fees(market.quote, -total);
    }

    /// `funding`: every position pays `size × mark × rate` (longs pay shorts when the rate is
    /// positive), each payment rounded down, the remainder to the fee account.
    pub(crate) fn apply_funding(&mut self, m: u16, rate: i64, out: &mut EventBuf) {
        let market = *self.catalog.market(m);
        let mut total = 0i128;
        let holders = self.positions[usize::from(m)].holders.len();
        for i in 0..holders {
            let account = self.positions[usize::from(m)].holders[i];
            let size = self.positions[usize::from(m)].size[account as usize];
            let amount = funding_payment(&market, size, rate);
            total += amount;
            if amount != 0 {
                out.push(Event::Funding { market: m, account: u64::from(account) + 1, amount: clamp_i64(amount) });
                self.adjust(account, market.quote, amount, out);
            }
        }
        let insurance_size = self.positions[usize::from(m)].insurance;
        if insurance_size != 0 {
            let insurance_amount = funding_payment(&market, insurance_size, rate);
            total += insurance_amount;
            self.adjust_insurance(market.quote, insurance_amount);
            self.touch_fund();
        }
        self.add_fees(market.quote, -total);
    }

    /// Moves `qty` of position from `seller` to `buyer` at `price` in perp market `m`, and
    /// realises the difference to the mark for both (rounded down each, remainder to fees).
    /// `None` for an account is the insurance fund. Returns (buyer pnl, seller pnl).
    pub(crate) fn transfer_position(
        &mut self,
        m: u16,
        buyer: Option<u32>,
        seller: Option<u32>,
        qty: u64,
        price: i64,
        out: &mut EventBuf,
    ) -> (i128, i128) {
        let market = *self.catalog.market(m);
        let qty_signed = i64::try_from(qty).unwrap_or_else(|_| panic!("invariant: qty bounded"));
        let buyer_pnl = pnl(&market, qty_signed, market.last_mark - price);
        let seller_pnl = pnl(&market, qty_signed, price - market.last_mark);
        for (who, delta, amount) in [(buyer, qty_signed, buyer_pnl), (seller, -qty_signed, seller_pnl)] {
            match who {
                Some(account) => {
                    let positions = &mut self.positions[usize::from(m)];
                    let new_size = positions.size[account as usize] + delta;
                    positions.set(account, new_size);
                    if amount != 0 {
                        out.push(Event::Settlement {
                            market: m,
                            account: u64::from(account) + 1,
                            pnl: clamp_i64(amount),
                        });
                        self.adjust(account, market.quote, amount, out);
                    }
                }
                None => {
                    self.positions[usize::from(m)].insurance += delta;
                    self.adjust_insurance(market.quote, amount);
                    self.touch_fund();
                }
            }
        }
        self.add_fees(market.quote, -(buyer_pnl + seller_pnl));
        (buyer_pnl, seller_pnl)
    }

    /// The signed position of an account in a market (0 for spot markets).
    #[must_use]
    pub fn position(&self, account: u64, market: u16) -> i64 {
        let Some(index) = self.accounts.index(account) else { return 0 };
        self.positions.get(usize::from(market)).and_then(|p| p.size.get(index as usize)).copied().unwrap_or(0)
    }

    /// The insurance fund's position in a market.
    #[must_use]
    pub fn insurance_position(&self, market: u16) -> i64 {
        self.positions.get(usize::from(market)).map_or(0, |p| p.insurance)
    }
}

/// What a position of `size` receives (negative: pays) for a funding `rate` at the mark.
fn funding_payment(market: &Market, size: i64, rate: i64) -> i128 {
    let product = i128::from(size) * i128::from(market.last_mark);
    -mul_ratio(product, market.notional_exp, rate, Round::Ceil).unwrap_or_else(|| panic!("invariant: funding bounded"))
}

/// Event amounts are `i64`; settlement amounts are bounded by supply and prices far below it.
fn clamp_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}
