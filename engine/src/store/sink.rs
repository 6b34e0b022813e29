//! The journal as the pipeline's [`RecordSink`], and creating a journal directory that the
//! CLI can read.

use verex_journal::{JournalConfig, JournalError, JournalWriter};

use super::manifest::{read_manifest, write_manifest, Manifest};
use super::StoreError;
use crate::runtime::{RecordSink, SinkError};

/// Opens (creating if needed) the journal in `config.dir` for `manifest`'s engine: a new
/// directory gets the manifest first (durably, before any record), an existing one must have
/// the same manifest. The writer is positioned after the last valid record (a torn tail cut,
/// as [`JournalWriter::open`] does).
///
/// # Errors
/// [`StoreError::BadFile`] for an existing manifest that differs, [`StoreError::Journal`]
/// for a damaged or locked journal, [`StoreError::Io`] for the manifest's writing.
pub fn create_journal(config: JournalConfig, manifest: &Manifest) -> Result<JournalWriter, StoreError> {
    let dir = config.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
    match read_manifest(&dir)? {
        Some(found) if found != *manifest => {
            return Err(StoreError::BadFile {
                path: super::manifest::manifest_path(&dir),
                reason: "the journal was written with other genesis keys or limits".into(),
            })
        }
        Some(_) => {}
        None => write_manifest(&dir, manifest)?,
    }
    let (writer, _report) = JournalWriter::open(config)?;
    Ok(writer)
}

/// The journal as the pipeline's record sink: `append` and `commit` go to the
/// [`JournalWriter`]; the first journal error is kept (the pipeline only sees its message)
/// and the writer is fail-stop (a failed sync poisons it; nothing is retried).
///
/// ```no_run
/// use verex_engine::store::{create_journal, JournalSink, LimitsPreset, Manifest};
/// use verex_engine::Genesis;
/// use verex_journal::JournalConfig;
///
/// let manifest = Manifest { limits: LimitsPreset::Small, genesis: Genesis::dev() };
/// let writer = create_journal(JournalConfig::new("/var/lib/exchange/journal"), &manifest)?;
/// let sink = JournalSink::new(writer); // hand it to `runtime::Pipeline::start`
/// # let _ = sink;
/// # Ok::<(), verex_engine::store::StoreError>(())
/// ```
#[derive(Debug)]
pub struct JournalSink {
    writer: JournalWriter,
    error: Option<JournalError>,
}

impl JournalSink {
    /// A sink appending to `writer`.
    #[must_use]
    pub fn new(writer: JournalWriter) -> Self {
        Self { writer, error: None }
    }

    /// The journal error that poisoned the pipeline, if one did.
    #[must_use]
    pub fn error(&self) -> Option<&JournalError> {
        self.error.as_ref()
    }

    /// Takes the journal error that poisoned the pipeline, if one did (to report it owned).
    pub fn take_error(&mut self) -> Option<JournalError> {
        self.error.take()
    }

    /// The writer (its `last_seq`, `last_hash`, `durable_seq`).
    #[must_use]
    pub fn writer(&self) -> &JournalWriter {
        &self.writer
    }

    /// The writer back (after `Pipeline::shutdown`), with the error that stopped it.
    #[must_use]
    pub fn into_parts(self) -> (JournalWriter, Option<JournalError>) {
        (self.writer, self.error)
    }

    fn failed(&mut self, error: JournalError) -> SinkError {
        let sink_error = SinkError::new(error.to_string());
        self.error.get_or_insert(error);
        sink_error
    }
}

impl RecordSink for JournalSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        self.writer.append(seq, bytes).map_err(|e| self.failed(e))
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        self.writer.commit().map_err(|e| self.failed(e))
    }
}
