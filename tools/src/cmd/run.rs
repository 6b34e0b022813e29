//! `verex run`: JSON-lines transactions through the engine, events and the final state out;
//! with `--journal`, every sequenced transaction is journaled and its events are released only
//! once the journal says it is durable.
//!
//! The lines go through the runtime's pipeline (SPEC section 2, `verex_engine::runtime`): with
//! `--dev` the reading thread parses, signs and submits; without, the ingress' workers decode
//! and verify signatures in parallel and a sequencer thread submits in input order; the journal stage (a `JournalSink` newtype
//! that also feeds the replica after each commit) and the engine stage run in parallel; the
//! output stage writes each tx's events once durable, and refusals in input order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ed25519_dalek::SigningKey;
use verex_engine::catalog::Catalog;
use verex_engine::runtime::{
    check_engine_core, decode_json_line, feed, start_ingress, IngressConfig, MemorySink, Pipeline, PipelineConfig,
    PoisonReason, RecordSink, RefusalReason, SinkError, SubmitError, Subscriber, WaitMode, DEFAULT_COMMIT_MAX_RECORDS,
};
use verex_engine::sequencer::Clock;
use verex_engine::signing::{dev_role_key, hex, Role};
use verex_engine::text::event_json::render_event;
use verex_engine::text::state_json::render_state;
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::tx::ArchivedOp;
use verex_engine::{Engine, Event, Genesis};
use verex_journal::{
    Durability, JournalConfig, JournalError, JournalWriter, Record, RecoveryReport, DEFAULT_SEGMENT_BYTES, GENESIS_HASH,
};

use crate::attestations::{attestations_path, check_against_chain, cut_torn_line, read_attestations, AttestationLog};
use crate::error::CliError;
use crate::io::{note, refuse_same_file, warn, LineReader, LineSink, Output, Progress};
use crate::keys::{read_genesis_file, read_key_file};
use crate::manifest::{manifest_path, read_manifest, write_manifest, LimitsArg, Manifest};
use crate::rebuild::{access_checked, open_reader};
use crate::recover::{self, Source};
use crate::replica::{
    Replica, ReplicaConfig, ReplicaFeed, ReplicaReport, ReplicaStart, DEFAULT_ATTEST_EVERY, DEFAULT_REPLICA_NICE,
    DEFAULT_SNAPSHOT_EVERY,
};
use crate::replicate::publish::{PublishConfig, PublishReport, Publisher};
use crate::replicate::sink::{PublishingSink, Release};
use crate::replicate::{Target, DEFAULT_STREAM};
use crate::snapshots::DEFAULT_KEEP_SNAPSHOTS;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Run JSON-lines transactions (SPEC section 13) through the engine, one transaction a line, and \
write one event a line plus the final state dump. Blank lines and lines starting with # are \
skipped; every other line is one transaction and gets the next seq.

