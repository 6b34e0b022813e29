//! Ingress: decode and verify on worker threads, hand verified txs to the sequencer in order.
//!
//! ```text
//!  IngressSender::send ─► chunk k (≤ `chunk_inputs` inputs) ─► worker k mod N: decode, archive, verify
//!                                                                  │
//!  IngressReceiver::recv ◄─ chunk k's verdicts, read from worker k mod N ◄┘
//! ```
//!
//! Chunks are dealt to the workers round-robin and their verdicts collected round-robin, so
//! verdicts come out in exactly the input order (hence in each connection's order) with no
//! reordering buffer. Channels are bounded: a slow sequencer slows the sender down. A refused
//! input (undecodable, bad key, bad signature) gets a [`Refusal`] with its reason and never
//! reaches the ring; [`feed`] turns it into an in-order note for the subscriber.
//!
//! # Single versus batch verification
//!
//! Both apply the one rule of [`crate::signature_rule`] (the rule `verex verify` and journal
//! replay apply too), so they give the same verdict on every input.
//! [`VerifyMode::Single`] checks each signature on its own. [`VerifyMode::Batch`] (the
//! default) checks a chunk's signatures together, about twice as fast per signature, and
//! checks them one by one only when the chunk holds a bad one (to name it).
//!
//! Each worker owns a [`SignatureVerifier`] made at start: a cache of [`WORKER_CACHED_KEYS`]
//! decompressed signer keys (a recurring signer skips its key's decompression; the verdict is
//! the rule's either way) and the batch scratch for `chunk_inputs` items, plus the buffers a
//! chunk passes through; a chunk allocates only its vector of verdicts (it crosses a channel).

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam::channel::{bounded, Receiver, Sender, TryRecvError};

use super::pipeline::{Pipeline, SubmitError};
use super::sink::RecordSink;
use super::subscriber::Subscriber;
use crate::events::RejectReason;
use crate::record::SignedTxBytes;
use crate::signature_rule::SignatureVerifier;
use crate::signing::SignatureError;
use crate::tx::SignedTx;
use crate::verified::VerifiedTx;

/// Most worker threads.
pub const MAX_WORKERS: usize = 64;
/// Most inputs per chunk (and per batch verification).
pub const MAX_CHUNK_INPUTS: usize = 4096;
/// Signer keys each worker keeps decompressed (its [`SignatureVerifier`]'s cache; about 200
/// bytes each): a signer seen again skips its key's decompression and checks.
pub const WORKER_CACHED_KEYS: usize = 16_384;

/// How signatures are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// One signature at a time.
    Single,
    /// A chunk's signatures together, single checks when the chunk holds a bad one. The
    /// default: the same verdicts as `Single`, about twice the throughput.
    Batch,
}

/// How to run the ingress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    /// Worker threads, `1..=MAX_WORKERS`.
    pub workers: usize,
    /// Most inputs per chunk, `1..=MAX_CHUNK_INPUTS`: the unit of work, of batch verification
    /// and of ordering. A partial chunk waits for [`IngressSender::flush`].
    pub chunk_inputs: usize,
    /// Fewest inputs per chunk sent early, `1..=chunk_inputs`: a chunk goes as soon as it holds
    /// this many while the worker it is dealt to is idle (waiting, nothing queued). Under load
    /// the workers are busy and chunks grow to `chunk_inputs` (a larger batch verifies more
    /// signatures per second); an idle worker gets work at once. Equal to `chunk_inputs`:
    /// fixed chunks.
    pub min_chunk_inputs: usize,
    /// Chunks queued per worker, in and out (at least 1).
    pub queue_chunks: usize,
    /// Single or batch verification.
    pub verify: VerifyMode,
}

impl IngressConfig {
    /// One worker per available core (at least 1), chunks of 64 while a worker is idle and
    /// up to 256 under load, batch verification.
    #[must_use]
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            workers: cores.clamp(1, MAX_WORKERS),
            chunk_inputs: 256,
            min_chunk_inputs: 64,
            queue_chunks: 4,
            verify: VerifyMode::Batch,
        }
    }

    /// Checks the values against the limits.
    ///
    /// # Errors
    /// A message naming the first value out of range.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(format!("workers {} not in 1..={MAX_WORKERS}", self.workers));
        }
        if !(1..=MAX_CHUNK_INPUTS).contains(&self.chunk_inputs) {
            return Err(format!("chunk_inputs {} not in 1..={MAX_CHUNK_INPUTS}", self.chunk_inputs));
        }
        if !(1..=self.chunk_inputs).contains(&self.min_chunk_inputs) {
            return Err(format!("min_chunk_inputs {} not in 1..={}", self.min_chunk_inputs, self.chunk_inputs));
        }
        if self.queue_chunks == 0 {
            return Err("queue_chunks must be at least 1".to_string());
        }
        Ok(())
    }
}

