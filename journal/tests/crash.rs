//! Real crashes: a child process (`journal-crash-writer`) appends deterministic records and is
//! killed with SIGKILL at pseudo-random moments (seeded xorshift). After each kill, the commit
//! mark the child left must cover every seq it reported committed (`durable N`, printed after
//! `commit` returned: the mark is written before), recovery must keep a gap-free, verified
//! prefix that contains every one of them (and everything recovered in earlier rounds), every
//! recovered payload must equal the deterministic payload of its seq, and the next child
//! continues from `last_seq + 1`.
//!
//! Total kills: `VEREX_CRASH_KILLS` (default 50), split between Batch and Async durability,
//! plus a fifth of it in Sync.
//! A SIGKILLed process's stores to the mapping survive in the page cache, so torn frames here
//! come only from kills in the middle of an `append`; `faults.rs` forges torn writes directly.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::*;
use verex_journal::test_support::XorShift;
use verex_journal::{Durability, JournalReader, JournalWriter, MIN_SEGMENT_BYTES};

const DEFAULT_KILLS: u64 = 50;
/// Records one child appends before it idles, bounding the journal's growth.
const RECORDS_PER_ROUND: u64 = 3000;
/// Kills land uniformly in `0..MAX_KILL_DELAY`, which spans start-up, recovery and appending.
const MAX_KILL_DELAY: Duration = Duration::from_millis(25);

/// The crash loops run one at a time. Both spawn children while the other may hold its
/// journal's `flock`: a child between fork and exec holds a copy of every descriptor of this
/// process, the other loop's lock included (close-on-exec closes it only at exec), so a loop
/// that drops its writer and spawns its next child at that moment finds its own directory
/// "locked by another writer". Under load that window is wide enough to fail one run in three.
static ONE_LOOP_AT_A_TIME: Mutex<()> = Mutex::new(());

fn total_kills() -> u64 {
    std::env::var("VEREX_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_KILLS)
}

/// What one child said before it died.
#[derive(Debug, Default)]
struct ChildLog {
    opened_at: Option<u64>,
    durable: u64,
}

fn parse_child_output(stdout: impl Read) -> ChildLog {
    let mut log = ChildLog::default();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next().and_then(|n| n.parse::<u64>().ok())) {
            (Some("opened"), Some(seq)) => log.opened_at = Some(seq),
            (Some("durable"), Some(seq)) => log.durable = log.durable.max(seq),
            _ => {}
        }
    }
    log
}

/// Runs one child for a random while, kills it, and returns what it reported.
fn run_and_kill(dir: &Path, mode: &str, delay: Duration) -> ChildLog {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal-crash-writer"))
        .arg(dir)
        .arg(mode)
        .arg(MIN_SEGMENT_BYTES.to_string())
        .arg(RECORDS_PER_ROUND.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn journal-crash-writer");
    let stdout = child.stdout.take().expect("stdout");
    let output = std::thread::spawn(move || parse_child_output(stdout));
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "child died on its own: {stderr}");
    output.join().expect("stdout reader")
}

fn crash_loop(mode: &str, kills: u64, seed: u64) {
    let _alone = ONE_LOOP_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift::new(seed);
    let mut recovered_before = 0u64;
    let mut torn_tails = 0;
    for round in 0..kills {
        let delay = Duration::from_micros(rng.below(MAX_KILL_DELAY.as_micros() as u64));
        let log = run_and_kill(dir.path(), mode, delay);
        if let Some(opened_at) = log.opened_at {
            assert_eq!(opened_at, recovered_before, "round {round}: child recovered elsewhere");
        }
        // The mark as the child left it (recovery rewrites it) covers everything it committed.
        let reader = JournalReader::open(dir.path())
            .unwrap_or_else(|e| panic!("round {round} ({mode}, killed after {delay:?}): reader: {e}"));
        let committed = reader.commit_mark().map_or(0, |mark| mark.committed_seq);
        assert!(committed >= log.durable, "round {round}: mark at {committed} < reported durable {}", log.durable);
        drop(reader);
        let (writer, report) = JournalWriter::open(config(dir.path(), Durability::Batch))
            .unwrap_or_else(|e| panic!("round {round} ({mode}, killed after {delay:?}): {e}"));
        drop(writer);
        assert!(
            report.last_seq >= log.durable,
            "round {round}: lost acknowledged seqs: durable {} > recovered {}",
            log.durable,
            report.last_seq
        );
        assert!(report.last_seq >= recovered_before, "round {round}: lost recovered records");
        if let Some(torn) = &report.torn_at {
            assert_eq!(torn.seq, report.last_seq + 1);
            torn_tails += 1;
        }
        assert_eq!(verify_deterministic(dir.path(), 1), report.last_seq, "round {round}");
        recovered_before = report.last_seq;
    }
    eprintln!("{mode}: {kills} kills, {recovered_before} records, {torn_tails} torn tails cut");
    assert!(kills == 0 || recovered_before > 0, "the children never got to append");
}

#[test]
fn batch_writer_killed_at_random_moments_recovers_a_verified_prefix() {
    crash_loop("batch", total_kills().div_ceil(2), 0xB47C);
}

#[test]
fn async_writer_killed_at_random_moments_recovers_a_verified_prefix() {
    crash_loop("async", total_kills() / 2, 0xA5C);
}

#[test]
fn sync_writer_killed_at_random_moments_recovers_a_verified_prefix() {
    crash_loop("sync", total_kills() / 5, 0x5F1C);
}
