//! Shared workload builders for verex benchmarks.
//!
//! Benchmarks measure the engine on pre-encoded records: archiving a transaction is the
//! ingress' cost, not the engine's. A [`RecordTemplate`] holds one archived transaction and
//! rewrites its seq, stamp and nonce in place, so a benchmark loop applies a fresh, valid
//! record each iteration without encoding or allocating.
#![deny(missing_docs, clippy::unwrap_used)]

pub mod hdr;
pub mod peers;
pub mod workload;

use verex_engine::record::RecordBytes;
use verex_engine::sequencer::{DEV_CLOCK_START_NS, DEV_CLOCK_STEP_NS};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::tx::{
    AddAsset, AddMarket, ArchivedOp, ArchivedSequencedTx, Dec, Deposit, MarketKind, Op, OrderRef, OrderType, Place,
    SequencedTx, Side, SignedTx, Symbol, TimeInForce, Tx,
};
use verex_engine::verified::VerifiedRecord;
use verex_engine::{Engine, EventBuf, Genesis, Limits};

/// Market used by the book benchmarks: tick 0.01, step 0.0001, maker 0.0001, taker 0.0005.
pub const MARKET: &str = "BTC-USDC";

/// Offsets of the fields a template rewrites.
#[derive(Clone, Copy, Debug)]
struct Offsets {
    seq: usize,
    ts: usize,
    nonce: usize,
    order_id: Option<usize>,
}

/// One archived transaction whose seq, stamp, nonce (and order id, for a cancel) are
/// rewritten in place before each apply.
#[derive(Clone)]
pub struct RecordTemplate {
    bytes: RecordBytes,
    offsets: Offsets,
}

fn offset_of<T>(base: &ArchivedSequencedTx, field: &T) -> usize {
    (field as *const T as usize) - (base as *const ArchivedSequencedTx as usize)
}

impl RecordTemplate {
    /// A template from a transaction (signature left zero: the engine trusts the ingress).
    #[must_use]
    pub fn new(tx: Tx) -> Self {
        let stx = SequencedTx { seq: 1, ts: 1, signed: SignedTx { tx, signature: [0; 64] } };
        let bytes = RecordBytes::encode(&stx);
        let archived = bytes.archived();
        let order_id = match &archived.signed.tx.op {
            ArchivedOp::Cancel(r) => Some(offset_of(archived, &r.order_id)),
            _ => None,
        };
        let offsets = Offsets {
            seq: offset_of(archived, &archived.seq),
            ts: offset_of(archived, &archived.ts),
            nonce: offset_of(archived, &archived.signed.tx.nonce),
            order_id,
        };
        Self { bytes, offsets }
    }

