//! Shared file handling: JSON-lines input with line numbers, buffered output, warnings and a
//! progress line. `-` names standard input or output wherever a file is expected.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::CliError;

/// Longest input line accepted, in bytes (without its newline). A transaction line is a few
/// hundred bytes; the bound keeps a file with no newlines from exhausting memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Bytes a [`LineReader`] reads at a time: thousands of transaction lines per read from a
/// file, so that a reader handing on what it has when the buffer runs out of whole lines
/// ([`LineReader::has_buffered_line`]) still makes full chunks.
pub const READ_BUFFER_BYTES: usize = 1 << 20;

/// The name `-`: standard input or output.
const STDIO: &str = "-";

/// Prints a warning on standard error (never fails: a lost warning is not worth an abort).
pub fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {message}");
}

/// Prints a note on standard error.
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == STDIO
}

/// Refuses to write `output` when it is the file `input` (creating it would truncate the
/// input before it is read).
///
/// # Errors
/// [`CliError::Usage`] naming both arguments.
pub fn refuse_same_file(input: Option<&Path>, output: Option<&Path>, flags: &str) -> Result<(), CliError> {
    let (Some(input), Some(output)) = (input, output) else { return Ok(()) };
    if is_stdio(input) || is_stdio(output) {
        return Ok(());
    }
    match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) if a == b => {
            Err(CliError::Usage(format!("{flags} name the same file {}: it would be overwritten", input.display())))
        }
        _ => Ok(()),
    }
}

/// One line of input that is neither blank nor a comment.
#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based line number in the file.
    pub number: u64,
    /// The text, without its line ending.
    pub text: &'a str,
}

/// Reads an input file line by line, skipping blank lines and `#` comments, counting lines
/// so that every error can name one.
pub struct LineReader {
    name: String,
    reader: BufReader<Box<dyn Read>>,
    buf: Vec<u8>,
    line_number: u64,
    bytes_read: u64,
    total_bytes: Option<u64>,
}

impl LineReader {
    /// Opens `path`, or standard input for `None` and `-`.
    ///
    /// # Errors
    /// [`CliError::Io`] when the file cannot be opened.
    pub fn open(path: Option<&Path>) -> Result<Self, CliError> {
        match path {
            Some(path) if !is_stdio(path) => {
                let file = File::open(path).map_err(|e| CliError::io("open", path, e))?;
                let total_bytes = file.metadata().ok().filter(std::fs::Metadata::is_file).map(|m| m.len());
                Ok(Self::new(path.display().to_string(), Box::new(file), total_bytes))
            }
            _ => Ok(Self::new("<stdin>".to_string(), Box::new(std::io::stdin()), None)),
        }
    }

    fn new(name: String, reader: Box<dyn Read>, total_bytes: Option<u64>) -> Self {
        let reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
        Self { name, reader, buf: Vec::with_capacity(1024), line_number: 0, bytes_read: 0, total_bytes }
    }

    /// Whether a whole line is already buffered, so that [`LineReader::next_line`] returns
    /// without reading (and maybe waiting for) more input. A reader that batches lines
    /// (`verex run`'s ingress chunks) hands on what it has when this is false: on a live input
    /// that is when the input pauses.
    pub fn has_buffered_line(&self) -> bool {
        self.reader.buffer().contains(&b'\n')
    }

