//! The ed25519 edge cases of "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, 2020):
//! the twelve ed25519-speccheck vectors, each with the verdict of verex's one rule (SPEC
//! section 4), checked single, alone in a batch, and inside a batch of honest signatures.
//!
//! | # | what the vector is                                   | libraries split on | verex |
//! |---|------------------------------------------------------|--------------------|-------|
//! | 0 | S = 0, small-order A, small-order R                  | yes                | refuse: small-order A |
//! | 1 | 0 < S < L, small-order A, mixed-order R              | yes                | refuse: small-order A |
//! | 2 | 0 < S < L, mixed-order A, small-order R              | yes                | refuse: small-order R |
//! | 3 | 0 < S < L, mixed-order A and R, both equations hold  | no                 | accept |
//! | 4 | 0 < S < L, mixed-order A and R, cofactored only      | yes                | accept (cofactored) |
//! | 5 | as 4 with an L-order R; fails a "pre-reduced" check  | yes                | accept (cofactored) |
//! | 6 | S > L (S + L of a valid S)                           | yes                | refuse: S not reduced |
//! | 7 | S >> L (fails a bitwise check)                       | yes                | refuse: S not reduced |
//! | 8 | non-canonical R: (0, −1) with the sign bit set       | yes                | refuse: R small order |
//! | 9 | the same R, another signature                        | yes                | refuse: R small order |
//! |10 | non-canonical A: (0, −1) with the sign bit set       | yes                | refuse: A small order |
//! |11 | the same A, another message                          | yes                | refuse: A small order |
//!
//! (Cases 8–11 encode the point of order 2 with a "negative zero" x; the rule names the small
//! order, which it checks on `y` whatever the sign bit.)
//!
//! "Mixed order" means a point with a non-zero torsion component that is not itself of small
//! order: honest signers never produce one, but the rule does not need to refuse it, only to
//! give every verifier the same verdict (the cofactored equation, for single and batch alike).

use ed25519_dalek::{Signer as _, SigningKey};
use verex_engine::signature_rule::{verify_batch, verify_message, BatchItem, SignatureFault};
use verex_engine::signing::parse_hex;

struct Vector {
    message: &'static str,
    key: &'static str,
    signature: &'static str,
    verdict: Result<(), SignatureFault>,
}

/// The vectors as published in ed25519-speccheck's `cases.txt`, with verex's verdicts.
const VECTORS: [Vector; 12] = [
    Vector {
        message: "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
        key: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        signature: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000",
        verdict: Err(SignatureFault::KeySmallOrder),
    },
    Vector {
        message: "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        key: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        signature: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        verdict: Err(SignatureFault::KeySmallOrder),
    },
    Vector {
        message: "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        key: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        signature: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
        verdict: Err(SignatureFault::RSmallOrder),
    },
    Vector {
        message: "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        key: "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        signature: "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
        verdict: Ok(()),
    },
    Vector {
        message: "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        key: "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        signature: "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
        verdict: Ok(()),
    },
    Vector {
        message: "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        key: "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        signature: "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
        verdict: Ok(()),
    },
    Vector {
        message: "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        key: "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        signature: "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
        verdict: Err(SignatureFault::SNotReduced),
    },
    Vector {
        message: "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        key: "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        signature: "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
        verdict: Err(SignatureFault::SNotReduced),
    },
    Vector {
        message: "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        key: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        signature: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
        verdict: Err(SignatureFault::RSmallOrder),
    },
    Vector {
        message: "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        key: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        signature: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
        verdict: Err(SignatureFault::RSmallOrder),
    },
    Vector {
        message: "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
        key: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        signature: "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        verdict: Err(SignatureFault::KeySmallOrder),
    },
    Vector {
        message: "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
        key: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        signature: "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        verdict: Err(SignatureFault::KeySmallOrder),
    },
];

struct Decoded {
    message: Vec<u8>,
    key: [u8; 32],
    signature: [u8; 64],
}

fn decode(vector: &Vector) -> Decoded {
    let message = (0..vector.message.len() / 2)
        .map(|i| u8::from_str_radix(&vector.message[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    Decoded {
        message,
        key: parse_hex::<32>(vector.key).expect("key hex"),
        signature: parse_hex::<64>(vector.signature).expect("signature hex"),
    }
}

fn item(d: &Decoded) -> BatchItem<'_> {
    BatchItem { key: &d.key, message: &d.message, signature: &d.signature }
}

#[test]
fn every_speccheck_vector_gets_the_rules_verdict() {
    for (case, vector) in VECTORS.iter().enumerate() {
        let d = decode(vector);
        assert_eq!(verify_message(&d.key, &d.message, &d.signature), vector.verdict, "speccheck case {case}");
    }
    let accepted = VECTORS.iter().filter(|v| v.verdict.is_ok()).count();
    assert_eq!(accepted, 3, "only the three mixed-order cases that hold under the cofactored equation pass");
}

#[test]
fn batch_and_single_verification_agree_on_every_vector() {
    let decoded: Vec<Decoded> = VECTORS.iter().map(decode).collect();
    let honest_keys: Vec<SigningKey> = (1u8..=5).map(|s| SigningKey::from_bytes(&[s; 32])).collect();
    let honest: Vec<Decoded> = honest_keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let message = format!("honest message {i}").into_bytes();
            Decoded { signature: key.sign(&message).to_bytes(), key: key.verifying_key().to_bytes(), message }
        })
        .collect();
    let mut verdicts = Vec::new();
    for (case, d) in decoded.iter().enumerate() {
        let single = verify_message(&d.key, &d.message, &d.signature);
        verify_batch(&[item(d)], &mut verdicts);
        assert_eq!(verdicts, [single], "case {case} alone in a batch");
        // Among honest signatures: same verdict for it, and the honest ones still pass.
        let mut items: Vec<BatchItem<'_>> = honest.iter().map(item).collect();
        items.insert(2, item(d));
        verify_batch(&items, &mut verdicts);
        assert_eq!(verdicts[2], single, "case {case} inside a batch");
        assert!(verdicts.iter().enumerate().all(|(k, v)| k == 2 || v.is_ok()), "case {case}: {verdicts:?}");
    }
    // Every vector in one batch.
    let items: Vec<BatchItem<'_>> = decoded.iter().map(item).collect();
    verify_batch(&items, &mut verdicts);
    let single: Vec<_> = decoded.iter().map(|d| verify_message(&d.key, &d.message, &d.signature)).collect();
    assert_eq!(verdicts, single);
}
