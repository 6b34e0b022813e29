//! The follower: consumes a replicated stream into its own journal and engine, checking
//! everything it is given (docs/replication.md).
//!
//! For each log message, in stream order (an ordered consumer):
//!
//! 1. **Continuity**: its first seq is the next one (a message wholly at or below the
//!    follower's seq is a duplicate: its records must equal the follower's own, byte for byte,
//!    else a second writer forked the stream; a message beyond the next seq is a gap); its
//!    `Verex-Prev-Digest` is the follower's `d[seq]`.
//! 2. **Records**: each validates as an archived record with the expected seq, and every
//!    signature passes the one rule: batch verification (`VerifiedRecord::verify_batch`, the
//!    verdict a single check gives each) on a bounded pool of worker threads, one per core.
//!    The messages received at once (a follower catching up finds many) are checked up to
//!    their signatures in order, then verified a part of a message at a time on the workers
//!    while this thread stores and applies, in stream order, each message whose verdicts are
//!    in. A refused signature stops the follower at its seq with nothing of its message
//!    applied, exactly as when messages are handled one by one.
//! 3. **Chain**: the BLAKE3 attestation chain folded over the records ends at the message's
//!    `Verex-Digest`. This chain is what the follower checks across machines because it is
//!    framing-independent: the xxh3 chain covers each frame's segment index, so it is a
//!    property of one journal's files (the follower's journal has its own, verified by its
//!    own reader and recovery), while `d[n]` is the same for every copy of the log, and it is
//!    what attestations sign.
//! 4. **Journal**: the records are appended to the follower's own journal and **applied** to
//!    its engine, which must accept each one; the journal commits (its durability mode) once
//!    per group of messages that arrived together (at most 8,192 records), before any
//!    attestation or snapshot that covers them is written.
//!
//! At every multiple of the publisher's `Verex-Attest-Every` the follower hashes its state;
//! each attestation from the `attest` subject must be signed by the genesis attest key, link
//! to the one before, and name the follower's digest and state hash at its seq; it is then
//! appended to the follower's `attestations.jsonl`. The follower writes its own snapshots
//! (`--snapshot-every`), so its directory is a normal verex journal: `replay`, `verify`,
//! `inspect`, `snapshot`, `attestations` and `run` (promotion) work on it.
//!
//! Restart: the follower rebuilds its engine from its journal (newest valid snapshot and the
//! suffix) and finds, by binary search over the stream, the log message holding its next seq.
//! If the stream holds attestations beyond its own last one, it resumes instead at its last
//! attested seq and re-applies the records after it from the stream (comparing them with its
//! journal rather than appending them), so every attestation is checked against a state
//! hash computed at its own seq.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::Ordered;
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::{self, stream};
use futures_util::{FutureExt, StreamExt};
use hdrhistogram::Histogram;
use verex_engine::attest::{Attestation, JournalDigest};
use verex_engine::record::{access_record, RecordBytes};
use verex_engine::runtime::WORKER_CACHED_KEYS;
use verex_engine::signature_rule::SignatureVerifier;
use verex_engine::signing::{hex, SignatureError};
use verex_engine::snapshot::{decode_snapshot, encode_snapshot};
use verex_engine::tx::ArchivedSequencedTx;
use verex_engine::verified::VerifiedRecord;
use verex_engine::{Engine, EventBuf};
use verex_journal::{Durability, JournalConfig, JournalReader, JournalWriter};

use super::message::{split_records, LogHeader, MAX_MESSAGE_BYTES};
use super::{connect, last_on_subject, wall_ns, Subjects, Target, MAX_RETRY_PAUSE};
use crate::attestations::{
    attestations_path, check_against_chain, cut_torn_line, read_attestations, AttestationLog, AttestationWriter,
};
use crate::error::CliError;
use crate::io::{note, warn};
use crate::manifest::{read_manifest, write_manifest, Manifest};
use crate::rebuild::{access_checked, open_reader, REPLAY_CHUNK_RECORDS};
use crate::recover::{header_mismatch, scan_chain, ChainScan};
use crate::snapshots::{list_snapshots, read_snapshot_file, retain_newest, write_snapshot};

/// Most attestation points (seq, digest, state hash) kept while their attestation has not
/// arrived; older ones are dropped (their attestation is then checked by a rebuild).
pub const MAX_POINTS: usize = 1024;
/// Most attestations held while the follower's engine has not reached their seq.
pub const MAX_EARLY_ATTESTATIONS: usize = 1024;
/// How often the follower looks at its exit conditions while no message arrives.
const POLL: Duration = Duration::from_millis(100);
/// Most records in one commit group of the follower's journal.
const MAX_GROUP_RECORDS: u64 = 8192;
/// Most bytes of log messages one pull request may ask the server for. The client reads the
/// socket on the follower's own thread, between messages it checks and applies: without a
/// bound, a follower catching up on a long stream is sent batches of 500 messages of up to
/// [`MAX_MESSAGE_BYTES`] each, the server's buffer for the connection passes its 64 MiB
/// `max_pending`, and the server drops the follower as a slow consumer (seen: a follower
/// starting 600,000 records behind stalled).
const FETCH_BYTES: u64 = 16 << 20;
/// Most messages per pull request: [`FETCH_BYTES`] of the largest messages.
#[allow(clippy::cast_possible_wrap)]
const FETCH_MESSAGES: i64 = (FETCH_BYTES / MAX_MESSAGE_BYTES) as i64;
/// Most records of the messages handled together (those received at once): their signatures
/// are verified while the ones before them are applied.
const MAX_READY_RECORDS: u64 = MAX_GROUP_RECORDS;
/// Most threads verifying a follower's signatures.
pub const MAX_VERIFY_WORKERS: usize = 8;
/// Fewest and most records per unit of verification work (a part of one message, one batch
/// verification): a message is split into one unit per worker within these bounds, so a
/// lone message is verified on every core, and each batch is large enough for its speed-up.
const MIN_VERIFY_UNIT_RECORDS: usize = 256;
const MAX_VERIFY_UNIT_RECORDS: usize = 1024;

