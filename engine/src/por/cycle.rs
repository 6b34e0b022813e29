//! A PoR cycle from an engine's state: the leaves read through the engine's accessors, the
//! tree, the signed root, the proofs.
//!
//! Built off the hot path (from a replayed or restored engine, never inside `apply`): the
//! engine is only read. Per account and asset `equity = available + locked + lent` and
//! `debt = borrowed` (SPEC 10); the fee account and the insurance fund are the exchange's own
//! and are reported beside the tree, in the root.

use crate::tx::Symbol;
use crate::Engine;
use ed25519_dalek::SigningKey;

use crate::por::format::{seed_commitment, Hash};
use crate::por::proof::Proof;
use crate::por::root::{Root, RootAsset};
use crate::por::tree::{BuildError, LeafSet, Tree};

/// The leaves of an engine's state: every account with a non-zero value, in id order.
///
/// # Errors
/// [`BuildError::ValueOutOfRange`] if an equity does not fit `u64` (it cannot while supply
/// is bounded by 2^62, but the bound is checked, not assumed).
pub fn leaves_of(engine: &Engine) -> Result<LeafSet, BuildError> {
    let assets = engine.catalog().assets().len();
    let mut leaves = LeafSet::new(assets)?;
    let mut equity = vec![0u64; assets];
    let mut debt = vec![0u64; assets];
    for account in 1..=engine.account_count() {
        for asset in 0..assets {
            let b = engine.balance(account, asset as u16).unwrap_or_default();
            equity[asset] = b
                .available
                .checked_add(b.locked)
                .and_then(|v| v.checked_add(b.lent))
                .ok_or(BuildError::ValueOutOfRange { account, asset, what: "equity" })?;
            debt[asset] = b.borrowed;
        }
        leaves.push(account, &equity, &debt)?;
    }
    Ok(leaves)
}

/// The assets' symbols, in listing order.
#[must_use]
pub fn symbols_of(engine: &Engine) -> Vec<Symbol> {
    engine.catalog().assets().iter().map(|a| a.symbol).collect()
}

/// A built cycle: the tree and its root (signed once [`Cycle::sign`] is called).
#[derive(Debug, Clone)]
pub struct Cycle {
    /// The tree.
    pub tree: Tree,
    /// The root, with the journal position and the exchange's own balances.
    pub root: Root,
    /// The assets, in order.
    pub symbols: Vec<Symbol>,
    /// The salt seed (the auditors' secret; never published).
    pub seed: [u8; 32],
}

impl Cycle {
    /// Builds the cycle of `engine`'s state at its seq, whose journal digest is `journal_digest`.
    ///
    /// # Errors
    /// [`BuildError`] as [`leaves_of`] and [`Tree::build`].
    pub fn build(engine: &Engine, journal_digest: Hash, seed: [u8; 32], threads: usize) -> Result<Self, BuildError> {
        Self::from_leaves(engine, leaves_of(engine)?, journal_digest, seed, threads)
    }

    /// Builds a cycle of `engine`'s position and own balances over the given leaves (a test
    /// builds a dishonest tree this way, to show that an audit catches it).
    ///
    /// # Errors
    /// As [`Tree::build`].
    pub fn from_leaves(
        engine: &Engine,
        leaves: LeafSet,
        journal_digest: Hash,
        seed: [u8; 32],
        threads: usize,
    ) -> Result<Self, BuildError> {
        let seq = engine.seq();
        let tree = Tree::build(leaves, seq, &seed, threads)?;
        let totals = tree.root_sums();
        let a = tree.assets();
        let assets = engine
            .catalog()
            .assets()
            .iter()
            .enumerate()
            .map(|(i, asset)| RootAsset {
                symbol: asset.symbol,
                decimals: asset.decimals,
                equity: totals[i],
                debt: totals[a + i],
                fees: own_fees(engine, i as u16),
                insurance: own_insurance(engine, i as u16),
            })
            .collect();
        let root = Root {
            seq,
            journal_digest,
            state_hash: engine.state_hash(),
            root_hash: tree.root_hash(),
            seed_commitment: seed_commitment(&seed),
            leaf_count: tree.leaf_count(),
            height: tree.height(),
            assets,
            signer: [0; 32],
            signature: [0; 64],
        };
        Ok(Self { tree, root, symbols: symbols_of(engine), seed })
    }

    /// Signs the root with the attest key.
    pub fn sign(&mut self, attest_key: &SigningKey) {
        self.root.sign(attest_key);
    }

    /// The proof of `account`, if it has a leaf.
    #[must_use]
    pub fn proof(&self, account: u64) -> Option<Proof> {
        Proof::from_tree(&self.tree, &self.seed, &self.symbols, account)
    }
}

/// The fee account's balance of `asset` as the root publishes it: the fees with the lending
/// pool's rounding dust, before any uncovered loss (always 0, see `Engine::uncovered`; were
/// there one, [`conservation_gaps`] would report it).
fn own_fees(engine: &Engine, asset: u16) -> u64 {
    let whole = engine.fee_account(asset) + i128::from(engine.uncovered(asset));
    u64::try_from(whole.max(0)).unwrap_or(u64::MAX)
}

/// The insurance fund's balance of `asset` as the root publishes it: its cash and what it
/// lends in the asset's pool (`Pool::fund_principal`: 0 unless restored from an older state).
fn own_insurance(engine: &Engine, asset: u16) -> u64 {
    let cash = u64::try_from(engine.insurance(asset)).unwrap_or(0);
    let lent = engine.pool_state(asset).map_or(0, |pool| pool.fund_lent());
    cash.saturating_add(lent)
}

/// Per asset: `Σequity − Σdebt + fees + insurance − supply`, which conservation (SPEC 7) makes
/// zero (the engine records no uncovered loss: `Engine::uncovered`); the assets where it is
/// not zero, with the difference.
#[must_use]
pub fn conservation_gaps(engine: &Engine, root: &Root) -> Vec<(Symbol, i128)> {
    root.assets
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let held = a.liability() + i128::from(a.fees) + i128::from(a.insurance);
            let gap = held - i128::from(engine.supply(i as u16));
            (gap != 0).then_some((a.symbol, gap))
        })
        .collect()
}
