//! Test vectors: a small fixed cycle, valid proofs of it, and one must-fail case per attack of
//! SPEC 10 and issue 13, each with the verdict and the named reason an implementation must give
//! (`verex por vectors --out DIR` writes them; `tools/tests/data/por/` holds a copy that the
//! tests check is what this module generates, and that `verex por verify` agrees with).
//!
//! The cycle: two assets (USDC, 6 decimals; BTC, 8), seven accounts of which account 3 is
//! empty (no leaf), so six leaves and height 3; accounts 5, 6 and 7 hold the same balances;
//! account 1 has lent 6,000 USDC (in its equity) and account 4 has borrowed 5,000 of it
//! against BTC. Cycle A is at seq 1000, cycle B the same balances
//! at seq 2000 with another salt seed. Journal digest and state hash are fixed arbitrary values
//! (no journal stands behind the vectors); the attest key is the development attest key.
//!
//! A case is: `verify(proof file, root file, pinned attest key or none, expected account or
//! none)`, made in the order of `docs/por.md` (root parsed, root checked, proof parsed, proof
//! checked), giving `ok` or the first fault.

use crate::signing::{dev_role_key, hex, Role};
use crate::tx::Symbol;
use ed25519_dalek::SigningKey;
use serde_json::{json, Map, Value};

use crate::por::fault::Fault;
use crate::por::format::{derive_salt, leaf_hash, node_hash, pad_hashes, seed_commitment, user_hash, Hash};
use crate::por::proof::{verify_proof, Proof};
use crate::por::root::{Root, RootAsset};
use crate::por::tree::{LeafSet, Sibling, Tree};

/// Seq of cycle A.
pub const SEQ_A: u64 = 1000;
/// Seq of cycle B.
pub const SEQ_B: u64 = 2000;

/// One vector.
#[derive(Clone, Debug)]
pub struct Case {
    /// File stem, and the name of the test that checks it.
    pub name: &'static str,
    /// What it shows.
    pub attack: &'static str,
    /// The proof file's text.
    pub proof: String,
    /// The root file's name in the vectors folder.
    pub root: &'static str,
    /// The attest key the verifier pins (`None`: not pinned).
    pub attest_key: Option<[u8; 32]>,
    /// The account the user expects (`None`: any).
    pub account: Option<u64>,
    /// `None`: the proof holds; else the fault it must fail with.
    pub expect: Option<Fault>,
}

/// The whole set: root files, cases, and the primitive vectors.
#[derive(Clone, Debug)]
pub struct Vectors {
    /// `(file name, text)` of each root file.
    pub roots: Vec<(&'static str, String)>,
    /// The cases.
    pub cases: Vec<Case>,
    /// Inputs and outputs of each hash and derivation (`primitives.json`).
    pub primitives: Value,
}

impl Vectors {
    /// The text of root file `name`.
    #[must_use]
    pub fn root(&self, name: &str) -> &str {
        self.roots.iter().find(|(n, _)| *n == name).map_or("", |(_, text)| text.as_str())
    }

    /// The case named `name`.
    #[must_use]
    pub fn case(&self, name: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// `cases.json`: every case with its files, inputs and expected verdict.
    #[must_use]
    pub fn manifest(&self) -> String {
        let cases: Vec<Value> = self
            .cases
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "attack": c.attack,
                    "proof": format!("proofs/{}.json", c.name),
                    "root": c.root,
                    "attest_key": c.attest_key.map(|k| hex(&k)),
                    "account": c.account,
                    "expect": if c.expect.is_some() { "fail" } else { "ok" },
                    "reason": c.expect.map(Fault::as_str),
                })
            })
            .collect();
        let manifest = json!({
            "format": "verex-por-vectors-v1",
            "about": "verify(proof, root, attest_key, account): parse and check the root, then parse and check \
                      the proof against it (docs/por.md, Verification); `reason` is the first fault",
            "cases": cases,
        });
        serde_json::to_string_pretty(&manifest).unwrap_or_default()
    }

    /// Every file of the folder: `(relative path, text)`.
    #[must_use]
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> =
            self.roots.iter().map(|(name, text)| ((*name).to_string(), format!("{text}\n"))).collect();
        for case in &self.cases {
            let text = if case.proof.is_empty() { String::new() } else { format!("{}\n", case.proof) };
            files.push((format!("proofs/{}.json", case.name), text));
        }
        files.push(("cases.json".into(), format!("{}\n", self.manifest())));
        files.push((
            "primitives.json".into(),
            format!("{}\n", serde_json::to_string_pretty(&self.primitives).unwrap_or_default()),
        ));
        files
    }
}

