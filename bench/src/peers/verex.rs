//! verex's matching alone: the stream's commands as plain integer commands to
//! [`Matcher`], the engine's own order books and price-time rules without accounts, money or
//! transactions (`verex_engine::matcher`). This is the like-for-like contender of the peers'
//! bare books; [`super::verex_apply`] is the whole state machine on the same stream.
//!
//! Order ids are the stream's own; prices are ticks and quantities lots, as the workload
//! generates them, so nothing is converted while timed.

use verex_engine::matcher::{MatchOut, Matcher, NewOrder};
use verex_engine::tx::TimeInForce;

use super::verex_apply::limits;
use super::Contender;
use crate::workload::{Command, CommandKind, Outcome, Workload};

/// verex's [`Matcher`] driven by the stream's commands.
pub struct Verex {
    books: u16,
    limits: verex_engine::Limits,
    prefill: Vec<Command>,
    stream: Vec<Command>,
}

/// A matcher and its reused output buffer.
pub struct VerexBooks {
    /// The books.
    pub matcher: Matcher,
    /// Trades of the last command.
    pub out: MatchOut,
}

impl Verex {
    fn apply_command(books: &mut VerexBooks, command: &Command) -> bool {
        let id = u64::from(command.order_id);
        let result = match command.kind {
            CommandKind::Gtc | CommandKind::Ioc => {
                let tif = if command.kind == CommandKind::Gtc { TimeInForce::Gtc } else { TimeInForce::Ioc };
                let order = NewOrder {
                    id,
                    account: command.account,
                    book: command.symbol,
                    side: command.side,
                    price: command.price_ticks,
                    qty: command.qty_lots,
                    tif,
                };
                books.matcher.place(&order, &mut books.out).map(|_| ())
            }
            CommandKind::Cancel => {
                books.out.clear();
                books.matcher.cancel(id).map(|_| ())
            }
            CommandKind::Amend => books.matcher.amend(id, Some(command.price_ticks), None, &mut books.out).map(|_| ()),
        };
        result.is_ok()
    }
}

impl Contender for Verex {
    const NAME: &'static str = "verex";
    type Book = VerexBooks;

    fn new(workload: &Workload) -> Self {
        Self {
            books: workload.config.symbols.max(1),
            limits: limits(workload),
            prefill: workload.prefill.clone(),
            stream: workload.stream.clone(),
        }
    }

    fn fresh(&self) -> VerexBooks {
        let matcher = Matcher::new(self.books, &self.limits).unwrap_or_else(|e| panic!("limits: {e}"));
        let out = matcher.out();
        let mut books = VerexBooks { matcher, out };
        for (i, command) in self.prefill.iter().enumerate() {
            assert!(Self::apply_command(&mut books, command), "prefill command {i} refused: {command:?}");
        }
        books
    }

    #[inline]
    fn apply(&self, books: &mut VerexBooks, i: usize) {
        // A refused command is a driver bug; the stream was checked before timing.
        core::hint::black_box(Self::apply_command(books, &self.stream[i]));
    }

    fn apply_checked(&self, books: &mut VerexBooks, i: usize) -> Outcome {
        let command = &self.stream[i];
        assert!(Self::apply_command(books, command), "command {i} refused: {command:?}");
        let mut outcome = Outcome::default();
        for trade in books.out.trades() {
            outcome.add_fill(trade.qty);
        }
        outcome
    }

    fn len(&self) -> usize {
        self.stream.len()
    }
}
