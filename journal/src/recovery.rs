//! Recovery: verify the whole journal on open, cut a provably torn tail, refuse anything else.
//!
//! Every segment is scanned forward from its header, verifying each frame's seq, segment
//! index, padding and rolling hash. The scan of a segment stops at offset `B`, the first
//! position that holds no valid record. What is allowed at and after `B`:
//!
//! * **Nothing** (all bytes from `B` to the segment end are zero): the clean end of the data.
//! * **A torn frame** (only in the *last* segment): non-zero bytes confined to the extent of one
//!   frame starting at `B` (`frame_len(payload_len)` if the header word at `B` has a plausible
//!   length, else `MAX_FRAME_BYTES`, since a write torn before its length landed has unknown
//!   length), with no plausible frame header (magic, length, segment index) at any frame
//!   position (multiple of 16) after `B` and only zeros
//!   after the extent. That is what a crash in the middle of `append` leaves: the writer writes
//!   one frame at a time into zeroed space. It is cut (zeroed and synced) and reported.
//! * Anything else is **corruption**: a valid-looking record after the failure (a flipped bit
//!   or zeroed page mid-log followed by intact records), non-zero bytes beyond a torn frame's
//!   extent, any damage in a segment that is not the last (the writer msyncs a segment
//!   completely before it creates the next one, so only the last can be torn), a missing
//!   segment, a segment whose header index differs from its file name, or a header whose
//!   `first_seq`/`prev_hash` does not continue the chain. Recovery then refuses to open and
//!   names the first seq it could not verify; nothing is modified.
//!
//! Limits of what can be told apart, by design: damage confined to the last record (with only
//! zeros after it) is indistinguishable from a torn write and is cut; a deleted *last* segment
//! is indistinguishable from a log that ended earlier. A power loss that persists dirty pages
//! out of order can leave intact unsynced records after a hole; that is refused as corruption
//! (fail-safe) rather than silently truncated.
//!
//! Idempotence: the cut only zeroes bytes at or after `B` and extends a short file. It zeroes
//! the torn frame's body first and syncs, then its first (length) word, so a crash at any
//! point leaves a state that classifies the same way (the extent is unchanged while the length
//! word stands, and zeros never create a plausible header): recovering again yields the same
//! `last_seq` and `last_hash`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::reader::{JournalReader, LastEnd};
use crate::segment::{self, SegmentHeader};
pub use crate::tail::TornTail;

/// What recovery found and did when the writer opened the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The last verified record's seq; `first_seq - 1` of an empty journal (0 if none at all).
    pub last_seq: u64,
    /// The last verified record's hash (`GENESIS_HASH` if there is none).
    pub last_hash: u64,
    /// How many records were verified.
    pub records: u64,
    /// How many segment files the journal has.
    pub segments: u64,
    /// Length of the torn bytes cut: from the torn frame's offset to its last non-zero byte
    /// (0 if nothing was cut).
    pub truncated_bytes: u64,
    /// Where the torn tail was cut, if there was one.
    pub torn_at: Option<TornTail>,
}

/// The last segment's state after recovery, for the writer to continue in.
#[derive(Debug)]
pub(crate) struct TailSegment {
    pub(crate) header: SegmentHeader,
    pub(crate) path: PathBuf,
    /// Offset where the next frame goes; everything from here to the end is zero.
    pub(crate) write_off: usize,
}

/// Recovery's result: the report, where to continue, and the seq that must come next.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) report: RecoveryReport,
    pub(crate) tail: Option<TailSegment>,
    pub(crate) next_seq: Option<u64>,
}

/// Verifies the journal in `dir` (the writer holds its lock), cuts a torn tail, and returns
/// where to continue.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, JournalError> {
    let reader = JournalReader::open(dir)?;
    let end = reader.last_end()?;
    let first_seq = reader.first_seq();
    let mut report = RecoveryReport {
        last_seq: 0,
        last_hash: reader.last_hash(),
        records: 0,
        segments: reader.segment_count() as u64,
        truncated_bytes: 0,
        torn_at: None,
    };
    // The reader's mappings go before the cut writes to the file.
    drop(reader);
    let Some(end) = end else {
        return Ok(Recovered { report, tail: None, next_seq: None });
    };
    report.last_seq = end.next_seq - 1;
    report.records = end.next_seq - first_seq.unwrap_or(end.next_seq);
    cut_torn_tail(&end, &mut report)?;
    let tail = TailSegment { header: end.header, path: end.path, write_off: end.end_off };
    Ok(Recovered { report, tail: Some(tail), next_seq: Some(end.next_seq) })
}

/// Zeroes a torn tail (if any) and restores a short file's length; records what was done.
fn cut_torn_tail(end: &LastEnd, report: &mut RecoveryReport) -> Result<(), JournalError> {
    let Some(torn) = end.torn_tail() else {
        return Ok(());
    };
    let path = &end.path;
    let file = OpenOptions::new().write(true).open(path).map_err(|e| JournalError::io(path, e))?;
    if let Some(dirty_end) = end.dirty_end {
        zero_torn_frame(&file, path, end.end_off, dirty_end)?;
        report.truncated_bytes = (dirty_end - end.end_off) as u64;
    }
    if end.is_short() {
        segment::preallocate(&file, end.header.segment_bytes).map_err(|e| JournalError::io(path, e))?;
    }
    file.sync_all().map_err(|source| JournalError::SyncFailed { file: path.into(), source })?;
    report.torn_at = Some(torn);
    Ok(())
}

/// Zeroes `start..dirty_end` so that every intermediate state (a crash part-way, or a power
/// loss persisting part of it) recovers the same way: first everything but the frame's first
/// word (the length stays, so the extent and the classification stay), synced; then the first
/// word, a single aligned 8-byte store that lands whole or not at all.
fn zero_torn_frame(file: &File, path: &Path, start: usize, dirty_end: usize) -> Result<(), JournalError> {
    let word_end = (start + 8).min(dirty_end);
    if dirty_end > word_end {
        let zeros = vec![0u8; dirty_end - word_end];
        file.write_all_at(&zeros, word_end as u64).map_err(|e| JournalError::io(path, e))?;
        file.sync_data().map_err(|source| JournalError::SyncFailed { file: path.into(), source })?;
    }
    let zeros = [0u8; 8];
    file.write_all_at(&zeros[..word_end - start], start as u64).map_err(|e| JournalError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_directory_recovers_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let recovered = recover(dir.path()).unwrap();
        assert_eq!(recovered.report.last_seq, 0);
        assert_eq!(recovered.report.segments, 0);
        assert!(recovered.tail.is_none());
        assert!(recovered.next_seq.is_none());
    }
}
