//! Replication through NATS JetStream, end to end, against real `nats-server` processes on
//! 127.0.0.1 (SPEC section 15, docs/replication.md):
//!
//! * a follower mirrors the primary (state hash, attestations, records) and its directory
//!   answers every read command a primary's does;
//! * `--replicated` releases events only once JetStream holds their records;
//! * a promoted follower continues the same chain; a stale primary that comes back is
//!   refused before it sequences anything; two live writers: the stream refuses the second;
//! * the follower detects duplicates (skipped after comparing), gaps, forks and tampering;
//! * server, follower and primary killed and restarted at random points (fixed seed, bounded
//!   rounds): everything acknowledged survives, and all converge to the same state hash;
//! * a three-node JetStream cluster (replicas = 3) loses a node mid-stream.

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use common::{expect_failure, expect_success, out_text, path_text, verex_in, VEREX};
use nats::NatsServer;
use verex_engine::attest::JournalDigest;
use verex_engine::record::{access_record, RecordBytes};
use verex_engine::tx::RECORD_BYTES;
use verex_journal::{JournalReader, MIN_SEGMENT_BYTES};
use verex_tools::replicate::message::{LogHeader, MSG_ID};
use verex_tools::replicate::publish::{PublishConfig, Publisher};
use verex_tools::replicate::{connect, ensure_stream, runtime, Target};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A xorshift64 generator: deterministic, seedable.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// Setup lines: two assets, a spot market, twenty funded accounts (63 lines).
fn setup_lines() -> Vec<String> {
    let mut out = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-USDC","kind":"spot","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"0.0002","taker_fee":"0.0005"}"#.to_string(),
    ];
    for account in 1..=20 {
        out.push(r#"{"op":"create_account"}"#.to_string());
        out.push(format!(r#"{{"op":"deposit","account":{account},"asset":"USDC","amount":"1000000"}}"#));
        out.push(format!(r#"{{"op":"deposit","account":{account},"asset":"BTC","amount":"100"}}"#));
    }
    out
}

/// `lines` lines of order flow among the twenty accounts (limit and market orders, cancels).
fn order_flow(lines: usize, seed: u64) -> Vec<String> {
    let mut rng = XorShift(seed | 1);
    (0..lines)
        .map(|_| {
            let account = 1 + rng.below(20);
            let side = if rng.below(2) == 0 { "buy" } else { "sell" };
            match rng.below(10) {
                0..=6 => {
                    let price = 9_500 + 5 * rng.below(200);
                    format!(
                        r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"limit","price":"{}.{:02}","qty":"0.{:04}","tif":"gtc"}}"#,
                        price / 100,
                        price % 100,
                        10 * (1 + rng.below(100))
                    )
                }
                7 | 8 => format!(
                    r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"market","qty":"0.{:04}"}}"#,
                    10 * (1 + rng.below(50))
                ),
                _ => format!(r#"{{"op":"cancel_all","account":{account},"market":"BTC-USDC"}}"#),
            }
        })
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) -> PathBuf {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write input");
    path.to_path_buf()
}

fn verex_ok(args: &[&str], what: &str) -> String {
    let out = verex_in(args, b"");
    expect_success(&out, what);
    out_text(&out)
}

/// `verex replay`: (seq, state hash).
fn replay(journal: &Path) -> (u64, String) {
    parse_seq_hash(&verex_ok(&["replay", "--journal", path_text(journal)], "replay"))
}

fn parse_seq_hash(text: &str) -> (u64, String) {
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(words.len() == 4 && words[0] == "seq" && words[2] == "state_hash", "seq and hash: {text}");
    (words[1].parse().expect("seq"), words[3].to_string())
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A `verex` process in the background, its output in files.
struct Bg {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Bg {
    fn spawn(dir: &Path, name: &str, args: &[String]) -> Self {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let child = Command::new(VEREX)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out"))
            .stderr(std::fs::File::create(&err).expect("err"))
            .spawn()
            .expect("spawn verex");
        Self { child: Some(child), out, err }
    }

    /// Waits at most `timeout`; panics (after killing it) if it does not end.
    fn wait(&mut self, timeout: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let err = read_text(&self.err);
                assert!(!err.contains("panicked"), "verex panicked: {err}");
                return (status, read_text(&self.out), err);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("verex did not end within {timeout:?}; stderr: {}", read_text(&self.err));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGKILL.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        self.kill();
    }
}

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(ToString::to_string).collect()
}

/// `verex follow ... --until SEQ` in the foreground: (seq, state hash).
fn follow_until(url: &str, stream: &str, journal: &Path, until: u64, extra: &[&str]) -> (u64, String) {
    let until = until.to_string();
    let mut args =
        vec!["follow", "--from", url, "--stream", stream, "--journal", path_text(journal), "--until", &until];
    args.extend_from_slice(&["--idle-exit", "20"]);
    args.extend_from_slice(extra);
    parse_seq_hash(&verex_ok(&args, "follow"))
}

/// Max seq of the events in an events file (released events only).
fn max_event_seq(path: &Path) -> u64 {
    read_text(path)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// A follower mirrors the primary and serves reads
// ---------------------------------------------------------------------------------------

#[test]
fn a_follower_mirrors_the_primary_and_its_journal_serves_every_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = NatsServer::start(tmp.path(), "single");
    let (primary, follower) = (tmp.path().join("primary"), tmp.path().join("follower"));
    let mut lines = setup_lines();
    lines.extend(order_flow(537, 7));
    let input = write_lines(&tmp.path().join("in.jsonl"), &lines);
    // The follower starts first and waits for the stream.
    let mut follow = Bg::spawn(
        tmp.path(),
        "follow",
        &s(&[
            "follow",
            "--from",
            &server.url(),
            "--stream",
            "mirror",
            "--journal",
            path_text(&follower),
            "--until",
            "600",
            "--snapshot-every",
            "250",
            "--idle-exit",
            "30",
        ]),
    );
    // The primary's segments are small (several files); the follower's are the default size,
    // so their xxh3 chains differ while the BLAKE3 chain and the attestations agree.
    let segment = MIN_SEGMENT_BYTES.to_string();
    verex_ok(
        &[
            "run",
            "--dev",
            "--input",
            path_text(&input),
            "--journal",
            path_text(&primary),
            "--segment-bytes",
            &segment,
            "--attest-every",
            "100",
            "--snapshot-every",
            "250",
            "--publish",
            &server.url(),
            "--stream",
            "mirror",
        ],
        "primary",
    );
    let (status, out, err) = follow.wait(Duration::from_secs(60));
    assert!(status.success(), "follower: {err}");
    let expected = replay(&primary);
    assert_eq!(expected.0, 600);
    assert_eq!(parse_seq_hash(&out), expected, "the follower's state is the primary's");
    assert_eq!(replay(&follower), expected, "replay of the follower's journal");
    assert!(err.contains("6 attestations checked"), "every attestation checked live: {err}");
    // Every read command works on the follower's journal, with the primary's answers.
    let verify = verex_in(&["verify", "--journal", path_text(&follower)], b"");
    expect_success(&verify, "verify the follower");
    let attestations = |dir: &Path| verex_ok(&["attestations", "--journal", path_text(dir)], "attestations");
    assert_eq!(attestations(&follower), attestations(&primary));
    assert_eq!(attestations(&follower).lines().count(), 6);
    let inspect = |dir: &Path| verex_ok(&["inspect", "--journal", path_text(dir), "--from", "590"], "inspect");
    assert_eq!(inspect(&follower), inspect(&primary));
    let snap = tmp.path().join("f.snap");
    verex_ok(&["snapshot", "--journal", path_text(&follower), "--out", path_text(&snap)], "snapshot");
    let from_snapshot =
        verex_ok(&["replay", "--journal", path_text(&follower), "--snapshot", path_text(&snap)], "replay --snapshot");
    assert_eq!(parse_seq_hash(&from_snapshot), expected);
    let snapshots = std::fs::read_dir(follower.join("snapshots")).expect("the follower's snapshots").count();
    assert!(snapshots >= 1, "the follower wrote its own snapshots: {snapshots}");
    let segments = |dir: &Path| {
        std::fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
            .count()
    };
    assert!(segments(&primary) > 1 && segments(&follower) == 1, "different framing, same chain");
}

// ---------------------------------------------------------------------------------------
// --replicated: events wait for JetStream
// ---------------------------------------------------------------------------------------

#[test]
fn replicated_mode_releases_events_only_once_jetstream_holds_the_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = nats::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let primary = tmp.path().join("primary");
    let mut lines = setup_lines();
    lines.extend(order_flow(37, 11));
    let input = write_lines(&tmp.path().join("in.jsonl"), &lines);
    let events = tmp.path().join("events.jsonl");
    let run = |input: &Path, events: &Path| {
        verex_in(
            &[
                "run",
                "--dev",
                "--input",
                path_text(input),
                "--journal",
                path_text(&primary),
                "--events",
                path_text(events),
                "--publish",
                &url,
                "--stream",
                "repl",
                "--replicated",
                "--publish-timeout",
                "1",
            ],
            b"",
        )
    };
    // No server: the local journal commits everything, no event is released, the run fails.
    let out = run(&input, &events);
    expect_failure(&out, 1, &["--replicated", "withheld"], "no server");
    assert_eq!(read_text(&events), "", "no event without an acknowledgement");
    assert_eq!(replay(&primary).0, 100, "the local journal holds every record");
    // The server comes up: a run with no input publishes the backlog.
    let server = NatsServer::start_on(tmp.path(), "late", port, &[]);
    let empty = write_lines(&tmp.path().join("empty.jsonl"), &[]);
    let out = run(&empty, &tmp.path().join("none.jsonl"));
    expect_success(&out, "publish the backlog");
    // With the server up, every event is released, each after its acknowledgement.
    let more = write_lines(&tmp.path().join("more.jsonl"), &order_flow(50, 12));
    let out = run(&more, &events);
    expect_success(&out, "replicated run");
    assert_eq!(max_event_seq(&events), 150);
    let follower = tmp.path().join("follower");
    assert_eq!(follow_until(&server.url(), "repl", &follower, 150, &[]), replay(&primary));
}

// ---------------------------------------------------------------------------------------
// Promotion and fencing
// ---------------------------------------------------------------------------------------

#[test]
fn a_promoted_follower_continues_the_chain_and_a_stale_primary_cannot_fork_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = NatsServer::start(tmp.path(), "single");
    let url = server.url();
    let (primary, follower) = (tmp.path().join("primary"), tmp.path().join("follower"));
    let mut lines = setup_lines();
    lines.extend(order_flow(237, 21));
    let input = write_lines(&tmp.path().join("a.jsonl"), &lines);
    let publish = ["--publish", url.as_str(), "--stream", "promo", "--attest-every", "50"];
    let run = |journal: &Path, input: &Path, events: &str| {
        let mut args = vec!["run", "--dev", "--input", path_text(input), "--journal", path_text(journal)];
        args.extend_from_slice(&publish);
        let events = tmp.path().join(events);
        args.extend_from_slice(&["--events", path_text(&events)]);
        verex_in(&args, b"")
    };
    expect_success(&run(&primary, &input, "p1.jsonl"), "primary");
    assert_eq!(follow_until(&url, "promo", &follower, 300, &[]), replay(&primary));
    // The primary dies; the follower, caught up, becomes the primary.
    let b = write_lines(&tmp.path().join("b.jsonl"), &order_flow(200, 22));
    expect_success(&run(&follower, &b, "f1.jsonl"), "the promoted follower");
    let promoted = replay(&follower);
    assert_eq!(promoted.0, 500);
    // A new follower from scratch: the stream is one chain, primary then promoted follower.
    let second = tmp.path().join("second");
    assert_eq!(follow_until(&url, "promo", &second, 500, &[]), promoted);
    expect_success(&verex_in(&["verify", "--journal", path_text(&second)], b""), "verify the new follower");
    let attested = verex_ok(&["attestations", "--journal", path_text(&second)], "attestations");
    assert_eq!(attested.lines().count(), 10, "attestations by both writers, one linked chain: {attested}");
    // The stale primary comes back with other transactions: refused before it sequences any.
    let c = write_lines(&tmp.path().join("c.jsonl"), &order_flow(30, 23));
    let out = run(&primary, &c, "p2.jsonl");
    expect_failure(&out, 1, &["stale", "another writer"], "the stale primary");
    assert_eq!(replay(&primary).0, 300, "the stale primary journaled nothing");
    let third = tmp.path().join("third");
    assert_eq!(follow_until(&url, "promo", &third, 500, &[]), promoted, "the stream is unchanged");
}

