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
//!   preallocated and fsynced ([`segment::prepare_segment`]), mapped read-write and prefaulted
//!   (`MAP_POPULATE`: its page-table entries exist before the writer touches them). A `.seg.tmp`
//!   file is invisible to recovery and readers, which remove and ignore it.
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
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

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

enum Job {
    /// Prepare segment `index`; `inject_no_space` is a test hook: fail as a full disk would.
    Prepare {
        index: u64,
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
    thread: Option<JoinHandle<()>>,
}

impl Roller {
    /// Starts the roller thread for the journal in `dir` (whose lock the writer holds).
    pub(crate) fn spawn(dir: &Path, segment_bytes: u64) -> Result<Roller, JournalError> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (prepared_tx, prepared_rx) = mpsc::channel();
        let (retired_tx, retired_rx) = mpsc::channel();
        let worker_dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("verex-journal-roller".to_string())
            .spawn(move || {
                for job in jobs_rx {
                    // A send fails only when the writer is gone; there is nobody to tell.
                    match job {
                        Job::Prepare { index, inject_no_space } => {
                            let _ = prepared_tx.send(prepare(&worker_dir, index, segment_bytes, inject_no_space));
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
            thread: Some(thread),
        })
    }

    /// Asks for segment `index` to be prepared (the one the next roll will take).
    pub(crate) fn request(&mut self, index: u64) {
        debug_assert!(self.requested.is_none(), "one segment is prepared at a time");
        let inject_no_space = std::mem::take(&mut self.fail_next_prepare);
        if self.send(Job::Prepare { index, inject_no_space }) {
            self.requested = Some(index);
        }
    }

    /// The prepared segment `index`, waiting for it if it is not ready yet (and asking for it
    /// first if it was never requested).
    pub(crate) fn take(&mut self, index: u64) -> Result<PreparedSegment, JournalError> {
        if self.requested.is_none() {
            self.request(index);
        }
        let requested = self.requested.take();
        let prepared = self.prepared.recv().map_err(|_| stopped())??;
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
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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

/// Creates, preallocates, maps and prefaults `NAME.seg.tmp` for segment `index`. On any
/// failure the `.seg.tmp` file is removed: a full disk leaves nothing behind.
fn prepare(dir: &Path, index: u64, segment_bytes: u64, inject_no_space: bool) -> Result<PreparedSegment, JournalError> {
    let (file, tmp) = segment::prepare_segment(dir, index, segment_bytes, inject_no_space)
        .map_err(|e| JournalError::io(segment::tmp_path(dir, index), e))?;
    let mapped = usize::try_from(segment_bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))
        // SAFETY: the file is preallocated to `segment_bytes` and only this journal's (locked)
        // writer modifies it; nobody else opens a `.seg.tmp` file.
        .and_then(|len| unsafe { MmapOptions::new().len(len).populate().map_mut(&file) });
    match mapped {
        Ok(map) => Ok(PreparedSegment { index, tmp, file, map }),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(JournalError::io(tmp, e))
        }
    }
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
