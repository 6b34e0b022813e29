//! The one ed25519 verification rule (SPEC section 4), for every path that checks a signature:
//! the ingress (single or batch), `verex verify`, journal replay, attestations, any library call.
//!
//! Signatures are evidence, so a signature must verify for one message and one key only, and
//! every verifier must give the same verdict on the same bytes. ed25519 as specified leaves
//! room for disagreement ("Taming the many EdDSAs", Chalkias, Garillot, Nikolaenko, 2020):
//! small-order keys, for which one signature verifies for every message; non-canonical point
//! encodings; `S ≥ ℓ`; and the choice between the cofactored and the cofactorless equation,
//! on which batch and single verification can differ. verex's rule closes each:
//!
//! 1. the public key `A` and the signature's `R` are canonical encodings (`y < p`, and no
//!    "negative zero" `x`) of points that are **not of small order** (not in the 8-torsion);
//! 2. `S < ℓ` (the group order);
//! 3. the **cofactored** equation `[8][S]B = [8]R + [8][k]A` holds, with
//!    `k = SHA-512(R ‖ A ‖ message) mod ℓ`.
//!
//! Steps 1–2 are byte comparisons done here; step 3 and the point decompressions are
//! `ed25519-zebra` (ZIP-215: the same cofactored equation for single and batch verification,
//! so a batch accepts exactly what single checks accept, up to a 2^-128 chance). Honest
//! signatures (RFC 8032 signers, `ed25519-dalek`) always pass; the rule refuses only crafted
//! edge cases. The speccheck vectors are tests (`engine/tests/signature_vectors.rs`).

use ed25519_zebra::batch;
use ed25519_zebra::{Signature, VerificationKey, VerificationKeyBytes};

/// Bytes of an encoded point (a public key, or the `R` half of a signature).
pub const POINT_BYTES: usize = 32;
/// Bytes of a signature: `R ‖ S`.
pub const SIGNATURE_BYTES: usize = 64;
/// Most items one batch verification takes; larger inputs are verified in batches of this.
pub const MAX_BATCH_ITEMS: usize = 4096;

/// Why a signature is refused: the first step of the rule it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFault {
    /// The public key's encoding is not canonical (`y ≥ p`).
    #[error("public key is not a canonical point encoding")]
    KeyNotCanonical,
    /// The public key is a point of small order: a signature would verify for any message.
    #[error("public key is a point of small order (a weak key)")]
    KeySmallOrder,
    /// The public key does not decode to a curve point.
    #[error("public key is not a curve point")]
    KeyNotAPoint,
    /// The signature's `R` is not a canonical point encoding.
    #[error("signature R is not a canonical point encoding")]
    RNotCanonical,
    /// The signature's `R` is a point of small order.
    #[error("signature R is a point of small order")]
    RSmallOrder,
    /// The signature's `R` does not decode to a curve point.
    #[error("signature R is not a curve point")]
    RNotAPoint,
    /// The signature's `S` is not below the group order ℓ.
    #[error("signature S is not reduced (S >= l)")]
    SNotReduced,
    /// The cofactored verification equation does not hold.
    #[error("signature does not verify")]
    EquationFails,
}

/// `p = 2^255 − 19`, little-endian.
const FIELD_P: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    p
};

/// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The `y` coordinates (sign bit cleared) of the eight points of small order: the identity
/// (`y = 1`), the point of order 2 (`y = p − 1`), the two of order 4 (`y = 0`) and the four
/// of order 8 (two `y` values, each with both signs of `x`). A canonical encoding whose `y` is
/// one of these is a small-order point whatever its sign bit (for `y = ±1` the sign bit set
/// is a non-canonical "negative zero", refused either way). The unit tests rebuild this
/// table from the curve.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    {
        let mut y = FIELD_P;
        y[0] = 0xec;
        y
    },
    [0; 32],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
];

/// `a < b` for 256-bit little-endian integers.
fn less_le(a: &[u8; 32], b: &[u8; 32]) -> bool {
    for i in (0..32).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// How an encoded point fails step 1 of the rule, if it does (curve membership is checked by
/// decompression later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PointFault {
    NotCanonical,
    SmallOrder,
}

fn check_point_encoding(bytes: &[u8; 32]) -> Result<(), PointFault> {
    let mut y = *bytes;
    y[31] &= 0x7f;
    if !less_le(&y, &FIELD_P) {
        return Err(PointFault::NotCanonical);
    }
    if SMALL_ORDER_Y.contains(&y) {
        return Err(PointFault::SmallOrder);
    }
    Ok(())
}

