//! The key cache of the signature rule (`signature_rule::KeyCache`, inside every
//! `SignatureVerifier`): it only skips work, never changes a verdict.
//!
//! - cached and uncached verification give the same verdict, single and batch, on the
//!   ed25519-speccheck vectors and on random honest and forged signatures;
//! - a key the rule refuses (small order, non-canonical, not a point) never enters the cache;
//! - eviction (two ways per set, least recently used out) and keys sharing a set keep every
//!   verdict, also when a batch evicts a key it queued earlier;
//! - the rule's own equation agrees with an independent implementation of the same
//!   cofactored equation (`ed25519-zebra`, ZIP-215) on everything the encoding checks pass.

use ed25519_dalek::{Signer as _, SigningKey};
use proptest::prelude::*;
use verex_engine::signature_rule::{
    check_public_key, verify_batch, verify_message, BatchItem, CheckedKey, KeyCache, MessageParts, PartsItem,
    SignatureFault, SignatureVerifier,
};

/// An honest signed message.
#[derive(Clone, Debug)]
struct Signed {
    key: [u8; 32],
    message: Vec<u8>,
    signature: [u8; 64],
}

fn signed(key_seed: u8, message: &[u8]) -> Signed {
    let key = SigningKey::from_bytes(&[key_seed; 32]);
    Signed { key: key.verifying_key().to_bytes(), message: message.to_vec(), signature: key.sign(message).to_bytes() }
}

fn item(s: &Signed) -> BatchItem<'_> {
    BatchItem { key: &s.key, message: &s.message, signature: &s.signature }
}

/// Every way of verifying `inputs`: uncached single checks (the reference), uncached batch,
/// and single and batch through `verifier` (twice: cold, then with whatever it cached).
fn assert_all_agree(inputs: &[Signed], verifier: &mut SignatureVerifier) -> Vec<Result<(), SignatureFault>> {
    let reference: Vec<_> = inputs.iter().map(|s| verify_message(&s.key, &s.message, &s.signature)).collect();
    let items: Vec<BatchItem<'_>> = inputs.iter().map(item).collect();
    let mut verdicts = Vec::new();
    verify_batch(&items, &mut verdicts);
    assert_eq!(verdicts, reference, "uncached batch");
    for pass in 0..2 {
        let single: Vec<_> =
            inputs.iter().map(|s| verifier.verify(&s.key, MessageParts::whole(&s.message), &s.signature)).collect();
        assert_eq!(single, reference, "cached single, pass {pass}");
        verifier.verify_batch(items.len(), |i| PartsItem::from(items[i]), &mut verdicts);
        assert_eq!(verdicts, reference, "cached batch, pass {pass}");
    }
    reference
}

/// Small-order, non-canonical and off-curve key encodings.
fn refused_keys() -> Vec<([u8; 32], SignatureFault)> {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut negative_zero_identity = identity;
    negative_zero_identity[31] = 0x80;
    let mut order_two = [0xff; 32];
    order_two[0] = 0xec;
    order_two[31] = 0x7f;
    let mut order_two_negative = order_two;
    order_two_negative[31] = 0xff;
    let mut p_plus_one = [0xff; 32];
    p_plus_one[0] = 0xee;
    p_plus_one[31] = 0x7f;
    let mut order_eight = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0xfa,
    ];
    let order_eight_other_sign = {
        order_eight[31] = 0x7a;
        order_eight
    };
    // y = 2 is not the y of any curve point.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    vec![
        (identity, SignatureFault::KeySmallOrder),
        (negative_zero_identity, SignatureFault::KeySmallOrder),
        (order_two, SignatureFault::KeySmallOrder),
        (order_two_negative, SignatureFault::KeySmallOrder),
        ([0; 32], SignatureFault::KeySmallOrder),
        (order_eight_other_sign, SignatureFault::KeySmallOrder),
        (p_plus_one, SignatureFault::KeyNotCanonical),
        ([0xff; 32], SignatureFault::KeyNotCanonical),
        (off_curve, SignatureFault::KeyNotAPoint),
    ]
}

#[test]
fn the_off_curve_key_is_not_a_point() {
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    assert_eq!(check_public_key(&off_curve), Err(SignatureFault::KeyNotAPoint));
}

