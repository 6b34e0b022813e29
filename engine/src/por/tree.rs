//! The Merkle-sum tree over the accounts' balances (SPEC section 10).
//!
//! Leaves are the accounts with a non-zero value, in increasing id order (ids strictly
//! increasing, so unique); positions `leaf_count..2^height` are padding. Every level is kept
//! (hashes and sums), so a proof is read off in O(height). Building hashes each level on every
//! core: a leaf costs a keyed BLAKE3 (salt), a BLAKE3 of 40 bytes (user) and one of
//! `46 + 16·A` bytes; a node one of `78 + 32·A` bytes.

use crate::por::format::{
    add_sums, derive_salt, height_for, leaf_hash_with, node_hash_with, pad_hashes, user_hash, Hash, MAX_ASSETS,
    MAX_HEIGHT,
};

/// Nodes below which a level is hashed on one thread (a thread costs more than it saves).
const PARALLEL_MIN_NODES: usize = 4096;

/// Why a tree cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// More assets than a tree covers.
    #[error("{0} assets: a tree covers at most {MAX_ASSETS}")]
    TooManyAssets(usize),
    /// Leaves must come in strictly increasing id order (ids are unique in the tree).
    #[error("account {account} after account {previous}: leaf ids must be strictly increasing")]
    IdsNotIncreasing {
        /// The id before.
        previous: u64,
        /// The id that does not follow it.
        account: u64,
    },
    /// A leaf's value does not fit `0 ≤ v < 2^64`.
    #[error("account {account}, asset {asset}: {what} does not fit 0 ≤ v < 2^64")]
    ValueOutOfRange {
        /// The account.
        account: u64,
        /// The asset index.
        asset: usize,
        /// `equity` or `debt`.
        what: &'static str,
    },
    /// A node's sum overflows `u64`.
    #[error("the sum of {what} of asset {asset} overflows 2^64")]
    SumOverflow {
        /// The asset index.
        asset: usize,
        /// `equity` or `debt`.
        what: &'static str,
    },
    /// More leaves than [`MAX_HEIGHT`] allows.
    #[error("{0} leaves: more than a tree of height {MAX_HEIGHT} holds")]
    TooManyLeaves(u64),
}

/// Names the value at index `i` of a sums vector of `assets` assets.
pub(crate) fn value_name(i: usize, assets: usize) -> (usize, &'static str) {
    if i < assets {
        (i, "equity")
    } else {
        (i - assets, "debt")
    }
}

/// The leaves of a cycle before hashing: ids and their `equity ‖ debt` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSet {
    assets: usize,
    accounts: Vec<u64>,
    /// `2·A` values per leaf.
    sums: Vec<u64>,
}

impl LeafSet {
    /// An empty set over `assets` assets.
    ///
    /// # Errors
    /// [`BuildError::TooManyAssets`].
    pub fn new(assets: usize) -> Result<Self, BuildError> {
        if assets > MAX_ASSETS {
            return Err(BuildError::TooManyAssets(assets));
        }
        Ok(Self { assets, accounts: Vec::new(), sums: Vec::new() })
    }

    /// Reserves room for `leaves` leaves.
    pub fn reserve(&mut self, leaves: usize) {
        self.accounts.reserve(leaves);
        self.sums.reserve(leaves * 2 * self.assets);
    }

    /// Adds an account's leaf if any of its values is non-zero; returns whether it did.
    ///
    /// # Errors
    /// [`BuildError::IdsNotIncreasing`] when `account` is not above the last id pushed.
    pub fn push(&mut self, account: u64, equity: &[u64], debt: &[u64]) -> Result<bool, BuildError> {
        assert!(equity.len() == self.assets && debt.len() == self.assets, "one value per asset");
        if let Some(&previous) = self.accounts.last() {
            if account <= previous {
                return Err(BuildError::IdsNotIncreasing { previous, account });
            }
        }
        if equity.iter().chain(debt).all(|v| *v == 0) {
            return Ok(false);
        }
        self.accounts.push(account);
        self.sums.extend_from_slice(equity);
        self.sums.extend_from_slice(debt);
        Ok(true)
    }

