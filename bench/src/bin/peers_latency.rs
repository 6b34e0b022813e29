//! Per-command latency (HDR histograms) and paired throughput of verex and its peers on the
//! same fixed-seed stream; writes one JSON document for `perf/run`.
//!
//! ```text
//! cargo run --release -p verex-bench --bin peers_latency -- [--commands N] [--rounds R] [--out FILE]
//! ```
//!
//! `--profile verex|verex-apply|matchcore|orderbook-rs [--multi]` only runs that contender's stream
//! `rounds` times (no clocks, no histogram), for `perf record` or instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*peers::run*' \
//!     target/release/peers_latency --profile verex --rounds 1
//! ```
//!
//! What is measured, honestly:
//! - **Service time, not response time.** Each command is timed alone (`Instant::now` before
//!   and after) in a tight loop on one thread: nothing queues, so there is no coordinated
//!   omission to correct and none is corrected; a slow command does not delay the
//!   measurement of the next. Under offered load a stall would also delay every command
//!   queued behind it: response-time tails would be worse than these, for every contender.
//! - The timer's own cost (two clock reads) is inside every sample, for every contender
//!   alike; its distribution is reported as `timer`.
//! - Warm-up: each contender first runs the whole stream once untimed (process warm-up: the
//!   allocator's free memory, caches, branch predictors; a fresh verex engine otherwise
//!   page-faults its lazily zeroed index tables on first use), then in every round the first
//!   10% of the stream runs untimed on the fresh book.
//! - Every round replays the same commands on the same state, so each command's minimum
//!   over the rounds is what the command itself costs, with the machine's interruptions
//!   filtered out (`min_over_rounds_ns`); the raw distribution (`latency_ns`) keeps them.
//! - Minor page faults inside the timed loops are counted (`timed_page_faults`).
//! - Rounds alternate the contenders (order rotated per round) so that the shared machine's
//!   noise falls on all of them; each round also times the whole stream without per-command
//!   clocks (paired throughput: per-round ratios, their median reported).

use std::fmt::Write as _;
use std::time::Instant;

use hdrhistogram::Histogram;
use verex_bench::hdr::histogram;
use verex_bench::peers::matchcore::Matchcore;
use verex_bench::peers::orderbook_rs::OrderbookRs;
use verex_bench::peers::verex::Verex;
use verex_bench::peers::verex_apply::VerexApply;
use verex_bench::peers::{check, run, Contender};
use verex_bench::workload::{Shape, Totals, Workload, WorkloadConfig};

/// Share of the stream run untimed on a fresh book before recording (per mille).
const WARMUP_PER_MILLE: usize = 100;
/// Percentiles reported in the table.
const PERCENTILES: [(&str, f64); 7] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
    ("p99.999", 99.999),
    ("p100", 100.0),
];

struct Args {
    commands: u32,
    rounds: usize,
    out: Option<String>,
    profile: Option<String>,
    multi: bool,
}

fn parse_args() -> Args {
    let mut args = Args { commands: 200_000, rounds: 5, out: None, profile: None, multi: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--multi" {
            args.multi = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--profile" => args.profile = Some(value),
            "--commands" => args.commands = value.parse().unwrap_or_else(|e| panic!("--commands: {e}")),
            "--rounds" => args.rounds = value.parse().unwrap_or_else(|e| panic!("--rounds: {e}")),
            "--out" => args.out = Some(value),
            _ => panic!("unknown flag {flag} (use --commands N --rounds R --out FILE)"),
        }
    }
    args
}

