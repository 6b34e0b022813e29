//! A deterministic fault simulator in the style of TigerBeetle's VOPR.
//!
//! One seed is one run: a seeded workload (listings, accounts, deposits, spot and leveraged
//! perp orders, cancels, withdrawals, marks that gap 10–90 % and set off liquidation
//! cascades, funding, and the adversarial inputs of the hardening issue) goes through the real
//! stages of a verex run — verification under the one signature rule, the sequencer, the
//! engine, the journal writer with its commit mark on real files — on one thread, so that
//! everything that happens is a function of the seed. Faults are injected at seeded points:
//!
//! - **kill**: the process dies; what it wrote is in the page cache and survives;
//! - **power loss**: the process dies and every byte written after the last msync may be lost:
//!   the data is cut at a seeded byte beyond the last commit, and the torn frame there may be
//!   left half written;
//! - **failed msync**: the next msync of the records (or of the commit mark) reports an I/O
//!   error: the writer poisons itself, the process dies, and the unsynced bytes may be lost;
//! - **full disk**: preparing the next segment fails (as `fallocate` with `ENOSPC`);
//! - **corruption at rest**: a byte of a committed record, in a seeded segment, flips while the
//!   process is down.
//!
//! After every transaction the invariants of SPEC section 7 are checked (conservation, locks,
//! books, positions, margins; the insurance fund never negative; no asset's withdrawals above
//! its deposits; nothing uncovered: no balance that nobody deposited). After every fault the journal is recovered and checked: nothing released is
//! lost (the recovered journal reaches every seq whose events were released), nothing beyond
//! what was appended appears, a replay of the recovered journal (every signature re-checked)
//! gives the live run's events and state hash at that seq, and damage at rest is refused and
//! named by the file that holds it — never cut — and recovers once repaired. At the end, the
//! whole journal is replayed and also run through the threaded [`Pipeline`], and both must
//! equal the live state.
//!
//! A failure names its seed; `verex-sim --seed N` replays it exactly.

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use verex_engine::record::SignedTxBytes;
use verex_engine::runtime::{MemorySink, Pipeline, PipelineConfig};
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::text::event_json::render_event;
use verex_engine::text::tx_json::parse_tx_line;
use verex_engine::tx::{
    AddAsset, AddMarket, AssetAmount, Dec, Deposit, Funding, Mark, MarkPrice, MarketKind, Op, OrderType, Place, Side,
    SignedTx, Symbol, TimeInForce, Tx,
};
use verex_engine::verified::{VerifiedRecord, VerifiedTx};
use verex_engine::{Engine, Event, EventBuf, Genesis, Limits};
use verex_journal::test_support::XorShift;
use verex_journal::{Durability, JournalConfig, JournalError, JournalReader, JournalWriter, Record};

/// Most user accounts a run creates.
pub const MAX_SIM_ACCOUNTS: u64 = 64;
/// Most transactions one run sequences.
pub const MAX_SIM_TXS: u64 = 100_000;
/// Segment size of the simulated journals: small, so that runs roll often.
pub const SIM_SEGMENT_BYTES: u64 = 64 * 1024;

/// What one run does.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Order-flow transactions after the setup (at most [`MAX_SIM_TXS`]).
    pub txs: u64,
    /// User accounts (at most [`MAX_SIM_ACCOUNTS`]).
    pub accounts: u64,
    /// Faults injected over the run.
    pub faults: u32,
    /// Where the run's journal goes (a directory of its own, removed first).
    pub dir: PathBuf,
}

impl SimConfig {
    /// The defaults: 1,500 txs, 16 accounts, 6 faults, in `dir`.
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { txs: 1_500, accounts: 16, faults: 6, dir }
    }
}

/// The kinds of fault injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// The process dies; the page cache survives.
    Kill,
    /// The process dies and unsynced bytes are lost, cut at a seeded byte.
    PowerLoss,
    /// An msync of the records fails.
    FailedSync,
    /// The fdatasync of the commit mark fails.
    FailedMarkSync,
    /// Preparing the next segment fails (a full disk).
    FullDisk,
    /// A byte of a committed record flips at rest.
    CorruptAtRest,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Kill,
        FaultKind::PowerLoss,
        FaultKind::FailedSync,
        FaultKind::FailedMarkSync,
        FaultKind::FullDisk,
        FaultKind::CorruptAtRest,
    ];

    /// Its name in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::PowerLoss => "power loss",
            Self::FailedSync => "failed msync",
            Self::FailedMarkSync => "failed mark sync",
            Self::FullDisk => "full disk",
            Self::CorruptAtRest => "corruption at rest",
        }
    }
}

/// What one run went through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Records in the final journal.
    pub records: u64,
    /// Transactions applied by the live engine (lost ones included).
    pub applied: u64,
    /// Faults injected, by kind (in [`FaultKind::ALL`] order).
    pub faults: [u64; 6],
    /// Recoveries of the journal (after every fault).
    pub recoveries: u64,
    /// Records appended but lost by a fault (never released).
    pub lost_unreleased: u64,
    /// Torn tails recovery cut.
    pub torn_tails_cut: u64,
    /// Corruptions refused and named.
    pub corruptions_named: u64,
    /// Liquidation steps (book, insurance, ADL) the engine took.
    pub liquidations: u64,
    /// Adversarial inputs refused before sequencing (bad signatures, weak keys, bad text).
    pub refused: u64,
    /// Adversarial inputs sequenced and rejected by the engine (absurd stamps).
    pub rejected_stamps: u64,
    /// Lending events: explicit and automatic borrows and repayments, lends, redeems.
    pub pool_moves: u64,
    /// Interest accruals reported at `tick`.
    pub accruals: u64,
    /// Collateral sales and bad-debt payments of liquidated debtors.
    pub debt_liquidations: u64,
}

