//! How an idle stage waits: busy-spin on dedicated cores, spin then yield, or spin, yield,
//! then park on small or shared machines.
//!
//! A stage that finds nothing to do (an empty ring, a full ring, a record not yet durable)
//! calls [`Backoff::snooze`] and tries again; when it makes progress it calls
//! [`Backoff::reset`]. Busy-spinning never leaves the core: the lowest latency, but a spinning
//! thread that shares its core with the thread it waits for delays that thread by a whole
//! scheduler time slice. Yielding costs a `sched_yield` per idle turn (never while there is
//! work) and lets the waited-for thread run, but an idle stage stays runnable, so with more
//! stage threads than cores a stage with work still shares its core with idle ones. Blocking
//! parks an idle stage after a short spin and a few yields; whoever gives it work wakes it
//! (one `futex` wake, paid only when the stage is asleep), so idle stages use no CPU at all.

/// Spins of [`WaitMode::Yielding`] and [`WaitMode::Blocking`] before they yield.
pub const SPINS_BEFORE_YIELD: u32 = 64;
/// Yields of [`WaitMode::Blocking`] before it parks.
pub const YIELDS_BEFORE_PARK: u32 = 16;
/// Longest a parked stage sleeps without a wake (a safety net: wakes are never lost, but a
/// bounded park costs nothing and bounds the damage of a bug).
pub const PARK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1);

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
    /// As [`WaitMode::Yielding`] for [`YIELDS_BEFORE_PARK`] yields, then park until woken.
    /// The stage that hands an asleep stage work pays one wake (a system call, also on the
    /// engine stage when it wakes the output stage). For machines shared with other work: no
    /// CPU while idle, longer tails under load than yielding.
    Blocking,
}

impl WaitMode {
    /// [`WaitMode::BusySpin`] when this machine has a core for every stage and one for the
    /// sequencer (`SPINNING_STAGES + 1`), [`WaitMode::Yielding`] otherwise (and when the core
    /// count is unknown). On two cores yielding has the better tails under load and blocking
    /// uses no CPU while idle: see `perf/latency/README.md`.
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

    /// The mode for a pipeline fed by an ingress whose `ingress_workers` verify signatures
    /// on the same `cores`: busy-spin only with a core for each stage, the sequencer and each
    /// worker; otherwise [`WaitMode::Blocking`]. A yielding idle stage stays runnable and takes
    /// turns on the cores the workers verify on, so signature verification, the bound of a
    /// signed pipeline, loses its cores to stages with nothing to do (on 2 cores, `latency
    /// --signed` end to end rose by about a quarter with blocking).
    #[must_use]
    pub fn beside_ingress(cores: usize, ingress_workers: usize) -> Self {
        if cores > SPINNING_STAGES + ingress_workers {
            Self::BusySpin
        } else {
            Self::Blocking
        }
    }

