//! matchcore 0.4 on the stream: one `OrderBook` per symbol, commands built before timing.
//!
//! matchcore numbers its orders by the sequence number of the submitting command (per book,
//! gap-free from 0), so the adapter maps each stream order id to that number while it builds
//! the commands. Stamps are the per-book sequence numbers (monotonic, no clock read).

use matchcore::{
    AmendCmd, AmendPatch, CancelCmd, Command as McCommand, CommandKind as McKind, CommandMeta, CommandOutcome,
    CommandReport, LimitOrder, LimitOrderPatch, NewOrder, OrderBook, OrderFlags, OrderId, OrderKind, Price, Quantity,
    QuantityPolicy, SequenceNumber, SubmitCmd, TimeInForce, Timestamp,
};

use super::Contender;
use crate::workload::{Command, CommandKind, Outcome, Side, Workload};

/// matchcore driven through `OrderBook::execute` on pre-built commands.
pub struct Matchcore {
    symbols: u16,
    prefill: Vec<(u16, McCommand)>,
    stream: Vec<(u16, McCommand)>,
}

/// Builds matchcore commands: per-book sequence numbers and the order id map.
struct Builder {
    next_seq: Vec<u64>,
    /// matchcore order id of each stream order id.
    ids: Vec<u64>,
}

impl Builder {
    fn command(&mut self, command: &Command) -> (u16, McCommand) {
        let book = usize::from(command.symbol);
        let seq = self.next_seq[book];
        self.next_seq[book] += 1;
        let kind = match command.kind {
            CommandKind::Gtc | CommandKind::Ioc => {
                self.ids[command.order_id as usize] = seq;
                let side = match command.side {
                    Side::Buy => matchcore::Side::Buy,
                    Side::Sell => matchcore::Side::Sell,
                };
                let tif = if command.kind == CommandKind::Gtc { TimeInForce::Gtc } else { TimeInForce::Ioc };
                let order = LimitOrder::new(
                    Price(u64::try_from(command.price_ticks).unwrap_or(0)),
                    QuantityPolicy::Standard { quantity: Quantity(command.qty_lots) },
                    OrderFlags::new(side, false, tif),
                );
                McKind::Submit(SubmitCmd { order: NewOrder::Limit(order) })
            }
            CommandKind::Cancel => McKind::Cancel(CancelCmd {
                order_id: OrderId(self.ids[command.order_id as usize]),
                order_kind: OrderKind::Limit,
            }),
            CommandKind::Amend => McKind::Amend(AmendCmd {
                order_id: OrderId(self.ids[command.order_id as usize]),
                patch: AmendPatch::Limit(
                    LimitOrderPatch::new().with_price(Price(u64::try_from(command.price_ticks).unwrap_or(0))),
                ),
            }),
        };
        let meta = CommandMeta { sequence_number: SequenceNumber(seq), timestamp: Timestamp(seq) };
        (command.symbol, McCommand { meta, kind })
    }
}

fn outcome_of(result: &CommandOutcome) -> Outcome {
    let mut outcome = Outcome::default();
    let effects = match result {
        CommandOutcome::Applied(CommandReport::Submit(effects) | CommandReport::Amend(effects)) => effects,
        CommandOutcome::Applied(CommandReport::Cancel) => return outcome,
        CommandOutcome::Rejected(failure) => panic!("matchcore rejected a command: {failure:?}"),
    };
    let targets = core::iter::once(effects.target_order()).chain(effects.triggered_orders());
    for order in targets {
        for trade in order.match_result().map(|m| m.trades()).unwrap_or_default() {
            outcome.add_fill(trade.quantity().0);
        }
    }
    outcome
}

impl Contender for Matchcore {
    const NAME: &'static str = "matchcore";
    type Book = Vec<OrderBook>;

    fn new(workload: &Workload) -> Self {
        let symbols = workload.config.symbols;
        let mut builder =
            Builder { next_seq: vec![0; usize::from(symbols)], ids: vec![0; workload.order_ids as usize] };
        let prefill = workload.prefill.iter().map(|c| builder.command(c)).collect();
        let stream = workload.stream.iter().map(|c| builder.command(c)).collect();
        Self { symbols, prefill, stream }
    }

    fn fresh(&self) -> Vec<OrderBook> {
        let mut books: Vec<OrderBook> = (0..self.symbols).map(|i| OrderBook::new(&format!("BK{i:04}"))).collect();
        for (book, command) in &self.prefill {
            let outcome = books[usize::from(*book)].execute(command);
            assert!(matches!(outcome, CommandOutcome::Applied(_)), "matchcore prefill: {outcome:?}");
        }
        books
    }

    #[inline]
    fn apply(&self, books: &mut Vec<OrderBook>, i: usize) {
        let (book, command) = &self.stream[i];
        core::hint::black_box(books[usize::from(*book)].execute(command));
    }

    fn apply_checked(&self, books: &mut Vec<OrderBook>, i: usize) -> Outcome {
        let (book, command) = &self.stream[i];
        outcome_of(&books[usize::from(*book)].execute(command))
    }

    fn len(&self) -> usize {
        self.stream.len()
    }
}
