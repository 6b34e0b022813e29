//! Fault injection: every kind of damage is either cut as a torn tail (only when it really is
//! the tail, beyond the commit mark) or refused as corruption naming the seq and file. Never
//! silently accepted.
//!
//! The fixtures' last record is appended but never committed, as a crash in the middle of its
//! append (or before its commit) leaves it: only there can a torn tail lie. Damage to committed
//! records is corruption (see also `commit_mark.rs`).
//!
//! These tests judge recovery's classification, not the device, and recover thousands of times:
//! they run in `scratch_dir()` (tmpfs when available) so that each cut's fsyncs are cheap.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use verex_journal::test_support::deterministic_payload;
use verex_journal::{JournalError, JournalReader, RecoveryReport, FRAME_MAGIC, MAX_FRAME_BYTES, MIN_SEGMENT_BYTES};
use xxhash_rust::xxh3::xxh3_64;

const RECORDS: u64 = 800;

/// A journal of `RECORDS` deterministic records over three 64 KiB segments, all committed but
/// the last (a crash came before its commit).
fn build() -> (tempfile::TempDir, Vec<Placed>) {
    let dir = scratch_dir();
    write_deterministic(dir.path(), 1..=RECORDS - 1);
    append_uncommitted(dir.path(), RECORDS..=RECORDS);
    let placed = placements(dir.path());
    assert_eq!(placed.len() as u64, RECORDS);
    assert_eq!(placed.last().unwrap().segment_index, 3, "fixture spans three segments");
    (dir, placed)
}

fn record(placed: &[Placed], seq: u64) -> Placed {
    placed[(seq - 1) as usize]
}

fn first_seq_of_segment(placed: &[Placed], index: u64) -> u64 {
    placed.iter().find(|p| p.segment_index == index).unwrap().seq
}

/// Restores a segment file to `bytes`, at its full length.
fn restore(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
}

fn open_ok(dir: &Path) -> RecoveryReport {
    let (_, report) = open(dir).unwrap_or_else(|e| panic!("open failed: {e}"));
    report
}

/// After a cut, recovery again finds a clean journal with the same end (idempotence).
fn assert_clean_reopen(dir: &Path, last_seq: u64, last_hash: u64) {
    let report = open_ok(dir);
    assert_eq!(report.torn_at, None);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!((report.last_seq, report.last_hash), (last_seq, last_hash));
}

#[test]
fn zeroing_the_last_record_from_any_offset_cuts_exactly_that_record() {
    let (dir, placed) = build();
    let last = record(&placed, RECORDS);
    let prev = record(&placed, RECORDS - 1);
    let path = segment_file(dir.path(), last.segment_index);
    let pristine = read_file(&path);
    let start = last.frame_offset;
    let end = start + last.frame_bytes;
    for cut in start..end {
        restore(&path, &pristine);
        zero_range(&path, cut, end);
        let report = open_ok(dir.path());
        assert_eq!((report.last_seq, report.last_hash), (RECORDS - 1, prev.hash), "cut at {cut}");
        let kept = &pristine[start as usize..cut as usize];
        match kept.iter().rposition(|&b| b != 0) {
            None => {
                assert_eq!(report.torn_at, None, "cut at {cut}: nothing left of the record");
                assert_eq!(report.truncated_bytes, 0);
            }
            Some(last_nonzero) => {
                let torn = report.torn_at.as_ref().expect("torn tail reported");
                assert_eq!((torn.seq, torn.offset), (RECORDS, start), "cut at {cut}");
                assert_eq!(torn.file, path);
                assert_eq!(report.truncated_bytes, last_nonzero as u64 + 1, "cut at {cut}");
            }
        }
        assert!(read_file(&path)[start as usize..].iter().all(|&b| b == 0));
        assert_clean_reopen(dir.path(), RECORDS - 1, prev.hash);
    }
    // The writer continues where the cut left it.
    write_deterministic(dir.path(), RECORDS..=RECORDS + 5);
    assert_eq!(verify_deterministic(dir.path(), 1), RECORDS + 5);
}

