//! Matching throughput of verex against peer order books on the same stream (issue 7):
//! exchange-core's benchmark shape (see `verex_bench::workload`), single-symbol and
//! multi-symbol, one criterion group each, `Throughput::Elements` = commands.
//!
//! - `verex`: verex's matching alone, `verex_engine::matcher::Matcher` (the engine's order
//!   books and price-time rules without money) on plain integer commands: the like-for-like
//!   contender of the peers' bare books.
//! - `verex-apply`: the full `Engine::apply` on pre-encoded records (validation, nonces,
//!   locks, fees, matching, events): what a verex deployment pays per transaction.
//! - `matchcore`: matchcore 0.4 `OrderBook::execute` (single-threaded, deterministic).
//! - `orderbook-rs`: orderbook-rs 0.15 `OrderBook<()>` in its default configuration.
//!
//! One iteration runs the whole stream on a fresh, pre-filled book; building and pre-filling
//! the book is outside the timing. Before any timing, every contender runs the stream once
//! and must trade exactly what the reference book traded, command by command.
//!
//! `PEERS_COMMANDS` sets the stream length (default 100,000).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use verex_bench::peers::matchcore::Matchcore;
use verex_bench::peers::orderbook_rs::OrderbookRs;
use verex_bench::peers::verex::Verex;
use verex_bench::peers::verex_apply::VerexApply;
use verex_bench::peers::{check, run, Contender};
use verex_bench::workload::{Workload, WorkloadConfig};

const DEFAULT_COMMANDS: u32 = 100_000;

fn commands() -> u32 {
    std::env::var("PEERS_COMMANDS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_COMMANDS)
}

/// Total time of `iters` stream runs, each on a fresh book built outside the timing.
fn timed<C: Contender>(contender: &C, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut book = contender.fresh();
        let start = Instant::now();
        run(contender, &mut book);
        total += start.elapsed();
        drop(book);
    }
    total
}

fn bench_contender<C: Contender>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    workload: &Workload,
) {
    let contender = C::new(workload);
    let totals = check(&contender, workload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(totals, workload.shape.totals, "{} must trade exactly what the reference book trades", C::NAME);
    group.bench_function(C::NAME, |b| b.iter_custom(|iters| timed(&contender, iters)));
}

fn bench_workload(c: &mut Criterion, name: &str, config: WorkloadConfig) {
    let workload = Workload::generate(config);
    let shape = &workload.shape;
    eprintln!(
        "{name}: {} commands, amend {:.1}% gtc {:.1}% ioc {:.1}% cancel {:.1}%, trading {:.2}%, {} fills, {} lots",
        shape.commands(),
        shape.percent(shape.amends),
        shape.percent(shape.gtc),
        shape.percent(shape.ioc),
        shape.percent(shape.cancels),
        shape.percent(shape.totals.trading_commands),
        shape.totals.fills,
        shape.totals.qty_lots,
    );
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(u64::from(config.commands)));
    group.sampling_mode(SamplingMode::Flat);
    bench_contender::<Verex>(&mut group, &workload);
    bench_contender::<VerexApply>(&mut group, &workload);
    bench_contender::<Matchcore>(&mut group, &workload);
    bench_contender::<OrderbookRs>(&mut group, &workload);
    group.finish();
}

fn peers(c: &mut Criterion) {
    bench_workload(c, "peers_single_symbol", WorkloadConfig::single_symbol(commands()));
    bench_workload(c, "peers_multi_symbol", WorkloadConfig::multi_symbol(commands()));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = peers
}
criterion_main!(benches);
