//! Instructions per verified signature, for callgrind (`--toggle-collect=*measured*`):
//! `verify_instructions single|batch|single-cached|batch-cached [N]`. The cached modes verify
//! every signature once untimed (warming the key cache, as an ingress worker's is), then
//! again measured. `perf/run`-independent: run it under
//! `valgrind --tool=callgrind --toggle-collect='*measured*'` and divide by N.

use verex_engine::record::SignedTxBytes;
use verex_engine::runtime::WORKER_CACHED_KEYS;
use verex_engine::signature_rule::SignatureVerifier;
use verex_engine::signing::{dev_account_key, verify_archived, SignatureError};
use verex_engine::tx::{Op, Tx};
use verex_engine::verified::VerifiedTx;

const ACCOUNTS: u64 = 1_000;
const BATCH: usize = 256;

fn txs(count: usize) -> Vec<SignedTxBytes> {
    let keys: Vec<_> = (0..ACCOUNTS).map(dev_account_key).collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..count)
        .map(|n| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let account = (state >> 33) % ACCOUNTS;
            let tx = Tx { signer: [0; 32], nonce: n as u64 + 1, account, op: Op::Tick };
            *VerifiedTx::sign(tx, &keys[account as usize]).bytes()
        })
        .collect()
}

#[inline(never)]
fn measured_single(txs: &[SignedTxBytes]) -> usize {
    txs.iter().filter(|tx| verify_archived(tx.archived()).is_ok()).count()
}

#[inline(never)]
fn measured_batch(txs: &[SignedTxBytes], verdicts: &mut Vec<Result<VerifiedTx, SignatureError>>) -> usize {
    let mut ok = 0;
    for batch in txs.chunks(BATCH) {
        VerifiedTx::verify_batch(batch, verdicts);
        ok += verdicts.iter().filter(|v| v.is_ok()).count();
    }
    ok
}

#[inline(never)]
fn measured_single_cached(txs: &[SignedTxBytes], verifier: &mut SignatureVerifier) -> usize {
    txs.iter().filter(|tx| VerifiedTx::verify_with(**tx, verifier).is_ok()).count()
}

#[inline(never)]
fn measured_batch_cached(
    txs: &[SignedTxBytes],
    verifier: &mut SignatureVerifier,
    verdicts: &mut Vec<Result<VerifiedTx, SignatureError>>,
) -> usize {
    let mut ok = 0;
    for batch in txs.chunks(BATCH) {
        VerifiedTx::verify_batch_with(batch, verifier, verdicts);
        ok += verdicts.iter().filter(|v| v.is_ok()).count();
    }
    ok
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "batch".to_string());
    let count: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(4096);
    let txs = txs(count);
    let mut verdicts = Vec::with_capacity(BATCH);
    let ok = match mode.as_str() {
        "single" => measured_single(&txs),
        "batch" => measured_batch(&txs, &mut verdicts),
        "single-cached" => {
            let mut verifier = SignatureVerifier::new(WORKER_CACHED_KEYS, BATCH);
            let _warm = txs.iter().filter(|tx| VerifiedTx::verify_with(**tx, &mut verifier).is_ok()).count();
            measured_single_cached(&txs, &mut verifier)
        }
        "batch-cached" => {
            let mut verifier = SignatureVerifier::new(WORKER_CACHED_KEYS, BATCH);
            for batch in txs.chunks(BATCH) {
                VerifiedTx::verify_batch_with(batch, &mut verifier, &mut verdicts);
            }
            measured_batch_cached(&txs, &mut verifier, &mut verdicts)
        }
        other => panic!("unknown mode {other}"),
    };
    assert_eq!(ok, count);
    println!("{mode}: {count} signatures verified");
}
