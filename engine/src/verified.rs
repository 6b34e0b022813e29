//! Verified by construction (SPEC section 14): what the pipeline and the engine take can be
//! made only by checking a signature under [`crate::signature_rule`], or by signing with the
//! signer's own key (which yields a signature the rule accepts).
//!
//! - [`VerifiedTx`]: a signed tx that passed the rule. [`crate::runtime::Pipeline::submit`]
//!   takes it; the ingress workers make it.
//! - [`VerifiedRecordBytes`]: a sequenced record whose tx is a `VerifiedTx` (the sequencer
//!   stamps one: seq and stamp are outside the signed bytes).
//! - [`VerifiedRecord`]: a view of a record whose signature was checked, in place (a ring slot
//!   filled from a `VerifiedTx`, or a journal record re-checked on replay).
//!   [`crate::Engine::apply`] takes it.
//!
//! A journal is evidence only if every record in it verifies, so replaying a journal checks
//! every signature again ([`VerifiedRecord::verify`], [`VerifiedRecord::verify_batch`]).
//!
//! With the crate feature `unverified` (off by default; the benchmarks turn it on to time
//! `apply` and the pipeline alone), `VerifiedRecord::assume_verified` and
//! `VerifiedTx::assume_verified` wrap their input without checking it.
//!
//! What does not compile (checked by these doc tests): applying a raw record,
//!
//! ```compile_fail
//! # use verex_engine::{Engine, Genesis, Limits, record::RecordBytes};
//! # let mut engine = Engine::new(Genesis::dev(), Limits::small()).unwrap();
//! # let mut buf = engine.event_buf();
//! let raw = RecordBytes([0; verex_engine::tx::RECORD_BYTES]);
//! engine.apply(raw.archived(), &mut buf);
//! ```
//!
//! building a `VerifiedRecord` or a `VerifiedTx` by hand,
//!
//! ```compile_fail
//! # use verex_engine::record::{RecordBytes, SignedTxBytes};
//! let raw = RecordBytes([0; verex_engine::tx::RECORD_BYTES]);
//! let forged = verex_engine::verified::VerifiedRecord(raw.archived());
//! ```
//!
//! ```compile_fail
//! # use verex_engine::record::SignedTxBytes;
//! # use verex_engine::tx::{SignedTx, Tx, Op};
//! let signed = SignedTx { tx: Tx { signer: [1; 32], nonce: 1, account: 0, op: Op::Tick }, signature: [0; 64] };
//! let forged = verex_engine::verified::VerifiedTx(SignedTxBytes::encode(&signed));
//! ```
//!
//! or submitting unverified bytes to the pipeline:
//!
//! ```compile_fail
//! # use verex_engine::runtime::{MemorySink, Pipeline, PipelineConfig};
//! # use verex_engine::record::SignedTxBytes;
//! # use verex_engine::tx::{SignedTx, Tx, Op};
//! # fn submit<S: verex_engine::runtime::Subscriber>(pipeline: &mut Pipeline<MemorySink, S>) {
//! let signed = SignedTx { tx: Tx { signer: [1; 32], nonce: 1, account: 0, op: Op::Tick }, signature: [0; 64] };
//! pipeline.submit(&SignedTxBytes::encode(&signed), None, 0);
//! # }
//! ```

use ed25519_dalek::SigningKey;

use crate::record::{RecordBytes, SignedTxBytes};
use crate::signature_rule::{PartsItem, SignatureVerifier, MAX_BATCH_ITEMS};
use crate::signing::{sign, tx_message, verify_archived, verify_archived_with, SignatureError};
use crate::tx::{ArchivedSequencedTx, ArchivedSignedTx, SignedTx, Tx};

/// Most threads [`VerifiedRecord::verify_parallel`] uses.
pub const MAX_VERIFY_THREADS: usize = 64;
/// Fewest records worth a thread of their own in [`VerifiedRecord::verify_parallel`].
const MIN_RECORDS_PER_THREAD: usize = 256;

/// Keys each replay thread of [`VerifiedRecord::verify_parallel`] caches.
const REPLAY_CACHED_KEYS: usize = 16_384;

/// A batch item of an archived signed tx: its signer, its message in place, its signature.
fn signed_item(signed: &ArchivedSignedTx) -> PartsItem<'_> {
    PartsItem { key: &signed.tx.signer, message: tx_message(&signed.tx), signature: &signed.signature }
}

/// A signed tx whose signature passed the rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedTx(SignedTxBytes);

impl VerifiedTx {
    /// Checks the signature of an archived signed tx.
    ///
    /// # Errors
    /// [`SignatureError`] naming the signer and the failed step of the rule.
    pub fn verify(tx: SignedTxBytes) -> Result<Self, SignatureError> {
        verify_archived(tx.archived())?;
        Ok(Self(tx))
    }

