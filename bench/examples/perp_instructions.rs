//! Fixed risk work for instruction counting under `valgrind --tool=callgrind` (stable on a
//! noisy machine, unlike wall time), the counterpart of `book_instructions` for perps:
//!
//! ```text
//! cargo build --release -p verex-bench --example perp_instructions
//! valgrind --tool=callgrind --toggle-collect='*measure_*' target/release/examples/perp_instructions
//! ```
//! `measure_marks`: [`MARKS`] marks of a perp with 2 × [`PAIRS`] positions, 1 % of them leaving
//! their risk band on each (the `perp` bench's shape); `measure_fills`: [`FILLS`] one-lot perp
//! fills away from the mark. Divide each function's inclusive count by its operations.

use verex_bench::{perp_mark_tx, perp_place_tx, PerpFixture, RecordTemplate};
use verex_engine::tx::{Side, TimeInForce};

/// Long/short pairs in the mark fixture.
const PAIRS: u64 = 20_000;
/// Marks measured (alternating 96.7 and 94.7).
const MARKS: u64 = 20;
/// Perp fills measured.
const FILLS: u64 = 10_000;

#[inline(never)]
fn measure_marks(fixture: &mut PerpFixture, up: &mut RecordTemplate, down: &mut RecordTemplate) {
    for _ in 0..MARKS / 2 {
        assert!(fixture.apply_mark(up));
        assert!(fixture.apply_mark(down));
    }
}

#[inline(never)]
fn measure_fills(fixture: &mut PerpFixture, taker: &mut RecordTemplate) {
    for _ in 0..FILLS {
        assert!(fixture.book.apply(taker, 4));
    }
}

fn main() {
    let mut marks = PerpFixture::new(PAIRS, 100);
    let mut up = RecordTemplate::new(perp_mark_tx(967));
    let mut down = RecordTemplate::new(perp_mark_tx(947));
    measure_marks(&mut marks, &mut up, &mut down);
    let mut fills = PerpFixture::new(8, 1_000);
    // 60 BTC at 99.0 against the mark 94.7: its initial margin (594) and what its fill loses
    // against the mark at once (258) fit in account 3's 1,000 USDC (an order whose fill would
    // break initial margin is refused), and it outlasts the FILLS one-lot takers.
    let mut deep = RecordTemplate::new(perp_place_tx(3, Side::Buy, TimeInForce::Gtc, 990, 60_000));
    assert!(fills.book.apply(&mut deep, 3));
    let mut taker = RecordTemplate::new(perp_place_tx(4, Side::Sell, TimeInForce::Ioc, 990, 1));
    measure_fills(&mut fills, &mut taker);
    println!("{MARKS} marks over {} positions, {FILLS} fills", 2 * PAIRS);
}
