//! Liquidating a debtor's collateral (SPEC 6a): the last steps of a liquidation.
//!
//! After `risk` has canceled the account's orders and closed its perp positions, an account
//! still below maintenance because of its debts has, per asset it owes (in asset order):
//! 1. its own funds of that asset used first: what it lent is set against what it owes (no
//!    cash needed: the pool's lent and borrowed fall together), the rest redeemed as far as
//!    the pool's cash allows, and its available repays the debt;
//! 2. its collateral (every other asset it holds, in asset order; what it lent is redeemed
//!    first) sold for the owed asset: on the spot book whose base is the collateral and quote
//!    the owed asset, with an IOC no worse than the index ratio less
//!    [`LIQUIDATION_SLIPPAGE`]; what the book does not take, the insurance fund takes over at
//!    the index price less [`LIQUIDATION_FEE`], as far as its balance of the owed asset pays;
//!    the proceeds repay the debt (an automatic repayment);
//! 3. each sale sized to repay the whole debt (plus the slippage bound), until the debt is
//!    repaid or the account is back above maintenance;
//!    what neither takes is then sold on the book at any price;
//! 4. collateral that finds no buyer at all (no bids, no fund money) stays with the account:
//!    the insurance fund takes collateral over only with money it has (step 2), never for
//!    nothing;
//! 5. an account still below maintenance after every sale (it holds nothing, or only what
//!    nobody buys) is bankrupt: each remaining debt is written off (`lending`): insurance
//!    fund, then the lenders (a socialized loss), then the counterparties of its perp fills
//!    in the tx (what the fills' prices credited them against the mark), then the fee
//!    account, then, for a debt nobody lent, the asset's holders. Never to nobody: no path
//!    pays out money that no one deposited (SPEC 6, 6a).
//!
//! **Unfunded debt first.** An account liquidated while it owes unfunded debt (an automatic
//! borrow the pool could not fund: money credited to someone else that nobody lent) has its
//! collateral sold for that asset (steps 1-3) *before* its positions are closed
//! ([`Engine::fund_unfunded`]), so that the bankruptcy prices of its positions see the
//! proceeds. What no sale turns into the asset does not count there (`risk`): the
//! counterparties of the closes reverse the unfunded debt instead.
//!
//! Each sale is a `collateral_sold` event (after the fills of a book sale); each write-off a
//! `bad_debt` or `socialized_loss` event.

use crate::engine::Engine;
use crate::events::{Event, EventBuf, LiquidationVia};
use crate::fixed::{pow10, Round, RATIO_ONE};
use crate::lending::{mul_div, ROUNDING_TRIES};
use crate::tx::MarketKind;

/// Worst price of a collateral sale on the book, below the index ratio: 5 %.
pub const LIQUIDATION_SLIPPAGE: i64 = RATIO_ONE / 20;

/// Discount to the index price at which the insurance fund takes collateral over: 2.5 %.
pub const LIQUIDATION_FEE: i64 = RATIO_ONE / 40;

impl Engine {
    /// The account's net balance of an asset: available + lent − debt (units).
    pub(crate) fn net_of(&self, account: u32, a: u16) -> i128 {
        i128::from(self.accounts.holding(account, a).available) + i128::from(self.lent_amount(account, a))
            - i128::from(self.debt_of(account, a))
    }

    /// The steps of the module docs: step 1 for every asset the account owes, then 2-5.
    pub(crate) fn liquidate_debts(&mut self, account: u32, out: &mut EventBuf) {
        let assets = u16::try_from(self.catalog.assets().len()).unwrap_or(u16::MAX);
        for d in 0..assets {
            if self.debt_of(account, d) > 0 {
                self.repay_from_own(account, d, out);
            }
        }
        for d in 0..assets {
            if self.debt_of(account, d) == 0 {
                continue;
            }
            for c in 0..assets {
                if self.debt_of(account, d) == 0 || !self.margin(account).is_liquidatable() {
                    break;
                }
                if c != d && self.net_of(account, c) > 0 {
                    self.sell_collateral(account, c, d, out);
                }
            }
        }
        if self.margin(account).is_liquidatable() || self.holds_nothing_but_debts(account) {
            // Bankrupt: nothing left that anyone buys (what nobody buys stays its own).
            for d in 0..assets {
                if self.debt_of(account, d) > 0 {
                    self.repay_from_own(account, d, out);
                    if self.debt_of(account, d) > 0 {
                        self.write_off(account, d, out);
                    }
                }
            }
        }
        self.sync_debtor(account);
    }