/// Two live writers that both hold the stream's head: JetStream refuses the second one's
/// message (Nats-Expected-Last-Subject-Sequence), and its publisher stops for good.
#[test]
fn two_live_writers_the_stream_refuses_the_second() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = NatsServer::start(tmp.path(), "single");
    let url = server.url();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let base = write_lines(&tmp.path().join("base.jsonl"), &setup_lines());
    verex_ok(
        &[
            "run",
            "--dev",
            "--input",
            path_text(&base),
            "--journal",
            path_text(&a),
            "--publish",
            &url,
            "--stream",
            "two",
        ],
        "base",
    );
    copy_dir(&a, &b);
    // Each writer appends its own transactions locally (no publishing yet).
    let more_a = write_lines(&tmp.path().join("ma.jsonl"), &order_flow(40, 31));
    let more_b = write_lines(&tmp.path().join("mb.jsonl"), &order_flow(40, 32));
    verex_ok(&["run", "--dev", "--input", path_text(&more_a), "--journal", path_text(&a)], "a");
    verex_ok(&["run", "--dev", "--input", path_text(&more_b), "--journal", path_text(&b)], "b");
    let manifest = verex_tools::manifest::require_manifest(&a).expect("manifest");
    let target = Target::parse(&url, "two", 1).expect("target");
    let start = |dir: &Path| {
        let config = PublishConfig { target: target.clone(), dir: dir.to_path_buf(), attest_every: 0, manifest };
        let publisher = Publisher::spawn(config, JournalDigest::default()).expect("spawn");
        assert_eq!(publisher.wait_checked(Duration::from_secs(10)), Ok(true), "both see the head they hold");
        publisher
    };
    // Both check the head (seq 63, which both hold) before either publishes.
    let (pa, pb) = (start(&a), start(&b));
    pa.feed().durable(103);
    let report_a = pa.finish(103, Duration::from_secs(10));
    assert_eq!((report_a.acked_seq, report_a.fenced.clone()), (103, None));
    pb.feed().durable(103);
    let report_b = pb.finish(103, Duration::from_secs(10));
    let fenced = report_b.fenced.expect("the second writer is fenced");
    assert!(fenced.contains("another"), "{fenced}");
    assert_eq!(report_b.acked_seq, 63, "nothing of the second writer's in the stream");
    let follower = tmp.path().join("follower");
    assert_eq!(follow_until(&url, "two", &follower, 103, &[]), replay(&a));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else if entry.file_name() != "journal.lock" {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Duplicates, gaps, forks, tampering
// ---------------------------------------------------------------------------------------

/// The records of a journal as log messages of `per` records: (header, payload).
fn messages_of(journal: &Path, per: u64) -> Vec<(LogHeader, Vec<u8>)> {
    let reader = JournalReader::open(journal).expect("reader");
    let mut digest = JournalDigest::default();
    let mut out: Vec<(LogHeader, Vec<u8>)> = Vec::new();
    for item in reader.iter() {
        let record = item.expect("record");
        let prev = digest.digest;
        digest.push(record.seq, record.payload).expect("next");
        match out.last_mut() {
            Some((header, payload)) if header.records() < per => {
                header.last_seq = record.seq;
                header.digest = digest.digest;
                payload.extend_from_slice(record.payload);
            }
            _ => out.push((
                LogHeader {
                    first_seq: record.seq,
                    last_seq: record.seq,
                    prev_digest: prev,
                    digest: digest.digest,
                    attest_every: 0,
                    published_ns: 0,
                },
                record.payload.to_vec(),
            )),
        }
    }
    out
}

/// Publishes hand-made log messages (and the manifest) to a stream, without fencing.
fn publish_raw(url: &str, stream: &str, manifest: &str, messages: &[(LogHeader, Vec<u8>)]) {
    let target = Target::parse(url, stream, 1).expect("target");
    let subjects = target.subjects();
    runtime().expect("runtime").block_on(async {
        let (_client, context) = connect(&target).await.expect("connect");
        ensure_stream(&context, &target).await.expect("stream");
        context
            .publish(subjects.manifest.clone(), manifest.to_string().into())
            .await
            .expect("send")
            .await
            .expect("ack");
        let mut previous = 0;
        for (n, (header, payload)) in messages.iter().enumerate() {
            // Each under its own id (no de-duplication), each after the one before.
            let mut headers: HeaderMap = header.to_headers(previous);
            headers.insert(MSG_ID, format!("raw-{n}").as_str());
            let ack = context
                .publish_with_headers(subjects.log.clone(), headers, payload.clone().into())
                .await
                .expect("send");
            previous = ack.await.expect("ack").sequence;
        }
    });
}

#[test]
fn a_follower_skips_duplicates_and_stops_at_gaps_forks_and_tampering() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = NatsServer::start(tmp.path(), "single");
    let url = server.url();
    let primary = tmp.path().join("primary");
    let mut lines = setup_lines();
    lines.extend(order_flow(57, 41));
    let input = write_lines(&tmp.path().join("in.jsonl"), &lines);
    verex_ok(&["run", "--dev", "--input", path_text(&input), "--journal", path_text(&primary)], "primary");
    let manifest = std::fs::read_to_string(primary.join("verex.json")).expect("manifest");
    let messages = messages_of(&primary, 30);
    assert_eq!(messages.len(), 4);
    let expected = replay(&primary);
    let follow_fails = |stream: &str, needles: &[&str]| {
        let dir = tmp.path().join(format!("f-{stream}"));
        let out = verex_in(
            &[
                "follow",
                "--from",
                &url,
                "--stream",
                stream,
                "--journal",
                path_text(&dir),
                "--until",
                "120",
                "--idle-exit",
                "3",
            ],
            b"",
        );
        expect_failure(&out, 1, needles, stream);
        dir
    };
    // Duplicates (a re-sent message under another id, after the de-duplication window):
    // compared with the follower's own records and skipped.
    let dup = vec![
        messages[0].clone(),
        messages[1].clone(),
        messages[1].clone(),
        messages[0].clone(),
        messages[2].clone(),
        messages[3].clone(),
    ];
    publish_raw(&url, "dup", &manifest, &dup);
    let out = verex_in(
        &[
            "follow",
            "--from",
            &url,
            "--stream",
            "dup",
            "--journal",
            path_text(&tmp.path().join("f-dup")),
            "--until",
            "120",
            "--idle-exit",
            "5",
        ],
        b"",
    );
    expect_success(&out, "duplicates");
    assert_eq!(parse_seq_hash(&out_text(&out)), expected);
    assert!(common::err_text(&out).contains("60 compared"), "{}", common::err_text(&out));
    // A gap: the second message is missing.
    publish_raw(&url, "gap", &manifest, &[messages[0].clone(), messages[2].clone()]);
    let dir = follow_fails("gap", &["gap: expected seq 31"]);
    assert_eq!(replay(&dir).0, 30, "nothing applied past the gap");
    // A fork: a second writer's message at seqs the follower holds, with other records.
    let other = tmp.path().join("other");
    let mut other_lines = setup_lines();
    other_lines.extend(order_flow(57, 42));
    verex_ok(
        &[
            "run",
            "--dev",
            "--input",
            path_text(&write_lines(&tmp.path().join("o.jsonl"), &other_lines)),
            "--journal",
            path_text(&other),
        ],
        "other",
    );
    let theirs = messages_of(&other, 30);
    publish_raw(
        &url,
        "fork",
        &manifest,
        &[messages[0].clone(), messages[1].clone(), messages[2].clone(), theirs[2].clone()],
    );
    follow_fails("fork", &["differs", "second writer"]);
    // A message that does not continue the chain (the other history's next message).
    publish_raw(
        &url,
        "chain",
        &manifest,
        &[messages[0].clone(), messages[1].clone(), messages[2].clone(), theirs[3].clone()],
    );
    follow_fails("chain", &["does not continue the chain"]);
    // Tampering: one byte of seq 31's signature changed. With the message's digest as it
    // was, the chain check fails; with the digest recomputed, the signature check does.
    let mut bad = messages[1].clone();
    let offset = signature_offset(&bad.1[..RECORD_BYTES]);
    bad.1[offset] ^= 1;
    publish_raw(&url, "tamper", &manifest, &[messages[0].clone(), bad.clone()]);
    let dir = follow_fails("tamper", &["BLAKE3 chain over seqs 31..=60"]);
    assert_eq!(replay(&dir).0, 30, "nothing applied past the tampered message");
    let mut digest = JournalDigest { seq: 30, digest: bad.0.prev_digest };
    for (n, record) in bad.1.chunks_exact(RECORD_BYTES).enumerate() {
        digest.push(31 + n as u64, record).expect("next");
    }
    bad.0.digest = digest.digest;
    publish_raw(&url, "resigned", &manifest, &[messages[0].clone(), bad]);
    follow_fails("resigned", &["seq 31: bad signature"]);
}

