//! Round trips: what is appended is read back identically, from any seq, while being written.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use verex_journal::test_support::{deterministic_payload, XorShift};
use verex_journal::{
    Durability, JournalConfig, JournalError, JournalReader, JournalWriter, GENESIS_HASH, MAX_PAYLOAD_BYTES,
    MIN_SEGMENT_BYTES, SPARSE_INDEX_STRIDE,
};

/// Payload sizes that stress framing: empty, around the 16-byte alignment, and the maximum.
fn payload_for(seq: u64, rng: &mut XorShift) -> Vec<u8> {
    let len = match seq % 10 {
        0 => [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33][rng.below(11) as usize],
        1 if seq % 500 == 1 => MAX_PAYLOAD_BYTES as usize,
        _ => rng.below(600) as usize,
    };
    (0..len).map(|i| (seq as usize * 131 + i * 7) as u8).collect()
}

#[test]
fn records_of_varied_sizes_read_back_identically_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, report) = open(dir.path()).unwrap();
    assert_eq!(report.last_seq, 0);
    assert_eq!(report.segments, 0);
    let mut rng = XorShift::new(7);
    let mut written = Vec::new();
    for seq in 1..=3000u64 {
        let payload = payload_for(seq, &mut rng);
        writer.append(seq, &payload).unwrap();
        written.push(payload);
        if seq % 50 == 0 {
            assert_eq!(writer.commit().unwrap(), seq);
        }
    }
    writer.commit().unwrap();
    let last_hash = writer.last_hash();
    drop(writer);

    let reader = JournalReader::open(dir.path()).unwrap();
    assert!(reader.segment_count() >= 10, "rolled into {} segments", reader.segment_count());
    assert_eq!(reader.first_seq(), Some(1));
    assert_eq!(reader.next_seq(), 3001);
    let mut count = 0;
    let mut hash = GENESIS_HASH;
    for (record, payload) in reader.iter().zip(&written) {
        let record = record.unwrap();
        count += 1;
        assert_eq!(record.seq, count);
        assert_eq!(record.payload, &payload[..]);
        assert_eq!(record.payload.as_ptr() as usize % 16, 0);
        assert_ne!(record.hash, hash);
        hash = record.hash;
    }
    assert_eq!(count, 3000);
    assert_eq!(hash, last_hash);
}

#[test]
fn iter_from_any_seq_yields_exactly_the_suffix() {
    let dir = tempfile::tempdir().unwrap();
    write_deterministic(dir.path(), 1..=2000);
    let placed = placements(dir.path());
    let reader = JournalReader::open(dir.path()).unwrap();
    let mut probes = vec![1, 2, SPARSE_INDEX_STRIDE - 1, SPARSE_INDEX_STRIDE, SPARSE_INDEX_STRIDE + 1];
    probes.extend([999, 1999, 2000, 2001]);
    // Each segment's first and last record.
    for pair in placed.windows(2) {
        if pair[0].segment_index != pair[1].segment_index {
            probes.extend([pair[0].seq, pair[1].seq]);
        }
    }
    let mut rng = XorShift::new(3);
    probes.extend((0..40).map(|_| 1 + rng.below(2000)));
    for seq in probes {
        let suffix: Vec<u64> = reader.iter_from(seq).unwrap().map(|r| r.unwrap().seq).collect();
        let expected: Vec<u64> = (seq..=2000).collect();
        assert_eq!(suffix, expected, "iter_from({seq})");
    }
    for seq in [0, 2002, u64::MAX] {
        assert!(
            matches!(
                reader.iter_from(seq),
                Err(JournalError::SeqNotFound { seq: s, first: 1, next: 2001 }) if s == seq
            ),
            "iter_from({seq})"
        );
    }
}

