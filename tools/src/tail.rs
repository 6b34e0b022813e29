//! What lies after a journal's last record, as the read-only commands word it.
//!
//! The rules are the journal's own: [`JournalReader::torn_tail`] judges the bytes after the last
//! record exactly as recovery does before it cuts (a clean end; a torn tail, which only ever lies
//! beyond the commit mark; or damage, an error naming the file, offset and seq), without
//! modifying anything, and the reader itself refuses a journal whose records end before the
//! commit mark or which lacks a segment the mark knows of. `replay`, `inspect` and `snapshot`
//! warn about a torn tail and use the records before it; `verify` fails on it.
//!
//! Judge a journal no writer is appending to: a record being written looks torn.

use std::path::{Path, PathBuf};

use verex_journal::TornTail;

/// The name of segment `index` in `dir` (20 digits, `.seg`: the journal's documented format).
pub fn segment_file(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.seg"))
}

/// One line about a torn tail, for standard error or an error message.
pub fn describe(torn: &TornTail) -> String {
    format!(
        "torn tail: seq {} at offset {} of {} is not a complete record ({})",
        torn.seq,
        torn.offset,
        torn.file.display(),
        torn.reason
    )
}
