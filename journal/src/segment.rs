//! Segment files: their names, the 64-byte header, durable creation (preallocated, then
//! renamed into place) and listing.
//!
//! Header layout (all integers little-endian):
//!
//! ```text
//!  0..8   magic           SEGMENT_MAGIC, b"VEREXJNL"
//!  8..12  u32 version     FORMAT_VERSION
//! 12..16  u32 header_len  SEGMENT_HEADER_BYTES (64): where the first frame starts
//! 16..24  u64 segment_index   equals the index in the file name; the first segment is 1
//! 24..32  u64 first_seq   seq of the segment's first record (the seq the writer will append
//!                         next, if the segment has no record yet)
//! 32..40  u64 segment_bytes   size of the file (a multiple of 4096)
//! 40..48  u64 reserved    zero
//! 48..56  u64 header_checksum  xxh3_64(bytes 0..48 ‖ bytes 56..64)
//! 56..64  u64 prev_hash   h of the previous segment's last record (GENESIS_HASH for the first
//!                         segment); it is also h[n-1] for this segment's first frame
//! ```
//!
//! A segment becomes visible under its final name only once its header is durable: it is
//! created as `NAME.seg.tmp` and preallocated (ahead of time, on the writer's roller thread),
//! then at the roll its header is written and fsynced, and it is
//! renamed and the directory fsynced. So a `.seg` file with a bad header is damage, never a
//! crash artefact.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

/// The first 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"VEREXJNL";
/// The on-disk format version this crate writes and reads: 2 since the commit mark
/// (`commit.mark`, see [`mark`](crate::mark)); version 1 journals had none and are refused.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_BYTES: u64 = 64;
/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Smallest allowed segment size: 64 KiB (tests use it to exercise rolling).
pub const MIN_SEGMENT_BYTES: u64 = 64 << 10;
/// Largest allowed segment size: 4 GiB.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 32;
/// `h[0]`: the hash the chain starts from, stored as the first segment's `prev_hash`.
pub const GENESIS_HASH: u64 = 0;
/// Segment sizes recorded in headers are multiples of this, whatever the page size.
pub(crate) const SEGMENT_SIZE_UNIT: u64 = 4096;

const SEGMENT_SUFFIX: &str = ".seg";
const TMP_SUFFIX: &str = ".seg.tmp";
const INDEX_DIGITS: usize = 20;

const _: () = assert!(SEGMENT_HEADER_BYTES.is_multiple_of(crate::frame::FRAME_ALIGN));
const _: () = assert!(
    SEGMENT_HEADER_BYTES + 3 * crate::frame::MAX_FRAME_BYTES <= MIN_SEGMENT_BYTES,
    "the smallest segment holds several maximal records"
);
const _: () = assert!(MIN_SEGMENT_BYTES.is_multiple_of(SEGMENT_SIZE_UNIT));
const _: () = assert!(DEFAULT_SEGMENT_BYTES.is_multiple_of(SEGMENT_SIZE_UNIT));

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) segment_index: u64,
    pub(crate) first_seq: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) prev_hash: u64,
}

impl SegmentHeader {
    /// The 64 header bytes, checksum included.
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES as usize] {
        let mut bytes = [0u8; SEGMENT_HEADER_BYTES as usize];
        bytes[0..8].copy_from_slice(&SEGMENT_MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&self.segment_index.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.segment_bytes.to_le_bytes());
        // 40..48 reserved, zero.
        bytes[56..64].copy_from_slice(&self.prev_hash.to_le_bytes());
        let checksum = header_checksum(&bytes);
        bytes[48..56].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Decodes and validates a header; the error says what is wrong, with values.
    pub(crate) fn decode(bytes: &[u8]) -> Result<SegmentHeader, String> {
        let Some(bytes) = bytes.get(..SEGMENT_HEADER_BYTES as usize) else {
            return Err(format!("file is {} bytes, shorter than the header", bytes.len()));
        };
        let u32_at = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(word)
        };
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(word)
        };
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(format!("bad segment magic {:02x?}", &bytes[0..8]));
        }
        let stored = u64_at(48);
        let computed = header_checksum(bytes);
        if stored != computed {
            return Err(format!("header checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"));
        }
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(format!("format version {version}, this build reads {FORMAT_VERSION}"));
        }
        let header_len = u32_at(12);
        if u64::from(header_len) != SEGMENT_HEADER_BYTES || u64_at(40) != 0 {
            return Err(format!("header length {header_len} or reserved field is wrong"));
        }
        let header = SegmentHeader {
            segment_index: u64_at(16),
            first_seq: u64_at(24),
            segment_bytes: u64_at(32),
            prev_hash: u64_at(56),
        };
        if header.segment_index == 0 || header.first_seq == 0 || header.first_seq == u64::MAX {
            return Err(format!(
                "segment index {} must be at least 1 and first seq {} within 1..u64::MAX",
                header.segment_index, header.first_seq
            ));
        }
        if !segment_bytes_in_range(header.segment_bytes, SEGMENT_SIZE_UNIT) {
            return Err(format!("segment size {} is out of range", header.segment_bytes));
        }
        Ok(header)
    }
}