/// A decoded, not yet verified tx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The archived signed tx.
    pub tx: SignedTxBytes,
    /// The tx's own stamp, if it carries one (honoured only by a development clock).
    pub ts: Option<u64>,
}

impl Decoded {
    /// Archives a native signed tx.
    #[must_use]
    pub fn from_signed(signed: &SignedTx, ts: Option<u64>) -> Self {
        Self { tx: SignedTxBytes::encode(signed), ts }
    }
}

/// Why an input was refused before sequencing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason {
    /// The input is not a transaction (the decoder's message).
    #[error("cannot decode: {0}")]
    Decode(String),
    /// The signer's key is refused by the rule (not a canonical point of large order).
    #[error("bad signer key: {0}")]
    BadKey(SignatureError),
    /// The signature is refused by the rule.
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
}

impl From<SignatureError> for RefusalReason {
    fn from(error: SignatureError) -> Self {
        if error.is_bad_key() {
            Self::BadKey(error)
        } else {
            Self::BadSignature(error)
        }
    }
}

impl RefusalReason {
    /// The rejection word of the text form (`bad_signature`), or `None` for an input that is
    /// not a transaction at all.
    #[must_use]
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Self::Decode(_) => None,
            Self::BadKey(_) | Self::BadSignature(_) => Some(RejectReason::BadSignature),
        }
    }
}

/// The ingress' verdict on one input, in input order.
// Verdicts travel in per-chunk vectors; boxing the large variant would allocate per tx.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Verified: ready for [`Pipeline::submit`].
    Verified {
        /// The input's position (0-based) in the sender's order.
        ticket: u64,
        /// The tx.
        tx: VerifiedTx,
        /// Its own stamp, if it carried one.
        ts: Option<u64>,
    },
    /// Refused before sequencing.
    Refused {
        /// The input's position.
        ticket: u64,
        /// Why.
        reason: RefusalReason,
    },
}

impl Verdict {
    /// The input's position in the sender's order.
    #[must_use]
    pub fn ticket(&self) -> u64 {
        match self {
            Self::Verified { ticket, .. } | Self::Refused { ticket, .. } => *ticket,
        }
    }
}

/// The ingress' workers are gone (the receiver was dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the ingress is closed")]
pub struct IngressClosed;

struct Chunk<I> {
    first_ticket: u64,
    inputs: Vec<I>,
}

/// Feeds inputs to the workers. Dropping it flushes and closes the ingress.
///
/// `send`, `flush` and the flush in `drop` wait while the workers' queues are full, which lasts
/// as long as nobody reads the [`IngressReceiver`]: keep reading it, or drop it (then they
/// return [`IngressClosed`] at once), before waiting for the sending thread.
pub struct IngressSender<I> {
    to_workers: Vec<Sender<Chunk<I>>>,
    /// Per worker: it is waiting for a chunk (set by the worker before it blocks, cleared
    /// when it has one).
    idle: Vec<Arc<AtomicBool>>,
    next_worker: usize,
    pending: Vec<I>,
    first_ticket: u64,
    chunk_inputs: usize,
    min_chunk_inputs: usize,
}

impl<I> core::fmt::Debug for IngressSender<I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let next_ticket = self.first_ticket + self.pending.len() as u64;
        f.debug_struct("IngressSender").field("next_ticket", &next_ticket).finish_non_exhaustive()
    }
}

