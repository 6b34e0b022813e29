//! The ingress: verdicts in input order whatever the workers' timing, refusals with their
//! reason (in single and batch mode alike), and the whole path (JSON lines → workers →
//! sequencer → ring → journal ∥ engine → output) equal to the direct `TextRunner`.

mod pipeline_support;

use std::ops::ControlFlow;

use pipeline_support::{config, memory, signed_native, workload, Collect};
use verex_engine::runtime::{
    decode_json_line, feed, start_ingress, Decoded, IngressConfig, Pipeline, RefusalReason, SignedTxBytes, TryRecv,
    Verdict, VerifyMode, WaitMode,
};
use verex_engine::sequencer::Clock;
use verex_engine::signature_rule::SignatureFault;
use verex_engine::signing::SignatureError;
use verex_engine::text::runner::{LineOutcome, Signing, TextRunner};
use verex_engine::text::tx_json::render_tx;
use verex_engine::tx::SignedTx;
use verex_engine::{Engine, Genesis, Limits, RejectReason};

/// A signed tx with its own stamp, if any.
type Stamped = (SignedTx, Option<u64>);

fn ingress_config(workers: usize, chunk_inputs: usize, verify: VerifyMode) -> IngressConfig {
    IngressConfig { workers, chunk_inputs, min_chunk_inputs: chunk_inputs, queue_chunks: 2, verify }
}

/// A key that is not a curve point.
fn bad_key() -> [u8; 32] {
    (0u8..=255)
        .map(|b| {
            let mut key = [b; 32];
            key[31] &= 0x7f;
            key
        })
        .find(|key| ed25519_dalek::VerifyingKey::from_bytes(key).is_err())
        .expect("some byte pattern is off the curve")
}

/// The refusal a tampered input expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    BadKey,
    BadSignature,
}

fn refused_as(reason: &RefusalReason) -> Option<Expect> {
    match reason {
        RefusalReason::BadKey(_) => Some(Expect::BadKey),
        RefusalReason::BadSignature(_) => Some(Expect::BadSignature),
        RefusalReason::Decode(_) => None,
    }
}

/// The workload's signed txs with every 13th signature flipped and every 29th signer broken.
fn tampered(txs: &[Stamped]) -> (Vec<Stamped>, Vec<Option<Expect>>) {
    let mut expected = Vec::new();
    let out = txs
        .iter()
        .enumerate()
        .map(|(k, (tx, ts))| {
            let mut tx = *tx;
            if k % 29 == 28 {
                tx.tx.signer = bad_key();
                expected.push(Some(Expect::BadKey));
            } else if k % 13 == 12 {
                tx.signature[5] ^= 1;
                expected.push(Some(Expect::BadSignature));
            } else {
                expected.push(None);
            }
            (tx, *ts)
        })
        .collect();
    (out, expected)
}