/// How to follow.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// Servers and stream.
    pub target: Target,
    /// The follower's journal directory (created if missing).
    pub dir: PathBuf,
    /// Its journal's durability mode.
    pub durability: Durability,
    /// Its journal's segment size.
    pub segment_bytes: u64,
    /// Write a snapshot at the first message end past every multiple of this many seqs (0: none).
    pub snapshot_every: u64,
    /// Snapshots kept.
    pub keep_snapshots: u64,
    /// Stop once the engine has applied this seq (and the attestations up to it are checked,
    /// or none came for `idle_exit`).
    pub until_seq: Option<u64>,
    /// Stop after this long without a message.
    pub idle_exit: Option<Duration>,
}

/// What the follower did.
#[derive(Debug)]
pub struct FollowReport {
    /// The last seq applied.
    pub seq: u64,
    /// The state hash there.
    pub state_hash: [u8; 32],
    /// The seq its engine resumed from.
    pub resumed_at: u64,
    /// Log messages applied.
    pub messages: u64,
    /// Records appended to its journal.
    pub records: u64,
    /// Records it already held, found equal to its own (duplicates, or the re-applied suffix).
    pub records_compared: u64,
    /// Attestations checked and appended.
    pub attestations_checked: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// Failed sessions (each followed by a pause and a reconnection).
    pub failures: u64,
    /// Publish (primary's clock) to applied (follower's clock), per record, in µs.
    pub lag_us: Histogram<u64>,
}

/// Why a session ended.
enum End {
    /// A check failed: stop, never apply past it.
    Fatal(CliError),
    /// The network or the server: reconnect after a pause.
    Retry(String),
}

impl From<CliError> for End {
    fn from(error: CliError) -> Self {
        End::Fatal(error)
    }
}

fn fatal(reason: impl Into<String>) -> End {
    End::Fatal(CliError::Replication(reason.into()))
}

/// The engine and everything the follower knows once it has its manifest.
struct Position {
    manifest: Manifest,
    engine: Engine,
    buf: EventBuf,
    /// `d[engine.seq()]`.
    digest: JournalDigest,
    /// The stream sequence of the last message handled (the next session starts after it).
    stream_pos: u64,
}

/// Follows a stream until an exit condition holds or a check fails.
///
/// # Errors
/// [`CliError::Replication`] for a gap, a fork, a bad message, record, signature or
/// attestation; journal and I/O errors.
pub fn follow(config: &FollowConfig) -> Result<FollowReport, CliError> {
    let runtime = super::runtime().map_err(|e| CliError::io("start the follower's runtime for", &config.dir, e))?;
    let mut follower = Follower::open(config)?;
    runtime.block_on(follower.sessions())?;
    follower.finish()
}

struct Follower<'c> {
    config: &'c FollowConfig,
    subjects: Subjects,
    writer: JournalWriter,
    reader: Option<JournalReader>,
    position: Option<Position>,
    /// The follower's attestation log: its last seq and the link the next one must carry.
    attested_seq: u64,
    attest_link: [u8; 32],
    /// Link of the last attestation received (checked or waiting for its seq).
    received_link: [u8; 32],
    received_seq: u64,
    attest_writer: Option<AttestationWriter>,
    log_at_open: AttestationLog,
    points: BTreeMap<u64, ([u8; 32], [u8; 32])>,
    early: BTreeMap<u64, Attestation>,
    attest_every: u64,
    last_snapshot_seq: u64,
    last_message: Instant,
    /// Messages applied since the last commit: (publish time, records).
    group_lag: Vec<(u64, u64)>,
    group_records: u64,
    /// One signature verifier per verification worker, kept across messages: each worker's
    /// cache of signers' decompressed keys outlives the batch (taken while workers run).
    verifiers: Vec<SignatureVerifier>,
    report: FollowReport,
}

impl<'c> Follower<'c> {
    fn open(config: &'c FollowConfig) -> Result<Self, CliError> {
        let journal = JournalConfig {
            dir: config.dir.clone(),
            segment_bytes: config.segment_bytes,
            durability: config.durability,
        };
        let (writer, recovered) = JournalWriter::open(journal)?;
        if let Some(torn) = &recovered.torn_at {
            warn(&format!("follow: recovery cut a torn tail at seq {} in {}", torn.seq, torn.file.display()));
        }
        let mut log = read_attestations(&config.dir)?;
        if let Some(torn) = log.torn.take() {
            warn(&format!("{}: cut a torn last line {}", attestations_path(&config.dir).display(), torn.line));
            cut_torn_line(&config.dir, &torn)?;
        }
        let last_link = log.entries.last().map_or([0; 32], |e| e.attestation.link());
        let lag_us = Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(Self {
            subjects: config.target.subjects(),
            config,
            writer,
            reader: None,
            position: None,
            attested_seq: log.last_seq(),
            attest_link: last_link,
            received_link: last_link,
            received_seq: log.last_seq(),
            attest_writer: None,
            log_at_open: log,
            points: BTreeMap::new(),
            early: BTreeMap::new(),
            attest_every: 0,
            last_snapshot_seq: 0,
            last_message: Instant::now(),
            group_lag: Vec::new(),
            group_records: 0,
            verifiers: (0..verify_workers())
                .map(|_| SignatureVerifier::new(WORKER_CACHED_KEYS, MAX_VERIFY_UNIT_RECORDS))
                .collect(),
            report: FollowReport {
                seq: 0,
                state_hash: [0; 32],
                resumed_at: 0,
                messages: 0,
                records: 0,
                records_compared: 0,
                attestations_checked: 0,
                snapshots: 0,
                failures: 0,
                lag_us,
            },
        })
    }