#[test]
fn set_len_truncation_inside_the_last_record_is_a_torn_tail_and_the_file_is_restored() {
    let (dir, placed) = build();
    let last = record(&placed, RECORDS);
    let path = segment_file(dir.path(), last.segment_index);
    let pristine = read_file(&path);
    let start = last.frame_offset;
    let end = start + last.frame_bytes;
    for len in start..=end {
        restore(&path, &pristine);
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len).unwrap();
        let report = open_ok(dir.path());
        let whole = len == end;
        let expected_last = if whole { RECORDS } else { RECORDS - 1 };
        assert_eq!(report.last_seq, expected_last, "truncated to {len}");
        // A short file is always reported, even when the cut fell on a frame boundary.
        let torn = report.torn_at.as_ref().expect("short file reported");
        assert_eq!(torn.seq, expected_last + 1);
        assert!(torn.reason.contains("shorter than its header"), "{}", torn.reason);
        assert_eq!(fs::metadata(&path).unwrap().len(), MIN_SEGMENT_BYTES, "length restored");
        assert_clean_reopen(dir.path(), expected_last, report.last_hash);
    }
}

/// Encodes the first `keep` bytes of a frame for `seq` in segment `index` (never its hash),
/// per the documented format.
fn partial_frame(seq: u64, index: u64, payload: &[u8], keep: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&FRAME_MAGIC.to_le_bytes());
    frame.extend_from_slice(&seq.to_le_bytes());
    frame.extend_from_slice(payload);
    frame.resize(16 + payload.len().div_ceil(16) * 16, 0);
    frame.extend_from_slice(&index.to_le_bytes());
    frame.truncate(keep);
    frame
}

#[test]
fn a_torn_write_after_a_valid_log_is_cut_and_reported() {
    let (dir, placed) = build();
    let last = record(&placed, RECORDS);
    let path = segment_file(dir.path(), last.segment_index);
    let pristine = read_file(&path);
    let end = last.frame_offset + last.frame_bytes;
    let payload = vec![0x5Au8; 100];
    // (bytes written at `end`, expected truncated bytes, reason fragment)
    let cases: Vec<(Vec<u8>, u64, &str)> = vec![
        (partial_frame(RECORDS + 1, 3, &payload, 8), 8, "frame seq 0"),
        // Up to the last non-zero byte: seq 801 = 0x321 ends at offset 10.
        (partial_frame(RECORDS + 1, 3, &payload, 16), 10, "names segment 0"),
        (partial_frame(RECORDS + 1, 3, &payload, 16 + 40), 56, "names segment 0"),
        (partial_frame(RECORDS + 1, 3, &payload, 16 + 100), 116, "names segment 0"),
        (partial_frame(RECORDS + 1, 3, &payload, 16 + 112 + 8), 16 + 112 + 1, "hash mismatch"),
    ];
    for (bytes, truncated, reason) in cases {
        restore(&path, &pristine);
        write_at(&path, end, &bytes);
        let report = open_ok(dir.path());
        assert_eq!((report.last_seq, report.last_hash), (RECORDS, last.hash));
        let torn = report.torn_at.expect("torn tail");
        assert_eq!((torn.seq, torn.offset), (RECORDS + 1, end));
        assert!(torn.reason.contains(reason), "{} lacks {reason}", torn.reason);
        assert_eq!(report.truncated_bytes, truncated);
        assert_clean_reopen(dir.path(), RECORDS, last.hash);
    }
    // Payload bytes whose header word never landed: an uncommitted frame, within one frame.
    restore(&path, &pristine);
    write_at(&path, end + 16, &payload);
    let report = open_ok(dir.path());
    assert_eq!(report.last_seq, RECORDS);
    let torn = report.torn_at.expect("torn tail");
    assert!(torn.reason.contains("uncommitted"), "{}", torn.reason);
    assert_eq!(report.truncated_bytes, 116);
    write_deterministic(dir.path(), RECORDS + 1..=RECORDS + 3);
    assert_eq!(verify_deterministic(dir.path(), 1), RECORDS + 3);
}

