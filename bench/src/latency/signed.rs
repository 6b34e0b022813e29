//! `latency --signed`: signed transactions per second, against what verification allows, and
//! the pipeline's commit latency against the disk's own (the module doc of `latency` says
//! what each number is).

use std::io::Write as _;
use std::time::Instant;

use verex_engine::runtime::{
    feed, start_ingress, Decoded, IngressConfig, Pipeline, PipelineConfig, RecordSink, SignedTxBytes, SinkError,
    WaitMode, MAX_WORKERS, WORKER_CACHED_KEYS,
};
use verex_engine::sequencer::Clock;
use verex_engine::signature_rule::SignatureVerifier;
use verex_engine::signing::{dev_account_key, sign, verify_archived};
use verex_engine::verified::VerifiedTx;
use verex_journal::Durability;

use super::{fixture, latency_histogram, per_second, run_rate, Args, JournalSink, LatencyRecorder};

/// Signed txs pushed end to end.
const END_TO_END_TXS: usize = 200_000;
/// Of those, the ones each verification-rate loop checks on one core.
const RATE_TXS: usize = 20_000;
/// Alternating rounds of single and batch verification.
const ROUNDS: usize = 5;
/// Signatures per batch: the most the ingress puts in a chunk (what its chunks grow to under
/// load, as here).
const BATCH: usize = 256;
/// Bytes per write of the files the disk is measured on: the roller's zero writes for small
/// commits (`SMALL_ZERO_WRITE_BYTES` in `verex-journal`), so that their page-cache folios are
/// the journal's at 100k tx/s (see [`written_file`]).
const PREPARED_WRITE_BYTES: usize = 64 << 10;
/// The offered rate at which the pipeline's p99 is compared with the disk's.
const LATENCY_RATE: u64 = 100_000;
/// The injector's nice value in the pipeline's run at [`LATENCY_RATE`].
const DEPLOYED_INJECTOR_NICE: i32 = 10;
/// The file msync alone writes into, page by page, round and round.
const MSYNC_FILE_BYTES: usize = 32 << 20;

/// What one `--signed` run measured.
struct SignedReport {
    single_per_core: f64,
    batch_per_core: f64,
    single_uncached_per_core: f64,
    batch_uncached_per_core: f64,
    cores: usize,
    end_to_end_per_s: f64,
    /// The msync-alone run kept (the median p99's).
    msync: MsyncAlone,
    /// The pipeline at [`LATENCY_RATE`], parked idle stages, injector at nice 10.
    pipeline_ns: [u64; 3],
    /// The same with the harness's defaults (the machine's wait, injector at nice 0).
    pipeline_default_ns: [u64; 3],
    pipeline_achieved: f64,
    /// The journal stage's commits in the pipeline's run kept.
    pipeline_commits: Option<super::CommitSummary>,
    /// The one-flush floor ([`FloorSink`]) in the same pipeline as `pipeline_ns`: p50, p99, max.
    floor_ns: [u64; 3],
    /// Its commits.
    floor_commits: Option<super::CommitSummary>,
    /// Runs of each disk measure, of which the median p99's is kept.
    repeat: usize,
    /// The pipeline's wait in the run the key compares.
    wait: WaitMode,
}

