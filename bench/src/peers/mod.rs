//! Contenders on the same stream: verex and two peer order books behind one small interface.
//!
//! Each adapter turns the [`Workload`]'s plain commands into its contender's own input once,
//! before anything is timed (verex: archived records with seq, stamp and nonce, signature
//! zeroed; matchcore: `Command`s; orderbook-rs: call arguments), so that a timed run does
//! nothing but hand each input to the contender.
//!
//! | contender | what one command costs |
//! | --- | --- |
//! | [`verex::Verex`] | `Matcher::place` / `cancel` / `amend`: verex's order books and matching alone (no money) |
//! | [`verex_apply::VerexApply`] | the full `Engine::apply`: seq/stamp/nonce checks, decimal conversion, lock rule and balance check, matching, fee settlement, events |
//! | [`matchcore::Matchcore`] | `OrderBook::execute`: seq/stamp checks, matching, the returned outcome |
//! | [`orderbook_rs::OrderbookRs`] | `add_limit_order` / `update_order` / `cancel_order` on a concurrent book |
//!
//! [`check`] runs a stream through a contender and compares what every command traded with
//! the reference book's expectation: nobody wins by doing less.

pub mod matchcore;
pub mod orderbook_rs;
pub mod verex;
pub mod verex_apply;

use crate::workload::{Outcome, Totals, Workload};

/// A matching engine driven by the stream.
pub trait Contender {
    /// Name in reports.
    const NAME: &'static str;
    /// What the commands act on: a pre-filled book (or engine).
    type Book;

    /// Converts the workload into this contender's inputs (untimed).
    fn new(workload: &Workload) -> Self;

    /// A fresh book with the prefill applied (untimed).
    fn fresh(&self) -> Self::Book;

    /// A fresh book set up to report what each command trades (untimed).
    fn fresh_for_check(&self) -> Self::Book {
        self.fresh()
    }

    /// Applies stream command `i` (the timed step).
    fn apply(&self, book: &mut Self::Book, i: usize);

    /// Applies stream command `i` and reports what it traded.
    fn apply_checked(&self, book: &mut Self::Book, i: usize) -> Outcome;

    /// Commands in the stream.
    fn len(&self) -> usize;

    /// True when the stream is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs the whole stream (the timed loop). Never inlined, so that a profiler can collect
/// exactly this (`valgrind --toggle-collect='*peers::run*'`).
#[inline(never)]
pub fn run<C: Contender>(contender: &C, book: &mut C::Book) {
    for i in 0..contender.len() {
        contender.apply(book, i);
    }
}

/// Runs the stream on a fresh book and compares every command's fills and traded lots with
/// the workload's expectation.
///
/// # Errors
/// A message naming the first command whose outcome differs.
pub fn check<C: Contender>(contender: &C, workload: &Workload) -> Result<Totals, String> {
    let mut book = contender.fresh_for_check();
    let mut outcomes = Vec::with_capacity(contender.len());
    for (i, expected) in workload.expected.iter().enumerate().take(contender.len()) {
        let outcome = contender.apply_checked(&mut book, i);
        if outcome != *expected {
            return Err(format!(
                "{}: command {i} ({:?}) traded {outcome:?}, the reference book {expected:?}",
                C::NAME,
                workload.stream[i]
            ));
        }
        outcomes.push(outcome);
    }
    Ok(Totals::of(&outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadConfig;

    fn check_all(workload: &Workload) {
        let verex = check(&verex::Verex::new(workload), workload).unwrap_or_else(|e| panic!("{e}"));
        let apply = check(&verex_apply::VerexApply::new(workload), workload).unwrap_or_else(|e| panic!("{e}"));
        let matchcore = check(&matchcore::Matchcore::new(workload), workload).unwrap_or_else(|e| panic!("{e}"));
        let orderbook_rs = check(&orderbook_rs::OrderbookRs::new(workload), workload).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verex, workload.shape.totals);
        assert_eq!(apply, verex);
        assert_eq!(matchcore, verex);
        assert_eq!(orderbook_rs, verex);
        assert!(verex.fills > 0);
    }

    #[test]
    fn every_contender_trades_as_the_reference_single_symbol() {
        check_all(&Workload::generate(WorkloadConfig::single_symbol(20_000)));
    }

    #[test]
    fn every_contender_trades_as_the_reference_multi_symbol() {
        check_all(&Workload::generate(WorkloadConfig::multi_symbol(20_000)));
    }
}
