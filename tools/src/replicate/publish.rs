//! The primary's publisher: a thread that ships the journal's committed records to the
//! JetStream stream, one message per commit group, after the local commit.
//!
//! The journal stage's part is [`PublishFeed::durable`] after each successful commit (one
//! atomic operation, and a notification when the seq is new) and the BLAKE3 chain folded over
//! the records it appends, while their bytes are hot, handed over as checkpoints
//! ([`PublishFeed::checkpoint`]): the publisher does not fold it again. It reads the
//! committed records from the journal's mapping (its own read-only [`JournalReader`], like
//! the replica), so a slow or unreachable server costs no memory and never holds back the
//! local journal: the publisher falls behind, says so, reconnects with a bounded pause, and
//! catches up from the journal, coalescing the commit groups it finds durable into messages
//! of at most [`MAX_MESSAGE_RECORDS`] records. At a high rate it lingers (at most
//! [`LINGER`]) for a fuller message: the server's and its own CPU go largely per message.
//!
//! Publishing is fenced. Each log message carries `Nats-Msg-Id` = its first seq (JetStream
//! drops a re-sent copy) and `Nats-Expected-Last-Subject-Sequence` = the stream sequence of
//! the log message before it, so JetStream stores it only if no other log message was stored
//! in between. On start, and after any refusal, the publisher reads the stream's last log
//! message: it must end at a seq this journal holds, with this journal's BLAKE3 digest there;
//! then publishing resumes right after it. A stream ahead of the journal, a digest that
//! differs, or a manifest of other genesis keys means another writer: the publisher stops
//! for good and [`PublishFeed::fenced`] says why (the run then stops: a stale primary that
//! comes back cannot fork the stream).
//!
//! The attestations the replica appends to `DIR/attestations.jsonl` are published to the
//! `attest` subject once the records they cover are acknowledged.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use bytes::BytesMut;
use tokio::sync::Notify;
use verex_engine::attest::{Attestation, JournalDigest};
use verex_engine::signing::hex;
use verex_engine::tx::RECORD_BYTES;
use verex_journal::{JournalError, JournalReader};

use super::message::{LogHeader, EXPECTED_LAST_SUBJECT_SEQ, MAX_MESSAGE_RECORDS, MSG_ID};
use super::{connect, ensure_stream, last_on_subject, wall_ns, Subjects, Target, MAX_RETRY_PAUSE};
use crate::attestations::attestations_path;
use crate::error::CliError;
use crate::io::{note, warn};
use crate::manifest::Manifest;

/// How long the publisher sleeps with nothing to do, unless notified.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Most chain checkpoints waiting for the publisher (40 bytes each); when the publisher is
/// that far behind, it folds the chain itself from the journal for the seqs past them.
pub const MAX_CHECKPOINTS: usize = 4096;
/// Longest wait for a fuller message ([`Worker::linger`]).
const LINGER: Duration = Duration::from_millis(3);
/// The backlog (records) from which the publisher lingers: about 80k records/s arriving
/// during one publish round trip on loopback.
const LINGER_FROM_RECORDS: u64 = MAX_MESSAGE_RECORDS / 8;
/// First pause after a failed session (doubling up to [`MAX_RETRY_PAUSE`]).
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What the publisher ships, and where.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Servers and stream.
    pub target: Target,
    /// The journal directory.
    pub dir: PathBuf,
    /// The run's `--attest-every` (carried in each message, so followers hash at those seqs).
    pub attest_every: u64,
    /// The journal's manifest (published once; a stream holding another is refused).
    pub manifest: Manifest,
}