    async fn sessions(&mut self) -> Result<(), CliError> {
        let mut pause = Duration::from_millis(50);
        loop {
            let messages_before = self.report.messages;
            match self.session().await {
                Ok(()) => return Ok(()),
                Err(End::Fatal(error)) => {
                    // What passed every check before the failure is kept, durably.
                    let _ = self.commit_group();
                    return Err(error);
                }
                Err(End::Retry(reason)) => {
                    if self.report.messages > messages_before {
                        pause = Duration::from_millis(50);
                    }
                    self.report.failures += 1;
                    if self.report.failures == 1 || pause == MAX_RETRY_PAUSE {
                        warn(&format!("follow: {reason}; retrying"));
                    }
                    if self.idle_too_long() {
                        return Err(CliError::Replication(format!("{reason} (for longer than --idle-exit)")));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
            }
        }
    }

    fn idle_too_long(&self) -> bool {
        self.config.idle_exit.is_some_and(|idle| self.last_message.elapsed() >= idle)
    }

    /// Whether the follower may stop.
    fn done(&self) -> bool {
        let seq = self.position.as_ref().map_or(0, |p| p.engine.seq());
        match self.config.until_seq {
            Some(until) if seq >= until => {
                let unchecked = self.points.range(..=until).next().is_some();
                !unchecked || self.idle_too_long() || self.last_message.elapsed() >= Duration::from_secs(2)
            }
            Some(_) => false,
            None => self.idle_too_long(),
        }
    }

    async fn session(&mut self) -> Result<(), End> {
        let (_client, context) = connect(&self.config.target).await.map_err(End::Retry)?;
        let stream = context
            .get_stream(&self.config.target.stream)
            .await
            .map_err(|e| End::Retry(format!("stream {}: {e}", self.config.target.stream)))?;
        let manifest = self.manifest(&stream).await?;
        if self.position.is_none() {
            self.position = Some(self.start_position(&stream, manifest).await?);
        }
        let start = match self.position.as_ref().map(|p| p.stream_pos) {
            Some(pos) if pos > 0 => pos + 1,
            _ => self.find_start(&stream).await?,
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start.max(1) },
                // The client asks for at most this many messages at once (and for more once
                // half of them arrived): at most 1.5 x FETCH_BYTES wait in the server's buffer.
                max_batch: FETCH_MESSAGES,
                ..OrderedConfig::default()
            })
            .await
            .map_err(|e| End::Retry(format!("consumer: {e}")))?;
        let mut messages = consumer.messages().await.map_err(|e| End::Retry(format!("consumer: {e}")))?;
        loop {
            if self.done() {
                self.commit_group()?;
                return Ok(());
            }
            // Group commit: while messages are ready, append them; commit once none is (or
            // the group is large), so one msync covers every message that arrived meanwhile.
            let open = self.group_open();
            if open && self.group_records >= MAX_GROUP_RECORDS {
                self.commit_group()?;
                continue;
            }
            let wait = if open { Duration::ZERO } else { POLL };
            match tokio::time::timeout(wait, messages.next()).await {
                Err(_) if open => self.commit_group()?,
                Err(_) => {}
                Ok(None) => return Err(End::Retry("the consumer ended".to_string())),
                Ok(Some(Err(e))) => return Err(End::Retry(format!("consumer: {e}"))),
                Ok(Some(Ok(message))) => {
                    self.last_message = Instant::now();
                    let mut ready = vec![delivered(message)?];
                    // The messages that arrived with it (a follower catching up finds many):
                    // verified together, on every worker, while the ones before are applied.
                    let interrupted = self.gather_ready(&mut messages, &mut ready);
                    self.handle_ready(&ready)?;
                    if let Some(end) = interrupted {
                        return Err(end);
                    }
                }
            }
        }
    }

    /// Appends to `ready` the messages already received (never waits), while they are log
    /// messages, up to [`MAX_READY_RECORDS`] records and the `--until` seq. Returns how the
    /// consumer failed, if it did (after the messages received before the failure).
    fn gather_ready(&self, messages: &mut Ordered, ready: &mut Vec<Delivered>) -> Option<End> {
        let mut records = 0;
        loop {
            let last = ready.last()?;
            if last.message.subject.as_str() != self.subjects.log {
                return None;
            }
            let Ok(header) = LogHeader::from_headers(last.message.headers.as_ref()) else { return None };
            records += header.records();
            if records >= MAX_READY_RECORDS || self.config.until_seq.is_some_and(|until| header.last_seq >= until) {
                return None;
            }
            match messages.next().now_or_never() {
                None => return None,
                Some(None) => return Some(End::Retry("the consumer ended".to_string())),
                Some(Some(Err(e))) => return Some(End::Retry(format!("consumer: {e}"))),
                Some(Some(Ok(message))) => match delivered(message) {
                    Ok(message) => ready.push(message),
                    Err(end) => return Some(end),
                },
            }
        }
    }

    /// Handles messages received together, in stream order: each run of log messages that
    /// continue one another through [`Follower::handle_logs`], anything else alone.
    fn handle_ready(&mut self, ready: &[Delivered]) -> Result<(), End> {
        let mut at = 0;
        while at < ready.len() {
            let handled = self.handle_logs(&ready[at..])?;
            if handled == 0 {
                self.handle(&ready[at].message)?;
                self.set_stream_pos(ready[at].stream_seq);
                at += 1;
            } else {
                at += handled;
            }
        }
        Ok(())
    }

