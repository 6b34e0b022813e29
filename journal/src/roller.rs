//! The roller: a helper thread that takes the slow parts of a segment roll off the writer's
//! thread.
//!
//! Without it, a roll stalls the writer for as long as the file system needs to create and
//! preallocate a segment file, map it, fault its pages in one by one as records land on them,
//! and unmap the finished segment (and, in [`Durability::Async`](crate::Durability::Async),
//! msync the whole finished segment: with large segments, hundreds of milliseconds of disk
//! writes). With it:
//!
//! * **Ahead of each roll** the roller prepares the next segment file: `NAME.seg.tmp`, created,
//!   preallocated and fsynced ([`segment::prepare_segment`]), **zero-filled** (below), then
//!   mapped read-write and prefaulted (`MAP_POPULATE`: its page-table entries exist before
//!   the writer touches them). A `.seg.tmp` file is invisible to recovery and readers, which
//!   remove and ignore it.
//! * **Zero-filling** writes real zeros over the preallocated blocks, then fdatasyncs the
//!   file. `fallocate` leaves *unwritten* extents: the first msync of each block must also
//!   convert its extent, a file-system journal commit on the commit's path. Zero-filled blocks
//!   are plain overwrites (PostgreSQL's `wal_init_zero` does the same for its WAL).
//!   - *Write size.* The page cache keeps the folio size of the writes, which decides what an
//!     msync writes, how often the writer faults and how many TLB shootdowns write-back
//!     costs (see [`zero_fill`]). 64 KiB ([`SMALL_ZERO_WRITE_BYTES`]) while the writer's
//!     commits average under 512 KiB ([`LARGE_COMMIT_BYTES`]), else 2 MiB
//!     ([`LARGE_ZERO_WRITE_BYTES`]); always 2 MiB in `Async`, which msyncs no commit. A new
//!     journal's first segment, zeroed before any commit, gets 64 KiB (2 MiB in `Async`).
//!   - *Pace.* The next segment is zeroed while the active one fills from a quarter to three
//!     quarters of its size ([`zero_allowance`]): twice as fast as the journal is written,
//!     each write's write-back started at once, and the roller in the idle I/O class so that
//!     the disk's scheduler puts a commit's writes first. While commits are small, each zero
//!     write is also written back before the next one is made (one zero write on the disk at
//!     a time), so that a commit's msync waits behind at most one: with write-back only
//!     started, the writes the pace lets through together (2 MiB) were all queued on the disk
//!     at once and every msync behind them took ~1 ms instead of ~50 µs (the p99 at 100k tx/s
//!     went from 1.0–4.5 ms to 0.42–0.76 ms, most runs). Large commits (full speed) keep the
//!     zeros going as fast as the disk takes them. The first segment of a new journal is
//!     zeroed at once, and the writer's `open` waits for it.
//!   - *Only an optimisation.* A roll that comes before the zeros are done (a burst) takes the
//!     segment as it is, after at most one more write; the blocks not yet zeroed still read
//!     as zeros, and it is mapped without prefaulting.
//! * **At the roll** the writer takes the prepared segment and only writes its header, syncs
//!   it, renames the file into place and syncs the directory ([`segment::publish_segment`]),
//!   then asks for the segment after it.
//! * **After the roll** the finished segment's mapping goes back to the roller, which unmaps it
//!   and, in `Async` mode, first msyncs it completely. The writer waits for that msync before
//!   its next roll, so at most one finished segment is ever not yet synced; a failed msync
//!   poisons the writer at its next commit or roll.
//!
//! Jobs run in the order they are sent, on one thread per writer.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use memmap2::{MmapMut, MmapOptions};

use crate::error::JournalError;
use crate::segment;

/// A segment file created, preallocated and mapped ahead of its roll, still named `.seg.tmp`
/// and without a header.
pub(crate) struct PreparedSegment {
    pub(crate) index: u64,
    pub(crate) tmp: PathBuf,
    pub(crate) file: File,
    pub(crate) map: MmapMut,
}

