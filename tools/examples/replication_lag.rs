//! The primary's side of the replication measurements (perf/replication): the real pipeline
//! (sequencer, ring, journal stage with a `batch` journal, engine stage, output stage) fed
//! pre-signed transactions at a fixed rate or at full speed, with or without publishing to
//! NATS JetStream.
//!
//! ```text
//! cargo run --release -p verex-tools --example replication_lag -- --dir DIR --txs N
//!     [--rate TXS_PER_S (0: full speed)] [--publish nats://HOST:PORT --stream NAME [--replicated]]
//!     [--blocking] [--cores ENGINE,OTHER]
//! ```
//!
//! Prints one JSON line: txs, seconds (to the pipeline's shutdown), tx/s, the seconds to the
//! last acknowledgement, the process's and the publisher thread's CPU time over the run, the
//! release latency (publish into the ring to events released) p50/p99, and the publisher's
//! report. The follower's side
//! (the lag from publish to applied) is `verex follow`'s own report; `perf/replication/run`
//! runs both and writes `perf/replication/RESULTS.md`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

use verex_engine::catalog::Catalog;
use verex_engine::runtime::{Pipeline, PipelineConfig, RecordSink, SinkError, Subscriber, TxEnd, WaitMode};
use verex_engine::sequencer::Clock;
use verex_engine::store::JournalSink;
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, Event, Genesis};
use verex_journal::{JournalConfig, JournalWriter};
use verex_tools::gen::{GenConfig, Generator};
use verex_tools::manifest::{write_manifest, LimitsArg, Manifest};
use verex_tools::replicate::publish::{PublishConfig, Publisher};
use verex_tools::replicate::sink::{PublishingSink, Release};
use verex_tools::replicate::{cpu_ms, Target};

/// Records each tx's release latency: from its publish into the ring to its events' release
/// (after the local commit, and with `--replicated` after JetStream's acknowledgement).
struct Latency {
    epoch: Arc<OnceLock<Instant>>,
    release_ns: Histogram<u64>,
}

impl Subscriber for Latency {
    fn on_event(&mut self, _seq: u64, _event: &Event, _catalog: &Catalog) {}

    fn on_tx_end(&mut self, end: &TxEnd) {
        if let Some(epoch) = self.epoch.get() {
            let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.release_ns.saturating_record(now.saturating_sub(end.published_ns).max(1));
        }
    }
}

/// Counts the commit groups (commits that made new records durable) of the sink it wraps: how
/// often the journal flushed, which the throughput depends on (each msync interrupts the other
/// cores of the process to flush their TLBs).
struct CountingCommits<K> {
    inner: K,
    durable: u64,
    groups: u64,
}

impl<K: RecordSink> RecordSink for CountingCommits<K> {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.inner.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        let durable = self.inner.commit()?;
        Ok(self.count(durable))
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        let durable = self.inner.finish()?;
        Ok(self.count(durable))
    }
}

impl<K> CountingCommits<K> {
    /// Counts a group when the durable seq moved, and passes it on.
    fn count(&mut self, durable: u64) -> u64 {
        if durable > self.durable {
            self.durable = durable;
            self.groups += 1;
        }
        durable
    }
}

struct Args {
    dir: PathBuf,
    txs: u64,
    rate: u64,
    publish: Option<String>,
    stream: String,
    replicated: bool,
    /// Park idle stages (`WaitMode::Blocking`) instead of this machine's default, so that
    /// the follower and the server sharing the machine get the cores the primary leaves.
    blocking: bool,
    /// `--cores ENGINE,OTHER`: the engine stage pinned to core ENGINE, and every other thread
    /// (the injector, the journal and output stages, the publisher) kept on core OTHER: the
    /// engine's core isolated, as on a deployment.
    cores: Option<(usize, usize)>,
}

fn parse_args() -> Args {
    let mut args = Args {
        dir: PathBuf::from("target/replication-lag"),
        txs: 100_000,
        rate: 0,
        publish: None,
        stream: "perf".into(),
        replicated: false,
        blocking: false,
        cores: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => args.dir = PathBuf::from(value()),
            "--txs" => args.txs = value().parse().expect("--txs"),
            "--rate" => args.rate = value().parse().expect("--rate"),
            "--publish" => args.publish = Some(value()),
            "--stream" => args.stream = value(),
            "--replicated" => args.replicated = true,
            "--blocking" => args.blocking = true,
            "--cores" => {
                let value = value();
                let (engine, other) = value.split_once(',').expect("--cores ENGINE,OTHER");
                args.cores = Some((engine.parse().expect("--cores"), other.parse().expect("--cores")));
            }
            other => panic!("unknown flag {other}; see the doc comment"),
        }
    }
    args
}