/// Runs the three measurements and prints them (and writes `--json`).
pub(super) fn run(args: &Args, cores: usize) {
    // The disk first, while nothing else this run does has touched it: the end-to-end run
    // below writes and then deletes its journal, and the file system (mounted with `discard`
    // here) trims the freed blocks afterwards; measured after it, the pipeline's p99 at 100k
    // tx/s was 3.5–16 ms, against 2.4–3.0 ms on its own.
    // Each of the disk's three measures `--repeat` times in turn (the machine is shared: a
    // burst of foreign I/O lands on one of them, not on all), each keeping its run with the
    // median p99, as the latency table does.
    //
    // Beside the pipeline, the same pipeline over the one-flush floor ([`FloorSink`]): what
    // any commit order pays at least, at the same rate, with the same stages and waits. (Not
    // the "commit floor" measured here on 2026-12-05/06 and dropped: a group commit by one
    // thread with nothing else running, whose per-record p99 was 1.5–3.3 ms against the
    // pipeline's 0.3–0.6 ms in the same runs; it bounded nothing, and why a loop that does
    // less saw more of the disk's slow periods is not understood.)
    //
    // The pipeline runs as `verex run` runs signed input on this machine (idle stages parked,
    // `WaitMode::beside_ingress`), with the injector at nice 10: on two cores a woken stage
    // (the journal stage back from its msync) then takes a core at once instead of after the
    // injector's time slice. Beside it, for comparison, the harness's defaults (the machine's
    // wait, the injector at the stages' priority).
    let workers = IngressConfig::for_this_machine().workers;
    let deployed =
        Args { wait: WaitMode::beside_ingress(cores, workers), injector_nice: DEPLOYED_INJECTOR_NICE, ..args.clone() };
    let (mut msyncs, mut pipelines, mut floors, mut defaults) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.repeat.max(1) {
        msyncs.push(msync_alone(args.seconds));
        settle_disk();
        pipelines.push(run_rate(Some(LATENCY_RATE), "journal-batch", &deployed));
        settle_disk();
        floors.push(run_rate(Some(LATENCY_RATE), "msync-floor", &deployed));
        settle_disk();
        defaults.push(run_rate(Some(LATENCY_RATE), "journal-batch", args));
        settle_disk();
    }
    msyncs.sort_by_key(|run| run.ns[1]);
    let msync = msyncs.get(msyncs.len() / 2).copied().unwrap_or_default();
    let [pipeline, floor, default] = [pipelines, floors, defaults].map(median_p99);

    eprintln!("signing {END_TO_END_TXS} txs of the order stream (real ed25519 signatures)...");
    let (engine, mut stream) = fixture();
    let keys: Vec<_> = (0..=super::ACCOUNTS).map(dev_account_key).collect();
    let txs: Vec<SignedTxBytes> = (0..END_TO_END_TXS)
        .map(|_| {
            let unsigned = stream.next();
            let key = &keys[usize::try_from(unsigned.tx.account).unwrap_or(0)];
            SignedTxBytes::encode(&sign(unsigned.tx, key))
        })
        .collect();

    // Single and batch alternate over rounds (the machine is shared: a burst of foreign load
    // hits both), and the medians are compared. Each goes through its own verifier, whose key
    // cache warms up in the first round, as an ingress worker's does (the uncached rates,
    // every key decompressed again, are shown for comparison).
    let rates = verify_rates(&txs[..RATE_TXS]);
    let [single_per_core, batch_per_core, single_uncached_per_core, batch_uncached_per_core] = rates;
    eprintln!(
        "verification, one core: single {single_per_core:.0}/s, batches of {BATCH} {batch_per_core:.0}/s \
         (key cache; without: {single_uncached_per_core:.0}/s, {batch_uncached_per_core:.0}/s)"
    );

    let end_to_end_per_s = end_to_end(engine, &txs, cores);
    eprintln!("signed end to end, {cores} ingress workers, journal-batch: {end_to_end_per_s:.0} tx/s");

    let report = SignedReport {
        single_per_core,
        batch_per_core,
        single_uncached_per_core,
        batch_uncached_per_core,
        cores,
        end_to_end_per_s,
        msync,
        pipeline_ns: p50_p99_max(&pipeline),
        pipeline_default_ns: p50_p99_max(&default),
        pipeline_achieved: pipeline.achieved_per_s,
        pipeline_commits: pipeline.commits,
        floor_ns: p50_p99_max(&floor),
        floor_commits: floor.commits,
        repeat: args.repeat.max(1),
        wait: deployed.wait,
    };
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, report.json()).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// Verifications per second on one core: single and batch through a key-caching verifier
/// (what an ingress worker runs), then single and batch with every key decompressed again;
/// the median of [`ROUNDS`] alternating rounds each.
fn verify_rates(txs: &[SignedTxBytes]) -> [f64; 4] {
    let mut rates: [Vec<f64>; 4] = Default::default();
    let mut single_verifier = SignatureVerifier::new(WORKER_CACHED_KEYS, BATCH);
    let mut batch_verifier = SignatureVerifier::new(WORKER_CACHED_KEYS, BATCH);
    let mut verdicts = Vec::with_capacity(BATCH);
    for round in txs.chunks(txs.len() / ROUNDS) {
        let start = Instant::now();
        for tx in round {
            VerifiedTx::verify_with(*tx, &mut single_verifier).unwrap_or_else(|e| panic!("{e}"));
        }
        rates[0].push(per_second(round.len(), start.elapsed()));
        let start = Instant::now();
        for batch in round.chunks(BATCH) {
            VerifiedTx::verify_batch_with(batch, &mut batch_verifier, &mut verdicts);
            assert!(verdicts.drain(..).all(|v| v.is_ok()), "every signature verifies");
        }
        rates[1].push(per_second(round.len(), start.elapsed()));
        let start = Instant::now();
        for tx in round {
            verify_archived(tx.archived()).unwrap_or_else(|e| panic!("{e}"));
        }
        rates[2].push(per_second(round.len(), start.elapsed()));
        let start = Instant::now();
        for batch in round.chunks(BATCH) {
            VerifiedTx::verify_batch(batch, &mut verdicts);
            assert!(verdicts.drain(..).all(|v| v.is_ok()), "every signature verifies");
        }
        rates[3].push(per_second(round.len(), start.elapsed()));
    }
    rates.map(|mut r| median(&mut r))
}

