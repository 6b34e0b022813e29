//! Recovery: the state at a journal's end from the newest valid snapshot plus the journal's
//! suffix (SPEC section 9), equal to a full replay by construction and by test.
//!
//! The rule, shared by `verex run` (on an existing journal), `verex replay --snapshot` /
//! `--snapshots` and `verex snapshot`:
//!
//! 1. One pass over every record (no engine): the reader verifies framing and the xxh3
//!    chain, and the BLAKE3 attestation chain `d[n]` is recomputed; the rolling hash and the
//!    digest are kept at every seq a snapshot (or an attestation) names.
//! 2. Candidates newest first. A snapshot is used only if it decodes (trailer, checksum,
//!    `rkyv` validation, restore, its rebuilt state hash equals its header's), its header's
//!    seq is its file name's and within the journal, and its header's journal hash and
//!    attestation digest equal the journal's at that seq. Each one that fails is named on
//!    standard error with the reason and skipped for the next older one; when none is left,
//!    the whole journal is replayed from genesis.
//! 3. The records after the snapshot's seq are applied, each validated as `replay` does.
//!
//! The pass in step 1 costs one BLAKE3 over the journal's bytes: cheap next to applying the
//! records, and it makes the digest a snapshot carries a checked value rather than a trusted
//! one. An explicitly named snapshot (`--snapshot FILE`) that fails a check is an error, not
//! a fallback.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use verex_engine::attest::JournalDigest;
use verex_engine::snapshot::{decode_snapshot, SnapshotHeader};
use verex_engine::tx::ArchivedSequencedTx;
use verex_engine::{Engine, EventBuf};
use verex_journal::{JournalReader, Record, GENESIS_HASH};

use crate::error::CliError;
use crate::io::{note, warn};
use crate::manifest::Manifest;
use crate::rebuild::{bad_record, replay_journal, RecordPos, Replayed};
use crate::snapshots::{list_snapshots, read_snapshot_file};

/// Where the state to continue from comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Genesis: replay every record.
    Genesis,
    /// The newest valid snapshot in `DIR/snapshots`, else genesis.
    Newest,
    /// This snapshot file, which must be valid for the journal.
    File(PathBuf),
}

/// The journal's chain values at one seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPoint {
    /// `h[seq]`, the xxh3 rolling hash.
    pub journal_hash: u64,
    /// `d[seq]`, the BLAKE3 attestation digest.
    pub digest: [u8; 32],
}

/// What one pass over the journal's records found.
#[derive(Debug, Clone, Default)]
pub struct ChainScan {
    /// The digest after the last record.
    pub end: JournalDigest,
    /// The last record.
    pub last: Option<RecordPos>,
    /// The chain values at each wanted seq present in the journal (seq 0 included if wanted).
    pub points: BTreeMap<u64, ChainPoint>,
}

impl ChainScan {
    /// The journal's last seq (0 for an empty journal).
    pub fn last_seq(&self) -> u64 {
        self.end.seq
    }

    /// The rolling hash after the last record.
    pub fn last_hash(&self) -> u64 {
        self.last.map_or(GENESIS_HASH, |pos| pos.hash)
    }
}

