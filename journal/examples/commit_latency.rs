//! Commit latency of a journal writer: `--commits` times, append `--records` records of
//! `--bytes` bytes, then time `commit()` alone (in `Batch`: the msync of those records, then
//! the commit mark's pwrite and fdatasync). Prints the mean and p50/p90/p99/max in µs, and
//! the records' throughput. Only the public API is used, so the same file measures any version.
//!
//! The journal lives in a fresh directory under `--dir` (default: the system temp directory);
//! put it on the disk whose sync costs you want to see, not on tmpfs.
//!
//! ```text
//! cargo run --release -p verex-journal --example commit_latency -- \
//!     [--commits 2000] [--records 64] [--bytes 200] [--durability batch|sync|async] [--dir DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use verex_journal::{Durability, JournalConfig, JournalWriter};

struct Args {
    commits: u64,
    records: u64,
    bytes: usize,
    durability: Durability,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { commits: 2000, records: 64, bytes: 200, durability: Durability::Batch, dir: std::env::temp_dir() };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--commits" => args.commits = number()?.max(1),
            "--records" => args.records = number()?.max(1),
            "--bytes" => args.bytes = number()? as usize,
            "--dir" => args.dir = PathBuf::from(&value),
            "--durability" => {
                args.durability = match value.as_str() {
                    "batch" => Durability::Batch,
                    "sync" => Durability::Sync,
                    "async" => Durability::Async,
                    other => return Err(format!("--durability {other}: batch, sync or async")),
                }
            }
            other => return Err(format!("unknown flag {other} (see the example's doc comment)")),
        }
    }
    Ok(args)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn run(args: &Args) -> Result<(), String> {
    let dir = args.dir.join(format!("verex-commit-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = JournalConfig { dir: dir.clone(), segment_bytes: 256 << 20, durability: args.durability };
    let (mut writer, _) = JournalWriter::open(config).map_err(|e| e.to_string())?;
    let payload = vec![0x5Au8; args.bytes];
    let mut seq = 0;
    let mut commits = Vec::with_capacity(args.commits as usize);
    let started = Instant::now();
    for _ in 0..args.commits {
        for _ in 0..args.records {
            seq += 1;
            writer.append(seq, &payload).map_err(|e| e.to_string())?;
        }
        let start = Instant::now();
        writer.commit().map_err(|e| e.to_string())?;
        commits.push(start.elapsed());
    }
    let total = started.elapsed();
    drop(writer);
    let _ = std::fs::remove_dir_all(&dir);
    commits.sort_unstable();
    let at = |q: f64| commits[((commits.len() - 1) as f64 * q).round() as usize];
    let mean = commits.iter().sum::<Duration>() / commits.len() as u32;
    println!(
        "{:?} commit of {} x {} B: mean {:.1} us, p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us; \
         {:.0} records/s overall",
        args.durability,
        args.records,
        args.bytes,
        micros(mean),
        micros(at(0.5)),
        micros(at(0.9)),
        micros(at(0.99)),
        micros(at(1.0)),
        seq as f64 / total.as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("commit_latency: {message}");
            ExitCode::FAILURE
        }
    }
}
