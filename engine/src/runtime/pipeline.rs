//! The pipeline of SPEC section 2: sequencer → ring → (journal stage ∥ engine stage) → output.
//!
//! ```text
//!  submit ─► sequencer: seq + ts, record written in place into a ring slot
//!              │ input ring (disruptor, single producer, pre-allocated `Slot`s)
//!              ├──► journal stage: sink.append(seq, bytes); sink.commit() per group ─► durable_seq
//!              └──► engine stage (pinned): Engine::apply in place ─► events
//!                         │ output ring (pre-allocated `OutSlot`s)
//!                         ▼
//!                   output stage: subscriber gets a tx's events once durable_seq ≥ seq
//! ```
//!
//! The journal and engine stages consume the same slots in parallel; the sequencer reuses a
//! slot only after both are done with it (backpressure: [`Pipeline::submit`] waits,
//! [`Pipeline::try_submit`] returns [`TrySubmitError::Full`]). A failed append or commit
//! poisons the pipeline: `submit` returns [`SubmitError::Poisoned`], no event after the last
//! durable seq is ever released, and [`Pipeline::shutdown`] still drains and joins cleanly.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use disruptor::{build_single_producer, BusySpin, MultiConsumerBarrier, Producer, RingBufferFull, SingleProducer};

use super::query::Query;
use super::shared::{PoisonReason, Shared};
use super::sink::RecordSink;
use super::slot::{OutSlot, Slot, SlotKind};
use super::stages::{EngineStage, JournalStage, OutputStage};
use super::subscriber::Subscriber;
use super::wait::{Backoff, WaitMode};
use crate::record::{LayoutError, RecordLayout};
use crate::sequencer::{Clock, Sequencer, StampError};
use crate::tx::{SignedTx, SLOT_BYTES};
use crate::verified::VerifiedTx;
use crate::Engine;

/// Default input ring size: 16 Ki slots of [`SLOT_BYTES`] (8 MiB).
pub const DEFAULT_RING_SLOTS: usize = 1 << 14;
/// Default output ring size: 64 Ki events.
pub const DEFAULT_OUTPUT_SLOTS: usize = 1 << 16;
/// Smallest ring (either).
pub const MIN_RING_SLOTS: usize = 2;
/// Largest input ring: 4 Mi slots (2 GiB).
pub const MAX_RING_SLOTS: usize = 1 << 22;
/// Largest output ring.
pub const MAX_OUTPUT_SLOTS: usize = 1 << 24;
/// Default cap on the records of one commit group.
pub const DEFAULT_COMMIT_MAX_RECORDS: u32 = 8192;
/// Default time bound of one commit group: from its first append to the start of its commit.
pub const DEFAULT_COMMIT_MAX_DELAY: Duration = Duration::from_millis(2);
/// Largest allowed [`PipelineConfig::commit_max_delay`].
pub const MAX_COMMIT_DELAY: Duration = Duration::from_secs(1);

/// How to run the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Input ring slots: a power of two in `MIN_RING_SLOTS..=MAX_RING_SLOTS`.
    pub ring_slots: usize,
    /// Output ring slots (one event each): a power of two in `MIN_RING_SLOTS..=MAX_OUTPUT_SLOTS`.
    pub output_slots: usize,
    /// How idle stages wait.
    pub wait: WaitMode,
    /// Core to pin the engine stage to; an unavailable core is a warning, not an error.
    pub engine_core: Option<usize>,
    /// Where the sequencer's stamps come from.
    pub clock: Clock,
    /// Group commit's record cap: the journal stage appends everything the ring holds and
    /// commits once the ring is empty, or once the group holds this many records, or once
    /// [`PipelineConfig::commit_max_delay`] has passed since its first append. Idle, every
    /// record is committed at once; saturated, one commit covers a whole group.
    pub commit_max_records: u32,
    /// Group commit's time bound: a record's commit starts at most this long after the group's
    /// first append (plus the appends of one poll, at most `JOURNAL_POLL_SLOTS` records). The
    /// commit itself (an msync with `Durability::Batch`) takes what the disk takes on top.
    pub commit_max_delay: Duration,
}

