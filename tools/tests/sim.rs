//! The deterministic fault simulator (`verex_tools::sim`) over a bounded number of seeds: the
//! CI share of `verex-sim --seeds N`. Every seed must keep every rule; together they must
//! inject every kind of fault and meet every kind of outcome, so that a simulator that
//! silently stopped injecting would fail here.

use verex_tools::sim::{run_seed, FaultKind, SimConfig, SimReport};

/// Seeds run in CI (override with VEREX_SIM_SEEDS).
const CI_SEEDS: u64 = 40;

#[test]
fn seeded_runs_with_injected_faults_keep_every_rule() {
    let seeds = std::env::var("VEREX_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(CI_SEEDS);
    let root = tempfile::tempdir().expect("temp dir");
    let threads = 2u64;
    let totals: Vec<SimReport> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let dir = root.path().join(format!("worker-{worker}"));
                scope.spawn(move || {
                    let mut totals = SimReport::default();
                    for seed in (1..=seeds).filter(|seed| seed % threads == worker) {
                        let report =
                            run_seed(seed, &SimConfig::new(dir.clone())).unwrap_or_else(|failed| panic!("{failed}"));
                        totals.add(&report);
                    }
                    totals
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).collect()
    });
    let mut all = SimReport::default();
    for report in &totals {
        all.add(report);
    }
    for (kind, injected) in FaultKind::ALL.iter().zip(all.faults) {
        assert!(injected > 0, "{} was never injected over {seeds} seeds: {all:?}", kind.name());
    }
    assert!(all.recoveries >= all.faults.iter().sum::<u64>() / 2, "{all:?}");
    assert!(all.torn_tails_cut > 0, "no torn tail was ever cut: {all:?}");
    assert!(all.corruptions_named > 0, "no corruption was ever named: {all:?}");
    assert!(all.lost_unreleased > 0, "no unreleased record was ever lost: {all:?}");
    assert!(all.liquidations > 0, "no liquidation over {seeds} seeds: {all:?}");
    assert!(all.refused > 0 && all.rejected_stamps > 0, "{all:?}");
    // Lending is part of the workload: pool moves, interest, liquidated debtors.
    assert!(all.pool_moves > 0 && all.accruals > 0, "{all:?}");
    assert!(all.debt_liquidations > 0, "no debtor was liquidated over {seeds} seeds: {all:?}");
}