    /// Bytes consumed so far, and the file's size when known.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.bytes_read, self.total_bytes)
    }

    /// An error about line `number` of this file.
    pub fn line_error(&self, number: u64, reason: impl Into<String>) -> CliError {
        CliError::Line { file: self.name.clone(), line: number, reason: reason.into() }
    }

    /// The next line that is neither blank nor a comment, or `None` at the end of the file.
    ///
    /// # Errors
    /// [`CliError::Line`] for a line that is too long or not UTF-8; [`CliError::Io`] when
    /// reading fails.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, CliError> {
        loop {
            if !self.read_raw_line()? {
                return Ok(None);
            }
            let content = trim_line_ending(&self.buf);
            let first = content.iter().find(|b| !b.is_ascii_whitespace());
            if !matches!(first, None | Some(b'#')) {
                break;
            }
        }
        let number = self.line_number;
        match std::str::from_utf8(trim_line_ending(&self.buf)) {
            Ok(text) => Ok(Some(Line { number, text })),
            Err(_) => Err(self.line_error(number, "not valid UTF-8")),
        }
    }

    /// Reads one raw line into `buf`; `false` at the end of the file.
    fn read_raw_line(&mut self) -> Result<bool, CliError> {
        self.buf.clear();
        let limit = (MAX_LINE_BYTES + 2) as u64; // room for "\r\n"
        let read = self.reader.by_ref().take(limit).read_until(b'\n', &mut self.buf).map_err(|e| CliError::Io {
            action: "read",
            file: self.name.clone(),
            source: e,
        })?;
        if read == 0 {
            return Ok(false);
        }
        self.line_number += 1;
        self.bytes_read += read as u64;
        if trim_line_ending(&self.buf).len() > MAX_LINE_BYTES {
            return Err(self.line_error(self.line_number, format!("line longer than {MAX_LINE_BYTES} bytes")));
        }
        Ok(true)
    }
}

fn trim_line_ending(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// Bytes of complete lines gathered before they are handed to the OS in one write.
pub const WRITE_CHUNK_BYTES: usize = 64 * 1024;

/// Writes whole lines only: lines gather in a buffer that is handed to the OS in one write of
/// complete lines (at [`WRITE_CHUNK_BYTES`] and on flush), so a process killed between writes
/// never leaves a line cut in the middle (a `BufWriter` flushes wherever its buffer fills).
pub struct LineSink<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> LineSink<W> {
    /// A sink over `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, buf: Vec::with_capacity(WRITE_CHUNK_BYTES + 1024) }
    }

    /// Adds `text` and a newline; writes the gathered lines once they reach
    /// [`WRITE_CHUNK_BYTES`].
    ///
    /// # Errors
    /// What the write returned.
    pub fn push_line(&mut self, text: &str) -> std::io::Result<()> {
        self.buf.extend_from_slice(text.as_bytes());
        self.buf.push(b'\n');
        if self.buf.len() >= WRITE_CHUNK_BYTES {
            self.write_gathered()?;
        }
        Ok(())
    }

    fn write_gathered(&mut self) -> std::io::Result<()> {
        let written = self.inner.write_all(&self.buf);
        self.buf.clear();
        written
    }

    /// Writes every gathered line and flushes the writer.
    ///
    /// # Errors
    /// What the write or the flush returned.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.write_gathered()?;
        self.inner.flush()
    }
}

/// A file written under a temporary name and renamed into place by [`Output::finish`]: a run
/// that fails (a full disk, a kill) leaves the previous file, or none, never a cut one.
struct Replace {
    /// Where the file goes.
    path: std::path::PathBuf,
    /// The temporary name written to, beside it.
    tmp: std::path::PathBuf,
    /// The temporary file, for fsync.
    file: File,
}

/// An output file (whole lines only), or standard output.
pub struct Output {
    name: String,
    sink: LineSink<Box<dyn Write>>,
    replace: Option<Replace>,
}

impl Output {
    /// Creates (truncates) `path`, or writes to standard output for `None` and `-`.
    ///
    /// # Errors
    /// [`CliError::Io`] when the file cannot be created.
    pub fn create(path: Option<&Path>) -> Result<Self, CliError> {
        match path {
            Some(path) if !is_stdio(path) => {
                let file = File::create(path).map_err(|e| CliError::io("create", path, e))?;
                Ok(Self { name: path.display().to_string(), sink: LineSink::new(Box::new(file)), replace: None })
            }
            _ => Ok(Self::stdout()),
        }
    }

    /// An output that replaces `path` atomically when it is finished: written to
    /// `path.tmp`, fsynced, renamed over `path`, the directory fsynced. Unfinished (an error
    /// before `finish`), the temporary file is removed and `path` is untouched. Standard
    /// output for `-`.
    ///
    /// # Errors
    /// [`CliError::Io`] when the temporary file cannot be created.
    pub fn replacing(path: &Path) -> Result<Self, CliError> {
        if is_stdio(path) {
            return Ok(Self::stdout());
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|e| CliError::io("create", &tmp, e))?;
        let writer = file.try_clone().map_err(|e| CliError::io("open", &tmp, e))?;
        let replace = Replace { path: path.to_path_buf(), tmp, file };
        Ok(Self { name: path.display().to_string(), sink: LineSink::new(Box::new(writer)), replace: Some(replace) })
    }