/// Signed txs through the ingress (one worker per core, batch verification, chunks of 64 to
/// [`BATCH`] sized by load) into a pipeline (waiting as [`WaitMode::beside_ingress`] says) with a `journal-batch` sink, as fast as it accepts them: signed
/// txs per second from the first send to the last release.
fn end_to_end(engine: verex_engine::Engine, txs: &[SignedTxBytes], cores: usize) -> f64 {
    let ingress = IngressConfig { workers: cores.clamp(1, MAX_WORKERS), ..IngressConfig::for_this_machine() };
    assert_eq!(ingress.chunk_inputs, BATCH, "the batch measured alone is the ingress' largest chunk");
    let recorder = LatencyRecorder::new(Instant::now());
    let sink = JournalSink::open(Durability::Batch);
    // The wait `verex run` picks for signed input (the workers take every core; idle stages
    // park instead of taking turns on them).
    let wait = WaitMode::beside_ingress(cores, ingress.workers);
    let mut pipeline =
        Pipeline::start(engine, sink, recorder, PipelineConfig { wait, ..PipelineConfig::yielding(Clock::Wall) })
            .unwrap_or_else(|e| panic!("start: {e}"));
    let (mut sender, mut receiver) = start_ingress(ingress, |tx: SignedTxBytes| Ok(Decoded { tx, ts: None }))
        .unwrap_or_else(|e| panic!("ingress: {e}"));
    let start = Instant::now();
    let sequenced = std::thread::scope(|scope| {
        scope.spawn(move || {
            for tx in txs {
                if sender.send(*tx).is_err() {
                    return;
                }
            }
            let _ = sender.flush();
        });
        feed(&mut receiver, &mut pipeline, |ticket, reason| panic!("tx {ticket} refused: {reason}"))
            .unwrap_or_else(|e| panic!("feed: {e}"))
    });
    let stopped = pipeline.shutdown().unwrap_or_else(|e| panic!("shutdown: {e}"));
    let elapsed = start.elapsed();
    assert!(stopped.report.poison.is_none(), "{:?}", stopped.report);
    assert_eq!(usize::try_from(sequenced).unwrap_or(0), txs.len(), "every signed tx sequenced");
    per_second(txs.len(), elapsed)
}