    /// Archives and checks a native signed tx.
    ///
    /// # Errors
    /// As [`VerifiedTx::verify`].
    pub fn verify_signed(signed: &SignedTx) -> Result<Self, SignatureError> {
        Self::verify(SignedTxBytes::encode(signed))
    }

    /// Signs `tx` with `key`; the tx's `signer` becomes `key`'s public key. A signature made
    /// with the signer's own secret key always passes the rule (its key and `R` are points of
    /// the prime-order subgroup, canonically encoded, and `S < ℓ`), so nothing is re-checked.
    #[must_use]
    pub fn sign(mut tx: Tx, key: &SigningKey) -> Self {
        tx.signer = key.verifying_key().to_bytes();
        Self(SignedTxBytes::encode(&sign(tx, key)))
    }

    /// [`VerifiedTx::verify`] through a verifier's key cache (the same verdict).
    ///
    /// # Errors
    /// As [`VerifiedTx::verify`].
    pub fn verify_with(tx: SignedTxBytes, verifier: &mut SignatureVerifier) -> Result<Self, SignatureError> {
        verify_archived_with(tx.archived(), verifier)?;
        Ok(Self(tx))
    }

    /// Checks many archived signed txs at once (batch verification, with the verdict a single
    /// check gives each); `out` is cleared and gets one result per input, in order. Uses a
    /// verifier of its own: a hot path calls [`VerifiedTx::verify_batch_with`].
    pub fn verify_batch(txs: &[SignedTxBytes], out: &mut Vec<Result<Self, SignatureError>>) {
        let mut verifier = SignatureVerifier::new(txs.len(), txs.len());
        Self::verify_batch_with(txs, &mut verifier, out);
    }

    /// [`VerifiedTx::verify_batch`] through a verifier's key cache and scratch space: the
    /// same verdicts, nothing allocated (given `out`'s capacity) but what the multiscalar
    /// multiplication allocates per batch.
    pub fn verify_batch_with(
        txs: &[SignedTxBytes],
        verifier: &mut SignatureVerifier,
        out: &mut Vec<Result<Self, SignatureError>>,
    ) {
        verifier.verify_batch_map(
            txs.len(),
            |i| signed_item(txs[i].archived()),
            out,
            |i, verdict| {
                verdict
                    .map(|()| Self(txs[i]))
                    .map_err(|fault| SignatureError { signer: txs[i].archived().tx.signer, fault })
            },
        );
    }

    /// Wraps a tx without checking its signature: only for measuring the pipeline and the
    /// engine alone (feature `unverified`).
    #[cfg(feature = "unverified")]
    #[must_use]
    pub fn assume_verified(tx: SignedTxBytes) -> Self {
        Self(tx)
    }

    /// The archived bytes.
    #[must_use]
    pub fn bytes(&self) -> &SignedTxBytes {
        &self.0
    }

    /// The archived view.
    #[must_use]
    pub fn archived(&self) -> &ArchivedSignedTx {
        self.0.archived()
    }
}

/// A record (seq, stamp and a [`VerifiedTx`]), owned: what the sequencer makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifiedRecordBytes(RecordBytes);

impl VerifiedRecordBytes {
    /// A record of `tx` at `seq`, stamped `ts` (neither is part of the signed bytes).
    #[must_use]
    pub(crate) fn stamp(seq: u64, ts: u64, tx: &VerifiedTx) -> Self {
        let mut bytes = RecordBytes([0; crate::tx::RECORD_BYTES]);
        crate::record::write_record(&mut bytes, seq, ts, tx.bytes());
        Self(bytes)
    }

    /// The view the engine applies.
    #[must_use]
    pub fn verified(&self) -> VerifiedRecord<'_> {
        VerifiedRecord(self.0.archived())
    }

    /// The record bytes (what a journal stores).
    #[must_use]
    pub fn bytes(&self) -> &RecordBytes {
        &self.0
    }

    /// The record's seq.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.0.archived().seq.to_native()
    }

    /// The record's stamp.
    #[must_use]
    pub fn ts(&self) -> u64 {
        self.0.archived().ts.to_native()
    }
}

/// A record whose signature was checked, viewed in place.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedRecord<'a>(&'a ArchivedSequencedTx);

impl<'a> VerifiedRecord<'a> {
    /// Checks the signature of a record (from a journal, a file, a network).
    ///
    /// # Errors
    /// [`SignatureError`] naming the signer and the failed step of the rule.
    pub fn verify(record: &'a ArchivedSequencedTx) -> Result<Self, SignatureError> {
        verify_archived(&record.signed)?;
        Ok(Self(record))
    }