    fn set_stream_pos(&mut self, stream_seq: u64) {
        if let Some(position) = self.position.as_mut() {
            position.stream_pos = stream_seq;
        }
    }

    /// The stream's manifest: written into the journal if it has none, else equal to its own.
    async fn manifest(&mut self, stream: &stream::Stream) -> Result<Manifest, End> {
        let message = last_on_subject(stream, &self.subjects.manifest)
            .await
            .map_err(End::Retry)?
            .ok_or_else(|| End::Retry("the stream holds no manifest yet (no primary has published)".to_string()))?;
        let theirs = Manifest::from_json(&String::from_utf8_lossy(&message.payload))
            .map_err(|e| fatal(format!("the stream's manifest: {e}")))?;
        match read_manifest(&self.config.dir)? {
            Some(ours) if ours == theirs => Ok(ours),
            Some(_) => Err(fatal(format!(
                "stream {} holds another exchange's manifest (genesis keys or limits) than {}",
                self.config.target.stream,
                self.config.dir.display()
            ))),
            None if self.writer.last_seq() > 0 => Err(fatal("the journal holds records but no verex.json")),
            None => {
                write_manifest(&self.config.dir, &theirs)?;
                Ok(theirs)
            }
        }
    }

    /// Rebuilds the engine where the follower resumes (see the module docs).
    async fn start_position(&mut self, stream: &stream::Stream, manifest: Manifest) -> Result<Position, End> {
        let journal_end = self.writer.last_seq();
        let stream_attested = match last_on_subject(stream, &self.subjects.attest).await.map_err(End::Retry)? {
            Some(message) => parse_attestation(&message.payload).map_or(0, |a| a.seq),
            None => 0,
        };
        let resume = if stream_attested > self.attested_seq { self.attested_seq.min(journal_end) } else { journal_end };
        let (engine, digest, scan) = rebuild_at(&self.config.dir, &manifest, resume, &self.log_at_open)?;
        check_against_chain(&self.config.dir, &self.log_at_open, &scan, &manifest.genesis.attest)?;
        self.report.resumed_at = engine.seq();
        self.last_snapshot_seq = engine.seq();
        if journal_end > 0 {
            note(&format!(
                "follow: journal {} holds seqs up to {journal_end}; resuming the engine at seq {} (attested up to {})",
                self.config.dir.display(),
                engine.seq(),
                self.attested_seq
            ));
        }
        Ok(Position { manifest, buf: engine.event_buf(), engine, digest, stream_pos: 0 })
    }

    /// The stream sequence of the log message holding the engine's next seq (binary search
    /// over the stream), or the stream's end when none does yet.
    async fn find_start(&mut self, stream: &stream::Stream) -> Result<u64, End> {
        let want = self.position.as_ref().map_or(1, |p| p.engine.seq() + 1);
        let info = stream.get_info().await.map_err(|e| End::Retry(format!("stream info: {e}")))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        if info.state.messages == 0 {
            return Ok(last + 1);
        }
        // The smallest stream seq whose next log message ends at or after `want`.
        let (mut lo, mut hi) = (first, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.next_log_at(stream, mid).await? {
                Some((_, header)) if header.last_seq >= want => hi = mid,
                Some((at, _)) => lo = at + 1,
                None => hi = mid,
            }
        }
        match self.next_log_at(stream, lo).await? {
            Some((at, header)) if header.first_seq > want => Err(fatal(format!(
                "gap: the follower needs seq {want}, the stream's first message after it (stream seq {at}) starts at \
                 seq {} (records were removed from the stream?)",
                header.first_seq
            ))),
            Some((at, _)) => Ok(at),
            None => Ok(last + 1),
        }
    }

    /// The first log message at or after stream seq `from`, with its stream seq.
    async fn next_log_at(&self, stream: &stream::Stream, from: u64) -> Result<Option<(u64, LogHeader)>, End> {
        match stream.raw_message_builder().sequence(from).next_by_subject(self.subjects.log.clone()).send().await {
            Ok(message) => {
                let header = LogHeader::from_headers(Some(&message.headers))
                    .map_err(|e| fatal(format!("stream seq {}: {e}", message.sequence)))?;
                Ok(Some((message.sequence, header)))
            }
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(End::Retry(format!("stream lookup at {from}: {e}"))),
        }
    }

    fn handle(&mut self, message: &async_nats::Message) -> Result<(), End> {
        let subject = message.subject.as_str();
        if subject == self.subjects.log {
            let header = LogHeader::from_headers(message.headers.as_ref()).map_err(fatal)?;
            self.handle_log(&header, &message.payload)
        } else if subject == self.subjects.attest {
            let attestation = parse_attestation(&message.payload).ok_or_else(|| {
                fatal(format!("an attestation message that does not parse: {:?}", preview(&message.payload)))
            })?;
            self.handle_attestation(attestation)
        } else if subject == self.subjects.manifest {
            let theirs = Manifest::from_json(&String::from_utf8_lossy(&message.payload));
            match (theirs, self.position.as_ref()) {
                (Ok(theirs), Some(position)) if theirs == position.manifest => Ok(()),
                _ => Err(fatal("a second, different manifest in the stream: another exchange writes to it")),
            }
        } else {
            Ok(())
        }
    }

    fn journal_reader(&mut self) -> Result<&mut JournalReader, End> {
        if self.reader.is_none() {
            self.reader = Some(open_reader(&self.config.dir)?);
        }
        let reader = self.reader.as_mut().ok_or_else(|| fatal("no journal reader"))?;
        reader.refresh().map_err(CliError::from)?;
        Ok(reader)
    }

