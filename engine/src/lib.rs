//! verex-engine: the deterministic exchange state machine.
//!
//! [`Engine::apply`] takes one archived [`tx::SequencedTx`] and appends its events to an
//! [`EventBuf`]. Same transactions in ⇒ same events and [`Engine::state_hash`] out, on any
//! machine: no floats, no hash-map iteration order, no clock, no randomness, no I/O.
//!
//! Modules, one concept each:
//! - [`tx`]: the wire transaction types (fixed size, `rkyv`-archived, signed); [`builders`]:
//!   building them from symbols and decimal strings (`Place::limit`, `AddMarket::spot`, ...);
//! - [`client`]: [`Client`] signs and keeps the nonce, [`Exchange`] stamps, journals and
//!   applies in one call;
//! - [`signing`]: canonical bytes, ed25519, development keys; [`signature_rule`]: the one
//!   verification rule; [`verified`]: the verified-by-construction types `apply` takes;
//! - [`fixed`]: integer fixed-point arithmetic with explicit rounding;
//! - [`catalog`]: assets, markets and the symbol table;
//! - `accounts`, `orders`, `book`: accounts and balances, the order pool, price levels;
//! - `matching`: place, cancel, amend; `engine`: `apply` and the non-order ops;
//! - [`matcher`]: the same order books and price-time rules on their own, without money;
//! - `perp`: positions, settlement to the mark, funding; [`risk`]: margin, risk bands, liquidation;
//! - [`insurance`]: the insurance fund, margined like an account and never negative;
//! - [`lending`]: lending pools, interest indices, automatic borrows, write-offs;
//!   [`collateral`]: liquidating a debtor's collateral;
//! - `state_hash`, `invariants`: the canonical digest and the SPEC section 7 checks;
//! - [`text`]: the JSON-lines text forms of SPEC section 13 (off the hot path);
//! - [`market_data`]: L2 books and the trade tape rebuilt from events alone (SPEC 14);
//! - [`store`]: the journal directory of an embedding: manifest, journal sink, snapshot files,
//!   [`store::recover`] (the only module that touches files).
#![deny(missing_docs, clippy::unwrap_used)]

mod accounts;
pub mod attest;
mod book;
pub mod builders;
pub mod catalog;
pub mod client;
pub mod collateral;
mod engine;
pub mod events;
pub mod fixed;
pub mod genesis;
mod id_table;
pub mod insurance;
mod invariants;
pub mod lending;
pub mod limits;
pub mod market_data;
pub mod matcher;
mod matching;
mod orders;
mod perp;
pub mod por;
pub mod record;
pub mod risk;
pub mod runtime;
pub mod sequencer;
pub mod signature_rule;
pub mod signing;
pub mod snapshot;
mod state_hash;
pub mod store;
pub mod text;
pub mod tx;
pub mod verified;

pub use accounts::Balance;
pub use client::{Client, Exchange, SigningKey};
pub use engine::{Engine, EngineError};
pub use events::{CancelReason, DebtPayer, Event, EventBuf, LevelTotal, LiquidationVia, OrderStatus, RejectReason};
pub use genesis::Genesis;
pub use limits::Limits;
pub use matching::OrderView;
pub use verified::VerifiedTx;
