//! Rate-controlled latency harness for the pipeline, in the style of the LMAX and
//! exchange-core latency tables.
//!
//! For each offered rate, a fresh engine (1,000 funded accounts, a book pre-filled with 2,000
//! resting orders) runs in a [`Pipeline`] and the harness injects pre-verified, pre-encoded
//! transactions from a realistic order stream (35% passive GTC limits, 10% crossing IOCs, 35%
//! cancels and 20% amends of the harness' own resting orders) at a fixed schedule: tx `i` is
//! due at `start + i / rate`. Each tx's latency runs from that *planned* send time to the
//! release of its last event by the output stage (after its record is durable), so a stall
//! anywhere (a full ring, a slow commit, the injector itself falling behind) counts against
//! every tx it delays: no coordinated omission. The first `--warmup` txs of each rate are not
//! recorded. `max` injects as fast as the ring accepts (latency then measures queueing).
//!
//! ```text
//! cargo run --release -p verex-bench --bin latency -- [--rates 100000,500000,1000000,2000000,max]
//!     [--sinks memory,journal-batch,journal-async,msync-floor] [--seconds 2] [--warmup 100000]
//!     [--wait yielding|blocking|busy-spin] [--pace yield|spin] [--injector-nice 0] [--repeat 3] [--json FILE]
//!     [--commit-max-records 8192] [--commit-max-delay-us 2000]
//! cargo run --release -p verex-bench --bin latency -- --verify
//! cargo run --release -p verex-bench --bin latency -- --signed [--repeat 3] [--json FILE]
//! ```
//!
//! Sinks: `memory` copies each record into a pre-allocated 64 MiB arena (a journal with free
//! storage); `journal-batch` / `journal-async` append to a real `verex-journal` (mmap segments
//! in the system temp directory), msync per commit or never; `msync-floor` is not a journal
//! but a bound: the records copied into a mapped file and one msync per commit, no framing and
//! no commit mark (what any commit order costs at least; `--signed` compares with it). The wait strategy defaults to
//! `WaitMode::for_this_machine` (busy-spin only with a core per stage plus one, else
//! yielding). The injector waits for each planned time by yielding (`--pace spin` keeps its
//! core instead; `--injector-nice 10` lowers its scheduling priority, so that on a machine
//! with fewer cores than threads a stage woken by its work, the journal stage back from an
//! msync above all, takes the core from the injector at once instead of after its time
//! slice). Besides the end-to-end percentiles, each row shows publish→release (from the
//! sequencer's stamp: what the pipeline itself adds, which coordinated omission does bias),
//! the injector's own lateness, and the CPU other processes used meanwhile (the machine is
//! shared); `--repeat N` keeps the run with the median p99. `--verify` measures ed25519
//! verifications per second on one core, single versus batch, and through the ingress.
//!
//! `--signed` measures where a verifiable exchange pays, in one run (issue 16): ed25519
//! verifications per second on one core, single against batches of 256 (the same stream, really
//! signed); the whole pipeline fed signed txs through the ingress (one worker per core, batch
//! verification, `journal-batch`) as fast as it accepts them, against the verification bound
//! (cores × batch verifications per second per core); the disk's own msync latency (one
//! 128-byte write into a mapped file written out as the journal's roller prepares a segment,
//! then `msync` of its page, back to back for as long as the pipeline's run) and the pipeline's
//! p99 at 100k tx/s with `journal-batch` against it, beside the same pipeline over the
//! `msync-floor` sink (one msync per commit, no mark: what any commit order pays at least).
#![deny(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use verex_engine::catalog::Catalog;
use verex_engine::runtime::{
    start_ingress, Decoded, IngressConfig, Pipeline, PipelineConfig, RecordSink, SignedTxBytes, SinkError, Subscriber,
    TxEnd, Verdict, VerifyMode, WaitMode,
};
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, sign, Role};
use verex_engine::tx::{
    AddAsset, AddMarket, Dec, Deposit, MarketKind, Op, OrderRef, OrderType, Place, Side, SignedTx, Symbol, TimeInForce,
    Tx,
};
use verex_engine::verified::{VerifiedRecordBytes, VerifiedTx};
use verex_engine::{Engine, Event, Genesis, Limits};
use verex_journal::{Durability, JournalConfig, JournalWriter};

