//! A fixed-seed order stream in the shape of exchange-core's published benchmark, fed as the
//! same plain commands to verex and to its peers.
//!
//! Shape (exchange-core's README): a book pre-filled to a steady depth (~1,000 resting orders
//! over ~750 price levels, 1,000 accounts), then 82% amends moving orders toward the last
//! trade price, 9% GTC, 3% IOC, 6% cancels, about 6% of commands trading. A multi-symbol
//! variant spreads the same per-book process over many books with Pareto-distributed
//! activity.
//!
//! The generator runs its own reference book (price-time priority, a price change loses time
//! priority and re-enters as a taker) so that every command it emits is valid when it arrives:
//! a cancel or amend names a live order, an amend changes the price. It also records the
//! expected fills of every command, which the benches compare with each contender's before
//! timing anything.
//!
//! Two rules keep every contender doing the same matching, and each narrows the stream in a
//! documented way:
//! - **No self-trade can arise:** buys come from odd accounts, sells from even ones. verex
//!   cancels a resting order of the taker's own account; the peers do not know accounts.
//! - **A crossing order never outlives the liquidity inside its limit:** a crossing GTC, IOC
//!   or re-priced amend has at most the quantity resting at or better than its limit, so it
//!   fills completely without reaching beyond. matchcore 0.4.0 matches a crossing limit order
//!   with no price limit (its `submit_crossable_order` passes `None`), so a remainder would
//!   trade through the limit there and nowhere else. A crossing GTC therefore never rests,
//!   and an IOC never has a remainder to cancel.

use std::collections::{BTreeMap, VecDeque};

/// Order side, as the stream states it: verex's own wire type (each adapter maps it to its
/// contender's type).
pub use verex_engine::tx::Side;

/// +1 for a buy (a higher price is more aggressive), -1 for a sell.
fn sign(side: Side) -> i64 {
    match side {
        Side::Buy => 1,
        Side::Sell => -1,
    }
}

/// What a command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// A good-till-canceled limit order: matches what crosses, rests the rest.
    Gtc,
    /// An immediate-or-cancel limit order.
    Ioc,
    /// Cancels the resting order `order_id`.
    Cancel,
    /// Moves the resting order `order_id` to `price_ticks` (loses time priority, may trade).
    Amend,
}

/// One command of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// What it does.
    pub kind: CommandKind,
    /// Book index, `0..symbols`.
    pub symbol: u16,
    /// Stream order id: places are numbered densely from 0 in stream order (prefill first);
    /// a cancel or amend names the order it acts on.
    pub order_id: u32,
    /// Acting account, `1..=accounts`: odd for buys, even for sells.
    pub account: u32,
    /// Side of the order (for a cancel or amend: of the order acted on).
    pub side: Side,
    /// Limit price of a place, new price of an amend, 0 for a cancel; in ticks.
    pub price_ticks: i64,
    /// Quantity of a place in lots; 0 for a cancel or amend.
    pub qty_lots: u64,
}

/// What one command traded: makers filled and lots traded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Fills (one per maker order touched).
    pub fills: u32,
    /// Lots traded.
    pub qty_lots: u64,
}

impl Outcome {
    /// Adds a fill of `qty_lots`.
    pub fn add_fill(&mut self, qty_lots: u64) {
        self.fills += 1;
        self.qty_lots += qty_lots;
    }
}

/// Totals of a list of outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Commands that traded at least once.
    pub trading_commands: u64,
    /// Fills.
    pub fills: u64,
    /// Lots traded.
    pub qty_lots: u64,
}

impl Totals {
    /// Sums outcomes.
    #[must_use]
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut totals = Self::default();
        for outcome in outcomes {
            totals.trading_commands += u64::from(outcome.fills > 0);
            totals.fills += u64::from(outcome.fills);
            totals.qty_lots += outcome.qty_lots;
        }
        totals
    }
}

/// Percent of commands that are amends.
pub const AMEND_PERCENT: u64 = 82;
/// Percent of commands that are GTC places.
pub const GTC_PERCENT: u64 = 9;
/// Percent of commands that are IOC places.
pub const IOC_PERCENT: u64 = 3;
/// Percent of commands that are cancels.
pub const CANCEL_PERCENT: u64 = 6;
const _: () = assert!(AMEND_PERCENT + GTC_PERCENT + IOC_PERCENT + CANCEL_PERCENT == 100);

