//! The matcher allocates nothing after `Matcher::new`: a counting global allocator watches
//! 50,000 random commands (places of every time in force, cancels, amends that shrink, move
//! and cross, self-trades, the fill limit, full pools) on small pools.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use verex_engine::matcher::{MatchError, MatchEvent, Matcher, NewOrder};
use verex_engine::tx::{Side, TimeInForce};
use verex_engine::Limits;

/// xorshift64: a fixed pseudo-random stream.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn the_matcher_does_not_allocate() {
    let limits = Limits {
        max_orders: 300,
        max_price_levels: 120,
        max_levels_per_side: 50,
        max_fills_per_tx: 8,
        ..Limits::small()
    };
    let mut matcher = Matcher::new(2, &limits).expect("limits");
    let mut out = matcher.out();
    let tifs = [TimeInForce::Gtc, TimeInForce::Gtc, TimeInForce::Ioc, TimeInForce::Fok, TimeInForce::PostOnly];
    let (mut x, mut next_id) = (0x9e37_79b9_7f4a_7c15u64, 1u64);
    let (mut trades, mut self_trades, mut refused) = (0u64, 0u64, 0u64);
    counting_alloc::start();
    for _ in 0..50_000 {
        let r = next(&mut x);
        let result = match r % 10 {
            0..=4 => {
                let side = if r & 32 == 0 { Side::Buy } else { Side::Sell };
                let order = NewOrder {
                    id: next_id,
                    account: u32::try_from(r >> 40 & 7).unwrap_or(0),
                    book: u16::from(r & 64 != 0),
                    side,
                    price: 1_000 + i64::try_from(r >> 8 & 63).unwrap_or(0) - 32,
                    qty: 1 + (r >> 16 & 15),
                    tif: tifs[usize::try_from(r >> 24).unwrap_or(0) % tifs.len()],
                };
                next_id += 1;
                matcher.place(&order, &mut out).map(|_| ())
            }
            5 | 6 => {
                let id = 1 + (r >> 8) % next_id;
                let price = 1_000 + i64::try_from(r >> 20 & 63).unwrap_or(0) - 32;
                matcher.amend(id, Some(price), None, &mut out).map(|_| ())
            }
            7 => matcher.amend(1 + (r >> 8) % next_id, None, Some(1), &mut out).map(|_| ()),
            _ => matcher.cancel(1 + (r >> 8) % next_id).map(|_| ()),
        };
        match result {
            Ok(()) => {
                for event in out.events() {
                    match event {
                        MatchEvent::Trade(_) => trades += 1,
                        MatchEvent::SelfTradeCanceled { .. } => self_trades += 1,
                    }
                }
            }
            Err(MatchError::UnknownOrder(_) | MatchError::InvalidAmend(_) | MatchError::WouldTake(_)) => {}
            Err(MatchError::LimitReached(_)) => refused += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let allocations = counting_alloc::stop();
    assert!(trades > 5_000 && self_trades > 100, "trades {trades}, self-trades {self_trades}");
    assert!(refused > 0, "the pools must fill up at least once");
    assert_eq!(allocations, 0, "the matcher allocated {allocations} times");
}
