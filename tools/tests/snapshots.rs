//! Snapshots, recovery and attestations, end to end through the built `verex` binary:
//!
//! * recovery from the newest valid snapshot plus the journal's suffix equals a full replay,
//!   at many cut points (random ones, one exactly at a snapshot's seq, both sides of a segment
//!   boundary), and a run resumed from a snapshot equals one uninterrupted run;
//! * tampering (a changed tx, a re-signed changed tx, reordered txs, an edited or forged
//!   attestation, a changed snapshot byte, a snapshot of another journal, lost attested
//!   records) fails `verify` or recovery naming the right seq or file;
//! * retention keeps exactly K snapshots; a torn attestation line is cut and rewritten;
//!   attest keys other than the genesis one are refused; archiving moves, never deletes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use verex_engine::record::{access_record, to_native, RecordBytes};
use verex_engine::signing::{dev_account_key, dev_role_key, hex, sign, Role};
use verex_engine::tx::{Op, SequencedTx, RECORD_BYTES};
use verex_journal::test_support::write_commit_mark;
use verex_journal::{chain_hash, frame_len, padded_len, JournalReader, FRAME_HEADER_BYTES, MIN_SEGMENT_BYTES};
use verex_tools::attestations::{attestations_path, read_attestations};
use verex_tools::snapshots::{list_snapshots, snapshot_path};

const VEREX: &str = env!("CARGO_BIN_EXE_verex");
/// Small segments, so that a workload of a thousand records spans several files.
const SMALL_SEGMENT_BYTES: u64 = MIN_SEGMENT_BYTES;
/// One segment holds every record of these workloads: forging re-hashes one file.
const ONE_SEGMENT_BYTES: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Runs `verex args`; asserts it did not panic.
fn verex(args: &[&str]) -> Output {
    let out = Command::new(VEREX).args(args).stdin(Stdio::null()).output().expect("spawn verex");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "verex {args:?} panicked: {stderr}");
    out
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

/// Asserts `verex` failed with `code` and that standard error mentions every one of `needles`.
fn assert_failure(out: &Output, code: i32, needles: &[&str], what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: expected exit {code}, stderr: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{what}: stderr lacks {needle:?}: {err}");
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write input");
}

fn state_hash_of(state: &Path) -> String {
    let value: Value = serde_json::from_slice(&read(state)).expect("state is JSON");
    value["state_hash"].as_str().expect("state_hash").to_string()
}

/// `verex replay --journal DIR extra...`: the `(seq, state hash)` it prints, and its stderr.
fn replay(journal: &Path, extra: &[&str]) -> ((u64, String), String) {
    let mut args = vec!["replay", "--journal", path_str(journal)];
    args.extend(extra);
    let out = verex(&args);
    assert_success(&out, &format!("replay {extra:?}"));
    let text = stdout(&out);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(words.len() == 4 && words[0] == "seq" && words[2] == "state_hash", "replay prints seq and hash: {text}");
    ((words[1].parse().expect("seq"), words[3].to_string()), stderr(&out))
}

/// A xorshift64 generator: deterministic, seedable.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// A `--dev` workload of exactly `lines` lines: two assets, a spot market, twenty funded
/// accounts, then limit and market orders, cancels and new accounts from a fixed xorshift.
fn workload(lines: usize, seed: u64) -> Vec<String> {
    let mut out = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-USDC","kind":"spot","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"0.0002","taker_fee":"0.0005"}"#.to_string(),
    ];
    let deposit = |account: u64, asset: &str, amount: &str| {
        format!(r#"{{"op":"deposit","account":{account},"asset":"{asset}","amount":"{amount}"}}"#)
    };
    for account in 1..=20 {
        out.push(r#"{"op":"create_account"}"#.to_string());
        out.push(deposit(account, "USDC", "1000000"));
        out.push(deposit(account, "BTC", "100"));
    }
    let mut rng = XorShift(seed | 1);
    let mut accounts = 20u64;
    let mut placed = 0u64;
    while out.len() < lines {
        let account = 1 + rng.below(accounts);
        let side = if rng.below(2) == 0 { "buy" } else { "sell" };
        let line = match rng.below(20) {
            0..=12 => {
                placed += 1;
                let price = 9_500 + 5 * rng.below(200);
                let qty = 10 * (1 + rng.below(100));
                format!(
                    r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"limit","price":"{}.{:02}","qty":"0.{qty:04}","tif":"gtc"}}"#,
                    price / 100,
                    price % 100
                )
            }
            13 | 14 => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"market","qty":"0.{:04}"}}"#,
                10 * (1 + rng.below(50))
            ),
            15..=17 => format!(
                r#"{{"op":"cancel","account":{account},"market":"BTC-USDC","order_id":{}}}"#,
                1 + rng.below(placed.max(1))
            ),
            18 => format!(r#"{{"op":"cancel_all","account":{account},"market":"BTC-USDC"}}"#),
            _ => {
                accounts += 1;
                out.push(r#"{"op":"create_account"}"#.to_string());
                deposit(accounts, "USDC", "50000")
            }
        };
        out.push(line);
    }
    out.truncate(lines);
    out
}

