//! `verex sign`: fills in `signer` and `nonce` of unsigned JSON-lines transactions and signs
//! them with one key, so that `verex sign | verex run --input -` works without `--dev`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, ValueEnum};
use ed25519_dalek::SigningKey;
use verex_engine::signing::{dev_account_key, dev_role_key, hex, sign, Role};
use verex_engine::text::tx_json::{op_name, parse_tx_line, render_tx, role_of, TxLine};
use verex_engine::tx::{Op, Tx};

use crate::error::CliError;
use crate::io::{refuse_same_file, LineReader, Output, Progress};
use crate::keys::read_key_file;

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Sign unsigned JSON-lines transactions (SPEC section 13) with one key and write them back as \
signed lines, ready for `verex run` without --dev.

Each line gets `signer` (the key's public key), a `nonce` and a `signature`. A line's own \
`nonce` is kept; lines without one are numbered from --nonce-start on, continuing after the \
highest nonce seen so far. Nonces are per signer and must increase across everything that \
signer sends: sign a second batch with --nonce-start after the last nonce of the first. A \
line that already names a different `signer` is an error; an old `signature` is replaced. \
`ts` is kept (it is a stamp, not part of the signed bytes). Blank and # lines are dropped.

User ops must name their `account` (with --dev-account N it defaults to N). Operator ops \
(add_asset, add_market: admin; deposit: custody; mark, funding, tick: oracle) verify only \
if the run's genesis names the signing key for that role.";

/// A development operator role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Lists assets and markets.
    Admin,
    /// Credits deposits.
    Custody,
    /// Publishes marks, funding and ticks.
    Oracle,
    /// Signs attestations.
    Attest,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Custody => Role::Custody,
            RoleArg::Oracle => Role::Oracle,
            RoleArg::Attest => Role::Attest,
        }
    }
}

/// Arguments of `verex sign`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("signing_key").required(true).args(["key", "dev_account", "dev_role"])))]
pub struct SignArgs {
    /// Key file written by `verex keygen`.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Sign with the development key of account N (development only).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub dev_account: Option<u64>,
    /// Sign with the development key of an operator role (development only).
    #[arg(long, value_enum, value_name = "ROLE")]
    pub dev_role: Option<RoleArg>,
    /// Unsigned JSON-lines transactions (default: standard input; `-` too).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the signed lines here (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// First nonce given to lines without one.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub nonce_start: u64,
}

/// Signs the input.
///
/// # Errors
/// [`CliError::Line`] for a line that is not a transaction or cannot be signed as asked;
/// [`CliError::File`] / [`CliError::Io`] for the key file and I/O.
pub fn execute(args: &SignArgs) -> Result<(), CliError> {
    let key = signing_key(args)?;
    refuse_same_file(args.input.as_deref(), args.output.as_deref(), "--input and --output")?;
    let mut input = LineReader::open(args.input.as_deref())?;
    let mut output = Output::create(args.output.as_deref())?;
    let mut signer = LineSigner { key, default_account: args.dev_account, next_nonce: args.nonce_start };
    let outcome = sign_lines(&mut signer, &mut input, &mut output);
    let flushed = output.finish();
    outcome.and(flushed)
}

fn signing_key(args: &SignArgs) -> Result<SigningKey, CliError> {
    match (&args.key, args.dev_account, args.dev_role) {
        (Some(path), None, None) => read_key_file(path),
        (None, Some(account), None) => Ok(dev_account_key(account)),
        (None, None, Some(role)) => Ok(dev_role_key(role.into())),
        _ => Err(CliError::Usage("give exactly one of --key, --dev-account, --dev-role".to_string())),
    }
}

fn sign_lines(signer: &mut LineSigner, input: &mut LineReader, output: &mut Output) -> Result<(), CliError> {
    let mut progress = Progress::new("sign");
    let mut signed_lines = 0u64;
    while let Some(line) = input.next_line()? {
        let number = line.number;
        let signed = parse_tx_line(line.text)
            .map_err(|e| e.to_string())
            .and_then(|parsed| signer.sign(&parsed))
            .map_err(|reason| input.line_error(number, reason))?;
        output.write_line(&signed)?;
        signed_lines += 1;
        progress.update(signed_lines, input.progress());
    }
    Ok(())
}

/// Signs parsed lines with one key, numbering nonces.
struct LineSigner {
    key: SigningKey,
    /// `account` of user ops that leave it out (`--dev-account`).
    default_account: Option<u64>,
    next_nonce: u64,
}

impl LineSigner {
    /// The signed, rendered line, or why it cannot be signed.
    fn sign(&mut self, line: &TxLine) -> Result<String, String> {
        let public = self.key.verifying_key().to_bytes();
        if let Some(named) = line.signer.filter(|named| *named != public) {
            return Err(format!("the line names signer {} but the key is {}", hex(&named), hex(&public)));
        }
        let nonce = line.nonce.unwrap_or(self.next_nonce);
        self.next_nonce = self.next_nonce.max(nonce.saturating_add(1));
        let account = self.account_of(line)?;
        let signed = sign(Tx { signer: public, nonce, account, op: line.op }, &self.key);
        Ok(render_tx(&signed, None, line.ts))
    }

    /// The `account` the signed tx carries: none for operator ops and `create_account`.
    fn account_of(&self, line: &TxLine) -> Result<u64, String> {
        if role_of(&line.op).is_some() || matches!(line.op, Op::CreateAccount) {
            return Ok(0);
        }
        match (line.account, self.default_account) {
            (0, Some(account)) => Ok(account),
            (0, None) => Err(format!("op {:?} needs `account`, the signer's account id", op_name(&line.op))),
            (account, _) => Ok(account),
        }
    }
}
