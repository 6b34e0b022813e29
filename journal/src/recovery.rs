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

use memmap2::Mmap;

use crate::error::JournalError;
use crate::frame::{self, FrameCheck, FrameFault, FRAME_ALIGN, MAX_FRAME_BYTES};
use crate::segment::{self, SegmentHeader, GENESIS_HASH, SEGMENT_HEADER_BYTES};

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

/// A torn tail that recovery cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The seq the torn record would have had (`last_seq + 1`).
    pub seq: u64,
    /// The segment file it was in.
    pub file: PathBuf,
    /// Byte offset of the torn frame within the file.
    pub offset: u64,
    /// Why the bytes at `offset` are not a record.
    pub reason: String,
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

/// How one segment's scan ended.
struct SegmentScan {
    /// Offset of the first position without a valid record.
    end_off: usize,
    next_seq: u64,
    last_hash: u64,
    records: u64,
    /// Why the record at `end_off` is invalid; `None` if it is simply absent.
    fault: Option<FrameFault>,
}

/// The running state of the chain across segments.
struct Chain {
    next_seq: Option<u64>,
    last_hash: u64,
    records: u64,
}

/// Verifies the journal in `dir`, cuts a torn tail, and returns where to continue.
pub(crate) fn recover(dir: &Path) -> Result<Recovered, JournalError> {
    let listed = segment::list_segments(dir).map_err(|e| JournalError::io(dir, e))?;
    let mut chain = Chain { next_seq: None, last_hash: GENESIS_HASH, records: 0 };
    let mut report = RecoveryReport {
        last_seq: 0,
        last_hash: GENESIS_HASH,
        records: 0,
        segments: listed.len() as u64,
        truncated_bytes: 0,
        torn_at: None,
    };
    let mut tail = None;
    for (pos, (index, path)) in listed.iter().enumerate() {
        let expected_index = pos as u64 + 1;
        if *index != expected_index {
            let missing = segment::segment_path(dir, expected_index);
            return Err(JournalError::corrupt(
                chain.next_seq.unwrap_or(0),
                missing,
                format!("segment {expected_index} is missing (next present is {index})"),
            ));
        }
        let is_last = pos + 1 == listed.len();
        let (header, write_off) = recover_segment(path, *index, is_last, &mut chain, &mut report)?;
        if is_last {
            tail = Some(TailSegment { header, path: path.clone(), write_off });
        }
    }
    report.records = chain.records;
    report.last_hash = chain.last_hash;
    report.last_seq = chain.next_seq.map_or(0, |next| next - 1);
    Ok(Recovered { report, tail, next_seq: chain.next_seq })
}

/// Verifies one segment against the chain so far and advances the chain; for the last
/// segment, cuts a torn tail. Returns the header and the offset after the last record.
fn recover_segment(
    path: &Path,
    index: u64,
    is_last: bool,
    chain: &mut Chain,
    report: &mut RecoveryReport,
) -> Result<(SegmentHeader, usize), JournalError> {
    let seq_here = chain.next_seq.unwrap_or(0);
    let file = File::open(path).map_err(|e| JournalError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| JournalError::io(path, e))?.len();
    if file_len < SEGMENT_HEADER_BYTES {
        let reason = format!("file is {file_len} bytes, shorter than the segment header");
        return Err(JournalError::corrupt(seq_here, path, reason));
    }
    // SAFETY: segment files are only modified by the (locked) writer; we hold the lock.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| JournalError::io(path, e))?;
    let header = SegmentHeader::decode(&map).map_err(|reason| JournalError::corrupt(seq_here, path, reason))?;
    check_header_continues_chain(&header, index, chain, path, file_len)?;
    let limit = file_len.min(header.segment_bytes) as usize;
    let bytes = &map[..limit];
    let scan = scan_segment(bytes, &header);
    let judged =
        judge_end(bytes, &header, &scan).map_err(|reason| JournalError::corrupt(scan.next_seq, path, reason))?;
    chain.next_seq = Some(scan.next_seq);
    chain.last_hash = scan.last_hash;
    chain.records += scan.records;
    if !is_last {
        if let Some(fault) = scan.fault {
            return Err(JournalError::corrupt(scan.next_seq, path, fault.to_string()));
        }
        if let Some(dirty_end) = judged {
            let reason = format!(
                "non-zero bytes at offsets {}..{dirty_end} after the last record of a closed segment",
                scan.end_off
            );
            return Err(JournalError::corrupt(scan.next_seq, path, reason));
        }
        return Ok((header, scan.end_off));
    }
    drop(map);
    cut_torn_tail(path, &header, file_len, &scan, judged, report)?;
    Ok((header, scan.end_off))
}

/// Checks a header against its file name, its file length and the chain so far.
fn check_header_continues_chain(
    header: &SegmentHeader,
    index: u64,
    chain: &Chain,
    path: &Path,
    file_len: u64,
) -> Result<(), JournalError> {
    let seq_here = chain.next_seq.unwrap_or(0);
    if header.segment_index != index {
        let reason = format!("file name says segment {index}, header says segment {}", header.segment_index);
        return Err(JournalError::corrupt(seq_here, path, reason));
    }
    if file_len > header.segment_bytes {
        let reason = format!("file is {file_len} bytes, longer than its header's {}", header.segment_bytes);
        return Err(JournalError::corrupt(seq_here, path, reason));
    }
    match chain.next_seq {
        None if header.prev_hash != GENESIS_HASH => {
            let reason = format!("first segment's prev_hash is {:#018x}, not the genesis hash", header.prev_hash);
            Err(JournalError::corrupt(header.first_seq, path, reason))
        }
        Some(next) if header.first_seq != next || header.prev_hash != chain.last_hash => {
            let reason = format!(
                "chain broken: header starts at seq {} after hash {:#018x}, but the previous \
                 segment ends before seq {next} with hash {:#018x}",
                header.first_seq, header.prev_hash, chain.last_hash
            );
            Err(JournalError::corrupt(next, path, reason))
        }
        _ => Ok(()),
    }
}

