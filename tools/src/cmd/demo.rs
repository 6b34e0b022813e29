//! `verex demo`: the main job on embedded defaults (SPEC section 11). Generates a signed
//! workload, measures the verification bound (its signatures checked on worker threads,
//! alone), runs the signed txs end to end through the ingress and the real pipeline into a
//! journal in a temporary directory, then replays the journal and checks that it rebuilds the
//! same state hash.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use clap::Args;
use hdrhistogram::Histogram;
use verex_engine::attest::JournalDigest;
use verex_engine::catalog::Catalog;
use verex_engine::record::SignedTxBytes;
use verex_engine::runtime::{
    feed, start_ingress, Decoded, IngressClosed, IngressConfig, Pipeline, PipelineConfig, Subscriber, TxEnd,
};
use verex_engine::sequencer::Clock;
use verex_engine::signing::hex;
use verex_engine::store::{create_journal, JournalSink, LimitsPreset, Manifest};
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::tx::SignedTx;
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, Event, Genesis, Limits};
use verex_journal::{Durability, JournalConfig};

use crate::error::CliError;
use crate::gen::{GenConfig, Generator};
use crate::rebuild::{bad_record, open_reader, replay_journal};

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
The main job, on embedded defaults: no arguments needed.

1. Generates a realistic signed workload (`verex gen`: accounts, spot and perp markets, resting, \
crossing and market orders, cancels, amends, oracle marks and funding; lending pools with lends, \
redeems, borrows, repayments and ticks, and a leveraged borrower liquidated by a 20 % drop of its \
collateral's index), and reports what the pools did.
2. Verifies every ed25519 signature on worker threads, alone, as the ingress does under load \
(batches of 256), and reports verifications per second: the verification bound. Verification is orders of \
magnitude dearer than applying a tx, which is why it runs on workers before the sequencer and \
the engine consumes only verified transactions.
3. Runs the signed transactions end to end: the ingress verifies them on its workers (batch \
verification, chunks of 64 to an idle worker, growing to 256 while the workers are busy), the sequencer stamps them in order, and the real pipeline \
(ring, journal stage and engine stage in parallel, events released only once durable) journals \
and applies them into a journal in a temporary directory (batch durability). Reports signed \
tx/s end to end as a ratio of the verification bound, and the latency of each tx from its \
publication into the ring to the release of its events.
4. Replays the journal from disk and checks it rebuilds the same state hash.
5. Runs a Proof of Reserves cycle at the last seq (SPEC 10): builds the Merkle-sum tree over \
every account from the pipeline's state and signs its root with the attest key, verifies a \
sample of the proofs as their owners would, audits by replay (the tree rebuilt from the replayed \
state with the cycle's salt seed must give the same root), puts a reserves statement signed by \
custody beside the liabilities, and prints the stress report's headline at −10, −30 and −50 %.

The latency figures are measured at a fixed offered load (--rate, default 50,000 tx/s on this 2-core default), each tx from its publication into the ring to the release of its events; the throughput line is what that run sustained. --rate 0 shows the saturated maximum instead.

Exit status 0 only if every step holds.";

/// Arguments of `verex demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Order-flow transactions to generate.
    #[arg(long, value_name = "K", default_value_t = 200_000)]
    pub txs: u64,
    /// Accounts to create.
    #[arg(long, value_name = "N", default_value_t = 2_000)]
    pub accounts: u64,
    /// Markets to list (spot and perp alternate).
    #[arg(long, value_name = "M", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=crate::gen::MAX_GEN_MARKETS))]
    pub markets: u64,
    /// Offered load in tx/s: each tx is submitted at its planned time (latency is measured
    /// from its publication into the ring); 0 submits as fast as the ring accepts (the
    /// latency then includes the queue a saturated ring builds up).
    #[arg(long, value_name = "TX_PER_S", default_value_t = 50_000)]
    pub rate: u64,
    /// Keep the journal in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
}

/// Collects what the demo reports: latency from publication to release, event counts.
struct Tally {
    epoch: Arc<OnceLock<Instant>>,
    latency_ns: Histogram<u64>,
    fills: u64,
    rejected: u64,
    liquidations: u64,
    settlements: u64,
    /// Lending: explicit lends, redeems, borrows and repayments.
    pool_moves: u64,
    /// Automatic borrows and repayments (debits beyond available, credits to a debtor).
    auto_borrows: u64,
    auto_repays: u64,
    /// Accruals at `tick` and the interest they charged, per asset index.
    accruals: u64,
    interest: Vec<u128>,
    /// A debtor's collateral sold, bad debts paid by the fund, the lenders or the exchange.
    collateral_sales: u64,
    bad_debts: u64,
}