impl PipelineConfig {
    /// Defaults for this machine: [`WaitMode::for_this_machine`] (busy-spin with a core per
    /// stage, yielding otherwise), and with busy-spin the engine stage pinned to the last core.
    #[must_use]
    pub fn for_this_machine(clock: Clock) -> Self {
        let wait = WaitMode::for_this_machine();
        let engine_core = match wait {
            WaitMode::BusySpin => core_affinity::get_core_ids().and_then(|ids| ids.last().map(|id| id.id)),
            WaitMode::Yielding | WaitMode::Blocking => None,
        };
        Self { wait, engine_core, ..Self::yielding(clock) }
    }

    /// Default sizes, the yielding wait, no pinning: for tests and small machines.
    #[must_use]
    pub fn yielding(clock: Clock) -> Self {
        Self {
            ring_slots: DEFAULT_RING_SLOTS,
            output_slots: DEFAULT_OUTPUT_SLOTS,
            wait: WaitMode::Yielding,
            engine_core: None,
            clock,
            commit_max_records: DEFAULT_COMMIT_MAX_RECORDS,
            commit_max_delay: DEFAULT_COMMIT_MAX_DELAY,
        }
    }

    /// Checks sizes against the limits.
    ///
    /// # Errors
    /// A message naming the first value out of range.
    pub fn validate(&self) -> Result<(), String> {
        let ring = |name: &str, slots: usize, max: usize| {
            if slots.is_power_of_two() && (MIN_RING_SLOTS..=max).contains(&slots) {
                Ok(())
            } else {
                Err(format!("{name} {slots} is not a power of two in {MIN_RING_SLOTS}..={max}"))
            }
        };
        ring("ring_slots", self.ring_slots, MAX_RING_SLOTS)?;
        ring("output_slots", self.output_slots, MAX_OUTPUT_SLOTS)?;
        if self.commit_max_records == 0 {
            return Err("commit_max_records must be at least 1".to_string());
        }
        if self.commit_max_delay > MAX_COMMIT_DELAY {
            return Err(format!(
                "commit_max_delay {:?} is longer than the limit {MAX_COMMIT_DELAY:?}",
                self.commit_max_delay
            ));
        }
        Ok(())
    }
}

/// What the pipeline runs with, for the operator to see at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineInfo {
    /// The configuration.
    pub config: PipelineConfig,
    /// The core the engine stage is pinned to, if pinning worked.
    pub engine_pinned: Option<usize>,
    /// The seq of the last tx before the first one this pipeline sequences.
    pub start_seq: u64,
    /// Problems that do not stop the pipeline (e.g. a core that cannot be pinned).
    pub warnings: Vec<String>,
}

