//! Cross margin and liquidation.
//!
//! **Valuation.** Equity = Σ over assets of the net balance (`available + lent − debt`, the
//! debt including unfunded debt; funds locked by spot orders are reserved for those orders
//! and not counted) × index price × collateral weight, debts × borrow weight. Values are
//! integers in `10^-8` of the valuation unit; an asset never marked by the oracle is valued at
//! 1 per whole unit. Requirements: Σ |position| × mark × IMF (initial) or MMF (maintenance),
//! plus for each net debt [`crate::lending::BORROW_IMF`] or [`crate::lending::BORROW_MMF`] of
//! its value. A perp order locks nothing: its worst case (initial margin and fee per lot) is
//! reserved in the settle asset and counts against equity as if spent (at the asset's
//! weight: for a settle asset of weight 1, exactly an addition to the initial requirement),
//! so any collateral backs it (SPEC 6); as a lock did, it also counts in the maintenance
//! check, and a liquidation cancels the orders first. Equity rounds down, requirements round
//! up.
//!
//! **Risk index.** Each position carries a band of mark prices inside which its holder cannot
//! fall below maintenance, whatever the other markets do: the holder's slack (equity −
//! maintenance) is split evenly over its positions, and each band is the price move that
//! could consume that share at the worst rate (borrow weight + MMF). A `mark` settles every
//! position of its market (O(positions in that market), constant work each) but evaluates
//! in full only the holders whose band it leaves. Bands are recomputed whenever an account
//! is evaluated. A change of an asset's index price re-evaluates every position holder.
//!
//! **Liquidation** (inside the tx that made the account fall below maintenance):
//! 1. cancel all its orders; stop if that restores maintenance;
//! 2. per perp position, in market order: compute the bankruptcy price (where closing it
//!    consumes all the account's equity, but never more than it can pay in the settle asset
//!    in this tx: its available there plus the pool's cash, or minus its unfunded debt if it
//!    has one; collateral that no sale turned into the settle asset does not count, so no
//!    close leaves it an unfunded debt, and one it had is paid back by the close; an account
//!    that owed unfunded debt had its collateral sold for it first, `collateral`); close
//!    against the book with an IOC limited to that price;
//! 3. the insurance fund takes over the rest at the bankruptcy price only when it is margined
//!    for it, counted exactly like an account: after the takeover's PnL, its balance of the
//!    settle asset is ≥ 0 and the weighted value of that balance covers the initial
//!    requirement (Σ |position| × mark × IMF) of all its positions in markets settled in that
//!    asset, the taken-over one included;
//! 4. otherwise the rest is auto-deleveraged against the largest opposite user positions
//!    (largest first, then lowest account id) at the bankruptcy price. Positions sum to zero,
//!    so what users do not hold the fund's opposite position does: that last leg is at the
//!    bankruptcy price if the fund is margined for it (the rule of step 3), else at the mark,
//!    and the account keeps what it could not pay as a debt. A counterparty holding no other
//!    position in the settle asset is never charged more than it can pay there (the leg's
//!    price moves towards the mark): no deleveraging leaves it a debt it could not recover;
//!    what a leg does not recover goes on the account's next position, or is written off.
//!
//! **The fund is an account here.** Every change of its balance or positions queues it in the
//! same pass; when its balance of a settle asset is negative or it is below maintenance there,
//! its positions settled in that asset are auto-deleveraged at its bankruptcy price, so it
//! ends every tx ≥ 0 in every asset (`insurance` module docs; events `adl` with
//! `"liquidated": 0`).
//!
//! **The pass.** Touched accounts (and the fund) are queued once at a time and evaluated in
//! order; one evaluated and then changed again in the same tx (an ADL counterparty, a maker
//! filled by a liquidation) is queued again, so nobody is left below maintenance. It ends: each
//! liquidation cancels the account's orders and closes its positions, each ADL leg shrinks
//! open interest.
//!
//! 5. an account still below maintenance with debts has its collateral sold for what it
//!    owes, and a bankrupt remainder written off (`collateral`, `lending`): by the fund, the
//!    lenders, the fee account and, for money nobody lent, the asset's holders; never by
//!    nobody (SPEC 6: no path pays out money that no one deposited).
//!
//! Every step is an event.

use crate::engine::Engine;
use crate::events::{Event, EventBuf, LiquidationVia};
use crate::fixed::{div_round, mul_ratio, pow10, scale_pow10, Round, RATIO_ONE};
use crate::insurance::FUND;
use crate::lending::{BORROW_IMF, BORROW_MMF};
use crate::tx::Side;