With --dev, lines need no signature: operator ops are signed with the development operator \
keys and user ops with the development key of their `account` (never in production). Without \
--dev, every line must carry `signer`, `nonce` and `signature` (see `verex sign`); a line whose \
signature does not verify is refused before sequencing and yields \
{\"event\":\"rejected\",\"reason\":\"bad_signature\"} with no seq.

A transaction that breaks a rule is not an error: it is sequenced and yields a `rejected` event \
with a reason. A line that is not a transaction (bad JSON, unknown op or field, a JSON number \
where a decimal string is required) stops the run: the events of the lines before it are \
flushed to --events and the state after them is written to --state, so the outputs stay \
consistent with each other, then the error names the file, line and reason and the exit \
status is 2.

Operator keys. Without --dev the operator keys are never the development ones: a new journal \
(--init) or a run without --journal needs --genesis FILE, and an existing journal uses the keys \
recorded in DIR/verex.json when it was created.

Journal (--journal DIR). Every sequenced transaction's record (the archived, signed tx with \
its seq and time stamp) is appended to the journal in DIR, and a transaction's events are \
written only once its record is durable in the sense of --durability. A new journal is \
created only with --init (DIR must then hold no journal; without --dev, --genesis FILE is \
required): without it, a DIR that holds no journal is an error, so that a mistyped path never \
starts a new exchange. With --dev a missing journal is created as if --init were given. On a journal that already holds records, run first recovers it: a torn tail left \
by a crash is cut and reported on standard error, damage anywhere else is refused (exit status \
1, naming the seq and the segment file). It then rebuilds the engine from the newest valid \
snapshot in DIR/snapshots plus the records after it, or by replaying every record when there is \
none (see Recovery below), and continues with the next seq; --events holds this run's events \
only (`verex replay --events` re-derives them all). The genesis keys and limits are those recorded in \
DIR/verex.json when the journal was created; --limits, --genesis or --dev that disagree with it \
are refused. With --dev, nonces and account numbers continue where the journal left off.

Durability modes (--durability), and what each can lose. Every commit makes its records durable \
(per the mode), then writes the commit mark (DIR/commit.mark: the last committed seq and its \
hash); recovery cuts a torn record only beyond the mark and refuses, naming file, offset and \
seq, any damage at or below it or a missing segment.

  sync   Each record is msynced, and the mark fdatasynced, before its events are written. Loss window: none; a \
transaction whose events were written survives a crash and a power loss. One msync per \
transaction: the slowest mode.

  batch  (default) Records are msynced once per commit group: everything the journal stage found \
in the ring, closed when the ring is empty, at 8192 transactions or 2 ms after the group's first \
append (group commit: idle, each transaction is msynced at once; saturated, one msync covers \
thousands), and at the end of the run; a batch's events are written only after its msync and \
the mark's fdatasync return. Loss window: a process crash (kill -9) \
loses nothing that was appended, because the records sit in the page cache and recovery finds \
them (their events may never have been written: replay re-derives them); a power loss or \
kernel crash loses at most the transactions since the last msync, none of whose events were \
written.

  async  No msync while running: events are written as soon as their commit group is in \
the page cache, and the kernel writes the pages back on its own schedule (typically within 30 s); \
a finished segment is msynced completely in the background after the journal rolls to the next. \
Loss window: a process crash loses nothing that was appended; a power loss or kernel crash can \
lose every transaction since the kernel last wrote back, including ones whose events were \
already written; if the mark reached the disk before the records it covers, the next run \
refuses the journal, naming the first missing seq (an operator decides), rather than cut \
records whose events were written.

A failed msync stops the run (exit status 1) without writing the state: the journal is never \
assumed durable after an error; rerun to recover what is on disk.

Replica (with --journal). A second engine on its own thread tails the journal, reading only \
records already durable, and writes beside it, never pausing the engine stage:

  attestations: at every multiple of --attest-every seqs (default 10000; 0: none; each costs one full state hash, about 0.4 s at a million accounts and orders), \
(seq, journal digest, state hash) signed with the attest key, one JSON line appended to \
DIR/attestations.jsonl and fsynced (the export: see `verex attestations --help`). The key is \
--attest-key FILE (a `verex keygen` file), else with --dev the development attest key; it must \
be the genesis attest key, else the run is refused (exit status 2). Without either, no \
attestations are written.

  snapshots: at every multiple of --snapshot-every seqs (default 100000; 0: none) and, with \
--snapshot-secs T, when T seconds have passed since the last one, DIR/snapshots/<seq, 20 \
digits>.snap (written to a temporary name, fsynced, renamed, directory fsynced). Only the newest \
--keep-snapshots K (default 3) are kept. With --archive-segments, journal segments whose \
records all precede the oldest kept snapshot are moved into DIR/archive/ and a symbolic link \
is left under their name (the journal verifies its chain from segment 1 on every open); \
journal segments are never deleted.

The replica's thread runs at nice 10, so that on a machine with few cores the engine stage \
gets most of a core they share; it falls behind while it hashes or encodes a large state; it catches up when the run ends (its \
work is then reported on standard error). If it fails, the run still releases its events and \
writes its state, then exits with status 1 naming the failure.

Replication (--publish URLS, with --journal). Every committed record is published to the \
NATS JetStream stream --stream NAME (default verex; created if missing with --stream-replicas \
copies) at the servers URLS (nats://HOST:PORT, several comma-separated for a cluster), one \
message per commit group, by a thread of its own that reads the committed records from the \
journal: the engine stage never waits on the network, and an unreachable server only makes \
the publisher fall behind (reported on standard error; it retries at most a second apart and \
catches up from the journal; what is still unpublished at the end is named, and the next run \
with --publish sends it). Before sequencing anything, the run checks the stream's last message \
against the journal (waiting up to --publish-timeout seconds, default 10): a stream ahead of \
the journal or holding another history means another writer (a promoted follower) holds it, \
and the run stops (exit status 1) without journaling anything; a second live writer is \
refused by JetStream itself and stops too. With --replicated a transaction's events are \
released only once JetStream has acknowledged its record (a second machine holds it); \
records never acknowledged by the end of the run (after --publish-timeout) keep their events \
withheld and the exit status is 1. Followers: `verex follow --help`; the format: \
docs/replication.md.

Recovery. On an existing journal, the snapshots in DIR/snapshots are tried newest first: one is \
used only if it decodes (checksum, archive validation, rebuilt state hash) and its header's \
journal hash and BLAKE3 attestation digest equal the journal's at its seq (the chain is \
recomputed over the records). Each one that fails is named on standard error and skipped for \
an older one, or for a full replay; the result equals a full replay. The attestations already \
in DIR/attestations.jsonl must be signed by the genesis attest key and match the journal's \
chain, and none may lie beyond the journal's end, else the run is refused (exit status 1): \
appending would contradict what was attested. A torn last line of the log (a crash during an \
append) is cut and reported; the replica restarts from the snapshot recovery used and writes \
the attestations and snapshots a crash kept it from writing (the replica trails the journal, so \
a crash can leave the last ones unwritten: a run with an empty --input catches up).";

/// Most transactions per journal commit (and event release) in the batch and async modes: the
/// pipeline's group-commit cap (groups also close when the ring is empty and after
/// `DEFAULT_COMMIT_MAX_DELAY`).
pub const RELEASE_BATCH_TXS: u64 = DEFAULT_COMMIT_MAX_RECORDS as u64;

/// Where time stamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockArg {
    /// seq n is stamped 1_700_000_000_000_000_000 + n × 1_000_000 ns: reproducible runs.
    Deterministic,
    /// The system clock, as a production ingress stamps.
    Wall,
}

/// When journaled transactions are durable (see the command's long help for loss windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// msync every record before its events are written.
    Sync,
    /// msync once per commit group (at most 8192 transactions or 2 ms), then write their events.
    Batch,
    /// never msync; the kernel writes pages back on its own schedule.
    Async,
}

impl From<DurabilityArg> for Durability {
    fn from(mode: DurabilityArg) -> Self {
        match mode {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Batch => Durability::Batch,
            DurabilityArg::Async => Durability::Async,
        }
    }
}

