//! Property tests for the invariants of SPEC section 7 on random perp workloads: random
//! orders (every type, tif and reduce-only), random marks (gaps included), random funding of
//! both signs, deposits (also to the insurance fund) and withdrawals. After every tx:
//! exact conservation per asset (fee and insurance accounts included), Σ withdrawals ≤
//! Σ deposits per asset, Σ positions = 0 per market (insurance included), the insurance fund
//! ≥ 0 in every asset and not below maintenance, locks equal what orders need, books
//! uncrossed, and no account with a maintenance requirement left below it; the L2 books
//! rebuilt from the events alone equal the engine's depth (liquidation cancels included). A
//! rejected tx changes nothing. (The cascades that drain the fund are `liquidation_cascade_prop.rs`.)

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use verex_engine::market_data::L2Books;
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::tx::{
    AddAsset, AddMarket, AssetAmount, Dec, Deposit, Funding, Mark, MarkPrice, MarketKind, Op, OrderRef, OrderType,
    Place, Side, Symbol, TimeInForce, Tx,
};
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, Event, EventBuf, Genesis, Limits};

const ACCOUNTS: u64 = 6;

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

struct Harness {
    engine: Engine,
    sequencer: Sequencer,
    buf: EventBuf,
    nonce: u64,
    liquidations: usize,
    fills: usize,
    /// The market-data view, fed with every tx's events.
    l2: L2Books,
    /// Admin, custody, oracle, then accounts 1..=ACCOUNTS.
    keys: Vec<ed25519_dalek::SigningKey>,
}

#[derive(Clone, Copy)]
enum Who {
    Admin,
    Custody,
    Oracle,
    Account(u64),
}

impl Harness {
    fn new() -> Self {
        let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
        let buf = engine.event_buf();
        let mut keys = vec![dev_role_key(Role::Admin), dev_role_key(Role::Custody), dev_role_key(Role::Oracle)];
        keys.extend((1..=ACCOUNTS).map(dev_account_key));
        let sequencer = Sequencer::new(0, Clock::Deterministic);
        Self { engine, sequencer, buf, nonce: 0, liquidations: 0, fills: 0, l2: L2Books::new(), keys }
    }

    fn apply(&mut self, who: Who, op: Op) -> bool {
        self.nonce += 1;
        let (key, account) = match who {
            Who::Admin => (0, 0),
            Who::Custody => (1, 0),
            Who::Oracle => (2, 0),
            Who::Account(a) => (2 + a as usize, a),
        };
        let account = if matches!(op, Op::CreateAccount) { 0 } else { account };
        let tx = Tx { signer: [0; 32], nonce: self.nonce, account, op };
        let record = self.sequencer.stamp(&VerifiedTx::sign(tx, &self.keys[key]), None).expect("dev clock");
        self.engine.apply(record.verified(), &mut self.buf).expect("gap-free");
        self.l2.apply_tx(self.buf.seq(), self.buf.events()).expect("market data sees every seq");
        if let Some(mismatch) = self.l2.first_difference(&self.engine) {
            panic!(
                "after seq {}: L2 rebuilt from events differs from the engine's depth: {mismatch:?}",
                self.buf.seq()
            );
        }
        for event in self.buf.events() {
            match event {
                Event::Liquidation { .. } | Event::Adl { .. } => self.liquidations += 1,
                Event::Fill { .. } => self.fills += 1,
                _ => {}
            }
        }
        self.buf.rejection().is_none()
    }

    fn setup(&mut self, deposits: &[i64]) {
        for (symbol, decimals) in [("USDC", 6u8), ("BTC", 8)] {
            let op = Op::AddAsset(AddAsset::new(sym(symbol), decimals));
            assert!(self.apply(Who::Admin, op));
        }
        let perp = Op::AddMarket(AddMarket {
            symbol: sym("BTC-PERP"),
            kind: MarketKind::Perp,
            base: sym("BTC"),
            quote: sym("USDC"),
            tick: Dec::new(1, 1),
            step: Dec::new(1, 3),
            maker_fee: Dec::new(-1, 4),
            taker_fee: Dec::new(5, 4),
            imf: Dec::new(1, 1),
            mmf: Dec::new(5, 2),
            funding_interval_ns: 0,
        });
        assert!(self.apply(Who::Admin, perp));
        assert!(self.apply(Who::Oracle, mark(1000)));
        for a in 1..=ACCOUNTS {
            assert!(self.apply(Who::Account(a), Op::CreateAccount));
            let amount = Dec::new(deposits[(a as usize - 1) % deposits.len()], 0);
            let op = Op::Deposit(Deposit { account: a, asset: sym("USDC"), amount, chain_ref: [0; 32] });
            assert!(self.apply(Who::Custody, op));
        }
    }

    fn observable(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in 1..=self.engine.account_count() {
            out.push(format!(
                "{a}: {:?} {:?} {}",
                self.engine.balance(a, 0),
                self.engine.balance(a, 1),
                self.engine.position(a, 0)
            ));
            out.extend(self.engine.orders_of(a).map(|o| format!("{o:?}")));
        }
        out.push(format!(
            "fees {} ins {} {}",
            self.engine.fees(0),
            self.engine.insurance(0),
            self.engine.insurance_position(0)
        ));
        out
    }
}

