//! The on-disk format, re-derived from the documentation alone: a third party with xxh3 and
//! the crate docs can walk the segment files, recompute the hash chain and read the commit
//! mark.

mod common;

use common::*;
use verex_journal::test_support::deterministic_payload;
use verex_journal::{chain_hash, JournalReader, MIN_SEGMENT_BYTES};
use xxhash_rust::xxh3::xxh3_64;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn chain_recomputed_from_the_raw_files_matches_reader_and_writer() {
    let dir = tempfile::tempdir().unwrap();
    write_deterministic(dir.path(), 1..=900);
    let (writer, _) = open(dir.path()).unwrap();
    let writer_hash = writer.last_hash();
    drop(writer);
    let reader_hashes: Vec<u64> = JournalReader::open(dir.path()).unwrap().iter().map(|r| r.unwrap().hash).collect();

    let mut hash = 0u64; // genesis
    let mut seq = 1u64;
    let mut payload = Vec::new();
    let mut index = 1u64;
    while segment_file(dir.path(), index).exists() {
        let bytes = read_file(&segment_file(dir.path(), index));
        assert_eq!(bytes.len() as u64, MIN_SEGMENT_BYTES);
        // Header.
        assert_eq!(&bytes[0..8], b"VEREXJNL");
        assert_eq!(u32_at(&bytes, 8), 2, "version");
        assert_eq!(u32_at(&bytes, 12), 64, "header length");
        assert_eq!(u64_at(&bytes, 16), index);
        assert_eq!(u64_at(&bytes, 24), seq, "first seq");
        assert_eq!(u64_at(&bytes, 32), MIN_SEGMENT_BYTES);
        assert_eq!(u64_at(&bytes, 40), 0, "reserved");
        let covered: Vec<u8> = bytes[..48].iter().chain(&bytes[56..64]).copied().collect();
        assert_eq!(u64_at(&bytes, 48), xxh3_64(&covered), "header checksum");
        assert_eq!(u64_at(&bytes, 56), hash, "prev_hash continues the chain");
        // Frames.
        let mut off = 64usize;
        while off + 32 <= bytes.len() && u64_at(&bytes, off) != 0 {
            assert_eq!(off % 16, 0);
            let len = u32_at(&bytes, off) as usize;
            assert_eq!(&bytes[off + 4..off + 8], b"VXR1");
            assert_eq!(u64_at(&bytes, off + 8), seq);
            let padded = len.div_ceil(16) * 16;
            deterministic_payload(seq, &mut payload);
            assert_eq!(&bytes[off + 16..off + 16 + len], &payload[..]);
            assert!(bytes[off + 16 + len..off + 16 + padded].iter().all(|&b| b == 0));
            assert_eq!(u64_at(&bytes, off + 16 + padded), index, "segment index");
            let record = &bytes[off..off + 16 + padded + 8];
            let concatenated: Vec<u8> = hash.to_le_bytes().iter().chain(record).copied().collect();
            let next = xxh3_64(&concatenated);
            assert_eq!(next, chain_hash(hash, record));
            assert_eq!(u64_at(&bytes, off + 24 + padded), next, "stored hash of seq {seq}");
            assert_eq!(reader_hashes[(seq - 1) as usize], next);
            hash = next;
            seq += 1;
            off += 32 + padded;
        }
        assert!(bytes[off..].iter().all(|&b| b == 0), "zeroed space after the data");
        index += 1;
    }
    assert!(index > 3, "spans several segments");
    assert_eq!(seq - 1, 900);
    assert_eq!(hash, writer_hash);

    // The commit mark: two 64-byte copies at offsets 0 and 4096 of an 8 KiB file, zeros
    // elsewhere; the valid copy with the highest generation names the last commit.
    let mark = read_file(&dir.path().join("commit.mark"));
    assert_eq!(mark.len(), 8192);
    let mut newest: Option<(u64, u64, u64, u64)> = None;
    for (copy, at) in [(0u32, 0usize), (1, 4096)] {
        let bytes = &mark[at..at + 64];
        assert_eq!(&bytes[0..8], b"VEREXMRK");
        assert_eq!(u32_at(bytes, 8), 2, "version");
        assert_eq!(u32_at(bytes, 12), copy);
        let generation = u64_at(bytes, 16);
        assert_eq!(generation % 2, u64::from(copy), "generation g lives in copy g % 2");
        assert_eq!(u64_at(bytes, 48), 0, "reserved");
        assert_eq!(u64_at(bytes, 56), xxh3_64(&bytes[..56]), "checksum");
        let fields = (generation, u64_at(bytes, 24), u64_at(bytes, 32), u64_at(bytes, 40));
        if newest.is_none_or(|n| n.0 < generation) {
            newest = Some(fields);
        }
        assert!(mark[at + 64..at + 4096].iter().all(|&b| b == 0), "zero outside the copies");
    }
    let (_, committed_seq, committed_hash, last_segment) = newest.unwrap();
    assert_eq!((committed_seq, committed_hash, last_segment), (900, writer_hash, index - 1));
}
