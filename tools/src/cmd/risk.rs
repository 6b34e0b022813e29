//! `verex risk`: the stress report (SPEC 10): price shocks on a copy of the state at a seq.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use verex_engine::por::stress::stress;

use crate::cmd::replay::FromSnapshotArgs;
use crate::error::CliError;
use crate::io::{note, Output};
use crate::manifest::require_manifest;
use crate::rebuild::open_reader;
use crate::recover::recover_at;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
The stress report of SPEC 10: does the collateral hold, and can it be liquidated, in a \
worst-case move? The state at seq --at (default: the journal's last; a PoR cycle's seq to go \
with it) is rebuilt as `verex replay` rebuilds it, then each shock runs on a copy of it, never \
journaled: every perp's mark and the index price of every asset that is the base of a market \
move by the shock's percentage (quote and settle assets stay), in `mark` transactions signed by \
a throw-away oracle key the copy's genesis accepts, and the engine settles and liquidates as it \
would live.

For each shock: the accounts liquidated and bankrupt, the insurance fund's draw, the loss \
socialized per asset (auto-deleveraging against the mark), the bad debt left, and per market the \
quantity liquidated against the book versus by the fund or ADL beside the books' depth before the \
shock (\"books absorb the liquidations\": nothing went to the fund or ADL). Headlines go to \
standard error, the report (JSON, verex-risk-v1) to --out or standard output.";

/// Arguments of `verex risk`.
#[derive(Debug, Args)]
pub struct RiskArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// The seq whose state is shocked (default: the journal's last).
    #[arg(long, value_name = "SEQ")]
    pub at: Option<u64>,
    /// The moves, in percent, comma separated.
    #[arg(long, value_name = "PERCENTS", value_delimiter = ',', allow_hyphen_values = true, default_values_t = [-10, -30, -50])]
    pub shocks: Vec<i64>,
    /// Write the report here (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Where the rebuilt state starts.
    #[command(flatten)]
    pub from: FromSnapshotArgs,
}

/// Rebuilds the state, shocks copies, writes the report.
///
/// # Errors
/// The errors of `verex replay`; [`CliError::Usage`] for a shock out of range.
pub fn execute(args: &RiskArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let manifest = require_manifest(dir)?;
    let reader = open_reader(dir)?;
    let started = Instant::now();
    let state = recover_at(dir, &reader, &manifest, &args.from.source(), args.at, "risk")?;
    let rebuilt = started.elapsed().as_secs_f64();
    let shocking = Instant::now();
    let report = stress(&state.engine, &args.shocks).map_err(|e| CliError::Usage(format!("--shocks: {e}")))?;
    note(&format!(
        "risk: state at seq {} rebuilt in {rebuilt:.3} s; {} shocks on copies in {:.3} s",
        state.engine.seq(),
        report.shocks.len(),
        shocking.elapsed().as_secs_f64()
    ));
    for shock in &report.shocks {
        note(&format!("   {}", shock.headline(&state.engine)));
    }
    let mut out = Output::create(args.out.as_deref())?;
    out.write_line(&serde_json::to_string_pretty(&report.to_json(&state.engine)).unwrap_or_default())?;
    out.finish()
}
