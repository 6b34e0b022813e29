//! The wire format of a replicated journal on NATS JetStream (docs/replication.md).
//!
//! Three subjects under `verex.<STREAM>.`:
//!
//! * `log`: one message per commit group (or per [`MAX_MESSAGE_RECORDS`] records of a larger
//!   one), the records in journal order. Headers carry the seqs, the BLAKE3 attestation chain
//!   before and after the records, the publisher's `--attest-every` and its clock at publish;
//!   the payload is the records' bytes back to back, each `RECORD_BYTES` long, exactly as the
//!   journal holds them (the archived, signed, sequenced tx). `Nats-Msg-Id` is the first seq.
//! * `attest`: one message per attestation, its JSON line (docs/attestations.md).
//! * `manifest`: the journal's `verex.json` (genesis keys and limits), published once.

use async_nats::HeaderMap;
use verex_engine::record::RecordBytes;
use verex_engine::signing::{hex, parse_hex};
use verex_engine::tx::RECORD_BYTES;

/// Version of this format, in every log message's `Verex-Format` header.
pub const FORMAT: u64 = 1;
/// Most records in one log message, so that a message (with its headers, under 4 KiB) fits
/// NATS's default 1 MiB `max_payload`: a larger commit group is split, each part its own
/// message and id.
pub const MAX_MESSAGE_RECORDS: u64 = 2000;
/// Most bytes of a log message's payload and headers (headers stay under 4 KiB).
pub const MAX_MESSAGE_BYTES: u64 = MAX_MESSAGE_RECORDS * (RECORD_BYTES as u64) + 4096;
const _: () = assert!(MAX_MESSAGE_BYTES <= 1 << 20, "a message fits the default max_payload");

/// JetStream's de-duplication header: the first seq of a log message.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// JetStream's optimistic-concurrency header: the stream sequence of the previous log message.
pub const EXPECTED_LAST_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
/// `FORMAT`.
pub const H_FORMAT: &str = "Verex-Format";
/// Seq of the first record in the message.
pub const H_FIRST_SEQ: &str = "Verex-First-Seq";
/// Seq of the last record in the message.
pub const H_LAST_SEQ: &str = "Verex-Last-Seq";
/// `d[first - 1]`, hex.
pub const H_PREV_DIGEST: &str = "Verex-Prev-Digest";
/// `d[last]`, hex.
pub const H_DIGEST: &str = "Verex-Digest";
/// The publisher's attestation period (0: it signs none).
pub const H_ATTEST_EVERY: &str = "Verex-Attest-Every";
/// The publisher's wall clock when it published, ns since the epoch (for lag, never state).
pub const H_PUBLISHED_NS: &str = "Verex-Published-Ns";

/// The subjects of stream `stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    /// `verex.<stream>.>`: what the stream captures.
    pub all: String,
    /// `verex.<stream>.log`.
    pub log: String,
    /// `verex.<stream>.attest`.
    pub attest: String,
    /// `verex.<stream>.manifest`.
    pub manifest: String,
}

impl Subjects {
    /// The subjects of stream `stream`.
    #[must_use]
    pub fn of(stream: &str) -> Self {
        Self {
            all: format!("verex.{stream}.>"),
            log: format!("verex.{stream}.log"),
            attest: format!("verex.{stream}.attest"),
            manifest: format!("verex.{stream}.manifest"),
        }
    }
}

/// What a log message's headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    /// Seq of its first record.
    pub first_seq: u64,
    /// Seq of its last record.
    pub last_seq: u64,
    /// `d[first_seq - 1]`.
    pub prev_digest: [u8; 32],
    /// `d[last_seq]`.
    pub digest: [u8; 32],
    /// The publisher's `--attest-every`.
    pub attest_every: u64,
    /// The publisher's clock at publish (ns).
    pub published_ns: u64,
}

