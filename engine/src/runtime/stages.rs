//! The three consumer stages, each on its own thread: journal, engine, output.
//!
//! Each stage polls its ring with a `disruptor` event poller, handles every available slot,
//! and waits with its [`Backoff`] when there is none. A stage never stops consuming before
//! shutdown, even after a failure (it then discards): the sequencer and the stage upstream can
//! never block on a dead consumer. A panic inside a stage is caught, poisons the pipeline, and
//! the stage drains its ring until shutdown.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use disruptor::{EventPoller, Polling, Producer, SingleConsumerBarrier, SingleProducer, SingleProducerBarrier};

use super::shared::{PoisonReason, Shared};
use super::sink::RecordSink;
use super::slot::{OutItem, OutSlot, Slot, SlotKind};
use super::subscriber::{Subscriber, TxEnd};
use super::wait::{Backoff, WaitMode};
use crate::catalog::Catalog;
use crate::events::{Event, EventBuf};
use crate::Engine;

/// Most input slots the engine stage takes per poll: its progress is published to the
/// sequencer at least this often.
pub const ENGINE_POLL_SLOTS: u64 = 64;
/// Most output slots the output stage takes per poll.
pub const OUTPUT_POLL_SLOTS: u64 = 256;
/// Most input slots the journal stage takes per poll: it hands slots back to the sequencer
/// at least this often, whatever the size of the group it is building for one commit.
pub const JOURNAL_POLL_SLOTS: u64 = 256;

pub(crate) type InputPoller = EventPoller<Slot, SingleProducerBarrier>;
pub(crate) type OutputPoller = EventPoller<OutSlot, SingleProducerBarrier>;
pub(crate) type OutputProducer = SingleProducer<OutSlot, SingleConsumerBarrier>;

/// The journal stage's clock: the start of a commit group, for its time bound (never part of a
/// record, and not on the engine stage).
#[allow(clippy::disallowed_methods)]
fn clock_now() -> Instant {
    Instant::now()
}

/// Consumes and discards every remaining slot until the producer shuts the ring down.
fn drain<E>(poller: &mut EventPoller<E, SingleProducerBarrier>, wait: WaitMode) {
    let mut backoff = Backoff::new(wait);
    loop {
        match poller.poll() {
            Ok(guard) => {
                drop(guard);
                backoff.reset();
            }
            Err(Polling::NoEvents) => backoff.snooze(),
            Err(Polling::Shutdown) => return,
        }
    }
}

/// Appends records to the sink, group-commits them, publishes the durable seq.
///
/// Group commit: the stage appends everything the ring holds, [`JOURNAL_POLL_SLOTS`] at a
/// time, and commits once the ring is empty, or once `commit_max_records` records or
/// `commit_max_delay` have gone by since the group's first append, whichever comes first. Idle,
/// a group is one record and commits at once; under load one commit (one msync with
/// `Durability::Batch`) covers everything that arrived during the previous one.
pub(crate) struct JournalStage<K> {
    pub(crate) sink: K,
    pub(crate) shared: Arc<Shared>,
    pub(crate) wait: WaitMode,
    pub(crate) commit_max_records: u64,
    pub(crate) commit_max_delay: Duration,
    /// Records appended since the last commit.
    pub(crate) group_records: u64,
    /// When the group's first record was appended (its time bound runs from here).
    pub(crate) group_started: Option<Instant>,
    /// Last seq appended.
    pub(crate) appended: u64,
    /// Last seq the sink reported durable.
    pub(crate) durable: u64,
    /// The sink failed: append and commit no more.
    pub(crate) failed: bool,
}