/// A finished segment handed back after a roll.
pub(crate) struct Retired {
    pub(crate) map: MmapMut,
    pub(crate) path: PathBuf,
    /// msync the whole mapping before unmapping it (`Async` mode: it was never synced).
    pub(crate) sync: bool,
    /// Test hook: fail the msync as if the device had reported an I/O error.
    pub(crate) inject_failure: bool,
}

/// Bytes zeroed per write where commits are small (see [`zero_fill`]): an msync writes
/// little more than it covers, a commit's msync never queues behind much of the zeros, and a
/// roll that stops the zeroing waits for at most one write.
pub(crate) const SMALL_ZERO_WRITE_BYTES: u64 = 64 << 10;
/// Bytes zeroed per write where commits are large, and always in `Async` (see
/// [`zero_fill`]): 2 MiB-aligned folios, mapped whole, so that the writer takes one write
/// fault and write-back one TLB flush per 2 MiB.
pub(crate) const LARGE_ZERO_WRITE_BYTES: u64 = 2 << 20;
/// Average commit size (bytes) from which an adaptive roller zeroes with
/// [`LARGE_ZERO_WRITE_BYTES`]: a commit this large writes much of a 2 MiB folio anyway.
pub(crate) const LARGE_COMMIT_BYTES: u64 = 512 << 10;
/// How long the roller waits before looking at the active segment's fill again when the
/// pace allows no more zeros.
const ZERO_PACE_POLL: Duration = Duration::from_millis(2);
/// The unit of [`Pacer::fill`]: the active segment's fill in 1/65,536ths of its size.
pub(crate) const FILL_UNIT: u32 = 1 << 16;

/// What the writer tells the roller while it zero-fills: how full the active segment is,
/// and whether to stop.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    /// The active segment's fill, in [`FILL_UNIT`]ths of its size; published by the writer
    /// at every commit and roll.
    fill: AtomicU32,
    /// The writer's average commit, in bytes (a moving average over about 8 commits); it
    /// decides the size of the zero writes of an adaptive roller.
    commit_bytes: AtomicU64,
    /// A roll is waiting for the prepared segment: stop zeroing at the next chunk boundary.
    hurry: AtomicBool,
    /// The roller is being dropped: stop every zeroing at once.
    stop: AtomicBool,
}

