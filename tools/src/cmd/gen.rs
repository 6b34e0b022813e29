//! `verex gen`: a deterministic, realistic signed workload (see [`crate::gen`]).

use std::path::PathBuf;

use clap::Args;
use verex_engine::text::tx_json::{parse_tx_line, render_tx, DevSigner};

use crate::error::CliError;
use crate::gen::{GenConfig, Generator, MAX_GEN_MARKETS};
use crate::io::Output;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Generate a realistic workload as JSON-lines transactions: listings (USDC and one base asset per \
pair of markets; spot and perp markets alternate), N funded accounts, an insurance fund, opening \
marks, then K order-flow transactions around a random-walking mid price per market: resting \
limit orders (gtc, some post_only), crossing ioc orders, market orders, cancels and amends of \
the account's own recent orders by client id, oracle marks and funding. Every asset has a \
lending pool: every tenth account lends in set-up; the flow lends, redeems, borrows, repays and \
ticks; one extra account (N + 1) borrows USDC against the first base asset and withdraws it, \
and halfway through, one mark drops that asset's index by 20 %: the borrower is liquidated.

The same arguments always give the same file (a fixed pseudo-random stream; --seed changes it). \
By default the lines are signed with the deterministic development keys (fields signer, nonce, \
signature), ready for `verex run` without --dev against the development genesis; --unsigned \
writes the plain form for `verex run --dev`.";

/// Arguments of `verex gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Accounts to create and fund.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub accounts: u64,
    /// Markets to list (spot and perp alternate).
    #[arg(long, value_name = "M", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=MAX_GEN_MARKETS))]
    pub markets: u64,
    /// Order-flow transactions after the set-up lines.
    #[arg(long, value_name = "K", default_value_t = 100_000)]
    pub txs: u64,
    /// Seed of the pseudo-random stream.
    #[arg(long, default_value_t = GenConfig::default().seed)]
    pub seed: u64,
    /// Write unsigned lines (for `verex run --dev`).
    #[arg(long)]
    pub unsigned: bool,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Generates the workload.
///
/// # Errors
/// [`CliError`] when the output cannot be written.
pub fn execute(args: &GenArgs) -> Result<(), CliError> {
    let mut generator =
        Generator::new(GenConfig { accounts: args.accounts, markets: args.markets, txs: args.txs, seed: args.seed });
    let mut out = Output::create(args.out.as_deref())?;
    let mut signer = DevSigner::default();
    let mut write = |line: String, out: &mut Output| -> Result<(), CliError> {
        if args.unsigned {
            return out.write_line(&line);
        }
        let parsed = parse_tx_line(&line).map_err(|e| CliError::File {
            file: "<generator>".into(),
            reason: format!("generated line {line} does not parse: {e}"),
        })?;
        out.write_line(&render_tx(&signer.sign(&parsed), None, parsed.ts))
    };
    for line in generator.setup() {
        write(line, &mut out)?;
    }
    while let Some(line) = generator.next_line() {
        write(line, &mut out)?;
    }
    out.finish()
}
