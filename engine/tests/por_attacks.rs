//! One must-fail test per attack on a Proof of Reserves (SPEC 10, issue 13), each named after
//! it. Each checks the vector of `verex_engine::por::vectors` that carries the attack (the same file
//! `verex por verify` is run on in `tools/tests/por_cli.rs`) and, where the attack is about
//! the tree's construction, shows with the library what the defence is.

use verex_engine::por::audit::compare_roots;
use verex_engine::por::format::{add_sums, derive_salt, leaf_hash, node_hash, user_hash, NODE_DOMAIN};
use verex_engine::por::proof::{verify_files, Stage};
use verex_engine::por::vectors::{generate, Vectors, SEQ_A, SEQ_B};
use verex_engine::por::{Fault, LeafSet, Proof, Tree};

/// Runs case `name` and asserts its expected fault (and that it is expected to fail).
fn must_fail(vectors: &Vectors, name: &str) -> Fault {
    let case = vectors.case(name).unwrap_or_else(|| panic!("no vector {name}"));
    let expected = case.expect.unwrap_or_else(|| panic!("{name} is a must-fail case"));
    let verdict = verify_files(&case.proof, vectors.root(case.root), case.attest_key.as_ref(), case.account);
    let (_, error) = verdict.expect_err(name);
    assert_eq!(error.fault, expected, "{name}: {error}");
    error.fault
}

fn proof_of(vectors: &Vectors, name: &str) -> Proof {
    Proof::from_json(&vectors.case(name).expect("case").proof).expect("parses")
}

/// Maxwell's original node: the hash holds only the parent's total.
fn maxwell_node(left: (&[u64], &[u8; 32]), right: (&[u64], &[u8; 32])) -> ([u8; 32], Vec<u64>) {
    let total: Vec<u64> = left.0.iter().zip(right.0).map(|(a, b)| a + b).collect();
    let mut hasher = blake3::Hasher::new();
    hasher.update(NODE_DOMAIN);
    for v in &total {
        hasher.update(&v.to_le_bytes());
    }
    hasher.update(left.1);
    hasher.update(right.1);
    (*hasher.finalize().as_bytes(), total)
}

#[test]
fn sum_splitting() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "sum_splitting"), Fault::RootMismatch);
    // Accounts 6 and 7 (equal balances s) are siblings. The exchange shows each the other with
    // zero sums. Under Maxwell's node both views hash to the same parent, whose total is s, not
    // 2s: half the liability is gone and both users' checks pass.
    let p7 = proof_of(&vectors, "sum_splitting");
    let s = [p7.equity.clone(), p7.debt.clone()].concat();
    let zero = vec![0; s.len()];
    let (h6, h7) = (p7.path[0].hash, leaf_hash(&user_hash(7, &p7.salt), &s));
    let view_of_6 = maxwell_node((&s, &h6), (&zero, &h7));
    let view_of_7 = maxwell_node((&zero, &h6), (&s, &h7));
    assert_eq!(view_of_6, view_of_7, "Maxwell's tree cannot tell the two splits apart");
    assert_eq!(view_of_6.1, s, "and its total misses one account");
    // verex hashes both children's sums: the two views are two different parents.
    assert_ne!(node_hash(&s, &zero, &h6, &h7), node_hash(&zero, &s, &h6, &h7));
}

#[test]
fn negative_value_in_a_leaf_or_a_sibling() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "negative_leaf_value"), Fault::NegativeValue);
    assert_eq!(must_fail(&vectors, "negative_sibling_sum"), Fault::NegativeValue);
}

#[test]
fn out_of_range_value_in_a_leaf_or_a_sibling() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "leaf_value_out_of_range"), Fault::OutOfRange);
    assert_eq!(must_fail(&vectors, "sibling_sum_out_of_range"), Fault::OutOfRange);
}

#[test]
fn sum_overflow() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "sum_overflow"), Fault::SumOverflow);
    // What a wrapping sum would have published: a total smaller than the leaf alone.
    let leaf = 250_000_000u64;
    assert!(leaf.wrapping_add(u64::MAX) < leaf);
    let mut out = [0];
    assert_eq!(add_sums(&[leaf], &[u64::MAX], &mut out), Err(0), "verex's sum refuses to wrap");
}

#[test]
fn leaf_hash_not_computed_from_the_summed_values() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "leaf_not_computed_from_summed_values"), Fault::RootMismatch);
    assert_eq!(must_fail(&vectors, "leaf_hash_as_free_input"), Fault::UnknownField);
}

#[test]
fn user_id_not_bound() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "user_id_not_bound"), Fault::RootMismatch);
    assert_eq!(must_fail(&vectors, "two_users_sharing_a_leaf"), Fault::AccountMismatch);
    // Same balances and salt, other id: other leaf.
    let salt = [5; 32];
    let sums = [77_000_000, 1, 0, 0];
    assert_ne!(leaf_hash(&user_hash(5, &salt), &sums), leaf_hash(&user_hash(6, &salt), &sums));
    // And the tree has one leaf per id: accounts 5, 6 and 7 (equal balances) are three leaves.
    let p5 = proof_of(&vectors, "two_users_sharing_a_leaf");
    let p7 = proof_of(&vectors, "valid_account_7_beside_padding");
    assert_ne!(p5.position, p7.position);
}

