//! The sequencer's stamp: a gap-free seq and a time stamp per transaction.
//!
//! The stamp is the engine's only clock. In production the sequencer reads the wall clock;
//! with `--dev` (and in every test) a deterministic clock stamps seq `n` with
//! [`DEV_CLOCK_START_NS`] `+ n ×` [`DEV_CLOCK_STEP_NS`], so the same input always gives the same
//! events and state hash. A tx that carries its own `ts` is stamped with it.

use crate::tx::{SequencedTx, SignedTx};

/// The deterministic development clock's time at seq 0.
pub const DEV_CLOCK_START_NS: u64 = 1_700_000_000_000_000_000;
/// The deterministic development clock's step per seq.
pub const DEV_CLOCK_STEP_NS: u64 = 1_000_000;

/// Where stamps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// `DEV_CLOCK_START_NS + seq × DEV_CLOCK_STEP_NS`.
    Deterministic,
    /// The system wall clock (nanoseconds since the Unix epoch).
    Wall,
}

/// Assigns seq and ts. Wall-clock stamps never go backwards: a clock step back (NTP, a
/// restart on another machine) stamps the last time again instead of producing `stale_ts`.
#[derive(Clone, Debug)]
pub struct Sequencer {
    last_seq: u64,
    last_ts: u64,
    clock: Clock,
}

impl Sequencer {
    /// A sequencer whose next seq is `last_seq + 1`.
    #[must_use]
    pub fn new(last_seq: u64, clock: Clock) -> Self {
        Self { last_seq, last_ts: 0, clock }
    }

    /// A sequencer resuming after a log whose last record is `last_seq`, stamped `last_ts`.
    #[must_use]
    pub fn resume(last_seq: u64, last_ts: u64, clock: Clock) -> Self {
        Self { last_seq, last_ts, clock }
    }

    /// The last seq assigned.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Stamps a verified transaction; `ts` overrides the clock when given.
    pub fn stamp(&mut self, signed: SignedTx, ts: Option<u64>) -> SequencedTx {
        self.last_seq += 1;
        let seq = self.last_seq;
        let ts = ts.unwrap_or_else(|| match self.clock {
            Clock::Deterministic => DEV_CLOCK_START_NS.saturating_add(seq.saturating_mul(DEV_CLOCK_STEP_NS)),
            Clock::Wall => wall_clock_ns().max(self.last_ts),
        });
        self.last_ts = self.last_ts.max(ts);
        SequencedTx { seq, ts, signed }
    }
}

/// The one wall-clock read in verex: the production sequencer's stamp.
#[allow(clippy::disallowed_methods)]
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
