//! Recovery: verify the whole journal on open, cut a provably torn tail, refuse anything else.
//!
//! The writer runs it, holding the directory's lock, before it appends. It opens a
//! [`JournalReader`], which verifies every segment (headers, the chain across segments, every
//! frame's seq, segment index, padding and rolling hash, closed segments' ends) against the
//! commit mark ([`mark`](crate::mark)), then judges the bytes after the last record of the last
//! segment ([`tail`](crate::tail)), and cuts a torn frame there.
//!
//! What is allowed, with `B` the first position of the last segment holding no valid record:
//!
//! * **Nothing** at and after `B` (all zero): the clean end of the data.
//! * **A torn frame** at `B`, beyond the commit mark (the mark's seq is below the seq due at
//!   `B`): non-zero bytes confined to the extent of one frame, nothing plausible after it.
//!   That is what a crash in the middle of an `append`, or after appends whose commit never
//!   returned, leaves. It is cut (zeroed and synced) and reported. A file shorter than its
//!   header says is extended back to its size and reported the same way.
//! * Anything else is **corruption**: a record at or below the mark that fails (its events
//!   may have been released: never cut), the records ending before the mark's seq, the
//!   record at the mark's seq with another hash than the one committed, a valid-looking
//!   record after the failure, non-zero bytes beyond a torn frame's extent, any damage in a
//!   segment that is not the last (the writer syncs a segment completely before it creates
//!   the next one), a missing segment (the mark knows the newest one), a segment whose
//!   header index differs from its file name, a header whose `first_seq`/`prev_hash` does not
//!   continue the chain, segments without a commit mark ([`JournalError::MarkMissing`]), a
//!   mark with neither copy valid. Recovery then refuses to open, naming the file that holds
//!   the damage, the byte offset and the first seq it could not verify; nothing is modified.
//!
//! After recovery the writer msyncs every recovered record and writes the mark to cover them
//! all and every segment present (records beyond the old mark that verified were durable all
//! along, or are now).
//!
//! Limits of what can be told apart, by design: records appended after the last commit can
//! vanish without a trace in a power loss (zeroed, as never written) and that is not damage:
//! they were never committed. A power loss that persists dirty pages out of order can leave
//! intact unsynced records after a hole; that is refused as corruption (fail-safe) rather than
//! silently truncated. In `Async` mode the mark itself is not synced at each commit: see
//! [`Durability::Async`](crate::Durability::Async) for what recovery does after a power loss.
//!
//! Crash points, each recovered: before the mark of a new journal is renamed into place (a
//! stale `commit.mark.tmp`, removed: a new journal); after a segment is published and before
//! the mark records it (one segment more than the mark knows, allowed, recorded by recovery);
//! after a commit's msync and before its mark write (records beyond the mark, whole, kept);
//! in the middle of a mark write (that copy fails its checksum; the other, the previous
//! commit, is used); during recovery's cut (see below).
//!
//! Idempotence: the cut only zeroes bytes at or after `B` and extends a short file. It zeroes
//! the torn frame's body first and syncs, then its first (length) word, so a crash at any
//! point leaves a state that classifies the same way (the extent is unchanged while the length
//! word stands, and zeros never create a plausible header): recovering again yields the same
//! `last_seq` and `last_hash`. The mark is written only after the cut.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::mark::CommitMark;
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

/// Recovery's result: the report, where to continue, the seq that must come next, the first
/// seq, and the commit mark found (`None`: a new journal, no segment and no mark yet).
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) report: RecoveryReport,
    pub(crate) tail: Option<TailSegment>,
    pub(crate) next_seq: Option<u64>,
    pub(crate) first_seq: Option<u64>,
    pub(crate) mark: Option<CommitMark>,
}

/// Verifies the journal in `dir` (the writer holds its lock), cuts a torn tail, and returns
/// where to continue.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, JournalError> {
    let reader = JournalReader::open(dir)?;
    let end = reader.last_end()?;
    let first_seq = reader.first_seq();
    let mark = reader.commit_mark();
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
        return Ok(Recovered { report, tail: None, next_seq: None, first_seq, mark });
    };
    report.last_seq = end.next_seq - 1;
    report.records = end.next_seq - first_seq.unwrap_or(end.next_seq);
    cut_torn_tail(&end, &mut report)?;
    let tail = TailSegment { header: end.header, path: end.path, write_off: end.end_off };
    Ok(Recovered { report, tail: Some(tail), next_seq: Some(end.next_seq), first_seq, mark })
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
