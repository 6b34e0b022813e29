//! The two helpers an embedding needs first: a [`Client`] that signs with a key and keeps the
//! nonce, and an [`Exchange`] that stamps, applies (and journals) verified transactions in one
//! call, in process, without the pipeline's threads.
//!
//! From nothing to a signed order's fills:
//!
//! ```
//! use verex_engine::client::{Client, Exchange};
//! use verex_engine::signing::{dev_account_key, dev_role_key, Role};
//! use verex_engine::tx::{AddAsset, AddMarket, Deposit, Op, Place, Side};
//! use verex_engine::Event;
//!
//! let mut exchange = Exchange::dev()?;
//! let mut admin = Client::new(dev_role_key(Role::Admin));
//! let mut custody = Client::new(dev_role_key(Role::Custody));
//! exchange.submit(&admin.sign(AddAsset::named("USDC", 6)?))?;
//! exchange.submit(&admin.sign(AddAsset::named("BTC", 8)?))?;
//! exchange.submit(&admin.sign(AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001")?))?;
//! let (mut alice, mut bob) = (Client::new(dev_account_key(1)), Client::new(dev_account_key(2)));
//! for user in [&mut alice, &mut bob] {
//!     let created = exchange.submit(&user.sign(Op::CreateAccount))?;
//!     let Event::AccountCreated { account } = created.events()[0] else { panic!("rejected") };
//!     user.set_account(account);
//! }
//! exchange.submit(&custody.sign(Deposit::of(1, "USDC", "1000")?))?;
//! exchange.submit(&custody.sign(Deposit::of(2, "BTC", "1")?))?;
//! exchange.submit(&bob.sign(Place::limit("BTC-USDC", Side::Sell, "100", "0.5")?))?;
//! let taken = exchange.submit(&alice.sign(Place::limit("BTC-USDC", Side::Buy, "100", "0.2")?))?;
//! assert!(taken.events().iter().any(|e| matches!(e, Event::Fill { trade_id: 1, .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use verex_journal::{JournalError, JournalWriter};

use crate::events::EventBuf;
use crate::sequencer::{Clock, Sequencer, StampError};
use crate::tx::{Op, Tx};
use crate::verified::VerifiedTx;
use crate::{Engine, EngineError, Genesis, Limits};

pub use ed25519_dalek::SigningKey;

/// Signs transactions with one key and keeps its nonce (strictly increasing per signer).
#[derive(Debug, Clone)]
pub struct Client {
    key: SigningKey,
    account: u64,
    nonce: u64,
}

impl Client {
    /// A signer with no account yet (an operator key, or a user before `create_account`) and
    /// no transaction signed.
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        Self { key, account: 0, nonce: 0 }
    }

    /// A signer that resumes: `account` (0 for an operator) and the last nonce it used (after
    /// a restart, the engine's; a stale nonce is rejected, not an error).
    #[must_use]
    pub fn resume(key: SigningKey, account: u64, last_nonce: u64) -> Self {
        Self { key, account, nonce: last_nonce }
    }

    /// The account the next transactions act on (from the `account_created` event).
    pub fn set_account(&mut self, account: u64) {
        self.account = account;
    }

    /// The account it acts on (0: none).
    #[must_use]
    pub fn account(&self) -> u64 {
        self.account
    }

    /// The last nonce used.
    #[must_use]
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The public key (what `create_account` registers).
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `op` with the next nonce on this client's account. The result is the only kind
    /// of value the engine accepts (verified by construction: signed here, so valid).
    pub fn sign(&mut self, op: impl Into<Op>) -> VerifiedTx {
        self.nonce += 1;
        let op = op.into();
        let account = if matches!(op, Op::CreateAccount) { 0 } else { self.account };
        VerifiedTx::sign(Tx { signer: [0; 32], nonce: self.nonce, account, op }, &self.key)
    }
}

