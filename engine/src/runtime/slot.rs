//! What the rings hold: fixed-size, pre-allocated slots.
//!
//! The input ring's [`Slot`] carries one record's bytes exactly as the journal stores them and
//! the engine reads them (a [`RecordBytes`], the archive of a `SequencedTx`), plus the
//! sequencer's publish time and the caller's tag. The output ring's [`OutSlot`] carries one
//! event (or the end of a tx's events, or an ingress note) with the seq that caused it.
//!
//! The sequencer does not serialise: a verified tx arrives as [`SignedTxBytes`] (archived by
//! an ingress worker), and the sequencer copies those bytes into the slot's record and writes
//! the seq and stamp fields in place. [`RecordLayout`] finds those fields once and proves, on a
//! probe tx, that the result is byte-for-byte [`RecordBytes::encode`].

use rkyv::rancor;

use crate::events::Event;
use crate::record::{RecordBytes, RecordError};
use crate::tx::{ArchivedSequencedTx, ArchivedSignedTx, Op, SequencedTx, SignedTx, Tx, RECORD_BYTES, SLOT_BYTES};

/// Bytes of an archived [`SignedTx`]: the part of a record the signer signed (plus signature).
pub const SIGNED_TX_BYTES: usize = core::mem::size_of::<ArchivedSignedTx>();

/// A verified, archived [`SignedTx`]: what an ingress worker hands to the sequencer. Built only
/// by archiving a `SignedTx` or by validating bytes, so [`SignedTxBytes::archived`] can trust
/// it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct SignedTxBytes([u8; SIGNED_TX_BYTES]);

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

/// What an input slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// A sequenced tx: journaled, applied, its events released.
    Tx,
    /// An ingress note (e.g. a tx refused for a bad signature): neither journaled nor
    /// applied, released in order after the events of the tx before it.
    Note,
}

/// Bytes of a slot's fields besides its record.
const SLOT_META_BYTES: usize = 32;

/// One input ring slot: exactly [`SLOT_BYTES`], whole cache lines.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Slot {
    /// The record, as journaled and applied (meaningless for a note).
    pub record: RecordBytes,
    /// The tx's seq (for a note: the seq of the last tx sequenced before it).
    pub seq: u64,
    /// The caller's tag, passed through to the subscriber (an input line, a planned send time).
    pub tag: u64,
    /// When the sequencer published the slot, in ns since the pipeline's epoch.
    pub published_ns: u64,
    /// Tx or note.
    pub kind: SlotKind,
    _pad: [u8; SLOT_BYTES - RECORD_BYTES - SLOT_META_BYTES],
}

const _: () = assert!(core::mem::size_of::<Slot>() == SLOT_BYTES, "a ring slot is SLOT_BYTES");
const _: () = assert!(RECORD_BYTES + SLOT_META_BYTES <= SLOT_BYTES);

impl Slot {
    /// An empty, zeroed slot (rings are filled with these at start).
    #[must_use]
    pub fn empty() -> Self {
        Self {
            record: RecordBytes([0; RECORD_BYTES]),
            seq: 0,
            tag: 0,
            published_ns: 0,
            kind: SlotKind::Note,
            _pad: [0; SLOT_BYTES - RECORD_BYTES - SLOT_META_BYTES],
        }
    }
}

/// What an output slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutItem {
    /// One event of the tx, in order.
    Event(Event),
    /// The tx's events are complete.
    TxEnd {
        /// How many events the tx had.
        events: u32,
    },
    /// An ingress note (see [`SlotKind::Note`]).
    Note,
}

/// One output ring slot.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct OutSlot {
    /// The seq of the tx (for a note: of the tx before it).
    pub seq: u64,
    /// The tag given to the sequencer.
    pub tag: u64,
    /// The sequencer's publish time, ns since the pipeline's epoch.
    pub published_ns: u64,
    /// True on every slot of a tx that listed an asset or market: the catalog changed.
    pub listing: bool,
    /// The item.
    pub item: OutItem,
}

impl OutSlot {
    /// An empty slot.
    #[must_use]
    pub fn empty() -> Self {
        Self { seq: 0, tag: 0, published_ns: 0, listing: false, item: OutItem::Note }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_written_in_place_is_its_archive() {
        let layout = RecordLayout::probe().expect("layout");
        let signed =
            SignedTx { tx: Tx { signer: [7; 32], nonce: 42, account: 3, op: Op::CreateAccount }, signature: [9; 64] };
        let mut slot = Slot::empty();
        layout.write(&mut slot.record, 5, 77, &SignedTxBytes::encode(&signed));
        assert_eq!(slot.record, RecordBytes::encode(&SequencedTx { seq: 5, ts: 77, signed }));
        // Overwriting a used slot leaves no trace of the previous record.
        let other = SignedTx { tx: Tx { nonce: 43, op: Op::Tick, ..signed.tx }, signature: [1; 64] };
        layout.write(&mut slot.record, 6, 78, &SignedTxBytes::encode(&other));
        assert_eq!(slot.record, RecordBytes::encode(&SequencedTx { seq: 6, ts: 78, signed: other }));
    }

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
}