impl<K: RecordSink> JournalStage<K> {
    pub(crate) fn run(mut self, mut poller: InputPoller) -> K {
        self.shared.journal_sleeper.register_current_thread();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.pump(&mut poller)));
        if outcome.is_err() {
            self.failed = true;
            self.shared.poison(PoisonReason::Panicked { stage: "journal", seq: self.appended + 1 });
            drain(&mut poller, self.wait);
        }
        if !self.failed {
            match self.sink.finish() {
                Ok(durable) => self.publish_durable(durable),
                Err(error) => self.fail_commit(error),
            }
        }
        self.shared.set_journal_done();
        self.sink
    }

    fn pump(&mut self, poller: &mut InputPoller) {
        let mut backoff = Backoff::new(self.wait);
        loop {
            // Never past the cap: the group is committed as soon as it reaches it.
            let room = self.commit_max_records.saturating_sub(self.group_records).clamp(1, JOURNAL_POLL_SLOTS);
            match poller.take(room) {
                Ok(mut guard) => {
                    if self.group_started.is_none() {
                        self.group_started = Some(clock_now());
                    }
                    for slot in &mut guard {
                        self.append(slot);
                    }
                    // Releases the slots to the sequencer before the (slow) commit.
                    drop(guard);
                    if self.group_is_due() {
                        self.commit();
                    }
                    backoff.reset();
                    continue;
                }
                Err(Polling::NoEvents) => {}
                Err(Polling::Shutdown) => return,
            }
            if self.durable < self.appended {
                self.commit();
            }
            backoff.idle(&self.shared.journal_sleeper, || poller.has_available());
        }
    }

    #[inline]
    fn append(&mut self, slot: &Slot) {
        if self.failed || slot.kind != SlotKind::Tx {
            return;
        }
        debug_assert_eq!(slot.seq, self.appended + 1, "the sequencer's seqs are gap-free");
        match self.sink.append(slot.seq, &slot.record.0) {
            Ok(()) => {
                self.appended = slot.seq;
                self.group_records += 1;
            }
            Err(error) => {
                self.failed = true;
                self.shared.poison(PoisonReason::Append { seq: slot.seq, error });
            }
        }
    }

    /// Whether the group has reached its record cap or its time bound.
    fn group_is_due(&self) -> bool {
        self.group_records >= self.commit_max_records
            || self.group_started.is_some_and(|started| started.elapsed() >= self.commit_max_delay)
    }

    fn commit(&mut self) {
        self.group_records = 0;
        self.group_started = None;
        if self.failed || self.durable == self.appended {
            return;
        }
        match self.sink.commit() {
            Ok(durable) => self.publish_durable(durable),
            Err(error) => self.fail_commit(error),
        }
    }

    fn publish_durable(&mut self, durable: u64) {
        // A sink reporting more than was appended, or going backwards, is not trusted.
        let durable = durable.min(self.appended).max(self.durable);
        self.durable = durable;
        self.shared.durable_seq.store(durable, Ordering::Release);
        self.shared.wake_output();
    }

    #[cold]
    fn fail_commit(&mut self, error: super::sink::SinkError) {
        self.failed = true;
        let reason = PoisonReason::Commit { last_appended: self.appended, durable_seq: self.durable, error };
        self.shared.poison(reason);
    }
}

/// Applies records to the engine and publishes their events into the output ring.
///
/// Hot path: `Engine::apply` into a pre-allocated `EventBuf`, a copy of each event into a
/// pre-allocated output slot, a few atomic stores. No allocation, lock, log or system call,
/// except (a) waiting on a full output ring with the yielding strategy, and (b) a listing
/// (an admin tx, not order flow), which sends the output stage a copy of the catalog.
pub(crate) struct EngineStage {
    pub(crate) engine: Engine,
    pub(crate) buf: EventBuf,
    pub(crate) out: OutputProducer,
    pub(crate) out_slots: usize,
    pub(crate) catalogs: Sender<Box<Catalog>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) wait: WaitMode,
    /// The engine failed, or the pipeline was poisoned and this tx is past the durable seq:
    /// apply no more.
    pub(crate) stopped: bool,
}

/// What the output slots of one tx (or note) repeat.
#[derive(Clone, Copy)]
struct OutMeta {
    seq: u64,
    tag: u64,
    published_ns: u64,
    listing: bool,
}

