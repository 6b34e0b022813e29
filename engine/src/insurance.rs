//! The insurance fund: real money, margined like an account, never negative (SPEC 6).
//!
//! The fund holds a balance per asset (`Engine::insurance`, fed by deposits to account 0 and
//! by the bankruptcy prices of the positions it takes over) and a position per perp market
//! (`Positions::insurance`). It is counted like an account, one settle asset at a time: its
//! equity in asset `a` is the weighted value of its balance of `a` (collateral weight, or
//! borrow weight if negative, at the index price), its initial and maintenance requirements
//! are Σ |position| × mark × IMF or MMF over the perp markets settled in `a`, rounded up.
//! What the fund holds of other assets never backs a position settled in `a`.
//!
//! **Takeover only with margin.** The fund takes over (part of) a liquidated position at the
//! bankruptcy price only if afterwards, with that takeover's PnL and the position added, its
//! balance of the settle asset is ≥ 0 and its equity covers the initial requirement of all
//! its positions settled in that asset (`Engine::fund_can_take`). Otherwise the rest is
//! auto-deleveraged against opposite positions (`risk`).
//!
//! **Marked and margined like an account.** Every change of the fund's balance or positions
//! (a mark or funding of a market it holds, an index move, a takeover or ADL leg) queues it
//! for evaluation at the end of the tx, in the same `risk_pass` loop as accounts. In every
//! settle asset where its balance is negative or its equity is below maintenance, each of its
//! positions settled there (in market order) is auto-deleveraged in full against the largest
//! opposite user positions (largest first, then lowest account id) at the fund's bankruptcy
//! price: the price at which closing it brings the fund's balance back to exactly zero
//! (rounded in the fund's favour) when the balance is negative, or the mark when it is not
//! (the fund never hands its own money to the counterparties of its deleveraging). Each leg
//! is a settlement for the counterparty and an `adl` event with `"liquidated": 0` (0 is the
//! fund, as in `deposit`). Counterparties are touched and evaluated in the same pass.
//!
//! **Residual.** A bankruptcy price is at least one tick. Were the fund still short of money
//! after its last position in an asset is closed, the counterparty of that last deleveraging
//! (the largest) pays the rest, as a `settlement` in that market: it is what the tick clamp
//! saved it. A mark cannot cause that (a short's loss on one move is below its notional less a
//! tick); in practice only a funding rate near 100% on a mark below tick / MMF can (20 ticks
//! for BTC-PERP), since the fund holds at least its maintenance between txs. Were the fund
//! short with no position left in that asset (an account's liquidation closed the fund's
//! opposite position at the mark after a settlement had taken it below zero), the exchange
//! pays the rest: the fee account, then the asset's holders pro rata (`bad_debt` events with
//! `"account": 0`, `"paid_by": "holders"`, as for a debt nobody lent: `lending`), never
//! nobody. So the fund ends every tx ≥ 0 in every asset.

use crate::engine::Engine;
use crate::events::{DebtPayer, Event, EventBuf};
use crate::fixed::{div_round, Round, RATIO_ONE};
use crate::risk::Margin;

/// The entry of `Engine::touched` that stands for the insurance fund (no account has this
/// index: account indexes are below `Limits::max_accounts`).
pub(crate) const FUND: u32 = u32::MAX;

/// Account id of the insurance fund in events (`deposit`, `adl`'s `liquidated`).
pub const FUND_ACCOUNT_ID: u64 = 0;

/// A prospective change of the fund: `size_delta` added to its position in `market`,
/// `pnl` to its balance of that market's settle asset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FundChange {
    pub market: u16,
    pub size_delta: i64,
    pub pnl: i128,
}

impl Engine {
    /// Queues the fund for evaluation at the end of the tx (once at a time, like `touch`).
    pub(crate) fn touch_fund(&mut self) {
        if self.fund_touched_seq != self.seq {
            self.fund_touched_seq = self.seq;
            self.queue_touched(FUND);
        }
    }

    /// True if the fund holds a position in any perp market.
    pub(crate) fn fund_holds_positions(&self) -> bool {
        self.perp_markets.iter().any(|&m| self.positions[usize::from(m)].insurance != 0)
    }

    /// The fund's margin in settle asset `asset` (see the module docs), with `change` applied
    /// first; and its balance of `asset` (settle units) after it.
    pub(crate) fn fund_margin(&self, asset: u16, change: Option<FundChange>) -> (Margin, i128) {
        let mut balance = i128::from(self.insurance[usize::from(asset)]);
        if let Some(change) = change {
            balance += change.pnl;
        }
        let mut margin = Margin { equity: self.asset_value(asset, balance), ..Margin::default() };
        for &m in &self.perp_markets {
            let market = self.catalog.market(m);
            if market.quote != asset {
                continue;
            }
            let mut size = self.positions[usize::from(m)].insurance;
            if let Some(change) = change.filter(|c| c.market == m) {
                size += change.size_delta;
            }
            if size == 0 {
                continue;
            }
            let value = self.position_value(m, size);
            margin.initial += div_round(value * i128::from(market.imf), i128::from(RATIO_ONE), Round::Ceil);
            margin.maintenance += div_round(value * i128::from(market.mmf), i128::from(RATIO_ONE), Round::Ceil);
            margin.positions += 1;
        }
        (margin, balance)
    }

