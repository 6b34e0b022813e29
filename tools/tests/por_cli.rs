//! `verex por` and `verex risk` end to end (SPEC 10, issue 13): every test vector through
//! `verex por verify` (named reason, exit status), the committed vectors equal to what
//! `verex por vectors` writes, a whole cycle on a journal with lending and debts (build,
//! verify, audit by replay, from genesis and from a snapshot), an omitted account caught by
//! `audit`, reserves and solvency, the stress report, the published folder.

mod common;

use std::path::{Path, PathBuf};

use common::{err_text, expect_failure, expect_success, out_text, path_text, verex_in};
use verex_engine::por::vectors::generate;
use verex_engine::signing::{dev_role_key, hex, Role};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/por");

fn verex(args: &[&str]) -> std::process::Output {
    verex_in(args, b"")
}

/// Every file under `dir`, relative path → bytes.
fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).expect("under").to_string_lossy().into_owned();
                out.insert(name, std::fs::read(&path).expect("read"));
            }
        }
    }
    out
}

#[test]
fn the_committed_vectors_are_what_verex_writes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("vectors");
    expect_success(&verex(&["por", "vectors", "--out", path_text(&out)]), "por vectors");
    let written = files_under(&out);
    let committed = files_under(Path::new(DATA));
    assert_eq!(written.keys().collect::<Vec<_>>(), committed.keys().collect::<Vec<_>>());
    for (name, bytes) in &written {
        assert!(
            committed[name] == *bytes,
            "{name} differs from tools/tests/data/por (regenerate with `verex por vectors`)"
        );
    }
}

#[test]
fn every_vector_gets_its_verdict_and_named_reason_from_the_cli() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(DATA).join("cases.json")).expect("cases"))
            .expect("json");
    let cases = manifest["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), generate().cases.len());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let proof = Path::new(DATA).join(case["proof"].as_str().expect("proof"));
        let root = Path::new(DATA).join(case["root"].as_str().expect("root"));
        let mut args = vec!["por", "verify", "--proof", path_text(&proof), "--root", path_text(&root)];
        let key;
        if let Some(k) = case["attest_key"].as_str() {
            key = k.to_string();
            args.extend(["--attest-pubkey", key.as_str()]);
        }
        let account;
        if let Some(a) = case["account"].as_u64() {
            account = a.to_string();
            args.extend(["--account", account.as_str()]);
        }
        let out = verex(&args);
        match case["expect"].as_str() {
            Some("ok") => {
                expect_success(&out, name);
                assert!(out_text(&out).starts_with("proof holds: account"), "{name}: {}", out_text(&out));
            }
            _ => {
                let reason = case["reason"].as_str().expect("reason");
                expect_failure(&out, 1, &[&format!(": {reason}: ")], name);
            }
        }
    }
}

#[test]
fn a_missing_proof_file_and_an_unpinned_key_are_said() {
    let root = Path::new(DATA).join("root-a.json");
    let out = verex(&["por", "verify", "--proof", "/nonexistent/proof.json", "--root", path_text(&root)]);
    expect_failure(&out, 1, &["/nonexistent/proof.json"], "missing file");
    let proof = Path::new(DATA).join("proofs/valid_account_1.json");
    let out = verex(&["por", "verify", "--proof", path_text(&proof), "--root", path_text(&root)]);
    expect_success(&out, "unpinned");
    assert!(err_text(&out).contains("no attest key pinned"), "{}", err_text(&out));
}

