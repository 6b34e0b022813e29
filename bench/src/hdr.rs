//! HDR histograms of single operations, as the benches report them.

use std::time::Instant;

use hdrhistogram::Histogram;

/// Highest recordable value: 10 s in ns.
pub const MAX_NS: u64 = 10_000_000_000;

/// An empty histogram of ns, 3 significant digits, its counts already written (so no page is
/// first touched inside a measured loop).
#[must_use]
pub fn histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, MAX_NS, 3).unwrap_or_else(|e| panic!("histogram bounds: {e}"));
    h.reset();
    h
}

/// ns since `start`, at least 1 (a histogram's lowest value).
#[must_use]
pub fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// `{"p50":…,"p99":…,"p99.9":…,"p99.99":…,"max":…,"count":…}`, in ns.
#[must_use]
pub fn percentiles_json(h: &Histogram<u64>) -> String {
    let q = |p: f64| h.value_at_quantile(p);
    format!(
        "{{\"p50\":{},\"p99\":{},\"p99.9\":{},\"p99.99\":{},\"max\":{},\"count\":{}}}",
        q(0.5),
        q(0.99),
        q(0.999),
        q(0.9999),
        h.max(),
        h.len()
    )
}

/// `p50 … p99 … p99.9 … p99.99 … max … ns (count)`, for a printed table.
#[must_use]
pub fn percentiles_row(h: &Histogram<u64>) -> String {
    let q = |p: f64| h.value_at_quantile(p);
    format!("p50 {} p99 {} p99.9 {} p99.99 {} max {} ns ({})", q(0.5), q(0.99), q(0.999), q(0.9999), h.max(), h.len())
}
