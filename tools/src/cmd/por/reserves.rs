//! `verex por reserves` (custody signs what its wallets hold) and `verex por solvency`
//! (reserves beside liabilities).

use std::path::PathBuf;

use clap::Args;
use verex_engine::por::reserves::{solvency, Reserve, Reserves, SolvencyRow};
use verex_engine::por::{Fault, PorError, Root};
use verex_engine::signing::Role;
use verex_engine::text::decimal::{format_units, parse_dec};
use verex_engine::tx::Symbol;

use crate::cmd::por::operator_key;
use crate::error::CliError;
use crate::io::{warn, Output};
use crate::por_files::{read_root, read_text, write_new, PinArgs, PinnedKeys};

/// `--help` text of `verex por reserves`.
pub const RESERVES_LONG_ABOUT: &str = "\
Write custody's reserves statement for a cycle: per asset, the amount its wallets hold and the \
chain position it was read at, signed by the custody key (--custody-key FILE, or the development \
key with --dev), naming the cycle's seq so it cannot be reused for another cycle. Amounts are \
decimals in the asset's decimals (--amount USDC=1000.5, once per asset). Format: docs/por.md.";

/// `--help` text of `verex por solvency`.
pub const SOLVENCY_LONG_ABOUT: &str = "\
Put a cycle's reserves (reserves.json, signed by custody) beside its liabilities (root.json, \
signed by the attest key) per asset and print the table: reserves, Σequity (available + locked + \
lent), Σdebt (borrowed), the liability Σequity − Σdebt, the exchange's own funds (fees and \
insurance), the hole (users' gross claims not in the wallets: funds lent, borrowed and withdrawn, \
backed by the borrowers' collateral: see `verex risk`) and the surplus, reserves − liability. \
Keys are pinned from --journal DIR (its genesis) or --attest-pubkey / --custody-pubkey.

Exit status 1 with the reason `short` if any asset's reserves are below its liability; 1 too for \
a file that fails its checks (bad_signature, wrong_signer, cycle_mismatch: the reserves answer \
another cycle, ...).";

/// Arguments of `verex por reserves`.
#[derive(Debug, Args)]
pub struct ReservesArgs {
    /// The cycle's root file (its seq and assets).
    #[arg(long, value_name = "FILE")]
    pub root: PathBuf,
    /// An asset and the amount held, `SYMBOL=DECIMAL`; once per asset.
    #[arg(long = "amount", value_name = "SYMBOL=AMOUNT", required = true)]
    pub amounts: Vec<String>,
    /// Where the wallets were read (chain and block).
    #[arg(long, value_name = "TEXT")]
    pub chain_position: String,
    /// The custody key file.
    #[arg(long, value_name = "FILE")]
    pub custody_key: Option<PathBuf>,
    /// Sign with the development custody key.
    #[arg(long)]
    pub dev: bool,
    /// The reserves file to write (new).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `verex por solvency`.
#[derive(Debug, Args)]
pub struct SolvencyArgs {
    /// The cycle's root file.
    #[arg(long, value_name = "FILE")]
    pub root: PathBuf,
    /// Custody's reserves file.
    #[arg(long, value_name = "FILE")]
    pub reserves: PathBuf,
    /// The keys the signatures must be by.
    #[command(flatten)]
    pub keys: PinArgs,
}

/// Signs and writes the statement.
///
/// # Errors
/// [`CliError::Usage`] for an amount that is not `SYMBOL=DECIMAL` of a listed asset.
pub fn execute_reserves(args: &ReservesArgs) -> Result<(), CliError> {
    let root = read_root(&args.root)?;
    let key = operator_key(args.custody_key.as_deref(), args.dev, Role::Custody, None)?;
    let entries = args
        .amounts
        .iter()
        .map(|text| parse_amount(text, &root, &args.chain_position))
        .collect::<Result<Vec<_>, _>>()?;
    let reserves = Reserves::sign(root.seq, entries, &key);
    Reserves::from_json(&reserves.to_json()).map_err(|e| CliError::Usage(format!("--amount: {e}")))?;
    write_new(&args.out, &reserves.to_json())
}

fn parse_amount(text: &str, root: &Root, chain_position: &str) -> Result<Reserve, CliError> {
    let usage = |why: &str| CliError::Usage(format!("--amount {text}: {why}"));
    let (symbol, amount) = text.split_once('=').ok_or_else(|| usage("expected SYMBOL=AMOUNT"))?;
    let symbol = Symbol::new(symbol).ok_or_else(|| usage("not a symbol"))?;
    let asset = root.assets.iter().find(|a| a.symbol == symbol).ok_or_else(|| usage("the cycle has no such asset"))?;
    let dec = parse_dec(amount).map_err(|e| usage(&e.to_string()))?;
    let units = dec
        .to_units(u32::from(asset.decimals))
        .and_then(|u| u64::try_from(u).ok())
        .ok_or_else(|| usage("not a non-negative amount in the asset's decimals"))?;
    Ok(Reserve { symbol, amount: units, chain_position: chain_position.to_string() })
}

/// Checks both files, prints the table, fails when short.
///
/// # Errors
/// [`CliError::Por`]: a file that fails its checks, or `short`.
pub fn execute_solvency(args: &SolvencyArgs) -> Result<(), CliError> {
    let PinnedKeys { attest, custody } = args.keys.pinned()?;
    let root = read_root(&args.root)?;
    root.verify(attest.as_ref()).map_err(|e| CliError::por(&args.root, e))?;
    let reserves = Reserves::from_json(&read_text(&args.reserves)?).map_err(|e| CliError::por(&args.reserves, e))?;
    reserves.verify(custody.as_ref()).map_err(|e| CliError::por(&args.reserves, e))?;
    if attest.is_none() || custody.is_none() {
        warn("por solvency: keys not pinned (--journal, --attest-pubkey, --custody-pubkey): signatures checked under their own signers only");
    }
    let rows = solvency(&root, &reserves).map_err(|e| CliError::por(&args.reserves, e))?;
    let mut out = Output::create(None)?;
    for line in table(&rows) {
        out.write_line(&line)?;
    }
    out.finish()?;
    let short: Vec<String> = rows
        .iter()
        .filter(|r| r.is_short())
        .map(|r| format!("{} short by {}", r.symbol.as_str(), format_units(-r.surplus, u32::from(r.decimals))))
        .collect();
    if !short.is_empty() {
        return Err(CliError::por(&args.reserves, PorError::new(Fault::Short, short.join("; "))));
    }
    Ok(())
}

/// The solvency table, a header and one line per asset, amounts in the asset's decimals.
pub fn table(rows: &[SolvencyRow]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<8} {:>20} {:>20} {:>18} {:>20} {:>16} {:>18} {:>20}  verdict",
        "asset", "reserves", "Σequity", "Σdebt", "liability", "own", "hole", "surplus"
    )];
    for r in rows {
        let d = u32::from(r.decimals);
        let units = |v: i128| format_units(v, d);
        lines.push(format!(
            "{:<8} {:>20} {:>20} {:>18} {:>20} {:>16} {:>18} {:>20}  {}",
            r.symbol.as_str(),
            units(i128::from(r.reserves)),
            units(i128::from(r.equity)),
            units(i128::from(r.debt)),
            units(r.liability),
            units(i128::from(r.own)),
            units(i128::try_from(r.hole).unwrap_or(i128::MAX)),
            units(r.surplus),
            if r.is_short() { "SHORT" } else { "covered" }
        ));
    }
    lines
}