    /// Assets covered.
    #[must_use]
    pub fn assets(&self) -> usize {
        self.assets
    }

    /// Leaves pushed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// No leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The ids, increasing.
    #[must_use]
    pub fn accounts(&self) -> &[u64] {
        &self.accounts
    }

    /// Leaf `index`'s values, `equity ‖ debt`.
    #[must_use]
    pub fn sums(&self, index: usize) -> &[u64] {
        let width = 2 * self.assets;
        &self.sums[index * width..(index + 1) * width]
    }

    /// Removes the leaf of `account` (for tests that build a dishonest tree).
    pub fn remove(&mut self, account: u64) -> bool {
        let Ok(index) = self.accounts.binary_search(&account) else { return false };
        let width = 2 * self.assets;
        self.accounts.remove(index);
        self.sums.drain(index * width..(index + 1) * width);
        true
    }
}

/// One level of the tree: its nodes' hashes and sums.
#[derive(Debug, Clone)]
struct Level {
    hashes: Vec<Hash>,
    sums: Vec<u64>,
}

/// A sibling on a proof's path: a subtree's hash and sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    /// The subtree's `h`.
    pub hash: Hash,
    /// Its `equity ‖ debt` sums, `2·A` values.
    pub sums: Vec<u64>,
}

/// A built tree.
#[derive(Debug, Clone)]
pub struct Tree {
    assets: usize,
    seq: u64,
    accounts: Vec<u64>,
    /// `levels[0]`: the leaves; `levels[height]`: the root.
    levels: Vec<Level>,
    /// The padding node's hash per level.
    pads: Vec<Hash>,
}

impl Tree {
    /// Builds the tree of cycle `seq`, salts derived from `seed`, hashing on `threads` threads.
    ///
    /// # Errors
    /// [`BuildError::SumOverflow`] when a sum does not fit `u64`, [`BuildError::TooManyLeaves`].
    pub fn build(leaves: LeafSet, seq: u64, seed: &[u8; 32], threads: usize) -> Result<Self, BuildError> {
        let count = leaves.len() as u64;
        let height = height_for(count);
        if height > MAX_HEIGHT {
            return Err(BuildError::TooManyLeaves(count));
        }
        let assets = leaves.assets;
        let pads = pad_hashes(assets, height);
        let mut hashes = vec![[0u8; 32]; leaves.len()];
        hash_leaves(&leaves, seq, seed, threads, &mut hashes);
        let LeafSet { accounts, sums, .. } = leaves;
        let mut levels = vec![Level { hashes, sums }];
        for level in 0..height as usize {
            let parent = build_parent(&levels[level], assets, &pads[level], threads)?;
            levels.push(parent);
        }
        debug_assert_eq!(levels[height as usize].hashes.len(), 1, "one root");
        Ok(Self { assets, seq, accounts, levels, pads })
    }

    /// The cycle's seq.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Assets covered.
    #[must_use]
    pub fn assets(&self) -> usize {
        self.assets
    }

    /// The root's hash.
    #[must_use]
    pub fn root_hash(&self) -> Hash {
        self.levels[self.levels.len() - 1].hashes[0]
    }

    /// The root's sums: per asset Σequity, then per asset Σdebt.
    #[must_use]
    pub fn root_sums(&self) -> &[u64] {
        &self.levels[self.levels.len() - 1].sums
    }

    /// Levels above the leaves.
    #[must_use]
    pub fn height(&self) -> u32 {
        (self.levels.len() - 1) as u32
    }

    /// Real (non-padding) leaves.
    #[must_use]
    pub fn leaf_count(&self) -> u64 {
        self.accounts.len() as u64
    }

    /// The ids of the leaves, increasing.
    #[must_use]
    pub fn accounts(&self) -> &[u64] {
        &self.accounts
    }

