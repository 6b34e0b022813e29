//! Snapshot cost at production scale, and what a snapshotting replica does to the engine stage.
//!
//! ```text
//! cargo run --release -p verex-tools --example snapshot_bench -- [--accounts N] [--flow-txs K]
//!     [--rate TXS_PER_S] [--snapshot-every M] [--attest-every A] [--replica-nice N]
//!     [--rounds R] [--dir DIR]
//! ```
//!
//! 1. Builds a state through `Engine::apply` with production limits: N accounts
//!    (`create_account`), one deposit each, and one resting limit order each (N resting
//!    orders over 64 spot markets, 1,500 price levels a side). Every tx is signed with its
//!    account's key (signed on every core beforehand: the engine applies only verified txs,
//!    and the replica checks every signature again).
//! 2. Times the state hash, `encode_snapshot` (size), writing the file durably, and
//!    `decode_snapshot` (load: checksum, validation, restore, state-hash check).
//! 3. Runs the same order flow of K txs (IOC takers that fill, resting orders, cancel-alls,
//!    deposits; generated and signed beforehand), paced at RATE txs/s, through an engine stage (apply, journal append, an
//!    `async` commit every 256) twice, each on an engine loaded from the snapshot and a fresh
//!    journal starting after the built seq: (a) alone, (b) with the replica tailing that
//!    journal and writing a snapshot every M seqs and an attestation every A, its thread at
//!    nice 0 and at nice N (`verex run`'s default), R rounds of the three. Reports the
//!    engine's apply-time distribution (the time inside `Engine::apply`, which is what a
//!    snapshot could stall) and the whole step's, for both.
//!
//! Nothing is pinned: the numbers are what this machine's scheduler gives two busy threads.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use verex_engine::attest::JournalDigest;
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_role_key, hex, Role};
use verex_engine::snapshot::{decode_snapshot, encode_snapshot};
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::tx::{Dec, Deposit, Op, OrderType, Place, Side, Symbol, TimeInForce, Tx};
use verex_engine::verified::{VerifiedRecordBytes, VerifiedTx};
use verex_engine::{Engine, Genesis, Limits};
use verex_journal::{Durability, JournalConfig, JournalWriter};
use verex_tools::attestations::AttestationLog;
use verex_tools::replica::{Replica, ReplicaConfig, ReplicaReport, ReplicaStart};
use verex_tools::snapshots::write_durably;

/// Spot markets the orders are spread over.
const MARKETS: u64 = 64;
/// Price levels per side of each market in the built book.
const LEVELS: u64 = 1_500;
/// The mid price, in ticks of 0.01.
const MID_TICKS: i64 = 10_000;
/// Transactions per journal commit (as `verex run` does in batch mode).
const COMMIT_EVERY: u64 = 256;

struct Args {
    accounts: u64,
    flow_txs: u64,
    rate: u64,
    snapshot_every: u64,
    attest_every: u64,
    replica_nice: i32,
    rounds: u64,
    dir: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        accounts: 1_000_000,
        flow_txs: 1_000_000,
        rate: 100_000,
        snapshot_every: 250_000,
        attest_every: 100_000,
        replica_nice: verex_tools::replica::DEFAULT_REPLICA_NICE,
        rounds: 2,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || value.parse::<u64>().unwrap_or_else(|e| panic!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--accounts" => args.accounts = number(),
            "--flow-txs" => args.flow_txs = number(),
            "--rate" => args.rate = number(),
            "--snapshot-every" => args.snapshot_every = number(),
            "--attest-every" => args.attest_every = number(),
            "--replica-nice" => args.replica_nice = value.parse().unwrap_or_else(|e| panic!("{flag}: {e}")),
            "--rounds" => args.rounds = number(),
            "--dir" => args.dir = Some(PathBuf::from(&value)),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

fn symbol(text: &str) -> Symbol {
    Symbol::new(text).unwrap_or_else(|| panic!("symbol {text}"))
}

fn market_symbol(market: u64) -> Symbol {
    symbol(&format!("M{market:02}-USDC"))
}

/// The signing key of generated account `id`, from a splitmix64 seed.
fn account_key(id: u64) -> SigningKey {
    let mut seed = [0u8; 32];
    let mut x = id;
    for word in seed.chunks_exact_mut(8) {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    SigningKey::from_bytes(&seed)
}

/// Runs `work` over `items` on every core, keeping the order.
fn on_every_core<T: Sync, U: Send>(items: &[T], work: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let per_thread = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> =
            items.chunks(per_thread).map(|part| scope.spawn(|| part.iter().map(&work).collect::<Vec<U>>())).collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    })
}

/// Who signs a generated tx.
#[derive(Clone, Copy)]
enum Signer {
    Custody,
    Account(u64),
}

/// Builds, signs and stamps transactions.
struct Feeder {
    sequencer: Sequencer,
    custody: SigningKey,
    custody_nonce: u64,
    /// The next nonce of each account, by id (index 0 unused).
    nonces: Vec<u64>,
    /// Account keys, by id (index 0 unused).
    keys: std::sync::Arc<Vec<SigningKey>>,
}

impl Feeder {
    fn new(sequencer: Sequencer, accounts: u64) -> Self {
        let ids: Vec<u64> = (0..=accounts).collect();
        let keys = on_every_core(&ids, |id| account_key(*id));
        Self {
            sequencer,
            custody: dev_role_key(Role::Custody),
            custody_nonce: 0,
            nonces: vec![1; accounts as usize + 1],
            keys: std::sync::Arc::new(keys),
        }
    }

