//! Queries through the ring (SPEC 14, exchange-core's report queries): a question asked of the
//! running engine, sequenced with the transactions and answered by the engine stage in order,
//! without stopping it.
//!
//! [`super::Pipeline::submit_query`] puts a [`Query`] into an input slot. The journal stage
//! skips it (it is no transaction: nothing is journaled or applied); the engine stage answers
//! it against the state after every transaction sequenced before it, as [`QueryItem`]s in the
//! output ring, then a query end; the output stage hands them to
//! [`super::Subscriber::on_query_item`] and [`super::Subscriber::on_query_end`] once that
//! state is durable. The answer is built from the engine's iterators into pre-allocated
//! output slots: no allocation on the engine stage.

use crate::accounts::Balance;
use crate::matching::OrderView;
use crate::risk::Margin;
use crate::tx::Side;
use crate::Engine;

/// Most price levels a depth query returns per side.
pub const MAX_QUERY_LEVELS: u16 = 1_000;

/// A question for the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// A market's book: up to `levels` levels a side (at most [`MAX_QUERY_LEVELS`]), best first.
    Depth {
        /// Market index (see `Engine::market_id`).
        market: u16,
        /// Levels a side.
        levels: u16,
    },
    /// An account's report: balances, resting orders, positions and margin.
    Account {
        /// Account id.
        account: u64,
    },
}

/// One item of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryItem {
    /// A price level (depth query), bids first then asks, each best first.
    Level {
        /// Market index.
        market: u16,
        /// Side.
        side: Side,
        /// Price, market price units.
        price: i64,
        /// Total quantity, base units.
        total: u64,
        /// Orders at the level.
        orders: u32,
    },
    /// One asset's balance of the account (every listed asset, in index order).
    Balance {
        /// Asset index.
        asset: u16,
        /// The balance.
        balance: Balance,
    },
    /// One resting order of the account, oldest first.
    Order(OrderView),
    /// One open perp position of the account.
    Position {
        /// Perp market index.
        market: u16,
        /// Signed size, base units.
        size: i64,
    },
    /// The account's margin (value units), last item of an account report.
    Margin(Margin),
    /// No such market or account.
    NotFound,
}

/// Bytes of a query inside a slot's record area.
pub(crate) const QUERY_BYTES: usize = 16;

impl Query {
    /// Encodes the query into the first [`QUERY_BYTES`] of a slot's record area.
    pub(crate) fn write(self, bytes: &mut [u8]) {
        let mut out = [0u8; QUERY_BYTES];
        match self {
            Self::Depth { market, levels } => {
                out[0] = 1;
                out[2..4].copy_from_slice(&market.to_le_bytes());
                out[4..6].copy_from_slice(&levels.min(MAX_QUERY_LEVELS).to_le_bytes());
            }
            Self::Account { account } => {
                out[0] = 2;
                out[8..16].copy_from_slice(&account.to_le_bytes());
            }
        }
        bytes[..QUERY_BYTES].copy_from_slice(&out);
    }

    /// Decodes what [`Query::write`] wrote (`None`: not a query).
    pub(crate) fn read(bytes: &[u8]) -> Option<Self> {
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let mut account = [0u8; 8];
        account.copy_from_slice(&bytes[8..16]);
        match bytes[0] {
            1 => Some(Self::Depth { market: u16_at(2), levels: u16_at(4).min(MAX_QUERY_LEVELS) }),
            2 => Some(Self::Account { account: u64::from_le_bytes(account) }),
            _ => None,
        }
    }

    /// Answers the query against `engine`, item by item, without allocating.
    pub fn answer(self, engine: &Engine, mut emit: impl FnMut(QueryItem)) {
        match self {
            Self::Depth { market, levels } => {
                if usize::from(market) >= engine.catalog().markets().len() {
                    return emit(QueryItem::NotFound);
                }
                for side in [Side::Buy, Side::Sell] {
                    for (price, total, orders) in engine.depth(market, side).take(usize::from(levels)) {
                        emit(QueryItem::Level { market, side, price, total, orders });
                    }
                }
            }
            Self::Account { account } => {
                let Some(margin) = engine.margin_of(account) else { return emit(QueryItem::NotFound) };
                for asset in (0u16..).take(engine.catalog().assets().len()) {
                    if let Some(balance) = engine.balance(account, asset) {
                        emit(QueryItem::Balance { asset, balance });
                    }
                }
                engine.orders_of(account).for_each(|order| emit(QueryItem::Order(order)));
                for market in (0u16..).take(engine.catalog().markets().len()) {
                    let size = engine.position(account, market);
                    if size != 0 {
                        emit(QueryItem::Position { market, size });
                    }
                }
                emit(QueryItem::Margin(margin));
            }
        }
    }
}
