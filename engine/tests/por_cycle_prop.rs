//! Property: for random exchange states, every account's proof verifies against the signed
//! root, and the root's totals are exactly the state's per-asset liabilities.
//!
//! Each case lists USDC, BTC and ETH, a BTC-USDC spot market and a USDC-settled BTC-PERP,
//! creates 2–8 accounts (every fourth unfunded: no leaf unless an operation funds it; the others
//! with 1,000 USDC and 20 BTC), then runs 1–60 random operations through
//! the engine: deposits, lends and redeems, withdrawals, resting spot orders (locked funds),
//! perp trades between random pairs and marks that move them (losses beyond an account's USDC
//! become debts), insurance deposits. Rejected operations are part of the randomness.
//!
//! Checked, against the state dump (the text path, not the accessors the tree is built from):
//! per asset Σequity = Σ(available + locked + lent) and Σdebt = Σborrowed over the accounts,
//! liability = their difference, fees and insurance as dumped (the insurance fund's lent
//! included), and `Σequity − Σdebt + fees + insurance` = custody's supply exactly
//! (conservation: nothing is uncovered, the root shows no gap); exactly the accounts with a non-zero value
//! have a leaf; every leaf's proof, written to JSON and read back, verifies with the pinned
//! attest key and shows that account's own values. `POR_PROP_CASES` sets the number of cases
//! (default 48).

use proptest::prelude::*;
use verex_engine::por::cycle::conservation_gaps;
use verex_engine::por::proof::verify_files;
use verex_engine::por::Cycle;
use verex_engine::signing::{dev_role_key, Role};
use verex_engine::text::runner::{LineOutcome, TextRunner};
use verex_engine::text::state_json::state_value;
use verex_engine::Limits;

#[derive(Clone, Debug)]
enum Op {
    Deposit { account: u64, asset: usize, amount: u32 },
    Insurance { amount: u32 },
    Lend { account: u64, amount: u32 },
    Redeem { account: u64, amount: u32 },
    Withdraw { account: u64, asset: usize, amount: u32 },
    RestSpot { account: u64, buy: bool, price: u32, qty: u32 },
    PerpTrade { buyer: u64, seller: u64, price: u32, qty: u32 },
    Mark { btc: u32, perp: u32 },
}

const ASSETS: [&str; 3] = ["USDC", "BTC", "ETH"];

fn op(accounts: u64) -> impl Strategy<Value = Op> {
    let account = 1..=accounts;
    prop_oneof![
        4 => (account.clone(), 0..3usize, 1..50_000u32).prop_map(|(account, asset, amount)| Op::Deposit { account, asset, amount }),
        1 => (1..5_000u32).prop_map(|amount| Op::Insurance { amount }),
        2 => (account.clone(), 1..2_000u32).prop_map(|(account, amount)| Op::Lend { account, amount }),
        1 => (account.clone(), 1..20_000u32).prop_map(|(account, amount)| Op::Redeem { account, amount }),
        1 => (account.clone(), 0..3usize, 1..10_000u32).prop_map(|(account, asset, amount)| Op::Withdraw { account, asset, amount }),
        2 => (account.clone(), any::<bool>(), 50..200u32, 1..5u32)
            .prop_map(|(account, buy, price, qty)| Op::RestSpot { account, buy, price, qty }),
        3 => (account.clone(), account, 50..200u32, 1..20u32)
            .prop_map(|(buyer, seller, price, qty)| Op::PerpTrade { buyer, seller, price, qty }),
        2 => (30..300u32, 30..300u32).prop_map(|(btc, perp)| Op::Mark { btc, perp }),
    ]
}

