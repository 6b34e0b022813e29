//! orderbook-rs 0.15 on the stream: one `OrderBook<()>` per symbol, in its default
//! configuration (`OrderBook::new`: wall-clock `MonotonicClock`, no STP, no fees, no
//! listeners), driven through its public calls from one thread.
//!
//! Order ids are the stream's own (`Id::Sequential`). A timed run installs no trade listener
//! (the book's cheapest configuration); the check run installs one that counts fills, since
//! `update_order` and a partially filled IOC report their trades only to the listener.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use orderbook_rs::{Id, OrderBook, TimeInForce, TradeListener, TradeResult};
use pricelevel::{OrderUpdate, Price};

use super::Contender;
use crate::workload::{Command, CommandKind, Outcome, Side, Workload};

/// One call on an orderbook-rs book.
#[derive(Clone, Copy, Debug)]
enum Call {
    Place { id: Id, price: u128, qty: u64, side: orderbook_rs::Side, tif: TimeInForce },
    Amend { id: Id, price: u128 },
    Cancel { id: Id },
}

fn call_of(command: &Command) -> (u16, Call) {
    let id = Id::from_u64(u64::from(command.order_id));
    let price = u128::try_from(command.price_ticks).unwrap_or(0);
    let call = match command.kind {
        CommandKind::Gtc | CommandKind::Ioc => {
            let side = match command.side {
                Side::Buy => orderbook_rs::Side::Buy,
                Side::Sell => orderbook_rs::Side::Sell,
            };
            let tif = if command.kind == CommandKind::Gtc { TimeInForce::Gtc } else { TimeInForce::Ioc };
            Call::Place { id, price, qty: command.qty_lots, side, tif }
        }
        CommandKind::Amend => Call::Amend { id, price },
        CommandKind::Cancel => Call::Cancel { id },
    };
    (command.symbol, call)
}

/// Fills and lots seen by a counting trade listener.
#[derive(Debug, Default)]
pub struct FillCounter {
    fills: AtomicU64,
    qty_lots: AtomicU64,
}

impl FillCounter {
    fn snapshot(&self) -> (u64, u64) {
        (self.fills.load(Ordering::Relaxed), self.qty_lots.load(Ordering::Relaxed))
    }
}

/// The books, and the fill counter of a check run.
pub struct OrderbookRsBooks {
    books: Vec<OrderBook<()>>,
    counter: Option<Arc<FillCounter>>,
}

/// orderbook-rs driven through its public calls on pre-built arguments.
pub struct OrderbookRs {
    symbols: u16,
    prefill: Vec<(u16, Call)>,
    stream: Vec<(u16, Call)>,
}

impl OrderbookRs {
    fn books(&self, counter: Option<&Arc<FillCounter>>) -> Vec<OrderBook<()>> {
        let mut books: Vec<OrderBook<()>> =
            (0..self.symbols).map(|i| OrderBook::<()>::new(&format!("BK{i:04}"))).collect();
        if let Some(counter) = counter {
            for book in &mut books {
                let counter = Arc::clone(counter);
                let listener: TradeListener = Arc::new(move |result: &TradeResult| {
                    for trade in result.match_result.trades().as_vec() {
                        counter.fills.fetch_add(1, Ordering::Relaxed);
                        counter.qty_lots.fetch_add(trade.quantity().as_u64(), Ordering::Relaxed);
                    }
                });
                book.set_trade_listener(listener);
            }
        }
        for (book, call) in &self.prefill {
            let result = call_book(&books[usize::from(*book)], *call);
            assert!(result, "orderbook-rs prefill refused {call:?}");
        }
        books
    }
}

/// Makes one call; `false` if the book returned an error where none is expected (an IOC's
/// error for its unfilled remainder is expected: the stream fills every IOC in full, so an
/// error there is reported too).
#[inline]
fn call_book(book: &OrderBook<()>, call: Call) -> bool {
    match call {
        Call::Place { id, price, qty, side, tif } => book.add_limit_order(id, price, qty, side, tif, None).is_ok(),
        Call::Amend { id, price } => {
            book.update_order(OrderUpdate::UpdatePrice { order_id: id, new_price: Price::new(price) }).is_ok()
        }
        Call::Cancel { id } => matches!(book.cancel_order(id), Ok(Some(_))),
    }
}

impl Contender for OrderbookRs {
    const NAME: &'static str = "orderbook-rs";
    type Book = OrderbookRsBooks;

    fn new(workload: &Workload) -> Self {
        Self {
            symbols: workload.config.symbols,
            prefill: workload.prefill.iter().map(call_of).collect(),
            stream: workload.stream.iter().map(call_of).collect(),
        }
    }

    fn fresh(&self) -> OrderbookRsBooks {
        OrderbookRsBooks { books: self.books(None), counter: None }
    }

    fn fresh_for_check(&self) -> OrderbookRsBooks {
        let counter = Arc::new(FillCounter::default());
        OrderbookRsBooks { books: self.books(Some(&counter)), counter: Some(counter) }
    }

    #[inline]
    fn apply(&self, books: &mut OrderbookRsBooks, i: usize) {
        let (book, call) = self.stream[i];
        core::hint::black_box(call_book(&books.books[usize::from(book)], call));
    }

    fn apply_checked(&self, books: &mut OrderbookRsBooks, i: usize) -> Outcome {
        let (book, call) = self.stream[i];
        let counter = books.counter.as_ref().unwrap_or_else(|| panic!("check run without a counter"));
        let before = counter.snapshot();
        let accepted = call_book(&books.books[usize::from(book)], call);
        assert!(accepted, "orderbook-rs refused command {i}: {call:?}");
        let after = counter.snapshot();
        Outcome { fills: u32::try_from(after.0 - before.0).unwrap_or(u32::MAX), qty_lots: after.1 - before.1 }
    }

    fn len(&self) -> usize {
        self.stream.len()
    }
}
