//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use verex_journal::test_support::deterministic_payload;
use verex_journal::{
    frame_len, Durability, JournalConfig, JournalError, JournalReader, JournalWriter, RecoveryReport, MIN_SEGMENT_BYTES,
};

/// Where one record sits on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub seq: u64,
    pub segment_index: u64,
    pub frame_offset: u64,
    pub frame_bytes: u64,
    pub payload_len: u64,
    pub hash: u64,
}

/// A temporary directory on tmpfs (`/dev/shm`) when there is one, else in the default
/// temporary directory; `VEREX_TEST_TMPDIR` overrides. For tests that fsync thousands of times.
pub fn scratch_dir() -> tempfile::TempDir {
    let base = std::env::var_os("VEREX_TEST_TMPDIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|shm| shm.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new().prefix("verex-journal-").tempdir_in(base).expect("scratch dir")
}

pub fn config(dir: &Path, durability: Durability) -> JournalConfig {
    JournalConfig { dir: dir.to_path_buf(), segment_bytes: MIN_SEGMENT_BYTES, durability }
}

pub fn open(dir: &Path) -> Result<(JournalWriter, RecoveryReport), JournalError> {
    JournalWriter::open(config(dir, Durability::Batch))
}

/// Appends the deterministic records `seqs` to the journal in `dir` (64 KiB segments).
pub fn write_deterministic(dir: &Path, seqs: std::ops::RangeInclusive<u64>) -> RecoveryReport {
    let (mut writer, report) = open(dir).expect("open");
    let mut payload = Vec::new();
    for seq in seqs {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).expect("append");
    }
    writer.commit().expect("commit");
    report
}

/// Appends the deterministic records `seqs` and drops the writer without committing them: what
/// a crash leaves when it lands after these appends and before their commit. The commit mark
/// stays at the previous commit, so these records lie beyond it (a torn one may be cut).
pub fn append_uncommitted(dir: &Path, seqs: std::ops::RangeInclusive<u64>) {
    let (mut writer, _) = open(dir).expect("open");
    let mut payload = Vec::new();
    for seq in seqs {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).expect("append");
    }
}

/// `DIR/commit.mark`.
pub fn mark_file(dir: &Path) -> PathBuf {
    dir.join(verex_journal::MARK_FILE_NAME)
}

/// Every record of the journal, with its location, read through the reader.
pub fn placements(dir: &Path) -> Vec<Placed> {
    let reader = JournalReader::open(dir).expect("reader");
    reader
        .iter()
        .map(|record| {
            let record = record.expect("valid record");
            Placed {
                seq: record.seq,
                segment_index: record.segment_index,
                frame_offset: record.frame_offset,
                frame_bytes: frame_len(record.payload.len() as u64),
                payload_len: record.payload.len() as u64,
                hash: record.hash,
            }
        })
        .collect()
}

/// Checks every record the reader yields against the deterministic payload of its seq, and
/// that seqs run gap-free from `first`. Returns the last seq (or `first - 1`).
pub fn verify_deterministic(dir: &Path, first: u64) -> u64 {
    let reader = JournalReader::open(dir).expect("reader");
    let mut expected_seq = first;
    let mut payload = Vec::new();
    for record in reader.iter() {
        let record = record.expect("valid record");
        assert_eq!(record.seq, expected_seq);
        deterministic_payload(record.seq, &mut payload);
        assert_eq!(record.payload, &payload[..], "payload of seq {}", record.seq);
        assert_eq!(record.payload.as_ptr() as usize % 16, 0, "payload aligned");
        expected_seq += 1;
    }
    expected_seq - 1
}

pub fn segment_file(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.seg"))
}

pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let file = OpenOptions::new().read(true).write(true).open(path).expect("open segment");
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, offset).expect("read byte");
    byte[0] ^= 1 << bit;
    file.write_all_at(&byte, offset).expect("write byte");
}

pub fn zero_range(path: &Path, from: u64, to: u64) {
    let file = OpenOptions::new().write(true).open(path).expect("open segment");
    file.write_all_at(&vec![0u8; (to - from) as usize], from).expect("zero");
}

pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).expect("open segment");
    file.write_all_at(bytes, offset).expect("write");
}

pub fn read_file(path: &Path) -> Vec<u8> {
    fs::read(path).expect("read segment")
}

/// Unwraps a `Corrupt` error into `(seq, file)`, failing the test on anything else.
pub fn expect_corrupt(result: Result<(JournalWriter, RecoveryReport), JournalError>) -> (u64, PathBuf, String) {
    match result {
        Err(JournalError::Corrupt { seq, file, reason, .. }) => (seq, file, reason),
        Err(other) => panic!("expected Corrupt, got error {other}"),
        Ok((_, report)) => panic!("expected Corrupt, journal opened: {report:?}"),
    }
}
