//! The writer: appends frames into the active segment's mapping, rolls to a new segment when
//! one is full, and makes records durable according to its [`Durability`] mode.
//!
//! One writer per directory, enforced with an exclusive `flock` on `DIR/journal.lock`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use crate::error::JournalError;
use crate::frame::{self, MAX_PAYLOAD_BYTES};
use crate::mark::{self, MarkFile};
use crate::recovery::{self, RecoveryReport};
use crate::roller::{Retired, Roller};
use crate::segment::{
    self, SegmentHeader, DEFAULT_SEGMENT_BYTES, GENESIS_HASH, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES,
    SEGMENT_HEADER_BYTES,
};

/// Name of the lock file in the journal directory.
pub const LOCK_FILE_NAME: &str = "journal.lock";
/// The writer tells the roller how full the active segment is each time an append crosses a
/// 1 MiB boundary (and at every roll): a shift and a compare per append.
const FILL_REPORT_SHIFT: u32 = 20;

/// When appended records are made durable, and what a crash can lose.
///
/// "Durable" means `msync(MS_SYNC)` of the record's pages returned successfully. The writer
/// msyncs all recovered records when it opens. In `Sync` and `Batch` a segment is msynced
/// completely before the next one is published (its header durable, renamed into place); in
/// `Async` the finished segment is msynced completely in the background (by the writer's
/// roller thread), and the writer waits for that msync before the roll
/// after it, so at most one finished segment is ever not yet synced.
///
/// Every commit then writes the commit mark ([`mark`](crate::mark)): the committed seq and its
/// hash, outside the segment being written. Recovery never cuts a record at or below the mark;
/// a torn tail can only lie beyond it. The mark is written *after* the records are durable and
/// *before* the commit reports its durable seq, so a released event's record is always covered.
/// Every roll also writes the mark, synced, in every mode, once the new segment is durably
/// created (so the loss of the newest segment, even empty, is detected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `append` msyncs the record, then writes the commit mark and fdatasyncs it, before it
    /// returns; `durable_seq()` equals `last_seq()` after every successful `append`, so events
    /// for a record may be released as soon as its `append` returns. Loss window: none (a
    /// record whose `append` returned `Ok` survives power loss, and recovery refuses rather than
    /// cuts it if it is damaged). One msync and one fdatasync per record: slow.
    Sync,
    /// `commit` msyncs every record appended since the previous commit, then writes the commit
    /// mark and fdatasyncs it, then returns the new `durable_seq`. Release events only for seqs
    /// `<=` the value `commit` returned. Loss window: records appended after the last
    /// successful `commit` may be lost on power loss (none of their events were released; a
    /// torn one is cut and reported); a process crash loses nothing (the mapping's pages survive
    /// in the page cache, and recovery keeps every whole record beyond the mark).
    #[default]
    Batch,
    /// No msync and no fdatasync on the hot path; the OS writes dirty pages back on its own
    /// schedule (typically within ~30 s), and a finished segment is msynced in the background
    /// after its roll. `commit` writes the commit mark into the page cache (a `pwrite`, no
    /// sync) and advances `durable_seq`, which here means "written to the page cache".
    /// Loss window: a process crash loses nothing (page cache: records and mark agree); power
    /// loss or a kernel crash loses everything appended since the OS last flushed (at worst since
    /// the previous segment was created or the writer opened). After such a power loss the mark
    /// on disk may be *behind* the records that reached the disk (recovery then keeps the whole
    /// records beyond it and cuts a torn one, reported), or *ahead* of them, because the OS
    /// wrote the mark's page before the records' pages: recovery then refuses the journal as
    /// corruption, naming the first missing seq and its segment file, rather than silently
    /// cutting records whose events were released. A power loss that leaves dirty pages written
    /// out of order (a hole followed by intact records) is refused the same way. In `Async` a
    /// power loss can therefore need an operator's decision; a process crash never does.
    Async,
}

/// How to open a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// The directory holding the segment files; created if missing.
    pub dir: PathBuf,
    /// Size of each new segment file, a multiple of the page size within
    /// `MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES`. Existing segments keep the size in their header.
    pub segment_bytes: u64,
    /// When records are made durable.
    pub durability: Durability,
}

impl JournalConfig {
    /// A config for `dir` with 64 MiB segments and [`Durability::Batch`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalConfig { dir: dir.into(), segment_bytes: DEFAULT_SEGMENT_BYTES, durability: Durability::default() }
    }
}

/// The segment being appended to.
struct ActiveSegment {
    index: u64,
    path: PathBuf,
    map: MmapMut,
    /// Offset where the next frame goes.
    write_off: usize,
    /// Everything before this offset has been msynced.
    synced_off: usize,
}

