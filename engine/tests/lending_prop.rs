//! Property tests for lending (SPEC 6a, 7) on random workloads that mix everything: lend,
//! redeem, borrow and repay in two pools (USDC and BTC, both with kinked rate curves and a
//! reserve factor), spot and perp orders, index and perp marks (gaps included), funding of
//! both signs, ticks that jump up to a month, deposits (also to the insurance fund) and
//! withdrawals. After every tx: exact conservation per asset (the fee account with the pools'
//! rounding dust, the insurance fund), every pool's principals equal to its accounts', the
//! accounts' rounded `lent` and `borrowed` within one unit each of the pool's totals and in the
//! exchange's favour, Σ lent ≥ Σ borrowed, the insurance fund ≥ 0, locks and reserves equal
//! to what orders need, no account left below maintenance (all of it
//! `Engine::check_invariants`), `available ≥ 0` (unsigned by construction), and no path paying
//! out money that nobody deposited (`Engine::uncovered` stays 0, no `bad_debt` is paid by
//! nobody: SPEC 6, 6a). A rejected tx
//! changes nothing: balances, orders, positions, fees, insurance and pools are compared.
//!
//! `LENDING_CASES` sets the number of sequences (2,000 by default, a few seconds).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::tx::{
    AddAsset, AddMarket, AssetAmount, Dec, Deposit, Funding, Mark, MarkPrice, MarketKind, Op, OrderRef, OrderType,
    Place, Side, Symbol, TimeInForce, Tx,
};
use verex_engine::verified::VerifiedTx;
use verex_engine::{DebtPayer, Engine, Event, EventBuf, Genesis, Limits};

const ACCOUNTS: u64 = 6;
const ASSETS: [&str; 2] = ["USDC", "BTC"];

fn sym(s: &str) -> Symbol {
    Symbol::new(s).expect("symbol")
}

/// What the random workloads reached (the property must not pass on rejections alone).
#[derive(Debug, Default, Clone, Copy)]
struct Coverage {
    borrows: usize,
    auto_borrows: usize,
    unfunded: usize,
    /// Holders' automatic lends and unfunded debts the pool then funded (end of the tx).
    auto_lends: usize,
    debts_funded: usize,
    accruals: usize,
    collateral_sales: usize,
    socialized: usize,
    bad_debts: usize,
    /// Bad debts (of money nobody lent) that the asset's holders paid: the last resort.
    holders_paid: usize,
    liquidations: usize,
    fills: usize,
}

impl Coverage {
    fn add(&mut self, other: &Self) {
        self.borrows += other.borrows;
        self.auto_borrows += other.auto_borrows;
        self.unfunded += other.unfunded;
        self.auto_lends += other.auto_lends;
        self.debts_funded += other.debts_funded;
        self.accruals += other.accruals;
        self.collateral_sales += other.collateral_sales;
        self.socialized += other.socialized;
        self.bad_debts += other.bad_debts;
        self.holders_paid += other.holders_paid;
        self.liquidations += other.liquidations;
        self.fills += other.fills;
    }
}