/// A journal whose state has lent funds, a debt (a USDC-settled perp loss beyond the account's
/// USDC, carried by its BTC: an automatic borrow), the insurance fund, fees, resting orders and an
/// empty account. Attestations every 5 seqs, a snapshot every 10.
fn journal(dir: &Path) -> PathBuf {
    let lines = [
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#,
        r#"{"op":"add_asset","symbol":"BTC","decimals":8,"collateral_weight":"0.9","borrow_weight":"1.1"}"#,
        r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0.001"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"deposit","account":1,"asset":"USDC","amount":"100000"}"#,
        r#"{"op":"deposit","account":2,"asset":"BTC","amount":"1"}"#,
        r#"{"op":"deposit","account":2,"asset":"USDC","amount":"20"}"#,
        r#"{"op":"deposit","account":3,"asset":"USDC","amount":"100000"}"#,
        r#"{"op":"deposit","account":0,"asset":"USDC","amount":"1000"}"#,
        r#"{"op":"mark","prices":{"BTC":"100","BTC-PERP":"100"}}"#,
        r#"{"op":"lend","account":1,"asset":"USDC","amount":"5000"}"#,
        r#"{"op":"place","account":3,"market":"BTC-PERP","side":"sell","type":"limit","price":"100","qty":"1","tif":"gtc"}"#,
        r#"{"op":"place","account":2,"market":"BTC-PERP","side":"buy","type":"limit","price":"100","qty":"1","tif":"ioc"}"#,
        r#"{"op":"mark","prices":{"BTC-PERP":"70"}}"#,
        r#"{"op":"place","account":1,"market":"BTC-PERP","side":"buy","type":"limit","price":"90","qty":"2","tif":"gtc"}"#,
        r#"{"op":"deposit","account":3,"asset":"BTC","amount":"0.5"}"#,
        r#"{"op":"withdraw","account":3,"asset":"USDC","amount":"10"}"#,
        r#"{"op":"tick"}"#,
    ];
    let input = dir.join("txs.jsonl");
    std::fs::write(&input, lines.join("\n")).expect("input");
    let j = dir.join("journal");
    let out = verex(&[
        "run",
        "--dev",
        "--input",
        path_text(&input),
        "--journal",
        path_text(&j),
        "--limits",
        "small",
        "--attest-every",
        "5",
        "--snapshot-every",
        "10",
    ]);
    expect_success(&out, "run");
    j
}

fn build(j: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["por", "build", "--journal", path_text(j), "--dev", "--out", path_text(out)];
    args.extend(extra);
    verex(&args)
}

#[test]
fn a_cycle_builds_verifies_and_audits_by_replay() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let j = journal(tmp.path());
    let cycle = tmp.path().join("cycle");
    let out = build(&j, &cycle, &[]);
    expect_success(&out, "build");
    assert!(out_text(&out).starts_with("seq 21 root_hash "), "{}", out_text(&out));
    let root: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cycle.join("root.json")).expect("root")).expect("json");
    assert_eq!(root["leaf_count"], 3, "account 4 holds nothing: no leaf");
    assert_eq!(root["assets"][0]["symbol"], "USDC");
    let debt: u64 = root["assets"][0]["debt"].as_str().expect("debt").parse().expect("units");
    assert!(debt > 0, "the perp loss of account 2 beyond its USDC is a USDC debt: {root}");
    assert_eq!(root["assets"][0]["insurance"], "1000000000");
    for account in ["1", "2", "3"] {
        let proof = cycle.join("proofs").join(format!("{account}.json"));
        let out = verex(&[
            "por",
            "verify",
            "--proof",
            path_text(&proof),
            "--root",
            path_text(&cycle.join("root.json")),
            "--journal",
            path_text(&j),
            "--account",
            account,
        ]);
        expect_success(&out, "verify");
    }
    assert!(!cycle.join("proofs/4.json").exists());
    let (root_file, seed_file) = (cycle.join("root.json"), cycle.join("salt-seed.json"));
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "por",
            "audit",
            "--journal",
            path_text(&j),
            "--root",
            path_text(&root_file),
            "--salt-seed",
            path_text(&seed_file),
        ];
        args.extend(extra);
        verex(&args)
    };
    let audited = audit(&["--proofs", path_text(&cycle.join("proofs"))]);
    expect_success(&audited, "audit");
    let text = out_text(&audited);
    assert!(text.contains("audit holds") && text.contains("3 proofs checked"), "{text}");
    expect_success(&audit(&["--snapshots"]), "audit from the newest snapshot");
    // A cycle at an attested seq, from a snapshot, with the same seed: the same root as from genesis.
    let at15_genesis = tmp.path().join("at15-genesis");
    let at15_snapshot = tmp.path().join("at15-snapshot");
    let seed = cycle.join("salt-seed.json");
    let a = build(&j, &at15_genesis, &["--at", "15", "--salt-seed", path_text(&seed)]);
    let b = build(&j, &at15_snapshot, &["--at", "15", "--salt-seed", path_text(&seed), "--snapshots"]);
    expect_success(&a, "build at 15");
    expect_success(&b, "build at 15 from the snapshot at 10");
    assert!(err_text(&a).contains("the attestation at seq 15 (line 3) names the same state"), "{}", err_text(&a));
    assert!(err_text(&b).contains("from snapshot"), "{}", err_text(&b));
    assert_eq!(out_text(&a), out_text(&b));
    assert_ne!(out_text(&a), out_text(&out), "another seq, another root");
}