    /// The leaf position of `account`, if it has a leaf.
    #[must_use]
    pub fn position(&self, account: u64) -> Option<u64> {
        self.accounts.binary_search(&account).ok().map(|p| p as u64)
    }

    /// The values of the leaf at `position`, `equity ‖ debt`.
    #[must_use]
    pub fn leaf_sums(&self, position: u64) -> &[u64] {
        self.node_sums(0, position as usize)
    }

    fn node_sums(&self, level: usize, index: usize) -> &[u64] {
        let width = 2 * self.assets;
        &self.levels[level].sums[index * width..(index + 1) * width]
    }

    /// The node at `level` (0: leaves) and `index`, padding included: hash and sums.
    #[must_use]
    pub fn node(&self, level: usize, index: u64) -> Sibling {
        let index = index as usize;
        match self.levels[level].hashes.get(index) {
            Some(hash) => Sibling { hash: *hash, sums: self.node_sums(level, index).to_vec() },
            None => Sibling { hash: self.pads[level], sums: vec![0; 2 * self.assets] },
        }
    }

    /// The siblings from the leaf at `position` up to the root's children (`height` of them).
    #[must_use]
    pub fn path(&self, position: u64) -> Vec<Sibling> {
        (0..self.height() as usize).map(|level| self.node(level, (position >> level) ^ 1)).collect()
    }
}

/// Splits `0..len` into at most `threads` contiguous ranges (one for a small level).
fn ranges(len: usize, threads: usize) -> Vec<(usize, usize)> {
    let threads = if len < PARALLEL_MIN_NODES { 1 } else { threads.max(1) };
    let chunk = len.div_ceil(threads).max(1);
    (0..len).step_by(chunk).map(|start| (start, (start + chunk).min(len))).collect()
}

fn hash_leaves(leaves: &LeafSet, seq: u64, seed: &[u8; 32], threads: usize, out: &mut [Hash]) {
    let parts = ranges(out.len(), threads);
    std::thread::scope(|scope| {
        let mut rest = out;
        for (start, end) in parts {
            let (mine, tail) = rest.split_at_mut(end - start);
            rest = tail;
            scope.spawn(move || {
                let mut buf = Vec::with_capacity(64 + 16 * leaves.assets);
                for (offset, slot) in mine.iter_mut().enumerate() {
                    let index = start + offset;
                    let account = leaves.accounts[index];
                    let user = user_hash(account, &derive_salt(seed, seq, account));
                    *slot = leaf_hash_with(&mut buf, &user, leaves.sums(index));
                }
            });
        }
    });
}

