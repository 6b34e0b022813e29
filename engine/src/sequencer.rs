//! The sequencer's stamp: a gap-free seq and a time stamp per transaction.
//!
//! The stamp is the engine's only clock, and it belongs to the sequencer alone (SPEC section
//! 13): a time stamp is outside the signed bytes, so letting a client (or any relay) choose it
//! would let anyone who can forward a line move the exchange's clock.
//!
//! - [`Clock::Wall`] (production): the wall clock is read once, when the sequencer starts, and
//!   the stamps then follow the monotonic clock from there: strictly increasing, never
//!   following a wall clock that steps (a jump back is held, a jump forward is ignored until
//!   the next start). A tx's own `ts` is refused ([`StampError::ClientTs`]).
//! - [`Clock::Deterministic`] (`--dev`, tests): seq `n` is stamped
//!   `max(`[`DEV_CLOCK_START_NS`]` + n × `[`DEV_CLOCK_STEP_NS`]`, previous stamp + 1)`, so the
//!   same input always gives the same events and state hash. A tx's own `ts` (for tests) is
//!   used as its stamp; the engine rejects it if it goes backwards (`stale_ts`) or is not
//!   below [`MAX_TS_NS`] (`invalid_ts`), and such a stamp does not move the clock.
//!
//! Every stamp is below [`MAX_TS_NS`] (2^62 ns after the epoch, about the year 2116).

use crate::verified::{VerifiedRecordBytes, VerifiedTx};

/// The deterministic development clock's time at seq 0.
pub const DEV_CLOCK_START_NS: u64 = 1_700_000_000_000_000_000;
/// The deterministic development clock's step per seq.
pub const DEV_CLOCK_STEP_NS: u64 = 1_000_000;
/// Stamps are below this: 2^62 ns after the Unix epoch (about the year 2116).
pub const MAX_TS_NS: u64 = 1 << 62;

/// Where stamps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// `max(DEV_CLOCK_START_NS + seq × DEV_CLOCK_STEP_NS, previous + 1)`; a tx's own `ts` is
    /// honoured (development and tests).
    Deterministic,
    /// The system clock, read once at start and followed monotonically; a tx's own `ts` is
    /// refused.
    Wall,
}

/// A seq and its stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The seq assigned.
    pub seq: u64,
    /// The time stamp, ns since the Unix epoch.
    pub ts: u64,
}

/// Why the sequencer refuses to stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    /// A tx carried its own `ts` under the wall clock: the stamp is the sequencer's alone.
    #[error("a transaction may not carry its own ts: the sequencer stamps it (ts {0})")]
    ClientTs(u64),
}

/// Where the wall clock stood when the sequencer started.
#[derive(Clone, Copy, Debug)]
struct WallAnchor {
    instant: std::time::Instant,
    wall_ns: u64,
}

/// Assigns seq and ts.
#[derive(Clone, Debug)]
pub struct Sequencer {
    last_seq: u64,
    /// The last stamp that moved the clock (a rejected `ts` override does not).
    last_ts: u64,
    clock: Clock,
    anchor: Option<WallAnchor>,
}

impl Sequencer {
    /// A sequencer whose next seq is `last_seq + 1`.
    #[must_use]
    pub fn new(last_seq: u64, clock: Clock) -> Self {
        Self::resume(last_seq, 0, clock)
    }

    /// A sequencer resuming after a log whose last record is `last_seq`, stamped `last_ts`.
    #[must_use]
    pub fn resume(last_seq: u64, last_ts: u64, clock: Clock) -> Self {
        let anchor = (clock == Clock::Wall).then(|| {
            let (instant, wall_ns) = read_wall_clock();
            WallAnchor { instant, wall_ns: wall_ns.max(last_ts.saturating_add(1)) }
        });
        Self { last_seq, last_ts: last_ts.min(MAX_TS_NS - 1), clock, anchor }
    }

    /// The last seq assigned.
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The clock this sequencer stamps with.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Whether [`Sequencer::next`] would accept `ts` (checked before a ring slot is claimed).
    ///
    /// # Errors
    /// As [`Sequencer::next`].
    pub fn admits(&self, ts: Option<u64>) -> Result<(), StampError> {
        match (self.clock, ts) {
            (Clock::Wall, Some(ts)) => Err(StampError::ClientTs(ts)),
            _ => Ok(()),
        }
    }

