//! The commit mark (SPEC section 8): a torn tail can only lie beyond the last commit. Damage
//! to a committed record is corruption, never cut; a missing segment, the newest included, is
//! detected by recovery and by the reader; errors name the file and the offset.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use verex_journal::test_support::deterministic_payload;
use verex_journal::{JournalError, JournalReader, MIN_SEGMENT_BYTES};

const RECORDS: u64 = 800;

/// A journal of `RECORDS` committed records over three 64 KiB segments.
fn committed_journal() -> (tempfile::TempDir, Vec<Placed>) {
    let dir = scratch_dir();
    write_deterministic(dir.path(), 1..=RECORDS);
    let placed = placements(dir.path());
    assert_eq!(placed.last().unwrap().segment_index, 3, "fixture spans three segments");
    (dir, placed)
}

/// Unwraps a reader's `Corrupt` error into `(seq, file, message)`.
fn reader_corrupt(dir: &Path) -> (u64, std::path::PathBuf, String) {
    match JournalReader::open(dir) {
        Err(err @ JournalError::Corrupt { .. }) => {
            let message = err.to_string();
            let JournalError::Corrupt { seq, file, .. } = err else { unreachable!() };
            (seq, file, message)
        }
        Err(other) => panic!("expected Corrupt from the reader, got {other}"),
        Ok(reader) => panic!("the reader opened a damaged journal: next seq {}", reader.next_seq()),
    }
}

#[test]
fn a_flipped_bit_in_the_last_committed_record_is_corruption_never_a_torn_tail() {
    let (dir, placed) = committed_journal();
    let last = *placed.last().unwrap();
    let path = segment_file(dir.path(), last.segment_index);
    // One payload bit of the last record: its stored hash is intact, its events were released.
    flip_bit(&path, last.frame_offset + 16 + last.payload_len / 2, 3);
    let damaged = read_file(&path);
    let err = open(dir.path()).err().unwrap_or_else(|| panic!("recovery accepted a damaged committed record"));
    let message = err.to_string();
    let (seq, file, _) = expect_corrupt(Err(err));
    assert_eq!((seq, &file), (RECORDS, &path), "{message}");
    assert!(message.contains(&format!("offset {}", last.frame_offset)), "names the offset: {message}");
    assert!(message.contains("commit"), "says the record was committed: {message}");
    assert_eq!(read_file(&path), damaged, "nothing is cut");
    let (seq, file, message) = reader_corrupt(dir.path());
    assert_eq!((seq, &file), (RECORDS, &path), "{message}");
    assert!(message.contains(&format!("offset {}", last.frame_offset)), "{message}");
}

#[test]
fn a_zeroed_or_truncated_committed_record_is_corruption_never_a_torn_tail() {
    let (dir, placed) = committed_journal();
    let last = *placed.last().unwrap();
    let path = segment_file(dir.path(), last.segment_index);
    let pristine = read_file(&path);
    let end = last.frame_offset + last.frame_bytes;
    // The hash that never landed, the whole record zeroed, the file cut inside the record.
    zero_range(&path, end - 8, end);
    let (seq, file, _) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (RECORDS, path.clone()));
    fs::write(&path, &pristine).unwrap();
    zero_range(&path, last.frame_offset, end);
    let (seq, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (RECORDS, path.clone()), "{reason}");
    fs::write(&path, &pristine).unwrap();
    fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(last.frame_offset + 40).unwrap();
    let (seq, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, file), (RECORDS, path.clone()), "{reason}");
    assert_eq!(fs::metadata(&path).unwrap().len(), last.frame_offset + 40, "the short file is not extended");
}

