//! End-to-end tests of the journal commands: `run --journal`, `replay`, `inspect`, `verify`,
//! each through the built `verex` binary, plus a crash test that SIGKILLs real runs.
//!
//! Workloads are generated here (listings, accounts, deposits, then orders from a fixed
//! xorshift), so every test knows exactly which lines produced which records.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::dev_genesis_file;
use serde_json::Value;
use verex_engine::record::access_record;
use verex_engine::signing::{hex, verify};
use verex_engine::text::tx_json::{parse_tx_line, signed_from_line};
use verex_journal::{chain_hash, frame_len, padded_len, JournalReader, FRAME_HEADER_BYTES, MIN_SEGMENT_BYTES};

const VEREX: &str = env!("CARGO_BIN_EXE_verex");
/// Small segments, so that workloads of a few hundred records span several files.
const SMALL_SEGMENT_BYTES: u64 = MIN_SEGMENT_BYTES;

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

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_text(path: &Path) -> String {
    String::from_utf8(read(path)).expect("UTF-8 file")
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write input");
}

/// The state hash a state dump names.
fn state_hash_of(state: &Path) -> String {
    let value: Value = serde_json::from_str(&read_text(state)).expect("state is JSON");
    value["state_hash"].as_str().expect("state_hash").to_string()
}

/// `verex run --dev --limits small` on `input`, with `extra` arguments (a journal, say).
/// Returns the events and state files.
fn run_dev(dir: &Path, input: &Path, tag: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let events = dir.join(format!("{tag}.events.jsonl"));
    let state = dir.join(format!("{tag}.state.json"));
    let mut args = vec!["run", "--dev", "--limits", "small", "--input", path_str(input), "--events", path_str(&events)];
    args.extend(["--state", path_str(&state)]);
    args.extend(extra);
    let out = verex(&args);
    assert_success(&out, &format!("run {tag}"));
    (events, state)
}

/// `verex replay --journal DIR`: the `(seq, state hash)` it prints.
fn replay(journal: &Path, extra: &[&str]) -> (u64, String) {
    let mut args = vec!["replay", "--journal", path_str(journal)];
    args.extend(extra);
    let out = verex(&args);
    assert_success(&out, "replay");
    parse_replay_line(&stdout(&out))
}