impl SimReport {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &SimReport) {
        self.records += other.records;
        self.applied += other.applied;
        for (a, b) in self.faults.iter_mut().zip(other.faults) {
            *a += b;
        }
        self.recoveries += other.recoveries;
        self.lost_unreleased += other.lost_unreleased;
        self.torn_tails_cut += other.torn_tails_cut;
        self.corruptions_named += other.corruptions_named;
        self.liquidations += other.liquidations;
        self.refused += other.refused;
        self.rejected_stamps += other.rejected_stamps;
        self.pool_moves += other.pool_moves;
        self.accruals += other.accruals;
        self.debt_liquidations += other.debt_liquidations;
    }
}

/// A run that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFailure {
    /// The seed that replays it.
    pub seed: u64,
    /// How many transactions the run had generated when it failed.
    pub step: u64,
    /// What broke.
    pub reason: String,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} failed at step {}: {}\n  replay it: cargo run --release -p verex-tools --bin verex-sim -- --seed {}",
            self.seed, self.step, self.reason, self.seed
        )
    }
}

impl std::error::Error for SimFailure {}

/// Runs one seed.
///
/// # Errors
/// [`SimFailure`] naming the seed, the step and the broken rule.
pub fn run_seed(seed: u64, config: &SimConfig) -> Result<SimReport, SimFailure> {
    let mut sim = Sim::new(seed, config)?;
    let outcome = sim.run();
    let _ = std::fs::remove_dir_all(&config.dir);
    outcome.map(|()| sim.report)
}

/// Signing keys: the operators, then accounts 1..=N.
struct Keys {
    admin: SigningKey,
    custody: SigningKey,
    oracle: SigningKey,
    accounts: Vec<SigningKey>,
}

/// Who signs a generated tx.
#[derive(Clone, Copy, Debug)]
enum Signer {
    Admin,
    Custody,
    Oracle,
    Account(u64),
}

/// One generated input (moved once from the generator to `feed`; never stored in bulk).
#[allow(clippy::large_enum_variant)]
enum Input {
    /// A well-formed tx, signed by its signer, maybe with its own (development) stamp.
    Tx(Tx, Signer, Option<u64>),
    /// An input that must be refused before sequencing.
    Refused(Refusable),
}

/// The hardening issue's adversarial inputs that never reach the journal.
enum Refusable {
    /// A signed tx whose signature must fail the rule (weak key, zero or tampered signature).
    Signed(Box<SignedTx>),
    /// A text line that must not parse (a key named twice, a 64 KB value).
    Text(String),
}

/// The journal's on-disk position of a record, for tearing and flipping bytes.
#[derive(Clone, Copy, Debug)]
struct Placed {
    seq: u64,
    segment: u64,
    frame_offset: u64,
    frame_end: u64,
}

struct Sim {
    seed: u64,
    rng: XorShift,
    config: SimConfig,
    keys: Keys,
    nonces: [u64; 3],
    account_nonces: Vec<u64>,
    engine: Engine,
    buf: EventBuf,
    sequencer: Sequencer,
    writer: Option<JournalWriter>,
    /// Records appended since the last commit, before the next one.
    commit_every: u64,
    since_commit: u64,
    appended_seq: u64,
    released_seq: u64,
    /// Per seq (index = seq): the live state hash after it and its rendered events.
    hashes: Vec<[u8; 32]>,
    events: Vec<Vec<String>>,
    /// Per asset index: Σ deposits and Σ withdrawals seen in events.
    deposited: Vec<u128>,
    withdrawn: Vec<u128>,
    /// Generator state.
    step: u64,
    mark_ticks: i64,
    fault_at: Vec<(u64, FaultKind)>,
    /// A sync failure armed in the writer, not yet fired.
    armed: Option<FaultKind>,
    report: SimReport,
}

const USDC: &str = "USDC";
const BTC: &str = "BTC";
const SPOT: &str = "BTC-USDC";
const PERP: &str = "BTC-PERP";

fn sym(text: &str) -> Symbol {
    Symbol::new(text).unwrap_or_default()
}

