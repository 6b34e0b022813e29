//! A sequenced transaction's record bytes: what a ring slot carries and a journal stores.
//!
//! The record is the `rkyv` archive of a [`SequencedTx`]: fixed size ([`RECORD_BYTES`]),
//! little-endian, 16-byte aligned in memory. The engine reads it in place.

use rkyv::rancor;

use crate::tx::{ArchivedSequencedTx, ArchivedSignedTx, Op, SequencedTx, SignedTx, Tx, RECORD_BYTES};

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

/// Bytes of an archived [`SignedTx`]: the part of a record the signer signed (plus signature).
pub const SIGNED_TX_BYTES: usize = core::mem::size_of::<ArchivedSignedTx>();

/// An archived [`SignedTx`], not yet verified: what a decoder produces and
/// [`crate::verified::VerifiedTx::verify`] checks. Built only by archiving a `SignedTx` or by
/// validating bytes, so [`SignedTxBytes::archived`] can trust its layout (not its signature).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct SignedTxBytes(pub(crate) [u8; SIGNED_TX_BYTES]);

const _: () = assert!(core::mem::align_of::<ArchivedSignedTx>() <= 16);

impl core::fmt::Debug for SignedTxBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SignedTxBytes({SIGNED_TX_BYTES} bytes)")
    }
}

impl SignedTxBytes {
    /// Archives a signed tx (allocates a scratch buffer: an ingress worker's job, not the
    /// sequencer's).
    #[must_use]
    pub fn encode(signed: &SignedTx) -> Self {
        let mut out = Self([0; SIGNED_TX_BYTES]);
        match rkyv::to_bytes::<rancor::Error>(signed) {
            Ok(bytes) if bytes.len() == SIGNED_TX_BYTES => out.0.copy_from_slice(&bytes),
            // A fixed-size archive into memory cannot fail or change size. Zeros are kept, and
            // they do not verify: the ingress refuses them instead of carrying a wrong tx.
            _ => debug_assert!(false, "fixed-size archive"),
        }
        out
    }

    /// Validates untrusted bytes (e.g. a binary wire form) as an archived `SignedTx`.
    ///
    /// # Errors
    /// [`RecordError`] when the length is wrong or the archive does not validate.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut out = Self([0; SIGNED_TX_BYTES]);
        if bytes.len() != SIGNED_TX_BYTES {
            return Err(RecordError::Length { got: bytes.len() });
        }
        out.0.copy_from_slice(bytes);
        rkyv::access::<ArchivedSignedTx, rancor::Error>(&out.0).map_err(|e| RecordError::Invalid(e.to_string()))?;
        Ok(out)
    }

    /// The archived view, in place.
    #[must_use]
    pub fn archived(&self) -> &ArchivedSignedTx {
        // SAFETY: the bytes were archived by `encode` or validated by `from_bytes`; the buffer
        // is 16-byte aligned and exactly one archived `SignedTx` long.
        unsafe { rkyv::access_unchecked::<ArchivedSignedTx>(&self.0) }
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; SIGNED_TX_BYTES] {
        &self.0
    }
}

/// Where a record's seq, stamp and signed tx sit inside its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLayout {
    seq_at: usize,
    ts_at: usize,
    signed_at: usize,
}