fn ns(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Minor page faults of this thread so far (`/proc/thread-self/stat`, field 10); 0 where
/// unavailable. Read outside the timed code.
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // After the command name: state, ppid, pgrp, session, tty, tpgid, flags, minflt.
    after_comm.split_whitespace().nth(7).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// One contender's measurements over all rounds.
struct Measured {
    name: &'static str,
    latency: Histogram<u64>,
    /// Minor page faults taken inside the per-command timed loops (all rounds).
    timed_faults: u64,
    /// Per stream command: its fastest time over the rounds. Every round replays the same
    /// commands on the same state, so the minimum drops what the machine added (interrupts,
    /// preemption) and keeps what the command itself costs.
    min_ns: Vec<u64>,
    /// Per round: ns per command of the whole stream, no per-command clock.
    stream_ns_per_command: Vec<f64>,
    totals: Totals,
}

/// A contender with its inputs, measured round by round.
trait Runner {
    fn warm_up(&mut self);
    fn round(&mut self);
    fn measured(&self) -> &Measured;
}

struct Timed<C: Contender> {
    contender: C,
    measured: Measured,
}

impl<C: Contender> Timed<C> {
    fn new(workload: &Workload) -> Self {
        let contender = C::new(workload);
        let totals = check(&contender, workload).unwrap_or_else(|e| panic!("{e}"));
        let measured = Measured {
            name: C::NAME,
            latency: histogram(),
            timed_faults: 0,
            min_ns: Vec::new(),
            stream_ns_per_command: Vec::new(),
            totals,
        };
        Self { contender, measured }
    }
}

impl<C: Contender> Runner for Timed<C> {
    fn warm_up(&mut self) {
        let mut book = self.contender.fresh();
        run(&self.contender, &mut book);
    }

    fn round(&mut self) {
        let contender = &self.contender;
        let len = contender.len();
        let warmup = len * WARMUP_PER_MILLE / 1_000;
        let mut book = contender.fresh();
        for i in 0..warmup {
            contender.apply(&mut book, i);
        }
        self.measured.min_ns.resize(len, u64::MAX);
        let faults_before = minor_faults();
        for i in warmup..len {
            let start = Instant::now();
            contender.apply(&mut book, i);
            let elapsed = ns(start.elapsed());
            self.measured.latency.saturating_record(elapsed.max(1));
            self.measured.min_ns[i] = self.measured.min_ns[i].min(elapsed);
        }
        self.measured.timed_faults += minor_faults().saturating_sub(faults_before);
        drop(book);
        let mut book = contender.fresh();
        let start = Instant::now();
        run(contender, &mut book);
        let elapsed = ns(start.elapsed());
        self.measured.stream_ns_per_command.push(elapsed as f64 / len.max(1) as f64);
    }

    fn measured(&self) -> &Measured {
        &self.measured
    }
}

/// The distribution of the per-command minimum over rounds (see [`Measured::min_ns`]).
fn denoised(measured: &Measured) -> Histogram<u64> {
    let mut h = histogram();
    for &v in measured.min_ns.iter().filter(|v| **v != u64::MAX) {
        h.saturating_record(v.max(1));
    }
    h
}

/// The distribution of two back-to-back clock reads: the floor of every sample.
fn timer_overhead(samples: usize) -> Histogram<u64> {
    let mut timer = histogram();
    for _ in 0..samples {
        let start = Instant::now();
        let elapsed = ns(start.elapsed());
        timer.saturating_record(elapsed.max(1));
    }
    timer
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn histogram_json(h: &Histogram<u64>) -> String {
    let mut out = String::from("{");
    for (name, q) in PERCENTILES {
        let _ = write!(out, "\"{name}\": {}, ", h.value_at_percentile(q));
    }
    let _ = write!(out, "\"mean\": {:.1}, \"count\": {}, \"max\": {}, \"curve\": [", h.mean(), h.len(), h.max());
    // The percentile distribution for plots: 1 - 10^-k steps, two points per decade.
    let mut first = true;
    for step in 0..=12 {
        let nines = f64::from(step) / 2.0;
        let q = 100.0 * (1.0 - 10f64.powf(-nines));
        let _ = write!(out, "{}[{q:.6}, {}]", if first { "" } else { ", " }, h.value_at_percentile(q));
        first = false;
    }
    out.push_str("]}");
    out
}

fn shape_json(shape: &Shape) -> String {
    format!(
        "{{\"commands\": {}, \"amend_pct\": {:.2}, \"gtc_pct\": {:.2}, \"ioc_pct\": {:.2}, \"cancel_pct\": {:.2}, \
         \"trading_pct\": {:.2}, \"trading_amend_pct\": {:.2}, \"trading_gtc_pct\": {:.2}, \"trading_ioc_pct\": {:.2}, \
         \"prefill_orders\": {}, \"prefill_levels\": {}, \"mean_orders\": {:.0}, \"mean_levels\": {:.0}, \
         \"busiest_book_share\": {:.3}}}",
        shape.commands(),
        shape.percent(shape.amends),
        shape.percent(shape.gtc),
        shape.percent(shape.ioc),
        shape.percent(shape.cancels),
        shape.percent(shape.totals.trading_commands),
        shape.percent(shape.trading_amends),
        shape.percent(shape.trading_gtc),
        shape.percent(shape.trading_ioc),
        shape.prefill_orders,
        shape.prefill_levels,
        shape.mean_orders,
        shape.mean_levels,
        shape.busiest_book_share,
    )
}

fn measure(name: &str, config: WorkloadConfig, rounds: usize) -> String {
    let workload = Workload::generate(config);
    let mut runners: Vec<Box<dyn Runner>> = vec![
        Box::new(Timed::<Verex>::new(&workload)),
        Box::new(Timed::<VerexApply>::new(&workload)),
        Box::new(Timed::<Matchcore>::new(&workload)),
        Box::new(Timed::<OrderbookRs>::new(&workload)),
    ];
    for runner in &runners {
        let totals = runner.measured().totals;
        assert_eq!(totals, workload.shape.totals, "{} trades as the reference book", runner.measured().name);
    }
    for runner in &mut runners {
        runner.warm_up();
    }
    for round in 0..rounds {
        for k in 0..runners.len() {
            let at = (round + k) % runners.len();
            runners[at].round();
        }
        eprintln!("{name}: round {} of {rounds} done", round + 1);
    }
    let verex_stream = runners[0].measured().stream_ns_per_command.clone();
    let mut out = format!(
        "{{\"shape\": {}, \"fills\": {}, \"traded_lots\": {}, \"contenders\": {{",
        shape_json(&workload.shape),
        workload.shape.totals.fills,
        workload.shape.totals.qty_lots
    );
    for (k, runner) in runners.iter().enumerate() {
        let m = runner.measured();
        let ratios: Vec<f64> =
            m.stream_ns_per_command.iter().zip(&verex_stream).map(|(peer, verex)| peer / verex).collect();
        let per_round: Vec<String> = m.stream_ns_per_command.iter().map(|v| format!("{v:.1}")).collect();
        let _ = write!(
            out,
            "{}\"{}\": {{\"latency_ns\": {}, \"min_over_rounds_ns\": {}, \"timed_page_faults\": {}, \
             \"stream_ns_per_command\": [{}], \"median_stream_ns_per_command\": {:.1}, \
             \"median_paired_speedup_of_verex\": {:.3}}}",
            if k == 0 { "" } else { ", " },
            m.name,
            histogram_json(&m.latency),
            histogram_json(&denoised(m)),
            m.timed_faults,
            per_round.join(", "),
            median(&m.stream_ns_per_command),
            median(&ratios),
        );
    }
    out.push_str("}}");
    out
}

/// Runs one contender's stream `rounds` times on fresh books: nothing else in the profile.
fn profile<C: Contender>(workload: &Workload, rounds: usize) {
    let contender = C::new(workload);
    let totals = check(&contender, workload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(totals, workload.shape.totals, "{} trades as the reference book", C::NAME);
    for _ in 0..rounds {
        let mut book = contender.fresh();
        let start = Instant::now();
        run(&contender, &mut book);
        let elapsed = ns(start.elapsed());
        eprintln!("{}: {:.1} ns per command", C::NAME, elapsed as f64 / contender.len().max(1) as f64);
    }
}

fn main() {
    let args = parse_args();
    if let Some(name) = args.profile.as_deref() {
        let config = if args.multi {
            WorkloadConfig::multi_symbol(args.commands)
        } else {
            WorkloadConfig::single_symbol(args.commands)
        };
        let workload = Workload::generate(config);
        match name {
            "verex" => profile::<Verex>(&workload, args.rounds),
            "verex-apply" => profile::<VerexApply>(&workload, args.rounds),
            "matchcore" => profile::<Matchcore>(&workload, args.rounds),
            "orderbook-rs" => profile::<OrderbookRs>(&workload, args.rounds),
            _ => panic!("--profile takes verex, verex-apply, matchcore or orderbook-rs"),
        }
        return;
    }
    let timer = timer_overhead(1_000_000);
    let single = measure("single_symbol", WorkloadConfig::single_symbol(args.commands), args.rounds);
    let multi = measure("multi_symbol", WorkloadConfig::multi_symbol(args.commands), args.rounds);
    let json = format!(
        "{{\"commands\": {}, \"rounds\": {}, \"warmup_per_mille\": {WARMUP_PER_MILLE}, \"timer_ns\": {}, \
         \"workloads\": {{\"single_symbol\": {single}, \"multi_symbol\": {multi}}}}}\n",
        args.commands,
        args.rounds,
        histogram_json(&timer),
    );
    match args.out {
        Some(path) => std::fs::write(&path, json).unwrap_or_else(|e| panic!("{path}: {e}")),
        None => print!("{json}"),
    }
}