fn parse_replay_line(text: &str) -> (u64, String) {
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(
        words.len() == 4 && words[0] == "seq" && words[2] == "state_hash",
        "replay prints `seq N state_hash H`: {text:?}"
    );
    (words[1].parse().expect("seq"), words[3].to_string())
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

/// `units` scaled down by `10^decimals`, as a normalised decimal string.
fn decimal(units: u64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    let (int, frac) = (units / scale, units % scale);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = decimals as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// Accounts created before the order flow starts.
const INITIAL_ACCOUNTS: u64 = 20;

/// A `--dev` workload of exactly `lines` lines: two assets and a spot market, accounts with
/// deposits, then orders, cancels, market orders and the occasional new account, from a
/// fixed xorshift. Nonces are left to the dev signer, so resumed runs must continue them.
fn workload(lines: usize, seed: u64) -> Vec<String> {
    let mut out = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-USDC","kind":"spot","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"0.0002","taker_fee":"0.0005"}"#.to_string(),
    ];
    let deposits = |account: u64| {
        [
            format!(r#"{{"op":"deposit","account":{account},"asset":"USDC","amount":"1000000"}}"#),
            format!(r#"{{"op":"deposit","account":{account},"asset":"BTC","amount":"100"}}"#),
        ]
    };
    for account in 1..=INITIAL_ACCOUNTS {
        out.push(r#"{"op":"create_account"}"#.to_string());
        out.extend(deposits(account));
    }
    let mut rng = XorShift(seed | 1);
    let mut accounts = INITIAL_ACCOUNTS;
    let mut placed = 0u64;
    while out.len() < lines {
        let account = 1 + rng.below(accounts);
        let side = if rng.below(2) == 0 { "buy" } else { "sell" };
        let line = match rng.below(20) {
            0..=12 => {
                placed += 1;
                let price = decimal(9_500 + 5 * rng.below(200), 2);
                let qty = decimal(10 * (1 + rng.below(100)), 4);
                let tif = ["gtc", "gtc", "gtc", "ioc", "post_only"][rng.below(5) as usize];
                format!(
                    r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"limit","price":"{price}","qty":"{qty}","tif":"{tif}"}}"#
                )
            }
            13 | 14 => {
                let qty = decimal(10 * (1 + rng.below(50)), 4);
                format!(
                    r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"market","qty":"{qty}"}}"#
                )
            }
            15..=17 => {
                let order_id = 1 + rng.below(placed.max(1));
                format!(r#"{{"op":"cancel","account":{account},"market":"BTC-USDC","order_id":{order_id}}}"#)
            }
            18 => format!(r#"{{"op":"cancel_all","account":{account},"market":"BTC-USDC"}}"#),
            _ => {
                accounts += 1;
                out.push(r#"{"op":"create_account"}"#.to_string());
                deposits(accounts)[0].clone()
            }
        };
        out.push(line);
    }
    out.truncate(lines);
    out
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

/// Copies a journal directory (segments and manifest).
fn copy_journal(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("list journal") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
    }
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).expect("open segment");
    file.write_all_at(bytes, offset).expect("patch segment");
}

fn byte_at(path: &Path, offset: u64) -> u8 {
    read(path)[offset as usize]
}

/// What a crash in the middle of appending the record after `last` leaves: that record's
/// frame header and the first half of its payload (the last record's payload, re-used), per
/// the documented frame format, written after `last`; its segment index and hash never landed.
/// It was never committed, so it lies beyond the commit mark: a torn tail. Returns its offset.
fn write_torn_next_record(journal: &Path, last: &Placed) -> u64 {
    let segment = segment_path(journal, last.segment_index);
    let bytes = read(&segment);
    let at = last.frame_offset + frame_len(last.payload_len);
    let keep = (FRAME_HEADER_BYTES + last.payload_len / 2) as usize;
    let mut torn = bytes[last.frame_offset as usize..last.frame_offset as usize + keep].to_vec();
    torn[8..16].copy_from_slice(&(last.seq + 1).to_le_bytes());
    assert!(bytes[at as usize..at as usize + keep].iter().all(|&b| b == 0), "zeroed space after the last record");
    patch(&segment, at, &torn);
    at
}

/// Rewrites the hash the commit mark's newest copy commits, as a forger who knows the
/// documented format would (`verex_journal::mark`: copies at offsets 0 and 4096, generation at
/// 16, committed hash at 32, checksum `xxh3_64(bytes 0..56)` at 56, which is `chain_hash` of
/// the copy's first word and the rest).
fn forge_commit_mark(journal: &Path, committed_hash: u64) {
    let path = journal.join("commit.mark");
    let mut bytes = read(&path);
    let word = |bytes: &[u8], at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let newest = if word(&bytes, 16) > word(&bytes, 4096 + 16) { 0 } else { 4096 };
    bytes[newest + 32..newest + 40].copy_from_slice(&committed_hash.to_le_bytes());
    let checksum = chain_hash(word(&bytes, newest), &bytes[newest + 8..newest + 56]);
    bytes[newest + 56..newest + 64].copy_from_slice(&checksum.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write the forged mark");
}

/// A journal of `lines` workload lines written by `run`, with its input, events and state.
struct Fixture {
    dir: tempfile::TempDir,
    journal: PathBuf,
    events: PathBuf,
    state: PathBuf,
}

fn journaled_run(lines: usize, segment_bytes: u64) -> Fixture {
    let dir = tempdir();
    let input = dir.path().join("input.jsonl");
    write_lines(&input, &workload(lines, 7));
    let journal = dir.path().join("journal");
    let segment = segment_bytes.to_string();
    let (events, state) =
        run_dev(dir.path(), &input, "run", &["--journal", path_str(&journal), "--segment-bytes", &segment]);
    Fixture { dir, journal, events, state }
}

// ---------------------------------------------------------------------------------------
// run --journal, replay, inspect
// ---------------------------------------------------------------------------------------

#[test]
fn replay_of_a_run_journal_gives_the_runs_state_dump_events_and_hash() {
    let fx = journaled_run(400, SMALL_SEGMENT_BYTES);
    assert!(placements(&fx.journal).len() == 400, "one record per line");
    assert!(segment_path(&fx.journal, 2).exists(), "the journal rolled over several segments");
    let state = fx.dir.path().join("replay.state.json");
    let events = fx.dir.path().join("replay.events.jsonl");
    let (seq, hash) = replay(&fx.journal, &["--state", path_str(&state), "--events", path_str(&events)]);
    assert_eq!(seq, 400);
    assert_eq!(hash, state_hash_of(&fx.state));
    assert_eq!(read(&state), read(&fx.state), "replay's state dump is run's, byte for byte");
    assert_eq!(read(&events), read(&fx.events), "replay re-derives run's events, byte for byte");
    // The journal changes nothing about what a run produces.
    let input = fx.dir.path().join("input.jsonl");
    let (plain_events, plain_state) = run_dev(fx.dir.path(), &input, "plain", &[]);
    assert_eq!(read(&plain_events), read(&fx.events));
    assert_eq!(read(&plain_state), read(&fx.state));
}

#[test]
fn every_durability_mode_journals_the_same_records() {
    let dir = tempdir();
    let input = dir.path().join("input.jsonl");
    write_lines(&input, &workload(300, 3));
    let mut outputs = Vec::new();
    for mode in ["sync", "batch", "async"] {
        let journal = dir.path().join(mode);
        let (events, state) =
            run_dev(dir.path(), &input, mode, &["--journal", path_str(&journal), "--durability", mode]);
        let inspected = verex(&["inspect", "--journal", path_str(&journal)]);
        assert_success(&inspected, "inspect");
        outputs.push((read(&events), read(&state), stdout(&inspected)));
        assert_eq!(replay(&journal, &[]).1, state_hash_of(&state), "{mode}");
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]), "modes differ in events, state or records");
}

