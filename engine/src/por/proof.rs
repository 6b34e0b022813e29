//! One account's inclusion proof (`proofs/<account>.json`) and its verification.
//!
//! ```text
//! {"format":"verex-por-proof-v1","seq":N,"root_hash":"<hex>","account":ID,"salt":"<hex>",
//!  "position":P,"assets":["USDC",…],"equity":["<units>",…],"debt":["<units>",…],
//!  "path":[{"hash":"<hex>","equity":[…],"debt":[…]},…]}
//! ```
//!
//! `path[k]` is the sibling at level `k` (0: the leaf's sibling); bit `k` of `position` says
//! whether the running node is the right child (1) or the left (0) at that level. There is no
//! leaf hash in the file: the verifier computes it from the same values it sums, so a leaf
//! cannot carry a hash that is not its balances'.
//!
//! [`verify_proof`] makes its checks in a fixed order (documented in `docs/por.md`) so that
//! every implementation names the same fault for the same file.

use crate::signing::hex as to_hex;
use crate::tx::Symbol;
use serde_json::{Map, Value};

use crate::por::fault::{Fault, PorError};
use crate::por::format::{
    add_sums, derive_salt, leaf_hash_with, node_hash_with, user_hash, Hash, MAX_ASSETS, MAX_HEIGHT,
};
use crate::por::json;
use crate::por::root::Root;
use crate::por::tree::{value_name, Sibling, Tree};

/// `format` of a proof file.
pub const PROOF_FORMAT: &str = "verex-por-proof-v1";
const PROOF_FIELDS: [&str; 10] =
    ["format", "seq", "root_hash", "account", "salt", "position", "assets", "equity", "debt", "path"];
const SIBLING_FIELDS: [&str; 3] = ["hash", "equity", "debt"];

/// An account's proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The cycle's seq.
    pub seq: u64,
    /// The cycle's root hash.
    pub root_hash: Hash,
    /// The account.
    pub account: u64,
    /// Its salt for this cycle.
    pub salt: [u8; 32],
    /// Its leaf position.
    pub position: u64,
    /// The cycle's assets, in order.
    pub assets: Vec<Symbol>,
    /// Its equity per asset.
    pub equity: Vec<u64>,
    /// Its debt per asset.
    pub debt: Vec<u64>,
    /// Siblings from the leaf's up to the root's children.
    pub path: Vec<Sibling>,
}

/// What a proof that holds shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The account.
    pub account: u64,
    /// Its equity per asset.
    pub equity: Vec<u64>,
    /// Its debt per asset.
    pub debt: Vec<u64>,
}

impl Proof {
    /// The proof of `account` in `tree` (salt derived from `seed`), or `None` if it has no leaf.
    #[must_use]
    pub fn from_tree(tree: &Tree, seed: &[u8; 32], assets: &[Symbol], account: u64) -> Option<Self> {
        let position = tree.position(account)?;
        let sums = tree.leaf_sums(position);
        let a = tree.assets();
        Some(Self {
            seq: tree.seq(),
            root_hash: tree.root_hash(),
            account,
            salt: derive_salt(seed, tree.seq(), account),
            position,
            assets: assets.to_vec(),
            equity: sums[..a].to_vec(),
            debt: sums[a..].to_vec(),
            path: tree.path(position),
        })
    }