/// Funded accounts placing orders.
const ACCOUNTS: u64 = 1_000;
/// Resting orders placed before the first measured tx.
const PREFILL_ORDERS: u64 = 2_000;
/// The mid price, in cents (price units of the market's 0.01 tick).
const MID_CENTS: i64 = 10_000;
/// Resting orders the generator remembers as cancel and amend targets.
const TARGETS: usize = 4_096;
/// Bytes of the memory sink's arena.
const ARENA_BYTES: usize = 64 << 20;
/// Journal segment size for the journal sinks.
const SEGMENT_BYTES: u64 = verex_journal::DEFAULT_SEGMENT_BYTES;
/// Longest latency the histograms hold (60 s); larger values are clamped.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// An empty histogram of ns up to [`MAX_LATENCY_NS`], 3 significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).unwrap_or_else(|e| panic!("histogram: {e}"))
}
/// The tag's lowest bit marks a measured (not warm-up) tx; the rest is the planned time.
const MEASURED: u64 = 1;

fn sym(text: &str) -> Symbol {
    Symbol::new(text).unwrap_or_default()
}

/// A small xorshift: the stream is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The order stream: signed with zero signatures (the engine trusts the ingress; these are
/// "pre-verified"), real signer keys and per-signer nonces.
struct OrderStream {
    rng: Rng,
    keys: Vec<[u8; 32]>,
    nonces: Vec<u64>,
    next_order_id: u64,
    /// `(order id, account)` of orders this stream placed and may still rest.
    targets: Vec<(u64, u64)>,
}

impl OrderStream {
    fn new(engine: &Engine, nonces: Vec<u64>) -> Self {
        let keys = (0..=ACCOUNTS).map(|a| dev_account_key(a).verifying_key().to_bytes()).collect();
        Self {
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            keys,
            nonces,
            next_order_id: engine.next_order_id(),
            targets: Vec::with_capacity(TARGETS),
        }
    }

    fn tx(&mut self, account: u64, op: Op) -> SignedTx {
        let slot = account as usize;
        self.nonces[slot] += 1;
        let tx = Tx { signer: self.keys[slot], nonce: self.nonces[slot], account, op };
        SignedTx { tx, signature: [0; 64] }
    }

    fn place(&mut self, account: u64, side: Side, tif: TimeInForce, price_cents: i64, qty_lots: i64) -> SignedTx {
        let op = Op::Place(Place {
            market: sym("BTC-USDC"),
            side,
            order_type: OrderType::Limit,
            tif,
            reduce_only: false,
            price: Dec::new(price_cents, 2),
            qty: Dec::new(qty_lots, 4),
            client_id: 0,
        });
        // Every place in this stream passes validation, so it takes the next order id.
        let order_id = self.next_order_id;
        self.next_order_id += 1;
        if tif == TimeInForce::Gtc {
            if self.targets.len() == TARGETS {
                let evict = self.rng.below(TARGETS as u64) as usize;
                self.targets.swap_remove(evict);
            }
            self.targets.push((order_id, account));
        }
        self.tx(account, op)
    }

    /// A passive GTC limit: buys below the mid, sells above.
    fn passive(&mut self) -> SignedTx {
        let account = 1 + self.rng.below(ACCOUNTS);
        let offset = 1 + self.rng.below(50) as i64;
        let qty = 1 + self.rng.below(10) as i64;
        if self.rng.below(2) == 0 {
            self.place(account, Side::Buy, TimeInForce::Gtc, MID_CENTS - offset, qty)
        } else {
            self.place(account, Side::Sell, TimeInForce::Gtc, MID_CENTS + offset, qty)
        }
    }

    fn next(&mut self) -> SignedTx {
        let roll = self.rng.below(100);
        if roll < 35 || self.targets.is_empty() {
            return self.passive();
        }
        if roll < 45 {
            let account = 1 + self.rng.below(ACCOUNTS);
            let qty = 1 + self.rng.below(5) as i64;
            return if self.rng.below(2) == 0 {
                self.place(account, Side::Buy, TimeInForce::Ioc, MID_CENTS + 20, qty)
            } else {
                self.place(account, Side::Sell, TimeInForce::Ioc, MID_CENTS - 20, qty)
            };
        }
        let pick = self.rng.below(self.targets.len() as u64) as usize;
        let (order_id, account) = self.targets[pick];
        let market = sym("BTC-USDC");
        if roll < 80 {
            self.targets.swap_remove(pick);
            return self.tx(account, Op::Cancel(OrderRef { market, order_id, client_id: 0 }));
        }
        // An amend to a new passive price: the side is unknown here, so stay inside the band
        // both sides share (a crossing amend trades, which is realistic too).
        let price = MID_CENTS - 50 + self.rng.below(101) as i64;
        let op = Op::Amend(verex_engine::tx::Amend {
            order: OrderRef { market, order_id, client_id: 0 },
            price: Some(Dec::new(price, 2)),
            qty: None,
        });
        self.tx(account, op)
    }
}

