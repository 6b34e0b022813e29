//! Record framing: encode a record into a segment mapping, decode and verify it, and the
//! rolling hash that chains records together.
//!
//! A frame at offset `off` (a multiple of 16) of a segment:
//!
//! ```text
//! off+0            u32 payload_len    bytes of payload, <= MAX_PAYLOAD_BYTES
//! off+4            u32 frame_magic    FRAME_MAGIC; a zero word at off+0..8 means "no record here"
//! off+8            u64 seq            the record's sequence number
//! off+16           payload            payload_len bytes, 16-byte aligned, then zeros up to a
//!                                     multiple of 16 (`padded` bytes in all)
//! off+16+padded    u64 segment_index  the index of the segment file holding the frame
//! off+24+padded    u64 hash           h[n], see below
//! ```
//!
//! Payloads are 16-byte aligned (not just 8) because the engine's records are `rkyv` archives
//! it reads in place with 16-byte alignment. A frame is `32 + padded` bytes, a multiple of 16.
//!
//! `record[n]` is the frame from `off` up to (not including) its hash field: the 16 header
//! bytes, the payload, its zero padding and the segment index: `24 + padded` bytes. The
//! rolling hash is `h[n] = xxh3_64(h[n-1].to_le_bytes() ‖ record[n])` (XXH3 64-bit, seed 0,
//! default secret). `h[n-1]` is physically the 8 bytes just before the frame: the previous
//! frame's stored hash, or the segment header's `prev_hash` for a segment's first frame; so the
//! hash input is one contiguous region `[off - 8, off + 24 + padded)` of the mapping.
//!
//! Publication order (so that a concurrent reader and a crash both see something sensible):
//! the header, payload, padding and segment index are written first, the hash last with a
//! release store. A reader loads the hash with acquire before reading the rest, and accepts a
//! frame only if the recomputed hash matches.

use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_64;

/// Marks a frame header: "VXR1" read as a little-endian u32.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"VXR1");
/// Bytes before a frame's payload: `payload_len`, `frame_magic`, `seq`.
pub const FRAME_HEADER_BYTES: u64 = 16;
/// Bytes after the padded payload: `segment_index` and the stored rolling hash.
pub const FRAME_TRAILER_BYTES: u64 = 16;
/// Frames and payloads start at multiples of this many bytes within a segment.
pub const FRAME_ALIGN: u64 = 16;
/// The largest payload one record may carry. Engine ring slots are 512 bytes; 16 KiB leaves
/// room while keeping several maximal records in the smallest segment and bounding the region a
/// torn frame can cover (see recovery).
pub const MAX_PAYLOAD_BYTES: u64 = 16 * 1024;
/// The largest frame: a maximal payload with its header and trailer.
pub const MAX_FRAME_BYTES: u64 = frame_len(MAX_PAYLOAD_BYTES);
/// The smallest frame: an empty payload.
pub(crate) const MIN_FRAME_BYTES: u64 = frame_len(0);

const _: () = assert!(FRAME_HEADER_BYTES.is_multiple_of(FRAME_ALIGN), "payload must stay aligned");
const _: () = assert!(FRAME_TRAILER_BYTES.is_multiple_of(FRAME_ALIGN), "frames must stay aligned");
const _: () = assert!(MAX_PAYLOAD_BYTES <= u32::MAX as u64, "payload_len is a u32");