/// The generator's set-up and `txs` order-flow transactions, signed with the development keys.
fn signed_workload(txs: u64) -> Vec<VerifiedTx> {
    let mut generator = Generator::new(GenConfig { txs, ..GenConfig::default() });
    let mut lines = generator.setup();
    while let Some(line) = generator.next_line() {
        lines.push(line);
    }
    let mut signer = DevSigner::new(0);
    lines.iter().map(|line| signer.sign_verified(&parse_tx_line(line).expect("generated line"))).collect()
}

#[allow(clippy::disallowed_methods)]
fn main() {
    let args = parse_args();
    if let Some((_, other)) = args.cores {
        // Every thread but the engine stage is spawned from here and inherits this core.
        assert!(core_affinity::set_for_current(core_affinity::CoreId { id: other }), "--cores: core {other}");
    }
    let started = Instant::now();
    let txs = signed_workload(args.txs);
    eprintln!("signed {} txs in {:.1} s", txs.len(), started.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&args.dir);
    let (writer, _) = JournalWriter::open(JournalConfig::new(&args.dir)).expect("journal");
    let manifest = Manifest { limits: LimitsArg::Production, genesis: Genesis::dev() };
    write_manifest(&args.dir, &manifest).expect("manifest");
    let engine = Engine::new(Genesis::dev(), manifest.limits.limits()).expect("engine");
    let publisher = args.publish.as_ref().map(|urls| {
        let target = Target::parse(urls, &args.stream, 1).expect("--publish");
        let config = PublishConfig { target, dir: args.dir.clone(), attest_every: 0, manifest };
        let publisher = Publisher::spawn(config, Default::default()).expect("publisher");
        assert_eq!(publisher.wait_checked(Duration::from_secs(10)), Ok(true), "the stream is reachable and fresh");
        publisher
    });
    let release =
        if args.replicated { Release::Replicated { final_wait: Duration::from_secs(30) } } else { Release::Local };
    let sink = PublishingSink::new(JournalSink::new(writer), publisher.as_ref().map(Publisher::feed), release);
    let sink = CountingCommits { inner: sink, durable: 0, groups: 0 };
    let mut config = PipelineConfig::for_this_machine(Clock::Deterministic);
    if args.blocking {
        config.wait = WaitMode::Blocking;
        config.engine_core = None;
    }
    if let Some((engine, _)) = args.cores {
        config.engine_core = Some(engine);
    }
    let epoch = Arc::new(OnceLock::new());
    let latency = Latency {
        epoch: Arc::clone(&epoch),
        release_ns: Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("histogram"),
    };
    let mut pipeline = Pipeline::start(engine, sink, latency, config).expect("pipeline");
    if let Some((engine, _)) = args.cores {
        assert_eq!(pipeline.info().engine_pinned, Some(engine), "{}", pipeline.info());
    }
    let _ = epoch.set(pipeline.epoch());
    let cpu_before = cpu_ms(false).unwrap_or(0);
    let started = Instant::now();
    for (n, tx) in txs.iter().enumerate() {
        if let Some(offset_ns) = (n as u64 * 1_000_000_000).checked_div(args.rate) {
            let due = started + Duration::from_nanos(offset_ns);
            while Instant::now() < due {
                std::hint::spin_loop();
                if due.saturating_duration_since(Instant::now()) > Duration::from_micros(200) {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
        }
        pipeline.submit(tx, None, n as u64).expect("submit");
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    let seconds = started.elapsed().as_secs_f64();
    let seq = stopped.engine.seq();
    let release = &stopped.subscriber.release_ns;
    let report = publisher.map(|p| p.finish(seq, Duration::from_secs(60)));
    // Through the last acknowledgement: the publisher may still have been catching up.
    let acked_seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_ms(false).unwrap_or(0).saturating_sub(cpu_before);
    println!(
        "{{\"txs\":{seq},\"seconds\":{seconds:.3},\"tx_per_s\":{:.0},\"acked_seconds\":{acked_seconds:.3},\"process_cpu_ms\":{cpu},\"publisher_cpu_ms\":{},\"publish\":{},\"replicated\":{},\"acked_seq\":{},\"messages\":{},\"max_backlog\":{},\"release_p50_us\":{},\"release_p99_us\":{},\"commit_groups\":{}}}",
        seq as f64 / seconds,
        report.as_ref().and_then(|r| r.cpu_ms).unwrap_or(0),
        report.is_some(),
        args.replicated,
        report.as_ref().map_or(0, |r| r.acked_seq),
        report.as_ref().map_or(0, |r| r.messages),
        report.as_ref().map_or(0, |r| r.max_backlog),
        release.value_at_quantile(0.5) / 1000,
        release.value_at_quantile(0.99) / 1000,
        stopped.sink.groups,
    );
}
