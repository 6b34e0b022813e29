//! The reader: maps segments read-only and yields records straight from the mapping.
//!
//! Records are borrowed (`Record<'a>`), never copied; payloads are 16-byte aligned so callers
//! can access `rkyv` archives in place. Every record is re-verified (seq, segment, padding, rolling
//! hash) as it is yielded, and the chain is checked where it crosses segments.
//!
//! Seeking: segments are binary-searched by their header's first seq, then a sparse index
//! (every [`SPARSE_INDEX_STRIDE`]th record's offset, built when a segment is mapped or
//! refreshed) bounds the walk to fewer than `SPARSE_INDEX_STRIDE` frame headers.
//!
//! Verification: mapping a segment scans it (every frame's seq, segment index, padding and
//! rolling hash), and a segment that has a successor is *closed*: the bytes after its last
//! record must be zero (see [`tail`](crate::tail)), else the damage is reported in that
//! segment, with the offset of the first frame that fails, never as a broken chain at the
//! next one. The successor's header must continue the chain.
//!
//! The commit mark ([`mark`](crate::mark)) is read first at every `open` and `refresh` (the
//! writer writes a mark only after the records and segments it names exist, so whatever this
//! mark names is visible by the time the segments are scanned; a copy caught half-written
//! fails its checksum and the other, older one is used). Then: every segment up to the mark's
//! newest must be present (a deleted newest segment is damage, not an earlier end); the
//! records must not end at or before the mark's seq (a committed record that fails is damage,
//! not "not written yet"); the record at the mark's seq must have the committed hash. Segments
//! without a mark are refused ([`JournalError::MarkMissing`]).
//!
//! Tailing: the mapping is shared with the writer's, so records appended after `open` become
//! visible in place. In the last mapped segment, the first position that does not hold a
//! verified record is treated as "not written yet": the iterator returns `None` and a later
//! `next()` tries again from the same place (the iterator is not fused). New segments are
//! picked up by [`JournalReader::refresh`]. On a journal no writer is appending to,
//! [`JournalReader::torn_tail`] judges what follows the last record, read-only, by the rules
//! recovery applies.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::JournalError;
use crate::frame::{self, FrameCheck, FrameFault};
use crate::mark::{self, CommitMark};
use crate::segment::{self, SegmentHeader, GENESIS_HASH, SEGMENT_HEADER_BYTES};
use crate::tail::{self, AfterEnd, TornTail};

/// One in this many records of a segment gets an entry in the reader's sparse index.
pub const SPARSE_INDEX_STRIDE: u64 = 256;

/// A record borrowed from a segment mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's sequence number.
    pub seq: u64,
    /// The payload, in place in the mapping; its address is a multiple of 16 (`FRAME_ALIGN`).
    pub payload: &'a [u8],
    /// The rolling hash `h[seq]`.
    pub hash: u64,
    /// The index of the segment file holding the record.
    pub segment_index: u64,
    /// Byte offset of the record's frame within that file.
    pub frame_offset: u64,
}

/// A mapped segment and what the reader knows about it.
struct ReaderSegment {
    header: SegmentHeader,
    path: PathBuf,
    map: Mmap,
    /// The file's length when it was mapped.
    file_len: u64,
    /// `min(file length, segment_bytes)`: the bytes frames may occupy.
    limit: usize,
    /// `(seq, frame offset)` of every `SPARSE_INDEX_STRIDE`th record, in order.
    sparse: Vec<(u64, usize)>,
    /// Where the last scan stopped: offset, next seq, and the hash before that offset.
    scanned_off: usize,
    scanned_next_seq: u64,
    scanned_hash: u64,
    /// Why the bytes at `scanned_off` are not a record (`None`: no record there, or not yet).
    stop_fault: Option<FrameFault>,
}

impl ReaderSegment {
    fn bytes(&self) -> &[u8] {
        &self.map[..self.limit]
    }