/// Re-folds the BLAKE3 chain of `messages` from the first one on (their prev and last
/// digests), as a writer of these records would have published them.
fn rechain(messages: &mut [(LogHeader, Vec<u8>)]) {
    let mut digest = JournalDigest { seq: messages[0].0.first_seq - 1, digest: messages[0].0.prev_digest };
    for (header, payload) in messages.iter_mut() {
        header.prev_digest = digest.digest;
        for record in payload.chunks_exact(RECORD_BYTES) {
            digest.push(digest.seq + 1, record).expect("next");
        }
        header.digest = digest.digest;
    }
}

#[test]
fn a_forged_signature_inside_a_batch_is_refused_at_its_seq_and_nothing_of_its_message_is_applied() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = NatsServer::start(tmp.path(), "forged");
    let url = server.url();
    let primary = tmp.path().join("primary");
    let mut lines = setup_lines();
    lines.extend(order_flow(1500, 43));
    let input = write_lines(&tmp.path().join("in.jsonl"), &lines);
    verex_ok(&["run", "--dev", "--input", path_text(&input), "--journal", path_text(&primary)], "primary");
    let manifest = std::fs::read_to_string(primary.join("verex.json")).expect("manifest");
    // Messages of 600 records: each verified in parts on several workers, and all of them
    // received at once by a follower that starts after they were published (one batch).
    let mut messages = messages_of(&primary, 600);
    assert!(messages.len() >= 3, "{} messages", messages.len());
    let (first, forged) = (messages[1].0.first_seq, messages[1].0.first_seq + 377);
    let later = messages[2].0.first_seq + 5;
    for seq in [forged, later] {
        let (header, payload) =
            messages.iter_mut().find(|(h, _)| (h.first_seq..=h.last_seq).contains(&seq)).expect("m");
        let at = usize::try_from(seq - header.first_seq).expect("offset") * RECORD_BYTES;
        let offset = at + signature_offset(&payload[at..at + RECORD_BYTES]);
        payload[offset] ^= 1;
    }
    rechain(&mut messages);
    publish_raw(&url, "forged", &manifest, &messages);
    let dir = tmp.path().join("follower");
    let until = messages.last().expect("last").0.last_seq.to_string();
    let out = verex_in(
        &[
            "follow",
            "--from",
            &url,
            "--stream",
            "forged",
            "--journal",
            path_text(&dir),
            "--until",
            &until,
            "--idle-exit",
            "3",
        ],
        b"",
    );
    expect_failure(&out, 1, &[&format!("seq {forged}: bad signature")], "forged");
    assert!(!common::err_text(&out).contains(&format!("seq {later}")), "{}", common::err_text(&out));
    assert_eq!(replay(&dir).0, first - 1, "the messages before it applied, nothing of its own");
}

