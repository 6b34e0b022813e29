//! Helpers shared by the crate's tests, the crash-writer binary and the benchmarks. Not part of
//! the journal's API.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Shortest deterministic payload.
pub const MIN_TEST_PAYLOAD_BYTES: usize = 8;
/// Longest deterministic payload.
pub const MAX_TEST_PAYLOAD_BYTES: usize = 300;

/// Fills `out` with the deterministic payload of `seq`: 8..=300 bytes derived from xxh3 seeded
/// by the seq, so any process can check a recovered record against its seq alone.
pub fn deterministic_payload(seq: u64, out: &mut Vec<u8>) {
    let span = (MAX_TEST_PAYLOAD_BYTES - MIN_TEST_PAYLOAD_BYTES + 1) as u64;
    let len = MIN_TEST_PAYLOAD_BYTES + (xxh3_64_with_seed(b"len", seq) % span) as usize;
    out.clear();
    let mut word_index = 0u64;
    while out.len() < len {
        let word = xxh3_64_with_seed(&word_index.to_le_bytes(), seq);
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&word.to_le_bytes()[..take]);
        word_index += 1;
    }
}

/// A xorshift64 generator: deterministic, seedable, no dependencies.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced by a fixed non-zero constant).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// Creates `path` preallocated to `len` zeroed bytes exactly as segment files are (for the
/// memcpy baseline of the benchmarks).
pub fn preallocated_file(path: &std::path::Path, len: u64) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    crate::segment::preallocate(&file, len)?;
    Ok(file)
}

/// Writes `DIR/commit.mark` afresh, holding one valid copy (generation 1) that commits
/// `committed_seq` with hash `committed_hash` and records segments up to `last_segment`: for
/// tests that fabricate a journal from raw segment files (a copy of a prefix, a forged chain).
/// A writer never does this; its mark only moves forward.
pub fn write_commit_mark(
    dir: &std::path::Path,
    committed_seq: u64,
    committed_hash: u64,
    last_segment: u64,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mark = crate::mark::CommitMark { generation: 1, committed_seq, committed_hash, last_segment };
    let file = preallocated_file(&crate::mark::mark_path(dir), crate::mark::MARK_FILE_BYTES)?;
    file.write_all_at(&mark.encode(), crate::mark::MARK_COPY_STRIDE)?;
    file.sync_all()
}
