//! verex's whole state machine on the stream: every command becomes an archived, sequenced
//! record applied with `Engine::apply`, what a verex deployment runs per transaction
//! (nonce and stamp checks, decimal conversion, lock rule and balance check, matching, fee
//! settlement, events). [`super::verex`] is the matching alone.
//!
//! The records are encoded before timing, with seq, stamp and per-account nonce, and a zero
//! signature (the engine trusts its ingress, which verified it). Order ids are verex's own:
//! the engine numbers accepted places from 1, so the stream's order `k` is verex order `k + 1`.

use verex_engine::record::RecordBytes;
use verex_engine::sequencer::{DEV_CLOCK_START_NS, DEV_CLOCK_STEP_NS};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::tx::{
    AddAsset, AddMarket, Amend, Dec, Deposit, MarketKind, Op, OrderRef, OrderType, Place, SequencedTx, SignedTx,
    Symbol, TimeInForce, Tx,
};
use verex_engine::verified::VerifiedRecord;
use verex_engine::{Engine, Event, EventBuf, Genesis, Limits};

use super::Contender;
use crate::workload::{Command, CommandKind, Outcome, Side, Workload};

/// Price decimals of every bench market: a tick is 0.01.
pub const PRICE_DECIMALS: u8 = 2;
/// Quantity decimals of every bench market: a lot is 0.0001 base.
pub const QTY_DECIMALS: u8 = 4;
/// Base-asset units per lot (BTC has 8 decimals, a lot is 0.0001).
pub const LOT_UNITS: u64 = 10_000;
/// Quote deposited per account, in whole USDC: covers every buy lock of the stream.
pub const DEPOSIT_QUOTE: i64 = 1_000_000;
/// Base deposited per account, in whole BTC: covers every sell lock of the stream.
pub const DEPOSIT_BASE: i64 = 10_000;

/// The symbol of book `index`.
#[must_use]
pub fn market_symbol(index: u16) -> Symbol {
    Symbol::new(&format!("BK{index:04}-USDC")).unwrap_or_default()
}

fn asset(text: &str) -> Symbol {
    Symbol::new(text).unwrap_or_default()
}

/// Limits that hold the workload with room: orders, levels, accounts and markets.
#[must_use]
pub fn limits(workload: &Workload) -> Limits {
    let config = &workload.config;
    Limits {
        max_accounts: config.accounts + 16,
        max_markets: config.symbols.max(1),
        max_orders: 1 << 16,
        max_price_levels: 1 << 16,
        max_levels_per_side: 1 << 13,
        max_orders_per_account: 256,
        ..Limits::small()
    }
}

/// Encodes setup, prefill and stream as records with gap-free seqs and per-signer nonces.
struct Encoder {
    records: Vec<RecordBytes>,
    /// Per account (index = account id): its signer key and its last nonce.
    keys: Vec<[u8; 32]>,
    nonces: Vec<u64>,
    admin: [u8; 32],
    custody: [u8; 32],
    admin_nonce: u64,
    custody_nonce: u64,
    symbols: Vec<Symbol>,
}

impl Encoder {
    fn new(workload: &Workload) -> Self {
        let accounts = workload.config.accounts as usize;
        let keys = (0..=accounts as u64).map(|a| dev_account_key(a).verifying_key().to_bytes()).collect();
        Self {
            records: Vec::new(),
            keys,
            nonces: vec![0; accounts + 1],
            admin: dev_role_key(Role::Admin).verifying_key().to_bytes(),
            custody: dev_role_key(Role::Custody).verifying_key().to_bytes(),
            admin_nonce: 0,
            custody_nonce: 0,
            symbols: (0..workload.config.symbols).map(market_symbol).collect(),
        }
    }

    fn push(&mut self, tx: Tx) {
        let seq = self.records.len() as u64 + 1;
        let ts = DEV_CLOCK_START_NS + seq * DEV_CLOCK_STEP_NS;
        self.records.push(RecordBytes::encode(&SequencedTx { seq, ts, signed: SignedTx { tx, signature: [0; 64] } }));
    }

    fn admin(&mut self, op: Op) {
        self.admin_nonce += 1;
        self.push(Tx { signer: self.admin, nonce: self.admin_nonce, account: 0, op });
    }

    fn custody(&mut self, op: Op) {
        self.custody_nonce += 1;
        self.push(Tx { signer: self.custody, nonce: self.custody_nonce, account: 0, op });
    }

    /// `account` signs `op` with its next nonce; `acting` is the tx's account field.
    fn user(&mut self, account: u32, acting: u64, op: Op) {
        let index = account as usize;
        self.nonces[index] += 1;
        self.push(Tx { signer: self.keys[index], nonce: self.nonces[index], account: acting, op });
    }

    /// Lists USDC, BTC and one spot market per book; creates and funds every account.
    fn setup(&mut self, workload: &Workload) {
        for (symbol, decimals) in [("USDC", 6u8), ("BTC", 8)] {
            self.admin(Op::AddAsset(AddAsset::new(asset(symbol), decimals)));
        }
        for index in 0..workload.config.symbols {
            self.admin(Op::AddMarket(AddMarket {
                symbol: market_symbol(index),
                kind: MarketKind::Spot,
                base: asset("BTC"),
                quote: asset("USDC"),
                tick: Dec::new(1, PRICE_DECIMALS),
                step: Dec::new(1, QTY_DECIMALS),
                maker_fee: Dec::new(1, 4),
                taker_fee: Dec::new(5, 4),
                imf: Dec::ZERO,
                mmf: Dec::ZERO,
                funding_interval_ns: 0,
            }));
        }
        for account in 1..=workload.config.accounts {
            self.user(account, 0, Op::CreateAccount);
            for (symbol, whole) in [("USDC", DEPOSIT_QUOTE), ("BTC", DEPOSIT_BASE)] {
                let amount = Dec::new(whole, 0);
                let op = Op::Deposit(Deposit {
                    account: u64::from(account),
                    asset: asset(symbol),
                    amount,
                    chain_ref: [0; 32],
                });
                self.custody(op);
            }
        }
    }

