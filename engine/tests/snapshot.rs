//! Snapshots: restore-then-continue equals never-stopped, at many cut points of a mixed spot,
//! perp and lending workload (events byte-identical, same state hash: pools, principals,
//! debts and watch indices included); a corrupt snapshot is named and refused, never used.

use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::snapshot::{decode_snapshot, encode_snapshot, SnapshotError};
use verex_engine::text::event_json::render_event;
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::verified::VerifiedRecordBytes;
use verex_engine::{Engine, Genesis, Limits};

fn lines() -> Vec<String> {
    let mut lines = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6,"rate_base":"0.02","rate_at_kink":"0.2","rate_max":"3"}"#
            .to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-USDC","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"-0.0001","taker_fee":"0.0005"}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0.0005"}"#.to_string(),
        r#"{"op":"mark","prices":{"BTC-PERP":"100"}}"#.to_string(),
        r#"{"op":"deposit","account":0,"asset":"USDC","amount":"20"}"#.to_string(),
    ];
    for a in 1..=12 {
        lines.push(r#"{"op":"create_account"}"#.to_string());
        let usdc = if a % 3 == 0 { "15" } else { "100000" };
        lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"USDC","amount":"{usdc}"}}"#));
        if a % 3 != 0 {
            lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"BTC","amount":"10"}}"#));
        }
        if a % 4 == 1 {
            lines.push(format!(r#"{{"op":"lend","account":{a},"asset":"USDC","amount":"50000"}}"#));
        }
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut mark = 1000i64;
    for i in 0..3_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let account = 1 + x % 12;
        let side = if (x >> 8).is_multiple_of(2) { "buy" } else { "sell" };
        let line = match (x >> 16) % 12 {
            0 => format!(
                r#"{{"op":"cancel","account":{account},"market":"BTC-USDC","order_id":{}}}"#,
                1 + (x >> 24) % (i + 1)
            ),
            1 => format!(r#"{{"op":"cancel_all","account":{account},"market":"BTC-PERP"}}"#),
            2 => {
                mark = (mark + ((x >> 24) % 81) as i64 - 40).clamp(500, 2000);
                format!(
                    r#"{{"op":"mark","prices":{{"BTC-PERP":"{}.{}","BTC":"{}"}}}}"#,
                    mark / 10,
                    mark % 10,
                    mark / 10
                )
            }
            3 => format!(r#"{{"op":"funding","market":"BTC-PERP","rate":"-0.000{}"}}"#, (x >> 24) % 9),
            4 | 5 => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-PERP","side":"{side}","price":"{}.{}","qty":"0.0{:02}","client_id":{}}}"#,
                (mark + ((x >> 24) % 21) as i64 - 10) / 10,
                (mark + ((x >> 24) % 21) as i64 - 10) % 10,
                1 + (x >> 32) % 99,
                i + 1
            ),
            6 => format!(
                r#"{{"op":"amend","account":{account},"market":"BTC-USDC","order_id":{},"price":"{}"}}"#,
                1 + (x >> 24) % (i + 1),
                95 + (x >> 32) % 10
            ),
            10 => format!(
                r#"{{"op":"{}","account":{account},"asset":"USDC","amount":"{}"}}"#,
                ["lend", "redeem", "borrow", "repay"][((x >> 24) % 4) as usize],
                1 + (x >> 32) % 2000
            ),
            // An hour per line: interest accrues in earnest.
            11 => format!(r#"{{"op":"tick","ts":{}}}"#, 1_700_000_000_000_000_000u64 + (i + 100) * 3_600_000_000_000),
            _ => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","price":"{}","qty":"0.{:04}"}}"#,
                95 + (x >> 24) % 10,
                1 + (x >> 32) % 9999
            ),
        };
        lines.push(line);
    }
    lines
}

fn records() -> Vec<VerifiedRecordBytes> {
    let mut signer = DevSigner::default();
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    lines()
        .iter()
        .map(|line| {
            let parsed = parse_tx_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            sequencer.stamp(&signer.sign_verified(&parsed), parsed.ts).expect("dev clock")
        })
        .collect()
}

fn apply_all(engine: &mut Engine, records: &[VerifiedRecordBytes]) -> String {
    let mut buf = engine.event_buf();
    let mut events = String::new();
    for record in records {
        engine.apply(record.verified(), &mut buf).expect("seq");
        for event in buf.events() {
            events.push_str(&render_event(buf.seq(), event, engine.catalog()));
            events.push('\n');
        }
    }
    events
}

#[test]
fn restore_then_continue_equals_never_stopped() {
    let records = records();
    let mut whole = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let all_events = apply_all(&mut whole, &records);
    assert!(
        all_events.contains("\"liquidation\"") && all_events.contains("\"fill\""),
        "the workload must trade and liquidate"
    );
    assert!(
        all_events.contains("\"event\":\"borrow\"") && all_events.contains("\"accrual\""),
        "the workload must borrow and accrue interest"
    );
    let total = records.len();
    let mut cuts: Vec<usize> = vec![0, 1, 5, 6, 40, total / 3, total / 2, total - 1, total];
    cuts.extend((0..20).map(|i| (i * 7919 + 13) % total));
    for cut in cuts {
        let mut first = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
        let prefix_events = apply_all(&mut first, &records[..cut]);
        let bytes = encode_snapshot(&first, 0x1234, [7; 32]).expect("encode");
        let (header, mut restored) = decode_snapshot(&bytes, Genesis::dev(), Limits::small()).expect("decode");
        assert_eq!(header.seq, cut as u64);
        assert_eq!((header.journal_hash, header.attest_digest), (0x1234, [7; 32]));
        assert_eq!(restored.state_hash(), first.state_hash(), "cut {cut}");
        let suffix_events = apply_all(&mut restored, &records[cut..]);
        assert_eq!(restored.state_hash(), whole.state_hash(), "cut {cut}: final hash differs");
        assert_eq!(prefix_events + &suffix_events, all_events, "cut {cut}: events differ");
    }
}

#[test]
fn corrupt_snapshots_are_refused() {
    let records = records();
    let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    apply_all(&mut engine, &records[..records.len() / 2]);
    let bytes = encode_snapshot(&engine, 1, [0; 32]).expect("encode");
    assert!(decode_snapshot(&bytes, Genesis::dev(), Limits::small()).is_ok());
    // Any flipped byte in the archive: the checksum catches it.
    for at in [0, 17, bytes.len() / 2, bytes.len() - 60] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        assert_eq!(
            decode_snapshot(&bad, Genesis::dev(), Limits::small()).err(),
            Some(SnapshotError::Checksum),
            "byte {at}"
        );
    }
    // Truncation and a wrong trailer are format errors.
    assert!(matches!(
        decode_snapshot(&bytes[..bytes.len() - 1], Genesis::dev(), Limits::small()),
        Err(SnapshotError::Format(_))
    ));
    assert!(matches!(decode_snapshot(&bytes[..10], Genesis::dev(), Limits::small()), Err(SnapshotError::Format(_))));
    // Limits too small for the state.
    let tiny = Limits { max_accounts: 2, ..Limits::small() };
    assert!(matches!(decode_snapshot(&bytes, Genesis::dev(), tiny), Err(SnapshotError::Limits(_))));
}

#[test]
fn a_snapshot_whose_state_does_not_match_its_recorded_hash_is_refused() {
    use verex_engine::snapshot::{SnapshotFile, SnapshotHeader, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
    let records = records();
    let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    apply_all(&mut engine, &records[..200]);
    let mut state_hash = engine.state_hash();
    state_hash[0] ^= 1;
    let header = SnapshotHeader {
        version: SNAPSHOT_VERSION,
        seq: engine.seq(),
        state_hash,
        journal_hash: 0,
        attest_digest: [0; 32],
    };
    let file = SnapshotFile { header, state: engine.snapshot_state() };
    let archive = rkyv::to_bytes::<rkyv::rancor::Error>(&file).expect("archive");
    let mut bytes = archive.to_vec();
    bytes.extend_from_slice(blake3::hash(&archive).as_bytes());
    bytes.extend_from_slice(&(archive.len() as u64).to_le_bytes());
    bytes.extend_from_slice(SNAPSHOT_MAGIC);
    match decode_snapshot(&bytes, Genesis::dev(), Limits::small()) {
        Err(SnapshotError::StateHash { seq, .. }) => assert_eq!(seq, 200),
        other => panic!("expected a state hash mismatch, got {:?}", other.map(|(h, _)| h)),
    }
}