    /// The takeover rule: may the fund add `size_delta` to its position in market `m` with
    /// `pnl` (at the takeover price) added to its balance? Only if its balance stays ≥ 0 and
    /// its equity covers the initial requirement of all its positions in that settle asset.
    pub(crate) fn fund_can_take(&self, m: u16, size_delta: i64, pnl: i128) -> bool {
        let asset = self.catalog.market(m).quote;
        let (margin, balance) = self.fund_margin(asset, Some(FundChange { market: m, size_delta, pnl }));
        balance >= 0 && margin.equity >= margin.initial
    }

    /// What the fund can pay out of asset `asset` and stay margined: its balance less the
    /// initial requirement of its positions settled there (in units, rounded down, ≥ 0). Bad
    /// debts and collateral takeovers (`lending`, `collateral`) draw only on this.
    pub(crate) fn fund_free(&self, asset: u16) -> u64 {
        let (margin, balance) = self.fund_margin(asset, None);
        let decimals = u32::from(self.catalog.asset(asset).decimals);
        let spare = div_round(
            (margin.equity - margin.initial).max(0) * crate::fixed::pow10(decimals).unwrap_or(1),
            self.index_price(asset),
            Round::Floor,
        );
        u64::try_from(spare.min(balance).max(0)).unwrap_or(0)
    }

    /// Evaluates the fund in every settle asset and deleverages it where it is under water.
    pub(crate) fn evaluate_fund(&mut self, out: &mut EventBuf) {
        for a in 0..u16::try_from(self.catalog.assets().len()).unwrap_or(u16::MAX) {
            let (margin, balance) = self.fund_margin(a, None);
            if balance < 0 || margin.is_liquidatable() {
                self.deleverage_fund(a, out);
            }
        }
    }

    /// Closes every fund position settled in `asset` against opposite user positions (see
    /// the module docs), then settles a residual shortfall with the last counterparty.
    fn deleverage_fund(&mut self, asset: u16, out: &mut EventBuf) {
        let mut last = None;
        for i in 0..self.perp_markets.len() {
            let m = self.perp_markets[i];
            let size = self.positions[usize::from(m)].insurance;
            if size == 0 || self.catalog.market(m).quote != asset {
                continue;
            }
            let balance = i128::from(self.insurance[usize::from(asset)]);
            let price =
                if balance < 0 { self.bankruptcy_price(m, size, balance) } else { self.catalog.market(m).last_mark };
            if let Some(largest) = self.deleverage_fund_position(m, price, out) {
                last = Some((m, largest));
            }
        }
        let shortfall = -i128::from(self.insurance[usize::from(asset)]);
        if shortfall > 0 {
            if let Some((m, counterparty)) = last {
                out.push(Event::Settlement {
                    market: m,
                    account: u64::from(counterparty) + 1,
                    pnl: i64::try_from(-shortfall).unwrap_or(i64::MIN),
                });
                self.adjust(counterparty, asset, -shortfall, out);
                self.adjust_insurance(asset, shortfall);
                self.touch(counterparty);
            } else {
                // No position of the fund is left to deleverage (an account's liquidation
                // closed the fund's opposite position at the mark after a settlement had
                // taken the fund below zero): the exchange pays, as for a bad debt.
                let amount = u64::try_from(shortfall).unwrap_or(u64::MAX);
                let from_fees = self.fees[usize::from(asset)].min(amount);
                self.adjust_insurance(asset, shortfall);
                self.fees[usize::from(asset)] -= from_fees;
                self.holders_pay(asset, amount - from_fees);
                for (paid, paid_by) in [(from_fees, DebtPayer::Exchange), (amount - from_fees, DebtPayer::Holders)] {
                    if paid > 0 {
                        out.push(Event::BadDebt { account: FUND_ACCOUNT_ID, asset, amount: paid, paid_by });
                    }
                }
            }
        }
        debug_assert!(self.insurance[usize::from(asset)] >= 0, "the fund ends ≥ 0 in asset {asset}");
    }

