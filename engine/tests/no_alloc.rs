//! The hot path does not allocate: a counting global allocator watches `Engine::apply` over a
//! mixed spot and perp workload (places of every kind, fills, cancels, amends, marks with
//! settlement and liquidations, funding, lending: lends, redeems, borrows, repayments, ticks
//! that accrue interest, automatic borrows) after the listings and accounts exist. Records are
//! encoded before the measured loop: encoding is the ingress' job, not the engine's. Queries
//! (`runtime::Query`, answered on the engine stage between transactions) are answered inside
//! the same measured loop.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use verex_engine::runtime::Query;
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::verified::VerifiedRecordBytes;
use verex_engine::{Engine, Event, Genesis, Limits};

fn setup_lines() -> Vec<String> {
    let mut lines = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6,"rate_base":"0.02","rate_at_kink":"0.2","rate_max":"3"}"#
            .to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-USDC","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"-0.0001","taker_fee":"0.0005"}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0.0005"}"#.to_string(),
        r#"{"op":"mark","prices":{"BTC-PERP":"100"}}"#.to_string(),
        r#"{"op":"deposit","account":0,"asset":"USDC","amount":"50"}"#.to_string(),
    ];
    for a in 1..=16 {
        lines.push(r#"{"op":"create_account"}"#.to_string());
        let usdc = if a % 4 == 0 { "12" } else { "100000" };
        lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"USDC","amount":"{usdc}"}}"#));
        if a % 4 != 0 {
            lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"BTC","amount":"10"}}"#));
        }
        if a % 4 == 1 {
            lines.push(format!(r#"{{"op":"lend","account":{a},"asset":"USDC","amount":"20000"}}"#));
        }
    }
    lines
}

fn workload_lines(count: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(count);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut mark = 1000i64;
    for i in 0..count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let account = 1 + x % 16;
        let side = if (x >> 8).is_multiple_of(2) { "buy" } else { "sell" };
        let line = match (x >> 16) % 14 {
            0 => format!(
                r#"{{"op":"cancel","account":{account},"market":"BTC-USDC","order_id":{}}}"#,
                1 + (x >> 24) % (i as u64 + 1)
            ),
            1 => format!(
                r#"{{"op":"amend","account":{account},"market":"BTC-USDC","order_id":{},"price":"{}"}}"#,
                1 + (x >> 24) % (i as u64 + 1),
                95 + (x >> 32) % 10
            ),
            2 => {
                mark = (mark + ((x >> 24) % 101) as i64 - 50).clamp(500, 2000);
                format!(
                    r#"{{"op":"mark","prices":{{"BTC-PERP":"{}.{}","BTC":"{}"}}}}"#,
                    mark / 10,
                    mark % 10,
                    mark / 10
                )
            }
            3 => format!(r#"{{"op":"funding","market":"BTC-PERP","rate":"0.000{}"}}"#, (x >> 24) % 9),
            4 | 5 => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-PERP","side":"{side}","price":"{}.{}","qty":"0.0{:02}","tif":"{}"}}"#,
                (mark + ((x >> 24) % 21) as i64 - 10) / 10,
                (mark + ((x >> 24) % 21) as i64 - 10) % 10,
                1 + (x >> 32) % 99,
                ["gtc", "ioc"][((x >> 40) % 2) as usize]
            ),
            6 => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-PERP","side":"{side}","type":"market","qty":"0.0{:02}"}}"#,
                1 + (x >> 32) % 99
            ),
            12 => format!(
                r#"{{"op":"{}","account":{account},"asset":"USDC","amount":"{}"}}"#,
                ["lend", "redeem", "borrow", "repay"][((x >> 24) % 4) as usize],
                1 + (x >> 32) % 500
            ),
            13 => r#"{"op":"tick"}"#.to_string(),
            _ => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","price":"{}","qty":"0.{:04}","tif":"{}"}}"#,
                95 + (x >> 24) % 10,
                1 + (x >> 32) % 9999,
                ["gtc", "ioc", "fok", "post_only"][((x >> 40) % 4) as usize]
            ),
        };
        lines.push(line);
    }
    lines
}

#[test]
fn apply_does_not_allocate() {
    let mut engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut buf = engine.event_buf();
    let mut signer = DevSigner::default();
    let mut sequencer = Sequencer::new(0, Clock::Deterministic);
    let mut encode = |line: &str, signer: &mut DevSigner| {
        let parsed = parse_tx_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        sequencer.stamp(&signer.sign_verified(&parsed), parsed.ts).expect("dev clock")
    };
    for line in setup_lines() {
        let record = encode(&line, &mut signer);
        engine.apply(record.verified(), &mut buf).expect("seq");
        assert!(buf.rejection().is_none(), "{line}: {:?}", buf.events());
    }
    let records: Vec<VerifiedRecordBytes> = workload_lines(20_000).iter().map(|l| encode(l, &mut signer)).collect();
    let (mut fills, mut liquidations, mut settlements, mut lending) = (0, 0, 0, 0);
    let mut query_items = 0u64;
    counting_alloc::start();
    for (k, record) in (0u64..).zip(&records) {
        engine.apply(record.verified(), &mut buf).expect("seq");
        if k.is_multiple_of(10) {
            Query::Depth { market: 0, levels: 20 }.answer(&engine, |_| query_items += 1);
            Query::Account { account: 1 + k % 16 }.answer(&engine, |_| query_items += 1);
        }
        for event in buf.events() {
            match event {
                Event::Fill { .. } => fills += 1,
                Event::Liquidation { .. } | Event::Adl { .. } => liquidations += 1,
                Event::Settlement { .. } => settlements += 1,
                Event::Pool { .. } | Event::Borrow { .. } | Event::Repay { .. } | Event::Accrual { .. } => lending += 1,
                _ => {}
            }
        }
    }
    let allocations = counting_alloc::stop();
    assert_eq!(engine.check_invariants(), Ok(()));
    assert!(fills > 1_000 && settlements > 1_000, "fills {fills}, settlements {settlements}");
    assert!(liquidations > 0, "the workload must liquidate someone");
    assert!(lending > 500, "the workload must lend, borrow and accrue: {lending}");
    assert!(query_items > 20_000, "queries answered with items: {query_items}");
    assert_eq!(allocations, 0, "apply or a query allocated {allocations} times over {} txs", records.len());
}
