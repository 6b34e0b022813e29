//! The manifest kept next to a journal: which genesis keys and limits its records were run
//! with.
//!
//! A journal holds only transactions, but the state they produce also depends on the operator
//! keys that authenticate operator ops and on the limits that size the engine's pools. So the
//! writer of a new journal puts `DIR/verex.json` beside it before the first record:
//!
//! ```text
//! {"format":1,"limits":"small","genesis":{"admin":"<hex>","custody":"<hex>","oracle":"<hex>","attest":"<hex>"}}
//! ```
//!
//! and every reader (`verex run` on resume, `replay`, `verify`, `md`, [`super::recover`])
//! builds its engine from it. Written durably (temporary file, fsync, rename, directory
//! fsync): a crash leaves either no manifest or a whole one.
//!
//! ```
//! use verex_engine::store::{LimitsPreset, Manifest};
//! use verex_engine::Genesis;
//!
//! let manifest = Manifest { limits: LimitsPreset::Small, genesis: Genesis::dev() };
//! assert_eq!(Manifest::from_json(&manifest.to_json()), Ok(manifest));
//! ```

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{write_durably, StoreError};
use crate::signing::{hex, parse_hex, Role};
use crate::{Engine, Genesis, Limits};

/// The manifest's file name inside the journal directory.
pub const MANIFEST_FILE: &str = "verex.json";
/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u64 = 1;
/// The largest manifest read (it is a few hundred bytes).
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// Which engine limits a journal was run with: a named preset, so that a manifest stays
/// readable when [`Limits`] gains fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsPreset {
    /// [`Limits::production`]: a million accounts and orders.
    Production,
    /// [`Limits::small`]: about a thousand accounts, for tests and examples.
    Small,
}

impl LimitsPreset {
    /// The limits of the preset.
    #[must_use]
    pub fn limits(self) -> Limits {
        match self {
            Self::Production => Limits::production(),
            Self::Small => Limits::small(),
        }
    }

    /// The preset's name, as the manifest (and `verex run --limits`) spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Small => "small",
        }
    }

    /// The preset of that name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Production, Self::Small].into_iter().find(|preset| preset.name() == name)
    }
}

/// What a journal's records were run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// The limits preset.
    pub limits: LimitsPreset,
    /// The operator keys.
    pub genesis: Genesis,
}

impl Manifest {
    /// A fresh engine for replaying the journal from seq 1.
    ///
    /// # Errors
    /// [`crate::EngineError`] for a genesis or limits the engine refuses.
    pub fn engine(&self) -> Result<Engine, crate::EngineError> {
        Engine::new(self.genesis, self.limits.limits())
    }

    /// The manifest's JSON text (one line, no newline).
    #[must_use]
    pub fn to_json(&self) -> String {
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

    /// Parses a manifest's JSON text.
    ///
    /// # Errors
    /// A message naming the first field that is wrong (unknown fields are refused).
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
            .and_then(LimitsPreset::from_name)
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
#[must_use]
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_FILE)
}

/// Reads the manifest of the journal in `dir`; `None` if there is none.
///
/// # Errors
/// [`StoreError::BadFile`] for a manifest that does not parse or is too large;
/// [`StoreError::Io`] when it cannot be read.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, StoreError> {
    let path = manifest_path(dir);
    let metadata = match std::fs::metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("open", &path, e)),
    };
    if metadata.len() > MAX_MANIFEST_BYTES {
        return Err(StoreError::BadFile { path, reason: format!("larger than {MAX_MANIFEST_BYTES} bytes") });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io("read", &path, e))?;
    Manifest::from_json(&text).map(Some).map_err(|reason| StoreError::BadFile { path, reason })
}

/// The manifest of the journal in `dir`, which must have one.
///
/// # Errors
/// [`StoreError::BadFile`] when it is missing or does not parse.
pub fn require_manifest(dir: &Path) -> Result<Manifest, StoreError> {
    read_manifest(dir)?.ok_or_else(|| StoreError::BadFile {
        path: manifest_path(dir),
        reason: "missing: the journal was not written by `verex run` or `store::create_journal`, so its genesis \
                 keys and limits are unknown"
            .to_string(),
    })
}

/// Writes the manifest of a journal in `dir` durably.
///
/// # Errors
/// [`StoreError::Io`] when any step fails.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let mut text = manifest.to_json();
    text.push('\n');
    write_durably(&manifest_path(dir), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_manifest_names_its_field() {
        let good = Manifest { limits: LimitsPreset::Small, genesis: Genesis::dev() }.to_json();
        let bad_limits = good.replace("\"small\"", "\"huge\"");
        assert!(Manifest::from_json(&bad_limits).is_err_and(|e| e.contains("limits")));
        let bad_format = good.replace("\"format\":1", "\"format\":2");
        assert!(Manifest::from_json(&bad_format).is_err_and(|e| e.contains("format")));
        let extra = good.replacen('{', "{\"x\":0,", 1);
        assert!(Manifest::from_json(&extra).is_err_and(|e| e.contains("unknown field `x`")));
    }
}