/// Arguments of `verex run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Sign lines with the deterministic development keys (never in production).
    #[arg(long)]
    pub dev: bool,
    /// JSON-lines transactions to run (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Write events here, one JSON object a line (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Write the final state dump here (default: not written).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Journal directory: journal every sequenced transaction there, resuming after its last
    /// record (see the Journal paragraph of --help).
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Create a new journal in --journal DIR (which must not hold one); without --dev it needs
    /// --genesis FILE.
    #[arg(long, requires = "journal")]
    pub init: bool,
    /// When journaled transactions are durable and their events released (see the loss
    /// windows in --help).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Batch, requires = "journal")]
    pub durability: DurabilityArg,
    /// Size of new journal segment files in bytes: a multiple of the page size from 64 KiB to
    /// 4 GiB.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SEGMENT_BYTES, requires = "journal")]
    pub segment_bytes: u64,
    /// Operator keys, as {"admin":"<hex>","custody":"<hex>","oracle":"<hex>","attest":"<hex>"}
    /// (default: the journal's; required without --dev for a new journal or a run without one).
    #[arg(long, value_name = "FILE", conflicts_with = "dev")]
    pub genesis: Option<PathBuf>,
    /// Engine capacity to pre-allocate (default: the journal's, else production).
    #[arg(long, value_enum)]
    pub limits: Option<LimitsArg>,
    /// Time stamp source (default: deterministic with --dev, wall otherwise).
    #[arg(long, value_enum)]
    pub clock: Option<ClockArg>,
    /// Pin the engine stage to this core, whatever the wait mode: typically a core kept from
    /// the scheduler (`isolcpus`) or one the process was started without (`taskset` on the
    /// other cores). The run refuses to start if the kernel refuses the core. Default: the
    /// last core when the stages busy-spin (a core for each), none otherwise.
    #[arg(long, value_name = "CORE")]
    pub engine_core: Option<usize>,
    /// Attestations and snapshots (with --journal).
    #[command(flatten)]
    pub replica: ReplicaArgs,
    /// Replication through NATS JetStream (with --journal).
    #[command(flatten)]
    pub publish: PublishArgs,
}

/// The publisher's flags: ship the journal to a NATS JetStream stream (see the Replication
/// paragraph of --help).
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Publish every committed record to NATS JetStream at these servers
    /// (nats://HOST:PORT, several separated by commas for a cluster).
    #[arg(long, value_name = "URLS", requires = "journal")]
    pub publish: Option<String>,
    /// The JetStream stream (created if missing, capturing subjects verex.NAME.>).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STREAM, requires = "publish")]
    pub stream: String,
    /// Replicas of a stream this run creates (3 on a three-node cluster).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "publish")]
    pub stream_replicas: usize,
    /// Release a transaction's events only once JetStream has acknowledged its record (a
    /// second machine holds it), not merely once the local journal has committed it.
    #[arg(long, requires = "publish")]
    pub replicated: bool,
    /// At the end of the run, wait at most this long for the server to acknowledge the rest.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, requires = "publish")]
    pub publish_timeout: u64,
}

/// The replica's flags: attestations and snapshots of a journaled run (see the Replica
/// paragraph of --help).
#[derive(Debug, Args)]
pub struct ReplicaArgs {
    /// Sign an attestation (seq, journal digest, state hash) at every multiple of N seqs into
    /// DIR/attestations.jsonl (0: none).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ATTEST_EVERY, requires = "journal")]
    pub attest_every: u64,
    /// Key file (from `verex keygen`) to sign attestations with; its public key must be the
    /// genesis attest key (default with --dev: the development attest key; otherwise none, and
    /// no attestations are written).
    #[arg(long, value_name = "FILE", requires = "journal")]
    pub attest_key: Option<PathBuf>,
    /// Write a snapshot into DIR/snapshots at every multiple of M seqs (0: none by count).
    #[arg(long, value_name = "M", default_value_t = DEFAULT_SNAPSHOT_EVERY, requires = "journal")]
    pub snapshot_every: u64,
    /// Also write a snapshot when this many seconds have passed since the last one and records
    /// came in (default: never by time).
    #[arg(long, value_name = "SECONDS", requires = "journal", value_parser = clap::value_parser!(u64).range(1..))]
    pub snapshot_secs: Option<u64>,
    /// Keep the newest K snapshots, delete older ones (journal segments are never deleted).
    #[arg(long, value_name = "K", default_value_t = DEFAULT_KEEP_SNAPSHOTS, requires = "journal",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_snapshots: u64,
    /// Move journal segments older than the oldest kept snapshot into DIR/archive/, leaving a
    /// symbolic link in their place (never deletes them).
    #[arg(long, requires = "journal")]
    pub archive_segments: bool,
}

impl ReplicaArgs {
    /// Whether a replica has anything to do.
    fn wants_replica(&self, has_attest_key: bool) -> bool {
        (has_attest_key && self.attest_every > 0) || self.snapshot_every > 0 || self.snapshot_secs.is_some()
    }

    fn config(&self, dir: &Path, attest_key: Option<SigningKey>, sync_records: bool) -> ReplicaConfig {
        ReplicaConfig {
            dir: dir.to_path_buf(),
            attest_every: self.attest_every,
            attest_key,
            snapshot_every: self.snapshot_every,
            snapshot_interval: self.snapshot_secs.map(Duration::from_secs),
            keep_snapshots: self.keep_snapshots,
            archive_segments: self.archive_segments,
            sync_records,
            nice: DEFAULT_REPLICA_NICE,
        }
    }
}

/// What a run did.
#[derive(Debug, Default)]
struct Tally {
    /// Lines sequenced and applied (accepted or rejected by the engine).
    applied: u64,
    /// Lines refused before sequencing (bad signature).
    refused: u64,
}