/// Why the in-place record layout cannot be used (never expected: a build whose archive
/// layout differs is refused at start rather than journaling wrong bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record layout check failed: {0}")]
pub struct LayoutError(pub &'static str);

fn offset_of<T>(base: &ArchivedSequencedTx, field: &T) -> usize {
    (field as *const T as usize) - (base as *const ArchivedSequencedTx as usize)
}

impl RecordLayout {
    /// Finds the field offsets on a probe record and checks that writing a record in place
    /// gives exactly the bytes of [`RecordBytes::encode`].
    ///
    /// # Errors
    /// [`LayoutError`] if it does not.
    pub fn probe() -> Result<Self, LayoutError> {
        let signed = SignedTx {
            tx: Tx { signer: [0xa5; 32], nonce: 0x0102_0304_0506_0708, account: 9, op: Op::Tick },
            signature: [0x5a; 64],
        };
        let stx = SequencedTx { seq: 0x1112_1314_1516_1718, ts: 0x2122_2324_2526_2728, signed };
        let reference = RecordBytes::encode(&stx);
        let archived = reference.archived();
        let layout = Self {
            seq_at: offset_of(archived, &archived.seq),
            ts_at: offset_of(archived, &archived.ts),
            signed_at: offset_of(archived, &archived.signed),
        };
        if layout.seq_at + 8 > RECORD_BYTES
            || layout.ts_at + 8 > RECORD_BYTES
            || layout.signed_at + SIGNED_TX_BYTES > RECORD_BYTES
        {
            return Err(LayoutError("a field lies outside the record"));
        }
        let mut written = RecordBytes([0; RECORD_BYTES]);
        layout.write(&mut written, stx.seq, stx.ts, &SignedTxBytes::encode(&signed));
        if written != reference {
            return Err(LayoutError("a record written in place differs from its archive"));
        }
        Ok(layout)
    }

    /// Writes a whole record into `record`: the signed tx's bytes, then seq and stamp.
    ///
    /// Bytes outside the three fields are never written, so they keep the zeros of a
    /// zero-initialised slot: the same padding [`RecordBytes::encode`] produces.
    #[inline]
    pub fn write(&self, record: &mut RecordBytes, seq: u64, ts: u64, signed: &SignedTxBytes) {
        record.0[self.signed_at..self.signed_at + SIGNED_TX_BYTES].copy_from_slice(&signed.0);
        record.0[self.seq_at..self.seq_at + 8].copy_from_slice(&seq.to_le_bytes());
        record.0[self.ts_at..self.ts_at + 8].copy_from_slice(&ts.to_le_bytes());
    }
}

/// The layout of this build's records, probed once.
fn layout() -> &'static RecordLayout {
    static LAYOUT: std::sync::OnceLock<RecordLayout> = std::sync::OnceLock::new();
    LAYOUT.get_or_init(|| match RecordLayout::probe() {
        Ok(layout) => layout,
        // The archive layout is fixed at compile time; a failing probe is a build defect.
        Err(e) => panic!("{e}"),
    })
}

/// Writes a record (seq, stamp, signed tx) into `record` in place.
pub(crate) fn write_record(record: &mut RecordBytes, seq: u64, ts: u64, signed: &SignedTxBytes) {
    layout().write(record, seq, ts, signed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bytes_validate_untrusted_input() {
        let signed = SignedTx { tx: Tx { signer: [7; 32], nonce: 1, account: 0, op: Op::Tick }, signature: [0; 64] };
        let bytes = SignedTxBytes::encode(&signed);
        assert_eq!(SignedTxBytes::from_bytes(bytes.as_bytes()), Ok(bytes));
        assert!(matches!(SignedTxBytes::from_bytes(&[0; 3]), Err(RecordError::Length { got: 3 })));
        let mut bad = *bytes.as_bytes();
        // The op tag sits somewhere in the archive; an all-0xff body cannot validate.
        bad[32 + 16..].fill(0xff);
        assert!(SignedTxBytes::from_bytes(&bad).is_err());
    }

    #[test]
    fn a_record_written_in_place_is_its_archive() {
        let layout = RecordLayout::probe().expect("layout");
        let signed =
            SignedTx { tx: Tx { signer: [7; 32], nonce: 42, account: 3, op: Op::CreateAccount }, signature: [9; 64] };
        let mut record = RecordBytes([0; RECORD_BYTES]);
        layout.write(&mut record, 5, 77, &SignedTxBytes::encode(&signed));
        assert_eq!(record, RecordBytes::encode(&SequencedTx { seq: 5, ts: 77, signed }));
        // Overwriting a used record leaves no trace of the previous record.
        let other = SignedTx { tx: Tx { nonce: 43, op: Op::Tick, ..signed.tx }, signature: [1; 64] };
        layout.write(&mut record, 6, 78, &SignedTxBytes::encode(&other));
        assert_eq!(record, RecordBytes::encode(&SequencedTx { seq: 6, ts: 78, signed: other }));
    }
}