#[test]
fn a_deleted_last_segment_is_detected_by_recovery_and_the_reader() {
    let (dir, placed) = committed_journal();
    let first_of_three = placed.iter().find(|p| p.segment_index == 3).unwrap().seq;
    let three = segment_file(dir.path(), 3);
    fs::remove_file(&three).unwrap();
    let (seq, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!((seq, &file), (first_of_three, &three), "{reason}");
    assert!(reason.contains("missing"), "{reason}");
    let (seq, file, message) = reader_corrupt(dir.path());
    assert_eq!((seq, &file), (first_of_three, &three), "{message}");
    assert!(!three.exists(), "nothing is recreated");
}

#[test]
fn a_deleted_newest_segment_holding_no_committed_record_is_detected() {
    // Records 1..=500 are committed (segments 1 and 2); 501..=800 are appended but never
    // committed, rolling into segment 3. Segment 3 was created, so its loss is damage even
    // though none of its records had been released.
    let dir = scratch_dir();
    write_deterministic(dir.path(), 1..=500);
    assert_eq!(JournalReader::open(dir.path()).unwrap().segment_count(), 2);
    let (mut writer, _) = open(dir.path()).unwrap();
    let mut payload = Vec::new();
    for seq in 501..=RECORDS {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).unwrap();
    }
    drop(writer);
    let three = segment_file(dir.path(), 3);
    assert!(three.exists());
    fs::remove_file(&three).unwrap();
    let (_, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!(file, three, "{reason}");
    let (_, file, message) = reader_corrupt(dir.path());
    assert_eq!(file, three, "{message}");
}

// ---------------------------------------------------------------------------------------
// The mark file itself: two copies, torn writes, a missing mark
// ---------------------------------------------------------------------------------------

/// Offsets of the two copies of the mark (documented in `verex_journal::mark`).
const COPY_OFFSETS: [u64; 2] = [0, 4096];

/// The offset of the copy with the highest generation, read from the raw file.
fn newest_copy(dir: &Path) -> u64 {
    let bytes = read_file(&mark_file(dir));
    let generation = |at: u64| u64::from_le_bytes(bytes[at as usize + 16..at as usize + 24].try_into().unwrap());
    *COPY_OFFSETS.iter().max_by_key(|&&at| generation(at)).unwrap()
}

fn committed_seq(dir: &Path) -> u64 {
    JournalReader::open(dir).unwrap().commit_mark().expect("a mark").committed_seq
}

#[test]
fn a_torn_newest_copy_of_the_mark_falls_back_to_the_previous_commit() {
    let dir = scratch_dir();
    write_deterministic(dir.path(), 1..=500);
    // The next session's open writes the mark (500), its commit the next one (520).
    write_deterministic(dir.path(), 501..=520);
    assert_eq!(committed_seq(dir.path()), 520);
    // A crash in the middle of the mark write of the commit of 501..=520: that commit never
    // returned, so none of its events were released, and the previous copy (500) rules.
    let newest = newest_copy(dir.path());
    write_at(&mark_file(dir.path()), newest + 20, &[0xA5; 30]);
    assert_eq!(committed_seq(dir.path()), 500, "the other copy is used");
    let placed = placements(dir.path());
    let last = *placed.last().unwrap();
    assert_eq!(last.seq, 520);
    // Records beyond the surviving mark may be torn: a damaged last record is cut...
    flip_bit(&segment_file(dir.path(), last.segment_index), last.frame_offset + 20, 1);
    let report = open(dir.path()).map(|(_, report)| report).unwrap();
    assert_eq!((report.last_seq, report.torn_at.map(|t| t.seq)), (519, Some(520)));
    // ...and the writer's open rewrote the mark, the torn copy first, to what it kept.
    assert_eq!(committed_seq(dir.path()), 519);
    assert_eq!(newest_copy(dir.path()), newest, "the torn copy was the next to write");
    // Damage at or below the surviving mark is still refused.
    let victim = placed[300];
    flip_bit(&segment_file(dir.path(), victim.segment_index), victim.frame_offset + 20, 1);
    let (seq, _, _) = expect_corrupt(open(dir.path()));
    assert_eq!(seq, victim.seq);
}

#[test]
fn a_mark_with_both_copies_damaged_is_refused_naming_the_mark_file() {
    let (dir, _) = committed_journal();
    let mark = mark_file(dir.path());
    let before = read_file(&mark);
    for at in COPY_OFFSETS {
        flip_bit(&mark, at + 30, 0);
    }
    let (_, file, reason) = expect_corrupt(open(dir.path()));
    assert_eq!(file, mark);
    assert!(reason.contains("neither copy") && reason.contains("checksum"), "{reason}");
    let (_, file, message) = reader_corrupt(dir.path());
    assert_eq!(file, mark, "{message}");
    let mut after = before.clone();
    for at in COPY_OFFSETS {
        after[at as usize + 30] ^= 1;
    }
    assert_eq!(read_file(&mark), after, "refusal modifies nothing");
}

#[test]
fn segments_without_a_commit_mark_are_refused_by_recovery_and_the_reader() {
    let (dir, _) = committed_journal();
    fs::remove_file(mark_file(dir.path())).unwrap();
    let err = open(dir.path()).map(|_| ()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, JournalError::MarkMissing { segments: 3, .. }), "{message}");
    assert!(message.contains("commit.mark") && message.contains("format version 2"), "{message}");
    assert!(matches!(JournalReader::open(dir.path()), Err(JournalError::MarkMissing { segments: 3, .. })));
    assert!(!mark_file(dir.path()).exists(), "no mark is invented");
    // A directory with neither segments nor a mark is a new journal: the mark comes first.
    let fresh = scratch_dir();
    let (writer, report) = open(fresh.path()).unwrap();
    assert_eq!((report.last_seq, report.segments), (0, 0));
    assert!(mark_file(fresh.path()).exists());
    drop(writer);
}

// ---------------------------------------------------------------------------------------
// Crash points: every step of creating, rolling and committing recovers
// ---------------------------------------------------------------------------------------

#[test]
fn a_crash_while_creating_the_mark_of_a_new_journal_leaves_a_new_journal() {
    let dir = scratch_dir();
    // The crash came before the rename: only the temporary file exists.
    fs::write(dir.path().join("commit.mark.tmp"), [7u8; 100]).unwrap();
    let (writer, report) = open(dir.path()).unwrap();
    assert_eq!((report.last_seq, report.segments), (0, 0));
    assert!(!dir.path().join("commit.mark.tmp").exists(), "the stale temporary file is removed");
    drop(writer);
    write_deterministic(dir.path(), 1..=10);
    assert_eq!(verify_deterministic(dir.path(), 1), 10);
}