#[test]
fn bytes_beyond_what_one_torn_frame_could_write_are_corruption() {
    let (dir, placed) = build();
    let last = record(&placed, RECORDS);
    let path = segment_file(dir.path(), last.segment_index);
    let pristine = read_file(&path);
    let end = last.frame_offset + last.frame_bytes;
    // A torn frame claiming 100 bytes, and a stray byte after its extent.
    write_at(&path, end, &partial_frame(RECORDS + 1, 3, &[1u8; 100], 60));
    write_at(&path, end + 200, &[0xFF]);
    let (seq, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (RECORDS + 1, path.clone()));
    assert!(reason.contains("non-zero byte at offset"), "{reason}");
    // A stray byte further than any frame could reach after the end.
    restore(&path, &pristine);
    write_at(&path, end + MAX_FRAME_BYTES + 8, &[1]);
    let (seq, _, reason) = expect_corrupt(open(dir.path()));
    assert_eq!(seq, RECORDS + 1);
    assert!(reason.contains("non-zero byte"), "{reason}");
    assert_eq!(read_file(&path)[(end + MAX_FRAME_BYTES + 8) as usize], 1, "nothing modified");
}

/// The first seq whose frame intersects `from..to` of segment `index`.
fn first_seq_touching(placed: &[Placed], index: u64, from: u64, to: u64) -> u64 {
    placed
        .iter()
        .find(|p| p.segment_index == index && p.frame_offset < to && p.frame_offset + p.frame_bytes > from)
        .unwrap()
        .seq
}

#[test]
fn a_zeroed_page_in_the_middle_is_corruption_naming_the_first_damaged_seq() {
    for index in [2u64, 3] {
        let (dir, placed) = build();
        let path = segment_file(dir.path(), index);
        let before = read_file(&path);
        let (from, to) = (8192, 12288);
        zero_range(&path, from, to);
        let expected = first_seq_touching(&placed, index, from, to);
        let (seq, file, reason) = expect_corrupt(open(dir.path()));
        assert_eq!((seq, &file), (expected, &path), "segment {index}: {reason}");
        let mut after = before.clone();
        after[from as usize..to as usize].fill(0);
        assert_eq!(read_file(&path), after, "refusal modifies nothing");
        // The reader yields only verified records before the damage, then stops or errs.
        let reader = JournalReader::open(dir.path());
        if let Ok(reader) = reader {
            let good: Vec<u64> = reader.iter().map_while(Result::ok).map(|r| r.seq).collect();
            assert_eq!(good, (1..expected).collect::<Vec<_>>());
        }
    }
}

#[test]
fn flipped_bits_mid_log_are_corruption_and_in_the_last_record_a_torn_tail() {
    let mid = 400;
    // (what, offset within the frame of record `mid` to flip)
    let (_, placed) = build();
    let r = record(&placed, mid);
    let cases = [
        ("payload", 16 + r.payload_len / 2),
        ("length", 0),
        ("magic", 5),
        ("seq", 9),
        ("segment index", r.frame_bytes - 15),
        ("hash", r.frame_bytes - 3),
    ];
    for (what, at) in cases {
        let (dir, placed) = build();
        let r = record(&placed, mid);
        let path = segment_file(dir.path(), r.segment_index);
        flip_bit(&path, r.frame_offset + at, 2);
        let (seq, file, reason) = expect_corrupt(open(dir.path()));
        assert_eq!((seq, file), (mid, path), "{what}: {reason}");
    }
    for (what, at) in [("payload", 30), ("length", 1), ("hash", 0)] {
        let (dir, placed) = build();
        let last = record(&placed, RECORDS);
        let at = if what == "hash" { last.frame_bytes - 8 } else { at };
        flip_bit(&segment_file(dir.path(), 3), last.frame_offset + at, 0);
        let report = open_ok(dir.path());
        assert_eq!(report.last_seq, RECORDS - 1, "{what}");
        assert_eq!(report.torn_at.map(|t| t.seq), Some(RECORDS), "{what}");
    }
}