/// `len` rounded up to a multiple of [`FRAME_ALIGN`].
pub const fn padded_len(len: u64) -> u64 {
    (len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// Bytes a frame with a `payload_len`-byte payload occupies in a segment.
pub const fn frame_len(payload_len: u64) -> u64 {
    FRAME_HEADER_BYTES + padded_len(payload_len) + FRAME_TRAILER_BYTES
}

/// The reference definition of the rolling hash: `xxh3_64(prev_hash.to_le_bytes() ‖ record)`,
/// where `record` is the frame's header, payload, padding and segment index (everything but
/// the stored hash).
///
/// The writer and reader compute the same value in one call over the contiguous region; this
/// streaming form exists for third-party verifiers and tests.
pub fn chain_hash(prev_hash: u64, record: &[u8]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    hasher.update(&prev_hash.to_le_bytes());
    hasher.update(record);
    hasher.digest()
}

/// Why a position in a segment does not hold the expected record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFault {
    /// The first header word is non-zero but its magic is wrong.
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// `payload_len` exceeds `MAX_PAYLOAD_BYTES`.
    TooLong {
        /// The length found.
        len: u64,
    },
    /// The frame would run past the end of the segment's data.
    PastEnd {
        /// The frame's length.
        frame_bytes: u64,
        /// Bytes left in the segment at this offset.
        room_bytes: u64,
    },
    /// The frame's seq is not the one that must come next.
    WrongSeq {
        /// The seq that must come next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The frame names another segment: a misdirected or stale record.
    WrongSegment {
        /// This segment's index.
        expected: u64,
        /// The index found.
        found: u64,
    },
    /// A padding byte after the payload is not zero.
    NonZeroPadding,
    /// The stored hash differs from `xxh3_64(h[n-1] ‖ record[n])`.
    HashMismatch {
        /// The recomputed hash.
        computed: u64,
        /// The stored hash.
        stored: u64,
    },
}

impl std::fmt::Display for FrameFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            FrameFault::BadMagic { found } => {
                write!(f, "bad frame magic {found:#010x} (want {FRAME_MAGIC:#010x})")
            }
            FrameFault::TooLong { len } => write!(f, "payload length {len} exceeds {MAX_PAYLOAD_BYTES}"),
            FrameFault::PastEnd { frame_bytes, room_bytes } => {
                write!(f, "frame of {frame_bytes} bytes runs past the segment end ({room_bytes} left)")
            }
            FrameFault::WrongSeq { expected, found } => write!(f, "frame seq {found}, expected {expected}"),
            FrameFault::WrongSegment { expected, found } => {
                write!(f, "frame names segment {found}, but it is in segment {expected}")
            }
            FrameFault::NonZeroPadding => write!(f, "non-zero padding after the payload"),
            FrameFault::HashMismatch { computed, stored } => {
                write!(f, "hash mismatch: stored {stored:#018x}, computed {computed:#018x}")
            }
        }
    }
}

/// A verified frame, borrowed from the segment bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub(crate) seq: u64,
    pub(crate) payload: &'a [u8],
    pub(crate) hash: u64,
    pub(crate) frame_bytes: usize,
}

/// What is at a frame position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameCheck<'a> {
    /// A record that verifies.
    Valid(Frame<'a>),
    /// No record: the first header word is zero, or no frame fits in the room left.
    End,
    /// Something that is not a valid record.
    Invalid(FrameFault),
}

/// A frame's lengths, judged from its first word alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameHead {
    pub(crate) payload_len: usize,
    /// `padded_len(payload_len)`.
    pub(crate) padded: usize,
    pub(crate) frame_bytes: usize,
}

/// Loads a little-endian u64 at `off` (a multiple of 8 from a page-aligned mapping) atomically.
fn load_u64(bytes: &[u8], off: usize, order: Ordering) -> u64 {
    let word = &bytes[off..off + 8];
    let ptr = word.as_ptr();
    debug_assert_eq!(ptr as usize % 8, 0, "frame words are 8-byte aligned");
    // SAFETY: `ptr` is in bounds for 8 bytes (the slice above), 8-byte aligned (mappings are
    // page aligned and frame words sit at multiples of 8), and `AtomicU64` has the layout of
    // `u64`. The location is only ever written by atomic stores (see `store_u64`), so this
    // atomic load does not race with a non-atomic write. We only load through it.
    let atomic = unsafe { AtomicU64::from_ptr(ptr.cast_mut().cast::<u64>()) };
    u64::from_le(atomic.load(order))
}

/// Stores a little-endian u64 at `off` atomically (see [`load_u64`]).
fn store_u64(bytes: &mut [u8], off: usize, value: u64, order: Ordering) {
    let word = &mut bytes[off..off + 8];
    let ptr = word.as_mut_ptr();
    debug_assert_eq!(ptr as usize % 8, 0, "frame words are 8-byte aligned");
    // SAFETY: in bounds, aligned, exclusively borrowed in this process; see `load_u64`.
    let atomic = unsafe { AtomicU64::from_ptr(ptr.cast::<u64>()) };
    atomic.store(value.to_le(), order);
}

fn read_u64(bytes: &[u8], off: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[off..off + 8]);
    u64::from_le_bytes(word)
}

/// The first header word: `payload_len` in the low half, `FRAME_MAGIC` in the high half.
const fn head_word(payload_len: u64) -> u64 {
    ((FRAME_MAGIC as u64) << 32) | payload_len
}

