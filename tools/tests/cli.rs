//! End-to-end tests of the `verex` binary: each runs the built executable as a user would.
//!
//! Every test checks that standard error never mentions a panic: bad input must be a clear
//! error or a `rejected` event, never a crash.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::dev_genesis_file;
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// Runs `verex args`, feeding `stdin`; asserts it did not panic.
fn verex_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    common::verex_in(args, stdin)
}

fn verex(args: &[&str]) -> Output {
    verex_with_stdin(args, b"")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

fn assert_success(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: exit {:?}, stderr: {}", out.status.code(), stderr(out));
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Transaction lines of a file: neither blank nor comments.
fn tx_line_count(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("read input");
    text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count() as u64
}

/// `verex run --dev --limits small` on `input`; returns (events, state) file paths.
fn run_dev(dir: &Path, input: &Path, tag: &str) -> (PathBuf, PathBuf) {
    run_dev_with(dir, input, tag, &[])
}

/// [`run_dev`] with `extra` flags after `run --dev --limits small`.
fn run_dev_with(dir: &Path, input: &Path, tag: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let events = dir.join(format!("{tag}.events.jsonl"));
    let state = dir.join(format!("{tag}.state.json"));
    let mut args = vec!["run", "--dev", "--limits", "small"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--input", path_str(input), "--events", path_str(&events), "--state", path_str(&state)]);
    let out = verex(&args);
    assert_success(&out, &format!("run --dev {}", extra.join(" ")));
    assert_eq!(stdout(&out), "", "events go to --events, not stdout");
    (events, state)
}

fn write_lines(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write input");
    path
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

// ---------------------------------------------------------------------------------------
// run --dev: the SPEC section 13 example, determinism, limits
// ---------------------------------------------------------------------------------------

#[test]
fn run_dev_on_the_spec_example_gives_its_events_and_a_state_at_the_last_line() {
    let dir = tempdir();
    let input = data("spec13.jsonl");
    let (events, state) = run_dev(dir.path(), &input, "spec");
    let events = json_lines(&std::fs::read_to_string(events).expect("events"));
    let lines = tx_line_count(&input);
    assert_eq!(lines, 19);

    // The outcomes SPEC section 13 pins down, in order. (Lines 15-19 exercise borrowing,
    // perps and oracle ops, whose outcomes belong to the engine's scenario tests.)
    let expected = [
        r#"{"seq":1,"event":"asset_added","asset":"USDC"}"#,
        r#"{"seq":2,"event":"asset_added","asset":"BTC"}"#,
        r#"{"seq":3,"event":"market_added","market":"BTC-USDC"}"#,
        r#"{"seq":4,"event":"market_added","market":"BTC-PERP"}"#,
        r#"{"seq":5,"event":"account_created","account":1}"#,
        r#"{"seq":6,"event":"deposit","account":1,"asset":"USDC","amount":"10000"}"#,
        r#"{"seq":7,"event":"withdrawal","account":1,"asset":"USDC","amount":"10"}"#,
        r#"{"seq":8,"event":"order","order_id":1,"account":1,"market":"BTC-USDC","status":"accepted"}"#,
        r#"{"seq":8,"event":"order","order_id":1,"account":1,"market":"BTC-USDC","status":"rested","remaining":"1","side":"buy","level_price":"100","level_total":"1"}"#,
        r#"{"seq":9,"event":"rejected","reason":"unknown_account"}"#,
        r#"{"seq":10,"event":"rejected","reason":"unknown_order"}"#,
        r#"{"seq":11,"event":"order","order_id":1,"account":1,"market":"BTC-USDC","status":"canceled","reason":"user","side":"buy","level_price":"100","level_total":"0"}"#,
        r#"{"seq":12,"event":"rejected","reason":"unknown_order"}"#,
        r#"{"seq":13,"event":"lend","account":1,"asset":"USDC","amount":"100"}"#,
        r#"{"seq":14,"event":"redeem","account":1,"asset":"USDC","amount":"100"}"#,
    ];
    for (i, want) in expected.iter().enumerate() {
        let want: Value = serde_json::from_str(want).expect("expected event");
        assert_eq!(events.get(i), Some(&want), "event {i}");
    }
    // Every event carries the seq of its line, in order, and none goes past the last line.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "seqs in order: {seqs:?}");
    assert!(seqs.iter().all(|s| (1..=lines).contains(s)), "seqs within 1..={lines}: {seqs:?}");

    let state = read_json(&state);
    let keys: Vec<&str> = state.as_object().expect("state object").keys().map(String::as_str).collect();
    // SPEC 13's keys in its order, then the additions (insurance positions, last prices, the
    // bad debt nobody could pay).
    assert_eq!(
        keys,
        ["seq", "state_hash", "accounts", "fees", "insurance", "pools", "insurance_positions", "marks", "uncovered"]
    );
    assert_eq!(state["seq"], lines, "state seq = number of input lines");
    let hash = state["state_hash"].as_str().expect("state_hash");
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    let account = &state["accounts"][0];
    assert_eq!(account["id"], 1);
    assert_eq!(account["balances"]["USDC"]["available"], "9990");
    assert_eq!(account["orders"], serde_json::json!([]));
    assert!(state["fees"].is_object() && state["insurance"].is_object() && state["pools"].is_object());
}

#[test]
fn run_dev_with_fills_gives_the_spec_fill_events_and_conserves_balances() {
    let dir = tempdir();
    let (events, state) = run_dev(dir.path(), &data("fills.jsonl"), "fills");
    let events = json_lines(&std::fs::read_to_string(events).expect("events"));
    let fill: Value = serde_json::from_str(
        r#"{"seq":9,"event":"fill","market":"BTC-USDC","price":"100","qty":"0.5","taker_side":"buy","maker_order":1,"taker_order":2,"maker":2,"taker":1,"maker_fee":"0.01","taker_fee":"0.025","trade_id":1,"ts":1700000000009000000,"level_total":"0"}"#,
    )
    .expect("fill");
    assert!(events.contains(&fill), "the SPEC fill example appears");
    assert!(events.iter().any(|e| e["event"] == "rejected" && e["reason"] == "would_take"));
    let state = read_json(&state);
    assert_eq!(state["seq"], tx_line_count(&data("fills.jsonl")));
    // 10000 USDC deposited, none withdrawn: accounts plus fees hold exactly that.
    let mut usdc_units: i128 = usdc(&state["fees"]["USDC"]);
    for account in state["accounts"].as_array().expect("accounts") {
        let balance = &account["balances"]["USDC"];
        usdc_units += usdc(&balance["available"]) + usdc(&balance["locked"]) + usdc(&balance["lent"])
            - usdc(&balance["borrowed"]);
    }
    assert_eq!(usdc_units, 10_000_000_000, "USDC conserved");
}

/// A USDC decimal string (6 decimals) in units; an absent value is zero.
fn usdc(value: &Value) -> i128 {
    let Some(text) = value.as_str() else { return 0 };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    assert!(fraction.len() <= 6, "{text}");
    let units: i128 = format!("{whole}{fraction:0<6}").parse().expect("decimal");
    units
}

#[test]
fn the_same_input_run_twice_gives_byte_identical_events_and_state() {
    let dir = tempdir();
    for input in ["spec13.jsonl", "fills.jsonl"] {
        let (events_a, state_a) = run_dev(dir.path(), &data(input), &format!("{input}.a"));
        let (events_b, state_b) = run_dev(dir.path(), &data(input), &format!("{input}.b"));
        let read = |p: &Path| std::fs::read(p).expect("read output");
        assert_eq!(read(&events_a), read(&events_b), "{input}: events differ between runs");
        assert_eq!(read(&state_a), read(&state_b), "{input}: state differs between runs");
    }
}

#[test]
fn production_limits_give_the_same_events_and_state_as_small_ones() {
    let dir = tempdir();
    let (events_small, state_small) = run_dev(dir.path(), &data("fills.jsonl"), "small");
    let events = dir.path().join("production.events.jsonl");
    let state = dir.path().join("production.state.json");
    // --limits left out: production is the default.
    let out = verex(&[
        "run",
        "--dev",
        "--input",
        path_str(&data("fills.jsonl")),
        "--events",
        path_str(&events),
        "--state",
        path_str(&state),
    ]);
    assert_success(&out, "run with production limits");
    let read = |p: &Path| std::fs::read(p).expect("read output");
    assert_eq!(read(&events), read(&events_small));
    assert_eq!(read(&state), read(&state_small));
}

/// `--engine-core` pins the engine stage (here to the last core, which changes no event), and
/// a core the kernel refuses stops the run before it opens or creates anything.
#[test]
fn engine_core_pins_the_engine_stage_and_a_refused_core_stops_the_run_before_it_starts() {
    let dir = tempdir();
    let (events, state) = run_dev(dir.path(), &data("fills.jsonl"), "unpinned");
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let last = (cores - 1).to_string();
    let (pinned_events, pinned_state) =
        run_dev_with(dir.path(), &data("fills.jsonl"), "pinned", &["--engine-core", &last]);
    let read = |p: &Path| std::fs::read(p).expect("read output");
    assert_eq!(read(&events), read(&pinned_events), "pinning changes no event");
    assert_eq!(read(&state), read(&pinned_state), "pinning changes no state");

    let journal = dir.path().join("journal");
    let refused_events = dir.path().join("refused.events.jsonl");
    let out = verex(&[
        "run",
        "--dev",
        "--engine-core",
        "100000",
        "--input",
        path_str(&data("fills.jsonl")),
        "--journal",
        path_str(&journal),
        "--init",
        "--events",
        path_str(&refused_events),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: --engine-core 100000: engine stage not pinned"), "{}", stderr(&out));
    assert!(!journal.exists(), "nothing is created before the core is checked");
    assert!(!refused_events.exists(), "no events file either");
}

#[test]
fn run_reads_standard_input_and_writes_events_to_standard_output() {
    let input = std::fs::read(data("spec13.jsonl")).expect("input");
    let out = verex_with_stdin(&["run", "--dev", "--limits", "small", "--input", "-"], &input);
    assert_success(&out, "run from stdin");
    let events = json_lines(&stdout(&out));
    assert_eq!(events[0]["event"], "asset_added");
    assert!(stderr(&out).contains("seq 19"), "summary names the last seq: {}", stderr(&out));
}

#[test]
fn journal_flag_journals_the_run_and_replay_agrees() {
    // The journal commands are tested in depth in journal_cli.rs; this is the smoke test.
    let dir = tempdir();
    let journal = dir.path().join("journal");
    let out = verex(&[
        "run",
        "--dev",
        "--limits",
        "small",
        "--input",
        path_str(&data("spec13.jsonl")),
        "--journal",
        path_str(&journal),
    ]);
    assert_success(&out, "run --journal");
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(journal.join("verex.json").is_file(), "the manifest is written");
    let replayed = verex(&["replay", "--journal", path_str(&journal)]);
    assert_success(&replayed, "replay");
    assert!(stdout(&replayed).starts_with("seq 19 state_hash "), "{}", stdout(&replayed));
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

#[test]
fn a_malformed_line_stops_the_run_naming_file_line_and_reason_with_exit_2() {
    let cases = [
        ("malformed JSON", r#"{"op":"create_account""#, "not JSON: the line ends inside a value"),
        ("not an object", "[1,2]", "expected an object"),
        ("unknown op", r#"{"op":"teleport"}"#, r#"unknown op "teleport""#),
        (
            "unknown field",
            r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1","colour":"red"}"#,
            "unknown field `colour`",
        ),
        ("missing field", r#"{"op":"deposit","account":1,"asset":"USDC"}"#, "missing field `amount`"),
        (
            "non-decimal number",
            r#"{"op":"deposit","account":1,"asset":"USDC","amount":"12abc"}"#,
            "field `amount`: \"12abc\" is not a plain decimal",
        ),
        (
            "exponent",
            r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1e5"}"#,
            "field `amount`: \"1e5\" is not a plain decimal",
        ),
        ("JSON float", r#"{"op":"deposit","account":1,"asset":"USDC","amount":1.5}"#, "got the JSON number 1.5"),
        ("negative integer", r#"{"op":"deposit","account":-1,"asset":"USDC","amount":"1"}"#, "field `account`"),
    ];
    for (name, bad, reason) in cases {
        let dir = tempdir();
        // Line 1 comment, 2 a good tx, 3 blank, 4 the bad one, 5 a good tx never reached.
        let input = write_lines(
            dir.path(),
            "in.jsonl",
            &["# comment", r#"{"op":"create_account"}"#, "", bad, r#"{"op":"create_account"}"#],
        );
        let events = dir.path().join("events.jsonl");
        let state = dir.path().join("state.json");
        let out = verex(&[
            "run",
            "--dev",
            "--limits",
            "small",
            "--input",
            path_str(&input),
            "--events",
            path_str(&events),
            "--state",
            path_str(&state),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}: exit status; stderr {}", stderr(&out));
        let message = stderr(&out);
        let prefix = format!("error: {}:4: ", input.display());
        assert!(message.starts_with(&prefix), "{name}: {message:?} should start with {prefix:?}");
        assert!(message.contains(reason), "{name}: {message:?} should contain {reason:?}");
        assert!(message.contains("stopped"), "{name}: says the run stopped: {message:?}");
        // What ran before the bad line is flushed, and the state is the state after it.
        let written = json_lines(&std::fs::read_to_string(&events).expect("events flushed"));
        assert_eq!(written, json_lines(r#"{"seq":1,"event":"account_created","account":1}"#), "{name}");
        assert_eq!(read_json(&state)["seq"], 1, "{name}");
    }
}

#[test]
fn an_overlong_or_non_utf8_line_is_a_named_error() {
    let dir = tempdir();
    let long = format!(r#"{{"op":"create_account","pad":"{}"}}"#, "x".repeat(70_000));
    let input = write_lines(dir.path(), "long.jsonl", &[r#"{"op":"create_account"}"#, &long]);
    let out = verex(&["run", "--dev", "--limits", "small", "--input", path_str(&input)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("long.jsonl:2: line longer than 65536 bytes"), "{}", stderr(&out));

    let input = dir.path().join("latin1.jsonl");
    std::fs::write(&input, b"{\"op\":\"create_account\"}\n{\"op\":\"add_asset\",\"symbol\":\"\xe9\"}\n")
        .expect("write");
    let out = verex(&["run", "--dev", "--limits", "small", "--input", path_str(&input)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("latin1.jsonl:2: not valid UTF-8"), "{}", stderr(&out));
}

#[test]
fn windows_line_endings_are_accepted() {
    let dir = tempdir();
    let input = dir.path().join("crlf.jsonl");
    std::fs::write(&input, "# comment\r\n{\"op\":\"create_account\"}\r\n\r\n{\"op\":\"create_account\"}\r\n")
        .expect("write");
    let out = verex(&["run", "--dev", "--limits", "small", "--input", path_str(&input)]);
    assert_success(&out, "CRLF input");
    assert_eq!(json_lines(&stdout(&out)).len(), 2);
}

#[test]
fn negative_amounts_and_prices_are_rejected_events_not_parse_errors() {
    let dir = tempdir();
    let input = write_lines(
        dir.path(),
        "negative.jsonl",
        &[
            r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
            r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#,
            r#"{"op":"add_market","symbol":"BTC-USDC","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001"}"#,
            r#"{"op":"create_account"}"#,
            r#"{"op":"deposit","account":1,"asset":"USDC","amount":"-5"}"#,
            r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1000"}"#,
            r#"{"op":"place","account":1,"market":"BTC-USDC","side":"buy","price":"100","qty":"-1"}"#,
            r#"{"op":"place","account":1,"market":"BTC-USDC","side":"buy","price":"-100","qty":"1"}"#,
            r#"{"op":"withdraw","account":1,"asset":"USDC","amount":"-1"}"#,
        ],
    );
    let (events, state) = run_dev(dir.path(), &input, "negative");
    let events = json_lines(&std::fs::read_to_string(events).expect("events"));
    let reason_of = |seq: u64| -> Value {
        let of_seq: Vec<&Value> = events.iter().filter(|e| e["seq"] == seq).collect();
        assert_eq!(of_seq.len(), 1, "seq {seq}: {of_seq:?}");
        assert_eq!(of_seq[0]["event"], "rejected", "seq {seq}");
        of_seq[0]["reason"].clone()
    };
    assert_eq!(reason_of(5), "invalid_amount", "negative deposit");
    assert_eq!(reason_of(7), "invalid_amount", "negative quantity");
    assert_eq!(reason_of(8), "invalid_price", "negative price");
    assert_eq!(reason_of(9), "invalid_amount", "negative withdrawal");
    let state = read_json(&state);
    assert_eq!(state["seq"], 9);
    assert_eq!(state["accounts"][0]["balances"]["USDC"]["available"], "1000", "rejections change nothing");
}

#[test]
fn missing_files_and_bad_arguments_fail_with_a_message() {
    let dir = tempdir();
    let missing = dir.path().join("missing.jsonl");
    let out = verex(&["run", "--dev", "--input", path_str(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with(&format!("error: cannot open {}: ", missing.display())), "{}", stderr(&out));

    let out = verex(&[
        "run",
        "--dev",
        "--input",
        path_str(&data("spec13.jsonl")),
        "--events",
        "/nonexistent-dir/events.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error: cannot create /nonexistent-dir/events.jsonl"), "{}", stderr(&out));

    for args in [
        &["run"][..],
        &["run", "--dev", "--input", "x", "--genesis", "g"],
        &["run", "--input", "x", "--limits", "huge"],
        &["sign"],
        &["frobnicate"],
    ] {
        let out = verex(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).starts_with("error: "), "{args:?}: {}", stderr(&out));
    }
}

// ---------------------------------------------------------------------------------------
// Signed (non-dev) runs, keygen, sign
// ---------------------------------------------------------------------------------------

/// Signs `lines` with `signer_args` (e.g. `--dev-role admin`), returning the signed lines.
fn sign(signer_args: &[&str], lines: &[&str]) -> Vec<String> {
    let mut args = vec!["sign"];
    args.extend_from_slice(signer_args);
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let out = verex_with_stdin(&args, input.as_bytes());
    assert_success(&out, "sign");
    stdout(&out).lines().map(str::to_string).collect()
}

fn sign_with_key(key: &Path, nonce_start: u64, lines: &[&str]) -> Vec<String> {
    sign(&["--key", path_str(key), "--nonce-start", &nonce_start.to_string()], lines)
}

/// Runs signed lines without --dev; the operator keys are `extra`'s --genesis, else the
/// development keys named in a genesis file (never implied).
fn run_signed(extra: &[&str], input: &str) -> Output {
    let dir = tempdir();
    let genesis = dev_genesis_file(dir.path());
    let mut args = vec!["run", "--limits", "small", "--input", "-"];
    if !extra.contains(&"--genesis") {
        args.extend_from_slice(&["--genesis", path_str(&genesis)]);
    }
    args.extend_from_slice(extra);
    verex_with_stdin(&args, input.as_bytes())
}

#[test]
fn a_tampered_signature_is_refused_with_bad_signature_and_no_seq() {
    // Signed with the development keys; run without --dev against the development genesis.
    let mut lines = sign(&["--dev-role", "admin"], &[r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#]);
    lines.extend(sign(&["--dev-account", "1"], &[r#"{"op":"create_account"}"#]));
    lines.extend(sign(&["--dev-role", "custody"], &[r#"{"op":"deposit","account":1,"asset":"USDC","amount":"5"}"#]));
    lines.extend(sign(
        &["--dev-account", "1", "--nonce-start", "2"],
        &[r#"{"op":"withdraw","asset":"USDC","amount":"1"}"#],
    ));
    assert_eq!(lines.len(), 4);

    let honest = run_signed(&[], &(lines.join("\n") + "\n"));
    assert_success(&honest, "signed run");
    let events = json_lines(&stdout(&honest));
    assert_eq!(events.last().expect("events")["event"], "withdrawal", "{events:?}");

    // Flip one hex digit of the deposit's signature.
    let mut deposit: Value = serde_json::from_str(&lines[2]).expect("signed line");
    let signature = deposit["signature"].as_str().expect("signature").to_string();
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    deposit["signature"] = Value::from(format!("{flipped}{}", &signature[1..]));
    lines[2] = deposit.to_string();
    let tampered = run_signed(&[], &(lines.join("\n") + "\n"));
    assert_success(&tampered, "a bad signature is an event, not a failure");
    let events = json_lines(&stdout(&tampered));
    let refused: Value = serde_json::from_str(r#"{"event":"rejected","reason":"bad_signature"}"#).expect("json");
    assert_eq!(events[2], refused, "{events:?}");
    // The refused line took no seq: the withdrawal is seq 3 and fails for want of funds.
    assert_eq!(events[3]["seq"], 3);
    assert_eq!(events[3]["reason"], "insufficient_balance", "{events:?}");
}

/// Runs `verex args` on a live standard input: writes each line, then waits (at most 30 s)
/// for an event of that line's seq on standard output before writing the next; then closes
/// the input and expects success. Returns every output line.
fn run_live(args: &[&str], lines: &[String]) -> Vec<Value> {
    use std::io::BufRead;
    let mut child = common::spawn_piped(args);
    let mut input = child.stdin.take().expect("stdin");
    let output = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(output).lines() {
            if lines_tx.send(line.expect("stdout line")).is_err() {
                return;
            }
        }
    });
    let mut events = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let seq = k as u64 + 1;
        writeln!(input, "{line}").expect("write a line");
        input.flush().expect("flush the line");
        loop {
            let Ok(text) = lines_rx.recv_timeout(std::time::Duration::from_secs(30)) else {
                let _ = child.kill();
                panic!("no event of seq {seq} within 30 s while the input stays open: {events:?}");
            };
            let event: Value = serde_json::from_str(&text).expect("an event line");
            let done = event["seq"] == seq;
            events.push(event);
            if done {
                break;
            }
        }
    }
    drop(input);
    let status = child.wait().expect("wait for verex");
    reader.join().expect("stdout reader");
    events.extend(lines_rx.try_iter().map(|text| serde_json::from_str(&text).expect("an event line")));
    assert!(status.success(), "verex {args:?}: {status:?}");
    events
}

#[test]
fn a_live_run_releases_each_event_before_its_input_ends() {
    let unsigned = [
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"deposit","account":1,"asset":"USDC","amount":"5"}"#,
        r#"{"op":"withdraw","account":1,"asset":"USDC","amount":"1"}"#,
    ];
    // With --dev (signed by the run itself, straight into the pipeline).
    let dev: Vec<String> = unsigned.iter().map(|l| (*l).to_string()).collect();
    let events = run_live(&["run", "--dev", "--limits", "small", "--input", "-"], &dev);
    assert_eq!(events.last().expect("events")["event"], "withdrawal", "{events:?}");

    // Signed lines, through the ingress' workers (chunks of many lines each when busy).
    let mut signed = sign(&["--dev-role", "admin"], &unsigned[..1]);
    signed.extend(sign(&["--dev-account", "1"], &unsigned[1..2]));
    signed.extend(sign(&["--dev-role", "custody"], &unsigned[2..3]));
    signed.extend(sign(
        &["--dev-account", "1", "--nonce-start", "2"],
        &[r#"{"op":"withdraw","asset":"USDC","amount":"1"}"#],
    ));
    let dir = tempdir();
    let genesis = dev_genesis_file(dir.path());
    let args = ["run", "--limits", "small", "--input", "-", "--genesis", path_str(&genesis)];
    let events = run_live(&args, &signed);
    assert_eq!(events.last().expect("events")["event"], "withdrawal", "{events:?}");
}

#[test]
fn unsigned_lines_are_an_error_without_dev() {
    let out = run_signed(&[], "{\"op\":\"create_account\"}\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<stdin>:1: unsigned transaction"), "{}", stderr(&out));
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

fn keygen(path: &Path) -> String {
    let out = verex(&["keygen", "--out", path_str(path)]);
    assert_success(&out, "keygen");
    let public = stdout(&out).trim().to_string();
    assert_eq!(read_json(path)["public"], public.as_str(), "printed key = file's public key");
    #[cfg(unix)]
    assert_eq!(mode_of(path), 0o600, "key file is private");
    public
}

#[test]
fn keygen_sign_run_round_trip_with_a_genesis_file() {
    let dir = tempdir();
    let operator = dir.path().join("operator.json");
    let user = dir.path().join("user.json");
    let operator_public = keygen(&operator);
    let user_public = keygen(&user);
    assert_ne!(operator_public, user_public);
    let genesis = dir.path().join("genesis.json");
    let roles = ["admin", "custody", "oracle", "attest"].map(|r| format!("\"{r}\":\"{operator_public}\""));
    std::fs::write(&genesis, format!("{{{}}}", roles.join(","))).expect("genesis");

    // One key holds every operator role: they share one nonce sequence.
    let mut lines = sign_with_key(
        &operator,
        1,
        &[
            r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
            r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#,
            r#"{"op":"add_market","symbol":"BTC-USDC","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001"}"#,
        ],
    );
    lines.extend(sign_with_key(&user, 1, &[r#"{"op":"create_account"}"#]));
    lines.extend(sign_with_key(&operator, 4, &[r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1000"}"#]));
    lines.extend(sign_with_key(
        &user,
        2,
        &[r#"{"op":"place","account":1,"market":"BTC-USDC","side":"buy","price":"100","qty":"1"}"#],
    ));
    // The user's key is no operator: its listing is not permitted.
    lines.extend(sign_with_key(&user, 3, &[r#"{"op":"add_asset","symbol":"ETH","decimals":18}"#]));
    let input = lines.join("\n") + "\n";
    for line in &lines {
        let line: Value = serde_json::from_str(line).expect("signed line");
        assert!(line["signer"].is_string() && line["nonce"].is_u64() && line["signature"].is_string(), "{line}");
    }

    let state = dir.path().join("state.json");
    let out = run_signed(&["--genesis", path_str(&genesis), "--state", path_str(&state)], &input);
    assert_success(&out, "signed run");
    let events = json_lines(&stdout(&out));
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().expect("event")).collect();
    assert_eq!(
        kinds,
        ["asset_added", "asset_added", "market_added", "account_created", "deposit", "order", "order", "rejected"]
    );
    assert_eq!(events[7]["reason"], "not_permitted");
    let state = read_json(&state);
    assert_eq!(state["seq"], 7);
    assert_eq!(state["accounts"][0]["balances"]["USDC"]["locked"], "100");

    // The same lines against the development genesis: the operator's listings are refused.
    let out = run_signed(&[], &input);
    assert_success(&out, "run against another genesis");
    assert_eq!(json_lines(&stdout(&out))[0]["reason"], "not_permitted");
}

#[test]
fn keygen_never_overwrites_and_prints_json_without_out() {
    let dir = tempdir();
    let path = dir.path().join("key.json");
    keygen(&path);
    let before = std::fs::read(&path).expect("key");
    let out = verex(&["keygen", "--out", path_str(&path)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).expect("key"), before, "untouched");

    let out = verex(&["keygen"]);
    assert_success(&out, "keygen to stdout");
    let key: Value = serde_json::from_str(stdout(&out).trim()).expect("key JSON");
    let keys: Vec<&str> = key.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["secret", "public"]);
    assert!(stderr(&out).contains(key["public"].as_str().expect("public")));
    let other = verex(&["keygen"]);
    assert_ne!(stdout(&other), stdout(&out), "fresh randomness each time");
}

#[test]
fn sign_fills_nonces_keeps_given_ones_and_checks_its_input() {
    let lines = sign(
        &["--dev-account", "3", "--nonce-start", "10"],
        &[
            "# a comment",
            r#"{"op":"withdraw","asset":"USDC","amount":"1"}"#,
            r#"{"op":"withdraw","asset":"USDC","amount":"1","nonce":20}"#,
            r#"{"op":"withdraw","account":4,"asset":"USDC","amount":"1"}"#,
        ],
    );
    let lines = json_lines(&lines.join("\n"));
    let nonces: Vec<u64> = lines.iter().map(|l| l["nonce"].as_u64().expect("nonce")).collect();
    assert_eq!(nonces, [10, 20, 21]);
    let accounts: Vec<u64> = lines.iter().map(|l| l["account"].as_u64().expect("account")).collect();
    assert_eq!(accounts, [3, 3, 4], "--dev-account fills in a missing account only");

    let dir = tempdir();
    let key = dir.path().join("key.json");
    keygen(&key);
    let failures = [
        (r#"{"op":"withdraw","asset":"USDC","amount":"1"}"#, "<stdin>:1: op \"withdraw\" needs `account`"),
        (
            &format!(r#"{{"op":"create_account","signer":"{}"}}"#, "ab".repeat(32)),
            "<stdin>:1: the line names signer abab",
        ),
        (r#"{"op":"teleport"}"#, "<stdin>:1: unknown op"),
    ];
    for (line, message) in failures {
        let out = verex_with_stdin(&["sign", "--key", path_str(&key)], format!("{line}\n").as_bytes());
        assert_eq!(out.status.code(), Some(2), "{line}");
        assert!(stderr(&out).contains(message), "{line}: {}", stderr(&out));
    }
}

#[test]
fn bad_key_and_genesis_files_are_named() {
    let dir = tempdir();
    let key = dir.path().join("key.json");
    let genesis = dir.path().join("genesis.json");
    let cases = [
        ("not json", "not JSON"),
        ("[]", "expected a JSON object"),
        (r#"{"secret":"00"}"#, "field `secret`: expected a string of 64 hex digits"),
        (
            &format!(r#"{{"secret":"{}","public":"{}"}}"#, "11".repeat(32), "22".repeat(32)),
            "`public` is not the public key of `secret`",
        ),
        (&format!(r#"{{"secret":"{}","public":"{}","x":1}}"#, "11".repeat(32), "22".repeat(32)), "unknown field `x`"),
    ];
    for (text, reason) in cases {
        std::fs::write(&key, text).expect("key");
        let out = verex_with_stdin(&["sign", "--key", path_str(&key)], b"{\"op\":\"create_account\"}\n");
        assert_eq!(out.status.code(), Some(2), "{text}");
        let want = format!("error: {}: {reason}", key.display());
        assert!(stderr(&out).contains(&want), "{text}: {} should contain {want}", stderr(&out));
    }
    std::fs::write(&genesis, format!(r#"{{"admin":"{}"}}"#, "11".repeat(32))).expect("genesis");
    let out = run_signed(&["--genesis", path_str(&genesis)], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing field `custody`"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------
// Help
// ---------------------------------------------------------------------------------------

#[test]
fn help_works_for_every_command() {
    for (args, usage) in [
        (&["--help"][..], "Usage: verex <COMMAND>"),
        (&["help"], "Usage: verex <COMMAND>"),
        (&["run", "--help"], "Usage: verex run"),
        (&["help", "run"], "Usage: verex run"),
        (&["keygen", "--help"], "Usage: verex keygen"),
        (&["sign", "--help"], "Usage: verex sign"),
        (&["sign", "-h"], "Usage: verex sign"),
    ] {
        let out = verex(args);
        assert_success(&out, &format!("{args:?}"));
        let text = stdout(&out);
        assert!(text.contains(usage), "{args:?}: {text}");
        assert!(text.contains("Exit status"), "{args:?} documents exit statuses");
    }
    let run_help = stdout(&verex(&["run", "--help"]));
    assert!(run_help.contains("stops the run"), "run --help documents the malformed-line choice");
}

#[test]
fn demo_runs_the_pipeline_and_proves_the_replay() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verex"))
        .args(["demo", "--txs", "3000", "--accounts", "40", "--rate", "0"])
        .output()
        .expect("run verex demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in ["verifications/s", "tx/s end to end", "p99.99", "same state hash", "every step holds"] {
        assert!(stderr.contains(needle), "demo output lacks {needle:?}:\n{stderr}");
    }
}
