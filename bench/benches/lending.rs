//! Lending costs (issue 12): a `tick` accrues every pool in O(1) per asset, whatever the number
//! of accounts holding lends and borrows. `tick_{1k,100k,1m}_accounts`: two pools (USDC, BTC)
//! with every account lending in both and borrowing in one (`LendingFixture`); each iteration
//! is one tick a second after the last, which accrues interest in both pools (two `accrual`
//! events) and evaluates nobody (every borrower is far from maintenance, so no pool reaches
//! its watch index).
//!
//! `cargo bench -p verex-bench --bench lending` (the 1M fixture takes about a minute to build).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use verex_bench::{tick_tx, LendingFixture, RecordTemplate};
use verex_engine::Event;

fn tick_bench(c: &mut Criterion, name: &str, accounts: u64) {
    let mut fixture = LendingFixture::new(accounts);
    let mut tick = RecordTemplate::new(tick_tx());
    // Check the shape once: both pools accrue, nobody is evaluated into a liquidation.
    assert!(fixture.apply_tick(&mut tick));
    let events = fixture.book.events.events();
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Accrual { .. })).count(), 2, "{events:?}");
    assert_eq!(events.len(), 2, "a tick touches no account: {events:?}");
    let mut group = c.benchmark_group("lending");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| b.iter(|| assert!(fixture.apply_tick(&mut tick))));
    group.finish();
}

fn ticks(c: &mut Criterion) {
    tick_bench(c, "tick_1k_accounts", 1_000);
    tick_bench(c, "tick_100k_accounts", 100_000);
    tick_bench(c, "tick_1m_accounts", 1_000_000);
}

criterion_group!(benches, ticks);
criterion_main!(benches);
