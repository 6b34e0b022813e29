//! Text forms (SPEC section 13): decimal strings, JSON-lines transactions, events and the
//! state dump. Off the hot path; the engine itself never formats or parses text.

pub mod decimal;
pub mod event_json;
pub mod runner;
pub mod state_json;
pub mod tx_json;
