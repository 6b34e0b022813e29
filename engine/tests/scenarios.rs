//! Scenario tests: readable JSON-lines files under `tests/scenarios/`.
//!
//! File format, one item per line:
//! - `# ...` or a blank line: a comment.
//! - `{"op": ...}`: a transaction, run with `--dev` signing and the deterministic clock.
//! - `{"event": ...}` lines right after a transaction: its exact events, in order (`seq` may
//!   be left out; it is then the tx's seq). A transaction with no event lines after it must
//!   not be rejected (an unexpected rejection fails the test).
//! - `{"error": "text"}` right after a transaction line: the line must fail to parse with an
//!   error containing `text` (nothing is sequenced).
//! - `{"state": {...}}` (may span several lines): the state dump must contain these keys with these values (objects
//!   are matched key by key, arrays element by element and must have the same length).
//!   Every file ends with one.
//!
//! After every transaction the invariants of SPEC section 7 are checked.

use std::path::Path;

use serde_json::Value;
use verex_engine::text::runner::{LineOutcome, TextRunner};
use verex_engine::text::state_json::state_value;
use verex_engine::Limits;

enum Item {
    Tx { line_no: usize, text: String },
    Event(Value),
    Error(String),
    State(Value),
}

fn parse_items(text: &str, file: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let mut joined = line.trim().to_string();
        if joined.is_empty() || joined.starts_with('#') {
            continue;
        }
        // A state line may span several lines: read on until it is complete JSON.
        while joined.starts_with("{\"state\"") && serde_json::from_str::<Value>(&joined).is_err() {
            let Some((_, more)) = lines.next() else { break };
            joined.push_str(more.trim());
        }
        let trimmed = joined.as_str();
        let value: Value = serde_json::from_str(trimmed).unwrap_or_else(|e| {
            // A tx line may be deliberately malformed; it must then be followed by an error line.
            if trimmed.contains("\"op\"") || !trimmed.starts_with('{') {
                return Value::Null;
            }
            panic!("{file}:{}: not JSON: {e}", i + 1)
        });
        let item = match &value {
            Value::Object(m) if m.contains_key("event") => Item::Event(value.clone()),
            Value::Object(m) if m.contains_key("error") && !m.contains_key("op") => {
                Item::Error(m["error"].as_str().unwrap_or_default().to_string())
            }
            Value::Object(m) if m.contains_key("state") => Item::State(m["state"].clone()),
            _ => Item::Tx { line_no: i + 1, text: trimmed.to_string() },
        };
        items.push(item);
    }
    items
}

/// `expected` is contained in `actual` (see the module docs).
fn contains(actual: &Value, expected: &Value, path: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (key, ev) in e {
                let av = a.get(key).ok_or_else(|| format!("{path}.{key}: missing in actual {actual}"))?;
                contains(av, ev, &format!("{path}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Err(format!("{path}: expected {} items, got {}: {actual}", e.len(), a.len()));
            }
            for (i, (av, ev)) in a.iter().zip(e).enumerate() {
                contains(av, ev, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ if actual == expected => Ok(()),
        _ => Err(format!("{path}: expected {expected}, got {actual}")),
    }
}

struct PendingTx {
    line_no: usize,
    seq: u64,
    events: Vec<Value>,
    expected: Vec<Value>,
    expect_error: Option<String>,
    parse_error: Option<String>,
}

fn check_pending(pending: Option<PendingTx>, file: &str) {
    let Some(p) = pending else { return };
    let at = format!("{file}:{}", p.line_no);
    if let Some(needle) = p.expect_error {
        let error = p
            .parse_error
            .unwrap_or_else(|| panic!("{at}: expected a parse error containing {needle:?}, but the line parsed"));
        assert!(error.contains(&needle), "{at}: error {error:?} does not contain {needle:?}");
        return;
    }
    if let Some(error) = p.parse_error {
        panic!("{at}: line did not parse: {error}");
    }
    if p.expected.is_empty() {
        let rejected = p.events.iter().find(|e| e["event"] == "rejected");
        assert!(
            rejected.is_none(),
            "{at}: unexpected rejection {}",
            rejected.map(Value::to_string).unwrap_or_default()
        );
        return;
    }
    let mut expected = p.expected;
    for e in &mut expected {
        if let Value::Object(m) = e {
            m.entry("seq").or_insert(Value::from(p.seq));
        }
    }
    assert!(
        p.events == expected,
        "{at}: events differ\n  expected:\n    {}\n  actual:\n    {}",
        expected.iter().map(Value::to_string).collect::<Vec<_>>().join("\n    "),
        p.events.iter().map(Value::to_string).collect::<Vec<_>>().join("\n    ")
    );
}

fn run_scenario(path: &Path) -> usize {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("?").to_string();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut runner = TextRunner::dev(Limits::small()).expect("limits");
    let mut pending: Option<PendingTx> = None;
    let mut states = 0;
    let mut checks = 0;
    for item in parse_items(&text, &file) {
        match item {
            Item::Tx { line_no, text } => {
                check_pending(pending.take(), &file);
                let mut p = PendingTx {
                    line_no,
                    seq: 0,
                    events: vec![],
                    expected: vec![],
                    expect_error: None,
                    parse_error: None,
                };
                match runner.run_line(&text) {
                    Ok(LineOutcome::Applied { record, events }) => {
                        p.seq = record.seq();
                        p.events = events.iter().map(|e| serde_json::from_str(e).expect("event JSON")).collect();
                    }
                    Ok(LineOutcome::Refused(event)) => {
                        p.events = vec![serde_json::from_str(&event).expect("event JSON")]
                    }
                    Err(e) => p.parse_error = Some(e.to_string()),
                }
                if let Err(broken) = runner.engine.check_invariants() {
                    panic!("{file}:{line_no}: invariant broken after this tx: {broken}");
                }
                pending = Some(p);
            }
            Item::Event(e) => {
                pending.as_mut().unwrap_or_else(|| panic!("{file}: event line before any tx")).expected.push(e);
                checks += 1;
            }
            Item::Error(needle) => {
                pending.as_mut().unwrap_or_else(|| panic!("{file}: error line before any tx")).expect_error =
                    Some(needle);
                checks += 1;
            }
            Item::State(expected) => {
                check_pending(pending.take(), &file);
                let actual = state_value(&runner.engine);
                if let Err(diff) = contains(&actual, &expected, "state") {
                    panic!("{file}: state differs: {diff}\n  full state: {actual}");
                }
                states += 1;
                checks += 1;
            }
        }
    }
    check_pending(pending.take(), &file);
    assert!(states > 0, "{file}: a scenario must end with a {{\"state\": ...}} line");
    checks
}

#[test]
fn all_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenario dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scenarios found in {}", dir.display());
    let only = std::env::var("SCENARIO").ok();
    let mut ran = 0;
    for path in &paths {
        if only.as_ref().is_some_and(|o| !path.to_string_lossy().contains(o.as_str())) {
            continue;
        }
        let checks = run_scenario(path);
        assert!(checks > 0, "{}: asserts nothing", path.display());
        ran += 1;
    }
    eprintln!("ran {ran} scenarios");
}
