//! The runtime of SPEC section 2: ingress workers, the sequencer, the ring, the journal and
//! engine stages in parallel, and durability-gated event release.
//!
//! ```text
//!  inputs ─► ingress (workers: decode, archive, ed25519) ─► verdicts in input order
//!         ─► Pipeline::submit (sequencer: seq + ts, the only clock) ─► input ring
//!                ├─► journal stage: RecordSink::append / commit ─► durable seq
//!                └─► engine stage (pinned): Engine::apply ─► output ring
//!         ─► output stage: Subscriber gets each tx's events once durable seq ≥ its seq
//! ```
//!
//! Wiring a run (what `verex run` does; `demo` is the same with a generated workload):
//!
//! 1. build or recover the `Engine` (its `seq()` is where sequencing resumes) and a
//!    [`RecordSink`] (a newtype over the journal writer, positioned at the same seq);
//! 2. [`Pipeline::start`] with a [`Subscriber`] that renders or collects events (it gets the
//!    catalog for rendering) and [`PipelineConfig::for_this_machine`]; print
//!    [`Pipeline::info`];
//! 3. [`start_ingress`] with a decoder (e.g. [`decode_json_line`]); a reader thread sends
//!    inputs to the [`IngressSender`] while the sequencer thread runs [`feed`];
//! 4. [`Pipeline::shutdown`]: drains, commits, joins, returns the engine (state dump, state
//!    hash), the sink and the subscriber, with a [`StopReport`] (poison, withheld events).
//!
//! **Architecture Invariant: the engine stage does not allocate, lock, log or make system
//! calls** while it has work. It applies records in place from ring slots and copies events
//! into pre-allocated output slots. Idle, it spins, yields ([`WaitMode::Yielding`]) or parks
//! ([`WaitMode::Blocking`]); its only allocation is a catalog copy on a listing (an admin
//! tx); its only system call with work in hand is, in [`WaitMode::Blocking`] only, waking a
//! parked output stage.
//!
//! Queries ([`Pipeline::submit_query`]) take an input slot like a note: the journal stage
//! skips them, the engine stage answers them in order against the state after the tx before
//! them, and the output stage releases the answer after that tx's events.
//!
//! **Architecture Invariant: no event is released before its tx is durable.** The output
//! stage compares each event's seq with the durable seq the journal stage publishes after a
//! successful commit; after a failure the durable seq never moves again, so later events are
//! withheld forever.

mod ingress;
mod pipeline;
mod query;
mod shared;
mod sink;
mod slot;
mod stages;
mod subscriber;
mod wait;

pub use crate::record::{LayoutError, RecordLayout, SignedTxBytes, SIGNED_TX_BYTES};
pub use crate::verified::VerifiedTx;
pub use ingress::{
    feed, start_ingress, Decoded, IngressClosed, IngressConfig, IngressReceiver, IngressSender, RefusalReason, TryRecv,
    Verdict, VerifyMode, MAX_CHUNK_INPUTS, MAX_WORKERS, WORKER_CACHED_KEYS,
};
pub use pipeline::{
    check_engine_core, Pipeline, PipelineConfig, PipelineInfo, ShutdownError, StartError, StopReport, Stopped,
    SubmitError, TrySubmitError, DEFAULT_COMMIT_MAX_DELAY, DEFAULT_COMMIT_MAX_RECORDS, DEFAULT_OUTPUT_SLOTS,
    DEFAULT_RING_SLOTS, MAX_COMMIT_DELAY, MAX_OUTPUT_SLOTS, MAX_RING_SLOTS, MIN_RING_SLOTS,
};
pub use query::{Query, QueryItem, MAX_QUERY_LEVELS};
pub use shared::PoisonReason;
pub use sink::{MemorySink, RecordSink, SinkError};
pub use slot::{OutItem, OutSlot, Slot, SlotKind};
pub use stages::{ENGINE_POLL_SLOTS, JOURNAL_POLL_SLOTS, OUTPUT_POLL_SLOTS};
pub use subscriber::{Subscriber, TxEnd};
pub use wait::{
    Backoff, WaitMode, YieldingWait, PARK_TIMEOUT, SPINNING_STAGES, SPINS_BEFORE_YIELD, YIELDS_BEFORE_PARK,
};

/// Decodes one signed JSON line (SPEC section 13 with `signer`, `nonce`, `signature`) for a
/// production ingress: a line carrying its own `ts` is refused (the stamp is the sequencer's,
/// and `ts` is outside the signed bytes, so anyone relaying the line could set it).
///
/// # Errors
/// The parse error's message, "unsigned transaction", or the `ts` refusal.
pub fn decode_json_line(line: String) -> Result<Decoded, String> {
    let parsed = crate::text::tx_json::parse_tx_line(&line).map_err(|e| e.to_string())?;
    if let Some(ts) = parsed.ts {
        return Err(format!(
            "field `ts`: a signed transaction may not carry its own time stamp ({ts}); the sequencer stamps it"
        ));
    }
    let signed = crate::text::tx_json::signed_from_line(&parsed).map_err(|e| e.to_string())?;
    Ok(Decoded::from_signed(&signed, None))
}