/// An engine with the market listed, funded accounts and a pre-filled book, and the stream
/// that continues from it.
fn fixture() -> (Engine, OrderStream) {
    let limits = Limits {
        max_accounts: 2 * ACCOUNTS as u32,
        max_orders: 1 << 18,
        max_price_levels: 1 << 12,
        max_levels_per_side: 1 << 11,
        max_orders_per_account: 1 << 12,
        ..Limits::small()
    };
    let mut engine = Engine::new(Genesis::dev(), limits).unwrap_or_else(|e| panic!("limits: {e}"));
    let mut buf = engine.event_buf();
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    let mut apply = |engine: &mut Engine, signed: SignedTx| {
        let tx = VerifiedTx::assume_verified(SignedTxBytes::encode(&signed));
        let record = sequencer.stamp(&tx, None).unwrap_or_else(|e| panic!("{e}"));
        engine.apply(record.verified(), &mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert!(buf.rejection().is_none(), "fixture tx rejected: {:?}", buf.events());
    };
    let operators = [dev_role_key(Role::Admin), dev_role_key(Role::Custody)].map(|k| k.verifying_key().to_bytes());
    let (admin, custody) = (0, 1);
    let mut operator_nonce = [0u64; 2];
    let mut operator = |role: usize, op: Op| {
        operator_nonce[role] += 1;
        let tx = Tx { signer: operators[role], nonce: operator_nonce[role], account: 0, op };
        SignedTx { tx, signature: [0; 64] }
    };
    for (symbol, decimals) in [("USDC", 6u8), ("BTC", 8)] {
        apply(&mut engine, operator(admin, Op::AddAsset(AddAsset::new(sym(symbol), decimals))));
    }
    let market = AddMarket {
        symbol: sym("BTC-USDC"),
        kind: MarketKind::Spot,
        base: sym("BTC"),
        quote: sym("USDC"),
        tick: Dec::new(1, 2),
        step: Dec::new(1, 4),
        maker_fee: Dec::new(-1, 4),
        taker_fee: Dec::new(5, 4),
        imf: Dec::ZERO,
        mmf: Dec::ZERO,
        funding_interval_ns: 0,
    };
    apply(&mut engine, operator(admin, Op::AddMarket(market)));
    let mut nonces = vec![0u64; ACCOUNTS as usize + 1];
    for account in 1..=ACCOUNTS {
        nonces[account as usize] += 1;
        let key = dev_account_key(account).verifying_key().to_bytes();
        let tx = Tx { signer: key, nonce: 1, account: 0, op: Op::CreateAccount };
        apply(&mut engine, SignedTx { tx, signature: [0; 64] });
        for (asset, amount) in [("USDC", Dec::new(1_000_000_000, 0)), ("BTC", Dec::new(10_000_000, 0))] {
            let op = Op::Deposit(Deposit { account, asset: sym(asset), amount, chain_ref: [0; 32] });
            apply(&mut engine, operator(custody, op));
        }
    }
    let mut stream = OrderStream::new(&engine, nonces);
    for _ in 0..PREFILL_ORDERS {
        let tx = stream.passive();
        apply(&mut engine, tx);
    }
    (engine, stream)
}

/// Copies records into a pre-allocated arena, wrapping around: journaling with free storage.
struct ArenaSink {
    arena: Vec<u8>,
    at: usize,
    last_seq: u64,
}

impl ArenaSink {
    fn new() -> Self {
        // Touch every page up front: first-touch faults are not what this sink models.
        Self { arena: vec![1u8; ARENA_BYTES], at: 0, last_seq: 0 }
    }
}

impl RecordSink for ArenaSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        if self.at + bytes.len() > self.arena.len() {
            self.at = 0;
        }
        self.arena[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
        self.last_seq = seq;
        Ok(())
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        Ok(self.last_seq)
    }
}

/// The library's journal sink on a journal in a temporary directory, removed when dropped.
struct JournalSink {
    journal: verex_engine::store::JournalSink,
    dir: PathBuf,
}

/// A sink whose every commit is timed ([`CommitStats`]): the journal sinks and the one-flush
/// floor in the latency runs.
struct Timed<K> {
    inner: K,
    /// Records appended since the last commit.
    pending: u64,
    stats: CommitStats,
}

impl<K> Timed<K> {
    fn new(inner: K) -> Self {
        Self { inner, pending: 0, stats: CommitStats::new() }
    }
}

impl<K: RecordSink> RecordSink for Timed<K> {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.pending += 1;
        self.inner.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        let start = Instant::now();
        let durable = self.inner.commit();
        self.stats.record(start, Instant::now(), std::mem::take(&mut self.pending));
        durable
    }
}

