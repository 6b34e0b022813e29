//! Durable storage for an embedding exchange (SPEC 9 and 14): the journal directory's
//! manifest, the journal as the pipeline's record sink, snapshot files, and recovery of the
//! state from the newest valid snapshot plus the journal's suffix.
//!
//! A journal directory written through this module is the one `verex run` writes, so
//! `verex replay`, `verex verify` and `verex md` read it:
//!
//! ```text
//! DIR/verex.json                 the manifest: genesis keys and limits (store::manifest)
//! DIR/<segments>                 the journal (verex-journal)
//! DIR/snapshots/<seq:020>.snap   snapshots (store::snapshots)
//! ```
//!
//! **Architecture Invariant: only this module of the engine crate touches files.** The state
//! machine and the runtime's engine stage do no I/O; the journal crate still knows nothing of
//! transactions (this module is the one place that puts the two together, off the hot path).

pub mod manifest;
pub mod recover;
pub mod sink;
pub mod snapshots;

use std::path::{Path, PathBuf};

pub use manifest::{read_manifest, require_manifest, write_manifest, LimitsPreset, Manifest};
pub use recover::{recover, Recovered, RejectedSnapshot};
pub use sink::{create_journal, JournalSink};
pub use snapshots::{list_snapshots, snapshot_path, write_snapshot};

/// What went wrong reading or writing a journal directory. Every variant names the file or
/// the seq at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`open`, `read`, `write`, `sync`, `rename`, `create`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but is not what it must be (a manifest that does not parse, a missing
    /// manifest, a snapshot that does not fit).
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The journal is damaged (framing, chain, a missing segment) or locked.
    #[error(transparent)]
    Journal(#[from] verex_journal::JournalError),
    /// A record is framed correctly but cannot be applied.
    #[error("journal {}, seq {seq}: {reason}", dir.display())]
    BadRecord {
        /// The journal directory.
        dir: PathBuf,
        /// The record's seq.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The engine refused its configuration.
    #[error(transparent)]
    Engine(#[from] crate::EngineError),
}

impl StoreError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io { action, path: path.to_path_buf(), source }
    }
}

/// Fsyncs a directory so that the names created in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io("sync", dir, e))
}

/// Writes `bytes` to `path` durably: `path.tmp`, fsync, rename, fsync of the directory, so a
/// crash leaves either the old file or the whole new one.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp).map_err(|e| StoreError::io("create", &tmp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| StoreError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io("rename", &tmp, e))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sync_dir(dir)
}