/// The level above `child`: pairs `(2i, 2i+1)`, a missing right child being the padding node
/// (`pad`, zero sums).
fn build_parent(child: &Level, assets: usize, pad: &Hash, threads: usize) -> Result<Level, BuildError> {
    let width = 2 * assets;
    let count = child.hashes.len().div_ceil(2).max(1);
    let mut hashes = vec![[0u8; 32]; count];
    let mut sums = vec![0u64; count * width];
    let zeros = vec![0u64; width];
    let parts = ranges(count, threads);
    let results: Vec<Result<(), usize>> = std::thread::scope(|scope| {
        let mut rest_h = hashes.as_mut_slice();
        let mut rest_s = sums.as_mut_slice();
        let mut handles = Vec::with_capacity(parts.len());
        for (start, end) in parts {
            let (mine_h, tail_h) = rest_h.split_at_mut(end - start);
            let (mine_s, tail_s) = rest_s.split_at_mut((end - start) * width);
            rest_h = tail_h;
            rest_s = tail_s;
            let zeros = &zeros;
            handles.push(scope.spawn(move || -> Result<(), usize> {
                let mut buf = Vec::with_capacity(96 + 32 * assets);
                let child_node = |index: usize| match child.hashes.get(index) {
                    Some(hash) => (hash, &child.sums[index * width..(index + 1) * width]),
                    None => (pad, zeros.as_slice()),
                };
                for (offset, (slot, out)) in mine_h.iter_mut().zip(mine_s.chunks_mut(width)).enumerate() {
                    let parent = start + offset;
                    let (lh, ls) = child_node(2 * parent);
                    let (rh, rs) = child_node(2 * parent + 1);
                    add_sums(ls, rs, out)?;
                    *slot = node_hash_with(&mut buf, ls, rs, lh, rh);
                }
                Ok(())
            }));
        }
        handles.into_iter().map(|h| h.join().unwrap_or(Err(usize::MAX))).collect()
    });
    for result in results {
        if let Err(i) = result {
            let (asset, what) = value_name(i.min(width.saturating_sub(1)), assets);
            return Err(BuildError::SumOverflow { asset, what });
        }
    }
    Ok(Level { hashes, sums })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::por::format::{leaf_hash, node_hash};

    fn leaves(values: &[(u64, [u64; 2])]) -> LeafSet {
        let mut set = LeafSet::new(1).expect("assets");
        for (account, [equity, debt]) in values {
            set.push(*account, &[*equity], &[*debt]).expect("increasing");
        }
        set
    }

    #[test]
    fn a_three_leaf_tree_is_the_documented_hashes() {
        let seed = [1; 32];
        let tree = Tree::build(leaves(&[(1, [10, 0]), (4, [5, 2]), (9, [0, 3])]), 77, &seed, 2).expect("build");
        assert_eq!((tree.height(), tree.leaf_count()), (2, 3));
        let leaf = |account: u64, sums: &[u64]| leaf_hash(&user_hash(account, &derive_salt(&seed, 77, account)), sums);
        let (a, b, c) = (leaf(1, &[10, 0]), leaf(4, &[5, 2]), leaf(9, &[0, 3]));
        let pads = pad_hashes(1, 2);
        let left = node_hash(&[10, 0], &[5, 2], &a, &b);
        let right = node_hash(&[0, 3], &[0, 0], &c, &pads[0]);
        assert_eq!(tree.root_hash(), node_hash(&[15, 2], &[0, 3], &left, &right));
        assert_eq!(tree.root_sums(), &[15, 5]);
        assert_eq!(
            tree.path(2),
            vec![Sibling { hash: pads[0], sums: vec![0, 0] }, Sibling { hash: left, sums: vec![15, 2] }]
        );
    }

    #[test]
    fn zero_accounts_are_left_out_and_ids_must_increase() {
        let mut set = LeafSet::new(1).expect("assets");
        assert_eq!(set.push(3, &[0], &[0]), Ok(false));
        assert_eq!(set.push(4, &[1], &[0]), Ok(true));
        assert_eq!(set.push(4, &[1], &[0]), Err(BuildError::IdsNotIncreasing { previous: 4, account: 4 }));
        let empty = Tree::build(LeafSet::new(2).expect("assets"), 1, &[0; 32], 1).expect("empty");
        assert_eq!((empty.height(), empty.leaf_count(), empty.root_sums()), (1, 0, &[0u64; 4][..]));
        assert_eq!(empty.root_hash(), pad_hashes(2, 1)[1]);
    }

    #[test]
    fn a_sum_that_would_wrap_is_refused() {
        let set = leaves(&[(1, [u64::MAX, 0]), (2, [1, 0])]);
        assert_eq!(Tree::build(set, 1, &[0; 32], 1).err(), Some(BuildError::SumOverflow { asset: 0, what: "equity" }));
    }

    #[test]
    fn parallel_and_single_threaded_builds_agree() {
        let mut set = LeafSet::new(2).expect("assets");
        for account in 1..=10_000u64 {
            set.push(account, &[account, account % 7], &[account % 3, 0]).expect("push");
        }
        let one = Tree::build(set.clone(), 5, &[9; 32], 1).expect("one");
        let two = Tree::build(set, 5, &[9; 32], 3).expect("three");
        assert_eq!(one.root_hash(), two.root_hash());
        assert_eq!(one.root_sums(), two.root_sums());
    }
}
