//! Runs JSON-lines transactions straight through `apply`: parse, sign (dev) or check the
//! signature, stamp, apply, render. The reference path the pipeline is compared to,
//! and what scenario tests drive.

use super::event_json::render_event;
use super::tx_json::{parse_tx_line, signed_from_line, DevSigner, TxTextError};
use crate::sequencer::{Clock, Sequencer, StampError};
use crate::verified::{VerifiedRecordBytes, VerifiedTx};
use crate::{Engine, EngineError, EventBuf, Genesis, Limits};

/// Why a line could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The line is not a transaction.
    #[error(transparent)]
    Text(#[from] TxTextError),
    /// The engine refused the sequence.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The line carries its own `ts` under the wall clock.
    #[error(transparent)]
    Stamp(#[from] StampError),
}

/// How a line's signature is obtained.
#[derive(Debug, Clone)]
pub enum Signing {
    /// `--dev`: sign with the deterministic development keys.
    Dev(DevSigner),
    /// Lines carry `signer`, `nonce` and `signature`; a bad signature is rejected
    /// (`bad_signature`) before sequencing, as the ingress would.
    Signed,
}

/// The outcome of one line.
#[derive(Debug, Clone)]
pub enum LineOutcome {
    /// Sequenced and applied: the record and the rendered events.
    Applied {
        /// What was applied (as a journal would store it).
        record: Box<VerifiedRecordBytes>,
        /// Rendered events, one JSON object each.
        events: Vec<String>,
    },
    /// Refused by the ingress before sequencing (bad signature): a rendered rejection
    /// without a seq.
    Refused(String),
}

/// An engine driven by text lines.
pub struct TextRunner {
    /// The engine.
    pub engine: Engine,
    sequencer: Sequencer,
    signing: Signing,
    buf: EventBuf,
}

impl TextRunner {
    /// A fresh engine with the development genesis and the deterministic clock.
    ///
    /// # Errors
    /// [`EngineError::InvalidLimits`].
    pub fn dev(limits: Limits) -> Result<Self, EngineError> {
        Self::new(Engine::new(Genesis::dev(), limits)?, Signing::Dev(DevSigner::new(0)), Clock::Deterministic)
    }

    /// Wraps an engine (possibly recovered) with a signing mode and clock.
    ///
    /// # Errors
    /// None today; kept fallible for symmetry with [`TextRunner::dev`].
    pub fn new(engine: Engine, signing: Signing, clock: Clock) -> Result<Self, EngineError> {
        let buf = engine.event_buf();
        let sequencer = Sequencer::resume(engine.seq(), engine.last_ts(), clock);
        Ok(Self { engine, sequencer, signing, buf })
    }

    /// Runs one line.
    ///
    /// # Errors
    /// [`RunError`] when the line does not parse (nothing is sequenced then).
    pub fn run_line(&mut self, line: &str) -> Result<LineOutcome, RunError> {
        let parsed = parse_tx_line(line)?;
        let verified = match &mut self.signing {
            Signing::Dev(signer) => signer.sign_verified(&parsed),
            Signing::Signed => match VerifiedTx::verify_signed(&signed_from_line(&parsed)?) {
                Ok(verified) => verified,
                Err(_) => {
                    return Ok(LineOutcome::Refused(r#"{"event":"rejected","reason":"bad_signature"}"#.to_string()))
                }
            },
        };
        let record = self.sequencer.stamp(&verified, parsed.ts)?;
        self.engine.apply(record.verified(), &mut self.buf)?;
        let catalog = self.engine.catalog();
        let events = self.buf.events().iter().map(|e| render_event(record.seq(), e, catalog)).collect();
        Ok(LineOutcome::Applied { record: Box::new(record), events })
    }
}