    /// Compares records the journal already holds with the stream's.
    fn compare_with_journal(&mut self, first_seq: u64, records: &[RecordBytes]) -> Result<(), End> {
        let dir = self.config.dir.clone();
        let reader = self.journal_reader()?;
        let mut iter = reader.iter_from(first_seq).map_err(CliError::from)?;
        for (offset, theirs) in records.iter().enumerate() {
            let seq = first_seq + offset as u64;
            let ours = iter.next().transpose().map_err(CliError::from)?;
            if ours.is_none_or(|ours| ours.seq != seq || ours.payload != theirs.0.as_slice()) {
                return Err(fatal(format!(
                    "the stream's record at seq {seq} differs from the one in {}: a second writer forked the stream",
                    dir.display()
                )));
            }
        }
        self.report.records_compared += records.len() as u64;
        Ok(())
    }

    fn handle_log(&mut self, header: &LogHeader, payload: &[u8]) -> Result<(), End> {
        let position = self.position.as_ref().ok_or_else(|| fatal("no engine"))?;
        let next = position.engine.seq() + 1;
        let digest_before = position.digest;
        if header.first_seq > next {
            return Err(fatal(format!(
                "gap: expected seq {next}, the stream's next log message holds seqs {}..={}",
                header.first_seq, header.last_seq
            )));
        }
        let records = split_records(header, payload).map_err(|e| fatal(format!("seqs {}..: {e}", header.first_seq)))?;
        if header.last_seq < next {
            // A duplicate: what the follower holds already, which must be the same records.
            return self.compare_with_journal(header.first_seq, &records);
        }
        let skip = usize::try_from(next - header.first_seq).unwrap_or(usize::MAX);
        if skip > 0 {
            self.compare_with_journal(header.first_seq, &records[..skip])?;
        } else if header.prev_digest != digest_before.digest {
            return Err(fatal(format!(
                "the message at seq {next} does not continue the chain: its previous digest is {}, the follower's {} \
                 (a second writer)",
                hex(&header.prev_digest),
                hex(&digest_before.digest)
            )));
        }
        let fresh = &records[skip..];
        let (digests, verified) = self.check_records(header, next, digest_before, fresh)?;
        self.store(next, fresh)?;
        self.apply(header, next, &verified, &digests)?;
        self.group_lag.push((header.published_ns, fresh.len() as u64));
        self.group_records += fresh.len() as u64;
        self.report.messages += 1;
        self.after_message()
    }

