//! `verex verify`: audits a journal end to end and names the first seq that fails.

use std::path::PathBuf;

use clap::Args;
use verex_engine::signing::hex;

use crate::error::CliError;
use crate::io::note;
use crate::manifest::require_manifest;
use crate::rebuild::{bad_record, open_reader, replay_journal};
use crate::tail::{diagnose, Tail};

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Audit a journal written by `verex run --journal`, reading it only (nothing is modified), and \
name the first seq that fails. Checks, in order:

  framing and the xxh3 hash chain (segment headers, every frame, the chain across segments);
  every record validates as an archived transaction whose seq is its frame's, and seqs run \
gap-free from 1;
  every ed25519 signature verifies over the record's own bytes;
  the engine, built from the genesis keys and limits in DIR/verex.json, accepts the whole \
sequence (rule violations are `rejected` events, which are fine; a sequence the engine refuses \
is not);
  the bytes after the last record are zero.

A torn tail (the last record cut short by a crash) fails verification too: it is reported with \
its seq and file, the records before it having passed. `verex run` on the journal would cut it \
and continue; verify, an audit tool, does not accept a journal that needs repair.

On success prints a summary (records, segments, last seq, last chain hash, state hash) and \
exits 0. On failure the error names the seq, the file when known, and the reason; exit \
status 1. (Attestations arrive with a later issue.)";

/// Arguments of `verex verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
}

/// Verifies the journal.
///
/// # Errors
/// [`CliError::Journal`] for framing and chain failures, [`CliError::BadRecord`] for a record
/// that fails a check or a torn tail, [`CliError::File`] for a missing directory or manifest.
pub fn execute(args: &VerifyArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let reader = open_reader(dir)?;
    let manifest = require_manifest(dir)?;
    let mut engine = manifest.engine()?;
    let replayed = replay_journal(dir, &reader, &mut engine, true, "verify", |_, _, _| Ok(()))?;
    match replayed.end.as_ref().map(diagnose).transpose()? {
        None | Some(Tail::Clean) => {}
        Some(torn @ Tail::Torn { seq, .. }) => {
            return Err(bad_record(
                dir,
                seq,
                format!("{} (the {} records before it verify)", torn.describe(), replayed.records),
            ));
        }
        Some(Tail::Corrupt { seq, file, reason }) => {
            return Err(verex_journal::JournalError::Corrupt { seq, file, reason }.into());
        }
    }
    note(&format!(
        "verify: journal {} OK: {} records (seq 1 to {}) in {} segments; chain hash {:#018x}; every \
         signature verifies; the engine accepts the sequence; state hash {}",
        dir.display(),
        replayed.records,
        engine.seq(),
        reader.segment_count(),
        replayed.last_hash,
        hex(&engine.state_hash())
    ));
    Ok(())
}
