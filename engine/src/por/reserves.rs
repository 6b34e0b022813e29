//! Reserves: what custody's wallets hold, signed by the `custody` key (`reserves.json`), and
//! the solvency table that puts them beside the liabilities of a cycle.
//!
//! ```text
//! {"format":"verex-reserves-v1","seq":N,"reserves":[{"asset":"USDC","amount":"<units>",
//!   "chain_position":"<where the wallets were read: chain, block height or hash>"},…],
//!  "signer":"<custody key hex>","signature":"<hex>"}
//! ```
//!
//! `seq` is the seq of the cycle the reserves answer, so a statement cannot be reused for a
//! later cycle. The custody key signs
//!
//! ```text
//! "verex-reserve-v1" (16 bytes) ‖ seq u64 LE ‖ entry count u32 LE
//! ‖ per entry: symbol (16 bytes, ASCII zero-padded) ‖ amount u64 LE ‖ len u32 LE ‖ chain_position (len bytes, UTF-8)
//! ```

use crate::signature_rule::verify_message;
use crate::signing::hex;
use crate::tx::Symbol;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{json, Value};

use crate::por::fault::{Fault, PorError};
use crate::por::json;
use crate::por::root::Root;

/// `format` of `reserves.json`.
pub const RESERVES_FORMAT: &str = "verex-reserves-v1";
/// Domain of the signed bytes.
pub const RESERVES_DOMAIN: &[u8; 16] = b"verex-reserve-v1";
/// Longest `chain_position`, in bytes.
pub const MAX_CHAIN_POSITION_BYTES: usize = 256;
const FIELDS: [&str; 5] = ["format", "seq", "reserves", "signer", "signature"];
const ENTRY_FIELDS: [&str; 3] = ["asset", "amount", "chain_position"];

/// One asset's holdings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserve {
    /// The asset.
    pub symbol: Symbol,
    /// Units held in custody's wallets.
    pub amount: u64,
    /// Where they were read (chain and block).
    pub chain_position: String,
}

/// A signed reserves statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserves {
    /// The cycle it answers.
    pub seq: u64,
    /// Per asset; each asset at most once.
    pub entries: Vec<Reserve>,
    /// The custody key.
    pub signer: [u8; 32],
    /// Its signature over [`Reserves::signed_bytes`].
    pub signature: [u8; 64],
}

impl Reserves {
    /// The bytes the custody key signs (module docs).
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.entries.len() * 64);
        out.extend_from_slice(RESERVES_DOMAIN);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for entry in &self.entries {
            out.extend_from_slice(&entry.symbol.0);
            out.extend_from_slice(&entry.amount.to_le_bytes());
            out.extend_from_slice(&(entry.chain_position.len() as u32).to_le_bytes());
            out.extend_from_slice(entry.chain_position.as_bytes());
        }
        out
    }

    /// A statement signed by `custody`.
    #[must_use]
    pub fn sign(seq: u64, entries: Vec<Reserve>, custody: &SigningKey) -> Self {
        let mut reserves = Self { seq, entries, signer: custody.verifying_key().to_bytes(), signature: [0; 64] };
        reserves.signature = custody.sign(&reserves.signed_bytes()).to_bytes();
        reserves
    }

    /// Checks the signature, by `custody_key` when one is pinned.
    ///
    /// # Errors
    /// `wrong_signer`, `bad_signature`.
    pub fn verify(&self, custody_key: Option<&[u8; 32]>) -> Result<(), PorError> {
        if let Some(key) = custody_key.filter(|k| *k != &self.signer) {
            return Err(PorError::new(
                Fault::WrongSigner,
                format!("the reserves are signed by {}, not the custody key {}", hex(&self.signer), hex(key)),
            ));
        }
        verify_message(&self.signer, &self.signed_bytes(), &self.signature)
            .map_err(|e| PorError::new(Fault::BadSignature, format!("the reserves' signature does not verify: {e}")))
    }

    /// The held units of `symbol` (0 when the statement does not list it).
    #[must_use]
    pub fn amount(&self, symbol: &Symbol) -> u64 {
        self.entries.iter().find(|e| &e.symbol == symbol).map_or(0, |e| e.amount)
    }

    /// `reserves.json` (pretty: a file people read).
    #[must_use]
    pub fn to_json(&self) -> String {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| json!({"asset": e.symbol.as_str(), "amount": e.amount.to_string(), "chain_position": e.chain_position}))
            .collect();
        let value = json!({
            "format": RESERVES_FORMAT,
            "seq": self.seq,
            "reserves": entries,
            "signer": hex(&self.signer),
            "signature": hex(&self.signature),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// Parses `reserves.json` strictly.
    ///
    /// # Errors
    /// The first fault (as for a root; an asset listed twice is `asset_mismatch`).
    pub fn from_json(text: &str) -> Result<Self, PorError> {
        let map = json::parse_object(text, "reserves file")?;
        json::check_keys(&map, &FIELDS, RESERVES_FORMAT, "reserves file")?;
        let get = |name: &str| json::field(&map, name, "reserves file");
        let seq = json::integer(get("seq")?, "seq")?;
        let mut entries: Vec<Reserve> = Vec::new();
        for (i, item) in json::array(get("reserves")?, "reserves")?.iter().enumerate() {
            let entry = parse_entry(item, i)?;
            if entries.iter().any(|e| e.symbol == entry.symbol) {
                return Err(PorError::new(
                    Fault::AssetMismatch,
                    format!("reserves[{i}]: {} is listed twice", entry.symbol.as_str()),
                ));
            }
            entries.push(entry);
        }
        let signer = json::hex::<32>(get("signer")?, "signer")?;
        let signature = json::hex::<64>(get("signature")?, "signature")?;
        Ok(Self { seq, entries, signer, signature })
    }
}

fn parse_entry(item: &Value, index: usize) -> Result<Reserve, PorError> {
    let what = format!("reserves[{index}]");
    let map = item.as_object().ok_or_else(|| PorError::new(Fault::Malformed, format!("{what} is not an object")))?;
    if let Some(unknown) = map.keys().find(|k| !ENTRY_FIELDS.contains(&k.as_str())) {
        return Err(PorError::new(Fault::UnknownField, format!("{what} has a field `{unknown}`")));
    }
    let get = |name: &str| json::field(map, name, &what);
    let symbol = json::symbol(get("asset")?, &format!("{what}.asset"))?;
    let amount = json::amount(get("amount")?, &format!("{what}.amount"))?;
    let chain_position = get("chain_position")?
        .as_str()
        .filter(|s| s.len() <= MAX_CHAIN_POSITION_BYTES)
        .ok_or_else(|| {
            PorError::new(
                Fault::Malformed,
                format!("{what}.chain_position is not a string of at most {MAX_CHAIN_POSITION_BYTES} bytes"),
            )
        })?
        .to_string();
    Ok(Reserve { symbol, amount, chain_position })
}

/// One asset of the solvency table, in units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolvencyRow {
    /// The asset.
    pub symbol: Symbol,
    /// Its decimals.
    pub decimals: u8,
    /// Custody's holdings.
    pub reserves: u64,
    /// Users' Σequity (available + locked + lent).
    pub equity: u64,
    /// Users' Σdebt (borrowed).
    pub debt: u64,
    /// What is owed to users: `Σequity − Σdebt`.
    pub liability: i128,
    /// The exchange's own: fee account and insurance fund.
    pub own: u64,
    /// The users' gross claims not in the wallets, `max(0, Σequity − reserves)`: funds lent,
    /// borrowed and withdrawn; backed by the borrowers' collateral (see the stress report).
    pub hole: u128,
    /// `reserves − liability`.
    pub surplus: i128,
}

