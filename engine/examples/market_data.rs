//! Market data from events alone (SPEC 14): a publisher that sees only the event stream
//! rebuilds the L2 book and the trade tape, and after every transaction its book equals the
//! engine's own depth.
//!
//! ```text
//! cargo run --release -p verex-engine --example market_data
//! ```
//!
//! A deterministic workload (limit orders of every tif, market orders, cancels and amends of
//! four accounts on one spot market) runs through [`Engine::apply`]; each tx's events go to
//! [`L2Books::apply_tx`] (which refuses a seq gap) and the fills to a tape. Exits non-zero if
//! the rebuilt book ever differs from [`Engine::depth`].

use std::process::ExitCode;

use verex_engine::market_data::{L2Books, Trade};
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::signing::{dev_account_key, dev_role_key, Role};
use verex_engine::text::event_json::{market_price, market_qty};
use verex_engine::tx::{
    AddAsset, AddMarket, Amend, Dec, Deposit, Op, OrderRef, OrderType, Place, Side, Symbol, TimeInForce, Tx,
};
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, EventBuf, Genesis, Limits};

/// Transactions of the order workload.
const ORDER_TXS: u64 = 20_000;
/// Accounts trading.
const ACCOUNTS: u64 = 4;

struct Exchange {
    engine: Engine,
    sequencer: Sequencer,
    buf: EventBuf,
    nonce: u64,
    books: L2Books,
    tape: Vec<Trade>,
    events: u64,
}

impl Exchange {
    fn submit(&mut self, key: &ed25519_dalek::SigningKey, account: u64, op: Op) -> Result<(), String> {
        self.nonce += 1;
        let tx = Tx { signer: [0; 32], nonce: self.nonce, account, op };
        let record = self.sequencer.stamp(&VerifiedTx::sign(tx, key), None).map_err(|e| e.to_string())?;
        self.engine.apply(record.verified(), &mut self.buf).map_err(|e| e.to_string())?;
        // The publisher's side: only the events cross over.
        let seq = self.buf.seq();
        self.books.apply_tx(seq, self.buf.events()).map_err(|e| e.to_string())?;
        self.tape.extend(self.buf.events().iter().filter_map(|e| Trade::from_event(seq, e)));
        self.events += self.buf.events().len() as u64;
        match self.books.first_difference(&self.engine) {
            Some(mismatch) => Err(format!("after seq {seq}: rebuilt L2 differs from the engine: {mismatch:?}")),
            None => Ok(()),
        }
    }
}

fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap_or_default()
}

fn run() -> Result<(), String> {
    let engine = Engine::new(Genesis::dev(), Limits::small()).map_err(|e| e.to_string())?;
    let buf = engine.event_buf();
    let sequencer = Sequencer::new(0, Clock::Deterministic);
    let mut x = Exchange { engine, sequencer, buf, nonce: 0, books: L2Books::new(), tape: Vec::new(), events: 0 };
    let (admin, custody) = (dev_role_key(Role::Admin), dev_role_key(Role::Custody));
    x.submit(&admin, 0, Op::AddAsset(AddAsset::new(sym("USDC"), 6)))?;
    x.submit(&admin, 0, Op::AddAsset(AddAsset::new(sym("BTC"), 8)))?;
    let market = AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001")
        .and_then(|m| m.fees("0.0002", "0.0005"))
        .map_err(|e| e.to_string())?;
    x.submit(&admin, 0, Op::AddMarket(market))?;
    let keys: Vec<_> = (1..=ACCOUNTS).map(dev_account_key).collect();
    for (account, key) in (1..).zip(&keys) {
        x.submit(key, 0, Op::CreateAccount)?;
        for (asset, amount) in [("USDC", Dec::new(100_000_000, 0)), ("BTC", Dec::new(1_000_000, 0))] {
            let deposit = Deposit { account, asset: sym(asset), amount, chain_ref: [0; 32] };
            x.submit(&custody, 0, Op::Deposit(deposit))?;
        }
    }
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..ORDER_TXS {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        let account = 1 + r % ACCOUNTS;
        let key = &keys[usize::try_from(account - 1).unwrap_or(0)];
        let price = Dec::new(9_900 + i64::try_from((r >> 8) % 200).unwrap_or(0), 2);
        let qty = Dec::new(1 + i64::try_from((r >> 20) % 50).unwrap_or(0), 4);
        let side = if (r >> 30).is_multiple_of(2) { Side::Buy } else { Side::Sell };
        let next_id = x.engine.next_order_id();
        let some_id = 1 + (r >> 40) % next_id;
        let op = match (r >> 32) % 10 {
            0..=5 => Op::Place(Place {
                market: sym("BTC-USDC"),
                side,
                order_type: OrderType::Limit,
                tif: [TimeInForce::Gtc, TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::PostOnly]
                    [usize::try_from((r >> 36) % 4).unwrap_or(0)],
                reduce_only: false,
                price,
                qty,
                client_id: 0,
            }),
            6 => Op::Place(Place {
                market: sym("BTC-USDC"),
                side,
                order_type: OrderType::Market,
                tif: TimeInForce::Ioc,
                reduce_only: false,
                price: Dec::ZERO,
                qty,
                client_id: 0,
            }),
            7 | 8 => Op::Cancel(OrderRef { market: sym("BTC-USDC"), order_id: some_id, client_id: 0 }),
            _ => Op::Amend(Amend {
                order: OrderRef { market: sym("BTC-USDC"), order_id: some_id, client_id: 0 },
                price: Some(price),
                qty: None,
            }),
        };
        x.submit(key, account, op)?;
    }
    if !x.tape.iter().zip(1..).all(|(trade, id)| trade.trade_id == id) {
        return Err("trade ids are not 1, 2, 3, ... in tape order".into());
    }
    print_market_data(&x);
    Ok(())
}

fn print_market_data(x: &Exchange) {
    let catalog = x.engine.catalog();
    let price = |p: i64| market_price(catalog, 0, p);
    let qty = |q: u64| market_qty(catalog, 0, q);
    let level = |l: Option<(i64, u64)>| l.map_or("-".to_string(), |(p, q)| format!("{} x {}", price(p), qty(q)));
    let (bid, ask) = x.books.top(0);
    println!("BTC-USDC at seq {}: best bid {} | best ask {}", x.books.last_seq(), level(bid), level(ask));
    println!("  depth (5 levels a side, rebuilt from events):");
    let bids: Vec<_> = x.books.depth(0, Side::Buy).take(5).collect();
    let asks: Vec<_> = x.books.depth(0, Side::Sell).take(5).collect();
    for i in 0..5 {
        println!("    {:>22}   {:<22}", level(bids.get(i).copied()), level(asks.get(i).copied()));
    }
    println!("  last trades:");
    for t in x.tape.iter().rev().take(5) {
        let side = if t.taker_side == Side::Buy { "buy" } else { "sell" };
        println!("    #{} seq {} ts {} {side} {} @ {}", t.trade_id, t.seq, t.ts, qty(t.qty), price(t.price));
    }
    let gap = L2Books::new().apply_tx(2, &[]).is_err();
    println!(
        "proved: the L2 book rebuilt from {} events equals Engine::depth after every one of {} txs ({} trades on \
         the tape, trade ids 1..={}, checked gap-free); a missing seq is refused: {gap}",
        x.events,
        x.books.last_seq(),
        x.tape.len(),
        x.tape.last().map_or(0, |t| t.trade_id),
    );
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("market_data: {e}");
            ExitCode::FAILURE
        }
    }
}
