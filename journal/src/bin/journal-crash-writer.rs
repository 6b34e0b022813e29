//! Test helper for `tests/crash.rs`: opens a journal (running recovery), then appends
//! deterministic records from `last_seq + 1` on, committing in batches of varying size (1 to 31 records) and
//! printing `durable SEQ` after each commit, until it has appended `MAX_NEW` records; then it
//! prints `done` and sleeps until it is killed (normally by SIGKILL at a random moment).
//!
//! Usage: `journal-crash-writer DIR batch|async|sync SEGMENT_BYTES MAX_NEW`

use std::io::Write;
use std::process::ExitCode;

use verex_journal::test_support::deterministic_payload;
use verex_journal::{Durability, JournalConfig, JournalWriter};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("journal-crash-writer: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, mode, segment_bytes, max_new] = args.as_slice() else {
        return Err("usage: journal-crash-writer DIR batch|async|sync SEGMENT_BYTES MAX_NEW".into());
    };
    let durability = match mode.as_str() {
        "batch" => Durability::Batch,
        "async" => Durability::Async,
        "sync" => Durability::Sync,
        other => return Err(format!("unknown durability {other}")),
    };
    let segment_bytes: u64 = segment_bytes.parse().map_err(|e| format!("segment bytes: {e}"))?;
    let max_new: u64 = max_new.parse().map_err(|e| format!("max new: {e}"))?;
    let config = JournalConfig { dir: dir.into(), segment_bytes, durability };
    let (mut writer, report) = JournalWriter::open(config).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "opened {} torn {}", report.last_seq, report.torn_at.is_some());
    let mut payload = Vec::new();
    let first = writer.last_seq() + 1;
    for seq in first..first + max_new {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).map_err(|e| e.to_string())?;
        if seq % 16 == seq / 16 % 16 {
            let durable = writer.commit().map_err(|e| e.to_string())?;
            let _ = writeln!(out, "durable {durable}");
        }
    }
    let durable = writer.commit().map_err(|e| e.to_string())?;
    let _ = writeln!(out, "durable {durable}");
    let _ = writeln!(out, "done");
    drop(out);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
