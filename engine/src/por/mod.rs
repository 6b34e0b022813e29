//! The Proof of Reserves of SPEC section 10 (off the engine's hot path: built from read
//! accessors on a state at a chosen seq, never inside `apply`).
//!
//! A per-asset Merkle-sum tree over the users' accounts, in which every leaf is hashed from the
//! very values that are summed, every node's hash holds both children's sums, the user id and a
//! per-cycle salt are in every leaf, and every sum is checked for overflow; a root signed by the
//! attest key at a journal position; one inclusion proof per account; the custody's signed
//! reserves beside the liabilities; a stress report of price shocks on a copy of the state.
//!
//! Modules, one concept each:
//! - [`format`]: the byte layouts (salts, leaves, nodes, padding), public interface;
//! - [`tree`]: building the tree, reading proofs off it;
//! - [`proof`]: the proof file and its verification; [`root`]: `root.json` and the PoR
//!   attestation; [`fault`]: the named reasons every check fails with; `json`: strict readers;
//! - [`cycle`]: a cycle from an engine's state (off the hot path, through read accessors);
//!   [`audit`]: a published root against the one rebuilt by replay;
//! - [`reserves`]: custody's signed reserves and the solvency table;
//! - [`stress`]: price shocks on a copy of the state (the stress report);
//! - [`vectors`]: the test vectors an independent verifier must agree with.
//!
//! The formats are documented for independent implementations in `docs/por.md`.

pub mod audit;
pub mod cycle;
pub mod fault;
pub mod format;
mod json;
pub mod proof;
pub mod reserves;
pub mod root;
pub mod stress;
pub mod tree;
pub mod vectors;

pub use cycle::Cycle;
pub use fault::{Fault, PorError};
pub use proof::{verify_proof, Proof, Verified};
pub use root::{Root, RootAsset};
pub use tree::{BuildError, LeafSet, Sibling, Tree};