#[test]
fn a_refused_key_never_enters_the_cache() {
    let mut cache = KeyCache::new(64);
    for (key, fault) in refused_keys() {
        for _ in 0..3 {
            assert_eq!(cache.lookup(&key).map(|k| *k.bytes()), Err(fault), "{key:02x?}");
            assert!(!cache.contains(&key), "{key:02x?} was cached");
        }
        assert_eq!(CheckedKey::check(&key).map(|k| *k.bytes()), Err(fault));
    }
    let refused = refused_keys().len() as u64;
    assert_eq!(cache.hits_and_misses(), (0, 3 * refused), "every lookup of a refused key checks it again");
    // Through a verifier, single and batch: the identity key with the signature that verifies
    // for every message under a lax rule (issue 11) stays refused, before and after honest
    // traffic filled the cache.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut constant_signature = [0u8; 64];
    constant_signature[0] = 1;
    let mut verifier = SignatureVerifier::new(4, 8);
    for round in 0..2 {
        let mut inputs: Vec<Signed> = (1..=3).map(|s| signed(s, b"honest")).collect();
        inputs.push(Signed {
            key: identity,
            message: format!("anything {round}").into_bytes(),
            signature: constant_signature,
        });
        let verdicts = assert_all_agree(&inputs, &mut verifier);
        assert_eq!(verdicts[3], Err(SignatureFault::KeySmallOrder));
        assert!(!verifier.cache().contains(&identity));
    }
}

#[test]
fn eviction_is_least_recently_used_within_a_set_and_keeps_verdicts() {
    // Two slots: one set, so every key collides with every other.
    let keys: Vec<[u8; 32]> = (1u8..=3).map(|s| SigningKey::from_bytes(&[s; 32]).verifying_key().to_bytes()).collect();
    let mut cache = KeyCache::new(2);
    assert_eq!(cache.capacity(), 2);
    for key in &keys[..2] {
        assert!(cache.lookup(key).is_ok());
    }
    assert!(cache.contains(&keys[0]) && cache.contains(&keys[1]));
    assert!(cache.lookup(&keys[0]).is_ok(), "a hit: key 0 is now the most recent");
    assert_eq!(cache.hits_and_misses(), (1, 2));
    assert!(cache.lookup(&keys[2]).is_ok(), "a miss evicts key 1, the least recent");
    assert!(cache.contains(&keys[0]) && !cache.contains(&keys[1]) && cache.contains(&keys[2]));
    let looked_up = cache.lookup(&keys[1]).map(|k| *k.bytes());
    assert_eq!(looked_up, Ok(keys[1]), "an evicted key is checked again, with the same result");
    assert!(!cache.contains(&keys[0]), "key 0 was the least recent then");
    assert_eq!(cache.hits_and_misses(), (1, 4));
}

#[test]
fn a_batch_that_evicts_its_own_keys_keeps_every_verdict() {
    // Five signers through a two-key cache, interleaved, with one forged signature so the
    // batch falls back to single checks after keys it queued were evicted; repeated keys in
    // one batch (their terms merged) and the same verdicts as the uncached rule.
    let mut inputs: Vec<Signed> = (0..20u8).map(|i| signed(i % 5 + 1, &[i; 9])).collect();
    let mut verifier = SignatureVerifier::new(2, 16);
    let honest = assert_all_agree(&inputs, &mut verifier);
    assert!(honest.iter().all(Result::is_ok));
    inputs[7].signature[40] ^= 1;
    inputs[13].message[0] ^= 1;
    let verdicts = assert_all_agree(&inputs, &mut verifier);
    let refused: Vec<usize> = (0..verdicts.len()).filter(|&i| verdicts[i].is_err()).collect();
    assert_eq!(refused, [7, 13]);
    assert_eq!(verdicts[7], Err(SignatureFault::EquationFails));
    // Batches longer than the verifier's batch size are verified in pieces, same verdicts.
    let mut small = SignatureVerifier::new(64, 3);
    assert_eq!(assert_all_agree(&inputs, &mut small), verdicts);
}