    fn user(&mut self, account: u64, op: Op) -> (Tx, Signer) {
        let nonce = self.nonces[account as usize];
        self.nonces[account as usize] += 1;
        (Tx { signer: [0; 32], nonce, account, op }, Signer::Account(account))
    }

    fn deposit(&mut self, account: u64, asset: &str, mantissa: i64) -> (Tx, Signer) {
        self.custody_nonce += 1;
        let op = Op::Deposit(Deposit {
            account,
            asset: symbol(asset),
            amount: Dec { mantissa, scale: 0 },
            chain_ref: [0; 32],
        });
        (Tx { signer: [0; 32], nonce: self.custody_nonce, account: 0, op }, Signer::Custody)
    }

    /// Signs `txs` on every core, then stamps them in order.
    fn seal(&mut self, txs: &[(Tx, Signer)]) -> Vec<VerifiedRecordBytes> {
        let keys = std::sync::Arc::clone(&self.keys);
        let custody = self.custody.clone();
        let signed = on_every_core(txs, |(tx, signer)| match signer {
            Signer::Custody => VerifiedTx::sign(*tx, &custody),
            Signer::Account(id) => VerifiedTx::sign(*tx, &keys[*id as usize]),
        });
        signed.iter().map(|tx| self.sequencer.stamp(tx, None).expect("dev clock")).collect()
    }
}

fn place(market: u64, side: Side, tif: TimeInForce, price_ticks: i64, qty_lots: i64) -> Op {
    Op::Place(Place {
        market: market_symbol(market),
        side,
        order_type: OrderType::Limit,
        tif,
        reduce_only: false,
        price: Dec { mantissa: price_ticks, scale: 2 },
        qty: Dec { mantissa: qty_lots, scale: 4 },
        client_id: 0,
    })
}

/// Listings through the text form, signed with the development keys.
fn listings() -> Vec<VerifiedRecordBytes> {
    let mut lines = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
    ];
    for market in 0..MARKETS {
        lines.push(format!(
            r#"{{"op":"add_market","symbol":"M{market:02}-USDC","kind":"spot","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"0.0002","taker_fee":"0.0005"}}"#
        ));
    }
    let mut signer = DevSigner::new(0);
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    lines
        .iter()
        .map(|line| {
            let parsed = parse_tx_line(line).expect("listing line");
            sequencer.stamp(&signer.sign_verified(&parsed), None).expect("dev clock")
        })
        .collect()
}

