//! The attestation log kept beside a journal: `DIR/attestations.jsonl`.
//!
//! One line per attestation, in strictly increasing seq order, each the engine's JSON export
//! ([`Attestation::to_json`]): `{"seq","journal_digest","state_hash","prev","signer",
//! "signature"}`, hex. Each line's `prev` is the [`Attestation::link`] of the line before it
//! (zeros on the first line), so a line removed or replaced in the middle is found. The file *is* the export: anyone holding it and the journal can check every line
//! (`verex verify`); `verex attestations` prints it after checking each signature.
//!
//! Written only by the replica ([`crate::replica`]), one line at a time: `write` then
//! `fdatasync`, before the next is written. A crash can therefore leave at most one line
//! without its newline at the end of the file: a torn append. `verex run` cuts it (reported on
//! standard error; the replica writes that attestation again as it catches up); `verify`, an
//! audit, fails on it, as it does on a torn journal tail.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use verex_engine::attest::Attestation;

use crate::error::CliError;
use crate::recover::ChainScan;

/// The log's file name inside the journal directory.
pub const ATTESTATIONS_FILE: &str = "attestations.jsonl";
/// Longest line accepted: an attestation line is under 400 bytes.
pub const MAX_ATTESTATION_LINE_BYTES: usize = 1024;

/// The log's path in `dir`.
pub fn attestations_path(dir: &Path) -> PathBuf {
    dir.join(ATTESTATIONS_FILE)
}

/// One attestation and the line it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file.
    pub line: u64,
    /// The parsed attestation (not yet checked against anything).
    pub attestation: Attestation,
}

/// A last line cut short by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// Its 1-based line number.
    pub line: u64,
    /// Where it starts: the length the file has without it.
    pub offset: u64,
    /// How many bytes it has.
    pub bytes: u64,
}

/// The parsed log.
#[derive(Debug, Clone, Default)]
pub struct AttestationLog {
    /// Every complete line, in file order (seqs strictly increasing).
    pub entries: Vec<Entry>,
    /// A torn last line, if there is one.
    pub torn: Option<TornLine>,
}

impl AttestationLog {
    /// The seq of the last attestation (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.attestation.seq)
    }

    /// Why entry `index` does not link to the entry before it (its `prev` must be that
    /// entry's [`Attestation::link`], zeros for the first), if it does not.
    pub fn link_problem(&self, index: usize) -> Option<String> {
        let entry = self.entries.get(index)?;
        let (expected, after) = match index.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(before) => {
                (before.attestation.link(), format!("line {} (seq {})", before.line, before.attestation.seq))
            }
            None => ([0; 32], "the start of the log".to_string()),
        };
        (entry.attestation.prev != expected).then(|| {
            format!(
                "its prev does not link to {after}: an attestation between them was removed, or one of them changed"
            )
        })
    }

    /// Checks every link, in order.
    ///
    /// # Errors
    /// [`CliError::Damaged`] naming the line of the first entry that does not link.
    pub fn check_links(&self, dir: &Path) -> Result<(), CliError> {
        for (index, entry) in self.entries.iter().enumerate() {
            if let Some(problem) = self.link_problem(index) {
                return Err(CliError::Damaged {
                    file: attestations_path(dir).display().to_string(),
                    reason: format!("line {} (seq {}): {problem}", entry.line, entry.attestation.seq),
                });
            }
        }
        Ok(())
    }

    /// The attestation at `seq`, if the log has one.
    pub fn at(&self, seq: u64) -> Option<&Entry> {
        self.entries.binary_search_by_key(&seq, |e| e.attestation.seq).ok().map(|i| &self.entries[i])
    }
}