/// Runs the input and writes the outputs.
///
/// The lines go through the pipeline (`verex_engine::runtime`). With `--dev` this thread
/// reads, parses and signs each line and hands it to the sequencer; without, it reads and the
/// ingress' workers decode and verify, a sequencer thread submitting their verdicts in input
/// order (bad signatures as in-order notes). The journal stage
/// (a `JournalSink`, or a `MemorySink` that keeps nothing without `--journal`) and the
/// engine stage run in parallel; the output stage writes each transaction's events once its
/// record is durable, and the bad-signature refusals in input order.
///
/// # Errors
/// [`CliError::Line`] for a malformed line (after writing what came before it),
/// [`CliError::Journal`] for a corrupt journal or a failed append or msync (after releasing
/// only the events of durable transactions, and without writing the state), others for I/O
/// failures, bad genesis files and arguments that disagree with the journal.
pub fn execute(args: &RunArgs) -> Result<(), CliError> {
    // Cheap checks first: a bad genesis or path fails before the engine is allocated.
    let genesis = args.genesis.as_deref().map(read_genesis_file).transpose()?;
    refuse_same_file(Some(&args.input), args.events.as_deref(), "--input and --events")?;
    refuse_same_file(Some(&args.input), args.state.as_deref(), "--input and --state")?;
    if let Some(core) = args.engine_core {
        // Before anything is opened or created.
        check_engine_core(core).map_err(|why| CliError::Usage(format!("--engine-core {core}: {why}")))?;
    }
    let mut input = LineReader::open(Some(&args.input))?;
    let events = EventsOut::create(args.events.as_deref())?;
    let state = args.state.as_deref().map(Output::replacing).transpose()?;
    let clock = match args.clock.unwrap_or(if args.dev { ClockArg::Deterministic } else { ClockArg::Wall }) {
        ClockArg::Deterministic => Clock::Deterministic,
        ClockArg::Wall => Clock::Wall,
    };
    let Some(dir) = &args.journal else {
        let genesis = match (genesis, args.dev) {
            (Some(genesis), _) => genesis,
            (None, true) => Genesis::dev(),
            (None, false) => return Err(no_genesis("a run without --journal")),
        };
        let engine = Engine::new(genesis, args.limits.unwrap_or(LimitsArg::Production).limits())?;
        let signer = args.dev.then(|| DevSigner::new(0));
        let mut run = drive(engine, MemorySink::discarding(), events, &mut input, signer, clock, args.engine_core)?;
        let failure = run.poison.take().map(poison_error);
        return run.finish(failure, state);
    };
    let target = args.publish.target()?;
    let (engine, signer, sink, replica, publisher) = open_journal(args, dir, genesis, target)?;
    let mut run = drive(engine, sink, events, &mut input, args.dev.then_some(signer), clock, args.engine_core)?;
    // After a journal failure no event past the durable seq was released and no state is
    // written: the engine is ahead of what the journal holds. A fenced publisher (another
    // writer holds the stream) stops the run the same way.
    let fenced = run.sink.fenced();
    let failure = run.poison.take().map(|poison| match (run.sink.inner.journal.take_error(), fenced.clone()) {
        (Some(error), _) => CliError::Journal(error),
        (None, Some(reason)) => CliError::Replication(reason),
        (None, None) => poison_error(poison),
    });
    let durable_seq = run.sink.inner.journal.writer().durable_seq();
    let mode = format!("{:?}", run.sink.inner.journal.writer().durability()).to_lowercase();
    let replica = replica.map(|replica| replica.finish(durable_seq));
    let published = publisher.map(|p| p.finish(durable_seq, Duration::from_secs(args.publish.publish_timeout)));
    let failure = failure.or_else(|| published.as_ref().and_then(|report| publish_failure(args, report, durable_seq)));
    run.finish(failure, state)?;
    note(&format!("run: journal {} durable through seq {durable_seq} ({mode} mode)", dir.display()));
    if let Some(report) = &published {
        note_published(report, durable_seq);
    }
    if let Some(finished) = replica {
        note_replica(&finished?);
    }
    Ok(())
}

impl PublishArgs {
    /// The stream to publish to, if any.
    fn target(&self) -> Result<Option<Target>, CliError> {
        self.publish
            .as_deref()
            .map(|urls| Target::parse(urls, &self.stream, self.stream_replicas))
            .transpose()
            .map_err(|e| CliError::Usage(format!("--publish: {e}")))
    }

    fn release(&self) -> Release {
        if self.replicated {
            Release::Replicated { final_wait: Duration::from_secs(self.publish_timeout) }
        } else {
            Release::Local
        }
    }
}

/// What makes a publishing run fail: another writer, or (with --replicated) records the
/// server never acknowledged, whose events were withheld.
fn publish_failure(args: &RunArgs, report: &PublishReport, durable_seq: u64) -> Option<CliError> {
    if let Some(reason) = &report.fenced {
        return Some(CliError::Replication(reason.clone()));
    }
    (args.publish.replicated && report.acked_seq < durable_seq).then(|| {
        CliError::Replication(format!(
            "--replicated: JetStream acknowledged records only up to seq {}, the journal holds them up to seq \
             {durable_seq}: the events after seq {} were withheld (the next run publishes the records){}",
            report.acked_seq,
            report.acked_seq,
            report.last_failure.as_ref().map(|f| format!("; last failure: {f}")).unwrap_or_default()
        ))
    })
}

/// Says what the publisher did.
fn note_published(report: &PublishReport, durable_seq: u64) {
    note(&format!(
        "run: published through seq {} ({} messages, {} records, {} attestations; {} failed attempts, largest \
         backlog {} records)",
        report.acked_seq, report.messages, report.records, report.attestations, report.failures, report.max_backlog
    ));
    if report.fenced.is_none() && report.acked_seq < durable_seq {
        warn(&format!(
            "run: records {}..={durable_seq} are committed locally but not yet in the stream; the next run with \
             --publish sends them{}",
            report.acked_seq + 1,
            report.last_failure.as_ref().map(|f| format!(" (last failure: {f})")).unwrap_or_default()
        ));
    }
}