#[test]
fn flipped_bits_in_segment_headers_are_corruption() {
    for (index, byte) in [(1u64, 3u64), (2, 30), (3, 60), (2, 50)] {
        let (dir, placed) = build();
        let path = segment_file(dir.path(), index);
        flip_bit(&path, byte, 4);
        let expected = if index == 1 { 0 } else { first_seq_of_segment(&placed, index) };
        let (seq, file, reason) = expect_corrupt(open(dir.path()));
        assert_eq!((seq, file), (expected, path.clone()), "segment {index} byte {byte}");
        assert!(reason.contains("checksum") || reason.contains("magic"), "{reason}");
        assert!(matches!(JournalReader::open(dir.path()), Err(JournalError::Corrupt { .. })));
    }
}

/// Rewrites a header field and its checksum, as a buggy or malicious writer would.
fn rewrite_header(path: &Path, field_at: usize, value: u64) {
    let mut header = read_file(path)[..64].to_vec();
    header[field_at..field_at + 8].copy_from_slice(&value.to_le_bytes());
    let mut covered = header[..48].to_vec();
    covered.extend_from_slice(&header[56..64]);
    header[48..56].copy_from_slice(&xxh3_64(&covered).to_le_bytes());
    write_at(path, 0, &header);
}

#[test]
fn a_header_that_does_not_continue_the_chain_is_corruption() {
    let (dir, placed) = build();
    let path = segment_file(dir.path(), 2);
    let first = first_seq_of_segment(&placed, 2);
    rewrite_header(&path, 56, 0x1234); // prev_hash
    let (seq, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (first, path.clone()));
    assert!(reason.contains("chain broken"), "{reason}");
    assert!(matches!(JournalReader::open(dir.path()), Err(JournalError::Corrupt { seq, .. }) if seq == first));

    let (dir, placed) = build();
    let path = segment_file(dir.path(), 3);
    let first = first_seq_of_segment(&placed, 3);
    rewrite_header(&path, 24, first + 1); // first_seq
    let (seq, _, reason) = expect_corrupt(open(dir.path()));
    assert_eq!(seq, first);
    assert!(reason.contains("chain broken"), "{reason}");

    let (dir, _) = build();
    rewrite_header(&segment_file(dir.path(), 1), 56, 99); // genesis
    let (seq, _, reason) = expect_corrupt(open(dir.path()));
    assert_eq!(seq, 1);
    assert!(reason.contains("genesis"), "{reason}");
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let (dir, placed) = build();
    fs::remove_file(segment_file(dir.path(), 2)).unwrap();
    let (seq, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (first_seq_of_segment(&placed, 2), segment_file(dir.path(), 2)));
    assert!(reason.contains("missing"), "{reason}");
    assert!(matches!(JournalReader::open(dir.path()), Err(JournalError::Corrupt { .. })));
}

#[test]
fn a_missing_first_segment_is_corruption() {
    let (dir, _) = build();
    fs::remove_file(segment_file(dir.path(), 1)).unwrap();
    let (seq, file, _) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (0, segment_file(dir.path(), 1)));
}

#[test]
fn swapped_segment_names_are_corruption() {
    let (dir, placed) = build();
    let (two, three) = (segment_file(dir.path(), 2), segment_file(dir.path(), 3));
    let tmp = dir.path().join("swap");
    fs::rename(&two, &tmp).unwrap();
    fs::rename(&three, &two).unwrap();
    fs::rename(&tmp, &three).unwrap();
    let (seq, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (first_seq_of_segment(&placed, 2), two));
    assert!(reason.contains("header says segment 3"), "{reason}");
    assert!(matches!(JournalReader::open(dir.path()), Err(JournalError::Corrupt { .. })));
}

