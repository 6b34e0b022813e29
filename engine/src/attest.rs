//! Attestations: signed checkpoints `(seq, journal digest, state hash)` that pin every balance
//! to the log (SPEC section 9).
//!
//! The journal digest is a BLAKE3 chain over the records' bytes (the xxh3 chain of the
//! journal only detects torn writes and corruption; it is not a commitment):
//! `d[0] = 0^32`, `d[n] = BLAKE3("verex-attest-chain-v1" ‖ d[n-1] ‖ record[n])`.
//! An attestation signs, with the genesis `attest` key, the bytes
//! `"verex-attest-v2\0" ‖ seq (u64 LE) ‖ d[seq] ‖ state_hash ‖ prev`, where `prev` is the
//! previous attestation's [`Attestation::link`] (`BLAKE3("verex-attest-link-v2" ‖ its signed
//! bytes)`, all zeros for the first): the attestations form a chain of their own, so removing
//! or replacing one in the middle of a log breaks the next one's `prev`. Anyone holding the
//! journal recomputes `d`, replays to get the state hash, and checks the signatures and links.

use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Map, Value};

use crate::signature_rule::verify_message;
use crate::signing::{hex, parse_hex};

/// Domain of the chain.
const CHAIN_DOMAIN: &[u8] = b"verex-attest-chain-v1";
/// Domain of the signed attestation bytes.
const ATTEST_DOMAIN: &[u8; 16] = b"verex-attest-v2\0";
/// Domain of the link from one attestation to the next.
const LINK_DOMAIN: &[u8] = b"verex-attest-link-v2";
/// Bytes the attest key signs.
pub const ATTEST_SIGNED_BYTES: usize = 16 + 8 + 32 + 32 + 32;

/// The BLAKE3 chain over journal records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalDigest {
    /// Seq of the last record folded in (0 = none).
    pub seq: u64,
    /// `d[seq]`.
    pub digest: [u8; 32],
}

impl JournalDigest {
    /// Folds in record `seq` (must be the next one).
    ///
    /// # Errors
    /// The expected seq, when `seq` is not `self.seq + 1`.
    pub fn push(&mut self, seq: u64, record: &[u8]) -> Result<(), u64> {
        if seq != self.seq + 1 {
            return Err(self.seq + 1);
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(CHAIN_DOMAIN);
        hasher.update(&self.digest);
        hasher.update(record);
        self.digest = *hasher.finalize().as_bytes();
        self.seq = seq;
        Ok(())
    }
}

/// A signed checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// The last applied seq.
    pub seq: u64,
    /// The journal digest `d[seq]`.
    pub journal_digest: [u8; 32],
    /// The engine's state hash after `seq`.
    pub state_hash: [u8; 32],
    /// The previous attestation's [`Attestation::link`] (zeros for the first).
    pub prev: [u8; 32],
    /// The attest key that signed it.
    pub signer: [u8; 32],
    /// ed25519 signature over [`Attestation::signed_bytes`].
    pub signature: [u8; 64],
}

/// Why an attestation does not check out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestError {
    /// Signed by a key other than the genesis attest key.
    #[error("attestation at seq {seq} is signed by {signer}, not the attest key")]
    WrongSigner {
        /// Its seq.
        seq: u64,
        /// The key that signed it.
        signer: String,
    },
    /// The signature does not verify.
    #[error("attestation at seq {0} has a bad signature")]
    BadSignature(u64),
    /// Its journal digest differs from the journal's.
    #[error("attestation at seq {0}: journal digest does not match the journal")]
    JournalDigest(u64),
    /// Its state hash differs from the replayed state's.
    #[error("attestation at seq {0}: state hash does not match the replayed state")]
    StateHash(u64),
    /// Malformed JSON.
    #[error("attestation JSON: {0}")]
    Json(String),
}

impl Attestation {
    /// The bytes the attest key signs.
    #[must_use]
    pub fn signed_bytes(
        seq: u64,
        journal_digest: &[u8; 32],
        state_hash: &[u8; 32],
        prev: &[u8; 32],
    ) -> [u8; ATTEST_SIGNED_BYTES] {
        let mut out = [0u8; ATTEST_SIGNED_BYTES];
        out[..16].copy_from_slice(ATTEST_DOMAIN);
        out[16..24].copy_from_slice(&seq.to_le_bytes());
        out[24..56].copy_from_slice(journal_digest);
        out[56..88].copy_from_slice(state_hash);
        out[88..120].copy_from_slice(prev);
        out
    }

    /// Signs a checkpoint that follows the attestation whose [`Attestation::link`] is `prev`
    /// (zeros for the first).
    #[must_use]
    pub fn sign(seq: u64, journal_digest: [u8; 32], state_hash: [u8; 32], prev: [u8; 32], key: &SigningKey) -> Self {
        let signature = key.sign(&Self::signed_bytes(seq, &journal_digest, &state_hash, &prev)).to_bytes();
        Self { seq, journal_digest, state_hash, prev, signer: key.verifying_key().to_bytes(), signature }
    }