/// Reads every record once: recomputes the BLAKE3 chain, keeps the chain values at `wanted`
/// seqs, and calls `visit` with each record.
///
/// # Errors
/// [`CliError::Journal`] for damage the reader finds, [`CliError::BadRecord`] for a journal
/// that does not start at seq 1 (its chain cannot be recomputed) or has a gap, or what
/// `visit` returns.
pub fn scan_chain(
    dir: &Path,
    reader: &JournalReader,
    wanted: &BTreeSet<u64>,
    mut visit: impl FnMut(&Record<'_>) -> Result<(), CliError>,
) -> Result<ChainScan, CliError> {
    let mut scan = ChainScan::default();
    if wanted.contains(&0) {
        scan.points.insert(0, ChainPoint { journal_hash: GENESIS_HASH, digest: scan.end.digest });
    }
    if let Some(first) = reader.first_seq().filter(|&first| first != 1) {
        let reason = format!("the journal starts at seq {first}: its attestation chain cannot be recomputed");
        return Err(bad_record(dir, first, reason));
    }
    for item in reader.iter() {
        let record = item?;
        scan.end
            .push(record.seq, record.payload)
            .map_err(|expected| bad_record(dir, record.seq, format!("sequence gap: expected seq {expected}")))?;
        if wanted.contains(&record.seq) {
            scan.points.insert(record.seq, ChainPoint { journal_hash: record.hash, digest: scan.end.digest });
        }
        visit(&record)?;
        scan.last = Some(RecordPos::of(&record));
    }
    Ok(scan)
}

/// Why a snapshot's header does not fit the journal, if it does not.
pub fn header_mismatch(header: &SnapshotHeader, scan: &ChainScan) -> Option<String> {
    if header.seq > scan.last_seq() {
        return Some(format!("it was taken at seq {}, beyond the journal's last seq {}", header.seq, scan.last_seq()));
    }
    let Some(point) = scan.points.get(&header.seq) else {
        return Some(format!("the journal has no chain values at its seq {}", header.seq));
    };
    if header.journal_hash != point.journal_hash {
        return Some(format!(
            "its journal hash {:#018x} differs from the journal's {:#018x} at seq {}: it belongs to another \
             journal, or the journal's records up to it changed",
            header.journal_hash, point.journal_hash, header.seq
        ));
    }
    if header.attest_digest != point.digest {
        return Some(format!(
            "its attestation digest differs from the journal's BLAKE3 chain at seq {}: the records up to it \
             changed",
            header.seq
        ));
    }
    None
}

/// A snapshot recovery used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedSnapshot {
    /// Its file.
    pub path: PathBuf,
    /// Its seq.
    pub seq: u64,
}

/// The result of recovery.
pub struct Recovered {
    /// The engine at the journal's end.
    pub engine: Engine,
    /// The snapshot it started from (`None`: genesis).
    pub from: Option<UsedSnapshot>,
    /// With [`Options::keep_base`]: a copy of the engine before the suffix was applied, and
    /// the digest at its seq.
    pub base: Option<(Engine, JournalDigest)>,
    /// The pass over the journal.
    pub scan: ChainScan,
    /// The suffix applied.
    pub suffix: Replayed,
}

/// How to recover.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the state comes from.
    pub source: Source,
    /// Keep a copy of the engine at the snapshot's seq (for a replica that catches up).
    pub keep_base: bool,
    /// Seqs whose chain values the caller wants from the pass (attested seqs, say).
    pub extra_points: BTreeSet<u64>,
    /// Progress and note label (`run`, `replay`, ...).
    pub label: &'static str,
}