/// The speccheck vectors (as in `signature_vectors.rs`), cached and uncached.
#[test]
fn cached_and_uncached_agree_on_the_speccheck_vectors() {
    let hex = |text: &str| -> Vec<u8> {
        (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex")).collect()
    };
    let vectors: Vec<Signed> = SPECCHECK
        .iter()
        .map(|(message, key, signature)| Signed {
            message: hex(message),
            key: hex(key).try_into().expect("32 bytes"),
            signature: hex(signature).try_into().expect("64 bytes"),
        })
        .collect();
    for capacity in [2, 4096] {
        let mut verifier = SignatureVerifier::new(capacity, 8);
        let verdicts = assert_all_agree(&vectors, &mut verifier);
        assert_eq!(verdicts.iter().filter(|v| v.is_ok()).count(), 3);
        for (case, vector) in vectors.iter().enumerate() {
            let alone = assert_all_agree(std::slice::from_ref(vector), &mut verifier);
            assert_eq!(alone, [verdicts[case]], "case {case} alone");
            let mut mixed: Vec<Signed> = (1..=4).map(|s| signed(s, b"honest")).collect();
            mixed.insert(2, vector.clone());
            let inside = assert_all_agree(&mixed, &mut verifier);
            assert_eq!(inside[2], verdicts[case], "case {case} among honest signatures");
        }
    }
}

/// ed25519-speccheck `cases.txt`: message, key, signature.
const SPECCHECK: [(&str, &str, &str); 12] = [
    ("8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000"),
    ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
    ("aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e"),
    ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009"),
    ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09"),
    ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405"),
    ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514"),
    ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22"),
    ("9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f"),
    ("9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908"),
    ("e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
    ("39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
];

/// How a generated input departs from an honest signature.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    Honest,
    FlipSignatureBit(u16),
    FlipMessageBit(u16),
    OtherSignersKey,
    RandomSignature,
}

fn forgery() -> impl Strategy<Value = Forgery> {
    prop_oneof![
        4 => Just(Forgery::Honest),
        1 => (0u16..512).prop_map(Forgery::FlipSignatureBit),
        1 => (0u16..256).prop_map(Forgery::FlipMessageBit),
        1 => Just(Forgery::OtherSignersKey),
        1 => Just(Forgery::RandomSignature),
    ]
}

fn generated(key_seed: u8, message: Vec<u8>, forgery: Forgery, noise: [u8; 64]) -> Signed {
    let mut s = signed(key_seed, &message);
    match forgery {
        Forgery::Honest => {}
        Forgery::FlipSignatureBit(bit) => s.signature[usize::from(bit / 8)] ^= 1 << (bit % 8),
        Forgery::FlipMessageBit(bit) => {
            let at = usize::from(bit / 8) % s.message.len();
            s.message[at] ^= 1 << (bit % 8);
        }
        Forgery::OtherSignersKey => s.key = signed(key_seed.wrapping_add(1), b"").key,
        Forgery::RandomSignature => s.signature = noise,
    }
    s
}

/// The same cofactored equation computed by ed25519-zebra (ZIP-215), for inputs whose key and
/// signature encodings the rule accepts (ZIP-215 accepts more encodings; the rule's byte
/// checks come first).
fn zebra_agrees(s: &Signed, verdict: Result<(), SignatureFault>) -> bool {
    let encoding_refused = matches!(
        verdict,
        Err(SignatureFault::KeyNotCanonical
            | SignatureFault::KeySmallOrder
            | SignatureFault::RNotCanonical
            | SignatureFault::RSmallOrder
            | SignatureFault::SNotReduced)
    );
    if encoding_refused {
        return true;
    }
    let zebra = ed25519_zebra::VerificationKey::try_from(s.key)
        .and_then(|key| key.verify(&ed25519_zebra::Signature::from_bytes(&s.signature), &s.message));
    zebra.is_ok() == verdict.is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Cached (single and batch, small and large caches) and uncached verification give the
    /// same verdict on honest and forged signatures from a few recurring signers, and that
    /// verdict is the cofactored equation's as ed25519-zebra computes it.
    #[test]
    fn cached_and_uncached_verdicts_agree(
        inputs in proptest::collection::vec(
            (1u8..=6, proptest::collection::vec(any::<u8>(), 1..48), forgery(), proptest::array::uniform32(any::<u8>())),
            1..24,
        ),
        cache_keys in prop_oneof![Just(2usize), Just(4), Just(1024)],
        batch_items in 1usize..32,
    ) {
        let inputs: Vec<Signed> = inputs
            .into_iter()
            .map(|(seed, message, forgery, noise)| {
                let mut wide = [0u8; 64];
                wide[..32].copy_from_slice(&noise);
                wide[32..].copy_from_slice(&noise);
                generated(seed, message, forgery, wide)
            })
            .collect();
        let mut verifier = SignatureVerifier::new(cache_keys, batch_items);
        let verdicts = assert_all_agree(&inputs, &mut verifier);
        for (s, verdict) in inputs.iter().zip(&verdicts) {
            prop_assert!(zebra_agrees(s, *verdict), "{s:?}: {verdict:?}");
        }
    }
}