/// Center price of every book, in ticks (100.00 at a tick of 0.01).
pub const CENTER_TICKS: i64 = 10_000;
/// Largest quantity of a resting (passive) order, in lots.
pub const MAX_RESTING_LOTS: u64 = 50;
/// Largest quantity of a taker (an IOC or a crossing GTC), in lots, before capping at the
/// liquidity inside its limit. Takers are smaller than makers, as in a real book: a maker is
/// filled by several takers, which lets ~6% of commands trade while the book keeps its depth
/// (resting orders come only from the 9% GTC, and 6% cancels take them away).
pub const MAX_TAKER_LOTS: u64 = 3;
/// A crossing order's limit lies this many ticks beyond the best opposite price, at most.
pub const MAX_CROSS_TICKS: u64 = 3;
/// An amend moves an order `ceil(distance / AMEND_PULL_DIVISOR)` ticks toward the last trade.
pub const AMEND_PULL_DIVISOR: i64 = 32;
/// Percent of GTC places that cross the spread (when the book is at or above its depth).
pub const GTC_CROSS_PERCENT: u64 = 100;
/// Depth is sampled every this many commands for [`Shape`].
pub const SAMPLE_EVERY: usize = 1_000;

/// Parameters of a workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Seed of the xorshift generator.
    pub seed: u64,
    /// Books.
    pub symbols: u16,
    /// Accounts, even: odd ones buy, even ones sell.
    pub accounts: u32,
    /// Resting orders per book after the prefill, and the depth the stream holds.
    pub orders_per_symbol: u32,
    /// Passive orders rest up to this many ticks away from the last trade price (the
    /// prefill: from the center price), on their own side of it.
    pub spread_ticks: i64,
    /// Commands in the stream after the prefill.
    pub commands: u32,
    /// Pareto (Zipf) exponent of book activity: book `k` gets weight `1 / (k + 1)^alpha`.
    pub pareto_alpha: f64,
}

impl WorkloadConfig {
    /// exchange-core's single-symbol shape: one book of ~1,000 orders over ~750 levels,
    /// 1,000 accounts.
    #[must_use]
    pub fn single_symbol(commands: u32) -> Self {
        Self {
            seed: 0x5eed_0000_0000_0001,
            symbols: 1,
            accounts: 1_000,
            orders_per_symbol: 1_000,
            spread_ticks: 1_000,
            commands,
            pareto_alpha: 0.0,
        }
    }

    /// The multi-symbol variant: 100 books of ~200 orders each, 2,000 accounts, activity
    /// Pareto-distributed over the books (alpha 1.16: the busiest 20% of books see ~80% of
    /// the commands).
    #[must_use]
    pub fn multi_symbol(commands: u32) -> Self {
        Self {
            seed: 0x5eed_0000_0000_0064,
            symbols: 100,
            accounts: 2_000,
            orders_per_symbol: 200,
            spread_ticks: 200,
            commands,
            pareto_alpha: 1.16,
        }
    }
}

/// The measured shape of a generated stream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shape {
    /// Amends in the stream.
    pub amends: u64,
    /// GTC places in the stream.
    pub gtc: u64,
    /// IOC places in the stream.
    pub ioc: u64,
    /// Cancels in the stream.
    pub cancels: u64,
    /// Fills and trading commands of the stream.
    pub totals: Totals,
    /// Trading commands that were amends.
    pub trading_amends: u64,
    /// Trading commands that were GTC places.
    pub trading_gtc: u64,
    /// Trading commands that were IOC places.
    pub trading_ioc: u64,
    /// Resting orders over all books after the prefill.
    pub prefill_orders: u64,
    /// Price levels over all books after the prefill.
    pub prefill_levels: u64,
    /// Mean resting orders over all books, sampled every [`SAMPLE_EVERY`] commands.
    pub mean_orders: f64,
    /// Mean price levels over all books, sampled likewise.
    pub mean_levels: f64,
    /// Share of the commands that went to the busiest book.
    pub busiest_book_share: f64,
}

impl Shape {
    /// Commands in the stream.
    #[must_use]
    pub fn commands(&self) -> u64 {
        self.amends + self.gtc + self.ioc + self.cancels
    }