    /// The record of one stream command (every one is signed by its account; a cancel or
    /// amend by the account that placed the order).
    fn command(&mut self, command: &Command, placed_by: &[u32]) {
        let market = self.symbols[usize::from(command.symbol)];
        let order_id = u64::from(command.order_id) + 1;
        let (account, op) = match command.kind {
            CommandKind::Gtc | CommandKind::Ioc => {
                let tif = if command.kind == CommandKind::Gtc { TimeInForce::Gtc } else { TimeInForce::Ioc };
                let side = match command.side {
                    Side::Buy => verex_engine::tx::Side::Buy,
                    Side::Sell => verex_engine::tx::Side::Sell,
                };
                let place = Place {
                    market,
                    side,
                    order_type: OrderType::Limit,
                    tif,
                    reduce_only: false,
                    price: Dec::new(command.price_ticks, PRICE_DECIMALS),
                    qty: Dec::new(i64::try_from(command.qty_lots).unwrap_or(i64::MAX), QTY_DECIMALS),
                    client_id: 0,
                };
                (command.account, Op::Place(place))
            }
            CommandKind::Cancel => {
                (placed_by[command.order_id as usize], Op::Cancel(OrderRef { market, order_id, client_id: 0 }))
            }
            CommandKind::Amend => {
                let order = OrderRef { market, order_id, client_id: 0 };
                let price = Some(Dec::new(command.price_ticks, PRICE_DECIMALS));
                (placed_by[command.order_id as usize], Op::Amend(Amend { order, price, qty: None }))
            }
        };
        self.user(account, u64::from(account), op);
    }
}

/// verex driven through `Engine::apply` on pre-encoded records.
pub struct VerexApply {
    limits: Limits,
    /// Setup and prefill, then the stream.
    records: Vec<RecordBytes>,
    /// Records before the stream.
    prefilled: usize,
    /// Order ids the prefill takes: verex's next order id after it is this plus one.
    prefill_orders: u64,
}

/// An engine and its reused event buffer.
pub struct VerexBook {
    /// The engine.
    pub engine: Engine,
    /// Events of the last applied record.
    pub events: EventBuf,
}

impl VerexApply {
    /// Bytes of all stream records (what a timed run reads).
    #[must_use]
    pub fn stream_bytes(&self) -> usize {
        (self.records.len() - self.prefilled) * core::mem::size_of::<RecordBytes>()
    }
}

impl Contender for VerexApply {
    const NAME: &'static str = "verex-apply";
    type Book = VerexBook;

    fn new(workload: &Workload) -> Self {
        let mut encoder = Encoder::new(workload);
        encoder.setup(workload);
        let mut placed_by = vec![0u32; workload.order_ids as usize];
        for command in workload.prefill.iter().chain(&workload.stream) {
            if matches!(command.kind, CommandKind::Gtc | CommandKind::Ioc) {
                placed_by[command.order_id as usize] = command.account;
            }
        }
        for command in &workload.prefill {
            encoder.command(command, &placed_by);
        }
        let prefilled = encoder.records.len();
        for command in &workload.stream {
            encoder.command(command, &placed_by);
        }
        Self {
            limits: limits(workload),
            records: encoder.records,
            prefilled,
            prefill_orders: workload.prefill.len() as u64,
        }
    }

    fn fresh(&self) -> VerexBook {
        let mut engine = Engine::new(Genesis::dev(), self.limits).unwrap_or_else(|e| panic!("limits: {e}"));
        let mut events = engine.event_buf();
        for (i, record) in self.records[..self.prefilled].iter().enumerate() {
            engine
                .apply(VerifiedRecord::assume_verified(record.archived()), &mut events)
                .unwrap_or_else(|e| panic!("setup record {i}: {e}"));
            assert!(events.rejection().is_none(), "setup record {i} rejected: {:?}", events.events());
        }
        assert_eq!(engine.next_order_id(), self.prefill_orders + 1, "stream order k is verex order k + 1");
        VerexBook { engine, events }
    }

    #[inline]
    fn apply(&self, book: &mut VerexBook, i: usize) {
        let record = &self.records[self.prefilled + i];
        // A seq gap is a driver bug, not a rejection; the stream was checked before timing.
        let _ = book.engine.apply(VerifiedRecord::assume_verified(record.archived()), &mut book.events);
    }

    fn apply_checked(&self, book: &mut VerexBook, i: usize) -> Outcome {
        let record = &self.records[self.prefilled + i];
        book.engine
            .apply(VerifiedRecord::assume_verified(record.archived()), &mut book.events)
            .unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert!(book.events.rejection().is_none(), "command {i} rejected: {:?}", book.events.events());
        let mut outcome = Outcome::default();
        for event in book.events.events() {
            if let Event::Fill { qty, .. } = event {
                outcome.add_fill(qty / LOT_UNITS);
            }
        }
        outcome
    }

    fn len(&self) -> usize {
        self.records.len() - self.prefilled
    }
}