/// Says what the replica did.
fn note_replica(report: &ReplicaReport) {
    let mut line = format!(
        "run: replica at seq {}: {} attestations written, {} re-checked; {} snapshots written",
        report.seq, report.attestations_written, report.attestations_checked, report.snapshots_written
    );
    if let Some(last) = &report.last_snapshot {
        line.push_str(&format!(
            " (last {}: {} bytes, encoded in {:.3} s, written in {:.3} s)",
            last.path.display(),
            last.bytes,
            last.encode.as_secs_f64(),
            last.write.as_secs_f64()
        ));
    }
    if !report.segments_archived.is_empty() {
        line.push_str(&format!("; archived segments {:?}", report.segments_archived));
    }
    note(&line);
}

/// Opens (recovering) the journal, rebuilds the engine (newest valid snapshot + the journal's
/// suffix) and starts the replica. The engine continues after the last seq; the development
/// signer continues the journal's nonces and account numbers.
#[allow(clippy::type_complexity)]
fn open_journal(
    args: &RunArgs,
    dir: &Path,
    genesis: Option<Genesis>,
    target: Option<Target>,
) -> Result<(Engine, DevSigner, PublishingSink<JournalSink>, Option<Replica>, Option<Publisher>), CliError> {
    let key_file = args.replica.attest_key.as_deref().map(read_key_file).transpose()?;
    check_init(args, dir, genesis.is_some())?;
    // The attest key is checked before anything is created: a refused run leaves no journal.
    let (operators, source) = match read_manifest(dir)? {
        Some(recorded) => (recorded.genesis, format!("recorded in {}", manifest_path(dir).display())),
        None => {
            let wanted = genesis.or_else(|| args.dev.then(Genesis::dev)).ok_or_else(|| no_genesis("a new journal"))?;
            (wanted, "named for the new journal".to_string())
        }
    };
    let attest_key = settle_attest_key(args, key_file, &operators.attest, &source)?;
    let (writer, report) = open_writer(args, dir)?;
    let manifest = settle_manifest(args, dir, genesis, &report)?;
    let log = open_attestation_log(dir)?;
    let replica_wanted = args.replica.wants_replica(attest_key.is_some());
    let mut signer_state = DevSignerState::default();
    let reader = open_reader(dir)?;
    let options = recover::Options {
        source: Source::Newest,
        keep_base: replica_wanted,
        extra_points: log.entries.iter().map(|e| e.attestation.seq).collect(),
        label: "run",
    };
    let observe = |record: &Record<'_>| {
        if args.dev {
            let tx = &access_checked(dir, record)?.signed.tx;
            signer_state.observe(&tx.signer, tx.nonce.to_native(), &tx.op);
        }
        Ok(())
    };
    let recovered = recover::recover(dir, &reader, &manifest, &options, observe, |_, _, _, _| Ok(()))?;
    drop(reader);
    check_against_chain(dir, &log, &recovered.scan, &manifest.genesis.attest)?;
    if recovered.engine.seq() != report.last_seq {
        return Err(CliError::BadRecord {
            dir: dir.display().to_string(),
            seq: recovered.engine.seq() + 1,
            reason: format!(
                "recovery found records up to seq {}, replay only up to seq {}",
                report.last_seq,
                recovered.engine.seq()
            ),
        });
    }
    note_recovery(dir, &recovered);
    // Followers hash their state where the replica attests (none without an attest key).
    let attested_every = if attest_key.is_some() && replica_wanted { args.replica.attest_every } else { 0 };
    let replica = match recovered.base {
        Some((engine, digest)) if replica_wanted => {
            let journal_hash = recovered.scan.points.get(&digest.seq).map_or(GENESIS_HASH, |p| p.journal_hash);
            let start = ReplicaStart { engine, digest, journal_hash, attestations: log };
            let sync_records = writer.durability() == Durability::Async;
            Some(Replica::spawn(args.replica.config(dir, attest_key, sync_records), start)?)
        }
        _ => None,
    };
    let feed = replica.as_ref().map(Replica::feed);
    let publisher = match target {
        Some(target) => {
            let config = PublishConfig { target, dir: dir.to_path_buf(), attest_every: attested_every, manifest };
            let publisher = Publisher::spawn(config, recovered.scan.end)?;
            // A stale primary is refused here, before it sequences anything.
            match publisher.wait_checked(Duration::from_secs(args.publish.publish_timeout)) {
                Ok(true) => {}
                Ok(false) => warn("run: the stream could not be checked yet: running on, publishing once it can"),
                Err(reason) => return Err(CliError::Replication(reason)),
            }
            Some(publisher)
        }
        None => None,
    };
    let sink = JournalSink { journal: verex_engine::store::JournalSink::new(writer), feed };
    let sink = PublishingSink::new(sink, publisher.as_ref().map(Publisher::feed), args.publish.release());
    Ok((recovered.engine, signer_state.into_signer(), sink, replica, publisher))
}

/// Opens the journal for appending (recovery cuts a torn tail, reported here).
fn open_writer(args: &RunArgs, dir: &Path) -> Result<(JournalWriter, RecoveryReport), CliError> {
    let config =
        JournalConfig { dir: dir.to_path_buf(), segment_bytes: args.segment_bytes, durability: args.durability.into() };
    let (writer, report) = JournalWriter::open(config).map_err(|e| match e {
        JournalError::InvalidSegmentBytes { .. } => CliError::Usage(format!("--segment-bytes: {e}")),
        other => other.into(),
    })?;
    if let Some(torn) = &report.torn_at {
        warn(&format!(
            "journal {}: recovery cut a torn tail: seq {} at offset {} of {} ({} bytes): {}",
            dir.display(),
            torn.seq,
            torn.offset,
            torn.file.display(),
            report.truncated_bytes,
            torn.reason
        ));
    }
    Ok((writer, report))
}