/// The journal stage's commits over a run, as the sink saw them: how long each took (the
/// records' msync, then the commit mark's fdatasync in `Batch`), how many records each made
/// durable, and what share of the run the stage spent committing. The pipeline's own view of
/// its disk, warm-up included.
struct CommitStats {
    duration_ns: Histogram<u64>,
    records: Histogram<u64>,
    busy_ns: u64,
    first_start: Option<Instant>,
    last_end: Option<Instant>,
}

/// A [`CommitStats`] in numbers.
#[derive(Clone, Copy, Debug)]
struct CommitSummary {
    count: u64,
    /// Records per commit: p50, p99.
    records: [u64; 2],
    /// Duration: p50, p99, max.
    duration_ns: [u64; 3],
    /// Time spent committing, over the time from the first commit's start to the last one's end.
    busy_share: f64,
}

impl CommitStats {
    fn new() -> Self {
        Self {
            duration_ns: latency_histogram(),
            records: latency_histogram(),
            busy_ns: 0,
            first_start: None,
            last_end: None,
        }
    }

    fn record(&mut self, start: Instant, end: Instant, records: u64) {
        let ns = u64::try_from(end.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        self.duration_ns.saturating_record(ns.max(1));
        self.records.saturating_record(records.max(1));
        self.busy_ns = self.busy_ns.saturating_add(ns);
        self.first_start.get_or_insert(start);
        self.last_end = Some(end);
    }

    fn summary(&self) -> CommitSummary {
        let span_ns = match (self.first_start, self.last_end) {
            (Some(first), Some(last)) => last.duration_since(first).as_nanos() as f64,
            _ => 0.0,
        };
        let d = &self.duration_ns;
        CommitSummary {
            count: d.len(),
            records: [self.records.value_at_quantile(0.5), self.records.value_at_quantile(0.99)],
            duration_ns: [d.value_at_quantile(0.5), d.value_at_quantile(0.99), d.max()],
            busy_share: if span_ns > 0.0 { self.busy_ns as f64 / span_ns } else { 0.0 },
        }
    }
}

impl JournalSink {
    fn open(durability: Durability) -> Self {
        let dir = std::env::temp_dir().join(format!("verex-latency-{}-{durability:?}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = JournalConfig { segment_bytes: SEGMENT_BYTES, durability, ..JournalConfig::new(&dir) };
        let (writer, _) =
            JournalWriter::open(config).unwrap_or_else(|e| panic!("open journal in {}: {e}", dir.display()));
        Self { journal: verex_engine::store::JournalSink::new(writer), dir }
    }
}

impl Drop for JournalSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RecordSink for JournalSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.journal.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        self.journal.commit()
    }
}

/// Records each measured tx's latency from its planned send time to its release, and (a
/// diagnostic that coordinated omission does bias) from the sequencer's publish to release.
struct LatencyRecorder {
    epoch: Instant,
    /// The pipeline's epoch (`published_ns` counts from it), set right after start.
    pipeline_epoch: std::sync::Arc<std::sync::OnceLock<Instant>>,
    histogram: Histogram<u64>,
    in_pipeline: Histogram<u64>,
    first_planned_ns: Option<u64>,
    last_release_ns: u64,
    measured: u64,
    events: u64,
}

impl LatencyRecorder {
    /// An empty recorder whose planned times count from `epoch`.
    fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            pipeline_epoch: std::sync::Arc::new(std::sync::OnceLock::new()),
            histogram: latency_histogram(),
            in_pipeline: latency_histogram(),
            first_planned_ns: None,
            last_release_ns: 0,
            measured: 0,
            events: 0,
        }
    }
}

impl Subscriber for LatencyRecorder {
    fn on_event(&mut self, _seq: u64, _event: &Event, _catalog: &Catalog) {
        self.events += 1;
    }

    fn on_tx_end(&mut self, end: &TxEnd) {
        if end.tag & MEASURED == 0 {
            return;
        }
        let now = Instant::now();
        let now_ns = now.duration_since(self.epoch).as_nanos() as u64;
        let planned_ns = end.tag >> 1;
        if let Some(pipeline_epoch) = self.pipeline_epoch.get() {
            let since_publish =
                (now.duration_since(*pipeline_epoch).as_nanos() as u64).saturating_sub(end.published_ns);
            let _ = self.in_pipeline.record(since_publish.clamp(1, MAX_LATENCY_NS));
        }
        self.first_planned_ns.get_or_insert(planned_ns);
        self.last_release_ns = now_ns;
        self.measured += 1;
        let _ = self.histogram.record(now_ns.saturating_sub(planned_ns).clamp(1, MAX_LATENCY_NS));
    }
}

/// Busy and total jiffies of the whole machine (`/proc/stat`), if readable.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let idle = fields.get(3)? + fields.get(4)?;
    let total: u64 = fields.iter().take(8).sum();
    Some((total - idle, total))
}