/// Checks that `key` may sign: a canonical encoding of a curve point that is not of small
/// order. `create_account` keys and genesis keys must pass it.
///
/// # Errors
/// The [`SignatureFault`] of the key (`Key*`).
pub fn check_public_key(key: &[u8; POINT_BYTES]) -> Result<(), SignatureFault> {
    decode_key(key).map(|_| ())
}

fn check_key_encoding(key: &[u8; POINT_BYTES]) -> Result<(), SignatureFault> {
    check_point_encoding(key).map_err(|fault| match fault {
        PointFault::NotCanonical => SignatureFault::KeyNotCanonical,
        PointFault::SmallOrder => SignatureFault::KeySmallOrder,
    })
}

fn decode_key(key: &[u8; POINT_BYTES]) -> Result<VerificationKey, SignatureFault> {
    check_key_encoding(key)?;
    VerificationKey::try_from(VerificationKeyBytes::from(*key)).map_err(|_| SignatureFault::KeyNotAPoint)
}

/// Steps 1 (for `R`) and 2 of the rule: the signature's own encoding.
fn check_signature_encoding(signature: &[u8; SIGNATURE_BYTES]) -> Result<(), SignatureFault> {
    let (r, s) = split_signature(signature);
    check_point_encoding(&r).map_err(|fault| match fault {
        PointFault::NotCanonical => SignatureFault::RNotCanonical,
        PointFault::SmallOrder => SignatureFault::RSmallOrder,
    })?;
    if !less_le(&s, &GROUP_ORDER) {
        return Err(SignatureFault::SNotReduced);
    }
    Ok(())
}

fn split_signature(signature: &[u8; SIGNATURE_BYTES]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    s.copy_from_slice(&signature[32..]);
    (r, s)
}

/// Verifies one signature under the rule.
///
/// # Errors
/// The first [`SignatureFault`] the key, the signature or the equation shows.
pub fn verify_message(
    key: &[u8; POINT_BYTES],
    message: &[u8],
    signature: &[u8; SIGNATURE_BYTES],
) -> Result<(), SignatureFault> {
    let verification_key = decode_key(key)?;
    check_signature_encoding(signature)?;
    verification_key.verify(&Signature::from_bytes(signature), message).map_err(|_| equation_or_r_fault(signature))
}

/// Zebra refuses an `R` that is not a point and a failing equation alike; say which.
fn equation_or_r_fault(signature: &[u8; SIGNATURE_BYTES]) -> SignatureFault {
    let (r, _) = split_signature(signature);
    let r_is_point = VerificationKey::try_from(VerificationKeyBytes::from(r)).is_ok();
    if r_is_point {
        SignatureFault::EquationFails
    } else {
        SignatureFault::RNotAPoint
    }
}

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// The signer's public key.
    pub key: &'a [u8; POINT_BYTES],
    /// The signed message.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a [u8; SIGNATURE_BYTES],
}