#[test]
fn a_record_copied_from_another_segment_is_caught() {
    let (dir, placed) = build();
    // Overwrite segment 3's second record with segment 2's frame of the same length class.
    let donor = placed.iter().find(|p| p.segment_index == 2).unwrap();
    let target = placed.iter().filter(|p| p.segment_index == 3).nth(1).unwrap();
    let donor_bytes = read_file(&segment_file(dir.path(), 2));
    let frame = &donor_bytes[donor.frame_offset as usize..(donor.frame_offset + donor.frame_bytes) as usize];
    write_at(&segment_file(dir.path(), 3), target.frame_offset, frame);
    let (seq, _, reason) = expect_corrupt(open(dir.path()));
    assert_eq!(seq, target.seq, "{reason}");
}

#[test]
fn a_zeroed_first_record_of_the_last_segment_leaves_an_empty_segment_to_continue_in() {
    // Segment 3's records were all appended after the last commit (a power loss in Batch can
    // lose every one of them): zeroed, they leave an empty segment to continue in.
    let (dir, placed) = build();
    let first = first_seq_of_segment(&placed, 3);
    let dir_uncommitted = scratch_dir();
    write_deterministic(dir_uncommitted.path(), 1..=first - 1);
    append_uncommitted(dir_uncommitted.path(), first..=RECORDS);
    for (dir, committed) in [(dir.path(), true), (dir_uncommitted.path(), false)] {
        let path = segment_file(dir, 3);
        zero_range(&path, 64, MIN_SEGMENT_BYTES);
        if committed {
            // Committed records are never cut: their loss is corruption, named at segment 3.
            let (seq, file, reason) = expect_corrupt(open(dir));
            assert_eq!((seq, file), (first, path), "{reason}");
            continue;
        }
        let report = open_ok(dir);
        assert_eq!(report.last_seq, first - 1);
        assert_eq!(report.last_hash, record(&placed, first - 1).hash);
        assert_eq!((report.torn_at, report.segments), (None, 3));
        assert!(matches!(
            open(dir).unwrap().0.append(first + 1, b"x"),
            Err(JournalError::SeqOutOfOrder { expected, .. }) if expected == first
        ));
        write_deterministic(dir, first..=first + 10);
        assert_eq!(verify_deterministic(dir, 1), first + 10);
        assert_eq!(JournalReader::open(dir).unwrap().segment_count(), 3);
    }
}

#[test]
fn a_crash_during_recovery_then_recovery_again_gives_the_same_result() {
    let (dir, placed) = build();
    let last = record(&placed, RECORDS);
    let path = segment_file(dir.path(), 3);
    let start = last.frame_offset;
    let end = start + last.frame_bytes;
    // Tear the last record (its hash never landed), then apply every partial version of the
    // cut recovery makes: a prefix or a suffix of the zeroing of the frame's body (the first
    // word is zeroed last, in one aligned store), or everything.
    zero_range(&path, end - 8, end);
    let torn = read_file(&path);
    for split in start + 8..end {
        for (from, to) in [(start + 8, split), (split, end), (start, end)] {
            restore(&path, &torn);
            zero_range(&path, from, to);
            let report = open_ok(dir.path());
            let prev = record(&placed, RECORDS - 1);
            assert_eq!((report.last_seq, report.last_hash), (RECORDS - 1, prev.hash));
            assert_clean_reopen(dir.path(), RECORDS - 1, prev.hash);
        }
    }
}

