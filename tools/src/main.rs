//! `verex`: the command line of the verifiable exchange engine (SPEC section 11).
//!
//! `main` only parses arguments, runs one command and turns its error into a message on
//! standard error and an exit status; each command lives in its own module under
//! [`verex_tools::cmd`].
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use verex_tools::{cmd, error, EXIT_HELP};

/// verex: a verifiable exchange engine whose whole book is one signed, replayable log.
#[derive(Debug, Parser)]
#[command(name = "verex", version, after_help = EXIT_HELP, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version land here too, with status 0.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(error::EXIT_BAD_INPUT));
        }
    };
    match cli.command.execute() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            e.exit_code()
        }
    }
}
