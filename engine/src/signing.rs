//! Canonical bytes, ed25519 signatures, and the deterministic development keys.
//!
//! Every signature check goes through [`crate::signature_rule`], the one verification rule of
//! SPEC section 4 (no small-order or non-canonical points, `S < ℓ`, the cofactored equation).
//!
//! The canonical bytes of a transaction are the bytes of its archived [`Tx`] (fixed size,
//! little-endian, zeroed padding), prefixed by a domain tag so that a signature over a verex
//! transaction can never be replayed as a signature over anything else. Because the archived
//! `Tx` sits inside every journal record, a third party verifies a record's signature over the
//! record's own bytes, with no re-encoding.

use ed25519_dalek::{Signer as _, SigningKey};
use rkyv::rancor;

use crate::signature_rule::{verify_checked, CheckedKey, MessageParts, SignatureFault, SignatureVerifier};
use crate::tx::{ArchivedSignedTx, ArchivedTx, SignedTx, Tx};

/// Domain separation tag prepended to the archived tx before signing.
pub const TX_SIGNING_DOMAIN: &[u8; 12] = b"verex-tx-v1\0";

/// Bytes of an archived [`Tx`].
pub const TX_BYTES: usize = core::mem::size_of::<ArchivedTx>();

/// Why a transaction's signature is refused: the signer and the step of the rule it fails.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("signature by {} refused: {fault}", hex(signer))]
pub struct SignatureError {
    /// The tx's signer (its public key).
    pub signer: [u8; 32],
    /// What failed.
    pub fault: SignatureFault,
}

impl SignatureError {
    /// True when the key itself is refused (not a canonical point of large order), whatever
    /// it signs.
    #[must_use]
    pub fn is_bad_key(&self) -> bool {
        matches!(
            self.fault,
            SignatureFault::KeyNotCanonical | SignatureFault::KeySmallOrder | SignatureFault::KeyNotAPoint
        )
    }
}

/// The archived bytes of `tx`, exactly as they appear inside a journal record.
#[must_use]
pub fn archive_tx(tx: &Tx) -> [u8; TX_BYTES] {
    let mut out = [0u8; TX_BYTES];
    // Serialising a fixed-size value into memory cannot fail; an error here is a bug.
    let bytes = rkyv::to_bytes::<rancor::Error>(tx).unwrap_or_else(|_| unreachable_archive());
    debug_assert_eq!(bytes.len(), TX_BYTES, "a Tx archive has a fixed size");
    out.copy_from_slice(&bytes[bytes.len() - TX_BYTES..]);
    out
}

#[cold]
fn unreachable_archive() -> rkyv::util::AlignedVec {
    // Infallible in practice (memory serializer, no out-of-line data); keep an empty vec
    // so that the caller's length assertion names the problem in debug builds.
    rkyv::util::AlignedVec::new()
}

/// The bytes of an archived tx, in place.
#[must_use]
pub fn archived_tx_bytes(tx: &ArchivedTx) -> &[u8] {
    // SAFETY: an archived `Tx` is a plain, fully initialised byte layout (rkyv archives are
    // `Portable`: no pointers, no uninitialised padding in buffers rkyv wrote), `TX_BYTES` long.
    unsafe { core::slice::from_raw_parts((tx as *const ArchivedTx).cast::<u8>(), TX_BYTES) }
}

/// The message a tx's signature covers: [`TX_SIGNING_DOMAIN`] followed by the archived tx.
#[must_use]
pub fn signing_message(tx_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(TX_SIGNING_DOMAIN.len() + tx_bytes.len());
    message.extend_from_slice(TX_SIGNING_DOMAIN);
    message.extend_from_slice(tx_bytes);
    message
}

/// Signs `tx` with `key`; the tx's `signer` must be `key`'s public key for it to verify.
#[must_use]
pub fn sign(tx: Tx, key: &SigningKey) -> SignedTx {
    let signature = key.sign(&signing_message(&archive_tx(&tx)));
    SignedTx { tx, signature: signature.to_bytes() }
}

/// Verifies a signed tx in its archived form (as read from a journal record) under the rule.
///
/// # Errors
/// [`SignatureError`] naming the signer and the failed step.
pub fn verify_archived(signed: &ArchivedSignedTx) -> Result<(), SignatureError> {
    CheckedKey::check(&signed.tx.signer)
        .and_then(|key| verify_checked(&key, tx_message(&signed.tx), &signed.signature))
        .map_err(|fault| SignatureError { signer: signed.tx.signer, fault })
}

