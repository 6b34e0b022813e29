//! The cost of a query answered through the ring (`runtime::Query`, SPEC 14), in instructions,
//! beside the order flow's, counted under `valgrind --tool=callgrind` (stable on a noisy
//! machine, unlike wall time):
//!
//! ```text
//! cargo build --release -p verex-bench --example query_instructions
//! valgrind --tool=callgrind --toggle-collect='*measure_*' target/release/examples/query_instructions
//! ```
//! On the `book_instructions` fixture (1,000 resting orders over 750 levels a side, 1,000
//! accounts): `measure_place_cancel` is the order flow ([`OPS`] applies), `measure_depth_queries`
//! answers [`QUERIES`] depth queries of 10 levels a side, `measure_account_queries` [`QUERIES`]
//! account reports (balances, orders, positions, margin), each item handed to a sink as the
//! engine stage hands it to the output ring. Divide each function's inclusive count by its
//! operations.

use std::hint::black_box;

use verex_bench::{cancel_tx, measure_place_cancel, place_tx, BookFixture, RecordTemplate};
use verex_engine::runtime::{Query, QueryItem};
use verex_engine::tx::{Side, TimeInForce};
use verex_engine::Limits;

/// Transactions of the order-flow measurement.
const OPS: u64 = 10_000;
/// Queries of each kind.
const QUERIES: u64 = 10_000;

#[inline(never)]
fn measure_depth_queries(fixture: &BookFixture) -> u64 {
    let mut items = 0u64;
    for _ in 0..QUERIES {
        Query::Depth { market: 0, levels: 10 }.answer(&fixture.engine, |item: QueryItem| {
            black_box(item);
            items += 1;
        });
    }
    items
}

#[inline(never)]
fn measure_account_queries(fixture: &BookFixture) -> u64 {
    let mut items = 0u64;
    for i in 0..QUERIES {
        Query::Account { account: 1 + i % 1_000 }.answer(&fixture.engine, |item: QueryItem| {
            black_box(item);
            items += 1;
        });
    }
    items
}

fn main() {
    let limits = Limits { max_accounts: 2_048, max_orders: 1 << 16, max_price_levels: 1 << 14, ..Limits::small() };
    let mut f = BookFixture::new(1_000, limits);
    f.prefill(1_000, 750, 1_000);
    let mut place = RecordTemplate::new(place_tx(1, Side::Buy, TimeInForce::Gtc, 9_950, 3));
    let mut cancel = RecordTemplate::new(cancel_tx(1));
    measure_place_cancel(&mut f, &mut place, &mut cancel, OPS);
    let depth_items = measure_depth_queries(&f);
    let account_items = measure_account_queries(&f);
    println!(
        "{OPS} txs; {QUERIES} depth queries ({depth_items} items); {QUERIES} account reports ({account_items} items)"
    );
}