/// Where a record's signature lies in its bytes.
fn signature_offset(bytes: &[u8]) -> usize {
    let mut record = RecordBytes([0; RECORD_BYTES]);
    record.0.copy_from_slice(bytes);
    let archived = access_record(&record.0).expect("a record");
    archived.signed.signature.as_ptr() as usize - record.0.as_ptr() as usize
}

// ---------------------------------------------------------------------------------------
// Kill and restart: server, follower, primary
// ---------------------------------------------------------------------------------------

/// Rounds of the kill loop; each runs one chunk of transactions through the primary.
const KILL_ROUNDS: u64 = 12;
/// Lines per chunk.
const CHUNK_LINES: usize = 400;

#[test]
fn kills_of_the_server_the_follower_and_the_primary_lose_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = NatsServer::start(tmp.path(), "single");
    let url = server.url();
    let (primary, follower) = (tmp.path().join("primary"), tmp.path().join("follower"));
    let follower_args =
        s(&["follow", "--from", &url, "--stream", "kills", "--journal", path_text(&follower), "--idle-exit", "60"]);
    let mut follow = Bg::spawn(tmp.path(), "follow-0", &follower_args);
    let mut rng = XorShift(0x5eed_cafe);
    let (mut follower_kills, mut primary_kills, mut acknowledged) = (0u32, 0u32, 0u64);
    for round in 0..KILL_ROUNDS {
        let mut lines = if round == 0 { setup_lines() } else { Vec::new() };
        lines.extend(order_flow(CHUNK_LINES, 100 + round));
        let input = write_lines(&tmp.path().join(format!("in-{round}.jsonl")), &lines);
        let events = tmp.path().join(format!("events-{round}.jsonl"));
        let mut run = Bg::spawn(
            tmp.path(),
            &format!("run-{round}"),
            &s(&[
                "run",
                "--dev",
                "--input",
                path_text(&input),
                "--journal",
                path_text(&primary),
                "--events",
                path_text(&events),
                "--publish",
                &url,
                "--stream",
                "kills",
                "--replicated",
                "--attest-every",
                "50",
                "--publish-timeout",
                "3",
            ]),
        );
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        match rng.below(4) {
            0 | 3 => {
                server.kill();
                std::thread::sleep(Duration::from_millis(rng.below(300)));
                server.start_again();
            }
            1 => {
                follow.kill();
                follower_kills += 1;
                follow = Bg::spawn(tmp.path(), &format!("follow-{round}"), &follower_args);
            }
            2 if run.running() => {
                run.kill();
                primary_kills += 1;
            }
            _ => {}
        }
        if rng.below(3) == 0 && follow.running() {
            // Sometimes the follower dies too, in the same round.
            follow.kill();
            follower_kills += 1;
            follow = Bg::spawn(tmp.path(), &format!("follow-{round}b"), &follower_args);
        }
        if run.child.is_some() {
            // A run may fail when the server was down longer than --publish-timeout: its
            // unacknowledged events were withheld; the next run publishes the records.
            let (_status, _out, err) = run.wait(Duration::from_secs(60));
            assert!(!err.contains("fenced") && !err.contains("second writer"), "round {round}: {err}");
        }
        // Events are written only after JetStream acknowledged their records.
        acknowledged = acknowledged.max(max_event_seq(&events));
        if !follow.running() {
            let (_, _, err) = follow.wait(Duration::from_secs(1));
            panic!("round {round}: the follower stopped: {err}");
        }
    }
    follow.kill();
    eprintln!(
        "kill loop: {KILL_ROUNDS} rounds, {} server kills, {follower_kills} follower kills, {primary_kills} primary \
         kills; acknowledged through seq {acknowledged}",
        server.kills
    );
    assert!(server.kills >= 1 && follower_kills >= 1 && primary_kills >= 1, "the seed kills each of the three");
    // Nothing acknowledged is lost: the stream alone (the primary never runs again) holds it.
    let witness = tmp.path().join("witness");
    let (seq, _) = follow_until(&url, "kills", &witness, acknowledged, &[]);
    assert!(seq >= acknowledged, "the stream holds every acknowledged seq: {seq} < {acknowledged}");
    // The primary publishes what it committed but was never acknowledged; the restarted
    // follower catches up from its own journal's last seq; all converge.
    let empty = write_lines(&tmp.path().join("empty.jsonl"), &[]);
    verex_ok(
        &[
            "run",
            "--dev",
            "--input",
            path_text(&empty),
            "--journal",
            path_text(&primary),
            "--publish",
            &url,
            "--stream",
            "kills",
            "--attest-every",
            "50",
        ],
        "the primary publishes its backlog",
    );
    let expected = replay(&primary);
    assert_eq!(follow_until(&url, "kills", &follower, expected.0, &[]), expected, "the follower converged");
    assert_eq!(follow_until(&url, "kills", &witness, expected.0, &[]), expected, "the witness converged");
    // At every attested seq the follower's state hash is the primary's: the same signed lines,
    // each re-checked against a replay of the follower's journal by `verify`.
    let attestations = |dir: &Path| read_text(&dir.join("attestations.jsonl"));
    assert_eq!(attestations(&follower), attestations(&primary));
    assert!(attestations(&primary).lines().count() as u64 >= expected.0 / 50 - 1);
    expect_success(&verex_in(&["verify", "--journal", path_text(&follower)], b""), "verify the follower");
    expect_success(&verex_in(&["verify", "--journal", path_text(&witness)], b""), "verify the witness");
}

