//! The pipeline gives exactly what `Engine::apply` gives directly: the same events in the same
//! order with the same seqs, the same state hash, and the same record bytes journaled, with
//! either wait strategy.

mod pipeline_support;

use pipeline_support::{config, direct, direct_from, memory, signed, through_pipeline, workload, Collect, Deadline};
use verex_engine::runtime::{MemorySink, Pipeline, WaitMode};
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::{Engine, Genesis, Limits};

fn assert_equivalent(txs: usize, wait: WaitMode) {
    let mut lines = workload(txs);
    // Txs with their own stamps (development clock): a jump ahead, one back in time (stale),
    // one beyond 2^62 (invalid: the clock does not move), and lines after them without one.
    lines.push(r#"{"op":"tick","ts":1800000000000000000}"#.to_string());
    lines.push(r#"{"op":"create_account"}"#.to_string());
    lines.push(r#"{"op":"tick","ts":1700000000000000000}"#.to_string());
    lines.push(r#"{"op":"tick","ts":18446744073709551615}"#.to_string());
    lines.push(r#"{"op":"create_account"}"#.to_string());
    let txs = signed(&lines);
    let reference = direct(&txs);
    let stopped = through_pipeline(&txs, memory(), Collect::default(), config(wait));

    let n = txs.len() as u64;
    assert!(reference.rendered.iter().any(|e| e.contains("\"fill\"")), "the workload must trade");
    assert!(reference.rendered.iter().any(|e| e.contains("\"settlement\"")), "and settle perps");
    assert!(reference.rendered.iter().any(|e| e.contains("stale_ts")), "and see its own stamp");
    assert!(reference.rendered.iter().any(|e| e.contains("invalid_ts")), "and refuse an absurd one");
    assert!(
        reference.rendered.last().is_some_and(|e| e.contains("account_created")),
        "a jump and an absurd stamp do not block the lines after them: {:?}",
        reference.rendered.last()
    );
    assert_eq!(stopped.subscriber.events.len(), reference.events.len(), "{wait}: event count");
    assert_eq!(stopped.subscriber.events, reference.events, "{wait}: events and seqs");
    assert_eq!(stopped.subscriber.rendered, reference.rendered, "{wait}: rendered with the released catalog");
    assert_eq!(stopped.engine.state_hash(), reference.state_hash, "{wait}: state hash");
    assert_eq!(stopped.sink.records(), &reference.records[..], "{wait}: journaled bytes");
    let ends: Vec<u64> = stopped.subscriber.tx_ends.iter().map(|end| end.seq).collect();
    assert_eq!(ends, (1..=n).collect::<Vec<_>>(), "{wait}: one end per tx, in order");
    assert!(stopped.subscriber.tx_ends.iter().all(|end| end.tag == end.seq - 1), "tags pass through");
    let report = &stopped.report;
    assert!(report.poison.is_none(), "{report:?}");
    assert_eq!((report.last_seq, report.durable_seq, report.applied_seq, report.released_seq), (n, n, n, n));
    assert_eq!(report.withheld, 0);
}

#[test]
fn pipeline_equals_direct_apply_with_the_yielding_wait() {
    assert_equivalent(4_000, WaitMode::Yielding);
}

#[test]
fn pipeline_equals_direct_apply_with_busy_spin() {
    // Four spinning threads on a small machine: correct, only slow (time slices), so fewer txs.
    assert_equivalent(600, WaitMode::BusySpin);
}

#[test]
fn pipeline_equals_direct_apply_with_the_blocking_wait() {
    assert_equivalent(4_000, WaitMode::Blocking);
}

#[test]
fn blocking_stages_are_woken_not_left_to_time_out() {
    // One tx at a time, each waited for until its events are out: every stage parks between
    // txs and must be woken by the one handing it work (journal and engine by the sequencer,
    // output by the engine and the journal). A lost wake would cost a park timeout each.
    let txs = signed(&workload(300));
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, memory(), Collect::default(), config(WaitMode::Blocking)).expect("start");
    let deadline = Deadline::in_secs(20);
    for (tx, ts) in &txs {
        let seq = pipeline.submit(tx, *ts, 0).expect("submit");
        while pipeline.released_seq() < seq {
            deadline.check("a tx was never released");
            std::thread::yield_now();
        }
        // Let the stages fall asleep before the next tx.
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.engine.state_hash(), direct(&txs).state_hash);
    assert!(stopped.report.late_wakes <= 3, "{:?}", stopped.report);
}

#[test]
fn a_pipeline_resumes_after_the_engine_seq() {
    let txs = signed(&workload(600));
    let (head, tail) = txs.split_at(300);
    let reference = direct(&txs);
    // The engine as `verex run` would rebuild it from a journal holding the head.
    let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut buf = engine.event_buf();
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    for (tx, ts) in head {
        let record = sequencer.stamp(tx, *ts).expect("dev clock");
        engine.apply(record.verified(), &mut buf).expect("gap-free");
    }
    let resumed_reference = direct_from(engine.clone(), tail);
    let mut pipeline =
        Pipeline::start(engine, memory(), Collect::default(), config(WaitMode::Yielding)).expect("start");
    assert_eq!(pipeline.info().start_seq, head.len() as u64);
    for (tx, ts) in tail {
        pipeline.submit(tx, *ts, 0).expect("submit");
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.sink.first_seq(), head.len() as u64 + 1, "the journal continues after the head");
    assert_eq!(stopped.subscriber.events, resumed_reference.events);
    assert_eq!(stopped.engine.state_hash(), reference.state_hash);
}

#[test]
fn pinning_reports_an_unavailable_core_as_a_warning() {
    let txs = signed(&workload(50));
    let mut unavailable = config(WaitMode::Yielding);
    unavailable.engine_core = Some(100_000);
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, MemorySink::discarding(), Collect::default(), unavailable).expect("start");
    let info = pipeline.info().clone();
    assert_eq!(info.engine_pinned, None);
    assert!(info.warnings.iter().any(|w| w.contains("core 100000")), "{info}");
    assert!(info.to_string().contains("wait yielding"), "{info}");
    for (tx, ts) in &txs {
        pipeline.submit(tx, *ts, 0).expect("submit");
    }
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.engine.state_hash(), direct(&txs).state_hash);

    let mut core0 = config(WaitMode::Yielding);
    core0.engine_core = Some(0);
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let pipeline = Pipeline::start(engine, MemorySink::discarding(), Collect::default(), core0).expect("start");
    assert_eq!(pipeline.info().engine_pinned, Some(0), "{}", pipeline.info());
    assert!(pipeline.shutdown().expect("shutdown").report.poison.is_none());
}

/// The engine's core is usually one the process was started without (`isolcpus`, or
/// `taskset` on the housekeeping cores): pinning must ask the kernel, not the starting
/// thread's own mask.
#[test]
fn the_engine_is_pinned_to_a_core_its_starting_thread_may_not_use() {
    let cores = core_affinity::get_core_ids().expect("this platform lists cores");
    let (Some(&housekeeping), Some(&isolated)) = (cores.first(), cores.last()) else { panic!("no core") };
    assert!(cores.len() >= 2, "this test needs two cores (CI has two); found {}", cores.len());
    // A thread of its own, so that the narrowed mask does not outlive the test.
    std::thread::spawn(move || {
        assert!(core_affinity::set_for_current(housekeeping), "narrowing this thread to core {}", housekeeping.id);
        assert_eq!(core_affinity::get_core_ids().map(|ids| ids.len()), Some(1), "the starting thread sees one core");
        let mut pinned = config(WaitMode::Yielding);
        pinned.engine_core = Some(isolated.id);
        let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
        let pipeline = Pipeline::start(engine, MemorySink::discarding(), Collect::default(), pinned).expect("start");
        assert_eq!(pipeline.info().engine_pinned, Some(isolated.id), "{}", pipeline.info());
        assert!(pipeline.info().warnings.is_empty(), "{}", pipeline.info());
        assert!(pipeline.shutdown().expect("shutdown").report.poison.is_none());
    })
    .join()
    .expect("the pinning thread");
}

#[test]
fn an_empty_run_shuts_down_cleanly_and_dropping_a_pipeline_joins_it() {
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let pipeline = Pipeline::start(engine, memory(), Collect::default(), config(WaitMode::Yielding)).expect("start");
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.report.last_seq, 0);
    assert!(stopped.subscriber.events.is_empty());

    let txs = signed(&workload(20));
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, memory(), Collect::default(), config(WaitMode::Yielding)).expect("start");
    for (tx, ts) in &txs {
        pipeline.submit(tx, *ts, 0).expect("submit");
    }
    drop(pipeline);
}

#[test]
fn configs_out_of_range_are_refused() {
    for (ring, out, commit) in [(3, 1024, 1), (1, 1024, 1), (1 << 23, 1024, 1), (256, 1000, 1), (256, 1024, 0)] {
        let mut bad = config(WaitMode::Yielding);
        (bad.ring_slots, bad.output_slots, bad.commit_max_records) = (ring, out, commit);
        let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
        let error = Pipeline::start(engine, memory(), Collect::default(), bad).expect_err("refused");
        assert!(error.to_string().contains("invalid pipeline config"), "{error}");
    }
}
