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
//! Steps 1–2 are byte comparisons done here; step 3 is computed here too, on
//! `curve25519-dalek`: single checks with one double-scalar multiplication, batches with one
//! multiscalar multiplication `[8]([Σz·S]B − Σz·R − Σ(z·k)A) = 0` (the cofactor multiplied in,
//! so a batch accepts exactly what single checks accept, up to a 2^-128 chance; ZIP-215's
//! equation, which `ed25519-zebra` computes the same way, a test cross-checks it). Honest
//! signatures (RFC 8032 signers, `ed25519-dalek`) always pass; the rule refuses only crafted
//! edge cases. The speccheck vectors are tests (`engine/tests/signature_vectors.rs`).
//!
//! # The key cache
//!
//! Decompressing a public key (a field exponentiation) and checking it costs as much as a
//! fifth of a single verification and more of a batched one, and the same few signers sign
//! most txs. A [`SignatureVerifier`] (one per thread) keeps a [`KeyCache`] of keys that passed
//! step 1, decompressed: a bounded, 2-way set-associative table allocated once, which only
//! ever holds a [`CheckedKey`] (made by [`CheckedKey::check`] and nothing else), so a key the
//! rule refuses never enters it. A hit skips the decompression and the key's byte checks,
//! nothing else: the verdict of every input is the one [`verify_message`] gives.

use core::iter::once;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
use sha2::{Digest as _, Sha512};

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
    CheckedKey::check(key).map(|_| ())
}

fn check_key_encoding(key: &[u8; POINT_BYTES]) -> Result<(), SignatureFault> {
    check_point_encoding(key).map_err(|fault| match fault {
        PointFault::NotCanonical => SignatureFault::KeyNotCanonical,
        PointFault::SmallOrder => SignatureFault::KeySmallOrder,
    })
}

/// A public key that passed step 1 of the rule (canonical, a curve point, not of small
/// order), decompressed. Only [`CheckedKey::check`] makes one, so holding one is proof of the
/// check: what a [`KeyCache`] stores.
#[derive(Clone, Copy, Debug)]
pub struct CheckedKey {
    bytes: [u8; POINT_BYTES],
    /// `−A`: the single equation computes `[k](−A) + [S]B`, the batch adds `[z·k](−A)`.
    minus_point: EdwardsPoint,
}

impl CheckedKey {
    /// Checks `key` under step 1 of the rule and decompresses it.
    ///
    /// # Errors
    /// The [`SignatureFault`] of the key (`Key*`).
    pub fn check(key: &[u8; POINT_BYTES]) -> Result<Self, SignatureFault> {
        check_key_encoding(key)?;
        let point = CompressedEdwardsY(*key).decompress().ok_or(SignatureFault::KeyNotAPoint)?;
        // The byte table of small-order encodings is the rule; the curve agrees (a unit test
        // rebuilds the table from the torsion subgroup).
        debug_assert!(!point.is_small_order());
        Ok(Self { bytes: *key, minus_point: -point })
    }

    /// The key's encoding.
    #[must_use]
    pub fn bytes(&self) -> &[u8; POINT_BYTES] {
        &self.bytes
    }
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

/// A signed message in two parts (`prefix ‖ body`), so a domain-separated message is hashed
/// in place, without copying it into one buffer.
#[derive(Clone, Copy, Debug)]
pub struct MessageParts<'a> {
    /// The first bytes (a domain tag, or empty).
    pub prefix: &'a [u8],
    /// The rest.
    pub body: &'a [u8],
}

impl<'a> MessageParts<'a> {
    /// A message in one part.
    #[must_use]
    pub fn whole(message: &'a [u8]) -> Self {
        Self { prefix: &[], body: message }
    }

    fn len(&self) -> usize {
        self.prefix.len() + self.body.len()
    }
}

