//! `verex por verify`: one account's proof against a published root, offline.

use std::path::PathBuf;

use clap::Args;
use verex_engine::por::proof::{verify_files, Stage};
use verex_engine::signing::hex;
use verex_engine::text::decimal::format_units;

use crate::error::CliError;
use crate::io::{warn, Output};
use crate::por_files::{pinned_keys, read_text, PinnedKeys};

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Check one account's Proof of Reserves proof (proofs/<id>.json of `verex por build`) against a \
published root (root.json), offline, and print what it proves: the account's equity and debt per \
asset are in the tree whose totals the root publishes.

In order (docs/por.md, Verification): the root file parses, its height fits its leaf count and \
its signature verifies, by the pinned attest key (--attest-pubkey HEX, or --journal DIR for the \
journal's genesis key; without either, any signer is accepted with a warning); then the proof \
parses, is for --account N when given, for the root's cycle and assets, has a salt, a path as \
long as the tree is high and a position among the leaves; its leaf is hashed from the very values \
summed, every sum is checked below 2^64, and the path must compute the published root hash and \
totals. The first check that fails is named (empty_input, malformed, unknown_field, \
negative_value, out_of_range, sum_overflow, wrong_cycle, wrong_depth, bad_position, \
missing_salt, account_mismatch, root_mismatch, totals_mismatch, wrong_signer, bad_signature, \
...) with the file at fault, and the exit status is 1. Exit status 0 only if the proof holds.";

/// Arguments of `verex por verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The account's proof file.
    #[arg(long, value_name = "FILE")]
    pub proof: PathBuf,
    /// The published root file.
    #[arg(long, value_name = "FILE")]
    pub root: PathBuf,
    /// The exchange's attest public key (64 hex digits).
    #[arg(long, value_name = "HEX", conflicts_with = "journal")]
    pub attest_pubkey: Option<String>,
    /// Take the attest key from this journal's manifest.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// The account the proof must be for.
    #[arg(long, value_name = "ID")]
    pub account: Option<u64>,
}

/// Verifies and prints what holds.
///
/// # Errors
/// [`CliError::Por`] naming the file and the first fault; [`CliError::Io`] for a file that
/// cannot be read.
pub fn execute(args: &VerifyArgs) -> Result<(), CliError> {
    let PinnedKeys { attest, .. } = pinned_keys(args.journal.as_deref(), args.attest_pubkey.as_deref(), None)?;
    let root_text = read_text(&args.root)?;
    let proof_text = read_text(&args.proof)?;
    let (root, verified) =
        verify_files(&proof_text, &root_text, attest.as_ref(), args.account).map_err(|(stage, e)| {
            CliError::por(
                match stage {
                    Stage::Root => &args.root,
                    Stage::Proof => &args.proof,
                },
                e,
            )
        })?;
    if attest.is_none() {
        warn(&format!(
            "por verify: no attest key pinned: the root is signed by {}; pass --attest-pubkey to check it is the \
             exchange's",
            hex(&root.signer)
        ));
    }
    let mut out = Output::create(None)?;
    out.write_line(&format!(
        "proof holds: account {} is in the cycle at seq {} (root {}, {} leaves)",
        verified.account,
        root.seq,
        hex(&root.root_hash),
        root.leaf_count
    ))?;
    for (i, asset) in root.assets.iter().enumerate() {
        let d = u32::from(asset.decimals);
        out.write_line(&format!(
            "  {:<8} equity {} debt {}  (of Σequity {}, Σdebt {})",
            asset.symbol.as_str(),
            format_units(i128::from(verified.equity[i]), d),
            format_units(i128::from(verified.debt[i]), d),
            format_units(i128::from(asset.equity), d),
            format_units(i128::from(asset.debt), d)
        ))?;
    }
    out.finish()
}
