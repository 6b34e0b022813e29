//! The stress report (SPEC 10, `verex risk`): does the collateral behind the lent-and-borrowed
//! hole hold, and can it be liquidated, in a worst-case move?
//!
//! Each shock runs on a **copy** of the state at the cycle's seq, never journaled: the state is
//! encoded as a snapshot and restored under a genesis whose oracle key is a throw-away key of
//! this module (a snapshot's state does not include the genesis keys, and its state hash does
//! not cover them), then `mark` transactions signed by that key move prices, and the engine
//! does what it would do live: settlement, liquidation against the books, insurance takeover,
//! auto-deleveraging (and whatever the engine's liquidation grows to do: the report reads the
//! events it emits). The copy is dropped afterwards.
//!
//! A shock of `p` % moves every perp's mark and the index price of every asset that is the
//! base of a market (the risky assets) by `p` %, rounded away from the current price so a move
//! is never smaller than asked; quote and settle assets (the valuation's stable side) and
//! assets without an index price stay. All prices go in one `mark` when they fit
//! ([`MAX_MARK_PRICES`]), else in consecutive ones.
//!
//! Per shock: the accounts liquidated (a liquidation or a liquidation cancel in the events),
//! the bankrupt ones (closed by the insurance fund or by auto-deleveraging at their bankruptcy
//! price, or left with a negative net value), the insurance fund's draw per asset, the loss
//! socialized per asset (what auto-deleveraged counterparties lose against the mark), the bad
//! debt left (Σ of negative net values, in the valuation unit), and per market the quantity
//! liquidated against the book versus by the fund or ADL, beside the book's depth before the
//! shock: the books absorbed the liquidations when nothing went to the fund or ADL. And the
//! account left closest to its maintenance requirement (equity / maintenance): how much room
//! the collateral still has when nothing was liquidated.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::INDEX_PRICE_DECIMALS;
use crate::events::{CancelReason, LiquidationVia, OrderStatus};
use crate::sequencer::{Clock, Sequencer};
use crate::snapshot::{decode_snapshot, encode_snapshot};
use crate::text::decimal::format_units;
use crate::text::event_json::event_value;
use crate::tx::{Dec, Mark, MarkPrice, MarketKind, Op, Side, Tx, MAX_MARK_PRICES};
use crate::verified::VerifiedTx;
use crate::{Engine, Event, Genesis};
use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};

/// Value units per whole valuation unit (index prices have [`INDEX_PRICE_DECIMALS`] places).
const VALUE_ONE: i128 = 10i128.pow(INDEX_PRICE_DECIMALS);
/// Accounts listed by id in a shock's report (the counts are always whole).
pub const LISTED_ACCOUNTS: usize = 20;
/// Most shocks one report runs.
pub const MAX_SHOCKS: usize = 16;
/// Largest shock magnitude, in percent (a move to zero or below is not a price).
pub const MAX_SHOCK_PERCENT: i64 = 99;

/// Why a stress report cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StressError {
    /// The state cannot be copied.
    #[error("copying the state: {0}")]
    Copy(String),
    /// A shock is out of range.
    #[error("shock {0} %: shocks are between -{MAX_SHOCK_PERCENT} and {MAX_SHOCK_PERCENT} %, not 0")]
    Shock(i64),
    /// Too many shocks.
    #[error("{0} shocks: at most {MAX_SHOCKS}")]
    TooManyShocks(usize),
    /// The copy refused a shock's mark.
    #[error("shock {percent} %: the copy rejected the mark ({reason})")]
    Rejected {
        /// The shock.
        percent: i64,
        /// The engine's reason.
        reason: &'static str,
    },
}

/// One market's liquidations in a shock, base units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarketOutcome {
    /// Closed against the book.
    pub via_book: u64,
    /// Taken over by the insurance fund.
    pub via_insurance: u64,
    /// Auto-deleveraged.
    pub via_adl: u64,
    /// Filled in the shock's transactions (liquidation closes and collateral sales).
    pub filled: u64,
    /// Bid quantity resting before the shock.
    pub bid_depth: u64,
    /// Ask quantity resting before the shock.
    pub ask_depth: u64,
}

impl MarketOutcome {
    /// Every liquidated quantity went to the book.
    #[must_use]
    pub fn absorbed(&self) -> bool {
        self.via_insurance == 0 && self.via_adl == 0
    }
}

