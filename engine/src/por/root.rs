//! The published root of a cycle (`root.json`) and its PoR attestation.
//!
//! The attest key signs, in one message, the journal position (seq, BLAKE3 journal digest
//! `d[seq]`, state hash: the same three values a regular attestation signs), the tree (root
//! hash, leaf count, height), the commitment to the salt seed and, per asset, the symbol,
//! decimals, the tree's totals and the exchange's own balances reported beside the tree:
//!
//! ```text
//! "verex-por-att-v1"                       16 bytes
//! seq                                      u64 LE
//! journal_digest                           32 bytes
//! state_hash                               32 bytes
//! root_hash                                32 bytes
//! seed_commitment                          32 bytes
//! leaf_count                               u64 LE
//! height                                   u32 LE
//! asset_count A                            u32 LE
//! A × (symbol 16 bytes, ASCII zero-padded ‖ decimals u8 ‖ equity u64 LE ‖ debt u64 LE
//!      ‖ fees u64 LE ‖ insurance u64 LE)
//! ```
//!
//! Why a PoR attestation of its own rather than the root inside the regular attestation chain
//! (`docs/por.md` says more): a cycle is built off the hot path, later than its seq and often
//! by another process (a replica, an auditor's machine), while the chain in
//! `attestations.jsonl` is written by the run's replica, append-only and in increasing seq
//! order; inserting a root at an older seq would break that order and the chain's links, and
//! versioning every attestation for a field that most of them leave empty would change a
//! format `verify` already checks. The PoR attestation names the same (seq, digest, state
//! hash) triple, so it is tied to the journal exactly as strongly: `verex por audit` checks the
//! triple against the replayed journal, and against the chain's own attestation at that seq
//! when there is one.

use crate::signature_rule::verify_message;
use crate::signing::hex as to_hex;
use crate::tx::Symbol;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Map, Value};

use crate::por::fault::{Fault, PorError};
use crate::por::format::{height_for, Hash, MAX_ASSETS};
use crate::por::json;

/// `format` of `root.json`.
pub const ROOT_FORMAT: &str = "verex-por-root-v1";
/// Domain of the PoR attestation's signed bytes.
pub const POR_ATTEST_DOMAIN: &[u8; 16] = b"verex-por-att-v1";
/// Bytes signed before the per-asset records.
pub const POR_ATTEST_HEADER_BYTES: usize = 16 + 8 + 32 * 4 + 8 + 4 + 4;
/// Bytes of one per-asset record in the signed bytes.
pub const POR_ATTEST_ASSET_BYTES: usize = 16 + 1 + 8 * 4;

/// One asset of a cycle: the tree's totals and the exchange's own balances, in asset units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootAsset {
    /// The asset.
    pub symbol: Symbol,
    /// Its decimals (for display; amounts are units).
    pub decimals: u8,
    /// Σequity over the leaves.
    pub equity: u64,
    /// Σdebt over the leaves.
    pub debt: u64,
    /// The fee account's balance (the exchange's own, beside the tree).
    pub fees: u64,
    /// The insurance fund's balance (the exchange's own, beside the tree).
    pub insurance: u64,
}

impl RootAsset {
    /// What the exchange owes its users in this asset: `Σequity − Σdebt`.
    #[must_use]
    pub fn liability(&self) -> i128 {
        i128::from(self.equity) - i128::from(self.debt)
    }
}

/// A cycle's published root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// The journal position: last applied seq.
    pub seq: u64,
    /// `d[seq]` of the journal's BLAKE3 chain.
    pub journal_digest: Hash,
    /// The engine's state hash after `seq`.
    pub state_hash: Hash,
    /// The tree's root `h`.
    pub root_hash: Hash,
    /// `BLAKE3("verex-por-seed" ‖ salt_seed)`.
    pub seed_commitment: Hash,
    /// Real leaves.
    pub leaf_count: u64,
    /// Levels above the leaves.
    pub height: u32,
    /// Per asset, in listing order.
    pub assets: Vec<RootAsset>,
    /// The attest key.
    pub signer: [u8; 32],
    /// Its signature over [`Root::signed_bytes`].
    pub signature: [u8; 64],
}

/// The JSON fields of `root.json`, in order.
const ROOT_FIELDS: [&str; 11] = [
    "format",
    "seq",
    "journal_digest",
    "state_hash",
    "root_hash",
    "seed_commitment",
    "leaf_count",
    "height",
    "assets",
    "signer",
    "signature",
];
const ASSET_FIELDS: [&str; 7] = ["symbol", "decimals", "equity", "debt", "liability", "fees", "insurance"];