    /// `count` as a percentage of the stream's commands.
    #[must_use]
    pub fn percent(&self, count: u64) -> f64 {
        100.0 * count as f64 / self.commands().max(1) as f64
    }
}

/// A generated workload: prefill, stream, and the expected outcome of every stream command.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Its parameters.
    pub config: WorkloadConfig,
    /// GTC places that build the initial books (none crosses).
    pub prefill: Vec<Command>,
    /// The measured stream.
    pub stream: Vec<Command>,
    /// What each stream command trades, per the reference book.
    pub expected: Vec<Outcome>,
    /// Order ids used (`0..order_ids`), prefill and stream.
    pub order_ids: u32,
    /// Measured shape.
    pub shape: Shape,
}

impl Workload {
    /// Generates the workload of `config` (deterministic in its seed).
    ///
    /// # Panics
    /// If `config.accounts` is odd or below 2, or there are no symbols.
    #[must_use]
    pub fn generate(config: WorkloadConfig) -> Self {
        assert!(config.accounts >= 2 && config.accounts.is_multiple_of(2), "accounts must be even");
        assert!(config.symbols > 0, "at least one symbol");
        let mut generator = Generator::new(config);
        let prefill = generator.prefill();
        let prefill_orders = generator.resting_orders();
        let prefill_levels = generator.levels();
        let (stream, expected, mut shape) = generator.stream();
        shape.prefill_orders = prefill_orders;
        shape.prefill_levels = prefill_levels;
        shape.totals = Totals::of(&expected);
        Self { config, prefill, stream, expected, order_ids: generator.next_order_id, shape }
    }
}

/// xorshift64* (Vigna): fixed seed, no dependency.
#[derive(Clone, Debug)]
pub struct Xorshift64 {
    state: u64,
}

impl Xorshift64 {
    /// A generator from a seed (0 is replaced: xorshift's state must be non-zero).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed } }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..bound` (`bound > 0`; the modulo bias is below 2^-40 for our bounds).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const DEAD: u32 = u32::MAX;

/// An order of the reference book.
#[derive(Clone, Copy, Debug)]
struct RefOrder {
    symbol: u16,
    side: Side,
    price_ticks: i64,
    remaining_lots: u64,
    /// Index in its session's `live` list, or [`DEAD`].
    live_at: u32,
}

/// One book of the reference model: price levels with FIFO queues of order ids.
#[derive(Clone, Debug, Default)]
struct Session {
    last_trade_ticks: i64,
    bids: BTreeMap<i64, VecDeque<u32>>,
    asks: BTreeMap<i64, VecDeque<u32>>,
    /// Resting order ids, in no order (for uniform picks).
    live: Vec<u32>,
    commands: u64,
}

impl Session {
    fn side(&self, side: Side) -> &BTreeMap<i64, VecDeque<u32>> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, VecDeque<u32>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Best price of the orders resting on `side`.
    fn best(&self, side: Side) -> Option<i64> {
        match side {
            Side::Buy => self.bids.last_key_value().map(|(price, _)| *price),
            Side::Sell => self.asks.first_key_value().map(|(price, _)| *price),
        }
    }

    fn count(&self, side: Side) -> usize {
        self.side(side).values().map(VecDeque::len).sum()
    }
}

/// Does a taker of `side` with `limit_ticks` trade against a resting `price_ticks`?
fn crosses(side: Side, limit_ticks: i64, price_ticks: i64) -> bool {
    match side {
        Side::Buy => price_ticks <= limit_ticks,
        Side::Sell => price_ticks >= limit_ticks,
    }
}

struct Generator {
    config: WorkloadConfig,
    rng: Xorshift64,
    sessions: Vec<Session>,
    orders: Vec<RefOrder>,
    next_order_id: u32,
    /// Cumulative Pareto weights of the books.
    activity_cdf: Vec<f64>,
}

impl Generator {
    fn new(config: WorkloadConfig) -> Self {
        let mut cumulative = 0.0;
        let activity_cdf = (0..config.symbols)
            .map(|k| {
                cumulative += 1.0 / f64::from(k + 1).powf(config.pareto_alpha);
                cumulative
            })
            .collect();
        let session = Session { last_trade_ticks: CENTER_TICKS, ..Session::default() };
        Self {
            config,
            rng: Xorshift64::new(config.seed),
            sessions: vec![session; usize::from(config.symbols)],
            orders: Vec::new(),
            next_order_id: 0,
            activity_cdf,
        }
    }

