//! Audit by replay: the published root against the root an auditor rebuilds from the journal
//! at the same seq with the cycle's salt seed. Every difference is named, most telling first.

use crate::signing::hex;

use crate::por::fault::{Fault, PorError};
use crate::por::root::Root;

/// The differences between a published root and the rebuilt one, in this order: the cycle
/// (`cycle_mismatch`: another seq), the journal position (`state_mismatch`: digest or state
/// hash), the salt seed (`seed_mismatch`), the assets (`asset_mismatch`), the leaf count
/// (`leaf_count_mismatch`: an account omitted or added), each asset's totals and own balances
/// (`totals_mismatch`), the height (`wrong_depth`) and the root hash (`root_mismatch`: some
/// leaf differs). Empty: the same root.
#[must_use]
pub fn compare_roots(published: &Root, rebuilt: &Root) -> Vec<PorError> {
    let mut out = Vec::new();
    let mut differ = |fault, detail: String| out.push(PorError::new(fault, detail));
    if published.seq != rebuilt.seq {
        differ(
            Fault::CycleMismatch,
            format!("the root is at seq {}, the rebuilt state at seq {}", published.seq, rebuilt.seq),
        );
    }
    if published.journal_digest != rebuilt.journal_digest {
        differ(
            Fault::StateMismatch,
            format!(
                "the root names journal digest {}, the journal's is {} at seq {}",
                hex(&published.journal_digest),
                hex(&rebuilt.journal_digest),
                rebuilt.seq
            ),
        );
    }
    if published.state_hash != rebuilt.state_hash {
        differ(
            Fault::StateMismatch,
            format!(
                "the root names state hash {}, the replayed state's is {}",
                hex(&published.state_hash),
                hex(&rebuilt.state_hash)
            ),
        );
    }
    if published.seed_commitment != rebuilt.seed_commitment {
        differ(Fault::SeedMismatch, "the salt seed given is not the one the root commits to".to_string());
    }
    let symbols = |r: &Root| r.assets.iter().map(|a| a.symbol.as_str().to_string()).collect::<Vec<_>>();
    if symbols(published) != symbols(rebuilt) {
        differ(
            Fault::AssetMismatch,
            format!("the root covers {:?}, the state lists {:?}", symbols(published), symbols(rebuilt)),
        );
    }
    if published.leaf_count != rebuilt.leaf_count {
        differ(
            Fault::LeafCountMismatch,
            format!(
                "the root has {} leaves, the state has {} accounts with a value: {} account(s) {}",
                published.leaf_count,
                rebuilt.leaf_count,
                published.leaf_count.abs_diff(rebuilt.leaf_count),
                if published.leaf_count < rebuilt.leaf_count { "omitted" } else { "added" }
            ),
        );
    }
    for (p, r) in published.assets.iter().zip(&rebuilt.assets) {
        let fields = [("equity", p.equity, r.equity), ("debt", p.debt, r.debt), ("fees", p.fees, r.fees)];
        for (name, published, rebuilt) in fields.into_iter().chain([("insurance", p.insurance, r.insurance)]) {
            if published != rebuilt {
                differ(
                    Fault::TotalsMismatch,
                    format!("{} {name}: the root says {published} units, the state has {rebuilt}", r.symbol.as_str()),
                );
            }
        }
    }
    if published.height != rebuilt.height {
        differ(
            Fault::WrongDepth,
            format!("the root's height is {}, the rebuilt tree's {}", published.height, rebuilt.height),
        );
    }
    if published.root_hash != rebuilt.root_hash {
        differ(
            Fault::RootMismatch,
            format!("the root hash is {}, the rebuilt tree's {}", hex(&published.root_hash), hex(&rebuilt.root_hash)),
        );
    }
    out
}
