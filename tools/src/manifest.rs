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
//!
//! The format is the library's (`verex_engine::store::manifest`), so a journal an embedding
//! writes with `store::create_journal` is read here; this module adds the `--limits` flag's
//! type and the CLI's errors.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use verex_engine::store::{self, LimitsPreset, Manifest as StoreManifest, StoreError};
use verex_engine::{Engine, Genesis, Limits};

use crate::error::CliError;

pub use verex_engine::store::manifest::{MANIFEST_FILE, MANIFEST_FORMAT};

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

    /// The library's form of this manifest (`verex_engine::store`, which owns the format).
    pub fn to_store(self) -> StoreManifest {
        let limits = match self.limits {
            LimitsArg::Production => LimitsPreset::Production,
            LimitsArg::Small => LimitsPreset::Small,
        };
        StoreManifest { limits, genesis: self.genesis }
    }

    /// This manifest from the library's form.
    pub fn from_store(manifest: StoreManifest) -> Self {
        let limits = match manifest.limits {
            LimitsPreset::Production => LimitsArg::Production,
            LimitsPreset::Small => LimitsArg::Small,
        };
        Self { limits, genesis: manifest.genesis }
    }

    /// The manifest as one JSON object (what `verex.json` holds, and what a replicated
    /// stream's `manifest` subject carries).
    #[must_use]
    pub fn to_json(self) -> String {
        self.to_store().to_json()
    }

    /// Parses [`Manifest::to_json`]'s form.
    ///
    /// # Errors
    /// A message naming the field that is missing or malformed.
    pub fn from_json(text: &str) -> Result<Self, String> {
        StoreManifest::from_json(text).map(Self::from_store)
    }
}

/// A library store error as the CLI's.
fn cli_error(error: StoreError) -> CliError {
    match error {
        StoreError::Io { action, path, source } => CliError::io(action, &path, source),
        StoreError::BadFile { path, reason } => CliError::File { file: path.display().to_string(), reason },
        other => CliError::Usage(other.to_string()),
    }
}

/// The manifest's path in `dir`.
pub fn manifest_path(dir: &Path) -> PathBuf {
    verex_engine::store::manifest::manifest_path(dir)
}

/// Reads the manifest of the journal in `dir`; `None` if there is none.
///
/// # Errors
/// [`CliError::File`] for a manifest that does not parse; [`CliError::Io`] when it cannot be read.
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>, CliError> {
    Ok(store::read_manifest(dir).map_err(cli_error)?.map(Manifest::from_store))
}

/// The manifest of the journal in `dir`, which must have one (replay, verify).
///
/// # Errors
/// [`CliError::File`] when it is missing or does not parse.
pub fn require_manifest(dir: &Path) -> Result<Manifest, CliError> {
    store::require_manifest(dir).map(Manifest::from_store).map_err(cli_error)
}

/// Writes the manifest of a new journal durably: temporary file, fsync, rename, directory fsync.
///
/// # Errors
/// [`CliError::Io`] when any step fails.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), CliError> {
    store::write_manifest(dir, &manifest.to_store()).map_err(cli_error)
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