/// Value units per whole valuation unit (value has the index price's decimals).
pub const VALUE_ONE: i128 = 10i128.pow(crate::catalog::INDEX_PRICE_DECIMALS);

/// Value units subtracted from the slack before bands are computed: covers the rounding of
/// settlements (one unit each) and valuations.
const BAND_SAFETY_VALUE: i128 = 1_000;

/// An account's margin, in value units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Margin {
    /// Weighted value of its net balances.
    pub equity: i128,
    /// Initial requirement of its positions.
    pub initial: i128,
    /// Maintenance requirement of its positions.
    pub maintenance: i128,
    /// Number of open positions.
    pub positions: u32,
}

impl Margin {
    /// Below maintenance with something to maintain.
    #[must_use]
    pub fn is_liquidatable(&self) -> bool {
        self.maintenance > 0 && self.equity < self.maintenance
    }
}

impl Engine {
    /// Index price of an asset in `10^-8` value units per whole unit (1 if never marked).
    pub(crate) fn index_price(&self, asset: u16) -> i128 {
        match self.catalog.asset(asset).index_price {
            0 => VALUE_ONE,
            price => i128::from(price),
        }
    }

    /// Weighted value of a net balance of `asset` (collateral rounds down, debt rounds up).
    pub(crate) fn asset_value(&self, asset: u16, net: i128) -> i128 {
        if net == 0 {
            return 0;
        }
        let info = self.catalog.asset(asset);
        let decimals = i32::from(info.decimals);
        let raw = net * self.index_price(asset);
        // Value units have the index price's decimals, so value = net × price × 10^-decimals.
        let exp = -decimals;
        let value = if net > 0 {
            mul_ratio(raw, exp, info.collateral_weight, Round::Floor)
        } else {
            mul_ratio(raw, exp, info.borrow_weight, Round::Floor)
        };
        value.unwrap_or_else(|| panic!("invariant: value of {net} bounded"))
    }

    /// Value of a position's notional at the mark (rounded up). Always inlined: it is the inner
    /// step of every margin evaluation, and a call there costs ~45 instructions per position.
    #[inline(always)]
    pub(crate) fn position_value(&self, m: u16, size: i64) -> i128 {
        let market = self.catalog.market(m);
        let product = i128::from(size).abs() * i128::from(market.last_mark);
        let settle_units = scale_pow10(product, market.notional_exp, Round::Ceil).unwrap_or(i128::MAX / 4);
        let decimals = u32::from(self.catalog.asset(market.quote).decimals);
        div_round(settle_units * self.index_price(market.quote), pow10(decimals).unwrap_or(1), Round::Ceil)
    }

    /// The margin of an account, with `delta` added to its net balance of `asset` first
    /// (to evaluate a withdrawal, a borrow or a redeem before making it).
    pub(crate) fn margin_after(&self, account: u32, asset: u16, delta: i128) -> Margin {
        self.margin_with(account, asset, delta, 0)
    }

    /// The margin of an account with `change` added to what its perp orders reserve in
    /// `asset` (a new, amended or re-priced perp order).
    pub(crate) fn margin_reserving(&self, account: u32, asset: u16, change: i128) -> Margin {
        self.margin_with(account, asset, 0, change)
    }

    /// The margin (module docs): equity over every asset's net balance (available + lent −
    /// debt) less what perp orders reserve in it, the requirement of net debts (a borrow's
    /// initial and maintenance fractions of its value) and of positions.
    fn margin_with(&self, account: u32, asset: u16, delta: i128, reserve_change: i128) -> Margin {
        let mut margin = Margin::default();
        for a in 0..u16::try_from(self.catalog.assets().len()).unwrap_or(u16::MAX) {
            let h = self.accounts.holding(account, a);
            if h.lent | h.borrowed | h.unfunded | h.reserved == 0 && a != asset {
                // The common case: no pool position, no debt, no perp order in this asset.
                margin.equity += self.asset_value(a, i128::from(h.available));
                continue;
            }
            let mut net = i128::from(h.available) - i128::from(h.unfunded);
            let mut reserved = i128::from(h.reserved);
            if h.lent != 0 || h.borrowed != 0 {
                net += i128::from(self.lent_amount(account, a)) - i128::from(self.debt_of(account, a))
                    + i128::from(h.unfunded);
            }
            if a == asset {
                net += delta;
                reserved += reserve_change;
            }
            // What perp orders reserve counts against equity, as if spent (as a lock did):
            // at the settle asset's weight, without a division of its own.
            margin.equity += self.asset_value(a, net - reserved);
            if net < 0 {
                let debt = self.units_value(a, -net);
                margin.initial += div_round(debt * i128::from(BORROW_IMF), i128::from(RATIO_ONE), Round::Ceil);
                margin.maintenance += div_round(debt * i128::from(BORROW_MMF), i128::from(RATIO_ONE), Round::Ceil);
            }
        }
        for &m in &self.perp_markets {
            let size = self.positions[usize::from(m)].size[account as usize];
            if size == 0 {
                continue;
            }
            let market = self.catalog.market(m);
            let value = self.position_value(m, size);
            margin.initial += div_round(value * i128::from(market.imf), i128::from(RATIO_ONE), Round::Ceil);
            margin.maintenance += div_round(value * i128::from(market.mmf), i128::from(RATIO_ONE), Round::Ceil);
            margin.positions += 1;
        }
        margin
    }

