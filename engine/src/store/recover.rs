//! Recovery (SPEC 9 and 14): the state at the end of a journal directory from its newest valid
//! snapshot plus the journal's suffix, equal to a full replay.
//!
//! The rule (the one `verex run` applies on an existing journal):
//!
//! 1. One pass over every record, no engine: the reader verifies framing and the xxh3 chain,
//!    and the BLAKE3 attestation chain is recomputed; the rolling hash and the digest are
//!    kept at every seq a snapshot names.
//! 2. Candidates newest first. A snapshot is used only if it decodes (trailer, checksum,
//!    archive validation, restore, rebuilt state hash equal to its header's), its header's seq
//!    is its file name's and within the journal, and its header's journal hash and attestation
//!    digest equal the journal's at that seq. Each one that fails is named in
//!    [`Recovered::rejected`] with its reason; with none left, the journal is replayed from
//!    genesis.
//! 3. The records after the snapshot's seq are applied, each validated as an archive whose seq
//!    is its frame's and its signature checked under the one rule (the engine applies only
//!    verified records).
//!
//! Read-only: a torn tail is not cut here (the next writer cuts it); the records before it
//! are recovered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use verex_journal::JournalReader;

use super::manifest::{require_manifest, Manifest};
use super::snapshots::{list_snapshots, read_snapshot_file};
use super::StoreError;
use crate::attest::JournalDigest;
use crate::record::access_record;
use crate::snapshot::{decode_snapshot, SnapshotHeader};
use crate::verified::VerifiedRecord;
use crate::Engine;

/// A snapshot recovery did not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSnapshot {
    /// Its file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// The result of [`recover`].
pub struct Recovered {
    /// The engine at the journal's last record.
    pub engine: Engine,
    /// The manifest the journal was written with.
    pub manifest: Manifest,
    /// The snapshot it started from, and its seq (`None`: genesis).
    pub snapshot: Option<(PathBuf, u64)>,
    /// Every newer snapshot that was skipped, newest first, with its reason.
    pub rejected: Vec<RejectedSnapshot>,
    /// Records applied after the snapshot (or from genesis).
    pub replayed: u64,
}

/// Recovers the state at the end of the journal in `dir` (see the module docs for the rule).
///
/// ```no_run
/// let recovered = verex_engine::store::recover(std::path::Path::new("/var/lib/exchange/journal"))?;
/// for skipped in &recovered.rejected {
///     eprintln!("snapshot {} skipped: {}", skipped.path.display(), skipped.reason);
/// }
/// println!("seq {} state hash {:02x?}", recovered.engine.seq(), recovered.engine.state_hash());
/// # Ok::<(), verex_engine::store::StoreError>(())
/// ```
///
/// # Errors
/// [`StoreError::BadFile`] for a missing or bad manifest, [`StoreError::Journal`] for damage,
/// [`StoreError::BadRecord`] naming the first record that cannot be applied (a bad archive, a
/// bad signature, a seq gap).
pub fn recover(dir: &Path) -> Result<Recovered, StoreError> {
    let manifest = require_manifest(dir)?;
    let reader = JournalReader::open(dir)?;
    let candidates = list_snapshots(dir)?;
    let points = chain_points(dir, &reader, &candidates)?;
    let last_seq = reader.next_seq().saturating_sub(1);
    let mut rejected = Vec::new();
    let mut start = None;
    for (seq, path) in candidates.iter().rev() {
        match check_snapshot(*seq, path, &manifest, &points, last_seq) {
            Ok(engine) => {
                start = Some((path.clone(), *seq, engine));
                break;
            }
            Err(reason) => rejected.push(RejectedSnapshot { path: path.clone(), reason }),
        }
    }
    let (snapshot, mut engine) = match start {
        Some((path, seq, engine)) => (Some((path, seq)), engine),
        None => (None, manifest.engine()?),
    };
    let replayed = apply_suffix(dir, &reader, &mut engine)?;
    Ok(Recovered { engine, manifest, snapshot, rejected, replayed })
}