/// A journal written by `run --dev --limits small` with the replica's flags in `extra`.
struct Fixture {
    dir: tempfile::TempDir,
    journal: PathBuf,
    lines: Vec<String>,
    state: PathBuf,
}

fn journaled_run(lines: usize, seed: u64, segment_bytes: u64, extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = workload(lines, seed);
    let input = dir.path().join("input.jsonl");
    write_lines(&input, &lines);
    let journal = dir.path().join("journal");
    let state = dir.path().join("run.state.json");
    let segment = segment_bytes.to_string();
    let mut args = vec!["run", "--dev", "--limits", "small", "--input", path_str(&input)];
    let events = dir.path().join("run.events.jsonl");
    args.extend(["--events", path_str(&events), "--state", path_str(&state)]);
    args.extend(["--journal", path_str(&journal), "--segment-bytes", &segment]);
    args.extend(extra);
    assert_success(&verex(&args), "journaled run");
    Fixture { dir, journal, lines, state }
}

/// `run --dev` of `lines` on an existing journal; returns the state file.
fn resume(fx: &Fixture, journal: &Path, lines: &[String], tag: &str, extra: &[&str]) -> (PathBuf, Output) {
    let input = fx.dir.path().join(format!("{tag}.jsonl"));
    write_lines(&input, lines);
    let state = fx.dir.path().join(format!("{tag}.state.json"));
    let mut args = vec!["run", "--dev", "--input", path_str(&input), "--journal", path_str(journal)];
    let events = fx.dir.path().join(format!("{tag}.events.jsonl"));
    args.extend(["--events", path_str(&events), "--state", path_str(&state)]);
    args.extend(extra);
    let out = verex(&args);
    (state, out)
}

/// Where one record sits on disk.
#[derive(Debug, Clone, Copy)]
struct Placed {
    seq: u64,
    segment_index: u64,
    frame_offset: u64,
    payload_len: u64,
    hash: u64,
}

impl Placed {
    fn end(&self) -> u64 {
        self.frame_offset + frame_len(self.payload_len)
    }
}

fn placements(journal: &Path) -> Vec<Placed> {
    let reader = JournalReader::open(journal).expect("open journal");
    reader
        .iter()
        .map(|record| {
            let record = record.expect("valid record");
            Placed {
                seq: record.seq,
                segment_index: record.segment_index,
                frame_offset: record.frame_offset,
                payload_len: record.payload.len() as u64,
                hash: record.hash,
            }
        })
        .collect()
}