// ---------------------------------------------------------------------------------------
// A three-node cluster
// ---------------------------------------------------------------------------------------

#[test]
fn a_three_node_cluster_keeps_the_stream_when_a_node_dies_mid_stream() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut nodes = nats::cluster(tmp.path());
    let all = nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",");
    let primary = tmp.path().join("primary");
    let mut lines = setup_lines();
    lines.extend(order_flow(1937, 51));
    let events = tmp.path().join("events.jsonl");
    // The input goes through a pipe, a chunk at a time, so that a node dies mid-stream.
    let mut run = Bg { child: None, out: tmp.path().join("run.out"), err: tmp.path().join("run.err") };
    let mut child = Command::new(VEREX)
        .args(s(&[
            "run",
            "--dev",
            "--input",
            "-",
            "--journal",
            path_text(&primary),
            "--events",
            path_text(&events),
            "--publish",
            &all,
            "--stream",
            "cluster",
            "--stream-replicas",
            "3",
            "--replicated",
            "--attest-every",
            "200",
            "--publish-timeout",
            "20",
        ]))
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&run.out).expect("out"))
        .stderr(std::fs::File::create(&run.err).expect("err"))
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    run.child = Some(child);
    let mut killed_at = 0;
    for (n, chunk) in lines.chunks(100).enumerate() {
        use std::io::Write;
        stdin.write_all(chunk.iter().map(|l| format!("{l}\n")).collect::<String>().as_bytes()).expect("feed");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(50));
        if n == 8 {
            // Wait until the stream holds some of it, then kill the first node.
            let deadline = Instant::now() + Duration::from_secs(30);
            while max_event_seq(&events) < 300 {
                assert!(Instant::now() < deadline, "no events: {}", read_text(&run.err));
                std::thread::sleep(Duration::from_millis(20));
            }
            killed_at = max_event_seq(&events);
            nodes[0].kill();
        }
    }
    drop(stdin);
    let (status, _, err) = run.wait(Duration::from_secs(120));
    assert!(status.success(), "the primary: {err}");
    let expected = replay(&primary);
    assert_eq!(expected.0, 2000);
    assert_eq!(max_event_seq(&events), 2000, "every event released, each once two of three nodes held it");
    eprintln!("cluster: node n1 killed after seq {killed_at} was acknowledged; {err}");
    // A follower on the surviving nodes gets the whole stream.
    let survivors = nodes[1..].iter().map(NatsServer::url).collect::<Vec<_>>().join(",");
    let follower = tmp.path().join("follower");
    assert_eq!(follow_until(&survivors, "cluster", &follower, 2000, &[]), expected);
    expect_success(&verex_in(&["verify", "--journal", path_text(&follower)], b""), "verify the follower");
}
