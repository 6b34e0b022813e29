//! What lies after the last verified record of a journal, judged without modifying anything.
//!
//! `JournalReader` yields verified records and, in the last segment, treats the first position
//! without one as "not written yet" (it may be tailing a live writer). Only the writer's
//! recovery tells a torn tail from damage, and it cuts the tail as it goes. `replay`,
//! `inspect` and `verify` must not write to the journal they read, so this module applies the
//! journal's documented rules (see `verex_journal`'s crate docs and its `recovery` module) to
//! the last segment, read-only:
//!
//! * only zeros after the last record, and a file of its header's full size: a clean end;
//! * non-zero bytes confined to the extent of one frame at that position, with no plausible
//!   frame header (magic, length, segment index) at any later 16-byte boundary: a torn tail,
//!   what a crash in the middle of an append leaves (the next `verex run` cuts it); a file
//!   shorter than its header says is reported the same way (recovery extends it);
//! * anything else (a valid-looking record after the failing position, stray bytes beyond a
//!   torn frame's reach): corruption, which recovery refuses too.
//!
//! Run it on a journal no writer is appending to: a record being written looks torn.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use verex_journal::{
    chain_hash, frame_len, padded_len, FRAME_ALIGN, FRAME_HEADER_BYTES, FRAME_MAGIC, MAX_FRAME_BYTES,
    MAX_PAYLOAD_BYTES, SEGMENT_HEADER_BYTES,
};

use crate::error::CliError;

/// Bytes read at a time while checking that the rest of a segment is zero.
const ZERO_CHECK_CHUNK_BYTES: usize = 1 << 20;

/// Where the verified records end: the last segment, the offset after its last verified frame,
/// the seq that would come next and the hash before it.
#[derive(Debug, Clone)]
pub struct LogEnd {
    /// The last segment file.
    pub file: PathBuf,
    /// Its index.
    pub segment_index: u64,
    /// Offset of the first position without a verified record.
    pub offset: u64,
    /// The seq a record at `offset` would have.
    pub next_seq: u64,
    /// `h[next_seq - 1]`.
    pub prev_hash: u64,
}

/// The verdict on the bytes from [`LogEnd::offset`] to the end of the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Zeros up to the segment's full size.
    Clean,
    /// A torn last record (or a short file): `verex run` would cut it.
    Torn {
        /// The seq the torn record would have had.
        seq: u64,
        /// The segment file.
        file: PathBuf,
        /// Where the torn bytes start.
        offset: u64,
        /// Why the bytes there are not a record.
        reason: String,
    },
    /// Damage that is not a torn write: recovery would refuse the journal.
    Corrupt {
        /// The first seq that does not verify.
        seq: u64,
        /// The segment file.
        file: PathBuf,
        /// What is wrong, with offsets.
        reason: String,
    },
}

impl Tail {
    /// One line for standard error or an error message.
    pub fn describe(&self) -> String {
        match self {
            Tail::Clean => "clean end".to_string(),
            Tail::Torn { seq, file, offset, reason } => format!(
                "torn tail: seq {seq} at offset {offset} of {} is not a complete record ({reason})",
                file.display()
            ),
            Tail::Corrupt { seq, file, reason } => {
                format!("journal is corrupt at seq {seq} in {}: {reason}", file.display())
            }
        }
    }
}

/// The name of segment `index` in `dir` (20 digits, `.seg`: the journal's documented format).
pub fn segment_file(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.seg"))
}

fn u64_at(bytes: &[u8], off: usize) -> Option<u64> {
    bytes.get(off..off + 8).map(|word| u64::from_le_bytes(word.try_into().unwrap_or([0; 8])))
}

/// Judges the bytes after the verified records.
///
/// # Errors
/// [`CliError::Io`] when the segment cannot be read.
pub fn diagnose(end: &LogEnd) -> Result<Tail, CliError> {
    let path = &end.file;
    let file = File::open(path).map_err(|e| CliError::io("open", path, e))?;
    let file_len = file.metadata().map_err(|e| CliError::io("read", path, e))?.len();
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    file.read_exact_at(&mut header, 0).map_err(|e| CliError::io("read", path, e))?;
    let segment_bytes = u64_at(&header, 32).unwrap_or(0);
    let limit = file_len.min(segment_bytes);
    if end.offset >= limit || all_zero_from(&file, path, end.offset, limit)? {
        if file_len < segment_bytes {
            let reason = format!("the file is {file_len} bytes, shorter than its header's {segment_bytes}");
            return Ok(Tail::Torn { seq: end.next_seq, file: path.clone(), offset: file_len, reason });
        }
        return Ok(Tail::Clean);
    }
    let mut rest = vec![0u8; usize::try_from(limit - end.offset).unwrap_or(usize::MAX)];
    file.read_exact_at(&mut rest, end.offset).map_err(|e| CliError::io("read", path, e))?;
    Ok(judge_dirty_tail(end, &rest))
}

