//! Fixed work for instruction counting under `valgrind --tool=callgrind` (stable on a noisy
//! machine, unlike wall time):
//!
//! ```text
//! cargo build --release -p verex-bench --example book_instructions
//! valgrind --tool=callgrind --toggle-collect='*measure_*' target/release/examples/book_instructions
//! ```
//! Divide the collected instruction count by [`OPS`] for instructions per operation.

use verex_bench::{cancel_tx, measure_place_cancel, place_tx, BookFixture, RecordTemplate};
use verex_engine::tx::{Side, TimeInForce};
use verex_engine::Limits;

/// Operations per measured function.
const OPS: u64 = 10_000;

fn fixture() -> BookFixture {
    let limits = Limits { max_accounts: 2_048, max_orders: 1 << 16, max_price_levels: 1 << 14, ..Limits::small() };
    let mut fixture = BookFixture::new(1_000, limits);
    fixture.prefill(1_000, 750, 1_000);
    fixture
}

#[inline(never)]
fn measure_match_one_fill(fixture: &mut BookFixture, taker: &mut RecordTemplate) {
    for _ in 0..OPS {
        assert!(fixture.apply(taker, 3));
    }
}

fn main() {
    let mut f = fixture();
    let mut place = RecordTemplate::new(place_tx(1, Side::Buy, TimeInForce::Gtc, 9_950, 3));
    let mut cancel = RecordTemplate::new(cancel_tx(1));
    measure_place_cancel(&mut f, &mut place, &mut cancel, OPS);
    let mut deep = RecordTemplate::new(place_tx(2, Side::Buy, TimeInForce::Gtc, 10_000, 1_000_000_000));
    assert!(f.apply(&mut deep, 2));
    let mut taker = RecordTemplate::new(place_tx(3, Side::Sell, TimeInForce::Ioc, 10_000, 1));
    measure_match_one_fill(&mut f, &mut taker);
    println!("{OPS} ops each; final seq {}", f.engine.seq());
}