/// What the publisher did.
#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    /// The last seq JetStream acknowledged (or that the stream held already at start).
    pub acked_seq: u64,
    /// Log messages acknowledged.
    pub messages: u64,
    /// Records in them.
    pub records: u64,
    /// Attestations published.
    pub attestations: u64,
    /// Failed connection attempts and failed sessions (each followed by a pause and a retry).
    pub failures: u64,
    /// Refusals and duplicates after which the publisher re-read the stream's head.
    pub resyncs: u64,
    /// The largest backlog seen: durable but not yet acknowledged records.
    pub max_backlog: u64,
    /// Why publishing stopped for good (another writer), if it did.
    pub fenced: Option<String>,
    /// The last failure.
    pub last_failure: Option<String>,
    /// The publisher thread's CPU time in ms (Linux), for measurements.
    pub cpu_ms: Option<u64>,
}

/// What the journal stage and the publisher share.
#[derive(Debug, Default)]
struct Shared {
    /// The highest seq the local journal has committed (written by the journal stage).
    durable_seq: AtomicU64,
    /// The highest seq JetStream holds (written by the publisher).
    acked_seq: AtomicU64,
    /// Set once, after the last `durable_seq` store.
    stop: AtomicBool,
    /// How long to keep trying after `stop`, in ms.
    stop_wait_ms: AtomicU64,
    fenced: OnceLock<String>,
    /// Set once the publisher has checked the stream's head against the journal.
    synced: AtomicBool,
    notify: Notify,
    /// The journal stage's thread, woken when an acknowledgement arrives (`--replicated`).
    waiter: OnceLock<Thread>,
    /// `d[seq]` at the journal's end when the run started: where the journal stage's chain
    /// starts.
    start: JournalDigest,
    /// `d[seq]` at seqs the journal stage appended, in seq order, at most [`MAX_CHECKPOINTS`]:
    /// folded once, as the records are appended, and read here at a message's end, so the
    /// publisher never hashes the records again (it does when none is in reach).
    checkpoints: Mutex<VecDeque<JournalDigest>>,
}

impl Shared {
    /// The last checkpoint in `(after, limit]`, dropping those at or below `after`.
    fn checkpoint(&self, after: u64, limit: u64) -> Option<JournalDigest> {
        let mut checkpoints = self.checkpoints.lock().ok()?;
        while checkpoints.front().is_some_and(|c| c.seq <= after) {
            checkpoints.pop_front();
        }
        checkpoints.iter().take_while(|c| c.seq <= limit).last().copied()
    }
}

/// The journal stage's handle on the publisher.
#[derive(Debug, Clone)]
pub struct PublishFeed {
    shared: Arc<Shared>,
}

impl PublishFeed {
    /// Records that the local journal has committed every record up to `seq`: one atomic
    /// operation, and a notification when `seq` is new (the publisher wakes once per commit
    /// group); never blocks on the network.
    pub fn durable(&self, seq: u64) {
        if self.shared.durable_seq.fetch_max(seq, Ordering::AcqRel) < seq {
            self.shared.notify.notify_one();
        }
    }

    /// `d[seq]` at the journal's end when the run started: where the chain of the records the
    /// journal stage appends starts.
    #[must_use]
    pub fn start(&self) -> JournalDigest {
        self.shared.start
    }

    /// Hands the publisher `d[digest.seq]`, folded by the journal stage over the records it
    /// appended (seqs in increasing order); dropped when [`MAX_CHECKPOINTS`] wait already.
    pub fn checkpoint(&self, digest: JournalDigest) {
        if let Ok(mut checkpoints) = self.shared.checkpoints.lock() {
            debug_assert!(checkpoints.back().is_none_or(|last| last.seq < digest.seq), "checkpoints in seq order");
            if checkpoints.len() < MAX_CHECKPOINTS {
                checkpoints.push_back(digest);
            }
        }
    }

    /// The highest seq JetStream has acknowledged.
    #[must_use]
    pub fn acked_seq(&self) -> u64 {
        self.shared.acked_seq.load(Ordering::Acquire)
    }

    /// Why the publisher stopped for good, if another writer holds the stream.
    #[must_use]
    pub fn fenced(&self) -> Option<&str> {
        self.shared.fenced.get().map(String::as_str)
    }

    /// Makes the calling thread the one woken (unparked) when an acknowledgement arrives.
    pub fn register_waiter(&self) {
        self.shared.waiter.get_or_init(thread::current);
    }
}