    /// Extends the scan (and sparse index) over records appended since the last scan.
    fn scan_forward(&mut self) {
        let index = self.header.segment_index;
        let first_seq = self.header.first_seq;
        let limit = self.limit;
        loop {
            let bytes = &self.map[..limit];
            let record = match frame::parse_frame(bytes, self.scanned_off, self.scanned_next_seq, index) {
                FrameCheck::Valid(record) => record,
                FrameCheck::End => {
                    self.stop_fault = None;
                    return;
                }
                FrameCheck::Invalid(fault) => {
                    self.stop_fault = Some(fault);
                    return;
                }
            };
            if (record.seq - first_seq).is_multiple_of(SPARSE_INDEX_STRIDE) {
                self.sparse.push((record.seq, self.scanned_off));
            }
            self.scanned_off += record.frame_bytes;
            self.scanned_next_seq += 1;
            self.scanned_hash = record.hash;
        }
    }

    /// What lies at the end of the scanned records, in words: `None` when nothing does (only
    /// zeros follow, or nothing yet).
    fn describe_end(&self) -> Option<String> {
        let at = self.scanned_off;
        let after = tail::judge_after_end(self.bytes(), self.header.segment_index, at);
        match (after, self.stop_fault) {
            (AfterEnd::Zeros, None) => None,
            (AfterEnd::Damage(reason), Some(fault)) => Some(format!("{fault}; {reason}")),
            (AfterEnd::Damage(reason), None) => Some(reason),
            (AfterEnd::Torn { .. } | AfterEnd::Zeros, Some(fault)) => Some(fault.to_string()),
            (AfterEnd::Torn { dirty_end }, None) => {
                Some(format!("non-zero bytes at offsets {at}..{dirty_end} after the last record"))
            }
        }
    }

    /// A segment with a successor is complete (the writer finishes a segment before it creates
    /// the next): the bytes after its last record must be zero. Damage is reported here, in
    /// this file, at the offset of the first position that fails.
    fn check_closed_end(&self) -> Result<(), JournalError> {
        match self.describe_end() {
            None => Ok(()),
            Some(what) => {
                let reason = format!("{what}, in a closed segment (a later segment exists)");
                Err(JournalError::corrupt_at(self.scanned_next_seq, &self.path, self.scanned_off as u64, reason))
            }
        }
    }
}

/// Reads a journal directory, possibly while a writer appends to it.
pub struct JournalReader {
    dir: PathBuf,
    segments: Vec<ReaderSegment>,
    /// The commit mark as read by the last `refresh` (`None`: a new journal without one yet).
    mark: Option<CommitMark>,
    /// The committed `(seq, hash)` last found to match its record.
    mark_hash_checked: Option<(u64, u64)>,
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("next_seq", &self.next_seq())
            .field("mark", &self.mark)
            .finish()
    }
}

impl JournalReader {
    /// Maps every segment in `dir` read-only, verifies every record (headers, frames, the
    /// chain across segments, closed segments' ends) against the commit mark, and builds the
    /// sparse index. A directory without segments is an empty journal.
    ///
    /// Fails with [`JournalError::Corrupt`] naming the file, offset and seq of the damage: a
    /// record that fails anywhere but after the last one (beyond the commit mark), a missing
    /// segment (the newest included: the mark knows it), records ending before the mark's
    /// seq; and with [`JournalError::MarkMissing`] for segments without a commit mark.
    pub fn open(dir: impl AsRef<Path>) -> Result<JournalReader, JournalError> {
        let mut reader = JournalReader {
            dir: dir.as_ref().to_path_buf(),
            segments: Vec::new(),
            mark: None,
            mark_hash_checked: None,
        };
        reader.refresh()?;
        Ok(reader)
    }