/// Appends records to a journal directory. Open it with [`JournalWriter::open`].
///
/// Seqs are gap-free: each `append` must carry `last_seq() + 1`; on an empty journal the first
/// `append` chooses the first seq (any value `>= 1`, normally 1), which is then persisted in the
/// first segment's header. Seq 0 means "none" and `u64::MAX` is never valid, so `seq + 1`
/// cannot overflow anywhere.
pub struct JournalWriter {
    /// Prepares the next segment and retires the finished one off this thread. Declared
    /// first so that it is dropped (its jobs finished, an unused prepared file deleted)
    /// while the writer still holds the directory's lock.
    roller: Roller,
    dir: PathBuf,
    segment_bytes: u64,
    durability: Durability,
    /// Holds the directory's flock for as long as the writer lives.
    _lock: File,
    active: Option<ActiveSegment>,
    /// The seq `append` must get next; `None` on an empty journal.
    next_seq: Option<u64>,
    /// The journal's first seq (the first segment's); `None` before the first segment.
    first_seq: Option<u64>,
    last_hash: u64,
    durable_seq: u64,
    /// The commit mark, written after every commit's records are durable.
    mark: MarkFile,
    /// Bytes per msync of records, a moving average over about 8 (for the roller).
    commit_bytes_avg: u64,
    poisoned: bool,
    fail_next_sync: bool,
    fail_next_mark_sync: bool,
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .field("last_seq", &self.last_seq())
            .field("durable_seq", &self.durable_seq)
            .field("mark", &self.mark.current())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl JournalWriter {
    /// Opens (creating if needed) the journal in `config.dir`, runs recovery, and returns a
    /// writer positioned after the last valid record, with the recovery report.
    ///
    /// Fails with [`JournalError::Corrupt`] if the journal is damaged anywhere but in a
    /// provably torn tail, and with [`JournalError::Locked`] if another writer has it open.
    pub fn open(config: JournalConfig) -> Result<(JournalWriter, RecoveryReport), JournalError> {
        let page_bytes = segment::page_bytes();
        if !segment::segment_bytes_in_range(config.segment_bytes, page_bytes) {
            return Err(JournalError::InvalidSegmentBytes {
                segment_bytes: config.segment_bytes,
                page_bytes,
                min: MIN_SEGMENT_BYTES,
                max: MAX_SEGMENT_BYTES,
            });
        }
        let dir = config.dir;
        fs::create_dir_all(&dir).map_err(|e| JournalError::io(&dir, e))?;
        let lock = lock_dir(&dir)?;
        segment::remove_stale_tmp_files(&dir).map_err(|e| JournalError::io(&dir, e))?;
        mark::remove_stale_tmp(&dir).map_err(|e| JournalError::io(&dir, e))?;
        let recovered = recovery::recover(&dir)?;
        let mut active = match recovered.tail {
            Some(tail) => Some(map_segment(&tail.path, &tail.header, tail.write_off)?),
            None => None,
        };
        if let Some(active) = active.as_mut() {
            // Records a crashed Batch/Async writer left only in the page cache become durable.
            active
                .map
                .flush_range(0, active.write_off)
                .map_err(|source| JournalError::SyncFailed { file: active.path.clone(), source })?;
            active.synced_off = active.write_off;
        }
        // Recovery refused segments without a mark: no mark means no segment, a new journal,
        // whose mark is created before its first segment.
        let mark = match recovered.mark {
            Some(current) => MarkFile::open(&dir, current)?,
            None => MarkFile::create(&dir)?,
        };
        let report = recovered.report;
        // Folios sized to the commits where they are msynced (see `roller::zero_fill`).
        let adaptive = config.durability != Durability::Async;
        let mut roller = Roller::spawn(&dir, config.segment_bytes, adaptive)?;
        match active.as_ref() {
            // The next segment is zero-filled as this one fills.
            Some(active) => {
                roller.pacer().set_fill(active.write_off, active.map.len());
                roller.request(active.index + 1, true);
            }
            // A new journal: its first segment is zero-filled before the first append.
            None => roller.take_ahead(1)?,
        }
        let mut writer = JournalWriter {
            roller,
            dir,
            segment_bytes: config.segment_bytes,
            durability: config.durability,
            _lock: lock,
            active,
            next_seq: recovered.next_seq,
            first_seq: recovered.first_seq,
            last_hash: report.last_hash,
            durable_seq: report.last_seq,
            mark,
            commit_bytes_avg: 0,
            poisoned: false,
            fail_next_sync: false,
            fail_next_mark_sync: false,
        };
        // Every recovered record is durable now (msynced above): the mark covers them all, and
        // every segment present. This also rewrites a damaged copy of the mark.
        writer.write_mark(true)?;
        Ok((writer, report))
    }

    /// Appends one record. `seq` must be `last_seq() + 1` (any seq in `1..u64::MAX` on an empty
    /// journal).
    ///
    /// Copies `payload` once, into the mapping. With [`Durability::Sync`] the record is durable
    /// when this returns; otherwise see [`JournalWriter::commit`].
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let payload_len = payload.len() as u64;
        if payload_len > MAX_PAYLOAD_BYTES {
            return Err(JournalError::PayloadTooLarge { len: payload_len, max: MAX_PAYLOAD_BYTES });
        }
        let expected = self.next_seq.unwrap_or(seq.clamp(1, u64::MAX - 1));
        if seq != expected {
            return Err(JournalError::SeqOutOfOrder { expected, got: seq });
        }
        let frame_bytes = frame::frame_len(payload_len) as usize;
        let fits = self.active.as_ref().is_some_and(|a| a.write_off + frame_bytes <= a.map.len());
        if !fits {
            self.roll(seq)?;
        }
        // `roll` either leaves an active segment with room or returns an error.
        let Some(active) = self.active.as_mut() else {
            return Err(JournalError::Poisoned);
        };
        let off = active.write_off;
        self.last_hash = frame::write_frame(&mut active.map, off, seq, active.index, payload);
        active.write_off = off + frame_bytes;
        if off >> FILL_REPORT_SHIFT != active.write_off >> FILL_REPORT_SHIFT {
            // The roller zero-fills the next segment at the pace this one fills.
            self.roller.pacer().set_fill(active.write_off, active.map.len());
        }
        self.next_seq = Some(seq + 1);
        if self.durability == Durability::Sync {
            self.sync_active()?;
            self.write_mark(true)?;
            self.durable_seq = seq;
        }
        Ok(())
    }