    /// The proof file's text (one line).
    #[must_use]
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The proof as a JSON value (test vectors edit it).
    #[must_use]
    pub fn to_value(&self) -> Value {
        let strings = |values: &[u64]| Value::Array(values.iter().map(|v| Value::String(v.to_string())).collect());
        let a = self.equity.len();
        let path = self
            .path
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("hash".into(), to_hex(&s.hash).into());
                m.insert("equity".into(), strings(&s.sums[..a]));
                m.insert("debt".into(), strings(&s.sums[a..]));
                Value::Object(m)
            })
            .collect();
        let mut map = Map::new();
        map.insert("format".into(), PROOF_FORMAT.into());
        map.insert("seq".into(), self.seq.into());
        map.insert("root_hash".into(), to_hex(&self.root_hash).into());
        map.insert("account".into(), self.account.into());
        map.insert("salt".into(), to_hex(&self.salt).into());
        map.insert("position".into(), self.position.into());
        map.insert("assets".into(), Value::Array(self.assets.iter().map(|s| s.as_str().into()).collect()));
        map.insert("equity".into(), strings(&self.equity));
        map.insert("debt".into(), strings(&self.debt));
        map.insert("path".into(), Value::Array(path));
        Value::Object(map)
    }

    /// Parses a proof file strictly.
    ///
    /// # Errors
    /// The first fault, in the order of `docs/por.md`: `empty_input`, `malformed`,
    /// `unknown_field`, `unknown_format`, then each field in the order of the format
    /// (`missing_field`, `missing_salt`, `not_a_number`, `negative_value`, `out_of_range`,
    /// `bad_hex`, `bad_symbol`, `asset_mismatch` for a values array of another length).
    pub fn from_json(text: &str) -> Result<Self, PorError> {
        let map = json::parse_object(text, "proof")?;
        json::check_keys(&map, &PROOF_FIELDS, PROOF_FORMAT, "proof")?;
        let get = |name: &str| json::field(&map, name, "proof");
        let seq = json::integer(get("seq")?, "seq")?;
        let root_hash = json::hex::<32>(get("root_hash")?, "root_hash")?;
        let account = json::integer(get("account")?, "account")?;
        let salt_value = map.get("salt").ok_or_else(|| PorError::new(Fault::MissingSalt, "the proof has no salt"))?;
        let salt = json::hex::<32>(salt_value, "salt")?;
        let position = json::integer(get("position")?, "position")?;
        let symbols = json::array(get("assets")?, "assets")?;
        if symbols.len() > MAX_ASSETS {
            return Err(PorError::new(Fault::OutOfRange, format!("{} assets, at most {MAX_ASSETS}", symbols.len())));
        }
        let assets: Vec<Symbol> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| json::symbol(s, &format!("assets[{i}]")))
            .collect::<Result<_, _>>()?;
        let a = assets.len();
        let equity = json::amounts(get("equity")?, "equity", a)?;
        let debt = json::amounts(get("debt")?, "debt", a)?;
        let levels = json::array(get("path")?, "path")?;
        if levels.len() > MAX_HEIGHT as usize {
            return Err(PorError::new(
                Fault::WrongDepth,
                format!("the path has {} levels, no tree is taller than {MAX_HEIGHT}", levels.len()),
            ));
        }
        let path = levels.iter().enumerate().map(|(k, v)| parse_sibling(v, k, a)).collect::<Result<_, _>>()?;
        Ok(Self { seq, root_hash, account, salt, position, assets, equity, debt, path })
    }
}

fn parse_sibling(value: &Value, level: usize, assets: usize) -> Result<Sibling, PorError> {
    let what = format!("path[{level}]");
    let map = value.as_object().ok_or_else(|| PorError::new(Fault::Malformed, format!("{what} is not an object")))?;
    if let Some(unknown) = map.keys().find(|k| !SIBLING_FIELDS.contains(&k.as_str())) {
        return Err(PorError::new(Fault::UnknownField, format!("{what} has a field `{unknown}`")));
    }
    let get = |name: &str| json::field(map, name, &what);
    let hash = json::hex::<32>(get("hash")?, &format!("{what}.hash"))?;
    let mut sums = json::amounts(get("equity")?, &format!("{what}.equity"), assets)?;
    sums.extend(json::amounts(get("debt")?, &format!("{what}.debt"), assets)?);
    Ok(Sibling { hash, sums })
}

/// Which file of a pair failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The root file (parsing or its own checks).
    Root,
    /// The proof file (parsing or the checks against the root).
    Proof,
}

/// Verifies a proof file against a root file, as `verex por verify` does: the root is parsed
/// and checked (its height, its signature, by `attest_key` when pinned), then the proof is
/// parsed and checked against it.
///
/// # Errors
/// The stage and the first fault.
pub fn verify_files(
    proof_text: &str,
    root_text: &str,
    attest_key: Option<&[u8; 32]>,
    account: Option<u64>,
) -> Result<(Root, Verified), (Stage, PorError)> {
    let root = Root::from_json(root_text).map_err(|e| (Stage::Root, e))?;
    root.verify(attest_key).map_err(|e| (Stage::Root, e))?;
    let proof = Proof::from_json(proof_text).map_err(|e| (Stage::Proof, e))?;
    let verified = verify_proof(&proof, &root, account).map_err(|e| (Stage::Proof, e))?;
    Ok((root, verified))
}

