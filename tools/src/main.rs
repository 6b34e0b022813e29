//! `verex`: the command line of the verifiable exchange engine (SPEC section 11).
//!
//! `main` only parses arguments, runs one command and turns its error into a message on
//! standard error and an exit status; each command lives in its own module under [`cmd`].
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod cmd;
mod error;
mod io;
mod keys;
mod manifest;
mod rebuild;
mod tail;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Exit statuses, shown at the end of every `--help`.
const EXIT_HELP: &str = "\
Exit status: 0 on success; 1 when an I/O operation or the engine fails, or a journal is \
corrupt or fails verification; 2 for bad input (a malformed line, a bad key, genesis or \
manifest file) or bad arguments.";

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
