//! `verex por publish`: the static folder a web server hosts for one cycle.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};
use verex_engine::por::format::user_hash;
use verex_engine::por::proof::verify_proof;
use verex_engine::por::reserves::Reserves;
use verex_engine::por::{Fault, PorError, Proof};
use verex_engine::record::to_native;
use verex_engine::signing::hex;

use crate::error::CliError;
use crate::io::note;
use crate::por_files::{
    create_output_dir, read_root, read_text, write_new, PinArgs, PinnedKeys, PROOFS_DIR, ROOT_FILE,
};
use crate::rebuild::{access_checked, bad_record, open_reader};

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Write the static folder of a Proof of Reserves cycle, for any web server to host (SPEC 10):

  index.json          what is here and the formats
  root.json           the signed root (journal position, root hash, totals, own balances)
  attestation.json    the PoR attestation: its signed bytes in hex, signer and signature
  reserves.json       custody's signed reserves for the cycle
  risk.json           the stress report at the cycle's seq (`verex risk --at SEQ --out FILE`)
  proofs/<name>.json  each proof, named by hex(BLAKE3(account_id u64 LE ‖ salt)): only the \
account's owner, who holds its salt, can find it; a proof holds the owner's balances, so serve \
the folder without directory listings
  index.html, style.css, app.js, verifier.js, vendor/noble.js
                      the verification page (web/ of the verex repository, built into this \
binary): it shows the cycle, liabilities against reserves and the stress report, and checks a \
user's proof in the browser with a verifier independent of verex's (docs/por.md), offline once \
loaded; it asks for nothing but files of this folder

Nothing is published that is not checked first: the root and the reserves must verify (keys \
pinned with --journal DIR or --attest-pubkey / --custody-pubkey), the reserves and the stress \
report must be for the root's seq, and every proof of --cycle DIR must verify against the root. \
The salt seed is never copied. With --journal, index.json also gives the journal's time stamp \
at the cycle's seq (`journal_ts_ns`, nanoseconds since the Unix epoch, as a decimal string).";

/// The verification page, built into the binary so that a published folder never depends on
/// the repository's checkout: (path in the folder, bytes). `web/` holds the page and its
/// tests; `page_files_are_every_file_of_the_page` checks this list against it.
pub const PAGE_FILES: [(&str, &[u8]); 5] = [
    ("index.html", include_bytes!("../../../../web/index.html")),
    ("style.css", include_bytes!("../../../../web/style.css")),
    ("app.js", include_bytes!("../../../../web/app.js")),
    ("verifier.js", include_bytes!("../../../../web/verifier.js")),
    ("vendor/noble.js", include_bytes!("../../../../web/vendor/noble.js")),
];

/// Arguments of `verex por publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The cycle's directory (`verex por build --out`).
    #[arg(long, value_name = "DIR")]
    pub cycle: PathBuf,
    /// Custody's reserves file for the cycle.
    #[arg(long, value_name = "FILE")]
    pub reserves: PathBuf,
    /// The stress report at the cycle's seq.
    #[arg(long, value_name = "FILE")]
    pub risk: PathBuf,
    /// The folder to write (new, or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The keys the signatures must be by.
    #[command(flatten)]
    pub keys: PinArgs,
}