#[test]
fn omitted_account_is_caught_by_audit() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let j = journal(tmp.path());
    let honest = tmp.path().join("honest");
    expect_success(&build(&j, &honest, &[]), "build");
    // The exchange publishes a tree without account 2 (the one with the debt), signed with
    // the attest key and the same seed: every other user's proof still verifies.
    let manifest = verex_tools::manifest::require_manifest(&j).expect("manifest");
    let reader = verex_journal::JournalReader::open(&j).expect("reader");
    let state =
        verex_tools::recover::recover_at(&j, &reader, &manifest, &verex_tools::recover::Source::Genesis, None, "test")
            .expect("state");
    let (_, seed) = verex_tools::por_files::read_seed(&honest.join("salt-seed.json")).expect("seed");
    let mut leaves = verex_engine::por::cycle::leaves_of(&state.engine).expect("leaves");
    assert!(leaves.remove(2));
    let mut dishonest =
        verex_engine::por::Cycle::from_leaves(&state.engine, leaves, state.digest.digest, seed, 1).expect("build");
    dishonest.sign(&dev_role_key(Role::Attest));
    let root = tmp.path().join("dishonest-root.json");
    std::fs::write(&root, dishonest.root.to_json()).expect("write");
    let proof = tmp.path().join("1.json");
    std::fs::write(&proof, dishonest.proof(1).expect("proof").to_json()).expect("write");
    let out =
        verex(&["por", "verify", "--proof", path_text(&proof), "--root", path_text(&root), "--journal", path_text(&j)]);
    expect_success(&out, "account 1 cannot see the omission");
    let out = verex(&[
        "por",
        "audit",
        "--journal",
        path_text(&j),
        "--root",
        path_text(&root),
        "--salt-seed",
        path_text(&honest.join("salt-seed.json")),
    ]);
    expect_failure(
        &out,
        1,
        &[": leaf_count_mismatch: ", "1 account(s) omitted", "totals_mismatch", "root_mismatch"],
        "audit",
    );
}

#[test]
fn audit_names_a_wrong_seed_another_state_and_a_foreign_root() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let j = journal(tmp.path());
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    expect_success(&build(&j, &a, &[]), "build a");
    expect_success(&build(&j, &b, &["--at", "19"]), "build b");
    let audit = |root: &Path, seed: &Path| {
        verex(&["por", "audit", "--journal", path_text(&j), "--root", path_text(root), "--salt-seed", path_text(seed)])
    };
    let out = audit(&a.join("root.json"), &b.join("salt-seed.json"));
    expect_failure(&out, 1, &["salt-seed.json: seed_mismatch: "], "another cycle's seed");
    // A root signed for seq 20 but naming the state of seq 19.
    let mut bent =
        verex_engine::por::Root::from_json(&std::fs::read_to_string(a.join("root.json")).expect("read")).expect("root");
    let other =
        verex_engine::por::Root::from_json(&std::fs::read_to_string(b.join("root.json")).expect("read")).expect("root");
    bent.state_hash = other.state_hash;
    bent.sign(&dev_role_key(Role::Attest));
    let bent_path = tmp.path().join("bent.json");
    std::fs::write(&bent_path, bent.to_json()).expect("write");
    expect_failure(&audit(&bent_path, &a.join("salt-seed.json")), 1, &[": state_mismatch: "], "another state");
    // Signed by a key that is not the journal's attest key.
    bent.sign(&dev_role_key(Role::Oracle));
    std::fs::write(&bent_path, bent.to_json()).expect("write");
    expect_failure(&audit(&bent_path, &a.join("salt-seed.json")), 1, &[": wrong_signer: "], "foreign key");
}