    /// Ends a batch: in [`Durability::Batch`] msyncs everything appended since the last commit,
    /// then writes the commit mark and (in `Batch`) fdatasyncs it. Returns the new
    /// `durable_seq` (see [`Durability`] for what it guarantees in each mode): release events
    /// only for seqs up to it, so no event is released before the mark covers its record.
    pub fn commit(&mut self) -> Result<u64, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        if self.durability == Durability::Batch {
            self.sync_active()?;
        }
        if let Err(err) = self.roller.check_retired() {
            self.poisoned = true;
            return Err(err);
        }
        if self.last_seq() != self.durable_seq {
            self.write_mark(self.durability != Durability::Async)?;
        }
        self.durable_seq = self.last_seq();
        Ok(self.durable_seq)
    }

    /// The highest seq covered by the durability guarantee of the current mode.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The seq of the last appended (or recovered) record; 0 if there is none.
    pub fn last_seq(&self) -> u64 {
        self.next_seq.map_or(0, |next| next - 1)
    }

    /// The rolling hash of the last record (`GENESIS_HASH` if there is none).
    pub fn last_hash(&self) -> u64 {
        self.last_hash
    }

    /// The durability mode this writer was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Whether an earlier failure has poisoned the writer.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Test hook: makes the next msync fail as if the device had reported an I/O error.
    #[doc(hidden)]
    pub fn fail_next_sync_for_tests(&mut self) {
        self.fail_next_sync = true;
    }

    /// Test hook: makes the next fdatasync of the commit mark fail as if the device had
    /// reported an I/O error.
    #[doc(hidden)]
    pub fn fail_next_mark_sync_for_tests(&mut self) {
        self.fail_next_mark_sync = true;
    }

    /// Test hook: the next segment the roller prepares (the one after the next roll) fails as
    /// if the disk were full (`ENOSPC` from the preallocation); the roll that needs it fails.
    #[doc(hidden)]
    pub fn fail_next_segment_prepare_for_tests(&mut self) {
        self.roller.fail_next_prepare_for_tests();
    }

    /// Leaves the active segment for the next one, whose first record will be `first_seq`.
    /// Any failure poisons the writer.
    fn roll(&mut self, first_seq: u64) -> Result<(), JournalError> {
        let rolled = self.roll_to_prepared(first_seq);
        if rolled.is_err() {
            self.poisoned = true;
        }
        rolled
    }

    /// The roll: the finished segment's records are durable first (Sync and Batch; Async hands
    /// the whole segment to the roller to msync), the previous finished segment's background
    /// msync has completed, and the prepared next segment gets its header and its final name.
    fn roll_to_prepared(&mut self, first_seq: u64) -> Result<(), JournalError> {
        if self.durability != Durability::Async {
            // Recovery relies on this: only the last segment can ever hold a torn tail.
            self.sync_active()?;
        }
        // At most one finished segment is ever waiting for its msync.
        self.roller.wait_retired()?;
        let index = self.active.as_ref().map_or(1, |active| active.index + 1);
        let prepared = self.roller.take(index)?;
        let header = SegmentHeader {
            segment_index: index,
            first_seq,
            segment_bytes: self.segment_bytes,
            prev_hash: self.last_hash,
        };
        let path = segment::publish_segment(&self.dir, &prepared.file, &prepared.tmp, &header)
            .map_err(|e| JournalError::io(&prepared.tmp, e))?;
        self.first_seq.get_or_insert(first_seq);
        let write_off = SEGMENT_HEADER_BYTES as usize;
        let next = ActiveSegment { index, path, map: prepared.map, write_off, synced_off: write_off };
        let next_len = next.map.len();
        let finished = self.active.replace(next);
        // The new segment is durable under its name: the mark records it (so that its loss is
        // detected, even empty), with every record so far committed.
        self.write_mark(true)?;
        if let Some(finished) = finished {
            let sync = finished.synced_off < finished.write_off;
            let inject_failure = sync && std::mem::take(&mut self.fail_next_sync);
            self.roller.retire(Retired { map: finished.map, path: finished.path, sync, inject_failure });
        }
        self.durable_seq = self.last_seq();
        self.roller.pacer().set_fill(write_off, next_len);
        self.roller.request(index + 1, true);
        Ok(())
    }

    /// Writes the commit mark: every record appended so far is committed, the active segment is
    /// the newest. The caller has made the records durable as its mode requires; `sync` makes
    /// the mark itself durable (fdatasync) before this returns. A failure poisons the writer.
    fn write_mark(&mut self, sync: bool) -> Result<(), JournalError> {
        let last_seq = self.last_seq();
        let has_records = self.first_seq.is_some_and(|first| last_seq >= first);
        let (committed_seq, committed_hash) = if has_records { (last_seq, self.last_hash) } else { (0, GENESIS_HASH) };
        let last_segment = self.active.as_ref().map_or(0, |active| active.index);
        let inject_failure = sync && std::mem::take(&mut self.fail_next_mark_sync);
        let written = self.mark.write(committed_seq, committed_hash, last_segment, sync, inject_failure);
        if written.is_err() {
            self.poisoned = true;
        }
        written
    }

    /// msyncs the active segment up to `write_off`; a failure poisons the writer. Also keeps
    /// the average size of these flushes, which the roller sizes its zero writes by.
    fn sync_active(&mut self) -> Result<(), JournalError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(());
        };
        if active.synced_off >= active.write_off {
            return Ok(());
        }
        let flushed = active.write_off - active.synced_off;
        let result = if std::mem::take(&mut self.fail_next_sync) {
            Err(io::Error::other("injected msync failure"))
        } else {
            active.map.flush_range(active.synced_off, flushed)
        };
        match result {
            Ok(()) => {
                active.synced_off = active.write_off;
                let flushed = flushed as u64;
                self.commit_bytes_avg = self.commit_bytes_avg - self.commit_bytes_avg / 8 + flushed / 8;
                self.roller.pacer().set_commit_bytes(self.commit_bytes_avg);
                Ok(())
            }
            Err(source) => {
                self.poisoned = true;
                Err(JournalError::SyncFailed { file: active.path.clone(), source })
            }
        }
    }
}

/// Maps an existing segment read-write for appending at `write_off`.
fn map_segment(path: &Path, header: &SegmentHeader, write_off: usize) -> Result<ActiveSegment, JournalError> {
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| JournalError::io(path, e))?;
    let len = usize::try_from(header.segment_bytes)
        .map_err(|_| JournalError::io(path, io::Error::new(io::ErrorKind::InvalidInput, "segment too large")))?;
    // SAFETY: the file is preallocated to `len` bytes and only this (locked) writer modifies
    // it; readers map it read-only.
    let map = unsafe { MmapOptions::new().len(len).map_mut(&file) }.map_err(|e| JournalError::io(path, e))?;
    Ok(ActiveSegment { index: header.segment_index, path: path.to_path_buf(), map, write_off, synced_off: write_off })
}

/// Takes the directory's exclusive writer lock, or fails with [`JournalError::Locked`].
fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io(&path, e))?;
    // SAFETY: plain syscall on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(JournalError::Locked { dir: dir.to_path_buf() });
        }
        return Err(JournalError::io(&path, err));
    }
    Ok(file)
}
