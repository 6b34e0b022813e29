//! `verex snapshot`: writes a snapshot of the state at the journal's end.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use verex_engine::signing::hex;
use verex_engine::snapshot::encode_snapshot;

use crate::cmd::replay::{check_tail, note_replayed, FromSnapshotArgs};
use crate::error::CliError;
use crate::io::{note, Output};
use crate::manifest::require_manifest;
use crate::rebuild::open_reader;
use crate::recover::{recover, Options};
use crate::snapshots::write_durably;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Write a snapshot of the engine's state at the end of a journal written by `verex run \
--journal`, and print `seq N state_hash HEX bytes B` on standard output.

The state is rebuilt as `verex replay` rebuilds it: from genesis by default, or from a \
snapshot with --snapshot FILE or --snapshots (see `verex replay --help`). The snapshot is the \
engine's format: an rkyv archive of a header (format version, seq, state hash, the journal's \
xxh3 rolling hash and BLAKE3 attestation digest at that seq) and the whole state, then a \
BLAKE3 checksum and a trailer. It is written to FILE.tmp, fsynced and renamed to FILE, so FILE \
is either absent or whole. Written as DIR/snapshots/<seq, 20 digits>.snap, `verex run` and \
`verex replay --snapshots` recover from it; elsewhere, `verex replay --snapshot FILE` does.

The journal is only read. A torn tail is reported and the snapshot is taken at the last whole \
record; damage is an error naming the seq and the segment file (exit status 1).";

/// Arguments of `verex snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// The snapshot file to write (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where the rebuilt state starts.
    #[command(flatten)]
    pub from: FromSnapshotArgs,
}

/// Rebuilds the state and writes the snapshot.
///
/// # Errors
/// The errors of `verex replay`, and [`CliError::Io`] when the file cannot be written.
pub fn execute(args: &SnapshotArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let reader = open_reader(dir)?;
    let manifest = require_manifest(dir)?;
    let started = Instant::now();
    let options =
        Options { source: args.from.source(), keep_base: false, extra_points: Default::default(), label: "snapshot" };
    let recovered = recover(dir, &reader, &manifest, &options, |_| Ok(()), |_, _, _, _| Ok(()))?;
    note_replayed("snapshot", &recovered, started.elapsed().as_secs_f64());
    check_tail(dir, &reader, "the snapshot is taken at the last whole record")?;
    let engine = &recovered.engine;
    let encoding = Instant::now();
    let bytes = encode_snapshot(engine, recovered.scan.last_hash(), recovered.scan.end.digest)
        .map_err(|e| CliError::Damaged { file: args.out.display().to_string(), reason: e.to_string() })?;
    let encoded = encoding.elapsed();
    write_durably(&args.out, &bytes)?;
    note(&format!(
        "snapshot: {} at seq {}: {} bytes, encoded in {:.3} s, written in {:.3} s",
        args.out.display(),
        engine.seq(),
        bytes.len(),
        encoded.as_secs_f64(),
        (encoding.elapsed() - encoded).as_secs_f64()
    ));
    let mut stdout = Output::create(None)?;
    stdout.write_line(&format!(
        "seq {} state_hash {} bytes {}",
        engine.seq(),
        hex(&engine.state_hash()),
        bytes.len()
    ))?;
    stdout.finish()
}