/// Verifies many signatures at once, with the verdict [`verify_message`] gives each: encodings
/// are checked one by one, the equations of the rest together (one multiscalar
/// multiplication, about twice as fast per signature), and when that fails each is checked
/// alone to find the bad ones. `verdicts` is cleared and gets one verdict per item, in order.
///
/// The batch's random coefficients are derived from a BLAKE3 hash of every item (key,
/// message, signature), so a run is reproducible and no signer can choose its items knowing
/// the coefficients.
pub fn verify_batch(items: &[BatchItem<'_>], verdicts: &mut Vec<Result<(), SignatureFault>>) {
    verdicts.clear();
    for chunk in items.chunks(MAX_BATCH_ITEMS) {
        let first = verdicts.len();
        let mut verifier = batch::Verifier::new();
        let mut seed = blake3::Hasher::new_derive_key("verex batch verification coefficients v1");
        let mut queued = 0usize;
        for item in chunk {
            // The same steps, in the same order, as `verify_message`, but the key's curve
            // point is decoded by the batch (once per distinct key); a key that is not a point
            // fails the batch, and the single checks below name it.
            let verdict = check_key_encoding(item.key).and_then(|()| check_signature_encoding(item.signature));
            if verdict.is_ok() {
                verifier.queue((
                    VerificationKeyBytes::from(*item.key),
                    Signature::from_bytes(item.signature),
                    item.message,
                ));
                seed.update(item.key);
                seed.update(&(item.message.len() as u64).to_le_bytes());
                seed.update(item.message);
                seed.update(item.signature);
                queued += 1;
            }
            verdicts.push(verdict);
        }
        if queued == 0 {
            continue;
        }
        if verifier.verify(HashRng(seed.finalize_xof())).is_err() {
            for (verdict, item) in verdicts[first..].iter_mut().zip(chunk) {
                if verdict.is_ok() {
                    *verdict = verify_message(item.key, item.message, item.signature);
                }
            }
        }
    }
}

/// A random-number generator reading BLAKE3's extendable output: the batch's coefficients.
struct HashRng(blake3::OutputReader);

impl rand_core::RngCore for HashRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.0.fill(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.0.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

// A hash of the whole batch, unpredictable to anyone who does not know every item: the
// standard derandomisation of batch verification.
impl rand_core::CryptoRng for HashRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use ed25519_dalek::{Signer as _, SigningKey};

    /// A point of order 8 (the speccheck vectors' small-order key).
    const ORDER_8: [u8; 32] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa,
    ];

    #[test]
    fn the_small_order_table_is_exactly_the_eight_torsion() {
        let generator = CompressedEdwardsY(ORDER_8).decompress().expect("a point");
        assert!(generator.is_small_order());
        let mut seen = Vec::new();
        let mut point = curve25519_dalek::EdwardsPoint::default();
        for _ in 0..8 {
            let encoding = point.compress().to_bytes();
            assert!(!seen.contains(&encoding), "the torsion subgroup is cyclic of order 8");
            seen.push(encoding);
            let mut y = encoding;
            y[31] &= 0x7f;
            assert!(SMALL_ORDER_Y.contains(&y), "{encoding:02x?} is in the table");
            assert_eq!(check_point_encoding(&encoding), Err(PointFault::SmallOrder));
            point += generator;
        }
        assert!(point == curve25519_dalek::EdwardsPoint::default(), "order 8");
        for y in SMALL_ORDER_Y {
            assert!(seen.iter().any(|e| {
                let mut masked = *e;
                masked[31] &= 0x7f;
                masked == y
            }));
        }
    }

    #[test]
    fn canonicity_is_y_below_p_and_no_negative_zero() {
        let mut p = FIELD_P;
        assert_eq!(check_point_encoding(&p), Err(PointFault::NotCanonical));
        p[0] = 0xee; // p + 1: the non-canonical encoding of y = 1
        assert_eq!(check_point_encoding(&p), Err(PointFault::NotCanonical));
        let mut negative_identity = [0u8; 32];
        negative_identity[0] = 1;
        negative_identity[31] = 0x80;
        assert!(check_point_encoding(&negative_identity).is_err());
        // Every honest key passes and agrees with curve25519-dalek's own checks.
        for seed in 0u8..64 {
            let key = SigningKey::from_bytes(&[seed; 32]).verifying_key().to_bytes();
            assert_eq!(check_public_key(&key), Ok(()));
            let point = CompressedEdwardsY(key).decompress().expect("point");
            assert_eq!(point.compress().to_bytes(), key, "canonical");
        }
    }

    #[test]
    fn scalar_bound_is_the_group_order() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let message = b"verex";
        let mut signature = key.sign(message).to_bytes();
        assert_eq!(verify_message(&key.verifying_key().to_bytes(), message, &signature), Ok(()));
        // S + ℓ satisfies the equation but is not reduced.
        let (_, s) = split_signature(&signature);
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(s[i]) + u16::from(GROUP_ORDER[i]) + carry;
            signature[32 + i] = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            verify_message(&key.verifying_key().to_bytes(), message, &signature),
            Err(SignatureFault::SNotReduced)
        );
    }

    #[test]
    fn a_weak_key_with_a_constant_signature_is_refused() {
        // Issue 11, case 1: signer 01 00.. (the identity), signature 01 00.. ‖ 00..: verifies
        // for every message under a lax rule.
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut signature = [0u8; 64];
        signature[0] = 1;
        assert_eq!(verify_message(&key, b"anything", &signature), Err(SignatureFault::KeySmallOrder));
        assert_eq!(check_public_key(&key), Err(SignatureFault::KeySmallOrder));
    }

    #[test]
    fn batch_and_single_agree_on_honest_and_tampered_items() {
        let keys: Vec<SigningKey> = (1u8..=20).map(|s| SigningKey::from_bytes(&[s; 32])).collect();
        let messages: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) + 1]).collect();
        let publics: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
        let mut signatures: Vec<[u8; 64]> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m).to_bytes()).collect();
        signatures[3][40] ^= 1;
        signatures[9] = signatures[8];
        let items: Vec<BatchItem<'_>> =
            (0..20).map(|i| BatchItem { key: &publics[i], message: &messages[i], signature: &signatures[i] }).collect();
        let mut verdicts = Vec::new();
        verify_batch(&items, &mut verdicts);
        let single: Vec<_> = items.iter().map(|i| verify_message(i.key, i.message, i.signature)).collect();
        assert_eq!(verdicts, single);
        assert_eq!(verdicts.iter().filter(|v| v.is_err()).count(), 2);
    }
}
