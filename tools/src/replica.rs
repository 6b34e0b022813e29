//! The replica: a second engine, on its own thread, that tails the journal and produces the
//! journal's attestations and snapshots, so that the engine stage never pauses for either.
//!
//! It is just another reader of the journal (the journal knows nothing of it, and the engine
//! stage shares nothing with it but one watermark): it maps the segments read-only
//! ([`JournalReader`] with `refresh` for new records and segments), validates and applies each
//! record in place, and folds it into the BLAKE3 chain ([`JournalDigest`]). Then:
//!
//! * at every seq that is a multiple of `attest_every`, it signs
//!   `(seq, journal digest, state hash)` with the attest key and appends the line to
//!   `DIR/attestations.jsonl`, fsynced ([`crate::attestations`]);
//! * at every multiple of `snapshot_every`, and when `snapshot_interval` has passed since the
//!   last one (and records came in), it writes `DIR/snapshots/<seq:020>.snap` durably, its
//!   header carrying the xxh3 hash of record `seq` and the digest at `seq`, then keeps only
//!   the newest `keep_snapshots`, and with `archive_segments` archives the journal segments
//!   older than the oldest kept snapshot ([`crate::snapshots`]).
//!
//! Only durable records are used: the engine stage publishes the seq its journal made durable
//! ([`ReplicaFeed::durable`]), and the replica never goes past it, so nothing it signs or
//! snapshots can be lost by a crash that keeps the journal. With an `async` journal (where
//! "durable" means "in the page cache"), it fdatasyncs the segments holding the records it
//! attests or snapshots first.
//!
//! An attestation already in the log at a seq the replica passes (after a restart from an
//! older snapshot) is not written again: the replica recomputes it and checks it instead, so
//! a restarted run both fills gaps a crash left and re-proves what was attested.
//!
//! Cost: each attestation computes the state hash (O(state)) and each snapshot encodes the
//! whole state; both run on the replica's thread, which falls behind the engine stage while
//! they run and catches up after. It never blocks the engine stage, but on a machine with
//! fewer free cores than threads it competes with it for CPU (see the tools' report).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use verex_engine::attest::{Attestation, JournalDigest};
use verex_engine::signing::hex;
use verex_engine::snapshot::encode_snapshot;
use verex_engine::tx::ArchivedSequencedTx;
use verex_engine::verified::VerifiedRecord;
use verex_engine::{Engine, EventBuf};
use verex_journal::{JournalError, JournalReader, Record};

use crate::attestations::{AttestationLog, AttestationWriter};
use crate::error::CliError;
use crate::rebuild::{access_checked, REPLAY_CHUNK_RECORDS};
use crate::snapshots::{archive_segments, oldest_snapshot, remove_stale_tmp_files, retain_newest, write_snapshot};
use crate::tail::segment_file;

/// Default `--attest-every`.
pub const DEFAULT_ATTEST_EVERY: u64 = 10_000;
/// Default `--snapshot-every`.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100_000;
/// The nice value `verex run` gives the replica's thread: when it and the engine stage share a
/// core, the scheduler gives the engine stage about nine tenths of it (weights 1024 : 110).
pub const DEFAULT_REPLICA_NICE: i32 = 10;
/// How long the replica sleeps when it has caught up, unless woken by a new watermark.
const IDLE_PARK: Duration = Duration::from_millis(50);
/// How long it waits when the journal does not yet show a record the watermark covers.
const STALL_PARK: Duration = Duration::from_millis(1);
/// How many such waits in a row before it gives up (a record reported durable that the
/// reader cannot see is a bug or damage, not a delay).
const MAX_STALLS: u32 = 5_000;

