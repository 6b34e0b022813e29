//! The pipeline under failure and pressure: a sink that fails poisons it (nothing past the
//! durable seq is released, `submit` refuses, shutdown is clean); events wait for a sink that
//! commits late; a full ring makes the producer wait (and `try_submit` say so).

mod pipeline_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pipeline_support::{config, direct, memory, signed, through_pipeline, workload, Collect, Deadline, GatedSink};
use verex_engine::runtime::{
    MemorySink, Pipeline, PoisonReason, RecordSink, SinkError, SubmitError, TrySubmitError, WaitMode,
};
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, Event, Genesis, Limits};

fn fresh_engine() -> Engine {
    Engine::new(Genesis::dev(), Limits::small()).expect("limits")
}

/// Submits every tx, then more copies of the last one until `submit` refuses (the journal
/// stage may still be behind the failing seq when the workload is all sequenced).
fn submit_until_poisoned<K: RecordSink>(
    pipeline: &mut Pipeline<K, Collect>,
    txs: &[(VerifiedTx, Option<u64>)],
) -> SubmitError {
    let deadline = Deadline::in_secs(20);
    for (k, (tx, ts)) in txs.iter().cycle().enumerate() {
        deadline.check("the pipeline never refused");
        if let Err(error) = pipeline.submit(tx, *ts, k as u64) {
            return error;
        }
    }
    unreachable!("cycle never ends")
}

fn assert_poisoned_at_durable_point(
    stopped: &verex_engine::runtime::Stopped<GatedSink, Collect>,
    all: &[(u64, Event)],
) {
    let report = &stopped.report;
    let durable = report.durable_seq;
    assert_eq!(durable, *stopped.sink.durable.lock().expect("lock"), "the durable seq the sink reported");
    let expected: Vec<(u64, Event)> = all.iter().copied().filter(|(seq, _)| *seq <= durable).collect();
    let released = &stopped.subscriber.events;
    assert_eq!(released.len(), expected.len(), "released up to seq {:?}, durable {durable}", released.last());
    assert_eq!(stopped.subscriber.events, expected, "exactly the events up to the durable seq are released");
    assert!(stopped.subscriber.early.is_empty(), "released before durable: {:?}", stopped.subscriber.early);
    assert_eq!(report.released_seq, durable);
    assert_eq!(stopped.sink.calls_after_failure, 0, "a failed sink is never called again");
}

#[test]
fn a_failed_append_poisons_the_pipeline() {
    failed_append_poisons(WaitMode::Yielding);
}

#[test]
fn a_failed_append_poisons_a_blocking_pipeline() {
    failed_append_poisons(WaitMode::Blocking);
}

fn failed_append_poisons(wait: WaitMode) {
    let fail_at = 700;
    let txs = signed(&workload(1_200));
    let reference = direct(&txs);
    let mut sink = GatedSink::new(1);
    sink.fail_append_at = Some(fail_at);
    let subscriber = Collect { durable: Some(Arc::clone(&sink.durable)), ..Collect::default() };
    let mut pipeline = Pipeline::start(fresh_engine(), sink, subscriber, config(wait)).expect("start");
    let error = submit_until_poisoned(&mut pipeline, &txs);
    assert!(error.to_string().contains(&format!("journal append of seq {fail_at} failed")), "{error}");
    assert!(pipeline.is_poisoned());
    assert!(matches!(pipeline.try_submit(&txs[0].0, None, 0), Err(TrySubmitError::Poisoned(_))));
    assert!(pipeline.submit_note(0).is_err(), "notes are refused too");
    let stopped = pipeline.shutdown().expect("a poisoned pipeline still shuts down cleanly");
    let report = &stopped.report;
    assert!(matches!(report.poison, Some(PoisonReason::Append { seq, .. }) if seq == fail_at), "{report:?}");
    assert!(report.durable_seq < fail_at, "{report:?}");
    assert_eq!(stopped.sink.inner.last_seq(), fail_at - 1, "nothing is appended after the failure");
    assert!(report.last_seq >= fail_at);
    assert_poisoned_at_durable_point(&stopped, &reference.events);
}

#[test]
fn a_failed_commit_poisons_the_pipeline_and_keeps_the_durable_point() {
    let txs = signed(&workload(1_200));
    let reference = direct(&txs);
    let mut sink = GatedSink::new(1);
    sink.fail_commit_after = Some(400);
    let subscriber = Collect { durable: Some(Arc::clone(&sink.durable)), ..Collect::default() };
    let mut pipeline = Pipeline::start(fresh_engine(), sink, subscriber, config(WaitMode::Yielding)).expect("start");
    let error = submit_until_poisoned(&mut pipeline, &txs);
    assert!(error.to_string().contains("injected msync failure"), "{error}");
    let stopped = pipeline.shutdown().expect("clean shutdown");
    let report = &stopped.report;
    let Some(PoisonReason::Commit { durable_seq, last_appended, .. }) = &report.poison else {
        panic!("expected a commit failure: {report:?}");
    };
    assert_eq!(*durable_seq, report.durable_seq);
    assert!(report.durable_seq <= 400 && *last_appended > 400, "{report:?}");
    // The engine stops at the durable seq once poisoned; what it applied beyond it before the
    // failure is withheld.
    assert!(report.applied_seq <= report.durable_seq || report.withheld > 0, "{report:?}");
    assert_poisoned_at_durable_point(&stopped, &reference.events);
}