/// The journal's `(xxh3 hash, BLAKE3 digest)` at each candidate's seq, from one pass.
fn chain_points(
    dir: &Path,
    reader: &JournalReader,
    candidates: &[(u64, PathBuf)],
) -> Result<BTreeMap<u64, (u64, [u8; 32])>, StoreError> {
    let mut points = BTreeMap::new();
    if candidates.is_empty() {
        return Ok(points);
    }
    let mut digest = JournalDigest::default();
    for item in reader.iter() {
        let record = item?;
        digest.push(record.seq, record.payload).map_err(|expected| StoreError::BadRecord {
            dir: dir.to_path_buf(),
            seq: record.seq,
            reason: format!("the attestation chain needs seq {expected} here (the journal must start at seq 1)"),
        })?;
        if candidates.binary_search_by_key(&record.seq, |(seq, _)| *seq).is_ok() {
            points.insert(record.seq, (record.hash, digest.digest));
        }
    }
    Ok(points)
}

/// The engine of the snapshot at `seq`, or why it does not fit the journal.
fn check_snapshot(
    seq: u64,
    path: &Path,
    manifest: &Manifest,
    points: &BTreeMap<u64, (u64, [u8; 32])>,
    last_seq: u64,
) -> Result<Engine, String> {
    if seq > last_seq {
        return Err(format!("its seq {seq} is beyond the journal's last seq {last_seq}"));
    }
    let bytes = read_snapshot_file(path)?;
    let (header, engine) =
        decode_snapshot(&bytes, manifest.genesis, manifest.limits.limits()).map_err(|e| e.to_string())?;
    if header.seq != seq {
        return Err(format!("its header says seq {}, its name seq {seq}", header.seq));
    }
    header_mismatch(&header, points.get(&seq).copied()).map_or(Ok(engine), Err)
}

/// Why a snapshot's header does not fit the journal's chain values at its seq, if it does not.
fn header_mismatch(header: &SnapshotHeader, point: Option<(u64, [u8; 32])>) -> Option<String> {
    let Some((journal_hash, digest)) = point else {
        return Some(format!("the journal has no record at its seq {}", header.seq));
    };
    if header.journal_hash != journal_hash {
        return Some(format!(
            "its journal hash {:#018x} differs from the journal's {journal_hash:#018x} at seq {}: it belongs to \
             another journal, or the records up to it changed",
            header.journal_hash, header.seq
        ));
    }
    if header.attest_digest != digest {
        return Some(format!(
            "its attestation digest differs from the journal's BLAKE3 chain at seq {}: the records up to it changed",
            header.seq
        ));
    }
    None
}

/// Applies every record after `engine.seq()`; returns how many.
fn apply_suffix(dir: &Path, reader: &JournalReader, engine: &mut Engine) -> Result<u64, StoreError> {
    let start = engine.seq() + 1;
    if reader.next_seq() <= start {
        return Ok(0);
    }
    let bad = |seq: u64, reason: String| StoreError::BadRecord { dir: dir.to_path_buf(), seq, reason };
    let mut buf = engine.event_buf();
    let mut applied = 0;
    for item in reader.iter_from(start)? {
        let record = item?;
        let seq = record.seq;
        let archived = access_record(record.payload)
            .map_err(|e| bad(seq, format!("the payload is not a valid record archive: {e}")))?;
        if archived.seq.to_native() != seq {
            return Err(bad(seq, format!("the frame says seq {seq}, its record seq {}", archived.seq.to_native())));
        }
        let verified = VerifiedRecord::verify(archived).map_err(|e| bad(seq, format!("bad signature: {e}")))?;
        engine.apply(verified, &mut buf).map_err(|e| bad(seq, format!("the engine refused it: {e}")))?;
        applied += 1;
    }
    Ok(applied)
}