#[test]
fn reserves_and_solvency_show_the_hole_and_fail_when_short() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let j = journal(tmp.path());
    let cycle = tmp.path().join("cycle");
    expect_success(&build(&j, &cycle, &[]), "build");
    let root = cycle.join("root.json");
    let reserves = |name: &str, amounts: &[&str]| {
        let path = tmp.path().join(name);
        let mut args = vec!["por", "reserves", "--root", path_text(&root), "--dev", "--chain-position", "test:1"];
        for amount in amounts {
            args.extend(["--amount", amount]);
        }
        args.extend(["--out", path_text(&path)]);
        expect_success(&verex(&args), "reserves");
        path
    };
    let solvency = |path: &Path| {
        verex(&[
            "por",
            "solvency",
            "--root",
            path_text(&root),
            "--reserves",
            path_text(path),
            "--journal",
            path_text(&j),
        ])
    };
    // Custody holds the supply: 201,020 USDC deposited less 10 withdrawn, 1.5 BTC.
    let full = reserves("full.json", &["USDC=201010", "BTC=1.5"]);
    let out = solvency(&full);
    expect_success(&out, "solvency");
    let table = out_text(&out);
    assert!(table.contains("covered") && !table.contains("SHORT"), "{table}");
    let short = reserves("short.json", &["USDC=1000", "BTC=1.5"]);
    expect_failure(&solvency(&short), 1, &[": short: USDC short by"], "short");
    let mut tampered = std::fs::read_to_string(&full).expect("read");
    tampered = tampered.replace("\"150000000\"", "\"150000001\"");
    let bent = tmp.path().join("bent.json");
    std::fs::write(&bent, tampered).expect("write");
    expect_failure(&solvency(&bent), 1, &[": bad_signature: "], "tampered reserves");
}

#[test]
fn the_stress_report_and_the_published_folder() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let j = journal(tmp.path());
    let cycle = tmp.path().join("cycle");
    expect_success(&build(&j, &cycle, &[]), "build");
    let risk = tmp.path().join("risk.json");
    let out = verex(&["risk", "--journal", path_text(&j), "--shocks=-10,-30,-50", "--out", path_text(&risk)]);
    expect_success(&out, "risk");
    assert!(err_text(&out).contains("-50 %: "), "{}", err_text(&out));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&risk).expect("risk")).expect("json");
    assert_eq!(report["seq"], 21);
    assert_eq!(report["shocks"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["shocks"][1]["prices"]["BTC"]["after"], "70");
    let bad = verex(&["risk", "--journal", path_text(&j), "--shocks=-100"]);
    expect_failure(&bad, 2, &["-100"], "shock out of range");
    let reserves = tmp.path().join("reserves.json");
    expect_success(
        &verex(&[
            "por",
            "reserves",
            "--root",
            path_text(&cycle.join("root.json")),
            "--dev",
            "--amount",
            "USDC=201010",
            "--amount",
            "BTC=1.5",
            "--chain-position",
            "test:1",
            "--out",
            path_text(&reserves),
        ]),
        "reserves",
    );
    let site = tmp.path().join("site");
    let publish = |extra: &[&str]| {
        let mut args = vec!["por", "publish", "--cycle", path_text(&cycle), "--reserves", path_text(&reserves)];
        args.extend(["--risk", path_text(&risk), "--out", path_text(&site)]);
        args.extend(extra);
        verex(&args)
    };
    let out = publish(&["--journal", path_text(&j)]);
    expect_success(&out, "publish");
    let published = files_under(&site);
    assert!(published.keys().all(|name| !name.contains("seed")), "{:?}", published.keys());
    for name in ["index.json", "root.json", "attestation.json", "reserves.json", "risk.json"] {
        assert!(published.contains_key(name), "{name}");
    }
    let proof =
        verex_engine::por::Proof::from_json(&std::fs::read_to_string(cycle.join("proofs/2.json")).expect("read"))
            .expect("proof");
    let name = format!("proofs/{}.json", hex(&verex_engine::por::format::user_hash(2, &proof.salt)));
    assert!(published.contains_key(&name), "{name} in {:?}", published.keys());
    // The verification page, as web/ has it (its tests, web/test/page.test.mjs, open a published
    // folder in chromium and verify one of its proofs there).
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    for page_file in ["index.html", "style.css", "app.js", "verifier.js", "vendor/noble.js"] {
        let on_disk = std::fs::read(web.join(page_file)).expect("web/ file");
        assert!(published.get(page_file) == Some(&on_disk), "{page_file}: published as web/ has it");
    }
    let index: serde_json::Value = serde_json::from_slice(&published["index.json"]).expect("index.json");
    assert_eq!(index["page"], "index.html");
    let ts: u64 = index["journal_ts_ns"].as_str().expect("the journal's time stamp at the seq").parse().expect("ns");
    assert!(ts > 1_700_000_000_000_000_000, "{ts}");
    let again = publish(&[]);
    expect_failure(&again, 2, &["not empty"], "never overwrites");
}
