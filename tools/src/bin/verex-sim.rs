//! `verex-sim`: the deterministic fault simulator (see `verex_tools::sim`).
//!
//! ```text
//! verex-sim [--seeds N] [--from S] [--seed S] [--txs K] [--accounts A] [--faults F]
//!           [--threads T] [--dir DIR]
//! ```
//!
//! Runs seeds `S..S+N` (default 1..=100), each a seeded run of verex's stages with faults
//! injected, on T threads (default: every core), journals under DIR (default: /dev/shm when
//! it exists, else the temporary directory). Prints what was injected and found; on the
//! first failure prints its seed and how to replay it, and exits with status 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use verex_tools::sim::{run_seed, FaultKind, SimConfig, SimFailure, SimReport};

struct Args {
    seeds: u64,
    from: u64,
    txs: u64,
    accounts: u64,
    faults: u32,
    threads: usize,
    dir: PathBuf,
}

const USAGE: &str = "usage: verex-sim [--seeds N] [--from S] [--seed S] [--txs K] [--accounts A] [--faults F] \
                     [--threads T] [--dir DIR]";

fn parse_args() -> Result<Args, String> {
    let shm = PathBuf::from("/dev/shm");
    let defaults = SimConfig::new(PathBuf::new());
    let mut args = Args {
        seeds: 100,
        from: 1,
        txs: defaults.txs,
        accounts: defaults.accounts,
        faults: defaults.faults,
        threads: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        dir: if shm.is_dir() { shm } else { std::env::temp_dir() },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--seeds" => args.seeds = number()?,
            "--from" => args.from = number()?,
            "--seed" => {
                args.from = number()?;
                args.seeds = 1;
            }
            "--txs" => args.txs = number()?,
            "--accounts" => args.accounts = number()?,
            "--faults" => args.faults = u32::try_from(number()?).map_err(|e| format!("--faults: {e}"))?,
            "--threads" => args.threads = usize::try_from(number()?.max(1)).unwrap_or(1),
            "--dir" => args.dir = PathBuf::from(&value),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let next = AtomicU64::new(args.from);
    let end = args.from.saturating_add(args.seeds);
    let stop = AtomicBool::new(false);
    let totals = Mutex::new(SimReport::default());
    let failure: Mutex<Option<SimFailure>> = Mutex::new(None);
    let done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for worker in 0..args.threads {
            let (next, stop, totals, failure, done, args) = (&next, &stop, &totals, &failure, &done, &args);
            scope.spawn(move || {
                let dir = args.dir.join(format!("verex-sim-{}-{worker}", std::process::id()));
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    let config =
                        SimConfig { txs: args.txs, accounts: args.accounts, faults: args.faults, dir: dir.clone() };
                    match run_seed(seed, &config) {
                        Ok(report) => {
                            totals.lock().map(|mut t| t.add(&report)).unwrap_or(());
                            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if n % 100 == 0 {
                                eprintln!("{n} seeds passed ({:.0} s)", started.elapsed().as_secs_f64());
                            }
                        }
                        Err(failed) => {
                            stop.store(true, Ordering::Relaxed);
                            if let Ok(mut slot) = failure.lock() {
                                slot.get_or_insert(failed);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap_or_default();
    let passed = done.load(Ordering::Relaxed);
    println!(
        "verex-sim: {passed} seeds from {} passed in {:.1} s ({} txs, {} accounts, {} faults each)",
        args.from,
        started.elapsed().as_secs_f64(),
        args.txs,
        args.accounts,
        args.faults
    );
    println!("{}", describe(&totals));
    match failure.into_inner().unwrap_or(None) {
        Some(failed) => {
            eprintln!("FAILED: {failed}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

fn describe(totals: &SimReport) -> String {
    let faults: Vec<String> =
        FaultKind::ALL.iter().zip(totals.faults).map(|(kind, n)| format!("{} {n}", kind.name())).collect();
    format!(
        "faults injected: {}\nrecoveries {}, torn tails cut {}, corruptions refused and named {}, unreleased records lost \
         {}\ntransactions applied {}, records journaled {}, liquidation steps {}, hostile inputs refused {}, absurd \
         stamps rejected {}\nlending: pool moves {}, interest accruals {}, debtor liquidation steps {}",
        faults.join(", "),
        totals.recoveries,
        totals.torn_tails_cut,
        totals.corruptions_named,
        totals.lost_unreleased,
        totals.applied,
        totals.records,
        totals.liquidations,
        totals.refused,
        totals.rejected_stamps,
        totals.pool_moves,
        totals.accruals,
        totals.debt_liquidations
    )
}