#[cfg(test)]
impl PublishFeed {
    /// A feed with no publisher thread behind it, its chain starting at `start`.
    pub(crate) fn detached(start: JournalDigest) -> Self {
        Self { shared: Arc::new(Shared { start, ..Shared::default() }) }
    }

    /// What the publisher would take: the last checkpoint in `(after, limit]`.
    pub(crate) fn take_checkpoint(&self, after: u64, limit: u64) -> Option<JournalDigest> {
        self.shared.checkpoint(after, limit)
    }

    pub(crate) fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }
}

/// A running publisher.
#[derive(Debug)]
pub struct Publisher {
    feed: PublishFeed,
    handle: JoinHandle<PublishReport>,
}

impl Publisher {
    /// Starts the publisher's thread. `end` is the BLAKE3 digest at the journal's last seq
    /// (recovery computed it), so a restart whose records were all published needs no scan.
    ///
    /// # Errors
    /// [`CliError::Io`] when the thread cannot be spawned.
    pub fn spawn(config: PublishConfig, end: JournalDigest) -> Result<Self, CliError> {
        let shared = Arc::new(Shared { start: end, ..Shared::default() });
        shared.durable_seq.store(end.seq, Ordering::Relaxed);
        let worker = Worker::new(config.clone(), end, Arc::clone(&shared));
        let handle = thread::Builder::new()
            .name("verex-publish".into())
            .spawn(move || worker.run())
            .map_err(|e| CliError::io("start the publisher thread for", &config.dir, e))?;
        Ok(Self { feed: PublishFeed { shared }, handle })
    }

    /// The journal stage's handle.
    #[must_use]
    pub fn feed(&self) -> PublishFeed {
        self.feed.clone()
    }