impl core::fmt::Display for PipelineInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = &self.config;
        write!(f, "pipeline: wait {}, engine stage ", c.wait)?;
        match self.engine_pinned {
            Some(core) => write!(f, "pinned to core {core}")?,
            None => f.write_str("not pinned")?,
        }
        write!(
            f,
            ", ring {} × {SLOT_BYTES} B slots, output ring {} events, group commit of ≤ {} records or ≤ {} µs, \
             after seq {}",
            c.ring_slots,
            c.output_slots,
            c.commit_max_records,
            c.commit_max_delay.as_micros(),
            self.start_seq
        )?;
        for warning in &self.warnings {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

/// Why the pipeline did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is out of range.
    #[error("invalid pipeline config: {0}")]
    Config(String),
    /// The in-place record layout does not match the archive (never expected).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A stage thread could not be spawned.
    #[error("cannot spawn the {stage} stage thread: {source}")]
    Spawn {
        /// Which stage.
        stage: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a tx was not sequenced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The pipeline is poisoned and accepts nothing more (the reason is rendered here, and
    /// given in full by [`Pipeline::poison_reason`]).
    #[error("the pipeline is poisoned: {0}")]
    Poisoned(String),
    /// The tx carried its own stamp under the wall clock (nothing was sequenced).
    #[error(transparent)]
    Stamp(#[from] StampError),
    /// [`Pipeline::submit_signed`]: the signature does not pass the rule (nothing was
    /// sequenced).
    #[error(transparent)]
    Signature(#[from] crate::signing::SignatureError),
}

/// Why [`Pipeline::try_submit`] did not sequence a tx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySubmitError {
    /// The ring is full: try again later (nothing was sequenced).
    #[error("the ring is full")]
    Full,
    /// As [`SubmitError::Poisoned`].
    #[error("the pipeline is poisoned: {0}")]
    Poisoned(String),
    /// As [`SubmitError::Stamp`].
    #[error(transparent)]
    Stamp(#[from] StampError),
}

/// A stage thread died without being caught (a bug).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {stage} stage thread panicked")]
pub struct ShutdownError {
    /// Which stage.
    pub stage: &'static str,
}

/// What a stopped pipeline hands back.
pub struct Stopped<K, S> {
    /// The engine, after every tx it applied. If the pipeline was poisoned it may be ahead of
    /// the sink's durable seq: recover from the journal instead.
    pub engine: Engine,
    /// The sink, after its final commit.
    pub sink: K,
    /// The subscriber, after the last released event.
    pub subscriber: S,
    /// Counters and the poison, if any.
    pub report: StopReport,
}

/// Where each stage stopped.
#[derive(Debug)]
pub struct StopReport {
    /// The last seq sequenced.
    pub last_seq: u64,
    /// The last seq the sink made durable.
    pub durable_seq: u64,
    /// The last seq the engine applied.
    pub applied_seq: u64,
    /// The last seq whose events were all released.
    pub released_seq: u64,
    /// Events and notes never released (past the durable seq of a poisoned pipeline).
    pub withheld: u64,
    /// [`WaitMode::Blocking`] diagnostics: parks that ran out their timeout although work was
    /// waiting (a wake that came late or never). Expected 0, or a handful.
    pub late_wakes: u64,
    /// Why the pipeline was poisoned, if it was.
    pub poison: Option<PoisonReason>,
}

impl<K, S> core::fmt::Debug for Stopped<K, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stopped")
            .field("engine_seq", &self.engine.seq())
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

struct Threads<K, S> {
    journal: JoinHandle<K>,
    engine: JoinHandle<Engine>,
    output: JoinHandle<S>,
}

/// The sequencer handle of a running pipeline. Owned by one thread: the sequencer.
pub struct Pipeline<K, S> {
    producer: Option<SingleProducer<Slot, MultiConsumerBarrier>>,
    sequencer: Sequencer,
    layout: RecordLayout,
    shared: Arc<Shared>,
    epoch: Instant,
    threads: Option<Threads<K, S>>,
    info: PipelineInfo,
}

impl<K, S> core::fmt::Debug for Pipeline<K, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pipeline")
            .field("last_seq", &self.sequencer.last_seq())
            .field("shared", &self.shared)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

#[allow(clippy::disallowed_methods)]
fn epoch_now() -> Instant {
    // Latency bookkeeping of the sequencer (publish times), never part of a record.
    Instant::now()
}

/// Whether the engine stage can be pinned to `core`: tried on a short-lived thread of its own,
/// so that a caller can refuse a bad core before it opens anything.
///
/// # Errors
/// Why the kernel refused the core, as [`PipelineInfo::warnings`] would say it.
pub fn check_engine_core(core: usize) -> Result<(), String> {
    std::thread::spawn(move || pin_current_thread(core))
        .join()
        .unwrap_or_else(|_| Err(format!("engine stage not pinned: the check of core {core} failed")))
}

/// Cores a Linux CPU set can name (`CPU_SETSIZE`): a higher id cannot be asked for at all.
const CPU_SET_CORES: usize = 1024;

fn pin_current_thread(core: usize) -> Result<(), String> {
    // Asked of the kernel directly, not checked against this thread's current mask: the
    // engine's core is typically one the process was started without (`isolcpus`, `taskset`
    // on the housekeeping cores), and the kernel refuses only a core that is offline or
    // outside the cpuset.
    if core >= CPU_SET_CORES {
        return Err(format!("engine stage not pinned: core {core} is beyond a CPU set's {CPU_SET_CORES} cores"));
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(format!("engine stage not pinned: the kernel refused core {core} (offline, or outside this cpuset)"))
    }
}

fn spawn<T: Send + 'static>(
    stage: &'static str,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, StartError> {
    std::thread::Builder::new()
        .name(format!("verex-{stage}"))
        .spawn(body)
        .map_err(|source| StartError::Spawn { stage, source })
}

impl<K: RecordSink, S: Subscriber> Pipeline<K, S> {
    /// Starts the stages. The first tx gets seq `engine.seq() + 1`; the sink must hold every
    /// record up to `engine.seq()` already (a fresh journal with a fresh engine, or a journal
    /// the engine was rebuilt from), and they count as durable.
    ///
    /// # Errors
    /// [`StartError`] for a bad config or a thread that cannot be spawned.
    pub fn start(engine: Engine, sink: K, subscriber: S, config: PipelineConfig) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        let layout = RecordLayout::probe()?;
        let start_seq = engine.seq();
        let start_ts = engine.last_ts();
        let shared = Arc::new(Shared::new(start_seq, config.wait));
        let wait = config.wait;

        let (journal_poller, builder) =
            build_single_producer(config.ring_slots, Slot::empty, BusySpin).new_event_poller();
        let (engine_poller, builder) = builder.new_event_poller();
        let producer = builder.build();
        let (output_poller, out_builder) =
            build_single_producer(config.output_slots, OutSlot::empty, BusySpin).new_event_poller();
        let out = out_builder.build();
        let (catalogs_tx, catalogs_rx) = crossbeam::channel::unbounded();

        let output = OutputStage {
            subscriber,
            shared: Arc::clone(&shared),
            wait,
            catalog: Box::new(engine.catalog().clone()),
            catalogs: catalogs_rx,
            catalog_seq: start_seq,
            known_durable: start_seq,
            withheld: 0,
            released_since_idle: false,
        };
        let journal = JournalStage {
            sink,
            shared: Arc::clone(&shared),
            wait,
            commit_max_records: u64::from(config.commit_max_records),
            commit_max_delay: config.commit_max_delay,
            group_records: 0,
            group_started: None,
            appended: start_seq,
            durable: start_seq,
            failed: false,
        };
        let buf = engine.event_buf();
        let engine_stage = EngineStage {
            engine,
            buf,
            out,
            out_slots: config.output_slots,
            catalogs: catalogs_tx,
            shared: Arc::clone(&shared),
            wait,
            stopped: false,
        };
        let (pinned_tx, pinned_rx) = crossbeam::channel::bounded(1);
        let engine_core = config.engine_core;
        let output = spawn("output", move || output.run(output_poller))?;
        let journal = spawn("journal", move || journal.run(journal_poller))?;
        let engine = spawn("engine", move || {
            let pinned = engine_core.map(pin_current_thread);
            let _ = pinned_tx.send(pinned);
            engine_stage.run(engine_poller)
        })?;
        let mut info = PipelineInfo { config, engine_pinned: None, start_seq, warnings: Vec::new() };
        match pinned_rx.recv() {
            Ok(Some(Ok(()))) => info.engine_pinned = engine_core,
            Ok(Some(Err(warning))) => info.warnings.push(warning),
            Ok(None) | Err(_) => {}
        }
        Ok(Self {
            producer: Some(producer),
            sequencer: Sequencer::resume(start_seq, start_ts, config.clock),
            layout,
            shared,
            epoch: epoch_now(),
            threads: Some(Threads { journal, engine, output }),
            info,
        })
    }

    /// The wait strategy, pinning and sizes it runs with (print it at start).
    #[must_use]
    pub fn info(&self) -> &PipelineInfo {
        &self.info
    }

    /// The instant publish times ([`super::TxEnd::published_ns`]) count from.
    #[must_use]
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Sequences a verified tx, waiting while the ring is full. `ts` is the tx's own stamp,
    /// honoured only under [`Clock::Deterministic`] (development and tests); `tag` is passed
    /// through to the subscriber. Returns the tx's seq.
    ///
    /// # Errors
    /// [`SubmitError::Poisoned`], or [`SubmitError::Stamp`] for a `ts` under the wall clock:
    /// nothing was sequenced.
    pub fn submit(&mut self, tx: &VerifiedTx, ts: Option<u64>, tag: u64) -> Result<u64, SubmitError> {
        self.sequencer.admits(ts)?;
        let mut backoff = Backoff::new(self.info.config.wait);
        loop {
            self.check_poison().map_err(SubmitError::Poisoned)?;
            if self.publish(SlotKind::Tx, Some(tx), ts, tag).is_ok() {
                return Ok(self.sequencer.last_seq());
            }
            backoff.snooze();
        }
    }

    /// Sequences a verified tx if the ring has a free slot, without waiting.
    ///
    /// # Errors
    /// [`TrySubmitError::Full`] (nothing sequenced: try again), [`TrySubmitError::Poisoned`]
    /// or [`TrySubmitError::Stamp`].
    pub fn try_submit(&mut self, tx: &VerifiedTx, ts: Option<u64>, tag: u64) -> Result<u64, TrySubmitError> {
        self.sequencer.admits(ts)?;
        self.check_poison().map_err(TrySubmitError::Poisoned)?;
        match self.publish(SlotKind::Tx, Some(tx), ts, tag) {
            Ok(()) => Ok(self.sequencer.last_seq()),
            Err(RingBufferFull) => Err(TrySubmitError::Full),
        }
    }

    /// Verifies a native signed tx, then [`Pipeline::submit`]s it. Convenient, not fast: the
    /// signature is checked on the sequencer's thread (an ingress worker's job).
    ///
    /// # Errors
    /// [`SubmitError::Signature`] when the signature does not pass the rule; as
    /// [`Pipeline::submit`] otherwise.
    pub fn submit_signed(&mut self, signed: &SignedTx, ts: Option<u64>, tag: u64) -> Result<u64, SubmitError> {
        let verified = VerifiedTx::verify_signed(signed)?;
        self.submit(&verified, ts, tag)
    }

    /// Passes a note (e.g. "this input was refused: bad signature") to the subscriber in
    /// order: after the events of every tx sequenced before it. It takes a ring slot but no
    /// seq, and is neither journaled nor applied.
    ///
    /// # Errors
    /// [`SubmitError::Poisoned`].
    pub fn submit_note(&mut self, tag: u64) -> Result<(), SubmitError> {
        let mut backoff = Backoff::new(self.info.config.wait);
        loop {
            self.check_poison().map_err(SubmitError::Poisoned)?;
            if self.publish(SlotKind::Note, None, None, tag).is_ok() {
                return Ok(());
            }
            backoff.snooze();
        }
    }

    /// Asks the running engine a [`Query`], in order with the transactions: the engine stage
    /// answers it against the state after every tx sequenced before it, without stopping, and
    /// the subscriber gets the answer ([`Subscriber::on_query_item`], then
    /// [`Subscriber::on_query_end`]) after that tx's events. It takes a ring slot but no seq,
    /// and is neither journaled nor applied.
    ///
    /// # Errors
    /// [`SubmitError::Poisoned`].
    pub fn submit_query(&mut self, query: Query, tag: u64) -> Result<(), SubmitError> {
        let mut backoff = Backoff::new(self.info.config.wait);
        loop {
            self.check_poison().map_err(SubmitError::Poisoned)?;
            if self.publish_query(query, tag).is_ok() {
                return Ok(());
            }
            backoff.snooze();
        }
    }

    fn publish_query(&mut self, query: Query, tag: u64) -> Result<(), RingBufferFull> {
        let Some(producer) = self.producer.as_mut() else { return Err(RingBufferFull) };
        let after_seq = self.sequencer.last_seq();
        let epoch = self.epoch;
        producer.try_publish(|slot| {
            query.write(&mut slot.record.0);
            slot.seq = after_seq;
            slot.kind = SlotKind::Query;
            slot.tag = tag;
            slot.published_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        })?;
        self.shared.wake_input_consumers();
        Ok(())
    }

    fn check_poison(&self) -> Result<(), String> {
        if !self.shared.is_poisoned() {
            return Ok(());
        }
        Err(self.shared.reason().map_or_else(|| "unknown reason".to_string(), ToString::to_string))
    }

    /// Claims a slot and writes it; the seq is assigned only once a slot is claimed.
    #[inline]
    fn publish(
        &mut self,
        kind: SlotKind,
        tx: Option<&VerifiedTx>,
        ts: Option<u64>,
        tag: u64,
    ) -> Result<(), RingBufferFull> {
        let Some(producer) = self.producer.as_mut() else { return Err(RingBufferFull) };
        let sequencer = &mut self.sequencer;
        let layout = &self.layout;
        let epoch = self.epoch;
        producer.try_publish(|slot| {
            let published_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            // `submit` checked that the sequencer admits `ts`; were it refused, a note (no
            // seq, nothing applied) would take the slot.
            let stamped = tx.and_then(|tx| sequencer.next(ts).ok().map(|stamp| (tx, stamp)));
            match stamped {
                Some((tx, stamp)) => {
                    layout.write(&mut slot.record, stamp.seq, stamp.ts, tx.bytes());
                    slot.seq = stamp.seq;
                    slot.kind = kind;
                }
                None => {
                    slot.seq = sequencer.last_seq();
                    slot.kind = SlotKind::Note;
                }
            }
            slot.tag = tag;
            slot.published_ns = published_ns;
        })?;
        self.shared.wake_input_consumers();
        Ok(())
    }

    /// The last seq sequenced.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.sequencer.last_seq()
    }

    /// The last seq the sink made durable.
    #[must_use]
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable()
    }

    /// The last seq the engine applied.
    #[must_use]
    pub fn applied_seq(&self) -> u64 {
        self.shared.applied_seq.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The last seq whose events were all released to the subscriber.
    #[must_use]
    pub fn released_seq(&self) -> u64 {
        self.shared.released_seq.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether a failure stopped the pipeline.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }

    /// Why the pipeline was poisoned, if it was.
    #[must_use]
    pub fn poison_reason(&self) -> Option<&PoisonReason> {
        self.shared.reason()
    }

    /// Stops accepting, drains the ring (the journal stage appends and commits every
    /// sequenced record, then calls `finish` on the sink; the engine applies them; the output
    /// stage releases every durable event), joins the stages and hands back their parts.
    ///
    /// # Errors
    /// [`ShutdownError`] if a stage thread died (a bug: stage panics are caught).
    pub fn shutdown(mut self) -> Result<Stopped<K, S>, ShutdownError> {
        let last_seq = self.sequencer.last_seq();
        let Some(threads) = self.stop() else {
            // `stop` runs once; only `Drop` could have run it before, and it owns `self`.
            return Err(ShutdownError { stage: "pipeline" });
        };
        let sink = threads.journal.join().map_err(|_| ShutdownError { stage: "journal" })?;
        let engine = threads.engine.join().map_err(|_| ShutdownError { stage: "engine" })?;
        let subscriber = threads.output.join().map_err(|_| ShutdownError { stage: "output" })?;
        let shared = Arc::clone(&self.shared);
        drop(self);
        let report = StopReport {
            last_seq,
            durable_seq: shared.durable(),
            applied_seq: shared.applied_seq.load(std::sync::atomic::Ordering::Acquire),
            released_seq: shared.released_seq.load(std::sync::atomic::Ordering::Acquire),
            withheld: shared.withheld.load(std::sync::atomic::Ordering::Acquire),
            late_wakes: shared.journal_sleeper.late_wakes()
                + shared.engine_sleeper.late_wakes()
                + shared.output_sleeper.late_wakes(),
            poison: Arc::try_unwrap(shared).ok().and_then(Shared::into_reason),
        };
        Ok(Stopped { engine, sink, subscriber, report })
    }

    /// Drops the producer (the rings shut down once drained) and takes the thread handles.
    fn stop(&mut self) -> Option<Threads<K, S>> {
        drop(self.producer.take());
        self.shared.wake_input_consumers();
        self.threads.take()
    }
}

impl<K, S> Drop for Pipeline<K, S> {
    fn drop(&mut self) {
        drop(self.producer.take());
        self.shared.wake_input_consumers();
        if let Some(threads) = self.threads.take() {
            let _ = threads.journal.join();
            let _ = threads.engine.join();
            let _ = threads.output.join();
        }
    }
}
