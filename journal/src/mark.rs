//! The commit mark: `DIR/commit.mark`, the durable record of the last commit, kept outside
//! the segment being written.
//!
//! Without it, a damaged last record is indistinguishable from a torn write and would be cut,
//! although it was committed and its events released; and a deleted newest segment would look
//! like a log that ended earlier. With it, a torn tail can only lie beyond the mark.
//!
//! # File layout
//!
//! [`MARK_FILE_BYTES`] (8 KiB), preallocated, holding two copies of [`MARK_COPY_BYTES`] (64)
//! bytes: copy A at offset 0 and copy B at offset [`MARK_COPY_STRIDE`] (4096), each in its own
//! 4 KiB block so that a torn write of one never touches the other. All bytes outside the two
//! copies are zero. A copy (all integers little-endian):
//!
//! ```text
//!  0..8   magic            MARK_MAGIC, b"VEREXMRK"
//!  8..12  u32 version      FORMAT_VERSION (2: the first version with a commit mark)
//! 12..16  u32 copy         0 for copy A, 1 for copy B; must equal generation % 2
//! 16..24  u64 generation   1 for the first mark, +1 for every write
//! 24..32  u64 committed_seq   every record with seq <= this is committed (0: none)
//! 32..40  u64 committed_hash  h[committed_seq] (GENESIS_HASH when committed_seq is 0)
//! 40..48  u64 last_segment    index of the newest segment created (0: none)
//! 48..56  u64 reserved     zero
//! 56..64  u64 checksum     xxh3_64(bytes 0..56)
//! ```
//!
//! # Writes
//!
//! Every write takes the next generation and goes to copy `generation % 2`, so it overwrites
//! the copy *before* the current one and a torn write leaves the current one intact. A write
//! is a `pwrite` of the 64 bytes then, unless the writer is in `Async` mode on its hot path,
//! an `fdatasync`; the writer issues the next write only after the previous one returned, so in
//! `Sync` and `Batch` at most one copy is ever being written. Readers take the valid copy with
//! the highest generation; if neither copy is valid the journal is refused.
//!
//! The file is created before the first segment: written whole as `commit.mark.tmp`
//! (generation 1, nothing committed, no segment), fsynced, renamed into place, and the
//! directory fsynced. A stale `commit.mark.tmp` is a crash before the rename and is removed.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use crate::error::JournalError;
use crate::segment::{self, FORMAT_VERSION, GENESIS_HASH};

/// Name of the commit mark file in the journal directory.
pub const MARK_FILE_NAME: &str = "commit.mark";
/// The first 8 bytes of each copy.
pub const MARK_MAGIC: [u8; 8] = *b"VEREXMRK";
/// Bytes of one copy.
pub const MARK_COPY_BYTES: u64 = 64;
/// Offset of copy B (copy A is at 0): one 4 KiB block per copy.
pub const MARK_COPY_STRIDE: u64 = 4096;
/// Size of the commit mark file.
pub const MARK_FILE_BYTES: u64 = 2 * MARK_COPY_STRIDE;

const MARK_TMP_NAME: &str = "commit.mark.tmp";

const _: () = assert!(MARK_COPY_BYTES <= MARK_COPY_STRIDE);
const _: () = assert!(MARK_FILE_BYTES == 2 * MARK_COPY_STRIDE);

/// One valid copy of the commit mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitMark {
    /// Write counter: 1 for the first mark; the copy is `generation % 2`.
    pub generation: u64,
    /// Every record with a seq up to this one is committed: durable (in `Sync` and `Batch`)
    /// and its events may have been released (0: nothing committed yet).
    pub committed_seq: u64,
    /// `h[committed_seq]` (`GENESIS_HASH` when nothing is committed).
    pub committed_hash: u64,
    /// The index of the newest segment the writer created (0: none yet).
    pub last_segment: u64,
}