/// Verifies frames from the header on, stopping at the first position without a valid record.
fn scan_segment(bytes: &[u8], header: &SegmentHeader) -> SegmentScan {
    let mut scan = SegmentScan {
        end_off: SEGMENT_HEADER_BYTES as usize,
        next_seq: header.first_seq,
        last_hash: header.prev_hash,
        records: 0,
        fault: None,
    };
    loop {
        match frame::parse_frame(bytes, scan.end_off, scan.next_seq, header.segment_index) {
            FrameCheck::Valid(record) => {
                scan.end_off += record.frame_bytes;
                scan.next_seq += 1;
                scan.last_hash = record.hash;
                scan.records += 1;
            }
            FrameCheck::End => return scan,
            FrameCheck::Invalid(fault) => {
                scan.fault = Some(fault);
                return scan;
            }
        }
    }
}

/// Judges the bytes at and after the end of a segment's valid records.
///
/// `Ok(None)`: nothing there. `Ok(Some(dirty_end))`: a single torn frame occupying
/// `end_off..dirty_end` and zeros after. `Err(reason)`: anything else.
fn judge_end(bytes: &[u8], header: &SegmentHeader, scan: &SegmentScan) -> Result<Option<usize>, String> {
    let start = scan.end_off;
    let Some(first_dirty) = first_nonzero(&bytes[start..]) else {
        return Ok(None);
    };
    // Look for plausible frame headers at frame positions from the first non-zero byte on.
    let align = FRAME_ALIGN as usize;
    let mut probe = (start + first_dirty) / align * align;
    if probe == start {
        probe += align;
    }
    while probe < bytes.len() {
        if let Some(seq) = frame::looks_like_frame(bytes, probe, header.segment_index) {
            return Err(format!(
                "a valid-looking record (seq {seq}) at offset {probe} follows the first invalid position at offset {start}"
            ));
        }
        probe += align;
    }
    let extent_end = torn_extent_end(bytes, start);
    if let Some(stray) = first_nonzero(&bytes[extent_end..]) {
        return Err(format!(
            "non-zero byte at offset {} beyond the log's end at offset {start} (a torn frame there \
             could reach at most offset {extent_end})",
            extent_end + stray
        ));
    }
    Ok(last_nonzero(&bytes[start..extent_end]).map(|last| start + last + 1))
}

/// The end of the region a torn frame at `start` could have written.
fn torn_extent_end(bytes: &[u8], start: usize) -> usize {
    let limit = bytes.len();
    let any_frame = (start + MAX_FRAME_BYTES as usize).min(limit);
    match frame::peek_head(bytes, start) {
        Ok(head) => start + head.frame_bytes,
        // A header word too damaged to give a length: a torn write cannot produce that (the
        // word is written in one aligned store), but its frame is at most MAX_FRAME_BYTES.
        Err(_) => any_frame,
    }
}

/// Zeroes a torn tail (if any) and restores a short file's length; records what was done.
fn cut_torn_tail(
    path: &Path,
    header: &SegmentHeader,
    file_len: u64,
    scan: &SegmentScan,
    dirty_end: Option<usize>,
    report: &mut RecoveryReport,
) -> Result<(), JournalError> {
    let short = file_len < header.segment_bytes;
    if dirty_end.is_none() && !short {
        return Ok(());
    }
    let file = OpenOptions::new().write(true).open(path).map_err(|e| JournalError::io(path, e))?;
    let mut reasons = Vec::new();
    if let Some(dirty_end) = dirty_end {
        zero_torn_frame(&file, path, scan.end_off, dirty_end)?;
        report.truncated_bytes = (dirty_end - scan.end_off) as u64;
        reasons.push(match scan.fault {
            Some(fault) => fault.to_string(),
            None => "uncommitted bytes after the last record".to_owned(),
        });
    }
    if short {
        segment::preallocate(&file, header.segment_bytes).map_err(|e| JournalError::io(path, e))?;
        reasons
            .push(format!("file was {file_len} bytes, shorter than its header's {}; extended", header.segment_bytes));
    }
    file.sync_all().map_err(|source| JournalError::SyncFailed { file: path.into(), source })?;
    report.torn_at = Some(TornTail {
        seq: scan.next_seq,
        file: path.to_path_buf(),
        offset: scan.end_off as u64,
        reason: reasons.join("; "),
    });
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

/// Index of the first non-zero byte.
pub(crate) fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    const CHUNK: usize = 4096;
    let mut base = 0;
    for chunk in bytes.chunks(CHUNK) {
        if chunk.iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return chunk.iter().position(|&b| b != 0).map(|at| base + at);
        }
        base += chunk.len();
    }
    None
}

/// Index of the last non-zero byte.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_search_finds_exact_positions() {
        let mut bytes = vec![0u8; 10_000];
        assert_eq!(first_nonzero(&bytes), None);
        assert_eq!(last_nonzero(&bytes), None);
        bytes[5000] = 1;
        bytes[9999] = 2;
        assert_eq!(first_nonzero(&bytes), Some(5000));
        assert_eq!(last_nonzero(&bytes), Some(9999));
        assert_eq!(first_nonzero(&bytes[5001..]), Some(4998));
    }

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
