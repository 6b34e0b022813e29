//! A deterministic, realistic workload as JSON-lines transactions (`verex gen`, `verex demo`).
//!
//! Listings (USDC plus one base asset per market pair, spot and perp markets alternating),
//! accounts with deposits, an insurance fund, opening marks; then a stream of orders around a
//! random-walking mid price per market: resting limit orders (gtc, some post-only), crossing
//! limit orders (ioc), market orders, cancels and amends of the account's own recent orders
//! (by client id), oracle marks every few hundred txs and occasional funding; lending (SPEC 6a):
//! every asset has a lending pool, every tenth account lends in set-up, the flow lends, redeems,
//! borrows, repays and ticks, and one leveraged borrower (the account after the others) borrows
//! USDC against the first base asset and withdraws it; halfway through the flow that asset's
//! index drops 20 % for one mark, and the borrower is liquidated (its collateral sold on the
//! spot book). Same config, same lines: a fixed xorshift stream, no clock, no OS randomness.

use std::fmt::Write as _;
use verex_engine::tx::MAX_MARK_PRICES;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Accounts to create and fund.
    pub accounts: u64,
    /// Markets to list (spot and perp alternate; at least 1).
    pub markets: u64,
    /// Order-flow transactions after the set-up.
    pub txs: u64,
    /// Seed of the pseudo-random stream.
    pub seed: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self { accounts: 1_000, markets: 4, txs: 100_000, seed: 0x5eed_cafe_f00d_d00d }
    }
}

/// The lending pools' parameters: 2 % a year at utilization 0, 20 % at the kink (0.8), 300 %
/// at 1; the reserve factor (0.1) and the cap (0.95) are the defaults.
const RATE_CURVE: &str = r#""rate_base":"0.02","rate_kink_utilization":"0.8","rate_at_kink":"0.2","rate_max":"3""#;

/// Recent resting orders remembered per account.
const RECENT_ORDERS: usize = 8;

/// Most markets the generator lists (one base asset each).
pub const MAX_GEN_MARKETS: u64 = 64;

/// The generator's state: prices, client ids, the pseudo-random stream.
pub struct Generator {
    config: GenConfig,
    state: u64,
    /// Per market: mid price in ticks.
    mids: Vec<i64>,
    /// Per account: next client id.
    next_client: Vec<u64>,
    /// Per account: client ids of its recent resting (gtc) orders, newest last, at most
    /// [`RECENT_ORDERS`]; cancels and amends pick from these.
    recent: Vec<Vec<(u64, u64)>>,
    emitted: u64,
    /// Which group of at most [`MAX_MARK_PRICES`] markets the next in-stream mark prices.
    next_mark_group: usize,
}

struct MarketShape {
    symbol: String,
    perp: bool,
}

fn market_shape(index: u64) -> MarketShape {
    let pair = index / 2;
    let base = base_symbol(pair);
    if index.is_multiple_of(2) {
        MarketShape { symbol: format!("{base}-USDC"), perp: false }
    } else {
        MarketShape { symbol: format!("{base}-PERP"), perp: true }
    }
}

fn base_symbol(pair: u64) -> String {
    const NAMES: [&str; 8] = ["BTC", "ETH", "SOL", "AVAX", "LINK", "DOT", "ATOM", "NEAR"];
    match NAMES.get(pair as usize) {
        Some(name) => (*name).to_string(),
        None => format!("TK{pair}"),
    }
}

/// Mid price of market `index` at start, in ticks of 0.01 (100.00 .. 800.00).
fn start_mid(index: u64) -> i64 {
    10_000 * (1 + (index / 2) as i64 % 8)
}

