//! Snapshot files of a journal directory: `DIR/snapshots/<seq:020>.snap`, each the whole
//! state at `seq` with the journal's xxh3 hash and BLAKE3 attestation digest at that seq in
//! its header, so that recovery can check it belongs to this journal (the layout
//! `verex run`'s replica writes).

use std::path::{Path, PathBuf};

use verex_journal::JournalReader;

use super::{sync_dir, write_durably, StoreError};
use crate::attest::JournalDigest;
use crate::snapshot::encode_snapshot;
use crate::Engine;

/// The snapshot directory's name inside the journal directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// The largest snapshot file read.
pub const MAX_SNAPSHOT_BYTES: u64 = 16 << 30;
const SNAPSHOT_SUFFIX: &str = ".snap";
const SEQ_DIGITS: usize = 20;

/// The file of the snapshot at `seq`: `DIR/snapshots/<seq:020>.snap`.
#[must_use]
pub fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(SNAPSHOT_DIR).join(format!("{seq:0SEQ_DIGITS$}{SNAPSHOT_SUFFIX}"))
}

/// The seq a snapshot file name carries, if it is one (20 digits, `.snap`).
#[must_use]
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshots of the journal in `dir`, oldest first (none without a snapshot directory;
/// other files are ignored).
///
/// # Errors
/// [`StoreError::Io`] when the directory cannot be listed.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let snapshots = dir.join(SNAPSHOT_DIR);
    let entries = match std::fs::read_dir(&snapshots) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", &snapshots, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", &snapshots, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            found.push((seq, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Reads a snapshot file whole, refusing one beyond [`MAX_SNAPSHOT_BYTES`].
pub(crate) fn read_snapshot_file(path: &Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| format!("open: {e}"))?.len();
    if len > MAX_SNAPSHOT_BYTES {
        return Err(format!("{len} bytes, larger than the {MAX_SNAPSHOT_BYTES} a snapshot may have"));
    }
    std::fs::read(path).map_err(|e| format!("read: {e}"))
}

/// Writes a snapshot of `engine` into the journal directory `dir`, durably, and returns its
/// path. The journal must hold the records up to `engine.seq()` (the engine is the journal's
/// state there): one pass over them computes the journal hash and the attestation digest the
/// header carries. Off the hot path: take it from a replica or a recovered copy.
///
/// # Errors
/// [`StoreError::BadRecord`] when the journal does not reach `engine.seq()` or does not start
/// at seq 1, [`StoreError::Journal`] for damage, [`StoreError::Io`] for the file.
pub fn write_snapshot(dir: &Path, engine: &Engine) -> Result<PathBuf, StoreError> {
    let seq = engine.seq();
    let reader = JournalReader::open(dir)?;
    let bad = |reason: String| StoreError::BadRecord { dir: dir.to_path_buf(), seq, reason };
    let mut digest = JournalDigest::default();
    let mut journal_hash = verex_journal::GENESIS_HASH;
    for item in reader.iter() {
        let record = item?;
        if record.seq > seq {
            break;
        }
        digest
            .push(record.seq, record.payload)
            .map_err(|expected| bad(format!("journal gap: expected seq {expected}")))?;
        journal_hash = record.hash;
    }
    if digest.seq != seq {
        return Err(bad(format!("the journal ends at seq {}, before the engine's", digest.seq)));
    }
    let bytes = encode_snapshot(engine, journal_hash, digest.digest).map_err(|e| bad(e.to_string()))?;
    let path = snapshot_path(dir, seq);
    let parent = dir.join(SNAPSHOT_DIR);
    if !parent.is_dir() {
        std::fs::create_dir_all(&parent).map_err(|e| StoreError::io("create", &parent, e))?;
        sync_dir(dir)?;
    }
    write_durably(&path, &bytes)?;
    Ok(path)
}