/// xxh3_64 over the header without its checksum field.
fn header_checksum(bytes: &[u8]) -> u64 {
    let mut covered = [0u8; SEGMENT_HEADER_BYTES as usize - 8];
    covered[..48].copy_from_slice(&bytes[..48]);
    covered[48..].copy_from_slice(&bytes[56..64]);
    xxh3_64(&covered)
}

/// Whether `segment_bytes` is a whole number of `unit`s within the allowed range.
pub(crate) fn segment_bytes_in_range(segment_bytes: u64, unit: u64) -> bool {
    (MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&segment_bytes)
        && segment_bytes.is_multiple_of(unit)
        && usize::try_from(segment_bytes).is_ok()
}

/// This machine's page size.
pub(crate) fn page_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).unwrap_or(SEGMENT_SIZE_UNIT).max(SEGMENT_SIZE_UNIT)
}

/// `DIR/00000000000000000001.seg` for index 1.
pub(crate) fn segment_path(dir: &Path, segment_index: u64) -> PathBuf {
    dir.join(format!("{segment_index:0INDEX_DIGITS$}{SEGMENT_SUFFIX}"))
}

/// `DIR/00000000000000000001.seg.tmp`: segment 1 while it is prepared.
pub(crate) fn tmp_path(dir: &Path, segment_index: u64) -> PathBuf {
    dir.join(format!("{segment_index:0INDEX_DIGITS$}{TMP_SUFFIX}"))
}

/// The segment index a file name denotes: exactly 20 digits then `.seg`.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != INDEX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `dir`, sorted by index. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(index) = name.to_str().and_then(parse_segment_name) {
            segments.push((index, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(index, _)| *index);
    Ok(segments)
}

/// Removes `*.seg.tmp` files left by a crash during segment creation.
pub(crate) fn remove_stale_tmp_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_tmp = entry.file_name().to_str().is_some_and(|name| name.ends_with(TMP_SUFFIX));
        if is_tmp {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// fsyncs a directory so that a creation or rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `header.segment_index` in `dir` durably and returns it opened read-write.
///
/// Steps: [`prepare_segment`] (create `NAME.seg.tmp`, preallocate, fsync), then
/// [`publish_segment`] (write the header, fsync, rename to `NAME.seg`, fsync the directory).
/// The writer runs the two halves on different threads (see `roller`); tests run both here.
#[cfg(test)]
pub(crate) fn create_segment(dir: &Path, header: &SegmentHeader) -> io::Result<(File, PathBuf)> {
    let (file, tmp) = prepare_segment(dir, header.segment_index, header.segment_bytes, false)?;
    let path = publish_segment(dir, &file, &tmp, header)?;
    Ok((file, path))
}

/// The first half of creating segment `segment_index`: `NAME.seg.tmp`, preallocated to
/// `segment_bytes` of allocated blocks that read as zeros (with `fallocate`, *unwritten*
/// extents: the first msync of each block also converts its extent, a file-system journal
/// commit that makes a commit's msync several times a plain one) and fsynced, with no header yet (its first seq and
/// previous hash are known only at the roll). Invisible to recovery and readers, which remove
/// and ignore `.seg.tmp` files. Returns the file opened read-write and its path; on failure
/// (`ENOSPC` from the preallocation, say) the `.seg.tmp` file is removed before returning.
///
/// `inject_no_space` is a test hook: the preallocation fails with `ENOSPC`, as on a full disk.
pub(crate) fn prepare_segment(
    dir: &Path,
    segment_index: u64,
    segment_bytes: u64,
    inject_no_space: bool,
) -> io::Result<(File, PathBuf)> {
    let path = segment_path(dir, segment_index);
    if path.exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("segment {} already exists", path.display())));
    }
    let tmp = tmp_path(dir, segment_index);
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp)?;
    let allocated = if inject_no_space {
        Err(io::Error::from_raw_os_error(libc::ENOSPC))
    } else {
        preallocate(&file, segment_bytes)
    };
    match allocated.and_then(|()| file.sync_all()) {
        Ok(()) => Ok((file, tmp)),
        Err(err) => {
            // A full disk (or any other failure) leaves no half-prepared file behind.
            drop(file);
            let _ = fs::remove_file(&tmp);
            Err(err)
        }
    }
}