/// One price a shock moved, in the mark's units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceMove {
    /// Asset (index price) or perp (mark).
    pub symbol: String,
    /// Before the shock.
    pub before: i64,
    /// After it.
    pub after: i64,
    /// Decimal places of the units.
    pub decimals: u32,
}

/// What one shock did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShockOutcome {
    /// The move, in percent.
    pub percent: i64,
    /// The prices moved.
    pub prices: Vec<PriceMove>,
    /// Accounts liquidated.
    pub liquidated: BTreeSet<u64>,
    /// Accounts bankrupt.
    pub bankrupt: BTreeSet<u64>,
    /// Per asset index: the insurance fund's balance before and after.
    pub insurance: Vec<(i64, i64)>,
    /// Per asset index: loss socialized to auto-deleveraged counterparties, units.
    pub socialized: Vec<u128>,
    /// Σ of negative net values after the shock, value units (10^-8 of the valuation unit).
    pub bad_debt_value: i128,
    /// Per market index.
    pub markets: Vec<MarketOutcome>,
    /// Events of the shock's transactions, by kind.
    pub events: BTreeMap<String, u64>,
    /// After the shock, the account with a maintenance requirement closest to it:
    /// `(account, equity, maintenance)` in value units (how much room the collateral has left).
    pub tightest: Option<(u64, i128, i128)>,
}

/// A stress report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StressReport {
    /// The state's seq.
    pub seq: u64,
    /// Its state hash.
    pub state_hash: [u8; 32],
    /// One outcome per shock.
    pub shocks: Vec<ShockOutcome>,
}

/// The throw-away oracle key of the copies (deterministic: the same report every run).
fn stress_oracle() -> SigningKey {
    SigningKey::from_bytes(blake3::hash(b"verex-por stress copy oracle (never a genesis key)").as_bytes())
}

/// Runs each shock of `percents` on a copy of `engine`.
///
/// # Errors
/// [`StressError`] for a shock out of range, a state that cannot be copied or a refused mark.
pub fn stress(engine: &Engine, percents: &[i64]) -> Result<StressReport, StressError> {
    if percents.len() > MAX_SHOCKS {
        return Err(StressError::TooManyShocks(percents.len()));
    }
    if let Some(bad) = percents.iter().find(|p| **p == 0 || p.abs() > MAX_SHOCK_PERCENT) {
        return Err(StressError::Shock(*bad));
    }
    let bytes = encode_snapshot(engine, 0, [0; 32]).map_err(|e| StressError::Copy(e.to_string()))?;
    let oracle = stress_oracle();
    let genesis = Genesis { oracle: oracle.verifying_key().to_bytes(), ..Genesis::dev() };
    let shocks = percents
        .iter()
        .map(|&percent| {
            let (_, copy) =
                decode_snapshot(&bytes, genesis, *engine.limits()).map_err(|e| StressError::Copy(e.to_string()))?;
            shock(copy, percent, &oracle)
        })
        .collect::<Result<_, _>>()?;
    Ok(StressReport { seq: engine.seq(), state_hash: engine.state_hash(), shocks })
}

/// `price × (100 + percent) / 100`, rounded away from `price`, at least 1.
fn moved(price: i64, percent: i64) -> i64 {
    let scaled = i128::from(price) * i128::from(100 + percent);
    let (quotient, remainder) = (scaled / 100, scaled % 100);
    let rounded = if remainder != 0 && percent > 0 { quotient + 1 } else { quotient };
    i64::try_from(rounded.max(1)).unwrap_or(i64::MAX)
}

/// The mark entries of a shock, and the moves they make.
fn shocked_prices(engine: &Engine, percent: i64) -> (Vec<MarkPrice>, Vec<PriceMove>) {
    let catalog = engine.catalog();
    let mut risky = BTreeSet::new();
    let mut entries = Vec::new();
    let mut shown = Vec::new();
    for market in catalog.markets() {
        risky.insert(market.base);
        if market.kind == MarketKind::Perp && market.last_mark > 0 {
            let after = moved(market.last_mark, percent);
            entries.push(MarkPrice { symbol: market.symbol, price: dec(after, market.price_decimals) });
            let (symbol, before, decimals) =
                (market.symbol.as_str().to_string(), market.last_mark, market.price_decimals);
            shown.push(PriceMove { symbol, before, after, decimals });
        }
    }
    for a in risky {
        let asset = catalog.asset(a);
        if asset.index_price > 0 {
            let after = moved(asset.index_price, percent);
            entries.push(MarkPrice { symbol: asset.symbol, price: dec(after, INDEX_PRICE_DECIMALS) });
            let (symbol, before, decimals) =
                (asset.symbol.as_str().to_string(), asset.index_price, INDEX_PRICE_DECIMALS);
            shown.push(PriceMove { symbol, before, after, decimals });
        }
    }
    (entries, shown)
}

