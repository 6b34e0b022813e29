//! Risk engine costs (issue: perps, margin, liquidation):
//!
//! - `mark_100k_positions_1pct_at_risk`: a `mark` of a perp with 100,000 open positions
//!   (50,000 long/short pairs), of which 500 thin longs (1% of positions) leave their risk
//!   band on every move and are evaluated in full; the mark alternates 96.7 / 94.7 (a thin long's band at either
//!   price is narrower than the 2.0 move back) so that
//!   nobody is liquidated and the state stays steady. Every position is settled (SPEC 6).
//! - `mark_100k_positions_50pct_at_risk`: the same with every long thin: the baseline of
//!   evaluating half the holders in full on every mark.
//! - `perp_fill_settles_pnl`: a one-lot IOC that fills a deep resting bid at 99.0 while the
//!   mark is 100.0: both sides realise `qty × (mark − price)` at once, fees are charged.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use verex_bench::{perp_mark_tx, perp_place_tx, PerpFixture, RecordTemplate};
use verex_engine::tx::{Side, TimeInForce};
use verex_engine::Event;

fn mark_sweep(c: &mut Criterion) {
    mark_bench(c, "mark_100k_positions_1pct_at_risk", 100);
    // Baseline in the same run: every long thin, so half of all positions are evaluated in
    // full on every mark (what a mark costs without the risk bands sparing the safe ones).
    mark_bench(c, "mark_100k_positions_50pct_at_risk", 1);
}

fn mark_bench(c: &mut Criterion, name: &str, at_risk_every: u64) {
    let mut fixture = PerpFixture::new(50_000, at_risk_every);
    let mut up = RecordTemplate::new(perp_mark_tx(967));
    let mut down = RecordTemplate::new(perp_mark_tx(947));
    // Check the shape once: every position settles, nobody is liquidated.
    assert!(fixture.apply_mark(&mut up));
    let settlements = fixture.book.events.events().iter().filter(|e| matches!(e, Event::Settlement { .. })).count();
    let liquidations = fixture.book.events.events().iter().filter(|e| matches!(e, Event::Liquidation { .. })).count();
    assert_eq!((settlements, liquidations), (100_000, 0));
    assert!(fixture.apply_mark(&mut down));
    let mut group = c.benchmark_group("risk");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.bench_function(name, |b| {
        b.iter(|| {
            assert!(fixture.apply_mark(&mut up));
            assert!(fixture.apply_mark(&mut down));
        });
    });
    group.finish();
}

fn fill_settles(c: &mut Criterion) {
    let mut fixture = PerpFixture::new(8, 1_000);
    // A deep bid at 99.0 (away from the mark) from well-funded account 3; account 4 sells it
    // one lot at a time.
    let mut deep = RecordTemplate::new(perp_place_tx(3, Side::Buy, TimeInForce::Gtc, 990, 9_000));
    assert!(fixture.book.apply(&mut deep, 3), "{:?}", fixture.book.events.events());
    let mut taker = RecordTemplate::new(perp_place_tx(4, Side::Sell, TimeInForce::Ioc, 990, 1));
    assert!(fixture.book.apply(&mut taker, 4));
    assert!(fixture.book.events.events().iter().any(|e| matches!(e, Event::Settlement { .. })));
    let mut group = c.benchmark_group("risk");
    group.throughput(Throughput::Elements(1));
    group.bench_function("perp_fill_settles_pnl", |b| {
        b.iter(|| assert!(fixture.book.apply(&mut taker, 4)));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(4)).warm_up_time(std::time::Duration::from_secs(1));
    targets = mark_sweep, fill_settles
}
criterion_main!(benches);