struct Harness {
    engine: Engine,
    sequencer: Sequencer,
    buf: EventBuf,
    nonce: u64,
    ts: u64,
    coverage: Coverage,
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
        Self { engine, sequencer, buf, nonce: 0, ts: 1_700_000_000_000_000_000, coverage: Coverage::default(), keys }
    }

    /// Applies `op`, stamped `jump_ns` after the previous tx.
    fn apply_at(&mut self, who: Who, op: Op, jump_ns: u64) -> bool {
        self.nonce += 1;
        self.ts += jump_ns.max(1);
        let (key, account) = match who {
            Who::Admin => (0, 0),
            Who::Custody => (1, 0),
            Who::Oracle => (2, 0),
            Who::Account(a) => (2 + a as usize, a),
        };
        let account = if matches!(op, Op::CreateAccount) { 0 } else { account };
        let tx = Tx { signer: [0; 32], nonce: self.nonce, account, op };
        let record = self.sequencer.stamp(&VerifiedTx::sign(tx, &self.keys[key]), Some(self.ts)).expect("dev clock");
        self.engine.apply(record.verified(), &mut self.buf).expect("gap-free");
        let c = &mut self.coverage;
        for event in self.buf.events() {
            match event {
                Event::Pool { kind: verex_engine::events::PoolMove::Borrow, .. } => c.borrows += 1,
                Event::Borrow { unfunded, .. } => {
                    c.auto_borrows += 1;
                    c.unfunded += usize::from(*unfunded > 0);
                }
                Event::AutoLend { .. } => c.auto_lends += 1,
                Event::DebtFunded { .. } => c.debts_funded += 1,
                Event::Accrual { .. } => c.accruals += 1,
                Event::CollateralSold { .. } => c.collateral_sales += 1,
                Event::BadDebt { paid_by: DebtPayer::Lenders, .. } => c.socialized += 1,
                Event::BadDebt { paid_by: DebtPayer::Holders, .. } => {
                    c.holders_paid += 1;
                    c.bad_debts += 1;
                }
                Event::BadDebt { .. } => c.bad_debts += 1,
                Event::Liquidation { .. } | Event::Adl { .. } => c.liquidations += 1,
                Event::Fill { .. } => c.fills += 1,
                _ => {}
            }
        }
        self.buf.rejection().is_none()
    }

    fn apply(&mut self, who: Who, op: Op) -> bool {
        self.apply_at(who, op, 1_000_000)
    }

    fn setup(&mut self, deposits: &[(i64, i64)], fund: i64) {
        for (symbol, decimals) in [("USDC", 6u8), ("BTC", 8)] {
            let mut asset = AddAsset::new(sym(symbol), decimals);
            asset.rate_base = Dec::new(2, 2);
            asset.rate_at_kink = Dec::new(2, 1);
            asset.rate_max = Dec::new(3, 0);
            if symbol == "BTC" {
                asset.collateral_weight = Dec::new(9, 1);
                asset.borrow_weight = Dec::new(11, 1);
            }
            assert!(self.apply(Who::Admin, Op::AddAsset(asset)));
        }
        let spot = Op::AddMarket(AddMarket {
            symbol: sym("BTC-USDC"),
            kind: MarketKind::Spot,
            base: sym("BTC"),
            quote: sym("USDC"),
            tick: Dec::new(1, 2),
            step: Dec::new(1, 4),
            maker_fee: Dec::new(2, 4),
            taker_fee: Dec::new(5, 4),
            imf: Dec::new(0, 0),
            mmf: Dec::new(0, 0),
            funding_interval_ns: 0,
        });
        assert!(self.apply(Who::Admin, spot));
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
            let (usdc, btc_milli) = deposits[(a as usize - 1) % deposits.len()];
            assert!(self.apply(Who::Custody, deposit(a, "USDC", Dec::new(usdc, 0))));
            assert!(self.apply(Who::Custody, deposit(a, "BTC", Dec::new(btc_milli, 3))));
        }
        // The insurance fund holds USDC to pay for collateral and bad debts (or nothing).
        if fund > 0 {
            assert!(self.apply(Who::Custody, deposit(0, "USDC", Dec::new(fund, 0))));
        }
    }

    fn observable(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in 1..=self.engine.account_count() {
            for asset in 0..2 {
                out.push(format!(
                    "{a}/{asset}: {:?} reserved {}",
                    self.engine.balance(a, asset),
                    self.engine.reserved(a, asset)
                ));
            }
            out.push(format!("{a}: position {}", self.engine.position(a, 1)));
            out.extend(self.engine.orders_of(a).map(|o| format!("{o:?}")));
        }
        for asset in 0..2 {
            out.push(format!(
                "{asset}: fees {} ins {} pool {:?} uncovered {}",
                self.engine.fees(asset),
                self.engine.insurance(asset),
                self.engine.pool_state(asset),
                self.engine.uncovered(asset)
            ));
        }
        out.push(format!("fund position {}", self.engine.insurance_position(1)));
        out
    }
}

fn deposit(account: u64, asset: &str, amount: Dec) -> Op {
    Op::Deposit(Deposit { account, asset: sym(asset), amount, chain_ref: [0; 32] })
}

/// A mark of BTC's index and BTC-PERP, both at `tenths` × 0.1.
fn mark(tenths: i64) -> Op {
    Op::Mark(
        Mark::from_prices(&[
            MarkPrice { symbol: sym("BTC"), price: Dec::new(tenths, 1) },
            MarkPrice { symbol: sym("BTC-PERP"), price: Dec::new(tenths, 1) },
        ])
        .expect("two prices"),
    )
}