#[test]
fn reader_of_a_live_journal_sees_later_appends_and_new_segments() {
    let dir = tempfile::tempdir().unwrap();
    let empty = JournalReader::open(dir.path()).unwrap();
    assert_eq!(empty.iter().count(), 0);
    let (mut writer, _) = open(dir.path()).unwrap();
    let mut payload = Vec::new();
    for seq in 1..=10 {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).unwrap();
    }
    let mut reader = JournalReader::open(dir.path()).unwrap();
    let mut iter = reader.iter();
    assert_eq!(iter.by_ref().count(), 10);
    assert!(iter.next().is_none());
    for seq in 11..=20 {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).unwrap();
    }
    // Not fused: the same iterator picks up records appended in place.
    assert_eq!(iter.map(|r| r.unwrap().seq).collect::<Vec<_>>(), (11..=20).collect::<Vec<_>>());
    for seq in 21..=1500 {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).unwrap();
    }
    assert_eq!(reader.refresh().unwrap(), 1501);
    assert!(reader.segment_count() > 3);
    let seqs: Vec<u64> = reader.iter_from(21).unwrap().map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, (21..=1500).collect::<Vec<_>>());
    assert_eq!(verify_deterministic(dir.path(), 1), 1500);
}

#[test]
fn concurrent_tailing_reader_sees_every_record_in_order() {
    const RECORDS: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(config(dir.path(), Durability::Async)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let path = dir.path().to_path_buf();
    let tail_done = Arc::clone(&done);
    let tail = std::thread::spawn(move || {
        let mut reader = JournalReader::open(&path).unwrap();
        let mut next = 1u64;
        let mut payload = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while next <= RECORDS {
            assert!(Instant::now() < deadline, "tailing stalled at seq {next}");
            reader.refresh().unwrap();
            if reader.first_seq().is_some() {
                for record in reader.iter_from(next).unwrap() {
                    let record = record.unwrap();
                    assert_eq!(record.seq, next);
                    deterministic_payload(next, &mut payload);
                    assert_eq!(record.payload, &payload[..]);
                    next += 1;
                }
            }
            if tail_done.load(Ordering::Acquire) && reader.refresh().unwrap() == next {
                break;
            }
            std::thread::yield_now();
        }
        next - 1
    });
    let mut payload = Vec::new();
    for seq in 1..=RECORDS {
        deterministic_payload(seq, &mut payload);
        writer.append(seq, &payload).unwrap();
        if seq % 64 == 0 {
            writer.commit().unwrap();
        }
        if seq % 2000 == 0 {
            // Let the reader catch up now and then, so it really tails a journal in progress.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    writer.commit().unwrap();
    done.store(true, Ordering::Release);
    assert_eq!(tail.join().unwrap(), RECORDS);
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_deterministic(dir.path(), 1..=700);
    let placed = placements(dir.path());
    let (mut writer, report) = open(dir.path()).unwrap();
    assert_eq!(report.last_seq, 700);
    assert_eq!(report.records, 700);
    assert_eq!(report.last_hash, placed.last().unwrap().hash);
    assert_eq!(report.torn_at, None);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(writer.last_seq(), 700);
    assert_eq!(writer.durable_seq(), 700);
    assert!(matches!(writer.append(702, b"gap"), Err(JournalError::SeqOutOfOrder { expected: 701, got: 702 })));
    drop(writer);
    write_deterministic(dir.path(), 701..=1400);
    assert_eq!(verify_deterministic(dir.path(), 1), 1400);
}

#[test]
fn first_append_defines_the_first_seq_and_later_seqs_are_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = open(dir.path()).unwrap();
    assert!(matches!(writer.append(0, b"x"), Err(JournalError::SeqOutOfOrder { expected: 1, got: 0 })));
    assert!(matches!(
        writer.append(u64::MAX, b"x"),
        Err(JournalError::SeqOutOfOrder { expected, got: u64::MAX }) if expected == u64::MAX - 1
    ));
    writer.append(1000, b"first").unwrap();
    assert!(matches!(writer.append(1000, b"dup"), Err(JournalError::SeqOutOfOrder { expected: 1001, got: 1000 })));
    assert!(matches!(writer.append(999, b"back"), Err(JournalError::SeqOutOfOrder { expected: 1001, got: 999 })));
    writer.append(1001, b"second").unwrap();
    writer.commit().unwrap();
    drop(writer);
    let (writer, report) = open(dir.path()).unwrap();
    assert_eq!((report.last_seq, report.records), (1001, 2));
    assert_eq!(writer.last_seq(), 1001);
    let reader = JournalReader::open(dir.path()).unwrap();
    assert_eq!(reader.first_seq(), Some(1000));
    let seqs: Vec<u64> = reader.iter().map(|r| r.unwrap().seq).collect();
    assert_eq!(seqs, vec![1000, 1001]);
}

#[test]
fn payload_size_limit_is_checked_at_the_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = open(dir.path()).unwrap();
    let max = vec![0xA5u8; MAX_PAYLOAD_BYTES as usize];
    writer.append(1, &max).unwrap();
    let over = vec![0u8; MAX_PAYLOAD_BYTES as usize + 1];
    assert!(matches!(
        writer.append(2, &over),
        Err(JournalError::PayloadTooLarge { len, max }) if len == max + 1 && max == MAX_PAYLOAD_BYTES
    ));
    writer.append(2, &[]).unwrap();
    writer.commit().unwrap();
    let reader = JournalReader::open(dir.path()).unwrap();
    let lens: Vec<usize> = reader.iter().map(|r| r.unwrap().payload.len()).collect();
    assert_eq!(lens, vec![MAX_PAYLOAD_BYTES as usize, 0]);
}

#[test]
fn segment_size_must_be_whole_pages_within_limits() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [0, MIN_SEGMENT_BYTES - 4096, MIN_SEGMENT_BYTES + 100, (1 << 32) + 4096] {
        let config = JournalConfig { dir: dir.path().into(), segment_bytes: bad, durability: Durability::Batch };
        assert!(
            matches!(JournalWriter::open(config), Err(JournalError::InvalidSegmentBytes { segment_bytes, .. }) if segment_bytes == bad),
            "{bad}"
        );
    }
}