impl CommitMark {
    /// The mark of a new journal: generation 1, nothing committed, no segment.
    pub(crate) const FIRST: CommitMark =
        CommitMark { generation: 1, committed_seq: 0, committed_hash: GENESIS_HASH, last_segment: 0 };

    /// Which copy this generation is written to: 0 (A) or 1 (B).
    fn copy(&self) -> u32 {
        (self.generation % 2) as u32
    }

    /// The 64 bytes of this copy, checksum included.
    pub(crate) fn encode(&self) -> [u8; MARK_COPY_BYTES as usize] {
        let mut bytes = [0u8; MARK_COPY_BYTES as usize];
        bytes[0..8].copy_from_slice(&MARK_MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.copy().to_le_bytes());
        bytes[16..24].copy_from_slice(&self.generation.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.committed_seq.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.committed_hash.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.last_segment.to_le_bytes());
        // 48..56 reserved, zero.
        let checksum = xxh3_64(&bytes[..56]);
        bytes[56..64].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Decodes and validates the copy found in slot `copy`; the error says what is wrong.
    pub(crate) fn decode(bytes: &[u8], copy: u32) -> Result<CommitMark, String> {
        let Some(bytes) = bytes.get(..MARK_COPY_BYTES as usize) else {
            return Err(format!("only {} bytes, a copy is {MARK_COPY_BYTES}", bytes.len()));
        };
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        let u32_at = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(word)
        };
        if bytes.iter().all(|&b| b == 0) {
            return Err("all zero (never written)".to_owned());
        }
        if bytes[0..8] != MARK_MAGIC {
            return Err(format!("bad magic {:02x?}", &bytes[0..8]));
        }
        let (stored, computed) = (u64_at(56), xxh3_64(&bytes[..56]));
        if stored != computed {
            return Err(format!("checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"));
        }
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(format!("format version {version}, this build reads {FORMAT_VERSION}"));
        }
        let mark = CommitMark {
            generation: u64_at(16),
            committed_seq: u64_at(24),
            committed_hash: u64_at(32),
            last_segment: u64_at(40),
        };
        if u32_at(12) != copy || mark.generation == 0 || mark.copy() != copy || u64_at(48) != 0 {
            return Err(format!(
                "generation {} with copy field {} does not belong in copy {copy}, or the reserved field is not zero",
                mark.generation,
                u32_at(12)
            ));
        }
        if mark.committed_seq == 0 && mark.committed_hash != GENESIS_HASH {
            return Err(format!("nothing committed but the hash is {:#018x}", mark.committed_hash));
        }
        Ok(mark)
    }

    /// The mark after this one, recording a commit of `committed_seq` (hash `committed_hash`)
    /// with `last_segment` the newest segment.
    fn next(&self, committed_seq: u64, committed_hash: u64, last_segment: u64) -> CommitMark {
        CommitMark { generation: self.generation + 1, committed_seq, committed_hash, last_segment }
    }
}

/// `DIR/commit.mark`.
pub(crate) fn mark_path(dir: &Path) -> PathBuf {
    dir.join(MARK_FILE_NAME)
}

/// The byte offset of copy `copy` (0 or 1).
fn copy_offset(copy: u32) -> u64 {
    u64::from(copy) * MARK_COPY_STRIDE
}