/// What the signature encoding checks leave to the equation: `R` decompressed, `S` as a
/// scalar and the challenge `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
struct Prepared {
    r_point: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Steps 1 (for `R`) and 2, then `R`'s decompression and the challenge: every check of the
/// rule but the equation, in the rule's order.
fn prepare(
    key: &CheckedKey,
    message: MessageParts<'_>,
    signature: &[u8; SIGNATURE_BYTES],
) -> Result<Prepared, SignatureFault> {
    check_signature_encoding(signature)?;
    let (r, s) = split_signature(signature);
    let r_point = CompressedEdwardsY(r).decompress().ok_or(SignatureFault::RNotAPoint)?;
    let mut hash = Sha512::new();
    hash.update(r);
    hash.update(key.bytes);
    hash.update(message.prefix);
    hash.update(message.body);
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    // `S < ℓ` was checked on the bytes, so this is `S` itself.
    Ok(Prepared { r_point, s: Scalar::from_bytes_mod_order(s), k })
}

/// The single equation `[8](R − ([k](−A) + [S]B)) = 0`.
fn single_equation(key: &CheckedKey, prepared: &Prepared) -> Result<(), SignatureFault> {
    let r_expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(&prepared.k, &key.minus_point, &prepared.s);
    if (prepared.r_point - r_expected).mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(SignatureFault::EquationFails)
    }
}

/// Verifies one signature by a key already checked (the rule's steps for the signature and
/// the equation).
///
/// # Errors
/// The first [`SignatureFault`] the signature or the equation shows.
pub fn verify_checked(
    key: &CheckedKey,
    message: MessageParts<'_>,
    signature: &[u8; SIGNATURE_BYTES],
) -> Result<(), SignatureFault> {
    single_equation(key, &prepare(key, message, signature)?)
}

/// Verifies one signature under the rule (no cache: the key is checked and decompressed
/// here; a [`SignatureVerifier`] gives the same verdict faster for a recurring signer).
///
/// # Errors
/// The first [`SignatureFault`] the key, the signature or the equation shows.
pub fn verify_message(
    key: &[u8; POINT_BYTES],
    message: &[u8],
    signature: &[u8; SIGNATURE_BYTES],
) -> Result<(), SignatureFault> {
    verify_checked(&CheckedKey::check(key)?, MessageParts::whole(message), signature)
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

/// One signature to check in a batch, its message in two parts.
#[derive(Clone, Copy, Debug)]
pub struct PartsItem<'a> {
    /// The signer's public key.
    pub key: &'a [u8; POINT_BYTES],
    /// The signed message.
    pub message: MessageParts<'a>,
    /// The signature.
    pub signature: &'a [u8; SIGNATURE_BYTES],
}

impl<'a> From<BatchItem<'a>> for PartsItem<'a> {
    fn from(item: BatchItem<'a>) -> Self {
        Self { key: item.key, message: MessageParts::whole(item.message), signature: item.signature }
    }
}