fn segment_path(journal: &Path, index: u64) -> PathBuf {
    journal.join(format!("{index:020}.seg"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// A copy of the journal holding only records `1..=cut` (and a commit mark committing exactly
/// them), with the manifest, every snapshot (also those beyond the cut) and the attestations up
/// to seq `attested_up_to`.
fn truncated_copy(journal: &Path, records: &[Placed], cut: u64, to: &Path, attested_up_to: u64) {
    std::fs::create_dir_all(to).expect("create copy");
    std::fs::copy(journal.join("verex.json"), to.join("verex.json")).expect("copy manifest");
    copy_dir(&journal.join("snapshots"), &to.join("snapshots"));
    let log = String::from_utf8(read(&attestations_path(journal))).expect("UTF-8");
    let kept: Vec<String> = log
        .lines()
        .filter(|line| serde_json::from_str::<Value>(line).expect("JSON")["seq"].as_u64() <= Some(attested_up_to))
        .map(str::to_string)
        .collect();
    write_lines(&attestations_path(to), &kept);
    let last = records[cut as usize - 1];
    for index in 1..=last.segment_index {
        std::fs::copy(segment_path(journal, index), segment_path(to, index)).expect("copy segment");
    }
    let segment = segment_path(to, last.segment_index);
    let len = std::fs::metadata(&segment).expect("segment").len();
    patch(&segment, last.end(), &vec![0; (len - last.end()) as usize]);
    write_commit_mark(to, last.seq, last.hash, last.segment_index).expect("the prefix's commit mark");
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).expect("open for patching");
    file.write_all_at(bytes, offset).expect("patch");
}

/// The seq of the snapshot a replay or run said it recovered from, if any.
fn snapshot_used(stderr: &str) -> Option<u64> {
    let at = stderr.find("from snapshot ")?;
    let name_end = stderr[at..].find(".snap")? + at;
    stderr[name_end - 20..name_end].parse().ok()
}

fn snapshot_seqs(journal: &Path) -> Vec<u64> {
    list_snapshots(journal).expect("list snapshots").into_iter().map(|(seq, _)| seq).collect()
}

// ---------------------------------------------------------------------------------------
// Forging records: what an attacker who knows the format (and perhaps a user's key) can do
// ---------------------------------------------------------------------------------------

/// The journal's only segment, its records, and the native txs in them.
struct Forge {
    segment: PathBuf,
    bytes: Vec<u8>,
    records: Vec<Placed>,
}

impl Forge {
    fn open(journal: &Path) -> Self {
        let records = placements(journal);
        assert!(records.iter().all(|r| r.segment_index == 1), "the forge works on one segment");
        let segment = segment_path(journal, 1);
        Self { bytes: read(&segment), segment, records }
    }

    fn tx(&self, seq: u64) -> SequencedTx {
        let record = self.records[seq as usize - 1];
        let at = (record.frame_offset + FRAME_HEADER_BYTES) as usize;
        let mut aligned = RecordBytes([0; RECORD_BYTES]);
        aligned.0.copy_from_slice(&self.bytes[at..at + record.payload_len as usize]);
        to_native(access_record(&aligned.0).expect("valid record")).expect("native")
    }

    fn put(&mut self, stx: &SequencedTx) {
        let record = self.records[stx.seq as usize - 1];
        let at = (record.frame_offset + FRAME_HEADER_BYTES) as usize;
        self.bytes[at..at + record.payload_len as usize].copy_from_slice(&RecordBytes::encode(stx).0);
    }

    /// Recomputes the xxh3 chain from record `from_seq` on and writes the segment back, and the
    /// commit mark with the new last hash (neither the chain nor the mark is cryptographic).
    fn rehash_and_write(mut self, from_seq: u64) {
        let mut prev = self.records[from_seq as usize - 2].hash;
        for record in &self.records[from_seq as usize - 1..] {
            let off = record.frame_offset as usize;
            let hashed = (FRAME_HEADER_BYTES + padded_len(record.payload_len) + 8) as usize;
            prev = chain_hash(prev, &self.bytes[off..off + hashed]);
            self.bytes[off + hashed..off + hashed + 8].copy_from_slice(&prev.to_le_bytes());
        }
        std::fs::write(&self.segment, &self.bytes).expect("write forged segment");
        let (dir, last) = (self.segment.parent().expect("journal dir"), self.records.len() as u64);
        write_commit_mark(dir, last, prev, 1).expect("write forged commit mark");
    }
}

/// The first seq after `from` whose record is a resting-capable limit `place`.
fn next_place(forge: &Forge, from: u64) -> u64 {
    (from..).find(|&seq| matches!(forge.tx(seq).signed.tx.op, Op::Place(_))).expect("a place")
}

fn verify(journal: &Path) -> Output {
    verex(&["verify", "--journal", path_str(journal)])
}

/// Flags of the tamper fixture: an attestation every 50 seqs, a snapshot every 100, all kept.
const TAMPER_FLAGS: [&str; 6] = ["--attest-every", "50", "--snapshot-every", "100", "--keep-snapshots", "20"];

fn tamper_fixture() -> Fixture {
    let fx = journaled_run(600, 7, ONE_SEGMENT_BYTES, &TAMPER_FLAGS);
    assert_success(&verify(&fx.journal), "the untampered journal verifies");
    fx
}

fn tampered_copy(fx: &Fixture, tag: &str) -> PathBuf {
    let copy = fx.dir.path().join(tag);
    copy_dir(&fx.journal, &copy);
    copy
}

// ---------------------------------------------------------------------------------------
// Recovery equals a full replay
// ---------------------------------------------------------------------------------------

#[test]
fn snapshot_plus_suffix_recovery_equals_a_full_replay_at_many_cut_points() {
    let flags = ["--attest-every", "40", "--snapshot-every", "100", "--keep-snapshots", "100"];
    let fx = journaled_run(1200, 11, SMALL_SEGMENT_BYTES, &flags);
    let records = placements(&fx.journal);
    assert_eq!(snapshot_seqs(&fx.journal), (1..=12).map(|k| k * 100).collect::<Vec<_>>());
    let boundary = records.iter().find(|r| r.segment_index == 3).expect("three segments").seq;
    let mut cuts = vec![1, 99, 100, 300, boundary - 1, boundary, 1199, 1200];
    assert!(records[boundary as usize - 2].segment_index == 2, "boundary - 1 ends segment 2");
    let mut rng = XorShift(0x5eed);
    cuts.extend((0..20).map(|_| 1 + rng.below(1200)));
    for cut in cuts {
        let copy = fx.dir.path().join(format!("cut{cut}"));
        truncated_copy(&fx.journal, &records, cut, &copy, 0);
        let (full, _) = replay(&copy, &[]);
        let (recovered, err) = replay(&copy, &["--snapshots"]);
        assert_eq!(full.0, cut);
        assert_eq!(recovered, full, "cut {cut}: snapshot + suffix differs from a full replay");
        let newest = (cut / 100) * 100;
        assert_eq!(
            snapshot_used(&err),
            (newest > 0).then_some(newest),
            "cut {cut}: used the newest fitting one: {err}"
        );
        if cut < 1200 {
            let beyond =
                format!("{:020}.snap skipped: its seq {} is beyond", (cut / 100 + 1) * 100, (cut / 100 + 1) * 100);
            assert!(err.contains(&beyond), "cut {cut}: snapshots beyond the end are named: {err}");
        }
    }
}

#[test]
fn a_run_resumed_from_a_snapshot_equals_one_uninterrupted_run() {
    let flags = ["--attest-every", "40", "--snapshot-every", "100", "--keep-snapshots", "100"];
    let fx = journaled_run(1200, 13, SMALL_SEGMENT_BYTES, &flags);
    let records = placements(&fx.journal);
    let full_hash = state_hash_of(&fx.state);
    let full_log = read(&attestations_path(&fx.journal));
    // Cut exactly at a snapshot's seq, just after one, and at a segment boundary.
    let boundary = records.iter().find(|r| r.segment_index == 4).expect("four segments").seq - 1;
    for cut in [500, 537, boundary] {
        let copy = fx.dir.path().join(format!("resume{cut}"));
        truncated_copy(&fx.journal, &records, cut, &copy, cut);
        let (state, out) = resume(&fx, &copy, &fx.lines[cut as usize..], &format!("resume{cut}"), &flags);
        assert_success(&out, "resume");
        assert_eq!(snapshot_used(&stderr(&out)), Some((cut / 100) * 100), "{}", stderr(&out));
        assert_eq!(state_hash_of(&state), full_hash, "cut {cut}: the resumed run's final state");
        // The replica restarted from the snapshot and wrote every attestation again: the log
        // equals the uninterrupted run's, byte for byte.
        assert_eq!(read(&attestations_path(&copy)), full_log, "cut {cut}: attestations");
        assert_success(&verify(&copy), "verify after resuming");
    }
}

// ---------------------------------------------------------------------------------------
// Tampering fails verify (or recovery) naming the right seq
// ---------------------------------------------------------------------------------------

#[test]
fn a_changed_tx_fails_verify_at_its_seq_even_with_the_frame_chain_rehashed() {
    let fx = tamper_fixture();
    let copy = tampered_copy(&fx, "changed");
    let mut forge = Forge::open(&copy);
    let seq = next_place(&forge, 222);
    let mut stx = forge.tx(seq);
    let Op::Place(place) = &mut stx.signed.tx.op else { unreachable!("a place") };
    place.qty.mantissa += 1;
    forge.put(&stx);
    forge.rehash_and_write(seq);
    assert_eq!(placements(&copy).len(), 600, "framing and the xxh3 chain pass");
    assert_failure(&verify(&copy), 1, &[&format!("seq {seq}:"), "bad signature"], "changed tx");
}

#[test]
fn a_changed_tx_re_signed_with_its_users_key_fails_verify_at_the_attestation_covering_it() {
    let fx = tamper_fixture();
    let copy = tampered_copy(&fx, "resigned");
    let mut forge = Forge::open(&copy);
    let seq = next_place(&forge, 222);
    let mut stx = forge.tx(seq);
    let Op::Place(place) = &mut stx.signed.tx.op else { unreachable!("a place") };
    place.price.mantissa += 1;
    stx.signed = sign(stx.signed.tx, &dev_account_key(stx.signed.tx.account));
    forge.put(&stx);
    forge.rehash_and_write(seq);
    // Every signature verifies and the engine accepts the sequence: only the attestations
    // (the BLAKE3 chain they sign) catch it, at the first one at or after the change.
    let attested = seq.div_ceil(50) * 50;
    let range = format!("seqs {}..={attested}", attested - 49);
    let needles = [format!("seq {attested}:"), "journal digest".to_string(), range];
    assert_failure(&verify(&copy), 1, &needles.iter().map(String::as_str).collect::<Vec<_>>(), "re-signed tx");
}

#[test]
fn reordered_txs_fail_verify_at_their_seq_or_at_the_attestation_covering_them() {
    let fx = tamper_fixture();
    // Whole records swapped: each carries its own seq, so the first names the other's.
    let copy = tampered_copy(&fx, "swapped-records");
    let mut forge = Forge::open(&copy);
    let (a, b) = (forge.tx(301), forge.tx(302));
    let (pa, pb) = (forge.records[300], forge.records[301]);
    let (ra, rb) = (RecordBytes::encode(&a).0, RecordBytes::encode(&b).0);
    let at = |p: Placed| (p.frame_offset + FRAME_HEADER_BYTES) as usize;
    forge.bytes[at(pa)..at(pa) + ra.len()].copy_from_slice(&rb);
    forge.bytes[at(pb)..at(pb) + rb.len()].copy_from_slice(&ra);
    forge.rehash_and_write(301);
    assert_failure(&verify(&copy), 1, &["seq 301:", "its record says seq 302"], "swapped records");
    // The signed txs swapped between seqs 301 and 302, seqs and stamps left in place: every
    // signature still verifies; the attestation at 350 names the range.
    let copy = tampered_copy(&fx, "swapped-txs");
    let mut forge = Forge::open(&copy);
    let seq = (301..).find(|&s| forge.tx(s).signed.tx.signer != forge.tx(s + 1).signed.tx.signer).expect("a pair");
    let (mut first, mut second) = (forge.tx(seq), forge.tx(seq + 1));
    std::mem::swap(&mut first.signed, &mut second.signed);
    forge.put(&first);
    forge.put(&second);
    forge.rehash_and_write(seq);
    let attested = (seq + 1).div_ceil(50) * 50;
    let needles = [format!("seq {attested}:"), "journal digest".to_string(), "reordered".to_string()];
    assert_failure(&verify(&copy), 1, &needles.iter().map(String::as_str).collect::<Vec<_>>(), "swapped txs");
}

/// Rewrites the attestation log of `journal` with `edit` applied to the line of `seq`.
fn edit_attestation(journal: &Path, seq: u64, edit: impl Fn(&mut Value)) {
    let path = attestations_path(journal);
    let text = String::from_utf8(read(&path)).expect("UTF-8");
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).expect("JSON");
            if value["seq"].as_u64() == Some(seq) {
                edit(&mut value);
                found = true;
            }
            value.to_string()
        })
        .collect();
    assert!(found, "an attestation at seq {seq}");
    write_lines(&path, &lines);
}