#[test]
fn a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let (_writer, _) = open(dir.path()).unwrap();
    assert!(matches!(open(dir.path()), Err(JournalError::Locked { .. })));
}

#[test]
fn segments_are_named_by_index_and_sized_by_config() {
    let dir = tempfile::tempdir().unwrap();
    write_deterministic(dir.path(), 1..=1000);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".seg"))
        .collect();
    names.sort();
    assert!(names.len() >= 2);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(name, &format!("{:020}.seg", i + 1));
        let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert_eq!(len, MIN_SEGMENT_BYTES);
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the payload sizes and wherever the writer is closed and reopened, the reader
        /// returns exactly what was appended, and recovery reports the writer's last hash.
        #[test]
        fn appended_records_read_back_exactly_across_reopens(
            sizes in proptest::collection::vec(0usize..1200, 1..400),
            reopen_every in 1usize..150,
            durability in prop_oneof![Just(Durability::Batch), Just(Durability::Async)],
        ) {
            let dir = scratch_dir();
            let mut written = Vec::new();
            let mut writer = None;
            let mut last_hash = GENESIS_HASH;
            for (i, size) in sizes.iter().enumerate() {
                if i % reopen_every == 0 {
                    drop(writer.take());
                    let (reopened, report) = JournalWriter::open(config(dir.path(), durability)).unwrap();
                    prop_assert_eq!(report.last_seq, i as u64);
                    prop_assert_eq!(report.last_hash, last_hash);
                    prop_assert_eq!(report.torn_at, None);
                    writer = Some(reopened);
                }
                let payload: Vec<u8> = (0..*size).map(|b| (b * 7 + i) as u8).collect();
                let w = writer.as_mut().unwrap();
                w.append(i as u64 + 1, &payload).unwrap();
                last_hash = w.last_hash();
                written.push(payload);
            }
            writer.unwrap().commit().unwrap();
            let reader = JournalReader::open(dir.path()).unwrap();
            let read: Vec<Vec<u8>> = reader.iter().map(|r| r.unwrap().payload.to_vec()).collect();
            prop_assert_eq!(read, written);
        }
    }
}