fn dec(units: i64, decimals: u32) -> Dec {
    Dec { mantissa: units, scale: u8::try_from(decimals).unwrap_or(u8::MAX) }
}

/// Applies one shock to `copy` and reads what happened.
fn shock(mut copy: Engine, percent: i64, oracle: &SigningKey) -> Result<ShockOutcome, StressError> {
    let assets = copy.catalog().assets().len();
    let markets = copy.catalog().markets().len();
    let mut outcome = ShockOutcome {
        percent,
        insurance: (0..assets).map(|a| (copy.insurance(a as u16), 0)).collect(),
        socialized: vec![0; assets],
        markets: (0..markets).map(|m| book_depth(&copy, m as u16)).collect(),
        ..ShockOutcome::default()
    };
    let (entries, shown) = shocked_prices(&copy, percent);
    outcome.prices = shown;
    let chunks: Vec<&[MarkPrice]> = entries.chunks(MAX_MARK_PRICES).collect();
    let mut sequencer = Sequencer::resume(copy.seq(), copy.last_ts(), Clock::Deterministic);
    let mut buf = copy.event_buf();
    for (i, chunk) in chunks.iter().enumerate() {
        let Some(mark) = Mark::from_prices(chunk) else { continue };
        // The copy's oracle has signed nothing; its nonce slot holds the original oracle's
        // last nonce, which the top of the range is above.
        let nonce = u64::MAX - (chunks.len() - 1 - i) as u64;
        let tx = VerifiedTx::sign(Tx { signer: [0; 32], nonce, account: 0, op: Op::Mark(mark) }, oracle);
        // Stamped right after the state's last tx: no time passes (no interest accrues) in the copy.
        let ts = copy.last_ts() + 1;
        let record = sequencer.stamp(&tx, Some(ts)).map_err(|e| StressError::Copy(e.to_string()))?;
        copy.apply(record.verified(), &mut buf).map_err(|e| StressError::Copy(e.to_string()))?;
        if let Some(reason) = buf.rejection() {
            return Err(StressError::Rejected { percent, reason: reason.as_str() });
        }
        for event in buf.events() {
            read_event(&copy, event, &mut outcome);
        }
    }
    for (a, (_, after)) in outcome.insurance.iter_mut().enumerate() {
        *after = copy.insurance(a as u16);
    }
    read_net_values(&copy, &mut outcome);
    Ok(outcome)
}

fn book_depth(engine: &Engine, market: u16) -> MarketOutcome {
    let sum = |side| engine.depth(market, side).map(|(_, qty, _)| qty).fold(0u64, u64::saturating_add);
    MarketOutcome { bid_depth: sum(Side::Buy), ask_depth: sum(Side::Sell), ..MarketOutcome::default() }
}

fn read_event(copy: &Engine, event: &Event, outcome: &mut ShockOutcome) {
    let kind = event_value(0, event, copy.catalog()).get("event").and_then(Value::as_str).unwrap_or("?").to_string();
    *outcome.events.entry(kind).or_insert(0) += 1;
    match *event {
        Event::Liquidation { account, market, qty, via, .. } => {
            outcome.liquidated.insert(account);
            let m = &mut outcome.markets[usize::from(market)];
            match via {
                LiquidationVia::Book => m.via_book += qty,
                LiquidationVia::Insurance => m.via_insurance += qty,
                LiquidationVia::Adl => m.via_adl += qty,
            }
            if via != LiquidationVia::Book {
                outcome.bankrupt.insert(account);
            }
        }
        Event::Order { account, status: OrderStatus::Canceled(CancelReason::Liquidation), .. } => {
            outcome.liquidated.insert(account);
        }
        Event::Adl { liquidated, market, qty, price, .. } => {
            // A counterparty closed at the bankrupt side's price instead of the mark: its loss
            // against the mark is socialized. `liquidated` 0 is the insurance fund.
            let info = copy.catalog().market(market);
            let gap = i128::from(info.last_mark.abs_diff(price)) * i128::from(qty);
            outcome.socialized[usize::from(info.quote)] += u128::try_from(scale(gap, info.notional_exp)).unwrap_or(0);
            outcome.markets[usize::from(market)].via_adl += qty;
            if liquidated != 0 {
                outcome.liquidated.insert(liquidated);
                outcome.bankrupt.insert(liquidated);
            }
        }
        Event::Fill { market, qty, .. } => outcome.markets[usize::from(market)].filled += qty,
        _ => {}
    }
}

