//! One module per subcommand; each holds its clap arguments and its `execute`.

pub mod attestations;
pub mod demo;
pub mod demo_por;
pub mod follow;
pub mod gen;
pub mod inspect;
pub mod keygen;
pub mod md;
pub mod por;
pub mod replay;
pub mod risk;
pub mod run;
pub mod sign;
pub mod snapshot;
pub mod verify;

use clap::Subcommand;

use crate::error::CliError;
use crate::EXIT_HELP;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job: generate a signed workload, run it through the pipeline into a journal,
    /// report throughput and latency, replay and check the state hash.
    #[command(after_help = EXIT_HELP, long_about = demo::LONG_ABOUT)]
    Demo(demo::DemoArgs),
    /// Run JSON-lines transactions through the engine; write events and the final state.
    #[command(after_help = EXIT_HELP, long_about = run::LONG_ABOUT)]
    Run(run::RunArgs),
    /// Follow a primary through NATS JetStream into a journal and engine of this machine.
    #[command(after_help = EXIT_HELP, long_about = follow::LONG_ABOUT)]
    Follow(follow::FollowArgs),
    /// Rebuild the state from a journal; print its last seq and state hash.
    #[command(after_help = EXIT_HELP, long_about = replay::LONG_ABOUT)]
    Replay(replay::ReplayArgs),
    /// Audit a journal: framing, hash chains, signatures, the engine's acceptance, attestations.
    #[command(after_help = EXIT_HELP, long_about = verify::LONG_ABOUT)]
    Verify(verify::VerifyArgs),
    /// Write a snapshot of the state at the journal's end.
    #[command(after_help = EXIT_HELP, long_about = snapshot::LONG_ABOUT)]
    Snapshot(snapshot::SnapshotArgs),
    /// Print a journal's signed attestations as JSON lines (the export).
    #[command(after_help = EXIT_HELP, long_about = attestations::LONG_ABOUT)]
    Attestations(attestations::AttestationsArgs),
    /// Print journal records as JSON lines.
    #[command(after_help = EXIT_HELP, long_about = inspect::LONG_ABOUT)]
    Inspect(inspect::InspectArgs),
    /// Market data from a journal's events: top of book, depth, the trade tape (--follow).
    #[command(after_help = EXIT_HELP, long_about = md::LONG_ABOUT)]
    Md(md::MdArgs),
    /// Generate a deterministic, realistic workload of signed JSON-lines transactions.
    #[command(after_help = EXIT_HELP, long_about = gen::LONG_ABOUT)]
    Gen(gen::GenArgs),
    /// Proof of Reserves: build a cycle, verify a proof, audit by replay, reserves, solvency, publish.
    #[command(after_help = EXIT_HELP)]
    Por(por::PorArgs),
    /// The stress report: price shocks on a copy of the state at a seq.
    #[command(after_help = EXIT_HELP, long_about = risk::LONG_ABOUT)]
    Risk(risk::RiskArgs),
    /// Generate a new ed25519 key from the operating system's random number generator.
    #[command(after_help = EXIT_HELP, long_about = keygen::LONG_ABOUT)]
    Keygen(keygen::KeygenArgs),
    /// Sign unsigned JSON-lines transactions with one key, for a non-dev `verex run`.
    #[command(after_help = EXIT_HELP, long_about = sign::LONG_ABOUT)]
    Sign(sign::SignArgs),
}

impl Command {
    /// Runs the command.
    ///
    /// # Errors
    /// [`CliError`] describing the first failure.
    pub fn execute(self) -> Result<(), CliError> {
        match self {
            Self::Demo(args) => demo::execute(&args),
            Self::Run(args) => run::execute(&args),
            Self::Follow(args) => follow::execute(&args),
            Self::Replay(args) => replay::execute(&args),
            Self::Verify(args) => verify::execute(&args),
            Self::Snapshot(args) => snapshot::execute(&args),
            Self::Attestations(args) => attestations::execute(&args),
            Self::Inspect(args) => inspect::execute(&args),
            Self::Md(args) => md::execute(&args),
            Self::Gen(args) => gen::execute(&args),
            Self::Por(args) => args.execute(),
            Self::Risk(args) => risk::execute(&args),
            Self::Keygen(args) => keygen::execute(&args),
            Self::Sign(args) => sign::execute(&args),
        }
    }
}
