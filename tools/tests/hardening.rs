//! The hardening issue's reproductions, through the built `verex` binary: each test is named
//! after what it proves, and each failed on the code before the fix.
//!
//! - a weak (small-order) key cannot sign for every message, in a run or in a journal;
//! - a client's own time stamp cannot move (or stop) the exchange's clock;
//! - production never runs on the development operator keys, and never creates a journal by
//!   accident.

mod common;

use std::path::{Path, PathBuf};

use common::{
    dev_genesis_file, err_text, expect_failure, expect_success, json_lines_of, out_text, path_text, verex_in,
};
use serde_json::Value;
use verex_engine::record::RecordBytes;
use verex_engine::sequencer::{DEV_CLOCK_START_NS, DEV_CLOCK_STEP_NS};
use verex_engine::signing::{dev_role_key, sign, Role};
use verex_engine::tx::{AddAsset, Op, SequencedTx, SignedTx, Symbol, Tx};
use verex_engine::Genesis;
use verex_journal::{Durability, JournalConfig, JournalWriter};
use verex_tools::manifest::{write_manifest, LimitsArg, Manifest};

fn verex(args: &[&str]) -> std::process::Output {
    verex_in(args, b"")
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
    path
}

/// Generates a key file; returns its public key.
fn keygen(path: &Path) -> String {
    let out = verex(&["keygen", "--out", path_text(path)]);
    expect_success(&out, "keygen");
    out_text(&out).trim().to_string()
}

/// A genesis file naming `public` for every role.
fn genesis_of(dir: &Path, public: &str) -> PathBuf {
    let roles = Role::ALL.map(|r| format!("\"{}\":\"{public}\"", r.name()));
    let path = dir.join("genesis.json");
    std::fs::write(&path, format!("{{{}}}", roles.join(","))).expect("genesis");
    path
}

/// Signs unsigned lines with a key file, nonces from `nonce_start`.
fn sign_with(key: &Path, nonce_start: u64, lines: &[&str]) -> Vec<String> {
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let out = verex_in(&["sign", "--key", path_text(key), "--nonce-start", &nonce_start.to_string()], input.as_bytes());
    expect_success(&out, "sign");
    out_text(&out).lines().map(str::to_string).collect()
}

/// The identity point: a key of small order, for which the signature (R = identity, S = 0)
/// satisfies the cofactorless equation for every message.
const WEAK_KEY: &str = "0100000000000000000000000000000000000000000000000000000000000000";
/// R = the identity, S = 0.
fn constant_signature() -> String {
    format!("01{}", "0".repeat(126))
}