    fn resting_orders(&self) -> u64 {
        self.sessions.iter().map(|s| s.live.len() as u64).sum()
    }

    fn levels(&self) -> u64 {
        self.sessions.iter().map(|s| (s.bids.len() + s.asks.len()) as u64).sum()
    }

    /// An account of the side: odd accounts buy, even accounts sell (no self-trade can arise).
    fn account(&mut self, side: Side) -> u32 {
        let pair = u32::try_from(self.rng.below(u64::from(self.config.accounts / 2))).unwrap_or(0);
        match side {
            Side::Buy => 2 * pair + 1,
            Side::Sell => 2 * pair + 2,
        }
    }

    fn pick_symbol(&mut self) -> u16 {
        let total = self.activity_cdf.last().copied().unwrap_or(1.0);
        let x = self.rng.unit() * total;
        let at = self.activity_cdf.partition_point(|c| *c <= x);
        u16::try_from(at.min(self.activity_cdf.len() - 1)).unwrap_or(0)
    }

    /// Passive GTC places alternating sides, `spread_ticks` behind the center at most.
    fn prefill(&mut self) -> Vec<Command> {
        let mut prefill = Vec::new();
        for symbol in 0..self.config.symbols {
            for i in 0..self.config.orders_per_symbol {
                let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
                let distance = 1 + i64::try_from(self.rng.below(self.config.spread_ticks as u64)).unwrap_or(0);
                let price_ticks = CENTER_TICKS - sign(side) * distance;
                let qty_lots = 1 + self.rng.below(MAX_RESTING_LOTS);
                let (command, outcome) = self.place(symbol, CommandKind::Gtc, side, price_ticks, qty_lots);
                debug_assert_eq!(outcome.fills, 0, "the prefill never crosses");
                prefill.push(command);
            }
        }
        prefill
    }

    fn stream(&mut self) -> (Vec<Command>, Vec<Outcome>, Shape) {
        let commands = self.config.commands as usize;
        let mut stream = Vec::with_capacity(commands);
        let mut expected = Vec::with_capacity(commands);
        let mut shape = Shape::default();
        let (mut orders_sum, mut levels_sum, mut samples) = (0.0, 0.0, 0u32);
        for i in 0..commands {
            let symbol = self.pick_symbol();
            let (command, outcome) = self.next_command(symbol);
            let traded = u64::from(outcome.fills > 0);
            match command.kind {
                CommandKind::Amend => {
                    (shape.amends, shape.trading_amends) = (shape.amends + 1, shape.trading_amends + traded)
                }
                CommandKind::Gtc => (shape.gtc, shape.trading_gtc) = (shape.gtc + 1, shape.trading_gtc + traded),
                CommandKind::Ioc => (shape.ioc, shape.trading_ioc) = (shape.ioc + 1, shape.trading_ioc + traded),
                CommandKind::Cancel => shape.cancels += 1,
            }
            self.sessions[usize::from(symbol)].commands += 1;
            stream.push(command);
            expected.push(outcome);
            if i % SAMPLE_EVERY == 0 {
                orders_sum += self.resting_orders() as f64;
                levels_sum += self.levels() as f64;
                samples += 1;
            }
        }
        shape.mean_orders = orders_sum / f64::from(samples.max(1));
        shape.mean_levels = levels_sum / f64::from(samples.max(1));
        let busiest = self.sessions.iter().map(|s| s.commands).max().unwrap_or(0);
        shape.busiest_book_share = busiest as f64 / commands.max(1) as f64;
        (stream, expected, shape)
    }

    /// One command for book `symbol`, in the fixed mix; applied to the reference book.
    fn next_command(&mut self, symbol: u16) -> (Command, Outcome) {
        let roll = self.rng.below(100);
        let has_orders = !self.sessions[usize::from(symbol)].live.is_empty();
        if roll < AMEND_PERCENT && has_orders {
            self.amend(symbol)
        } else if roll < AMEND_PERCENT + GTC_PERCENT || !has_orders {
            self.gtc(symbol)
        } else if roll < AMEND_PERCENT + GTC_PERCENT + IOC_PERCENT {
            self.ioc(symbol)
        } else {
            self.cancel(symbol)
        }
    }

