//! Fixed work for instruction counting of the journal append under `valgrind --tool=callgrind`
//! (stable on a noisy machine, unlike wall time):
//!
//! ```text
//! cargo build --release -p verex-bench --example journal_instructions
//! valgrind --tool=callgrind --toggle-collect='*measure_*' target/release/examples/journal_instructions
//! ```
//! Divide the collected instruction count by [`RECORDS`] for instructions per append.

use verex_journal::{Durability, JournalConfig, JournalWriter};

/// Appends measured.
const RECORDS: u64 = 200_000;

#[inline(never)]
fn measure_appends(writer: &mut JournalWriter, payload: &[u8]) {
    for seq in 2..RECORDS + 2 {
        writer.append(seq, payload).expect("append");
    }
    writer.commit().expect("commit");
}

fn main() {
    let dir = std::env::temp_dir().join(format!("verex-journal-instructions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let config = JournalConfig { dir: dir.clone(), segment_bytes: 64 << 20, durability: Durability::Async };
    let (mut writer, _) = JournalWriter::open(config).expect("open journal");
    let payload: Vec<u8> = (0..64u8).collect();
    writer.append(1, &payload).expect("append");
    measure_appends(&mut writer, &payload);
    println!("{RECORDS} appends of {} bytes; last seq {}", payload.len(), writer.last_seq());
    drop(writer);
    let _ = std::fs::remove_dir_all(&dir);
}
