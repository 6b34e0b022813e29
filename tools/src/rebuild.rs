//! Rebuilding an engine from a journal: every record is read in place from the segment
//! mapping, validated as an archive (no deserialisation, no copy), its signature checked
//! again (the engine applies only verified records: a journal is evidence only if every
//! record in it verifies) and applied.
//!
//! Signatures are checked a chunk of [`REPLAY_CHUNK_RECORDS`] at a time, batch-verified on
//! every core, then the chunk is applied in order.
//!
//! Shared by `run` (resuming on an existing journal), `replay`, `snapshot` and `verify`; each
//! passes a visitor that sees every applied record and its events. The engine may start at
//! genesis or at a snapshot's seq ([`crate::recover`]): records are applied from
//! `engine.seq() + 1` on.

use std::path::Path;

use verex_engine::record::access_record;
use verex_engine::tx::ArchivedSequencedTx;
use verex_engine::verified::VerifiedRecord;
use verex_engine::{Engine, EventBuf};
use verex_journal::{frame_len, JournalError, JournalReader, Record};

use crate::error::CliError;
use crate::io::Progress;

/// Records read, verified together, then applied: bounds the memory a chunk holds (views into
/// the mapping) and is large enough for batch verification on every core.
pub const REPLAY_CHUNK_RECORDS: usize = 4096;

/// Threads that check a chunk's signatures.
fn verify_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Where a record ends on disk, and its rolling hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPos {
    /// Its seq.
    pub seq: u64,
    /// The segment holding it.
    pub segment_index: u64,
    /// The offset just after its frame.
    pub end_offset: u64,
    /// `h[seq]`.
    pub hash: u64,
}

impl RecordPos {
    /// The position of `record`.
    pub fn of(record: &Record<'_>) -> Self {
        Self {
            seq: record.seq,
            segment_index: record.segment_index,
            end_offset: record.frame_offset + frame_len(record.payload.len() as u64),
            hash: record.hash,
        }
    }
}

/// What a replay went through.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Records applied.
    pub records: u64,
    /// The last record applied, if any.
    pub last: Option<RecordPos>,
}

/// Opens a journal for reading; the directory must exist.
///
/// # Errors
/// [`CliError::File`] for a missing directory; [`CliError::Journal`] when the journal is
/// damaged anywhere but in a torn tail beyond its commit mark (see [`crate::tail`]).
pub fn open_reader(dir: &Path) -> Result<JournalReader, CliError> {
    if !dir.is_dir() {
        return Err(CliError::File {
            file: dir.display().to_string(),
            reason: "is not a journal directory (it does not exist or is not a directory)".to_string(),
        });
    }
    Ok(JournalReader::open(dir)?)
}

/// An error about record `seq` of the journal in `dir`.
pub fn bad_record(dir: &Path, seq: u64, reason: impl Into<String>) -> CliError {
    CliError::BadRecord { dir: dir.display().to_string(), seq, reason: reason.into() }
}

/// Validates a record's payload as an archived transaction whose seq is the frame's.
///
/// # Errors
/// [`CliError::BadRecord`] naming the seq.
pub fn access_checked<'a>(dir: &Path, record: &Record<'a>) -> Result<&'a ArchivedSequencedTx, CliError> {
    let seq = record.seq;
    let archived = access_record(record.payload)
        .map_err(|e| bad_record(dir, seq, format!("the payload is not a valid record archive: {e}")))?;
    let archived_seq = archived.seq.to_native();
    if archived_seq != seq {
        return Err(bad_record(dir, seq, format!("the frame says seq {seq}, its record says seq {archived_seq}")));
    }
    Ok(archived)
}