#[test]
fn inspect_lines_carry_the_journaled_signatures_and_rerun_to_the_same_journal() {
    let fx = journaled_run(300, SMALL_SEGMENT_BYTES);
    let out = verex(&["inspect", "--journal", path_str(&fx.journal)]);
    assert_success(&out, "inspect");
    let text = stdout(&out);
    let mut stripped = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        let map = value.as_object_mut().expect("object");
        assert_eq!(map.remove("seq"), Some(Value::from(index as u64 + 1)), "seqs run from 1: {line}");
        assert!(map.remove("ts").is_some(), "the stamp is shown: {line}");
        let rest = value.to_string();
        let parsed = parse_tx_line(&rest).unwrap_or_else(|e| panic!("inspect line does not parse: {e}: {rest}"));
        let signed = signed_from_line(&parsed).expect("signed line");
        verify(&signed).unwrap_or_else(|e| panic!("signature of seq {}: {e}", index + 1));
        assert_eq!(value["signature"].as_str(), Some(hex(&signed.signature).as_str()));
        stripped.push(rest);
    }
    assert_eq!(stripped.len(), 300);
    // Without --dev, the lines run as they are (without their stamps: a signed line may not
    // carry one) against the same operator keys, on the deterministic clock: the same
    // signatures and stamps, so the same records, the same journal listing and the same state.
    let input = fx.dir.path().join("inspected.jsonl");
    write_lines(&input, &stripped);
    let rerun = fx.dir.path().join("rerun");
    let state = fx.dir.path().join("rerun.state.json");
    let genesis = dev_genesis_file(fx.dir.path());
    let out = verex(&[
        "run",
        "--init",
        "--genesis",
        path_str(&genesis),
        "--clock",
        "deterministic",
        "--limits",
        "small",
        "--input",
        path_str(&input),
        "--journal",
        path_str(&rerun),
        "--events",
        path_str(&fx.dir.path().join("rerun.events.jsonl")),
        "--state",
        path_str(&state),
    ]);
    assert_success(&out, "signed rerun");
    assert_eq!(read(&state), read(&fx.state));
    let again = verex(&["inspect", "--journal", path_str(&rerun)]);
    assert_eq!(stdout(&again), text, "the rerun journaled the same records");
    // --from and --count select a window.
    let window = verex(&["inspect", "--journal", path_str(&fx.journal), "--from", "5", "--count", "3"]);
    assert_success(&window, "inspect window");
    let expected: Vec<&str> = text.lines().skip(4).take(3).collect();
    assert_eq!(stdout(&window).lines().collect::<Vec<_>>(), expected);
    let beyond = verex(&["inspect", "--journal", path_str(&fx.journal), "--from", "999"]);
    assert_failure(&beyond, 2, &["--from", "seq 999"], "inspect beyond the end");
}