fn fixed_hash(label: &str) -> Hash {
    *blake3::hash(label.as_bytes()).as_bytes()
}

fn symbol(text: &str) -> Symbol {
    Symbol::new(text).unwrap_or_default()
}

/// The accounts of the vectors' cycle: `(id, [USDC, BTC] equity, [USDC, BTC] debt)`.
const ACCOUNTS: [(u64, [u64; 2], [u64; 2]); 7] = [
    (1, [7_000_000_000, 0], [0, 0]),
    (2, [250_000_000, 10_000_000], [0, 0]),
    (3, [0, 0], [0, 0]),
    (4, [0, 150_000_000], [5_000_000_000, 0]),
    (5, [77_000_000, 1], [0, 0]),
    (6, [77_000_000, 1], [0, 0]),
    (7, [77_000_000, 1], [0, 0]),
];

/// A built cycle of the vectors.
struct Built {
    tree: Tree,
    seed: [u8; 32],
    root: Root,
}

fn build(seq: u64, seed: [u8; 32], key: &SigningKey) -> Built {
    let mut leaves = LeafSet::new(2).unwrap_or_else(|e| panic!("{e}"));
    for (id, equity, debt) in ACCOUNTS {
        leaves.push(id, &equity, &debt).unwrap_or_else(|e| panic!("{e}"));
    }
    let tree = Tree::build(leaves, seq, &seed, 1).unwrap_or_else(|e| panic!("{e}"));
    let root = root_for(seq, tree.root_hash(), tree.root_sums(), tree.leaf_count(), tree.height(), &seed, key);
    Built { tree, seed, root }
}

fn root_for(
    seq: u64,
    root_hash: Hash,
    sums: &[u64],
    leaf_count: u64,
    height: u32,
    seed: &[u8; 32],
    key: &SigningKey,
) -> Root {
    let own = [(6u8, "USDC", 1_234_567u64, 50_000_000_000u64), (8, "BTC", 12, 0)];
    let assets = own
        .iter()
        .enumerate()
        .map(|(i, (decimals, name, fees, insurance))| RootAsset {
            symbol: symbol(name),
            decimals: *decimals,
            equity: sums[i],
            debt: sums[2 + i],
            fees: *fees,
            insurance: *insurance,
        })
        .collect();
    let mut root = Root {
        seq,
        journal_digest: fixed_hash(&format!("verex-por-vectors journal digest {seq}")),
        state_hash: fixed_hash(&format!("verex-por-vectors state hash {seq}")),
        root_hash,
        seed_commitment: seed_commitment(seed),
        leaf_count,
        height,
        assets,
        signer: [0; 32],
        signature: [0; 64],
    };
    root.sign(key);
    root
}

impl Built {
    fn proof(&self, account: u64) -> Proof {
        Proof::from_tree(&self.tree, &self.seed, &[symbol("USDC"), symbol("BTC")], account)
            .unwrap_or_else(|| panic!("account {account} has a leaf"))
    }
}

/// Edits a proof's JSON and returns the text.
fn edited(proof: &Proof, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut value = proof.to_value();
    if let Value::Object(map) = &mut value {
        edit(map);
    }
    value.to_string()
}

/// Sets `map[key][index]` (an array) to `value`.
fn set_at(map: &mut Map<String, Value>, key: &str, index: usize, value: Value) {
    if let Some(Value::Array(items)) = map.get_mut(key) {
        items[index] = value;
    }
}