/// Jiffies this process has run (user + system, all threads), if readable.
fn own_jiffies() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit(')').next()?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Share of the machine's CPU that other processes used between two samples, in percent.
fn foreign_cpu_percent(before: Option<((u64, u64), u64)>, after: Option<((u64, u64), u64)>) -> f64 {
    let (Some(((busy0, total0), own0)), Some(((busy1, total1), own1))) = (before, after) else { return f64::NAN };
    let total = total1.saturating_sub(total0).max(1) as f64;
    let foreign = (busy1 - busy0).saturating_sub(own1 - own0) as f64;
    100.0 * foreign / total
}

fn cpu_sample() -> Option<((u64, u64), u64)> {
    Some((machine_jiffies()?, own_jiffies()?))
}

/// One row of the latency table.
struct Row {
    rate: Option<u64>,
    sink: String,
    measured: u64,
    achieved_per_s: f64,
    percentiles_ns: [u64; 6],
    /// The injector's own lateness (submit returned − planned): p99.9 and max.
    send_lag_ns: [u64; 2],
    /// Sequencer publish to release: p50, p99, p99.9.
    in_pipeline_ns: [u64; 3],
    /// CPU other processes used during the run, % of the machine.
    foreign_cpu: f64,
    /// The journal sinks' commits (and the one-flush floor's).
    commits: Option<CommitSummary>,
}

fn run_rate(rate: Option<u64>, sink_name: &str, args: &Args) -> Row {
    let (seconds, warmup, wait) = (args.seconds, args.warmup, args.wait);
    let pace = Injector { pace: args.pace, nice: args.injector_nice };
    let measured = rate.map_or(1_000_000, |r| ((r as f64 * seconds) as u64).clamp(10_000, 2_000_000));
    let total = warmup + measured;
    let (engine, mut stream) = fixture();
    let txs: Vec<SignedTxBytes> = (0..total).map(|_| SignedTxBytes::encode(&stream.next())).collect();
    let epoch = Instant::now();
    let recorder = LatencyRecorder::new(epoch);
    let config = PipelineConfig {
        wait,
        commit_max_records: args.commit_max_records,
        commit_max_delay: args.commit_max_delay,
        ..PipelineConfig::yielding(Clock::Wall)
    };
    let mut lag = latency_histogram();
    let cpu_before = cpu_sample();
    let (recorder, commits) = match sink_name {
        "memory" => {
            (inject(engine, ArenaSink::new(), recorder, config, &txs, rate, warmup, epoch, pace, &mut lag).0, None)
        }
        "journal-batch" | "journal-async" => {
            let durability = if sink_name == "journal-batch" { Durability::Batch } else { Durability::Async };
            let sink = Timed::new(JournalSink::open(durability));
            let (recorder, sink) = inject(engine, sink, recorder, config, &txs, rate, warmup, epoch, pace, &mut lag);
            (recorder, Some(sink.stats.summary()))
        }
        "msync-floor" => {
            let sink = Timed::new(signed::FloorSink::open());
            let (recorder, sink) = inject(engine, sink, recorder, config, &txs, rate, warmup, epoch, pace, &mut lag);
            (recorder, Some(sink.stats.summary()))
        }
        other => panic!("unknown sink {other} (memory, journal-batch, journal-async, msync-floor)"),
    };
    let foreign_cpu = foreign_cpu_percent(cpu_before, cpu_sample());
    let span_ns = recorder.last_release_ns.saturating_sub(recorder.first_planned_ns.unwrap_or(0)).max(1);
    let h = &recorder.histogram;
    Row {
        rate,
        sink: sink_name.to_string(),
        measured: recorder.measured,
        achieved_per_s: recorder.measured as f64 * 1e9 / span_ns as f64,
        percentiles_ns: [
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.value_at_quantile(0.9999),
            h.max(),
        ],
        send_lag_ns: [lag.value_at_quantile(0.999), lag.max()],
        in_pipeline_ns: [0.5, 0.99, 0.999].map(|q| recorder.in_pipeline.value_at_quantile(q)),
        foreign_cpu,
        commits,
    }
}

/// How the injector waits for a tx's planned send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    /// `yield_now` between clock reads: leaves the core to the stages.
    Yield,
    /// A spin-loop hint between clock reads: keeps the core (a dedicated sequencer core).
    Spin,
}

/// The injector thread: how it waits for a planned time, and its nice value.
#[derive(Clone, Copy, Debug)]
struct Injector {
    pace: Pace,
    nice: i32,
}

/// Sets the calling thread's nice value (Linux: per thread), best effort: a value this
/// process may not take (a negative one without the privilege) leaves it as it was.
fn set_thread_nice(nice: i32) {
    if nice != 0 {
        // SAFETY: plain syscall on the calling thread (`who` 0); a failure changes nothing.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
    }
}

