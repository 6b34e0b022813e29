//! How an idle stage waits: busy-spin on dedicated cores, or spin briefly then yield the CPU
//! on small or shared machines.
//!
//! A stage that finds nothing to do (an empty ring, a full ring, a record not yet durable)
//! calls [`Backoff::snooze`] and tries again; when it makes progress it calls
//! [`Backoff::reset`]. Busy-spinning never leaves the core: the lowest latency, but a spinning
//! thread that shares its core with the thread it waits for delays that thread by a whole
//! scheduler time slice. Yielding costs a `sched_yield` per idle turn (never while there is
//! work) and lets the waited-for thread run.

/// Spins of [`WaitMode::Yielding`] before each `yield_now`.
pub const SPINS_BEFORE_YIELD: u32 = 64;

/// Threads that wait by spinning when the pipeline runs: the journal, engine and output stages.
/// Busy-spinning pays only with a free core for each of them plus one for the sequencer.
pub const SPINNING_STAGES: usize = 3;

/// How the pipeline's stages wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Spin with a pause hint and never leave the core. Needs a dedicated core per stage.
    BusySpin,
    /// Spin [`SPINS_BEFORE_YIELD`] times, then `std::thread::yield_now` between tries.
    Yielding,
}

impl WaitMode {
    /// [`WaitMode::BusySpin`] when this machine has a core for every stage and one for the
    /// sequencer (`SPINNING_STAGES + 1`), [`WaitMode::Yielding`] otherwise (and when the core
    /// count is unknown).
    #[must_use]
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::for_cores(cores)
    }

    /// The mode [`WaitMode::for_this_machine`] picks on a machine with `cores` cores.
    #[must_use]
    pub fn for_cores(cores: usize) -> Self {
        if cores > SPINNING_STAGES {
            Self::BusySpin
        } else {
            Self::Yielding
        }
    }

    /// The mode's name as reported at start: `busy-spin` or `yielding`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BusySpin => "busy-spin",
            Self::Yielding => "yielding",
        }
    }
}

impl core::fmt::Display for WaitMode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One waiting thread's state: how long it has been idle.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    mode: WaitMode,
    idle_turns: u32,
}

impl Backoff {
    /// A backoff that has not waited yet.
    #[must_use]
    pub fn new(mode: WaitMode) -> Self {
        Self { mode, idle_turns: 0 }
    }

    /// Waits one turn: a spin-loop hint, or (yielding, after [`SPINS_BEFORE_YIELD`] idle
    /// turns) a `yield_now`.
    #[inline]
    pub fn snooze(&mut self) {
        match self.mode {
            WaitMode::BusySpin => core::hint::spin_loop(),
            WaitMode::Yielding => {
                if self.idle_turns < SPINS_BEFORE_YIELD {
                    self.idle_turns += 1;
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Progress was made: the next wait starts spinning again.
    #[inline]
    pub fn reset(&mut self) {
        self.idle_turns = 0;
    }
}

/// The yielding wait as a `disruptor` wait strategy, for rings whose consumers the `disruptor`
/// crate runs itself (`handle_events_with`). Stateless, so it yields on every idle turn.
#[derive(Clone, Copy, Debug, Default)]
pub struct YieldingWait;

impl disruptor::wait_strategies::WaitStrategy for YieldingWait {
    #[inline]
    fn wait_for(&self, _sequence: disruptor::Sequence) {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_spin_needs_a_core_per_stage_and_one_for_the_sequencer() {
        assert_eq!(WaitMode::for_cores(1), WaitMode::Yielding);
        assert_eq!(WaitMode::for_cores(2), WaitMode::Yielding);
        assert_eq!(WaitMode::for_cores(SPINNING_STAGES), WaitMode::Yielding);
        assert_eq!(WaitMode::for_cores(SPINNING_STAGES + 1), WaitMode::BusySpin);
        assert_eq!(WaitMode::Yielding.to_string(), "yielding");
    }

    #[test]
    fn yielding_spins_first_then_yields_and_reset_spins_again() {
        let mut backoff = Backoff::new(WaitMode::Yielding);
        for _ in 0..SPINS_BEFORE_YIELD + 3 {
            backoff.snooze();
        }
        assert_eq!(backoff.idle_turns, SPINS_BEFORE_YIELD);
        backoff.reset();
        assert_eq!(backoff.idle_turns, 0);
    }
}
