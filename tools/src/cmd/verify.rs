//! `verex verify`: audits a journal and its attestations end to end and names the first seq
//! that fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use verex_engine::attest::JournalDigest;
use verex_engine::signing::hex;
use verex_engine::snapshot::decode_snapshot;
use verex_engine::Engine;
use verex_journal::Record;

use crate::attestations::{attestations_path, read_attestations, AttestationLog, Entry};
use crate::error::CliError;
use crate::io::{note, warn};
use crate::manifest::{require_manifest, Manifest};
use crate::rebuild::{bad_record, open_reader, replay_journal};
use crate::snapshots::{list_snapshots, read_snapshot_file};
use crate::tail::describe;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Audit a journal written by `verex run --journal`, and the attestations beside it, reading them \
only (nothing is modified), and name the first seq that fails. Checks, in seq order:

  framing and the xxh3 hash chain (segment headers, every frame, the chain across segments);
  every record validates as an archived transaction whose seq is its frame's, and seqs run \
gap-free from 1;
  every ed25519 signature verifies over the record's own bytes;
  the engine, built from the genesis keys and limits in DIR/verex.json, accepts the whole \
sequence (rule violations are `rejected` events, which are fine; a sequence the engine refuses \
is not);
  every attestation in DIR/attestations.jsonl, when the replay reaches its seq: it is signed \
by the genesis attest key, its journal digest equals the BLAKE3 chain recomputed over the \
records (a changed, inserted, removed or reordered record shows here even when its signature \
and the xxh3 chain were forged to pass: the error names the range of seqs it lies in), its \
state hash equals the replayed state's, and its signature verifies;
  no attestation names a seq beyond the journal's end, and the log has no torn last line;
  the bytes after the last record are zero.

A torn tail (a record after the last commit, cut short by a crash; recovery never cuts a \
record at or below the commit mark, DIR/commit.mark) fails verification too: it is reported with \
its seq and file, the records before it having passed. `verex run` on the journal would cut it \
and continue; verify, an audit tool, does not accept a journal that needs repair.

Snapshots in DIR/snapshots are derived data, not evidence: each is decoded and compared with \
the replay at its seq (journal hash, attestation digest, state hash); one that does not match \
is named in a warning (recovery would skip it) and does not change the exit status.

On success prints a summary (records, segments, last seq, last chain hash, attestations, state \
hash) and exits 0. On failure the error names the seq, the file when known, and the reason; \
exit status 1.";

/// Arguments of `verex verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
}

/// The journal's values at a snapshot's seq, for comparing with its header.
#[derive(Debug, Clone, Copy)]
struct Expected {
    journal_hash: u64,
    digest: [u8; 32],
    state_hash: [u8; 32],
}

/// The attestation checks, run as the replay reaches each seq.
struct Audit<'a> {
    dir: &'a Path,
    log: &'a AttestationLog,
    next: usize,
    attest_key: [u8; 32],
    digest: JournalDigest,
    /// The last attested seq that verified (0: none yet).
    last_good: u64,
    /// Snapshot seqs to record the replay's values at, and the values.
    snapshots: BTreeMap<u64, Option<Expected>>,
}

impl Audit<'_> {
    fn record(&mut self, engine: &Engine, record: &Record<'_>) -> Result<(), CliError> {
        let seq = record.seq;
        self.digest
            .push(seq, record.payload)
            .map_err(|expected| bad_record(self.dir, seq, format!("expected {expected}")))?;
        if let Some(slot) = self.snapshots.get_mut(&seq) {
            *slot = Some(Expected {
                journal_hash: record.hash,
                digest: self.digest.digest,
                state_hash: engine.state_hash(),
            });
        }
        if let Some(entry) = self.log.entries.get(self.next).filter(|e| e.attestation.seq == seq) {
            self.check(entry, engine)?;
            self.next += 1;
            self.last_good = seq;
        }
        Ok(())
    }

    fn check(&self, entry: &Entry, engine: &Engine) -> Result<(), CliError> {
        let attestation = &entry.attestation;
        let seq = attestation.seq;
        let at = format!("attestation ({} line {})", attestations_path(self.dir).display(), entry.line);
        let fail = |reason: String| Err(bad_record(self.dir, seq, format!("{at}: {reason}")));
        if attestation.signer != self.attest_key {
            return fail(format!(
                "signed by {}, not the genesis attest key {}",
                hex(&attestation.signer),
                hex(&self.attest_key)
            ));
        }
        if attestation.journal_digest != self.digest.digest {
            return fail(format!(
                "its journal digest {} differs from the BLAKE3 chain recomputed over the records ({}): a record in \
                 seqs {}..={seq} is not the one attested (changed, inserted, removed or reordered)",
                hex(&attestation.journal_digest),
                hex(&self.digest.digest),
                self.last_good + 1
            ));
        }
        let state_hash = engine.state_hash();
        if attestation.state_hash != state_hash {
            return fail(format!(
                "its state hash {} differs from the replayed state's {}",
                hex(&attestation.state_hash),
                hex(&state_hash)
            ));
        }
        if let Err(e) = attestation.verify(&self.attest_key) {
            return fail(format!("{e}: forged or altered"));
        }
        match self.log.link_problem(self.next) {
            Some(problem) => fail(problem),
            None => Ok(()),
        }
    }

    /// After the replay: attestations it never reached lie beyond the journal's end.
    fn finish(&self, last_seq: u64) -> Result<(), CliError> {
        match self.log.entries.get(self.next) {
            None => Ok(()),
            Some(entry) => Err(bad_record(
                self.dir,
                entry.attestation.seq,
                format!(
                    "attestation ({} line {}) names seq {}, beyond the journal's last seq {last_seq}: attested \
                     records are missing",
                    attestations_path(self.dir).display(),
                    entry.line,
                    entry.attestation.seq
                ),
            )),
        }
    }
}

