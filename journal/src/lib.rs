//! `verex-journal`: an append-only, memory-mapped, hash-chained journal of framed byte records.
//!
//! The journal knows nothing of transactions: it stores opaque payloads with their gap-free
//! seq and returns them, zero-copy and 16-byte aligned, straight from the mapping.
//!
//! # On-disk format (version 2)
//!
//! A journal is a directory of segment files named by their index, 20 digits:
//! `00000000000000000001.seg`, `00000000000000000002.seg`, ..., and one commit mark file,
//! `commit.mark`. Every segment file is preallocated (with `fallocate`, never sparse) to its
//! segment size and starts with a 64-byte header (see [`segment`](crate::segment) for the
//! layout): magic, format version, segment index, first seq, segment size, a checksum of the
//! header, and the previous segment's last hash.
//!
//! Frames follow the header back to back, each starting at a multiple of 16 (see
//! [`frame`](crate::frame)):
//!
//! ```text
//! u32 payload_len | u32 FRAME_MAGIC | u64 seq | payload | zero pad to 16 | u64 segment_index | u64 hash
//! ```
//!
//! All integers are fixed-width little-endian. Zeroed space after the last frame marks the
//! end of the data.
//!
//! The commit mark (see [`mark`](crate::mark) for the layout) is an 8 KiB file holding two
//! checksummed 64-byte copies, A at offset 0 and B at offset 4096, each recording a
//! generation, the last committed seq, its chain hash `h[seq]`, and the index of the newest
//! segment created. Writes alternate copies; readers take the valid copy with the highest
//! generation. It is created before the first segment.
//!
//! Version 2 added the commit mark; the segment and frame layouts are those of version 1. A
//! version 1 journal (segments without a mark) is refused with
//! [`JournalError::MarkMissing`], and a version 2 journal by a version 1 build (the segment
//! headers' version), so that no writer ever appends without keeping the mark.
//!
//! # The hash chain
//!
//! `h[n] = xxh3_64(h[n-1].to_le_bytes() ‖ record[n])` (XXH3 64-bit, seed 0), where
//! `record[n]` is the frame's bytes from its first byte up to (not including) its stored hash:
//! the 16 header bytes (`payload_len`, `FRAME_MAGIC`, `seq`), the payload, its zero padding to
//! a multiple of 16, and the 8-byte `segment_index`. `h` before the first record is
//! [`GENESIS_HASH`] (0), and each segment header's `prev_hash` carries the chain across
//! files. See [`chain_hash`] for a reference implementation.
//!
//! Every written byte is covered: the segment header by its checksum, each frame (header,
//! payload, padding, segment index) by its hash, each stored hash by recomputation (and as
//! the prefix of the next frame's hash input), padding and the space after the end by checks
//! that they are zero, each copy of the commit mark by its checksum. Neither xxh3 nor the
//! mark is a defence against a forger (who can recompute both): that is the job of the
//! signatures in the records and of signed attestations.
//!
//! # Commits, and what recovery may cut
//!
//! A commit makes the records appended since the last one durable (msync, per
//! [`Durability`]), **then** writes the commit mark (a `pwrite` of one copy and, in `Sync`
//! and `Batch`, an `fdatasync`), **then** reports the new durable seq. Events are released
//! only for seqs up to a reported durable seq, so no event is ever released for a record the
//! mark does not cover. A roll records the new segment in the mark (synced) right after the
//! segment is durably created, before any record goes into it.
//!
//! Hence recovery's rules ([`recovery`](crate::recovery)): a torn tail (an incomplete frame
//! after the last complete one) can only lie beyond the mark, and only such bytes are cut. A
//! record at or below the mark that fails, records that end before it, a segment the mark
//! knows of that is missing (the newest included, even empty), a record at the mark's seq
//! whose hash is not the committed one: corruption, refused, with an error naming the file
//! that holds the damage, the byte offset, and the seq. [`JournalReader`] applies the same
//! rules read-only.
//!
//! # Modules
//!
//! * [`segment`](crate::segment): the header, file naming, durable creation, preallocation.
//! * [`frame`](crate::frame): frame encoding, decoding, verification and the rolling hash.
//! * [`mark`](crate::mark): the commit mark file, [`CommitMark`].
//! * [`writer`](crate::writer): [`JournalWriter`], [`JournalConfig`], [`Durability`].
//! * [`recovery`](crate::recovery): the scan on open, torn tail versus corruption, the cut.
//! * [`tail`](crate::tail): the judgement of the bytes after a segment's last record, [`TornTail`].
//! * `roller`: the writer's helper thread, preparing the next segment and retiring the
//!   finished one off the writer's thread.
//! * [`reader`](crate::reader): [`JournalReader`], [`Record`], verification against the mark,
//!   seeking and tailing.
//! * [`error`](crate::error): [`JournalError`].

#![deny(missing_docs, clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod frame;
pub mod mark;
pub mod reader;
pub mod recovery;
mod roller;
pub mod segment;
pub mod tail;
pub mod writer;

#[doc(hidden)]
pub mod test_support;

pub use error::JournalError;
pub use frame::{
    chain_hash, frame_len, padded_len, FrameFault, FRAME_ALIGN, FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_TRAILER_BYTES,
    MAX_FRAME_BYTES, MAX_PAYLOAD_BYTES,
};
pub use mark::{CommitMark, MARK_FILE_NAME};
pub use reader::{JournalReader, Record, RecordIter, SPARSE_INDEX_STRIDE};
pub use recovery::RecoveryReport;
pub use segment::{
    DEFAULT_SEGMENT_BYTES, FORMAT_VERSION, GENESIS_HASH, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, SEGMENT_HEADER_BYTES,
    SEGMENT_MAGIC,
};
pub use tail::TornTail;
pub use writer::{Durability, JournalConfig, JournalWriter, LOCK_FILE_NAME};
