//! Property tests for the invariants of SPEC section 7 on random spot workloads.
//!
//! Each case lists two assets and two spot markets (one with a maker rebate, one with an
//! awkward tick/step so that rounding remainders are common), funds four accounts, then runs a
//! random mix of places (every type and tif, on and off the grid), cancels, cancel-alls,
//! amends, deposits, withdrawals, lends and redeems. After every tx:
//! - conservation per asset, exactly (fee account included);
//! - Σ withdrawals ≤ Σ deposits per asset, their difference the supply; the insurance fund
//!   ≥ 0 in every asset;
//! - `locked` equals what resting orders need; level totals match their orders;
//! - no book is crossed;
//! - the L2 books a publisher rebuilds from the events alone
//!   ([`verex_engine::market_data::L2Books`]) equal the engine's depth, level by level;
//! - a rejected tx changed nothing but the signer's nonce (state hash of a clone that
//!   skipped the tx's effects is not available, so this is checked as: balances, orders and
//!   fees are identical before and after a rejection).

use proptest::prelude::*;
use verex_engine::market_data::L2Books;
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::tx::{
    AddAsset, AddMarket, Amend, AssetAmount, Dec, Deposit, MarketKind, Op, OrderRef, OrderType, Place, Side, Symbol,
    TimeInForce, Tx,
};
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, EventBuf, Genesis, Limits};

const ACCOUNTS: u64 = 4;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

struct Harness {
    engine: Engine,
    sequencer: Sequencer,
    buf: EventBuf,
    keys: Vec<ed25519_dalek::SigningKey>,
    nonce: u64,
    /// The market-data view, fed with every tx's events.
    l2: L2Books,
    /// Txs after which the L2 view was compared with the engine's depth.
    l2_checks: u64,
}

impl Harness {
    fn new() -> Self {
        let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
        let buf = engine.event_buf();
        let mut keys = vec![dev_role_key(Role::Admin), dev_role_key(Role::Custody)];
        keys.extend((1..=ACCOUNTS).map(dev_account_key));
        Self {
            engine,
            sequencer: Sequencer::new(0, Clock::Deterministic),
            buf,
            keys,
            nonce: 0,
            l2: L2Books::new(),
            l2_checks: 0,
        }
    }

    /// Applies an op signed by `who` (0 admin, 1 custody, 2.. accounts 1..).
    fn apply(&mut self, who: usize, account: u64, op: Op) -> bool {
        self.apply_tx(who, account, op);
        self.buf.rejection().is_none()
    }

    fn apply_tx(&mut self, who: usize, account: u64, op: Op) {
        self.nonce += 1;
        let tx = Tx { signer: [0; 32], nonce: self.nonce, account, op };
        let record = self.sequencer.stamp(&VerifiedTx::sign(tx, &self.keys[who]), None).expect("dev clock");
        self.engine.apply(record.verified(), &mut self.buf).expect("gap-free");
        self.l2.apply_tx(self.buf.seq(), self.buf.events()).expect("market data sees every seq");
        self.l2_checks += 1;
        if let Some(mismatch) = self.l2.first_difference(&self.engine) {
            panic!(
                "after seq {}: L2 rebuilt from events differs from the engine's depth: {mismatch:?}",
                self.buf.seq()
            );
        }
    }

    fn setup(&mut self) {
        let asset = |s: &str, decimals: u8| Op::AddAsset(AddAsset::new(sym(s), decimals));
        assert!(self.apply(0, 0, asset("USDC", 6)));
        assert!(self.apply(0, 0, asset("BTC", 8)));
        let market = |s: &str, tick: Dec, step: Dec, maker: Dec, taker: Dec| {
            Op::AddMarket(AddMarket {
                symbol: sym(s),
                kind: MarketKind::Spot,
                base: sym("BTC"),
                quote: sym("USDC"),
                tick,
                step,
                maker_fee: maker,
                taker_fee: taker,
                imf: Dec::ZERO,
                mmf: Dec::ZERO,
                funding_interval_ns: 0,
            })
        };
        // Rebate market: maker -0.0001, taker 0.0003, tick 0.01, step 0.0001.
        assert!(self.apply(0, 0, market("M0", Dec::new(1, 2), Dec::new(1, 4), Dec::new(-1, 4), Dec::new(3, 4))));
        // Awkward market: tick 0.07 (not a power of ten), step 0.00000003, fees 0.00037 / 0.00071.
        assert!(self.apply(0, 0, market("M1", Dec::new(7, 2), Dec::new(3, 8), Dec::new(37, 5), Dec::new(71, 5))));
        for a in 1..=ACCOUNTS {
            self.apply_tx(1 + a as usize, 0, Op::CreateAccount);
            for (asset, amount) in [("USDC", Dec::new(5_000_000, 2)), ("BTC", Dec::new(500, 2))] {
                let op = Op::Deposit(Deposit { account: a, asset: sym(asset), amount, chain_ref: [0; 32] });
                assert!(self.apply(1, 0, op));
            }
        }
    }

