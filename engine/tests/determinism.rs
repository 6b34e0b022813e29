//! Determinism: the same transactions give byte-identical events and the same state hash,
//! whether run twice in one process, from a clone, or from records decoded back from bytes.
//! (The two-process check runs the `verex` binary twice: see `tools/tests/cli.rs`.)

use verex_engine::record::access_record;
use verex_engine::text::runner::{LineOutcome, TextRunner};
use verex_engine::text::state_json::render_state;
use verex_engine::verified::VerifiedRecord;
use verex_engine::{Engine, Genesis, Limits};

/// A deterministic mixed workload as JSON lines: listings, accounts, deposits, then orders
/// from a fixed xorshift stream.
fn workload(txs: usize) -> Vec<String> {
    let mut lines = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-USDC","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"-0.0001","taker_fee":"0.0005"}"#.to_string(),
    ];
    for a in 1..=8 {
        lines.push(r#"{"op":"create_account"}"#.to_string());
        lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"USDC","amount":"1000000"}}"#));
        lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"BTC","amount":"100"}}"#));
    }
    let mut x = 88_172_645_463_325_252u64;
    for i in 0..txs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let account = 1 + x % 8;
        let side = if (x >> 8).is_multiple_of(2) { "buy" } else { "sell" };
        let price = 9_900 + (x >> 16) % 200;
        let qty = 1 + (x >> 32) % 500;
        let line = match (x >> 48) % 8 {
            0 => format!(
                r#"{{"op":"cancel","account":{account},"market":"BTC-USDC","order_id":{}}}"#,
                1 + (x >> 20) % (i as u64 + 1)
            ),
            1 => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"market","qty":"{}.{:04}"}}"#,
                qty / 10_000,
                qty % 10_000
            ),
            2 => format!(
                r#"{{"op":"amend","account":{account},"market":"BTC-USDC","order_id":{},"price":"{}.{:02}"}}"#,
                1 + (x >> 20) % (i as u64 + 1),
                price / 100,
                price % 100
            ),
            _ => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","price":"{}.{:02}","qty":"0.{:04}","tif":"{}"}}"#,
                price / 100,
                price % 100,
                qty,
                ["gtc", "ioc", "fok", "post_only"][((x >> 40) % 4) as usize]
            ),
        };
        lines.push(line);
    }
    lines
}

fn run(lines: &[String]) -> (String, String, TextRunner) {
    let mut runner = TextRunner::dev(Limits::small()).expect("limits");
    let mut events = String::new();
    for line in lines {
        match runner.run_line(line).expect("line parses") {
            LineOutcome::Applied { events: e, .. } => {
                for event in e {
                    events.push_str(&event);
                    events.push('\n');
                }
            }
            LineOutcome::Refused(e) => panic!("refused {e}"),
        }
    }
    let state = render_state(&runner.engine);
    (events, state, runner)
}

#[test]
fn same_input_same_events_and_state_hash() {
    let lines = workload(5_000);
    let (events_a, state_a, runner_a) = run(&lines);
    let (events_b, state_b, runner_b) = run(&lines);
    assert!(events_a.contains("\"fill\""), "the workload must trade");
    assert_eq!(events_a, events_b, "events differ between two runs");
    assert_eq!(state_a, state_b);
    assert_eq!(runner_a.engine.state_hash(), runner_b.engine.state_hash());
}

#[test]
fn replaying_decoded_records_gives_the_same_state_hash() {
    // Record every applied tx as bytes (as a journal would), then replay those bytes into a
    // fresh engine through the validating accessor.
    let lines = workload(2_000);
    let mut runner = TextRunner::dev(Limits::small()).expect("limits");
    let mut records = Vec::new();
    for line in &lines {
        if let LineOutcome::Applied { record, .. } = runner.run_line(line).expect("parses") {
            records.push(*record.bytes());
        }
    }
    let mut replica = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut buf = replica.event_buf();
    for bytes in &records {
        let archived = access_record(&bytes.0).expect("valid record");
        let verified = VerifiedRecord::verify(archived).expect("every signature re-checks");
        replica.apply(verified, &mut buf).expect("gap-free");
    }
    assert_eq!(replica.state_hash(), runner.engine.state_hash());
    assert_eq!(render_state(&replica), render_state(&runner.engine));
}

#[test]
fn different_histories_give_different_hashes() {
    let lines = workload(500);
    let (_, _, a) = run(&lines);
    let (_, _, b) = run(&lines[..lines.len() - 1]);
    assert_ne!(a.engine.state_hash(), b.engine.state_hash());
}