#[test]
fn a_weak_key_cannot_sign_for_every_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let operator = dir.path().join("operator.key");
    let genesis = genesis_of(dir.path(), &keygen(&operator));
    let mut lines = sign_with(&operator, 1, &[r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#]);
    let signature = constant_signature();
    lines.push(format!(r#"{{"op":"create_account","signer":"{WEAK_KEY}","nonce":1,"signature":"{signature}"}}"#));
    lines.extend(sign_with(&operator, 2, &[r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1000"}"#]));
    lines.push(format!(
        r#"{{"op":"withdraw","account":1,"asset":"USDC","amount":"1000","signer":"{WEAK_KEY}","nonce":2,"signature":"{signature}"}}"#
    ));
    let input = write(dir.path(), "weak.jsonl", &lines);
    let journal = dir.path().join("journal");
    let events = dir.path().join("events.jsonl");
    let out = verex(&[
        "run",
        "--init",
        "--genesis",
        path_text(&genesis),
        "--limits",
        "small",
        "--journal",
        path_text(&journal),
        "--input",
        path_text(&input),
        "--events",
        path_text(&events),
    ]);
    expect_success(&out, "a run with weak-key lines");
    let events = json_lines_of(&std::fs::read_to_string(&events).expect("events"));
    let refused: Value = serde_json::from_str(r#"{"event":"rejected","reason":"bad_signature"}"#).expect("json");
    assert_eq!(events[1], refused, "the weak key's create_account is refused before sequencing: {events:?}");
    assert_eq!(events[2]["reason"], "unknown_account", "no account was created for it: {events:?}");
    assert_eq!(events[3], refused, "its constant signature on a withdrawal is refused: {events:?}");
    assert!(events.iter().all(|e| e["event"] != "withdrawal"), "nothing was paid out: {events:?}");
    expect_success(&verex(&["verify", "--journal", path_text(&journal)]), "verify");
}

/// A journal whose records were written by something other than verex's ingress: the
/// admin's listing, then a weak key's create_account with the constant signature.
fn journal_with_a_weak_key_record(dir: &Path) -> PathBuf {
    let journal = dir.join("forged");
    let config = JournalConfig { dir: journal.clone(), segment_bytes: 1 << 20, durability: Durability::Sync };
    let (mut writer, _) = JournalWriter::open(config).expect("journal");
    let admin = dev_role_key(Role::Admin);
    let listing = Tx {
        signer: admin.verifying_key().to_bytes(),
        nonce: 1,
        account: 0,
        op: Op::AddAsset(AddAsset::new(Symbol::new("USDC").expect("symbol"), 6)),
    };
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let mut constant = [0u8; 64];
    constant[0] = 1;
    let forged = SignedTx { tx: Tx { signer: weak, nonce: 1, account: 0, op: Op::CreateAccount }, signature: constant };
    for (seq, signed) in [(1u64, sign(listing, &admin)), (2, forged)] {
        let ts = DEV_CLOCK_START_NS + seq * DEV_CLOCK_STEP_NS;
        let record = RecordBytes::encode(&SequencedTx { seq, ts, signed });
        writer.append(seq, &record.0).expect("append");
    }
    writer.commit().expect("commit");
    write_manifest(&journal, &Manifest { limits: LimitsArg::Small, genesis: Genesis::dev() }).expect("manifest");
    journal
}

#[test]
fn verify_and_replay_refuse_a_journal_record_signed_by_a_weak_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = journal_with_a_weak_key_record(dir.path());
    for command in ["verify", "replay"] {
        let out = verex(&[command, "--journal", path_text(&journal)]);
        expect_failure(&out, 1, &["seq 2", "bad signature", "small order"], command);
    }
}

#[test]
fn a_client_time_stamp_cannot_move_the_exchanges_clock() {
    let dir = tempfile::tempdir().expect("temp dir");
    // --dev: a line's ts is honoured only below 2^62 ns; beyond, it is rejected and the clock
    // does not move, whoever sent it, so the lines after it are not stale.
    let lines: Vec<String> = [
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"create_account","account":9,"ts":18446744073709551615}"#,
        r#"{"op":"tick","ts":4611686018427387904}"#,
        r#"{"op":"deposit","account":1,"asset":"USDC","amount":"5"}"#,
        r#"{"op":"withdraw","account":1,"asset":"USDC","amount":"1"}"#,
    ]
    .map(str::to_string)
    .to_vec();
    let input = write(dir.path(), "dev.jsonl", &lines);
    let out = verex(&["run", "--dev", "--limits", "small", "--input", path_text(&input)]);
    expect_success(&out, "dev run");
    let events = json_lines_of(&out_text(&out));
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(reasons, ["invalid_ts", "invalid_ts"], "{events:?}");
    assert_eq!(events.last().map(|e| e["event"].clone()), Some(Value::from("withdrawal")), "{events:?}");

    // Without --dev a signed line carrying `ts` is not a transaction: the run stops there,
    // naming the field, with everything before it journaled and the clock untouched.
    let genesis = dev_genesis_file(dir.path());
    let signed = |role: &str, lines: &[&str]| -> Vec<String> {
        let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let out = verex_in(&["sign", "--dev-role", role], input.as_bytes());
        expect_success(&out, "sign");
        out_text(&out).lines().map(str::to_string).collect()
    };
    let mut lines = signed("admin", &[r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#]);
    lines.extend(signed("oracle", &[r#"{"op":"tick","ts":18446744073709551615}"#]));
    let input = write(dir.path(), "signed.jsonl", &lines);
    let journal = dir.path().join("journal");
    let run = |input: &Path, init: bool| {
        let mut args = vec!["run", "--limits", "small", "--journal", path_text(&journal), "--input", path_text(input)];
        if init {
            args.extend(["--init", "--genesis", path_text(&genesis)]);
        }
        verex(&args)
    };
    let out = run(&input, true);
    expect_failure(&out, 2, &["signed.jsonl:2", "`ts`", "sequencer"], "a signed line with its own ts");
    let later = signed("oracle", &[r#"{"op":"tick"}"#]);
    let later = write(dir.path(), "later.jsonl", &later);
    let out = run(&later, false);
    expect_success(&out, "the exchange goes on");
    assert!(!out_text(&out).contains("stale_ts"), "{}", out_text(&out));
}

#[test]
fn production_never_uses_the_development_keys_or_creates_a_journal_by_accident() {
    let dir = tempfile::tempdir().expect("temp dir");
    let operator = dir.path().join("operator.key");
    let public = keygen(&operator);
    let genesis = genesis_of(dir.path(), &public);
    let input = write(dir.path(), "empty.jsonl", &[]);
    let journal = dir.path().join("journal");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--limits", "small", "--input", path_text(&input)];
        args.extend_from_slice(extra);
        verex(&args)
    };
    // No --dev and no --genesis: the development keys are never implied.
    expect_failure(&run(&[]), 2, &["--genesis"], "a run without keys");
    // A path that holds no journal is not created without --init (a typo starts no exchange).
    let typo = dir.path().join("jounral");
    expect_failure(&run(&["--journal", path_text(&typo)]), 2, &["holds no journal", "--init"], "typo");
    assert!(!typo.exists(), "nothing was created at the mistyped path");
    expect_failure(&run(&["--journal", path_text(&journal), "--init"]), 2, &["--genesis"], "--init without keys");
    assert!(!journal.exists());
    // --init with a genesis file creates it, with those keys recorded.
    expect_success(&run(&["--journal", path_text(&journal), "--init", "--genesis", path_text(&genesis)]), "init");
    let manifest = std::fs::read_to_string(journal.join("verex.json")).expect("manifest");
    assert!(manifest.contains(&public), "{manifest}");
    expect_failure(
        &run(&["--journal", path_text(&journal), "--init", "--genesis", path_text(&genesis)]),
        2,
        &["already holds a journal"],
        "a second --init",
    );
    // It continues without naming the keys again (they are the journal's), and refuses others.
    expect_success(&run(&["--journal", path_text(&journal)]), "continue");
    let other = dev_genesis_file(dir.path());
    expect_failure(
        &run(&["--journal", path_text(&journal), "--genesis", path_text(&other)]),
        2,
        &["--genesis"],
        "other keys",
    );
    // A weak operator key is refused up front.
    let weak_dir = dir.path().join("weak");
    std::fs::create_dir_all(&weak_dir).expect("mkdir");
    let weak = genesis_of(&weak_dir, WEAK_KEY);
    let out = run(&["--journal", path_text(&dir.path().join("j2")), "--init", "--genesis", path_text(&weak)]);
    expect_failure(&out, 2, &["small order"], "a weak genesis key");
    assert!(err_text(&out).contains("admin"), "{}", err_text(&out));
}