/// [`verify_archived`] through a verifier's key cache (the same verdict).
///
/// # Errors
/// [`SignatureError`] naming the signer and the failed step.
pub fn verify_archived_with(signed: &ArchivedSignedTx, verifier: &mut SignatureVerifier) -> Result<(), SignatureError> {
    verifier
        .verify(&signed.tx.signer, tx_message(&signed.tx), &signed.signature)
        .map_err(|fault| SignatureError { signer: signed.tx.signer, fault })
}

/// The message a tx's signature covers ([`signing_message`]), in place: the domain tag and
/// the archived tx, not copied.
#[must_use]
pub fn tx_message(tx: &ArchivedTx) -> MessageParts<'_> {
    MessageParts { prefix: TX_SIGNING_DOMAIN, body: archived_tx_bytes(tx) }
}

/// Verifies a signed tx in its native form under the rule.
///
/// # Errors
/// [`SignatureError`] naming the signer and the failed step.
pub fn verify(signed: &SignedTx) -> Result<(), SignatureError> {
    crate::signature_rule::verify_message(
        &signed.tx.signer,
        &signing_message(&archive_tx(&signed.tx)),
        &signed.signature,
    )
    .map_err(|fault| SignatureError { signer: signed.tx.signer, fault })
}

/// Lower-case hex of bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Parses lower- or upper-case hex (an optional `0x` prefix allowed) into exactly `N` bytes.
#[must_use]
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let high = (chunk[0] as char).to_digit(16)?;
        let low = (chunk[1] as char).to_digit(16)?;
        out[i] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// Operator roles named by the genesis configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Lists assets and markets.
    Admin,
    /// Credits deposits.
    Custody,
    /// Publishes prices, funding and time.
    Oracle,
    /// Signs attestations.
    Attest,
}

impl Role {
    /// All roles, in a fixed order.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Custody, Role::Oracle, Role::Attest];

    /// The role's name as written in configuration.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Custody => "custody",
            Self::Oracle => "oracle",
            Self::Attest => "attest",
        }
    }
}

/// Development key of a role: derived deterministically from its name. `--dev` only.
#[must_use]
pub fn dev_role_key(role: Role) -> SigningKey {
    let seed = blake3::hash(format!("verex-dev-key:role:{}", role.name()).as_bytes());
    SigningKey::from_bytes(seed.as_bytes())
}

/// Development key of an account: derived deterministically from its id. `--dev` only.
#[must_use]
pub fn dev_account_key(account: u64) -> SigningKey {
    let seed = blake3::hash(format!("verex-dev-key:account:{account}").as_bytes());
    SigningKey::from_bytes(seed.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Op;

    fn tx(nonce: u64) -> Tx {
        Tx { signer: dev_account_key(1).verifying_key().to_bytes(), nonce, account: 1, op: Op::CreateAccount }
    }

    #[test]
    fn sign_then_verify_native_and_archived() {
        let signed = sign(tx(1), &dev_account_key(1));
        assert_eq!(verify(&signed), Ok(()));
        let bytes = rkyv::to_bytes::<rancor::Error>(&signed).expect("archive");
        let archived = rkyv::access::<ArchivedSignedTx, rancor::Error>(&bytes).expect("access");
        assert_eq!(verify_archived(archived), Ok(()));
    }

    #[test]
    fn tampered_tx_fails() {
        let mut signed = sign(tx(1), &dev_account_key(1));
        signed.tx.nonce = 2;
        assert_eq!(verify(&signed).map_err(|e| e.fault), Err(SignatureFault::EquationFails));
        let signed = sign(tx(1), &dev_account_key(2));
        assert!(verify(&signed).is_err());
    }

    #[test]
    fn canonical_bytes_are_deterministic() {
        assert_eq!(archive_tx(&tx(7)), archive_tx(&tx(7)));
        assert_ne!(archive_tx(&tx(7)), archive_tx(&tx(8)));
    }

    #[test]
    fn hex_round_trip() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(parse_hex::<4>(&hex(&bytes)), Some(bytes));
        assert_eq!(parse_hex::<4>("0x0001abff"), Some(bytes));
        assert_eq!(parse_hex::<4>("zz01abff"), None);
    }
}