/// A new file at `path` of `bytes` zeros, written out and synced as the journal's roller
/// prepares a segment for small commits: in writes of [`PREPARED_WRITE_BYTES`] (no unwritten
/// extent left for a later msync to convert, and page-cache folios of the journal's size).
///
/// The size of the writes matters: the page cache keeps the folio size a write creates, and
/// an msync writes whole dirty folios. Written in one write of the whole file (as this harness
/// did before 2026-12-06), an msync of one 128-byte record measured p50 47–790 µs and p99
/// 1.3–1.7 ms on the development machine, depending on the folios the kernel found: not the
/// disk's latency, which the same msync in 4–64 KiB folios puts at p50 ~45–65 µs, p99 ~70–95 µs.
fn written_file(path: &std::path::Path, bytes: usize) -> std::fs::File {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let zeros = vec![0u8; PREPARED_WRITE_BYTES];
    let mut left = bytes;
    while left > 0 {
        let len = left.min(PREPARED_WRITE_BYTES);
        file.write_all(&zeros[..len]).unwrap_or_else(|e| panic!("{e}"));
        left -= len;
    }
    file.sync_all().unwrap_or_else(|e| panic!("{e}"));
    file
}

/// The disk alone: a 128-byte write into a mapped file, then `msync` of its page, back to back
/// for `seconds` (each sample on the next page, as a journal moves on, round and round a file
/// of [`MSYNC_FILE_BYTES`]); p50, p99 and max, and the number of samples.
///
/// As long as the pipeline's measured run, so that both are exposed to the disk for as long
/// (on the development machine it has slow periods: clusters of ~1 ms flushes for 10–50 ms,
/// one to four in 3 s, seen by a bare Python loop too), and the p99 comes from ~50,000
/// samples instead of the 2,000 (~0.1 s) taken before 2026-12-06. A slow period still weighs
/// less in this p99 than in the pipeline's, which counts txs, not flushes: fewer samples fit
/// in it. The p99 by time ([`quantile_by_time`]) weighs it as the txs meet it.
fn msync_alone(seconds: f64) -> MsyncAlone {
    let path = std::env::temp_dir().join(format!("verex-msync-{}", std::process::id()));
    let page = 4096usize;
    let file = written_file(&path, MSYNC_FILE_BYTES);
    // SAFETY: the file is this process' own temporary file; nothing else maps or resizes it.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap_or_else(|e| panic!("mmap: {e}"));
    let mut histogram = latency_histogram();
    let (began, mut samples) = (Instant::now(), 0u64);
    while began.elapsed().as_secs_f64() < seconds {
        let at = usize::try_from(samples).unwrap_or(0) * page % MSYNC_FILE_BYTES;
        let sample = samples;
        samples += 1;
        let start = Instant::now();
        map[at..at + 128].fill(u8::try_from(sample % 251).unwrap_or(1));
        map.flush_range(at, 128).unwrap_or_else(|e| panic!("msync: {e}"));
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        histogram.saturating_record(ns.max(1));
    }
    drop(map);
    let _ = std::fs::remove_file(&path);
    MsyncAlone {
        ns: [histogram.value_at_quantile(0.5), histogram.value_at_quantile(0.99), histogram.max()],
        samples,
        p99_by_time_ns: quantile_by_time(&histogram, 0.99),
    }
}

/// What one msync-alone run measured.
#[derive(Clone, Copy, Default)]
struct MsyncAlone {
    /// Per msync: p50, p99, max.
    ns: [u64; 3],
    samples: u64,
    /// The p99 weighted by time: for 1% of the run the msync in flight took longer.
    p99_by_time_ns: u64,
}

/// The value below which samples account for `quantile` of the total time (each sample
/// weighted by its own value): the duration of the flush in flight at a random instant. A tx
/// arriving at a random time meets the disk this way, so a slow period counts for the txs it
/// holds up, not for the few flushes that fit in it.
fn quantile_by_time(histogram: &hdrhistogram::Histogram<u64>, quantile: f64) -> u64 {
    let total: f64 = histogram.iter_recorded().map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64).sum();
    let mut below = 0.0;
    for v in histogram.iter_recorded() {
        below += v.value_iterated_to() as f64 * v.count_at_value() as f64;
        if below >= quantile * total {
            return v.value_iterated_to();
        }
    }
    histogram.max()
}

/// Bytes of the file the one-flush floor writes its records into, round and round (the
/// journal's default segment size).
const FLOOR_FILE_BYTES: usize = 64 << 20;