impl Subscriber for Tally {
    fn on_event(&mut self, _seq: u64, event: &Event, _catalog: &Catalog) {
        match event {
            Event::Fill { .. } => self.fills += 1,
            Event::Rejected { .. } => self.rejected += 1,
            Event::Liquidation { .. } | Event::Adl { .. } => self.liquidations += 1,
            Event::Settlement { .. } => self.settlements += 1,
            Event::Pool { .. } => self.pool_moves += 1,
            Event::Borrow { .. } => self.auto_borrows += 1,
            Event::Repay { .. } => self.auto_repays += 1,
            Event::Accrual { asset, interest, .. } => {
                self.accruals += 1;
                let a = usize::from(*asset);
                if self.interest.len() <= a {
                    self.interest.resize(a + 1, 0);
                }
                self.interest[a] += u128::from(*interest);
            }
            Event::CollateralSold { .. } => self.collateral_sales += 1,
            Event::BadDebt { .. } => self.bad_debts += 1,
            _ => {}
        }
    }

    fn on_tx_end(&mut self, end: &TxEnd) {
        if let Some(epoch) = self.epoch.get() {
            let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.latency_ns.saturating_record(now.saturating_sub(end.published_ns).max(1));
        }
    }
}

fn step(text: &str) {
    eprintln!("\n== {text}");
}

/// Runs the demo.
///
/// # Errors
/// [`CliError`] when a step fails: the journal cannot be written, the pipeline is poisoned, or
/// the replay does not rebuild the same state.
pub fn execute(args: &DemoArgs) -> Result<(), CliError> {
    let started = Instant::now();
    step(&format!(
        "1/5 generate: {} accounts, {} markets, {} order-flow txs, signed with development keys",
        args.accounts, args.markets, args.txs
    ));
    let signed = generate(args)?;
    eprintln!("   {} signed transactions in {:.2} s", signed.len(), started.elapsed().as_secs_f64());

    step("2/5 verification bound: every ed25519 signature checked on worker threads, in batches, alone");
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 8);
    let verify_start = Instant::now();
    let bad = count_refused(&signed, workers);
    let verify_s = verify_start.elapsed().as_secs_f64();
    let bound = signed.len() as f64 / verify_s;
    eprintln!(
        "   {} verified, {bad} bad, {workers} workers: {bound:.0} verifications/s ({:.0} per worker; one takes ~{:.1} µs): \
         the most signed txs per second this machine can admit",
        signed.len(),
        bound / workers as f64,
        verify_s * 1e6 * workers as f64 / signed.len() as f64
    );
    if bad > 0 {
        return Err(CliError::Usage(format!("{bad} generated transactions failed verification")));
    }

    let (dir, temporary) = match &args.journal {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("verex-demo-{}", std::process::id())), true),
    };
    let outcome = run_and_replay(&signed, &dir, args.rate, bound);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (exchange, replayed, digest) = outcome?;
    crate::cmd::demo_por::por_cycle(&exchange, &replayed, digest)?;
    eprintln!("\ndone in {:.1} s: every step holds.", started.elapsed().as_secs_f64());
    Ok(())
}

/// Signatures checked together: the ingress' largest chunk, which its chunks reach under load.
const VERIFY_BATCH: usize = 256;

fn generate(args: &DemoArgs) -> Result<Vec<(SignedTx, Option<u64>)>, CliError> {
    let mut generator = Generator::new(GenConfig {
        accounts: args.accounts,
        markets: args.markets,
        txs: args.txs,
        ..GenConfig::default()
    });
    let mut signer = DevSigner::default();
    let mut lines = generator.setup();
    lines.reserve(usize::try_from(args.txs).unwrap_or(0));
    while let Some(line) = generator.next_line() {
        lines.push(line);
    }
    lines
        .iter()
        .map(|line| {
            let parsed = parse_tx_line(line)
                .map_err(|e| CliError::File { file: "<generator>".into(), reason: format!("{line}: {e}") })?;
            Ok((signer.sign(&parsed), parsed.ts))
        })
        .collect()
}

/// Checks every signature on `workers` threads, a batch of [`VERIFY_BATCH`] at a time (the
/// ingress' rule and batch size), and returns how many were refused: the verification bound,
/// measured alone.
fn count_refused(signed: &[(SignedTx, Option<u64>)], workers: usize) -> usize {
    let chunk = signed.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = signed
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut verdicts = Vec::with_capacity(VERIFY_BATCH);
                    let mut refused = 0;
                    for batch in part.chunks(VERIFY_BATCH) {
                        let bytes: Vec<SignedTxBytes> = batch.iter().map(|(tx, _)| SignedTxBytes::encode(tx)).collect();
                        VerifiedTx::verify_batch(&bytes, &mut verdicts);
                        refused += verdicts.drain(..).filter(Result::is_err).count();
                    }
                    refused
                })
            })
            .collect();
        // A thread that panicked counts its whole part as refused.
        handles.into_iter().map(|h| h.join().unwrap_or(chunk)).sum()
    })
}