impl EngineStage {
    pub(crate) fn run(mut self, mut poller: InputPoller) -> Engine {
        self.shared.engine_sleeper.register_current_thread();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.pump(&mut poller)));
        if outcome.is_err() {
            let seq = self.engine.seq() + 1;
            self.shared.poison(PoisonReason::Panicked { stage: "engine", seq });
            drain(&mut poller, self.wait);
        }
        let Self { engine, out, shared, .. } = self;
        // Dropping the producer shuts the output ring down once drained.
        drop(out);
        shared.wake_output();
        engine
    }

    fn pump(&mut self, poller: &mut InputPoller) {
        let mut backoff = Backoff::new(self.wait);
        loop {
            match poller.take(ENGINE_POLL_SLOTS) {
                Ok(mut guard) => {
                    for slot in &mut guard {
                        self.handle(slot);
                    }
                    backoff.reset();
                    continue;
                }
                Err(Polling::NoEvents) => {}
                Err(Polling::Shutdown) => return,
            }
            backoff.idle(&self.shared.engine_sleeper, || poller.has_available());
        }
    }

    #[inline]
    fn handle(&mut self, slot: &Slot) {
        if self.stopped {
            return;
        }
        if self.shared.is_poisoned() && slot.seq > self.shared.durable() {
            // After a journal failure the durable seq is final: txs up to it are in the
            // journal and their events are still released; nothing after it is applied.
            self.stopped = true;
            return;
        }
        let meta = OutMeta { seq: slot.seq, tag: slot.tag, published_ns: slot.published_ns, listing: false };
        if slot.kind == SlotKind::Note {
            self.publish(meta, &[], OutItem::Note);
            self.shared.wake_output();
            return;
        }
        if slot.kind == SlotKind::Query {
            self.answer(slot, meta);
            self.shared.wake_output();
            return;
        }
        debug_assert!(crate::record::access_record(&slot.record.0).is_ok(), "the sequencer writes valid records");
        // The sequencer fills tx slots only from a `VerifiedTx` (`Pipeline::submit`).
        let record = crate::verified::VerifiedRecord::from_verified_slot(slot.record.archived());
        if let Err(error) = self.engine.apply(record, &mut self.buf) {
            self.stop(PoisonReason::Engine { seq: slot.seq, error });
            return;
        }
        self.shared.applied_seq.store(slot.seq, Ordering::Release);
        if self.buf.overflowed() {
            self.stop(PoisonReason::EventOverflow { seq: slot.seq });
            return;
        }
        let listing =
            self.buf.events().iter().any(|e| matches!(e, Event::AssetAdded { .. } | Event::MarketAdded { .. }));
        if listing {
            self.send_catalog();
        }
        let events = u32::try_from(self.buf.events().len()).unwrap_or(u32::MAX);
        let meta = OutMeta { listing, ..meta };
        // Split borrows: the events stay in `buf` while `out` publishes them.
        let Self { buf, out, out_slots, wait, .. } = self;
        publish_events(out, *out_slots, *wait, meta, buf.events(), OutItem::TxEnd { events });
        self.shared.wake_output();
    }

    fn publish(&mut self, meta: OutMeta, events: &[Event], last: OutItem) {
        publish_events(&mut self.out, self.out_slots, self.wait, meta, events, last);
    }

    /// Answers a query slot against the state after the tx before it, item by item, into
    /// the output ring (no allocation: the engine's iterators and pre-allocated slots).
    fn answer(&mut self, slot: &Slot, meta: OutMeta) {
        let Self { engine, out, wait, .. } = self;
        if let Some(query) = super::Query::read(&slot.record.0) {
            query.answer(engine, |item| publish_one(out, *wait, meta, OutItem::Query(item)));
        }
        publish_one(out, *wait, meta, OutItem::QueryEnd);
    }

    #[cold]
    fn send_catalog(&mut self) {
        // A listing allocates in the engine already; this copy is the output stage's view.
        let _ = self.catalogs.send(Box::new(self.engine.catalog().clone()));
    }

    #[cold]
    fn stop(&mut self, reason: PoisonReason) {
        self.stopped = true;
        self.shared.poison(reason);
    }
}

/// Publishes one item into the output ring, waiting while it is full.
fn publish_one(out: &mut OutputProducer, wait: WaitMode, meta: OutMeta, item: OutItem) {
    let mut backoff = Backoff::new(wait);
    loop {
        let published = out.try_publish(|slot| {
            *slot = OutSlot { seq: meta.seq, tag: meta.tag, published_ns: meta.published_ns, listing: false, item };
        });
        if published.is_ok() {
            return;
        }
        backoff.snooze();
    }
}

/// Publishes `events` then `last` into the output ring, in as few batches as the free slots
/// allow, waiting while the ring is full.
fn publish_events(
    out: &mut OutputProducer,
    out_slots: usize,
    wait: WaitMode,
    meta: OutMeta,
    events: &[Event],
    last: OutItem,
) {
    let total = events.len() + 1;
    let mut next = 0;
    let mut want = total.min(out_slots);
    let mut backoff = Backoff::new(wait);
    while next < total {
        let first = next;
        let published = out.try_batch_publish(want, |slots| {
            for (k, slot) in slots.enumerate() {
                let item = events.get(first + k).map_or(last, |event| OutItem::Event(*event));
                *slot = OutSlot {
                    seq: meta.seq,
                    tag: meta.tag,
                    published_ns: meta.published_ns,
                    listing: meta.listing,
                    item,
                };
            }
        });
        match published {
            Ok(_) => {
                next += want;
                want = (total - next).min(out_slots);
                backoff.reset();
            }
            Err(disruptor::MissingFreeSlots(missing)) => {
                let fits = want.saturating_sub(usize::try_from(missing).unwrap_or(usize::MAX));
                if fits > 0 {
                    want = fits;
                } else {
                    backoff.snooze();
                }
            }
        }
    }
}