impl Sim {
    fn new(seed: u64, config: &SimConfig) -> Result<Self, SimFailure> {
        let fail = |reason: String| SimFailure { seed, step: 0, reason };
        if config.accounts == 0 || config.accounts > MAX_SIM_ACCOUNTS || config.txs > MAX_SIM_TXS {
            return Err(fail(format!(
                "config out of range: 1..={MAX_SIM_ACCOUNTS} accounts, at most {MAX_SIM_TXS} txs"
            )));
        }
        let _ = std::fs::remove_dir_all(&config.dir);
        let engine = Engine::new(Genesis::dev(), Limits::small()).map_err(|e| fail(e.to_string()))?;
        let keys = Keys {
            admin: dev_role_key(Role::Admin),
            custody: dev_role_key(Role::Custody),
            oracle: dev_role_key(Role::Oracle),
            accounts: (1..=config.accounts).map(dev_account_key).collect(),
        };
        let mut rng = XorShift::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED);
        let mut fault_at: Vec<(u64, FaultKind)> = (0..config.faults)
            .map(|_| {
                let at = 1 + rng.below(config.txs.max(1));
                (at, FaultKind::ALL[rng.below(FaultKind::ALL.len() as u64) as usize])
            })
            .collect();
        fault_at.sort_unstable();
        let mut sim = Self {
            seed,
            buf: engine.event_buf(),
            engine,
            keys,
            nonces: [0; 3],
            account_nonces: vec![0; config.accounts as usize + 1],
            sequencer: Sequencer::new(0, Clock::Deterministic),
            writer: None,
            commit_every: 1,
            since_commit: 0,
            appended_seq: 0,
            released_seq: 0,
            hashes: vec![[0; 32]],
            events: vec![Vec::new()],
            deposited: Vec::new(),
            withdrawn: Vec::new(),
            step: 0,
            mark_ticks: 1_000,
            fault_at,
            armed: None,
            report: SimReport { seed, ..SimReport::default() },
            rng,
            config: config.clone(),
        };
        sim.writer = Some(sim.open_writer().map_err(|e| fail(format!("cannot create the journal: {e}")))?);
        sim.commit_every = sim.next_commit_every();
        Ok(sim)
    }

    fn fail(&self, reason: impl Into<String>) -> SimFailure {
        SimFailure { seed: self.seed, step: self.step, reason: reason.into() }
    }

    fn open_writer(&self) -> Result<JournalWriter, JournalError> {
        let config = JournalConfig {
            dir: self.config.dir.clone(),
            segment_bytes: SIM_SEGMENT_BYTES,
            durability: Durability::Batch,
        };
        JournalWriter::open(config).map(|(writer, _)| writer)
    }

    fn next_commit_every(&mut self) -> u64 {
        1 + self.rng.below(48)
    }

    // ----- the run ----------------------------------------------------------------------

    fn run(&mut self) -> Result<(), SimFailure> {
        for input in self.setup() {
            self.feed(input)?;
        }
        while self.step < self.config.txs {
            self.step += 1;
            while self.fault_at.first().is_some_and(|(at, _)| *at <= self.step) {
                let (_, kind) = self.fault_at.remove(0);
                self.inject(kind)?;
            }
            let input = self.next_input();
            self.feed(input)?;
        }
        self.commit()?;
        self.final_checks()
    }

    /// Listings, accounts, deposits, a first mark, and (on odd seeds) a funded insurance fund.
    fn setup(&mut self) -> Vec<Input> {
        let mut inputs = vec![
            Input::Tx(op_tx(Op::AddAsset(lending_asset(USDC, 6))), Signer::Admin, None),
            Input::Tx(op_tx(Op::AddAsset(lending_asset(BTC, 8))), Signer::Admin, None),
            Input::Tx(op_tx(Op::AddMarket(spot_market())), Signer::Admin, None),
            Input::Tx(op_tx(Op::AddMarket(perp_market())), Signer::Admin, None),
            Input::Tx(op_tx(Op::Mark(mark_of(&[(PERP, self.mark_ticks, 1), (BTC, 100, 0)]))), Signer::Oracle, None),
        ];
        for account in 1..=self.config.accounts {
            inputs.push(Input::Tx(op_tx(Op::CreateAccount), Signer::Account(account), None));
            let usdc = 1_000 + self.rng.below(20_000) as i64;
            inputs.push(Input::Tx(deposit(account, USDC, usdc), Signer::Custody, None));
            if account % 3 == 0 {
                inputs.push(Input::Tx(deposit(account, BTC, 1 + self.rng.below(20) as i64), Signer::Custody, None));
            }
        }
        if self.seed % 2 == 1 {
            inputs.push(Input::Tx(deposit(0, USDC, 5_000 + self.rng.below(50_000) as i64), Signer::Custody, None));
        }
        inputs
    }

    fn next_input(&mut self) -> Input {
        let roll = self.rng.below(100);
        let account = 1 + self.rng.below(self.config.accounts);
        match roll {
            0..=23 => self.perp_order(account, false),
            24..=29 => self.pool_op(account),
            30..=41 => self.perp_order(account, true),
            42..=49 => self.spot_order(account),
            50..=57 => Input::Tx(
                op_tx(Op::CancelAll(sym(if roll.is_multiple_of(2) { PERP } else { SPOT }))),
                Signer::Account(account),
                None,
            ),
            58..=65 => self.mark_move(false),
            66..=68 => self.mark_move(true),
            69..=71 => {
                let rate = self.rng.below(200) as i64 - 100;
                Input::Tx(
                    op_tx(Op::Funding(Funding { market: sym(PERP), rate: Dec::new(rate, 5) })),
                    Signer::Oracle,
                    None,
                )
            }
            72..=78 => {
                let amount = 1 + self.rng.below(30_000) as i64;
                let op = Op::Withdraw(AssetAmount { asset: sym(USDC), amount: Dec::new(amount, 0) });
                Input::Tx(op_tx(op), Signer::Account(account), None)
            }
            79..=84 => Input::Tx(deposit(account, USDC, 1 + self.rng.below(5_000) as i64), Signer::Custody, None),
            85..=86 => Input::Tx(op_tx(Op::Tick), Signer::Oracle, None),
            87..=88 => {
                // Time jumps up to 30 days: interest accrues in earnest.
                let jump = (1 + self.rng.below(30 * 86_400)) * 1_000_000_000;
                Input::Tx(op_tx(Op::Tick), Signer::Oracle, Some(self.engine.last_ts() + jump))
            }
            _ => self.adversarial(account),
        }
    }

    /// A lending pool op: lend, redeem, borrow or repay USDC or BTC.
    fn pool_op(&mut self, account: u64) -> Input {
        let (asset, amount) = if self.rng.below(2) == 0 {
            (USDC, Dec::new(1 + self.rng.below(5_000) as i64, 0))
        } else {
            (BTC, Dec::new(1 + self.rng.below(2_000) as i64, 3))
        };
        let op = AssetAmount { asset: sym(asset), amount };
        let op = match self.rng.below(4) {
            0 => Op::Lend(op),
            1 => Op::Redeem(op),
            2 => Op::Borrow(op),
            _ => Op::Repay(op),
        };
        Input::Tx(op_tx(op), Signer::Account(account), None)
    }

    fn perp_order(&mut self, account: u64, market: bool) -> Input {
        let side = if self.rng.below(2) == 0 { Side::Buy } else { Side::Sell };
        // Up to ~2x the account's first deposit in notional at 10x leverage: often near the limit.
        let qty_milli = 100 + self.rng.below(60_000) as i64;
        let offset = self.rng.below(40) as i64 - 10;
        let price_ticks = match side {
            Side::Buy => (self.mark_ticks - offset).max(1),
            Side::Sell => (self.mark_ticks + offset).max(1),
        };
        let place = Place {
            market: sym(PERP),
            side,
            order_type: if market { OrderType::Market } else { OrderType::Limit },
            tif: if market { TimeInForce::Ioc } else { TimeInForce::Gtc },
            reduce_only: market && self.rng.below(4) == 0,
            price: if market { Dec::ZERO } else { Dec::new(price_ticks, 1) },
            qty: Dec::new(qty_milli, 3),
            client_id: 0,
        };
        Input::Tx(op_tx(Op::Place(place)), Signer::Account(account), None)
    }

    fn spot_order(&mut self, account: u64) -> Input {
        let side = if self.rng.below(2) == 0 { Side::Buy } else { Side::Sell };
        let price_cents = 9_000 + self.rng.below(2_000) as i64;
        let place = Place {
            market: sym(SPOT),
            side,
            order_type: OrderType::Limit,
            tif: if self.rng.below(3) == 0 { TimeInForce::Ioc } else { TimeInForce::Gtc },
            reduce_only: false,
            price: Dec::new(price_cents, 2),
            qty: Dec::new(1 + self.rng.below(50_000) as i64, 4),
            client_id: 0,
        };
        Input::Tx(op_tx(Op::Place(place)), Signer::Account(account), None)
    }

    /// A small move, or a gap of 10–90 % in either direction (a liquidation cascade).
    fn mark_move(&mut self, gap: bool) -> Input {
        let percent = if gap { 10 + self.rng.below(81) as i64 } else { self.rng.below(4) as i64 };
        let up = self.rng.below(2) == 0;
        let moved = if up {
            self.mark_ticks + self.mark_ticks * percent / 100
        } else {
            self.mark_ticks - self.mark_ticks * percent / 100
        };
        // Keep prices within 1 and 1,000,000 ticks: a run drifts, it does not explode.
        self.mark_ticks = moved.clamp(10, 1_000_000);
        let index = (self.mark_ticks / 10).max(1);
        Input::Tx(op_tx(Op::Mark(mark_of(&[(PERP, self.mark_ticks, 1), (BTC, index, 0)]))), Signer::Oracle, None)
    }

    /// The hardening issue's hostile inputs.
    fn adversarial(&mut self, account: u64) -> Input {
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let mut constant = [0u8; 64];
        constant[0] = 1;
        match self.rng.below(6) {
            // A weak key signs "for every message": create an account, then withdraw.
            0 => Input::Refused(Refusable::Signed(Box::new(SignedTx {
                tx: Tx { signer: weak, nonce: 1, account: 0, op: Op::CreateAccount },
                signature: constant,
            }))),
            // A deposit claiming custody, with an all-zero signature.
            1 => {
                let custody = self.keys.custody.verifying_key().to_bytes();
                let tx = Tx { signer: custody, nonce: u64::MAX, ..deposit(account, USDC, 1_000_000) };
                Input::Refused(Refusable::Signed(Box::new(SignedTx { tx, signature: [0; 64] })))
            }
            // An honest withdrawal whose signature was tampered with in transit.
            2 => {
                let key = &self.keys.accounts[account as usize - 1];
                let op = Op::Withdraw(AssetAmount { asset: sym(USDC), amount: Dec::new(1, 0) });
                let tx = Tx { signer: key.verifying_key().to_bytes(), nonce: u64::MAX - 1, account, op };
                let mut signed = verex_engine::signing::sign(tx, key);
                signed.signature[40] ^= 0x10;
                Input::Refused(Refusable::Signed(Box::new(signed)))
            }
            // A key named twice (which amount is meant?).
            3 => Input::Refused(Refusable::Text(format!(
                r#"{{"op":"withdraw","account":{account},"asset":"USDC","amount":"1","amount":"100000"}}"#
            ))),
            // A 64 KB value.
            4 => Input::Refused(Refusable::Text(format!(r#"{{"op":"{}"}}"#, "X".repeat(64 * 1024)))),
            // A stamp far in the future on a tx from an unknown key: rejected, clock unmoved.
            _ => {
                let stamp = if self.rng.below(2) == 0 { u64::MAX } else { 1 << 62 };
                Input::Tx(op_tx(Op::CreateAccount), Signer::Account(account), Some(stamp))
            }
        }
    }

    // ----- one input through the stages -------------------------------------------------------

    fn feed(&mut self, input: Input) -> Result<(), SimFailure> {
        match input {
            Input::Refused(Refusable::Signed(signed)) => {
                if VerifiedTx::verify_signed(&signed).is_ok() {
                    return Err(self.fail("an adversarial signature passed the rule"));
                }
                let mut verdicts = Vec::new();
                VerifiedTx::verify_batch(&[SignedTxBytes::encode(&signed)], &mut verdicts);
                if verdicts.first().is_some_and(Result::is_ok) {
                    return Err(self.fail("batch verification accepted a signature single verification refuses"));
                }
                self.report.refused += 1;
                Ok(())
            }
            Input::Refused(Refusable::Text(line)) => match parse_tx_line(&line) {
                Ok(_) => Err(self.fail(format!("a hostile line parsed: {:.80}", line))),
                Err(e) if e.to_string().len() > 400 => Err(self.fail("an error message echoed the input")),
                Err(_) => {
                    self.report.refused += 1;
                    Ok(())
                }
            },
            Input::Tx(tx, signer, ts) => self.sequence(tx, signer, ts),
        }
    }

    fn sequence(&mut self, mut tx: Tx, signer: Signer, ts: Option<u64>) -> Result<(), SimFailure> {
        let key = match signer {
            Signer::Admin => {
                self.nonces[0] += 1;
                tx.nonce = self.nonces[0];
                &self.keys.admin
            }
            Signer::Custody => {
                self.nonces[1] += 1;
                tx.nonce = self.nonces[1];
                &self.keys.custody
            }
            Signer::Oracle => {
                self.nonces[2] += 1;
                tx.nonce = self.nonces[2];
                &self.keys.oracle
            }
            Signer::Account(account) => {
                self.account_nonces[account as usize] += 1;
                tx.nonce = self.account_nonces[account as usize];
                if !matches!(tx.op, Op::CreateAccount) {
                    tx.account = account;
                }
                &self.keys.accounts[account as usize - 1]
            }
        };
        let verified = VerifiedTx::sign(tx, key);
        let record = self.sequencer.stamp(&verified, ts).map_err(|e| self.fail(format!("stamp: {e}")))?;
        self.engine.apply(record.verified(), &mut self.buf).map_err(|e| self.fail(format!("apply: {e}")))?;
        self.report.applied += 1;
        let seq = record.seq();
        // Only an absurd stamp must be rejected; a tick's own stamp (a jump in time) is fine.
        self.observe(seq, ts.is_some_and(|ts| ts >= verex_engine::sequencer::MAX_TS_NS))?;
        let Some(writer) = self.writer.as_mut() else { return Err(self.fail("no writer")) };
        if let Err(error) = writer.append(seq, &record.bytes().0) {
            // A full disk (or any append failure) poisons the writer: the process dies.
            return self.crash_and_recover(false, &format!("append of seq {seq} failed: {error}"));
        }
        self.appended_seq = seq;
        self.since_commit += 1;
        if self.since_commit >= self.commit_every {
            self.commit()?;
        }
        Ok(())
    }

    /// Checks the state after `seq` and records what the live run produced at it.
    fn observe(&mut self, seq: u64, own_stamp: bool) -> Result<(), SimFailure> {
        let catalog = self.engine.catalog();
        let rendered: Vec<String> = self.buf.events().iter().map(|e| render_event(seq, e, catalog)).collect();
        for event in self.buf.events() {
            match *event {
                Event::Deposit { asset, amount, .. } => add(&mut self.deposited, asset, amount),
                Event::Withdrawal { asset, amount, .. } => add(&mut self.withdrawn, asset, amount),
                Event::Liquidation { .. } | Event::Adl { .. } => self.report.liquidations += 1,
                Event::Pool { .. } | Event::Borrow { .. } | Event::Repay { .. } => self.report.pool_moves += 1,
                Event::Accrual { .. } => self.report.accruals += 1,
                Event::CollateralSold { .. } | Event::BadDebt { .. } => self.report.debt_liquidations += 1,
                _ => {}
            }
        }
        if own_stamp {
            if !rendered.iter().any(|e| e.contains("invalid_ts")) {
                return Err(self.fail(format!("an absurd stamp was not rejected: {rendered:?}")));
            }
            self.report.rejected_stamps += 1;
        }
        self.engine
            .check_invariants()
            .map_err(|e| self.fail(format!("invariant broken after seq {seq}: {e}; its events: {rendered:?}")))?;
        self.check_money()?;
        if self.hashes.len() as u64 != seq || self.events.len() as u64 != seq {
            return Err(self.fail(format!("bookkeeping out of step at seq {seq}")));
        }
        self.hashes.push(self.engine.state_hash());
        self.events.push(rendered);
        Ok(())
    }

    /// The insurance fund is never negative; no asset pays out more than was deposited; no
    /// balance is one that nobody deposited (nothing uncovered, SPEC 6, 6a).
    fn check_money(&self) -> Result<(), SimFailure> {
        for asset in 0..u16::try_from(self.engine.catalog().assets().len()).unwrap_or(0) {
            let fund = self.engine.insurance(asset);
            if fund < 0 {
                return Err(self.fail(format!("insurance fund of asset {asset} is {fund}")));
            }
            let uncovered = self.engine.uncovered(asset);
            if uncovered != 0 {
                return Err(self.fail(format!("asset {asset}: {uncovered} uncovered (paid out, deposited by nobody)")));
            }
            let (deposited, withdrawn) = (at(&self.deposited, asset), at(&self.withdrawn, asset));
            if withdrawn > deposited {
                return Err(self.fail(format!("asset {asset}: {withdrawn} withdrawn > {deposited} deposited")));
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SimFailure> {
        let Some(writer) = self.writer.as_mut() else { return Err(self.fail("no writer")) };
        match writer.commit() {
            Ok(durable) => {
                if durable != self.appended_seq {
                    return Err(self.fail(format!("commit made seq {durable} durable, appended {}", self.appended_seq)));
                }
                // Events up to `durable` are released now.
                self.released_seq = durable;
                self.since_commit = 0;
                self.commit_every = self.next_commit_every();
                Ok(())
            }
            Err(error) => {
                // A failed msync of the records may have lost them; a failed sync of the mark
                // comes after the records' msync returned: they are durable.
                let tear = self.armed.take() == Some(FaultKind::FailedSync) && self.rng.below(2) == 0;
                self.crash_and_recover(tear, &format!("commit failed: {error}"))
            }
        }
    }

    // ----- faults --------------------------------------------------------------------------

    fn inject(&mut self, kind: FaultKind) -> Result<(), SimFailure> {
        self.report.faults[FaultKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)] += 1;
        match kind {
            FaultKind::Kill => self.crash_and_recover(false, "kill"),
            FaultKind::PowerLoss => self.crash_and_recover(true, "power loss"),
            FaultKind::FailedSync => {
                self.writer.as_mut().map(JournalWriter::fail_next_sync_for_tests);
                self.armed = Some(kind);
                self.commit_now_if_pending()
            }
            FaultKind::FailedMarkSync => {
                self.writer.as_mut().map(JournalWriter::fail_next_mark_sync_for_tests);
                self.armed = Some(kind);
                self.commit_now_if_pending()
            }
            FaultKind::FullDisk => {
                self.writer.as_mut().map(JournalWriter::fail_next_segment_prepare_for_tests);
                Ok(())
            }
            FaultKind::CorruptAtRest => self.corrupt_at_rest(),
        }
    }

    /// Commits now when records wait, so that an armed sync failure fires at once.
    fn commit_now_if_pending(&mut self) -> Result<(), SimFailure> {
        if self.since_commit > 0 {
            self.commit()
        } else {
            Ok(())
        }
    }

    /// Where every record sits on disk (read from the files, with no writer open).
    fn placements(&self) -> Result<Vec<Placed>, SimFailure> {
        let reader = JournalReader::open(&self.config.dir).map_err(|e| self.fail(format!("reader: {e}")))?;
        reader
            .iter()
            .map(|item| {
                let record = item.map_err(|e| self.fail(format!("reader: {e}")))?;
                Ok(placed(&record))
            })
            .collect()
    }

    /// The process dies (`tear`: and the bytes written since the last msync are lost from a
    /// seeded byte on); then the journal is recovered and checked.
    fn crash_and_recover(&mut self, tear: bool, what: &str) -> Result<(), SimFailure> {
        // What the writer made durable (a commit, or a roll, which msyncs and marks all).
        let durable = self.writer.take().map_or(self.released_seq, |writer| writer.durable_seq());
        self.armed = None;
        if tear {
            self.tear_unsynced(durable, what)?;
        }
        self.recover(what)
    }

    /// Cuts the data at a seeded byte inside the records beyond `durable` (they are all in the
    /// last segment: a roll msyncs and marks everything before it), zeroing everything after
    /// it; the frame at the cut may keep a garbage prefix (a write torn part-way).
    fn tear_unsynced(&mut self, durable: u64, what: &str) -> Result<(), SimFailure> {
        if JournalReader::open(&self.config.dir).is_err() {
            // Nothing readable to tear (a journal whose first segment never came to be).
            return Ok(());
        }
        let unsynced: Vec<Placed> = self.placements()?.into_iter().filter(|p| p.seq > durable).collect();
        let Some(first) = unsynced.first().copied() else { return Ok(()) };
        if unsynced.iter().any(|p| p.segment != first.segment) {
            return Err(self.fail(format!("{what}: records beyond the durable seq {durable} span two segments")));
        }
        let victim = unsynced[self.rng.below(unsynced.len() as u64) as usize];
        let cut = victim.frame_offset + self.rng.below(victim.frame_end - victim.frame_offset);
        let path = segment_path(&self.config.dir, victim.segment);
        zero_from(&path, cut).map_err(|e| self.fail(format!("{what}: tearing {}: {e}", path.display())))?;
        if self.rng.below(3) == 0 {
            // A torn write: the first bytes of the cut frame landed, as noise.
            let len = (cut - victim.frame_offset).min(16);
            let noise: Vec<u8> = (0..len).map(|_| self.rng.next_u64() as u8).collect();
            write_at(&path, victim.frame_offset, &noise).map_err(|e| self.fail(format!("{what}: {e}")))?;
        }
        Ok(())
    }

    /// Recovers the journal and checks it against what the live run released and appended,
    /// then continues from the recovered state.
    fn recover(&mut self, what: &str) -> Result<(), SimFailure> {
        self.report.recoveries += 1;
        let config = JournalConfig {
            dir: self.config.dir.clone(),
            segment_bytes: SIM_SEGMENT_BYTES,
            durability: Durability::Batch,
        };
        let (writer, report) =
            JournalWriter::open(config).map_err(|e| self.fail(format!("after {what}: recovery refused: {e}")))?;
        if report.torn_at.is_some() {
            self.report.torn_tails_cut += 1;
        }
        let recovered = report.last_seq;
        if recovered < self.released_seq {
            return Err(self.fail(format!(
                "after {what}: released events are lost: recovery ends at seq {recovered}, events were released up to seq {}",
                self.released_seq
            )));
        }
        if recovered > self.appended_seq {
            return Err(self.fail(format!(
                "after {what}: recovery found seq {recovered}, only {} were appended",
                self.appended_seq
            )));
        }
        self.report.lost_unreleased += self.appended_seq - recovered;
        drop(writer);
        let engine = self.replay_journal(what)?;
        // Continue as the restarted process would: from the recovered state.
        self.engine = engine;
        self.buf = self.engine.event_buf();
        self.sequencer = Sequencer::resume(recovered, self.engine.last_ts(), Clock::Deterministic);
        self.hashes.truncate(recovered as usize + 1);
        self.events.truncate(recovered as usize + 1);
        self.recount_money();
        self.appended_seq = recovered;
        // The reopened writer synced what it recovered and marked it committed.
        self.released_seq = recovered;
        self.since_commit = 0;
        self.writer = Some(self.open_writer().map_err(|e| self.fail(format!("after {what}: reopen: {e}")))?);
        Ok(())
    }

    /// Replays the whole journal into a fresh engine (every signature re-checked) and checks
    /// each record's events and the state hash against the live run's.
    fn replay_journal(&self, what: &str) -> Result<Engine, SimFailure> {
        let reader =
            JournalReader::open(&self.config.dir).map_err(|e| self.fail(format!("after {what}: reader: {e}")))?;
        let mut engine = Engine::new(Genesis::dev(), Limits::small()).map_err(|e| self.fail(e.to_string()))?;
        let mut buf = engine.event_buf();
        for item in reader.iter() {
            let record = item.map_err(|e| self.fail(format!("after {what}: reader: {e}")))?;
            let archived = verex_engine::record::access_record(record.payload)
                .map_err(|e| self.fail(format!("after {what}: seq {}: {e}", record.seq)))?;
            let verified = VerifiedRecord::verify(archived)
                .map_err(|e| self.fail(format!("after {what}: seq {}: {e}", record.seq)))?;
            engine.apply(verified, &mut buf).map_err(|e| self.fail(format!("after {what}: replay: {e}")))?;
            let seq = record.seq;
            let rendered: Vec<String> = buf.events().iter().map(|e| render_event(seq, e, engine.catalog())).collect();
            if self.events.get(seq as usize) != Some(&rendered) {
                return Err(self.fail(format!("after {what}: replayed events of seq {seq} differ from the live run's")));
            }
        }
        let seq = engine.seq();
        if self.hashes.get(seq as usize) != Some(&engine.state_hash()) {
            return Err(self.fail(format!("after {what}: the replayed state at seq {seq} differs from the live run's")));
        }
        engine.check_invariants().map_err(|e| self.fail(format!("after {what}: replayed state: {e}")))?;
        Ok(engine)
    }

    /// Deposit and withdrawal totals from the surviving events.
    fn recount_money(&mut self) {
        self.deposited.clear();
        self.withdrawn.clear();
        for events in &self.events {
            for line in events {
                let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                let kind = value["event"].as_str().unwrap_or("");
                if kind != "deposit" && kind != "withdrawal" {
                    continue;
                }
                let asset = self.engine.catalog().asset_index(&sym(value["asset"].as_str().unwrap_or(""))).unwrap_or(0);
                let decimals = self.engine.catalog().assets().get(usize::from(asset)).map_or(0, |a| a.decimals);
                let units = decimal_units(value["amount"].as_str().unwrap_or("0"), decimals);
                if kind == "deposit" {
                    add(&mut self.deposited, asset, units);
                } else {
                    add(&mut self.withdrawn, asset, units);
                }
            }
        }
    }

    /// Flips a byte inside a committed record while the process is down: recovery must refuse,
    /// name the segment file that holds it, and modify nothing; once the byte is restored the
    /// journal recovers.
    fn corrupt_at_rest(&mut self) -> Result<(), SimFailure> {
        self.commit()?;
        drop(self.writer.take());
        let placements = self.placements()?;
        let committed: Vec<Placed> = placements.into_iter().filter(|p| p.seq <= self.released_seq).collect();
        if committed.is_empty() {
            return self.recover("an idle restart");
        }
        let victim = committed[self.rng.below(committed.len() as u64) as usize];
        let offset = victim.frame_offset + self.rng.below(victim.frame_end - victim.frame_offset);
        let bit = 1u8 << self.rng.below(8);
        let path = segment_path(&self.config.dir, victim.segment);
        let before = std::fs::read(&path).map_err(|e| self.fail(format!("read {}: {e}", path.display())))?;
        flip(&path, offset, bit).map_err(|e| self.fail(format!("flip: {e}")))?;
        let config = JournalConfig {
            dir: self.config.dir.clone(),
            segment_bytes: SIM_SEGMENT_BYTES,
            durability: Durability::Batch,
        };
        match JournalWriter::open(config) {
            Ok((_, report)) => {
                return Err(self.fail(format!(
                "a flipped bit at offset {offset} of {} (seq {}, committed) was not refused: recovery ended at seq {}",
                path.display(),
                victim.seq,
                report.last_seq
            )))
            }
            Err(JournalError::Corrupt { file, .. }) if file == path => {}
            Err(other) => {
                return Err(self.fail(format!(
                    "a flipped bit in {} (seq {}) was refused, but not named there: {other}",
                    path.display(),
                    victim.seq
                )))
            }
        }
        let mut after = std::fs::read(&path).map_err(|e| self.fail(format!("read {}: {e}", path.display())))?;
        after[offset as usize] ^= bit;
        if after != before {
            return Err(self.fail(format!("recovery modified {} while refusing it", path.display())));
        }
        // The read-only path names it too.
        let named_by_reader = match JournalReader::open(&self.config.dir) {
            Err(JournalError::Corrupt { file, .. }) => file == path,
            Ok(reader) => {
                reader.iter().any(|item| matches!(item, Err(JournalError::Corrupt { ref file, .. }) if *file == path))
            }
            Err(_) => false,
        };
        if !named_by_reader {
            return Err(self.fail(format!("the reader did not name {} for a flipped committed bit", path.display())));
        }
        self.report.corruptions_named += 1;
        flip(&path, offset, bit).map_err(|e| self.fail(format!("restore: {e}")))?;
        self.recover("a repaired corruption")
    }

    // ----- the end ----------------------------------------------------------------------------

    /// The whole journal replays to the live state, and the threaded pipeline fed the same
    /// records gets there too.
    fn final_checks(&mut self) -> Result<(), SimFailure> {
        drop(self.writer.take());
        let replayed = self.replay_journal("the run")?;
        if replayed.state_hash() != self.engine.state_hash() {
            return Err(self.fail("the final replay differs from the live state"));
        }
        let reader = JournalReader::open(&self.config.dir).map_err(|e| self.fail(format!("reader: {e}")))?;
        let mut txs = Vec::new();
        for item in reader.iter() {
            let record = item.map_err(|e| self.fail(format!("reader: {e}")))?;
            let archived = verex_engine::record::access_record(record.payload).map_err(|e| self.fail(e.to_string()))?;
            let native = verex_engine::record::to_native(archived).map_err(|e| self.fail(e.to_string()))?;
            let tx = VerifiedTx::verify_signed(&native.signed).map_err(|e| self.fail(e.to_string()))?;
            txs.push((tx, native.ts));
        }
        self.report.records = txs.len() as u64;
        let engine = Engine::new(Genesis::dev(), Limits::small()).map_err(|e| self.fail(e.to_string()))?;
        let config =
            PipelineConfig { ring_slots: 256, output_slots: 4096, ..PipelineConfig::yielding(Clock::Deterministic) };
        let mut pipeline = Pipeline::start(engine, MemorySink::discarding(), |_: u64, _: &Event| {}, config)
            .map_err(|e| self.fail(format!("pipeline: {e}")))?;
        for (k, (tx, ts)) in txs.iter().enumerate() {
            pipeline.submit(tx, Some(*ts), k as u64).map_err(|e| self.fail(format!("pipeline: {e}")))?;
        }
        let stopped = pipeline.shutdown().map_err(|e| self.fail(format!("pipeline: {e}")))?;
        if stopped.engine.state_hash() != self.engine.state_hash() {
            return Err(self.fail("the threaded pipeline fed the journal's records differs from the live state"));
        }
        Ok(())
    }
}

fn op_tx(op: Op) -> Tx {
    Tx { signer: [0; 32], nonce: 0, account: 0, op }
}

fn deposit(account: u64, asset: &str, whole: i64) -> Tx {
    op_tx(Op::Deposit(Deposit { account, asset: sym(asset), amount: Dec::new(whole, 0), chain_ref: [0; 32] }))
}

/// An asset with a lending pool: 2 % a year at utilization 0, 20 % at the kink (0.8), 300 % at
/// 1, reserve factor 0.1, cap 0.95 (the defaults).
fn lending_asset(symbol: &str, decimals: u8) -> AddAsset {
    let mut asset = AddAsset::new(sym(symbol), decimals);
    asset.rate_base = Dec::new(2, 2);
    asset.rate_at_kink = Dec::new(2, 1);
    asset.rate_max = Dec::new(3, 0);
    asset
}

fn spot_market() -> AddMarket {
    AddMarket {
        symbol: sym(SPOT),
        kind: MarketKind::Spot,
        base: sym(BTC),
        quote: sym(USDC),
        tick: Dec::new(1, 2),
        step: Dec::new(1, 4),
        maker_fee: Dec::new(2, 4),
        taker_fee: Dec::new(5, 4),
        imf: Dec::ZERO,
        mmf: Dec::ZERO,
        funding_interval_ns: 0,
    }
}

fn perp_market() -> AddMarket {
    AddMarket {
        symbol: sym(PERP),
        kind: MarketKind::Perp,
        base: sym(BTC),
        quote: sym(USDC),
        tick: Dec::new(1, 1),
        step: Dec::new(1, 3),
        maker_fee: Dec::ZERO,
        taker_fee: Dec::new(5, 4),
        imf: Dec::new(1, 1),
        mmf: Dec::new(5, 2),
        funding_interval_ns: 8 * 3_600 * 1_000_000_000,
    }
}

fn mark_of(prices: &[(&str, i64, u8)]) -> Mark {
    let entries: Vec<MarkPrice> = prices
        .iter()
        .map(|(symbol, mantissa, scale)| MarkPrice { symbol: sym(symbol), price: Dec::new(*mantissa, *scale) })
        .collect();
    Mark::from_prices(&entries).unwrap_or(Mark { count: 0, prices: [MarkPrice::default(); 8] })
}

fn placed(record: &Record<'_>) -> Placed {
    Placed {
        seq: record.seq,
        segment: record.segment_index,
        frame_offset: record.frame_offset,
        frame_end: record.frame_offset + verex_journal::frame_len(record.payload.len() as u64),
    }
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.seg"))
}

fn add(totals: &mut Vec<u128>, asset: u16, amount: u64) {
    let a = usize::from(asset);
    if totals.len() <= a {
        totals.resize(a + 1, 0);
    }
    totals[a] += u128::from(amount);
}

fn at(totals: &[u128], asset: u16) -> u128 {
    totals.get(usize::from(asset)).copied().unwrap_or(0)
}

/// A normalised decimal string (as events render them) in units of `10^-decimals`.
fn decimal_units(text: &str, decimals: u8) -> u64 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut digits = String::from(whole);
    let places = usize::from(decimals);
    digits.push_str(&format!("{fraction:0<places$}")[..places]);
    digits.parse().unwrap_or(0)
}

fn zero_from(path: &Path, offset: u64) -> std::io::Result<()> {
    let len = std::fs::metadata(path)?.len();
    if offset >= len {
        return Ok(());
    }
    write_at(path, offset, &vec![0u8; (len - offset) as usize])
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all_at(bytes, offset)?;
    file.sync_data()
}

fn flip(path: &Path, offset: u64, bit: u8) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset)?;
    byte[0] ^= bit;
    file.write_all_at(&byte, offset)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_become_units() {
        assert_eq!(decimal_units("12", 6), 12_000_000);
        assert_eq!(decimal_units("0.5", 6), 500_000);
        assert_eq!(decimal_units("1.000001", 6), 1_000_001);
    }
}
