//! The journal's typed errors. Every variant carries the offending value.

use std::io;
use std::path::PathBuf;

/// Everything the journal can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system call failed (open, map, list, preallocate, write).
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// `JournalConfig::segment_bytes` is outside the allowed range or not a whole number of pages.
    #[error(
        "segment size {segment_bytes} bytes is invalid: it must be a multiple of the page size \
         {page_bytes} within {min}..={max}"
    )]
    InvalidSegmentBytes {
        /// The configured size.
        segment_bytes: u64,
        /// This machine's page size.
        page_bytes: u64,
        /// `MIN_SEGMENT_BYTES`.
        min: u64,
        /// `MAX_SEGMENT_BYTES`.
        max: u64,
    },

    /// A payload is larger than `MAX_PAYLOAD_BYTES`.
    #[error("payload of {len} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The payload's length.
        len: u64,
        /// `MAX_PAYLOAD_BYTES`.
        max: u64,
    },

    /// `append` was given a seq that is not `last_seq + 1` (or 0 on an empty journal).
    #[error("append out of sequence: expected seq {expected}, got {got}")]
    SeqOutOfOrder {
        /// The only seq the journal accepts next.
        expected: u64,
        /// The seq that was offered.
        got: u64,
    },

    /// The journal on disk fails verification somewhere other than a provably torn tail.
    ///
    /// Recovery refuses to open such a journal: nothing is truncated or repaired.
    #[error("journal is corrupt at seq {seq} in {file}{}: {reason}", AtOffset(*offset))]
    Corrupt {
        /// The first seq that could not be verified (0 when the damage precedes any known seq,
        /// e.g. a broken header of the first segment).
        seq: u64,
        /// The file that holds the damage: a segment file, the commit mark, or the name of a
        /// missing segment file.
        file: PathBuf,
        /// Byte offset of the damage within `file`: the start of the frame that fails (or of
        /// the bytes that should not be there), 0 for a segment header; `None` when the damage
        /// is not at a place in a file (a missing file, a file of the wrong length).
        offset: Option<u64>,
        /// What failed, with the offending values.
        reason: String,
    },

    /// The journal directory holds segment files but no commit mark (`commit.mark`): written
    /// before format version 2, which added the mark, or the mark was deleted. Which records
    /// were committed is unknown, so the journal is refused rather than guessed at.
    #[error(
        "journal {dir} has {segments} segment files but no commit mark ({dir}/commit.mark): it was written \
         before format version 2 (which added the mark) or the mark was deleted; which records were committed \
         is unknown, so the journal is refused"
    )]
    MarkMissing {
        /// The journal directory.
        dir: PathBuf,
        /// How many segment files it holds.
        segments: u64,
    },

    /// An msync/fsync failed. The writer is now poisoned: this is the last error other than
    /// [`JournalError::Poisoned`] that it returns.
    #[error("sync of {file} failed, the writer is poisoned: {source}")]
    SyncFailed {
        /// The segment (or directory) being synced.
        file: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// An earlier sync or write failed; the writer accepts nothing more. Reopen the journal
    /// (recovery decides what is on disk) rather than retrying: a failed msync may have dropped
    /// dirty pages, so "retry until it works" could acknowledge data that is lost.
    #[error("writer is poisoned by an earlier failed sync or write; reopen the journal to recover")]
    Poisoned,

    /// Another writer holds the journal directory's lock.
    #[error("journal directory {dir} is locked by another writer")]
    Locked {
        /// The journal directory.
        dir: PathBuf,
    },

    /// `JournalReader::iter_from` was asked for a seq outside `first..=next`.
    #[error("seq {seq} is not in the journal (first seq {first}, next seq {next})")]
    SeqNotFound {
        /// The requested seq.
        seq: u64,
        /// The first seq in the journal.
        first: u64,
        /// The seq after the last record seen at the last `refresh`.
        next: u64,
    },
}

impl JournalError {
    /// Wraps an `io::Error` with the path it was about.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        JournalError::Io { path: path.into(), source }
    }

    /// Builds a [`JournalError::Corrupt`] about a whole file (no offset).
    pub(crate) fn corrupt(seq: u64, file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        JournalError::Corrupt { seq, file: file.into(), offset: None, reason: reason.into() }
    }

    /// Builds a [`JournalError::Corrupt`] about the bytes at `offset` of `file`.
    pub(crate) fn corrupt_at(seq: u64, file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        JournalError::Corrupt { seq, file: file.into(), offset: Some(offset), reason: reason.into() }
    }
}

/// Renders `Some(offset)` as ` at offset N` in error messages, `None` as nothing.
struct AtOffset(Option<u64>);

impl std::fmt::Display for AtOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(offset) => write!(f, " at offset {offset}"),
            None => Ok(()),
        }
    }
}