    /// Assigns the next seq and its stamp; `ts` is a tx's own stamp (development only).
    ///
    /// # Errors
    /// [`StampError::ClientTs`] when `ts` is given under [`Clock::Wall`]; nothing is assigned.
    pub fn next(&mut self, ts: Option<u64>) -> Result<Stamp, StampError> {
        self.admits(ts)?;
        let ts = match (self.clock, ts) {
            (Clock::Wall, _) => self.wall_stamp(),
            (Clock::Deterministic, Some(ts)) => ts,
            (Clock::Deterministic, None) => {
                let seq = self.last_seq + 1;
                DEV_CLOCK_START_NS
                    .saturating_add(seq.saturating_mul(DEV_CLOCK_STEP_NS))
                    .max(self.last_ts + 1)
                    .min(MAX_TS_NS - 1)
            }
        };
        self.last_seq += 1;
        // Only a stamp the engine accepts moves the clock (see the module docs).
        if ts >= self.last_ts && ts < MAX_TS_NS {
            self.last_ts = ts;
        }
        Ok(Stamp { seq: self.last_seq, ts })
    }

    /// Stamps a verified tx into a record; `ts` as in [`Sequencer::next`].
    ///
    /// # Errors
    /// As [`Sequencer::next`].
    pub fn stamp(&mut self, tx: &VerifiedTx, ts: Option<u64>) -> Result<VerifiedRecordBytes, StampError> {
        let stamp = self.next(ts)?;
        Ok(VerifiedRecordBytes::stamp(stamp.seq, stamp.ts, tx))
    }

    /// The monotonic continuation of the wall clock read at start, after the last stamp.
    fn wall_stamp(&self) -> u64 {
        let Some(anchor) = self.anchor else { return self.last_ts + 1 };
        let elapsed = u64::try_from(anchor.instant.elapsed().as_nanos()).unwrap_or(u64::MAX);
        anchor.wall_ns.saturating_add(elapsed).max(self.last_ts + 1).min(MAX_TS_NS - 1)
    }
}

/// The one wall-clock read in verex: the production sequencer's anchor.
#[allow(clippy::disallowed_methods)]
fn read_wall_clock() -> (std::time::Instant, u64) {
    let instant = std::time::Instant::now();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    (instant, wall.min(MAX_TS_NS - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_stamps_follow_the_seq_and_jumps_do_not_block_later_lines() {
        let mut s = Sequencer::new(0, Clock::Deterministic);
        assert_eq!(s.next(None), Ok(Stamp { seq: 1, ts: DEV_CLOCK_START_NS + DEV_CLOCK_STEP_NS }));
        let year_later = DEV_CLOCK_START_NS + 365 * 24 * 3600 * 1_000_000_000;
        assert_eq!(s.next(Some(year_later)).map(|s| s.ts), Ok(year_later));
        assert_eq!(s.next(None).map(|s| s.ts), Ok(year_later + 1), "after a jump, the next line continues");
    }

    #[test]
    fn an_absurd_or_stale_dev_ts_does_not_move_the_clock() {
        let mut s = Sequencer::new(0, Clock::Deterministic);
        let first = s.next(None).expect("stamp").ts;
        assert_eq!(s.next(Some(u64::MAX)).map(|s| s.ts), Ok(u64::MAX), "stamped as given; the engine rejects it");
        assert_eq!(s.next(Some(5)).map(|s| s.ts), Ok(5), "stale: the engine rejects it");
        let next = s.next(None).expect("stamp");
        assert_eq!(next, Stamp { seq: 4, ts: DEV_CLOCK_START_NS + 4 * DEV_CLOCK_STEP_NS });
        assert!(next.ts > first);
    }

    #[test]
    fn the_wall_clock_refuses_a_client_ts_and_never_goes_backwards() {
        let mut s = Sequencer::resume(10, u64::MAX - 5, Clock::Wall);
        assert_eq!(s.next(Some(1)), Err(StampError::ClientTs(1)));
        assert_eq!(s.last_seq(), 10, "a refused stamp assigns no seq");
        let a = s.next(None).expect("stamp");
        let b = s.next(None).expect("stamp");
        assert!(a.ts < MAX_TS_NS && b.ts < MAX_TS_NS && b.ts >= a.ts);
        let mut s = Sequencer::resume(0, 0, Clock::Wall);
        let stamps: Vec<u64> = (0..1000).map(|_| s.next(None).expect("stamp").ts).collect();
        assert!(stamps.windows(2).all(|w| w[1] > w[0]), "strictly increasing");
    }
}