    /// Waits (at most `timeout`) until the publisher has checked the stream's head against
    /// the journal, so that a stale primary is refused before it sequences anything.
    /// Returns whether the check was made.
    ///
    /// # Errors
    /// Why publishing is fenced: another writer holds the stream.
    pub fn wait_checked(&self, timeout: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(reason) = self.feed.fenced() {
                return Err(reason.to_string());
            }
            if self.feed.shared.synced.load(Ordering::Acquire) {
                return Ok(true);
            }
            if Instant::now() >= deadline || self.handle.is_finished() {
                return Ok(false);
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Publishes up to `durable_seq` (the run's last commit), trying for at most `wait`, and
    /// returns what the publisher did.
    #[must_use]
    pub fn finish(self, durable_seq: u64, wait: Duration) -> PublishReport {
        let shared = &self.feed.shared;
        shared.durable_seq.store(durable_seq, Ordering::Release);
        shared.stop_wait_ms.store(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), Ordering::Release);
        shared.stop.store(true, Ordering::Release);
        shared.notify.notify_one();
        self.handle.join().unwrap_or_else(|_| PublishReport {
            last_failure: Some("the publisher thread panicked".to_string()),
            acked_seq: self.feed.acked_seq(),
            ..PublishReport::default()
        })
    }
}

/// How a session with the server ended.
enum End {
    /// Another writer holds the stream: stop for good.
    Fenced(String),
    /// A failure worth another try after a pause.
    Failed(String),
}

impl From<JournalError> for End {
    fn from(error: JournalError) -> Self {
        End::Failed(format!("reading the journal: {error}"))
    }
}

/// The publisher thread's state.
struct Worker {
    config: PublishConfig,
    subjects: Subjects,
    shared: Arc<Shared>,
    /// The digest at the journal's end when the run started.
    start_end: JournalDigest,
    /// `d[published]`: the last seq the stream holds and its digest.
    published: JournalDigest,
    /// The stream sequence of the last log message (the next one's expected predecessor).
    subject_seq: u64,
    /// The last attestation seq the stream holds.
    attested_seq: u64,
    /// Bytes of `attestations.jsonl` already handled.
    attest_offset: u64,
    reader: Option<JournalReader>,
    report: PublishReport,
    stop_deadline: Option<Instant>,
    /// Until when the publisher waits for a fuller message ([`Worker::linger`]).
    linger_until: Option<Instant>,
    /// Between a failure and the next acknowledged message.
    failing: bool,
}

impl Worker {
    fn new(config: PublishConfig, start_end: JournalDigest, shared: Arc<Shared>) -> Self {
        Self {
            subjects: config.target.subjects(),
            config,
            shared,
            start_end,
            published: JournalDigest::default(),
            subject_seq: 0,
            attested_seq: 0,
            attest_offset: 0,
            reader: None,
            report: PublishReport::default(),
            stop_deadline: None,
            linger_until: None,
            failing: false,
        }
    }

    fn run(mut self) -> PublishReport {
        let runtime = match super::runtime() {
            Ok(runtime) => runtime,
            Err(e) => {
                self.report.last_failure = Some(format!("cannot start the publisher's runtime: {e}"));
                return self.report;
            }
        };
        runtime.block_on(self.sessions());
        self.report.acked_seq = self.shared.acked_seq.load(Ordering::Acquire);
        self.report.cpu_ms = super::cpu_ms(true);
        self.report
    }

    /// Whether the run has stopped and there is nothing more to do (or no more time).
    fn done(&mut self) -> bool {
        if !self.shared.stop.load(Ordering::Acquire) {
            return false;
        }
        let deadline = *self.stop_deadline.get_or_insert_with(|| {
            Instant::now() + Duration::from_millis(self.shared.stop_wait_ms.load(Ordering::Acquire))
        });
        let caught_up = self.published.seq >= self.shared.durable_seq.load(Ordering::Acquire)
            && self.attestations_pending().is_none_or(|pending| !pending);
        caught_up || Instant::now() >= deadline
    }

    async fn sessions(&mut self) {
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            if self.done() {
                return;
            }
            let messages_before = self.report.messages;
            match self.session().await {
                Ok(()) => return,
                Err(End::Fenced(reason)) => {
                    warn(&format!("publish: stopped for good: {reason}"));
                    let _ = self.shared.fenced.set(reason.clone());
                    self.report.fenced = Some(reason);
                    self.wake_waiter();
                    return;
                }
                Err(End::Failed(reason)) => {
                    self.report.failures += 1;
                    if !self.failing {
                        warn(&format!(
                            "publish: {reason}; the local journal goes on, retrying (backlog {} records)",
                            self.backlog()
                        ));
                    }
                    self.failing = true;
                    self.report.last_failure = Some(reason);
                    if self.report.messages > messages_before {
                        pause = FIRST_RETRY_PAUSE;
                    }
                    let _ = tokio::time::timeout(pause, self.shared.notify.notified()).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
            }
        }
    }

    /// Whether to wait (at most [`LINGER`]) for more records before publishing: when a
    /// message would be partly full at a high rate. The server's and the publisher's CPU go
    /// mostly per message (perf/replication/README.md), so at full speed fuller messages
    /// leave the primary's stages more of the cores; a low rate (a backlog under
    /// [`LINGER_FROM_RECORDS`]) is published at once, its lag unchanged.
    fn linger(&self, durable: u64) -> bool {
        let backlog = durable.saturating_sub(self.published.seq);
        (LINGER_FROM_RECORDS..MAX_MESSAGE_RECORDS).contains(&backlog) && !self.shared.stop.load(Ordering::Acquire)
    }

    fn backlog(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire).saturating_sub(self.published.seq)
    }

    /// One connection: check the stream's head against the journal, then publish until the
    /// run stops or something fails.
    async fn session(&mut self) -> Result<(), End> {
        let (_client, context) = connect(&self.config.target).await.map_err(End::Failed)?;
        let stream = ensure_stream(&context, &self.config.target).await.map_err(End::Failed)?;
        self.check_manifest(&context, &stream).await?;
        self.sync_head(&stream).await?;
        self.attested_seq = match last_on_subject(&stream, &self.subjects.attest).await.map_err(End::Failed)? {
            Some(message) => parse_attestation(&message.payload).map(|a| a.seq).unwrap_or(0),
            None => 0,
        };
        loop {
            if self.done() {
                return Ok(());
            }
            let durable = self.shared.durable_seq.load(Ordering::Acquire);
            if self.linger(durable) {
                let until = *self.linger_until.get_or_insert_with(|| Instant::now() + LINGER);
                let now = Instant::now();
                if now < until {
                    let _ = tokio::time::timeout(until - now, self.shared.notify.notified()).await;
                    continue;
                }
            }
            self.linger_until = None;
            if self.published.seq < durable {
                self.report.max_backlog = self.report.max_backlog.max(durable - self.published.seq);
                self.publish_next(&context, &stream, durable).await?;
                if self.failing {
                    note(&format!("publish: publishing again, acknowledged through seq {}", self.published.seq));
                    self.failing = false;
                }
                continue;
            }
            self.publish_attestations(&context).await?;
            let _ = tokio::time::timeout(IDLE_WAIT, self.shared.notify.notified()).await;
        }
    }

    /// Publishes the journal's manifest once; a stream that holds another one belongs to
    /// another exchange.
    async fn check_manifest(&mut self, context: &jetstream::Context, stream: &stream::Stream) -> Result<(), End> {
        for _ in 0..2 {
            if let Some(message) = last_on_subject(stream, &self.subjects.manifest).await.map_err(End::Failed)? {
                let text = String::from_utf8_lossy(&message.payload);
                return match Manifest::from_json(&text) {
                    Ok(theirs) if theirs == self.config.manifest => Ok(()),
                    Ok(_) => Err(End::Fenced(format!(
                        "stream {} holds the manifest of another exchange (other genesis keys or limits)",
                        self.config.target.stream
                    ))),
                    Err(e) => Err(End::Fenced(format!(
                        "stream {}: its manifest does not parse: {e}",
                        self.config.target.stream
                    ))),
                };
            }
            let mut headers = HeaderMap::new();
            headers.insert(EXPECTED_LAST_SUBJECT_SEQ, "0");
            headers.insert(MSG_ID, "manifest");
            let publish = Publish::build().payload(self.config.manifest.to_json().into()).headers(headers);
            match publish_and_ack(context, &self.subjects.manifest, publish).await {
                Ok(_) => return Ok(()),
                Err(PublishFailure::Refused(_)) => {}
                Err(PublishFailure::Other(e)) => return Err(End::Failed(e)),
            }
        }
        Err(End::Failed("the manifest could neither be published nor read".to_string()))
    }

    fn reader(&mut self) -> Result<&mut JournalReader, End> {
        if self.reader.is_none() {
            self.reader = Some(JournalReader::open(&self.config.dir)?);
        }
        let reader = self.reader.as_mut().ok_or_else(|| End::Failed("no journal reader".to_string()))?;
        reader.refresh()?;
        Ok(reader)
    }

    /// Reads the stream's last log message and continues after it, if this journal holds it.
    async fn sync_head(&mut self, stream: &stream::Stream) -> Result<(), End> {
        self.report.resyncs += 1;
        let head = last_on_subject(stream, &self.subjects.log).await.map_err(End::Failed)?;
        let (subject_seq, last_seq, digest) = match head {
            None => (0, 0, [0; 32]),
            Some(message) => {
                let header = LogHeader::from_headers(Some(&message.headers)).map_err(|e| {
                    End::Fenced(format!(
                        "the stream's last log message (stream seq {}) is not verex's: {e}",
                        message.sequence
                    ))
                })?;
                (message.sequence, header.last_seq, header.digest)
            }
        };
        let local_last = self.reader()?.next_seq().saturating_sub(1);
        if last_seq > local_last {
            return Err(End::Fenced(format!(
                "stream {} holds records up to seq {last_seq}, this journal only up to seq {local_last}: another \
                 writer (a promoted follower?) has gone on; this journal is stale and must not publish",
                self.config.target.stream
            )));
        }
        let local = self.digest_at(last_seq)?;
        if local.digest != digest {
            return Err(End::Fenced(format!(
                "the stream's digest at seq {last_seq} is {}, this journal's {}: the stream holds another history \
                 (a second writer)",
                hex(&digest),
                hex(&local.digest)
            )));
        }
        self.published = local;
        self.subject_seq = subject_seq;
        self.acknowledge(last_seq);
        self.shared.synced.store(true, Ordering::Release);
        Ok(())
    }

    /// `d[seq]` of the local journal.
    fn digest_at(&mut self, seq: u64) -> Result<JournalDigest, End> {
        for known in [self.published, self.start_end] {
            if known.seq == seq {
                return Ok(known);
            }
        }
        let mut digest = if self.published.seq < seq { self.published } else { JournalDigest::default() };
        let reader = self.reader()?;
        if digest.seq < seq {
            for item in reader.iter_from(digest.seq + 1)? {
                let record = item?;
                if record.seq > seq {
                    break;
                }
                digest
                    .push(record.seq, record.payload)
                    .map_err(|expected| End::Failed(format!("journal gap: expected seq {expected}")))?;
            }
        }
        if digest.seq != seq {
            return Err(End::Failed(format!("the journal does not show seq {seq} yet")));
        }
        Ok(digest)
    }

    fn acknowledge(&mut self, seq: u64) {
        self.shared.acked_seq.fetch_max(seq, Ordering::AcqRel);
        self.wake_waiter();
    }

    fn wake_waiter(&self) {
        if let Some(thread) = self.shared.waiter.get() {
            thread.unpark();
        }
    }

    /// Publishes the next message: the records after the last published one, up to
    /// `durable` and at most [`MAX_MESSAGE_RECORDS`].
    async fn publish_next(
        &mut self,
        context: &jetstream::Context,
        stream: &stream::Stream,
        durable: u64,
    ) -> Result<(), End> {
        let first = self.published.seq + 1;
        let limit = durable.min(self.published.seq + MAX_MESSAGE_RECORDS);
        // The journal stage's chain value at the message's end, when one is in reach (the
        // records are then only copied); else the chain is folded here.
        let checkpoint = self.shared.checkpoint(self.published.seq, limit);
        let last = checkpoint.map_or(limit, |c| c.seq);
        let mut digest = self.published;
        let mut payload = BytesMut::with_capacity(usize::try_from(last + 1 - first).unwrap_or(0) * RECORD_BYTES);
        let reader = self.reader()?;
        for item in reader.iter_from(first)? {
            let record = item?;
            if record.seq > last {
                break;
            }
            if checkpoint.is_none() || cfg!(debug_assertions) {
                digest
                    .push(record.seq, record.payload)
                    .map_err(|expected| End::Failed(format!("journal gap at {expected}")))?;
            } else if record.seq != digest.seq + 1 {
                return Err(End::Failed(format!("journal gap at {}", digest.seq + 1)));
            } else {
                digest.seq = record.seq;
            }
            payload.extend_from_slice(record.payload);
        }
        if let Some(checkpoint) = checkpoint.filter(|c| c.seq == digest.seq) {
            // The pair of the journal stage's fold: the same records, the same chain.
            debug_assert_eq!(digest, checkpoint, "the journal stage's chain and the journal's records");
            digest = checkpoint;
        } else if checkpoint.is_some() {
            // The records up to the checkpoint are not all visible through this mapping yet.
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Ok(());
        }
        if digest.seq < first {
            // Committed but not yet visible through this mapping: look again shortly.
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Ok(());
        }
        let header = LogHeader {
            first_seq: first,
            last_seq: digest.seq,
            prev_digest: self.published.digest,
            digest: digest.digest,
            attest_every: self.config.attest_every,
            published_ns: wall_ns(),
        };
        let publish = Publish::build().payload(payload.freeze()).headers(header.to_headers(self.subject_seq));
        match publish_and_ack(context, &self.subjects.log, publish).await {
            Ok(ack) if !ack.duplicate => {
                self.published = digest;
                self.subject_seq = ack.sequence;
                self.report.messages += 1;
                self.report.records += header.records();
                self.acknowledge(digest.seq);
                Ok(())
            }
            // A copy JetStream already holds, or a refusal: read the head again. Our own
            // message, stored before a lost acknowledgement, is found there; anything else
            // is another writer's.
            Ok(_) | Err(PublishFailure::Refused(_)) => self.sync_head(stream).await,
            Err(PublishFailure::Other(e)) => Err(End::Failed(e)),
        }
    }

    /// Whether complete attestation lines wait in the log beyond what was published (`None`:
    /// the log cannot be read).
    fn attestations_pending(&self) -> Option<bool> {
        let len = std::fs::metadata(attestations_path(&self.config.dir)).map(|m| m.len()).unwrap_or(0);
        if len <= self.attest_offset {
            return Some(false);
        }
        let lines = self.read_attestation_lines().ok()?;
        Some(
            lines
                .iter()
                .any(|(_, a)| a.as_ref().is_some_and(|a| a.seq > self.attested_seq && a.seq <= self.published.seq)),
        )
    }

    /// The complete lines after `attest_offset`: each with its end offset and its parse.
    fn read_attestation_lines(&self) -> Result<Vec<(u64, Option<Attestation>)>, String> {
        let path = attestations_path(&self.config.dir);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(self.attest_offset))
            .and_then(|_| file.read_to_end(&mut text))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut lines = Vec::new();
        let mut offset = self.attest_offset;
        for line in text.split_inclusive(|&b| b == b'\n').take_while(|line| line.ends_with(b"\n")) {
            offset += line.len() as u64;
            lines.push((offset, parse_attestation(line)));
        }
        Ok(lines)
    }