/// Verifies many signatures at once, with the verdict [`verify_message`] gives each (see
/// [`SignatureVerifier::verify_batch`]). `verdicts` is cleared and gets one verdict per item,
/// in order. Uses a verifier of its own (allocated here): a hot path keeps a
/// [`SignatureVerifier`] instead.
pub fn verify_batch(items: &[BatchItem<'_>], verdicts: &mut Vec<Result<(), SignatureFault>>) {
    let mut verifier = SignatureVerifier::new(items.len(), items.len());
    verifier.verify_batch(items.len(), |i| PartsItem::from(items[i]), verdicts);
}

/// Most keys a [`KeyCache`] holds.
pub const MAX_CACHED_KEYS: usize = 1 << 20;
/// Keys per set of a [`KeyCache`]: a key may sit in either way of its set.
const CACHE_WAYS: usize = 2;

/// One way of a cache set.
#[derive(Clone, Copy, Debug)]
struct CacheSlot {
    key: CheckedKey,
    /// The batch (by [`SignatureVerifier`]'s batch number) that last gave this key a term of
    /// its multiscalar multiplication, and that term: a batch merges the `A` terms of one
    /// signer. Reset when the slot takes another key.
    batch: u32,
    term: u32,
}

/// A bounded cache of checked, decompressed public keys: `sets × 2` slots allocated at
/// construction, never grown. A lookup that misses checks the key under the rule and, if it
/// passes, replaces the least recently used way of its set; a refused key is never stored
/// (each lookup of it checks it again and refuses it again).
///
/// The set is chosen from the key's bytes, which signers choose: a signer who grinds keys
/// into one set only evicts keys (each costs one more decompression), never changes a verdict.
#[derive(Debug)]
pub struct KeyCache {
    slots: Vec<Option<CacheSlot>>,
    /// Per set, the way used last (the other is evicted next).
    recent_way: Vec<u8>,
    set_mask: usize,
    hits: u64,
    misses: u64,
}

impl KeyCache {
    /// A cache of at least `keys` keys (rounded up to a power of two, `2..=MAX_CACHED_KEYS`).
    #[must_use]
    pub fn new(keys: usize) -> Self {
        let slots = keys.clamp(CACHE_WAYS, MAX_CACHED_KEYS).next_power_of_two();
        let sets = slots / CACHE_WAYS;
        Self { slots: vec![None; slots], recent_way: vec![0; sets], set_mask: sets - 1, hits: 0, misses: 0 }
    }

    /// Keys it can hold.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Lookups that found their key, and lookups that did not (refused keys included).
    #[must_use]
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    fn set_of(&self, key: &[u8; POINT_BYTES]) -> usize {
        let mut word = [0u8; 8];
        word.copy_from_slice(&key[..8]);
        let folded = u64::from_le_bytes(word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The high bits of the product mix all of the low word.
        (folded >> 32) as usize & self.set_mask
    }

    /// The slot index holding `key`, checking and inserting it on a miss.
    fn slot_of(&mut self, key: &[u8; POINT_BYTES]) -> Result<usize, SignatureFault> {
        let set = self.set_of(key);
        let first = set * CACHE_WAYS;
        for way in 0..CACHE_WAYS {
            if let Some(slot) = &self.slots[first + way] {
                if slot.key.bytes == *key {
                    self.hits += 1;
                    self.recent_way[set] = way as u8;
                    return Ok(first + way);
                }
            }
        }
        self.misses += 1;
        let checked = CheckedKey::check(key)?;
        let way = match self.slots[first..first + CACHE_WAYS].iter().position(Option::is_none) {
            Some(empty) => empty,
            None => 1 - usize::from(self.recent_way[set]),
        };
        self.slots[first + way] = Some(CacheSlot { key: checked, batch: 0, term: 0 });
        self.recent_way[set] = way as u8;
        Ok(first + way)
    }

    fn slot(&self, index: usize) -> Option<&CacheSlot> {
        self.slots.get(index).and_then(Option::as_ref)
    }

    /// The checked key for `key`, from the cache or checked now (and then cached).
    ///
    /// # Errors
    /// The key's [`SignatureFault`] (`Key*`); the key is not cached.
    pub fn lookup(&mut self, key: &[u8; POINT_BYTES]) -> Result<CheckedKey, SignatureFault> {
        let index = self.slot_of(key)?;
        self.slot(index).map(|slot| slot.key).ok_or(SignatureFault::KeyNotAPoint)
    }

    /// Whether `key` is cached now (tests and diagnostics; does not count as a lookup).
    #[must_use]
    pub fn contains(&self, key: &[u8; POINT_BYTES]) -> bool {
        let first = self.set_of(key) * CACHE_WAYS;
        self.slots[first..first + CACHE_WAYS].iter().flatten().any(|slot| slot.key.bytes == *key)
    }
}

/// An item of the batch that passed every check but the equation.
struct Queued {
    /// Its index in the batch.
    item: u32,
    /// Its `A` term in the multiscalar multiplication.
    term: u32,
    prepared: Prepared,
}

/// One thread's verifier: a [`KeyCache`] and the scratch space of batch verification, all
/// allocated at construction for batches of a fixed most items (a larger batch is verified
/// in pieces of that size), so verifying allocates nothing but what the multiscalar
/// multiplication of `curve25519-dalek` allocates inside (a few buffers per batch).
#[derive(Debug)]
pub struct SignatureVerifier {
    cache: KeyCache,
    /// Most items of one multiscalar multiplication (the scratch vectors' capacity).
    batch_items: usize,
    batch_number: u32,
    queued: Vec<Queued>,
    /// `A` terms: the cache slot of each term's key, and its coefficient `Σ z·k`.
    term_slots: Vec<u32>,
    term_points: Vec<EdwardsPoint>,
    term_scalars: Vec<Scalar>,
    r_points: Vec<EdwardsPoint>,
    r_scalars: Vec<Scalar>,
    piece_verdicts: Vec<Result<(), SignatureFault>>,
}

impl core::fmt::Debug for Queued {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Queued").field("item", &self.item).field("term", &self.term).finish_non_exhaustive()
    }
}

impl SignatureVerifier {
    /// A verifier whose cache holds at least `cached_keys` keys (see [`KeyCache::new`]) and
    /// whose batches hold up to `batch_items` items (`1..=MAX_BATCH_ITEMS`; a longer batch is
    /// verified in pieces of that size, with the same verdicts).
    #[must_use]
    pub fn new(cached_keys: usize, batch_items: usize) -> Self {
        let batch_items = batch_items.clamp(1, MAX_BATCH_ITEMS);
        Self {
            cache: KeyCache::new(cached_keys),
            batch_items,
            batch_number: 0,
            queued: Vec::with_capacity(batch_items),
            term_slots: Vec::with_capacity(batch_items),
            term_points: Vec::with_capacity(batch_items),
            term_scalars: Vec::with_capacity(batch_items),
            r_points: Vec::with_capacity(batch_items),
            r_scalars: Vec::with_capacity(batch_items),
            piece_verdicts: Vec::with_capacity(batch_items),
        }
    }

    /// The key cache.
    #[must_use]
    pub fn cache(&self) -> &KeyCache {
        &self.cache
    }

    /// Verifies one signature under the rule: the verdict of [`verify_message`].
    ///
    /// # Errors
    /// The first [`SignatureFault`] the key, the signature or the equation shows.
    pub fn verify(
        &mut self,
        key: &[u8; POINT_BYTES],
        message: MessageParts<'_>,
        signature: &[u8; SIGNATURE_BYTES],
    ) -> Result<(), SignatureFault> {
        let checked = self.cache.lookup(key)?;
        verify_checked(&checked, message, signature)
    }

    /// Verifies `count` signatures, item `i` given by `item(i)`, with the verdict
    /// [`verify_message`] gives each: each item's key (through the cache) and encodings are
    /// checked one by one, the equations of the rest together (one multiscalar
    /// multiplication, the terms of a repeated key merged), and when that fails each is
    /// checked alone to find the bad ones. `verdicts` is cleared and gets one verdict per
    /// item, in order.
    ///
    /// The batch's coefficients `z` (128 bits each) are read from BLAKE3's output over every
    /// queued item (key, message length, message, signature), so a run is reproducible and no
    /// signer can choose its items knowing the coefficients.
    pub fn verify_batch<'a>(
        &mut self,
        count: usize,
        item: impl Fn(usize) -> PartsItem<'a>,
        verdicts: &mut Vec<Result<(), SignatureFault>>,
    ) {
        self.verify_batch_map(count, item, verdicts, |_, verdict| verdict);
    }

    /// [`SignatureVerifier::verify_batch`], each verdict turned into a `T` by
    /// `map(index, verdict)`; `out` is cleared and gets one `T` per item, in order.
    pub fn verify_batch_map<'a, T>(
        &mut self,
        count: usize,
        item: impl Fn(usize) -> PartsItem<'a>,
        out: &mut Vec<T>,
        map: impl Fn(usize, Result<(), SignatureFault>) -> T,
    ) {
        out.clear();
        let mut first = 0;
        while first < count {
            let end = count.min(first + self.batch_items);
            self.verify_piece(first, end, &item);
            out.extend(self.piece_verdicts.iter().enumerate().map(|(k, verdict)| map(first + k, *verdict)));
            first = end;
        }
    }

    /// Items `first..end` (at most `batch_items`): their verdicts in `piece_verdicts`.
    fn verify_piece<'a>(&mut self, first: usize, end: usize, item: &impl Fn(usize) -> PartsItem<'a>) {
        self.begin_batch();
        let mut seed = blake3::Hasher::new_derive_key("verex batch verification coefficients v1");
        for index in first..end {
            let verdict = self.queue(index - first, item(index), &mut seed);
            self.piece_verdicts.push(verdict);
        }
        if self.queued.is_empty() || self.batch_equation_holds(seed.finalize_xof()) {
            return;
        }
        for queued in &self.queued {
            let index = queued.item as usize;
            let key_bytes = item(first + index).key;
            // The key of a queued item was cached when it was queued; a later item of the
            // piece may have evicted it, then it is checked again.
            let key = match self.cache.slot(self.term_slots[queued.term as usize] as usize) {
                Some(slot) if slot.key.bytes == *key_bytes => Ok(slot.key),
                _ => CheckedKey::check(key_bytes),
            };
            self.piece_verdicts[index] = key.and_then(|key| single_equation(&key, &queued.prepared));
        }
    }

    fn begin_batch(&mut self) {
        self.queued.clear();
        self.piece_verdicts.clear();
        self.term_slots.clear();
        self.term_points.clear();
        self.term_scalars.clear();
        self.r_points.clear();
        self.r_scalars.clear();
        self.batch_number = self.batch_number.wrapping_add(1);
        if self.batch_number == 0 {
            // Slot stamps of batch 0 mean "no term": skip it, and forget every stamp so a
            // stamp from 2^32 batches ago cannot match.
            for slot in self.cache.slots.iter_mut().flatten() {
                slot.batch = 0;
            }
            self.batch_number = 1;
        }
    }

    /// Checks one item up to the equation; queues it if it passes. Returns its verdict so far.
    fn queue(&mut self, index: usize, item: PartsItem<'_>, seed: &mut blake3::Hasher) -> Result<(), SignatureFault> {
        let slot_index = self.cache.slot_of(item.key)?;
        let batch_number = self.batch_number;
        let next_term = self.term_slots.len() as u32;
        let Some(slot) = self.cache.slots[slot_index].as_mut() else {
            return Err(SignatureFault::KeyNotAPoint);
        };
        let prepared = prepare(&slot.key, item.message, item.signature)?;
        let term = if slot.batch == batch_number {
            slot.term
        } else {
            slot.batch = batch_number;
            slot.term = next_term;
            self.term_slots.push(slot_index as u32);
            self.term_points.push(slot.key.minus_point);
            self.term_scalars.push(Scalar::ZERO);
            next_term
        };
        seed.update(item.key);
        seed.update(&(item.message.len() as u64).to_le_bytes());
        seed.update(item.message.prefix);
        seed.update(item.message.body);
        seed.update(item.signature);
        self.queued.push(Queued { item: index as u32, term, prepared });
        Ok(())
    }

    /// `[8]([Σz·S]B + Σ(−z)·R + Σ(z·k)(−A)) = 0` over the queued items.
    fn batch_equation_holds(&mut self, mut coefficients: blake3::OutputReader) -> bool {
        let mut b_scalar = Scalar::ZERO;
        for queued in &self.queued {
            let mut z_bytes = [0u8; 32];
            coefficients.fill(&mut z_bytes[..16]);
            let z = Scalar::from_bytes_mod_order(z_bytes);
            b_scalar += z * queued.prepared.s;
            self.term_scalars[queued.term as usize] += z * queued.prepared.k;
            self.r_points.push(queued.prepared.r_point);
            self.r_scalars.push(-z);
        }
        let check = EdwardsPoint::vartime_multiscalar_mul(
            once(&b_scalar).chain(&self.term_scalars).chain(&self.r_scalars),
            once(&ED25519_BASEPOINT_POINT).chain(&self.term_points).chain(&self.r_points),
        );
        check.mul_by_cofactor().is_identity()
    }
}

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
