//! Who receives released events: the [`Subscriber`] trait.

use crate::catalog::Catalog;
use crate::events::Event;

use super::QueryItem;

/// A tx whose events have all been released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxEnd {
    /// The tx's seq.
    pub seq: u64,
    /// The tag given to the sequencer with the tx.
    pub tag: u64,
    /// When the sequencer published it, in ns since the pipeline's epoch
    /// ([`super::Pipeline::epoch`]).
    pub published_ns: u64,
    /// How many events it had (all passed to [`Subscriber::on_event`] just before).
    pub events: u32,
}

/// Receives events on the output stage's thread, in seq order, each tx's events in their
/// order, and only once the tx is durable. Must not block for long: the engine stage waits
/// when the output ring is full. A panic is caught and poisons the pipeline.
pub trait Subscriber: Send + 'static {
    /// One event of tx `seq`. `catalog` names assets and markets for rendering
    /// (`text::event_json::render_event`): it is a copy taken after the last listing, exact
    /// for symbols and decimals, not for anything that changes after listing.
    fn on_event(&mut self, seq: u64, event: &Event, catalog: &Catalog);

    /// All events of a tx were released (called even when it had none).
    fn on_tx_end(&mut self, end: &TxEnd) {
        let _ = end;
    }

    /// An ingress note (e.g. a refused tx) submitted with `tag`, released in order: after
    /// every event of `after_seq`, the last tx sequenced before it.
    fn on_note(&mut self, tag: u64, after_seq: u64) {
        let _ = (tag, after_seq);
    }

    /// One item of the answer to the query submitted with `tag`
    /// ([`super::Pipeline::submit_query`]), computed on the state after `after_seq`, released
    /// in order once that state is durable.
    fn on_query_item(&mut self, tag: u64, after_seq: u64, item: &QueryItem, catalog: &Catalog) {
        let _ = (tag, after_seq, item, catalog);
    }

    /// The answer to the query submitted with `tag` is complete.
    fn on_query_end(&mut self, tag: u64, after_seq: u64) {
        let _ = (tag, after_seq);
    }

    /// The output stage has released everything it can for now and is about to wait (for more
    /// txs, or for the next commit to make them durable). A subscriber that gathers its output
    /// (lines for a file, a socket) hands it on here, so that a live reader sees each event
    /// without waiting for a buffer to fill. Called once per pause that follows a release, not
    /// on every poll.
    fn on_idle(&mut self) {}
}

/// A closure over `(seq, event)` is a subscriber.
impl<F> Subscriber for F
where
    F: FnMut(u64, &Event) + Send + 'static,
{
    fn on_event(&mut self, seq: u64, event: &Event, _catalog: &Catalog) {
        self(seq, event);
    }
}