    /// Picks up records appended and segments created since the last call (or `open`), and
    /// checks them against the commit mark as it is now (see [`JournalReader::open`]).
    /// Returns the seq after the last record now visible (see [`JournalReader::next_seq`]).
    pub fn refresh(&mut self) -> Result<u64, JournalError> {
        // The mark first: the writer writes the records and creates the segments a mark names
        // before it writes the mark, so everything this mark names is visible below.
        let mut mark = mark::read_mark(&self.dir)?;
        let listed = segment::list_segments(&self.dir).map_err(|e| JournalError::io(&self.dir, e))?;
        if mark.is_none() && !listed.is_empty() {
            // A new journal's mark is created before its first segment: it exists by now.
            mark = mark::read_mark(&self.dir)?;
            if mark.is_none() {
                return Err(JournalError::MarkMissing { dir: self.dir.clone(), segments: listed.len() as u64 });
            }
        }
        // List first, then rescan: a segment that has a successor is final, so scanning it
        // after seeing the successor sees all its records.
        if let Some(last) = self.segments.last_mut() {
            last.scan_forward();
        }
        let known = self.segments.len();
        for (index, path) in listed.into_iter().skip(known) {
            self.map_next(index, path)?;
        }
        if let Some(mark) = mark {
            self.check_mark(&mark)?;
        }
        self.mark = mark;
        Ok(self.next_seq())
    }

    /// Checks the segments and records against the commit mark: every segment it knows of is
    /// present, every record up to its seq is there and verifies, and that record's hash is
    /// the one committed.
    fn check_mark(&mut self, mark: &CommitMark) -> Result<(), JournalError> {
        let present = self.segments.len() as u64;
        if present < mark.last_segment {
            let missing = segment::segment_path(&self.dir, present + 1);
            let reason = format!(
                "segment {} is missing: the commit mark (generation {}) records that segments 1..={} were \
                 created, {present} are present",
                present + 1,
                mark.generation,
                mark.last_segment
            );
            return Err(JournalError::corrupt(self.next_seq(), missing, reason));
        }
        if mark.committed_seq == 0 || self.mark_hash_checked == Some((mark.committed_seq, mark.committed_hash)) {
            return Ok(());
        }
        let (Some(first), Some(last)) = (self.first_seq(), self.segments.last()) else {
            let reason = format!("the commit mark says seq {} is committed, but no segment exists", mark.committed_seq);
            return Err(JournalError::corrupt(mark.committed_seq, mark::mark_path(&self.dir), reason));
        };
        if mark.committed_seq < first {
            let reason =
                format!("the commit mark names seq {}, before the journal's first seq {first}", mark.committed_seq);
            return Err(JournalError::corrupt(mark.committed_seq, mark::mark_path(&self.dir), reason));
        }
        if last.scanned_next_seq <= mark.committed_seq {
            let what = last.describe_end().unwrap_or_else(|| "the records end here".to_owned());
            let reason = format!(
                "{what}; seq {} is at or below the commit mark (seq {}, generation {}): it was committed, so \
                 this is damage or loss, never a torn write",
                last.scanned_next_seq, mark.committed_seq, mark.generation
            );
            return Err(JournalError::corrupt_at(last.scanned_next_seq, &last.path, last.scanned_off as u64, reason));
        }
        self.check_committed_hash(mark)?;
        self.mark_hash_checked = Some((mark.committed_seq, mark.committed_hash));
        Ok(())
    }

    /// The record at the mark's seq must have the hash the mark committed: the records up to it
    /// are those that were committed, not a rewritten chain.
    fn check_committed_hash(&self, mark: &CommitMark) -> Result<(), JournalError> {
        let seq = mark.committed_seq;
        let record = match self.iter_from(seq)?.next() {
            Some(record) => record?,
            None => {
                return Err(JournalError::corrupt(seq, mark::mark_path(&self.dir), "the committed record vanished"))
            }
        };
        if record.hash != mark.committed_hash {
            let path = segment::segment_path(&self.dir, record.segment_index);
            let reason = format!(
                "record hash {:#018x} differs from the hash {:#018x} the commit mark (generation {}) committed for \
                 this seq: the journal was rewritten after the commit",
                record.hash, mark.committed_hash, mark.generation
            );
            return Err(JournalError::corrupt_at(seq, path, record.frame_offset, reason));
        }
        Ok(())
    }

    /// The commit mark as read by the last `refresh` (or `open`): `None` only for a journal
    /// directory without segments and without a mark.
    pub fn commit_mark(&self) -> Option<CommitMark> {
        self.mark
    }