    /// A GTC: on the thinner side; passive (up to `spread_ticks` from the last trade), or,
    /// while the book is at depth, a crossing order filled completely inside its limit (the
    /// depth check keeps the book at `orders_per_symbol`: resting orders only come from GTCs).
    fn gtc(&mut self, symbol: u16) -> (Command, Outcome) {
        let session = &self.sessions[usize::from(symbol)];
        let side = if session.count(Side::Buy) <= session.count(Side::Sell) { Side::Buy } else { Side::Sell };
        let at_depth = session.live.len() >= self.config.orders_per_symbol as usize;
        if at_depth && self.rng.below(100) < GTC_CROSS_PERCENT {
            let qty_lots = 1 + self.rng.below(MAX_TAKER_LOTS);
            if let Some((limit_ticks, qty_lots)) = self.crossing(symbol, side, qty_lots) {
                return self.place(symbol, CommandKind::Gtc, side, limit_ticks, qty_lots);
            }
        }
        let qty_lots = 1 + self.rng.below(MAX_RESTING_LOTS);
        let price_ticks = self.passive_price(symbol, side);
        self.place(symbol, CommandKind::Gtc, side, price_ticks, qty_lots)
    }

    /// An IOC crossing up to [`MAX_CROSS_TICKS`] beyond the best opposite price; its side
    /// leans toward the center price (mean reversion keeps prices from drifting).
    fn ioc(&mut self, symbol: u16) -> (Command, Outcome) {
        let last_trade = self.sessions[usize::from(symbol)].last_trade_ticks;
        let lean = ((CENTER_TICKS - last_trade) as f64 / (4 * self.config.spread_ticks) as f64).clamp(-0.3, 0.3);
        let side = if self.rng.unit() < 0.5 + lean { Side::Buy } else { Side::Sell };
        let qty_lots = 1 + self.rng.below(MAX_TAKER_LOTS);
        match self.crossing(symbol, side, qty_lots) {
            Some((limit_ticks, qty_lots)) => self.place(symbol, CommandKind::Ioc, side, limit_ticks, qty_lots),
            // Nothing to cross: an IOC at the last trade price that trades nothing.
            None => self.place(symbol, CommandKind::Ioc, side, last_trade, 1),
        }
    }

    /// A limit beyond the best opposite price and a quantity capped at the liquidity inside
    /// it; `None` when the opposite side is empty.
    fn crossing(&mut self, symbol: u16, side: Side, qty_lots: u64) -> Option<(i64, u64)> {
        let best = self.sessions[usize::from(symbol)].best(side.opposite())?;
        let beyond = i64::try_from(self.rng.below(MAX_CROSS_TICKS + 1)).unwrap_or(0);
        let limit_ticks = (best + sign(side) * beyond).max(1);
        let available = self.liquidity(symbol, side, limit_ticks, qty_lots);
        Some((limit_ticks, qty_lots.min(available)))
    }

    /// A price that does not cross: up to `spread_ticks` from the last trade price on the
    /// side's own side of it, and never at or beyond the best opposite price.
    fn passive_price(&mut self, symbol: u16, side: Side) -> i64 {
        let session = &self.sessions[usize::from(symbol)];
        let anchor = session.last_trade_ticks;
        let opposite = session.best(side.opposite());
        let distance = i64::try_from(self.rng.below(self.config.spread_ticks as u64)).unwrap_or(0);
        let mut price = anchor - sign(side) * distance;
        if let Some(opposite) = opposite {
            if crosses(side, price, opposite) {
                price = opposite - sign(side);
            }
        }
        price.max(1)
    }

