//! `verex attestations`: the attestation log of a journal, each signature checked.

use std::path::PathBuf;

use clap::Args;

use crate::attestations::{attestations_path, read_attestations};
use crate::error::CliError;
use crate::io::{note, warn, Output};
use crate::manifest::require_manifest;
use crate::rebuild::bad_record;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Print the attestations of a journal written by `verex run --journal` as JSON lines on standard \
output, one a line, oldest first:
{\"seq\":N,\"journal_digest\":\"<hex>\",\"state_hash\":\"<hex>\",\"signer\":\"<hex>\",\"signature\":\"<hex>\"}.

An attestation signs, with the genesis attest key (DIR/verex.json), the 88 bytes \
\"verex-attest-v1\\0\" ‖ seq (u64 little-endian) ‖ journal_digest ‖ state_hash, where \
journal_digest is d[seq] of the BLAKE3 chain d[0] = 32 zero bytes, d[n] = \
BLAKE3(\"verex-attest-chain-v1\" ‖ d[n-1] ‖ record[n]) over the journal's record payloads, and \
state_hash is the engine's state hash after seq. The log DIR/attestations.jsonl holds exactly \
these lines: it is the export, and this command checks each line's signature before printing \
it (a line that fails is an error naming its seq, exit status 1). That the digests and state \
hashes are the journal's is what `verex verify` checks, by recomputing the chain and \
replaying.";

/// Arguments of `verex attestations`.
#[derive(Debug, Args)]
pub struct AttestationsArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
}

/// Prints the log.
///
/// # Errors
/// [`CliError::Damaged`] for a log that does not parse, [`CliError::BadRecord`] naming the seq
/// of an attestation whose signature fails, [`CliError::File`] for a missing manifest.
pub fn execute(args: &AttestationsArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let manifest = require_manifest(dir)?;
    let log = read_attestations(dir)?;
    let mut out = Output::create(None)?;
    for (index, entry) in log.entries.iter().enumerate() {
        let attestation = &entry.attestation;
        let problem = attestation.verify(&manifest.genesis.attest).err().map(|e| e.to_string());
        if let Some(problem) = problem.or_else(|| log.link_problem(index)) {
            let at = format!("{} line {}", attestations_path(dir).display(), entry.line);
            return Err(bad_record(dir, attestation.seq, format!("{at}: {problem}")));
        }
        out.write_line(&attestation.to_json())?;
    }
    out.finish()?;
    if let Some(torn) = &log.torn {
        warn(&format!(
            "{}: line {} is incomplete (a torn append; `verex run` cuts it)",
            attestations_path(dir).display(),
            torn.line
        ));
    }
    note(&format!(
        "attestations: {} signed by the genesis attest key (last at seq {})",
        log.entries.len(),
        log.last_seq()
    ));
    Ok(())
}