impl Pacer {
    /// Publishes the writer's average commit size, in bytes.
    pub(crate) fn set_commit_bytes(&self, bytes: u64) {
        self.commit_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Publishes the active segment's fill: `used` bytes of `len`.
    pub(crate) fn set_fill(&self, used: usize, len: usize) {
        let fill = (used as u128 * u128::from(FILL_UNIT)) / (len.max(1) as u128);
        self.fill.store(u32::try_from(fill).unwrap_or(FILL_UNIT).min(FILL_UNIT), Ordering::Relaxed);
    }
}

/// How many bytes of the next segment (of `segment_bytes`) may be zeroed when the active one
/// is `fill` [`FILL_UNIT`]ths full: none up to a quarter, all from three quarters, linear in
/// between (so the zeros are written at twice the journal's own rate, and are done a quarter
/// of a segment before the roll).
pub(crate) fn zero_allowance(fill: u32, segment_bytes: u64) -> u64 {
    let start = FILL_UNIT / 4;
    let end = 3 * (FILL_UNIT / 4);
    if fill <= start {
        return 0;
    }
    if fill >= end {
        return segment_bytes;
    }
    let allowed = u128::from(segment_bytes) * u128::from(fill - start) / u128::from(end - start);
    u64::try_from(allowed).unwrap_or(segment_bytes)
}

enum Job {
    /// Prepare segment `index`; `paced`: zero it as [`zero_allowance`] allows (else at
    /// once); `inject_no_space` is a test hook: fail as a full disk would.
    Prepare {
        index: u64,
        paced: bool,
        inject_no_space: bool,
    },
    Retire(Retired),
}

/// The writer's handle on its roller thread.
pub(crate) struct Roller {
    dir: PathBuf,
    jobs: Option<Sender<Job>>,
    prepared: Receiver<Result<PreparedSegment, JournalError>>,
    retired: Receiver<Result<(), JournalError>>,
    /// The index of the segment asked for and not yet taken.
    requested: Option<u64>,
    /// Retire jobs whose outcome has not been received yet.
    retiring: u32,
    /// Test hook: the next preparation fails as if the disk were full.
    fail_next_prepare: bool,
    /// Shared with the roller thread: the active segment's fill, and the signals to stop
    /// zeroing.
    pacer: Arc<Pacer>,
    /// A segment taken ahead of its roll ([`Roller::take_ahead`]), handed out by the next
    /// [`Roller::take`].
    ready: Option<PreparedSegment>,
    thread: Option<JoinHandle<()>>,
}

impl Roller {
    /// Starts the roller thread for the journal in `dir` (whose lock the writer holds). It
    /// zero-fills segments in writes of [`LARGE_ZERO_WRITE_BYTES`], or, if `adaptive` (a
    /// writer that msyncs its commits), of [`SMALL_ZERO_WRITE_BYTES`] while the writer's
    /// average commit is below [`LARGE_COMMIT_BYTES`].
    pub(crate) fn spawn(dir: &Path, segment_bytes: u64, adaptive: bool) -> Result<Roller, JournalError> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (prepared_tx, prepared_rx) = mpsc::channel();
        let (retired_tx, retired_rx) = mpsc::channel();
        let worker_dir = dir.to_path_buf();
        let pacer = Arc::new(Pacer::default());
        let worker_pacer = Arc::clone(&pacer);
        let thread = std::thread::Builder::new()
            .name("verex-journal-roller".to_string())
            .spawn(move || {
                let zeros = vec![0u8; LARGE_ZERO_WRITE_BYTES as usize];
                lower_io_priority();
                for job in jobs_rx {
                    // A send fails only when the writer is gone; there is nobody to tell.
                    match job {
                        Job::Prepare { index, paced, inject_no_space } => {
                            let zeroing = Zeroing { pacer: &worker_pacer, paced, adaptive, zeros: &zeros };
                            let prepared = prepare(&worker_dir, index, segment_bytes, inject_no_space, &zeroing);
                            let _ = prepared_tx.send(prepared);
                        }
                        Job::Retire(retired) => {
                            let _ = retired_tx.send(retire(retired));
                        }
                    }
                }
            })
            .map_err(|e| JournalError::io(dir, e))?;
        Ok(Roller {
            dir: dir.to_path_buf(),
            jobs: Some(jobs_tx),
            prepared: prepared_rx,
            retired: retired_rx,
            requested: None,
            retiring: 0,
            fail_next_prepare: false,
            pacer,
            ready: None,
            thread: Some(thread),
        })
    }

    /// The pacing state the writer publishes its active segment's fill into.
    pub(crate) fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// Asks for segment `index` to be prepared (the one the next roll will take); `paced`:
    /// zero-filled as the active segment fills ([`zero_allowance`]), else at once.
    pub(crate) fn request(&mut self, index: u64, paced: bool) {
        debug_assert!(self.requested.is_none() && self.ready.is_none(), "one segment is prepared at a time");
        let inject_no_space = std::mem::take(&mut self.fail_next_prepare);
        if self.send(Job::Prepare { index, paced, inject_no_space }) {
            self.requested = Some(index);
        }
    }

    /// Prepares segment `index` completely (zero-filled at once) and keeps it for the next
    /// [`Roller::take`]: a new journal's first segment, so that its first append does not
    /// wait for the zeros.
    pub(crate) fn take_ahead(&mut self, index: u64) -> Result<(), JournalError> {
        if self.requested.is_none() && self.ready.is_none() {
            self.request(index, false);
        }
        if self.ready.is_none() {
            self.ready = Some(self.take(index)?);
        }
        Ok(())
    }