/// `value × 10^exp`, rounded up (a loss is never understated).
fn scale(value: i128, exp: i32) -> i128 {
    if exp >= 0 {
        value.saturating_mul(10i128.saturating_pow(exp.unsigned_abs()))
    } else {
        let divisor = 10i128.saturating_pow(exp.unsigned_abs());
        (value + divisor - 1) / divisor
    }
}

/// Accounts left with a negative net value (balances at index prices, no weights) are
/// bankrupt; their deficits are the bad debt. The account closest to its maintenance
/// requirement is kept too.
fn read_net_values(copy: &Engine, outcome: &mut ShockOutcome) {
    let catalog = copy.catalog();
    let prices: Vec<(i128, i128)> = catalog
        .assets()
        .iter()
        .map(|a| {
            let price = if a.index_price > 0 { i128::from(a.index_price) } else { VALUE_ONE };
            (price, 10i128.pow(u32::from(a.decimals)))
        })
        .collect();
    for account in 1..=copy.account_count() {
        let mut value = 0i128;
        for (a, (price, one)) in prices.iter().enumerate() {
            let Some(b) = copy.balance(account, a as u16) else { continue };
            let net = i128::from(b.available) + i128::from(b.locked) + i128::from(b.lent) - i128::from(b.borrowed);
            value += net * price / one;
        }
        if value < 0 {
            outcome.bankrupt.insert(account);
            outcome.bad_debt_value -= value;
        }
        if let Some(m) = copy.account_margin(account).filter(|m| m.maintenance > 0) {
            // equity / maintenance smallest: compare cross-multiplied (maintenance > 0).
            let tighter = outcome.tightest.is_none_or(|(_, e, mm)| m.equity * mm < e * m.maintenance);
            if tighter {
                outcome.tightest = Some((account, m.equity, m.maintenance));
            }
        }
    }
}

/// `equity / maintenance` with two decimals, as text.
fn ratio_text(equity: i128, maintenance: i128) -> String {
    let hundredths = equity.saturating_mul(100) / maintenance.max(1);
    format!("{}.{:02}", hundredths / 100, (hundredths % 100).abs())
}

impl ShockOutcome {
    /// Every market's liquidations went to the book.
    #[must_use]
    pub fn books_absorbed(&self) -> bool {
        self.markets.iter().all(MarketOutcome::absorbed)
    }

    /// One line: the move and its consequences.
    #[must_use]
    pub fn headline(&self, engine: &Engine) -> String {
        let amounts = |values: Vec<(usize, i128)>| {
            let parts: Vec<String> = values
                .into_iter()
                .filter(|(_, v)| *v != 0)
                .map(|(a, v)| {
                    let asset = engine.catalog().asset(a as u16);
                    format!("{} {}", format_units(v, u32::from(asset.decimals)), asset.symbol.as_str())
                })
                .collect();
            if parts.is_empty() {
                "0".to_string()
            } else {
                parts.join(", ")
            }
        };
        let draw =
            amounts(self.insurance.iter().enumerate().map(|(a, (b, c))| (a, i128::from(*b - *c).max(0))).collect());
        let social = amounts(
            self.socialized.iter().enumerate().map(|(a, v)| (a, i128::try_from(*v).unwrap_or(i128::MAX))).collect(),
        );
        if self.prices.is_empty() {
            return format!("{:+} %: no index or mark price to move (the oracle has published none)", self.percent);
        }
        let tightest = self.tightest.map_or("no open position".to_string(), |(account, equity, maintenance)| {
            format!("tightest account {account} at {}× its maintenance", ratio_text(equity, maintenance))
        });
        format!(
            "{:+} %: {} liquidated, {} bankrupt, insurance draw {draw}, socialized {social}, bad debt {}, books absorb the liquidations: {}; {tightest}",
            self.percent,
            self.liquidated.len(),
            self.bankrupt.len(),
            format_units(self.bad_debt_value, INDEX_PRICE_DECIMALS),
            if self.books_absorbed() { "yes" } else { "no" }
        )
    }
}