    /// Maps segment `index` at `path` as the successor of the last mapped segment, which is
    /// thereby closed and must end cleanly.
    fn map_next(&mut self, index: u64, path: PathBuf) -> Result<(), JournalError> {
        let expected_index = self.segments.len() as u64 + 1;
        let seq_here = self.segments.last().map_or(0, |s| s.scanned_next_seq);
        if index != expected_index {
            let missing = segment::segment_path(&self.dir, expected_index);
            let reason = format!("segment {expected_index} is missing (next present is {index})");
            return Err(JournalError::corrupt(seq_here, missing, reason));
        }
        if let Some(closed) = self.segments.last() {
            closed.check_closed_end()?;
        }
        let file = File::open(&path).map_err(|e| JournalError::io(&path, e))?;
        let file_len = file.metadata().map_err(|e| JournalError::io(&path, e))?.len();
        if file_len < SEGMENT_HEADER_BYTES {
            let reason = format!("file is {file_len} bytes, shorter than the segment header");
            return Err(JournalError::corrupt(seq_here, &path, reason));
        }
        // SAFETY: mapped read-only; the writer only appends into zeroed space, and frames are
        // re-verified (hash included) every time they are read.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| JournalError::io(&path, e))?;
        let header =
            SegmentHeader::decode(&map).map_err(|reason| JournalError::corrupt_at(seq_here, &path, 0, reason))?;
        self.check_continues(&header, index, &path, file_len)?;
        let limit = file_len.min(header.segment_bytes) as usize;
        let mut segment = ReaderSegment {
            header,
            path,
            map,
            file_len,
            limit,
            sparse: Vec::new(),
            scanned_off: SEGMENT_HEADER_BYTES as usize,
            scanned_next_seq: header.first_seq,
            scanned_hash: header.prev_hash,
            stop_fault: None,
        };
        segment.scan_forward();
        self.segments.push(segment);
        Ok(())
    }

    /// Checks a new segment's header against its file name, its file's length and the end of
    /// the last mapped segment (the genesis hash for the first).
    fn check_continues(
        &self,
        header: &SegmentHeader,
        index: u64,
        path: &Path,
        file_len: u64,
    ) -> Result<(), JournalError> {
        let (next_seq, last_hash) = match self.segments.last() {
            Some(prev) => (prev.scanned_next_seq, prev.scanned_hash),
            None => (header.first_seq, GENESIS_HASH),
        };
        let seq_here = if self.segments.is_empty() { 0 } else { next_seq };
        if header.segment_index != index {
            let reason = format!("file name says segment {index}, header says segment {}", header.segment_index);
            return Err(JournalError::corrupt_at(seq_here, path, 0, reason));
        }
        if file_len > header.segment_bytes {
            let reason = format!("file is {file_len} bytes, longer than its header's {}", header.segment_bytes);
            return Err(JournalError::corrupt(seq_here, path, reason));
        }
        if self.segments.is_empty() && header.prev_hash != GENESIS_HASH {
            let reason = format!("first segment's prev_hash is {:#018x}, not the genesis hash", header.prev_hash);
            return Err(JournalError::corrupt_at(header.first_seq, path, 0, reason));
        }
        if header.first_seq != next_seq || header.prev_hash != last_hash {
            let reason = format!(
                "chain broken: header starts at seq {} after hash {:#018x}, but the previous \
                 segment ends before seq {next_seq} with hash {last_hash:#018x}",
                header.first_seq, header.prev_hash
            );
            return Err(JournalError::corrupt_at(next_seq, path, 0, reason));
        }
        Ok(())
    }

    /// Judges what follows the last record of the last segment, read-only, by the rules
    /// recovery applies: `Ok(None)` for a clean end, `Ok(Some(_))` for a torn tail (which the
    /// writer's recovery would cut), [`JournalError::Corrupt`] for anything else (see
    /// [`tail`](crate::tail)).
    ///
    /// Run it on a journal no writer is appending to: a record being written looks torn.
    pub fn torn_tail(&self) -> Result<Option<TornTail>, JournalError> {
        Ok(self.last_end()?.and_then(|end| end.torn_tail()))
    }