/// Writes a frame for `payload` at `off` and returns its hash. The caller guarantees that
/// `off >= 16` is a multiple of 16, that the 8 bytes before `off` hold `h[n-1]`, that
/// `payload.len() <= MAX_PAYLOAD_BYTES` and that the frame fits in `bytes`.
#[inline(always)]
pub(crate) fn write_frame(bytes: &mut [u8], off: usize, seq: u64, segment_index: u64, payload: &[u8]) -> u64 {
    debug_assert!(off >= 16 && off.is_multiple_of(FRAME_ALIGN as usize), "frame offset {off} must be aligned");
    debug_assert!(payload.len() as u64 <= MAX_PAYLOAD_BYTES);
    let len = payload.len();
    let padded = padded_len(len as u64) as usize;
    // Work on the hash input region [off-8, off+24+padded) plus the hash, so there is a single
    // bounds check; indices below are relative to off-8.
    let region = &mut bytes[off - 8..off + FRAME_HEADER_BYTES as usize + padded + FRAME_TRAILER_BYTES as usize];
    let body = 8 + FRAME_HEADER_BYTES as usize;
    store_u64(region, 8, head_word(len as u64), Ordering::Relaxed);
    region[16..24].copy_from_slice(&seq.to_le_bytes());
    region[body..body + len].copy_from_slice(payload);
    if padded > len {
        region[body + len..body + padded].fill(0);
    }
    region[body + padded..body + padded + 8].copy_from_slice(&segment_index.to_le_bytes());
    let hash = xxh3_64(&region[..body + padded + 8]);
    store_u64(region, body + padded + 8, hash, Ordering::Release);
    hash
}

/// Judges the first word at `off`: `Err(None)` if there is no record (a zero word, or no room
/// for any frame), `Err(Some(fault))` if the word cannot start a frame that fits, else the
/// frame's lengths.
pub(crate) fn peek_head(bytes: &[u8], off: usize) -> Result<FrameHead, Option<FrameFault>> {
    let room = bytes.len().saturating_sub(off);
    if room < MIN_FRAME_BYTES as usize {
        return Err(None);
    }
    let word = load_u64(bytes, off, Ordering::Acquire);
    if word == 0 {
        return Err(None);
    }
    let magic = (word >> 32) as u32;
    if magic != FRAME_MAGIC {
        return Err(Some(FrameFault::BadMagic { found: magic }));
    }
    let payload_len = word & u64::from(u32::MAX);
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(Some(FrameFault::TooLong { len: payload_len }));
    }
    let frame_bytes = frame_len(payload_len);
    if frame_bytes > room as u64 {
        return Err(Some(FrameFault::PastEnd { frame_bytes, room_bytes: room as u64 }));
    }
    let padded = padded_len(payload_len) as usize;
    Ok(FrameHead { payload_len: payload_len as usize, padded, frame_bytes: frame_bytes as usize })
}

/// The offset of the stored hash of the frame at `off`.
fn hash_offset(off: usize, head: &FrameHead) -> usize {
    off + FRAME_HEADER_BYTES as usize + head.padded + 8
}

/// Whether `off` holds a frame header that looks like a record of segment `segment_index`
/// (magic, length, room and segment index; not the hash). Returns its seq.
pub(crate) fn looks_like_frame(bytes: &[u8], off: usize, segment_index: u64) -> Option<u64> {
    let head = peek_head(bytes, off).ok()?;
    let segment_off = off + FRAME_HEADER_BYTES as usize + head.padded;
    (read_u64(bytes, segment_off) == segment_index).then(|| read_u64(bytes, off + 8))
}

