//! Replication through NATS JetStream (SPEC section 15, docs/replication.md): the primary
//! ships its sequenced log to a JetStream stream; followers on other machines consume it
//! into their own journal and engine, re-check everything, and one can be promoted.
//!
//! ```text
//!  primary: journal stage ─ commit ─► JournalSink ─ durable seq (an atomic) ─► publisher thread
//!           publisher thread: reads the committed records from the journal mapping,
//!              publishes one message per commit group to `verex.<STREAM>.log`
//!              (Nats-Msg-Id = first seq, Nats-Expected-Last-Subject-Sequence = the previous
//!              log message: JetStream refuses a second writer), and the attestations the
//!              replica signed to `verex.<STREAM>.attest`
//!           --replicated: the journal stage reports a seq durable only once JetStream has
//!              acknowledged it, so events are released once a second machine holds them
//!  follower: ordered consumer ─► checks (seq continuity, BLAKE3 chain, signatures, the
//!           engine) ─► own journal (append + commit) ─► own engine ─► attestations checked
//!           against its own state hash and appended to its own log; its own snapshots
//! ```
//!
//! The client (`async-nats`) runs on a current-thread tokio runtime inside the publisher's
//! and the follower's own threads: the engine stage never waits on the network, and the
//! journal stage's only added work is one atomic store and a notification per commit.

pub mod follow;
pub mod message;
pub mod publish;
pub mod sink;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, ServerAddr};

pub use message::{LogHeader, Subjects, MAX_MESSAGE_RECORDS};

/// Default stream name (`--stream`).
pub const DEFAULT_STREAM: &str = "verex";
/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one JetStream request (a publish's acknowledgement, a lookup) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// JetStream's de-duplication window for the stream (its default).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Longest pause between two connection attempts.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Where a stream lives: one or more server URLs (a cluster's nodes) and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The servers, as given (`nats://HOST:PORT`), in order.
    pub servers: Vec<String>,
    /// The stream's name.
    pub stream: String,
    /// Replicas when the stream is created (1 on a single server, 3 on a cluster).
    pub replicas: usize,
}

impl Target {
    /// Parses `nats://HOST:PORT[,nats://HOST:PORT...]` and checks the stream name (letters,
    /// digits, `-` and `_`: it is also a subject token).
    ///
    /// # Errors
    /// A message naming the bad URL or name.
    pub fn parse(urls: &str, stream: &str, replicas: usize) -> Result<Self, String> {
        let servers: Vec<String> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).map(String::from).collect();
        if servers.is_empty() {
            return Err("no server URL".to_string());
        }
        for url in &servers {
            if !url.starts_with("nats://") {
                return Err(format!("{url:?}: expected nats://HOST:PORT"));
            }
            url.parse::<ServerAddr>().map_err(|e| format!("{url:?}: {e}"))?;
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if stream.is_empty() || stream.len() > 64 || !stream.chars().all(valid) {
            return Err(format!("stream name {stream:?}: 1 to 64 letters, digits, - or _"));
        }
        if !(1..=5).contains(&replicas) {
            return Err(format!("replicas {replicas}: JetStream allows 1 to 5"));
        }
        Ok(Self { servers, stream: stream.to_string(), replicas })
    }

    /// The stream's subjects.
    #[must_use]
    pub fn subjects(&self) -> Subjects {
        Subjects::of(&self.stream)
    }

    /// The servers as the client takes them.
    fn addrs(&self) -> Vec<ServerAddr> {
        self.servers.iter().filter_map(|url| url.parse().ok()).collect()
    }
}

/// A current-thread tokio runtime for one replication thread.
///
/// # Errors
/// The I/O error when the runtime cannot be built.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// Connects to the target's servers (the client reconnects on its own afterwards).
///
/// # Errors
/// The client's error, as text.
pub async fn connect(target: &Target) -> Result<(Client, jetstream::Context), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(target.addrs())
        .await
        .map_err(|e| format!("connect to {}: {e}", target.servers.join(",")))?;
    let mut context = jetstream::new(client.clone());
    context.set_timeout(REQUEST_TIMEOUT);
    Ok((client, context))
}

/// The target's stream, created if missing (file storage, `replicas` copies, the default
/// de-duplication window, no limits: the stream keeps the whole log).
///
/// # Errors
/// The client's error, as text.
pub async fn ensure_stream(context: &jetstream::Context, target: &Target) -> Result<stream::Stream, String> {
    let config = stream::Config {
        name: target.stream.clone(),
        subjects: vec![target.subjects().all],
        storage: stream::StorageType::File,
        num_replicas: target.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        allow_direct: true,
        ..stream::Config::default()
    };
    context.get_or_create_stream(config).await.map_err(|e| format!("stream {}: {e}", target.stream))
}

/// The last message on `subject`, if any.
///
/// # Errors
/// The client's error, as text (a subject without messages is `Ok(None)`).
pub async fn last_on_subject(
    stream: &stream::Stream,
    subject: &str,
) -> Result<Option<jetstream::message::StreamMessage>, String> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok(Some(message)),
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(format!("last message on {subject}: {e}")),
    }
}

/// The wall clock in ns since the epoch: stamped on published messages and read by the
/// follower, for the replication lag only (never part of a record or of the state).
#[allow(clippy::disallowed_methods)]
#[must_use]
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// CPU time (user + system) of the calling thread (`thread: true`) or of the whole process,
/// in ms, from `/proc` (Linux; `None` elsewhere): measurements only (perf/replication).
#[must_use]
pub fn cpu_ms(thread: bool) -> Option<u64> {
    let text = std::fs::read_to_string(if thread { "/proc/thread-self/stat" } else { "/proc/self/stat" }).ok()?;
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = text.get(text.rfind(')')? + 1..)?.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    // USER_HZ, in which /proc counts, is 100 on Linux.
    Some((ticks(11)? + ticks(12)?) * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_refuse_what_is_not_a_url_or_a_name() {
        let target = Target::parse("nats://127.0.0.1:4222, nats://127.0.0.1:4223", "ex-1", 3).expect("two servers");
        assert_eq!(target.servers.len(), 2);
        assert_eq!(target.subjects().log, "verex.ex-1.log");
        assert!(Target::parse("127.0.0.1:4222", "x", 1).is_err());
        assert!(Target::parse("nats://h:1", "a.b", 1).is_err());
        assert!(Target::parse("nats://h:1", "a", 0).is_err());
        assert!(Target::parse("", "a", 1).is_err());
    }

    #[test]
    fn cpu_time_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_ms(true).is_some() && cpu_ms(false).is_some());
        }
    }
}