    /// Sells collateral for every asset the account owes unfunded debt in (module docs,
    /// "Unfunded debt first"): steps 1-3 for those assets only, before its positions close.
    pub(crate) fn fund_unfunded(&mut self, account: u32, out: &mut EventBuf) {
        let assets = u16::try_from(self.catalog.assets().len()).unwrap_or(u16::MAX);
        for d in 0..assets {
            if self.accounts.holding(account, d).unfunded == 0 {
                continue;
            }
            self.repay_from_own(account, d, out);
            for c in 0..assets {
                if self.accounts.holding(account, d).unfunded == 0 || !self.margin(account).is_liquidatable() {
                    break;
                }
                if c != d && self.net_of(account, c) > 0 {
                    self.sell_collateral(account, c, d, out);
                }
            }
        }
        self.sync_debtor(account);
    }

    /// Step 1: redeem the account's own lent of `d` (within the pool's cash), repay from
    /// available.
    fn repay_from_own(&mut self, account: u32, d: u16, out: &mut EventBuf) {
        let netted = self.net_own_lent(account, d);
        self.redeem_all(account, d);
        let pay = self.accounts.holding(account, d).available.min(self.debt_of(account, d));
        if pay > 0 {
            self.repay_debt(account, d, pay);
        }
        if netted + pay > 0 {
            out.push(Event::Repay { account: u64::from(account) + 1, asset: d, amount: netted + pay });
        }
    }

    /// Sets the account's own lent of `d` against its own pool debt of `d`: lent and borrowed
    /// fall together, so no cash is needed. Returns the amount set off.
    fn net_own_lent(&mut self, account: u32, d: u16) -> u64 {
        self.accrue(d);
        let pool = self.pools[usize::from(d)];
        let h = *self.accounts.holding(account, d);
        if h.lent == 0 || h.borrowed == 0 {
            return 0;
        }
        // Only the two roundings can take the pool's lent below its borrowed: a unit or two.
        let mut amount = self.lent_amount(account, d).min(pool.borrowed_of(h.borrowed));
        for _ in 0..ROUNDING_TRIES {
            let mut after = pool;
            after.lent_principal -= u128::from(pool.redeem_principal(h.lent, amount));
            after.borrowed_principal -= u128::from(pool.repay_principal(h.borrowed, amount));
            if amount == 0 || after.lent() >= after.borrowed() {
                break;
            }
            amount -= 1;
        }
        let mut after = pool;
        after.lent_principal -= u128::from(pool.redeem_principal(h.lent, amount));
        after.borrowed_principal -= u128::from(pool.repay_principal(h.borrowed, amount));
        if amount == 0 || after.lent() < after.borrowed() {
            return 0;
        }
        self.take_lent(account, d, amount, pool.redeem_principal(h.lent, amount));
        self.repay_pool(account, d, amount)
    }

    /// Redeems as much of the account's lent of `a` as the pool's cash allows (no cap:
    /// a liquidation is not a voluntary redeem), never leaving the pool's lent below its
    /// borrowed through rounding.
    fn redeem_all(&mut self, account: u32, a: u16) {
        self.accrue(a);
        let pool = self.pools[usize::from(a)];
        let principal = self.accounts.holding(account, a).lent;
        // Only the rounding of the principal can pass the cash: a unit or two.
        let mut amount = self.lent_amount(account, a).min(pool.cash());
        for _ in 0..ROUNDING_TRIES {
            let mut after = pool;
            after.lent_principal -= u128::from(pool.redeem_principal(principal, amount));
            if amount == 0 || after.lent() >= pool.borrowed() {
                break;
            }
            amount -= 1;
        }
        let mut after = pool;
        after.lent_principal -= u128::from(pool.redeem_principal(principal, amount));
        if amount > 0 && after.lent() >= pool.borrowed() {
            self.take_lent(account, a, amount, pool.redeem_principal(principal, amount));
        }
    }