#[derive(Debug, Clone)]
enum Action {
    /// 0 lend, 1 redeem, 2 borrow, 3 repay; `asset` 0 USDC, 1 BTC; amount in 0.1 USDC or
    /// 0.0001 BTC.
    Pool {
        account: u64,
        kind: u8,
        asset: u16,
        amount: i64,
    },
    Place {
        account: u64,
        perp: bool,
        buy: bool,
        market_order: bool,
        tif: u8,
        offset_ticks: i64,
        qty_lots: i64,
    },
    Cancel {
        account: u64,
        perp: bool,
        order_id: u64,
    },
    Mark {
        move_permille: i64,
    },
    Funding {
        rate_bp: i64,
    },
    /// Advances the clock by `seconds` (up to a month) and accrues every pool.
    Tick {
        seconds: u64,
    },
    Deposit {
        account: u64,
        asset: u16,
        amount: i64,
    },
    Withdraw {
        account: u64,
        asset: u16,
        amount: i64,
    },
    /// A borrow of USDC followed by its withdrawal (two txs): leverage that can be liquidated.
    BorrowOut {
        account: u64,
        amount: i64,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (1..=ACCOUNTS, 0u8..4, 0u16..2, prop_oneof![3 => 1i64..5_000, 1 => 1i64..200_000])
            .prop_map(|(account, kind, asset, amount)| Action::Pool { account, kind, asset, amount }),
        5 => (1..=ACCOUNTS, any::<bool>(), any::<bool>(), prop::bool::weighted(0.2), 0u8..4, -30i64..30, 1i64..2000)
            .prop_map(|(account, perp, buy, market_order, tif, offset_ticks, qty_lots)| Action::Place {
                account, perp, buy, market_order, tif, offset_ticks, qty_lots
            }),
        1 => (1..=ACCOUNTS, any::<bool>(), 1u64..60).prop_map(|(account, perp, order_id)| Action::Cancel { account, perp, order_id }),
        3 => prop_oneof![3 => -60i64..60, 2 => -550i64..300].prop_map(|move_permille| Action::Mark { move_permille }),
        1 => (-100i64..100).prop_map(|rate_bp| Action::Funding { rate_bp }),
        2 => prop_oneof![1u64..600, 3_600u64..2_592_000].prop_map(|seconds| Action::Tick { seconds }),
        1 => (0..=ACCOUNTS, 0u16..2, 1i64..500).prop_map(|(account, asset, amount)| Action::Deposit { account, asset, amount }),
        1 => (1..=ACCOUNTS, 0u16..2, 1i64..500).prop_map(|(account, asset, amount)| Action::Withdraw { account, asset, amount }),
        3 => (1..=ACCOUNTS, 1i64..600).prop_map(|(account, amount)| Action::BorrowOut { account, amount }),
    ]
}

fn amount_of(asset: u16, amount: i64) -> Dec {
    if asset == 0 {
        Dec::new(amount, 1)
    } else {
        Dec::new(amount, 4)
    }
}

