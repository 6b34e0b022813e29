//! Order book costs on a pre-filled book (exchange-core shape: ~1,000 resting orders over
//! ~750 price levels per side, 1,000 accounts), measured through the full `apply` (nonce,
//! validation, locks, fees, events), on pre-encoded records.
//!
//! - `place_cancel`: a GTC bid that rests inside the book, then its cancel (2 txs).
//! - `match_one_fill`: an IOC sell of one lot against a deep best bid (1 tx, 1 fill).
//! - `match_sweep_5`: an IOC buy through 5 ask levels, then 5 GTC asks re-adding them (6 txs).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use verex_bench::{cancel_tx, place_tx, BookFixture, RecordTemplate};
use verex_engine::tx::{Side, TimeInForce};
use verex_engine::Limits;

const ACCOUNTS: u64 = 1_000;

fn limits() -> Limits {
    Limits {
        max_accounts: 2_048,
        max_orders: 1 << 16,
        max_price_levels: 1 << 14,
        max_levels_per_side: 1 << 13,
        ..Limits::small()
    }
}

fn fixture() -> BookFixture {
    let mut fixture = BookFixture::new(ACCOUNTS, limits());
    fixture.prefill(1_000, 750, ACCOUNTS);
    fixture
}

fn place_cancel(c: &mut Criterion) {
    let mut fixture = fixture();
    let mut place = RecordTemplate::new(place_tx(1, Side::Buy, TimeInForce::Gtc, 9_950, 3));
    let mut cancel = RecordTemplate::new(cancel_tx(1));
    let mut group = c.benchmark_group("book");
    group.throughput(Throughput::Elements(2));
    group.bench_function("place_cancel", |b| {
        b.iter(|| {
            let order_id = fixture.engine.next_order_id();
            assert!(fixture.apply(&mut place, 1));
            cancel.set_order_id(order_id);
            assert!(fixture.apply(&mut cancel, 1));
        });
    });
    group.finish();
}

fn match_one_fill(c: &mut Criterion) {
    let mut fixture = fixture();
    // A deep best bid at 100.00 from account 2 (1,000,000 lots): each taker takes one lot.
    let mut deep = RecordTemplate::new(place_tx(2, Side::Buy, TimeInForce::Gtc, 10_000, 1_000_000_000));
    assert!(fixture.apply(&mut deep, 2));
    let mut taker = RecordTemplate::new(place_tx(3, Side::Sell, TimeInForce::Ioc, 10_000, 1));
    let mut group = c.benchmark_group("book");
    group.throughput(Throughput::Elements(1));
    group.bench_function("match_one_fill", |b| {
        b.iter(|| assert!(fixture.apply(&mut taker, 3)));
    });
    group.finish();
}

fn match_sweep(c: &mut Criterion) {
    let mut fixture = fixture();
    // Five thin ask levels at 100.00..100.04 from account 4 (above the prefilled best ask 100.01
    // only in part: the sweep takes whatever is at or below 100.04, then they are re-added).
    let mut makers: Vec<RecordTemplate> =
        (0..5).map(|i| RecordTemplate::new(place_tx(4, Side::Sell, TimeInForce::Gtc, 9_996 + i, 2))).collect();
    for maker in &mut makers {
        assert!(fixture.apply(maker, 4));
    }
    let mut taker = RecordTemplate::new(place_tx(5, Side::Buy, TimeInForce::Ioc, 10_000, 10));
    let mut group = c.benchmark_group("book");
    group.throughput(Throughput::Elements(6));
    group.bench_function("match_sweep_5", |b| {
        b.iter(|| {
            assert!(fixture.apply(&mut taker, 5));
            for maker in &mut makers {
                assert!(fixture.apply(maker, 4));
            }
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = place_cancel, match_one_fill, match_sweep
}
criterion_main!(benches);
