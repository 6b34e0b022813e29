//! The journal stage's hook: a [`RecordSink`] wrapper that tells the publisher how far the
//! local journal is committed, and in the replicated durability mode reports a seq durable
//! only once JetStream holds it.

use std::time::{Duration, Instant};

use verex_engine::runtime::{RecordSink, SinkError};

use super::publish::PublishFeed;

/// How the events of a publishing run are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Once the local journal has committed them (its durability mode); publishing follows.
    Local,
    /// Once the local journal has committed them **and** JetStream has acknowledged them
    /// (`--replicated`): a second machine holds every transaction whose events were released.
    Replicated {
        /// How long the final commit waits for the last acknowledgement.
        final_wait: Duration,
    },
}

/// Wraps the journal's sink: after each local commit, publishes the durable seq to the
/// publisher (an atomic store and a notification: never a wait on the network).
#[derive(Debug)]
pub struct PublishingSink<K> {
    /// The local journal's sink.
    pub inner: K,
    feed: Option<PublishFeed>,
    release: Release,
    registered: bool,
}

impl<K: RecordSink> PublishingSink<K> {
    /// `inner` with publishing (`feed`) and the release rule; with `feed: None` it only
    /// forwards.
    pub fn new(inner: K, feed: Option<PublishFeed>, release: Release) -> Self {
        Self { inner, feed, release, registered: false }
    }

    /// Why publishing stopped for good (another writer holds the stream), if it did.
    #[must_use]
    pub fn fenced(&self) -> Option<String> {
        self.feed.as_ref().and_then(|feed| feed.fenced().map(str::to_string))
    }

    /// What may be released: the local durable seq, or with `--replicated` the part of it
    /// JetStream holds. Fails once another writer holds the stream.
    fn releasable(&mut self, local: u64) -> Result<u64, SinkError> {
        let Some(feed) = &self.feed else { return Ok(local) };
        if !self.registered {
            // The journal stage's thread: woken when an acknowledgement arrives.
            feed.register_waiter();
            self.registered = true;
        }
        feed.durable(local);
        if let Some(reason) = feed.fenced() {
            return Err(SinkError::new(format!("replication fenced: {reason}")));
        }
        Ok(match self.release {
            Release::Local => local,
            Release::Replicated { .. } => local.min(feed.acked_seq()),
        })
    }
}

impl<K: RecordSink> RecordSink for PublishingSink<K> {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.inner.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        let local = self.inner.commit()?;
        self.releasable(local)
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        let local = self.inner.finish()?;
        let mut releasable = self.releasable(local)?;
        if let (Release::Replicated { final_wait }, Some(feed)) = (self.release, &self.feed) {
            let deadline = Instant::now() + final_wait;
            while releasable < local && Instant::now() < deadline && feed.fenced().is_none() {
                std::thread::park_timeout(Duration::from_millis(5));
                releasable = local.min(feed.acked_seq());
            }
        }
        Ok(releasable)
    }
}
