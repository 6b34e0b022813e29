//! A sequenced transaction's record bytes: what a ring slot carries and a journal stores.
//!
//! The record is the `rkyv` archive of a [`SequencedTx`]: fixed size ([`RECORD_BYTES`]),
//! little-endian, 16-byte aligned in memory. The engine reads it in place.

use rkyv::rancor;

use crate::tx::{ArchivedSequencedTx, SequencedTx, RECORD_BYTES};

/// Record bytes with the alignment `rkyv` needs to access them in place.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct RecordBytes(pub [u8; RECORD_BYTES]);

impl core::fmt::Debug for RecordBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RecordBytes({} bytes)", RECORD_BYTES)
    }
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Wrong length.
    #[error("record is {got} bytes, expected {RECORD_BYTES}")]
    Length {
        /// Length given.
        got: usize,
    },
    /// Not 16-byte aligned in memory.
    #[error("record bytes are not 16-byte aligned")]
    Misaligned,
    /// The archive does not validate (bad enum tag, bad bool, ...).
    #[error("record does not validate: {0}")]
    Invalid(String),
}

impl RecordBytes {
    /// Archives a sequenced transaction.
    #[must_use]
    pub fn encode(stx: &SequencedTx) -> Self {
        let mut out = Self([0; RECORD_BYTES]);
        match rkyv::to_bytes::<rancor::Error>(stx) {
            Ok(bytes) if bytes.len() == RECORD_BYTES => out.0.copy_from_slice(&bytes),
            // A fixed-size archive into memory cannot fail or change size; keep zeros, which
            // fail validation loudly downstream rather than carrying a wrong record.
            _ => debug_assert!(false, "fixed-size archive"),
        }
        out
    }

    /// The archived view, trusting these bytes (they were produced by [`RecordBytes::encode`]).
    #[must_use]
    pub fn archived(&self) -> &ArchivedSequencedTx {
        // SAFETY: `encode` wrote a valid archive of exactly this type; the buffer is aligned.
        unsafe { rkyv::access_unchecked::<ArchivedSequencedTx>(&self.0) }
    }
}

/// Validates untrusted record bytes (from a file, a network, a journal being audited) and
/// returns the archived view, in place.
///
/// # Errors
/// [`RecordError`] when the length, alignment or archive is wrong.
pub fn access_record(bytes: &[u8]) -> Result<&ArchivedSequencedTx, RecordError> {
    if bytes.len() != RECORD_BYTES {
        return Err(RecordError::Length { got: bytes.len() });
    }
    if bytes.as_ptr().align_offset(16) != 0 {
        return Err(RecordError::Misaligned);
    }
    rkyv::access::<ArchivedSequencedTx, rancor::Error>(bytes).map_err(|e| RecordError::Invalid(e.to_string()))
}

/// Accesses record bytes without validation: for bytes this process wrote itself (ring slots).
///
/// # Safety
/// `bytes` must be exactly [`RECORD_BYTES`] long, 16-byte aligned, and hold a valid archive
/// (e.g. from [`RecordBytes::encode`] or validated by [`access_record`] before).
#[must_use]
pub unsafe fn access_record_trusted(bytes: &[u8]) -> &ArchivedSequencedTx {
    // SAFETY: the caller guarantees length, alignment and validity.
    unsafe { rkyv::access_unchecked::<ArchivedSequencedTx>(bytes) }
}

/// The native form of an archived record (for tools; the engine never needs it).
///
/// # Errors
/// [`RecordError::Invalid`] if the archive cannot be deserialised.
pub fn to_native(archived: &ArchivedSequencedTx) -> Result<SequencedTx, RecordError> {
    rkyv::deserialize::<SequencedTx, rancor::Error>(archived).map_err(|e| RecordError::Invalid(e.to_string()))
}