/// Builds the state: listings, then per account a create, a deposit and a resting order.
fn build(accounts: u64) -> (Engine, JournalDigest, Feeder) {
    let mut engine = Engine::new(Genesis::dev(), Limits::production()).expect("production limits");
    let mut buf = engine.event_buf();
    let mut digest = JournalDigest::default();
    for record in listings() {
        engine.apply(record.verified(), &mut buf).expect("apply");
        digest.push(record.seq(), &record.bytes().0).expect("chain");
    }
    let phase = Instant::now();
    let mut feeder = Feeder::new(Sequencer::new(engine.seq(), Clock::Deterministic), accounts);
    println!("build: {accounts} account keys in {:.2} s", phase.elapsed().as_secs_f64());
    let mut apply = |engine: &mut Engine, records: Vec<VerifiedRecordBytes>| {
        for record in records {
            engine.apply(record.verified(), &mut buf).expect("apply");
            digest.push(engine.seq(), &record.bytes().0).expect("chain");
        }
    };
    let phase = Instant::now();
    let creates: Vec<_> = (1..=accounts).map(|id| feeder.user(id, Op::CreateAccount)).collect();
    let records = feeder.seal(&creates);
    apply(&mut engine, records);
    println!("build: {accounts} create_account signed and applied in {:.2} s", phase.elapsed().as_secs_f64());
    let phase = Instant::now();
    let deposits: Vec<_> = (1..=accounts)
        .map(|id| if id % 2 == 1 { feeder.deposit(id, "USDC", 1_000_000) } else { feeder.deposit(id, "BTC", 100) })
        .collect();
    let records = feeder.seal(&deposits);
    apply(&mut engine, records);
    println!("build: {accounts} deposits signed and applied in {:.2} s", phase.elapsed().as_secs_f64());
    let phase = Instant::now();
    let orders: Vec<_> = (1..=accounts)
        .map(|id| {
            let (market, level) = (id % MARKETS, (id / MARKETS) % LEVELS);
            let level = i64::try_from(level).expect("level");
            let op = if id % 2 == 1 {
                place(market, Side::Buy, TimeInForce::Gtc, MID_TICKS - 1 - level, 100)
            } else {
                place(market, Side::Sell, TimeInForce::Gtc, MID_TICKS + 1 + level, 100)
            };
            feeder.user(id, op)
        })
        .collect();
    let records = feeder.seal(&orders);
    apply(&mut engine, records);
    println!("build: {accounts} resting orders signed and applied in {:.2} s", phase.elapsed().as_secs_f64());
    (engine, digest, feeder)
}

/// A xorshift64 generator for the order flow.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % bound.max(1)
    }
}

/// One tx of the order flow.
fn flow_tx(feeder: &mut Feeder, rng: &mut XorShift, accounts: u64) -> (Tx, Signer) {
    let account = 1 + rng.below(accounts);
    let market = account % MARKETS;
    let buyer = account % 2 == 1;
    let level = i64::try_from(rng.below(LEVELS)).expect("level");
    match rng.below(100) {
        // A taker crossing the spread: fills against the best makers, never rests.
        0..=34 if buyer => feeder.user(account, place(market, Side::Buy, TimeInForce::Ioc, MID_TICKS + 50, 30)),
        0..=34 => feeder.user(account, place(market, Side::Sell, TimeInForce::Ioc, MID_TICKS - 50, 30)),
        // A new resting order inside the book.
        35..=64 if buyer => {
            feeder.user(account, place(market, Side::Buy, TimeInForce::Gtc, MID_TICKS - 1 - level, 100))
        }
        35..=64 => feeder.user(account, place(market, Side::Sell, TimeInForce::Gtc, MID_TICKS + 1 + level, 100)),
        // Everything the account rests in its market, canceled.
        65..=94 => feeder.user(account, Op::CancelAll(market_symbol(market))),
        _ if buyer => feeder.deposit(account, "USDC", 1_000),
        _ => feeder.deposit(account, "BTC", 1),
    }
}