/// Applies every record of `reader` after `engine.seq()` to `engine`, calling `visit` after
/// each with the engine, the record, its archived view and its events.
///
/// Each record's frame is verified by the reader (seq, segment, xxh3 chain); its payload is
/// then validated as an archived `SequencedTx` whose seq is the frame's, its signature checked
/// under the one rule (SPEC section 4), and the engine must accept it (`apply` returns `Ok`).
/// Records before a failing one are applied and visited first, so the error names the first
/// record that fails, whatever the check.
///
/// # Errors
/// [`CliError::Journal`] for a frame that fails (the reader found damage before the torn tail,
/// if any, when it opened: see [`crate::tail`]), [`CliError::BadRecord`] naming the
/// first record that fails a check (or the seq the journal lacks), or whatever `visit`
/// returns.
pub fn replay_journal(
    dir: &Path,
    reader: &JournalReader,
    engine: &mut Engine,
    progress_label: &'static str,
    visit: impl FnMut(&Engine, &Record<'_>, &ArchivedSequencedTx, &EventBuf) -> Result<(), CliError>,
) -> Result<Replayed, CliError> {
    replay_journal_until(dir, reader, engine, u64::MAX, progress_label, visit)
}

/// [`replay_journal`], stopping after record `until` (the state at a chosen seq, for a Proof
/// of Reserves cycle or a stress report): records after it are not read. The engine ends at
/// `until` if the journal reaches it, else at the journal's last record.
///
/// # Errors
/// As [`replay_journal`].
pub fn replay_journal_until(
    dir: &Path,
    reader: &JournalReader,
    engine: &mut Engine,
    until: u64,
    progress_label: &'static str,
    mut visit: impl FnMut(&Engine, &Record<'_>, &ArchivedSequencedTx, &EventBuf) -> Result<(), CliError>,
) -> Result<Replayed, CliError> {
    let mut buf = engine.event_buf();
    let mut progress = Progress::new(progress_label);
    let start = engine.seq() + 1;
    let total = reader.next_seq().min(until.saturating_add(1)).saturating_sub(start);
    if let Some(first) = reader.first_seq().filter(|&first| first > start) {
        return Err(bad_record(
            dir,
            first,
            format!("the journal starts at seq {first}; replaying it needs the state at seq {}", first - 1),
        ));
    }
    let mut records_from = reader.iter_from(start).map_err(|e| match e {
        JournalError::SeqNotFound { next, .. } => bad_record(
            dir,
            start,
            format!("the state is at seq {}, but the journal's records end before seq {next}", start - 1),
        ),
        other => other.into(),
    })?;
    let mut replayed = Replayed { records: 0, last: None };
    let threads = verify_threads();
    let mut chunk: Vec<(Record<'_>, &ArchivedSequencedTx)> = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
    let mut verdicts = Vec::with_capacity(REPLAY_CHUNK_RECORDS);
    loop {
        chunk.clear();
        let mut stop = None;
        let mut expected = engine.seq() + 1;
        while chunk.len() < REPLAY_CHUNK_RECORDS && expected <= until {
            let Some(item) = records_from.next() else { break };
            match item.map_err(CliError::from).and_then(|record| checked_next(dir, record, expected)) {
                Ok(entry) => chunk.push(entry),
                Err(error) => {
                    stop = Some(error);
                    break;
                }
            }
            expected += 1;
        }
        let views: Vec<&ArchivedSequencedTx> = chunk.iter().map(|(_, archived)| *archived).collect();
        VerifiedRecord::verify_parallel(&views, threads, &mut verdicts);
        for ((record, archived), verdict) in chunk.iter().zip(verdicts.drain(..)) {
            let seq = record.seq;
            let verified = verdict.map_err(|e| bad_record(dir, seq, format!("bad signature: {e}")))?;
            engine
                .apply(verified, &mut buf)
                .map_err(|e| bad_record(dir, seq, format!("the engine refused it: {e}")))?;
            visit(engine, record, archived, &buf)?;
            replayed.records += 1;
            replayed.last = Some(RecordPos::of(record));
            progress.update(replayed.records, (replayed.records, Some(total)));
        }
        if let Some(error) = stop {
            return Err(error);
        }
        if chunk.len() < REPLAY_CHUNK_RECORDS || engine.seq() >= until {
            return Ok(replayed);
        }
    }
}

/// A record that must be seq `expected`, validated as an archive.
fn checked_next<'a>(
    dir: &Path,
    record: Record<'a>,
    expected: u64,
) -> Result<(Record<'a>, &'a ArchivedSequencedTx), CliError> {
    if record.seq != expected {
        return Err(bad_record(dir, record.seq, format!("sequence gap: expected seq {expected}")));
    }
    let archived = access_checked(dir, &record)?;
    Ok((record, archived))
}