/// Recovers the state at the end of the journal in `dir` (see the module docs for the rule).
/// `observe` sees every record during the pass; `visit` sees each applied record of the
/// suffix with its events.
///
/// # Errors
/// [`CliError::Damaged`] for an explicitly named snapshot that fails a check, the errors of
/// [`scan_chain`] and [`replay_journal`], or what the callbacks return.
pub fn recover(
    dir: &Path,
    reader: &JournalReader,
    manifest: &Manifest,
    options: &Options,
    observe: impl FnMut(&Record<'_>) -> Result<(), CliError>,
    visit: impl FnMut(&Engine, &Record<'_>, &ArchivedSequencedTx, &EventBuf) -> Result<(), CliError>,
) -> Result<Recovered, CliError> {
    if options.source == Source::Genesis {
        return recover_from_genesis(dir, reader, manifest, options, observe, visit);
    }
    let (from, mut engine, scan) = start_from_snapshot(dir, reader, manifest, options, u64::MAX, observe)?;
    let base = options.keep_base.then(|| {
        let seq = engine.seq();
        let digest =
            scan.points.get(&seq).map_or(JournalDigest::default(), |p| JournalDigest { seq, digest: p.digest });
        (engine.clone(), digest)
    });
    let suffix = replay_journal(dir, reader, &mut engine, options.label, visit)?;
    Ok(Recovered { engine, from, base, scan, suffix })
}

/// The state a snapshot source starts from: the named snapshot (which must fit the journal and
/// be at or before `at_most`), or the newest in `DIR/snapshots` at or before `at_most` that
/// fits (each one skipped named), else genesis; and the pass over the journal that checked it,
/// with the chain values at `options.extra_points` too.
fn start_from_snapshot(
    dir: &Path,
    reader: &JournalReader,
    manifest: &Manifest,
    options: &Options,
    at_most: u64,
    observe: impl FnMut(&Record<'_>) -> Result<(), CliError>,
) -> Result<(Option<UsedSnapshot>, Engine, ChainScan), CliError> {
    let named = match &options.source {
        Source::File(path) => Some(decode_named(path, manifest)?),
        _ => None,
    };
    if let Some((header, _, path)) = named.as_ref().filter(|(header, _, _)| header.seq > at_most) {
        let reason = format!("snapshot {} is at seq {}, after seq {at_most}", path.display(), header.seq);
        return Err(CliError::Usage(reason));
    }
    let candidates: Vec<(u64, PathBuf)> = match options.source {
        Source::Newest => list_snapshots(dir)?.into_iter().filter(|(seq, _)| *seq <= at_most).collect(),
        _ => Vec::new(),
    };
    let mut wanted: BTreeSet<u64> = candidates.iter().map(|(seq, _)| *seq).collect();
    wanted.extend(named.iter().map(|(header, _, _)| header.seq));
    wanted.extend(options.extra_points.iter().copied());
    let scan = scan_chain(dir, reader, &wanted, observe)?;
    let chosen = match named {
        Some((header, engine, path)) => {
            if let Some(reason) = header_mismatch(&header, &scan) {
                return Err(CliError::Damaged { file: path.display().to_string(), reason });
            }
            Some((UsedSnapshot { path, seq: header.seq }, engine))
        }
        None => choose_newest(&candidates, &scan, manifest),
    };
    if chosen.is_none() && !candidates.is_empty() {
        warn(&format!("{}: no usable snapshot: replaying the whole journal", options.label));
    }
    Ok(match chosen {
        Some((used, engine)) => (Some(used), engine, scan),
        None => (None, manifest.engine()?, scan),
    })
}

/// A full replay, folding the chain as it goes (one pass, no separate scan).
fn recover_from_genesis(
    dir: &Path,
    reader: &JournalReader,
    manifest: &Manifest,
    options: &Options,
    mut observe: impl FnMut(&Record<'_>) -> Result<(), CliError>,
    mut visit: impl FnMut(&Engine, &Record<'_>, &ArchivedSequencedTx, &EventBuf) -> Result<(), CliError>,
) -> Result<Recovered, CliError> {
    let mut engine = manifest.engine()?;
    let base = options.keep_base.then(|| (engine.clone(), JournalDigest::default()));
    let mut scan = ChainScan::default();
    if options.extra_points.contains(&0) {
        scan.points.insert(0, ChainPoint { journal_hash: GENESIS_HASH, digest: scan.end.digest });
    }
    let suffix = replay_journal(dir, reader, &mut engine, options.label, |engine, record, archived, buf| {
        observe(record)?;
        scan.end
            .push(record.seq, record.payload)
            .map_err(|expected| bad_record(dir, record.seq, format!("sequence gap: expected seq {expected}")))?;
        if options.extra_points.contains(&record.seq) {
            scan.points.insert(record.seq, ChainPoint { journal_hash: record.hash, digest: scan.end.digest });
        }
        visit(engine, record, archived, buf)
    })?;
    scan.last = suffix.last;
    Ok(Recovered { engine, from: None, base, scan, suffix })
}

/// Decodes a snapshot named on the command line; any failure is an error.
fn decode_named(path: &Path, manifest: &Manifest) -> Result<(SnapshotHeader, Engine, PathBuf), CliError> {
    let bytes = read_snapshot_file(path)?;
    let (header, engine) = decode_snapshot(&bytes, manifest.genesis, manifest.limits.limits())
        .map_err(|e| CliError::Damaged { file: path.display().to_string(), reason: e.to_string() })?;
    Ok((header, engine, path.to_path_buf()))
}

/// The newest candidate that decodes and fits the journal; each one skipped is named.
fn choose_newest(
    candidates: &[(u64, PathBuf)],
    scan: &ChainScan,
    manifest: &Manifest,
) -> Option<(UsedSnapshot, Engine)> {
    for (seq, path) in candidates.iter().rev() {
        let skip = |reason: String| warn(&format!("snapshot {} skipped: {reason}", path.display()));
        if *seq > scan.last_seq() {
            skip(format!("its seq {seq} is beyond the journal's last seq {}", scan.last_seq()));
            continue;
        }
        let started = Instant::now();
        let decoded = read_snapshot_file(path).map_err(|e| e.to_string()).and_then(|bytes| {
            decode_snapshot(&bytes, manifest.genesis, manifest.limits.limits()).map_err(|e| e.to_string())
        });
        let (header, engine) = match decoded {
            Ok(decoded) => decoded,
            Err(reason) => {
                skip(reason);
                continue;
            }
        };
        if header.seq != *seq {
            skip(format!("its header says seq {}, its name seq {seq}", header.seq));
            continue;
        }
        if let Some(reason) = header_mismatch(&header, scan) {
            skip(reason);
            continue;
        }
        note(&format!(
            "snapshot {} (seq {seq}) loaded and checked in {:.3} s",
            path.display(),
            started.elapsed().as_secs_f64()
        ));
        return Some((UsedSnapshot { path: path.clone(), seq: *seq }, engine));
    }
    None
}

/// The state at a chosen seq: what a Proof of Reserves cycle or a stress report is built from.
pub struct AtSeq {
    /// The engine at the seq.
    pub engine: Engine,
    /// The journal's BLAKE3 digest `d[seq]`.
    pub digest: JournalDigest,
    /// The snapshot it started from (`None`: genesis).
    pub from: Option<UsedSnapshot>,
    /// Records applied after the start.
    pub records: u64,
}

/// Rebuilds the state at seq `at` (the journal's last seq when `None`), off any engine's hot
/// path: from genesis, from the newest snapshot at or before `at` that fits the journal
/// ([`Source::Newest`], each one skipped named), or from a named snapshot, which must be at or
/// before `at`; then the records up to `at`, each validated and its signature checked as
/// `replay` does. A snapshot path first reads the journal once for its chain (as [`recover`]).
///
/// # Errors
/// [`CliError::Usage`] for a seq the journal does not hold (or a named snapshot after it),
/// and the errors of [`recover`].
pub fn recover_at(
    dir: &Path,
    reader: &JournalReader,
    manifest: &Manifest,
    source: &Source,
    at: Option<u64>,
    label: &'static str,
) -> Result<AtSeq, CliError> {
    let last = reader.next_seq().saturating_sub(1);
    let at = at.unwrap_or(last);
    if at == 0 || at > last {
        return Err(CliError::Usage(format!("--at {at}: the journal {} holds seqs 1 to {last}", dir.display())));
    }
    if *source == Source::Genesis {
        let mut engine = manifest.engine()?;
        let mut digest = JournalDigest::default();
        let replayed = crate::rebuild::replay_journal_until(dir, reader, &mut engine, at, label, |_, record, _, _| {
            digest
                .push(record.seq, record.payload)
                .map_err(|expected| bad_record(dir, record.seq, format!("sequence gap: expected seq {expected}")))
        })?;
        return Ok(AtSeq { engine, digest, from: None, records: replayed.records });
    }
    let options = Options { source: source.clone(), keep_base: false, extra_points: BTreeSet::from([at]), label };
    let (from, mut engine, scan) = start_from_snapshot(dir, reader, manifest, &options, at, |_| Ok(()))?;
    let records = if engine.seq() < at {
        crate::rebuild::replay_journal_until(dir, reader, &mut engine, at, label, |_, _, _, _| Ok(()))?.records
    } else {
        0
    };
    let point = scan.points.get(&at).ok_or_else(|| bad_record(dir, at, "the journal has no record at this seq"))?;
    Ok(AtSeq { engine, digest: JournalDigest { seq: at, digest: point.digest }, from, records })
}