/// Checks `proof` against a published `root` (whose own checks, [`Root::verify`], are the
/// caller's: the CLI makes them first). `account`: the account the user expects the proof to
/// be for.
///
/// # Errors
/// The first fault, in this order: `account_mismatch`, `wrong_cycle`, `asset_mismatch`,
/// `missing_salt`, `wrong_depth`, `bad_position`, `sum_overflow`, `root_mismatch`,
/// `totals_mismatch`.
pub fn verify_proof(proof: &Proof, root: &Root, account: Option<u64>) -> Result<Verified, PorError> {
    if let Some(expected) = account.filter(|a| *a != proof.account) {
        return Err(PorError::new(
            Fault::AccountMismatch,
            format!("the proof is for account {}, not account {expected}", proof.account),
        ));
    }
    if proof.seq != root.seq || proof.root_hash != root.root_hash {
        return Err(PorError::new(
            Fault::WrongCycle,
            format!(
                "the proof is for the cycle at seq {} with root {}, the root file is the cycle at seq {} with root {}",
                proof.seq,
                to_hex(&proof.root_hash),
                root.seq,
                to_hex(&root.root_hash)
            ),
        ));
    }
    let symbols: Vec<Symbol> = root.assets.iter().map(|a| a.symbol).collect();
    if proof.assets != symbols {
        let names = |s: &[Symbol]| s.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>().join(",");
        return Err(PorError::new(
            Fault::AssetMismatch,
            format!("the proof covers [{}], the root [{}]", names(&proof.assets), names(&symbols)),
        ));
    }
    if proof.salt == [0; 32] {
        return Err(PorError::new(Fault::MissingSalt, "the salt is all zeros"));
    }
    if proof.path.len() != root.height as usize {
        return Err(PorError::new(
            Fault::WrongDepth,
            format!("the path has {} levels, the tree's height is {}", proof.path.len(), root.height),
        ));
    }
    if proof.position >= root.leaf_count {
        return Err(PorError::new(
            Fault::BadPosition,
            format!("position {} is not below the leaf count {}", proof.position, root.leaf_count),
        ));
    }
    let (hash, sums) = walk(proof)?;
    if hash != root.root_hash {
        return Err(PorError::new(
            Fault::RootMismatch,
            format!("the path computes root {}, the published root is {}", to_hex(&hash), to_hex(&root.root_hash)),
        ));
    }
    if sums != root.totals() {
        return Err(PorError::new(Fault::TotalsMismatch, "the path's sums differ from the published totals"));
    }
    Ok(Verified { account: proof.account, equity: proof.equity.clone(), debt: proof.debt.clone() })
}

/// Computes the leaf from the proof's own values, then each parent up the path: the hash and
/// sums the proof claims for the root.
fn walk(proof: &Proof) -> Result<(Hash, Vec<u64>), PorError> {
    let a = proof.equity.len();
    let mut buf = Vec::new();
    let mut sums: Vec<u64> = proof.equity.iter().chain(&proof.debt).copied().collect();
    let mut hash = leaf_hash_with(&mut buf, &user_hash(proof.account, &proof.salt), &sums);
    let mut parent = vec![0u64; 2 * a];
    for (level, sibling) in proof.path.iter().enumerate() {
        let right = (proof.position >> level) & 1 == 1;
        let (left_sums, right_sums, left, right) = if right {
            (&sibling.sums, &sums, &sibling.hash, &hash)
        } else {
            (&sums, &sibling.sums, &hash, &sibling.hash)
        };
        add_sums(left_sums, right_sums, &mut parent).map_err(|i| {
            let (asset, what) = value_name(i, a);
            PorError::new(
                Fault::SumOverflow,
                format!("level {}: the sum of {what} of asset {asset} overflows 2^64", level + 1),
            )
        })?;
        hash = node_hash_with(&mut buf, left_sums, right_sums, left, right);
        std::mem::swap(&mut sums, &mut parent);
    }
    Ok((hash, sums))
}