/// Sets `map["path"][level][key][index]`.
fn set_path(map: &mut Map<String, Value>, level: usize, key: &str, index: usize, value: Value) {
    if let Some(Value::Array(levels)) = map.get_mut("path") {
        if let Some(Value::Object(sibling)) = levels.get_mut(level) {
            set_at(sibling, key, index, value);
        }
    }
}

/// Generates the vectors (deterministic: same bytes every run).
#[must_use]
pub fn generate() -> Vectors {
    let attest = dev_role_key(Role::Attest);
    let attest_public = attest.verifying_key().to_bytes();
    let a = build(SEQ_A, fixed_hash("verex-por-vectors salt seed A"), &attest);
    let b = build(SEQ_B, fixed_hash("verex-por-vectors salt seed B"), &attest);

    let mut other_signer = a.root.clone();
    other_signer.sign(&dev_role_key(Role::Oracle));
    let mut tampered = a.root.clone();
    tampered.assets[0].equity -= 1_000_000;
    let mut bent_totals = a.root.clone();
    bent_totals.assets[0].equity -= 77_000_000;
    bent_totals.sign(&attest);
    let (split_root, split_proofs) = sum_splitting(&a, &attest);

    let roots = vec![
        ("root-a.json", a.root.to_json()),
        ("root-b.json", b.root.to_json()),
        ("root-a-other-signer.json", other_signer.to_json()),
        ("root-a-tampered.json", tampered.to_json()),
        ("root-a-bent-totals.json", bent_totals.to_json()),
        ("root-split.json", split_root.to_json()),
    ];
    let mut cases = Vec::new();
    let mut case = |name, attack, proof: String, root, account: Option<u64>, expect| {
        cases.push(Case { name, attack, proof, root, attest_key: Some(attest_public), account, expect });
    };
    valid_cases(&a, &b, &mut case);
    value_cases(&a, &mut case);
    binding_cases(&a, &b, &mut case);
    shape_cases(&a, &mut case);
    case(
        "sum_splitting",
        "Maxwell's sum splitting: the exchange builds the parent of accounts 6 and 7 as if 7 held nothing \
         (root-split.json, which account 6's proof verifies against) and shows account 7 the sibling 6 with \
         zero sums; a parent that hashed only the total would accept both, verex's hashes both children's sums",
        split_proofs,
        "root-split.json",
        Some(7),
        Some(Fault::RootMismatch),
    );
    case(
        "root_totals_bent",
        "a root signed by the attest key whose published USDC total is below the tree's: every proof's sums \
         reach the tree's true totals, not the published ones",
        a.proof(5).to_json(),
        "root-a-bent-totals.json",
        None,
        Some(Fault::TotalsMismatch),
    );
    case(
        "root_not_signed_by_attest_key",
        "root-a.json re-signed by another key (the development oracle key): the pinned attest key refuses it",
        a.proof(1).to_json(),
        "root-a-other-signer.json",
        None,
        Some(Fault::WrongSigner),
    );
    case(
        "root_tampered_after_signing",
        "root-a.json with its USDC equity (and liability) lowered after signing: the signature fails",
        a.proof(1).to_json(),
        "root-a-tampered.json",
        None,
        Some(Fault::BadSignature),
    );
    let mut unpinned = cases.last().cloned().unwrap_or_else(|| unreachable!());
    unpinned.name = "root_tampered_unpinned";
    unpinned.attack = "the same, with no attest key pinned: the signature still has to verify under its signer";
    unpinned.attest_key = None;
    cases.push(unpinned);
    let primitives = primitives(&a, &b);
    Vectors { roots, cases, primitives }
}

type CaseFn<'a> = dyn FnMut(&'static str, &'static str, String, &'static str, Option<u64>, Option<Fault>) + 'a;