#[test]
fn a_stale_tmp_segment_from_a_crash_during_creation_is_ignored_and_removed() {
    let (dir, _) = build();
    let tmp = dir.path().join(format!("{:020}.seg.tmp", 4));
    fs::write(&tmp, vec![7u8; 4096]).unwrap();
    let report = open_ok(dir.path());
    assert_eq!((report.last_seq, report.segments, report.torn_at), (RECORDS, 3, None));
    assert!(!tmp.exists());
    write_deterministic(dir.path(), RECORDS + 1..=RECORDS + 400);
    assert_eq!(verify_deterministic(dir.path(), 1), RECORDS + 400);
}

/// The outcome one flipped byte must have.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Corrupt(u64),
    Torn { last_seq: u64 },
}

/// The exact outcome of damaging byte `at` of segment `index`, when the last record is
/// committed or not.
fn expected_outcome(placed: &[Placed], index: u64, at: u64, last_committed: bool) -> Expect {
    let last = placed.last().unwrap();
    if at < 64 {
        return Expect::Corrupt(if index == 1 { 0 } else { first_seq_of_segment(placed, index) });
    }
    let hit =
        placed.iter().find(|p| p.segment_index == index && p.frame_offset <= at && at < p.frame_offset + p.frame_bytes);
    match hit {
        Some(p) if p.seq == last.seq && !last_committed => Expect::Torn { last_seq: last.seq - 1 },
        Some(p) => Expect::Corrupt(p.seq),
        None => {
            // Zeroed space after a segment's last record.
            let next = placed.iter().rev().find(|p| p.segment_index == index).unwrap().seq + 1;
            let end = last.frame_offset + last.frame_bytes;
            if index == last.segment_index && at < end + MAX_FRAME_BYTES {
                Expect::Torn { last_seq: last.seq }
            } else {
                Expect::Corrupt(next)
            }
        }
    }
}

/// Offsets to damage in segment `index`: every byte of headers, frame headers, hashes and
/// padding, a sample of payload bytes, and a sample of the zeroed space.
fn offsets_to_damage(placed: &[Placed], index: u64) -> Vec<u64> {
    let mut offsets: Vec<u64> = (0..64).collect();
    let frames: Vec<&Placed> = placed.iter().filter(|p| p.segment_index == index).collect();
    for p in &frames {
        let payload_end = p.frame_offset + 16 + p.payload_len;
        offsets.extend(p.frame_offset..p.frame_offset + 16);
        offsets.extend((p.frame_offset + 16..payload_end).step_by(37));
        offsets.extend(payload_end..p.frame_offset + p.frame_bytes);
    }
    let end = frames.last().map_or(64, |p| p.frame_offset + p.frame_bytes);
    offsets.extend((end..MIN_SEGMENT_BYTES).step_by(997));
    offsets.push(MIN_SEGMENT_BYTES - 1);
    offsets
}

