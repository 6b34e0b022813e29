//! Market data from events alone (SPEC 14): L2 books and a trade tape, rebuilt by a publisher
//! that sees nothing but the event stream.
//!
//! Every event that changes a book names the level it moved and the level's new total:
//! [`Event::Fill`] the maker's level (`level_total`, on the side opposite `taker_side`, at
//! `price`), and [`Event::Order`] its `level` (a resting order's `rested`, `canceled`,
//! `amended`). A publisher sets that level to that total (removing it at 0): it never adds or
//! subtracts, so one lost event cannot skew a level forever, and a lost transaction is seen by
//! its seq ([`L2Books::apply_tx`] refuses a gap).
//!
//! ```
//! use verex_engine::market_data::L2Books;
//! use verex_engine::tx::Side;
//!
//! let mut books = L2Books::new();
//! // Feed every tx's events in seq order (from a subscriber or a journal replay):
//! books.apply_tx(1, &[]).expect("seq 1 follows 0");
//! assert!(books.apply_tx(3, &[]).is_err(), "seq 2 is missing: a gap");
//! assert_eq!(books.depth(0, Side::Buy).count(), 0);
//! ```
//!
//! Off the hot path: the books are `BTreeMap`s (ordered, deterministic), sized by what they
//! hold.

use std::collections::BTreeMap;

use crate::events::Event;
use crate::tx::Side;
use crate::Engine;

/// The event stream skipped or repeated a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("market data gap: expected seq {expected}, got {got}")]
pub struct SeqGap {
    /// The seq that should have come next.
    pub expected: u64,
    /// The seq that came.
    pub got: u64,
}

/// One trade of the tape, from an [`Event::Fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// Sequential trade id.
    pub trade_id: u64,
    /// The seq of the tx that caused it.
    pub seq: u64,
    /// The tx's stamp, ns.
    pub ts: u64,
    /// Market index.
    pub market: u16,
    /// Price, market price units.
    pub price: i64,
    /// Quantity, base units.
    pub qty: u64,
    /// The aggressor's side.
    pub taker_side: Side,
}

impl Trade {
    /// The trade in `event`, if it is a fill of tx `seq`.
    #[must_use]
    pub fn from_event(seq: u64, event: &Event) -> Option<Self> {
        match *event {
            Event::Fill { trade_id, ts, market, price, qty, taker_side, .. } => {
                Some(Self { trade_id, seq, ts, market, price, qty, taker_side })
            }
            _ => None,
        }
    }
}

/// A level change carried by an event: `(market, side, price, new total)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelUpdate {
    /// Market index.
    pub market: u16,
    /// The book side.
    pub side: Side,
    /// Level price, market price units.
    pub price: i64,
    /// The level's new total, base units (0: gone).
    pub total: u64,
}

impl LevelUpdate {
    /// The level `event` moved, if it moved one.
    #[must_use]
    pub fn from_event(event: &Event) -> Option<Self> {
        match *event {
            Event::Fill { market, price, taker_side, level_total, .. } => {
                Some(Self { market, side: taker_side.opposite(), price, total: level_total })
            }
            Event::Order { market, side, level: Some(level), .. } => {
                Some(Self { market, side, price: level.price, total: level.total })
            }
            _ => None,
        }
    }
}

/// Best bid and best ask of a book, each `(price, total)`.
pub type TopOfBook = (Option<(i64, u64)>, Option<(i64, u64)>);

/// The two sides of one market: price → total quantity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct L2Book {
    bids: BTreeMap<i64, u64>,
    asks: BTreeMap<i64, u64>,
}

impl L2Book {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, u64> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Levels of `side`, best first: `(price, total)`.
    pub fn depth(&self, side: Side) -> Box<dyn Iterator<Item = (i64, u64)> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.iter().rev().map(|(p, q)| (*p, *q))),
            Side::Sell => Box::new(self.asks.iter().map(|(p, q)| (*p, *q))),
        }
    }

    /// Best bid and best ask, `(price, total)`.
    #[must_use]
    pub fn top(&self) -> TopOfBook {
        (self.depth(Side::Buy).next(), self.depth(Side::Sell).next())
    }

    fn set(&mut self, side: Side, price: i64, total: u64) {
        let levels = self.side_mut(side);
        if total == 0 {
            levels.remove(&price);
        } else {
            levels.insert(price, total);
        }
    }
}