fn valid_cases(a: &Built, b: &Built, case: &mut CaseFn<'_>) {
    case("valid_account_1", "account 1's proof, first leaf", a.proof(1).to_json(), "root-a.json", Some(1), None);
    case("valid_account_4_with_debt", "an account with a debt", a.proof(4).to_json(), "root-a.json", Some(4), None);
    case(
        "valid_account_7_beside_padding",
        "the last leaf: its parent's sibling is the padding node",
        a.proof(7).to_json(),
        "root-a.json",
        None,
        None,
    );
    case("valid_cycle_b", "account 2 in cycle B", b.proof(2).to_json(), "root-b.json", Some(2), None);
}

fn value_cases(a: &Built, case: &mut CaseFn<'_>) {
    let p = a.proof(2);
    let two64 = || json!("18446744073709551616");
    case(
        "negative_leaf_value",
        "a leaf value below zero (a signed balance slipped into the sum)",
        edited(&p, |m| set_at(m, "equity", 0, json!("-250000000"))),
        "root-a.json",
        None,
        Some(Fault::NegativeValue),
    );
    case(
        "negative_sibling_sum",
        "a sibling's sum below zero, which would cancel liabilities",
        edited(&p, |m| set_path(m, 1, "equity", 0, json!("-1000000000"))),
        "root-a.json",
        None,
        Some(Fault::NegativeValue),
    );
    case(
        "leaf_value_out_of_range",
        "a leaf value of 2^64 (beyond the range check)",
        edited(&p, |m| set_at(m, "debt", 1, two64())),
        "root-a.json",
        None,
        Some(Fault::OutOfRange),
    );
    case(
        "sibling_sum_out_of_range",
        "a sibling sum of 2^64",
        edited(&p, |m| set_path(m, 0, "debt", 0, two64())),
        "root-a.json",
        None,
        Some(Fault::OutOfRange),
    );
    case(
        "sum_overflow",
        "a sibling sum of 2^64 − 1 with a positive leaf value: a wrapping (or field) sum would come out small",
        edited(&p, |m| set_path(m, 0, "equity", 0, json!(u64::MAX.to_string()))),
        "root-a.json",
        None,
        Some(Fault::SumOverflow),
    );
    case(
        "leaf_not_computed_from_summed_values",
        "account 2's USDC equity lowered in the proof: the verifier hashes the values it sums, so the leaf, \
         and the root, change",
        edited(&p, |m| set_at(m, "equity", 0, json!("1"))),
        "root-a.json",
        None,
        Some(Fault::RootMismatch),
    );
    let leaf = hex(&leaf_hash(&user_hash(2, &p.salt), &[p.equity.clone(), p.debt.clone()].concat()));
    case(
        "leaf_hash_as_free_input",
        "a proof that carries its own leaf hash (Backpack's circuit took it as a free input): no such field",
        edited(&p, |m| {
            m.insert("leaf_hash".into(), leaf.into());
        }),
        "root-a.json",
        None,
        Some(Fault::UnknownField),
    );
}