#[test]
fn events_wait_until_their_tx_is_durable() {
    events_wait_for_durability(WaitMode::Yielding);
}

#[test]
fn events_wait_until_their_tx_is_durable_in_a_blocking_pipeline() {
    events_wait_for_durability(WaitMode::Blocking);
}

fn events_wait_for_durability(wait: WaitMode) {
    // The sink makes records durable only 7 at a time (the rest at `finish`), and reports
    // each durable point before returning it: the subscriber checks every released event.
    let txs = signed(&workload(1_500));
    let reference = direct(&txs);
    let sink = GatedSink::new(7);
    let subscriber = Collect { durable: Some(Arc::clone(&sink.durable)), ..Collect::default() };
    // An input ring that holds the whole workload: the journal is never blocked by the
    // engine, so the sink sees every record before shutdown.
    let config = verex_engine::runtime::PipelineConfig { ring_slots: 4096, ..config(wait) };
    let stopped = through_pipeline(&txs, sink, subscriber, config);
    assert!(stopped.subscriber.early.is_empty(), "released before durable: {:?}", stopped.subscriber.early);
    assert_eq!(stopped.subscriber.events, reference.events, "all released after the final commit");
    assert_eq!(stopped.report.durable_seq, txs.len() as u64);
    assert!(stopped.report.poison.is_none());
}

#[test]
fn a_gated_sink_holds_back_the_undurable_tail_until_shutdown() {
    let txs = signed(&workload(100));
    let n = txs.len() as u64;
    let sink = GatedSink::new(1_000);
    let durable = Arc::clone(&sink.durable);
    let mut pipeline =
        Pipeline::start(fresh_engine(), sink, Collect::default(), config(WaitMode::Yielding)).expect("start");
    for (k, (tx, ts)) in txs.iter().enumerate() {
        pipeline.submit(tx, *ts, k as u64).expect("submit");
    }
    let deadline = Deadline::in_secs(10);
    while pipeline.applied_seq() < n {
        deadline.check("the engine never caught up");
        std::thread::yield_now();
    }
    assert_eq!(*durable.lock().expect("lock"), 0);
    assert_eq!(pipeline.durable_seq(), 0);
    assert_eq!(pipeline.released_seq(), 0, "applied, not durable: nothing released");
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.report.released_seq, n, "the final commit released the tail");
}

/// A sink whose appends wait until the test opens its gate.
struct BlockingSink {
    open: Arc<AtomicBool>,
    inner: MemorySink,
}

impl RecordSink for BlockingSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        while !self.open.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        self.inner.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        self.inner.commit()
    }
}

#[test]
fn a_full_ring_makes_the_producer_wait() {
    full_ring_backpressure(WaitMode::Yielding);
}

#[test]
fn a_full_ring_makes_the_producer_of_a_blocking_pipeline_wait() {
    full_ring_backpressure(WaitMode::Blocking);
}

fn full_ring_backpressure(wait: WaitMode) {
    let txs = signed(&workload(400));
    let reference = direct(&txs);
    let open = Arc::new(AtomicBool::new(false));
    let sink = BlockingSink { open: Arc::clone(&open), inner: memory() };
    let tiny = verex_engine::runtime::PipelineConfig { ring_slots: 2, output_slots: 2, ..config(wait) };
    let mut pipeline = Pipeline::start(fresh_engine(), sink, Collect::default(), tiny).expect("start");
    // The journal stage holds slot 1 (blocked in append); one more fits; then the ring is full.
    let mut accepted = 0;
    let full = loop {
        match pipeline.try_submit(&txs[accepted].0, txs[accepted].1, accepted as u64) {
            Ok(seq) => {
                accepted += 1;
                assert_eq!(seq, accepted as u64);
                assert!(accepted <= 2, "a 2-slot ring took {accepted} txs");
            }
            Err(error) => break error,
        }
    };
    assert_eq!(full, TrySubmitError::Full);
    assert_eq!(pipeline.last_seq(), accepted as u64, "a refused try consumes no seq");
    assert_eq!(pipeline.released_seq(), 0);
    open.store(true, Ordering::Release);
    for (k, (tx, ts)) in txs.iter().enumerate().skip(accepted) {
        pipeline.submit(tx, *ts, k as u64).expect("submit waits, then succeeds");
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.subscriber.events, reference.events, "a tiny ring changes nothing but speed");
    assert_eq!(stopped.engine.state_hash(), reference.state_hash);
    assert_eq!(stopped.sink.inner.records(), &reference.records[..]);
}

/// A subscriber that panics on the `n`th event.
struct Panicky {
    left: u32,
}

impl verex_engine::runtime::Subscriber for Panicky {
    fn on_event(&mut self, _seq: u64, _event: &Event, _catalog: &verex_engine::catalog::Catalog) {
        self.left = self.left.checked_sub(1).unwrap_or_else(|| panic!("subscriber bug (expected by the test)"));
    }
}