fn step(h: &mut Harness, action: &Action, mark_tenths: &mut i64) -> bool {
    match *action {
        Action::Pool { account, kind, asset, amount } => {
            let op = AssetAmount { asset: sym(ASSETS[usize::from(asset)]), amount: amount_of(asset, amount) };
            let op = match kind {
                0 => Op::Lend(op),
                1 => Op::Redeem(op),
                2 => Op::Borrow(op),
                _ => Op::Repay(op),
            };
            h.apply(Who::Account(account), op)
        }
        Action::Place { account, perp, buy, market_order, tif, offset_ticks, qty_lots } => {
            // Spot prices have 2 places, perp prices 1: the same offset in ticks of each.
            let price = if perp {
                Dec::new((*mark_tenths + offset_ticks).max(1), 1)
            } else {
                Dec::new((*mark_tenths * 10 + offset_ticks * 10).max(1), 2)
            };
            let place = Place {
                market: sym(if perp { "BTC-PERP" } else { "BTC-USDC" }),
                side: if buy { Side::Buy } else { Side::Sell },
                order_type: if market_order { OrderType::Market } else { OrderType::Limit },
                tif: [TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly][usize::from(tif)],
                reduce_only: false,
                price,
                qty: if perp { Dec::new(qty_lots, 3) } else { Dec::new(qty_lots, 4) },
                client_id: 0,
            };
            h.apply(Who::Account(account), Op::Place(place))
        }
        Action::Cancel { account, perp, order_id } => {
            let market = sym(if perp { "BTC-PERP" } else { "BTC-USDC" });
            h.apply(Who::Account(account), Op::Cancel(OrderRef { market, order_id, client_id: 0 }))
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
        Action::Tick { seconds } => h.apply_at(Who::Oracle, Op::Tick, seconds * 1_000_000_000),
        Action::Deposit { account, asset, amount } => {
            h.apply(Who::Custody, deposit(account, ASSETS[usize::from(asset)], amount_of(asset, amount * 100)))
        }
        Action::Withdraw { account, asset, amount } => h.apply(
            Who::Account(account),
            Op::Withdraw(AssetAmount { asset: sym(ASSETS[usize::from(asset)]), amount: amount_of(asset, amount * 10) }),
        ),
        Action::BorrowOut { .. } => unreachable!("expanded into a borrow and a withdrawal"),
    }
}

/// Each `BorrowOut` becomes its two txs (each checked on its own).
fn expand(actions: &[Action]) -> Vec<Action> {
    let mut out = Vec::with_capacity(actions.len() * 2);
    for action in actions {
        match *action {
            Action::BorrowOut { account, amount } => {
                out.push(Action::Pool { account, kind: 2, asset: 0, amount: amount * 10 });
                out.push(Action::Withdraw { account, asset: 0, amount });
            }
            ref other => out.push(other.clone()),
        }
    }
    out
}

fn run_case(deposits: &[(i64, i64)], fund: i64, actions: &[Action]) -> Result<Coverage, TestCaseError> {
    let mut h = Harness::new();
    h.setup(deposits, fund);
    let mut mark_tenths = 1000i64;
    for (i, action) in expand(actions).iter().enumerate() {
        let before = h.observable();
        let accepted = step(&mut h, action, &mut mark_tenths);
        if let Err(broken) = h.engine.check_invariants() {
            if std::env::var("LENDING_DEBUG").is_ok() {
                eprintln!("{:#?}\n{:#?}", h.observable(), h.buf.events());
            }
            return Err(TestCaseError::fail(format!("after action {i} {action:?}: {broken}")));
        }
        if !accepted {
            prop_assert_eq!(&before, &h.observable(), "rejected action {} {:?} changed state", i, action);
        }
        // No path pays out money that no one deposited (SPEC 6, 6a): nothing is uncovered,
        // nothing written off to nobody.
        for asset in 0..2u16 {
            prop_assert_eq!(h.engine.uncovered(asset), 0, "after action {} {:?}: asset {} uncovered", i, action, asset);
        }
        let unpaid = h.buf.events().iter().any(|e| matches!(e, Event::BadDebt { paid_by: DebtPayer::Uncovered, .. }));
        prop_assert!(!unpaid, "after action {} {:?}: a bad debt paid by nobody: {:?}", i, action, h.buf.events());
    }
    Ok(h.coverage)
}

fn cases() -> u32 {
    std::env::var("LENDING_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
}

fn case() -> impl Strategy<Value = (Vec<(i64, i64)>, i64, Vec<Action>)> {
    (
        prop::collection::vec((1i64..3_000, 1i64..3_000), 1..4),
        prop_oneof![1 => Just(0i64), 3 => 1_000i64..1_000_000],
        prop::collection::vec(action(), 1..60),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 3000, ..ProptestConfig::default() })]

    #[test]
    fn lending_invariants_hold_after_every_tx((deposits, fund, actions) in case()) {
        run_case(&deposits, fund, &actions)?;
    }
}

#[test]
fn random_lending_workloads_reach_every_path() {
    // The property must reach borrows, interest, automatic borrows, collateral sales and
    // bad debts, not only rejections.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (
        prop::collection::vec((100i64..3_000, 100i64..3_000), 1..4),
        prop_oneof![1 => Just(0i64), 3 => 1_000i64..1_000_000],
        prop::collection::vec(action(), 80..160),
    );
    let mut total = Coverage::default();
    for _ in 0..200 {
        let (deposits, fund, actions) = strategy.new_tree(&mut runner).expect("tree").current();
        total.add(&run_case(&deposits, fund, &actions).expect("invariants"));
    }
    eprintln!("lending coverage over 200 cases: {total:?}");
    // Over these 200 cases (a fixed seed): 901 borrows, 25 automatic borrows (7 partly
    // unfunded; 9 unfunded debts then funded by 46 holders' automatic lends), 1,604 accruals, 4 collateral sales (none for nothing), 1 socialized loss,
    // 2 other bad debts (none paid by the holders),
    // 1,021 fills.
    assert!(total.borrows > 300, "{total:?}");
    assert!(total.auto_borrows > 10 && total.unfunded > 0, "{total:?}");
    // An unfunded debt that outlived its liquidation checks was funded by the holders.
    assert!(total.auto_lends > 0 && total.debts_funded > 0, "{total:?}");
    assert!(total.accruals > 500, "{total:?}");
    assert!(total.collateral_sales >= 3, "{total:?}");
    assert!(total.socialized >= 1 && total.bad_debts >= 1, "{total:?}");
    assert!(total.fills > 500, "{total:?}");
}