impl<I: Send + 'static> IngressSender<I> {
    /// Queues one input; sends the chunk when it is full, or when it holds
    /// `min_chunk_inputs` and the next worker is idle (waiting for a chunk, none queued),
    /// waiting if the workers' queues are full. Returns the input's ticket.
    ///
    /// Idle, not merely "nothing queued": a worker takes its chunk off the queue as soon as it
    /// starts on it, so under load its queue is empty most of the time, and chunks sent on that
    /// signal stayed at `min_chunk_inputs` (end-to-end signed throughput 0.62–0.71 of the
    /// verification bound, against 0.76–0.96 with full chunks, in the same session).
    ///
    /// # Errors
    /// [`IngressClosed`] if the receiver is gone.
    pub fn send(&mut self, input: I) -> Result<u64, IngressClosed> {
        let ticket = self.next_ticket();
        self.pending.push(input);
        let full = self.pending.len() >= self.chunk_inputs;
        if full || (self.pending.len() >= self.min_chunk_inputs && self.next_worker_idle()) {
            self.flush()?;
        }
        Ok(ticket)
    }

    /// Sends the partial chunk now (call it when the input pauses, or latency suffers).
    ///
    /// # Errors
    /// [`IngressClosed`] if the receiver is gone.
    pub fn flush(&mut self) -> Result<(), IngressClosed> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let inputs = std::mem::replace(&mut self.pending, Vec::with_capacity(self.chunk_inputs));
        let first_ticket = self.first_ticket;
        self.first_ticket += inputs.len() as u64;
        let worker = self.next_worker;
        self.next_worker = (worker + 1) % self.to_workers.len();
        self.to_workers[worker].send(Chunk { first_ticket, inputs }).map_err(|_| IngressClosed)
    }

    /// The ticket the next input will get.
    #[must_use]
    pub fn next_ticket(&self) -> u64 {
        self.first_ticket + self.pending.len() as u64
    }

    /// Whether the worker the next chunk goes to is waiting for work, with none queued.
    fn next_worker_idle(&self) -> bool {
        self.idle[self.next_worker].load(Ordering::Acquire) && self.to_workers[self.next_worker].is_empty()
    }
}

impl<I> Drop for IngressSender<I> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let inputs = std::mem::take(&mut self.pending);
            let chunk = Chunk { first_ticket: self.first_ticket, inputs };
            let _ = self.to_workers[self.next_worker].send(chunk);
        }
    }
}

/// Returns verdicts in input order. Use it on another thread than the [`IngressSender`] (or
/// interleave sends and receives): the channels are bounded. The workers exit once the sender
/// is dropped, or as soon as they have a verdict to deliver after this receiver is dropped.
pub struct IngressReceiver {
    from_workers: Vec<Receiver<Vec<Verdict>>>,
    next_worker: usize,
    current: std::vec::IntoIter<Verdict>,
}

impl core::fmt::Debug for IngressReceiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IngressReceiver").field("workers", &self.from_workers.len()).finish_non_exhaustive()
    }
}

/// Why [`IngressReceiver::try_recv`] returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecv {
    /// The next verdict is not ready yet.
    Empty,
    /// The sender is gone and every verdict was returned.
    Done,
}

impl IngressReceiver {
    /// The next verdict in input order, waiting for it; `None` once the sender is dropped
    /// and every verdict was returned.
    pub fn recv(&mut self) -> Option<Verdict> {
        loop {
            if let Some(verdict) = self.current.next() {
                return Some(verdict);
            }
            let chunk = self.from_workers[self.next_worker].recv().ok()?;
            self.next_chunk(chunk);
        }
    }

    /// The next verdict if it is ready.
    ///
    /// # Errors
    /// [`TryRecv::Empty`] (not yet) or [`TryRecv::Done`] (no more).
    pub fn try_recv(&mut self) -> Result<Verdict, TryRecv> {
        loop {
            if let Some(verdict) = self.current.next() {
                return Ok(verdict);
            }
            match self.from_workers[self.next_worker].try_recv() {
                Ok(chunk) => self.next_chunk(chunk),
                Err(TryRecvError::Empty) => return Err(TryRecv::Empty),
                Err(TryRecvError::Disconnected) => return Err(TryRecv::Done),
            }
        }
    }

    fn next_chunk(&mut self, chunk: Vec<Verdict>) {
        self.current = chunk.into_iter();
        self.next_worker = (self.next_worker + 1) % self.from_workers.len();
    }
}