/// What the lending pools did over the run, and where they ended.
fn report_pools(t: &Tally, engine: &Engine) {
    use verex_engine::text::event_json::{asset_amount, ratio};
    eprintln!(
        "   pools: {} lends, redeems, borrows and repayments; {} automatic borrows, {} automatic repayments; \
         {} interest accruals; a borrow liquidation: {} collateral sales, {} bad-debt payments",
        t.pool_moves, t.auto_borrows, t.auto_repays, t.accruals, t.collateral_sales, t.bad_debts
    );
    let catalog = engine.catalog();
    for (a, asset) in catalog.assets().iter().enumerate() {
        let a16 = u16::try_from(a).unwrap_or(u16::MAX);
        let (lent, borrowed) = engine.pool(a16);
        if lent == 0 && borrowed == 0 {
            continue;
        }
        let interest = t.interest.get(a).copied().unwrap_or(0);
        eprintln!(
            "   {} pool: lent {}, borrowed {} (utilization {}, borrow rate {} a year, lend rate {}), interest charged {}",
            asset.symbol.as_str(),
            asset_amount(catalog, a16, i128::from(lent)),
            asset_amount(catalog, a16, i128::from(borrowed)),
            ratio(verex_engine::lending::utilization(lent, borrowed)),
            ratio(verex_engine::lending::borrow_rate(asset, lent, borrowed)),
            ratio(verex_engine::lending::lend_rate(asset, lent, borrowed)),
            asset_amount(catalog, a16, i128::try_from(interest).unwrap_or(i128::MAX))
        );
    }
}