    /// Unweighted value of `units` of an asset at its index price, rounded up.
    #[inline]
    pub(crate) fn units_value(&self, asset: u16, units: i128) -> i128 {
        let decimals = u32::from(self.catalog.asset(asset).decimals);
        div_round(units * self.index_price(asset), pow10(decimals).unwrap_or(1), Round::Ceil)
    }

    /// The margin of an account.
    pub(crate) fn margin(&self, account: u32) -> Margin {
        self.margin_after(account, 0, 0)
    }

    /// The margin of an account by id (for tools and tests).
    #[must_use]
    pub fn account_margin(&self, account: u64) -> Option<Margin> {
        self.accounts.index(account).map(|index| self.margin(index))
    }

    /// Marks an account for a margin evaluation at the end of the tx (queued once at a time).
    #[inline]
    pub(crate) fn touch(&mut self, account: u32) {
        let queued = &mut self.touched_seq[account as usize];
        if *queued != self.seq {
            *queued = self.seq;
            self.queue_touched(account);
        }
    }

    /// Appends to `touched`. When it is full, the entries `risk_pass` has evaluated are
    /// dropped first: each account and the fund is queued at most once at a time and
    /// `Engine::new` gives `touched` room for all of them, so it never grows. (A clone of the
    /// engine starts without spare capacity, like every scratch vector, and grows once.)
    pub(crate) fn queue_touched(&mut self, entry: u32) {
        if self.touched.len() == self.touched.capacity() && self.touched_head > 0 {
            self.touched.drain(..self.touched_head);
            self.touched_head = 0;
        }
        self.touched.push(entry);
    }

    /// Touches every account holding any perp position, and the fund if it holds one.
    pub(crate) fn touch_all_holders(&mut self) {
        for i in 0..self.perp_markets.len() {
            let m = usize::from(self.perp_markets[i]);
            for h in 0..self.positions[m].holders.len() {
                let account = self.positions[m].holders[h];
                self.touch(account);
            }
        }
        if self.fund_holds_positions() {
            self.touch_fund();
        }
    }

    /// Evaluates every touched account: liquidates those below maintenance, refreshes the
    /// bands of the others; and the fund, if queued. Liquidations may touch more accounts
    /// (counterparties, the fund) or the same ones again; they are evaluated in the same pass.
    pub(crate) fn risk_pass(&mut self, out: &mut EventBuf) {
        while self.touched_head < self.touched.len() {
            let entry = self.touched[self.touched_head];
            self.touched_head += 1;
            if entry == FUND {
                self.evaluate_fund(out);
                self.fund_touched_seq = 0;
                continue;
            }
            let margin = self.margin(entry);
            if margin.is_liquidatable() {
                self.liquidate(entry, out);
            }
            let margin = self.margin(entry);
            self.refresh_bands(entry, &margin);
            if self.is_debtor(entry) {
                self.refresh_watch(entry, margin.equity - margin.maintenance - BAND_SAFETY_VALUE);
            }
            // Evaluated: a change later in this tx queues it again.
            self.touched_seq[entry as usize] = 0;
        }
        self.touched.clear();
        self.touched_head = 0;
    }

