//! State the stages share: progress counters and the poison.
//!
//! Counters are single-writer atomics (each has exactly one stage that stores it); the poison
//! is set once, by the first stage that fails, and never cleared.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use crossbeam::utils::CachePadded;

use super::sink::SinkError;
use super::wait::{Sleeper, WaitMode};
use crate::EngineError;

/// Why the pipeline stopped accepting transactions. Set once, by the first failure.
#[derive(Debug, thiserror::Error)]
pub enum PoisonReason {
    /// The sink refused a record.
    #[error("journal append of seq {seq} failed: {error}")]
    Append {
        /// The record that was not stored.
        seq: u64,
        /// The sink's error.
        error: SinkError,
    },
    /// The sink could not make records durable.
    #[error("journal commit after seq {last_appended} failed (durable up to seq {durable_seq}): {error}")]
    Commit {
        /// The last record appended before the commit.
        last_appended: u64,
        /// The durable seq before the failed commit: no event after it is released.
        durable_seq: u64,
        /// The sink's error.
        error: SinkError,
    },
    /// The engine refused a record (a sequencing bug: the sequencer assigns gap-free seqs).
    #[error("engine refused seq {seq}: {error}")]
    Engine {
        /// The record.
        seq: u64,
        /// The engine's error.
        error: EngineError,
    },
    /// A tx produced more events than the engine's event buffer holds (a sizing bug).
    #[error("events of seq {seq} overflowed the event buffer")]
    EventOverflow {
        /// The tx.
        seq: u64,
    },
    /// A stage's code panicked (a bug in the engine, the sink or the subscriber).
    #[error("the {stage} stage panicked near seq {seq}")]
    Panicked {
        /// `journal`, `engine` or `output`.
        stage: &'static str,
        /// The last seq the stage was working on.
        seq: u64,
    },
}

/// Shared between the sequencer and the three stages.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Highest seq the sink reported durable. Written by the journal stage only.
    pub(crate) durable_seq: CachePadded<AtomicU64>,
    /// Highest seq applied by the engine. Written by the engine stage only.
    pub(crate) applied_seq: CachePadded<AtomicU64>,
    /// Highest seq whose events were all released. Written by the output stage only.
    pub(crate) released_seq: CachePadded<AtomicU64>,
    /// Events (and notes) that will never be released (past the durable seq of a poisoned
    /// pipeline). Written by the output stage only.
    pub(crate) withheld: AtomicU64,
    poisoned: AtomicBool,
    reason: OnceLock<PoisonReason>,
    /// The journal stage has finished (shut down or poisoned): `durable_seq` is final.
    journal_done: AtomicBool,
    /// Whether stages park when idle ([`WaitMode::Blocking`]): then work is handed over with
    /// a wake.
    blocking: bool,
    pub(crate) journal_sleeper: Sleeper,
    pub(crate) engine_sleeper: Sleeper,
    pub(crate) output_sleeper: Sleeper,
}

impl Shared {
    pub(crate) fn new(start_seq: u64, wait: WaitMode) -> Self {
        Self {
            durable_seq: CachePadded::new(AtomicU64::new(start_seq)),
            applied_seq: CachePadded::new(AtomicU64::new(start_seq)),
            released_seq: CachePadded::new(AtomicU64::new(start_seq)),
            withheld: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            reason: OnceLock::new(),
            journal_done: AtomicBool::new(false),
            blocking: wait == WaitMode::Blocking,
            journal_sleeper: Sleeper::default(),
            engine_sleeper: Sleeper::default(),
            output_sleeper: Sleeper::default(),
        }
    }

    /// New slots in the input ring (or its shutdown): wake its consumers if they sleep.
    #[inline]
    pub(crate) fn wake_input_consumers(&self) {
        if self.blocking {
            self.journal_sleeper.wake();
            self.engine_sleeper.wake();
        }
    }

    /// New output slots, a new durable seq, the journal's end or a poison: wake the output
    /// stage if it sleeps.
    #[inline]
    pub(crate) fn wake_output(&self) {
        if self.blocking {
            self.output_sleeper.wake();
        }
    }

    /// Records the first failure; later ones are dropped (the first is the cause).
    #[cold]
    pub(crate) fn poison(&self, reason: PoisonReason) {
        let _ = self.reason.set(reason);
        self.poisoned.store(true, Ordering::Release);
        self.wake_input_consumers();
        self.wake_output();
    }

    #[inline]
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn reason(&self) -> Option<&PoisonReason> {
        self.reason.get()
    }

    #[inline]
    pub(crate) fn durable(&self) -> u64 {
        self.durable_seq.load(Ordering::Acquire)
    }

    pub(crate) fn set_journal_done(&self) {
        self.journal_done.store(true, Ordering::Release);
        self.wake_output();
    }

    #[inline]
    pub(crate) fn journal_done(&self) -> bool {
        self.journal_done.load(Ordering::Acquire)
    }
}

impl Shared {
    /// The poison reason, once no stage holds the shared state any more.
    pub(crate) fn into_reason(self) -> Option<PoisonReason> {
        self.reason.into_inner()
    }
}