#[test]
fn a_crash_between_creating_the_first_segment_and_recording_it_in_the_mark_recovers() {
    for keep_records in [false, true] {
        let dir = scratch_dir();
        drop(open(dir.path()).unwrap());
        let mark_before = read_file(&mark_file(dir.path()));
        // The first append creates segment 1 and records it in the mark, then writes record 1.
        append_uncommitted(dir.path(), 1..=5);
        // Put the mark back as it was: the crash came after segment 1 was published and before
        // the mark recorded it (and, without `keep_records`, before any record landed).
        fs::write(mark_file(dir.path()), &mark_before).unwrap();
        if !keep_records {
            zero_range(&segment_file(dir.path(), 1), 64, MIN_SEGMENT_BYTES);
        }
        let expected = if keep_records { 5 } else { 0 };
        let report = open(dir.path()).map(|(_, report)| report).unwrap();
        assert_eq!((report.last_seq, report.segments, report.torn_at), (expected, 1, None));
        assert_eq!(JournalReader::open(dir.path()).unwrap().commit_mark().unwrap().last_segment, 1);
        write_deterministic(dir.path(), expected + 1..=expected + 300);
        assert_eq!(verify_deterministic(dir.path(), 1), expected + 300);
    }
}

#[test]
fn a_crash_between_rolling_to_a_new_segment_and_recording_it_in_the_mark_recovers() {
    let dir = scratch_dir();
    write_deterministic(dir.path(), 1..=500);
    let mark_before = read_file(&mark_file(dir.path()));
    assert_eq!(JournalReader::open(dir.path()).unwrap().segment_count(), 2);
    // Appends that fill segment 2 and roll into segment 3, never committed.
    append_uncommitted(dir.path(), 501..=RECORDS);
    let placed = placements(dir.path());
    let last_of_two = placed.iter().rev().find(|p| p.segment_index == 2).unwrap().seq;
    // The crash: segment 3 is published, the roll's mark write and everything after it never
    // happened (the records of segment 2 were msynced by the roll: they are there).
    fs::write(mark_file(dir.path()), &mark_before).unwrap();
    zero_range(&segment_file(dir.path(), 3), 64, MIN_SEGMENT_BYTES);
    let report = open(dir.path()).map(|(_, report)| report).unwrap();
    assert_eq!((report.last_seq, report.segments, report.torn_at), (last_of_two, 3, None));
    let mark = JournalReader::open(dir.path()).unwrap().commit_mark().unwrap();
    assert_eq!((mark.committed_seq, mark.last_segment), (last_of_two, 3), "recovery records what it kept");
    // Segment 3, empty but known to the mark now, cannot go missing unnoticed.
    let three = segment_file(dir.path(), 3);
    let saved = read_file(&three);
    fs::remove_file(&three).unwrap();
    let (_, file, _) = expect_corrupt(open(dir.path()));
    assert_eq!(file, three);
    fs::write(&three, saved).unwrap();
    write_deterministic(dir.path(), last_of_two + 1..=RECORDS + 100);
    assert_eq!(verify_deterministic(dir.path(), 1), RECORDS + 100);
}

#[test]
fn every_crash_point_of_a_commit_recovers_without_losing_a_committed_record() {
    let dir = scratch_dir();
    write_deterministic(dir.path(), 1..=500);
    let (mut writer, _) = open(dir.path()).unwrap();
    // The mark as the open left it (500): what a crash before the commit's mark write leaves.
    let mark_old = read_file(&mark_file(dir.path()));
    let newest_old = newest_copy(dir.path());
    let mut payload = Vec::new();
    for seq in 501..=520 {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).unwrap();
    }
    assert_eq!(writer.commit().unwrap(), 520);
    drop(writer);
    let mark_new = read_file(&mark_file(dir.path()));
    let newest_new = newest_copy(dir.path());
    assert_ne!(newest_new, newest_old, "consecutive writes alternate copies");
    let mut torn_new = mark_new.clone();
    torn_new[newest_new as usize + 24..newest_new as usize + 40].fill(0x5A);
    let segments: Vec<_> = (1..=2).map(|i| read_file(&segment_file(dir.path(), i))).collect();
    // (the mark file as the crash left it; the records were msynced before the mark write)
    let cases = [("records durable, mark not written", mark_old), ("mark torn", torn_new), ("mark written", mark_new)];
    for (what, mark) in cases {
        fs::write(mark_file(dir.path()), &mark).unwrap();
        for (index, bytes) in segments.iter().enumerate() {
            fs::write(segment_file(dir.path(), index as u64 + 1), bytes).unwrap();
        }
        let report = open(dir.path()).map(|(_, report)| report).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((report.last_seq, report.torn_at), (520, None), "{what}");
        assert_eq!(committed_seq(dir.path()), 520, "{what}");
    }
}