    /// The prepared segment `index`, waiting for it if it is not ready yet (and asking for it
    /// first if it was never requested). A paced zero-fill still running stops at its next
    /// chunk: the roll does not wait for the rest.
    pub(crate) fn take(&mut self, index: u64) -> Result<PreparedSegment, JournalError> {
        if let Some(ready) = self.ready.take() {
            if ready.index == index {
                return Ok(ready);
            }
            let reason = format!("segment {} was prepared, the roll needs segment {index}", ready.index);
            discard(ready);
            return Err(JournalError::io(segment::segment_path(&self.dir, index), io::Error::other(reason)));
        }
        if self.requested.is_none() {
            self.request(index, false);
        }
        let requested = self.requested.take();
        self.pacer.hurry.store(true, Ordering::Relaxed);
        let prepared = self.prepared.recv();
        self.pacer.hurry.store(false, Ordering::Relaxed);
        let prepared = prepared.map_err(|_| stopped())??;
        if requested != Some(index) || prepared.index != index {
            let reason = format!("segment {} was prepared, the roll needs segment {index}", prepared.index);
            discard(prepared);
            return Err(JournalError::io(segment::segment_path(&self.dir, index), io::Error::other(reason)));
        }
        Ok(prepared)
    }

    /// Test hook: the next segment requested fails to prepare as if the disk were full
    /// (`ENOSPC` from the preallocation, after its `.seg.tmp` file was created).
    pub(crate) fn fail_next_prepare_for_tests(&mut self) {
        self.fail_next_prepare = true;
    }

    /// Hands a finished segment back: unmapped (and first msynced if `retired.sync`) on the
    /// roller thread. [`Roller::wait_retired`] or [`Roller::check_retired`] reports a failure.
    pub(crate) fn retire(&mut self, retired: Retired) {
        if self.send(Job::Retire(retired)) {
            self.retiring += 1;
        }
    }

    /// Waits until every retired segment is unmapped (and synced); the first failure.
    pub(crate) fn wait_retired(&mut self) -> Result<(), JournalError> {
        let mut first = Ok(());
        while self.retiring > 0 {
            let outcome = self.retired.recv().map_err(|_| stopped()).and_then(|outcome| outcome);
            self.retiring -= 1;
            if first.is_ok() {
                first = outcome;
            }
        }
        first
    }

    /// The first failure among retired segments done so far, without waiting.
    pub(crate) fn check_retired(&mut self) -> Result<(), JournalError> {
        while self.retiring > 0 {
            match self.retired.try_recv() {
                Ok(outcome) => {
                    self.retiring -= 1;
                    outcome?;
                }
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    self.retiring = 0;
                    return Err(stopped());
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok())
    }
}

impl Drop for Roller {
    /// Finishes the queued jobs (a retired `Async` segment is synced completely), then deletes
    /// a prepared segment no roll took.
    fn drop(&mut self) {
        self.pacer.stop.store(true, Ordering::Relaxed);
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(ready) = self.ready.take() {
            discard(ready);
        }
        while let Ok(prepared) = self.prepared.try_recv() {
            if let Ok(prepared) = prepared {
                discard(prepared);
            }
        }
    }
}

/// The error a roll gets when the roller thread is gone (it only stops when dropped).
fn stopped() -> JournalError {
    JournalError::io(PathBuf::from("verex-journal-roller"), io::Error::other("the segment roller thread stopped"))
}

/// Unmaps and deletes a prepared segment that will not be used.
fn discard(prepared: PreparedSegment) {
    let PreparedSegment { tmp, file, map, .. } = prepared;
    drop(map);
    drop(file);
    let _ = fs::remove_file(tmp);
}

/// How the roller zero-fills one segment.
struct Zeroing<'a> {
    /// What the writer publishes (fill, average commit) and the signals to stop.
    pacer: &'a Pacer,
    /// Wait for [`zero_allowance`] before each write, and stop when a roll hurries.
    paced: bool,
    /// Small writes while commits are small (else always large).
    adaptive: bool,
    /// [`LARGE_ZERO_WRITE_BYTES`] of zeros.
    zeros: &'a [u8],
}

