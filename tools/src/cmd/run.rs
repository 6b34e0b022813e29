//! `verex run`: JSON-lines transactions through the engine, events and the final state out.
//!
//! Today this drives [`TextRunner`] (parse, sign or verify, stamp, apply) directly; the journal
//! and ring pipeline of SPEC section 2 replace it once the journal crate lands.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use verex_engine::sequencer::Clock;
use verex_engine::signing::hex;
use verex_engine::text::runner::{LineOutcome, RunError, Signing, TextRunner};
use verex_engine::text::state_json::render_state;
use verex_engine::text::tx_json::DevSigner;
use verex_engine::{Engine, Genesis, Limits};

use crate::error::CliError;
use crate::io::{note, refuse_same_file, warn, LineReader, Output, Progress};
use crate::keys::read_genesis_file;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Run JSON-lines transactions (SPEC section 13) through the engine, one transaction a line, and \
write one event a line plus the final state dump. Blank lines and lines starting with # are \
skipped; every other line is one transaction and gets the next seq.

With --dev, lines need no signature: operator ops are signed with the development operator \
keys and user ops with the development key of their `account` (never in production). Without \
--dev, every line must carry `signer`, `nonce` and `signature` (see `verex sign`); a line whose \
signature does not verify is refused before sequencing and yields \
{\"event\":\"rejected\",\"reason\":\"bad_signature\"} with no seq.

A transaction that breaks a rule is not an error: it is sequenced and yields a `rejected` event \
with a reason. A line that is not a transaction (bad JSON, unknown op or field, a JSON number \
where a decimal string is required) stops the run: the events of the lines before it are \
flushed to --events and the state after them is written to --state, so the outputs stay \
consistent with each other, then the error names the file, line and reason and the exit \
status is 2.";

/// Which engine limits to allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LimitsArg {
    /// A million accounts and orders (the tables are pre-sized at start-up).
    Production,
    /// About a thousand accounts and four thousand orders: quick to allocate, for tests.
    Small,
}

/// Where time stamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockArg {
    /// seq n is stamped 1_700_000_000_000_000_000 + n × 1_000_000 ns: reproducible runs.
    Deterministic,
    /// The system clock, as a production ingress stamps.
    Wall,
}

/// Arguments of `verex run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Sign lines with the deterministic development keys (never in production).
    #[arg(long)]
    pub dev: bool,
    /// JSON-lines transactions to run (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Write events here, one JSON object a line (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Write the final state dump here (default: not written).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Journal directory. Accepted but not used yet: journal support arrives with the journal issue.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Operator keys, as {"admin":"<hex>","custody":"<hex>","oracle":"<hex>","attest":"<hex>"}
    /// (default without --dev: the development operator keys).
    #[arg(long, value_name = "FILE", conflicts_with = "dev")]
    pub genesis: Option<PathBuf>,
    /// Engine capacity to pre-allocate.
    #[arg(long, value_enum, default_value_t = LimitsArg::Production)]
    pub limits: LimitsArg,
    /// Time stamp source (default: deterministic with --dev, wall otherwise).
    #[arg(long, value_enum)]
    pub clock: Option<ClockArg>,
}

/// What a run did.
#[derive(Debug, Default)]
struct Tally {
    /// Lines sequenced and applied (accepted or rejected by the engine).
    applied: u64,
    /// Lines refused before sequencing (bad signature).
    refused: u64,
}

/// Runs the input and writes the outputs.
///
/// # Errors
/// [`CliError::Line`] for a malformed line (after writing what came before it), others for
/// I/O failures and bad genesis files.
pub fn execute(args: &RunArgs) -> Result<(), CliError> {
    if args.journal.is_some() {
        warn("--journal is ignored for now: journal support arrives with the journal issue");
    }
    // Cheap checks first: a bad genesis or path fails before the engine is allocated.
    // (--genesis and --dev conflict, so the dev genesis is the one --dev signs for.)
    let genesis = match &args.genesis {
        Some(path) => read_genesis_file(path)?,
        None => Genesis::dev(),
    };
    refuse_same_file(Some(&args.input), args.events.as_deref(), "--input and --events")?;
    refuse_same_file(Some(&args.input), args.state.as_deref(), "--input and --state")?;
    let mut input = LineReader::open(Some(&args.input))?;
    let mut events = Output::create(args.events.as_deref())?;
    let state = args.state.as_deref().map(|path| Output::create(Some(path))).transpose()?;
    let mut runner = build_runner(args, genesis)?;
    let mut tally = Tally::default();
    let outcome = run_lines(&mut runner, &mut input, &mut events, &mut tally);
    // Whatever stopped the run, what was applied is written out, in the same state.
    let flushed = events.finish();
    let state_written = state.map_or(Ok(()), |out| write_state(out, &runner.engine));
    outcome.and(flushed).and(state_written)?;
    note(&format!(
        "run: {} txs applied, {} refused (bad signature); seq {}, state hash {}",
        tally.applied,
        tally.refused,
        runner.engine.seq(),
        hex(&runner.engine.state_hash())
    ));
    Ok(())
}

fn build_runner(args: &RunArgs, genesis: Genesis) -> Result<TextRunner, CliError> {
    let limits = match args.limits {
        LimitsArg::Production => Limits::production(),
        LimitsArg::Small => Limits::small(),
    };
    let clock = match args.clock.unwrap_or(if args.dev { ClockArg::Deterministic } else { ClockArg::Wall }) {
        ClockArg::Deterministic => Clock::Deterministic,
        ClockArg::Wall => Clock::Wall,
    };
    let signing = if args.dev { Signing::Dev(DevSigner::new(0)) } else { Signing::Signed };
    Ok(TextRunner::new(Engine::new(genesis, limits)?, signing, clock)?)
}

fn run_lines(
    runner: &mut TextRunner,
    input: &mut LineReader,
    events: &mut Output,
    tally: &mut Tally,
) -> Result<(), CliError> {
    let mut progress = Progress::new("run");
    while let Some(line) = input.next_line()? {
        let number = line.number;
        match runner.run_line(line.text) {
            Ok(LineOutcome::Applied { events: rendered, .. }) => {
                tally.applied += 1;
                rendered.iter().try_for_each(|event| events.write_line(event))?;
            }
            Ok(LineOutcome::Refused(rendered)) => {
                tally.refused += 1;
                events.write_line(&rendered)?;
            }
            Err(RunError::Text(e)) => {
                let stopped = format!("{e} (the run stopped here, after seq {})", runner.engine.seq());
                return Err(input.line_error(number, stopped));
            }
            Err(RunError::Engine(e)) => return Err(CliError::Engine(e)),
        }
        progress.update(tally.applied + tally.refused, input.progress());
    }
    Ok(())
}

fn write_state(mut out: Output, engine: &Engine) -> Result<(), CliError> {
    out.write_line(&render_state(engine))?;
    out.finish()
}
