//! The library's journal directory (`verex_engine::store`): a journal written from the library
//! carries its manifest, and `store::recover` rebuilds the writer's state from the newest valid
//! snapshot plus the journal's suffix, naming every snapshot it rejects; the result equals a
//! full replay.

use std::path::Path;

use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::store::{
    create_journal, recover, require_manifest, snapshot_path, write_snapshot, LimitsPreset, Manifest,
};
use verex_engine::tx::{AddAsset, AddMarket, Dec, Deposit, Op, OrderType, Place, Side, Symbol, TimeInForce, Tx};
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, Genesis};
use verex_journal::JournalConfig;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

/// Every op of a small spot workload: listings, two funded accounts, crossing orders.
fn workload() -> Vec<(Option<u64>, u64, Op)> {
    let admin = None;
    let mut ops = vec![
        (admin, 0, Op::AddAsset(AddAsset::new(sym("USDC"), 6))),
        (admin, 0, Op::AddAsset(AddAsset::new(sym("BTC"), 8))),
        (
            admin,
            0,
            Op::AddMarket(
                AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001")
                    .and_then(|m| m.fees("0.0002", "0.0005"))
                    .expect("market"),
            ),
        ),
    ];
    for account in 1..=2u64 {
        ops.push((Some(account), 0, Op::CreateAccount));
        for asset in ["USDC", "BTC"] {
            let deposit = Deposit { account, asset: sym(asset), amount: Dec::new(1_000_000, 0), chain_ref: [0; 32] };
            ops.push((Some(0), 0, Op::Deposit(deposit)));
        }
    }
    for i in 0..200i64 {
        let account = 1 + (i % 2) as u64;
        let place = Place {
            market: sym("BTC-USDC"),
            side: if i % 2 == 0 { Side::Sell } else { Side::Buy },
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            reduce_only: false,
            price: Dec::new(10_000 + (i * 7) % 50 - 25, 2),
            qty: Dec::new(1 + i % 9, 3),
            client_id: 0,
        };
        ops.push((Some(account), account, Op::Place(place)));
    }
    ops
}

/// Writes the workload into a library journal in `dir`, with a snapshot at `snapshot_at`;
/// returns the writer's engine.
fn write_journal(dir: &Path, snapshot_at: u64) -> Engine {
    let manifest = Manifest { limits: LimitsPreset::Small, genesis: Genesis::dev() };
    let mut writer = create_journal(JournalConfig::new(dir), &manifest).expect("journal");
    let mut engine = manifest.engine().expect("engine");
    let mut buf = engine.event_buf();
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    for (nonce, (who, account, op)) in (1..).zip(workload()) {
        // None: the admin key; Some(0): custody; Some(a): account a's key.
        let key = match who {
            None => dev_role_key(Role::Admin),
            Some(0) => dev_role_key(Role::Custody),
            Some(a) => dev_account_key(a),
        };
        let tx = Tx { signer: [0; 32], nonce, account, op };
        let record = sequencer.stamp(&VerifiedTx::sign(tx, &key), None).expect("dev clock");
        engine.apply(record.verified(), &mut buf).expect("next seq");
        assert!(buf.rejection().is_none(), "seq {}: {:?}", record.seq(), buf.rejection());
        writer.append(record.seq(), &record.bytes().0).expect("append");
        if record.seq() == snapshot_at {
            writer.commit().expect("commit");
            write_snapshot(dir, &engine).expect("snapshot");
        }
    }
    writer.commit().expect("commit");
    engine
}

#[test]
fn recovery_from_a_snapshot_and_the_suffix_equals_the_writer_and_a_full_replay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let written = write_journal(dir.path(), 100);
    assert_eq!(require_manifest(dir.path()).expect("manifest").limits, LimitsPreset::Small);

    let recovered = recover(dir.path()).expect("recover");
    assert_eq!(recovered.snapshot, Some((snapshot_path(dir.path(), 100), 100)));
    assert!(recovered.rejected.is_empty());
    assert_eq!(recovered.replayed, written.seq() - 100);
    assert_eq!(recovered.engine.state_hash(), written.state_hash());

    // A newer snapshot that is damaged is skipped, named with its reason; the older one serves.
    let good = std::fs::read(snapshot_path(dir.path(), 100)).expect("snapshot bytes");
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x40;
    std::fs::write(snapshot_path(dir.path(), 150), &bad).expect("write");
    // One that belongs to another seq than its name says is skipped too.
    std::fs::write(snapshot_path(dir.path(), 120), &good).expect("write");
    let recovered = recover(dir.path()).expect("recover");
    let rejected: Vec<_> = recovered.rejected.iter().map(|r| r.path.clone()).collect();
    assert_eq!(rejected, [snapshot_path(dir.path(), 150), snapshot_path(dir.path(), 120)]);
    assert!(recovered.rejected[1].reason.contains("seq 100"), "{:?}", recovered.rejected[1]);
    assert_eq!(recovered.snapshot.map(|(_, seq)| seq), Some(100));
    assert_eq!(recovered.engine.state_hash(), written.state_hash());

    // Without snapshots: a full replay, the same state.
    std::fs::remove_dir_all(dir.path().join("snapshots")).expect("remove snapshots");
    let replayed = recover(dir.path()).expect("recover");
    assert_eq!(replayed.snapshot, None);
    assert_eq!(replayed.replayed, written.seq());
    assert_eq!(replayed.engine.state_hash(), written.state_hash());
}

#[test]
fn a_journal_without_a_manifest_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = recover(dir.path()).err().expect("no manifest");
    assert!(error.to_string().contains("verex.json"), "{error}");
}

/// `Exchange::with_journal` commits each record before applying it: what it applied, a
/// recovery of its journal rebuilds.
#[test]
fn an_exchange_with_a_journal_is_recovered_to_the_same_state() {
    use verex_engine::{Client, Exchange};
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = Manifest { limits: LimitsPreset::Small, genesis: Genesis::dev() };
    let writer = create_journal(JournalConfig::new(dir.path()), &manifest).expect("journal");
    let mut exchange = Exchange::dev().expect("exchange").with_journal(writer);
    let mut admin = Client::new(dev_role_key(Role::Admin));
    let mut alice = Client::new(dev_account_key(1));
    exchange.submit(&admin.sign(AddAsset::named("USDC", 6).expect("asset"))).expect("submit");
    let created = exchange.submit(&alice.sign(Op::CreateAccount)).expect("submit");
    assert_eq!(created.rejection(), None);
    let (engine, writer) = exchange.into_parts();
    drop(writer);
    let recovered = recover(dir.path()).expect("recover");
    assert_eq!(recovered.replayed, 2);
    assert_eq!(recovered.engine.state_hash(), engine.state_hash());
}
