//! Group commit in the journal stage: one commit covers everything the ring held, up to the
//! record cap and the time bound of `PipelineConfig`; an idle pipeline commits at once; the
//! durable seq the pipeline publishes never passes the last appended seq; and the output
//! stage tells its subscriber, once per pause, that what it released is all there is for now.

mod pipeline_support;

use std::time::Duration;

use pipeline_support::{config, direct, signed, through_pipeline, workload, Collect, Deadline};
use verex_engine::runtime::{
    MemorySink, Pipeline, PipelineConfig, RecordSink, SinkError, WaitMode, JOURNAL_POLL_SLOTS,
};
use verex_engine::{Engine, Genesis, Limits};

/// A memory sink that records the size of every commit group, optionally sleeps in each
/// append (a slow disk), and optionally claims more than it appended.
struct GroupSink {
    inner: MemorySink,
    groups: Vec<u64>,
    open_group: u64,
    append_sleep: Duration,
    overclaim: u64,
}

impl GroupSink {
    fn new(append_sleep: Duration, overclaim: u64) -> Self {
        Self { inner: MemorySink::with_capacity(1 << 12), groups: Vec::new(), open_group: 0, append_sleep, overclaim }
    }
}

impl RecordSink for GroupSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        if !self.append_sleep.is_zero() {
            std::thread::sleep(self.append_sleep);
        }
        self.open_group += 1;
        self.inner.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        if self.open_group > 0 {
            self.groups.push(std::mem::take(&mut self.open_group));
        }
        Ok(self.inner.last_seq() + self.overclaim)
    }
}

#[test]
fn a_commit_group_never_exceeds_the_record_cap() {
    let txs = signed(&workload(2_000));
    let reference = direct(&txs);
    let config = PipelineConfig {
        ring_slots: 4096,
        commit_max_records: 10,
        commit_max_delay: Duration::from_secs(1),
        ..config(WaitMode::Yielding)
    };
    let stopped = through_pipeline(&txs, GroupSink::new(Duration::ZERO, 0), Collect::default(), config);
    let groups = &stopped.sink.groups;
    assert_eq!(groups.iter().sum::<u64>(), txs.len() as u64, "every record is in exactly one group");
    assert!(groups.iter().all(|&records| records <= 10), "groups over the cap: {groups:?}");
    assert_eq!(stopped.subscriber.events, reference.events);
    assert_eq!(stopped.report.durable_seq, txs.len() as u64);
}

#[test]
fn a_commit_group_is_closed_by_its_time_bound() {
    // Appends take at least 20 µs each and the whole workload sits in the ring at once: without
    // the time bound the stage would append it all before one commit. With a 1 ms bound, a
    // group closes after the poll during which 1 ms passed: at most 1 ms / 20 µs + 1 records
    // before it, plus one poll.
    let txs = signed(&workload(1_500));
    let config = PipelineConfig {
        ring_slots: 4096,
        commit_max_records: u32::MAX,
        commit_max_delay: Duration::from_millis(1),
        ..config(WaitMode::Yielding)
    };
    let stopped = through_pipeline(&txs, GroupSink::new(Duration::from_micros(20), 0), Collect::default(), config);
    let groups = &stopped.sink.groups;
    assert_eq!(groups.iter().sum::<u64>(), txs.len() as u64);
    let bound = 1_000 / 20 + 1 + JOURNAL_POLL_SLOTS;
    assert!(groups.iter().all(|&records| records <= bound), "groups over {bound} records: {groups:?}");
    assert!(groups.len() >= txs.len() / bound as usize, "{} groups", groups.len());
}

#[test]
fn the_durable_seq_never_passes_the_appended_seq() {
    // A sink that claims 1,000 more records durable than it was given is not believed.
    let txs = signed(&workload(300));
    let config = PipelineConfig { ring_slots: 64, ..config(WaitMode::Yielding) };
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, GroupSink::new(Duration::ZERO, 1_000), Collect::default(), config).expect("start");
    for (k, (tx, ts)) in txs.iter().enumerate() {
        pipeline.submit(tx, *ts, k as u64).expect("submit");
        assert!(pipeline.durable_seq() <= pipeline.last_seq(), "durable {} > sequenced", pipeline.durable_seq());
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.report.durable_seq, txs.len() as u64);
    assert_eq!(stopped.report.released_seq, txs.len() as u64);
}

#[test]
fn an_idle_pipeline_commits_a_lone_tx_at_once() {
    // A huge cap and time bound: only the empty ring closes the group.
    let txs = signed(&workload(3));
    let config = PipelineConfig {
        commit_max_records: u32::MAX,
        commit_max_delay: verex_engine::runtime::MAX_COMMIT_DELAY,
        ..config(WaitMode::Yielding)
    };
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, GroupSink::new(Duration::ZERO, 0), Collect::default(), config).expect("start");
    for (k, (tx, ts)) in txs.iter().enumerate() {
        let seq = pipeline.submit(tx, *ts, k as u64).expect("submit");
        let deadline = Deadline::in_secs(10);
        while pipeline.released_seq() < seq {
            deadline.check("a lone tx was never released");
            std::thread::yield_now();
        }
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.sink.groups, vec![1; txs.len()], "one group per lone tx");
}

/// Counts what the output stage tells it: released txs, and idle calls after the last release.
#[derive(Clone, Default)]
struct IdleWatch {
    released: std::sync::Arc<std::sync::atomic::AtomicU64>,
    idles: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The released count at the last idle call.
    released_at_idle: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl verex_engine::runtime::Subscriber for IdleWatch {
    fn on_event(&mut self, _seq: u64, _event: &verex_engine::Event, _catalog: &verex_engine::catalog::Catalog) {}

    fn on_tx_end(&mut self, _end: &verex_engine::runtime::TxEnd) {
        self.released.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn on_idle(&mut self) {
        let released = self.released.load(std::sync::atomic::Ordering::Acquire);
        self.idles.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.released_at_idle.store(released, std::sync::atomic::Ordering::Release);
    }
}

#[test]
fn the_subscriber_hears_once_per_pause_that_everything_released_is_out() {
    use std::sync::atomic::Ordering;
    let txs = signed(&workload(3));
    let watch = IdleWatch::default();
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, pipeline_support::memory(), watch.clone(), config(WaitMode::Yielding)).expect("start");
    for (k, (tx, ts)) in txs.iter().enumerate() {
        pipeline.submit(tx, *ts, k as u64).expect("submit");
        // The pipeline stays open: each tx's release is followed by an idle call that sees it.
        let deadline = Deadline::in_secs(30);
        while watch.released_at_idle.load(Ordering::Acquire) < k as u64 + 1 {
            deadline.check("an idle call after the release");
            std::thread::yield_now();
        }
    }
    // Nothing more is released: no more idle calls, however long the stage polls.
    let idles = watch.idles.load(Ordering::Acquire);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(watch.idles.load(Ordering::Acquire), idles, "one idle call per pause, not one per poll");
    assert!(idles <= txs.len() as u64 * 2, "{idles} idle calls for {} txs", txs.len());
    pipeline.shutdown().expect("shutdown");
}