/// Says where the state came from, when the journal had records.
fn note_recovery(dir: &Path, recovered: &recover::Recovered) {
    let next = recovered.engine.seq() + 1;
    match &recovered.from {
        Some(used) => note(&format!(
            "run: journal {}: recovered from snapshot {} (seq {}) and {} records after it, continuing at seq {next}",
            dir.display(),
            used.path.display(),
            used.seq,
            recovered.suffix.records
        )),
        None if recovered.suffix.records > 0 => note(&format!(
            "run: journal {}: replayed {} records, continuing at seq {next}",
            dir.display(),
            recovered.suffix.records
        )),
        None => {}
    }
}

/// The key attestations are signed with: `--attest-key`, else the development attest key with
/// `--dev`; it must be the genesis attest key.
fn settle_attest_key(
    args: &RunArgs,
    key_file: Option<SigningKey>,
    genesis_attest: &[u8; 32],
    source: &str,
) -> Result<Option<SigningKey>, CliError> {
    let key = key_file.or_else(|| args.dev.then(|| dev_role_key(Role::Attest)));
    let Some(key) = key else {
        if args.replica.attest_every > 0 {
            note("run: no --attest-key: the replica writes no attestations");
        }
        return Ok(None);
    };
    let public = key.verifying_key().to_bytes();
    if &public != genesis_attest {
        return Err(CliError::Usage(format!(
            "--attest-key: its public key {} is not the genesis attest key {} ({source})",
            hex(&public),
            hex(genesis_attest),
        )));
    }
    Ok(Some(key))
}

/// The attestation log as it is on disk, a torn last line (a crash during an append) cut and
/// reported.
fn open_attestation_log(dir: &Path) -> Result<AttestationLog, CliError> {
    let mut log = read_attestations(dir)?;
    if let Some(torn) = log.torn.take() {
        warn(&format!(
            "{}: cut a torn last line (line {}, {} bytes): a crash interrupted its append; the replica writes it \
             again",
            attestations_path(dir).display(),
            torn.line,
            torn.bytes
        ));
        cut_torn_line(dir, &torn)?;
    }
    Ok(log)
}

/// The refusal to fall back on the development operator keys, which anyone can derive.
fn no_genesis(what: &str) -> CliError {
    CliError::Usage(format!(
        "{what} needs its operator keys: pass --genesis FILE ({{\"admin\",\"custody\",\"oracle\",\"attest\"}} \
         public keys), or --dev for the development keys (never in production)"
    ))
}

/// Whether `dir` holds a journal: its manifest or any segment file.
fn holds_journal(dir: &Path) -> Result<bool, CliError> {
    if manifest_path(dir).exists() {
        return Ok(true);
    }
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().any(|e| e.path().extension().is_some_and(|ext| ext == "seg"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::File { file: dir.display().to_string(), reason: e.to_string() }),
    }
}

/// `--init` creates a journal and only that; without it (and without --dev) the journal must
/// exist already, so that a mistyped path never starts a new exchange.
fn check_init(args: &RunArgs, dir: &Path, has_genesis: bool) -> Result<(), CliError> {
    let exists = holds_journal(dir)?;
    match (exists, args.init, args.dev) {
        (true, true, _) => Err(CliError::Usage(format!(
            "--init: {} already holds a journal (drop --init to continue it)",
            dir.display()
        ))),
        (false, false, false) => Err(CliError::Usage(format!(
            "{} holds no journal (no verex.json, no segment): to create a new one there, pass --init with \
             --genesis FILE",
            dir.display()
        ))),
        (false, true, false) if !has_genesis => Err(no_genesis("--init")),
        _ => Ok(()),
    }
}

/// The journal's manifest: read and checked against the arguments, or written for a new
/// journal.
fn settle_manifest(
    args: &RunArgs,
    dir: &Path,
    genesis: Option<Genesis>,
    report: &RecoveryReport,
) -> Result<Manifest, CliError> {
    // Operator keys asked for explicitly: --genesis, or --dev (which signs with the dev keys).
    let wanted_genesis = genesis.or_else(|| args.dev.then(Genesis::dev));
    let Some(manifest) = read_manifest(dir)? else {
        if report.records > 0 {
            return Err(CliError::File {
                file: manifest_path(dir).display().to_string(),
                reason: format!(
                    "missing, but the journal holds {} records: its genesis keys and limits are unknown",
                    report.records
                ),
            });
        }
        // `check_init` made sure that a new journal has its operator keys named.
        let genesis = wanted_genesis.ok_or_else(|| no_genesis("a new journal"))?;
        let manifest = Manifest { limits: args.limits.unwrap_or(LimitsArg::Production), genesis };
        write_manifest(dir, &manifest)?;
        return Ok(manifest);
    };
    let recorded = manifest_path(dir);
    if let Some(limits) = args.limits.filter(|&limits| limits != manifest.limits) {
        return Err(CliError::Usage(format!(
            "--limits {} disagrees with the journal's {} (recorded in {})",
            limits.name(),
            manifest.limits.name(),
            recorded.display()
        )));
    }
    if wanted_genesis.is_some_and(|wanted| wanted != manifest.genesis) {
        let flag = if args.dev { "--dev (the development operator keys)" } else { "--genesis" };
        return Err(CliError::Usage(format!(
            "{flag} names other operator keys than the journal's (recorded in {})",
            recorded.display()
        )));
    }
    Ok(manifest)
}

/// What the development signer must know to continue after journaled transactions: the last
/// nonce of every signer and how many `create_account` lines it has signed (account ids it
/// handed out), so that a resumed run signs exactly as one uninterrupted run would.
#[derive(Debug, Default)]
struct DevSignerState {
    nonces: BTreeMap<[u8; 32], u64>,
    create_accounts: u64,
}

impl DevSignerState {
    fn observe(&mut self, signer: &[u8; 32], nonce: u64, op: &ArchivedOp) {
        let last = self.nonces.entry(*signer).or_insert(0);
        *last = (*last).max(nonce);
        // Every create_account line numbers the next account, accepted or not (DevSigner::sign).
        if matches!(op, ArchivedOp::CreateAccount) {
            self.create_accounts += 1;
        }
    }

