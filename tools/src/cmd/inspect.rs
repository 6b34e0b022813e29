//! `verex inspect`: journal records as JSON lines.

use std::path::{Path, PathBuf};

use clap::Args;
use verex_engine::record::{access_record, to_native};
use verex_engine::text::tx_json::render_tx;
use verex_journal::{JournalError, JournalReader};

use crate::error::CliError;
use crate::io::{warn, Output};
use crate::rebuild::{bad_record, open_reader};
use crate::tail::describe;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Print journal records as JSON lines on standard output, one transaction a line, in the form \
`verex run` reads (SPEC section 13) plus the record's `seq`: \
{\"seq\":N,\"op\":..,..,\"nonce\":..,\"ts\":..,\"signer\":\"<hex>\",\"signature\":\"<hex>\"}. \
Without `seq`, a line runs as is through `verex run` without --dev: the signature is the one \
journaled, over the same bytes, and `ts` is the stamp the sequencer gave.

Each record's frame is verified (xxh3 chain) and its payload validated as an archive before it \
is printed. The journal is only read, never modified; a torn tail is reported on standard \
error, damage is an error naming the seq and the segment file (exit status 1).";

/// Arguments of `verex inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// First seq to print (default: the journal's first).
    #[arg(long, value_name = "SEQ")]
    pub from: Option<u64>,
    /// Most records to print (default: all).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Prints the records.
///
/// # Errors
/// [`CliError::Usage`] for a `--from` outside the journal, [`CliError::Journal`] /
/// [`CliError::BadRecord`] for damage, [`CliError::Io`] for the output.
pub fn execute(args: &InspectArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let reader = open_reader(dir)?;
    let from = args.from.or(reader.first_seq()).unwrap_or(1);
    let records = reader.iter_from(from).map_err(|e| match e {
        JournalError::SeqNotFound { .. } => CliError::Usage(format!("--from: {e}")),
        other => other.into(),
    })?;
    let count = args.count.unwrap_or(u64::MAX);
    let mut out = Output::create(None)?;
    let mut printed = 0u64;
    for item in records {
        if printed == count {
            break;
        }
        let record = item?;
        let seq = record.seq;
        let archived = access_record(record.payload)
            .map_err(|e| bad_record(dir, seq, format!("the payload is not a valid record archive: {e}")))?;
        let stx = to_native(archived).map_err(|e| bad_record(dir, seq, e.to_string()))?;
        if stx.seq != seq {
            return Err(bad_record(dir, seq, format!("the frame says seq {seq}, its record says seq {}", stx.seq)));
        }
        out.write_line(&render_tx(&stx.signed, Some(seq), Some(stx.ts)))?;
        printed += 1;
    }
    out.finish()?;
    if printed < count {
        report_tail(dir, &reader)?;
    }
    Ok(())
}

/// After printing to the end: warns about a torn tail, fails on damage.
fn report_tail(dir: &Path, reader: &JournalReader) -> Result<(), CliError> {
    if let Some(torn) = reader.torn_tail()? {
        warn(&format!("journal {}: {}", dir.display(), describe(&torn)));
    }
    Ok(())
}
