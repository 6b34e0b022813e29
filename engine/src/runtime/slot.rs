//! What the rings hold: fixed-size, pre-allocated slots.
//!
//! The input ring's [`Slot`] carries one record's bytes exactly as the journal stores them and
//! the engine reads them (a [`RecordBytes`], the archive of a `SequencedTx`), plus the
//! sequencer's publish time and the caller's tag. The output ring's [`OutSlot`] carries one
//! event (or the end of a tx's events, or an ingress note) with the seq that caused it.
//!
//! The sequencer does not serialise: a verified tx arrives as a
//! [`crate::verified::VerifiedTx`] (archived by an ingress worker), and the sequencer copies
//! its bytes into the slot's record and writes the seq and stamp fields in place
//! ([`crate::record::RecordLayout`]).

use crate::events::Event;
use crate::record::RecordBytes;
use crate::tx::{RECORD_BYTES, SLOT_BYTES};

/// What an input slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// A sequenced tx: journaled, applied, its events released.
    Tx,
    /// An ingress note (e.g. a tx refused for a bad signature): neither journaled nor
    /// applied, released in order after the events of the tx before it.
    Note,
    /// A [`super::Query`], written into the record area: neither journaled nor applied; the
    /// engine stage answers it against the state after the tx before it.
    Query,
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
    /// One item of a query's answer (see [`SlotKind::Query`]).
    Query(super::QueryItem),
    /// The query's answer is complete.
    QueryEnd,
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