/// Flips one bit at every offset of [`offsets_to_damage`] in turn, recovers, and compares with
/// [`expected_outcome`]; the segment and the commit mark are restored after each.
fn flip_every_offset_and_recover(last_committed: bool) {
    let dir = scratch_dir();
    // Just over one segment: two segments.
    if last_committed {
        write_deterministic(dir.path(), 1..=360);
    } else {
        write_deterministic(dir.path(), 1..=359);
        append_uncommitted(dir.path(), 360..=360);
    }
    let placed = placements(dir.path());
    let last = *placed.last().unwrap();
    assert_eq!(last.segment_index, 2);
    let originals: Vec<Vec<u8>> = placed
        .iter()
        .map(|p| {
            let mut payload = Vec::new();
            deterministic_payload(p.seq, &mut payload);
            payload
        })
        .collect();
    // Recovery advances the mark to what it keeps: restore it with the segment.
    let pristine_mark = read_file(&mark_file(dir.path()));
    let mut checked = 0;
    for index in [1u64, 2] {
        let path = segment_file(dir.path(), index);
        let pristine = read_file(&path);
        for at in offsets_to_damage(&placed, index) {
            let bit = (at % 8) as u8;
            flip_bit(&path, at, bit);
            // The reader never yields a damaged record.
            if let Ok(reader) = JournalReader::open(dir.path()) {
                for record in reader.iter().map_while(Result::ok) {
                    assert_eq!(record.payload, &originals[(record.seq - 1) as usize][..]);
                }
            }
            let expected = expected_outcome(&placed, index, at, last_committed);
            let outcome = match open(dir.path()) {
                Err(JournalError::Corrupt { seq, .. }) => Expect::Corrupt(seq),
                Err(other) => panic!("segment {index} byte {at}: {other}"),
                Ok((_, report)) => {
                    assert!(report.torn_at.is_some(), "segment {index} byte {at} accepted silently");
                    Expect::Torn { last_seq: report.last_seq }
                }
            };
            assert_eq!(outcome, expected, "segment {index} byte {at} bit {bit} (last committed: {last_committed})");
            restore(&path, &pristine);
            restore(&mark_file(dir.path()), &pristine_mark);
            checked += 1;
        }
    }
    assert!(checked > 2000, "checked {checked} positions");
    assert_clean_reopen(dir.path(), last.seq, last.hash);
}

#[test]
fn any_flipped_bit_is_refused_or_cut_exactly_as_predicted() {
    flip_every_offset_and_recover(false);
}

#[test]
fn any_flipped_bit_in_a_fully_committed_journal_is_refused_unless_beyond_the_last_record() {
    flip_every_offset_and_recover(true);
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Arbitrary bytes anywhere in a segment never panic recovery or the reader, and never
        /// make either yield a record that was not appended.
        #[test]
        fn arbitrary_garbage_never_panics_or_forges_records(
            at in 0u64..4096,
            garbage in proptest::collection::vec(any::<u8>(), 1..600),
        ) {
            let dir = scratch_dir();
            write_deterministic(dir.path(), 1..=20);
            let path = segment_file(dir.path(), 1);
            write_at(&path, at, &garbage);
            if let Ok(reader) = JournalReader::open(dir.path()) {
                let mut payload = Vec::new();
                for record in reader.iter().map_while(Result::ok) {
                    deterministic_payload(record.seq, &mut payload);
                    prop_assert_eq!(record.payload, &payload[..]);
                }
            }
            match open(dir.path()) {
                Ok((_, report)) => prop_assert!(report.last_seq <= 20),
                Err(JournalError::Corrupt { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected error {}", other),
            }
            if let Ok(reader) = JournalReader::open(dir.path()) {
                let mut payload = Vec::new();
                for record in reader.iter().map_while(Result::ok) {
                    deterministic_payload(record.seq, &mut payload);
                    prop_assert_eq!(record.payload, &payload[..]);
                }
            }
        }
    }
}

#[test]
fn damage_in_a_closed_segment_is_named_in_that_segment_with_its_offset_by_the_reader_and_recovery() {
    let (dir, placed) = build();
    // A record in the middle of segment 2 (segment 3 follows it).
    let victim = *placed.iter().filter(|p| p.segment_index == 2).nth(40).unwrap();
    let path = segment_file(dir.path(), 2);
    flip_bit(&path, victim.frame_offset + 16 + victim.payload_len / 2, 5);
    let offset = format!("offset {}", victim.frame_offset);
    let err = JournalReader::open(dir.path()).map(|_| ()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, JournalError::Corrupt { seq, file, .. } if *seq == victim.seq && *file == path),
        "the reader names segment 2 and seq {}: {message}",
        victim.seq
    );
    assert!(message.contains(&offset) && message.contains("hash mismatch"), "{message}");
    let err = open(dir.path()).map(|_| ()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, JournalError::Corrupt { seq, file, .. } if *seq == victim.seq && *file == path),
        "{message}"
    );
    assert!(message.contains(&offset), "recovery names the offset: {message}");
}
