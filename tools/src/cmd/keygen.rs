//! `verex keygen`: a new ed25519 key from the OS random number generator.

use std::path::PathBuf;

use clap::Args;
use ed25519_dalek::SigningKey;
use rand_core::OsRng;
use verex_engine::signing::hex;

use crate::error::CliError;
use crate::io::Output;
use crate::keys::{key_json, write_new_key_file};

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Generate a new ed25519 key from the operating system's random number generator.

With --out FILE, the key is written to FILE as {\"secret\":\"<hex>\",\"public\":\"<hex>\"} with \
mode 0600 (an existing file is never replaced) and the public key's hex is printed on standard \
output. Without --out, the key file's JSON is printed on standard output instead and the public \
key's hex on standard error.

Name the public key in a genesis file ({\"admin\":..,\"custody\":..,\"oracle\":..,\"attest\":..}) \
to make it an operator key, or sign a create_account with it to register a user account.";

/// Arguments of `verex keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write the key to this new file (mode 0600; never overwrites).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Generates the key and writes it out.
///
/// # Errors
/// [`CliError::File`] when the file exists, [`CliError::Io`] when it cannot be written.
pub fn execute(args: &KeygenArgs) -> Result<(), CliError> {
    let key = SigningKey::generate(&mut OsRng);
    let public = hex(key.verifying_key().as_bytes());
    let mut stdout = Output::create(None)?;
    match &args.out {
        Some(path) => {
            write_new_key_file(path, &key)?;
            stdout.write_line(&public)?;
        }
        None => {
            stdout.write_line(&key_json(&key))?;
            crate::io::note(&format!("public key: {public}"));
        }
    }
    stdout.finish()
}
