//! `verex por publish`: the static folder a web server hosts for one cycle.

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};
use verex_engine::por::format::user_hash;
use verex_engine::por::proof::verify_proof;
use verex_engine::por::reserves::Reserves;
use verex_engine::por::{Fault, PorError, Proof};
use verex_engine::signing::hex;

use crate::error::CliError;
use crate::io::note;
use crate::por_files::{
    create_output_dir, read_root, read_text, write_new, PinArgs, PinnedKeys, PROOFS_DIR, ROOT_FILE,
};

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

Nothing is published that is not checked first: the root and the reserves must verify (keys \
pinned with --journal DIR or --attest-pubkey / --custody-pubkey), the reserves and the stress \
report must be for the root's seq, and every proof of --cycle DIR must verify against the root. \
The salt seed is never copied. The verification page itself (an independent verifier for the \
browser) comes with the next issue; docs/por.md is what it implements.";

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
    let index = json!({
        "format": "verex-por-publish-v1",
        "seq": root.seq,
        "root": "root.json",
        "attestation": "attestation.json",
        "reserves": "reserves.json",
        "risk": "risk.json",
        "proofs": "proofs/<hex of BLAKE3(account_id u64 LE ‖ salt)>.json",
        "proof_count": proofs.len(),
        "formats": "docs/por.md of the verex repository",
    });
    write_new(&args.out.join("index.json"), &serde_json::to_string_pretty(&index).unwrap_or_default())?;
    note(&format!(
        "por publish: cycle at seq {} with {} proofs written to {} (no salt seed)",
        root.seq,
        proofs.len(),
        args.out.display()
    ));
    Ok(())
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