/// Reads and parses the log of the journal in `dir`; a missing file is an empty log.
///
/// # Errors
/// [`CliError::Damaged`] naming the line of a complete line that is not an attestation, or
/// whose seq does not increase; [`CliError::Io`] when the file cannot be read. Links are
/// checked by [`AttestationLog::link_problem`], in order with the other checks of each line.
pub fn read_attestations(dir: &Path) -> Result<AttestationLog, CliError> {
    let path = attestations_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AttestationLog::default()),
        Err(e) => return Err(CliError::io("read", &path, e)),
    };
    let damaged = |line: u64, reason: String| CliError::Damaged {
        file: path.display().to_string(),
        reason: format!("line {line}: {reason}"),
    };
    let mut log = AttestationLog::default();
    let mut offset = 0usize;
    let mut line = 0u64;
    while offset < bytes.len() {
        line += 1;
        let rest = &bytes[offset..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            log.torn = Some(TornLine { line, offset: offset as u64, bytes: rest.len() as u64 });
            break;
        };
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| damaged(line, "not valid UTF-8".into()))?;
        if len > MAX_ATTESTATION_LINE_BYTES {
            return Err(damaged(line, format!("longer than {MAX_ATTESTATION_LINE_BYTES} bytes")));
        }
        let attestation = Attestation::from_json(text).map_err(|e| damaged(line, e.to_string()))?;
        let previous = log.last_seq();
        if attestation.seq == 0 {
            return Err(damaged(line, "seq 0: an attestation covers at least one record".into()));
        }
        if attestation.seq <= previous {
            return Err(damaged(
                line,
                format!("seq {} does not follow seq {previous}: seqs must increase", attestation.seq),
            ));
        }
        log.entries.push(Entry { line, attestation });
        offset += len + 1;
    }
    Ok(log)
}

/// Cuts a torn last line: truncates the file to where it starts and fsyncs.
///
/// # Errors
/// [`CliError::Io`] when the file cannot be truncated or synced.
pub fn cut_torn_line(dir: &Path, torn: &TornLine) -> Result<(), CliError> {
    let path = attestations_path(dir);
    let file = OpenOptions::new().write(true).open(&path).map_err(|e| CliError::io("open", &path, e))?;
    file.set_len(torn.offset).and_then(|()| file.sync_all()).map_err(|e| CliError::io("truncate", &path, e))
}

/// Appends attestations to the log, each durable before `append` returns.
#[derive(Debug)]
pub struct AttestationWriter {
    path: PathBuf,
    file: File,
}

impl AttestationWriter {
    /// Opens the log of `dir` for appending, creating it (and making its name durable) if
    /// needed.
    ///
    /// # Errors
    /// [`CliError::Io`] when the file cannot be opened or the directory synced.
    pub fn open(dir: &Path) -> Result<Self, CliError> {
        let path = attestations_path(dir);
        let existed = path.exists();
        let file =
            OpenOptions::new().append(true).create(true).open(&path).map_err(|e| CliError::io("open", &path, e))?;
        if !existed {
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| CliError::io("sync", dir, e))?;
        }
        Ok(Self { path, file })
    }

    /// Appends one line and fdatasyncs it.
    ///
    /// # Errors
    /// [`CliError::Io`] when writing or syncing fails; the writer must not be used after that
    /// (the line may be torn: the next `verex run` cuts it).
    pub fn append(&mut self, attestation: &Attestation) -> Result<(), CliError> {
        let mut line = attestation.to_json();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| CliError::io("append to", &self.path, e))
    }
}