/// What the replica produces, and where.
#[derive(Clone)]
pub struct ReplicaConfig {
    /// The journal directory.
    pub dir: PathBuf,
    /// Attest every this many seqs (0: never).
    pub attest_every: u64,
    /// The genesis attest key; `None`: no attestations are written (existing ones are still
    /// checked as the replica passes them).
    pub attest_key: Option<SigningKey>,
    /// Snapshot every this many seqs (0: never by count).
    pub snapshot_every: u64,
    /// Also snapshot when this much time has passed since the last one (`None`: never by time).
    pub snapshot_interval: Option<Duration>,
    /// Snapshots kept (at least 1).
    pub keep_snapshots: u64,
    /// Archive segments older than the oldest kept snapshot.
    pub archive_segments: bool,
    /// fdatasync the segments before attesting or snapshotting (for an `async` journal).
    pub sync_records: bool,
    /// Nice value for the replica's thread (0: leave it as the process's).
    pub nice: i32,
}

impl std::fmt::Debug for ReplicaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaConfig")
            .field("dir", &self.dir)
            .field("attest_every", &self.attest_every)
            .field("attest_key", &self.attest_key.as_ref().map(|k| hex(k.verifying_key().as_bytes())))
            .field("snapshot_every", &self.snapshot_every)
            .field("snapshot_interval", &self.snapshot_interval)
            .field("keep_snapshots", &self.keep_snapshots)
            .field("archive_segments", &self.archive_segments)
            .field("sync_records", &self.sync_records)
            .field("nice", &self.nice)
            .finish()
    }
}

/// Where the replica starts: an engine at some seq of the journal, the digest at that seq,
/// and the attestations already in the log.
pub struct ReplicaStart {
    /// The engine (at genesis, or restored from a snapshot).
    pub engine: Engine,
    /// `d[engine.seq()]`.
    pub digest: JournalDigest,
    /// `h[engine.seq()]`.
    pub journal_hash: u64,
    /// The log as it is on disk (its torn line, if any, already cut).
    pub attestations: AttestationLog,
}

/// One snapshot the replica wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotTaken {
    /// Its file.
    pub path: PathBuf,
    /// Its seq.
    pub seq: u64,
    /// Its size.
    pub bytes: u64,
    /// Time to encode the state (the replica's engine is busy for this long).
    pub encode: Duration,
    /// Time to write, fsync and rename the file, and apply retention.
    pub write: Duration,
}

/// What the replica did.
#[derive(Debug, Clone, Default)]
pub struct ReplicaReport {
    /// The last seq it applied.
    pub seq: u64,
    /// Attestations appended to the log.
    pub attestations_written: u64,
    /// Attestations already in the log that it recomputed and found equal.
    pub attestations_checked: u64,
    /// Snapshots written.
    pub snapshots_written: u64,
    /// The last snapshot written.
    pub last_snapshot: Option<SnapshotTaken>,
    /// The longest encode + write of a snapshot.
    pub longest_snapshot: Duration,
    /// Segments archived.
    pub segments_archived: Vec<u64>,
}

/// What the engine stage and the replica share: two watermarks and a stop flag.
#[derive(Debug, Default)]
struct Shared {
    /// The highest seq the journal has made durable (written by the engine stage).
    durable_seq: AtomicU64,
    /// The last seq the replica applied (written by the replica).
    applied_seq: AtomicU64,
    /// Set once, after the last `durable_seq` store.
    stop: AtomicBool,
}

/// The engine stage's handle: publishes durable seqs and wakes the replica.
#[derive(Debug, Clone)]
pub struct ReplicaFeed {
    shared: Arc<Shared>,
    thread: Thread,
}

impl ReplicaFeed {
    /// Records that every record up to `seq` is durable. One atomic store, and a wake-up only
    /// if the replica is parked: never blocks.
    pub fn durable(&self, seq: u64) {
        self.shared.durable_seq.store(seq, Ordering::Release);
        self.thread.unpark();
    }

    /// The last seq the replica applied.
    pub fn applied_seq(&self) -> u64 {
        self.shared.applied_seq.load(Ordering::Relaxed)
    }
}

/// A running replica.
#[derive(Debug)]
pub struct Replica {
    feed: ReplicaFeed,
    handle: JoinHandle<Result<ReplicaReport, CliError>>,
}

