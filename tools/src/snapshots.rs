//! Snapshot files kept beside a journal, their retention, and the archiving of old segments.
//!
//! Layout of a journal directory `DIR`:
//!
//! ```text
//! DIR/00000000000000000001.seg ...   journal segments (verex-journal)
//! DIR/verex.json                     genesis keys and limits (crate::manifest)
//! DIR/attestations.jsonl             signed attestations (crate::attestations)
//! DIR/snapshots/<seq:020>.snap       engine snapshots at that seq (this module)
//! DIR/archive/<index:020>.seg        archived segments (only with --archive-segments)
//! ```
//!
//! A snapshot file is the engine's format ([`verex_engine::snapshot`]): an `rkyv` archive of
//! a header (seq, state hash, the journal's xxh3 hash and BLAKE3 attestation digest at that
//! seq) and the whole state, a BLAKE3 checksum and a trailer. It is written to
//! `<seq:020>.snap.tmp`, fsynced, renamed into place and the directory fsynced, so a crash
//! leaves either no snapshot or a whole one (and perhaps a `.tmp` file, removed on the next
//! start). Snapshots are derived data: recovery checks each against the journal before use,
//! and retention deletes all but the newest K. Journal segments are never deleted.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::tail::segment_file;

/// The snapshot directory's name inside the journal directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// The archive directory's name inside the journal directory.
pub const ARCHIVE_DIR: &str = "archive";
/// Snapshots kept by default.
pub const DEFAULT_KEEP_SNAPSHOTS: u64 = 3;
/// Largest snapshot file read, in bytes: a production state (a million accounts and orders)
/// is a few hundred megabytes.
pub const MAX_SNAPSHOT_BYTES: u64 = 16 << 30;

const SNAPSHOT_SUFFIX: &str = ".snap";
const TMP_SUFFIX: &str = ".tmp";
const SEQ_DIGITS: usize = 20;
/// Suffix of the symlink being put in place of an archived segment.
const ARCHIVING_SUFFIX: &str = ".archiving";
/// Offset of `first_seq` in a segment header (see `verex_journal::segment`).
const HEADER_FIRST_SEQ_OFFSET: u64 = 24;

/// `DIR/snapshots`.
pub fn snapshot_dir(dir: &Path) -> PathBuf {
    dir.join(SNAPSHOT_DIR)
}

/// The file of the snapshot at `seq`: `DIR/snapshots/<seq:020>.snap`.
pub fn snapshot_path(dir: &Path, seq: u64) -> PathBuf {
    snapshot_dir(dir).join(format!("{seq:0SEQ_DIGITS$}{SNAPSHOT_SUFFIX}"))
}

/// The seq a snapshot file name carries, if it is one (20 digits, `.snap`).
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshots of the journal in `dir`, oldest first; none if there is no snapshot
/// directory. Other files in it are ignored.
///
/// # Errors
/// [`CliError::Io`] when the directory cannot be listed.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, CliError> {
    let snapshots = snapshot_dir(dir);
    let entries = match std::fs::read_dir(&snapshots) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CliError::io("list", &snapshots, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io("list", &snapshots, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            found.push((seq, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Reads a snapshot file whole.
///
/// # Errors
/// [`CliError::Damaged`] for a file larger than [`MAX_SNAPSHOT_BYTES`], [`CliError::Io`] when
/// it cannot be read.
pub fn read_snapshot_file(path: &Path) -> Result<Vec<u8>, CliError> {
    let len = std::fs::metadata(path).map_err(|e| CliError::io("open", path, e))?.len();
    if len > MAX_SNAPSHOT_BYTES {
        return Err(CliError::Damaged {
            file: path.display().to_string(),
            reason: format!("{len} bytes, larger than the {MAX_SNAPSHOT_BYTES} a snapshot may have"),
        });
    }
    std::fs::read(path).map_err(|e| CliError::io("read", path, e))
}

fn sync_dir(dir: &Path) -> Result<(), CliError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| CliError::io("sync", dir, e))
}

/// Creates `path` as a directory if needed, making its name durable in `parent`.
fn ensure_dir(path: &Path, parent: &Path) -> Result<(), CliError> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(|e| CliError::io("create", path, e))?;
    sync_dir(parent)
}

/// Writes `bytes` to `path` durably: `path.tmp`, fsync, rename, fsync of the directory.
///
/// # Errors
/// [`CliError::Io`] when any step fails (the temporary file may be left behind).
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| CliError::io("create", &tmp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| CliError::io("write", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| CliError::io("rename", &tmp, e))?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sync_dir(parent)
}

/// Writes the snapshot at `seq` into `DIR/snapshots` durably; returns its path.
///
/// # Errors
/// [`CliError::Io`] when the directory or the file cannot be written.
pub fn write_snapshot(dir: &Path, seq: u64, bytes: &[u8]) -> Result<PathBuf, CliError> {
    ensure_dir(&snapshot_dir(dir), dir)?;
    let path = snapshot_path(dir, seq);
    write_durably(&path, bytes)?;
    Ok(path)
}

/// Removes `*.snap.tmp` files a crash left in `DIR/snapshots`.
///
/// # Errors
/// [`CliError::Io`] when the directory cannot be listed or a file removed.
pub fn remove_stale_tmp_files(dir: &Path) -> Result<(), CliError> {
    let snapshots = snapshot_dir(dir);
    let Ok(entries) = std::fs::read_dir(&snapshots) else { return Ok(()) };
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io("list", &snapshots, e))?;
        let name = entry.file_name();
        let stale = name.to_str().is_some_and(|n| n.ends_with(&format!("{SNAPSHOT_SUFFIX}{TMP_SUFFIX}")));
        if stale {
            std::fs::remove_file(entry.path()).map_err(|e| CliError::io("remove", &entry.path(), e))?;
        }
    }
    Ok(())
}