    fn into_signer(self) -> DevSigner {
        let mut signer = DevSigner::new(self.create_accounts);
        for (key, nonce) in self.nonces {
            signer.observe_nonce(key, nonce);
        }
        signer
    }
}

/// The library's journal sink as the pipeline's record sink; a commit also tells the replica
/// how far the journal is durable.
struct JournalSink {
    journal: verex_engine::store::JournalSink,
    /// Where durable seqs are published for the replica.
    feed: Option<ReplicaFeed>,
}

impl RecordSink for JournalSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.journal.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        let durable_seq = self.journal.commit()?;
        if let Some(feed) = &self.feed {
            feed.durable(durable_seq);
        }
        Ok(durable_seq)
    }
}

/// The events output, written by the pipeline's output stage: each released transaction's
/// events, and the bad-signature refusals in input order. Its first write error is kept (and
/// flagged to the reading thread, which stops) and returned after the run.
struct EventsOut {
    name: String,
    sink: LineSink<Box<dyn Write + Send>>,
    error: Option<std::io::Error>,
    failed: Arc<AtomicBool>,
}

impl EventsOut {
    /// Creates (truncates) `path`, or writes to standard output for `None` and `-`. Lines are
    /// written whole ([`LineSink`]): a run killed part-way leaves no cut event line.
    fn create(path: Option<&Path>) -> Result<Self, CliError> {
        let (name, writer): (String, Box<dyn Write + Send>) = match path {
            Some(path) if path.as_os_str() != "-" => {
                let file = File::create(path).map_err(|e| CliError::io("create", path, e))?;
                (path.display().to_string(), Box::new(file))
            }
            _ => ("<stdout>".to_string(), Box::new(std::io::stdout())),
        };
        Ok(Self { name, sink: LineSink::new(writer), error: None, failed: Arc::new(AtomicBool::new(false)) })
    }

    fn write_line(&mut self, text: &str) {
        self.write_with(|sink| sink.push_line(text));
    }

    /// Runs one write on the sink unless an earlier one failed; the first failure is kept
    /// (reported by `finish`) and stops the feeding.
    fn write_with(&mut self, write: impl FnOnce(&mut LineSink<Box<dyn Write + Send>>) -> std::io::Result<()>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = write(&mut self.sink) {
            self.error = Some(e);
            self.failed.store(true, Ordering::Release);
        }
    }

    /// Flushes; the first write error, if any.
    fn finish(mut self) -> Result<(), CliError> {
        let flushed = match self.error.take() {
            Some(e) => Err(e),
            None => self.sink.flush(),
        };
        flushed.map_err(|source| CliError::Io { action: "write", file: self.name.clone(), source })
    }
}

impl Subscriber for EventsOut {
    fn on_event(&mut self, seq: u64, event: &Event, catalog: &Catalog) {
        self.write_line(&render_event(seq, event, catalog));
    }

    fn on_note(&mut self, _tag: u64, _after_seq: u64) {
        // The only note `run` submits: a line whose signature does not verify.
        self.write_line(BAD_SIGNATURE_EVENT);
    }

    /// The events released so far go out now, so that a reader of a live run sees each one
    /// without waiting for the buffer to fill.
    fn on_idle(&mut self) {
        self.write_with(LineSink::flush);
    }
}

/// What a refused line yields (no seq: it was never sequenced).
const BAD_SIGNATURE_EVENT: &str = r#"{"event":"rejected","reason":"bad_signature"}"#;

/// A run whose pipeline has stopped.
struct Run<K> {
    engine: Engine,
    sink: K,
    events: EventsOut,
    poison: Option<PoisonReason>,
    /// How feeding the lines ended (a malformed line, a read error).
    outcome: Result<(), CliError>,
    tally: Tally,
}

impl<K> Run<K> {
    /// Flushes the events, writes the state (unless `failure`) and says what the run did.
    fn finish(self, failure: Option<CliError>, state: Option<Output>) -> Result<(), CliError> {
        let failed = failure.is_some();
        let flushed = self.events.finish();
        let state_written = match state {
            Some(out) if !failed && flushed.is_ok() => write_state(out, &self.engine),
            _ => Ok(()),
        };
        failure.map_or(Ok(()), Err).and(self.outcome).and(flushed).and(state_written)?;
        note(&format!(
            "run: {} txs applied, {} refused (bad signature); seq {}, state hash {}",
            self.tally.applied,
            self.tally.refused,
            self.engine.seq(),
            hex(&self.engine.state_hash())
        ));
        Ok(())
    }
}

/// What stopped the pipeline, as an error of the run.
fn poison_error(poison: PoisonReason) -> CliError {
    match poison {
        PoisonReason::Engine { error, .. } => CliError::Engine(error),
        other => pipeline_error(other),
    }
}

fn pipeline_error(error: impl std::fmt::Display) -> CliError {
    CliError::Io { action: "run", file: "the pipeline".to_string(), source: std::io::Error::other(error.to_string()) }
}