/// Reads the commit mark of the journal in `dir`: `Ok(None)` if there is no mark file, the
/// valid copy with the highest generation otherwise, and [`JournalError::Corrupt`] naming the
/// file if neither copy is valid.
pub(crate) fn read_mark(dir: &Path) -> Result<Option<CommitMark>, JournalError> {
    let path = mark_path(dir);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io(&path, e)),
    };
    let mut bytes = vec![0u8; MARK_FILE_BYTES as usize];
    let mut filled = 0;
    while filled < bytes.len() {
        match file.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(JournalError::io(&path, e)),
        }
    }
    let copies = [0u32, 1].map(|copy| {
        let at = copy_offset(copy) as usize;
        match bytes[..filled].get(at..) {
            Some(rest) => CommitMark::decode(rest, copy),
            None => Err(format!("the file is {filled} bytes: the copy is missing")),
        }
    });
    match copies {
        [Ok(a), Ok(b)] => Ok(Some(if a.generation > b.generation { a } else { b })),
        [Ok(mark), Err(_)] | [Err(_), Ok(mark)] => Ok(Some(mark)),
        [Err(a), Err(b)] => Err(JournalError::corrupt(
            0,
            &path,
            format!(
                "neither copy of the commit mark is valid (copy A at offset 0: {a}; copy B at offset \
                 {MARK_COPY_STRIDE}: {b}): which records were committed is unknown, so the journal is refused"
            ),
        )),
    }
}