fn lines(op: &Op) -> Vec<String> {
    match op {
        Op::Deposit { account, asset, amount } => {
            // USDC for margin, a few whole BTC or ETH as collateral that carries USDC debts.
            let amount = if *asset == 0 { amount % 5_000 + 1 } else { amount % 50 + 1 };
            vec![format!(r#"{{"op":"deposit","account":{account},"asset":"{}","amount":"{amount}"}}"#, ASSETS[*asset])]
        }
        Op::Insurance { amount } => {
            vec![format!(r#"{{"op":"deposit","account":0,"asset":"USDC","amount":"{amount}"}}"#)]
        }
        Op::Lend { account, amount } => {
            vec![format!(r#"{{"op":"lend","account":{account},"asset":"USDC","amount":"{amount}"}}"#)]
        }
        Op::Redeem { account, amount } => {
            vec![format!(r#"{{"op":"redeem","account":{account},"asset":"USDC","amount":"{amount}"}}"#)]
        }
        Op::Withdraw { account, asset, amount } => {
            vec![format!(r#"{{"op":"withdraw","account":{account},"asset":"{}","amount":"{amount}"}}"#, ASSETS[*asset])]
        }
        Op::RestSpot { account, buy, price, qty } => vec![format!(
            r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{}","type":"limit","price":"{price}","qty":"0.{qty:03}","tif":"post_only"}}"#,
            if *buy { "buy" } else { "sell" }
        )],
        Op::PerpTrade { buyer, seller, price, qty } => vec![
            format!(
                r#"{{"op":"place","account":{seller},"market":"BTC-PERP","side":"sell","type":"limit","price":"{price}","qty":"{qty}","tif":"gtc"}}"#
            ),
            format!(
                r#"{{"op":"place","account":{buyer},"market":"BTC-PERP","side":"buy","type":"limit","price":"{price}","qty":"{qty}","tif":"ioc"}}"#
            ),
            format!(r#"{{"op":"cancel_all","account":{seller},"market":"BTC-PERP"}}"#),
        ],
        Op::Mark { btc, perp } => vec![format!(r#"{{"op":"mark","prices":{{"BTC":"{btc}","BTC-PERP":"{perp}"}}}}"#)],
    }
}

fn run(runner: &mut TextRunner, line: &str) {
    match runner.run_line(line).expect("a well-formed line") {
        LineOutcome::Applied { .. } => {}
        LineOutcome::Refused(reason) => panic!("{line}: {reason}"),
    }
}

fn state(accounts: u64, ops: &[Op]) -> TextRunner {
    let mut runner = TextRunner::dev(Limits::small()).expect("engine");
    let setup = [
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
        r#"{"op":"add_asset","symbol":"BTC","decimals":8,"collateral_weight":"0.9","borrow_weight":"1.1"}"#,
        r#"{"op":"add_asset","symbol":"ETH","decimals":8,"collateral_weight":"0.8","borrow_weight":"1.2"}"#,
        r#"{"op":"add_market","symbol":"BTC-USDC","kind":"spot","base":"BTC","quote":"USDC","tick":"0.01","step":"0.001","maker_fee":"0.001","taker_fee":"0.002"}"#,
        r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.01","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0.001"}"#,
        r#"{"op":"mark","prices":{"BTC":"100","ETH":"50","BTC-PERP":"100"}}"#,
    ];
    for line in setup {
        run(&mut runner, line);
    }
    for account in 1..=accounts {
        run(&mut runner, r#"{"op":"create_account"}"#);
        // Every fourth account stays empty unless an operation funds it.
        if account % 4 != 0 {
            run(&mut runner, &format!(r#"{{"op":"deposit","account":{account},"asset":"USDC","amount":"1000"}}"#));
            run(&mut runner, &format!(r#"{{"op":"deposit","account":{account},"asset":"BTC","amount":"20"}}"#));
        }
    }
    for op in ops {
        for line in lines(op) {
            run(&mut runner, &line);
        }
    }
    runner
}

/// `"123.45"` in `decimals` → units.
fn units(text: &serde_json::Value, decimals: u32) -> i128 {
    let text = text.as_str().unwrap_or("0");
    let dec = verex_engine::text::decimal::parse_dec(text).expect("decimal");
    i128::from(dec.to_units(decimals).expect("units"))
}

fn cases() -> u32 {
    std::env::var("POR_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_proof_verifies_and_the_totals_are_the_liabilities(
        (accounts, ops) in (2u64..=8).prop_flat_map(|n| (Just(n), proptest::collection::vec(op(n), 1..60))),
        seed in any::<[u8; 32]>(),
    ) {
        let runner = state(accounts, &ops);
        let engine = &runner.engine;
        let attest = dev_role_key(Role::Attest);
        let mut cycle = Cycle::build(engine, [7; 32], seed, 2).expect("build");
        cycle.sign(&attest);
        let root = &cycle.root;
        let dump = state_value(engine);
        let decimals = [6u32, 8, 8];
        for (i, asset) in root.assets.iter().enumerate() {
            let symbol = ASSETS[i];
            prop_assert_eq!(asset.symbol.as_str(), symbol);
            let (mut equity, mut debt) = (0i128, 0i128);
            for account in dump["accounts"].as_array().expect("accounts") {
                let b = &account["balances"][symbol];
                equity += units(&b["available"], decimals[i]) + units(&b["locked"], decimals[i]) + units(&b["lent"], decimals[i]);
                debt += units(&b["borrowed"], decimals[i]);
            }
            prop_assert_eq!(i128::from(asset.equity), equity, "{} equity", symbol);
            prop_assert_eq!(i128::from(asset.debt), debt, "{} debt", symbol);
            prop_assert_eq!(asset.liability(), equity - debt);
            // The exchange's own as dumped: the fee account (with the pools' rounding dust) and
            // the insurance fund's cash and what it lends in the pool.
            let fees = units(&dump["fees"][symbol], decimals[i]);
            let insurance = units(&dump["insurance"][symbol], decimals[i])
                + units(&dump["pools"][symbol]["insurance_lent"], decimals[i]);
            prop_assert_eq!((i128::from(asset.fees), i128::from(asset.insurance)), (fees, insurance));
            // Conservation: what the root shows equals custody's supply exactly. No path pays
            // out money that no one deposited (SPEC 6, 6a), so nothing is uncovered and the
            // root shows no gap.
            let uncovered = units(&dump["uncovered"][symbol], decimals[i]);
            prop_assert_eq!(uncovered, 0, "{} uncovered", symbol);
            prop_assert_eq!(equity - debt + fees + insurance, i128::from(engine.supply(i as u16)), "conservation of {}", symbol);
            let gap = conservation_gaps(engine, root).iter().find(|(s, _)| s.as_str() == symbol).map_or(0, |(_, gap)| *gap);
            prop_assert_eq!(gap, 0, "{} gap", symbol);
        }
        let root_text = root.to_json();
        let key = attest.verifying_key().to_bytes();
        let mut leaves = 0;
        for id in 1..=engine.account_count() {
            let values: Vec<u64> = (0..3u16)
                .flat_map(|a| {
                    let b = engine.balance(id, a).expect("balance");
                    [b.available + b.locked + b.lent, b.borrowed]
                })
                .collect();
            match cycle.proof(id) {
                None => prop_assert!(values.iter().all(|v| *v == 0), "account {} has a value but no leaf", id),
                Some(proof) => {
                    leaves += 1;
                    let (_, verified) = verify_files(&proof.to_json(), &root_text, Some(&key), Some(id))
                        .map_err(|(_, e)| TestCaseError::fail(format!("account {id}: {e}")))?;
                    let shown: Vec<u64> = (0..3).flat_map(|a| [verified.equity[a], verified.debt[a]]).collect();
                    prop_assert_eq!(shown, values);
                }
            }
        }
        prop_assert_eq!(leaves, root.leaf_count);
    }
}