    /// The last segment's end and the verdict on the bytes after it; `None` without segments.
    pub(crate) fn last_end(&self) -> Result<Option<LastEnd>, JournalError> {
        let Some(last) = self.segments.last() else {
            return Ok(None);
        };
        let end_off = last.scanned_off;
        let dirty_end = match tail::judge_after_end(last.bytes(), last.header.segment_index, end_off) {
            AfterEnd::Zeros => None,
            AfterEnd::Torn { dirty_end } => Some(dirty_end),
            AfterEnd::Damage(reason) => {
                let reason = match last.stop_fault {
                    Some(fault) => format!("{fault}; {reason}"),
                    None => reason,
                };
                return Err(JournalError::corrupt_at(last.scanned_next_seq, &last.path, end_off as u64, reason));
            }
        };
        Ok(Some(LastEnd {
            header: last.header,
            path: last.path.clone(),
            file_len: last.file_len,
            end_off,
            next_seq: last.scanned_next_seq,
            dirty_end,
            fault: last.stop_fault,
        }))
    }

    /// The rolling hash of the last record seen (the last segment's `prev_hash` if it holds no
    /// record; `GENESIS_HASH` without segments).
    pub(crate) fn last_hash(&self) -> u64 {
        self.segments.last().map_or(GENESIS_HASH, |s| s.scanned_hash)
    }

    /// The first seq of the journal, if it has a segment.
    pub fn first_seq(&self) -> Option<u64> {
        self.segments.first().map(|s| s.header.first_seq)
    }

    /// The seq after the last record seen by the last `refresh` (or `open`); 0 if the journal
    /// has no segment.
    pub fn next_seq(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.scanned_next_seq)
    }

    /// How many segment files are mapped.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Iterates from the first record.
    pub fn iter(&self) -> RecordIter<'_> {
        RecordIter {
            reader: self,
            segment_pos: 0,
            off: SEGMENT_HEADER_BYTES as usize,
            next_seq: self.first_seq().unwrap_or(0),
            failed: false,
        }
    }

    /// Iterates from record `seq`, which must be within `first_seq()..=next_seq()` (so
    /// `next_seq()` positions a tailing iterator at the end). An empty journal gives an empty
    /// iterator whatever `seq` is.
    pub fn iter_from(&self, seq: u64) -> Result<RecordIter<'_>, JournalError> {
        let Some(first) = self.first_seq() else {
            return Ok(self.iter());
        };
        let next = self.next_seq();
        if seq < first || seq > next {
            return Err(JournalError::SeqNotFound { seq, first, next });
        }
        // The last segment whose first seq is <= seq holds it (or ends just before it).
        let segment_pos = self.segments.partition_point(|s| s.header.first_seq <= seq) - 1;
        let segment = &self.segments[segment_pos];
        let entry = segment.sparse.partition_point(|&(indexed, _)| indexed <= seq);
        let (mut at_seq, mut off) = match entry.checked_sub(1) {
            Some(entry) => segment.sparse[entry],
            None => (segment.header.first_seq, SEGMENT_HEADER_BYTES as usize),
        };
        while at_seq < seq {
            // Frames before `scanned_off` were verified by the scan, so their heads parse.
            let Ok(head) = frame::peek_head(segment.bytes(), off) else {
                let reason = format!("record {at_seq} vanished from offset {off}");
                return Err(JournalError::corrupt_at(at_seq, &segment.path, off as u64, reason));
            };
            off += head.frame_bytes;
            at_seq += 1;
        }
        Ok(RecordIter { reader: self, segment_pos, off, next_seq: seq, failed: false })
    }
}