/// Injects `txs` on schedule (or as fast as possible), from a thread of its own at the
/// injector's nice value, and returns the recorder and the sink; `send_lag` gets each measured
/// tx's submit return time minus its planned time.
#[allow(clippy::too_many_arguments)]
fn inject<K: RecordSink>(
    engine: Engine,
    sink: K,
    recorder: LatencyRecorder,
    config: PipelineConfig,
    txs: &[SignedTxBytes],
    rate: Option<u64>,
    warmup: u64,
    epoch: Instant,
    injector: Injector,
    send_lag: &mut Histogram<u64>,
) -> (LatencyRecorder, K) {
    let pipeline_epoch = std::sync::Arc::clone(&recorder.pipeline_epoch);
    let mut pipeline = Pipeline::start(engine, sink, recorder, config).unwrap_or_else(|e| panic!("start: {e}"));
    let _ = pipeline_epoch.set(pipeline.epoch());
    let start_ns = epoch.elapsed().as_nanos() as u64 + 1_000_000;
    // A thread of its own, so that its nice value does not outlive the run (the stages were
    // spawned before it, at the caller's).
    std::thread::scope(|scope| {
        scope.spawn(|| {
            set_thread_nice(injector.nice);
            for (i, tx) in txs.iter().enumerate() {
                let i = i as u64;
                let planned_ns = match rate {
                    Some(rate) => start_ns + (u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64,
                    None => epoch.elapsed().as_nanos() as u64,
                };
                // Ahead of schedule: wait (yielding gives the cores to the stages).
                while (epoch.elapsed().as_nanos() as u64) < planned_ns {
                    match injector.pace {
                        Pace::Yield => std::thread::yield_now(),
                        Pace::Spin => std::hint::spin_loop(),
                    }
                }
                let measured = i >= warmup;
                let tag = (planned_ns << 1) | u64::from(measured);
                pipeline.submit(&VerifiedTx::assume_verified(*tx), None, tag).unwrap_or_else(|e| panic!("submit: {e}"));
                if measured {
                    let lag = (epoch.elapsed().as_nanos() as u64).saturating_sub(planned_ns);
                    let _ = send_lag.record(lag.clamp(1, MAX_LATENCY_NS));
                }
            }
        });
    });
    let stopped = pipeline.shutdown().unwrap_or_else(|e| panic!("shutdown: {e}"));
    assert!(stopped.report.poison.is_none(), "{:?}", stopped.report);
    (stopped.subscriber, stopped.sink)
}

fn micros(ns: u64) -> String {
    let us = ns as f64 / 1_000.0;
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

fn print_table(rows: &[Row], wait: WaitMode) {
    println!("\nLatency from planned send to event release, µs ({wait} wait; warm-up excluded):\n");
    println!(
        "| offered rate | sink | txs measured | achieved tx/s | p50 | p90 | p99 | p99.9 | p99.99 | max | \
         publish→release p50 / p99 / p99.9 | send lag p99.9 / max | other processes' CPU |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let rate = row.rate.map_or_else(|| "max".to_string(), |r| format!("{}k", r / 1_000));
        let p = row.percentiles_ns.map(micros);
        println!(
            "| {rate} | {} | {} | {:.0}k | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} | {:.0}% |",
            row.sink,
            row.measured,
            row.achieved_per_s / 1_000.0,
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            p[5],
            micros(row.in_pipeline_ns[0]),
            micros(row.in_pipeline_ns[1]),
            micros(row.in_pipeline_ns[2]),
            micros(row.send_lag_ns[0]),
            micros(row.send_lag_ns[1]),
            row.foreign_cpu
        );
    }
}

#[path = "latency/signed.rs"]
mod signed;

/// Signed txs over several accounts' dev keys (real signatures).
fn signed_txs(count: usize) -> Vec<SignedTxBytes> {
    let keys: Vec<_> = (1..=64u64).map(dev_account_key).collect();
    (0..count)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let op = Op::Cancel(OrderRef { market: sym("BTC-USDC"), order_id: i as u64, client_id: 0 });
            let tx =
                Tx { signer: key.verifying_key().to_bytes(), nonce: i as u64 + 1, account: 1 + (i % 64) as u64, op };
            SignedTxBytes::encode(&sign(tx, key))
        })
        .collect()
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Verifications per second: single checks in a loop on one core, then through the ingress
/// (its own message building and key decompression included) with one worker thread at
/// several `verify_batch` sizes, and with two workers.
fn verify_throughput() {
    const COUNT: usize = 20_000;
    let txs = signed_txs(COUNT);
    println!("\ned25519 verification, {COUNT} signed txs (64 signers), this machine:\n");
    println!("| method | verifications/s |");
    println!("|---|---:|");
    let start = Instant::now();
    for tx in &txs {
        verex_engine::signing::verify_archived(tx.archived()).unwrap_or_else(|e| panic!("{e}"));
    }
    let single = per_second(COUNT, start.elapsed());
    println!("| single (`signing::verify_archived`), 1 core | {single:.0} |");
    for chunk in [8usize, 32, 64, 256] {
        let rate = ingress_rate(&txs, 1, chunk, VerifyMode::Batch);
        println!("| ingress, 1 worker, `verify_batch` of {chunk} | {rate:.0} ({:.2}× single) |", rate / single);
    }
    let rate = ingress_rate(&txs, 1, 64, VerifyMode::Single);
    println!("| ingress, 1 worker, single, chunks of 64 | {rate:.0} ({:.2}× single) |", rate / single);
    for mode in [VerifyMode::Single, VerifyMode::Batch] {
        let rate = ingress_rate(&txs, 2, 64, mode);
        println!("| ingress, 2 workers, {mode:?}, chunks of 64 | {rate:.0} ({:.2}× single) |", rate / single);
    }
}

/// Verified txs per second through the ingress (the sender and receiver are two more threads).
fn ingress_rate(txs: &[SignedTxBytes], workers: usize, chunk_inputs: usize, verify: VerifyMode) -> f64 {
    let config = IngressConfig { workers, chunk_inputs, min_chunk_inputs: chunk_inputs, queue_chunks: 4, verify };
    let (mut sender, mut receiver) =
        start_ingress(config, |tx: SignedTxBytes| Ok(Decoded { tx, ts: None })).unwrap_or_else(|e| panic!("{e}"));
    let inputs = txs.to_vec();
    let start = Instant::now();
    let feeder = std::thread::spawn(move || {
        for tx in inputs {
            let _ = sender.send(tx);
        }
    });
    let mut verified = 0;
    while let Some(verdict) = receiver.recv() {
        verified += usize::from(matches!(verdict, Verdict::Verified { .. }));
    }
    let rate = per_second(txs.len(), start.elapsed());
    let _ = feeder.join();
    assert_eq!(verified, txs.len(), "every signature verifies");
    rate
}
/// The options (the module doc says what each measures).
const USAGE: &str = "usage: latency [--rates 100000,500000,1000000,2000000,max] \
[--sinks memory,journal-batch,journal-async,msync-floor] [--seconds 2] [--warmup 100000] \
[--wait yielding|blocking|busy-spin] [--pace yield|spin] [--injector-nice 0] [--repeat 3] [--json FILE] \
[--commit-max-records 8192] [--commit-max-delay-us 2000]\n       latency --verify\n       latency --signed [--repeat 3] [--json FILE]";

#[derive(Clone)]
struct Args {
    rates: Vec<Option<u64>>,
    sinks: Vec<String>,
    seconds: f64,
    warmup: u64,
    wait: WaitMode,
    verify: bool,
    signed: bool,
    json: Option<PathBuf>,
    pace: Pace,
    /// The injector thread's nice value (0: as the stages; 10: it yields the cores to them).
    injector_nice: i32,
    repeat: usize,
    /// `PipelineConfig::commit_max_records` (group commit's record cap).
    commit_max_records: u32,
    /// `PipelineConfig::commit_max_delay` (group commit's time bound).
    commit_max_delay: Duration,
}

fn parse_args() -> Args {
    let mut args = Args {
        rates: vec![Some(100_000), Some(500_000), Some(1_000_000), Some(2_000_000), None],
        sinks: vec!["memory".to_string()],
        seconds: 2.0,
        warmup: 100_000,
        wait: WaitMode::for_this_machine(),
        verify: false,
        signed: false,
        json: None,
        pace: Pace::Yield,
        injector_nice: 0,
        repeat: 1,
        commit_max_records: verex_engine::runtime::DEFAULT_COMMIT_MAX_RECORDS,
        commit_max_delay: verex_engine::runtime::DEFAULT_COMMIT_MAX_DELAY,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--rates" => {
                args.rates = value()
                    .split(',')
                    .map(
                        |r| if r == "max" { None } else { Some(r.parse().unwrap_or_else(|e| panic!("rate {r}: {e}"))) },
                    )
                    .collect();
            }
            "--sinks" => args.sinks = value().split(',').map(str::to_string).collect(),
            "--seconds" => args.seconds = value().parse().unwrap_or_else(|e| panic!("--seconds: {e}")),
            "--warmup" => args.warmup = value().parse().unwrap_or_else(|e| panic!("--warmup: {e}")),
            "--wait" => {
                let name = value();
                args.wait = WaitMode::from_name(&name)
                    .unwrap_or_else(|| panic!("--wait {name}: busy-spin, yielding or blocking"));
            }
            "--verify" => args.verify = true,
            "--signed" => args.signed = true,
            "--repeat" => args.repeat = value().parse().unwrap_or_else(|e| panic!("--repeat: {e}")),
            "--pace" => {
                args.pace = match value().as_str() {
                    "yield" => Pace::Yield,
                    "spin" => Pace::Spin,
                    other => panic!("--pace {other}: yield or spin"),
                }
            }
            "--injector-nice" => {
                args.injector_nice = value().parse().unwrap_or_else(|e| panic!("--injector-nice: {e}"));
            }
            "--json" => args.json = Some(PathBuf::from(value())),
            "--commit-max-records" => {
                args.commit_max_records = value().parse().unwrap_or_else(|e| panic!("--commit-max-records: {e}"));
            }
            "--commit-max-delay-us" => {
                let us = value().parse().unwrap_or_else(|e| panic!("--commit-max-delay-us: {e}"));
                args.commit_max_delay = Duration::from_micros(us);
            }
            "--bench" => {}
            other => panic!("unknown argument {other}\n{USAGE}"),
        }
    }
    args
}