impl LogHeader {
    /// Records in the message.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.last_seq - self.first_seq + 1
    }

    /// The headers of the message; `expected_last_subject_seq` is the stream sequence of the
    /// previous log message (0 for the first), so that JetStream refuses the message if any
    /// other log message was stored since (a second writer).
    #[must_use]
    pub fn to_headers(&self, expected_last_subject_seq: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID, self.first_seq.to_string().as_str());
        headers.insert(EXPECTED_LAST_SUBJECT_SEQ, expected_last_subject_seq.to_string().as_str());
        headers.insert(H_FORMAT, FORMAT.to_string().as_str());
        headers.insert(H_FIRST_SEQ, self.first_seq.to_string().as_str());
        headers.insert(H_LAST_SEQ, self.last_seq.to_string().as_str());
        headers.insert(H_PREV_DIGEST, hex(&self.prev_digest).as_str());
        headers.insert(H_DIGEST, hex(&self.digest).as_str());
        headers.insert(H_ATTEST_EVERY, self.attest_every.to_string().as_str());
        headers.insert(H_PUBLISHED_NS, self.published_ns.to_string().as_str());
        headers
    }

    /// Parses a log message's headers.
    ///
    /// # Errors
    /// A message naming the missing or malformed header.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Result<Self, String> {
        let headers = headers.ok_or("a log message without headers")?;
        let text = |name: &str| -> Result<String, String> {
            headers.get(name).map(|v| v.as_str().to_string()).ok_or_else(|| format!("header {name} is missing"))
        };
        let number = |name: &str| -> Result<u64, String> {
            let value = text(name)?;
            value.parse::<u64>().map_err(|_| format!("header {name}: {value:?} is not a number"))
        };
        let digest = |name: &str| -> Result<[u8; 32], String> {
            let value = text(name)?;
            parse_hex::<32>(&value).ok_or_else(|| format!("header {name}: not 64 hex digits"))
        };
        let format = number(H_FORMAT)?;
        if format != FORMAT {
            return Err(format!("format {format}, this build reads {FORMAT}"));
        }
        let header = Self {
            first_seq: number(H_FIRST_SEQ)?,
            last_seq: number(H_LAST_SEQ)?,
            prev_digest: digest(H_PREV_DIGEST)?,
            digest: digest(H_DIGEST)?,
            attest_every: number(H_ATTEST_EVERY)?,
            published_ns: number(H_PUBLISHED_NS)?,
        };
        if header.first_seq == 0 || header.last_seq < header.first_seq {
            return Err(format!("seqs {}..={} are not a range of records", header.first_seq, header.last_seq));
        }
        if header.records() > MAX_MESSAGE_RECORDS {
            return Err(format!("{} records, more than {MAX_MESSAGE_RECORDS}", header.records()));
        }
        Ok(header)
    }
}

/// Copies a log message's payload into aligned records (a network buffer has no alignment:
/// `rkyv` reads a record in place only from a 16-byte aligned [`RecordBytes`]).
///
/// # Errors
/// A message when the payload is not `header.records()` records long.
pub fn split_records(header: &LogHeader, payload: &[u8]) -> Result<Vec<RecordBytes>, String> {
    let expected = header.records() * RECORD_BYTES as u64;
    if payload.len() as u64 != expected {
        return Err(format!(
            "the payload holds {} bytes, {} records of {RECORD_BYTES} bytes are {expected}",
            payload.len(),
            header.records()
        ));
    }
    Ok(payload
        .chunks_exact(RECORD_BYTES)
        .map(|chunk| {
            let mut record = RecordBytes([0; RECORD_BYTES]);
            record.0.copy_from_slice(chunk);
            record
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> LogHeader {
        LogHeader {
            first_seq: 11,
            last_seq: 20,
            prev_digest: [1; 32],
            digest: [2; 32],
            attest_every: 100,
            published_ns: 1_700_000_000_000_000_000,
        }
    }

    #[test]
    fn headers_round_trip_and_carry_the_id_and_the_fence() {
        let headers = header().to_headers(41);
        assert_eq!(headers.get(MSG_ID).map(|v| v.as_str().to_string()), Some("11".to_string()));
        assert_eq!(headers.get(EXPECTED_LAST_SUBJECT_SEQ).map(|v| v.as_str().to_string()), Some("41".to_string()));
        assert_eq!(LogHeader::from_headers(Some(&headers)), Ok(header()));
    }

    #[test]
    fn a_bad_header_is_named() {
        assert!(LogHeader::from_headers(None).unwrap_err().contains("without headers"));
        let mut headers = header().to_headers(0);
        headers.insert(H_DIGEST, "zz");
        assert!(LogHeader::from_headers(Some(&headers)).unwrap_err().contains(H_DIGEST));
        let mut headers = header().to_headers(0);
        headers.insert(H_LAST_SEQ, "5");
        assert!(LogHeader::from_headers(Some(&headers)).unwrap_err().contains("not a range"));
        let mut headers = header().to_headers(0);
        headers.insert(H_FORMAT, "9");
        assert!(LogHeader::from_headers(Some(&headers)).unwrap_err().contains("format 9"));
    }

    #[test]
    fn the_payload_must_hold_exactly_the_records() {
        let header = LogHeader { first_seq: 1, last_seq: 2, ..header() };
        let payload = vec![7u8; 2 * RECORD_BYTES];
        let records = split_records(&header, &payload).expect("two records");
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].0.as_ptr().align_offset(16), 0);
        assert!(split_records(&header, &payload[1..]).is_err());
    }
}