#[test]
fn resuming_on_a_journal_equals_one_uninterrupted_run() {
    let dir = tempdir();
    let lines = workload(500, 11);
    // The split falls in the order flow, after some of its create_account lines, so both the
    // nonces and the account numbering of the dev signer must continue across it.
    let (first, second) = lines.split_at(230);
    assert!(second.iter().any(|l| l.contains("create_account")), "part B creates accounts too");
    let (input_a, input_b, input_all) =
        (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"), dir.path().join("all.jsonl"));
    write_lines(&input_a, first);
    write_lines(&input_b, second);
    write_lines(&input_all, &lines);
    let journal = dir.path().join("split");
    let segment = SMALL_SEGMENT_BYTES.to_string();
    let flags = ["--journal", path_str(&journal), "--segment-bytes", &segment];
    let (events_a, _) = run_dev(dir.path(), &input_a, "a", &flags);
    let (events_b, state_b) = run_dev(dir.path(), &input_b, "b", &flags);
    let whole = dir.path().join("whole");
    let (events_all, state_all) = run_dev(dir.path(), &input_all, "all", &["--journal", path_str(&whole)]);
    let mut joined = read(&events_a);
    joined.extend(read(&events_b));
    assert_eq!(joined, read(&events_all), "A's events then B's are the whole run's");
    assert_eq!(read(&state_b), read(&state_all), "same final state dump and hash");
    let inspect = |j: &Path| stdout(&verex(&["inspect", "--journal", path_str(j)]));
    assert_eq!(inspect(&journal), inspect(&whole), "same records, nonces and stamps");
    // A segment size the journal refuses is a bad argument.
    let odd = dir.path().join("odd");
    let out =
        verex(&["run", "--dev", "--input", path_str(&input_a), "--journal", path_str(&odd), "--segment-bytes", "1000"]);
    assert_failure(&out, 2, &["--segment-bytes", "1000"], "run with a bad segment size");
    // Flags that disagree with the journal's manifest are refused before anything runs.
    let out = verex(&["run", "--limits", "production", "--input", path_str(&input_b), "--journal", path_str(&journal)]);
    assert_failure(&out, 2, &["--limits", "verex.json"], "run with other limits");
}

#[test]
fn resume_reports_and_cuts_a_torn_tail_then_continues_after_the_last_whole_record() {
    let fx = journaled_run(200, SMALL_SEGMENT_BYTES);
    let last = *placements(&fx.journal).last().expect("records");
    // A crash in the middle of the next append (seq 201): half of it landed, its hash never
    // did. (A damaged committed record is refused instead: see
    // run_refuses_a_flipped_bit_in_the_last_committed_record_instead_of_cutting_it.)
    let torn_at = write_torn_next_record(&fx.journal, &last);
    assert_eq!(replay(&fx.journal, &[]).0, 200, "replay stops before the torn record");
    let input = fx.dir.path().join("more.jsonl");
    write_lines(&input, &[r#"{"op":"create_account"}"#.to_string()]);
    let out = verex(&["run", "--dev", "--input", path_str(&input), "--journal", path_str(&fx.journal)]);
    assert_success(&out, "resume over a torn tail");
    let err = stderr(&out);
    assert!(err.contains("torn tail") && err.contains("seq 201"), "the cut is reported: {err}");
    assert!(err.contains(&format!("offset {torn_at}")), "{err}");
    assert!(err.contains("continuing at seq 201"), "{err}");
    assert_eq!(replay(&fx.journal, &[]).0, 201);
    assert_success(&verex(&["verify", "--journal", path_str(&fx.journal)]), "verify after the cut");
}

#[test]
fn run_on_a_corrupt_journal_names_the_seq_and_file_and_exits_1() {
    let fx = journaled_run(400, SMALL_SEGMENT_BYTES);
    let victim = placements(&fx.journal)[100];
    let segment = segment_path(&fx.journal, victim.segment_index);
    let at = victim.frame_offset + FRAME_HEADER_BYTES + 40;
    patch(&segment, at, &[byte_at(&segment, at) ^ 0x01]);
    let input = fx.dir.path().join("input.jsonl");
    let out = verex(&["run", "--dev", "--input", path_str(&input), "--journal", path_str(&fx.journal)]);
    let file_name = segment.file_name().expect("name").to_str().expect("UTF-8");
    assert_failure(&out, 1, &["corrupt", &format!("seq {}", victim.seq), file_name], "run on a corrupt journal");
}

// ---------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------

#[test]
fn verify_passes_a_good_journal_with_a_summary() {
    let fx = journaled_run(400, SMALL_SEGMENT_BYTES);
    let out = verex(&["verify", "--journal", path_str(&fx.journal)]);
    assert_success(&out, "verify");
    let err = stderr(&out);
    assert!(err.contains("OK") && err.contains("400 records"), "{err}");
    assert!(err.contains(&state_hash_of(&fx.state)), "the summary names the state hash: {err}");
}

/// Flips one payload byte of the record at `index` in a copy; verify must fail naming its
/// seq and every one of `needles`.
fn flip_and_verify(fx: &Fixture, index: usize, tag: &str, needles: &[&str]) -> Placed {
    let copy = fx.dir.path().join(tag);
    copy_journal(&fx.journal, &copy);
    let victim = placements(&copy)[index];
    let segment = segment_path(&copy, victim.segment_index);
    let at = victim.frame_offset + FRAME_HEADER_BYTES + victim.payload_len / 2;
    patch(&segment, at, &[byte_at(&segment, at) ^ 0x10]);
    let out = verex(&["verify", "--journal", path_str(&copy)]);
    let seq = format!("seq {}", victim.seq);
    let mut all = vec!["corrupt", seq.as_str()];
    all.extend(needles);
    assert_failure(&out, 1, &all, tag);
    victim
}

fn segment_name(index: u64) -> String {
    format!("{index:020}.seg")
}

#[test]
fn verify_names_the_seq_of_a_flipped_payload_byte() {
    let fx = journaled_run(400, SMALL_SEGMENT_BYTES);
    let records = placements(&fx.journal);
    let last_segment = records.last().expect("records").segment_index;
    assert!(records[100].segment_index < last_segment, "the middle record is in an earlier segment");
    // Damage in a segment that is not the last is named in that segment, at the offset of the
    // record that fails, never as a broken chain at the next segment's header.
    let middle = records[100];
    let (file, offset) = (segment_name(middle.segment_index), format!("offset {}", middle.frame_offset));
    flip_and_verify(&fx, 100, "middle", &[&file, &offset, "hash mismatch"]);
    let boundary = records.iter().position(|r| r.segment_index == 2).expect("segment 2") - 1;
    let (file, offset) = (segment_name(1), format!("offset {}", records[boundary].frame_offset));
    flip_and_verify(&fx, boundary, "boundary", &[&file, &offset, "hash mismatch"]);
    // In the last segment the reader cannot tell damage from the end of the data; verify
    // still must (records follow the damaged one).
    let in_last = records.iter().position(|r| r.segment_index == last_segment).expect("last segment") + 5;
    assert!(in_last + 5 < records.len());
    flip_and_verify(&fx, in_last, "last-segment", &[&segment_name(last_segment), "hash mismatch", "follows"]);
}

#[test]
fn verify_names_a_forged_record_with_a_recomputed_hash_chain_as_a_bad_signature() {
    // One segment, so only the frames after the forged one need re-hashing.
    let fx = journaled_run(300, 1 << 20);
    let records = placements(&fx.journal);
    assert!(records.iter().all(|r| r.segment_index == 1));
    let victim = records[120];
    let segment = segment_path(&fx.journal, 1);
    let mut bytes = read(&segment);
    // Raise the nonce inside the signed tx: the archive stays valid, the engine would accept
    // it (a higher nonce), and only the signature no longer covers the bytes.
    let payload_at = (victim.frame_offset + FRAME_HEADER_BYTES) as usize;
    let nonce_at = {
        let payload = &bytes[payload_at..payload_at + victim.payload_len as usize];
        let mut aligned = vec![0u128; payload.len() / 16];
        // SAFETY: u128 has no padding and the lengths match.
        let view = unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), payload.len()) };
        view.copy_from_slice(payload);
        let archived = access_record(view).expect("valid record");
        std::ptr::from_ref(&archived.signed.tx.nonce) as usize - view.as_ptr() as usize
    };
    bytes[payload_at + nonce_at + 6] ^= 0x01;
    // Re-hash the chain from the forged frame on, as a forger who knows the format would.
    let mut prev = records[119].hash;
    for record in &records[120..] {
        let off = record.frame_offset as usize;
        let hashed = (FRAME_HEADER_BYTES + padded_len(record.payload_len) + 8) as usize;
        assert_eq!(frame_len(record.payload_len) as usize, hashed + 8);
        prev = chain_hash(prev, &bytes[off..off + hashed]);
        bytes[off + hashed..off + hashed + 8].copy_from_slice(&prev.to_le_bytes());
    }
    std::fs::write(&segment, &bytes).expect("write forged segment");
    // The commit mark holds the hash committed for seq 300: a rewritten chain does not end
    // there, and every command refuses the journal, naming the seq and file.
    let out = verex(&["verify", "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 1, &["corrupt", "seq 300", &segment_name(1), "rewritten after the commit"], "chain only");
    // The mark is no cryptographic defence either: its checksum is xxh3 too, and a forger
    // rewrites it as well.
    forge_commit_mark(&fx.journal, prev);
    assert_eq!(placements(&fx.journal).len(), 300, "framing, the chain and the commit mark pass");
    let out = verex(&["verify", "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 1, &[&format!("seq {}", victim.seq), "bad signature"], "forged record");
    // replay checks every signature too: a journal is evidence only if every record verifies,
    // and the rolling hash alone is no defence.
    let out = verex(&["replay", "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 1, &[&format!("seq {}", victim.seq), "bad signature"], "replay of a forged record");
}

#[test]
fn verify_fails_on_a_truncated_last_record_naming_its_seq() {
    let fx = journaled_run(200, SMALL_SEGMENT_BYTES);
    let last = *placements(&fx.journal).last().expect("records");
    let segment = segment_path(&fx.journal, last.segment_index);
    let pristine = read(&segment);
    // The file ends in the middle of a record that was being appended (seq 201, never
    // committed): a torn tail.
    let torn_at = write_torn_next_record(&fx.journal, &last);
    let file = std::fs::OpenOptions::new().write(true).open(&segment).expect("open");
    file.set_len(torn_at + 40).expect("truncate");
    drop(file);
    let out = verex(&["verify", "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 1, &["seq 201", "torn tail", "200 records before it verify"], "truncated last record");
    // replay reads the verified prefix and warns; run cuts the tail and carries on.
    let replayed = verex(&["replay", "--journal", path_str(&fx.journal)]);
    assert_success(&replayed, "replay of a torn journal");
    assert_eq!(parse_replay_line(&stdout(&replayed)).0, 200);
    assert!(stderr(&replayed).contains("torn tail"), "{}", stderr(&replayed));
    // The file ending in the middle of the last *committed* record is damage, not a torn tail.
    std::fs::write(&segment, &pristine).expect("restore");
    let file = std::fs::OpenOptions::new().write(true).open(&segment).expect("open");
    file.set_len(last.frame_offset + 100).expect("truncate");
    drop(file);
    let offset = format!("offset {}", last.frame_offset);
    for command in ["verify", "replay"] {
        let out = verex(&[command, "--journal", path_str(&fx.journal)]);
        assert_failure(&out, 1, &["corrupt", "seq 200", "commit mark", &offset], command);
    }
}

#[test]
fn replay_verify_and_inspect_refuse_what_is_not_a_run_journal() {
    let dir = tempdir();
    let missing = dir.path().join("missing");
    for command in ["replay", "verify", "inspect"] {
        let out = verex(&[command, "--journal", path_str(&missing)]);
        assert_failure(&out, 2, &["missing", "not a journal directory"], command);
    }
    let fx = journaled_run(20, SMALL_SEGMENT_BYTES);
    std::fs::remove_file(fx.journal.join("verex.json")).expect("remove manifest");
    let out = verex(&["replay", "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 2, &["verex.json", "genesis"], "replay without a manifest");
}

#[test]
fn help_documents_durability_modes_and_the_journal_commands() {
    let run_help = stdout(&verex(&["run", "--help"]));
    for needle in ["--durability", "sync", "batch", "async", "Loss window", "power loss", "kill -9"] {
        assert!(run_help.contains(needle), "run --help lacks {needle:?}");
    }
    for command in ["replay", "verify", "inspect"] {
        let out = verex(&[command, "--help"]);
        assert_success(&out, command);
        assert!(stdout(&out).contains(&format!("Usage: verex {command}")), "{command}");
    }
    assert!(stdout(&verex(&["verify", "--help"])).contains("torn tail"), "verify documents its torn-tail choice");
}

// ---------------------------------------------------------------------------------------
// Crash test: SIGKILL real runs, recover, compare with direct runs of the same prefix
// ---------------------------------------------------------------------------------------

/// Lines of the crash workload.
const CRASH_LINES: usize = 3_000;

fn crash_kills() -> u64 {
    std::env::var("VEREX_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)
}

/// The replica's flags of the crash runs: kills land in attestation appends and snapshot
/// writes too, and resumed runs recover from snapshots.
const CRASH_REPLICA_FLAGS: [&str; 6] = ["--attest-every", "100", "--snapshot-every", "500", "--keep-snapshots", "2"];

fn spawn_journaled_run(input: &Path, journal: &Path, events: &Path) -> Child {
    Command::new(VEREX)
        .args(["run", "--dev", "--limits", "small", "--durability", "batch", "--segment-bytes"])
        .arg(SMALL_SEGMENT_BYTES.to_string())
        .args(CRASH_REPLICA_FLAGS)
        .args(["--input", path_str(input), "--journal", path_str(journal), "--events", path_str(events)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verex run")
}

/// The complete lines of an events file a killed run left (a last line may be cut short).
fn complete_event_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete.lines().map(str::to_string).collect()
}

fn seq_of(event: &str) -> u64 {
    let value: Value = serde_json::from_str(event).unwrap_or_else(|e| panic!("event not JSON: {event}: {e}"));
    value["seq"].as_u64().unwrap_or_else(|| panic!("event without seq: {event}"))
}

/// The seq a journal recovers to, and its state hash (seq 0 if the run died before the
/// journal had its manifest, i.e. before any record).
fn recovered(journal: &Path) -> (u64, Option<String>) {
    if !journal.join("verex.json").exists() {
        let segments = std::fs::read_dir(journal).map_or(0, |d| {
            d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "seg"))).count()
        });
        assert_eq!(segments, 0, "no segment is written before the manifest");
        return (0, None);
    }
    let (seq, hash) = replay(journal, &[]);
    (seq, Some(hash))
}

#[test]
fn sigkilled_runs_recover_to_a_prefix_that_equals_running_that_prefix_directly() {
    let dir = tempdir();
    let lines = workload(CRASH_LINES, 2024);
    let input = dir.path().join("input.jsonl");
    write_lines(&input, &lines);
    // The uninterrupted reference, timed to spread the kills over a run's length.
    let started = Instant::now();
    let reference = dir.path().join("reference");
    let mut flags = vec!["--journal", path_str(&reference), "--segment-bytes"];
    let segment = SMALL_SEGMENT_BYTES.to_string();
    flags.push(&segment);
    flags.extend(CRASH_REPLICA_FLAGS);
    let (full_events, full_state) = run_dev(dir.path(), &input, "full", &flags);
    let reference_log = read_text(&reference.join("attestations.jsonl"));
    assert_eq!(reference_log.lines().count(), CRASH_LINES / 100);
    let run_millis = started.elapsed().as_millis().max(20) as u64;
    let full_events: Vec<String> = read_text(&full_events).lines().map(str::to_string).collect();
    let full_hash = state_hash_of(&full_state);

    let mut rng = XorShift(0x5eed_cafe);
    let target = crash_kills();
    let mut kills = 0u64;
    let mut prefixes = Vec::new();
    let mut round = 0;
    let mut torn_tails = 0u64;
    while kills < target {
        round += 1;
        let journal = dir.path().join(format!("round{round}"));
        let mut durable = 0u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let rest = dir.path().join(format!("round{round}.{attempt}.jsonl"));
            write_lines(&rest, &lines[durable as usize..]);
            let events = dir.path().join(format!("round{round}.{attempt}.events.jsonl"));
            let mut child = spawn_journaled_run(&rest, &journal, &events);
            // After the target is reached, the last run of the round goes uninterrupted.
            if kills < target {
                std::thread::sleep(Duration::from_millis(1 + rng.below(run_millis * 3 / 4)));
            }
            let finished = if kills < target { child.try_wait().expect("poll run").is_some() } else { true };
            if !finished {
                child.kill().expect("SIGKILL");
                kills += 1;
            }
            let status = child.wait_with_output().expect("wait for run");
            torn_tails += u64::from(String::from_utf8_lossy(&status.stderr).contains("torn tail"));
            let (seq, hash) = recovered(&journal);
            assert!(seq >= durable, "round {round}.{attempt}: recovered seq {seq} lost records before {durable}");
            // Events are released only after their records are durable: none beyond the
            // recovered seq, and the ones written are exactly the uninterrupted run's.
            let written = complete_event_lines(&events);
            let first = full_events.iter().position(|e| seq_of(e) > durable).unwrap_or(full_events.len());
            assert_eq!(
                written[..],
                full_events[first..first + written.len()],
                "round {round}.{attempt}: events differ"
            );
            if let Some(beyond) = written.iter().find(|e| seq_of(e) > seq) {
                panic!("round {round}.{attempt}: event released for seq beyond the recovered {seq}: {beyond}");
            }
            if finished {
                assert!(status.status.success(), "run failed: {}", String::from_utf8_lossy(&status.stderr));
                assert_eq!(seq, CRASH_LINES as u64);
                assert_eq!(hash.as_deref(), Some(full_hash.as_str()), "round {round}: the resumed run's final state");
                break;
            }
            prefixes.push((seq, hash));
            durable = seq;
            if durable == CRASH_LINES as u64 {
                break;
            }
        }
        // A round can end with a killed run whose records were all journaled but whose replica
        // had not reached the last attestations: the next run (here with no input) catches
        // up. Then every attestation the killed replicas wrote (and the resumed ones rewrote)
        // is the uninterrupted run's.
        let catch_up = spawn_journaled_run(Path::new("/dev/null"), &journal, &dir.path().join("catch-up.jsonl"));
        assert!(catch_up.wait_with_output().expect("catch-up run").status.success());
        let log = read_text(&journal.join("attestations.jsonl"));
        assert_eq!(log, reference_log, "round {round}: attestations");
        // The whole journal, however often it was cut, replays to the uninterrupted events.
        let replayed_events = dir.path().join(format!("round{round}.replayed.jsonl"));
        let (seq, hash) = replay(&journal, &["--events", path_str(&replayed_events)]);
        assert_eq!((seq, hash.as_str()), (CRASH_LINES as u64, full_hash.as_str()));
        assert_eq!(read_text(&replayed_events).lines().collect::<Vec<_>>(), full_events);
        assert_success(&verex(&["verify", "--journal", path_str(&journal)]), "verify after crashes");
    }
    let seqs: Vec<u64> = prefixes.iter().map(|(seq, _)| *seq).collect();
    eprintln!(
        "crash test: {kills} kills over {round} rounds (a run takes ~{run_millis} ms), recovered seqs {seqs:?}, \
         {torn_tails} torn tails cut on resume"
    );
    // Each recovered prefix equals running that many lines directly, without a journal.
    prefixes.sort();
    prefixes.dedup();
    for (seq, hash) in prefixes {
        let Some(hash) = hash else { continue };
        let prefix = dir.path().join(format!("prefix{seq}.jsonl"));
        write_lines(&prefix, &lines[..seq as usize]);
        let (_, state) = run_dev(dir.path(), &prefix, &format!("prefix{seq}"), &[]);
        assert_eq!(state_hash_of(&state), hash, "prefix of {seq} lines");
    }
    assert!(kills >= target);
}

// ---------------------------------------------------------------------------------------
// The commit mark: a committed record is never cut, a missing segment is found, damage is
// named in the file that holds it, with its offset
// ---------------------------------------------------------------------------------------

/// `verex COMMAND --journal DIR` for each read-only command (`snapshot` writes beside it).
fn read_only_commands(journal: &Path, scratch: &Path) -> Vec<(&'static str, Output)> {
    let snapshot = scratch.join("damaged.snap");
    ["verify", "replay", "inspect", "snapshot"]
        .into_iter()
        .map(|command| {
            let mut args = vec![command, "--journal", path_str(journal)];
            if command == "snapshot" {
                args.extend(["--out", path_str(&snapshot)]);
            }
            (command, verex(&args))
        })
        .collect()
}

#[test]
fn run_refuses_a_flipped_bit_in_the_last_committed_record_instead_of_cutting_it() {
    let fx = journaled_run(200, SMALL_SEGMENT_BYTES);
    let last = *placements(&fx.journal).last().expect("records");
    let segment = segment_path(&fx.journal, last.segment_index);
    // One payload bit of the last record, its stored hash intact: it was committed and its
    // events were released, so it is damage, not a torn write.
    let at = last.frame_offset + FRAME_HEADER_BYTES + last.payload_len / 2;
    patch(&segment, at, &[byte_at(&segment, at) ^ 0x04]);
    let damaged = read(&segment);
    let name = segment_name(last.segment_index);
    let offset = format!("offset {}", last.frame_offset);
    let needles = ["corrupt", "seq 200", name.as_str(), offset.as_str()];
    let input = fx.dir.path().join("more.jsonl");
    write_lines(&input, &[r#"{"op":"create_account"}"#.to_string()]);
    let out = verex(&["run", "--dev", "--input", path_str(&input), "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 1, &needles, "run over a damaged committed record");
    assert!(!stderr(&out).contains("torn tail"), "run: {}", stderr(&out));
    assert_eq!(read(&segment), damaged, "nothing was cut");
    for (command, out) in read_only_commands(&fx.journal, fx.dir.path()) {
        assert_failure(&out, 1, &needles, command);
        assert!(!stderr(&out).contains("torn tail"), "{command}: {}", stderr(&out));
    }
}

#[test]
fn a_deleted_newest_segment_is_detected_by_run_verify_replay_inspect_and_snapshot() {
    let fx = journaled_run(400, SMALL_SEGMENT_BYTES);
    let newest = placements(&fx.journal).last().expect("records").segment_index;
    assert!(newest >= 3, "the journal rolled");
    std::fs::remove_file(segment_path(&fx.journal, newest)).expect("rm the newest segment");
    let name = segment_name(newest);
    for (command, out) in read_only_commands(&fx.journal, fx.dir.path()) {
        assert_failure(&out, 1, &["missing", &name], command);
    }
    let input = fx.dir.path().join("more.jsonl");
    write_lines(&input, &[r#"{"op":"create_account"}"#.to_string()]);
    let out = verex(&["run", "--dev", "--input", path_str(&input), "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 1, &["missing", &name], "run");
    assert!(!segment_path(&fx.journal, newest).exists(), "run did not recreate it");
}

/// Lines that fill more than 50 segments of 64 KiB.
const FIFTY_SEGMENT_LINES: usize = 12_000;

#[test]
fn a_byte_flipped_in_segment_50_is_named_in_segment_50_with_its_offset_by_every_command() {
    let fx = journaled_run(FIFTY_SEGMENT_LINES, 65536);
    let records = placements(&fx.journal);
    assert!(records.last().expect("records").segment_index > 50, "segment 50 is not the last");
    let at = 30_000u64;
    let victim = *records
        .iter()
        .find(|r| r.segment_index == 50 && r.frame_offset <= at && at < r.frame_offset + frame_len(r.payload_len))
        .expect("a record spans offset 30000 of segment 50");
    let segment = segment_path(&fx.journal, 50);
    patch(&segment, at, &[byte_at(&segment, at) ^ 0x20]);
    let (name, offset, seq) =
        (segment_name(50), format!("offset {}", victim.frame_offset), format!("seq {}", victim.seq));
    let needles = ["corrupt", name.as_str(), offset.as_str(), seq.as_str()];
    let mut outputs = read_only_commands(&fx.journal, fx.dir.path());
    let input = fx.dir.path().join("more.jsonl");
    write_lines(&input, &[r#"{"op":"create_account"}"#.to_string()]);
    outputs.push(("run", verex(&["run", "--dev", "--input", path_str(&input), "--journal", path_str(&fx.journal)])));
    for (command, out) in outputs {
        assert_failure(&out, 1, &needles, command);
        assert!(!stderr(&out).contains(&segment_name(51)), "{command} blames segment 51: {}", stderr(&out));
    }
}

#[test]
fn a_journal_without_its_commit_mark_is_refused_by_every_command() {
    let fx = journaled_run(100, SMALL_SEGMENT_BYTES);
    let mark = fx.journal.join("commit.mark");
    assert!(mark.exists(), "a run's journal has a commit mark");
    std::fs::remove_file(&mark).expect("rm commit.mark");
    let needles = ["commit.mark", "no commit mark", "refused"];
    for (command, out) in read_only_commands(&fx.journal, fx.dir.path()) {
        assert_failure(&out, 1, &needles, command);
    }
    let input = fx.dir.path().join("more.jsonl");
    write_lines(&input, &[r#"{"op":"create_account"}"#.to_string()]);
    let out = verex(&["run", "--dev", "--input", path_str(&input), "--journal", path_str(&fx.journal)]);
    assert_failure(&out, 1, &needles, "run");
    assert!(!mark.exists(), "run does not invent a mark for records it cannot vouch for");
}
