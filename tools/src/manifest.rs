//! The engine manifest kept next to a journal: which genesis keys and limits its records were
//! run with.
//!
//! A journal holds only transactions (the journal knows nothing else, by design), but the
//! state they produce also depends on the operator keys that authenticate operator ops and on
//! the limits that size the engine's pools (running out is a `limit_reached` rejection). So
//! `verex run` writes `DIR/verex.json` when it creates a journal, before the first record:
//!
//! ```text
//! {"format":1,"limits":"small","genesis":{"admin":"<hex>","custody":"<hex>","oracle":"<hex>","attest":"<hex>"}}
//! ```
//!
//! and `run` (on resume), `replay` and `verify` build their engine from it. Written to a
//! temporary file, fsynced, renamed into place and the directory fsynced, so a crash leaves
//! either no manifest or a whole one. The journal crate ignores files that are not segments.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde_json::{Map, Value};
use verex_engine::signing::{hex, parse_hex, Role};
use verex_engine::{Engine, Genesis, Limits};

use crate::error::CliError;
use crate::keys::MAX_CONFIG_FILE_BYTES;

/// The manifest's file name inside the journal directory.
pub const MANIFEST_FILE: &str = "verex.json";
/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u64 = 1;

/// Which engine limits to allocate (a named preset, so that a manifest stays readable when
/// the limits gain fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LimitsArg {
    /// A million accounts and orders (the tables are pre-sized at start-up).
    Production,
    /// About a thousand accounts and four thousand orders: quick to allocate, for tests.
    Small,
}

impl LimitsArg {
    /// The limits of the preset.
    pub fn limits(self) -> Limits {
        match self {
            Self::Production => Limits::production(),
            Self::Small => Limits::small(),
        }
    }

    /// The preset's name, as `--limits` and the manifest spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Small => "small",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Production, Self::Small].into_iter().find(|preset| preset.name() == name)
    }
}

/// What a journal's records were run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// The limits preset.
    pub limits: LimitsArg,
    /// The operator keys.
    pub genesis: Genesis,
}

impl Manifest {
    /// A fresh engine for replaying the journal from seq 1.
    ///
    /// # Errors
    /// [`CliError::Engine`] for limits the engine refuses.
    pub fn engine(&self) -> Result<Engine, CliError> {
        Ok(Engine::new(self.genesis, self.limits.limits())?)
    }

    /// The manifest as one JSON object (what `verex.json` holds, and what a replicated
    /// stream's `manifest` subject carries).
    #[must_use]
    pub fn to_json(self) -> String {
        let mut genesis = Map::new();
        for role in Role::ALL {
            genesis.insert(role.name().into(), hex(self.genesis.key(role)).into());
        }
        let mut map = Map::new();
        map.insert("format".into(), MANIFEST_FORMAT.into());
        map.insert("limits".into(), self.limits.name().into());
        map.insert("genesis".into(), Value::Object(genesis));
        Value::Object(map).to_string()
    }

    /// Parses [`Manifest::to_json`]'s form.
    ///
    /// # Errors
    /// A message naming the field that is missing or malformed.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let map = value.as_object().ok_or("expected a JSON object")?;
        if let Some(unknown) = map.keys().find(|k| !["format", "limits", "genesis"].contains(&k.as_str())) {
            return Err(format!("unknown field `{unknown}`"));
        }
        match map.get("format").and_then(Value::as_u64) {
            Some(MANIFEST_FORMAT) => {}
            other => return Err(format!("format {other:?}, this build reads {MANIFEST_FORMAT}")),
        }
        let limits = map
            .get("limits")
            .and_then(Value::as_str)
            .and_then(LimitsArg::from_name)
            .ok_or("field `limits`: expected \"production\" or \"small\"")?;
        let keys = map.get("genesis").and_then(Value::as_object).ok_or("field `genesis`: expected an object")?;
        let key = |role: Role| -> Result<[u8; 32], String> {
            keys.get(role.name())
                .and_then(Value::as_str)
                .and_then(parse_hex::<32>)
                .ok_or_else(|| format!("field `genesis.{}`: expected 64 hex digits", role.name()))
        };
        let genesis = Genesis {
            admin: key(Role::Admin)?,
            custody: key(Role::Custody)?,
            oracle: key(Role::Oracle)?,
            attest: key(Role::Attest)?,
        };
        Ok(Self { limits, genesis })
    }
}

/// The manifest's path in `dir`.
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_FILE)
}

/// Reads the manifest of the journal in `dir`; `None` if there is none.
///
/// # Errors
/// [`CliError::File`] for a manifest that does not parse; [`CliError::Io`] when it cannot be read.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, CliError> {
    let path = manifest_path(dir);
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io("open", &path, e)),
    };
    let bad = |reason: String| CliError::File { file: path.display().to_string(), reason };
    if metadata.len() > MAX_CONFIG_FILE_BYTES {
        return Err(bad(format!("larger than {MAX_CONFIG_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| CliError::io("read", &path, e))?;
    Manifest::from_json(&text).map(Some).map_err(bad)
}

/// The manifest of the journal in `dir`, which must have one (replay, verify).
///
/// # Errors
/// [`CliError::File`] when it is missing or does not parse.
pub fn require_manifest(dir: &Path) -> Result<Manifest, CliError> {
    read_manifest(dir)?.ok_or_else(|| CliError::File {
        file: manifest_path(dir).display().to_string(),
        reason: "missing: the journal was not written by `verex run`, so its genesis keys and limits \
                 are unknown"
            .to_string(),
    })
}

/// Writes the manifest of a new journal durably: temporary file, fsync, rename, directory fsync.
///
/// # Errors
/// [`CliError::Io`] when any step fails.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), CliError> {
    let path = manifest_path(dir);
    let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
    let mut text = manifest.to_json();
    text.push('\n');
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| CliError::io("create", &tmp, e))?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| CliError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| CliError::io("rename", &tmp, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| CliError::io("sync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_through_json() {
        for limits in [LimitsArg::Production, LimitsArg::Small] {
            let manifest = Manifest { limits, genesis: Genesis::dev() };
            assert_eq!(Manifest::from_json(&manifest.to_json()), Ok(manifest));
        }
    }

    #[test]
    fn a_bad_manifest_names_its_field() {
        let good = Manifest { limits: LimitsArg::Small, genesis: Genesis::dev() }.to_json();
        let bad_limits = good.replace("\"small\"", "\"huge\"");
        assert!(Manifest::from_json(&bad_limits).unwrap_err().contains("limits"));
        let bad_format = good.replace("\"format\":1", "\"format\":2");
        assert!(Manifest::from_json(&bad_format).unwrap_err().contains("format"));
        let extra = good.replacen('{', "{\"x\":0,", 1);
        assert!(Manifest::from_json(&extra).unwrap_err().contains("unknown field `x`"));
    }
}
