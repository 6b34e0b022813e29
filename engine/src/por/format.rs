//! The byte formats of the tree: salts, user commitments, leaves, nodes, padding.
//!
//! These are public interface: an independent verifier (the browser page) computes the same
//! bytes from `docs/por.md`, and the test vectors (`verex por vectors`) pin them. Every integer
//! is fixed-width little-endian; every hash is BLAKE3 with a 32-byte output; the domain tags
//! are the ASCII bytes shown, with no length prefix and no terminator (the tags are distinct,
//! none is a prefix of another, and each preimage kind has a fixed length for a given asset
//! count, so no preimage of one kind can be read as one of another).
//!
//! With `A` assets (the exchange's listed assets at the cycle's seq, in listing order) and
//! `sums = equity[0] ‖ … ‖ equity[A-1] ‖ debt[0] ‖ … ‖ debt[A-1]` (each `u64` LE, `16·A` bytes):
//!
//! ```text
//! salt    = BLAKE3-keyed(key = salt_seed, "verex-por-salt" ‖ seq u64 ‖ account_id u64)
//! user    = BLAKE3(account_id u64 ‖ salt)
//! leaf.h  = BLAKE3("verex-por-leaf" ‖ user ‖ sums)
//! node.s  = l.s + r.s                      (per value, checked: never wraps)
//! node.h  = BLAKE3("verex-por-node" ‖ l.sums ‖ r.sums ‖ l.h ‖ r.h)
//! pad[0]  = (sums 0, h = BLAKE3("verex-por-pad")),  pad[k+1] = node(pad[k], pad[k])
//! seed_commitment = BLAKE3("verex-por-seed" ‖ salt_seed)
//! ```

/// A BLAKE3 output.
pub type Hash = [u8; 32];

/// Domain tag of a leaf hash (SPEC 10).
pub const LEAF_DOMAIN: &[u8] = b"verex-por-leaf";
/// Domain tag of a node hash (SPEC 10).
pub const NODE_DOMAIN: &[u8] = b"verex-por-node";
/// Domain tag of the padding leaf.
pub const PAD_DOMAIN: &[u8] = b"verex-por-pad";
/// Domain tag of a salt derivation.
pub const SALT_DOMAIN: &[u8] = b"verex-por-salt";
/// Domain tag of the salt seed's commitment.
pub const SEED_DOMAIN: &[u8] = b"verex-por-seed";

/// Most assets a tree covers (the engine's hard ceiling on listed assets).
pub const MAX_ASSETS: usize = crate::limits::MAX_ASSETS_CEILING as usize;
/// Tallest tree: 2^40 leaves is far beyond any account table (ids are `u32` in the engine).
pub const MAX_HEIGHT: u32 = 40;
/// Largest integer a JSON number may carry in the public files (2^53 − 1: exact in every JSON
/// reader, JavaScript's included). Larger integers are strings.
pub const MAX_JSON_INTEGER: u64 = (1 << 53) - 1;

/// The height of a tree of `leaf_count` leaves: the smallest `H ≥ 1` with `2^H ≥ leaf_count`.
/// Leaf positions `leaf_count..2^H` hold the padding leaf.
#[must_use]
pub fn height_for(leaf_count: u64) -> u32 {
    let mut height = 1;
    while height < 64 && (1u64 << height) < leaf_count {
        height += 1;
    }
    height
}

/// The per-account, per-cycle salt, derived from the cycle's salt seed. The seq is in the
/// derivation too, so a seed reused by mistake at another seq still gives fresh salts.
#[must_use]
pub fn derive_salt(seed: &[u8; 32], seq: u64, account: u64) -> [u8; 32] {
    let mut message = [0u8; 14 + 16];
    message[..14].copy_from_slice(SALT_DOMAIN);
    message[14..22].copy_from_slice(&seq.to_le_bytes());
    message[22..30].copy_from_slice(&account.to_le_bytes());
    *blake3::keyed_hash(seed, &message).as_bytes()
}

/// `BLAKE3(account_id ‖ salt)`: binds the leaf to its account without revealing the id.
#[must_use]
pub fn user_hash(account: u64, salt: &[u8; 32]) -> Hash {
    let mut message = [0u8; 8 + 32];
    message[..8].copy_from_slice(&account.to_le_bytes());
    message[8..].copy_from_slice(salt);
    *blake3::hash(&message).as_bytes()
}

/// Commitment to a cycle's salt seed, signed in the root: an auditor handed a seed knows
/// whether it is the cycle's before rebuilding anything.
#[must_use]
pub fn seed_commitment(seed: &[u8; 32]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(SEED_DOMAIN);
    hasher.update(seed);
    *hasher.finalize().as_bytes()
}