    /// Validates, verifies and folds the chain over `records` (seqs from `next`); returns the
    /// digest after each and the verified records.
    fn check_records<'r>(
        &self,
        header: &LogHeader,
        next: u64,
        digest: JournalDigest,
        records: &'r [RecordBytes],
    ) -> Result<(Vec<[u8; 32]>, Vec<VerifiedRecord<'r>>), End> {
        let digests = check_chain(header, next, digest, records)?;
        let views: Vec<&ArchivedSequencedTx> = records.iter().map(RecordBytes::archived).collect();
        let mut verdicts = Vec::with_capacity(views.len());
        VerifiedRecord::verify_parallel(&views, verify_workers(), &mut verdicts);
        let mut verified = Vec::with_capacity(verdicts.len());
        for (offset, verdict) in verdicts.into_iter().enumerate() {
            verified.push(verdict.map_err(|e| bad_signature(next + offset as u64, &e))?);
        }
        Ok((digests, verified))
    }

    /// Handles the longest prefix of `run` that is log messages each continuing the one before
    /// from the follower's seq, whose records and chain check: their signatures are verified
    /// on [`verify_workers`] threads, a part of a message at a time in stream order, while
    /// this thread stores and applies the messages whose verdicts are in, in order. Returns
    /// how many messages it handled: 0 when the first is anything else (a duplicate, a gap, an
    /// attestation, a failing check), which the caller then handles alone, so every failure
    /// is found and reported by the one path, at the same seq, after the same records.
    fn handle_logs(&mut self, run: &[Delivered]) -> Result<usize, End> {
        let Some(position) = self.position.as_ref() else { return Ok(0) };
        let mut digest = position.digest;
        let mut checked = Vec::new();
        for delivered in run {
            match self.continuing(&delivered.message, digest) {
                Some(message) => {
                    digest = JournalDigest { seq: message.header.last_seq, digest: message.header.digest };
                    checked.push((message, delivered.stream_seq));
                }
                None => break,
            }
        }
        if checked.is_empty() {
            return Ok(0);
        }
        let workers = verify_workers();
        let units: Vec<(usize, std::ops::Range<usize>)> = checked
            .iter()
            .enumerate()
            .flat_map(|(index, (message, _))| {
                let len = message.records.len();
                let unit = len.div_ceil(workers).clamp(MIN_VERIFY_UNIT_RECORDS, MAX_VERIFY_UNIT_RECORDS);
                (0..len).step_by(unit).map(move |start| (index, start..(start + unit).min(len)))
            })
            .collect();
        let workers = workers.min(units.len());
        let claimed = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let mut verifiers = std::mem::take(&mut self.verifiers);
        let applied = std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::channel();
            let handles: Vec<_> = verifiers
                .iter_mut()
                .take(workers)
                .map(|verifier| {
                    let sender = sender.clone();
                    let (units, checked, claimed, stop) = (&units, &checked, &claimed, &stop);
                    scope.spawn(move || {
                        let mut verdicts = Vec::new();
                        while !stop.load(Ordering::Relaxed) {
                            let unit = claimed.fetch_add(1, Ordering::Relaxed);
                            let Some((index, range)) = units.get(unit) else { break };
                            let records = &checked[*index].0.records[range.clone()];
                            verdicts = verify_unit(records, verifier, verdicts);
                            if sender.send((unit, std::mem::take(&mut verdicts))).is_err() {
                                break;
                            }
                        }
                    })
                })
                .collect();
            drop(sender);
            let result = self.apply_checked(&checked, &units, &receiver);
            stop.store(true, Ordering::Relaxed);
            drop(receiver);
            for handle in handles {
                // A worker that panicked: its units were verified on this thread instead.
                let _ = handle.join();
            }
            result.map(|()| checked.len())
        });
        self.verifiers = verifiers;
        applied
    }

    /// A log message that continues the chain at `digest`, split and checked up to its
    /// signatures; `None` for anything else.
    fn continuing(&self, message: &async_nats::Message, digest: JournalDigest) -> Option<CheckedMessage> {
        if message.subject.as_str() != self.subjects.log {
            return None;
        }
        let header = LogHeader::from_headers(message.headers.as_ref()).ok()?;
        if header.first_seq != digest.seq + 1 || header.prev_digest != digest.digest {
            return None;
        }
        let records = split_records(&header, &message.payload).ok()?;
        let digests = check_chain(&header, header.first_seq, digest, &records).ok()?;
        Some(CheckedMessage { header, records, digests })
    }

    /// Stores and applies the checked messages in order, each once the verdicts of all its
    /// units have arrived on `receiver` (verifying a unit here if no worker is left to).
    fn apply_checked<'r>(
        &mut self,
        checked: &'r [(CheckedMessage, u64)],
        units: &[(usize, std::ops::Range<usize>)],
        receiver: &mpsc::Receiver<(usize, Vec<Verdict<'r>>)>,
    ) -> Result<(), End> {
        let mut arrived: BTreeMap<usize, Vec<Verdict<'r>>> = BTreeMap::new();
        let mut unit = 0;
        for (index, (message, stream_seq)) in checked.iter().enumerate() {
            let next = message.header.first_seq;
            let mut verified = Vec::with_capacity(message.records.len());
            while let Some((owner, range)) = units.get(unit).filter(|(owner, _)| *owner == index) {
                debug_assert_eq!(*owner, index);
                let verdicts = loop {
                    if let Some(verdicts) = arrived.remove(&unit) {
                        break verdicts;
                    }
                    match receiver.recv() {
                        Ok((done, verdicts)) => {
                            arrived.insert(done, verdicts);
                        }
                        Err(_) => {
                            let mut verifier = SignatureVerifier::new(range.len(), range.len());
                            break verify_unit(&message.records[range.clone()], &mut verifier, Vec::new());
                        }
                    }
                };
                debug_assert_eq!(verdicts.len(), range.len());
                for (offset, verdict) in verdicts.into_iter().enumerate() {
                    let seq = next + (range.start + offset) as u64;
                    verified.push(verdict.map_err(|e| bad_signature(seq, &e))?);
                }
                unit += 1;
            }
            self.store(next, &message.records)?;
            self.apply(&message.header, next, &verified, &message.digests)?;
            self.group_lag.push((message.header.published_ns, message.records.len() as u64));
            self.group_records += message.records.len() as u64;
            self.report.messages += 1;
            self.after_message()?;
            self.set_stream_pos(*stream_seq);
            if self.group_records >= MAX_GROUP_RECORDS {
                self.commit_group()?;
            }
        }
        Ok(())
    }

    /// Appends the records the journal does not hold yet (compares the others) and commits.
    fn store(&mut self, next: u64, records: &[RecordBytes]) -> Result<(), End> {
        let journal_end = self.writer.last_seq();
        let held = usize::try_from((journal_end + 1).saturating_sub(next)).unwrap_or(usize::MAX).min(records.len());
        if held > 0 {
            self.compare_with_journal(next, &records[..held])?;
        }
        for (offset, record) in records.iter().enumerate().skip(held) {
            self.writer.append(next + offset as u64, &record.0).map_err(CliError::from)?;
        }
        self.report.records += (records.len() - held) as u64;
        Ok(())
    }

    /// Whether records or lag samples wait for the group's commit.
    fn group_open(&self) -> bool {
        !self.group_lag.is_empty() || self.writer.durable_seq() < self.writer.last_seq()
    }

    /// Commits the group (one msync and mark for every message that was ready at once) and
    /// records the lag of its records: publish to durable and applied here.
    fn commit_group(&mut self) -> Result<(), End> {
        self.writer.commit().map_err(CliError::from)?;
        let now = wall_ns();
        for (published_ns, records) in self.group_lag.drain(..) {
            let lag_us = now.saturating_sub(published_ns) / 1000;
            let _ = self.report.lag_us.record_n(lag_us.max(1), records);
        }
        self.group_records = 0;
        Ok(())
    }

    /// Applies the verified records, hashing the state at attestation points.
    fn apply(
        &mut self,
        header: &LogHeader,
        next: u64,
        verified: &[VerifiedRecord<'_>],
        digests: &[[u8; 32]],
    ) -> Result<(), End> {
        self.attest_every = header.attest_every;
        let position = self.position.as_mut().ok_or_else(|| fatal("no engine"))?;
        for (offset, &verified) in verified.iter().enumerate() {
            let seq = next + offset as u64;
            position
                .engine
                .apply(verified, &mut position.buf)
                .map_err(|e| fatal(format!("seq {seq}: the engine refused it: {e}")))?;
            position.digest = JournalDigest { seq, digest: digests[offset] };
            if header.attest_every > 0 && seq.is_multiple_of(header.attest_every) {
                self.points.insert(seq, (digests[offset], position.engine.state_hash()));
                while self.points.len() > MAX_POINTS {
                    self.points.pop_first();
                }
            }
        }
        Ok(())
    }

    /// After a message: attestations waiting for these seqs, a snapshot if one is due.
    fn after_message(&mut self) -> Result<(), End> {
        let seq = self.position.as_ref().map_or(0, |p| p.engine.seq());
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() > seq {
                break;
            }
            let attestation = entry.remove();
            self.check_attestation(attestation)?;
        }
        let every = self.config.snapshot_every;
        let at_journal_end = seq == self.writer.last_seq();
        if every > 0 && at_journal_end && seq / every > self.last_snapshot_seq / every {
            self.snapshot()?;
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<(), End> {
        self.commit_group()?;
        let position = self.position.as_ref().ok_or_else(|| fatal("no engine"))?;
        let seq = position.engine.seq();
        let bytes = encode_snapshot(&position.engine, self.writer.last_hash(), position.digest.digest)
            .map_err(|e| fatal(format!("snapshot at seq {seq}: {e}")))?;
        write_snapshot(&self.config.dir, seq, &bytes)?;
        retain_newest(&self.config.dir, self.config.keep_snapshots.max(1), seq)?;
        self.last_snapshot_seq = seq;
        self.report.snapshots += 1;
        Ok(())
    }

    fn handle_attestation(&mut self, attestation: Attestation) -> Result<(), End> {
        let position = self.position.as_ref().ok_or_else(|| fatal("no engine"))?;
        let seq = attestation.seq;
        attestation
            .verify(&position.manifest.genesis.attest)
            .map_err(|e| fatal(format!("attestation at seq {seq}: {e}")))?;
        if seq <= self.received_seq {
            return Ok(());
        }
        if attestation.prev != self.received_link {
            return Err(fatal(format!(
                "the attestation at seq {seq} does not link to the one before it (seq {}): one was removed or replaced",
                self.received_seq
            )));
        }
        self.received_seq = seq;
        self.received_link = attestation.link();
        if seq > position.engine.seq() {
            if self.early.len() >= MAX_EARLY_ATTESTATIONS {
                return Err(fatal(format!("more than {MAX_EARLY_ATTESTATIONS} attestations ahead of the records")));
            }
            self.early.insert(seq, attestation);
            return Ok(());
        }
        self.check_attestation(attestation)
    }

    /// Checks an attestation against the follower's own digest and state hash at its seq,
    /// then appends it to the follower's log.
    fn check_attestation(&mut self, attestation: Attestation) -> Result<(), End> {
        let seq = attestation.seq;
        let (digest, state_hash) = match self.points.remove(&seq) {
            Some(point) => point,
            None => {
                let manifest = self.position.as_ref().ok_or_else(|| fatal("no engine"))?.manifest;
                let (engine, digest, _) = rebuild_at(&self.config.dir, &manifest, seq, &AttestationLog::default())?;
                (digest.digest, engine.state_hash())
            }
        };
        if digest != attestation.journal_digest {
            return Err(fatal(format!("attestation at seq {seq}: its journal digest is not the follower's")));
        }
        if state_hash != attestation.state_hash {
            return Err(fatal(format!(
                "attestation at seq {seq}: state hash {} signed, the follower's is {}",
                hex(&attestation.state_hash),
                hex(&state_hash)
            )));
        }
        if attestation.prev != self.attest_link {
            return Err(fatal(format!("attestation at seq {seq} does not link to the follower's last one")));
        }
        // The attested records are durable in this journal before their attestation is.
        self.commit_group()?;
        if self.attest_writer.is_none() {
            self.attest_writer = Some(AttestationWriter::open(&self.config.dir)?);
        }
        if let Some(writer) = self.attest_writer.as_mut() {
            writer.append(&attestation)?;
        }
        self.attest_link = attestation.link();
        self.attested_seq = seq;
        self.report.attestations_checked += 1;
        self.points = self.points.split_off(&(seq + 1));
        Ok(())
    }

    fn finish(mut self) -> Result<FollowReport, CliError> {
        match self.commit_group() {
            Ok(()) => {}
            Err(End::Fatal(error)) => return Err(error),
            Err(End::Retry(reason)) => return Err(CliError::Replication(reason)),
        }
        if let Some(position) = &self.position {
            self.report.seq = position.engine.seq();
            self.report.state_hash = position.engine.state_hash();
        }
        if self.attest_every > 0 && !self.points.is_empty() {
            note(&format!(
                "follow: {} attestation points not yet attested by the primary (from seq {})",
                self.points.len(),
                self.points.keys().next().copied().unwrap_or(0)
            ));
        }
        Ok(self.report)
    }
}

/// A message as received, with its stream sequence.
struct Delivered {
    message: async_nats::Message,
    stream_seq: u64,
}

fn delivered(message: jetstream::Message) -> Result<Delivered, End> {
    let stream_seq = message.info().map_err(|e| End::Retry(format!("message info: {e}")))?.stream_sequence;
    Ok(Delivered { message: message.message, stream_seq })
}

/// A log message whose records and chain passed every check but their signatures.
struct CheckedMessage {
    header: LogHeader,
    records: Vec<RecordBytes>,
    /// `d[seq]` after each record.
    digests: Vec<[u8; 32]>,
}

/// A record's signature verdict.
type Verdict<'r> = Result<VerifiedRecord<'r>, SignatureError>;

/// The threads that verify a follower's signatures: one per core, at most
/// [`MAX_VERIFY_WORKERS`].
fn verify_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, MAX_VERIFY_WORKERS)
}