    /// Step 2: sells collateral `c` for the owed asset `d`: on the book within the bound, to
    /// the fund, then on the book at any price, until the debt is repaid or the account is
    /// back above maintenance.
    fn sell_collateral(&mut self, account: u32, c: u16, d: u16, out: &mut EventBuf) {
        self.redeem_all(account, c);
        let needed = self.collateral_for(c, d, self.debt_of(account, d));
        let mut qty = needed.min(self.accounts.holding(account, c).available);
        let market = self.spot_market(c, d);
        if let Some(m) = market {
            qty = qty.saturating_sub(self.book_sale(account, m, self.sale_limit(m), qty, out));
        }
        if self.debt_of(account, d) == 0 || !self.margin(account).is_liquidatable() {
            return;
        }
        let qty = qty.min(self.accounts.holding(account, c).available);
        self.fund_takes_collateral(account, c, d, qty, out);
        if self.debt_of(account, d) == 0 || !self.margin(account).is_liquidatable() {
            return;
        }
        // Neither the book within the bound nor the fund took enough: the book at any price.
        if let Some(m) = market {
            let all = self.accounts.holding(account, c).available;
            self.book_sale(account, m, self.catalog.market(m).tick_units, all, out);
        }
    }

    /// Sells up to `qty` of the account's collateral (rounded up to whole lots, within what it
    /// holds) on spot market `m` no lower than `limit`; a `collateral_sold` event with what it
    /// fetched. Returns the quantity sold.
    fn book_sale(&mut self, account: u32, m: u16, limit: i64, qty: u64, out: &mut EventBuf) -> u64 {
        let market = *self.catalog.market(m);
        let lots = qty
            .div_ceil(market.step_units)
            .min(self.accounts.holding(account, market.base).available / market.step_units);
        if lots == 0 || limit <= 0 {
            return 0;
        }
        let before = self.net_of(account, market.quote);
        let sold = self.match_collateral_sale(account, m, limit, lots * market.step_units, out);
        if sold > 0 {
            out.push(Event::CollateralSold {
                account: u64::from(account) + 1,
                asset: market.base,
                qty: sold,
                debt_asset: market.quote,
                proceeds: u64::try_from(self.net_of(account, market.quote) - before).unwrap_or(0),
                via: LiquidationVia::Book,
            });
        }
        sold
    }

    /// The fund takes `qty` of collateral `c` (or as much as its balance of `d` pays for) at
    /// the index price less the liquidation fee.
    fn fund_takes_collateral(&mut self, account: u32, c: u16, d: u16, qty: u64, out: &mut EventBuf) {
        let fund = self.fund_free(d);
        let mut qty = qty;
        let mut pay = self.collateral_value(c, d, qty);
        if pay > fund {
            // As much as the fund pays for: qty × fund / pay, rounded down.
            qty = u64::try_from(u128::from(qty) * u128::from(fund) / u128::from(pay.max(1))).unwrap_or(0);
            pay = self.collateral_value(c, d, qty);
        }
        if qty == 0 || pay == 0 {
            return;
        }
        self.accounts.holding_mut(account, c).available -= qty;
        self.adjust_insurance(c, i128::from(qty));
        self.adjust_insurance(d, -i128::from(pay));
        self.touch_fund();
        self.adjust(account, d, i128::from(pay), out);
        out.push(Event::CollateralSold {
            account: u64::from(account) + 1,
            asset: c,
            qty,
            debt_asset: d,
            proceeds: pay,
            via: LiquidationVia::Insurance,
        });
    }