/// Verifies the journal and its attestations.
///
/// # Errors
/// [`CliError::Journal`] for framing and chain failures, [`CliError::BadRecord`] for a record
/// or an attestation that fails a check or a torn tail, [`CliError::Damaged`] for an
/// attestation log that does not parse or has a torn last line, [`CliError::File`] for a
/// missing directory or manifest.
pub fn execute(args: &VerifyArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let reader = open_reader(dir)?;
    let manifest = require_manifest(dir)?;
    let log = read_attestations(dir)?;
    let snapshots = list_snapshots(dir)?;
    let mut audit = Audit {
        dir,
        log: &log,
        next: 0,
        attest_key: manifest.genesis.attest,
        digest: JournalDigest::default(),
        last_good: 0,
        snapshots: snapshots.iter().map(|(seq, _)| (*seq, None)).collect(),
    };
    let mut engine = manifest.engine()?;
    let replayed =
        replay_journal(dir, &reader, &mut engine, "verify", |engine, record, _, _| audit.record(engine, record))?;
    if let Some(torn) = reader.torn_tail()? {
        let reason = format!("{} (the {} records before it verify)", describe(&torn), replayed.records);
        return Err(bad_record(dir, torn.seq, reason));
    }
    audit.finish(engine.seq())?;
    if let Some(torn) = &log.torn {
        return Err(CliError::Damaged {
            file: attestations_path(dir).display().to_string(),
            reason: format!(
                "line {} is incomplete ({} bytes without a newline): a torn append (`verex run` cuts it)",
                torn.line, torn.bytes
            ),
        });
    }
    let consistent = check_snapshots(&snapshots, &audit.snapshots, &manifest);
    note(&format!(
        "verify: journal {} OK: {} records (seq 1 to {}) in {} segments; chain hash {:#018x}; every signature \
         verifies; the engine accepts the sequence; {} attestations verify (last at seq {}); {} of {} snapshots \
         match; state hash {}",
        dir.display(),
        replayed.records,
        engine.seq(),
        reader.segment_count(),
        replayed.last.map_or(verex_journal::GENESIS_HASH, |pos| pos.hash),
        log.entries.len(),
        log.last_seq(),
        consistent,
        snapshots.len(),
        hex(&engine.state_hash())
    ));
    Ok(())
}

/// Compares each snapshot's header with the replay at its seq; warns about each that differs.
/// Returns how many match.
fn check_snapshots(
    snapshots: &[(u64, PathBuf)],
    replayed: &BTreeMap<u64, Option<Expected>>,
    manifest: &Manifest,
) -> usize {
    let mut consistent = 0;
    for (seq, path) in snapshots {
        let problem = match replayed.get(seq).copied().flatten() {
            None => Some(format!("its seq {seq} is not in the journal")),
            Some(expected) => snapshot_problem(path, *seq, expected, manifest),
        };
        match problem {
            None => consistent += 1,
            Some(problem) => warn(&format!("snapshot {}: {problem} (recovery would skip it)", path.display())),
        }
    }
    consistent
}

fn snapshot_problem(path: &Path, seq: u64, expected: Expected, manifest: &Manifest) -> Option<String> {
    let bytes = match read_snapshot_file(path) {
        Ok(bytes) => bytes,
        Err(e) => return Some(e.to_string()),
    };
    let header = match decode_snapshot(&bytes, manifest.genesis, manifest.limits.limits()) {
        Ok((header, _)) => header,
        Err(e) => return Some(e.to_string()),
    };
    if header.seq != seq {
        return Some(format!("its header says seq {}, its name seq {seq}", header.seq));
    }
    if header.journal_hash != expected.journal_hash || header.attest_digest != expected.digest {
        return Some(format!("its journal hash or attestation digest differs from the journal's at seq {seq}"));
    }
    (header.state_hash != expected.state_hash).then(|| format!("its state hash differs from the replay's at seq {seq}"))
}