    fn stdout() -> Self {
        Self { name: "<stdout>".to_string(), sink: LineSink::new(Box::new(std::io::stdout())), replace: None }
    }

    /// Writes `text` and a newline.
    ///
    /// # Errors
    /// [`CliError::Io`] when writing fails (a full disk, a closed pipe).
    pub fn write_line(&mut self, text: &str) -> Result<(), CliError> {
        self.sink.push_line(text).map_err(|e| self.write_error(e))
    }

    fn write_error(&self, source: std::io::Error) -> CliError {
        CliError::Io { action: "write", file: self.name.clone(), source }
    }

    /// Flushes everything written (and puts a replacing output in place); dropping an `Output`
    /// without it would lose write errors.
    ///
    /// # Errors
    /// [`CliError::Io`] when flushing, syncing or renaming fails.
    pub fn finish(mut self) -> Result<(), CliError> {
        self.sink.flush().map_err(|e| self.write_error(e))?;
        let Some(replace) = self.replace.take() else { return Ok(()) };
        replace.file.sync_all().map_err(|e| CliError::io("sync", &replace.tmp, e))?;
        std::fs::rename(&replace.tmp, &replace.path).map_err(|e| CliError::io("rename", &replace.tmp, e))?;
        let dir = replace.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| CliError::io("sync", dir, e))
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(replace) = self.replace.take() {
            // Not finished: the previous file stays; the temporary one goes.
            let _ = std::fs::remove_file(&replace.tmp);
        }
    }
}

/// How often the progress line is redrawn at most.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// Lines between two looks at the clock (a power of two: checked with a mask).
const PROGRESS_LINES: u64 = 1024;
const _: () = assert!(PROGRESS_LINES.is_power_of_two());

/// A progress line on standard error, drawn only when standard error is a terminal.
pub struct Progress {
    label: &'static str,
    enabled: bool,
    last_draw: Instant,
    drawn: bool,
}

impl Progress {
    /// A progress line labelled `label`.
    pub fn new(label: &'static str) -> Self {
        Self { label, enabled: std::io::stderr().is_terminal(), last_draw: Instant::now(), drawn: false }
    }

    /// Notes that `lines` lines are done; redraws now and then.
    pub fn update(&mut self, lines: u64, (done_bytes, total_bytes): (u64, Option<u64>)) {
        if !self.enabled || lines & (PROGRESS_LINES - 1) != 0 || self.last_draw.elapsed() < PROGRESS_INTERVAL {
            return;
        }
        self.last_draw = Instant::now();
        self.drawn = true;
        let percent = match total_bytes {
            Some(total) if total > 0 => format!(" ({}%)", done_bytes.saturating_mul(100) / total),
            _ => String::new(),
        };
        let _ = write!(std::io::stderr(), "\r{}: {lines} lines{percent}   ", self.label);
    }
}

impl Drop for Progress {
    /// Clears the progress line, if one was drawn, however the work ended.
    fn drop(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every write call the sink makes.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_sink_hands_the_os_whole_lines_only() {
        let mut sink = LineSink::new(Calls::default());
        let line = "x".repeat(700);
        for _ in 0..1_000 {
            sink.push_line(&line).expect("write");
        }
        sink.flush().expect("flush");
        let calls = &sink.inner.0;
        assert!(calls.len() > 5, "several writes for 700 kB");
        assert!(calls.iter().all(|c| c.ends_with(b"\n") && c.len() % 701 == 0), "every write is whole lines");
        assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 701 * 1_000);
    }

    #[test]
    fn a_replacing_output_leaves_the_old_file_until_it_is_finished() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, "old\n").expect("write");
        let tmp = dir.path().join("state.json.tmp");
        {
            let mut out = Output::replacing(&path).expect("create");
            out.write_line("new, unfinished").expect("write");
            assert!(tmp.exists());
        } // dropped without finish: as a failed run
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old\n");
        assert!(!tmp.exists(), "the temporary file is removed");
        let mut out = Output::replacing(&path).expect("create");
        out.write_line("new").expect("write");
        out.finish().expect("finish");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new\n");
        assert!(!tmp.exists());
    }
}