/// Releases events to the subscriber once their tx is durable.
pub(crate) struct OutputStage<S> {
    pub(crate) subscriber: S,
    pub(crate) shared: Arc<Shared>,
    pub(crate) wait: WaitMode,
    pub(crate) catalog: Box<Catalog>,
    pub(crate) catalogs: Receiver<Box<Catalog>>,
    /// The seq whose listing `catalog` reflects.
    pub(crate) catalog_seq: u64,
    /// The durable seq last read.
    pub(crate) known_durable: u64,
    /// Items withheld so far.
    pub(crate) withheld: u64,
    /// Something was released since the subscriber was last told the stage is idle.
    pub(crate) released_since_idle: bool,
}

impl<S: Subscriber> OutputStage<S> {
    pub(crate) fn run(mut self, mut poller: OutputPoller) -> S {
        self.shared.output_sleeper.register_current_thread();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.pump(&mut poller)));
        if outcome.is_err() {
            let seq = self.shared.released_seq.load(Ordering::Relaxed) + 1;
            self.shared.poison(PoisonReason::Panicked { stage: "output", seq });
            drain(&mut poller, self.wait);
        }
        self.subscriber
    }

    fn pump(&mut self, poller: &mut OutputPoller) {
        let mut backoff = Backoff::new(self.wait);
        loop {
            match poller.take(OUTPUT_POLL_SLOTS) {
                Ok(mut guard) => {
                    for slot in &mut guard {
                        self.handle(slot);
                    }
                    backoff.reset();
                    continue;
                }
                Err(Polling::NoEvents) => {}
                Err(Polling::Shutdown) => return,
            }
            self.tell_idle();
            backoff.idle(&self.shared.output_sleeper, || poller.has_available());
        }
    }

    #[inline]
    fn handle(&mut self, slot: &OutSlot) {
        if slot.seq > self.known_durable {
            self.known_durable = self.await_durable(slot.seq);
        }
        if slot.seq > self.known_durable {
            // Never durable (poisoned, or the sink's final commit fell short): never released.
            self.withheld += 1;
            self.shared.withheld.store(self.withheld, Ordering::Release);
            return;
        }
        if slot.listing && slot.seq != self.catalog_seq {
            if let Ok(catalog) = self.catalogs.recv() {
                self.catalog = catalog;
            }
            self.catalog_seq = slot.seq;
        }
        self.released_since_idle = true;
        match slot.item {
            OutItem::Event(event) => self.subscriber.on_event(slot.seq, &event, &self.catalog),
            OutItem::TxEnd { events } => {
                let end = TxEnd { seq: slot.seq, tag: slot.tag, published_ns: slot.published_ns, events };
                self.subscriber.on_tx_end(&end);
                self.shared.released_seq.store(slot.seq, Ordering::Release);
            }
            OutItem::Note => self.subscriber.on_note(slot.tag, slot.seq),
            OutItem::Query(item) => self.subscriber.on_query_item(slot.tag, slot.seq, &item, &self.catalog),
            OutItem::QueryEnd => self.subscriber.on_query_end(slot.tag, slot.seq),
        }
    }

    /// Tells the subscriber the stage is about to wait, once per pause after a release.
    fn tell_idle(&mut self) {
        if std::mem::take(&mut self.released_since_idle) {
            self.subscriber.on_idle();
        }
    }

    /// Waits until `seq` is durable or never will be; returns the durable seq.
    fn await_durable(&mut self, seq: u64) -> u64 {
        if self.shared.durable() < seq {
            // What is released so far goes out before the wait for the next commit.
            self.tell_idle();
        }
        let mut backoff = Backoff::new(self.wait);
        loop {
            let durable = self.shared.durable();
            if durable >= seq {
                return durable;
            }
            if self.shared.is_poisoned() || self.shared.journal_done() {
                // `journal_done` is set after the final durable store: read it again.
                return self.shared.durable();
            }
            let shared = &self.shared;
            backoff.idle(&shared.output_sleeper, || {
                shared.durable() >= seq || shared.is_poisoned() || shared.journal_done()
            });
        }
    }
}
