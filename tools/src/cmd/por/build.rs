//! `verex por build`: a Proof of Reserves cycle at a seq of a journal.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use rand_core::{OsRng, RngCore};
use verex_engine::por::cycle::conservation_gaps;
use verex_engine::por::{Cycle, Fault, PorError};
use verex_engine::signing::{hex, Role};
use verex_engine::Engine;

use crate::attestations::{attestations_path, read_attestations};
use crate::cmd::por::{operator_key, totals_lines};
use crate::cmd::replay::FromSnapshotArgs;
use crate::error::CliError;
use crate::io::{note, warn, Output};
use crate::manifest::require_manifest;
use crate::por_files::{
    check_output_dir, create_output_dir, proof_path, read_seed, write_new, write_seed, PROOFS_DIR, ROOT_FILE, SEED_FILE,
};
use crate::rebuild::open_reader;
use crate::recover::recover_at;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Build a Proof of Reserves cycle (SPEC 10) from a journal written by `verex run --journal`, at \
seq --at (default: the journal's last), and write it to the new directory --out:

  root.json          the root, signed by the attest key with the journal position (seq, BLAKE3 \
journal digest, state hash), the tree (root hash, leaf count, height), the salt seed's \
commitment and per asset Σequity, Σdebt, the liability Σequity − Σdebt, and the exchange's own \
fee account and insurance fund beside the tree
  proofs/<id>.json   one inclusion proof per account with a leaf (hand each to its owner only: \
it holds the account's salt)
  salt-seed.json     the cycle's salt seed, for auditors (`verex por audit`); never publish it

Leaves are the accounts with a non-zero value, per asset equity = available + locked + lent and \
debt = borrowed. The state is rebuilt off any engine's hot path: by replaying the journal from \
genesis (default: every signature re-checked), or from a snapshot (--snapshot FILE, or \
--snapshots for the newest one at or before the seq that fits the journal). The salt seed is \
fresh from the operating system's generator unless --salt-seed FILE gives one (to reproduce a \
cycle). The attest key is --attest-key FILE, or the development key with --dev; it must be the \
journal's genesis attest key. When the journal's attestation log has an attestation at the \
seq, its journal digest and state hash must be the ones rebuilt (else exit 1, state_mismatch). \
Formats: docs/por.md.";

/// Arguments of `verex por build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// The seq of the cycle (default: the journal's last).
    #[arg(long, value_name = "SEQ")]
    pub at: Option<u64>,
    /// The cycle's directory (new, or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The attest key file (from `verex keygen`).
    #[arg(long, value_name = "FILE")]
    pub attest_key: Option<PathBuf>,
    /// Sign with the development attest key (for journals run with --dev).
    #[arg(long)]
    pub dev: bool,
    /// Use this salt seed file (a cycle's salt-seed.json) instead of a fresh seed.
    #[arg(long, value_name = "FILE")]
    pub salt_seed: Option<PathBuf>,
    /// Write the root and the seed only, no proofs.
    #[arg(long)]
    pub no_proofs: bool,
    /// Where the rebuilt state starts.
    #[command(flatten)]
    pub from: FromSnapshotArgs,
}

/// Builds and writes the cycle.
///
/// # Errors
/// The errors of `verex replay`, [`CliError::Usage`] for a key that is not the attest key or
/// a non-empty --out, [`CliError::Por`] when the attestation log contradicts the rebuilt state.
pub fn execute(args: &BuildArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let manifest = require_manifest(dir)?;
    let key = operator_key(args.attest_key.as_deref(), args.dev, Role::Attest, Some(&manifest.genesis.attest))?;
    let seed = match &args.salt_seed {
        Some(path) => read_seed(path)?.1,
        None => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            seed
        }
    };
    check_output_dir(&args.out)?;
    let reader = open_reader(dir)?;
    let started = Instant::now();
    let state = recover_at(dir, &reader, &manifest, &args.from.source(), args.at, "por build")?;
    let rebuilt_s = started.elapsed().as_secs_f64();
    let engine = &state.engine;
    check_attested(dir, engine, &state.digest.digest)?;
    create_output_dir(&args.out)?;
    let building = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut cycle = Cycle::build(engine, state.digest.digest, seed, threads)
        .map_err(|e| CliError::por(&args.out, PorError::new(Fault::OutOfRange, e.to_string())))?;
    cycle.sign(&key);
    let build_s = building.elapsed().as_secs_f64();
    for (symbol, gap) in conservation_gaps(engine, &cycle.root) {
        warn(&format!(
            "por build: {}: Σequity − Σdebt + fees + insurance differs from custody's supply by {gap} units",
            symbol.as_str()
        ));
    }
    let writing = Instant::now();
    write_new(&args.out.join(ROOT_FILE), &cycle.root.to_json())?;
    write_seed(&args.out.join(SEED_FILE), engine.seq(), &seed)?;
    let proofs = if args.no_proofs { 0 } else { write_proofs(&args.out, &cycle)? };
    let from =
        state.from.as_ref().map_or("genesis".to_string(), |s| format!("snapshot {} (seq {})", s.path.display(), s.seq));
    note(&format!(
        "por build: state at seq {} from {from} + {} records in {rebuilt_s:.3} s; tree of {} leaves × {} assets \
         (height {}) built and signed in {build_s:.3} s; {proofs} proofs written in {:.3} s",
        engine.seq(),
        state.records,
        cycle.root.leaf_count,
        cycle.root.assets.len(),
        cycle.root.height,
        writing.elapsed().as_secs_f64()
    ));
    for line in totals_lines(&cycle.root) {
        note(&line);
    }
    let mut stdout = Output::create(None)?;
    stdout.write_line(&format!(
        "seq {} root_hash {} leaves {} height {}",
        cycle.root.seq,
        hex(&cycle.root.root_hash),
        cycle.root.leaf_count,
        cycle.root.height
    ))?;
    stdout.finish()
}

/// An attestation in the journal's log at the cycle's seq must name the rebuilt state.
fn check_attested(dir: &std::path::Path, engine: &Engine, digest: &[u8; 32]) -> Result<(), CliError> {
    let log = read_attestations(dir)?;
    let Some(entry) = log.at(engine.seq()) else { return Ok(()) };
    let attestation = &entry.attestation;
    if &attestation.journal_digest != digest || attestation.state_hash != engine.state_hash() {
        let detail = format!(
            "line {} attests seq {} with another journal digest or state hash than the journal rebuilds",
            entry.line,
            engine.seq()
        );
        return Err(CliError::por(&attestations_path(dir), PorError::new(Fault::StateMismatch, detail)));
    }
    note(&format!("por build: the attestation at seq {} (line {}) names the same state", engine.seq(), entry.line));
    Ok(())
}

fn write_proofs(out: &std::path::Path, cycle: &Cycle) -> Result<u64, CliError> {
    let proofs_dir = out.join(PROOFS_DIR);
    std::fs::create_dir_all(&proofs_dir).map_err(|e| CliError::io("create", &proofs_dir, e))?;
    let mut written = 0;
    for &account in cycle.tree.accounts() {
        let Some(proof) = cycle.proof(account) else { continue };
        write_new(&proof_path(out, account), &proof.to_json())?;
        written += 1;
    }
    Ok(written)
}