/// Whether `offset..limit` of `file` is all zeros.
fn all_zero_from(file: &File, path: &Path, offset: u64, limit: u64) -> Result<bool, CliError> {
    let mut chunk = vec![0u8; ZERO_CHECK_CHUNK_BYTES];
    let mut at = offset;
    while at < limit {
        let want = usize::try_from(limit - at).unwrap_or(usize::MAX).min(chunk.len());
        file.read_exact_at(&mut chunk[..want], at).map_err(|e| CliError::io("read", path, e))?;
        if chunk[..want].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += want as u64;
    }
    Ok(true)
}

/// `rest` holds the segment from the end of the verified records on, and is not all zero.
fn judge_dirty_tail(end: &LogEnd, rest: &[u8]) -> Tail {
    let corrupt = |reason: String| Tail::Corrupt { seq: end.next_seq, file: end.file.clone(), reason };
    let align = FRAME_ALIGN as usize;
    let mut probe = align;
    while probe + FRAME_HEADER_BYTES as usize <= rest.len() {
        if let Some(seq) = plausible_frame(rest, probe, end.segment_index) {
            return corrupt(format!(
                "the bytes at offset {} do not verify ({}), but a valid-looking record (seq {seq}) follows at \
                 offset {}",
                end.offset,
                why_not_a_record(end, rest),
                end.offset + probe as u64
            ));
        }
        probe += align;
    }
    let extent = match frame_head(rest, 0) {
        Some(payload_len) => frame_len(payload_len) as usize,
        None => MAX_FRAME_BYTES as usize,
    };
    if let Some(stray) = rest.get(extent..).and_then(|after| after.iter().position(|&b| b != 0)) {
        return corrupt(format!(
            "non-zero byte at offset {} beyond the reach of a torn record at offset {}",
            end.offset + (extent + stray) as u64,
            end.offset
        ));
    }
    Tail::Torn { seq: end.next_seq, file: end.file.clone(), offset: end.offset, reason: why_not_a_record(end, rest) }
}

/// The payload length of a frame header at `off` with the right magic and a possible length.
fn frame_head(bytes: &[u8], off: usize) -> Option<u64> {
    let word = u64_at(bytes, off)?;
    let payload_len = word & u64::from(u32::MAX);
    ((word >> 32) as u32 == FRAME_MAGIC && payload_len <= MAX_PAYLOAD_BYTES).then_some(payload_len)
}

/// The seq of a plausible frame of segment `segment_index` at `off` (magic, length, room and
/// segment index; not the hash).
fn plausible_frame(bytes: &[u8], off: usize, segment_index: u64) -> Option<u64> {
    let payload_len = frame_head(bytes, off)?;
    if off + frame_len(payload_len) as usize > bytes.len() {
        return None;
    }
    let index_off = off + (FRAME_HEADER_BYTES + padded_len(payload_len)) as usize;
    (u64_at(bytes, index_off)? == segment_index).then(|| u64_at(bytes, off + 8).unwrap_or(0))
}

/// Why the bytes at the start of `rest` are not the record `end.next_seq`.
fn why_not_a_record(end: &LogEnd, rest: &[u8]) -> String {
    let Some(payload_len) = frame_head(rest, 0) else {
        return "no frame header there".to_string();
    };
    let hashed = (FRAME_HEADER_BYTES + padded_len(payload_len) + 8) as usize;
    let (Some(region), Some(stored)) = (rest.get(..hashed), u64_at(rest, hashed)) else {
        return format!("a frame of {} bytes runs past the end of the segment", frame_len(payload_len));
    };
    let seq = u64_at(rest, 8).unwrap_or(0);
    if seq != end.next_seq {
        return format!("frame seq {seq}, expected {}", end.next_seq);
    }
    let computed = chain_hash(end.prev_hash, region);
    if computed != stored {
        return format!("xxh3 chain hash mismatch: stored {stored:#018x}, computed {computed:#018x}");
    }
    "the frame's padding or segment index is wrong".to_string()
}
