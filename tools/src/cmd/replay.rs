//! `verex replay`: rebuilds the state from a journal, reading each archived record in place,
//! from genesis or from a snapshot.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use verex_engine::signing::hex;
use verex_engine::text::event_json::render_event;
use verex_engine::text::state_json::render_state;
use verex_journal::JournalReader;

use crate::error::CliError;
use crate::io::{note, warn, Output};
use crate::manifest::require_manifest;
use crate::rebuild::open_reader;
use crate::recover::{recover, Options, Recovered, Source};
use crate::tail::describe;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Rebuild the engine's state from a journal written by `verex run --journal`, and print \
`seq N state_hash HEX` on standard output (N is the last seq replayed). Where the state came \
from, the time taken and the records per second go to standard error.

By default every record is replayed from genesis: replay is the truth, and this path trusts \
no file but the journal and its manifest. With --snapshot FILE, the state starts from that \
snapshot and only the records after its seq are applied; the snapshot must decode (checksum, \
archive validation, rebuilt state hash) and its header's journal hash and attestation digest \
must equal the journal's at its seq, else the replay fails naming why (exit status 1). With \
--snapshots, the newest snapshot in DIR/snapshots that passes those checks is used, exactly as \
`verex run` recovers: each one that fails is named on standard error and skipped for an older \
one, or for a full replay. Either way the result equals a full replay. --events then holds \
the events of the records applied after the snapshot only.

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
    /// Where the rebuilt state starts.
    #[command(flatten)]
    pub from: FromSnapshotArgs,
}

/// Where a rebuilt state starts (shared by `replay` and `snapshot`).
#[derive(Debug, Args)]
pub struct FromSnapshotArgs {
    /// Start from this snapshot file; it must fit the journal (see --help).
    #[arg(long, value_name = "FILE", conflicts_with = "snapshots")]
    pub snapshot: Option<PathBuf>,
    /// Start from the newest snapshot in DIR/snapshots that fits the journal, as `run` does.
    #[arg(long)]
    pub snapshots: bool,
}

impl FromSnapshotArgs {
    /// The recovery source these flags name.
    pub fn source(&self) -> Source {
        match (&self.snapshot, self.snapshots) {
            (Some(path), _) => Source::File(path.clone()),
            (None, true) => Source::Newest,
            (None, false) => Source::Genesis,
        }
    }
}

/// Replays the journal and writes the outputs.
///
/// # Errors
/// [`CliError::Journal`] / [`CliError::BadRecord`] for a corrupt journal, [`CliError::Damaged`]
/// for a `--snapshot` that does not fit it, [`CliError::File`] for a missing directory or
/// manifest, [`CliError::Io`] for the outputs.
pub fn execute(args: &ReplayArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let reader = open_reader(dir)?;
    let manifest = require_manifest(dir)?;
    let mut events = args.events.as_deref().map(|path| Output::create(Some(path))).transpose()?;
    let state = args.state.as_deref().map(Output::replacing).transpose()?;
    let started = Instant::now();
    let options =
        Options { source: args.from.source(), keep_base: false, extra_points: Default::default(), label: "replay" };
    let recovered = recover(
        dir,
        &reader,
        &manifest,
        &options,
        |_| Ok(()),
        |engine, record, _, buf| {
            let Some(out) = events.as_mut() else { return Ok(()) };
            buf.events().iter().try_for_each(|event| out.write_line(&render_event(record.seq, event, engine.catalog())))
        },
    )?;
    let elapsed = started.elapsed();
    check_tail(dir, &reader, "replayed the records before it")?;
    note_replayed("replay", &recovered, elapsed.as_secs_f64());
    if let Some(out) = events {
        out.finish()?;
    }
    let engine = &recovered.engine;
    if let Some(mut out) = state {
        out.write_line(&render_state(engine))?;
        out.finish()?;
    }
    let mut stdout = Output::create(None)?;
    stdout.write_line(&format!("seq {} state_hash {}", engine.seq(), hex(&engine.state_hash())))?;
    stdout.finish()
}

/// After reading to the end: warns about a torn tail (`what` says what was done with the
/// records before it), fails on damage.
///
/// # Errors
/// [`CliError::Journal`] for damage after the last record.
pub fn check_tail(dir: &Path, reader: &JournalReader, what: &str) -> Result<(), CliError> {
    if let Some(torn) = reader.torn_tail()? {
        warn(&format!("journal {}: {}; {what}", dir.display(), describe(&torn)));
    }
    Ok(())
}

/// One line on standard error: where the state came from and how fast the records went.
pub fn note_replayed(label: &str, recovered: &Recovered, seconds: f64) {
    let records = recovered.suffix.records;
    let rate = if seconds > 0.0 { records as f64 / seconds } else { 0.0 };
    let from = match &recovered.from {
        Some(used) => format!("from snapshot {} (seq {}), then ", used.path.display(), used.seq),
        None => String::new(),
    };
    note(&format!("{label}: {from}{records} records in {seconds:.3} s ({rate:.0} records/s)"));
}
