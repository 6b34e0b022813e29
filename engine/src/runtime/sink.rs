//! Where the journal stage puts record bytes: the [`RecordSink`] trait.
//!
//! The engine crate knows no journal (the journal knows no transactions); `verex-tools`
//! implements [`RecordSink`] for a newtype around `verex_journal::JournalWriter`. The
//! in-memory [`MemorySink`] serves tests and benchmarks.

/// A failed append or commit. Carries the sink's own error.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct SinkError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl SinkError {
    /// Wraps the sink's error (a `JournalError`, an `io::Error`, a message).
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self { source: source.into() }
    }

    /// The sink's error.
    #[must_use]
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.source.as_ref()
    }
}

/// An append-only store of records, made durable by `commit`.
///
/// The journal stage calls [`RecordSink::append`] for every record in seq order (gap-free,
/// starting right after the engine's seq at start), then [`RecordSink::commit`] once per
/// group: when the ring is empty, or after `PipelineConfig::commit_max_records` appends, or
/// `PipelineConfig::commit_max_delay` after the group's first append. Events are
/// released only up to the seq the last successful commit returned. After any error the
/// pipeline is poisoned and calls the sink no more: a failed sync is never retried and assumed
/// durable.
pub trait RecordSink: Send + 'static {
    /// Appends one record's bytes (`RECORD_BYTES`, 16-byte aligned in the ring slot).
    ///
    /// # Errors
    /// [`SinkError`] when the record cannot be stored; the pipeline is poisoned.
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError>;

    /// Makes appended records durable (in the sink's sense) and returns the highest durable
    /// seq. It may return less than the last appended seq (a group commit that is not due
    /// yet); the journal stage calls `commit` again while idle until it catches up.
    ///
    /// # Errors
    /// [`SinkError`] when the records cannot be made durable; the pipeline is poisoned.
    fn commit(&mut self) -> Result<u64, SinkError>;

    /// Called once at a clean shutdown, after the last append: make everything durable.
    /// Defaults to [`RecordSink::commit`].
    ///
    /// # Errors
    /// [`SinkError`] as for `commit`.
    fn finish(&mut self) -> Result<u64, SinkError> {
        self.commit()
    }
}

/// Records kept in memory, in order; durable as soon as committed. For tests and benches:
/// it grows past its initial capacity (an allocation on the journal stage, never the engine
/// stage), and [`MemorySink::discarding`] keeps no records at all.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Vec<crate::record::RecordBytes>,
    keep: bool,
    first_seq: u64,
    last_seq: u64,
    commits: u64,
}

impl MemorySink {
    /// A sink that keeps every record, with room for `capacity` before it grows.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self { records: Vec::with_capacity(capacity), keep: true, ..Self::default() }
    }

    /// A sink that counts records and keeps none (a journal with free, instant storage).
    #[must_use]
    pub fn discarding() -> Self {
        Self::default()
    }

    /// The records kept, in seq order (from [`MemorySink::first_seq`]).
    #[must_use]
    pub fn records(&self) -> &[crate::record::RecordBytes] {
        &self.records
    }

    /// The seq of the first record appended (0 if none).
    #[must_use]
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The seq of the last record appended (0 if none).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many times `commit` (or `finish`) was called.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits
    }
}

impl RecordSink for MemorySink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        if self.last_seq != 0 && seq != self.last_seq + 1 {
            return Err(SinkError::new(format!("append out of order: expected seq {}, got {seq}", self.last_seq + 1)));
        }
        if self.keep {
            let mut record = crate::record::RecordBytes([0; crate::tx::RECORD_BYTES]);
            if bytes.len() != record.0.len() {
                return Err(SinkError::new(format!("record of {} bytes at seq {seq}", bytes.len())));
            }
            record.0.copy_from_slice(bytes);
            self.records.push(record);
        }
        if self.first_seq == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        Ok(())
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        self.commits += 1;
        Ok(self.last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::RECORD_BYTES;

    #[test]
    fn memory_sink_keeps_records_in_order_and_refuses_gaps() {
        let mut sink = MemorySink::with_capacity(4);
        let bytes = [3u8; RECORD_BYTES];
        sink.append(5, &bytes).expect("first");
        sink.append(6, &bytes).expect("second");
        assert_eq!(sink.commit().expect("commit"), 6);
        assert!(sink.append(8, &bytes).is_err(), "a gap");
        assert!(sink.append(7, &bytes[1..]).is_err(), "a short record");
        assert_eq!((sink.first_seq(), sink.last_seq(), sink.records().len()), (5, 6, 2));
        let mut discarding = MemorySink::discarding();
        discarding.append(1, &bytes).expect("append");
        assert_eq!(discarding.finish().expect("finish"), 1);
        assert!(discarding.records().is_empty());
    }

    #[test]
    fn sink_error_keeps_its_source() {
        let error = SinkError::new(std::io::Error::other("disk on fire"));
        assert_eq!(error.to_string(), "disk on fire");
        assert!(error.source_error().is::<std::io::Error>());
    }
}