    /// The mode's name as reported at start: `busy-spin`, `yielding` or `blocking`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BusySpin => "busy-spin",
            Self::Yielding => "yielding",
            Self::Blocking => "blocking",
        }
    }

    /// Parses [`WaitMode::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::BusySpin, Self::Yielding, Self::Blocking].into_iter().find(|mode| mode.as_str() == name)
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

    /// Waits one turn without sleeping: a spin-loop hint, or (yielding and blocking, after
    /// [`SPINS_BEFORE_YIELD`] idle turns) a `yield_now`.
    #[inline]
    pub fn snooze(&mut self) {
        match self.mode {
            WaitMode::BusySpin => core::hint::spin_loop(),
            WaitMode::Yielding | WaitMode::Blocking => {
                if self.idle_turns < SPINS_BEFORE_YIELD {
                    self.idle_turns += 1;
                    core::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Waits one turn, and in [`WaitMode::Blocking`] after the spins and
    /// [`YIELDS_BEFORE_PARK`] yields, parks on `sleeper` unless `has_work` says otherwise.
    #[inline]
    pub(crate) fn idle(&mut self, sleeper: &Sleeper, has_work: impl Fn() -> bool) {
        if self.mode != WaitMode::Blocking || self.idle_turns < SPINS_BEFORE_YIELD {
            self.snooze();
        } else if self.idle_turns < SPINS_BEFORE_YIELD + YIELDS_BEFORE_PARK {
            self.idle_turns += 1;
            std::thread::yield_now();
        } else {
            sleeper.sleep_unless(has_work);
        }
    }

    /// Progress was made: the next wait starts spinning again.
    #[inline]
    pub fn reset(&mut self) {
        self.idle_turns = 0;
    }
}

/// A stage thread that may park ([`WaitMode::Blocking`]), and how others wake it.
///
/// No wake is lost: the sleeper announces itself (`sleeping = true`), then checks for work;
/// the waker publishes work, then checks `sleeping`; a sequentially consistent fence on both
/// sides (Dekker) makes at least one of them see the other's write. `std::thread::park` keeps
/// an unpark that comes first, so a wake between the check and the park is not lost either.
#[derive(Debug, Default)]
pub(crate) struct Sleeper {
    thread: std::sync::OnceLock<std::thread::Thread>,
    sleeping: std::sync::atomic::AtomicBool,
    woken: std::sync::atomic::AtomicBool,
    /// Parks that ran out their timeout with work waiting: a wake came late or never
    /// (diagnostics: expected 0, or a handful from a waker caught between publish and wake).
    late_wakes: std::sync::atomic::AtomicU64,
}

impl Sleeper {
    /// Called by the stage thread before it first waits.
    pub(crate) fn register_current_thread(&self) {
        let _ = self.thread.set(std::thread::current());
    }

    /// Parks the calling (registered) thread unless `has_work`, for at most [`PARK_TIMEOUT`].
    pub(crate) fn sleep_unless(&self, has_work: impl Fn() -> bool) {
        use std::sync::atomic::{fence, Ordering};
        self.woken.store(false, Ordering::Relaxed);
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !has_work() {
            std::thread::park_timeout(PARK_TIMEOUT);
            if !self.woken.load(Ordering::Relaxed) && has_work() {
                self.late_wakes.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Wakes the thread if it is parked or about to park. Call it after publishing work.
    #[inline]
    pub(crate) fn wake(&self) {
        use std::sync::atomic::{fence, Ordering};
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            if let Some(thread) = self.thread.get() {
                self.woken.store(true, Ordering::Relaxed);
                thread.unpark();
            }
        }
    }

    /// See the `late_wakes` field.
    pub(crate) fn late_wakes(&self) -> u64 {
        self.late_wakes.load(std::sync::atomic::Ordering::Relaxed)
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
        for mode in [WaitMode::BusySpin, WaitMode::Yielding, WaitMode::Blocking] {
            assert_eq!(WaitMode::from_name(mode.as_str()), Some(mode));
        }
        assert_eq!(WaitMode::from_name("napping"), None);
    }

    #[test]
    fn beside_an_ingress_busy_spin_needs_a_core_for_each_worker_too() {
        assert_eq!(WaitMode::beside_ingress(2, 2), WaitMode::Blocking);
        assert_eq!(WaitMode::beside_ingress(8, 8), WaitMode::Blocking);
        assert_eq!(WaitMode::beside_ingress(SPINNING_STAGES + 4, 4), WaitMode::Blocking);
        assert_eq!(WaitMode::beside_ingress(SPINNING_STAGES + 5, 4), WaitMode::BusySpin);
    }

    #[test]
    fn a_sleeper_woken_before_it_parks_does_not_sleep() {
        let sleeper = std::sync::Arc::new(Sleeper::default());
        sleeper.register_current_thread();
        // An unpark that comes first is kept: the park returns at once.
        std::thread::current().unpark();
        sleeper.sleep_unless(|| false);
        // With work there is no park at all; a wake of a thread that is awake is free.
        sleeper.sleep_unless(|| true);
        sleeper.wake();
        let other = std::sync::Arc::clone(&sleeper);
        let waker = std::thread::spawn(move || {
            for _ in 0..100 {
                other.wake();
                std::thread::yield_now();
            }
        });
        for _ in 0..20 {
            let mut backoff = Backoff::new(WaitMode::Blocking);
            for _ in 0..SPINS_BEFORE_YIELD + YIELDS_BEFORE_PARK + 1 {
                backoff.idle(&sleeper, || false);
            }
        }
        waker.join().expect("waker");
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
