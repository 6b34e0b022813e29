//! `verex por vectors`: the test vectors an independent verifier must agree with.

use std::path::PathBuf;

use clap::Args;

use crate::error::CliError;
use crate::io::note;
use crate::por_files::create_output_dir;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Write the Proof of Reserves test vectors into the new directory --out: a small fixed cycle \
(root files), valid proofs and one must-fail proof per attack, `cases.json` naming for each \
case its files, the pinned attest key, the expected account, the verdict (ok or fail) and the \
named reason, and `primitives.json` with the inputs and outputs of every derivation (salt, user \
commitment, leaf, node, padding, seed commitment, the root's signed bytes). The same bytes \
every run; tools/tests/data/por/ holds a copy the tests compare with. docs/por.md says how to \
use them.";

/// Arguments of `verex por vectors`.
#[derive(Debug, Args)]
pub struct VectorsArgs {
    /// The directory to write (new, or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Writes the vectors.
///
/// # Errors
/// [`CliError::Usage`] for a non-empty --out, [`CliError::Io`].
pub fn execute(args: &VectorsArgs) -> Result<(), CliError> {
    create_output_dir(&args.out)?;
    let vectors = verex_engine::por::vectors::generate();
    let files = vectors.files();
    for (name, text) in &files {
        let path = args.out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| CliError::io("create", parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| CliError::io("write", &path, e))?;
    }
    note(&format!(
        "por vectors: {} cases, {} files written to {}",
        vectors.cases.len(),
        files.len(),
        args.out.display()
    ));
    Ok(())
}