#[test]
fn an_edited_or_forged_attestation_fails_verify_at_its_seq() {
    let fx = tamper_fixture();
    let flip = |field: &'static str| {
        move |value: &mut Value| {
            let text = value[field].as_str().expect("hex").to_string();
            let flipped = match text.strip_prefix('0') {
                Some(rest) => format!("1{rest}"),
                None => format!("0{}", &text[1..]),
            };
            value[field] = Value::from(flipped);
        }
    };
    let copy = tampered_copy(&fx, "digest");
    edit_attestation(&copy, 200, flip("journal_digest"));
    assert_failure(&verify(&copy), 1, &["seq 200:", "line 4", "journal digest"], "edited digest");
    let copy = tampered_copy(&fx, "state");
    edit_attestation(&copy, 250, flip("state_hash"));
    assert_failure(&verify(&copy), 1, &["seq 250:", "state hash", "differs from the replayed state"], "edited state");
    // Re-signed by another key: named as not the genesis attest key.
    let other = dev_role_key(Role::Oracle);
    let copy = tampered_copy(&fx, "other-key");
    edit_attestation(&copy, 300, |value| {
        let attestation = verex_engine::attest::Attestation::from_json(&value.to_string()).expect("parse");
        let forged = verex_engine::attest::Attestation::sign(
            300,
            attestation.journal_digest,
            attestation.state_hash,
            attestation.prev,
            &other,
        );
        *value = serde_json::from_str(&forged.to_json()).expect("JSON");
    });
    assert_failure(&verify(&copy), 1, &["seq 300:", "not the genesis attest key"], "other signer");
    // Signed by another key but claiming the attest key as signer: the signature fails.
    let copy = tampered_copy(&fx, "forged-signature");
    edit_attestation(&copy, 300, |value| {
        let attestation = verex_engine::attest::Attestation::from_json(&value.to_string()).expect("parse");
        let forged = verex_engine::attest::Attestation::sign(
            300,
            attestation.journal_digest,
            attestation.state_hash,
            attestation.prev,
            &other,
        );
        value["signature"] = Value::from(hex(&forged.signature));
    });
    assert_failure(&verify(&copy), 1, &["seq 300:", "bad signature"], "forged signature");
    // `verex attestations` refuses to export it too.
    let out = verex(&["attestations", "--journal", path_str(&copy)]);
    assert_failure(&out, 1, &["seq 300", "bad signature"], "export of a forged attestation");
}

