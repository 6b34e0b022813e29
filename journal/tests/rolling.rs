//! Segment rolls with the roller thread: the next segment is prepared ahead (as `.seg.tmp`),
//! published at the roll with records contiguous across segments, and a prepared segment no
//! roll took is deleted when the writer closes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use verex_journal::test_support::deterministic_payload;
use verex_journal::{Durability, JournalError, JournalReader, JournalWriter, MIN_SEGMENT_BYTES};

fn tmp_segment(dir: &Path, index: u64) -> std::path::PathBuf {
    dir.join(format!("{index:020}.seg.tmp"))
}

/// Waits (up to 10 s) until `path` exists.
fn eventually_exists(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".seg"))
        .collect();
    names.sort();
    names
}

fn rolls_keep_records_contiguous(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), durability)).unwrap();
    assert!(eventually_exists(&tmp_segment(dir.path(), 1)), "segment 1 is prepared ahead of the first append");
    let mut payload = Vec::new();
    let mut seq = 0;
    for segment in 1..=4u64 {
        // Fill the active segment until the writer rolls to the prepared one.
        while JournalReader::open(dir.path()).unwrap().segment_count() < segment as usize {
            seq += 1;
            deterministic_payload(seq, &mut payload);
            writer.append(seq, &payload).unwrap();
            if seq % 7 == 0 {
                writer.commit().unwrap();
            }
        }
        assert!(!tmp_segment(dir.path(), segment).exists(), "segment {segment} was renamed into place");
        assert!(eventually_exists(&tmp_segment(dir.path(), segment + 1)), "segment {} is prepared", segment + 1);
    }
    assert_eq!(writer.commit().unwrap(), seq);
    drop(writer);
    let names = segment_files(dir.path());
    assert_eq!(names, (1..=4).map(|i| format!("{i:020}.seg")).collect::<Vec<_>>(), "no .seg.tmp is left behind");
    for name in &names {
        assert_eq!(std::fs::metadata(dir.path().join(name)).unwrap().len(), MIN_SEGMENT_BYTES);
    }
    assert_eq!(verify_deterministic(dir.path(), 1), seq, "every record, in order, across the rolls");
    let (_, report) = JournalWriter::open(config(dir.path(), durability)).unwrap();
    assert_eq!((report.last_seq, report.segments, report.torn_at), (seq, 4, None));
}

#[test]
fn batch_rolls_to_prepared_segments_keep_records_contiguous() {
    rolls_keep_records_contiguous(Durability::Batch);
}

#[test]
fn async_rolls_to_prepared_segments_keep_records_contiguous() {
    rolls_keep_records_contiguous(Durability::Async);
}

#[test]
fn sync_rolls_to_prepared_segments_keep_records_contiguous() {
    rolls_keep_records_contiguous(Durability::Sync);
}

#[test]
fn a_failed_background_sync_of_a_finished_async_segment_poisons_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Async)).unwrap();
    writer.fail_next_sync_for_tests();
    let mut seq = 0;
    while JournalReader::open(dir.path()).unwrap().segment_count() < 2 {
        seq += 1;
        writer.append(seq, &[3u8; 1000]).unwrap();
    }
    // The roll handed the finished segment to the roller, whose msync fails; the writer
    // learns it at its next commit (or roll) at the latest, and is poisoned for good.
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match writer.commit() {
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(durable) => panic!("the failed background sync was never reported (durable {durable})"),
            Err(err) => break err,
        }
    };
    assert!(matches!(err, JournalError::SyncFailed { .. }), "{err}");
    assert!(writer.is_poisoned());
    assert!(matches!(writer.append(seq + 1, b"x"), Err(JournalError::Poisoned)));
    drop(writer);
    // Nothing appended is lost to a process that merely stops: the page cache has it all.
    let (_, report) = JournalWriter::open(config(dir.path(), Durability::Batch)).unwrap();
    assert_eq!(report.last_seq, seq);
}

#[test]
fn a_full_disk_while_preparing_a_segment_leaves_no_seg_tmp_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Batch)).unwrap();
    assert!(eventually_exists(&tmp_segment(dir.path(), 1)), "segment 1 is prepared at open");
    // The first append takes segment 1 and asks for segment 2, whose preallocation fails
    // with ENOSPC after its `.seg.tmp` file was created.
    writer.fail_next_segment_prepare_for_tests();
    let mut payload = Vec::new();
    deterministic_payload(1, &mut payload);
    writer.append(1, &payload).unwrap();
    let mut seq = 1;
    let err = loop {
        seq += 1;
        deterministic_payload(seq, &mut payload);
        match writer.append(seq, &payload) {
            Ok(()) => {}
            Err(err) => break err,
        }
    };
    let message = err.to_string();
    assert!(matches!(err, JournalError::Io { .. }), "{message}");
    assert!(message.contains("00000000000000000002.seg.tmp") && message.contains("No space left"), "{message}");
    assert!(writer.is_poisoned());
    assert_eq!(segment_files(dir.path()), vec![format!("{:020}.seg", 1)], "no stray .seg.tmp on a full disk");
    drop(writer);
    // Nothing appended before the failure is lost.
    let (_, report) = JournalWriter::open(config(dir.path(), Durability::Batch)).unwrap();
    assert_eq!(report.last_seq, seq - 1);
    assert_eq!(verify_deterministic(dir.path(), 1), seq - 1);
}
