//! Helpers shared by the CLI test files.
// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use verex_engine::signing::{dev_role_key, hex, Role};

/// The `verex` binary under test.
pub const VEREX: &str = env!("CARGO_BIN_EXE_verex");

/// Writes a genesis file naming the development operator keys into `dir`: what a run without
/// --dev needs to act on lines signed with `verex sign --dev-role` (the development keys are
/// never used without asking).
pub fn dev_genesis_file(dir: &Path) -> PathBuf {
    let roles: Vec<String> = Role::ALL
        .iter()
        .map(|r| format!("\"{}\":\"{}\"", r.name(), hex(&dev_role_key(*r).verifying_key().to_bytes())))
        .collect();
    let path = dir.join("dev-genesis.json");
    std::fs::write(&path, format!("{{{}}}", roles.join(","))).expect("genesis file");
    path
}

/// Starts `verex args` with its standard input, output and error piped.
pub fn spawn_piped(args: &[&str]) -> std::process::Child {
    Command::new(VEREX)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn verex")
}

/// Runs `verex args` with `stdin` (fed from a thread, so that a large output cannot deadlock
/// against it; verex may exit before reading everything, and a closed pipe is fine then);
/// asserts it did not panic.
pub fn verex_in(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = spawn_piped(args);
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || match pipe.write_all(&input) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
        _ => {}
    });
    let out = child.wait_with_output().expect("wait for verex");
    feeder.join().expect("stdin feeder");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "verex {args:?} panicked: {stderr}");
    out
}

/// Standard output as text.
pub fn out_text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// Standard error as text.
pub fn err_text(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts success, showing stderr otherwise.
pub fn expect_success(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: exit {:?}, stderr: {}", out.status.code(), err_text(out));
}

/// Asserts the exit status and that stderr names every needle.
pub fn expect_failure(out: &Output, code: i32, needles: &[&str], what: &str) {
    let stderr = err_text(out);
    assert_eq!(out.status.code(), Some(code), "{what}: stderr: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{what}: stderr lacks {needle:?}: {stderr}");
    }
}

/// A path as `&str`.
pub fn path_text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// JSON lines of a text.
pub fn json_lines_of(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
}