/// Runs the pipeline and replays its journal: the pipeline's engine, the replayed one, and the
/// journal's BLAKE3 digest at the last seq.
fn run_and_replay(
    signed: &[(SignedTx, Option<u64>)],
    dir: &Path,
    rate: u64,
    verify_bound: f64,
) -> Result<(Engine, Engine, [u8; 32]), CliError> {
    let ingress = IngressConfig::for_this_machine();
    step(&format!(
        "3/5 signed end to end: ingress ({} workers, batches of {} to {}) → sequencer → ring → journal stage ∥ engine stage → \
         release once durable (journal in {})",
        ingress.workers,
        ingress.min_chunk_inputs,
        ingress.chunk_inputs,
        dir.display()
    ));
    let _ = std::fs::remove_dir_all(dir);
    // The library's journal directory: the manifest first, so `verex replay` and `verify` read it.
    let manifest = Manifest { limits: LimitsPreset::Production, genesis: Genesis::dev() };
    let config = JournalConfig { durability: Durability::Batch, ..JournalConfig::new(dir) };
    let writer = create_journal(config, &manifest).map_err(|e| CliError::Usage(e.to_string()))?;
    let engine = manifest.engine().map_err(CliError::Engine)?;
    let epoch = Arc::new(OnceLock::new());
    let tally = Tally {
        epoch: Arc::clone(&epoch),
        latency_ns: Histogram::new_with_bounds(1, 600_000_000_000, 3).map_err(|e| CliError::Usage(e.to_string()))?,
        fills: 0,
        rejected: 0,
        liquidations: 0,
        settlements: 0,
        pool_moves: 0,
        auto_borrows: 0,
        auto_repays: 0,
        accruals: 0,
        interest: Vec::new(),
        collateral_sales: 0,
        bad_debts: 0,
    };
    let mut pipeline = Pipeline::start(
        engine,
        JournalSink::new(writer),
        tally,
        PipelineConfig::for_this_machine(Clock::Deterministic),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let _ = epoch.set(pipeline.epoch());
    eprintln!("   {}", pipeline.info());
    let pace = match rate {
        0 => "as fast as the ingress and the ring accept".to_string(),
        rate => format!("at {rate} tx/s offered"),
    };
    eprintln!("   submitting {} signed txs {pace}", signed.len());
    // Archived before the clock starts: the wire bytes a gateway would hand the ingress.
    let inputs: Vec<Decoded> = signed.iter().map(|(tx, ts)| Decoded::from_signed(tx, *ts)).collect();
    let (mut sender, mut receiver) = start_ingress(ingress, |input: Decoded| Ok(input)).map_err(CliError::Usage)?;
    let mut refused = 0u64;
    let run_start = Instant::now();
    let fed = std::thread::scope(|scope| {
        let inputs = &inputs;
        let sending = scope.spawn(move || -> Result<(), IngressClosed> {
            for (i, input) in inputs.iter().enumerate() {
                if let Some(planned_ns) = (i as u64).saturating_mul(1_000_000_000).checked_div(rate) {
                    let planned = std::time::Duration::from_nanos(planned_ns);
                    if run_start.elapsed() < planned {
                        // Nothing more arrives before then: what is queued goes now.
                        sender.flush()?;
                        while run_start.elapsed() < planned {
                            std::thread::yield_now();
                        }
                    }
                }
                sender.send(*input)?;
            }
            sender.flush()
        });
        let fed = feed(&mut receiver, &mut pipeline, |_, _| {
            refused += 1;
            ControlFlow::Continue(())
        });
        // Unblocks the sending thread if feeding stopped early.
        drop(receiver);
        let sent = sending.join();
        (fed, sent)
    });
    let sequenced = match fed {
        (Ok(sequenced), Ok(Ok(()))) => sequenced,
        (Err(e), _) => return Err(CliError::Usage(format!("the pipeline stopped: {e}"))),
        (Ok(_), Ok(Err(e))) => return Err(CliError::Usage(format!("the ingress closed early: {e}"))),
        (Ok(_), Err(_)) => return Err(CliError::Usage("the sending thread panicked".to_string())),
    };
    if refused > 0 {
        return Err(CliError::Usage(format!("the ingress refused {refused} generated transactions")));
    }
    let stopped = pipeline.shutdown().map_err(|e| CliError::Usage(e.to_string()))?;
    let run_s = run_start.elapsed().as_secs_f64();
    if let Some(poison) = &stopped.report.poison {
        return Err(CliError::Usage(format!("the pipeline was poisoned: {poison}")));
    }
    let t = &stopped.subscriber;
    let h = &t.latency_ns;
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    let signed_rate = sequenced as f64 / run_s;
    eprintln!(
        "   {sequenced} signed txs in {run_s:.2} s: {signed_rate:.0} signed tx/s end to end (verified, sequenced, durable and \
         released), {:.2}× the verification bound",
        signed_rate / verify_bound
    );
    eprintln!(
        "   {} fills, {} settlements, {} liquidation steps, {} rejections (e.g. cancels of orders that had filled)",
        t.fills, t.settlements, t.liquidations, t.rejected
    );
    report_pools(t, &stopped.engine);
    eprintln!(
        "   latency, publish → release: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, p99.99 {:.1} µs, max {:.1} µs",
        us(0.5),
        us(0.99),
        us(0.999),
        us(0.9999),
        h.max() as f64 / 1_000.0
    );
    let state_hash = stopped.engine.state_hash();
    let journal_bytes: u64 = std::fs::read_dir(dir)
        .map_err(|e| CliError::io("read", dir, e))?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .sum();
    eprintln!(
        "   journal: {} records, {:.1} MiB preallocated, last rolling hash {:016x}; state hash {}",
        stopped.sink.writer().last_seq(),
        journal_bytes as f64 / (1024.0 * 1024.0),
        stopped.sink.writer().last_hash(),
        hex(&state_hash)
    );
    drop(stopped.sink);

    step("4/5 replay: rebuild the state from the journal on disk, reading records in place");
    let replay_start = Instant::now();
    let reader = open_reader(dir)?;
    let mut replica = Engine::new(Genesis::dev(), Limits::production()).map_err(CliError::Engine)?;
    let mut digest = JournalDigest::default();
    let replayed = replay_journal(dir, &reader, &mut replica, "replay", |_, record, _, _| {
        digest
            .push(record.seq, record.payload)
            .map_err(|expected| bad_record(dir, record.seq, format!("expected seq {expected}")))
    })?;
    let replay_s = replay_start.elapsed().as_secs_f64();
    let replayed_hash = replica.state_hash();
    eprintln!(
        "   {} records validated, their signatures re-checked (batches on every core) and replayed in {:.2} s; state hash {}",
        replayed.records,
        replay_s,
        hex(&replayed_hash)
    );
    if replayed_hash != state_hash || replica.seq() != stopped.engine.seq() {
        return Err(CliError::Usage(format!(
            "replay rebuilt seq {} hash {}, the pipeline ended at seq {} hash {}",
            replica.seq(),
            hex(&replayed_hash),
            stopped.engine.seq(),
            hex(&state_hash)
        )));
    }
    eprintln!("   proved: the journal alone rebuilds the exact state (same seq {}, same state hash)", replica.seq());
    replica.check_invariants().map_err(|e| CliError::Usage(format!("invariant broken after replay: {e}")))?;
    eprintln!("   proved: conservation per asset, locks, books and margins hold (SPEC section 7)");
    Ok((stopped.engine, replica, digest.digest))
}
