//! Key files and genesis files.
//!
//! A key file is `{"secret":"<64 hex>","public":"<64 hex>"}`, written with mode 0600 and never
//! over an existing file. A genesis file names the four operator public keys:
//! `{"admin":"<hex>","custody":"<hex>","oracle":"<hex>","attest":"<hex>"}`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use serde_json::{Map, Value};
use verex_engine::signing::{hex, parse_hex, Role};
use verex_engine::Genesis;

use crate::error::CliError;

/// Largest key or genesis file read, in bytes: both are well under a kilobyte.
pub const MAX_CONFIG_FILE_BYTES: u64 = 64 * 1024;

/// The key file's JSON text (one line, no trailing newline).
pub fn key_json(key: &SigningKey) -> String {
    let mut map = Map::new();
    map.insert("secret".into(), hex(&key.to_bytes()).into());
    map.insert("public".into(), hex(key.verifying_key().as_bytes()).into());
    Value::Object(map).to_string()
}

/// Writes a new key file at `path` with mode 0600; refuses to replace an existing file.
///
/// # Errors
/// [`CliError::File`] when the file exists, [`CliError::Io`] when it cannot be written.
pub fn write_new_key_file(path: &Path, key: &SigningKey) -> Result<(), CliError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CliError::File {
            file: path.display().to_string(),
            reason: "already exists; a key file is never overwritten (remove it or choose another --out)".to_string(),
        },
        _ => CliError::io("create", path, e),
    })?;
    let mut text = key_json(key);
    text.push('\n');
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| CliError::io("write", path, e))
}

/// Reads a key file, checking that its public key matches its secret.
///
/// # Errors
/// [`CliError::File`] naming what is wrong; [`CliError::Io`] when it cannot be read.
pub fn read_key_file(path: &Path) -> Result<SigningKey, CliError> {
    warn_if_readable_by_others(path);
    let mut fields = read_json_object(path, &["secret", "public"])?;
    let secret: [u8; 32] = fields.hex_field("secret")?;
    let key = SigningKey::from_bytes(&secret);
    let public: [u8; 32] = fields.hex_field("public")?;
    if public != key.verifying_key().to_bytes() {
        return Err(fields.error("`public` is not the public key of `secret`"));
    }
    Ok(key)
}

/// Reads a genesis file.
///
/// # Errors
/// [`CliError::File`] naming the missing or malformed key; [`CliError::Io`] when it cannot be read.
pub fn read_genesis_file(path: &Path) -> Result<Genesis, CliError> {
    let names = Role::ALL.map(Role::name);
    let mut fields = read_json_object(path, &names)?;
    let mut genesis = Genesis { admin: [0; 32], custody: [0; 32], oracle: [0; 32], attest: [0; 32] };
    for role in Role::ALL {
        let key: [u8; 32] = fields.hex_field(role.name())?;
        if let Err(fault) = verex_engine::signature_rule::check_public_key(&key) {
            return Err(fields.error(format!("`{}` is refused as an operator key: {fault}", role.name())));
        }
        *match role {
            Role::Admin => &mut genesis.admin,
            Role::Custody => &mut genesis.custody,
            Role::Oracle => &mut genesis.oracle,
            Role::Attest => &mut genesis.attest,
        } = key;
    }
    Ok(genesis)
}

/// The fields of a small JSON config file.
struct JsonFields {
    file: String,
    map: Map<String, Value>,
}

impl JsonFields {
    fn error(&self, reason: impl Into<String>) -> CliError {
        CliError::File { file: self.file.clone(), reason: reason.into() }
    }

    fn hex_field<const N: usize>(&mut self, field: &str) -> Result<[u8; N], CliError> {
        let value = self.map.remove(field).ok_or_else(|| self.error(format!("missing field `{field}`")))?;
        value
            .as_str()
            .and_then(parse_hex::<N>)
            .ok_or_else(|| self.error(format!("field `{field}`: expected a string of {} hex digits", N * 2)))
    }
}

fn read_json_object(path: &Path, allowed: &[&str]) -> Result<JsonFields, CliError> {
    let file = path.display().to_string();
    let bad = |reason: String| CliError::File { file: file.clone(), reason };
    let metadata = std::fs::metadata(path).map_err(|e| CliError::io("open", path, e))?;
    if metadata.len() > MAX_CONFIG_FILE_BYTES {
        return Err(bad(format!("larger than {MAX_CONFIG_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io("read", path, e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad("expected a JSON object".to_string()));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("unknown field `{unknown}` (expected {})", allowed.join(", "))));
    }
    Ok(JsonFields { file, map })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            crate::io::warn(&format!(
                "key file {} is accessible by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