    /// The first spot market with base `c` and quote `d`.
    fn spot_market(&self, c: u16, d: u16) -> Option<u16> {
        self.catalog
            .markets()
            .iter()
            .position(|m| m.kind == MarketKind::Spot && m.base == c && m.quote == d)
            .and_then(|m| u16::try_from(m).ok())
    }

    /// The worst price of a book sale in market `m`: the index ratio less the slippage bound,
    /// rounded up to the tick (never worse than the bound); 0 if it is below one tick.
    fn sale_limit(&self, m: u16) -> i64 {
        let market = self.catalog.market(m);
        let (c, d) = (self.index_price(market.base), self.index_price(market.quote));
        let fair = mul_div(
            u128::try_from(c).unwrap_or(0),
            u128::try_from(pow10(market.price_decimals).unwrap_or(1)).unwrap_or(1),
            u128::try_from(d).unwrap_or(1),
            Round::Floor,
        )
        .unwrap_or(0);
        let bound = fair * u128::try_from(RATIO_ONE - LIQUIDATION_SLIPPAGE).unwrap_or(0)
            / u128::try_from(RATIO_ONE).unwrap_or(1);
        let tick = u128::try_from(market.tick_units).unwrap_or(1);
        let limit = bound.div_ceil(tick) * tick;
        i64::try_from(limit).ok().filter(|l| *l <= crate::limits::MAX_PRICE_UNITS).unwrap_or(0)
    }

    /// Collateral `c` (units) that repays `debt` of `d` at the slippage bound, rounded up.
    fn collateral_for(&self, c: u16, d: u16, debt: u64) -> u64 {
        let (pc, pd) = (self.index_price(c), self.index_price(d));
        let (dc, dd) = (u32::from(self.catalog.asset(c).decimals), u32::from(self.catalog.asset(d).decimals));
        let value = u128::from(debt) * u128::try_from(pd).unwrap_or(1);
        let whole = mul_div(
            value,
            u128::try_from(pow10(dc).unwrap_or(1)).unwrap_or(1),
            u128::try_from(pc).unwrap_or(1),
            Round::Ceil,
        );
        let bounded = whole.and_then(|w| {
            mul_div(
                w,
                RATIO_ONE.unsigned_abs().into(),
                (RATIO_ONE - LIQUIDATION_SLIPPAGE).unsigned_abs().into(),
                Round::Ceil,
            )
        });
        bounded
            .map(|b| b.div_ceil(u128::try_from(pow10(dd).unwrap_or(1)).unwrap_or(1)))
            .and_then(|q| u64::try_from(q).ok())
            .unwrap_or(u64::MAX)
    }

    /// What the fund pays in `d` for `qty` of `c`: the index value less the fee, rounded down.
    fn collateral_value(&self, c: u16, d: u16, qty: u64) -> u64 {
        let (pc, pd) = (self.index_price(c), self.index_price(d));
        let (dc, dd) = (u32::from(self.catalog.asset(c).decimals), u32::from(self.catalog.asset(d).decimals));
        let value = u128::from(qty) * u128::try_from(pc).unwrap_or(0);
        let in_d = mul_div(
            value,
            u128::try_from(pow10(dd).unwrap_or(1)).unwrap_or(1),
            u128::try_from(pd).unwrap_or(1),
            Round::Floor,
        )
        .unwrap_or(0)
            / u128::try_from(pow10(dc).unwrap_or(1)).unwrap_or(1);
        let net =
            in_d * u128::try_from(RATIO_ONE - LIQUIDATION_FEE).unwrap_or(0) / u128::try_from(RATIO_ONE).unwrap_or(1);
        u64::try_from(net).unwrap_or(0)
    }

    /// Nothing left to sell: no positive net balance, no position.
    fn holds_nothing_but_debts(&self, account: u32) -> bool {
        let assets = u16::try_from(self.catalog.assets().len()).unwrap_or(u16::MAX);
        (0..assets).all(|a| self.net_of(account, a) <= 0 && self.accounts.holding(account, a).locked == 0)
            && self.perp_markets.iter().all(|&m| self.positions[usize::from(m)].size[account as usize] == 0)
    }
}