    /// Publishes the attestations whose records the stream holds.
    async fn publish_attestations(&mut self, context: &jetstream::Context) -> Result<(), End> {
        for (end, attestation) in self.read_attestation_lines().map_err(End::Failed)? {
            let Some(attestation) = attestation else {
                self.attest_offset = end;
                continue;
            };
            if attestation.seq > self.published.seq {
                return Ok(());
            }
            if attestation.seq > self.attested_seq {
                let mut headers = HeaderMap::new();
                headers.insert(MSG_ID, format!("attest-{}", attestation.seq).as_str());
                let publish = Publish::build().payload(attestation.to_json().into()).headers(headers);
                match publish_and_ack(context, &self.subjects.attest, publish).await {
                    Ok(_) => {}
                    Err(PublishFailure::Refused(e) | PublishFailure::Other(e)) => return Err(End::Failed(e)),
                }
                self.attested_seq = attestation.seq;
                self.report.attestations += 1;
            }
            self.attest_offset = end;
        }
        Ok(())
    }
}

fn parse_attestation(bytes: &[u8]) -> Option<Attestation> {
    std::str::from_utf8(bytes).ok().and_then(|text| Attestation::from_json(text.trim_end()).ok())
}

/// Why a publish failed.
enum PublishFailure {
    /// JetStream refused it (wrong last sequence: another message was stored first).
    Refused(String),
    /// A timeout, a lost connection, another error.
    Other(String),
}

/// Publishes and waits for the acknowledgement.
async fn publish_and_ack(
    context: &jetstream::Context,
    subject: &str,
    publish: Publish,
) -> Result<PublishAck, PublishFailure> {
    let classify = |e: jetstream::context::PublishError| match e.kind() {
        PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId => {
            PublishFailure::Refused(format!("publish to {subject}: {e}"))
        }
        _ => PublishFailure::Other(format!("publish to {subject}: {e}")),
    };
    let ack = context.send_publish(subject.to_string(), publish).await.map_err(classify)?;
    ack.await.map_err(classify)
}
