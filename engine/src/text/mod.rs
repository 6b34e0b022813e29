//! Text forms (SPEC section 13): decimal strings, JSON-lines transactions, events and the
//! state dump. Off the hot path; the engine itself never formats or parses text.

pub mod decimal;
pub mod event_json;
pub mod report;
pub mod runner;
pub mod state_json;
pub mod tx_json;

/// Most bytes of input an error message quotes: a hostile line of 64 KB must not be echoed
/// back whole into logs and terminals.
pub const MAX_QUOTED_BYTES: usize = 80;

/// `text` if it is at most [`MAX_QUOTED_BYTES`] long, else its first bytes (cut at a
/// character boundary) and how long it was.
#[must_use]
pub fn excerpt(text: &str) -> String {
    if text.len() <= MAX_QUOTED_BYTES {
        return text.to_string();
    }
    let mut end = MAX_QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_and_cut_at_characters() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(1000);
        let cut = excerpt(&long);
        assert!(cut.len() < MAX_QUOTED_BYTES + 20, "{cut}");
        assert!(cut.ends_with("(2000 bytes)"));
    }
}