/// Applies the same stream straight through `Engine::apply` on one thread (records encoded
/// beforehand): the ceiling the pipeline is compared with.
fn direct_apply_rate(txs: usize) -> f64 {
    let (mut engine, mut stream) = fixture();
    let mut sequencer = Sequencer::new(engine.seq(), Clock::Deterministic);
    let records: Vec<VerifiedRecordBytes> = (0..txs)
        .map(|_| {
            let tx = VerifiedTx::assume_verified(SignedTxBytes::encode(&stream.next()));
            sequencer.stamp(&tx, None).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut buf = engine.event_buf();
    let start = Instant::now();
    for record in &records {
        engine.apply(record.verified(), &mut buf).unwrap_or_else(|e| panic!("{e}"));
    }
    per_second(txs, start.elapsed())
}

fn write_json(path: &PathBuf, rows: &[Row], wait: WaitMode, cores: usize, apply_per_s: f64) {
    let max_memory = rows.iter().find(|r| r.rate.is_none() && r.sink == "memory").map(|r| r.achieved_per_s);
    let mut out = format!(
        "{{\"cores\":{cores},\"wait\":\"{wait}\",\"apply_per_s\":{apply_per_s:.0},\"pipeline_vs_apply\":{},\"rows\":[",
        max_memory.map_or_else(|| "null".to_string(), |m| format!("{:.3}", m / apply_per_s))
    );
    for (k, row) in rows.iter().enumerate() {
        let p = row.percentiles_ns;
        out.push_str(&format!(
            "{}{{\"rate\":{},\"sink\":\"{}\",\"measured\":{},\"achieved_per_s\":{:.0},\"p50_ns\":{},\"p90_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"p9999_ns\":{},\"max_ns\":{}}}",
            if k == 0 { "" } else { "," },
            row.rate.map_or_else(|| "null".to_string(), |r| r.to_string()),
            row.sink,
            row.measured,
            row.achieved_per_s,
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            p[5]
        ));
    }
    out.push_str("]}\n");
    std::fs::write(path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn main() {
    let args = parse_args();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!("machine: {cores} cores; wait strategy: {} (auto picks {})", args.wait, WaitMode::for_this_machine());
    if args.verify {
        verify_throughput();
        return;
    }
    if args.signed {
        signed::run(&args, cores);
        return;
    }
    let mut rows = Vec::new();
    for sink in &args.sinks {
        for &rate in &args.rates {
            // The machine is shared: repeat, and keep the run with the median p99.
            let mut runs: Vec<Row> = (0..args.repeat.max(1)).map(|_| run_rate(rate, sink, &args)).collect();
            runs.sort_by_key(|run| run.percentiles_ns[2]);
            let row = runs.swap_remove(runs.len() / 2);
            eprintln!(
                "{sink} {}: {} txs, p50 {} µs, p99 {} µs, max {} µs",
                row.rate.map_or_else(|| "max".to_string(), |r| r.to_string()),
                row.measured,
                micros(row.percentiles_ns[0]),
                micros(row.percentiles_ns[2]),
                micros(row.percentiles_ns[5])
            );
            rows.push(row);
        }
    }
    print_table(&rows, args.wait);
    let apply_per_s = direct_apply_rate(1_000_000);
    println!("\nThe same stream through `Engine::apply` on one thread: {:.0}k tx/s.", apply_per_s / 1_000.0);
    if let Some(path) = &args.json {
        write_json(path, &rows, args.wait, cores, apply_per_s);
    }
}
