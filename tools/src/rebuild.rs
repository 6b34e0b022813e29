//! Rebuilding an engine from a journal: every record is read in place from the segment
//! mapping, validated as an archive (no deserialisation, no copy) and applied.
//!
//! Shared by `run` (resuming on an existing journal), `replay` and `verify`; each passes a
//! visitor that sees every applied record and its events.

use std::path::Path;

use verex_engine::record::access_record;
use verex_engine::signing::verify_archived;
use verex_engine::tx::ArchivedSequencedTx;
use verex_engine::{Engine, EventBuf};
use verex_journal::{frame_len, JournalReader, GENESIS_HASH, SEGMENT_HEADER_BYTES};

use crate::error::CliError;
use crate::io::Progress;
use crate::tail::{segment_file, LogEnd};

/// What a replay went through.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// Records applied.
    pub records: u64,
    /// The rolling hash of the last record (`GENESIS_HASH` if there is none).
    pub last_hash: u64,
    /// Where the verified records end, for [`crate::tail::diagnose`]; `None` without segments.
    pub end: Option<LogEnd>,
}

/// Opens a journal for reading; the directory must exist.
///
/// # Errors
/// [`CliError::File`] for a missing directory; [`CliError::Journal`] when a segment header or
/// the chain across segments is broken.
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

/// Applies every record of `reader` to `engine` (which must be fresh: the journal must start
/// at `engine.seq() + 1`), calling `visit` after each with the engine, the record and its
/// events.
///
/// Each record's frame is verified by the reader (seq, segment, xxh3 chain); its payload is
/// then validated as an archived `SequencedTx` whose seq is the frame's, its signature checked
/// when `verify_signatures`, and the engine must accept it (`apply` returns `Ok`).
///
/// # Errors
/// [`CliError::Journal`] for a frame that fails in a segment that is not the last (damage in
/// the last one ends the records: see [`crate::tail`]), [`CliError::BadRecord`] naming the
/// first record that fails a check, or whatever `visit` returns.
pub fn replay_journal(
    dir: &Path,
    reader: &JournalReader,
    engine: &mut Engine,
    verify_signatures: bool,
    progress_label: &'static str,
    mut visit: impl FnMut(&Engine, &ArchivedSequencedTx, &EventBuf) -> Result<(), CliError>,
) -> Result<Replayed, CliError> {
    let mut buf = engine.event_buf();
    let mut progress = Progress::new(progress_label);
    let total = reader.next_seq().saturating_sub(1);
    if let Some(first) = reader.first_seq().filter(|&first| first != engine.seq() + 1) {
        return Err(bad_record(
            dir,
            first,
            format!("the journal starts at seq {first}; replaying it needs the state at seq {}", first - 1),
        ));
    }
    let mut records = 0u64;
    let mut last = None;
    for item in reader.iter() {
        let record = item?;
        let seq = record.seq;
        let expected = engine.seq() + 1;
        if seq != expected {
            return Err(bad_record(dir, seq, format!("sequence gap: expected seq {expected}")));
        }
        let archived = access_record(record.payload)
            .map_err(|e| bad_record(dir, seq, format!("the payload is not a valid record archive: {e}")))?;
        let archived_seq = archived.seq.to_native();
        if archived_seq != seq {
            return Err(bad_record(dir, seq, format!("the frame says seq {seq}, its record says seq {archived_seq}")));
        }
        if verify_signatures {
            verify_archived(&archived.signed).map_err(|e| bad_record(dir, seq, format!("bad signature: {e}")))?;
        }
        engine.apply(archived, &mut buf).map_err(|e| bad_record(dir, seq, format!("the engine refused it: {e}")))?;
        visit(engine, archived, &buf)?;
        records += 1;
        last = Some((record.segment_index, record.frame_offset + frame_len(record.payload.len() as u64), record.hash));
        progress.update(records, (records, Some(total)));
    }
    let last_hash = last.map_or(GENESIS_HASH, |(_, _, hash)| hash);
    let end = (reader.segment_count() > 0).then(|| {
        let segment_index = reader.segment_count() as u64;
        let offset = match last {
            Some((index, end_offset, _)) if index == segment_index => end_offset,
            _ => SEGMENT_HEADER_BYTES,
        };
        let next_seq = if records > 0 { engine.seq() + 1 } else { reader.first_seq().unwrap_or(1) };
        LogEnd { file: segment_file(dir, segment_index), segment_index, offset, next_seq, prev_hash: last_hash }
    });
    Ok(Replayed { records, last_hash, end })
}
