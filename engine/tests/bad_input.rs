//! Bad input never panics: random bytes and random JSON to the tx decoder, random bytes to
//! the record validator, and random valid records with hostile field values to `apply`.

use proptest::prelude::*;
use verex_engine::record::{access_record, RecordBytes};
use verex_engine::text::tx_json::parse_tx_line;
use verex_engine::tx::RECORD_BYTES;
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
            // A record that validates is applied; hostile values become rejections, not panics.
            let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
            let mut buf = engine.event_buf();
            let _ = engine.apply(archived, &mut buf);
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
    // All-zero bytes are a structurally valid archive (seq 0, op tag 0): apply must refuse the
    // seq, not panic.
    if let Ok(archived) = access_record(&aligned.0) {
        let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
        let mut buf = engine.event_buf();
        assert!(engine.apply(archived, &mut buf).is_err(), "seq 0 is a gap");
    }
}