/// Why [`Exchange::submit`] failed (a rejection is not a failure: it is an event).
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The sequencer could not stamp it.
    #[error(transparent)]
    Stamp(#[from] StampError),
    /// The engine refused the record (a seq gap: the exchange was driven from two places).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The journal could not store or sync the record; the exchange refuses more (fail-stop).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// An earlier journal failure stopped the exchange: recover from the journal.
    #[error("stopped by an earlier journal failure: recover from the journal")]
    Stopped,
}

/// The outcome of one transaction: its seq, stamp and events.
#[derive(Debug)]
pub struct Submitted<'a> {
    /// The seq it got.
    pub seq: u64,
    /// The stamp it got (ns).
    pub ts: u64,
    events: &'a EventBuf,
}

impl Submitted<'_> {
    /// Its events, in order (a rejection is one `rejected` event).
    #[must_use]
    pub fn events(&self) -> &[crate::Event] {
        self.events.events()
    }

    /// Why it was rejected, if it was.
    #[must_use]
    pub fn rejection(&self) -> Option<crate::RejectReason> {
        self.events.rejection()
    }
}

/// An engine with its sequencer and event buffer, and optionally a journal: `submit` stamps a
/// verified transaction, journals it (committed before its events are returned), and applies
/// it. The single-threaded path; `runtime::Pipeline` is the pipelined one with the same
/// results.
pub struct Exchange {
    engine: Engine,
    sequencer: Sequencer,
    events: EventBuf,
    journal: Option<JournalWriter>,
    /// A journal failure stopped it (fail-stop: a failed sync is never retried).
    stopped: bool,
}

impl Exchange {
    /// A new exchange at seq 0.
    ///
    /// # Errors
    /// [`EngineError`] for a genesis or limits the engine refuses.
    pub fn new(genesis: Genesis, limits: Limits, clock: Clock) -> Result<Self, EngineError> {
        Ok(Self::resume(Engine::new(genesis, limits)?, clock))
    }

    /// A development exchange: the development operator keys, small limits, the deterministic
    /// clock (same inputs, same stamps).
    ///
    /// # Errors
    /// [`EngineError`] (not with these constants).
    pub fn dev() -> Result<Self, EngineError> {
        Self::new(Genesis::dev(), Limits::small(), Clock::Deterministic)
    }

    /// Continues from an engine (recovered, or from a snapshot) at its seq and stamp.
    #[must_use]
    pub fn resume(engine: Engine, clock: Clock) -> Self {
        let sequencer = Sequencer::resume(engine.seq(), engine.last_ts(), clock);
        let events = engine.event_buf();
        Self { engine, sequencer, events, journal: None, stopped: false }
    }

    /// Journals every submitted record to `writer` (positioned at the engine's seq, see
    /// `store::create_journal`).
    #[must_use]
    pub fn with_journal(self, writer: JournalWriter) -> Self {
        Self { journal: Some(writer), ..self }
    }

    /// Stamps, journals (and commits) and applies one verified transaction.
    ///
    /// # Errors
    /// [`SubmitError`]; the transaction was not applied then.
    pub fn submit(&mut self, tx: &VerifiedTx) -> Result<Submitted<'_>, SubmitError> {
        if self.stopped {
            return Err(SubmitError::Stopped);
        }
        let record = self.sequencer.stamp(tx, None)?;
        if let Some(journal) = self.journal.as_mut() {
            let journaled = journal.append(record.seq(), &record.bytes().0).and_then(|()| journal.commit().map(drop));
            if let Err(error) = journaled {
                self.stopped = true;
                return Err(error.into());
            }
        }
        self.engine.apply(record.verified(), &mut self.events)?;
        Ok(Submitted { seq: record.seq(), ts: record.ts(), events: &self.events })
    }

    /// The engine, for queries (`depth`, `balance`, `orders_of`, `state_hash`, ...).
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine and the journal writer back.
    #[must_use]
    pub fn into_parts(self) -> (Engine, Option<JournalWriter>) {
        (self.engine, self.journal)
    }
}
