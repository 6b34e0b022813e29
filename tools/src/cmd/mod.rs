//! One module per subcommand; each holds its clap arguments and its `execute`.

pub mod keygen;
pub mod run;
pub mod sign;

use clap::Subcommand;

use crate::error::CliError;
use crate::EXIT_HELP;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run JSON-lines transactions through the engine; write events and the final state.
    #[command(after_help = EXIT_HELP, long_about = run::LONG_ABOUT)]
    Run(run::RunArgs),
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
            Self::Run(args) => run::execute(&args),
            Self::Keygen(args) => keygen::execute(&args),
            Self::Sign(args) => sign::execute(&args),
        }
    }
}