    fn put(&mut self, at: usize, value: u64) {
        self.bytes.0[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// Rewrites seq, stamp and nonce; returns the archived view to apply.
    pub fn stamp(&mut self, seq: u64, nonce: u64) -> &ArchivedSequencedTx {
        self.put(self.offsets.seq, seq);
        self.put(self.offsets.ts, DEV_CLOCK_START_NS + seq * DEV_CLOCK_STEP_NS);
        self.put(self.offsets.nonce, nonce);
        self.bytes.archived()
    }

    /// Rewrites seq and nonce, and the stamp to `ts` (a tx that jumps the clock); returns the
    /// archived view to apply.
    pub fn stamp_at(&mut self, seq: u64, ts: u64, nonce: u64) -> &ArchivedSequencedTx {
        self.put(self.offsets.seq, seq);
        self.put(self.offsets.ts, ts);
        self.put(self.offsets.nonce, nonce);
        self.bytes.archived()
    }

    /// Rewrites the order id of a cancel template.
    pub fn set_order_id(&mut self, order_id: u64) {
        if let Some(at) = self.offsets.order_id {
            self.put(at, order_id);
        }
    }
}

fn sym(text: &str) -> Symbol {
    Symbol::new(text).unwrap_or_default()
}

/// A user `place` transaction for account `account` (its dev key as signer).
#[must_use]
pub fn place_tx(account: u64, side: Side, tif: TimeInForce, price_cents: i64, qty_lots: i64) -> Tx {
    Tx {
        signer: dev_account_key(account).verifying_key().to_bytes(),
        nonce: 0,
        account,
        op: Op::Place(Place {
            market: sym(MARKET),
            side,
            order_type: OrderType::Limit,
            tif,
            reduce_only: false,
            price: Dec::new(price_cents, 2),
            qty: Dec::new(qty_lots, 4),
            client_id: 0,
        }),
    }
}

/// A user `cancel` transaction (order id rewritten per iteration).
#[must_use]
pub fn cancel_tx(account: u64) -> Tx {
    Tx {
        signer: dev_account_key(account).verifying_key().to_bytes(),
        nonce: 0,
        account,
        op: Op::Cancel(OrderRef { market: sym(MARKET), order_id: 1, client_id: 0 }),
    }
}

/// An engine with one spot market, `accounts` funded accounts, and a driver that applies
/// transactions with gap-free seqs and per-signer nonces.
pub struct BookFixture {
    /// The engine.
    pub engine: Engine,
    /// Reused event buffer.
    pub events: EventBuf,
    nonces: Vec<u64>,
}

impl BookFixture {
    /// A dev-genesis engine with nothing listed, and nonces for `accounts` accounts.
    fn empty(accounts: u64, limits: Limits) -> Self {
        let engine = Engine::new(Genesis::dev(), limits).unwrap_or_else(|e| panic!("limits: {e}"));
        let events = engine.event_buf();
        Self { engine, events, nonces: vec![0; accounts as usize + 4] }
    }

    /// Lists USDC, BTC and [`MARKET`], creates and funds `accounts` accounts.
    ///
    /// # Panics
    /// If the fixture's own setup is rejected (a bug in the fixture).
    #[must_use]
    pub fn new(accounts: u64, limits: Limits) -> Self {
        let mut fixture = Self::empty(accounts, limits);
        let admin = dev_role_key(Role::Admin).verifying_key().to_bytes();
        let custody = dev_role_key(Role::Custody).verifying_key().to_bytes();
        for (symbol, decimals) in [("USDC", 6u8), ("BTC", 8)] {
            let op = Op::AddAsset(AddAsset::new(sym(symbol), decimals));
            fixture.apply_op(0, admin, 0, op);
        }
        let market = Op::AddMarket(AddMarket {
            symbol: sym(MARKET),
            kind: MarketKind::Spot,
            base: sym("BTC"),
            quote: sym("USDC"),
            tick: Dec::new(1, 2),
            step: Dec::new(1, 4),
            maker_fee: Dec::new(1, 4),
            taker_fee: Dec::new(5, 4),
            imf: Dec::ZERO,
            mmf: Dec::ZERO,
            funding_interval_ns: 0,
        });
        fixture.apply_op(0, admin, 0, market);
        for account in 1..=accounts {
            let key = dev_account_key(account).verifying_key().to_bytes();
            fixture.apply_op(3 + account as usize, key, 0, Op::CreateAccount);
            for (asset, amount) in [("USDC", Dec::new(1_000_000_000, 0)), ("BTC", Dec::new(10_000_000, 0))] {
                let op = Op::Deposit(Deposit { account, asset: sym(asset), amount, chain_ref: [0; 32] });
                fixture.apply_op(1, custody, 0, op);
            }
        }
        fixture
    }

    /// Applies an op signed by `signer` (nonce slot `slot`); panics if it is rejected.
    fn apply_op(&mut self, slot: usize, signer: [u8; 32], account: u64, op: Op) {
        self.nonces[slot] += 1;
        let tx = Tx { signer, nonce: self.nonces[slot], account, op };
        let seq = self.engine.seq() + 1;
        let ts = DEV_CLOCK_START_NS + seq * DEV_CLOCK_STEP_NS;
        let bytes = RecordBytes::encode(&SequencedTx { seq, ts, signed: SignedTx { tx, signature: [0; 64] } });
        self.engine
            .apply(VerifiedRecord::assume_verified(bytes.archived()), &mut self.events)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(self.events.rejection().is_none(), "fixture op rejected: {:?}", self.events.events());
    }

    /// Applies a template as its account's next tx; returns whether it was accepted.
    pub fn apply(&mut self, template: &mut RecordTemplate, account: u64) -> bool {
        let slot = 3 + account as usize;
        self.nonces[slot] += 1;
        let seq = self.engine.seq() + 1;
        let archived = template.stamp(seq, self.nonces[slot]);
        self.engine.apply(VerifiedRecord::assume_verified(archived), &mut self.events).is_ok()
            && self.events.rejection().is_none()
    }

    /// Fills the book to the exchange-core benchmark shape: `orders` resting orders spread
    /// over `levels` price levels per side around 100.00 (bids below, asks above), placed
    /// round-robin by the accounts.
    pub fn prefill(&mut self, orders: u64, levels: i64, accounts: u64) {
        for i in 0..orders {
            let level = (i as i64 * 7919) % levels;
            let (side, price) = if i % 2 == 0 { (Side::Buy, 9_999 - level) } else { (Side::Sell, 10_001 + level) };
            let account = 1 + i % accounts;
            let mut template =
                RecordTemplate::new(place_tx(account, side, TimeInForce::Gtc, price, 1 + (i % 10) as i64));
            assert!(self.apply(&mut template, account), "prefill order {i} rejected: {:?}", self.events.events());
        }
    }
}

/// Perp market used by the risk benchmarks: tick 0.1, step 0.001, IMF 0.1, MMF 0.05, maker 0,
/// taker 0.0005, settled in USDC.
pub const PERP: &str = "BTC-PERP";

/// A perp `place` for account `account`: price in tenths, quantity in lots of 0.001.
#[must_use]
pub fn perp_place_tx(account: u64, side: Side, tif: TimeInForce, price_tenths: i64, qty_lots: i64) -> Tx {
    let mut tx = place_tx(account, side, tif, 0, 0);
    if let Op::Place(place) = &mut tx.op {
        place.market = sym(PERP);
        place.price = Dec::new(price_tenths, 1);
        place.qty = Dec::new(qty_lots, 3);
    }
    tx
}

/// A `mark` of the perp at `price_tenths` × 0.1, signed by the oracle.
#[must_use]
pub fn perp_mark_tx(price_tenths: i64) -> Tx {
    let prices = [verex_engine::tx::MarkPrice { symbol: sym(PERP), price: Dec::new(price_tenths, 1) }];
    Tx {
        signer: dev_role_key(Role::Oracle).verifying_key().to_bytes(),
        nonce: 0,
        account: 0,
        op: Op::Mark(verex_engine::tx::Mark::from_prices(&prices).unwrap_or_else(|| panic!("one price"))),
    }
}

/// An engine with one perp market and `pairs` long/short pairs of 1 BTC each at 100.0:
/// longs `1, 3, 5, …` (makers), shorts `2, 4, 6, …` (takers, well funded). Every `at_risk_every`-th
/// long is funded thinly (10.1 USDC): after the opening trades the fixture marks the perp at
/// 94.7, where a thin long's slack over maintenance is 0.065 USDC, so a 0.1 mark move leaves
/// its risk band (it is evaluated in full on every mark) without taking it below maintenance.
pub struct PerpFixture {
    /// The engine and its driver.
    pub book: BookFixture,
    oracle_nonce: u64,
}

impl PerpFixture {
    /// Builds the fixture (`2 × pairs` accounts).
    ///
    /// # Panics
    /// If the fixture's own setup is rejected (a bug in the fixture).
    #[must_use]
    pub fn new(pairs: u64, at_risk_every: u64) -> Self {
        let accounts = 2 * pairs;
        let limits = Limits {
            max_accounts: u32::try_from(accounts + 16).unwrap_or(u32::MAX),
            max_orders: 1 << 16,
            max_price_levels: 1 << 12,
            max_levels_per_side: 1 << 11,
            ..Limits::small()
        };
        let mut book = BookFixture::empty(accounts, limits);
        let admin = dev_role_key(Role::Admin).verifying_key().to_bytes();
        let custody = dev_role_key(Role::Custody).verifying_key().to_bytes();
        for (symbol, decimals) in [("USDC", 6u8), ("BTC", 8)] {
            let op = Op::AddAsset(AddAsset::new(sym(symbol), decimals));
            book.apply_op(0, admin, 0, op);
        }
        let market = Op::AddMarket(AddMarket {
            symbol: sym(PERP),
            kind: MarketKind::Perp,
            base: sym("BTC"),
            quote: sym("USDC"),
            tick: Dec::new(1, 1),
            step: Dec::new(1, 3),
            maker_fee: Dec::ZERO,
            taker_fee: Dec::new(5, 4),
            imf: Dec::new(1, 1),
            mmf: Dec::new(5, 2),
            funding_interval_ns: 0,
        });
        book.apply_op(0, admin, 0, market);
        let mut fixture = Self { book, oracle_nonce: 0 };
        let mut mark = RecordTemplate::new(perp_mark_tx(1_000));
        assert!(fixture.apply_mark(&mut mark), "first mark");
        for account in 1..=accounts {
            let key = dev_account_key(account).verifying_key().to_bytes();
            fixture.book.apply_op(3 + account as usize, key, 0, Op::CreateAccount);
            let long = account % 2 == 1;
            let thin = long && (account / 2) % at_risk_every == 0;
            let amount = if thin { Dec::new(101, 1) } else { Dec::new(1_000, 0) };
            let op = Op::Deposit(Deposit { account, asset: sym("USDC"), amount, chain_ref: [0; 32] });
            fixture.book.apply_op(1, custody, 0, op);
        }
        for pair in 0..pairs {
            let (long, short) = (2 * pair + 1, 2 * pair + 2);
            let mut bid = RecordTemplate::new(perp_place_tx(long, Side::Buy, TimeInForce::Gtc, 1_000, 1_000));
            assert!(fixture.book.apply(&mut bid, long), "bid of {long}: {:?}", fixture.book.events.events());
            let mut take = RecordTemplate::new(perp_place_tx(short, Side::Sell, TimeInForce::Ioc, 1_000, 1_000));
            assert!(fixture.book.apply(&mut take, short), "take of {short}: {:?}", fixture.book.events.events());
        }
        let mut mark = RecordTemplate::new(perp_mark_tx(947));
        assert!(fixture.apply_mark(&mut mark), "mark 94.7");
        fixture
    }

    /// Applies a mark template as the oracle's next tx.
    pub fn apply_mark(&mut self, template: &mut RecordTemplate) -> bool {
        self.oracle_nonce += 1;
        let seq = self.book.engine.seq() + 1;
        let archived = template.stamp(seq, self.oracle_nonce);
        self.book.engine.apply(VerifiedRecord::assume_verified(archived), &mut self.book.events).is_ok()
            && self.book.events.rejection().is_none()
    }
}

/// An engine with two lending pools (USDC and BTC, kinked rate curves) and `accounts`
/// accounts that each lend and borrow: every account deposits 1,000 USDC and 1 BTC, lends 500
/// USDC and 0.5 BTC, and borrows 100 USDC (even accounts) or 0.1 BTC (odd ones). Every pool
/// has lenders and borrowers, and every account is a debtor, so a `tick` accrues interest
/// that every one of them pays or earns.
pub struct LendingFixture {
    /// The engine and its driver.
    pub book: BookFixture,
    oracle_nonce: u64,
}

/// A `tick` signed by the oracle.
#[must_use]
pub fn tick_tx() -> Tx {
    Tx { signer: dev_role_key(Role::Oracle).verifying_key().to_bytes(), nonce: 0, account: 0, op: Op::Tick }
}

impl LendingFixture {
    /// Builds the fixture (6 txs per account, then a mark of BTC at 100).
    ///
    /// # Panics
    /// If the fixture's own setup is rejected (a bug in the fixture).
    #[must_use]
    pub fn new(accounts: u64) -> Self {
        use verex_engine::tx::AssetAmount;
        let limits = Limits {
            max_accounts: u32::try_from(accounts + 16).unwrap_or(u32::MAX),
            max_orders: 1 << 10,
            max_price_levels: 1 << 10,
            max_levels_per_side: 1 << 9,
            ..Limits::small()
        };
        let mut book = BookFixture::empty(accounts, limits);
        let admin = dev_role_key(Role::Admin).verifying_key().to_bytes();
        let custody = dev_role_key(Role::Custody).verifying_key().to_bytes();
        for (symbol, decimals) in [("USDC", 6u8), ("BTC", 8)] {
            let mut asset = AddAsset::new(sym(symbol), decimals);
            asset.rate_base = Dec::new(1, 2);
            asset.rate_at_kink = Dec::new(1, 1);
            asset.rate_max = Dec::new(1, 0);
            book.apply_op(0, admin, 0, Op::AddAsset(asset));
        }
        let mut fixture = Self { book, oracle_nonce: 0 };
        let prices = [verex_engine::tx::MarkPrice { symbol: sym("BTC"), price: Dec::new(100, 0) }];
        let mark = Op::Mark(verex_engine::tx::Mark::from_prices(&prices).unwrap_or_else(|| panic!("one price")));
        let oracle = dev_role_key(Role::Oracle).verifying_key().to_bytes();
        fixture.book.apply_op(2, oracle, 0, mark);
        fixture.oracle_nonce = fixture.book.nonces[2];
        for account in 1..=accounts {
            let key = dev_account_key(account).verifying_key().to_bytes();
            let slot = 3 + account as usize;
            fixture.book.apply_op(slot, key, 0, Op::CreateAccount);
            for (asset, amount) in [("USDC", Dec::new(1_000, 0)), ("BTC", Dec::new(1, 0))] {
                let op = Op::Deposit(Deposit { account, asset: sym(asset), amount, chain_ref: [0; 32] });
                fixture.book.apply_op(1, custody, 0, op);
            }
            let amount = |asset: &str, amount: Dec| AssetAmount { asset: sym(asset), amount };
            fixture.book.apply_op(slot, key, account, Op::Lend(amount("USDC", Dec::new(500, 0))));
            fixture.book.apply_op(slot, key, account, Op::Lend(amount("BTC", Dec::new(5, 1))));
            let borrow =
                if account % 2 == 0 { amount("USDC", Dec::new(100, 0)) } else { amount("BTC", Dec::new(1, 1)) };
            fixture.book.apply_op(slot, key, account, Op::Borrow(borrow));
        }
        fixture
    }

    /// Applies a tick template as the oracle's next tx, stamped a second after the previous
    /// tx: every tick accrues interest in both pools.
    pub fn apply_tick(&mut self, template: &mut RecordTemplate) -> bool {
        self.oracle_nonce += 1;
        let seq = self.book.engine.seq() + 1;
        let ts = self.book.engine.last_ts() + 1_000_000_000;
        let archived = template.stamp_at(seq, ts, self.oracle_nonce);
        self.book.engine.apply(VerifiedRecord::assume_verified(archived), &mut self.book.events).is_ok()
            && self.book.events.rejection().is_none()
    }
}

/// `ops` applies of account 1's order flow, half places of `place` and half cancels of the
/// order each place rested: the measured loop of the instruction-count examples (callgrind
/// collects `*measure_*`).
///
/// # Panics
/// If a place or a cancel is rejected (a bug in the fixture).
#[inline(never)]
pub fn measure_place_cancel(
    fixture: &mut BookFixture,
    place: &mut RecordTemplate,
    cancel: &mut RecordTemplate,
    ops: u64,
) {
    for _ in 0..ops / 2 {
        let order_id = fixture.engine.next_order_id();
        assert!(fixture.apply(place, 1));
        cancel.set_order_id(order_id);
        assert!(fixture.apply(cancel, 1));
    }
}
