//! `verex por audit`: rebuild a published cycle by replaying the journal with its salt seed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use verex_engine::por::audit::compare_roots;
use verex_engine::por::format::seed_commitment;
use verex_engine::por::proof::verify_proof;
use verex_engine::por::{Cycle, Fault, PorError, Proof, Root};
use verex_engine::signing::hex;

use crate::attestations::read_attestations;
use crate::cmd::replay::FromSnapshotArgs;
use crate::error::CliError;
use crate::io::{note, warn, Output};
use crate::manifest::require_manifest;
use crate::por_files::{read_root, read_seed, read_text};
use crate::rebuild::open_reader;
use crate::recover::recover_at;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Audit a published Proof of Reserves cycle by replay (SPEC 10): holding the journal and the \
cycle's salt seed, rebuild the tree at the root's seq and require the same root. This is what \
catches an account left out of (or added to, or altered in) the published tree, which no single \
user's proof can show.

In order: the root parses and is signed by the journal's genesis attest key; the salt seed is \
the one the root commits to (seed_mismatch, before any replay); the state at the root's seq is \
rebuilt by replaying the journal (from genesis by default, every signature re-checked; \
--snapshot or --snapshots to start from a snapshot), and its BLAKE3 journal digest and state \
hash must be the root's (state_mismatch; and an attestation in the journal's log at that seq \
must agree); the tree is rebuilt with the seed, and its leaf count (leaf_count_mismatch: an \
account omitted or added), per-asset totals and own balances (totals_mismatch), height and root \
hash (root_mismatch) must all be the root's. With --proofs DIR (a cycle's proofs directory), \
every account with a leaf must have its proof there, equal to the rebuilt one, and every proof \
there must verify. Every difference is listed on standard error; the first is the named reason \
and the exit status is 1. Exit status 0 only if the journal rebuilds the published root.";

/// Arguments of `verex por audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// The published root file.
    #[arg(long, value_name = "FILE")]
    pub root: PathBuf,
    /// The cycle's salt seed file (salt-seed.json).
    #[arg(long, value_name = "FILE")]
    pub salt_seed: PathBuf,
    /// Also check every proof in this directory (a cycle's proofs/).
    #[arg(long, value_name = "DIR")]
    pub proofs: Option<PathBuf>,
    /// Where the rebuilt state starts.
    #[command(flatten)]
    pub from: FromSnapshotArgs,
}

/// Audits and reports.
///
/// # Errors
/// [`CliError::Por`] with the first difference (all of them on standard error), and the
/// errors of `verex replay`.
pub fn execute(args: &AuditArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let manifest = require_manifest(dir)?;
    let published = read_root(&args.root)?;
    published.verify(Some(&manifest.genesis.attest)).map_err(|e| CliError::por(&args.root, e))?;
    let (_, seed) = read_seed(&args.salt_seed)?;
    if seed_commitment(&seed) != published.seed_commitment {
        let detail = "this salt seed is not the one the root commits to";
        return Err(CliError::por(&args.salt_seed, PorError::new(Fault::SeedMismatch, detail)));
    }
    let reader = open_reader(dir)?;
    let started = Instant::now();
    let state = recover_at(dir, &reader, &manifest, &args.from.source(), Some(published.seq), "por audit")?;
    let replay_s = started.elapsed().as_secs_f64();
    let building = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let rebuilt = Cycle::build(&state.engine, state.digest.digest, seed, threads)
        .map_err(|e| CliError::por(&args.root, PorError::new(Fault::OutOfRange, e.to_string())))?;
    let build_s = building.elapsed().as_secs_f64();
    let mut differences = compare_roots(&published, &rebuilt.root);
    differences.extend(attestation_difference(dir, &rebuilt.root)?);
    let proofs = match &args.proofs {
        Some(proofs) => check_proofs(proofs, &published, &rebuilt, &mut differences)?,
        None => 0,
    };
    let from =
        state.from.as_ref().map_or("genesis".to_string(), |s| format!("snapshot {} (seq {})", s.path.display(), s.seq));
    note(&format!(
        "por audit: replayed {} records (from {from}) to seq {} in {replay_s:.3} s; rebuilt {} leaves in {build_s:.3} s",
        state.records, published.seq, rebuilt.root.leaf_count
    ));
    if let Some(first) = differences.first().cloned() {
        for difference in &differences {
            warn(&format!("por audit: {difference}"));
        }
        return Err(CliError::por(&args.root, first));
    }
    let mut out = Output::create(None)?;
    out.write_line(&format!(
        "audit holds: the journal rebuilds root {} at seq {} ({} leaves{})",
        hex(&published.root_hash),
        published.seq,
        published.leaf_count,
        if args.proofs.is_some() { format!(", {proofs} proofs checked") } else { String::new() }
    ))?;
    out.finish()
}

/// The journal's own attestation at the seq, if it has one, must name the rebuilt state.
fn attestation_difference(dir: &Path, rebuilt: &Root) -> Result<Option<PorError>, CliError> {
    let log = read_attestations(dir)?;
    Ok(log.at(rebuilt.seq).and_then(|entry| {
        let a = &entry.attestation;
        (a.journal_digest != rebuilt.journal_digest || a.state_hash != rebuilt.state_hash).then(|| {
            PorError::new(
                Fault::StateMismatch,
                format!("the journal's attestation at seq {} (line {}) names another state", a.seq, entry.line),
            )
        })
    }))
}

/// Every leaf's proof is in `dir`, equal to the rebuilt one; every proof there verifies.
fn check_proofs(
    dir: &Path,
    published: &Root,
    rebuilt: &Cycle,
    differences: &mut Vec<PorError>,
) -> Result<u64, CliError> {
    let mut checked = 0;
    let mut seen = std::collections::BTreeSet::new();
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::io("read", dir, e))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let proof = Proof::from_json(&read_text(path)?).map_err(|e| CliError::por(path, e))?;
        verify_proof(&proof, published, None).map_err(|e| CliError::por(path, e))?;
        if rebuilt.proof(proof.account).as_ref() != Some(&proof) {
            differences.push(PorError::new(
                Fault::RootMismatch,
                format!("{}: account {}'s proof differs from the rebuilt one", path.display(), proof.account),
            ));
        }
        seen.insert(proof.account);
        checked += 1;
    }
    let missing: Vec<u64> = rebuilt.tree.accounts().iter().copied().filter(|a| !seen.contains(a)).collect();
    if let Some(first) = missing.first() {
        differences.push(PorError::new(
            Fault::LeafCountMismatch,
            format!(
                "{} account(s) with a leaf have no proof in {} (first: account {first})",
                missing.len(),
                dir.join("").display()
            ),
        ));
    }
    Ok(checked)
}
