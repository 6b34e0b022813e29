//! Shared file handling: JSON-lines input with line numbers, buffered output, warnings and a
//! progress line. `-` names standard input or output wherever a file is expected.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::CliError;

/// Longest input line accepted, in bytes (without its newline). A transaction line is a few
/// hundred bytes; the bound keeps a file with no newlines from exhausting memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

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
    reader: Box<dyn BufRead>,
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
                Ok(Self::new(path.display().to_string(), Box::new(BufReader::new(file)), total_bytes))
            }
            _ => Ok(Self::new("<stdin>".to_string(), Box::new(BufReader::new(std::io::stdin())), None)),
        }
    }

    fn new(name: String, reader: Box<dyn BufRead>, total_bytes: Option<u64>) -> Self {
        Self { name, reader, buf: Vec::with_capacity(1024), line_number: 0, bytes_read: 0, total_bytes }
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

/// A buffered output file, or standard output.
pub struct Output {
    name: String,
    writer: Box<dyn Write>,
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
                Ok(Self { name: path.display().to_string(), writer: Box::new(BufWriter::new(file)) })
            }
            _ => Ok(Self { name: "<stdout>".to_string(), writer: Box::new(BufWriter::new(std::io::stdout())) }),
        }
    }

    /// Writes `text` and a newline.
    ///
    /// # Errors
    /// [`CliError::Io`] when writing fails (a full disk, a closed pipe).
    pub fn write_line(&mut self, text: &str) -> Result<(), CliError> {
        self.writer
            .write_all(text.as_bytes())
            .and_then(|()| self.writer.write_all(b"\n"))
            .map_err(|e| self.write_error(e))
    }

    fn write_error(&self, source: std::io::Error) -> CliError {
        CliError::Io { action: "write", file: self.name.clone(), source }
    }

    /// Flushes everything written; dropping an `Output` without it would lose write errors.
    ///
    /// # Errors
    /// [`CliError::Io`] when flushing fails.
    pub fn finish(mut self) -> Result<(), CliError> {
        self.writer.flush().map_err(|e| self.write_error(e))
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