impl Root {
    /// The bytes the attest key signs (module docs).
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(POR_ATTEST_HEADER_BYTES + POR_ATTEST_ASSET_BYTES * self.assets.len());
        out.extend_from_slice(POR_ATTEST_DOMAIN);
        out.extend_from_slice(&self.seq.to_le_bytes());
        for hash in [&self.journal_digest, &self.state_hash, &self.root_hash, &self.seed_commitment] {
            out.extend_from_slice(hash);
        }
        out.extend_from_slice(&self.leaf_count.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&(self.assets.len() as u32).to_le_bytes());
        for asset in &self.assets {
            out.extend_from_slice(&asset.symbol.0);
            out.push(asset.decimals);
            for v in [asset.equity, asset.debt, asset.fees, asset.insurance] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Signs the root with the attest key (sets `signer` and `signature`).
    pub fn sign(&mut self, key: &SigningKey) {
        self.signer = key.verifying_key().to_bytes();
        self.signature = key.sign(&self.signed_bytes()).to_bytes();
    }

    /// Checks the root on its own: its height fits its leaf count, and its signature verifies
    /// under the project's rule, by `attest_key` when one is pinned.
    ///
    /// # Errors
    /// `wrong_depth`, `wrong_signer`, `bad_signature`.
    pub fn verify(&self, attest_key: Option<&[u8; 32]>) -> Result<(), PorError> {
        if self.height != height_for(self.leaf_count) {
            return Err(PorError::new(
                Fault::WrongDepth,
                format!(
                    "the root says height {} for {} leaves (it must be {})",
                    self.height,
                    self.leaf_count,
                    height_for(self.leaf_count)
                ),
            ));
        }
        if let Some(key) = attest_key {
            if key != &self.signer {
                return Err(PorError::new(
                    Fault::WrongSigner,
                    format!("the root is signed by {}, not the attest key {}", to_hex(&self.signer), to_hex(key)),
                ));
            }
        }
        verify_message(&self.signer, &self.signed_bytes(), &self.signature)
            .map_err(|e| PorError::new(Fault::BadSignature, format!("the root's signature does not verify: {e}")))
    }

    /// Per asset `Σequity` then `Σdebt`: what a proof's path must sum to.
    #[must_use]
    pub fn totals(&self) -> Vec<u64> {
        self.assets.iter().map(|a| a.equity).chain(self.assets.iter().map(|a| a.debt)).collect()
    }

    /// `root.json` (one line).
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("format".into(), ROOT_FORMAT.into());
        map.insert("seq".into(), self.seq.into());
        map.insert("journal_digest".into(), to_hex(&self.journal_digest).into());
        map.insert("state_hash".into(), to_hex(&self.state_hash).into());
        map.insert("root_hash".into(), to_hex(&self.root_hash).into());
        map.insert("seed_commitment".into(), to_hex(&self.seed_commitment).into());
        map.insert("leaf_count".into(), self.leaf_count.into());
        map.insert("height".into(), self.height.into());
        let assets = self
            .assets
            .iter()
            .map(|a| {
                let mut m = Map::new();
                m.insert("symbol".into(), a.symbol.as_str().into());
                m.insert("decimals".into(), a.decimals.into());
                m.insert("equity".into(), a.equity.to_string().into());
                m.insert("debt".into(), a.debt.to_string().into());
                m.insert("liability".into(), a.liability().to_string().into());
                m.insert("fees".into(), a.fees.to_string().into());
                m.insert("insurance".into(), a.insurance.to_string().into());
                Value::Object(m)
            })
            .collect();
        map.insert("assets".into(), Value::Array(assets));
        map.insert("signer".into(), to_hex(&self.signer).into());
        map.insert("signature".into(), to_hex(&self.signature).into());
        Value::Object(map).to_string()
    }

