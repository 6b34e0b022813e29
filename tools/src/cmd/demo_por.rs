//! The last step of `verex demo`: a Proof of Reserves cycle on the demo's state (SPEC 10).

use std::time::Instant;

use rand_core::{OsRng, RngCore};
use verex_engine::por::audit::compare_roots;
use verex_engine::por::proof::verify_files;
use verex_engine::por::reserves::{solvency, Reserve, Reserves};
use verex_engine::por::stress::stress;
use verex_engine::por::Cycle;
use verex_engine::signing::{dev_role_key, hex, Role};
use verex_engine::Engine;

use crate::cmd::por::reserves::table;
use crate::cmd::por::totals_lines;
use crate::error::CliError;

/// Proofs the demo verifies, spread over the leaves.
const SAMPLE_PROOFS: usize = 100;
/// The shocks of the stress report.
const SHOCKS: [i64; 3] = [-10, -30, -50];

fn failed(what: &str, why: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("proof of reserves: {what}: {why}"))
}

/// Builds the cycle from the pipeline's state (`exchange`), verifies a sample of proofs,
/// audits it against the state replayed from the journal (`replayed`, whose journal digest is
/// `digest`), puts custody's reserves beside it and prints the stress report's headlines.
///
/// # Errors
/// [`CliError::Usage`] naming the step that does not hold.
pub fn por_cycle(exchange: &Engine, replayed: &Engine, digest: [u8; 32]) -> Result<(), CliError> {
    eprintln!(
        "\n== 5/5 proof of reserves: Merkle-sum tree at seq {}, audit by replay, reserves, stress",
        exchange.seq()
    );
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let attest = dev_role_key(Role::Attest);
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let started = Instant::now();
    let mut cycle = Cycle::build(exchange, digest, seed, threads).map_err(|e| failed("build", e))?;
    cycle.sign(&attest);
    let root = &cycle.root;
    eprintln!(
        "   tree of {} accounts × {} assets (height {}) built and signed in {:.1} ms; root {}",
        root.leaf_count,
        root.assets.len(),
        root.height,
        started.elapsed().as_secs_f64() * 1e3,
        hex(&root.root_hash)
    );
    for line in totals_lines(root) {
        eprintln!("{line}");
    }

    let root_text = root.to_json();
    let key = attest.verifying_key().to_bytes();
    let leaves = cycle.tree.accounts();
    let stride = leaves.len().div_ceil(SAMPLE_PROOFS).max(1);
    let (mut checked, mut bytes, verifying) = (0u32, 0usize, Instant::now());
    for &account in leaves.iter().step_by(stride) {
        let proof = cycle.proof(account).ok_or_else(|| failed("proof", format!("account {account} has no proof")))?;
        let text = proof.to_json();
        bytes = bytes.max(text.len());
        verify_files(&text, &root_text, Some(&key), Some(account))
            .map_err(|(_, e)| failed(&format!("account {account}'s proof"), e))?;
        checked += 1;
    }
    eprintln!(
        "   {checked} proofs verified as their owners would (JSON in, pinned attest key): {:.1} µs each, the largest {bytes} bytes",
        verifying.elapsed().as_secs_f64() * 1e6 / f64::from(checked.max(1))
    );

    let auditing = Instant::now();
    let rebuilt = Cycle::build(replayed, digest, seed, threads).map_err(|e| failed("audit", e))?;
    let differences = compare_roots(root, &rebuilt.root);
    if let Some(first) = differences.first() {
        return Err(failed("audit by replay", first));
    }
    eprintln!(
        "   audit by replay: the tree rebuilt from the replayed journal with the salt seed has the same root ({:.1} ms)",
        auditing.elapsed().as_secs_f64() * 1e3
    );

    let custody = dev_role_key(Role::Custody);
    let entries = root
        .assets
        .iter()
        .enumerate()
        .map(|(i, a)| Reserve { symbol: a.symbol, amount: exchange.supply(i as u16), chain_position: "demo".into() })
        .collect();
    let reserves = Reserves::sign(root.seq, entries, &custody);
    reserves.verify(Some(&custody.verifying_key().to_bytes())).map_err(|e| failed("reserves", e))?;
    let rows = solvency(root, &reserves).map_err(|e| failed("solvency", e))?;
    eprintln!("   reserves (custody's wallets hold what was deposited less what was withdrawn) beside liabilities:");
    for line in table(&rows) {
        eprintln!("     {line}");
    }
    if rows.iter().any(|r| r.is_short()) {
        return Err(failed("solvency", "an asset is short"));
    }

    let shocking = Instant::now();
    let report = stress(replayed, &SHOCKS).map_err(|e| failed("stress", e))?;
    eprintln!("   stress report on copies of the state ({:.2} s):", shocking.elapsed().as_secs_f64());
    for shock in &report.shocks {
        eprintln!("     {}", shock.headline(replayed));
    }
    eprintln!(
        "   proved: every sampled account is in the signed tree; the journal alone rebuilds the same root; \
         reserves cover every asset's liabilities"
    );
    Ok(())
}
