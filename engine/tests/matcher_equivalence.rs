//! The matcher is the engine's matching: the same random command streams (places of every time
//! in force, cancels, amends that move, cross and shrink, self-trades) through `Engine::apply`
//! and through `Matcher` accept and refuse the same commands and produce the same trades and
//! self-trade cancels, in the same order, with the same maker ids, prices and quantities.

use verex_engine::matcher::{MatchEvent, Matcher, NewOrder};
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::tx::{Side, TimeInForce};
use verex_engine::{CancelReason, Engine, Event, EventBuf, Genesis, Limits, OrderStatus};

const ACCOUNTS: u64 = 12;
/// BTC has 8 decimals and a lot is 0.0001 BTC; USDC prices have 2 decimals.
const UNITS_PER_LOT: u64 = 10_000;
const PRICE_UNITS_PER_WHOLE: i64 = 100;

/// What one command did to the book besides its own order: trades and self-trade cancels.
#[derive(Debug, PartialEq, Eq)]
enum Touch {
    Trade { maker: u64, price: i64, qty: u64 },
    SelfTrade { order: u64 },
}

struct Engines {
    engine: Engine,
    buf: EventBuf,
    signer: DevSigner,
    sequencer: Sequencer,
}

impl Engines {
    fn new() -> Self {
        let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
        let buf = engine.event_buf();
        let mut engines =
            Self { engine, buf, signer: DevSigner::default(), sequencer: Sequencer::new(0, Clock::Deterministic) };
        let mut setup = vec![
            r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
            r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
            r#"{"op":"add_market","symbol":"BTC-USDC","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"0.0001","taker_fee":"0.0005"}"#.to_string(),
        ];
        for a in 1..=ACCOUNTS {
            setup.push(r#"{"op":"create_account"}"#.to_string());
            setup.push(format!(r#"{{"op":"deposit","account":{a},"asset":"USDC","amount":"1000000000"}}"#));
            setup.push(format!(r#"{{"op":"deposit","account":{a},"asset":"BTC","amount":"1000000"}}"#));
        }
        for line in setup {
            assert!(engines.apply(&line).is_ok(), "setup: {line}");
        }
        engines
    }

    /// Applies one tx line; `Err` when the engine rejected it, else what it touched.
    fn apply(&mut self, line: &str) -> Result<Vec<Touch>, String> {
        let parsed = parse_tx_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let record = self.sequencer.stamp(&self.signer.sign_verified(&parsed), parsed.ts).expect("dev clock");
        self.engine.apply(record.verified(), &mut self.buf).expect("seq");
        if let Some(reason) = self.buf.rejection() {
            return Err(format!("{reason:?}"));
        }
        Ok(self
            .buf
            .events()
            .iter()
            .filter_map(|event| match *event {
                Event::Fill { maker_order, price, qty, .. } => Some(Touch::Trade { maker: maker_order, price, qty }),
                Event::Order { order_id, status: OrderStatus::Canceled(CancelReason::SelfTrade), .. } => {
                    Some(Touch::SelfTrade { order: order_id })
                }
                _ => None,
            })
            .collect())
    }
}

fn touches(matcher_out: &verex_engine::matcher::MatchOut) -> Vec<Touch> {
    matcher_out
        .events()
        .iter()
        .map(|event| match event {
            MatchEvent::Trade(t) => Touch::Trade { maker: t.maker_order, price: t.price, qty: t.qty },
            MatchEvent::SelfTradeCanceled { order_id, .. } => Touch::SelfTrade { order: *order_id },
        })
        .collect()
}

/// xorshift64: a fixed pseudo-random stream.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn run_stream(seed: u64, commands: usize) -> (usize, usize) {
    let mut engines = Engines::new();
    let mut matcher = Matcher::new(1, &Limits::small()).expect("limits");
    let mut out = matcher.out();
    let mut owners: Vec<(u64, u64)> = Vec::new(); // (order id, account)
    let mut x = seed | 1;
    let (mut trades, mut refused) = (0, 0);
    for step in 0..commands {
        let r = next(&mut x);
        let account = 1 + (r >> 8) % ACCOUNTS;
        let whole = 95 + i64::try_from((r >> 16) % 11).unwrap_or(0);
        let lots = 1 + (r >> 24) % 20;
        let (line, matched) = match r % 10 {
            0..=5 => {
                let side = if r & (1 << 40) == 0 { Side::Buy } else { Side::Sell };
                let tifs =
                    [TimeInForce::Gtc, TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly];
                let tif = tifs[usize::try_from((r >> 44) % 5).unwrap_or(0)];
                let tif_text = ["gtc", "gtc", "ioc", "fok", "post_only"][usize::try_from((r >> 44) % 5).unwrap_or(0)];
                let side_text = if side == Side::Buy { "buy" } else { "sell" };
                let id = engines.engine.next_order_id();
                let line = format!(
                    r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side_text}","price":"{whole}","qty":"0.{lots:04}","tif":"{tif_text}"}}"#
                );
                let order = NewOrder {
                    id,
                    account: u32::try_from(account).unwrap_or(0),
                    book: 0,
                    side,
                    price: whole * PRICE_UNITS_PER_WHOLE,
                    qty: lots * UNITS_PER_LOT,
                    tif,
                };
                let result = matcher.place(&order, &mut out).map(|_| ());
                if result.is_ok() {
                    owners.push((id, account));
                }
                (line, result)
            }
            choice => {
                let Some(&(id, owner)) =
                    owners.get(usize::try_from((r >> 32) % (owners.len() as u64 + 1)).unwrap_or(0))
                else {
                    continue;
                };
                match choice {
                    6 | 7 => {
                        let line = format!(
                            r#"{{"op":"amend","account":{owner},"market":"BTC-USDC","order_id":{id},"price":"{whole}"}}"#
                        );
                        (line, matcher.amend(id, Some(whole * PRICE_UNITS_PER_WHOLE), None, &mut out).map(|_| ()))
                    }
                    8 => {
                        let line = format!(
                            r#"{{"op":"amend","account":{owner},"market":"BTC-USDC","order_id":{id},"qty":"0.0001"}}"#
                        );
                        (line, matcher.amend(id, None, Some(UNITS_PER_LOT), &mut out).map(|_| ()))
                    }
                    _ => {
                        out.clear();
                        let line =
                            format!(r#"{{"op":"cancel","account":{owner},"market":"BTC-USDC","order_id":{id}}}"#);
                        (line, matcher.cancel(id).map(|_| ()))
                    }
                }
            }
        };
        let engine_result = engines.apply(&line);
        match (&engine_result, &matched) {
            (Ok(engine_touches), Ok(())) => {
                assert_eq!(engine_touches, &touches(&out), "seed {seed} step {step}: {line}");
                trades += engine_touches.len();
            }
            (Err(_), Err(_)) => refused += 1,
            _ => panic!("seed {seed} step {step}: {line}: engine {engine_result:?}, matcher {matched:?}"),
        }
    }
    (trades, refused)
}

#[test]
fn engine_and_matcher_trade_alike() {
    let (mut trades, mut refused) = (0, 0);
    for seed in 1..=12u64 {
        let (t, r) = run_stream(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 1_500);
        trades += t;
        refused += r;
    }
    assert!(trades > 3_000, "the streams must trade: {trades}");
    assert!(refused > 100, "the streams must include refused commands: {refused}");
}