    /// Recomputes the mark bands of an account's positions from its margin.
    fn refresh_bands(&mut self, account: u32, margin: &Margin) {
        if margin.positions == 0 {
            return;
        }
        let slack = (margin.equity - margin.maintenance - BAND_SAFETY_VALUE).max(0) / i128::from(margin.positions);
        for i in 0..self.perp_markets.len() {
            let m = self.perp_markets[i];
            let size = self.positions[usize::from(m)].size[account as usize];
            if size == 0 {
                continue;
            }
            let market = *self.catalog.market(m);
            let delta = self.band_width(&market, size, slack);
            let low = market.last_mark.saturating_sub(delta);
            let high = market.last_mark.saturating_add(delta);
            self.positions[usize::from(m)].set_band(account, low, high);
        }
    }

    /// The mark move (price units) that can cost a position of `size` at most `slack` value
    /// units of health, at the worst rate: (borrow weight + MMF) per unit of settle moved.
    /// 0 (evaluate on every move) when the arithmetic would overflow.
    fn band_width(&self, market: &crate::catalog::Market, size: i64, slack: i128) -> i64 {
        let settle = self.catalog.asset(market.quote);
        let rate = i128::from(settle.borrow_weight) + i128::from(market.mmf);
        // health lost per price unit = |size| × 10^e × index / 10^d × rate / ONE
        let per_unit =
            i128::from(size).abs().checked_mul(self.index_price(market.quote)).and_then(|v| v.checked_mul(rate));
        let Some(per_unit) = per_unit else { return 0 };
        let exp = market.notional_exp - i32::from(settle.decimals);
        // delta = slack × ONE / (per_unit × 10^exp)
        let numerator = slack.checked_mul(i128::from(RATIO_ONE));
        let result = match (numerator, exp >= 0) {
            (Some(num), true) => {
                per_unit.checked_mul(pow10(exp.unsigned_abs()).unwrap_or(i128::MAX)).map(|den| num / den.max(1))
            }
            (Some(num), false) => num.checked_mul(pow10(exp.unsigned_abs()).unwrap_or(0)).map(|n| n / per_unit.max(1)),
            (None, _) => None,
        };
        result.map_or(0, |d| i64::try_from(d).unwrap_or(i64::MAX))
    }

    /// Equity of an account in units of `asset` (rounded down).
    fn equity_in(&self, margin: &Margin, asset: u16) -> i128 {
        let decimals = u32::from(self.catalog.asset(asset).decimals);
        div_round(margin.equity * pow10(decimals).unwrap_or(1), self.index_price(asset), Round::Floor)
    }

    /// What an account can pay in settle asset `asset` in this tx without an unfunded debt,
    /// in units: with unfunded debt (money nobody lent, so its available is 0), minus that
    /// debt; otherwise its available plus the pool's cash (what an automatic borrow can fund:
    /// the lenders' money, backed by its collateral like any borrow). Collateral in other
    /// assets and lent funds the pool cannot return are not money in `asset` now.
    fn cash_in(&self, account: u32, asset: u16) -> i128 {
        let h = self.accounts.holding(account, asset);
        if h.unfunded > 0 {
            return -i128::from(h.unfunded);
        }
        i128::from(h.available) + i128::from(self.pools[usize::from(asset)].cash())
    }

    /// The equity a liquidation's bankruptcy prices consume (module docs, step 2): the
    /// account's equity in `asset`, but never more than what it can pay in `asset`
    /// ([`Engine::cash_in`]), so that a close at the bankruptcy price never leaves it an
    /// unfunded debt: what it cannot pay in the settle asset, the counterparties of the close
    /// (or the fund) pay back by the price, and the unconvertible collateral stays its own.
    fn liquidation_equity(&self, account: u32, asset: u16) -> i128 {
        self.equity_in(&self.margin(account), asset).min(self.cash_in(account, asset))
    }

    /// Does the account owe unfunded debt in any asset?
    fn owes_unfunded(&self, account: u32) -> bool {
        (0..u16::try_from(self.catalog.assets().len()).unwrap_or(u16::MAX))
            .any(|a| self.accounts.holding(account, a).unfunded > 0)
    }

    /// The price at which closing `size` in market `m` consumes `equity_settle` exactly, at
    /// least one tick. Rounded towards the liquidated account by less than one price unit,
    /// so that rounding never leaves it a debt (the one division here that does not favour
    /// the exchange: the difference is below a price unit times the position).
    pub(crate) fn bankruptcy_price(&self, m: u16, size: i64, equity_settle: i128) -> i64 {
        let market = self.catalog.market(m);
        // pnl of closing at p = -size × (p - mark) × 10^e = -equity  ⇒  p = mark - equity / (size × 10^e)
        let denominator = i128::from(size);
        let shift = scale_pow10(equity_settle, -market.notional_exp, Round::Floor).unwrap_or(0);
        let round = if size > 0 { Round::Floor } else { Round::Ceil };
        let offset = div_round(shift * denominator.signum(), denominator.abs(), round);
        let price = i128::from(market.last_mark) - offset;
        i64::try_from(price.clamp(i128::from(market.tick_units), i128::from(crate::limits::MAX_PRICE_UNITS)))
            .unwrap_or(market.tick_units)
    }