    /// Auto-deleverages the fund's whole position in `m` at `price` against the largest
    /// opposite user positions; returns the largest counterparty.
    fn deleverage_fund_position(&mut self, m: u16, price: i64, out: &mut EventBuf) -> Option<u32> {
        let size = self.positions[usize::from(m)].insurance;
        self.collect_adl_candidates(m, size, None);
        let mut remaining = size.unsigned_abs();
        let mut largest = None;
        for i in 0..self.adl_scratch.len() {
            if remaining == 0 {
                break;
            }
            let (available, counterparty) = self.adl_scratch[i];
            let qty = remaining.min(available);
            let (buyer, seller) = if size > 0 { (Some(counterparty), None) } else { (None, Some(counterparty)) };
            self.transfer_position(m, buyer, seller, qty, price, out);
            out.push(Event::Adl {
                account: u64::from(counterparty) + 1,
                liquidated: FUND_ACCOUNT_ID,
                market: m,
                qty,
                price,
            });
            self.touch(counterparty);
            largest.get_or_insert(counterparty);
            remaining -= qty;
        }
        debug_assert_eq!(remaining, 0, "positions sum to zero: users hold the opposite of the fund's position");
        largest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::runner::TextRunner;
    use crate::Limits;

    /// USDC (6 decimals, never marked: 1 per unit), BTC-PERP of SPEC 13 at mark 100, one
    /// account holding `usdc`, the fund holding `fund` (whole USDC).
    fn engine(usdc: &str, fund: &str) -> Engine {
        let mut runner = TextRunner::dev(Limits::small()).expect("limits");
        for line in [
            r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
            r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
            r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0.0005"}"#.to_string(),
            r#"{"op":"create_account"}"#.to_string(),
            format!(r#"{{"op":"deposit","account":1,"asset":"USDC","amount":"{usdc}"}}"#),
            format!(r#"{{"op":"deposit","account":0,"asset":"USDC","amount":"{fund}"}}"#),
            r#"{"op":"mark","prices":{"BTC-PERP":"100"}}"#.to_string(),
        ] {
            runner.run_line(&line).expect("line");
        }
        runner.engine
    }

    const BTC: i64 = 100_000_000;
    const USDC: i128 = 1_000_000;

    /// The takeover rule at its edge: 1 BTC at mark 100 needs 10 USDC of initial margin; the
    /// fund's equity after the takeover's PnL must cover it, and its balance must stay ≥ 0.
    #[test]
    fn the_fund_takes_over_only_when_its_equity_covers_initial_margin() {
        let e = engine("1", "4");
        // 4 + 6 = 10 covers 10; one unit less does not.
        assert!(e.fund_can_take(0, BTC, 6 * USDC));
        assert!(!e.fund_can_take(0, BTC, 6 * USDC - 1));
        assert!(e.fund_can_take(0, -BTC, 6 * USDC), "either side");
        // A takeover that loses more than the fund holds is refused even with no position left.
        assert!(e.fund_can_take(0, 0, -4 * USDC));
        assert!(!e.fund_can_take(0, 0, -4 * USDC - 1));
    }

    /// The fund's requirement counts every position it holds in markets settled in the asset.
    #[test]
    fn the_takeover_rule_counts_the_positions_the_fund_holds_already() {
        let mut e = engine("1000", "30");
        let mut out = e.event_buf();
        out.begin(e.seq() + 1);
        // The fund is long 2 BTC at the mark (initial margin 20) against account 1.
        e.transfer_position(0, None, Some(0), 2 * BTC as u64, 1_000, &mut out);
        assert_eq!(e.insurance_position(0), 2 * BTC);
        // One more BTC needs 30 in all: 30 covers it, but not a takeover that costs a unit.
        assert!(e.fund_can_take(0, BTC, 0));
        assert!(!e.fund_can_take(0, BTC, -1));
        // Taking a short of 2 BTC closes its long: nothing to cover.
        assert!(e.fund_can_take(0, -2 * BTC, -30 * USDC));
    }

    /// A shortfall that the tick-clamped bankruptcy price cannot absorb is paid by the last
    /// counterparty, so the fund ends at zero, never below; conservation stays exact.
    #[test]
    fn a_shortfall_beyond_the_clamped_price_is_paid_by_the_counterparty() {
        let mut e = engine("1000", "1");
        let mut out = e.event_buf();
        e.seq += 1;
        out.begin(e.seq);
        // The fund is short 1 BTC at the mark against account 1's long.
        e.transfer_position(0, Some(0), None, BTC as u64, 1_000, &mut out);
        // Its balance goes from 1 to −150 (as after a funding at −100 % and a loss), the 151
        // moved to account 1 so that conservation holds. Closing the short can bring back at
        // most 99.9 (mark 100 down to one tick); account 1 pays the other 50.1 and is back at
        // 1,000 + the fund's 1.
        e.adjust_insurance(0, -151 * USDC);
        e.adjust(0, 0, 151 * USDC, &mut out);
        assert!(e.check_invariants().is_err_and(|broken| broken.contains("insurance fund of USDC is negative")));
        out.begin(e.seq);
        e.evaluate_fund(&mut out);
        assert_eq!(
            out.events(),
            &[
                Event::Settlement { market: 0, account: 1, pnl: -99_900_000 },
                Event::Adl { account: 1, liquidated: FUND_ACCOUNT_ID, market: 0, qty: BTC as u64, price: 1 },
                Event::Settlement { market: 0, account: 1, pnl: -50_100_000 },
            ]
        );
        assert_eq!((e.insurance(0), e.insurance_position(0), e.position(1, 0)), (0, 0, 0));
        assert_eq!(e.balance(1, 0).map(|b| b.available), Some(1_001_000_000));
        assert_eq!(e.check_invariants(), Ok(()));
    }
}
