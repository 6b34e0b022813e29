//! Text forms (SPEC section 13): decimal strings, JSON-lines transactions, events and the
//! state dump. Off the hot path.

pub mod decimal;