/// Starts the pipeline on `engine` (its engine stage on `engine_core` if given), feeds it the
/// input's lines, and stops it.
fn drive<K: RecordSink>(
    engine: Engine,
    sink: K,
    events: EventsOut,
    input: &mut LineReader,
    signer: Option<DevSigner>,
    clock: Clock,
    engine_core: Option<usize>,
) -> Result<Run<K>, CliError> {
    let events_failed = Arc::clone(&events.failed);
    let mut config = PipelineConfig::for_this_machine(clock);
    if signer.is_none() {
        // Signed input goes through the ingress, whose workers need the cores idle stages
        // would otherwise take turns on.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        config.wait = WaitMode::beside_ingress(cores, IngressConfig::for_this_machine().workers);
        if config.wait != WaitMode::BusySpin {
            config.engine_core = None;
        }
    }
    if engine_core.is_some() {
        config.engine_core = engine_core;
    }
    let mut pipeline = Pipeline::start(engine, sink, events, config).map_err(pipeline_error)?;
    if let Some(core) = engine_core.filter(|&core| pipeline.info().engine_pinned != Some(core)) {
        let why = pipeline.info().warnings.join("; ");
        // Nothing was fed: the pipeline stops with nothing to commit.
        let _ = pipeline.shutdown();
        return Err(CliError::Usage(format!("--engine-core {core}: {why}")));
    }
    if std::io::stderr().is_terminal() {
        note(&format!("run: {}", pipeline.info()));
    }
    let mut tally = Tally::default();
    let outcome = match signer {
        Some(signer) => feed_signing(&mut pipeline, input, signer, &events_failed, &mut tally),
        None => feed_verified(&mut pipeline, input, &events_failed, &mut tally),
    };
    let stopped = pipeline.shutdown().map_err(pipeline_error)?;
    Ok(Run {
        engine: stopped.engine,
        sink: stopped.sink,
        events: stopped.subscriber,
        poison: stopped.report.poison,
        outcome,
        tally,
    })
}

/// With `--dev`: parses each line, signs it with the development keys (in input order: the
/// signer numbers nonces and accounts) and submits it. Stops at the first malformed line, when
/// the pipeline is poisoned (reported from its stop report) or when writing events failed.
fn feed_signing<K: RecordSink>(
    pipeline: &mut Pipeline<K, EventsOut>,
    input: &mut LineReader,
    mut signer: DevSigner,
    events_failed: &AtomicBool,
    tally: &mut Tally,
) -> Result<(), CliError> {
    let mut progress = Progress::new("run");
    while !events_failed.load(Ordering::Acquire) {
        let Some(line) = input.next_line()? else { break };
        let number = line.number;
        let parsed = match parse_tx_line(line.text) {
            Ok(parsed) => parsed,
            Err(e) => {
                let reason = format!("{e} (the run stopped here, after seq {})", pipeline.last_seq());
                return Err(input.line_error(number, reason));
            }
        };
        match pipeline.submit(&signer.sign_verified(&parsed), parsed.ts, number) {
            Ok(_) => {}
            Err(SubmitError::Stamp(refused)) => {
                let reason = format!(
                    "{refused} (a line's own ts needs the deterministic clock; the run stopped here, after seq {})",
                    pipeline.last_seq()
                );
                return Err(input.line_error(number, reason));
            }
            // Poisoned: the stop report says why.
            Err(_) => break,
        }
        tally.applied += 1;
        progress.update(tally.applied, input.progress());
    }
    Ok(())
}

/// Without `--dev`: this thread reads the lines and hands them to the ingress, whose workers
/// decode them and verify their signatures in parallel; a sequencer thread feeds the verdicts
/// to the pipeline in input order (a bad signature becomes an in-order note). A line that is
/// not a signed transaction stops the run there; lines after it are never sequenced.
fn feed_verified<K: RecordSink>(
    pipeline: &mut Pipeline<K, EventsOut>,
    input: &mut LineReader,
    events_failed: &AtomicBool,
    tally: &mut Tally,
) -> Result<(), CliError> {
    let decode = |(number, line): (u64, String)| decode_json_line(line).map_err(|e| format!("{number}:{e}"));
    let (mut sender, mut receiver) =
        start_ingress(IngressConfig::for_this_machine(), decode).map_err(pipeline_error)?;
    let start_seq = pipeline.last_seq();
    let sequencer_done = AtomicBool::new(false);
    let (fed, read) = std::thread::scope(|scope| {
        let sequencer = scope.spawn(|| {
            let mut refused = 0u64;
            let mut malformed = None;
            let fed = feed(&mut receiver, pipeline, |_, reason| match reason {
                RefusalReason::Decode(message) => {
                    malformed = Some(message.clone());
                    ControlFlow::Break(())
                }
                RefusalReason::BadKey(_) | RefusalReason::BadSignature(_) => {
                    refused += 1;
                    ControlFlow::Continue(())
                }
            });
            // Unblocks the reading thread's sends at once (they fail from now on).
            drop(receiver);
            sequencer_done.store(true, Ordering::Release);
            (fed.is_ok(), refused, malformed)
        });
        let mut progress = Progress::new("run");
        let mut lines = 0u64;
        let read = loop {
            if events_failed.load(Ordering::Acquire) || sequencer_done.load(Ordering::Acquire) {
                break Ok(());
            }
            if !input.has_buffered_line() && sender.flush().is_err() {
                // The input pauses (or its buffer is spent): the lines read so far go to the
                // workers now instead of waiting for a full chunk.
                break Ok(());
            }
            let line = match input.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            if sender.send((line.number, line.text.to_string())).is_err() {
                break Ok(());
            }
            lines += 1;
            progress.update(lines, input.progress());
        };
        // Flushes the last chunk and lets the sequencer thread finish.
        drop(sender);
        let fed = sequencer.join().unwrap_or((false, 0, Some("the sequencer thread panicked".to_string())));
        (fed, read)
    });
    let (_, refused, malformed) = fed;
    tally.refused = refused;
    tally.applied = pipeline.last_seq() - start_seq;
    if let Some(message) = malformed {
        let stopped = |reason: &str| format!("{reason} (the run stopped here, after seq {})", pipeline.last_seq());
        return Err(match message.split_once(':').and_then(|(n, m)| Some((n.parse::<u64>().ok()?, m))) {
            Some((number, reason)) => input.line_error(number, stopped(reason)),
            None => pipeline_error(stopped(&message)),
        });
    }
    read
}

fn write_state(mut out: Output, engine: &Engine) -> Result<(), CliError> {
    out.write_line(&render_state(engine))?;
    out.finish()
}
