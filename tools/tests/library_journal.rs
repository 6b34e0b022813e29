//! A journal written by an embedding through `verex_engine::store` is a journal the CLI reads:
//! `verex replay` gives the writer's state hash, `verex verify` passes, `verex md` reads it.

mod common;

use common::{expect_success, out_text, path_text, verex_in};
use verex_engine::runtime::RecordSink;
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, hex, Role};
use verex_engine::store::{create_journal, JournalSink, LimitsPreset, Manifest};
use verex_engine::tx::{AddAsset, Dec, Deposit, Op, Symbol, Tx};
use verex_engine::verified::VerifiedTx;
use verex_engine::Genesis;
use verex_journal::JournalConfig;

#[test]
fn a_journal_written_from_the_library_replays_and_verifies_with_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    let manifest = Manifest { limits: LimitsPreset::Small, genesis: Genesis::dev() };
    let writer = create_journal(JournalConfig::new(&journal), &manifest).expect("journal");
    // The pipeline's sink, driven by hand here (the pipeline calls exactly these).
    let mut sink = JournalSink::new(writer);
    let mut engine = manifest.engine().expect("engine");
    let mut buf = engine.event_buf();
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    let usdc = Symbol::new("USDC").expect("symbol");
    let deposit = Deposit { account: 1, asset: usdc, amount: Dec::new(250, 0), chain_ref: [0; 32] };
    let txs = [
        (dev_role_key(Role::Admin), 0, Op::AddAsset(AddAsset::new(usdc, 6))),
        (dev_account_key(1), 0, Op::CreateAccount),
        (dev_role_key(Role::Custody), 0, Op::Deposit(deposit)),
    ];
    for (nonce, (key, account, op)) in (1..).zip(txs) {
        let tx = Tx { signer: [0; 32], nonce, account, op };
        let record = sequencer.stamp(&VerifiedTx::sign(tx, &key), None).expect("dev clock");
        engine.apply(record.verified(), &mut buf).expect("next seq");
        assert!(buf.rejection().is_none());
        sink.append(record.seq(), &record.bytes().0).expect("append");
    }
    assert_eq!(sink.commit().expect("commit"), 3);
    drop(sink);

    let replay = verex_in(&["replay", "--journal", path_text(&journal)], b"");
    expect_success(&replay, "replay");
    assert_eq!(out_text(&replay).trim(), format!("seq 3 state_hash {}", hex(&engine.state_hash())));
    expect_success(&verex_in(&["verify", "--journal", path_text(&journal)], b""), "verify");
    expect_success(&verex_in(&["md", "--journal", path_text(&journal)], b""), "md");
}