impl Zeroing<'_> {
    /// The size of the next zero write at `at`: small while the writer's commits are (if
    /// adaptive); large writes start at a multiple of their size, so that their folios can be
    /// mapped whole.
    fn write_bytes(&self, at: u64) -> u64 {
        if self.small_commits() {
            SMALL_ZERO_WRITE_BYTES - at % SMALL_ZERO_WRITE_BYTES
        } else {
            LARGE_ZERO_WRITE_BYTES - at % LARGE_ZERO_WRITE_BYTES
        }
    }

    /// Whether the writer's commits are small (adaptive, and averaging under
    /// [`LARGE_COMMIT_BYTES`]): the regime where a commit's latency, not the journal's
    /// throughput, is what the zeros must not disturb.
    fn small_commits(&self) -> bool {
        self.adaptive && self.pacer.commit_bytes.load(Ordering::Relaxed) < LARGE_COMMIT_BYTES
    }

    /// Whether each zero write is written out before the next ([`write_back`] with `wait`):
    /// beside small commits, so that a commit's msync queues behind at most one of them. Not
    /// for the zeros of a new journal's first segment (unpaced: no commit runs beside them),
    /// nor beside large commits or in `Async`, where the zeros must keep up with the journal.
    fn one_write_at_a_time(&self) -> bool {
        self.paced && self.small_commits()
    }
}

/// Creates and preallocates `NAME.seg.tmp` for segment `index`, zero-fills it
/// ([`zero_fill`]), then maps it; prefaulted (`MAP_POPULATE`) if the zeros are all written,
/// else (a roll hurried it) left to fault as the writer goes. On any failure the `.seg.tmp`
/// file is removed: a full disk leaves nothing behind.
fn prepare(
    dir: &Path,
    index: u64,
    segment_bytes: u64,
    inject_no_space: bool,
    zeroing: &Zeroing<'_>,
) -> Result<PreparedSegment, JournalError> {
    let (file, tmp) = segment::prepare_segment(dir, index, segment_bytes, inject_no_space)
        .map_err(|e| JournalError::io(segment::tmp_path(dir, index), e))?;
    let mapped = zero_fill(&file, segment_bytes, zeroing).and_then(|complete| {
        let len = usize::try_from(segment_bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        let mut options = MmapOptions::new();
        options.len(len);
        if complete {
            options.populate();
        }
        // SAFETY: the file is preallocated to `segment_bytes` and only this journal's (locked)
        // writer modifies it; nobody else opens a `.seg.tmp` file.
        unsafe { options.map_mut(&file) }
    });
    match mapped {
        Ok(map) => Ok(PreparedSegment { index, tmp, file, map }),
        Err(e) => {
            drop(file);
            let _ = fs::remove_file(&tmp);
            Err(JournalError::io(tmp, e))
        }
    }
}

/// Writes zeros over the preallocated blocks of `file` (`segment_bytes` long), each write's
/// write-back started at once and, beside small commits, waited for ([`write_back`]), then
/// fdatasyncs the file. Returns whether it got to the end.
/// Paced: before each write, wait until [`zero_allowance`] allows it, and stop early when a
/// roll hurries; always stop when the roller is being dropped.
///
/// The size of the writes matters beyond the zeros: the page cache keeps the folio size a
/// write creates, write-back writes whole dirty folios, and a folio of 2 MiB at a 2 MiB
/// offset is mapped whole. Measured on the development machine (`latency`, `journal-batch`):
///
/// | zero writes | p50 at 100k tx/s | full speed | TLB-flush IPIs for 1.05M txs |
/// | --- | ---: | ---: | ---: |
/// | none (`fallocate` only) | 854 µs | 806k tx/s | 40,535 |
/// | 64 KiB | 371 µs | 584k tx/s | 191,438 |
/// | 256 KiB – 1 MiB | 435–596 µs | 452–587k tx/s | ~209,000 |
/// | 2 MiB | 674 µs | 1,669k tx/s | 2,368 |
///
/// Small commits want small folios (an msync of a few KiB wrote 256 KiB after 256 KiB
/// writes); large commits want 2 MiB ones (below that, every page written back costs a TLB
/// shootdown on the other cores). Hence [`Zeroing::write_bytes`].
fn zero_fill(file: &File, segment_bytes: u64, zeroing: &Zeroing<'_>) -> io::Result<bool> {
    let pacer = zeroing.pacer;
    let mut at = 0;
    while at < segment_bytes {
        if pacer.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        if zeroing.paced {
            if pacer.hurry.load(Ordering::Relaxed) {
                return Ok(false);
            }
            if at >= zero_allowance(pacer.fill.load(Ordering::Relaxed), segment_bytes) {
                std::thread::sleep(ZERO_PACE_POLL);
                continue;
            }
        }
        let one_at_a_time = zeroing.one_write_at_a_time();
        let len = (segment_bytes - at).min(zeroing.write_bytes(at));
        file.write_all_at(&zeroing.zeros[..usize::try_from(len).unwrap_or(zeroing.zeros.len())], at)?;
        write_back(file, at, len, one_at_a_time)?;
        at += len;
    }
    file.sync_data()?;
    Ok(true)
}

/// Puts the calling thread (the roller) in the idle I/O class, so that the block layer's
/// scheduler (mq-deadline, BFQ) sends its zeros to the disk only when no commit is waiting.
/// Best effort: where I/O classes are not supported the zeros keep the normal priority, and
/// the pacing alone keeps them out of the way.
fn lower_io_priority() {
    #[cfg(target_os = "linux")]
    {
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        const IOPRIO_CLASS_SHIFT: u32 = 13;
        // SAFETY: plain syscall; `who` 0 is the calling thread. A failure changes nothing.
        let _ = unsafe {
            libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT)
        };
    }
}

