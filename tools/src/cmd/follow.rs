//! `verex follow`: a follower of a replicated stream (docs/replication.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use verex_engine::signing::hex;
use verex_journal::DEFAULT_SEGMENT_BYTES;

use crate::cmd::run::DurabilityArg;
use crate::error::CliError;
use crate::io::note;
use crate::replica::DEFAULT_SNAPSHOT_EVERY;
use crate::replicate::follow::{follow, FollowConfig};
use crate::replicate::{Target, DEFAULT_STREAM};
use crate::snapshots::DEFAULT_KEEP_SNAPSHOTS;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Follow a primary's journal through NATS JetStream (`verex run --publish`): consume the stream \
into a journal of this machine and an engine, checking everything, so that this directory is \
a normal verex journal that every read command works on (replay, verify, inspect, snapshot, \
attestations) and that `verex run` can continue (promotion).

For each log message, in stream order: its first seq must be the next one (a message the \
follower already holds must equal its own records byte for byte, else a second writer forked \
the stream; a message beyond the next seq is a gap); its previous digest must be the \
follower's BLAKE3 attestation-chain digest; every record must validate as an archived \
transaction with the expected seq and carry a signature that passes the one rule; the chain \
folded over the records must end at the message's digest. Then the records are appended to \
DIR's journal and applied to the engine, which must accept each; the journal commits \
(--durability) once per group of messages that arrived together (at most 8,192 records), before \
any attestation or snapshot covering them is written, and before the lag is measured. The \
follower asks the server for at most 16 MiB of messages at a time, so a follower far behind \
catches up without being dropped as a slow consumer. \
The xxh3 chain of a journal covers its segment indexes, so it is a property of one copy of the \
journal; the follower's own xxh3 chain is checked by its own reader and recovery.

Attestations: at every seq the primary attests the follower hashes its state; each attestation \
from the stream must be signed by the genesis attest key, link to the one before it and name \
the follower's own digest and state hash at its seq; it is then appended to \
DIR/attestations.jsonl. Snapshots: DIR/snapshots, every --snapshot-every seqs.

Any failed check stops the follower (exit status 1) without applying past it. A lost \
connection is retried (at most a second apart). On restart the follower rebuilds its engine \
from DIR (newest valid snapshot and the records after it) and resumes at the stream message \
holding its next seq (or at its last checked attestation when the stream holds newer ones, \
re-applying the records after it from the stream and comparing them with its journal).

Stops when --until SEQ is applied (and the attestations up to it are checked, or none came \
for 2 s), or after --idle-exit SECONDS without a message; otherwise runs until killed (it is \
crash-safe: kill -9 and restart). Prints `seq N state_hash H` on standard output and the \
counts and the replication lag (primary's publish to follower's apply, per record) on standard \
error.";

/// Arguments of `verex follow`.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// The NATS servers holding the stream (nats://HOST:PORT, several separated by commas).
    #[arg(long, value_name = "URLS")]
    pub from: String,
    /// The follower's journal directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// The JetStream stream the primary publishes to.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_STREAM)]
    pub stream: String,
    /// When the follower's journal is durable (as for `verex run`).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Batch)]
    pub durability: DurabilityArg,
    /// Size of new journal segment files in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SEGMENT_BYTES)]
    pub segment_bytes: u64,
    /// Write a snapshot into DIR/snapshots past every multiple of M seqs (0: none).
    #[arg(long, value_name = "M", default_value_t = DEFAULT_SNAPSHOT_EVERY)]
    pub snapshot_every: u64,
    /// Keep the newest K snapshots.
    #[arg(long, value_name = "K", default_value_t = DEFAULT_KEEP_SNAPSHOTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_snapshots: u64,
    /// Stop once this seq is applied.
    #[arg(long, value_name = "SEQ")]
    pub until: Option<u64>,
    /// Stop after this many seconds without a message.
    #[arg(long, value_name = "SECONDS")]
    pub idle_exit: Option<u64>,
}

/// Follows the stream; prints the final seq and state hash.
///
/// # Errors
/// [`CliError::Replication`] for a failed check, journal and I/O errors, bad arguments.
pub fn execute(args: &FollowArgs) -> Result<(), CliError> {
    let target = Target::parse(&args.from, &args.stream, 1).map_err(|e| CliError::Usage(format!("--from: {e}")))?;
    let config = FollowConfig {
        target,
        dir: args.journal.clone(),
        durability: args.durability.into(),
        segment_bytes: args.segment_bytes,
        snapshot_every: args.snapshot_every,
        keep_snapshots: args.keep_snapshots,
        until_seq: args.until,
        idle_exit: args.idle_exit.map(Duration::from_secs),
    };
    let report = follow(&config)?;
    let lag = &report.lag_us;
    note(&format!(
        "follow: seq {} (resumed at {}): {} messages, {} records appended, {} compared, {} attestations checked, {} \
         snapshots, {} reconnections; lag (publish to applied) p50 {} µs, p99 {} µs, max {} µs over {} records",
        report.seq,
        report.resumed_at,
        report.messages,
        report.records,
        report.records_compared,
        report.attestations_checked,
        report.snapshots,
        report.failures,
        lag.value_at_quantile(0.5),
        lag.value_at_quantile(0.99),
        lag.max(),
        lag.len()
    ));
    println!("seq {} state_hash {}", report.seq, hex(&report.state_hash));
    Ok(())
}
