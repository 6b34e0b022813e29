//! The `verex` command line as a library: the binary (`src/main.rs`) only parses arguments and
//! runs one [`cmd::Command`]; the examples and tests reach the same modules (the replica, the
//! snapshot and attestation stores, recovery) without going through a process.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod attestations;
pub mod cmd;
pub mod error;
pub mod gen;
pub mod io;
pub mod keys;
pub mod manifest;
pub mod por_files;
pub mod rebuild;
pub mod recover;
pub mod replica;
pub mod replicate;
pub mod sim;
pub mod snapshots;
pub mod tail;

/// Exit statuses, shown at the end of every `--help`.
pub const EXIT_HELP: &str = "\
Exit status: 0 on success; 1 when an I/O operation or the engine fails, or a journal is \
corrupt or fails verification; 2 for bad input (a malformed line, a bad key, genesis or \
manifest file) or bad arguments.";