impl Replica {
    /// Starts the replica's thread on the journal in `config.dir`, from `start`.
    ///
    /// # Errors
    /// [`CliError::Io`] when the attestation log cannot be opened for appending, stale
    /// snapshot files cannot be removed, or the thread cannot be spawned.
    pub fn spawn(config: ReplicaConfig, start: ReplicaStart) -> Result<Self, CliError> {
        remove_stale_tmp_files(&config.dir)?;
        let writer = match config.attest_key {
            Some(_) if config.attest_every > 0 => Some(AttestationWriter::open(&config.dir)?),
            _ => None,
        };
        let shared = Arc::new(Shared::default());
        let seq = start.engine.seq();
        shared.durable_seq.store(seq, Ordering::Relaxed);
        shared.applied_seq.store(seq, Ordering::Relaxed);
        let dir = config.dir.clone();
        let worker = Worker::new(config, start, writer, Arc::clone(&shared));
        let handle = thread::Builder::new()
            .name("verex-replica".into())
            .spawn(move || worker.run())
            .map_err(|e| CliError::io("start the replica thread for", &dir, e))?;
        let feed = ReplicaFeed { shared, thread: handle.thread().clone() };
        Ok(Self { feed, handle })
    }

    /// The engine stage's handle.
    pub fn feed(&self) -> ReplicaFeed {
        self.feed.clone()
    }

    /// Publishes the final durable seq, lets the replica catch up to it, and returns what it
    /// did.
    ///
    /// # Errors
    /// The error that stopped the replica.
    pub fn finish(self, durable_seq: u64) -> Result<ReplicaReport, CliError> {
        self.feed.shared.durable_seq.store(durable_seq, Ordering::Release);
        self.feed.shared.stop.store(true, Ordering::Release);
        self.feed.thread.unpark();
        let applied = self.feed.applied_seq();
        self.handle.join().unwrap_or_else(|_| {
            Err(CliError::Replica { seq: applied, reason: "the replica thread panicked".to_string() })
        })
    }
}

/// The replica's thread state.
struct Worker {
    config: ReplicaConfig,
    engine: Engine,
    buf: EventBuf,
    digest: JournalDigest,
    journal_hash: u64,
    known: AttestationLog,
    /// Index of the first known attestation not yet passed.
    known_next: usize,
    /// The link the next attestation written must carry as its `prev`: the last one's in the
    /// log (known or written), zeros before the first.
    last_link: [u8; 32],
    writer: Option<AttestationWriter>,
    last_snapshot_seq: u64,
    last_snapshot_at: Instant,
    /// Segments holding records not yet fdatasynced by the replica (`sync_records` only).
    unsynced_segments: Vec<u64>,
    shared: Arc<Shared>,
    report: ReplicaReport,
}

impl Worker {
    fn new(config: ReplicaConfig, start: ReplicaStart, writer: Option<AttestationWriter>, shared: Arc<Shared>) -> Self {
        let seq = start.engine.seq();
        let known_next = start.attestations.entries.partition_point(|e| e.attestation.seq <= seq);
        let last_link = start.attestations.entries.last().map_or([0; 32], |e| e.attestation.link());
        Self {
            last_link,
            buf: start.engine.event_buf(),
            engine: start.engine,
            digest: start.digest,
            journal_hash: start.journal_hash,
            known: start.attestations,
            known_next,
            writer,
            last_snapshot_seq: seq,
            last_snapshot_at: Instant::now(),
            unsynced_segments: Vec::new(),
            config,
            shared,
            report: ReplicaReport { seq, ..ReplicaReport::default() },
        }
    }

    fn failed(&self, reason: impl Into<String>) -> CliError {
        CliError::Replica { seq: self.engine.seq(), reason: reason.into() }
    }