#[test]
fn a_changed_snapshot_byte_is_named_and_skipped_for_an_older_snapshot() {
    let fx = tamper_fixture();
    let ((seq, full_hash), _) = replay(&fx.journal, &[]);
    assert_eq!(seq, 600);
    let copy = tampered_copy(&fx, "snapshot-byte");
    let newest = snapshot_path(&copy, 600);
    let len = std::fs::metadata(&newest).expect("snapshot").len();
    let at = len / 2;
    patch(&newest, at, &[read(&newest)[at as usize] ^ 0x04]);
    let (recovered, err) = replay(&copy, &["--snapshots"]);
    assert_eq!(recovered, (600, full_hash.clone()), "the older snapshot plus the suffix");
    assert!(err.contains(&format!("{} skipped", newest.display())) && err.contains("checksum"), "{err}");
    assert_eq!(snapshot_used(&err), Some(500));
    // Named explicitly, it is an error.
    let out = verex(&["replay", "--journal", path_str(&copy), "--snapshot", path_str(&newest)]);
    assert_failure(&out, 1, &[path_str(&newest), "checksum"], "replay --snapshot of a corrupt file");
    // verify warns about it (snapshots are derived data, not evidence).
    let out = verify(&copy);
    assert_success(&out, "verify: snapshots are derived data");
    assert!(stderr(&out).contains("checksum") && stderr(&out).contains("recovery would skip it"), "{}", stderr(&out));
    assert!(stderr(&out).contains("5 of 6 snapshots match"), "{}", stderr(&out));
    // `run` recovers the same way; its replica, passing seq 600 again, writes a good snapshot.
    let (state, out) = resume(&fx, &copy, &[], "after-flip", &TAMPER_FLAGS);
    assert_success(&out, "run over a corrupt snapshot");
    assert!(stderr(&out).contains("checksum") && snapshot_used(&stderr(&out)) == Some(500), "{}", stderr(&out));
    assert_eq!(state_hash_of(&state), full_hash);
    assert!(stderr(&verify(&copy)).contains("6 of 6 snapshots match"));
}

