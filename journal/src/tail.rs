//! The bytes after a segment's last valid record: nothing, one torn frame, or damage.
//!
//! The scan of a segment stops at offset `B`, the first position that holds no valid record.
//! What lies at and after `B` is judged from the bytes alone (no I/O here):
//!
//! * **Nothing**: every byte from `B` to the end of the segment's data is zero.
//! * **One torn frame**: non-zero bytes confined to the extent of one frame starting at `B`
//!   (`frame_len(payload_len)` if the header word at `B` has a plausible length, else
//!   `MAX_FRAME_BYTES`, since a write torn before its length landed has unknown length), with
//!   no plausible frame header (magic, length, segment index) at any frame position (multiple
//!   of 16) after `B`, and only zeros after the extent. That is what a crash in the middle of
//!   an `append` leaves: the writer writes one frame at a time into zeroed space.
//! * **Damage**: anything else (a valid-looking record after `B`, as a flipped bit or a zeroed
//!   page mid-log followed by intact records leaves; non-zero bytes beyond a torn frame's
//!   reach).
//!
//! Whether a torn frame may be cut is not decided here: only in the last segment, and only
//! beyond the commit mark (see [`reader`](crate::reader) and [`recovery`](crate::recovery)).

use std::path::PathBuf;

use crate::frame::{self, FRAME_ALIGN, MAX_FRAME_BYTES};

/// A torn tail: an incomplete record after the last complete one, beyond the commit mark.
/// Recovery cuts it (and reports it); a read-only reader reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The seq the torn record would have had (`last_seq + 1`).
    pub seq: u64,
    /// The segment file it is in.
    pub file: PathBuf,
    /// Byte offset of the torn frame within the file.
    pub offset: u64,
    /// Why the bytes at `offset` are not a record.
    pub reason: String,
}

/// The judgement of the bytes from the end of a segment's valid records to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterEnd {
    /// Only zeros.
    Zeros,
    /// One torn frame occupying `end_off..dirty_end` (its last non-zero byte is at
    /// `dirty_end - 1`), and zeros after it.
    Torn {
        /// One past the last non-zero byte.
        dirty_end: usize,
    },
    /// Anything else; the reason names offsets.
    Damage(String),
}

/// Judges `bytes[end_off..]`, where `bytes` is segment `segment_index`'s data (its mapping
/// clipped to the segment size) and `end_off` the first position without a valid record.
pub(crate) fn judge_after_end(bytes: &[u8], segment_index: u64, end_off: usize) -> AfterEnd {
    let Some(first_dirty) = bytes.get(end_off..).and_then(first_nonzero) else {
        return AfterEnd::Zeros;
    };
    // Look for plausible frame headers at frame positions from the first non-zero byte on.
    let align = FRAME_ALIGN as usize;
    let mut probe = (end_off + first_dirty) / align * align;
    if probe == end_off {
        probe += align;
    }
    while probe < bytes.len() {
        if let Some(seq) = frame::looks_like_frame(bytes, probe, segment_index) {
            return AfterEnd::Damage(format!(
                "a valid-looking record (seq {seq}) at offset {probe} follows the first invalid position at \
                 offset {end_off}"
            ));
        }
        probe += align;
    }
    let extent_end = torn_extent_end(bytes, end_off);
    if let Some(stray) = first_nonzero(&bytes[extent_end..]) {
        return AfterEnd::Damage(format!(
            "non-zero byte at offset {} beyond the log's end at offset {end_off} (a torn frame there could \
             reach at most offset {extent_end})",
            extent_end + stray
        ));
    }
    match last_nonzero(&bytes[end_off..extent_end]) {
        Some(last) => AfterEnd::Torn { dirty_end: end_off + last + 1 },
        None => AfterEnd::Zeros,
    }
}

/// The end of the region a torn frame at `start` could have written.
fn torn_extent_end(bytes: &[u8], start: usize) -> usize {
    let any_frame = (start + MAX_FRAME_BYTES as usize).min(bytes.len());
    match frame::peek_head(bytes, start) {
        Ok(head) => start + head.frame_bytes,
        // A header word too damaged to give a length: a torn write cannot produce that (the
        // word is written in one aligned store), but its frame is at most MAX_FRAME_BYTES.
        Err(_) => any_frame,
    }
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
    fn zeros_a_torn_frame_and_stray_bytes_are_told_apart() {
        let mut bytes = vec![0u8; 4096];
        assert_eq!(judge_after_end(&bytes, 1, 64), AfterEnd::Zeros);
        // Payload bytes of a frame whose header word never landed: within one frame.
        bytes[100] = 7;
        assert_eq!(judge_after_end(&bytes, 1, 64), AfterEnd::Torn { dirty_end: 101 });
        // A byte beyond what any frame at 64 could reach.
        let mut long = vec![0u8; 64 + MAX_FRAME_BYTES as usize + 64];
        long[64 + MAX_FRAME_BYTES as usize + 8] = 1;
        assert!(matches!(judge_after_end(&long, 1, 64), AfterEnd::Damage(reason) if reason.contains("non-zero byte")));
    }
}