    fn run(mut self) -> Result<ReplicaReport, CliError> {
        debug_assert_eq!(self.digest.seq, self.engine.seq(), "the digest is at the engine's seq");
        if self.config.nice != 0 && !lower_priority(self.config.nice) {
            crate::io::warn(&format!("replica: could not set its thread's nice value to {}", self.config.nice));
        }
        let mut reader = JournalReader::open(&self.config.dir)?;
        let mut stalls = 0u32;
        loop {
            // Stop is read first: it is stored after the last watermark, so a replica that
            // sees it also sees the final watermark.
            let stopping = self.shared.stop.load(Ordering::Acquire);
            let target = self.shared.durable_seq.load(Ordering::Acquire);
            if self.engine.seq() < target {
                reader.refresh()?;
                let before = self.engine.seq();
                self.catch_up(&reader, target)?;
                if self.engine.seq() == before {
                    stalls += 1;
                    if stalls > MAX_STALLS {
                        return Err(self.failed(format!("records up to seq {target} are durable but not readable")));
                    }
                    thread::park_timeout(STALL_PARK);
                } else {
                    stalls = 0;
                    self.timed_snapshot()?;
                }
                continue;
            }
            self.timed_snapshot()?;
            if stopping {
                self.report.seq = self.engine.seq();
                return Ok(self.report);
            }
            thread::park_timeout(IDLE_PARK);
        }
    }