/// Checks everything, then writes the folder.
///
/// # Errors
/// [`CliError::Por`] for a file that fails its check, [`CliError::Usage`] for a non-empty
/// --out.
pub fn execute(args: &PublishArgs) -> Result<(), CliError> {
    let PinnedKeys { attest, custody } = args.keys.pinned()?;
    let root_path = args.cycle.join(ROOT_FILE);
    let root = read_root(&root_path)?;
    root.verify(attest.as_ref()).map_err(|e| CliError::por(&root_path, e))?;
    let reserves_text = read_text(&args.reserves)?;
    let reserves = Reserves::from_json(&reserves_text).map_err(|e| CliError::por(&args.reserves, e))?;
    reserves.verify(custody.as_ref()).map_err(|e| CliError::por(&args.reserves, e))?;
    let mismatch = |file: &PathBuf, seq: Option<u64>| {
        CliError::por(
            file,
            PorError::new(Fault::CycleMismatch, format!("it is for seq {seq:?}, the cycle is at seq {}", root.seq)),
        )
    };
    if reserves.seq != root.seq {
        return Err(mismatch(&args.reserves, Some(reserves.seq)));
    }
    let risk_text = read_text(&args.risk)?;
    let risk: Value = serde_json::from_str(&risk_text)
        .map_err(|e| CliError::por(&args.risk, PorError::new(Fault::Malformed, e.to_string())))?;
    let risk_seq = risk.get("seq").and_then(Value::as_u64);
    if risk.get("format").and_then(Value::as_str) != Some("verex-risk-v1") || risk_seq != Some(root.seq) {
        return Err(mismatch(&args.risk, risk_seq));
    }
    let proofs = read_proofs(&args.cycle.join(PROOFS_DIR), &root)?;
    create_output_dir(&args.out)?;
    let published_proofs = args.out.join(PROOFS_DIR);
    std::fs::create_dir_all(&published_proofs).map_err(|e| CliError::io("create", &published_proofs, e))?;
    for (proof, text) in &proofs {
        let name = hex(&user_hash(proof.account, &proof.salt));
        write_new(&published_proofs.join(format!("{name}.json")), text.trim_end())?;
    }
    write_new(&args.out.join(ROOT_FILE), &root.to_json())?;
    write_new(&args.out.join("reserves.json"), reserves_text.trim_end())?;
    write_new(&args.out.join("risk.json"), risk_text.trim_end())?;
    let attestation = json!({
        "format": "verex-por-attestation-v1",
        "seq": root.seq,
        "journal_digest": hex(&root.journal_digest),
        "state_hash": hex(&root.state_hash),
        "root_hash": hex(&root.root_hash),
        "signed_bytes": hex(&root.signed_bytes()),
        "signer": hex(&root.signer),
        "signature": hex(&root.signature),
    });
    write_new(&args.out.join("attestation.json"), &serde_json::to_string_pretty(&attestation).unwrap_or_default())?;
    write_page(&args.out)?;
    let mut index = json!({
        "format": "verex-por-publish-v1",
        "seq": root.seq,
        "root": "root.json",
        "attestation": "attestation.json",
        "reserves": "reserves.json",
        "risk": "risk.json",
        "proofs": "proofs/<hex of BLAKE3(account_id u64 LE ‖ salt)>.json",
        "proof_count": proofs.len(),
        "page": "index.html",
        "formats": "docs/por.md of the verex repository",
    });
    if let Some(journal) = &args.keys.journal {
        index["journal_ts_ns"] = journal_ts(journal, root.seq)?.to_string().into();
    }
    write_new(&args.out.join("index.json"), &serde_json::to_string_pretty(&index).unwrap_or_default())?;
    note(&format!(
        "por publish: cycle at seq {} with {} proofs written to {} (no salt seed)",
        root.seq,
        proofs.len(),
        args.out.display()
    ));
    Ok(())
}

/// Writes the verification page's files into the folder, byte for byte.
fn write_page(out: &Path) -> Result<(), CliError> {
    use std::io::Write as _;
    for (name, bytes) in PAGE_FILES {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| CliError::io("create", parent, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| CliError::io("create", &path, e))?;
        file.write_all(bytes).map_err(|e| CliError::io("write", &path, e))?;
    }
    Ok(())
}

/// The sequencer's time stamp (ns since the Unix epoch) of the journal's record at `seq`.
fn journal_ts(dir: &Path, seq: u64) -> Result<u64, CliError> {
    let reader = open_reader(dir)?;
    let record = reader
        .iter_from(seq)
        .map_err(|e| CliError::Usage(format!("--journal: the cycle's seq {seq}: {e}")))?
        .next()
        .ok_or_else(|| bad_record(dir, seq, "the journal ends before the cycle's seq"))??;
    let archived = access_checked(dir, &record)?;
    let stx = to_native(archived).map_err(|e| bad_record(dir, seq, e.to_string()))?;
    Ok(stx.ts)
}

/// Every proof file of a cycle, each verified against its root.
fn read_proofs(dir: &std::path::Path, root: &verex_engine::por::Root) -> Result<Vec<(Proof, String)>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::io("read", dir, e))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    let mut proofs = Vec::with_capacity(paths.len());
    for path in paths.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let text = read_text(path)?;
        let proof = Proof::from_json(&text).map_err(|e| CliError::por(path, e))?;
        verify_proof(&proof, root, None).map_err(|e| CliError::por(path, e))?;
        proofs.push((proof, text));
    }
    Ok(proofs)
}

#[cfg(test)]
mod tests {
    use super::PAGE_FILES;
    use std::path::Path;

    /// Every file of `web/` that the page loads (HTML, CSS, JavaScript outside its tests,
    /// scripts and packages) is built into the binary, byte for byte.
    #[test]
    fn page_files_are_every_file_of_the_page() {
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
        let mut on_disk = Vec::new();
        for dir in ["", "vendor"] {
            for entry in std::fs::read_dir(web.join(dir)).expect("web/") {
                let path = entry.expect("entry").path();
                let is_page = path.extension().is_some_and(|x| x == "html" || x == "css" || x == "js");
                if path.is_file() && is_page {
                    let name = path.strip_prefix(&web).expect("under web/").to_string_lossy().into_owned();
                    on_disk.push(name);
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = PAGE_FILES.iter().map(|(name, _)| (*name).to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "web/'s page files and the ones built into verex");
        for (name, bytes) in PAGE_FILES {
            assert_eq!(std::fs::read(web.join(name)).expect("read"), bytes, "{name}");
        }
    }
}