/// Starts the workers. `decode` turns one input into a signed tx (or says why not); it runs on
/// the workers, in parallel, and a panic in it refuses that one input.
///
/// # Errors
/// A message for a bad config or a thread that cannot be spawned.
pub fn start_ingress<I, D>(config: IngressConfig, decode: D) -> Result<(IngressSender<I>, IngressReceiver), String>
where
    I: Send + 'static,
    D: Fn(I) -> Result<Decoded, String> + Send + Sync + 'static,
{
    config.validate()?;
    let decode = Arc::new(decode);
    let mut to_workers = Vec::with_capacity(config.workers);
    let mut from_workers = Vec::with_capacity(config.workers);
    let mut idle = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let (chunk_tx, chunk_rx) = bounded::<Chunk<I>>(config.queue_chunks);
        let (verdict_tx, verdict_rx) = bounded::<Vec<Verdict>>(config.queue_chunks);
        let decode = Arc::clone(&decode);
        let verify = config.verify;
        let chunk_inputs = config.chunk_inputs;
        // Busy until the worker says it waits: a chunk it finds queued at once never makes it so.
        let worker_idle = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&worker_idle);
        // Detached: a worker ends when its channels do (joining could wait on a live sender).
        std::thread::Builder::new()
            .name(format!("verex-ingress-{index}"))
            .spawn(move || worker_loop(&chunk_rx, &verdict_tx, &flag, decode.as_ref(), verify, chunk_inputs))
            .map_err(|e| format!("cannot spawn ingress worker {index}: {e}"))?;
        idle.push(worker_idle);
        to_workers.push(chunk_tx);
        from_workers.push(verdict_rx);
    }
    let sender = IngressSender {
        to_workers,
        idle,
        next_worker: 0,
        pending: Vec::with_capacity(config.chunk_inputs),
        first_ticket: 0,
        chunk_inputs: config.chunk_inputs,
        min_chunk_inputs: config.min_chunk_inputs,
    };
    let receiver = IngressReceiver { from_workers, next_worker: 0, current: Vec::new().into_iter() };
    Ok((sender, receiver))
}

/// A worker's own state, allocated once: its verifier (key cache and batch scratch) and the
/// buffers a chunk passes through.
struct WorkerState {
    verifier: SignatureVerifier,
    decoded: Vec<Result<Decoded, RefusalReason>>,
    txs: Vec<SignedTxBytes>,
    verified: Vec<Result<VerifiedTx, SignatureError>>,
}

impl WorkerState {
    fn new(chunk_inputs: usize) -> Self {
        Self {
            verifier: SignatureVerifier::new(WORKER_CACHED_KEYS, chunk_inputs),
            decoded: Vec::with_capacity(chunk_inputs),
            txs: Vec::with_capacity(chunk_inputs),
            verified: Vec::with_capacity(chunk_inputs),
        }
    }
}

/// Checks chunks until the sender is gone; `idle` says, while it waits for one, that it is
/// waiting (the sender sends early only to an idle worker).
fn worker_loop<I, D>(
    chunks: &Receiver<Chunk<I>>,
    verdicts: &Sender<Vec<Verdict>>,
    idle: &AtomicBool,
    decode: &D,
    verify: VerifyMode,
    chunk_inputs: usize,
) where
    D: Fn(I) -> Result<Decoded, String>,
{
    let mut state = WorkerState::new(chunk_inputs);
    loop {
        let chunk = match chunks.try_recv() {
            Ok(chunk) => chunk,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                idle.store(true, Ordering::Release);
                let next = chunks.recv();
                idle.store(false, Ordering::Release);
                match next {
                    Ok(chunk) => chunk,
                    Err(_) => return,
                }
            }
        };
        let checked = check_chunk(chunk, decode, verify, &mut state);
        if verdicts.send(checked).is_err() {
            return;
        }
    }
}

fn check_chunk<I, D>(chunk: Chunk<I>, decode: &D, verify: VerifyMode, state: &mut WorkerState) -> Vec<Verdict>
where
    D: Fn(I) -> Result<Decoded, String>,
{
    state.decoded.clear();
    state.decoded.extend(chunk.inputs.into_iter().map(|input| {
        match catch_unwind(AssertUnwindSafe(|| decode(input))) {
            Ok(result) => result.map_err(RefusalReason::Decode),
            Err(_) => Err(RefusalReason::Decode("the decoder panicked".to_string())),
        }
    }));
    state.txs.clear();
    state.txs.extend(state.decoded.iter().filter_map(|d| d.as_ref().ok().map(|d| d.tx)));
    match verify {
        VerifyMode::Single => {
            state.verified.clear();
            let verifier = &mut state.verifier;
            state.verified.extend(state.txs.iter().map(|tx| VerifiedTx::verify_with(*tx, verifier)));
        }
        VerifyMode::Batch => VerifiedTx::verify_batch_with(&state.txs, &mut state.verifier, &mut state.verified),
    }
    let mut verified = state.verified.drain(..);
    let mut out = Vec::with_capacity(state.decoded.len());
    for (k, decoded) in state.decoded.drain(..).enumerate() {
        let ticket = chunk.first_ticket + k as u64;
        out.push(match decoded {
            Ok(decoded) => match verified.next().unwrap_or_else(unreachable_verdict) {
                Ok(tx) => Verdict::Verified { ticket, tx, ts: decoded.ts },
                Err(error) => Verdict::Refused { ticket, reason: RefusalReason::from(error) },
            },
            Err(reason) => Verdict::Refused { ticket, reason },
        });
    }
    out
}

