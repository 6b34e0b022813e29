//! `verex replay`: rebuilds the state from a journal, reading each archived record in place.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use verex_engine::signing::hex;
use verex_engine::text::event_json::render_event;
use verex_engine::text::state_json::render_state;

use crate::error::CliError;
use crate::io::{note, warn, Output};
use crate::manifest::require_manifest;
use crate::rebuild::{open_reader, replay_journal};
use crate::tail::{diagnose, Tail};

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Rebuild the engine's state from a journal written by `verex run --journal`, and print \
`seq N state_hash HEX` on standard output (N is the last seq replayed). The time taken and \
the records per second go to standard error.

Each record is read in place from the segment mapping and validated as an archive (no \
deserialisation, no copy), then applied; the frames' xxh3 chain is checked as they are read. \
The engine is built from the genesis keys and limits recorded in DIR/verex.json. Signatures \
are not checked here (see `verex verify`).

The journal is only read, never modified. A torn tail (a record cut short by a crash) ends the \
replay with a warning: the records before it are replayed, and the next `verex run` cuts it. \
Damage anywhere else is an error naming the seq and the segment file (exit status 1).";

/// Arguments of `verex replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// Write the state dump here (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Write the re-derived events here, one JSON object a line (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// Replays the journal and writes the outputs.
///
/// # Errors
/// [`CliError::Journal`] / [`CliError::BadRecord`] for a corrupt journal, [`CliError::File`]
/// for a missing directory or manifest, [`CliError::Io`] for the outputs.
pub fn execute(args: &ReplayArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let reader = open_reader(dir)?;
    let manifest = require_manifest(dir)?;
    let mut events = args.events.as_deref().map(|path| Output::create(Some(path))).transpose()?;
    let state = args.state.as_deref().map(|path| Output::create(Some(path))).transpose()?;
    let mut engine = manifest.engine()?;
    let started = Instant::now();
    let replayed = replay_journal(dir, &reader, &mut engine, false, "replay", |engine, archived, buf| {
        let Some(out) = events.as_mut() else { return Ok(()) };
        let seq = archived.seq.to_native();
        buf.events().iter().try_for_each(|event| out.write_line(&render_event(seq, event, engine.catalog())))
    })?;
    let elapsed = started.elapsed();
    match replayed.end.as_ref().map(diagnose).transpose()? {
        None | Some(Tail::Clean) => {}
        Some(torn @ Tail::Torn { .. }) => {
            warn(&format!("journal {}: {}; replayed the records before it", dir.display(), torn.describe()))
        }
        Some(Tail::Corrupt { seq, file, reason }) => {
            return Err(verex_journal::JournalError::Corrupt { seq, file, reason }.into());
        }
    }
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 { replayed.records as f64 / seconds } else { 0.0 };
    note(&format!("replay: {} records in {:.3} s ({:.0} records/s)", replayed.records, seconds, rate));
    if let Some(out) = events {
        out.finish()?;
    }
    if let Some(mut out) = state {
        out.write_line(&render_state(&engine))?;
        out.finish()?;
    }
    let mut stdout = Output::create(None)?;
    stdout.write_line(&format!("seq {} state_hash {}", engine.seq(), hex(&engine.state_hash())))?;
    stdout.finish()
}