/// The one-flush floor: the pipeline's records copied into a mapped file prepared as the
/// roller prepares a segment for small commits (zeros in 64 KiB writes, synced), round and
/// round, and each commit one msync of the pages written since the last one. No framing, no
/// rolling hash, no commit mark, no roll: **not a durability mode** (after a power loss
/// nothing could tell a torn record from a damaged committed one, which is why SPEC 8's
/// commit is two ordered flushes). A bound: what any commit order pays at least on this disk,
/// in the same pipeline, at the same rate.
pub(super) struct FloorSink {
    path: std::path::PathBuf,
    map: memmap2::MmapMut,
    /// Where the next record goes.
    at: usize,
    /// Records before this offset (since the last wrap) are msynced.
    synced: usize,
    /// Set when the records wrapped to the start of the file: the end of the unsynced range
    /// they left behind at the file's end.
    wrapped_at: Option<usize>,
    last_seq: u64,
}

impl FloorSink {
    /// A floor on a fresh file of [`FLOOR_FILE_BYTES`] in the system temp directory, removed
    /// when dropped.
    pub(super) fn open() -> Self {
        Self::with_file_bytes(FLOOR_FILE_BYTES, "run")
    }

    /// A floor on a fresh file of `bytes` (a multiple of the page size), named after `name`
    /// and the process.
    fn with_file_bytes(bytes: usize, name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("verex-floor-{}-{name}", std::process::id()));
        let file = written_file(&path, bytes);
        // SAFETY: the file is this process' own temporary file; nothing else maps or resizes it.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap_or_else(|e| panic!("mmap: {e}"));
        Self { path, map, at: 0, synced: 0, wrapped_at: None, last_seq: 0 }
    }

    fn msync(&self, from: usize, to: usize) -> Result<(), SinkError> {
        if to <= from {
            return Ok(());
        }
        self.map.flush_range(from, to - from).map_err(|e| SinkError::new(format!("msync floor: {e}")))
    }
}

impl Drop for FloorSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl RecordSink for FloorSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        let overrun = || SinkError::new("msync floor: more records in one commit than its file holds".to_string());
        if self.at + bytes.len() > self.map.len() {
            if self.wrapped_at.is_some() {
                return Err(overrun());
            }
            self.wrapped_at = Some(self.at);
            self.at = 0;
        }
        if self.wrapped_at.is_some() && self.at + bytes.len() > self.synced {
            return Err(overrun());
        }
        self.map[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
        self.last_seq = seq;
        Ok(())
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        if let Some(end) = self.wrapped_at.take() {
            self.msync(self.synced, end)?;
            self.synced = 0;
        }
        self.msync(self.synced, self.at)?;
        self.synced = self.at;
        Ok(self.last_seq)
    }
}

/// Lets the disk finish what the step before left it (deleted files: on a file system mounted
/// with `discard` the freed blocks are trimmed when the file-system journal commits), so that
/// the next measurement does not pay for it: `sync`, then a second for asynchronous discards.
fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(std::time::Duration::from_secs(1));
}

