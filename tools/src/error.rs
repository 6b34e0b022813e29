//! The command line's one error type, and the exit status each kind of failure maps to.
//!
//! Every message reads `<what>: <why>`, naming the file (and line, for input) at fault;
//! `main` prefixes it with `error: `.

use std::path::Path;
use std::process::ExitCode;

use verex_engine::EngineError;
use verex_journal::JournalError;

/// Exit status of a failure that is not the input's fault: I/O, an engine refusal, a journal
/// that is corrupt or fails `verify`.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status of bad input: a malformed line, a bad key or genesis file, bad arguments
/// (clap uses 2 for usage errors too).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A line of an input file is not what it must be.
    #[error("{file}:{line}: {reason}")]
    Line {
        /// Display name of the file (`<stdin>` for standard input).
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A whole file is not what it must be (a key file, a genesis file).
    #[error("{file}: {reason}")]
    File {
        /// Display name of the file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An operating-system call on a file failed.
    #[error("cannot {action} {file}: {source}")]
    Io {
        /// What was attempted (`open`, `read`, `write`, `create`).
        action: &'static str,
        /// Display name of the file.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Arguments that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// The engine refused to go on (a bug in the caller, not bad input).
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The journal could not be opened, read or appended to; a corrupt journal names the seq
    /// and the segment file.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A file kept beside a journal (the attestation log, a snapshot) that fails a check: the
    /// file is named, and its line when it has lines.
    #[error("{file}: {reason}")]
    Damaged {
        /// Display name of the file.
        file: String,
        /// What fails, with the offending values.
        reason: String,
    },
    /// The replica (attestations and snapshots) stopped.
    #[error("replica stopped after seq {seq}: {reason}")]
    Replica {
        /// The last seq it applied.
        seq: u64,
        /// Why it stopped.
        reason: String,
    },
    /// Replication through NATS JetStream failed: another writer holds the stream, a
    /// follower found a gap, a fork or a record that fails a check, or the server never
    /// acknowledged what `--replicated` needed.
    #[error("replication: {0}")]
    Replication(String),
    /// A Proof of Reserves check that fails (SPEC 10): the file at fault and the named reason
    /// (`verex_engine::por::Fault`), the same word the test vectors and an independent verifier give.
    #[error("{file}: {fault}: {detail}")]
    Por {
        /// Display name of the file.
        file: String,
        /// The named reason.
        fault: verex_engine::por::Fault,
        /// The specifics.
        detail: String,
    },
    /// A journal whose framing holds but whose content fails a check (an archive that does not
    /// validate, a bad signature, a sequence the engine refuses, a torn tail under `verify`).
    #[error("journal {dir}: seq {seq}: {reason}")]
    BadRecord {
        /// The journal directory.
        dir: String,
        /// The first seq that fails.
        seq: u64,
        /// What fails, with the offending values.
        reason: String,
    },
}

impl CliError {
    /// A Proof of Reserves fault in `file`.
    pub fn por(file: &Path, error: verex_engine::por::PorError) -> Self {
        Self::Por { file: file.display().to_string(), fault: error.fault, detail: error.detail }
    }

    /// An I/O failure on `path`.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io { action, file: path.display().to_string(), source }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Line { .. } | Self::File { .. } | Self::Usage(_) => EXIT_BAD_INPUT,
            Self::Io { .. }
            | Self::Engine(_)
            | Self::Journal(_)
            | Self::Damaged { .. }
            | Self::Replica { .. }
            | Self::Por { .. }
            | Self::BadRecord { .. }
            | Self::Replication(_) => EXIT_FAILURE,
        })
    }
}