impl SolvencyRow {
    /// Reserves below what users are owed.
    #[must_use]
    pub fn is_short(&self) -> bool {
        self.surplus < 0
    }
}

/// The solvency table of a cycle: per asset of the root, its reserves beside its liabilities.
///
/// # Errors
/// `cycle_mismatch` when the reserves answer another cycle, `asset_mismatch` when they list an
/// asset the root does not have.
pub fn solvency(root: &Root, reserves: &Reserves) -> Result<Vec<SolvencyRow>, PorError> {
    if reserves.seq != root.seq {
        return Err(PorError::new(
            Fault::CycleMismatch,
            format!("the reserves answer the cycle at seq {}, the root is at seq {}", reserves.seq, root.seq),
        ));
    }
    if let Some(extra) = reserves.entries.iter().find(|e| !root.assets.iter().any(|a| a.symbol == e.symbol)) {
        return Err(PorError::new(
            Fault::AssetMismatch,
            format!("the reserves list {}, which the exchange does not list", extra.symbol.as_str()),
        ));
    }
    Ok(root
        .assets
        .iter()
        .map(|a| {
            let held = reserves.amount(&a.symbol);
            SolvencyRow {
                symbol: a.symbol,
                decimals: a.decimals,
                reserves: held,
                equity: a.equity,
                debt: a.debt,
                liability: a.liability(),
                own: a.fees.saturating_add(a.insurance),
                hole: u128::from(a.equity.saturating_sub(held)),
                surplus: i128::from(held) - a.liability(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{dev_role_key, Role};

    fn usdc() -> Symbol {
        Symbol::new("USDC").expect("symbol")
    }

    #[test]
    fn reserves_round_trip_and_their_signature_covers_every_entry() {
        let custody = dev_role_key(Role::Custody);
        let reserves = Reserves::sign(
            9,
            vec![Reserve { symbol: usdc(), amount: 500, chain_position: "ethereum:19000000".into() }],
            &custody,
        );
        let key = custody.verifying_key().to_bytes();
        assert_eq!(Reserves::from_json(&reserves.to_json()), Ok(reserves.clone()));
        assert_eq!(reserves.verify(Some(&key)), Ok(()));
        let mut bent = reserves.clone();
        bent.entries[0].amount = 5000;
        assert_eq!(bent.verify(Some(&key)).map_err(|e| e.fault), Err(Fault::BadSignature));
        let other = Reserves::sign(9, reserves.entries.clone(), &dev_role_key(Role::Attest));
        assert_eq!(other.verify(Some(&key)).map_err(|e| e.fault), Err(Fault::WrongSigner));
    }

    #[test]
    fn the_table_shows_the_hole_and_the_shortfall() {
        let mut root = crate::por::vectors::generate().root("root-a.json").to_string();
        root = root.trim().to_string();
        let root = Root::from_json(&root).expect("root");
        let usdc_liability = root.assets[0].liability();
        let custody = dev_role_key(Role::Custody);
        let entry = |amount| vec![Reserve { symbol: usdc(), amount, chain_position: "x".into() }];
        let enough = Reserves::sign(root.seq, entry(u64::try_from(usdc_liability).expect("positive")), &custody);
        let rows = solvency(&root, &enough).expect("table");
        assert!(!rows[0].is_short());
        assert_eq!(rows[0].hole, u128::from(rows[0].debt), "reserves = liability: the hole is the debt");
        assert!(rows[1].is_short(), "no BTC reserves against BTC liabilities");
        let short = Reserves::sign(root.seq, entry(1), &custody);
        assert!(solvency(&root, &short).expect("table")[0].is_short());
        let stale = Reserves::sign(root.seq - 1, entry(1), &custody);
        assert_eq!(solvency(&root, &stale).map_err(|e| e.fault), Err(Fault::CycleMismatch));
    }
}
