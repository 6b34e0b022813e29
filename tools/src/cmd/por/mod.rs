//! `verex por`: Proof of Reserves cycles (SPEC section 10; formats in `docs/por.md`).

pub mod audit;
pub mod build;
pub mod publish;
pub mod reserves;
pub mod vectors;
pub mod verify;

use std::path::Path;

use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use verex_engine::por::Root;
use verex_engine::signing::{dev_role_key, hex, Role};
use verex_engine::text::decimal::format_units;

use crate::error::CliError;
use crate::keys::read_key_file;
use crate::EXIT_HELP;

/// Arguments of `verex por`.
#[derive(Debug, Args)]
pub struct PorArgs {
    /// The step of the cycle.
    #[command(subcommand)]
    pub command: PorCommand,
}

/// The PoR subcommands.
#[derive(Debug, Subcommand)]
pub enum PorCommand {
    /// Build a cycle at a seq: the signed root, one proof per account, the salt seed.
    #[command(after_help = EXIT_HELP, long_about = build::LONG_ABOUT)]
    Build(build::BuildArgs),
    /// Check one account's proof against a published root, offline.
    #[command(after_help = EXIT_HELP, long_about = verify::LONG_ABOUT)]
    Verify(verify::VerifyArgs),
    /// Rebuild a cycle by replaying the journal with its salt seed: same root, or each difference named.
    #[command(after_help = EXIT_HELP, long_about = audit::LONG_ABOUT)]
    Audit(audit::AuditArgs),
    /// Sign custody's reserves statement for a cycle (reserves.json).
    #[command(after_help = EXIT_HELP, long_about = reserves::RESERVES_LONG_ABOUT)]
    Reserves(reserves::ReservesArgs),
    /// Put reserves beside liabilities per asset, the hole shown; fail if any asset is short.
    #[command(after_help = EXIT_HELP, long_about = reserves::SOLVENCY_LONG_ABOUT)]
    Solvency(reserves::SolvencyArgs),
    /// Write the static folder a web server hosts: root, attestation, reserves, stress report, proofs.
    #[command(after_help = EXIT_HELP, long_about = publish::LONG_ABOUT)]
    Publish(publish::PublishArgs),
    /// Write the test vectors an independent verifier must agree with.
    #[command(after_help = EXIT_HELP, long_about = vectors::LONG_ABOUT)]
    Vectors(vectors::VectorsArgs),
}

impl PorArgs {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// [`CliError`] describing the first failure; a PoR check that fails is
    /// [`CliError::Por`] with its named reason.
    pub fn execute(&self) -> Result<(), CliError> {
        match &self.command {
            PorCommand::Build(args) => build::execute(args),
            PorCommand::Verify(args) => verify::execute(args),
            PorCommand::Audit(args) => audit::execute(args),
            PorCommand::Reserves(args) => reserves::execute_reserves(args),
            PorCommand::Solvency(args) => reserves::execute_solvency(args),
            PorCommand::Publish(args) => publish::execute(args),
            PorCommand::Vectors(args) => vectors::execute(args),
        }
    }
}

/// An operator's signing key: `--KEY-key FILE`, else with `--dev` the development key of the
/// role; it must be the genesis key `expected` when one is known.
///
/// # Errors
/// [`CliError::Usage`] when neither is given or the key is not the genesis key.
pub fn operator_key(
    file: Option<&Path>,
    dev: bool,
    role: Role,
    expected: Option<&[u8; 32]>,
) -> Result<SigningKey, CliError> {
    let key = match file {
        Some(path) => read_key_file(path)?,
        None if dev => dev_role_key(role),
        None => {
            return Err(CliError::Usage(format!(
                "the {} key is needed: --{}-key FILE (or --dev for the development key)",
                role.name(),
                role.name()
            )))
        }
    };
    let public = key.verifying_key().to_bytes();
    if let Some(expected) = expected.filter(|k| **k != public) {
        return Err(CliError::Usage(format!(
            "--{}-key: its public key {} is not the genesis {} key {}",
            role.name(),
            hex(&public),
            role.name(),
            hex(expected)
        )));
    }
    Ok(key)
}

/// The per-asset totals of a root, one line each (for standard error).
pub fn totals_lines(root: &Root) -> Vec<String> {
    root.assets
        .iter()
        .map(|a| {
            let d = u32::from(a.decimals);
            let units = |v: u64| format_units(i128::from(v), d);
            format!(
                "   {:<8} Σequity {:>22}  Σdebt {:>20}  liability {:>22}  | own: fees {}, insurance {}",
                a.symbol.as_str(),
                units(a.equity),
                units(a.debt),
                format_units(a.liability(), d),
                units(a.fees),
                units(a.insurance)
            )
        })
        .collect()
}
