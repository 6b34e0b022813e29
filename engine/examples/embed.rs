//! verex embedded in an exchange's own process: genesis, listings, accounts, signed orders and
//! their fills, a journal with its manifest, a snapshot, recovery, and queries; and the same
//! state hash reached three ways.
//!
//! ```text
//! cargo run --release -p verex-engine --example embed
//! ```
//!
//! 1. **Direct**: [`Exchange::submit`] stamps and applies each signed transaction in process.
//! 2. **Pipeline with a restart**: the first half runs through `runtime::Pipeline` (ring,
//!    journal stage, engine stage) into a journal ([`store::create_journal`] writes the
//!    manifest the CLI needs); the process "restarts": [`store::recover`] rebuilds the engine
//!    from the journal, and a new pipeline appends the second half.
//! 3. **Snapshot + journal**: a snapshot taken at the restart ([`store::write_snapshot`]), then
//!    [`store::recover`] on the finished journal: the snapshot plus the journal's suffix.
//!
//! The journal it leaves in a temporary directory is one `verex replay`/`verify`/`md` read.

use std::error::Error;

use verex_engine::runtime::{Pipeline, PipelineConfig};
use verex_engine::sequencer::Clock;
use verex_engine::signing::{dev_account_key, dev_role_key, hex, Role};
use verex_engine::store::{self, create_journal, JournalSink, LimitsPreset, Manifest};
use verex_engine::text::event_json::{asset_amount, market_price, market_qty};
use verex_engine::tx::{AddAsset, AddMarket, Deposit, Op, Place, Side};
use verex_engine::{Client, Event, Exchange, Genesis, VerifiedTx};
use verex_journal::JournalConfig;

/// The signed transactions of the example, in order (signing needs no engine).
fn signed_transactions() -> Result<Vec<VerifiedTx>, Box<dyn Error>> {
    let mut admin = Client::new(dev_role_key(Role::Admin));
    let mut custody = Client::new(dev_role_key(Role::Custody));
    let mut alice = Client::resume(dev_account_key(1), 1, 0);
    let mut bob = Client::resume(dev_account_key(2), 2, 0);
    let mut txs = vec![
        admin.sign(AddAsset::named("USDC", 6)?),
        admin.sign(AddAsset::named("BTC", 8)?),
        admin.sign(AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001")?.fees("0.0002", "0.0005")?),
        alice.sign(Op::CreateAccount),
        bob.sign(Op::CreateAccount),
        custody.sign(Deposit::of(1, "USDC", "100000")?),
        custody.sign(Deposit::of(2, "BTC", "10")?),
    ];
    for i in 0..20u32 {
        let price = format!("{}", 100 + i % 5);
        txs.push(bob.sign(Place::limit("BTC-USDC", Side::Sell, &price, "0.3")?));
        txs.push(alice.sign(Place::limit("BTC-USDC", Side::Buy, &format!("{}", 99 + i % 4), "0.2")?));
    }
    Ok(txs)
}

fn main() -> Result<(), Box<dyn Error>> {
    let txs = signed_transactions()?;
    let half = txs.len() / 2;

    // 1. Direct.
    let mut direct = Exchange::dev()?;
    let mut trades = Vec::new();
    for tx in &txs {
        let done = direct.submit(tx)?;
        if let Some(reason) = done.rejection() {
            return Err(format!("seq {} rejected: {}", done.seq, reason.as_str()).into());
        }
        trades.extend(done.events().iter().filter(|e| matches!(e, Event::Fill { .. })).copied());
    }
    let direct_hash = direct.engine().state_hash();

    // 2. The pipeline, with a restart half-way.
    let dir = tempfile::tempdir()?;
    let journal = dir.path().join("journal");
    let manifest = Manifest { limits: LimitsPreset::Small, genesis: Genesis::dev() };
    let config = || PipelineConfig::for_this_machine(Clock::Deterministic);
    let run = |engine, part: &[VerifiedTx]| -> Result<verex_engine::Engine, Box<dyn Error>> {
        let sink = JournalSink::new(create_journal(JournalConfig::new(&journal), &manifest)?);
        let mut pipeline = Pipeline::start(engine, sink, |_seq: u64, _event: &Event| {}, config())?;
        for (tag, tx) in (0..).zip(part) {
            pipeline.submit(tx, None, tag)?;
        }
        Ok(pipeline.shutdown()?.engine)
    };
    let first = run(manifest.engine()?, &txs[..half])?;
    let snapshot = store::write_snapshot(&journal, &first)?;
    drop(first); // the process stops; what is left is the journal directory
    let restarted = store::recover(&journal)?.engine;
    let pipeline_hash = run(restarted, &txs[half..])?.state_hash();

    // 3. Snapshot + the journal's suffix.
    let recovered = store::recover(&journal)?;
    let recovered_hash = recovered.engine.state_hash();

    // Queries, by symbol, in decimal units.
    let engine = &recovered.engine;
    let catalog = engine.catalog();
    let (market, usdc) = (engine.market_id("BTC-USDC").ok_or("no market")?, engine.asset_id("USDC").ok_or("no asset")?);
    let level =
        |(price, qty, _)| format!("{} x {}", market_price(catalog, market, price), market_qty(catalog, market, qty));
    println!("trades: {} (first: {:?})", trades.len(), trades.first());
    println!("BTC-USDC best bid {:?}", engine.depth(market, Side::Buy).next().map(level));
    println!("BTC-USDC best ask {:?}", engine.depth(market, Side::Sell).next().map(level));
    let alice = engine.balance(1, usdc).ok_or("no account 1")?;
    println!(
        "account 1 USDC available {}, locked {}",
        asset_amount(catalog, usdc, alice.available.into()),
        asset_amount(catalog, usdc, alice.locked.into())
    );
    println!(
        "snapshot {} used: {:?}, rejected: {}",
        snapshot.display(),
        recovered.snapshot.as_ref().map(|(_, seq)| seq),
        recovered.rejected.len()
    );

    println!("state hash, direct apply:            {}", hex(&direct_hash));
    println!("state hash, pipeline with a restart: {}", hex(&pipeline_hash));
    println!("state hash, snapshot + journal:      {}", hex(&recovered_hash));
    if direct_hash != pipeline_hash || direct_hash != recovered_hash || trades.is_empty() {
        return Err("the three ways disagree".into());
    }
    println!("proved: the same state hash three ways after {} txs and {} fills", txs.len(), trades.len());
    Ok(())
}
