//! Durability modes and fail-stop: what `durable_seq` promises in each mode, and that a failed
//! sync poisons the writer for good.

mod common;

use common::*;
use verex_journal::{Durability, JournalError, JournalReader, JournalWriter};

fn payload(seq: u64) -> Vec<u8> {
    vec![seq as u8; 40 + (seq % 50) as usize]
}

#[test]
fn sync_mode_makes_each_record_durable_before_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Sync)).unwrap();
    for seq in 1..=20 {
        writer.append(seq, &payload(seq)).unwrap();
        assert_eq!(writer.durable_seq(), seq);
    }
    assert_eq!(writer.commit().unwrap(), 20);
}

#[test]
fn batch_mode_advances_durable_seq_only_at_commit_or_roll() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Batch)).unwrap();
    for seq in 1..=10 {
        writer.append(seq, &payload(seq)).unwrap();
    }
    assert_eq!((writer.durable_seq(), writer.last_seq()), (0, 10));
    assert_eq!(writer.commit().unwrap(), 10);
    assert_eq!(writer.durable_seq(), 10);
    // Rolling to a new segment msyncs the old one completely, whatever the mode.
    let mut seq = 11;
    let mut rolled_at = None;
    while rolled_at.is_none() {
        writer.append(seq, &[7u8; 1000]).unwrap();
        if writer.durable_seq() != 10 {
            rolled_at = Some(seq);
        }
        seq += 1;
    }
    assert_eq!(writer.durable_seq(), rolled_at.unwrap() - 1, "all before the roll");
    assert_eq!(JournalReader::open(dir.path()).unwrap().segment_count(), 2);
}

#[test]
fn async_mode_commit_advances_the_written_mark_without_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Async)).unwrap();
    for seq in 1..=10 {
        writer.append(seq, &payload(seq)).unwrap();
    }
    assert_eq!(writer.durable_seq(), 0);
    writer.fail_next_sync_for_tests();
    // No msync happens in an Async commit, so the injected failure does not fire...
    assert_eq!(writer.commit().unwrap(), 10);
    assert!(!writer.is_poisoned());
    // ...until the writer really syncs: the finished segment, on the roller thread after the
    // roll. The failure surfaces at the next roll (or commit) at the latest.
    let mut seq = 11;
    let err = loop {
        match writer.append(seq, &[1u8; 2000]) {
            Ok(()) => seq += 1,
            Err(err) => break err,
        }
    };
    assert!(matches!(err, JournalError::SyncFailed { .. }), "{err}");
    assert!(matches!(writer.append(seq, b"x"), Err(JournalError::Poisoned)));
}

#[test]
fn a_failed_commit_sync_poisons_the_writer_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Batch)).unwrap();
    for seq in 1..=5 {
        writer.append(seq, &payload(seq)).unwrap();
    }
    writer.commit().unwrap();
    writer.append(6, &payload(6)).unwrap();
    writer.fail_next_sync_for_tests();
    let err = writer.commit().unwrap_err();
    assert!(matches!(&err, JournalError::SyncFailed { file, .. } if file == &segment_file(dir.path(), 1)), "{err}");
    assert!(err.to_string().contains("injected msync failure"));
    assert!(writer.is_poisoned());
    assert_eq!(writer.durable_seq(), 5, "nothing after the failed sync is claimed durable");
    // Never retried: every later call is refused, even though the next msync would succeed.
    assert!(matches!(writer.commit(), Err(JournalError::Poisoned)));
    assert!(matches!(writer.append(7, &payload(7)), Err(JournalError::Poisoned)));
    assert!(matches!(writer.commit(), Err(JournalError::Poisoned)));
    assert_eq!(writer.last_seq(), 6);
    drop(writer);
    // Reopening runs recovery, which decides what is on disk.
    let (writer, report) = open(dir.path()).unwrap();
    assert_eq!(report.last_seq, 6);
    assert_eq!(writer.durable_seq(), 6);
}

#[test]
fn a_failed_sync_in_sync_mode_fails_the_append_and_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Sync)).unwrap();
    writer.append(1, &payload(1)).unwrap();
    writer.fail_next_sync_for_tests();
    assert!(matches!(writer.append(2, &payload(2)), Err(JournalError::SyncFailed { .. })));
    assert_eq!(writer.durable_seq(), 1);
    assert!(matches!(writer.append(3, &payload(3)), Err(JournalError::Poisoned)));
    assert!(matches!(writer.commit(), Err(JournalError::Poisoned)));
}

#[test]
fn error_messages_carry_the_offending_values() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = open(dir.path()).unwrap();
    writer.append(1, b"a").unwrap();
    let err = writer.append(5, b"b").unwrap_err();
    assert_eq!(err.to_string(), "append out of sequence: expected seq 2, got 5");
    let err = writer.append(2, &vec![0u8; 20_000]).unwrap_err();
    assert_eq!(err.to_string(), "payload of 20000 bytes exceeds the maximum of 16384 bytes");
}

#[test]
fn a_failed_sync_of_the_commit_mark_poisons_the_writer_and_the_commit_does_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Batch)).unwrap();
    for seq in 1..=5 {
        writer.append(seq, &payload(seq)).unwrap();
    }
    writer.commit().unwrap();
    writer.append(6, &payload(6)).unwrap();
    writer.fail_next_mark_sync_for_tests();
    let err = writer.commit().unwrap_err();
    assert!(matches!(&err, JournalError::SyncFailed { file, .. } if file == &mark_file(dir.path())), "{err}");
    assert!(writer.is_poisoned());
    assert_eq!(writer.durable_seq(), 5, "a commit whose mark is not durable is not a commit");
    assert!(matches!(writer.commit(), Err(JournalError::Poisoned)));
    drop(writer);
    // Record 6 was msynced before the mark write: recovery keeps it.
    let (_, report) = open(dir.path()).unwrap();
    assert_eq!(report.last_seq, 6);
    // In Sync mode the mark is written (and synced) by every append.
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Sync)).unwrap();
    writer.append(1, &payload(1)).unwrap();
    assert_eq!(JournalReader::open(dir.path()).unwrap().commit_mark().unwrap().committed_seq, 1);
    writer.fail_next_mark_sync_for_tests();
    assert!(matches!(writer.append(2, &payload(2)), Err(JournalError::SyncFailed { .. })));
    assert_eq!(writer.durable_seq(), 1);
    assert!(matches!(writer.append(3, &payload(3)), Err(JournalError::Poisoned)));
}

#[test]
fn every_mode_writes_the_commit_mark_before_commit_returns() {
    for durability in [Durability::Sync, Durability::Batch, Durability::Async] {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = JournalWriter::open(config(dir.path(), durability)).unwrap();
        for seq in 1..=10 {
            writer.append(seq, &payload(seq)).unwrap();
        }
        let durable = writer.commit().unwrap();
        assert_eq!(durable, 10);
        // A reader (another process would see the same page cache) finds the mark covering it:
        // in Async it is written without a sync, in Sync and Batch it is also durable.
        let mark = JournalReader::open(dir.path()).unwrap().commit_mark().expect("a mark");
        assert_eq!((mark.committed_seq, mark.committed_hash), (10, writer.last_hash()), "{durability:?}");
        assert_eq!(mark.last_segment, 1, "{durability:?}");
    }
}