    /// Balances, orders and fees: what a rejection must leave untouched.
    fn observable(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in 1..=self.engine.account_count() {
            for asset in 0..2 {
                out.push(format!("{a}/{asset}: {:?}", self.engine.balance(a, asset)));
            }
            out.extend(self.engine.orders_of(a).map(|o| format!("{o:?}")));
        }
        for asset in 0..2 {
            out.push(format!(
                "fees {} supply {} pool {:?}",
                self.engine.fees(asset),
                self.engine.supply(asset),
                self.engine.pool(asset)
            ));
        }
        out.push(format!("next order {}", self.engine.next_order_id()));
        out
    }
}

/// One random user action.
#[derive(Debug, Clone)]
enum Action {
    Place {
        account: u64,
        market: u8,
        side: bool,
        market_order: bool,
        tif: u8,
        price_ticks: i64,
        qty_steps: i64,
        off: u8,
    },
    Cancel {
        account: u64,
        order_id: u64,
    },
    CancelAll {
        account: u64,
        market: u8,
    },
    Amend {
        account: u64,
        order_id: u64,
        price_ticks: Option<i64>,
        qty_steps: Option<i64>,
    },
    Deposit {
        account: u64,
        btc: bool,
        amount: i64,
    },
    Withdraw {
        account: u64,
        btc: bool,
        amount: i64,
    },
    Lend {
        account: u64,
        amount: i64,
    },
    Redeem {
        account: u64,
        amount: i64,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let account = 1..=ACCOUNTS;
    prop_oneof![
        6 => (account.clone(), 0u8..2, any::<bool>(), prop::bool::weighted(0.15), 0u8..4, 95i64..106, 1i64..40, 0u8..12)
            .prop_map(|(account, market, side, market_order, tif, price_ticks, qty_steps, off)| Action::Place {
                account, market, side, market_order, tif, price_ticks, qty_steps, off
            }),
        2 => (account.clone(), 1u64..60).prop_map(|(account, order_id)| Action::Cancel { account, order_id }),
        1 => (account.clone(), 0u8..2).prop_map(|(account, market)| Action::CancelAll { account, market }),
        2 => (account.clone(), 1u64..60, prop::option::of(95i64..106), prop::option::of(1i64..40))
            .prop_map(|(account, order_id, price_ticks, qty_steps)| Action::Amend { account, order_id, price_ticks, qty_steps }),
        1 => (account.clone(), any::<bool>(), 1i64..100_000).prop_map(|(account, btc, amount)| Action::Deposit { account, btc, amount }),
        1 => (account.clone(), any::<bool>(), 1i64..5_000_000).prop_map(|(account, btc, amount)| Action::Withdraw { account, btc, amount }),
        1 => (account.clone(), 1i64..2_000_000).prop_map(|(account, amount)| Action::Lend { account, amount }),
        1 => (account, 1i64..2_000_000).prop_map(|(account, amount)| Action::Redeem { account, amount }),
    ]
}

fn market_grid(market: u8) -> (&'static str, Dec, Dec) {
    // (symbol, one tick, one step) as decimals; prices are ticks × tick around 100.
    match market {
        0 => ("M0", Dec::new(1, 0), Dec::new(1, 4)),
        _ => ("M1", Dec::new(7, 2), Dec::new(3, 8)),
    }
}

fn price_dec(market: u8, ticks: i64) -> Dec {
    match market {
        0 => Dec::new(ticks, 0),
        _ => Dec::new(ticks * 7 * 100, 2), // ticks × 7.00 keeps M1 prices on its 0.07 grid
    }
}

fn qty_dec(market: u8, steps: i64) -> Dec {
    let (_, _, step) = market_grid(market);
    Dec::new(steps * step.mantissa, step.scale)
}

fn to_op(action: &Action) -> (u64, Op) {
    match *action {
        Action::Place { account, market, side, market_order, tif, price_ticks, qty_steps, off } => {
            let mut price = price_dec(market, price_ticks);
            let mut qty = qty_dec(market, qty_steps);
            match off {
                0 => price = Dec::new(price.mantissa * 10 + 3, price.scale + 1), // off tick
                1 => qty = Dec::new(qty.mantissa * 10 + 1, qty.scale + 1),       // off step
                2 => qty = Dec::new(-qty.mantissa, qty.scale),                   // negative
                _ => {}
            }
            let tif = [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly][usize::from(tif)];
            let place = Place {
                market: sym(market_grid(market).0),
                side: if side { Side::Buy } else { Side::Sell },
                order_type: if market_order { OrderType::Market } else { OrderType::Limit },
                tif,
                reduce_only: false,
                price,
                qty,
                client_id: 0,
            };
            (account, Op::Place(place))
        }
        Action::Cancel { account, order_id } => (
            account,
            Op::Cancel(OrderRef { market: sym(if order_id % 2 == 0 { "M0" } else { "M1" }), order_id, client_id: 0 }),
        ),
        Action::CancelAll { account, market } => (account, Op::CancelAll(sym(market_grid(market).0))),
        Action::Amend { account, order_id, price_ticks, qty_steps } => {
            // The order's market is unknown here; try M0 for even ids and M1 for odd ones.
            let market = u8::from(order_id % 2 == 1);
            let amend = Amend {
                order: OrderRef { market: sym(market_grid(market).0), order_id, client_id: 0 },
                price: price_ticks.map(|t| price_dec(market, t)),
                qty: qty_steps.map(|s| qty_dec(market, s)),
            };
            (account, Op::Amend(amend))
        }
        Action::Deposit { account, btc, amount } => (
            0,
            Op::Deposit(Deposit {
                account,
                asset: sym(if btc { "BTC" } else { "USDC" }),
                amount: Dec::new(amount, 4),
                chain_ref: [0; 32],
            }),
        ),
        Action::Withdraw { account, btc, amount } => (
            account,
            Op::Withdraw(AssetAmount { asset: sym(if btc { "BTC" } else { "USDC" }), amount: Dec::new(amount, 4) }),
        ),
        Action::Lend { account, amount } => {
            (account, Op::Lend(AssetAmount { asset: sym("USDC"), amount: Dec::new(amount, 2) }))
        }
        Action::Redeem { account, amount } => {
            (account, Op::Redeem(AssetAmount { asset: sym("USDC"), amount: Dec::new(amount, 2) }))
        }
    }
}

fn run_case(actions: &[Action]) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    h.setup();
    prop_assert_eq!(h.engine.check_invariants(), Ok(()));
    for (i, action) in actions.iter().enumerate() {
        let (account, op) = to_op(action);
        let who = if matches!(op, Op::Deposit(_)) { 1 } else { 1 + account as usize };
        let before = h.observable();
        let accepted = h.apply(who, if who == 1 { 0 } else { account }, op);
        if let Err(broken) = h.engine.check_invariants() {
            return Err(TestCaseError::fail(format!("after action {i} {action:?}: {broken}")));
        }
        if !accepted {
            prop_assert_eq!(&before, &h.observable(), "rejected action {} {:?} changed state", i, action);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn spot_invariants_hold_after_every_tx(actions in prop::collection::vec(action(), 1..80)) {
        run_case(&actions)?;
    }
}

#[test]
fn a_deep_book_workload_keeps_invariants() {
    // A longer deterministic run than proptest's cases: 20,000 actions from a fixed xorshift.
    let mut h = Harness::new();
    h.setup();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut accepted, mut fills) = (0usize, 0usize);
    for i in 0..20_000u64 {
        let r = next();
        let account = 1 + r % ACCOUNTS;
        let action = match (r >> 8) % 10 {
            0..=5 => Action::Place {
                account,
                market: ((r >> 16) % 2) as u8,
                side: (r >> 20) % 2 == 0,
                market_order: (r >> 24) % 10 == 0,
                tif: ((r >> 28) % 4) as u8,
                price_ticks: 95 + ((r >> 32) % 11) as i64,
                qty_steps: 1 + ((r >> 40) % 30) as i64,
                off: 5,
            },
            6 | 7 => Action::Cancel { account, order_id: 1 + (r >> 16) % (i + 1) },
            8 => Action::Amend {
                account,
                order_id: 1 + (r >> 16) % (i + 1),
                price_ticks: Some(95 + ((r >> 32) % 11) as i64),
                qty_steps: None,
            },
            _ => Action::Deposit { account, btc: (r >> 16) % 2 == 0, amount: 1 + ((r >> 20) % 1_000_000) as i64 },
        };
        let (account, op) = to_op(&action);
        let who = if matches!(op, Op::Deposit(_)) { 1 } else { 1 + account as usize };
        if h.apply(who, if who == 1 { 0 } else { account }, op) {
            accepted += 1;
        }
        fills += h.buf.events().iter().filter(|e| matches!(e, verex_engine::Event::Fill { .. })).count();
        if i % 97 == 0 {
            assert_eq!(h.engine.check_invariants(), Ok(()), "after action {i} {action:?}");
        }
    }
    assert_eq!(h.engine.check_invariants(), Ok(()));
    assert!(h.engine.resting_orders() > 0, "the workload should leave a book");
    // The workload must exercise matching, not only rejections.
    assert!(accepted > 10_000 && fills > 3_000, "accepted {accepted}, fills {fills}");
    assert!(h.l2_checks > 20_000, "L2 compared after every tx: {}", h.l2_checks);
}