    /// Liquidates an account below maintenance (see the module docs).
    fn liquidate(&mut self, account: u32, out: &mut EventBuf) {
        self.cancel_all_orders(account, out);
        if !self.margin(account).is_liquidatable() {
            return;
        }
        if self.is_debtor(account) && self.owes_unfunded(account) {
            self.fund_unfunded(account, out);
            if !self.margin(account).is_liquidatable() {
                return;
            }
        }
        for i in 0..self.perp_markets.len() {
            let m = self.perp_markets[i];
            let size = self.positions[usize::from(m)].size[account as usize];
            if size == 0 {
                continue;
            }
            self.close_position(account, m, out);
        }
        if self.is_debtor(account) && self.margin(account).is_liquidatable() {
            self.liquidate_debts(account, out);
        }
    }

    /// Cancels every resting order of the account (reason `liquidation`).
    fn cancel_all_orders(&mut self, account: u32, out: &mut EventBuf) {
        let mut slot = self.accounts.get(account).first_order;
        while slot != crate::accounts::NIL {
            let next = self.orders.get(slot).account_next;
            let (order, level_total) = self.retire(slot);
            Self::emit_canceled(out, &order, crate::events::CancelReason::Liquidation, level_total);
            slot = next;
        }
    }

    /// Closes one position: book, then insurance fund, then ADL, all at or inside the
    /// bankruptcy price.
    fn close_position(&mut self, account: u32, m: u16, out: &mut EventBuf) {
        let market = *self.catalog.market(m);
        let size = self.positions[usize::from(m)].size[account as usize];
        let equity = self.liquidation_equity(account, market.quote);
        let bankruptcy = self.bankruptcy_price(m, size, equity);
        let side = if size > 0 { Side::Sell } else { Side::Buy };
        if equity >= 0 {
            let before = size.unsigned_abs();
            let (filled, last_price) = self.liquidation_taker(account, m, side, bankruptcy, before, out);
            if filled > 0 {
                out.push(Event::Liquidation {
                    account: u64::from(account) + 1,
                    market: m,
                    qty: filled,
                    price: last_price,
                    via: LiquidationVia::Book,
                });
            }
        }
        let size = self.positions[usize::from(m)].size[account as usize];
        if size == 0 {
            return;
        }
        let equity = self.liquidation_equity(account, market.quote);
        let bankruptcy = self.bankruptcy_price(m, size, equity);
        let qty = size.unsigned_abs();
        // The fund's result of taking the position over at the bankruptcy price; it takes it
        // only if it is margined for it afterwards (module docs, step 3).
        let fund_pnl = crate::perp::pnl(&market, size, market.last_mark - bankruptcy);
        if self.fund_can_take(m, size, fund_pnl) {
            let (buyer, seller) = if size > 0 { (None, Some(account)) } else { (Some(account), None) };
            self.transfer_position(m, buyer, seller, qty, bankruptcy, out);
            out.push(Event::Liquidation {
                account: u64::from(account) + 1,
                market: m,
                qty,
                price: bankruptcy,
                via: LiquidationVia::Insurance,
            });
            return;
        }
        self.auto_deleverage(account, m, bankruptcy, out);
    }