/// Removes a `commit.mark.tmp` left by a crash while a new journal's mark was created.
pub(crate) fn remove_stale_tmp(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(MARK_TMP_NAME)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The writer's handle on the commit mark file.
#[derive(Debug)]
pub(crate) struct MarkFile {
    file: File,
    path: PathBuf,
    current: CommitMark,
}

impl MarkFile {
    /// Creates the commit mark of a new journal durably (see the module docs).
    pub(crate) fn create(dir: &Path) -> Result<MarkFile, JournalError> {
        let tmp = dir.join(MARK_TMP_NAME);
        let path = mark_path(dir);
        let file = write_first_mark(&tmp).map_err(|e| JournalError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| JournalError::io(&tmp, e))?;
        segment::sync_dir(dir).map_err(|e| JournalError::io(dir, e))?;
        Ok(MarkFile { file, path, current: CommitMark::FIRST })
    }

    /// Opens the existing mark file of `dir` for writing, `current` being its valid copy with
    /// the highest generation.
    pub(crate) fn open(dir: &Path, current: CommitMark) -> Result<MarkFile, JournalError> {
        let path = mark_path(dir);
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(|e| JournalError::io(&path, e))?;
        let len = file.metadata().map_err(|e| JournalError::io(&path, e))?.len();
        if len < MARK_FILE_BYTES {
            // A copy lies beyond the end (a damaged file whose other copy is valid): restore the
            // length, with real blocks, before writing into it.
            segment::preallocate(&file, MARK_FILE_BYTES).map_err(|e| JournalError::io(&path, e))?;
        }
        Ok(MarkFile { file, path, current })
    }

    /// The mark as last written (or read).
    pub(crate) fn current(&self) -> CommitMark {
        self.current
    }

    /// Writes the next generation: `committed_seq` (hash `committed_hash`) is committed and
    /// `last_segment` is the newest segment. With `sync`, returns only once it is durable
    /// (`fdatasync`). `inject_failure` is a test hook: the sync fails as on a device error.
    ///
    /// On failure the in-memory mark is unchanged; the caller poisons the writer.
    pub(crate) fn write(
        &mut self,
        committed_seq: u64,
        committed_hash: u64,
        last_segment: u64,
        sync: bool,
        inject_failure: bool,
    ) -> Result<(), JournalError> {
        debug_assert!(committed_seq >= self.current.committed_seq, "the mark never goes back");
        debug_assert!(last_segment >= self.current.last_segment, "segments are never forgotten");
        let next = self.current.next(committed_seq, committed_hash, last_segment);
        self.file
            .write_all_at(&next.encode(), copy_offset(next.copy()))
            .map_err(|e| JournalError::io(&self.path, e))?;
        if sync {
            let synced = if inject_failure {
                Err(io::Error::other("injected fdatasync failure"))
            } else {
                self.file.sync_data()
            };
            synced.map_err(|source| JournalError::SyncFailed { file: self.path.clone(), source })?;
        }
        self.current = next;
        Ok(())
    }
}

/// Writes a whole mark file holding [`CommitMark::FIRST`] at `tmp` and fsyncs it.
fn write_first_mark(tmp: &Path) -> io::Result<File> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(tmp)?;
    segment::preallocate(&file, MARK_FILE_BYTES)?;
    let first = CommitMark::FIRST;
    file.write_all_at(&first.encode(), copy_offset(first.copy()))?;
    file.sync_all()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(generation: u64) -> CommitMark {
        CommitMark { generation, committed_seq: 77, committed_hash: 0xABCD, last_segment: 3 }
    }

    #[test]
    fn a_copy_round_trips_only_in_its_own_slot() {
        let even = mark(8);
        assert_eq!(CommitMark::decode(&even.encode(), 0), Ok(even));
        assert!(CommitMark::decode(&even.encode(), 1).is_err(), "an even generation lives in copy A");
        let odd = mark(9);
        assert_eq!(CommitMark::decode(&odd.encode(), 1), Ok(odd));
        assert_eq!(&odd.encode()[..8], b"VEREXMRK");
        assert_eq!(odd.encode()[48..56], [0u8; 8], "reserved bytes are zero");
    }

    #[test]
    fn every_single_bit_flip_in_a_copy_is_caught() {
        let bytes = mark(5).encode();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes;
                damaged[byte] ^= 1 << bit;
                assert!(CommitMark::decode(&damaged, 1).is_err(), "bit {bit} of byte {byte}");
            }
        }
        assert!(CommitMark::decode(&[0u8; 64], 0).is_err(), "a zeroed copy is not a mark");
        assert!(CommitMark::decode(&bytes[..63], 1).is_err(), "a short copy is not a mark");
    }

    #[test]
    fn writes_alternate_copies_and_the_newest_valid_copy_wins() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_mark(dir.path()).unwrap(), None, "no file, no mark");
        let mut file = MarkFile::create(dir.path()).unwrap();
        assert_eq!(read_mark(dir.path()).unwrap(), Some(CommitMark::FIRST));
        assert_eq!(fs::metadata(mark_path(dir.path())).unwrap().len(), MARK_FILE_BYTES);
        file.write(10, 0x10, 1, true, false).unwrap();
        file.write(20, 0x20, 2, true, false).unwrap();
        let newest = read_mark(dir.path()).unwrap().unwrap();
        assert_eq!((newest.generation, newest.committed_seq, newest.last_segment), (3, 20, 2));
        // Tear the newest copy (generation 3, copy B): the previous one (copy A) is used.
        let raw = OpenOptions::new().write(true).open(mark_path(dir.path())).unwrap();
        raw.write_all_at(&[0xFF; 20], MARK_COPY_STRIDE + 10).unwrap();
        let fallback = read_mark(dir.path()).unwrap().unwrap();
        assert_eq!((fallback.generation, fallback.committed_seq), (2, 10));
        // The next write goes to copy B again (generation 3) and repairs it.
        let mut file = MarkFile::open(dir.path(), fallback).unwrap();
        file.write(30, 0x30, 2, false, false).unwrap();
        assert_eq!(read_mark(dir.path()).unwrap().map(|m| (m.generation, m.committed_seq)), Some((3, 30)));
        // Both copies damaged: refused, naming the file and both reasons.
        raw.write_all_at(&[0xFF; 8], 0).unwrap();
        raw.write_all_at(&[0xFF; 8], MARK_COPY_STRIDE).unwrap();
        let err = read_mark(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(&err, JournalError::Corrupt { file, .. } if file == &mark_path(dir.path())), "{message}");
        assert!(message.contains("copy A") && message.contains("copy B") && message.contains("bad magic"), "{message}");
    }

    #[test]
    fn a_failed_sync_leaves_the_mark_unchanged_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = MarkFile::create(dir.path()).unwrap();
        let err = file.write(5, 0x5, 1, true, true).unwrap_err();
        assert!(matches!(err, JournalError::SyncFailed { .. }), "{err}");
        assert_eq!(file.current(), CommitMark::FIRST);
    }
}