#[test]
fn missing_or_reused_salt() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "missing_salt"), Fault::MissingSalt);
    assert_eq!(must_fail(&vectors, "zero_salt"), Fault::MissingSalt);
    assert_eq!(must_fail(&vectors, "reused_salt"), Fault::RootMismatch);
    // Same account and balances in two cycles: different leaves, even with the same seed.
    let build = |seq, seed: [u8; 32]| {
        let mut leaves = LeafSet::new(1).expect("assets");
        leaves.push(5, &[100], &[0]).expect("push");
        Tree::build(leaves, seq, &seed, 1).expect("build")
    };
    let a = build(SEQ_A, [1; 32]);
    assert_ne!(a.node(0, 0).hash, build(SEQ_B, [2; 32]).node(0, 0).hash, "a new seed each cycle");
    assert_ne!(a.node(0, 0).hash, build(SEQ_B, [1; 32]).node(0, 0).hash, "a seed reused at another seq");
    assert_ne!(derive_salt(&[1; 32], SEQ_A, 5), derive_salt(&[1; 32], SEQ_B, 5));
}

#[test]
fn omitted_account_is_caught_by_audit() {
    // The published tree leaves account 4 (the one with a debt) out; the auditor's rebuild
    // from the same state has it.
    let honest = {
        let mut leaves = LeafSet::new(1).expect("assets");
        for (id, equity, debt) in [(1, 10, 0), (4, 5, 3), (9, 7, 0), (12, 1, 0)] {
            leaves.push(id, &[equity], &[debt]).expect("push");
        }
        leaves
    };
    let mut dishonest = honest.clone();
    assert!(dishonest.remove(4));
    let root = |leaves: LeafSet| {
        let tree = Tree::build(leaves, 7, &[3; 32], 1).expect("build");
        let mut root = verex_engine::por::Root {
            seq: 7,
            journal_digest: [1; 32],
            state_hash: [2; 32],
            root_hash: tree.root_hash(),
            seed_commitment: verex_engine::por::format::seed_commitment(&[3; 32]),
            leaf_count: tree.leaf_count(),
            height: tree.height(),
            assets: vec![verex_engine::por::RootAsset {
                symbol: verex_engine::tx::Symbol::new("USDC").expect("symbol"),
                decimals: 6,
                equity: tree.root_sums()[0],
                debt: tree.root_sums()[1],
                fees: 0,
                insurance: 0,
            }],
            signer: [0; 32],
            signature: [0; 64],
        };
        root.sign(&verex_engine::signing::dev_role_key(verex_engine::signing::Role::Attest));
        root
    };
    let differences = compare_roots(&root(dishonest), &root(honest));
    let faults: Vec<Fault> = differences.iter().map(|d| d.fault).collect();
    assert_eq!(faults, [Fault::LeafCountMismatch, Fault::TotalsMismatch, Fault::TotalsMismatch, Fault::RootMismatch]);
    assert!(differences[0].detail.contains("1 account(s) omitted"), "{}", differences[0]);
}

#[test]
fn proof_from_another_cycle() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "proof_from_another_cycle"), Fault::WrongCycle);
    assert_eq!(must_fail(&vectors, "proof_from_another_cycle_relabelled"), Fault::RootMismatch);
}

#[test]
fn node_presented_as_a_leaf() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "node_presented_as_leaf"), Fault::WrongDepth);
    assert_eq!(must_fail(&vectors, "node_presented_as_leaf_padded"), Fault::RootMismatch);
}

#[test]
fn wrong_depth_or_path_bits() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "wrong_depth_short"), Fault::WrongDepth);
    assert_eq!(must_fail(&vectors, "wrong_depth_long"), Fault::WrongDepth);
    assert_eq!(must_fail(&vectors, "wrong_path_bits"), Fault::RootMismatch);
    assert_eq!(must_fail(&vectors, "position_beyond_leaves"), Fault::BadPosition);
    assert_eq!(must_fail(&vectors, "assets_relabelled"), Fault::AssetMismatch);
}

#[test]
fn root_not_signed_by_the_attest_key() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "root_not_signed_by_attest_key"), Fault::WrongSigner);
    assert_eq!(must_fail(&vectors, "root_tampered_after_signing"), Fault::BadSignature);
    assert_eq!(must_fail(&vectors, "root_tampered_unpinned"), Fault::BadSignature);
    assert_eq!(must_fail(&vectors, "root_totals_bent"), Fault::TotalsMismatch);
    let case = vectors.case("root_not_signed_by_attest_key").expect("case");
    let verdict = verify_files(&case.proof, vectors.root(case.root), case.attest_key.as_ref(), None);
    assert_eq!(verdict.err().map(|(stage, _)| stage), Some(Stage::Root), "the root is refused before the proof");
}

#[test]
fn empty_or_truncated_proof_file() {
    let vectors = generate();
    assert_eq!(must_fail(&vectors, "empty_proof_file"), Fault::EmptyInput);
    assert_eq!(must_fail(&vectors, "truncated_proof_file"), Fault::Malformed);
}

#[test]
fn valid_vectors_verify() {
    let vectors = generate();
    let valid: Vec<&str> = vectors.cases.iter().filter(|c| c.expect.is_none()).map(|c| c.name).collect();
    assert_eq!(valid.len(), 4);
    for name in valid {
        let case = vectors.case(name).expect("case");
        let verdict = verify_files(&case.proof, vectors.root(case.root), case.attest_key.as_ref(), case.account);
        assert!(verdict.is_ok(), "{name}: {:?}", verdict.err());
    }
}