    /// What the next attestation's `prev` must be: a hash of everything this one signs.
    #[must_use]
    pub fn link(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(LINK_DOMAIN);
        hasher.update(&Self::signed_bytes(self.seq, &self.journal_digest, &self.state_hash, &self.prev));
        *hasher.finalize().as_bytes()
    }

    /// Checks the signer is `attest_key` and the signature verifies.
    ///
    /// # Errors
    /// [`AttestError::WrongSigner`] or [`AttestError::BadSignature`].
    pub fn verify(&self, attest_key: &[u8; 32]) -> Result<(), AttestError> {
        if &self.signer != attest_key {
            return Err(AttestError::WrongSigner { seq: self.seq, signer: hex(&self.signer) });
        }
        verify_message(
            &self.signer,
            &Self::signed_bytes(self.seq, &self.journal_digest, &self.state_hash, &self.prev),
            &self.signature,
        )
        .map_err(|_| AttestError::BadSignature(self.seq))
    }

    /// The JSON export: `{"seq","journal_digest","state_hash","prev","signer","signature"}`, hex.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("seq".into(), self.seq.into());
        map.insert("journal_digest".into(), hex(&self.journal_digest).into());
        map.insert("state_hash".into(), hex(&self.state_hash).into());
        map.insert("prev".into(), hex(&self.prev).into());
        map.insert("signer".into(), hex(&self.signer).into());
        map.insert("signature".into(), hex(&self.signature).into());
        Value::Object(map).to_string()
    }

    /// Parses the JSON export.
    ///
    /// # Errors
    /// [`AttestError::Json`] naming the field.
    pub fn from_json(line: &str) -> Result<Self, AttestError> {
        let value: Value = serde_json::from_str(line).map_err(|e| AttestError::Json(e.to_string()))?;
        let field = |name: &str| {
            value.get(name).and_then(Value::as_str).ok_or_else(|| AttestError::Json(format!("missing `{name}`")))
        };
        let bad = |name: &str| AttestError::Json(format!("`{name}` is not hex of the right length"));
        Ok(Self {
            seq: value.get("seq").and_then(Value::as_u64).ok_or_else(|| AttestError::Json("missing `seq`".into()))?,
            journal_digest: parse_hex::<32>(field("journal_digest")?).ok_or_else(|| bad("journal_digest"))?,
            state_hash: parse_hex::<32>(field("state_hash")?).ok_or_else(|| bad("state_hash"))?,
            prev: parse_hex::<32>(field("prev")?).ok_or_else(|| bad("prev"))?,
            signer: parse_hex::<32>(field("signer")?).ok_or_else(|| bad("signer"))?,
            signature: parse_hex::<64>(field("signature")?).ok_or_else(|| bad("signature"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{dev_role_key, Role};

    #[test]
    fn sign_verify_json_round_trip() {
        let key = dev_role_key(Role::Attest);
        let mut chain = JournalDigest::default();
        chain.push(1, b"record one").expect("next");
        assert_eq!(chain.push(3, b"gap"), Err(2));
        let attestation = Attestation::sign(1, chain.digest, [9; 32], [0; 32], &key);
        let attest_key = key.verifying_key().to_bytes();
        assert_eq!(attestation.verify(&attest_key), Ok(()));
        assert_eq!(Attestation::from_json(&attestation.to_json()), Ok(attestation));
        let mut forged = attestation;
        forged.state_hash[0] ^= 1;
        assert_eq!(forged.verify(&attest_key), Err(AttestError::BadSignature(1)));
        let other = Attestation::sign(1, chain.digest, [9; 32], [0; 32], &dev_role_key(Role::Oracle));
        assert!(matches!(other.verify(&attest_key), Err(AttestError::WrongSigner { .. })));
    }

    #[test]
    fn each_attestation_links_to_the_one_before() {
        let key = dev_role_key(Role::Attest);
        let first = Attestation::sign(10, [1; 32], [2; 32], [0; 32], &key);
        let second = Attestation::sign(20, [3; 32], [4; 32], first.link(), &key);
        let third = Attestation::sign(30, [5; 32], [6; 32], second.link(), &key);
        assert_eq!(third.prev, second.link());
        assert_ne!(third.prev, first.link(), "with the second removed, the third no longer links");
        let mut relinked = third;
        relinked.prev = first.link();
        let attest_key = key.verifying_key().to_bytes();
        assert_eq!(relinked.verify(&attest_key), Err(AttestError::BadSignature(30)), "prev is signed");
    }

    #[test]
    fn the_chain_depends_on_every_record_and_its_order() {
        let mut a = JournalDigest::default();
        let mut b = JournalDigest::default();
        a.push(1, b"x").and_then(|()| a.push(2, b"y")).expect("a");
        b.push(1, b"y").and_then(|()| b.push(2, b"x")).expect("b");
        assert_ne!(a.digest, b.digest);
    }
}