/// Appends `values` as `u64` LE.
fn put_values(buf: &mut Vec<u8>, values: &[u64]) {
    for v in values {
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// `leaf.h` for a user commitment and its `sums` (equity then debt, `2·A` values); `buf` is
/// scratch, reused across calls so that building a tree does not allocate per leaf.
pub fn leaf_hash_with(buf: &mut Vec<u8>, user: &Hash, sums: &[u64]) -> Hash {
    buf.clear();
    buf.extend_from_slice(LEAF_DOMAIN);
    buf.extend_from_slice(user);
    put_values(buf, sums);
    *blake3::hash(buf).as_bytes()
}

/// `node.h` of two children (`sums` are `2·A` values each); `buf` is scratch.
pub fn node_hash_with(buf: &mut Vec<u8>, left_sums: &[u64], right_sums: &[u64], left: &Hash, right: &Hash) -> Hash {
    debug_assert_eq!(left_sums.len(), right_sums.len(), "both children cover the same assets");
    buf.clear();
    buf.extend_from_slice(NODE_DOMAIN);
    put_values(buf, left_sums);
    put_values(buf, right_sums);
    buf.extend_from_slice(left);
    buf.extend_from_slice(right);
    *blake3::hash(buf).as_bytes()
}

/// `leaf.h` (allocating; see [`leaf_hash_with`]).
#[must_use]
pub fn leaf_hash(user: &Hash, sums: &[u64]) -> Hash {
    leaf_hash_with(&mut Vec::new(), user, sums)
}

/// `node.h` (allocating; see [`node_hash_with`]).
#[must_use]
pub fn node_hash(left_sums: &[u64], right_sums: &[u64], left: &Hash, right: &Hash) -> Hash {
    node_hash_with(&mut Vec::new(), left_sums, right_sums, left, right)
}

/// The padding node's hash at each level `0..=height` (its sums are all zero).
#[must_use]
pub fn pad_hashes(assets: usize, height: u32) -> Vec<Hash> {
    let zeros = vec![0u64; 2 * assets];
    let mut buf = Vec::new();
    let mut pads = Vec::with_capacity(height as usize + 1);
    pads.push(*blake3::hash(PAD_DOMAIN).as_bytes());
    for level in 0..height as usize {
        let below = pads[level];
        pads.push(node_hash_with(&mut buf, &zeros, &zeros, &below, &below));
    }
    pads
}

/// `a + b` per value, or the index of the first value that overflows `u64`.
///
/// # Errors
/// The index (`0..A`: equity of that asset, `A..2A`: debt) of the first overflow.
pub fn add_sums(a: &[u64], b: &[u64], out: &mut [u64]) -> Result<(), usize> {
    for (i, ((x, y), o)) in a.iter().zip(b).zip(out.iter_mut()).enumerate() {
        *o = x.checked_add(*y).ok_or(i)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_fit_the_leaf_count() {
        assert_eq!([0, 1, 2, 3, 4, 5, 8, 9, 1 << 20, (1 << 20) + 1].map(height_for), [1, 1, 1, 2, 2, 3, 3, 4, 20, 21]);
    }

    #[test]
    fn the_id_is_bound_and_the_salt_changes_every_cycle() {
        let seed = [7; 32];
        let salt = derive_salt(&seed, 100, 5);
        assert_ne!(user_hash(5, &salt), user_hash(6, &salt), "same salt and balances, other id: other leaf");
        assert_ne!(salt, derive_salt(&seed, 101, 5), "the seq is in the derivation");
        assert_ne!(salt, derive_salt(&seed, 100, 6));
        assert_ne!(salt, derive_salt(&[8; 32], 100, 5));
    }

    #[test]
    fn leaves_nodes_and_pads_never_share_a_preimage_shape() {
        let sums = [1u64, 2];
        let user = [3; 32];
        let leaf = leaf_hash(&user, &sums);
        let pads = pad_hashes(1, 2);
        assert_eq!(pads.len(), 3);
        assert_ne!(leaf, pads[0]);
        let node = node_hash(&sums, &sums, &leaf, &leaf);
        assert_ne!(node, leaf_hash(&user, &[1, 2]));
        assert_ne!(node, node_hash(&[1, 3], &[0, 0], &leaf, &leaf), "the split of the sums is in the hash");
    }

    #[test]
    fn sums_never_wrap() {
        let mut out = [0u64; 2];
        assert_eq!(add_sums(&[1, u64::MAX], &[2, 1], &mut out), Err(1));
        assert_eq!(add_sums(&[1, 2], &[3, 4], &mut out), Ok(()));
        assert_eq!(out, [4, 6]);
    }
}
