//! The journal stage's hook: a [`RecordSink`] wrapper that tells the publisher how far the
//! local journal is committed, and in the replicated durability mode reports a seq durable
//! only once JetStream holds it.

use std::time::{Duration, Instant};

use verex_engine::attest::JournalDigest;
use verex_engine::runtime::{RecordSink, SinkError};

use super::message::MAX_MESSAGE_RECORDS;
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

/// Records between two chain checkpoints handed to the publisher within a commit group: a
/// log message (at most [`MAX_MESSAGE_RECORDS`] records) can always end at one.
pub const CHECKPOINT_EVERY: u64 = MAX_MESSAGE_RECORDS / 4;

/// Wraps the journal's sink: after each local commit, publishes the durable seq to the
/// publisher (an atomic store and a notification: never a wait on the network). It also folds
/// the BLAKE3 attestation chain over the records as they are appended (while their bytes are
/// in this core's cache) and hands the publisher `d[seq]` at each commit and every
/// [`CHECKPOINT_EVERY`] records, so the publisher only copies the records it ships.
#[derive(Debug)]
pub struct PublishingSink<K> {
    /// The local journal's sink.
    pub inner: K,
    feed: Option<PublishFeed>,
    release: Release,
    registered: bool,
    /// `d` over the appended records (`None` without publishing, or after an append that did
    /// not follow: the publisher then folds the chain itself).
    chain: Option<JournalDigest>,
    /// The seq of the last checkpoint handed over.
    checkpointed_seq: u64,
}

impl<K: RecordSink> PublishingSink<K> {
    /// `inner` with publishing (`feed`) and the release rule; with `feed: None` it only
    /// forwards.
    pub fn new(inner: K, feed: Option<PublishFeed>, release: Release) -> Self {
        let chain = feed.as_ref().map(PublishFeed::start);
        let checkpointed_seq = chain.map_or(0, |c| c.seq);
        Self { inner, feed, release, registered: false, chain, checkpointed_seq }
    }

    /// Hands the publisher the chain's value at the last appended seq, if it is new.
    fn checkpoint(&mut self) {
        if let (Some(feed), Some(chain)) = (&self.feed, self.chain) {
            if chain.seq > self.checkpointed_seq {
                feed.checkpoint(chain);
                self.checkpointed_seq = chain.seq;
            }
        }
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
        self.inner.append(seq, bytes)?;
        if let Some(chain) = self.chain.as_mut() {
            if chain.push(seq, bytes).is_err() {
                self.chain = None;
            } else if chain.seq >= self.checkpointed_seq + CHECKPOINT_EVERY {
                self.checkpoint();
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        // Before the durable seq: the publisher, woken by it, finds the checkpoint there.
        self.checkpoint();
        let local = self.inner.commit()?;
        self.releasable(local)
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        self.checkpoint();
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

#[cfg(test)]
mod tests {
    use verex_engine::runtime::MemorySink;
    use verex_engine::tx::RECORD_BYTES;

    use super::*;

    fn record(seq: u64) -> Vec<u8> {
        (0..RECORD_BYTES).map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8).collect()
    }

    /// `d[seq]` folded from `start` by the reference definition, as the publisher would.
    fn folded(start: JournalDigest, seq: u64) -> JournalDigest {
        let mut digest = start;
        for n in start.seq + 1..=seq {
            digest.push(n, &record(n)).expect("next");
        }
        digest
    }

    #[test]
    fn the_chain_folded_on_append_is_handed_over_at_commits_and_every_checkpoint_interval() {
        let start = folded(JournalDigest::default(), 7);
        let feed = PublishFeed::detached(start);
        let mut sink = PublishingSink::new(MemorySink::with_capacity(16), Some(feed.clone()), Release::Local);
        let last = 7 + CHECKPOINT_EVERY * 2 + 100;
        for seq in 8..=last {
            sink.append(seq, &record(seq)).expect("append");
        }
        assert_eq!(sink.commit().expect("commit"), last);
        assert_eq!(feed.durable_seq(), last);
        // The largest one a message of at most MAX_MESSAGE_RECORDS can end at, each equal to
        // the chain the publisher would fold from the journal's records.
        let every = 7 + CHECKPOINT_EVERY;
        assert_eq!(feed.take_checkpoint(7, every + 10), Some(folded(start, every)));
        assert_eq!(feed.take_checkpoint(7, last), Some(folded(start, last)));
        assert_eq!(
            feed.take_checkpoint(every, every + CHECKPOINT_EVERY),
            Some(folded(start, every + CHECKPOINT_EVERY))
        );
        assert_eq!(feed.take_checkpoint(last, last + 10), None, "none past the last appended seq");
    }

    #[test]
    fn an_append_that_does_not_follow_the_start_stops_the_checkpoints() {
        let feed = PublishFeed::detached(JournalDigest::default());
        let mut sink = PublishingSink::new(MemorySink::with_capacity(16), Some(feed.clone()), Release::Local);
        // A journal that resumed at seq 5 while the publisher was told seq 0: the publisher
        // folds the chain itself (from its own reading of the journal) rather than trust it.
        for seq in 5..=9 {
            sink.append(seq, &record(seq)).expect("append");
        }
        assert_eq!(sink.commit().expect("commit"), 9);
        assert_eq!(feed.take_checkpoint(0, 100), None);
    }
}