    /// Sends an IOC for the liquidated account limited to the bankruptcy price; returns the
    /// quantity filled and the last fill price.
    fn liquidation_taker(
        &mut self,
        account: u32,
        m: u16,
        side: Side,
        limit: i64,
        qty: u64,
        out: &mut EventBuf,
    ) -> (u64, i64) {
        let first_event = out.events().len();
        let filled = self.match_liquidation(account, m, side, limit, qty, out);
        let last_price = out.events()[first_event..]
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Fill { price, .. } => Some(*price),
                _ => None,
            })
            .unwrap_or(limit);
        (filled, last_price)
    }

    /// Fills `adl_scratch` with the user positions in `m` opposite to `size` (but `exclude`'s),
    /// as (size, account index): largest first, then lowest account index, deterministic.
    pub(crate) fn collect_adl_candidates(&mut self, m: u16, size: i64, exclude: Option<u32>) {
        self.adl_scratch.clear();
        for i in 0..self.positions[usize::from(m)].holders.len() {
            let holder = self.positions[usize::from(m)].holders[i];
            let other = self.positions[usize::from(m)].size[holder as usize];
            if Some(holder) != exclude && other.signum() == -size.signum() {
                self.adl_scratch.push((other.unsigned_abs(), holder));
            }
        }
        self.adl_scratch.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    }

    /// The price of one ADL leg of `qty` against `counterparty`, closing (part of) a position
    /// of sign `size` at `price`. A counterparty that holds no other position settled in the
    /// same asset could not recover a debt the leg leaves it (its own liquidation would have
    /// nothing to deleverage), so the leg never costs it more than it can pay there (its
    /// [`Engine::liquidation_equity`], at least 0): the price moves towards the mark. One
    /// with other positions pays the full price; a debt it is left with is recovered by its own
    /// liquidation in the same pass. What a leg does not recover stays with the liquidated
    /// account, for its next position or its write-off.
    fn adl_leg_price(&self, m: u16, size: i64, qty: u64, price: i64, counterparty: u32) -> i64 {
        let market = self.catalog.market(m);
        let costs = if size > 0 { price > market.last_mark } else { price < market.last_mark };
        if !costs || self.holds_other_position(counterparty, m) {
            return price;
        }
        let can_pay = self.liquidation_equity(counterparty, market.quote).max(0);
        let qty = i64::try_from(qty).unwrap_or_else(|_| panic!("invariant: qty {qty} bounded"));
        // The counterparty closes `qty` of the opposite sign: its own bankruptcy price for `can_pay`.
        let limit = self.bankruptcy_price(m, -size.signum() * qty, can_pay);
        if size > 0 {
            price.min(limit)
        } else {
            price.max(limit)
        }
    }

    /// Does the account hold a position in a perp market other than `m` settled in `m`'s
    /// settle asset?
    fn holds_other_position(&self, account: u32, m: u16) -> bool {
        let quote = self.catalog.market(m).quote;
        self.perp_markets.iter().any(|&other| {
            other != m
                && self.catalog.market(other).quote == quote
                && self.positions[usize::from(other)].size[account as usize] != 0
        })
    }

    /// Auto-deleverages the account's position in `m` against the largest opposite positions.
    fn auto_deleverage(&mut self, account: u32, m: u16, price: i64, out: &mut EventBuf) {
        let size = self.positions[usize::from(m)].size[account as usize];
        self.collect_adl_candidates(m, size, Some(account));
        let mut remaining = size.unsigned_abs();
        for i in 0..self.adl_scratch.len() {
            if remaining == 0 {
                break;
            }
            let (available, counterparty) = self.adl_scratch[i];
            let qty = remaining.min(available);
            let (buyer, seller) = if size > 0 { (counterparty, account) } else { (account, counterparty) };
            let price = self.adl_leg_price(m, size, qty, price, counterparty);
            self.transfer_position(m, Some(buyer), Some(seller), qty, price, out);
            out.push(Event::Adl {
                account: u64::from(counterparty) + 1,
                liquidated: u64::from(account) + 1,
                market: m,
                qty,
                price,
            });
            self.touch(counterparty);
            remaining -= qty;
        }
        // Positions sum to zero with the insurance fund's: what users do not cover, the fund's
        // opposite position does (the fund is deleveraged last), at the bankruptcy price only
        // if it is margined for that, else at the mark (the account keeps its deficit).
        let fund = self.positions[usize::from(m)].insurance;
        if remaining > 0 && fund.signum() == -size.signum() {
            let qty = remaining.min(fund.unsigned_abs());
            let market = *self.catalog.market(m);
            // The fund takes `qty` of the account's side: its position moves towards zero.
            let delta = i64::try_from(qty).unwrap_or_else(|_| panic!("invariant: qty {qty} bounded")) * size.signum();
            let pnl = crate::perp::pnl(&market, delta, market.last_mark - price);
            let price = if self.fund_can_take(m, delta, pnl) { price } else { market.last_mark };
            let (buyer, seller) = if size > 0 { (None, Some(account)) } else { (Some(account), None) };
            self.transfer_position(m, buyer, seller, qty, price, out);
            out.push(Event::Liquidation {
                account: u64::from(account) + 1,
                market: m,
                qty,
                price,
                via: LiquidationVia::Adl,
            });
            remaining -= qty;
        }
        debug_assert_eq!(remaining, 0, "positions sum to zero, so the opposite side covers any position");
    }
}