/// A mark of BTC-PERP at `tenths` × 0.1.
fn mark(tenths: i64) -> Op {
    Op::Mark(
        Mark::from_prices(&[MarkPrice { symbol: sym("BTC-PERP"), price: Dec::new(tenths, 1) }]).expect("one price"),
    )
}

#[derive(Debug, Clone)]
enum Action {
    Place { account: u64, buy: bool, market_order: bool, tif: u8, reduce_only: bool, offset_ticks: i64, qty_lots: i64 },
    Cancel { account: u64, order_id: u64 },
    Mark { move_permille: i64 },
    Funding { rate_bp: i64 },
    Deposit { account: u64, amount: i64 },
    Withdraw { account: u64, amount: i64 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (1..=ACCOUNTS, any::<bool>(), prop::bool::weighted(0.2), 0u8..4, prop::bool::weighted(0.1), -30i64..30, 1i64..3000)
            .prop_map(|(account, buy, market_order, tif, reduce_only, offset_ticks, qty_lots)| Action::Place {
                account, buy, market_order, tif, reduce_only, offset_ticks, qty_lots
            }),
        2 => (1..=ACCOUNTS, 1u64..80).prop_map(|(account, order_id)| Action::Cancel { account, order_id }),
        3 => prop_oneof![4 => -40i64..40, 1 => -300i64..300].prop_map(|move_permille| Action::Mark { move_permille }),
        1 => (-100i64..100).prop_map(|rate_bp| Action::Funding { rate_bp }),
        1 => (0..=ACCOUNTS, 1i64..500).prop_map(|(account, amount)| Action::Deposit { account, amount }),
        1 => (1..=ACCOUNTS, 1i64..500).prop_map(|(account, amount)| Action::Withdraw { account, amount }),
    ]
}

fn step(h: &mut Harness, action: &Action, mark_tenths: &mut i64) -> bool {
    match *action {
        Action::Place { account, buy, market_order, tif, reduce_only, offset_ticks, qty_lots } => {
            let place = Place {
                market: sym("BTC-PERP"),
                side: if buy { Side::Buy } else { Side::Sell },
                order_type: if market_order { OrderType::Market } else { OrderType::Limit },
                tif: [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly][usize::from(tif)],
                reduce_only,
                price: Dec::new((*mark_tenths + offset_ticks).max(1), 1),
                qty: Dec::new(qty_lots, 3),
                client_id: 0,
            };
            h.apply(Who::Account(account), Op::Place(place))
        }
        Action::Cancel { account, order_id } => {
            h.apply(Who::Account(account), Op::Cancel(OrderRef { market: sym("BTC-PERP"), order_id, client_id: 0 }))
        }
        Action::Mark { move_permille } => {
            let next = (*mark_tenths + *mark_tenths * move_permille / 1000).max(10);
            let accepted = h.apply(Who::Oracle, mark(next));
            if accepted {
                *mark_tenths = next;
            }
            accepted
        }
        Action::Funding { rate_bp } => {
            h.apply(Who::Oracle, Op::Funding(Funding { market: sym("BTC-PERP"), rate: Dec::new(rate_bp, 4) }))
        }
        Action::Deposit { account, amount } => h.apply(
            Who::Custody,
            Op::Deposit(Deposit { account, asset: sym("USDC"), amount: Dec::new(amount, 0), chain_ref: [0; 32] }),
        ),
        Action::Withdraw { account, amount } => h.apply(
            Who::Account(account),
            Op::Withdraw(AssetAmount { asset: sym("USDC"), amount: Dec::new(amount, 0) }),
        ),
    }
}

fn run_case(deposits: &[i64], actions: &[Action]) -> Result<(usize, usize), TestCaseError> {
    let mut h = Harness::new();
    h.setup(deposits);
    let mut mark_tenths = 1000i64;
    for (i, action) in actions.iter().enumerate() {
        let before = h.observable();
        let accepted = step(&mut h, action, &mut mark_tenths);
        if let Err(broken) = h.engine.check_invariants() {
            return Err(TestCaseError::fail(format!("after action {i} {action:?}: {broken}")));
        }
        if !accepted {
            prop_assert_eq!(&before, &h.observable(), "rejected action {} {:?} changed state", i, action);
        }
    }
    Ok((h.liquidations, h.fills))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, max_shrink_iters: 3000, ..ProptestConfig::default() })]

    #[test]
    fn perp_invariants_hold_after_every_tx(
        deposits in prop::collection::vec(5i64..2000, 1..4),
        actions in prop::collection::vec(action(), 1..120),
    ) {
        run_case(&deposits, &actions)?;
    }
}

#[test]
fn random_perp_workloads_do_liquidate_and_trade() {
    // The property test must reach the interesting paths, not only rejections.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (prop::collection::vec(5i64..200, 1..4), prop::collection::vec(action(), 80..160));
    let (mut liquidations, mut fills) = (0, 0);
    for _ in 0..200 {
        let (deposits, actions) = strategy.new_tree(&mut runner).expect("tree").current();
        let (l, f) = run_case(&deposits, &actions).expect("invariants");
        liquidations += l;
        fills += f;
    }
    assert!(fills > 1_000, "fills {fills}");
    assert!(liquidations > 20, "liquidations {liquidations}");
}