/// Where the last segment's records end, and what follows them.
#[derive(Debug)]
pub(crate) struct LastEnd {
    pub(crate) header: SegmentHeader,
    pub(crate) path: PathBuf,
    pub(crate) file_len: u64,
    /// Offset of the first position without a valid record.
    pub(crate) end_off: usize,
    /// The seq a record at `end_off` would have.
    pub(crate) next_seq: u64,
    /// One torn frame's non-zero bytes end here; `None`: only zeros after `end_off`.
    pub(crate) dirty_end: Option<usize>,
    /// Why the bytes at `end_off` are not a record, if they are not simply absent.
    pub(crate) fault: Option<FrameFault>,
}

impl LastEnd {
    /// Whether the file is shorter than its header says (recovery extends it).
    pub(crate) fn is_short(&self) -> bool {
        self.file_len < self.header.segment_bytes
    }

    /// The torn tail this end amounts to: a torn frame, or a short file; `None` if clean.
    pub(crate) fn torn_tail(&self) -> Option<TornTail> {
        let mut reasons = Vec::new();
        if self.dirty_end.is_some() {
            reasons.push(match self.fault {
                Some(fault) => fault.to_string(),
                None => "uncommitted bytes after the last record".to_owned(),
            });
        }
        if self.is_short() {
            reasons.push(format!(
                "file was {} bytes, shorter than its header's {} (recovery extends it)",
                self.file_len, self.header.segment_bytes
            ));
        }
        (!reasons.is_empty()).then(|| TornTail {
            seq: self.next_seq,
            file: self.path.clone(),
            offset: self.end_off as u64,
            reason: reasons.join("; "),
        })
    }
}

/// Iterator over verified records, yielding `Err` once (then `None`) on corruption.
///
/// Not fused: at the end of the last mapped segment it returns `None`, and a later `next()`
/// yields records the writer has appended since.
pub struct RecordIter<'a> {
    reader: &'a JournalReader,
    segment_pos: usize,
    off: usize,
    next_seq: u64,
    failed: bool,
}

impl std::fmt::Debug for RecordIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIter")
            .field("segment_pos", &self.segment_pos)
            .field("off", &self.off)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl<'a> RecordIter<'a> {
    /// The seq the next yielded record will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// At the end of segment `segment_pos` (which has a successor): checks the successor's
    /// header continues the chain and moves to it.
    fn cross_segment(&mut self, segment: &ReaderSegment) -> Result<(), JournalError> {
        let next = &self.reader.segments[self.segment_pos + 1];
        let mut stored = [0u8; 8];
        stored.copy_from_slice(&segment.bytes()[self.off - 8..self.off]);
        let last_hash = u64::from_le_bytes(stored);
        if next.header.first_seq != self.next_seq || next.header.prev_hash != last_hash {
            let reason = format!(
                "chain broken: segment starts at seq {} after hash {:#018x}, but the previous \
                 segment ends before seq {} with hash {last_hash:#018x}",
                next.header.first_seq, next.header.prev_hash, self.next_seq
            );
            return Err(JournalError::corrupt_at(self.next_seq, &next.path, 0, reason));
        }
        self.segment_pos += 1;
        self.off = SEGMENT_HEADER_BYTES as usize;
        Ok(())
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<'a>, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let reader: &'a JournalReader = self.reader;
            let segment = reader.segments.get(self.segment_pos)?;
            let index = segment.header.segment_index;
            match frame::parse_frame(segment.bytes(), self.off, self.next_seq, index) {
                FrameCheck::Valid(found) => {
                    let record = Record {
                        seq: found.seq,
                        payload: found.payload,
                        hash: found.hash,
                        segment_index: index,
                        frame_offset: self.off as u64,
                    };
                    self.off += found.frame_bytes;
                    self.next_seq += 1;
                    return Some(Ok(record));
                }
                _ if self.segment_pos + 1 == reader.segments.len() => return None,
                FrameCheck::Invalid(fault) => {
                    self.failed = true;
                    let reason = fault.to_string();
                    return Some(Err(JournalError::corrupt_at(self.next_seq, &segment.path, self.off as u64, reason)));
                }
                FrameCheck::End => {
                    if let Err(err) = self.cross_segment(segment) {
                        self.failed = true;
                        return Some(Err(err));
                    }
                }
            }
        }
    }
}