    /// An amend of a random resting order, toward the last trade price. If the new price
    /// crosses with more quantity than rests inside it, it stops one tick short of the best
    /// opposite price; if that is where the order already is, it steps one tick back.
    fn amend(&mut self, symbol: u16) -> (Command, Outcome) {
        let session = &self.sessions[usize::from(symbol)];
        let order_id = session.live[self.rng.below(session.live.len() as u64) as usize];
        let order = self.orders[order_id as usize];
        let distance = session.last_trade_ticks - order.price_ticks;
        let step = match distance.signum() {
            0 => {
                if self.rng.below(2) == 0 {
                    1
                } else {
                    -1
                }
            }
            sign => sign * ((distance.abs() + AMEND_PULL_DIVISOR - 1) / AMEND_PULL_DIVISOR),
        };
        let mut price_ticks = (order.price_ticks + step).max(1);
        if let Some(opposite) = self.sessions[usize::from(symbol)].best(order.side.opposite()) {
            let available = self.liquidity(symbol, order.side, price_ticks, order.remaining_lots);
            if crosses(order.side, price_ticks, opposite) && available < order.remaining_lots {
                price_ticks = opposite - sign(order.side);
            }
        }
        if price_ticks == order.price_ticks {
            price_ticks = order.price_ticks - sign(order.side);
        }
        let price_ticks = price_ticks.max(1);
        debug_assert_ne!(price_ticks, order.price_ticks, "an amend changes the price");
        self.unlink(order_id);
        let mut outcome = Outcome::default();
        let remaining = self.match_taker(symbol, order.side, price_ticks, order.remaining_lots, &mut outcome);
        debug_assert!(remaining == order.remaining_lots || remaining == 0, "a crossing amend fills completely");
        if remaining > 0 {
            self.rest(order_id, price_ticks, remaining);
        }
        let command = Command {
            kind: CommandKind::Amend,
            symbol,
            order_id,
            account: 0,
            side: order.side,
            price_ticks,
            qty_lots: 0,
        };
        (command, outcome)
    }

    /// A cancel of a random resting order.
    fn cancel(&mut self, symbol: u16) -> (Command, Outcome) {
        let session = &self.sessions[usize::from(symbol)];
        let order_id = session.live[self.rng.below(session.live.len() as u64) as usize];
        let side = self.orders[order_id as usize].side;
        self.unlink(order_id);
        let command =
            Command { kind: CommandKind::Cancel, symbol, order_id, account: 0, side, price_ticks: 0, qty_lots: 0 };
        (command, Outcome::default())
    }

    /// A place: a new order id, matching, and the remainder rests (GTC) or is dropped (IOC).
    fn place(
        &mut self,
        symbol: u16,
        kind: CommandKind,
        side: Side,
        price_ticks: i64,
        qty_lots: u64,
    ) -> (Command, Outcome) {
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        let account = self.account(side);
        self.orders.push(RefOrder { symbol, side, price_ticks, remaining_lots: qty_lots, live_at: DEAD });
        let mut outcome = Outcome::default();
        let remaining = self.match_taker(symbol, side, price_ticks, qty_lots, &mut outcome);
        debug_assert!(remaining == qty_lots || remaining == 0, "a crossing place fills completely");
        if remaining > 0 && kind == CommandKind::Gtc {
            self.rest(order_id, price_ticks, remaining);
        }
        (Command { kind, symbol, order_id, account, side, price_ticks, qty_lots }, outcome)
    }

    /// Lots resting on the opposite side at or better than `limit_ticks`, counted up to `cap`.
    fn liquidity(&self, symbol: u16, side: Side, limit_ticks: i64, cap: u64) -> u64 {
        let session = &self.sessions[usize::from(symbol)];
        let levels: Box<dyn Iterator<Item = (&i64, &VecDeque<u32>)>> = match side {
            Side::Buy => Box::new(session.asks.iter()),
            Side::Sell => Box::new(session.bids.iter().rev()),
        };
        let mut total = 0;
        for (price, queue) in levels {
            if !crosses(side, limit_ticks, *price) || total >= cap {
                break;
            }
            total += queue.iter().map(|id| self.orders[*id as usize].remaining_lots).sum::<u64>();
        }
        total
    }

    /// Price-time matching against the opposite side; returns the quantity left.
    fn match_taker(&mut self, symbol: u16, side: Side, limit_ticks: i64, qty_lots: u64, out: &mut Outcome) -> u64 {
        let mut remaining = qty_lots;
        while remaining > 0 {
            let session = &mut self.sessions[usize::from(symbol)];
            let Some(best) = session.best(side.opposite()) else { break };
            if !crosses(side, limit_ticks, best) {
                break;
            }
            let Some(&maker_id) = session.side(side.opposite()).get(&best).and_then(VecDeque::front) else { break };
            let maker = &mut self.orders[maker_id as usize];
            let fill = remaining.min(maker.remaining_lots);
            maker.remaining_lots -= fill;
            remaining -= fill;
            out.add_fill(fill);
            session.last_trade_ticks = best;
            if maker.remaining_lots == 0 {
                self.unlink(maker_id);
            }
        }
        remaining
    }