/// Checks the log against the journal's recomputed chain before `run` appends to the
/// journal: every attestation must be signed by the genesis attest key, lie within the journal
/// (an attested record that is gone would be contradicted by whatever is appended in its
/// place), and carry the journal's digest at its seq. Its state hash is re-checked by the
/// replica as it passes the seq, and by `verify`. `scan` must hold the chain values at every
/// attested seq.
///
/// # Errors
/// [`CliError::Damaged`] naming the line and seq of the first attestation that fails.
pub fn check_against_chain(
    dir: &Path,
    log: &AttestationLog,
    scan: &ChainScan,
    attest_key: &[u8; 32],
) -> Result<(), CliError> {
    for (index, entry) in log.entries.iter().enumerate() {
        let attestation = &entry.attestation;
        let seq = attestation.seq;
        let problem = if let Some(problem) = log.link_problem(index) {
            Some(problem)
        } else if seq > scan.last_seq() {
            Some(format!(
                "it attests seq {seq}, beyond the journal's last seq {}: attested records are missing",
                scan.last_seq()
            ))
        } else if scan.points.get(&seq).is_none_or(|p| p.digest != attestation.journal_digest) {
            Some(format!("its journal digest differs from the journal's BLAKE3 chain at seq {seq}"))
        } else {
            attestation.verify(attest_key).err().map(|e| e.to_string())
        };
        if let Some(problem) = problem {
            return Err(CliError::Damaged {
                file: attestations_path(dir).display().to_string(),
                reason: format!(
                    "line {} (seq {seq}): {problem}; refusing to append to a journal its attestations contradict \
                     (`verex verify` names what differs)",
                    entry.line
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use verex_engine::signing::{dev_role_key, Role};

    /// The attestations at `seqs`, each linked to the one before.
    fn chain(seqs: &[u64]) -> Vec<Attestation> {
        let mut prev = [0; 32];
        seqs.iter()
            .map(|&seq| {
                let attestation = Attestation::sign(seq, [1; 32], [2; 32], prev, &dev_role_key(Role::Attest));
                prev = attestation.link();
                attestation
            })
            .collect()
    }

    #[test]
    fn appended_lines_read_back_and_a_torn_last_line_is_found_and_cut() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(read_attestations(dir.path()).expect("empty").entries.is_empty());
        let mut writer = AttestationWriter::open(dir.path()).expect("open");
        let attestations = chain(&[10, 20]);
        writer.append(&attestations[0]).and_then(|()| writer.append(&attestations[1])).expect("append");
        let log = read_attestations(dir.path()).expect("read");
        assert_eq!(log.entries.iter().map(|e| (e.line, e.attestation.seq)).collect::<Vec<_>>(), [(1, 10), (2, 20)]);
        assert_eq!(log.at(20).map(|e| e.attestation), Some(attestations[1]));
        let full = std::fs::read(attestations_path(dir.path())).expect("read file");
        let torn_at = full.len() as u64;
        std::fs::write(attestations_path(dir.path()), [&full[..], &full[..30]].concat()).expect("write");
        let log = read_attestations(dir.path()).expect("read torn");
        assert_eq!(log.torn, Some(TornLine { line: 3, offset: torn_at, bytes: 30 }));
        cut_torn_line(dir.path(), log.torn.as_ref().expect("torn")).expect("cut");
        assert_eq!(std::fs::read(attestations_path(dir.path())).expect("read"), full);
    }

    #[test]
    fn a_bad_line_or_a_seq_that_does_not_increase_names_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let twice = chain(&[10, 10]);
        let lines = format!("{}\n{}\n", twice[0].to_json(), twice[1].to_json());
        std::fs::write(attestations_path(dir.path()), lines).expect("write");
        let err = read_attestations(dir.path()).expect_err("repeated seq").to_string();
        assert!(err.contains("line 2") && err.contains("seq 10"), "{err}");
        std::fs::write(attestations_path(dir.path()), "{\"seq\":1}\n").expect("write");
        let err = read_attestations(dir.path()).expect_err("missing fields").to_string();
        assert!(err.contains("line 1") && err.contains("journal_digest"), "{err}");
    }

    #[test]
    fn a_line_removed_from_the_middle_breaks_the_chain_and_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let attestations = chain(&[10, 20, 30]);
        let write = |lines: &[&Attestation]| {
            let text: String = lines.iter().map(|a| format!("{}\n", a.to_json())).collect();
            std::fs::write(attestations_path(dir.path()), text).expect("write");
        };
        let links = || read_attestations(dir.path()).expect("parses").check_links(dir.path());
        write(&[&attestations[0], &attestations[1], &attestations[2]]);
        assert!(links().is_ok());
        write(&[&attestations[0], &attestations[2]]);
        let err = links().expect_err("a removed line").to_string();
        assert!(err.contains("line 2") && err.contains("seq 30") && err.contains("removed"), "{err}");
        write(&[&attestations[1], &attestations[2]]);
        let err = links().expect_err("the first removed").to_string();
        assert!(err.contains("line 1") && err.contains("start of the log"), "{err}");
    }
}