#[test]
fn a_snapshot_of_another_journal_or_under_another_name_is_named_and_skipped() {
    let fx = tamper_fixture();
    let other = journaled_run(600, 8, ONE_SEGMENT_BYTES, &TAMPER_FLAGS);
    let copy = tampered_copy(&fx, "foreign");
    std::fs::copy(snapshot_path(&other.journal, 600), snapshot_path(&copy, 600)).expect("plant");
    // Same seq, valid file, wrong journal: the header's journal hash gives it away.
    let (recovered, err) = replay(&copy, &["--snapshots"]);
    assert_eq!(recovered, replay(&fx.journal, &[]).0);
    assert!(err.contains("journal hash") && err.contains("belongs to another journal"), "{err}");
    assert_eq!(snapshot_used(&err), Some(500));
    // Its own snapshot renamed to another seq: the header's seq gives it away.
    let copy = tampered_copy(&fx, "renamed");
    std::fs::rename(snapshot_path(&copy, 600), snapshot_path(&copy, 550)).expect("rename");
    let (recovered, err) = replay(&copy, &["--snapshots"]);
    assert_eq!(recovered, replay(&fx.journal, &[]).0);
    assert!(err.contains("header says seq 600, its name seq 550"), "{err}");
    assert_eq!(snapshot_used(&err), Some(500));
}

#[test]
fn attestations_beyond_the_journals_end_fail_verify_and_refuse_a_run() {
    let fx = tamper_fixture();
    let records = placements(&fx.journal);
    let copy = fx.dir.path().join("lost");
    truncated_copy(&fx.journal, &records, 420, &copy, u64::MAX);
    assert_failure(&verify(&copy), 1, &["seq 450:", "beyond the journal's last seq 420"], "lost attested records");
    let (_, out) = resume(&fx, &copy, &fx.lines[420..430], "over-lost", &TAMPER_FLAGS);
    assert_failure(&out, 1, &["attestations.jsonl", "seq 450", "refusing to append"], "run over lost records");
}

#[test]
fn an_attestation_line_removed_from_the_middle_fails_verify_and_refuses_a_run() {
    // The hardening issue: a deleted attestation line in the middle went undetected. Each line
    // now carries the previous line's link, so the line after the gap names it.
    let fx = tamper_fixture();
    let copy = tampered_copy(&fx, "deleted-line");
    let path = attestations_path(&copy);
    let text = String::from_utf8(read(&path)).expect("UTF-8");
    let kept: Vec<String> = text.lines().filter(|line| !line.contains("\"seq\":200,")).map(str::to_string).collect();
    assert_eq!(kept.len() + 1, text.lines().count(), "one line removed");
    write_lines(&path, &kept);
    assert_failure(&verify(&copy), 1, &["seq 250:", "prev does not link", "seq 150", "removed"], "a removed line");
    let out = verex(&["attestations", "--journal", path_str(&copy)]);
    assert_failure(&out, 1, &["seq 250", "prev does not link"], "export of a broken chain");
    let (_, out) = resume(&fx, &copy, &fx.lines[..0], "over-gap", &TAMPER_FLAGS);
    assert_failure(&out, 1, &["attestations.jsonl", "seq 250", "prev does not link"], "run over a broken chain");
}

// ---------------------------------------------------------------------------------------
// Retention, torn attestation lines, attest keys, archiving, export
// ---------------------------------------------------------------------------------------

#[test]
fn retention_keeps_exactly_the_newest_k_snapshots() {
    let flags = ["--snapshot-every", "50", "--keep-snapshots", "2"];
    let fx = journaled_run(400, 5, SMALL_SEGMENT_BYTES, &flags);
    assert_eq!(snapshot_seqs(&fx.journal), [350, 400]);
    let more = workload(500, 5)[400..].to_vec();
    let (_, out) = resume(&fx, &fx.journal, &more, "more", &["--snapshot-every", "50", "--keep-snapshots", "3"]);
    assert_success(&out, "resume");
    assert_eq!(snapshot_seqs(&fx.journal), [400, 450, 500]);
    let out =
        verex(&["run", "--dev", "--input", "/dev/null", "--journal", path_str(&fx.journal), "--keep-snapshots", "0"]);
    assert_failure(&out, 2, &["--keep-snapshots"], "keeping no snapshot");
}