    /// Rests `order_id` at the back of its level.
    fn rest(&mut self, order_id: u32, price_ticks: i64, remaining_lots: u64) {
        let order = &mut self.orders[order_id as usize];
        order.price_ticks = price_ticks;
        order.remaining_lots = remaining_lots;
        let session = &mut self.sessions[usize::from(order.symbol)];
        order.live_at = u32::try_from(session.live.len()).unwrap_or(DEAD);
        session.live.push(order_id);
        session.side_mut(order.side).entry(price_ticks).or_default().push_back(order_id);
    }

    /// Takes a resting order out of its level and the live list.
    fn unlink(&mut self, order_id: u32) {
        let order = self.orders[order_id as usize];
        debug_assert_ne!(order.live_at, DEAD, "unlink of a resting order");
        let session = &mut self.sessions[usize::from(order.symbol)];
        let levels = session.side_mut(order.side);
        if let Some(queue) = levels.get_mut(&order.price_ticks) {
            if let Some(at) = queue.iter().position(|id| *id == order_id) {
                queue.remove(at);
            }
            if queue.is_empty() {
                levels.remove(&order.price_ticks);
            }
        }
        let at = order.live_at as usize;
        session.live.swap_remove(at);
        if let Some(&moved) = session.live.get(at) {
            self.orders[moved as usize].live_at = order.live_at;
        }
        self.orders[order_id as usize].live_at = DEAD;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print_shape(name: &str, shape: &Shape) {
        println!(
            "{name}: amend {:.1}% gtc {:.1}% ioc {:.1}% cancel {:.1}% trading {:.2}% (amend {:.2} gtc {:.2} ioc {:.2}) fills {} lots {} \
             prefill {} orders/{} levels, mean {:.0} orders/{:.0} levels, busiest book {:.1}%",
            shape.percent(shape.amends),
            shape.percent(shape.gtc),
            shape.percent(shape.ioc),
            shape.percent(shape.cancels),
            shape.percent(shape.totals.trading_commands),
            shape.percent(shape.trading_amends),
            shape.percent(shape.trading_gtc),
            shape.percent(shape.trading_ioc),
            shape.totals.fills,
            shape.totals.qty_lots,
            shape.prefill_orders,
            shape.prefill_levels,
            shape.mean_orders,
            shape.mean_levels,
            100.0 * shape.busiest_book_share,
        );
    }

    #[test]
    fn single_symbol_stream_has_exchange_core_shape() {
        let workload = Workload::generate(WorkloadConfig::single_symbol(200_000));
        let shape = workload.shape;
        print_shape("single", &shape);
        assert!((81.0..=83.0).contains(&shape.percent(shape.amends)));
        assert!((8.0..=10.0).contains(&shape.percent(shape.gtc)));
        assert!((2.5..=3.5).contains(&shape.percent(shape.ioc)));
        assert!((5.5..=6.5).contains(&shape.percent(shape.cancels)));
        assert!((5.0..=7.0).contains(&shape.percent(shape.totals.trading_commands)));
        assert!((900.0..=1_100.0).contains(&shape.mean_orders));
        assert!((650.0..=850.0).contains(&shape.mean_levels));
    }

    #[test]
    fn multi_symbol_stream_is_pareto_distributed() {
        let workload = Workload::generate(WorkloadConfig::multi_symbol(200_000));
        let shape = workload.shape;
        print_shape("multi", &shape);
        assert!((5.0..=7.0).contains(&shape.percent(shape.totals.trading_commands)));
        assert!(shape.busiest_book_share > 0.1, "the busiest book stands out");
    }

    #[test]
    fn same_seed_same_stream() {
        let a = Workload::generate(WorkloadConfig::single_symbol(10_000));
        let b = Workload::generate(WorkloadConfig::single_symbol(10_000));
        assert_eq!(a.stream, b.stream);
        assert_eq!(a.expected, b.expected);
    }
}
