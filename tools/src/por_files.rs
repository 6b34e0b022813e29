//! The files of a Proof of Reserves cycle (SPEC 10; formats in `docs/por.md`):
//!
//! ```text
//! DIR/root.json            the signed root: journal position, root hash, totals, own balances
//! DIR/proofs/<id>.json     one inclusion proof per account with a leaf
//! DIR/salt-seed.json       the cycle's salt seed: for auditors only, never published (mode 0600)
//! ```
//!
//! and the keys the PoR commands pin: the attest and custody public keys, from a journal's
//! manifest (`--journal DIR`) or given in hex.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use verex_engine::por::{Fault, PorError, Root};
use verex_engine::signing::{hex, parse_hex};

use crate::error::CliError;
use crate::manifest::require_manifest;

/// The root file's name in a cycle directory.
pub const ROOT_FILE: &str = "root.json";
/// The proofs' directory in a cycle directory.
pub const PROOFS_DIR: &str = "proofs";
/// The salt seed's file in a cycle directory.
pub const SEED_FILE: &str = "salt-seed.json";
/// `format` of the salt seed file.
pub const SEED_FORMAT: &str = "verex-por-salt-seed-v1";
/// Largest PoR file read (a root, a proof, a reserves or seed file): all are a few KB.
pub const MAX_POR_FILE_BYTES: u64 = 1 << 20;

/// A proof's path in a cycle directory.
pub fn proof_path(dir: &Path, account: u64) -> PathBuf {
    dir.join(PROOFS_DIR).join(format!("{account}.json"))
}

/// Reads a PoR file's text; an empty file is returned as is (the parser names it).
///
/// # Errors
/// [`CliError::Io`] when it cannot be read, [`CliError::Por`] (`out_of_range`) when it is
/// larger than [`MAX_POR_FILE_BYTES`].
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let metadata = std::fs::metadata(path).map_err(|e| CliError::io("open", path, e))?;
    if metadata.len() > MAX_POR_FILE_BYTES {
        let detail = format!("{} bytes, larger than any PoR file ({MAX_POR_FILE_BYTES})", metadata.len());
        return Err(CliError::por(path, PorError::new(Fault::OutOfRange, detail)));
    }
    let bytes = std::fs::read(path).map_err(|e| CliError::io("read", path, e))?;
    String::from_utf8(bytes).map_err(|_| CliError::por(path, PorError::new(Fault::Malformed, "not UTF-8 text")))
}

/// Reads and parses a root file (not yet checked: see [`Root::verify`]).
///
/// # Errors
/// As [`read_text`], and [`CliError::Por`] with the parser's fault.
pub fn read_root(path: &Path) -> Result<Root, CliError> {
    Root::from_json(&read_text(path)?).map_err(|e| CliError::por(path, e))
}

/// Refuses an output directory that exists and is not empty (a published cycle is never
/// overwritten).
///
/// # Errors
/// [`CliError::Usage`] for a non-empty directory.
pub fn check_output_dir(dir: &Path) -> Result<(), CliError> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(CliError::Usage(format!(
                "--out {}: the directory is not empty; a cycle's files are never overwritten",
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Creates `dir` for new output after [`check_output_dir`].
///
/// # Errors
/// [`CliError::Usage`] for a non-empty directory, [`CliError::Io`] when it cannot be created.
pub fn create_output_dir(dir: &Path) -> Result<(), CliError> {
    check_output_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("create", dir, e))
}

/// Writes `text` and a newline to a new file.
///
/// # Errors
/// [`CliError::Io`].
pub fn write_new(path: &Path, text: &str) -> Result<(), CliError> {
    let mut file =
        OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| CliError::io("create", path, e))?;
    file.write_all(text.as_bytes()).and_then(|()| file.write_all(b"\n")).map_err(|e| CliError::io("write", path, e))
}

/// Writes the salt seed file (mode 0600: it lets anyone holding it recompute every salt).
///
/// # Errors
/// [`CliError::Io`].
pub fn write_seed(path: &Path, seq: u64, seed: &[u8; 32]) -> Result<(), CliError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| CliError::io("create", path, e))?;
    let text = json!({"format": SEED_FORMAT, "seq": seq, "salt_seed": hex(seed)}).to_string();
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::io("write", path, e))
}

/// Reads a salt seed file: `(seq, seed)`.
///
/// # Errors
/// [`CliError::File`] for a file that is not one.
pub fn read_seed(path: &Path) -> Result<(u64, [u8; 32]), CliError> {
    let bad = |reason: &str| CliError::File { file: path.display().to_string(), reason: reason.to_string() };
    let value: Value = serde_json::from_str(&read_text(path)?).map_err(|_| bad("not JSON"))?;
    if value.get("format").and_then(Value::as_str) != Some(SEED_FORMAT) {
        return Err(bad(&format!("not a salt seed file (format {SEED_FORMAT})")));
    }
    let seq = value.get("seq").and_then(Value::as_u64).ok_or_else(|| bad("missing `seq`"))?;
    let seed = value
        .get("salt_seed")
        .and_then(Value::as_str)
        .and_then(parse_hex::<32>)
        .ok_or_else(|| bad("`salt_seed`: expected 64 hex digits"))?;
    Ok((seq, seed))
}

/// A public key given in hex on the command line.
///
/// # Errors
/// [`CliError::Usage`] naming the flag.
pub fn parse_public_key(text: &str, flag: &str) -> Result<[u8; 32], CliError> {
    parse_hex::<32>(text).ok_or_else(|| CliError::Usage(format!("{flag}: expected 64 hex digits, got {text:?}")))
}

/// The attest and custody public keys a check pins (`None`: not pinned).
#[derive(Debug, Clone, Copy, Default)]
pub struct PinnedKeys {
    /// The attest key (roots).
    pub attest: Option<[u8; 32]>,
    /// The custody key (reserves).
    pub custody: Option<[u8; 32]>,
}

/// The flags that pin the keys of `solvency` and `publish`.
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// Pin the attest and custody keys from this journal's manifest.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// The attest public key (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub attest_pubkey: Option<String>,
    /// The custody public key (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub custody_pubkey: Option<String>,
}

impl PinArgs {
    /// The keys these flags pin.
    ///
    /// # Errors
    /// As [`pinned_keys`].
    pub fn pinned(&self) -> Result<PinnedKeys, CliError> {
        pinned_keys(self.journal.as_deref(), self.attest_pubkey.as_deref(), self.custody_pubkey.as_deref())
    }
}

/// Where the verifying keys come from: `--journal DIR` (its manifest's genesis keys) or the
/// keys given in hex. `None`: not pinned.
///
/// # Errors
/// [`CliError::File`] for a journal without a manifest, [`CliError::Usage`] for bad hex.
pub fn pinned_keys(
    journal: Option<&Path>,
    attest: Option<&str>,
    custody: Option<&str>,
) -> Result<PinnedKeys, CliError> {
    let manifest = journal.map(require_manifest).transpose()?;
    let attest = match attest {
        Some(text) => Some(parse_public_key(text, "--attest-pubkey")?),
        None => manifest.map(|m| m.genesis.attest),
    };
    let custody = match custody {
        Some(text) => Some(parse_public_key(text, "--custody-pubkey")?),
        None => manifest.map(|m| m.genesis.custody),
    };
    Ok(PinnedKeys { attest, custody })
}
