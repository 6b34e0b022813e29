//! The stress report on a small book: a leveraged long that a −10 % move liquidates against
//! the book, and that a −30 % move bankrupts (the insurance fund takes it over at its
//! bankruptcy price and pays the difference). The state shocked is a copy: the engine is
//! untouched.

use verex_engine::por::stress::{stress, StressError};
use verex_engine::text::runner::{LineOutcome, TextRunner};
use verex_engine::Limits;

fn state() -> TextRunner {
    let mut runner = TextRunner::dev(Limits::small()).expect("engine");
    let lines = [
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
        r#"{"op":"add_asset","symbol":"BTC","decimals":8,"collateral_weight":"0.9","borrow_weight":"1.1"}"#,
        r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1000000"}"#,
        r#"{"op":"deposit","account":2,"asset":"USDC","amount":"12"}"#,
        r#"{"op":"deposit","account":3,"asset":"USDC","amount":"1000000"}"#,
        r#"{"op":"deposit","account":0,"asset":"USDC","amount":"1000"}"#,
        r#"{"op":"mark","prices":{"BTC":"100","BTC-PERP":"100"}}"#,
        r#"{"op":"place","account":3,"market":"BTC-PERP","side":"sell","type":"limit","price":"100","qty":"1","tif":"gtc"}"#,
        r#"{"op":"place","account":2,"market":"BTC-PERP","side":"buy","type":"limit","price":"100","qty":"1","tif":"ioc"}"#,
        r#"{"op":"place","account":1,"market":"BTC-PERP","side":"buy","type":"limit","price":"95","qty":"5","tif":"gtc"}"#,
    ];
    for line in lines {
        match runner.run_line(line).expect("line") {
            LineOutcome::Applied { events, .. } => {
                assert!(!events.iter().any(|e| e.contains("rejected")), "{line}: {events:?}")
            }
            LineOutcome::Refused(e) => panic!("{line}: {e}"),
        }
    }
    runner
}

#[test]
fn shocks_liquidate_on_a_copy_and_read_the_engine_events() {
    let runner = state();
    let engine = &runner.engine;
    let before = engine.state_hash();
    let report = stress(engine, &[-10, -30, -50]).expect("report");
    assert_eq!(engine.state_hash(), before, "the engine itself is untouched");
    assert_eq!((report.seq, report.state_hash), (engine.seq(), before));

    let mild = &report.shocks[0];
    assert_eq!(mild.liquidated.iter().copied().collect::<Vec<_>>(), [2]);
    assert!(mild.bankrupt.is_empty());
    assert_eq!(mild.markets[0].via_book, 100_000_000, "1 BTC closed against the bids at 95");
    assert!(mild.books_absorbed());
    assert_eq!(mild.insurance[0], (1_000_000_000, 1_000_000_000));
    let (_, equity, maintenance) = mild.tightest.expect("positions remain open");
    assert!(equity > maintenance, "nobody is left below maintenance");

    let hard = &report.shocks[1];
    assert_eq!(hard.bankrupt.iter().copied().collect::<Vec<_>>(), [2], "its equity is gone: no book step");
    assert_eq!(hard.markets[0].via_insurance, 100_000_000);
    assert!(!hard.books_absorbed());
    let (fund_before, fund_after) = hard.insurance[0];
    assert_eq!(fund_before - fund_after, 18_000_000, "taken over at 88, marked at 70: the fund pays 18 USDC");
    assert!(
        hard.headline(engine).starts_with("-30 %: 1 liquidated, 1 bankrupt, insurance draw 18 USDC"),
        "{}",
        hard.headline(engine)
    );

    let json = report.to_json(engine);
    assert_eq!(json["shocks"][2]["move_percent"], -50);
    assert_eq!(json["shocks"][0]["prices"]["BTC-PERP"]["after"], "90");
    assert_eq!(json["shocks"][0]["markets"][0]["absorbed_by_book"], true);
}

#[test]
fn a_shock_out_of_range_is_refused() {
    let runner = state();
    assert_eq!(stress(&runner.engine, &[-100]).err(), Some(StressError::Shock(-100)));
    assert_eq!(stress(&runner.engine, &[0]).err(), Some(StressError::Shock(0)));
}