#[test]
fn a_torn_attestation_line_fails_verify_and_is_cut_and_rewritten_by_the_next_run() {
    let fx = tamper_fixture();
    let full_log = read(&attestations_path(&fx.journal));
    // A crash while appending the attestation at 600, before the snapshot at 600 was written.
    let copy = tampered_copy(&fx, "torn");
    let text = String::from_utf8(full_log.clone()).expect("UTF-8");
    let last_line = text.trim_end().rfind('\n').expect("lines") + 1;
    std::fs::write(attestations_path(&copy), &text.as_bytes()[..last_line + 40]).expect("tear");
    std::fs::remove_file(snapshot_path(&copy, 600)).expect("remove snapshot");
    assert_failure(&verify(&copy), 1, &["attestations.jsonl", "line 12 is incomplete"], "torn line");
    let (_, out) = resume(&fx, &copy, &[], "repair", &TAMPER_FLAGS);
    assert_success(&out, "run repairs");
    assert!(stderr(&out).contains("cut a torn last line (line 12, 40 bytes)"), "{}", stderr(&out));
    assert_eq!(read(&attestations_path(&copy)), full_log, "the attestation at 600 written again");
    assert!(snapshot_path(&copy, 600).exists(), "the snapshot at 600 written again");
    assert_success(&verify(&copy), "verify after the repair");
}

#[test]
fn attestations_are_signed_by_the_genesis_attest_key_and_no_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("attest.key");
    let public = stdout(&verex(&["keygen", "--out", path_str(&key)])).trim().to_string();
    let genesis = dir.path().join("genesis.json");
    let dev = |role| hex(dev_role_key(role).verifying_key().as_bytes());
    std::fs::write(
        &genesis,
        format!(
            r#"{{"admin":"{}","custody":"{}","oracle":"{}","attest":"{public}"}}"#,
            dev(Role::Admin),
            dev(Role::Custody),
            dev(Role::Oracle)
        ),
    )
    .expect("genesis");
    // Six signed create_account lines from one user key (the repeats are rejected: still records).
    let unsigned = dir.path().join("unsigned.jsonl");
    write_lines(&unsigned, &vec![r#"{"op":"create_account","account":1}"#.to_string(); 6]);
    let signed = verex(&["sign", "--dev-account", "1", "--input", path_str(&unsigned)]);
    assert_success(&signed, "sign");
    let input = dir.path().join("signed.jsonl");
    std::fs::write(&input, signed.stdout).expect("signed input");
    let journal = dir.path().join("journal");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--limits", "small", "--input", path_str(&input), "--events", "/dev/null"];
        args.extend(["--journal", path_str(&journal), "--genesis", path_str(&genesis), "--attest-every", "2"]);
        args.extend(extra);
        verex(&args)
    };
    let wrong = dir.path().join("wrong.key");
    assert_success(&verex(&["keygen", "--out", path_str(&wrong)]), "keygen");
    let out = run(&["--init", "--attest-key", path_str(&wrong)]);
    assert_failure(&out, 2, &["--attest-key", "not the genesis attest key", &public], "wrong attest key");
    assert!(!journal.exists(), "a refused run creates no journal");
    let out = run(&["--init", "--attest-key", path_str(&key)]);
    assert_success(&out, "run with the attest key");
    let log = read_attestations(&journal).expect("log");
    let seqs: Vec<u64> = log.entries.iter().map(|e| e.attestation.seq).collect();
    assert_eq!(seqs, [2, 4, 6]);
    assert!(log.entries.iter().all(|e| hex(&e.attestation.signer) == public));
    assert_success(&verify(&journal), "verify");
    // Without a key (and without --dev) no attestation is written, and that is said.
    let out = run(&[]);
    assert_success(&out, "run without a key");
    assert!(stderr(&out).contains("no --attest-key"), "{}", stderr(&out));
    assert_eq!(read_attestations(&journal).expect("log").entries.len(), 3);
}

#[test]
fn archiving_moves_old_segments_under_a_link_and_deletes_nothing() {
    let flags = ["--snapshot-every", "200", "--keep-snapshots", "2", "--archive-segments", "--attest-every", "100"];
    let fx = journaled_run(1000, 3, SMALL_SEGMENT_BYTES, &flags);
    let records = placements(&fx.journal);
    assert_eq!(snapshot_seqs(&fx.journal), [800, 1000]);
    let last_segment = records.last().expect("records").segment_index;
    for index in 1..=last_segment {
        let path = segment_path(&fx.journal, index);
        let is_link = std::fs::symlink_metadata(&path).expect("segment name").is_symlink();
        let all_before_oldest = records.iter().filter(|r| r.segment_index == index).all(|r| r.seq <= 800)
            && records.iter().any(|r| r.segment_index == index + 1 && r.seq <= 801);
        assert_eq!(is_link, all_before_oldest, "segment {index}");
        assert_eq!(fx.journal.join("archive").join(format!("{index:020}.seg")).exists(), is_link, "segment {index}");
    }
    assert!(std::fs::symlink_metadata(segment_path(&fx.journal, 1)).expect("segment 1").is_symlink());
    assert_success(&verify(&fx.journal), "verify through the links");
    assert_eq!(replay(&fx.journal, &[]).0 .1, state_hash_of(&fx.state));
    let (_, out) = resume(&fx, &fx.journal, &workload(1100, 3)[1000..], "after-archive", &flags);
    assert_success(&out, "resume on an archived journal");
}