impl Generator {
    /// A generator for `config` (markets clamped to 1..=[`MAX_GEN_MARKETS`], accounts to ≥ 2).
    #[must_use]
    pub fn new(config: GenConfig) -> Self {
        let config =
            GenConfig { markets: config.markets.clamp(1, MAX_GEN_MARKETS), accounts: config.accounts.max(2), ..config };
        let mids = (0..config.markets).map(start_mid).collect();
        let accounts = config.accounts as usize + 1;
        Self {
            state: config.seed | 1,
            mids,
            next_client: vec![1; accounts],
            recent: vec![Vec::with_capacity(RECENT_ORDERS); accounts],
            emitted: 0,
            next_mark_group: 0,
            config,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// The set-up lines: listings, accounts, deposits, insurance fund, opening marks.
    #[must_use]
    pub fn setup(&self) -> Vec<String> {
        let mut lines = vec![format!(r#"{{"op":"add_asset","symbol":"USDC","decimals":6,{RATE_CURVE}}}"#)];
        let pairs = self.config.markets.div_ceil(2);
        for pair in 0..pairs {
            lines.push(format!(
                r#"{{"op":"add_asset","symbol":"{}","decimals":8,"collateral_weight":"0.9","borrow_weight":"1.1",{RATE_CURVE}}}"#,
                base_symbol(pair)
            ));
        }
        for m in 0..self.config.markets {
            let shape = market_shape(m);
            let base = base_symbol(m / 2);
            if shape.perp {
                lines.push(format!(
                    r#"{{"op":"add_market","symbol":"{}","kind":"perp","base":"{base}","settle":"USDC","tick":"0.01","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"-0.0001","taker_fee":"0.0005"}}"#,
                    shape.symbol
                ));
            } else {
                lines.push(format!(
                    r#"{{"op":"add_market","symbol":"{}","base":"{base}","quote":"USDC","tick":"0.01","step":"0.001","maker_fee":"0.0001","taker_fee":"0.0004"}}"#,
                    shape.symbol
                ));
            }
        }
        lines.push(r#"{"op":"deposit","account":0,"asset":"USDC","amount":"1000000"}"#.to_string());
        for a in 1..=self.config.accounts {
            lines.push(r#"{"op":"create_account"}"#.to_string());
            lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"USDC","amount":"1000000"}}"#));
            for pair in 0..pairs {
                lines.push(format!(
                    r#"{{"op":"deposit","account":{a},"asset":"{}","amount":"1000"}}"#,
                    base_symbol(pair)
                ));
            }
        }
        for group in 0..self.mark_groups() {
            lines.push(self.mark_line(group));
        }
        for a in (1..=self.config.accounts).step_by(10) {
            lines.push(format!(r#"{{"op":"lend","account":{a},"asset":"USDC","amount":"100000"}}"#));
            for pair in 0..pairs {
                lines.push(format!(r#"{{"op":"lend","account":{a},"asset":"{}","amount":"100"}}"#, base_symbol(pair)));
            }
        }
        // The leveraged borrower: 10 of the first base asset (index 100: 900 of collateral after
        // its weight), 780 USDC borrowed and withdrawn (initial margin: 900 − 780 ≥ 78).
        let borrower = self.borrower();
        let base = base_symbol(0);
        lines.push(r#"{"op":"create_account"}"#.to_string());
        lines.push(format!(r#"{{"op":"deposit","account":{borrower},"asset":"{base}","amount":"10"}}"#));
        lines.push(format!(r#"{{"op":"borrow","account":{borrower},"asset":"USDC","amount":"780"}}"#));
        lines.push(format!(r#"{{"op":"withdraw","account":{borrower},"asset":"USDC","amount":"780"}}"#));
        lines
    }

    /// The leveraged borrower's account id (created after the others).
    #[must_use]
    pub fn borrower(&self) -> u64 {
        self.config.accounts + 1
    }

    /// The shock: the first base asset's index 20 % below its mid, for one mark.
    fn shock_line(&self) -> String {
        let mid = self.mids[0] * 8 / 10;
        format!(r#"{{"op":"mark","prices":{{"{}":"{}.{:02}"}}}}"#, base_symbol(0), mid / 100, mid % 100)
    }

    /// A lending line: lend, redeem, borrow or repay USDC or the market's base asset, or a tick.
    fn pool_line(&mut self, m: u64, account: u64, roll: u64) -> String {
        if roll >= 228 {
            return r#"{"op":"tick"}"#.to_string();
        }
        let op = ["lend", "redeem", "borrow", "repay"][(roll % 4) as usize];
        if self.below(2) == 0 {
            let amount = 1 + self.below(1_000);
            format!(r#"{{"op":"{op}","account":{account},"asset":"USDC","amount":"{amount}"}}"#)
        } else {
            let amount = 1 + self.below(1_000);
            let base = base_symbol(m / 2);
            format!(r#"{{"op":"{op}","account":{account},"asset":"{base}","amount":"0.{amount:03}"}}"#)
        }
    }

    /// How many `mark` lines price every market: a `mark` carries at most
    /// [`MAX_MARK_PRICES`] prices.
    fn mark_groups(&self) -> usize {
        self.mids.len().div_ceil(MAX_MARK_PRICES).max(1)
    }

    /// A `mark` of the markets of group `group` (the markets `group × MAX_MARK_PRICES` on).
    fn mark_line(&self, group: usize) -> String {
        let mut prices = String::new();
        for (m, mid) in self.mids.iter().enumerate().skip(group * MAX_MARK_PRICES).take(MAX_MARK_PRICES) {
            let shape = market_shape(m as u64);
            let name = if shape.perp { shape.symbol } else { base_symbol(m as u64 / 2) };
            if !prices.is_empty() {
                prices.push(',');
            }
            let _ = write!(prices, r#""{name}":"{}.{:02}""#, mid / 100, mid % 100);
        }
        format!(r#"{{"op":"mark","prices":{{{prices}}}}}"#)
    }

    /// The next order-flow line, or `None` after `config.txs` of them.
    #[allow(clippy::should_implement_trait)]
    pub fn next_line(&mut self) -> Option<String> {
        if self.emitted >= self.config.txs {
            return None;
        }
        self.emitted += 1;
        if self.emitted == self.config.txs / 2 + 1 {
            return Some(self.shock_line());
        }
        let roll = self.below(1000);
        if roll < 4 && self.config.markets > 0 {
            for m in 0..self.mids.len() {
                let step = self.below(41) as i64 - 20;
                self.mids[m] = (self.mids[m] + step).max(1_000);
            }
            let group = self.next_mark_group;
            self.next_mark_group = (group + 1) % self.mark_groups();
            return Some(self.mark_line(group));
        }
        let m = self.below(self.config.markets);
        let account = 1 + self.below(self.config.accounts);
        let shape = market_shape(m);
        if roll < 6 && shape.perp {
            let rate = self.below(11) as i64 - 5;
            let sign = if rate < 0 { "-" } else { "" };
            return Some(format!(
                r#"{{"op":"funding","market":"{}","rate":"{sign}0.0000{}"}}"#,
                shape.symbol,
                rate.abs()
            ));
        }
        if (6..150).contains(&roll) {
            if let Some(line) = self.cancel_or_amend(account, roll) {
                return Some(line);
            }
        }
        Some(match roll {
            220..=229 => self.pool_line(m, account, roll),
            150..=219 => {
                let side = self.side();
                let qty = 1 + self.below(50);
                format!(
                    r#"{{"op":"place","account":{account},"market":"{}","side":"{side}","type":"market","qty":"0.{qty:03}"}}"#,
                    shape.symbol
                )
            }
            _ => self.limit_line(m, account, &shape.symbol, roll),
        })
    }

    /// A cancel (or, for `roll >= 100`, an amend) of one of the account's recent resting
    /// orders, by client id; `None` when it has none.
    fn cancel_or_amend(&mut self, account: u64, roll: u64) -> Option<String> {
        let recent = &self.recent[account as usize];
        if recent.is_empty() {
            return None;
        }
        let pick = (roll as usize) % recent.len();
        let (m, client) = recent[pick];
        let symbol = market_shape(m).symbol;
        if roll < 100 {
            self.recent[account as usize].remove(pick);
            return Some(format!(r#"{{"op":"cancel","account":{account},"market":"{symbol}","client_id":{client}}}"#));
        }
        let price = self.price_near(m, 30);
        Some(format!(
            r#"{{"op":"amend","account":{account},"market":"{symbol}","client_id":{client},"price":"{}.{:02}"}}"#,
            price / 100,
            price % 100
        ))
    }

    fn side(&mut self) -> &'static str {
        if self.below(2) == 0 {
            "buy"
        } else {
            "sell"
        }
    }

    fn price_near(&mut self, m: u64, spread: u64) -> i64 {
        (self.mids[m as usize] + self.below(2 * spread + 1) as i64 - spread as i64).max(1)
    }

    fn limit_line(&mut self, m: u64, account: u64, symbol: &str, roll: u64) -> String {
        let side = self.side();
        // Resting orders sit behind the mid; a fifth cross it (ioc).
        let crossing = roll >= 840;
        let offset = 1 + self.below(40) as i64;
        let mid = self.mids[m as usize];
        let price = match (side, crossing) {
            ("buy", false) | ("sell", true) => mid - offset,
            _ => mid + offset,
        }
        .max(1);
        let tif = match (crossing, roll % 10) {
            (true, _) => "ioc",
            (false, 0) => "post_only",
            _ => "gtc",
        };
        let qty = 1 + self.below(200);
        let client = self.next_client[account as usize];
        self.next_client[account as usize] += 1;
        if tif != "ioc" {
            let recent = &mut self.recent[account as usize];
            if recent.len() == RECENT_ORDERS {
                recent.remove(0);
            }
            recent.push((m, client));
        }
        format!(
            r#"{{"op":"place","account":{account},"market":"{symbol}","side":"{side}","price":"{}.{:02}","qty":"{}.{:03}","tif":"{tif}","client_id":{client}}}"#,
            price / 100,
            price % 100,
            qty / 1000,
            qty % 1000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verex_engine::text::runner::{LineOutcome, TextRunner};
    use verex_engine::Limits;

    #[test]
    fn a_generated_workload_runs_trades_and_is_mostly_accepted() {
        let config = GenConfig { accounts: 50, markets: 4, txs: 5_000, seed: 7 };
        let mut generator = Generator::new(config);
        let mut runner = TextRunner::dev(Limits::small()).expect("limits");
        let mut lines = generator.setup();
        while let Some(line) = generator.next_line() {
            lines.push(line);
        }
        let (mut fills, mut rejected, mut lending, mut sold) = (0usize, 0usize, 0usize, 0usize);
        for line in &lines {
            match runner.run_line(line).unwrap_or_else(|e| panic!("{line}: {e}")) {
                LineOutcome::Applied { events, .. } => {
                    fills += events.iter().filter(|e| e.contains("\"fill\"")).count();
                    rejected += events.iter().filter(|e| e.contains("\"rejected\"")).count();
                    let pool_words = ["\"lend\"", "\"redeem\"", "\"borrow\"", "\"repay\"", "\"accrual\""];
                    lending += events.iter().filter(|e| pool_words.iter().any(|w| e.contains(w))).count();
                    sold += events.iter().filter(|e| e.contains("\"collateral_sold\"")).count();
                }
                LineOutcome::Refused(e) => panic!("refused {e}"),
            }
        }
        assert_eq!(runner.engine.check_invariants(), Ok(()));
        assert!(fills > 500, "fills {fills}");
        // Lending: pool moves and accruals, and the leveraged borrower liquidated by the shock.
        assert!(lending > 50, "lending events {lending}");
        assert!(sold > 0, "the borrower's collateral was never sold");
        // Cancels and amends of orders that filled meanwhile are rejected (unknown_order).
        assert!(rejected < lines.len() / 10, "rejected {rejected} of {}", lines.len());
    }

    #[test]
    fn same_config_same_lines() {
        let config = GenConfig { accounts: 10, markets: 3, txs: 500, seed: 1 };
        let collect = || {
            let mut g = Generator::new(config);
            let mut lines = g.setup();
            while let Some(line) = g.next_line() {
                lines.push(line);
            }
            lines
        };
        assert_eq!(collect(), collect());
    }

    #[test]
    fn more_markets_than_a_mark_carries_are_priced_in_groups_the_engine_accepts() {
        // 20 markets: 10 spot + 10 perp prices, more than one `mark` may carry.
        let config = GenConfig { accounts: 10, markets: 20, txs: 3_000, seed: 3 };
        let mut generator = Generator::new(config);
        let mut limits = Limits::small();
        limits.max_markets = 32;
        limits.max_assets = 32;
        let mut runner = TextRunner::dev(limits).expect("limits");
        let mut lines = generator.setup();
        while let Some(line) = generator.next_line() {
            lines.push(line);
        }
        let mut marks = 0;
        for line in &lines {
            let mark = line.contains(r#""op":"mark""#);
            marks += usize::from(mark);
            match runner.run_line(line).unwrap_or_else(|e| panic!("{line}: {e}")) {
                LineOutcome::Applied { events, .. } => {
                    assert!(!mark || !events.iter().any(|e| e.contains("rejected")), "{line}: {events:?}");
                }
                LineOutcome::Refused(e) => panic!("refused {e}"),
            }
        }
        assert!(marks >= 3, "{marks} marks");
        assert_eq!(runner.engine.check_invariants(), Ok(()));
    }
}
