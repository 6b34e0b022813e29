//! `verex md`: market data rebuilt from a journal's events (SPEC 14), printed and followed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{expect_success, json_lines_of, out_text, path_text, verex_in, VEREX};
use serde_json::{json, Value};
use std::io::BufRead;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn run_into(journal: &Path, input: &Path) {
    let out = verex_in(
        &["run", "--dev", "--limits", "small", "--input", path_text(input), "--journal", path_text(journal)],
        b"",
    );
    expect_success(&out, "run");
}

/// `tests/data/fills.jsonl`: three trades (the SPEC fill example at seq 9, an IOC into the
/// rested bid at seq 12, a market buy at seq 15), and at the end only the ask of 0.25 at 101,
/// amended to 0.2 and then bought down to 0.15, rests (the bid was canceled at seq 14).
#[test]
fn md_prints_the_tape_and_the_books_rebuilt_from_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    run_into(&journal, &data("fills.jsonl"));
    let out = verex_in(&["md", "--journal", path_text(&journal), "--depth", "3"], b"");
    expect_success(&out, "md");
    let lines = json_lines_of(&out_text(&out));
    let trade = |id: u64, seq: u64, price: &str, qty: &str, taker_side: &str| {
        json!({"type":"trade","trade_id":id,"seq":seq,"ts":1_700_000_000_000_000_000u64 + seq * 1_000_000,
            "market":"BTC-USDC","price":price,"qty":qty,"taker_side":taker_side})
    };
    let expected = [
        trade(1, 9, "100", "0.5", "buy"),
        trade(2, 12, "100.5", "0.1", "sell"),
        trade(3, 15, "101", "0.05", "buy"),
        json!({"type":"book","seq":16,"market":"BTC-USDC","bid":null,"ask":["101","0.15"],"bids":[],"asks":[["101","0.15"]]}),
    ];
    assert_eq!(lines, expected, "{}", out_text(&out));
}

/// `--follow` picks up the records a later `verex run` appends, and stops at `--until-seq`.
#[test]
fn md_follows_a_journal_as_it_grows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = dir.path().join("journal");
    let first = dir.path().join("first.jsonl");
    let setup = [
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
        r#"{"op":"add_asset","symbol":"BTC","decimals":8,"collateral_weight":"0.9","borrow_weight":"1.1"}"#,
        r#"{"op":"add_market","symbol":"BTC-USDC","kind":"spot","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"0","taker_fee":"0"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1000"}"#,
        r#"{"op":"deposit","account":2,"asset":"BTC","amount":"1"}"#,
        r#"{"op":"place","account":2,"market":"BTC-USDC","side":"sell","type":"limit","price":"100","qty":"0.5","tif":"gtc"}"#,
    ];
    std::fs::write(&first, setup.map(|l| format!("{l}\n")).concat()).expect("write");
    run_into(&journal, &first);
    let mut child = Command::new(VEREX)
        .args(["md", "--journal", path_text(&journal), "--follow", "--until-seq", "9", "--poll-ms", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn md");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut read_line = || {
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read md's output");
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
    };
    // Before anything is appended: no trade yet, one book line at seq 8.
    let book = read_line();
    assert_eq!(
        (book["type"].clone(), book["seq"].clone(), book["ask"].clone()),
        (json!("book"), json!(8), json!(["100", "0.5"]))
    );
    let second = dir.path().join("second.jsonl");
    let take = r#"{"op":"place","account":1,"market":"BTC-USDC","side":"buy","type":"limit","price":"100","qty":"0.2","tif":"ioc"}"#;
    std::fs::write(&second, format!("{take}\n")).expect("write");
    run_into(&journal, &second);
    let trade = read_line();
    assert_eq!(
        (trade["type"].clone(), trade["trade_id"].clone(), trade["seq"].clone(), trade["qty"].clone()),
        (json!("trade"), json!(1), json!(9), json!("0.2"))
    );
    let book = read_line();
    assert_eq!((book["seq"].clone(), book["ask"].clone()), (json!(9), json!(["100", "0.3"])), "{book}");
    let status = child.wait().expect("md exits at --until-seq");
    assert!(status.success(), "md --follow: {status}");
}