/// Of runs of the pipeline, the one with the median p99.
fn median_p99(mut runs: Vec<super::Row>) -> super::Row {
    runs.sort_by_key(|row| row.percentiles_ns[2]);
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

/// A row's p50, p99 and max.
fn p50_p99_max(row: &super::Row) -> [u64; 3] {
    [row.percentiles_ns[0], row.percentiles_ns[2], row.percentiles_ns[5]]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn micros(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1e3)
}

impl SignedReport {
    /// Cores × batch verifications per second per core: the most signed txs per second the
    /// machine could admit if it did nothing else.
    fn verify_bound(&self) -> f64 {
        self.cores as f64 * self.batch_per_core
    }

    fn print(&self) {
        println!("\nSigned transactions and the disk, one run ({} cores):\n", self.cores);
        println!("| measure | value |");
        println!("|---|---:|");
        println!("| single verifications/s, one core | {:.0} |", self.single_per_core);
        println!("| batch ({BATCH}) verifications/s, one core | {:.0} |", self.batch_per_core);
        println!("| verify_batch_vs_single (throughput) | {:.3} |", self.batch_per_core / self.single_per_core);
        println!(
            "| without the key cache: single / batch ({BATCH}) per core, batch vs single | {:.0} / {:.0}, {:.3} |",
            self.single_uncached_per_core,
            self.batch_uncached_per_core,
            self.batch_uncached_per_core / self.single_uncached_per_core
        );
        println!("| verification bound, {} cores × batch | {:.0} |", self.cores, self.verify_bound());
        println!("| signed tx/s end to end (ingress → pipeline, journal-batch) | {:.0} |", self.end_to_end_per_s);
        println!("| signed_e2e_vs_verify_bound (throughput) | {:.3} |", self.end_to_end_per_s / self.verify_bound());
        println!(
            "| signed end to end vs the bound without the key cache ({} × {:.0}) | {:.3} |",
            self.cores,
            self.batch_uncached_per_core,
            self.end_to_end_per_s / (self.cores as f64 * self.batch_uncached_per_core)
        );
        println!(
            "| msync alone ({} samples): p50 / p99 / max | {} / {} / {} |",
            self.msync.samples,
            micros(self.msync.ns[0]),
            micros(self.msync.ns[1]),
            micros(self.msync.ns[2])
        );
        println!(
            "| msync alone, p99 by time (the flush in flight at a random instant) | {} |",
            micros(self.msync.p99_by_time_ns)
        );
        let triple = |ns: &[u64; 3]| format!("{} / {} / {}", micros(ns[0]), micros(ns[1]), micros(ns[2]));
        println!(
            "| pipeline at {LATENCY_RATE} tx/s offered ({:.0} achieved), journal-batch, {} wait, injector at nice {DEPLOYED_INJECTOR_NICE}: p50 / p99 / max | {} / {} / {} |",
            self.pipeline_achieved,
            self.wait,
            micros(self.pipeline_ns[0]),
            micros(self.pipeline_ns[1]),
            micros(self.pipeline_ns[2])
        );
        let commits = |what: &str, c: &super::CommitSummary| {
            println!(
                "| {what}: commits, records per commit p50 / p99, commit p50 / p99 / max, time spent committing | \
                 {}, {} / {}, {}, {:.0}% |",
                c.count,
                c.records[0],
                c.records[1],
                triple(&c.duration_ns),
                100.0 * c.busy_share
            );
        };
        if let Some(c) = &self.pipeline_commits {
            commits("its journal stage", c);
        }
        println!(
            "| the one-flush floor in the same pipeline (records msync only, no mark: not a durability mode): p50 / p99 / max | {} |",
            triple(&self.floor_ns)
        );
        if let Some(c) = &self.floor_commits {
            commits("its commits", c);
        }
        println!(
            "| the same with the harness's defaults (machine's wait, injector at nice 0): p50 / p99 / max | {} |",
            triple(&self.pipeline_default_ns)
        );
        println!("| pipeline_p99_vs_msync_p99 (time) | {:.3} |", self.pipeline_p99_vs_msync_p99());
        println!("| floor_p99_vs_msync_p99 (time) | {:.3} |", self.floor_p99_vs_msync_p99());
        println!("| pipeline_p99_vs_floor_p99 (time) | {:.3} |", self.pipeline_p99_vs_floor_p99());
    }

    fn json(&self) -> String {
        format!(
            "{{\"cores\":{},\"batch\":{BATCH},\"single_per_core\":{:.0},\"batch_per_core\":{:.0},\
             \"single_uncached_per_core\":{:.0},\"batch_uncached_per_core\":{:.0},\
             \"verify_batch_vs_single\":{:.3},\"end_to_end_per_s\":{:.0},\"signed_e2e_vs_verify_bound\":{:.3},\
             \"msync_samples\":{},\"msync_p50_ns\":{},\"msync_p99_ns\":{},\"msync_max_ns\":{},\"msync_p99_by_time_ns\":{},\
             \"latency_rate\":{LATENCY_RATE},\
             \"pipeline_achieved_per_s\":{:.0},\"pipeline_p50_ns\":{},\"pipeline_p99_ns\":{},\"pipeline_max_ns\":{},\
             \"pipeline_p99_vs_msync_p99\":{:.3},\
             \"floor_p50_ns\":{},\"floor_p99_ns\":{},\"floor_max_ns\":{},\
             \"floor_p99_vs_msync_p99\":{:.3},\"pipeline_p99_vs_floor_p99\":{:.3},\
             \"disk_repeat\":{},\
             \"pipeline_default_p50_ns\":{},\"pipeline_default_p99_ns\":{},\"pipeline_default_max_ns\":{},\
             \"injector_nice\":{DEPLOYED_INJECTOR_NICE},\"wait\":\"{}\",{},{}}}\n",
            self.cores,
            self.single_per_core,
            self.batch_per_core,
            self.single_uncached_per_core,
            self.batch_uncached_per_core,
            self.batch_per_core / self.single_per_core,
            self.end_to_end_per_s,
            self.end_to_end_per_s / self.verify_bound(),
            self.msync.samples,
            self.msync.ns[0],
            self.msync.ns[1],
            self.msync.ns[2],
            self.msync.p99_by_time_ns,
            self.pipeline_achieved,
            self.pipeline_ns[0],
            self.pipeline_ns[1],
            self.pipeline_ns[2],
            self.pipeline_p99_vs_msync_p99(),
            self.floor_ns[0],
            self.floor_ns[1],
            self.floor_ns[2],
            self.floor_p99_vs_msync_p99(),
            self.pipeline_p99_vs_floor_p99(),
            self.repeat,
            self.pipeline_default_ns[0],
            self.pipeline_default_ns[1],
            self.pipeline_default_ns[2],
            self.wait,
            commits_json("commits", self.pipeline_commits.as_ref()),
            commits_json("floor_commits", self.floor_commits.as_ref()),
        )
    }

    /// The key: the pipeline's p99 at [`LATENCY_RATE`] over the disk's msync p99.
    fn pipeline_p99_vs_msync_p99(&self) -> f64 {
        self.pipeline_ns[1] as f64 / self.msync.ns[1].max(1) as f64
    }

    /// The one-flush floor's p99 over the disk's msync p99: how close any commit order can come.
    fn floor_p99_vs_msync_p99(&self) -> f64 {
        self.floor_ns[1] as f64 / self.msync.ns[1].max(1) as f64
    }

    /// The pipeline's p99 over the floor's: what SPEC 8's second, ordered flush costs at the tail.
    fn pipeline_p99_vs_floor_p99(&self) -> f64 {
        self.pipeline_ns[1] as f64 / self.floor_ns[1].max(1) as f64
    }
}

/// A run's commits as the JSON member `name` (`null` without them).
fn commits_json(name: &str, commits: Option<&super::CommitSummary>) -> String {
    let Some(c) = commits else { return format!("\"{name}\":null") };
    format!(
        "\"{name}\":{{\"count\":{},\"records_p50\":{},\"records_p99\":{},\"p50_ns\":{},\"p99_ns\":{},\
             \"max_ns\":{},\"busy_share\":{:.3}}}",
        c.count, c.records[0], c.records[1], c.duration_ns[0], c.duration_ns[1], c.duration_ns[2], c.busy_share
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> [u8; 256] {
        let mut bytes = [0u8; 256];
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        bytes
    }

    #[test]
    fn the_floor_keeps_records_across_its_wrap_and_refuses_a_commit_larger_than_its_file() {
        let mut floor = super::super::Timed::new(FloorSink::with_file_bytes(64 << 10, "wrap"));
        // 256 records per file: three times round, committing every 100.
        for seq in 1..=768 {
            floor.append(seq, &record(seq)).unwrap_or_else(|e| panic!("append {seq}: {e}"));
            if seq % 100 == 0 {
                assert_eq!(floor.commit().ok(), Some(seq));
            }
        }
        assert_eq!(floor.commit().ok(), Some(768));
        // The last record written sits just before where the next goes (768 % 256 = 0: the end).
        let last = floor.inner.map.len() - 256;
        assert_eq!(floor.inner.map[last..last + 8], 768u64.to_le_bytes());
        assert_eq!(floor.stats.summary().count, 8, "7 commits of 100 and the last");

        let mut floor = FloorSink::with_file_bytes(64 << 10, "overrun");
        let overran = (1..=300).map(|seq| floor.append(seq, &record(seq))).position(|r| r.is_err());
        assert_eq!(overran, Some(256), "the 257th record of one commit would overwrite the first");
    }
}