/// Time distribution of one engine-stage run.
struct Timings {
    apply_ns: Vec<u32>,
    step_ns: Vec<u32>,
    elapsed: Duration,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn describe(name: &str, mut values: Vec<u32>) -> String {
    values.sort_unstable();
    format!(
        "{name}: p50 {} ns, p99 {} ns, p99.9 {} ns, p99.99 {} ns, max {} µs",
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        percentile(&values, 0.999),
        percentile(&values, 0.9999),
        values.last().copied().unwrap_or(0) / 1_000
    )
}

/// The engine stage: apply, append, commit every 256 (publishing to the replica), paced.
/// `run` with `--durability async`, minus the text.
fn engine_stage(
    mut engine: Engine,
    mut feeder: Feeder,
    args: &Args,
    journal: &Path,
    replica: Option<&Replica>,
) -> (Timings, u64) {
    // Async: the commit every 256 only publishes (no msync on this thread). In `verex run`
    // today the journal shares the engine's thread; in the pipeline it has its own stage.
    let config = JournalConfig { dir: journal.to_path_buf(), segment_bytes: 1 << 30, durability: Durability::Async };
    let (mut writer, _) = JournalWriter::open(config).expect("journal");
    let feed = replica.map(Replica::feed);
    let mut buf = engine.event_buf();
    let mut rng = XorShift(0x5eed_f10e);
    let flow: Vec<_> = (0..args.flow_txs).map(|_| flow_tx(&mut feeder, &mut rng, args.accounts)).collect();
    let records = feeder.seal(&flow);
    let mut apply_ns = Vec::with_capacity(args.flow_txs as usize);
    let mut step_ns = Vec::with_capacity(args.flow_txs as usize);
    let interval_ns = 1_000_000_000 / args.rate.max(1);
    let started = Instant::now();
    for (i, record) in (0..).zip(&records) {
        let due = Duration::from_nanos(i * interval_ns);
        while started.elapsed() < due {
            std::hint::spin_loop();
        }
        let t0 = Instant::now();
        engine.apply(record.verified(), &mut buf).expect("apply");
        let t1 = Instant::now();
        writer.append(engine.seq(), &record.bytes().0).expect("append");
        if (i + 1) % COMMIT_EVERY == 0 {
            let durable = writer.commit().expect("commit");
            if let Some(feed) = &feed {
                feed.durable(durable);
            }
        }
        apply_ns.push(u32::try_from((t1 - t0).as_nanos()).unwrap_or(u32::MAX));
        step_ns.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
    }
    let elapsed = started.elapsed();
    let durable = writer.commit().expect("commit");
    (Timings { apply_ns, step_ns, elapsed }, durable)
}

fn report_replica(report: &ReplicaReport, lag_at_end: u64, drain: Duration) {
    println!(
        "  replica: {} snapshots, {} attestations; longest snapshot (encode + write + retention) {:.3} s; \
         behind by {lag_at_end} txs when the engine stage finished, caught up {:.3} s later",
        report.snapshots_written,
        report.attestations_written,
        report.longest_snapshot.as_secs_f64(),
        drain.as_secs_f64()
    );
    if let Some(last) = &report.last_snapshot {
        println!(
            "  replica's last snapshot: seq {}, {} bytes, encode {:.3} s, write {:.3} s",
            last.seq,
            last.bytes,
            last.encode.as_secs_f64(),
            last.write.as_secs_f64()
        );
    }
}

fn main() {
    let args = parse_args();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    println!("verex snapshot bench: {} accounts, {} resting orders, production limits", args.accounts, args.accounts);

    let started = Instant::now();
    let (engine, digest, feeder) = build(args.accounts);
    let built = started.elapsed();
    assert_eq!(engine.account_count(), args.accounts);
    assert_eq!(engine.resting_orders() as u64, args.accounts);
    println!("build: {} txs applied in {:.2} s (seq {})", engine.seq(), built.as_secs_f64(), engine.seq());

    let t = Instant::now();
    let mut chain = JournalDigest::default();
    let record = listings()[0];
    for seq in 1..=1_000_000 {
        chain.push(seq, &record.bytes().0).expect("chain");
    }
    println!(
        "BLAKE3 attestation chain (recovery's pass over the records): 1,000,000 records in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let state_hash = engine.state_hash();
    println!("state hash: {:.3} s ({})", t.elapsed().as_secs_f64(), hex(&state_hash));
    let t = Instant::now();
    let bytes = encode_snapshot(&engine, 0, digest.digest).expect("encode");
    let encode = t.elapsed();
    let file = dir.join("built.snap");
    let t = Instant::now();
    write_durably(&file, &bytes).expect("write");
    let write = t.elapsed();
    println!(
        "snapshot: {} bytes ({:.1} MiB); encode {:.3} s; write + fsync + rename {:.3} s",
        bytes.len(),
        bytes.len() as f64 / f64::from(1u32 << 20),
        encode.as_secs_f64(),
        write.as_secs_f64()
    );
    drop(engine);
    let load = || {
        let t = Instant::now();
        let bytes = std::fs::read(&file).expect("read");
        let (_, engine) = decode_snapshot(&bytes, Genesis::dev(), Limits::production()).expect("decode");
        (engine, t.elapsed())
    };
    let (engine_a, load_time) = load();
    assert_eq!(engine_a.state_hash(), state_hash);
    println!("load (read + checksum + validate + restore + state-hash check): {:.3} s", load_time.as_secs_f64());

    println!(
        "order flow: {} txs at {} txs/s; replica: snapshot every {} seqs, attestation every {}; {} rounds",
        args.flow_txs, args.rate, args.snapshot_every, args.attest_every, args.rounds
    );
    drop(engine_a);
    let bench = Bench { args: &args, dir: &dir, file: &file, digest, feeder: &feeder };
    for round in 1..=args.rounds {
        bench.alone(round);
        for nice in [0, args.replica_nice] {
            bench.with_replica(round, nice);
        }
    }
}

/// What each engine-stage run starts from.
struct Bench<'a> {
    args: &'a Args,
    dir: &'a Path,
    file: &'a Path,
    digest: JournalDigest,
    feeder: &'a Feeder,
}

impl Bench<'_> {
    fn load(&self) -> Engine {
        let bytes = std::fs::read(self.file).expect("read");
        decode_snapshot(&bytes, Genesis::dev(), Limits::production()).expect("decode").1
    }