fn binding_cases(a: &Built, b: &Built, case: &mut CaseFn<'_>) {
    let p5 = a.proof(5);
    case(
        "user_id_not_bound",
        "account 5's proof relabelled as account 6's (same balances, other id): the id is in the leaf",
        edited(&p5, |m| {
            m.insert("account".into(), json!(6));
        }),
        "root-a.json",
        Some(6),
        Some(Fault::RootMismatch),
    );
    case(
        "two_users_sharing_a_leaf",
        "account 6 is handed account 5's proof (equal balances, one leaf for both): it names account 5",
        p5.to_json(),
        "root-a.json",
        Some(6),
        Some(Fault::AccountMismatch),
    );
    case(
        "missing_salt",
        "a proof without a salt",
        edited(&p5, |m| {
            m.remove("salt");
        }),
        "root-a.json",
        None,
        Some(Fault::MissingSalt),
    );
    case(
        "zero_salt",
        "a proof whose salt is all zeros",
        edited(&p5, |m| {
            m.insert("salt".into(), hex(&[0; 32]).into());
        }),
        "root-a.json",
        None,
        Some(Fault::MissingSalt),
    );
    let salt_a = hex(&a.proof(2).salt);
    case(
        "reused_salt",
        "cycle B's proof of account 2 with its cycle A salt: salts are per cycle, the leaf differs",
        edited(&b.proof(2), |m| {
            m.insert("salt".into(), salt_a.clone().into());
        }),
        "root-b.json",
        None,
        Some(Fault::RootMismatch),
    );
    case(
        "proof_from_another_cycle",
        "cycle A's proof against cycle B's root",
        a.proof(2).to_json(),
        "root-b.json",
        None,
        Some(Fault::WrongCycle),
    );
    let (seq_b, root_b) = (b.root.seq, hex(&b.root.root_hash));
    case(
        "proof_from_another_cycle_relabelled",
        "cycle A's proof with cycle B's seq and root written in: its leaves and siblings are A's",
        edited(&a.proof(2), |m| {
            m.insert("seq".into(), json!(seq_b));
            m.insert("root_hash".into(), root_b.clone().into());
        }),
        "root-b.json",
        None,
        Some(Fault::RootMismatch),
    );
}

fn shape_cases(a: &Built, case: &mut CaseFn<'_>) {
    let p1 = a.proof(1);
    // The parent of accounts 1 and 2 (level 1, index 0) presented as account 1's leaf.
    let node = a.tree.node(1, 0);
    let node_proof = Proof {
        equity: node.sums[..2].to_vec(),
        debt: node.sums[2..].to_vec(),
        path: p1.path[1..].to_vec(),
        ..p1.clone()
    };
    case(
        "node_presented_as_leaf",
        "the node over accounts 1 and 2 given as account 1's leaf, with the path above it: too short",
        node_proof.to_json(),
        "root-a.json",
        None,
        Some(Fault::WrongDepth),
    );
    let mut padded = node_proof.clone();
    padded.path.insert(0, Sibling { hash: a.tree.node(0, 7).hash, sums: vec![0; 4] });
    case(
        "node_presented_as_leaf_padded",
        "the same node as a leaf with a padding sibling to reach the height: a leaf hash is never a node hash",
        padded.to_json(),
        "root-a.json",
        None,
        Some(Fault::RootMismatch),
    );
    let mut short = p1.clone();
    short.path.pop();
    case(
        "wrong_depth_short",
        "the path without its top level",
        short.to_json(),
        "root-a.json",
        None,
        Some(Fault::WrongDepth),
    );
    let mut long = p1.clone();
    long.path.push(a.tree.node(0, 6));
    case("wrong_depth_long", "a path one level too long", long.to_json(), "root-a.json", None, Some(Fault::WrongDepth));
    let mut flipped = a.proof(4);
    flipped.position ^= 1;
    case(
        "wrong_path_bits",
        "account 4's proof (position 2) with position 3: left and right swapped at the leaf level",
        flipped.to_json(),
        "root-a.json",
        None,
        Some(Fault::RootMismatch),
    );
    let mut beyond = a.proof(7);
    beyond.position = 6;
    case(
        "position_beyond_leaves",
        "a position in the padding (6 of 6 leaves)",
        beyond.to_json(),
        "root-a.json",
        None,
        Some(Fault::BadPosition),
    );
    let mut relabelled = p1.clone();
    relabelled.assets.reverse();
    case(
        "assets_relabelled",
        "the proof's columns named BTC, USDC: a balance read under another asset",
        relabelled.to_json(),
        "root-a.json",
        None,
        Some(Fault::AssetMismatch),
    );
    case("empty_proof_file", "an empty proof file", String::new(), "root-a.json", None, Some(Fault::EmptyInput));
    let full = p1.to_json();
    case(
        "truncated_proof_file",
        "a proof file cut in the middle",
        full[..full.len() / 2].to_string(),
        "root-a.json",
        None,
        Some(Fault::Malformed),
    );
}