fn verdicts(txs: &[Stamped], config: IngressConfig) -> Vec<Verdict> {
    let inputs: Vec<(usize, SignedTx, Option<u64>)> =
        txs.iter().enumerate().map(|(k, (tx, ts))| (k, *tx, *ts)).collect();
    let (mut sender, mut receiver) = start_ingress(config, |(k, tx, ts): (usize, SignedTx, Option<u64>)| {
        // Uneven work, so that workers finish out of order.
        if k % 7 == 0 {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        Ok(Decoded::from_signed(&tx, ts))
    })
    .expect("ingress");
    let feeder = std::thread::spawn(move || {
        for input in inputs {
            sender.send(input).expect("open");
        }
    });
    let mut out = Vec::new();
    while let Some(verdict) = receiver.recv() {
        out.push(verdict);
    }
    feeder.join().expect("feeder");
    out
}

#[test]
fn verdicts_come_back_in_input_order_with_their_reasons_in_both_modes() {
    let txs = signed_native(&workload(600));
    let (txs, expected) = tampered(&txs);
    // Fixed chunks, and chunks sized by load (sent early to an idle worker, grown to the
    // most while the workers are busy).
    let adaptive = IngressConfig { min_chunk_inputs: 4, ..ingress_config(2, 64, VerifyMode::Batch) };
    for config in [
        ingress_config(3, 5, VerifyMode::Single),
        ingress_config(2, 64, VerifyMode::Batch),
        adaptive,
        IngressConfig::for_this_machine(),
    ] {
        let out = verdicts(&txs, config);
        assert_eq!(out.len(), txs.len(), "{config:?}");
        for (k, (verdict, expected)) in out.iter().zip(&expected).enumerate() {
            assert_eq!(verdict.ticket(), k as u64, "{config:?}: in input order");
            match (verdict, expected) {
                (Verdict::Verified { tx, ts, .. }, None) => {
                    assert_eq!(*tx.bytes(), SignedTxBytes::encode(&txs[k].0), "{config:?}: the input's own tx");
                    assert_eq!(*ts, txs[k].1);
                }
                (Verdict::Refused { reason, .. }, Some(expected)) => {
                    assert_eq!(refused_as(reason), Some(*expected), "{config:?} #{k}: {reason}");
                }
                (verdict, expected) => panic!("{config:?} #{k}: got {verdict:?}, expected {expected:?}"),
            }
        }
    }
}

#[test]
fn decoder_errors_and_panics_refuse_one_input_each() {
    let lines = ["{\"op\":\"create_account\"}", "not json", "panic", ""];
    let (mut sender, mut receiver) = start_ingress(ingress_config(2, 1, VerifyMode::Single), |line: &'static str| {
        assert_ne!(line, "panic", "a decoder bug (expected by the test)");
        decode_json_line(line.to_string())
    })
    .expect("ingress");
    for line in lines {
        sender.send(line).expect("open");
    }
    sender.flush().expect("open");
    let first = loop {
        match receiver.try_recv() {
            Ok(verdict) => break verdict,
            Err(TryRecv::Empty) => std::thread::yield_now(),
            Err(TryRecv::Done) => panic!("done before the first verdict"),
        }
    };
    assert_eq!(first.ticket(), 0);
    drop(sender);
    let reasons: Vec<String> = std::iter::once(first)
        .chain(std::iter::from_fn(|| receiver.recv()))
        .map(|verdict| match verdict {
            Verdict::Refused { reason: RefusalReason::Decode(message), .. } => message,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(receiver.try_recv(), Err(TryRecv::Done));
    assert_eq!(reasons.len(), 4);
    assert!(reasons[0].contains("unsigned"), "{reasons:?}");
    assert!(!reasons[1].is_empty(), "{reasons:?}");
    assert_eq!(reasons[2], "the decoder panicked");
    let error = SignatureError { signer: [1; 32], fault: SignatureFault::KeySmallOrder };
    assert_eq!(RefusalReason::BadKey(error).reject_reason(), Some(RejectReason::BadSignature));
    assert_eq!(RefusalReason::Decode(String::new()).reject_reason(), None);
}

/// The CLI contract's stream: events and, in their place, refused lines.
fn text_runner_stream(lines: &[String]) -> (Vec<String>, [u8; 32]) {
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut runner = TextRunner::new(engine, Signing::Signed, Clock::Deterministic).expect("runner");
    let mut stream = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        match runner.run_line(line).expect("a signed line") {
            LineOutcome::Applied { events, .. } => stream.extend(events),
            LineOutcome::Refused(_) => stream.push(format!("note {k}")),
        }
    }
    (stream, runner.engine.state_hash())
}

/// The workload signed over its normalised text (`render_tx` writes decimals normalised, so a
/// tx signed over `"100.10"` would not verify once rendered as `"100.1"`).
fn signed_normalised(txs: usize) -> Vec<Stamped> {
    let normalised: Vec<String> =
        signed_native(&workload(txs)).iter().map(|(tx, ts)| render_tx(tx, None, *ts)).collect();
    signed_native(&normalised)
}

#[test]
fn json_lines_through_ingress_and_pipeline_equal_the_text_runner() {
    let txs = signed_normalised(1_500);
    let (txs, expected) = tampered(&txs);
    let lines: Vec<String> = txs.iter().map(|(tx, ts)| render_tx(tx, None, *ts)).collect();
    let (reference, reference_hash) = text_runner_stream(&lines);

    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, memory(), Collect::default(), config(WaitMode::Yielding)).expect("start");
    let (mut sender, mut receiver) =
        start_ingress(ingress_config(2, 16, VerifyMode::Single), decode_json_line).expect("ingress");
    let reader = std::thread::spawn(move || {
        for line in lines {
            sender.send(line).expect("open");
        }
    });
    let mut refused = Vec::new();
    let sequenced = feed(&mut receiver, &mut pipeline, |ticket, reason| {
        refused.push((ticket, reason.clone()));
        ControlFlow::Continue(())
    })
    .expect("not poisoned");
    reader.join().expect("reader");
    let stopped = pipeline.shutdown().expect("shutdown");

    let refusals = expected.iter().filter(|e| e.is_some()).count();
    assert_eq!(refused.len(), refusals);
    assert_eq!(sequenced as usize, txs.len() - refusals);
    assert_eq!(stopped.subscriber.stream, reference, "events and refusals in line order");
    assert_eq!(stopped.engine.state_hash(), reference_hash);
}

#[test]
fn feed_stops_where_the_caller_says() {
    let txs = signed_normalised(40);
    let mut lines: Vec<String> = txs.iter().map(|(tx, ts)| render_tx(tx, None, *ts)).collect();
    lines.insert(30, "{\"op\":\"no_such_op\"}".to_string());
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline =
        Pipeline::start(engine, memory(), Collect::default(), config(WaitMode::Yielding)).expect("start");
    let (mut sender, mut receiver) =
        start_ingress(ingress_config(2, 4, VerifyMode::Batch), decode_json_line).expect("ingress");
    // Send from another thread: the channels are bounded, so one thread that sends everything
    // before receiving anything would wait forever.
    let reader = std::thread::spawn(move || {
        for line in lines {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut stopped_at = None;
    let sequenced = feed(&mut receiver, &mut pipeline, |ticket, reason| {
        assert!(matches!(reason, RefusalReason::Decode(_)), "{reason:?}");
        stopped_at = Some(ticket);
        ControlFlow::Break(())
    })
    .expect("not poisoned");
    assert_eq!((sequenced, stopped_at), (30, Some(30)));
    drop(receiver);
    reader.join().expect("the reader stops once the ingress is closed");
    let stopped = pipeline.shutdown().expect("shutdown");
    assert_eq!(stopped.report.last_seq, 30, "the state covers the lines before the bad one");
    assert_eq!(stopped.report.released_seq, 30);
}

#[test]
fn dropping_the_receiver_first_does_not_hang() {
    let (mut sender, receiver) =
        start_ingress(ingress_config(2, 2, VerifyMode::Single), decode_json_line).expect("ingress");
    drop(receiver);
    let mut closed = false;
    for _ in 0..1_000 {
        if sender.send("{}".to_string()).is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the sender learns that the ingress is closed");
}
