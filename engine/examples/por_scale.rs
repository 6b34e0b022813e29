//! The Proof of Reserves at scale (SPEC 10's goals): a tree over 1,000,000 accounts × 8 assets
//! built on every core, the size of a proof, and the time to verify one.
//!
//! `cargo run --release -p verex-engine --example por_scale [ACCOUNTS [ASSETS]]`
//!
//! The balances are synthetic (a fixed xorshift stream, so every run builds the same tree):
//! per account and asset, 40 % hold nothing, the others between 10^4 and 10^13 units; one
//! account in twenty has a debt in one asset. Each phase is timed once, on this machine's
//! cores, and printed; verification is timed over 1,000 proofs of accounts spread over the tree.
// A benchmark times itself; the engine's clock rule (engine/clippy.toml) is about the state machine.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use verex_engine::por::format::seed_commitment;
use verex_engine::por::proof::{verify_files, verify_proof};
use verex_engine::por::{LeafSet, Proof, Root, RootAsset, Tree};
use verex_engine::signing::{dev_role_key, Role};
use verex_engine::tx::Symbol;

struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("a number"));
    let accounts = args.next().unwrap_or(1_000_000);
    let assets = args.next().unwrap_or(8) as usize;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!("Proof of Reserves at scale: {accounts} accounts × {assets} assets, {threads} threads");

    let started = Instant::now();
    let mut stream = Stream(0x005e_ed0f_9e5e_12e5);
    let mut leaves = LeafSet::new(assets).expect("assets");
    leaves.reserve(accounts as usize);
    let (mut equity, mut debt) = (vec![0u64; assets], vec![0u64; assets]);
    for account in 1..=accounts {
        for value in equity.iter_mut() {
            let r = stream.next();
            *value = if r % 10 < 4 { 0 } else { 10u64.pow(4 + (r >> 8) as u32 % 10) + (r >> 20) % 10_000 };
        }
        debt.fill(0);
        if stream.next().is_multiple_of(20) {
            debt[(stream.next() % assets as u64) as usize] = 10u64.pow(6) + stream.next() % 10u64.pow(9);
        }
        leaves.push(account, &equity, &debt).expect("ids increase");
    }
    let leaf_count = leaves.len();
    println!("  leaves generated:        {:>9.3} s ({leaf_count} with a value)", started.elapsed().as_secs_f64());

    let seed = [42u8; 32];
    let building = Instant::now();
    let tree = Tree::build(leaves, 1_000_000, &seed, threads).expect("build");
    let build_s = building.elapsed().as_secs_f64();
    println!("  tree built:              {build_s:>9.3} s (height {}, {} threads)", tree.height(), threads);

    let symbols: Vec<Symbol> = (0..assets).map(|i| Symbol::new(&format!("AS{i}")).expect("symbol")).collect();
    let sums = tree.root_sums();
    let mut root = Root {
        seq: tree.seq(),
        journal_digest: [1; 32],
        state_hash: [2; 32],
        root_hash: tree.root_hash(),
        seed_commitment: seed_commitment(&seed),
        leaf_count: tree.leaf_count(),
        height: tree.height(),
        assets: symbols
            .iter()
            .enumerate()
            .map(|(i, symbol)| RootAsset {
                symbol: *symbol,
                decimals: 8,
                equity: sums[i],
                debt: sums[assets + i],
                fees: 0,
                insurance: 0,
            })
            .collect(),
        signer: [0; 32],
        signature: [0; 64],
    };
    let attest = dev_role_key(Role::Attest);
    root.sign(&attest);
    let root_text = root.to_json();
    let key = attest.verifying_key().to_bytes();

    let sample: Vec<u64> = (0..1000u64).map(|i| tree.accounts()[(i * leaf_count as u64 / 1000) as usize]).collect();
    let texts: Vec<String> =
        sample.iter().map(|&a| Proof::from_tree(&tree, &seed, &symbols, a).expect("leaf").to_json()).collect();
    let (max, mean) =
        (texts.iter().map(String::len).max().unwrap_or(0), texts.iter().map(String::len).sum::<usize>() / texts.len());
    println!("  proof size (JSON):       {max:>9} bytes at most, {mean} on average ({} siblings)", tree.height());

    let proofs: Vec<Proof> = texts.iter().map(|t| Proof::from_json(t).expect("parses")).collect();
    let checking = Instant::now();
    for proof in &proofs {
        verify_proof(proof, &root, None).expect("holds");
    }
    let walk_us = checking.elapsed().as_secs_f64() * 1e6 / proofs.len() as f64;
    let parsing = Instant::now();
    for text in &texts {
        verify_proof(&Proof::from_json(text).expect("parses"), &root, None).expect("holds");
    }
    let parse_us = parsing.elapsed().as_secs_f64() * 1e6 / texts.len() as f64;
    let whole = Instant::now();
    for text in &texts {
        verify_files(text, &root_text, Some(&key), None).expect("holds");
    }
    let whole_us = whole.elapsed().as_secs_f64() * 1e6 / texts.len() as f64;
    println!("  verify a proof:          {walk_us:>9.1} µs (hashes and sums up the path)");
    println!("  parse + verify:          {parse_us:>9.1} µs (from the JSON file)");
    println!("  with the root's checks:  {whole_us:>9.1} µs (root parsed, its ed25519 signature verified)");
    println!(
        "goals (SPEC 10): build < 10 s: {}; proof < 8 KB: {}; verification < 1 ms: {}",
        if build_s < 10.0 { "met" } else { "MISSED" },
        if max < 8 * 1024 { "met" } else { "MISSED" },
        if whole_us < 1000.0 { "met" } else { "MISSED" }
    );
}