#[test]
fn a_panicking_subscriber_poisons_the_pipeline_without_hanging_it() {
    let txs = signed(&workload(300));
    let tiny = verex_engine::runtime::PipelineConfig { output_slots: 4, ..config(WaitMode::Yielding) };
    let mut pipeline = Pipeline::start(fresh_engine(), memory(), Panicky { left: 50 }, tiny).expect("start");
    let mut refused = false;
    for (tx, ts) in txs.iter().cycle().take(5_000) {
        if pipeline.submit(tx, *ts, 0).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "submit refuses once the output stage died");
    let stopped = pipeline.shutdown().expect("the panic was caught");
    assert!(
        matches!(stopped.report.poison, Some(PoisonReason::Panicked { stage: "output", .. })),
        "{:?}",
        stopped.report
    );
}

/// Issue 11, case 8: the library applied a tx with an all-zero signature given to
/// `Pipeline::submit_signed`. Now only a `VerifiedTx` is sequenced, and `submit_signed`
/// verifies first: a forged tx is refused and nothing is sequenced, journaled or applied.
#[test]
fn an_unverified_tx_cannot_enter_the_pipeline() {
    use verex_engine::signature_rule::SignatureFault;
    use verex_engine::signing::{dev_account_key, dev_role_key, Role};
    use verex_engine::tx::{AddAsset, Dec, Deposit, Op, SignedTx, Symbol, Tx};

    let mut pipeline =
        Pipeline::start(fresh_engine(), memory(), Collect::default(), config(WaitMode::Yielding)).expect("start");
    let usdc = Symbol::new("USDC").expect("symbol");
    let admin = VerifiedTx::sign(
        Tx { signer: [0; 32], nonce: 1, account: 0, op: Op::AddAsset(AddAsset::new(usdc, 6)) },
        &dev_role_key(Role::Admin),
    );
    pipeline.submit(&admin, None, 0).expect("a verified tx is sequenced");
    // A deposit that claims to come from custody, with an all-zero signature.
    let deposit = Op::Deposit(Deposit { account: 0, asset: usdc, amount: Dec::new(1_000_000, 0), chain_ref: [0; 32] });
    let custody = dev_role_key(Role::Custody).verifying_key().to_bytes();
    let forged = SignedTx { tx: Tx { signer: custody, nonce: 1, account: 0, op: deposit }, signature: [0; 64] };
    match pipeline.submit_signed(&forged, None, 1) {
        Err(SubmitError::Signature(error)) => assert_eq!(error.fault, SignatureFault::RSmallOrder),
        other => panic!("a zero signature must be refused, got {other:?}"),
    }
    // A weak key (the identity point) with a constant signature that verifies for every
    // message under a lax rule: refused as a weak key.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let mut constant = [0u8; 64];
    constant[0] = 1;
    let create = SignedTx { tx: Tx { signer: weak, nonce: 1, account: 0, op: Op::CreateAccount }, signature: constant };
    match pipeline.submit_signed(&create, None, 2) {
        Err(SubmitError::Signature(error)) => assert_eq!(error.fault, SignatureFault::KeySmallOrder),
        other => panic!("a weak key must be refused, got {other:?}"),
    }
    let honest = Tx { signer: [0; 32], nonce: 1, account: 0, op: Op::CreateAccount };
    let honest = VerifiedTx::sign(honest, &dev_account_key(1));
    pipeline.submit(&honest, None, 3).expect("sequenced");
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.sink.records().len(), 2, "only the two verified txs were journaled");
    assert_eq!(stopped.engine.seq(), 2);
    assert_eq!(stopped.engine.supply(0), 0, "the forged deposit credited nothing");
}

/// A production pipeline (wall clock) refuses a tx's own time stamp: the clock is the
/// sequencer's (issue 11, case 2).
#[test]
fn a_wall_clock_pipeline_refuses_a_client_time_stamp() {
    use verex_engine::sequencer::{Clock, StampError};
    use verex_engine::signing::dev_account_key;
    use verex_engine::tx::{Op, Tx};

    let wall = verex_engine::runtime::PipelineConfig { clock: Clock::Wall, ..config(WaitMode::Yielding) };
    let mut pipeline = Pipeline::start(fresh_engine(), memory(), Collect::default(), wall).expect("start");
    let tx = VerifiedTx::sign(Tx { signer: [0; 32], nonce: 1, account: 0, op: Op::CreateAccount }, &dev_account_key(1));
    assert_eq!(pipeline.submit(&tx, Some(u64::MAX), 0), Err(SubmitError::Stamp(StampError::ClientTs(u64::MAX))));
    assert_eq!(pipeline.submit(&tx, None, 1), Ok(1), "nothing was sequenced for the refused one");
    let stopped = pipeline.shutdown().expect("shutdown");
    assert!(stopped.engine.last_ts() < verex_engine::sequencer::MAX_TS_NS);
    assert_eq!(stopped.engine.account_count(), 1);
}