/// L2 books of every market, rebuilt from events, with the seq of the last tx applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct L2Books {
    books: Vec<L2Book>,
    last_seq: u64,
}

/// Where a rebuilt book and the engine's differ (see [`L2Books::first_difference`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookMismatch {
    /// Market index.
    pub market: u16,
    /// Side.
    pub side: Side,
    /// The rebuilt levels, best first.
    pub rebuilt: Vec<(i64, u64)>,
    /// The engine's levels, best first.
    pub engine: Vec<(i64, u64)>,
}

impl L2Books {
    /// Empty books before seq 1 (a publisher that follows a journal from its start).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The books of `engine` as they stand at its seq: a publisher that starts from a
    /// snapshot or a recovered engine continues with seq `engine.seq() + 1`.
    #[must_use]
    pub fn from_engine(engine: &Engine) -> Self {
        let markets = engine.catalog().markets().len();
        let mut books = vec![L2Book::default(); markets];
        for (m, book) in (0u16..).zip(books.iter_mut()) {
            for side in [Side::Buy, Side::Sell] {
                for (price, total, _) in engine.depth(m, side) {
                    book.set(side, price, total);
                }
            }
        }
        Self { books, last_seq: engine.seq() }
    }

    /// The seq of the last tx applied.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Applies the events of tx `seq`, which must be the next seq (every tx counts, an
    /// event-less one too: a subscriber calls this from `on_tx_end`).
    ///
    /// # Errors
    /// [`SeqGap`] when `seq` is not `last_seq() + 1`; nothing changes then.
    pub fn apply_tx(&mut self, seq: u64, events: &[Event]) -> Result<(), SeqGap> {
        let expected = self.last_seq + 1;
        if seq != expected {
            return Err(SeqGap { expected, got: seq });
        }
        for event in events {
            self.apply_event(event);
        }
        self.last_seq = seq;
        Ok(())
    }

    /// Applies one event's level change, if it carries one (no seq check: pair with
    /// [`L2Books::end_tx`] when events arrive one at a time).
    pub fn apply_event(&mut self, event: &Event) {
        if let Some(update) = LevelUpdate::from_event(event) {
            let m = usize::from(update.market);
            if self.books.len() <= m {
                self.books.resize(m + 1, L2Book::default());
            }
            self.books[m].set(update.side, update.price, update.total);
        }
    }

    /// Closes tx `seq` whose events went through [`L2Books::apply_event`].
    ///
    /// # Errors
    /// [`SeqGap`] when `seq` is not `last_seq() + 1`.
    pub fn end_tx(&mut self, seq: u64) -> Result<(), SeqGap> {
        self.apply_tx(seq, &[])
    }

    /// One market's book (empty if it never had a level).
    #[must_use]
    pub fn book(&self, market: u16) -> Option<&L2Book> {
        self.books.get(usize::from(market))
    }

    /// Levels of one side of a market, best first: `(price, total)`.
    pub fn depth(&self, market: u16, side: Side) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.books.get(usize::from(market)).into_iter().flat_map(move |book| book.depth(side))
    }

    /// Best bid and best ask of a market, `(price, total)`.
    #[must_use]
    pub fn top(&self, market: u16) -> TopOfBook {
        self.books.get(usize::from(market)).map_or((None, None), L2Book::top)
    }

    /// The first market and side whose rebuilt levels differ from `engine`'s depth, if any
    /// (every level, every market the engine lists).
    #[must_use]
    pub fn first_difference(&self, engine: &Engine) -> Option<BookMismatch> {
        let markets = engine.catalog().markets().len().max(self.books.len());
        for m in (0u16..).take(markets) {
            for side in [Side::Buy, Side::Sell] {
                let rebuilt: Vec<(i64, u64)> = self.depth(m, side).collect();
                let truth: Vec<(i64, u64)> = engine.depth(m, side).map(|(p, q, _)| (p, q)).collect();
                if rebuilt != truth {
                    return Some(BookMismatch { market: m, side, rebuilt, engine: truth });
                }
            }
        }
        None
    }
}