/// Decodes and verifies the frame at `off`, which must hold `expected_seq` of segment
/// `segment_index`. `bytes` is the segment's data (mapping clipped to the segment size);
/// `off >= 16` is a multiple of 16.
pub(crate) fn parse_frame(bytes: &[u8], off: usize, expected_seq: u64, segment_index: u64) -> FrameCheck<'_> {
    let head = match peek_head(bytes, off) {
        Ok(head) => head,
        Err(None) => return FrameCheck::End,
        Err(Some(fault)) => return FrameCheck::Invalid(fault),
    };
    // Acquire pairs with the writer's release store of the hash: if we see the final hash, we
    // see the whole frame.
    let stored = load_u64(bytes, hash_offset(off, &head), Ordering::Acquire);
    let seq = read_u64(bytes, off + 8);
    if seq != expected_seq || seq == u64::MAX {
        return FrameCheck::Invalid(FrameFault::WrongSeq { expected: expected_seq, found: seq });
    }
    let payload_start = off + FRAME_HEADER_BYTES as usize;
    let segment_off = payload_start + head.padded;
    let found_segment = read_u64(bytes, segment_off);
    if found_segment != segment_index {
        return FrameCheck::Invalid(FrameFault::WrongSegment { expected: segment_index, found: found_segment });
    }
    if bytes[payload_start + head.payload_len..segment_off].iter().any(|&b| b != 0) {
        return FrameCheck::Invalid(FrameFault::NonZeroPadding);
    }
    let computed = xxh3_64(&bytes[off - 8..segment_off + 8]);
    if computed != stored {
        return FrameCheck::Invalid(FrameFault::HashMismatch { computed, stored });
    }
    let payload = &bytes[payload_start..payload_start + head.payload_len];
    debug_assert!(payload.as_ptr().cast::<u8>().align_offset(FRAME_ALIGN as usize) == 0, "payload aligned");
    FrameCheck::Valid(Frame { seq, payload, hash: stored, frame_bytes: head.frame_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-byte aligned, zeroed buffer standing in for a mapping.
    fn buffer(bytes: usize) -> Vec<u128> {
        vec![0u128; bytes / 16]
    }

    fn as_bytes(words: &mut [u128]) -> &mut [u8] {
        // SAFETY: u128 has no padding; u8 has alignment 1; same length in bytes.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 16) }
    }

    #[test]
    fn lengths_round_up_to_sixteen() {
        assert_eq!(padded_len(0), 0);
        assert_eq!(padded_len(1), 16);
        assert_eq!(padded_len(16), 16);
        assert_eq!(padded_len(17), 32);
        assert_eq!(frame_len(0), 32);
        assert_eq!(frame_len(64), 96);
        assert_eq!(frame_len(65), 112);
        assert_eq!(frame_len(512), 544);
        assert_eq!(MAX_FRAME_BYTES, 16 * 1024 + 32);
    }

    #[test]
    fn written_frame_round_trips_and_matches_the_reference_hash() {
        let mut words = buffer(4096);
        let bytes = as_bytes(&mut words);
        bytes[8..16].copy_from_slice(&0xDEAD_BEEFu64.to_le_bytes()); // h[n-1]
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 100, 255] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let hash = write_frame(bytes, 16, 42, 3, &payload);
            let record_end = 16 + frame_len(len as u64) as usize - 8;
            assert_eq!(hash, chain_hash(0xDEAD_BEEF, &bytes[16..record_end]));
            assert_eq!(read_u64(bytes, record_end - 8), 3, "segment index before the hash");
            match parse_frame(bytes, 16, 42, 3) {
                FrameCheck::Valid(frame) => {
                    assert_eq!(frame.seq, 42);
                    assert_eq!(frame.payload, &payload[..]);
                    assert_eq!(frame.payload.as_ptr() as usize % 16, 0);
                    assert_eq!(frame.hash, hash);
                    assert_eq!(frame.frame_bytes as u64, frame_len(len as u64));
                }
                other => panic!("len {len}: {other:?}"),
            }
            bytes[16..].fill(0);
        }
    }

    #[test]
    fn zero_word_is_end_and_no_room_is_end() {
        let mut words = buffer(64);
        let bytes = as_bytes(&mut words);
        assert!(matches!(parse_frame(bytes, 16, 1, 1), FrameCheck::End));
        assert!(matches!(parse_frame(bytes, 48, 1, 1), FrameCheck::End), "16 bytes left < 32");
    }

    #[test]
    fn wrong_seq_and_wrong_segment_are_invalid() {
        let mut words = buffer(256);
        let bytes = as_bytes(&mut words);
        write_frame(bytes, 16, 5, 2, b"hello");
        assert!(matches!(
            parse_frame(bytes, 16, 6, 2),
            FrameCheck::Invalid(FrameFault::WrongSeq { expected: 6, found: 5 })
        ));
        assert!(matches!(
            parse_frame(bytes, 16, 5, 1),
            FrameCheck::Invalid(FrameFault::WrongSegment { expected: 1, found: 2 })
        ));
        assert_eq!(looks_like_frame(bytes, 16, 2), Some(5));
        assert_eq!(looks_like_frame(bytes, 16, 1), None);
    }

    #[test]
    fn every_single_bit_flip_in_a_frame_or_its_predecessor_hash_is_caught() {
        let mut words = buffer(512);
        let bytes = as_bytes(&mut words);
        bytes[8..16].copy_from_slice(&7u64.to_le_bytes());
        let payload = b"a payload of 21 bytes";
        write_frame(bytes, 16, 9, 4, payload);
        let end = 16 + frame_len(payload.len() as u64) as usize;
        for byte in 8..end {
            for bit in 0..8 {
                bytes[byte] ^= 1 << bit;
                let check = parse_frame(bytes, 16, 9, 4);
                assert!(!matches!(check, FrameCheck::Valid(_)), "flip of bit {bit} in byte {byte} passed: {check:?}");
                bytes[byte] ^= 1 << bit;
            }
        }
        assert!(matches!(parse_frame(bytes, 16, 9, 4), FrameCheck::Valid(_)));
    }

    #[test]
    fn frame_running_past_the_end_is_invalid() {
        let mut words = buffer(128);
        let bytes = as_bytes(&mut words);
        write_frame(bytes, 16, 1, 1, &[1u8; 64]);
        let clipped = &bytes[..100];
        assert!(matches!(
            parse_frame(clipped, 16, 1, 1),
            FrameCheck::Invalid(FrameFault::PastEnd { frame_bytes: 96, room_bytes: 84 })
        ));
    }
}