/// Keeps the newest `keep` snapshots at or before `up_to_seq` and deletes the older ones
/// (snapshots beyond `up_to_seq` are left alone and not counted). Returns what it deleted.
///
/// # Errors
/// [`CliError::Io`] when listing or deleting fails.
pub fn retain_newest(dir: &Path, keep: u64, up_to_seq: u64) -> Result<Vec<PathBuf>, CliError> {
    let listed: Vec<_> = list_snapshots(dir)?.into_iter().filter(|(seq, _)| *seq <= up_to_seq).collect();
    let excess = listed.len().saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
    let mut removed = Vec::with_capacity(excess);
    for (_, path) in listed.into_iter().take(excess) {
        std::fs::remove_file(&path).map_err(|e| CliError::io("remove", &path, e))?;
        removed.push(path);
    }
    if !removed.is_empty() {
        sync_dir(&snapshot_dir(dir))?;
    }
    Ok(removed)
}

/// The seq of the oldest snapshot at or before `up_to_seq`, if any.
///
/// # Errors
/// [`CliError::Io`] when the directory cannot be listed.
pub fn oldest_snapshot(dir: &Path, up_to_seq: u64) -> Result<Option<u64>, CliError> {
    Ok(list_snapshots(dir)?.into_iter().map(|(seq, _)| seq).find(|&seq| seq <= up_to_seq))
}

/// The first seq in the header of segment `index` of `dir`.
fn segment_first_seq(dir: &Path, index: u64) -> Result<Option<u64>, CliError> {
    let path = segment_file(dir, index);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io("open", &path, e)),
    };
    let mut word = [0u8; 8];
    file.read_exact_at(&mut word, HEADER_FIRST_SEQ_OFFSET).map_err(|e| CliError::io("read", &path, e))?;
    Ok(Some(u64::from_le_bytes(word)))
}

/// Archives every journal segment whose records all come at or before `up_to_seq` (the
/// oldest kept snapshot's seq): its file moves to `DIR/archive/` and a symbolic link to it
/// takes its place. Returns the indexes archived now. Nothing is ever deleted.
///
/// Why a link stays behind: the journal verifies its chain from segment 1 on every open, so
/// the segment must stay reachable under its name. The archive directory holds the segments
/// recovery no longer replays, for backup; moving it elsewhere breaks the journal until the
/// journal can open from a later segment (see the tools' report).
///
/// Crash-safe at every step: a hard link in `archive/` first (fsynced), then a symlink made
/// under a temporary name and renamed over the segment's name (atomic), then the directory
/// fsynced; the segment's name always resolves to the same bytes.
///
/// # Errors
/// [`CliError::Io`] when a step fails.
pub fn archive_segments(dir: &Path, up_to_seq: u64) -> Result<Vec<u64>, CliError> {
    let mut archived = Vec::new();
    let mut index = 1u64;
    loop {
        let path = segment_file(dir, index);
        let Some(next_first) = segment_first_seq(dir, index + 1)? else { break };
        if next_first > up_to_seq + 1 {
            break;
        }
        let is_link = std::fs::symlink_metadata(&path).map_err(|e| CliError::io("stat", &path, e))?.is_symlink();
        if !is_link {
            archive_one(dir, index)?;
            archived.push(index);
        }
        index += 1;
    }
    Ok(archived)
}

fn archive_one(dir: &Path, index: u64) -> Result<(), CliError> {
    let archive = dir.join(ARCHIVE_DIR);
    ensure_dir(&archive, dir)?;
    let path = segment_file(dir, index);
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    let target = archive.join(&name);
    match std::fs::hard_link(&path, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            use std::os::unix::fs::MetadataExt;
            let (a, b) = (std::fs::metadata(&path), std::fs::metadata(&target));
            let same = matches!((a, b), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev());
            if !same {
                let reason = "a different file of that name is already in the archive".to_string();
                return Err(CliError::Damaged { file: target.display().to_string(), reason });
            }
        }
        Err(e) => return Err(CliError::io("link", &target, e)),
    }
    sync_dir(&archive)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(ARCHIVING_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new(ARCHIVE_DIR).join(&name), &tmp).map_err(|e| CliError::io("link", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| CliError::io("rename", &tmp, e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_retention_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(parse_snapshot_name("00000000000000000042.snap"), Some(42));
        assert_eq!(parse_snapshot_name("42.snap"), None);
        assert_eq!(parse_snapshot_name("00000000000000000042.snap.tmp"), None);
        for seq in [10, 20, 30, 40, 50] {
            write_snapshot(dir.path(), seq, b"x").expect("write");
        }
        std::fs::write(snapshot_dir(dir.path()).join("00000000000000000060.snap.tmp"), b"partial").expect("tmp");
        remove_stale_tmp_files(dir.path()).expect("clean");
        let removed = retain_newest(dir.path(), 2, 40).expect("retain");
        assert_eq!(removed, [snapshot_path(dir.path(), 10), snapshot_path(dir.path(), 20)]);
        let left: Vec<u64> = list_snapshots(dir.path()).expect("list").into_iter().map(|(s, _)| s).collect();
        assert_eq!(left, [30, 40, 50], "50 is beyond the bound: neither counted nor removed");
        assert_eq!(oldest_snapshot(dir.path(), 45).expect("oldest"), Some(30));
    }
}