    fn feeder(&self) -> Feeder {
        Feeder {
            sequencer: Sequencer::new(self.digest.seq, Clock::Deterministic),
            custody: self.feeder.custody.clone(),
            custody_nonce: self.feeder.custody_nonce,
            nonces: self.feeder.nonces.clone(),
            keys: std::sync::Arc::clone(&self.feeder.keys),
        }
    }

    fn journal(&self, tag: &str) -> PathBuf {
        let journal = self.dir.join(tag);
        let _ = std::fs::remove_dir_all(&journal);
        std::fs::create_dir_all(&journal).expect("journal dir");
        journal
    }

    fn alone(&self, round: u64) {
        let journal = self.journal("journal-alone");
        let (timings, _) = engine_stage(self.load(), self.feeder(), self.args, &journal, None);
        println!("round {round} (a) engine stage alone, {:.2} s:", timings.elapsed.as_secs_f64());
        println!("  {}", describe("apply", timings.apply_ns));
        println!("  {}", describe("step (apply + append + commit/256)", timings.step_ns));
        let _ = std::fs::remove_dir_all(&journal);
    }

    fn with_replica(&self, round: u64, nice: i32) {
        let journal = self.journal("journal-replica");
        let config = ReplicaConfig {
            dir: journal.clone(),
            attest_every: self.args.attest_every,
            attest_key: Some(dev_role_key(Role::Attest)),
            snapshot_every: self.args.snapshot_every,
            snapshot_interval: None,
            keep_snapshots: 2,
            archive_segments: false,
            sync_records: false,
            nice,
        };
        let start = ReplicaStart {
            engine: self.load(),
            digest: self.digest,
            journal_hash: 0,
            attestations: AttestationLog::default(),
        };
        let replica = Replica::spawn(config, start).expect("replica");
        let (timings, durable) = engine_stage(self.load(), self.feeder(), self.args, &journal, Some(&replica));
        let lag = durable - replica.feed().applied_seq();
        let t = Instant::now();
        let report = replica.finish(durable).expect("replica");
        let drain = t.elapsed();
        println!(
            "round {round} (b) engine stage with the replica (nice {nice}) snapshotting, {:.2} s:",
            timings.elapsed.as_secs_f64()
        );
        println!("  {}", describe("apply", timings.apply_ns));
        println!("  {}", describe("step (apply + append + commit/256)", timings.step_ns));
        report_replica(&report, lag, drain);
        let _ = std::fs::remove_dir_all(&journal);
    }
}