impl StressReport {
    /// The report as JSON (`risk.json`), amounts as decimal strings in their asset's decimals.
    #[must_use]
    pub fn to_json(&self, engine: &Engine) -> Value {
        let catalog = engine.catalog();
        let asset_map = |values: &mut dyn Iterator<Item = (usize, i128)>| {
            let mut map = Map::new();
            for (a, v) in values {
                let asset = catalog.asset(a as u16);
                map.insert(asset.symbol.as_str().to_string(), format_units(v, u32::from(asset.decimals)).into());
            }
            Value::Object(map)
        };
        let shocks: Vec<Value> = self
            .shocks
            .iter()
            .map(|s| {
                let prices: Map<String, Value> = s
                    .prices
                    .iter()
                    .map(|p| {
                        let text = |v: i64| format_units(i128::from(v), p.decimals);
                        (p.symbol.clone(), json!({"before": text(p.before), "after": text(p.after)}))
                    })
                    .collect();
                let markets: Vec<Value> = s
                    .markets
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.via_book + m.via_insurance + m.via_adl + m.filled + m.bid_depth + m.ask_depth > 0)
                    .map(|(i, m)| {
                        let market = catalog.market(i as u16);
                        let decimals = u32::from(catalog.asset(market.base).decimals);
                        let qty = |v: u64| format_units(i128::from(v), decimals);
                        json!({
                            "market": market.symbol.as_str(),
                            "liquidated_via_book": qty(m.via_book),
                            "liquidated_via_insurance": qty(m.via_insurance),
                            "liquidated_via_adl": qty(m.via_adl),
                            "filled": qty(m.filled),
                            "bid_depth_before": qty(m.bid_depth),
                            "ask_depth_before": qty(m.ask_depth),
                            "absorbed_by_book": m.absorbed(),
                        })
                    })
                    .collect();
                let listed = |set: &BTreeSet<u64>| set.iter().take(LISTED_ACCOUNTS).copied().collect::<Vec<_>>();
                json!({
                    "move_percent": s.percent,
                    "prices": prices,
                    "accounts_liquidated": s.liquidated.len(),
                    "accounts_bankrupt": s.bankrupt.len(),
                    "liquidated": listed(&s.liquidated),
                    "bankrupt": listed(&s.bankrupt),
                    "insurance_before": asset_map(&mut s.insurance.iter().enumerate().map(|(a, (b, _))| (a, i128::from(*b)))),
                    "insurance_draw": asset_map(&mut s.insurance.iter().enumerate().map(|(a, (b, c))| (a, i128::from(*b - *c).max(0)))),
                    "socialized_loss": asset_map(&mut s.socialized.iter().enumerate().map(|(a, v)| (a, i128::try_from(*v).unwrap_or(i128::MAX)))),
                    "bad_debt_value": format_units(s.bad_debt_value, INDEX_PRICE_DECIMALS),
                    "books_absorb_liquidations": s.books_absorbed(),
                    "tightest": s.tightest.map(|(account, equity, maintenance)| json!({
                        "account": account,
                        "equity_value": format_units(equity, INDEX_PRICE_DECIMALS),
                        "maintenance_value": format_units(maintenance, INDEX_PRICE_DECIMALS),
                        "ratio": ratio_text(equity, maintenance),
                    })),
                    "markets": markets,
                    "events": s.events,
                    "headline": s.headline(engine),
                })
            })
            .collect();
        json!({
            "format": "verex-risk-v1",
            "seq": self.seq,
            "state_hash": crate::signing::hex(&self.state_hash),
            "shocks": shocks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_round_away_from_the_price_and_stay_positive() {
        assert_eq!(moved(10_000, -10), 9_000);
        assert_eq!(moved(10_001, -10), 9_000, "9000.9 rounds down on a down move");
        assert_eq!(moved(10_001, 10), 11_002, "11001.1 rounds up on an up move");
        assert_eq!(moved(1, -99), 1);
    }
}