/// `verify_batch` returns one verdict per input; running short would be a bug in it.
#[cold]
fn unreachable_verdict() -> Result<VerifiedTx, SignatureError> {
    Err(SignatureError { signer: [0; 32], fault: crate::signature_rule::SignatureFault::EquationFails })
}

/// Hands the ingress' verdicts to the sequencer in order until the sender is dropped:
/// verified txs are submitted (tagged with their ticket); each refused one is shown to
/// `on_refused`, which either continues (the refusal becomes a note, tagged with its ticket,
/// released in order) or breaks (feeding stops there, e.g. on an input that is not a tx).
/// Returns the number of txs sequenced.
///
/// # Errors
/// [`SubmitError::Poisoned`]: the pipeline stopped; the remaining verdicts are left unread.
pub fn feed<K, S>(
    receiver: &mut IngressReceiver,
    pipeline: &mut Pipeline<K, S>,
    mut on_refused: impl FnMut(u64, &RefusalReason) -> ControlFlow<()>,
) -> Result<u64, SubmitError>
where
    K: RecordSink,
    S: Subscriber,
{
    let mut sequenced = 0;
    while let Some(verdict) = receiver.recv() {
        match verdict {
            Verdict::Verified { ticket, tx, ts } => match pipeline.submit(&tx, ts, ticket) {
                Ok(_) => sequenced += 1,
                Err(SubmitError::Stamp(refused)) => {
                    if on_refused(ticket, &RefusalReason::Decode(refused.to_string())).is_break() {
                        break;
                    }
                    pipeline.submit_note(ticket)?;
                }
                Err(other) => return Err(other),
            },
            Verdict::Refused { ticket, reason } => {
                if on_refused(ticket, &reason).is_break() {
                    break;
                }
                pipeline.submit_note(ticket)?;
            }
        }
    }
    Ok(sequenced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Waits (at most 20 s, in 1 ms sleeps: the engine crate reads no clock) until `done`.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..20_000 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("timed out waiting until {what}");
    }

    #[test]
    fn an_idle_worker_gets_work_at_the_minimum_and_a_busy_one_a_full_chunk() {
        let (gate_tx, gate_rx) = bounded::<()>(0);
        let config = IngressConfig {
            workers: 1,
            chunk_inputs: 16,
            min_chunk_inputs: 4,
            queue_chunks: 2,
            verify: VerifyMode::Batch,
        };
        let (mut sender, mut receiver) = start_ingress(config, move |input: u32| {
            if input == 0 {
                // The first input keeps its worker busy until the test opens the gate.
                let _ = gate_rx.recv();
            }
            Err(format!("input {input} is not a tx"))
        })
        .expect("ingress");
        wait_until("the worker waits for work", || sender.idle[0].load(Ordering::Acquire));
        for input in 0..4 {
            sender.send(input).expect("open");
        }
        assert!(sender.pending.is_empty(), "an idle worker gets a chunk of the minimum at once");
        wait_until("the worker is busy with it", || !sender.idle[0].load(Ordering::Acquire));
        for input in 4..14 {
            sender.send(input).expect("open");
        }
        assert_eq!(sender.pending.len(), 10, "nothing queued, but the worker is busy: the chunk grows");
        for input in 14..20 {
            sender.send(input).expect("open");
        }
        assert!(sender.pending.is_empty(), "a full chunk goes");
        gate_tx.send(()).expect("the worker waits at the gate");
        drop(sender);
        let mut tickets = Vec::new();
        while let Some(verdict) = receiver.recv() {
            assert!(matches!(verdict, Verdict::Refused { reason: RefusalReason::Decode(_), .. }), "{verdict:?}");
            tickets.push(verdict.ticket());
        }
        assert_eq!(tickets, (0..20).collect::<Vec<u64>>());
    }
}