    /// Checks many records at once (batch verification, with the verdict a single check gives
    /// each); `out` is cleared and gets one result per input, in order.
    pub fn verify_batch(records: &[&'a ArchivedSequencedTx], out: &mut Vec<Result<Self, SignatureError>>) {
        let mut verifier = SignatureVerifier::new(records.len(), records.len());
        Self::verify_batch_with(records, &mut verifier, out);
    }

    /// [`VerifiedRecord::verify_batch`] through a verifier's key cache (the same verdicts).
    pub fn verify_batch_with(
        records: &[&'a ArchivedSequencedTx],
        verifier: &mut SignatureVerifier,
        out: &mut Vec<Result<Self, SignatureError>>,
    ) {
        verifier.verify_batch_map(
            records.len(),
            |i| signed_item(&records[i].signed),
            out,
            |i, verdict| {
                verdict
                    .map(|()| Self(records[i]))
                    .map_err(|fault| SignatureError { signer: records[i].signed.tx.signer, fault })
            },
        );
    }

    /// [`VerifiedRecord::verify_batch`] split over `threads` threads (for replaying a
    /// journal: every record is checked again, at the throughput of every core).
    pub fn verify_parallel(
        records: &[&'a ArchivedSequencedTx],
        threads: usize,
        out: &mut Vec<Result<Self, SignatureError>>,
    ) {
        let threads = threads.clamp(1, MAX_VERIFY_THREADS);
        let per_thread = records.len().div_ceil(threads).max(MIN_RECORDS_PER_THREAD);
        if records.len() <= per_thread {
            Self::verify_batch(records, out);
            return;
        }
        let parts: Vec<Vec<Result<Self, SignatureError>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = records
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        let mut verdicts = Vec::with_capacity(part.len());
                        let mut verifier = SignatureVerifier::new(REPLAY_CACHED_KEYS, MAX_BATCH_ITEMS);
                        Self::verify_batch_with(part, &mut verifier, &mut verdicts);
                        verdicts
                    })
                })
                .collect();
            workers
                .into_iter()
                .zip(records.chunks(per_thread))
                .map(|(worker, part)| worker.join().unwrap_or_else(|_| part.iter().map(|r| Self::verify(r)).collect()))
                .collect()
        });
        out.clear();
        out.extend(parts.into_iter().flatten());
    }

    /// A record this process built from a [`VerifiedTx`] (a ring slot the sequencer filled).
    pub(crate) fn from_verified_slot(record: &'a ArchivedSequencedTx) -> Self {
        Self(record)
    }

    /// Wraps a record without checking its signature: only for measuring `apply` alone.
    #[cfg(feature = "unverified")]
    #[must_use]
    pub fn assume_verified(record: &'a ArchivedSequencedTx) -> Self {
        Self(record)
    }

    /// The record.
    #[must_use]
    pub fn record(&self) -> &'a ArchivedSequencedTx {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::dev_account_key;
    use crate::tx::Op;

    fn tx(nonce: u64) -> Tx {
        Tx { signer: [0; 32], nonce, account: 1, op: Op::CreateAccount }
    }

    #[test]
    fn signing_with_the_own_key_passes_the_rule() {
        let key = dev_account_key(1);
        let verified = VerifiedTx::sign(tx(1), &key);
        assert_eq!(verified.archived().tx.signer, key.verifying_key().to_bytes());
        assert_eq!(VerifiedTx::verify(*verified.bytes()), Ok(verified));
    }

    #[test]
    fn an_all_zero_signature_makes_no_verified_tx() {
        let signer = dev_account_key(1).verifying_key().to_bytes();
        let signed = SignedTx { tx: Tx { signer, ..tx(1) }, signature: [0; 64] };
        assert!(VerifiedTx::verify_signed(&signed).is_err());
    }

    #[test]
    fn batch_results_match_single_results() {
        let mut txs: Vec<SignedTxBytes> =
            (1..=9).map(|n| *VerifiedTx::sign(tx(n), &dev_account_key(n % 3 + 1)).bytes()).collect();
        let mut bad = sign(Tx { signer: dev_account_key(1).verifying_key().to_bytes(), ..tx(99) }, &dev_account_key(1));
        bad.signature[5] ^= 4;
        txs[4] = SignedTxBytes::encode(&bad);
        let mut batch = Vec::new();
        VerifiedTx::verify_batch(&txs, &mut batch);
        let single: Vec<_> = txs.iter().map(|t| VerifiedTx::verify(*t)).collect();
        assert_eq!(batch, single);
        assert!(batch[4].is_err() && batch.iter().filter(|r| r.is_ok()).count() == 8);
    }

    #[test]
    fn a_stamped_record_carries_the_verified_tx() {
        let verified = VerifiedTx::sign(tx(3), &dev_account_key(2));
        let record = VerifiedRecordBytes::stamp(7, 99, &verified);
        let view = record.verified().record();
        assert_eq!((view.seq.to_native(), view.ts.to_native()), (7, 99));
        assert!(VerifiedRecord::verify(view).is_ok());
    }
}