/// Starts writing `len` bytes at `at` back to the disk, so that the zeros go out steadily
/// instead of as one burst at the next sync; with `wait`, also waits until they are written
/// (not made durable: no flush), so that at most one zero write is ever queued on the disk
/// ahead of a commit's msync. Without it the zeros go out as fast as the disk takes them, as
/// a journal written at full speed needs.
fn write_back(file: &File, at: u64, len: u64, wait: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let off = libc::off64_t::try_from(at).map_err(|_| io::Error::other("offset out of range"))?;
        let n = libc::off64_t::try_from(len).map_err(|_| io::Error::other("length out of range"))?;
        let flags = libc::SYNC_FILE_RANGE_WRITE | if wait { libc::SYNC_FILE_RANGE_WAIT_AFTER } else { 0 };
        // SAFETY: plain syscall on a descriptor we own.
        if unsafe { libc::sync_file_range(file.as_raw_fd(), off, n, flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, at, len, wait);
    Ok(())
}

/// msyncs (if asked) and unmaps a finished segment.
fn retire(retired: Retired) -> Result<(), JournalError> {
    let Retired { map, path, sync, inject_failure } = retired;
    if !sync {
        return Ok(());
    }
    let result = if inject_failure { Err(io::Error::other("injected msync failure")) } else { map.flush() };
    result.map_err(|source| JournalError::SyncFailed { file: path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    /// Whether any extent of `file` is still *unwritten* (allocated by `fallocate`, never
    /// written), from the `FIEMAP` ioctl; `None` where the file system cannot say.
    fn has_unwritten_extent(file: &File) -> Option<bool> {
        const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
        const FIEMAP_FLAG_SYNC: u32 = 1;
        const FIEMAP_EXTENT_UNWRITTEN: u32 = 0x800;
        const EXTENTS: usize = 64;
        const HEADER_WORDS: usize = 4; // fm_start, fm_length, 4 × u32
        const EXTENT_WORDS: usize = 7; // 56 bytes each
        let mut buf = vec![0u64; HEADER_WORDS + EXTENTS * EXTENT_WORDS];
        buf[1] = u64::MAX;
        let extent_count = u64::try_from(EXTENTS).unwrap();
        buf[2] = u64::from(FIEMAP_FLAG_SYNC); // fm_flags (low half), fm_mapped_extents
        buf[3] = extent_count; // fm_extent_count (low half), fm_reserved
                               // SAFETY: `buf` is a `struct fiemap` with room for `EXTENTS` extents.
        if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP, buf.as_mut_ptr()) } != 0 {
            return None;
        }
        let mapped = usize::try_from(buf[2] >> 32).unwrap();
        assert!(mapped < EXTENTS, "more extents than the buffer holds");
        Some((0..mapped).any(|i| {
            let flags_word = buf[HEADER_WORDS + i * EXTENT_WORDS + 5];
            u32::try_from(flags_word & 0xFFFF_FFFF).unwrap() & FIEMAP_EXTENT_UNWRITTEN != 0
        }))
    }

    fn tmp_file(dir: &Path, index: u64) -> File {
        File::open(segment::tmp_path(dir, index)).unwrap()
    }

    #[test]
    fn allowance_is_none_until_a_quarter_then_linear_then_all_from_three_quarters() {
        let bytes = 1 << 20;
        assert_eq!(zero_allowance(0, bytes), 0);
        assert_eq!(zero_allowance(FILL_UNIT / 4, bytes), 0);
        assert_eq!(zero_allowance(FILL_UNIT / 2, bytes), bytes / 2);
        assert_eq!(zero_allowance(3 * FILL_UNIT / 4, bytes), bytes);
        assert_eq!(zero_allowance(FILL_UNIT, bytes), bytes);
        let mut last = 0;
        for fill in 0..=FILL_UNIT {
            let allowed = zero_allowance(fill, bytes);
            assert!(allowed >= last && allowed <= bytes, "fill {fill}: {allowed} after {last}");
            last = allowed;
        }
    }

    #[test]
    fn zero_writes_are_small_while_commits_are_and_large_ones_start_aligned() {
        let pacer = Pacer::default();
        let zeros = vec![0u8; LARGE_ZERO_WRITE_BYTES as usize];
        let adaptive = Zeroing { pacer: &pacer, paced: true, adaptive: true, zeros: &zeros };
        assert_eq!(adaptive.write_bytes(0), SMALL_ZERO_WRITE_BYTES, "no commit yet: small");
        pacer.set_commit_bytes(LARGE_COMMIT_BYTES - 1);
        assert_eq!(adaptive.write_bytes(3 * SMALL_ZERO_WRITE_BYTES), SMALL_ZERO_WRITE_BYTES);
        pacer.set_commit_bytes(LARGE_COMMIT_BYTES);
        assert_eq!(adaptive.write_bytes(0), LARGE_ZERO_WRITE_BYTES);
        let at = 3 * SMALL_ZERO_WRITE_BYTES;
        assert_eq!(at + adaptive.write_bytes(at), LARGE_ZERO_WRITE_BYTES, "up to the next 2 MiB boundary first");
        pacer.set_commit_bytes(0);
        let fixed = Zeroing { pacer: &pacer, paced: false, adaptive: false, zeros: &zeros };
        assert_eq!(fixed.write_bytes(0), LARGE_ZERO_WRITE_BYTES, "Async: always large");
    }

    #[test]
    fn zero_writes_go_out_one_at_a_time_only_beside_small_commits() {
        let pacer = Pacer::default();
        let zeros = vec![0u8; LARGE_ZERO_WRITE_BYTES as usize];
        let paced = Zeroing { pacer: &pacer, paced: true, adaptive: true, zeros: &zeros };
        assert!(paced.one_write_at_a_time(), "no commit yet, next segment: beside small commits");
        pacer.set_commit_bytes(LARGE_COMMIT_BYTES - 1);
        assert!(paced.one_write_at_a_time());
        pacer.set_commit_bytes(LARGE_COMMIT_BYTES);
        assert!(!paced.one_write_at_a_time(), "large commits: the zeros must keep up");
        pacer.set_commit_bytes(0);
        let first = Zeroing { pacer: &pacer, paced: false, adaptive: true, zeros: &zeros };
        assert!(!first.one_write_at_a_time(), "a new journal's first segment: no commit beside it");
        let async_mode = Zeroing { pacer: &pacer, paced: true, adaptive: false, zeros: &zeros };
        assert!(!async_mode.one_write_at_a_time(), "Async: no commit to protect");
    }

    #[test]
    fn fill_is_published_in_units_of_the_segment() {
        let pacer = Pacer::default();
        pacer.set_fill(512, 1024);
        assert_eq!(pacer.fill.load(Ordering::Relaxed), FILL_UNIT / 2);
        pacer.set_fill(2048, 1024);
        assert_eq!(pacer.fill.load(Ordering::Relaxed), FILL_UNIT, "clamped");
        pacer.set_fill(1, 0);
        assert_eq!(pacer.fill.load(Ordering::Relaxed), FILL_UNIT, "an empty length reads as full");
    }

    #[test]
    fn a_segment_taken_ahead_is_zero_filled_with_no_unwritten_extent_left() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = 4 * segment::MIN_SEGMENT_BYTES;
        let mut roller = Roller::spawn(dir.path(), bytes, true).unwrap();
        roller.take_ahead(1).unwrap();
        let file = tmp_file(dir.path(), 1);
        assert_eq!(file.metadata().unwrap().len(), bytes);
        if let Some(unwritten) = has_unwritten_extent(&file) {
            assert!(!unwritten, "every block written with zeros");
        }
        let prepared = roller.take(1).unwrap();
        assert!(prepared.map.iter().all(|&b| b == 0));
        discard(prepared);
    }

    #[test]
    fn paced_zeros_wait_for_the_active_segment_to_fill_and_a_roll_never_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = 4 * segment::MIN_SEGMENT_BYTES;
        let mut roller = Roller::spawn(dir.path(), bytes, true).unwrap();
        roller.request(1, true);
        // Fill 0: nothing may be zeroed yet.
        std::thread::sleep(Duration::from_millis(50));
        if let Some(unwritten) = has_unwritten_extent(&tmp_file(dir.path(), 1)) {
            assert!(unwritten, "no zeros before the active segment is a quarter full");
        }
        // A roll hurries: it gets the segment at once, as it is (it still reads as zeros).
        let started = Instant::now();
        let first = roller.take(1).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(first.map.iter().all(|&b| b == 0));
        discard(first);

        // Three quarters full: the next segment is zeroed completely, then waits for its roll.
        roller.pacer().set_fill(3, 4);
        roller.request(2, true);
        let deadline = Instant::now() + Duration::from_secs(20);
        let tmp = segment::tmp_path(dir.path(), 2);
        while !tmp.exists() || has_unwritten_extent(&tmp_file(dir.path(), 2)) == Some(true) {
            assert!(Instant::now() < deadline, "the zeros were never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        let second = roller.take(2).unwrap();
        assert!(second.map.iter().all(|&b| b == 0));
        discard(second);
    }

    #[test]
    fn dropping_the_roller_stops_a_paced_zeroing_and_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut roller = Roller::spawn(dir.path(), 4 * segment::MIN_SEGMENT_BYTES, false).unwrap();
        roller.request(1, true);
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        drop(roller);
        assert!(started.elapsed() < Duration::from_secs(5), "the drop does not wait for the pace");
        assert!(!segment::tmp_path(dir.path(), 1).exists());
    }
}