#[test]
fn the_attestation_export_is_the_log_and_snapshot_writes_a_recoverable_file() {
    let fx = tamper_fixture();
    let out = verex(&["attestations", "--journal", path_str(&fx.journal)]);
    assert_success(&out, "attestations");
    assert_eq!(stdout(&out).as_bytes(), read(&attestations_path(&fx.journal)));
    assert!(stderr(&out).contains("12 signed by the genesis attest key (last at seq 600)"), "{}", stderr(&out));
    let file = fx.dir.path().join("end.snap");
    let out = verex(&["snapshot", "--journal", path_str(&fx.journal), "--out", path_str(&file)]);
    assert_success(&out, "snapshot");
    let ((seq, hash), _) = replay(&fx.journal, &[]);
    assert!(stdout(&out).starts_with(&format!("seq {seq} state_hash {hash} bytes ")), "{}", stdout(&out));
    // The replica's snapshot at 600 and this one hold the same state; both recover.
    let (recovered, err) = replay(&fx.journal, &["--snapshot", path_str(&file)]);
    assert_eq!(recovered, (seq, hash.clone()));
    assert!(err.contains("then 0 records"), "{err}");
    let out = verex(&["snapshot", "--journal", path_str(&fx.journal), "--out", path_str(&file), "--snapshots"]);
    assert_success(&out, "snapshot from the newest snapshot");
    for command in ["snapshot", "attestations", "replay", "verify"] {
        let help = stdout(&verex(&[command, "--help"]));
        assert!(help.contains(&format!("Usage: verex {command}")), "{command}");
    }
    let run_help = stdout(&verex(&["run", "--help"]));
    for needle in ["--attest-every", "--attest-key", "--snapshot-every", "--keep-snapshots", "Recovery.", "Replica"] {
        assert!(run_help.contains(needle), "run --help lacks {needle:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The replica as a library: tailing a journal while it is written
// ---------------------------------------------------------------------------------------

#[test]
fn the_replica_tails_a_live_journal_across_segments_attests_and_snapshots_on_time() {
    use verex_engine::{Engine, Genesis, Limits};
    use verex_journal::{Durability, JournalConfig, JournalWriter};
    use verex_tools::replica::{Replica, ReplicaConfig, ReplicaStart};

    let fx = journaled_run(300, 9, ONE_SEGMENT_BYTES, &["--snapshot-every", "0", "--attest-every", "0"]);
    let payloads: Vec<Vec<u8>> = {
        let reader = JournalReader::open(&fx.journal).expect("open");
        reader.iter().map(|r| r.expect("record").payload.to_vec()).collect()
    };
    let live = fx.dir.path().join("live");
    let config = JournalConfig { dir: live.clone(), segment_bytes: SMALL_SEGMENT_BYTES, durability: Durability::Async };
    let (mut writer, _) = JournalWriter::open(config).expect("writer");
    std::fs::copy(fx.journal.join("verex.json"), live.join("verex.json")).expect("manifest");
    let config = ReplicaConfig {
        dir: live.clone(),
        attest_every: 50,
        attest_key: Some(dev_role_key(Role::Attest)),
        snapshot_every: 0,
        snapshot_interval: Some(std::time::Duration::from_millis(1)),
        keep_snapshots: 2,
        archive_segments: false,
        sync_records: true,
        nice: 0,
    };
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("engine");
    let start = ReplicaStart { engine, digest: Default::default(), journal_hash: 0, attestations: Default::default() };
    let replica = Replica::spawn(config, start).expect("spawn");
    let feed = replica.feed();
    for (index, payload) in payloads.iter().enumerate() {
        writer.append(index as u64 + 1, payload).expect("append");
        if (index + 1) % 25 == 0 {
            feed.durable(writer.commit().expect("commit"));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let report = replica.finish(writer.commit().expect("commit")).expect("replica");
    drop(writer);
    assert_eq!(report.seq, 300);
    assert_eq!(report.attestations_written, 6);
    assert!(report.snapshots_written >= 1, "time-based snapshots: {report:?}");
    assert!(placements(&live).last().expect("records").segment_index > 1, "the journal rolled while tailed");
    let snapshots = snapshot_seqs(&live);
    assert!(!snapshots.is_empty() && snapshots.len() <= 2 && snapshots.iter().all(|&s| s <= 300), "{snapshots:?}");
    assert_success(&verify(&live), "verify the live journal and its attestations");
    let (recovered, err) = replay(&live, &["--snapshots"]);
    assert_eq!(recovered, replay(&live, &[]).0);
    assert_eq!(snapshot_used(&err), snapshots.last().copied());
}
