//! The lines a new user writes to go from nothing to a signed order's fills, with the API as
//! it was before the embedding helpers (`before`) and with them (`after`). Both programs run
//! here and must produce the fill; the test counts their lines (between the markers, blank
//! lines and comments excluded) and holds `after` under 40.

use verex_engine::Event;

// BEGIN before
fn before() -> Vec<Event> {
    use verex_engine::sequencer::{Clock, Sequencer};
    use verex_engine::signing::{dev_account_key, dev_role_key, Role};
    use verex_engine::tx::{AddAsset, AddMarket, Dec, Deposit, Op, OrderType, Place, Side, Symbol, TimeInForce, Tx};
    use verex_engine::verified::VerifiedTx;
    use verex_engine::{Engine, Genesis, Limits};
    let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("engine");
    let mut buf = engine.event_buf();
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    let mut nonces = [0u64; 4];
    let mut submit = |who: usize, account: u64, op: Op, engine: &mut Engine, buf: &mut verex_engine::EventBuf| {
        let key = match who {
            0 => dev_role_key(Role::Admin),
            1 => dev_role_key(Role::Custody),
            n => dev_account_key(n as u64 - 1),
        };
        nonces[who] += 1;
        let tx = Tx { signer: [0; 32], nonce: nonces[who], account, op };
        let record = sequencer.stamp(&VerifiedTx::sign(tx, &key), None).expect("stamp");
        engine.apply(record.verified(), buf).expect("apply");
        buf.events().to_vec()
    };
    let sym = |s: &str| Symbol::new(s).expect("symbol");
    submit(0, 0, Op::AddAsset(AddAsset::new(sym("USDC"), 6)), &mut engine, &mut buf);
    submit(0, 0, Op::AddAsset(AddAsset::new(sym("BTC"), 8)), &mut engine, &mut buf);
    let market = AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001").expect("market");
    submit(0, 0, Op::AddMarket(market), &mut engine, &mut buf);
    submit(2, 0, Op::CreateAccount, &mut engine, &mut buf);
    submit(3, 0, Op::CreateAccount, &mut engine, &mut buf);
    let deposit = |account, asset: &str, amount| Deposit { account, asset: sym(asset), amount, chain_ref: [0; 32] };
    submit(1, 0, Op::Deposit(deposit(1, "USDC", Dec::new(1000, 0))), &mut engine, &mut buf);
    submit(1, 0, Op::Deposit(deposit(2, "BTC", Dec::new(1, 0))), &mut engine, &mut buf);
    let order = |side, price, qty| Place {
        market: sym("BTC-USDC"),
        side,
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        reduce_only: false,
        price,
        qty,
        client_id: 0,
    };
    submit(3, 2, Op::Place(order(Side::Sell, Dec::new(100, 0), Dec::new(5, 1))), &mut engine, &mut buf);
    submit(2, 1, Op::Place(order(Side::Buy, Dec::new(100, 0), Dec::new(2, 1))), &mut engine, &mut buf)
}
// END before

// BEGIN after
fn after() -> Vec<Event> {
    use verex_engine::signing::{dev_account_key, dev_role_key, Role};
    use verex_engine::tx::{AddAsset, AddMarket, Deposit, Op, Place, Side};
    use verex_engine::{Client, Exchange};
    let mut exchange = Exchange::dev().expect("engine");
    let mut admin = Client::new(dev_role_key(Role::Admin));
    let mut custody = Client::new(dev_role_key(Role::Custody));
    let (mut alice, mut bob) = (Client::resume(dev_account_key(1), 1, 0), Client::resume(dev_account_key(2), 2, 0));
    let txs = [
        admin.sign(AddAsset::named("USDC", 6).expect("symbol")),
        admin.sign(AddAsset::named("BTC", 8).expect("symbol")),
        admin.sign(AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001").expect("market")),
        alice.sign(Op::CreateAccount),
        bob.sign(Op::CreateAccount),
        custody.sign(Deposit::of(1, "USDC", "1000").expect("deposit")),
        custody.sign(Deposit::of(2, "BTC", "1").expect("deposit")),
        bob.sign(Place::limit("BTC-USDC", Side::Sell, "100", "0.5").expect("order")),
        alice.sign(Place::limit("BTC-USDC", Side::Buy, "100", "0.2").expect("order")),
    ];
    let mut last = Vec::new();
    for tx in &txs {
        last = exchange.submit(tx).expect("submit").events().to_vec();
    }
    last
}
// END after

/// Lines between `// BEGIN name` and `// END name`, blank lines and comments excluded.
fn lines_of(name: &str) -> usize {
    let source = include_str!("new_user_lines.rs");
    let begin = format!("// BEGIN {name}");
    let end = format!("// END {name}");
    source
        .lines()
        .skip_while(|l| l.trim() != begin)
        .skip(1)
        .take_while(|l| l.trim() != end)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .count()
}

#[test]
fn a_new_user_reaches_a_fill_in_under_40_lines() {
    let fill = |events: &[Event]| events.iter().any(|e| matches!(e, Event::Fill { trade_id: 1, .. }));
    assert!(fill(&before()), "before: the order fills");
    assert!(fill(&after()), "after: the order fills");
    let (before_lines, after_lines) = (lines_of("before"), lines_of("after"));
    eprintln!("lines from nothing to a signed order's fills: before {before_lines}, after {after_lines}");
    assert!(after_lines < 40, "after: {after_lines} lines");
    assert!(before_lines > after_lines);
}