/// Batch-verifies records (already validated as archives) into `verdicts` (reused) through
/// `verifier` (its key cache: the same verdicts as without).
fn verify_unit<'r>(
    records: &'r [RecordBytes],
    verifier: &mut SignatureVerifier,
    mut verdicts: Vec<Verdict<'r>>,
) -> Vec<Verdict<'r>> {
    let views: Vec<&ArchivedSequencedTx> = records.iter().map(RecordBytes::archived).collect();
    VerifiedRecord::verify_batch_with(&views, verifier, &mut verdicts);
    verdicts
}

fn bad_signature(seq: u64, error: &SignatureError) -> End {
    fatal(format!("seq {seq}: bad signature: {error}"))
}

/// Validates `records` as archives with seqs from `next` and folds the BLAKE3 chain over
/// them from `digest`; it must end at the message's `Verex-Digest`. Returns `d` after each.
fn check_chain(
    header: &LogHeader,
    next: u64,
    mut digest: JournalDigest,
    records: &[RecordBytes],
) -> Result<Vec<[u8; 32]>, End> {
    let mut digests = Vec::with_capacity(records.len());
    for (offset, record) in records.iter().enumerate() {
        let seq = next + offset as u64;
        let archived = access_record(&record.0).map_err(|e| fatal(format!("seq {seq}: not a record archive: {e}")))?;
        let inner = archived.seq.to_native();
        if inner != seq {
            return Err(fatal(format!("the stream's record at seq {seq} says seq {inner}")));
        }
        digest.push(seq, &record.0).map_err(|expected| fatal(format!("chain: expected seq {expected}")))?;
        digests.push(digest.digest);
    }
    if digest.digest != header.digest {
        return Err(fatal(format!(
            "the BLAKE3 chain over seqs {next}..={} gives {}, the message says {}",
            header.last_seq,
            hex(&digest.digest),
            hex(&header.digest)
        )));
    }
    Ok(digests)
}