    /// Applies the visible records after the engine's seq, up to `target`, a chunk at a
    /// time: each chunk's signatures are checked together (batch verification on every core,
    /// at the replica's low priority) before its records are applied in order.
    fn catch_up(&mut self, reader: &JournalReader, target: u64) -> Result<(), CliError> {
        let mut records = match reader.iter_from(self.engine.seq() + 1) {
            Ok(records) => records,
            Err(JournalError::SeqNotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let mut chunk: Vec<(Record<'_>, &ArchivedSequencedTx)> = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
        let mut verdicts = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
        loop {
            chunk.clear();
            for item in records.by_ref() {
                let record = item?;
                if record.seq > target {
                    break;
                }
                let archived = access_checked(&self.config.dir, &record)?;
                chunk.push((record, archived));
                if chunk.len() == REPLAY_CHUNK_RECORDS {
                    break;
                }
            }
            let views: Vec<&ArchivedSequencedTx> = chunk.iter().map(|(_, archived)| *archived).collect();
            VerifiedRecord::verify_parallel(&views, threads, &mut verdicts);
            for ((record, _), verdict) in chunk.iter().zip(verdicts.drain(..)) {
                let verified = verdict.map_err(|e| self.failed(format!("seq {}: bad signature: {e}", record.seq)))?;
                self.apply(record, verified)?;
            }
            if chunk.len() < REPLAY_CHUNK_RECORDS {
                return Ok(());
            }
        }
    }

    fn apply(&mut self, record: &Record<'_>, verified: VerifiedRecord<'_>) -> Result<(), CliError> {
        let seq = record.seq;
        self.engine
            .apply(verified, &mut self.buf)
            .map_err(|e| self.failed(format!("the engine refused seq {seq}: {e}")))?;
        self.digest.push(seq, record.payload).map_err(|expected| self.failed(format!("expected seq {expected}")))?;
        self.journal_hash = record.hash;
        if self.config.sync_records && self.unsynced_segments.last() != Some(&record.segment_index) {
            self.unsynced_segments.push(record.segment_index);
        }
        self.shared.applied_seq.store(seq, Ordering::Relaxed);
        let known_here = self.known.entries.get(self.known_next).is_some_and(|e| e.attestation.seq == seq);
        if known_here || (self.config.attest_every > 0 && seq.is_multiple_of(self.config.attest_every)) {
            self.attest(known_here)?;
        }
        if self.config.snapshot_every > 0 && seq.is_multiple_of(self.config.snapshot_every) {
            self.snapshot()?;
        }
        Ok(())
    }

    /// Checks the attestation already logged at this seq, or writes one.
    fn attest(&mut self, known_here: bool) -> Result<(), CliError> {
        let seq = self.engine.seq();
        if known_here {
            let known = self.known.entries[self.known_next];
            self.known_next += 1;
            let state_hash = self.engine.state_hash();
            if known.attestation.journal_digest != self.digest.digest || known.attestation.state_hash != state_hash {
                return Err(self.failed(format!(
                    "the attestation at seq {seq} (attestations.jsonl line {}) differs from the recomputed one: \
                     digest {} / state hash {} recorded, {} / {} recomputed",
                    known.line,
                    hex(&known.attestation.journal_digest),
                    hex(&known.attestation.state_hash),
                    hex(&self.digest.digest),
                    hex(&state_hash)
                )));
            }
            self.report.attestations_checked += 1;
            return Ok(());
        }
        if seq <= self.known.last_seq() {
            // Between logged attestations (a different --attest-every then): nothing to add.
            return Ok(());
        }
        if self.config.attest_key.is_none() || self.writer.is_none() {
            return Ok(());
        }
        self.sync_records()?;
        let state_hash = self.engine.state_hash();
        if let (Some(key), Some(writer)) = (self.config.attest_key.as_ref(), self.writer.as_mut()) {
            let attestation = Attestation::sign(seq, self.digest.digest, state_hash, self.last_link, key);
            writer.append(&attestation)?;
            self.last_link = attestation.link();
        }
        self.report.attestations_written += 1;
        Ok(())
    }

    fn timed_snapshot(&mut self) -> Result<(), CliError> {
        let due = self.config.snapshot_interval.is_some_and(|every| self.last_snapshot_at.elapsed() >= every);
        if due && self.engine.seq() > self.last_snapshot_seq {
            self.snapshot()?;
        }
        Ok(())
    }

    /// Writes a snapshot at the engine's seq, then applies retention (and archiving).
    fn snapshot(&mut self) -> Result<(), CliError> {
        let seq = self.engine.seq();
        self.sync_records()?;
        let started = Instant::now();
        let bytes = encode_snapshot(&self.engine, self.journal_hash, self.digest.digest)
            .map_err(|e| self.failed(format!("snapshot at seq {seq}: {e}")))?;
        let encode = started.elapsed();
        let dir = self.config.dir.clone();
        let path = write_snapshot(&dir, seq, &bytes)?;
        retain_newest(&dir, self.config.keep_snapshots.max(1), seq)?;
        if self.config.archive_segments {
            if let Some(oldest) = oldest_snapshot(&dir, seq)? {
                self.report.segments_archived.extend(archive_segments(&dir, oldest)?);
            }
        }
        let total = started.elapsed();
        self.last_snapshot_seq = seq;
        self.last_snapshot_at = Instant::now();
        self.report.snapshots_written += 1;
        self.report.longest_snapshot = self.report.longest_snapshot.max(total);
        let taken = SnapshotTaken { path, seq, bytes: bytes.len() as u64, encode, write: total - encode };
        self.report.last_snapshot = Some(taken);
        Ok(())
    }

    /// Makes the records applied so far durable (an `async` journal's pages may sit in the
    /// page cache): fdatasync of each segment that holds one.
    fn sync_records(&mut self) -> Result<(), CliError> {
        for index in self.unsynced_segments.drain(..) {
            let path = segment_file(&self.config.dir, index);
            File::open(&path).and_then(|f| f.sync_data()).map_err(|e| CliError::io("sync", &path, e))?;
        }
        Ok(())
    }
}

/// Sets the calling thread's nice value (on Linux the nice value is per thread, and
/// `setpriority(PRIO_PROCESS, 0, ..)` changes only the caller's). Returns whether it did.
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) -> bool {
    extern "C" {
        fn setpriority(which: i32, who: u32, prio: i32) -> i32;
    }
    const PRIO_PROCESS: i32 = 0;
    // SAFETY: `setpriority` takes three integers and touches no memory of ours.
    unsafe { setpriority(PRIO_PROCESS, 0, nice) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) -> bool {
    false
}