/// Maxwell's sum-splitting attack on the parent of accounts 6 and 7 (level 1, index 2):
/// the exchange's root is what account 6's bent path computes; account 7 gets the mirror.
fn sum_splitting(a: &Built, key: &SigningKey) -> (Root, String) {
    let mut p6 = a.proof(6);
    let mut p7 = a.proof(7);
    p6.path[0].sums = vec![0; 4];
    p7.path[0].sums = vec![0; 4];
    let (hash, sums) = bent_root(&p6);
    let root = root_for(SEQ_A, hash, &sums, a.tree.leaf_count(), a.tree.height(), &a.seed, key);
    p6.root_hash = hash;
    p7.root_hash = hash;
    debug_assert!(verify_proof(&p6, &root, Some(6)).is_ok(), "the lie holds for account 6 alone");
    (root, p7.to_json())
}

/// The root a proof's path computes (no checks: the vectors need the bent one).
fn bent_root(proof: &Proof) -> (Hash, Vec<u64>) {
    let mut sums: Vec<u64> = proof.equity.iter().chain(&proof.debt).copied().collect();
    let mut hash = leaf_hash(&user_hash(proof.account, &proof.salt), &sums);
    for (level, sibling) in proof.path.iter().enumerate() {
        let parent: Vec<u64> = sums.iter().zip(&sibling.sums).map(|(x, y)| x + y).collect();
        hash = if (proof.position >> level) & 1 == 1 {
            node_hash(&sibling.sums, &sums, &sibling.hash, &hash)
        } else {
            node_hash(&sums, &sibling.sums, &hash, &sibling.hash)
        };
        sums = parent;
    }
    (hash, sums)
}

fn primitives(a: &Built, b: &Built) -> Value {
    let seed = a.seed;
    let salt = derive_salt(&seed, SEQ_A, 5);
    let user = user_hash(5, &salt);
    let sums = [77_000_000u64, 1, 0, 0];
    let leaf = leaf_hash(&user, &sums);
    let other = a.tree.node(0, 3);
    let pads = pad_hashes(2, 3);
    let salt_b = derive_salt(&b.seed, SEQ_B, 5);
    let strings = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>();
    json!({
        "about": "inputs and outputs of each derivation of docs/por.md; integers are decimal strings, bytes lower-case hex",
        "salt": {"seed": hex(&seed), "seq": SEQ_A.to_string(), "account": "5", "salt": hex(&salt)},
        "user": {"account": "5", "salt": hex(&salt), "user": hex(&user)},
        "leaf": {"user": hex(&user), "sums": strings(&sums), "hash": hex(&leaf)},
        "node": {
            "left_sums": strings(&other.sums), "right_sums": strings(&sums),
            "left_hash": hex(&other.hash), "right_hash": hex(&leaf),
            "hash": hex(&node_hash(&other.sums, &sums, &other.hash, &leaf)),
        },
        "pads": {"assets": 2, "hashes": pads.iter().map(|h| hex(h)).collect::<Vec<_>>()},
        "seed_commitment": {"seed": hex(&seed), "commitment": hex(&seed_commitment(&seed))},
        "same_account_and_balances_in_two_cycles": {
            "account": "5", "sums": strings(&sums),
            "leaf_cycle_a": hex(&leaf),
            "leaf_cycle_b": hex(&leaf_hash(&user_hash(5, &salt_b), &sums)),
        },
        "root_a_signed_bytes": hex(&a.root.signed_bytes()),
        "root_a_salt_seed": hex(&a.seed),
        "root_b_salt_seed": hex(&b.seed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::por::proof::verify_files;

    #[test]
    fn every_case_gives_its_verdict() {
        let vectors = generate();
        for case in &vectors.cases {
            let verdict = verify_files(&case.proof, vectors.root(case.root), case.attest_key.as_ref(), case.account);
            let got = verdict.err().map(|(_, e)| e.fault);
            assert_eq!(got, case.expect, "{}", case.name);
        }
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generate().files(), generate().files());
    }
}