    /// Parses `root.json` strictly (fields in any order, none missing, none unknown).
    ///
    /// # Errors
    /// The first fault, in the order `docs/por.md` gives.
    pub fn from_json(text: &str) -> Result<Self, PorError> {
        let map = json::parse_object(text, "root")?;
        json::check_keys(&map, &ROOT_FIELDS, ROOT_FORMAT, "root")?;
        let get = |name: &str| json::field(&map, name, "root");
        let seq = json::integer(get("seq")?, "seq")?;
        let journal_digest = json::hex::<32>(get("journal_digest")?, "journal_digest")?;
        let state_hash = json::hex::<32>(get("state_hash")?, "state_hash")?;
        let root_hash = json::hex::<32>(get("root_hash")?, "root_hash")?;
        let seed_commitment = json::hex::<32>(get("seed_commitment")?, "seed_commitment")?;
        let leaf_count = json::integer(get("leaf_count")?, "leaf_count")?;
        let height = u32::try_from(json::integer(get("height")?, "height")?)
            .map_err(|_| PorError::new(Fault::OutOfRange, "height does not fit u32"))?;
        let items = json::array(get("assets")?, "assets")?;
        if items.len() > MAX_ASSETS {
            return Err(PorError::new(Fault::OutOfRange, format!("{} assets, at most {MAX_ASSETS}", items.len())));
        }
        let assets = items.iter().enumerate().map(|(i, item)| parse_asset(item, i)).collect::<Result<_, _>>()?;
        let signer = json::hex::<32>(get("signer")?, "signer")?;
        let signature = json::hex::<64>(get("signature")?, "signature")?;
        Ok(Self {
            seq,
            journal_digest,
            state_hash,
            root_hash,
            seed_commitment,
            leaf_count,
            height,
            assets,
            signer,
            signature,
        })
    }
}

fn parse_asset(item: &Value, index: usize) -> Result<RootAsset, PorError> {
    let what = format!("assets[{index}]");
    let map = item.as_object().ok_or_else(|| PorError::new(Fault::Malformed, format!("{what} is not an object")))?;
    if let Some(unknown) = map.keys().find(|k| !ASSET_FIELDS.contains(&k.as_str())) {
        return Err(PorError::new(Fault::UnknownField, format!("{what} has a field `{unknown}`")));
    }
    let get = |name: &str| json::field(map, name, &what);
    let name = |field: &str| format!("{what}.{field}");
    let symbol = json::symbol(get("symbol")?, &name("symbol"))?;
    let decimals = u8::try_from(json::integer(get("decimals")?, &name("decimals"))?)
        .map_err(|_| PorError::new(Fault::OutOfRange, format!("{} does not fit u8", name("decimals"))))?;
    let asset = RootAsset {
        symbol,
        decimals,
        equity: json::amount(get("equity")?, &name("equity"))?,
        debt: json::amount(get("debt")?, &name("debt"))?,
        fees: json::amount(get("fees")?, &name("fees"))?,
        insurance: json::amount(get("insurance")?, &name("insurance"))?,
    };
    let liability = json::signed_amount(get("liability")?, &name("liability"))?;
    if liability != asset.liability() {
        return Err(PorError::new(
            Fault::LiabilityMismatch,
            format!("{} is {liability}, but Σequity − Σdebt is {}", name("liability"), asset.liability()),
        ));
    }
    Ok(asset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{dev_role_key, Role};

    pub(crate) fn sample() -> Root {
        let mut root = Root {
            seq: 42,
            journal_digest: [1; 32],
            state_hash: [2; 32],
            root_hash: [3; 32],
            seed_commitment: [4; 32],
            leaf_count: 3,
            height: 2,
            assets: vec![RootAsset {
                symbol: Symbol::new("USDC").expect("symbol"),
                decimals: 6,
                equity: 100,
                debt: 30,
                fees: 5,
                insurance: 7,
            }],
            signer: [0; 32],
            signature: [0; 64],
        };
        root.sign(&dev_role_key(Role::Attest));
        root
    }

    #[test]
    fn the_root_round_trips_and_its_signature_covers_every_field() {
        let root = sample();
        let key = dev_role_key(Role::Attest).verifying_key().to_bytes();
        assert_eq!(Root::from_json(&root.to_json()), Ok(root.clone()));
        assert_eq!(root.verify(Some(&key)), Ok(()));
        assert_eq!(root.signed_bytes().len(), POR_ATTEST_HEADER_BYTES + POR_ATTEST_ASSET_BYTES);
        let mut bent = root.clone();
        bent.assets[0].fees = 4;
        assert_eq!(bent.verify(Some(&key)).map_err(|e| e.fault), Err(Fault::BadSignature));
        let mut other = root.clone();
        other.sign(&dev_role_key(Role::Oracle));
        assert_eq!(other.verify(Some(&key)).map_err(|e| e.fault), Err(Fault::WrongSigner));
        assert_eq!(other.verify(None), Ok(()), "unpinned, any valid signature verifies");
    }

    #[test]
    fn a_liability_that_is_not_the_difference_is_named() {
        let text = sample().to_json().replace("\"liability\":\"70\"", "\"liability\":\"71\"");
        assert_eq!(Root::from_json(&text).map_err(|e| e.fault), Err(Fault::LiabilityMismatch));
    }
}
