//! Bad input never panics: random bytes and random JSON to the tx decoder, random bytes to
//! the record validator, and random valid records with hostile field values to `apply`.

use proptest::prelude::*;
use verex_engine::record::{access_record, to_native, RecordBytes};
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::dev_account_key;
use verex_engine::text::tx_json::parse_tx_line;
use verex_engine::tx::{Op, Tx, RECORD_BYTES};
use verex_engine::verified::{VerifiedRecord, VerifiedTx};
use verex_engine::{Engine, Genesis, Limits};

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[-0-9.eE+a-zA-Z_]{0,24}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op".to_string()),
                    Just("account".to_string()),
                    Just("market".to_string()),
                    Just("price".to_string()),
                    Just("qty".to_string()),
                    Just("side".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn op_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "add_asset",
        "add_market",
        "create_account",
        "deposit",
        "withdraw",
        "place",
        "cancel",
        "cancel_all",
        "amend",
        "lend",
        "redeem",
        "borrow",
        "repay",
        "mark",
        "funding",
        "tick",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_tx_line(&text);
    }

    #[test]
    fn random_json_with_real_ops_never_panics(op in op_name(), fields in json_value()) {
        let mut object = match fields {
            serde_json::Value::Object(m) => m,
            other => {
                let mut m = serde_json::Map::new();
                m.insert("x".into(), other);
                m
            }
        };
        object.insert("op".into(), op.into());
        let line = serde_json::Value::Object(object).to_string();
        if let Ok(parsed) = parse_tx_line(&line) {
            // Whatever parses must also run without panicking.
            let mut runner = verex_engine::text::runner::TextRunner::dev(Limits::small()).expect("limits");
            let _ = parsed;
            let _ = runner.run_line(&line);
        }
    }

    #[test]
    fn random_record_bytes_are_validated_not_trusted(bytes in prop::collection::vec(any::<u8>(), RECORD_BYTES)) {
        let mut aligned = RecordBytes([0; RECORD_BYTES]);
        aligned.0.copy_from_slice(&bytes);
        // seq is the archive's first field: make it 1 so apply gets past the sequence check.
        aligned.0[..8].copy_from_slice(&1u64.to_le_bytes());
        if let Ok(archived) = access_record(&aligned.0) {
            // Random bytes never carry a signature that passes the rule...
            prop_assert!(VerifiedRecord::verify(archived).is_err());
            // ...so re-sign the same tx (every hostile value kept, the signer made a dev key)
            // and apply it at its own stamp: hostile values become rejections, not panics.
            let native = to_native(archived).expect("a validated archive deserialises");
            let verified = VerifiedTx::sign(native.signed.tx, &dev_account_key(1));
            let mut sequencer = Sequencer::new(0, Clock::Deterministic);
            let record = sequencer.stamp(&verified, Some(native.ts)).expect("dev clock");
            let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
            let mut buf = engine.event_buf();
            prop_assert!(engine.apply(record.verified(), &mut buf).is_ok());
        }
    }
}

#[test]
fn wrong_length_and_misaligned_records_are_refused() {
    assert!(access_record(&[0u8; 3]).is_err());
    let aligned = RecordBytes([0; RECORD_BYTES]);
    let storage = vec![0u8; RECORD_BYTES + 1];
    let misaligned = if storage.as_ptr().align_offset(16) == 0 { &storage[1..] } else { &storage[..RECORD_BYTES] };
    if misaligned.as_ptr().align_offset(16) != 0 {
        assert!(access_record(misaligned).is_err());
    }
    // All-zero bytes are a structurally valid archive (seq 0, op tag 0) whose signer (y = 0)
    // is a small-order key: it can never be applied.
    if let Ok(archived) = access_record(&aligned.0) {
        assert!(VerifiedRecord::verify(archived).is_err(), "a zero key is refused");
    }
    // A verified record out of sequence is refused, not applied.
    let mut sequencer = Sequencer::new(5, Clock::Deterministic);
    let tx = Tx { signer: [0; 32], nonce: 1, account: 0, op: Op::CreateAccount };
    let record = sequencer.stamp(&VerifiedTx::sign(tx, &dev_account_key(1)), None).expect("dev clock");
    let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut buf = engine.event_buf();
    assert!(engine.apply(record.verified(), &mut buf).is_err(), "seq 6 on a fresh engine is a gap");
    assert_eq!(engine.seq(), 0);
}