/// The second half: writes `header` into the prepared `tmp` file, makes it durable, renames
/// the file to its final name and fsyncs the directory. Only then is the segment visible, so a
/// `.seg` file with a bad header is damage, never a crash artefact. Returns the final path.
pub(crate) fn publish_segment(dir: &Path, file: &File, tmp: &Path, header: &SegmentHeader) -> io::Result<PathBuf> {
    let path = segment_path(dir, header.segment_index);
    if tmp != tmp_path(dir, header.segment_index) {
        let reason = format!("{} is not the prepared file of segment {}", tmp.display(), header.segment_index);
        return Err(io::Error::new(io::ErrorKind::InvalidInput, reason));
    }
    if path.exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("segment {} already exists", path.display())));
    }
    let len = file.metadata()?.len();
    if len != header.segment_bytes {
        let reason = format!("prepared file is {len} bytes, the header says {}", header.segment_bytes);
        return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
    }
    file.write_all_at(&header.encode(), 0)?;
    file.sync_data()?;
    fs::rename(tmp, &path)?;
    sync_dir(dir)?;
    Ok(path)
}

/// Gives `file` `len` bytes of allocated, zeroed blocks (extending it if needed).
///
/// `fallocate` first; where the file system does not support it, `posix_fallocate` (which
/// glibc emulates by writing), and as a last resort explicit zeros. Never a sparse file: a
/// write through a mapping into a hole dies with SIGBUS when the disk is full.
pub(crate) fn preallocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let len_off =
        libc::off_t::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscall on a descriptor we own.
        if unsafe { libc::fallocate(fd, 0, 0, len_off) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if !is_unsupported(err.raw_os_error()) {
            return Err(err);
        }
    }
    // SAFETY: plain libc call on a descriptor we own; it returns an errno value.
    let ret = unsafe { libc::posix_fallocate(fd, 0, len_off) };
    if ret == 0 {
        return Ok(());
    }
    if !is_unsupported(Some(ret)) {
        return Err(io::Error::from_raw_os_error(ret));
    }
    write_zeros(file, len)
}

fn is_unsupported(errno: Option<i32>) -> bool {
    matches!(errno, Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL))
}

/// Fills `file` with `len` zero bytes through `write` (the preallocation of last resort).
pub(crate) fn write_zeros(file: &File, len: u64) -> io::Result<()> {
    const CHUNK_BYTES: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK_BYTES as usize];
    let mut at = 0u64;
    while at < len {
        let chunk = (len - at).min(CHUNK_BYTES) as usize;
        file.write_all_at(&zeros[..chunk], at)?;
        at += chunk as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn header() -> SegmentHeader {
        SegmentHeader {
            segment_index: 3,
            first_seq: 1000,
            segment_bytes: MIN_SEGMENT_BYTES,
            prev_hash: 0x0123_4567_89AB_CDEF,
        }
    }

    #[test]
    fn header_round_trips() {
        let bytes = header().encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header()));
        assert_eq!(&bytes[0..8], b"VEREXJNL");
        assert_eq!(bytes[40..48], [0u8; 8]);
    }

    #[test]
    fn every_single_bit_flip_in_the_header_is_caught() {
        let bytes = header().encode();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes;
                damaged[byte] ^= 1 << bit;
                assert!(SegmentHeader::decode(&damaged).is_err(), "bit {bit} of byte {byte}");
            }
        }
    }

    #[test]
    fn short_header_is_refused() {
        let bytes = header().encode();
        assert!(SegmentHeader::decode(&bytes[..63]).is_err());
    }

    #[test]
    fn names_sort_by_index_and_parse_back() {
        let dir = Path::new("/j");
        let name = segment_path(dir, 1);
        assert_eq!(name, Path::new("/j/00000000000000000001.seg"));
        assert_eq!(parse_segment_name("00000000000000000001.seg"), Some(1));
        assert_eq!(parse_segment_name(&format!("{}.seg", u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("1.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000001.seg.tmp"), None);
        assert_eq!(parse_segment_name("0000000000000000000x.seg"), None);
    }

    #[test]
    fn created_segment_is_allocated_not_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let (file, path) = create_segment(dir.path(), &header()).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), MIN_SEGMENT_BYTES);
        assert!(meta.blocks() * 512 >= MIN_SEGMENT_BYTES, "{} blocks", meta.blocks());
        let bytes = fs::read(&path).unwrap();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header()));
        assert!(bytes[64..].iter().all(|&b| b == 0));
        assert!(create_segment(dir.path(), &header()).is_err(), "never overwrites");
        assert_eq!(list_segments(dir.path()).unwrap(), vec![(3, path)]);
    }

    #[test]
    fn zero_writing_fallback_allocates_every_block() {
        let dir = tempfile::tempdir().unwrap();
        let file =
            File::options().read(true).write(true).create(true).truncate(true).open(dir.path().join("z")).unwrap();
        write_zeros(&file, 3 * (1 << 20) + 4096).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), 3 * (1 << 20) + 4096);
        assert!(meta.blocks() * 512 >= meta.len());
    }

    #[test]
    fn stale_tmp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(tmp_path(dir.path(), 2), b"partial").unwrap();
        fs::write(dir.path().join("keep.txt"), b"x").unwrap();
        remove_stale_tmp_files(dir.path()).unwrap();
        assert!(!tmp_path(dir.path(), 2).exists());
        assert!(dir.path().join("keep.txt").exists());
    }
}