fn parse_attestation(bytes: &[u8]) -> Option<Attestation> {
    std::str::from_utf8(bytes).ok().and_then(|text| Attestation::from_json(text.trim_end()).ok())
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

/// The engine and digest at seq `until` of the journal in `dir`: the newest snapshot at or
/// below it that decodes and fits the journal's chains, else genesis, then the records up to
/// `until`, each validated, verified and applied. Also returns the chain scan (values at every
/// snapshot's and attestation's seq).
///
/// # Errors
/// Journal damage, a record that fails, a journal that ends before `until`.
pub fn rebuild_at(
    dir: &Path,
    manifest: &Manifest,
    until: u64,
    log: &AttestationLog,
) -> Result<(Engine, JournalDigest, ChainScan), CliError> {
    let reader = open_reader(dir)?;
    let snapshots = list_snapshots(dir)?;
    let mut wanted: BTreeSet<u64> = snapshots.iter().map(|(seq, _)| *seq).collect();
    wanted.extend(log.entries.iter().map(|e| e.attestation.seq));
    let scan = scan_chain(dir, &reader, &wanted, |_| Ok(()))?;
    let mut start = None;
    for (seq, path) in snapshots.iter().rev().filter(|(seq, _)| *seq <= until) {
        let decoded = read_snapshot_file(path).and_then(|bytes| {
            decode_snapshot(&bytes, manifest.genesis, manifest.limits.limits())
                .map_err(|e| CliError::Damaged { file: path.display().to_string(), reason: e.to_string() })
        });
        match decoded {
            Ok((header, engine)) if header.seq == *seq && header_mismatch(&header, &scan).is_none() => {
                let digest = scan.points.get(seq).map_or([0; 32], |p| p.digest);
                start = Some((engine, JournalDigest { seq: *seq, digest }));
                break;
            }
            Ok(_) => warn(&format!("snapshot {} skipped: it does not fit the journal", path.display())),
            Err(e) => warn(&format!("snapshot {} skipped: {e}", path.display())),
        }
    }
    let (mut engine, mut digest) = match start {
        Some(start) => start,
        None => (manifest.engine()?, JournalDigest::default()),
    };
    replay_until(dir, &reader, &mut engine, &mut digest, until)?;
    Ok((engine, digest, scan))
}

/// Applies the journal's records after `engine.seq()` up to `until`, a chunk at a time (each
/// chunk's signatures batch-verified on every core), folding the BLAKE3 chain.
fn replay_until(
    dir: &Path,
    reader: &JournalReader,
    engine: &mut Engine,
    digest: &mut JournalDigest,
    until: u64,
) -> Result<(), CliError> {
    if engine.seq() >= until {
        return Ok(());
    }
    let bad = |seq: u64, reason: String| CliError::BadRecord { dir: dir.display().to_string(), seq, reason };
    let mut buf = engine.event_buf();
    let mut records = reader.iter_from(engine.seq() + 1)?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut verdicts = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
    while engine.seq() < until {
        let mut chunk = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
        for item in records.by_ref() {
            let record = item?;
            chunk.push((record, access_checked(dir, &record)?));
            if record.seq >= until || chunk.len() == REPLAY_CHUNK_RECORDS {
                break;
            }
        }
        if chunk.is_empty() {
            return Err(bad(engine.seq() + 1, format!("the journal ends before seq {until}")));
        }
        let views: Vec<&ArchivedSequencedTx> = chunk.iter().map(|(_, archived)| *archived).collect();
        VerifiedRecord::verify_parallel(&views, threads, &mut verdicts);
        for ((record, _), verdict) in chunk.iter().zip(verdicts.drain(..)) {
            let verified = verdict.map_err(|e| bad(record.seq, format!("bad signature: {e}")))?;
            engine.apply(verified, &mut buf).map_err(|e| bad(record.seq, format!("the engine refused it: {e}")))?;
            digest
                .push(record.seq, record.payload)
                .map_err(|expected| bad(record.seq, format!("expected seq {expected}")))?;
        }
    }
    Ok(())
}
