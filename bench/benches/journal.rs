//! Journal costs.
//!
//! - `journal_append/{64,128,256}B`: `JournalWriter::append` with `Durability::Async`, one
//!   iteration filling one fresh 256 MiB segment (framing, copy into the mapping, rolling hash;
//!   meanwhile the writer's roller thread prepares the next segment, as it does in production),
//!   beside two baselines that copy the same number of payloads with `copy_from_slice`:
//!   - `memcpy_fresh_file`: into a `MmapMut` of a freshly preallocated file (first-touch page
//!     faults included: the journal pays its segment's on the roller thread instead);
//!   - `memcpy_warm_mapping`: into a mapping whose pages were already touched (pure copy cost).
//!
//!   An iteration is a whole segment's worth of records (the group's `Throughput::Elements`),
//!   so that the segment's one-off costs are amortised as a writer running at full speed sees
//!   them, and not concentrated in a few timed appends.
//! - `journal_replay/{64,128,256}B`: iterate every record of a 2^18-record journal with
//!   `JournalReader::iter` (hash verified per record), touching each payload.
//!
//! Setup (creating and deleting segments) is outside the timed regions. Under `cargo bench` a
//! summary table of records/s, GB/s and append/memcpy ratios is printed at the end, and the
//! distribution of single appends (HDR histogram, p50 to p99.99 and max) over 2,000,000 records
//! into 64 MiB segments, so that it includes several segment rolls, beside single copies into
//! fresh 64 MiB files (a new file every time one fills, untimed). Each operation is timed on its
//! own with two clock reads (their cost is inside every sample); closed loop, so service time
//! with no coordinated omission to correct.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hdrhistogram::Histogram;
use memmap2::MmapMut;
use verex_bench::hdr::{elapsed_ns, histogram, percentiles_json, percentiles_row};
use verex_journal::test_support::preallocated_file;
use verex_journal::{frame_len, Durability, JournalConfig, JournalReader, JournalWriter, SEGMENT_HEADER_BYTES};

/// One large segment: appends in a timed chunk never roll.
const SEGMENT_BYTES: u64 = 256 << 20;
const PAYLOAD_SIZES: [usize; 3] = [64, 128, 256];
const REPLAY_RECORDS: u64 = 1 << 18;
/// The warm baseline wraps around a mapping of this size, touched once beforehand.
const WARM_BYTES: usize = 64 << 20;

/// A directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("verex-bench-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 37 + 11) as u8).collect()
}

/// Records of `payload_bytes` that fit one bench segment after the untimed first record.
fn records_per_segment(payload_bytes: usize) -> u64 {
    (SEGMENT_BYTES - SEGMENT_HEADER_BYTES) / frame_len(payload_bytes as u64) - 1
}

/// Times `count` appends of `payload`, in fresh 256 MiB segments, Async durability.
fn time_journal_appends(payload: &[u8], count: u64) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = count;
    while left > 0 {
        let chunk = left.min(records_per_segment(payload.len()));
        let scratch = Scratch::new("append");
        let config =
            JournalConfig { dir: scratch.0.clone(), segment_bytes: SEGMENT_BYTES, durability: Durability::Async };
        let (mut writer, _) = JournalWriter::open(config).expect("open journal");
        // The first append creates (fallocates, fsyncs) the segment: not timed.
        writer.append(1, payload).expect("append");
        let start = Instant::now();
        for seq in 2..chunk + 2 {
            writer.append(seq, payload).expect("append");
        }
        writer.commit().expect("commit");
        elapsed += start.elapsed();
        black_box(writer.last_hash());
        left -= chunk;
    }
    elapsed
}

/// A writable mapping of a freshly preallocated scratch file of `bytes`.
fn fresh_mapping(path: &Path, bytes: u64) -> MmapMut {
    let file = preallocated_file(path, bytes).expect("preallocate");
    // SAFETY: a private scratch file nobody else maps.
    unsafe { MmapMut::map_mut(&file) }.expect("map")
}

/// Times `count` copies of `payload`, back to back, into fresh preallocated files.
fn time_memcpy_fresh(payload: &[u8], count: u64) -> Duration {
    let per_file = (SEGMENT_BYTES - SEGMENT_HEADER_BYTES) / payload.len() as u64;
    let mut elapsed = Duration::ZERO;
    let mut left = count;
    while left > 0 {
        let chunk = left.min(per_file);
        let scratch = Scratch::new("memcpy");
        let mut map = fresh_mapping(&scratch.0.join("baseline"), SEGMENT_BYTES);
        let mut off = SEGMENT_HEADER_BYTES as usize;
        let start = Instant::now();
        for _ in 0..chunk {
            map[off..off + payload.len()].copy_from_slice(payload);
            off += payload.len();
        }
        black_box(map.as_ptr());
        elapsed += start.elapsed();
        left -= chunk;
    }
    elapsed
}

/// A mapping of a preallocated file with every page already touched.
struct WarmMapping {
    _scratch: Scratch,
    map: MmapMut,
    off: usize,
}

impl WarmMapping {
    fn new() -> WarmMapping {
        let scratch = Scratch::new("warm");
        let file = preallocated_file(&scratch.0.join("warm"), WARM_BYTES as u64).expect("preallocate");
        // SAFETY: a private scratch file nobody else maps.
        let mut map = unsafe { MmapMut::map_mut(&file) }.expect("map");
        map.fill(1);
        WarmMapping { _scratch: scratch, map, off: 0 }
    }

    fn time_copies(&mut self, payload: &[u8], count: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..count {
            if self.off + payload.len() > WARM_BYTES {
                self.off = 0;
            }
            self.map[self.off..self.off + payload.len()].copy_from_slice(payload);
            self.off += payload.len();
        }
        black_box(self.map.as_ptr());
        start.elapsed()
    }
}

fn append(c: &mut Criterion) {
    let mut warm = WarmMapping::new();
    for size in PAYLOAD_SIZES {
        let payload = payload(size);
        let per_iter = records_per_segment(size);
        let mut group = c.benchmark_group(format!("journal_append/{size}B"));
        group.throughput(Throughput::Elements(per_iter));
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(4));
        group.bench_function("journal_async", |b| {
            b.iter_custom(|iters| time_journal_appends(&payload, iters * per_iter));
        });
        group.bench_function("memcpy_fresh_file", |b| {
            b.iter_custom(|iters| time_memcpy_fresh(&payload, iters * per_iter));
        });
        group.bench_function("memcpy_warm_mapping", |b| {
            b.iter_custom(|iters| warm.time_copies(&payload, iters * per_iter))
        });
        group.finish();
    }
}

/// A journal of `REPLAY_RECORDS` records of `size` bytes (64 MiB segments).
fn replay_fixture(size: usize) -> (Scratch, JournalReader) {
    let scratch = Scratch::new(&format!("replay-{size}"));
    let mut config = JournalConfig::new(scratch.0.clone());
    config.durability = Durability::Async;
    let (mut writer, _) = JournalWriter::open(config).expect("open journal");
    let mut payload = payload(size);
    for seq in 1..=REPLAY_RECORDS {
        payload[0] = seq as u8;
        writer.append(seq, &payload).expect("append");
    }
    writer.commit().expect("commit");
    drop(writer);
    let reader = JournalReader::open(&scratch.0).expect("open reader");
    (scratch, reader)
}

/// Iterates every record, touching the payload's first and last byte.
fn replay_all(reader: &JournalReader) -> u64 {
    let mut sum = 0u64;
    for record in reader.iter() {
        let record = record.expect("valid record");
        let payload = record.payload;
        sum += u64::from(payload[0]) + u64::from(payload[payload.len() - 1]);
    }
    sum
}

fn replay(c: &mut Criterion) {
    for size in PAYLOAD_SIZES {
        let (_scratch, reader) = replay_fixture(size);
        let mut group = c.benchmark_group(format!("journal_replay/{size}B"));
        group.throughput(Throughput::Bytes(REPLAY_RECORDS * size as u64));
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        group.bench_function("iter_verify_touch", |b| b.iter(|| black_box(replay_all(&reader))));
        group.finish();
    }
}

/// Operations timed one at a time for the latency distributions, per record size.
const LATENCY_RECORDS: u64 = 2_000_000;
/// Segment (and baseline file) size of the latency passes: small enough to roll several times.
const LATENCY_SEGMENT_BYTES: u64 = 64 << 20;

/// Each of `LATENCY_RECORDS` appends timed on its own, segment rolls included.
fn append_latencies(payload: &[u8]) -> Histogram<u64> {
    let scratch = Scratch::new("latency");
    let config =
        JournalConfig { dir: scratch.0.clone(), segment_bytes: LATENCY_SEGMENT_BYTES, durability: Durability::Async };
    let (mut writer, _) = JournalWriter::open(config).expect("open journal");
    writer.append(1, payload).expect("append");
    let mut latencies = histogram();
    for seq in 2..LATENCY_RECORDS + 2 {
        let start = Instant::now();
        writer.append(seq, payload).expect("append");
        latencies.saturating_record(elapsed_ns(start));
    }
    writer.commit().expect("commit");
    latencies
}

/// Each of `LATENCY_RECORDS` copies into fresh preallocated files timed on its own.
fn memcpy_latencies(payload: &[u8]) -> Histogram<u64> {
    let scratch = Scratch::new("memcpy-latency");
    let per_file = (LATENCY_SEGMENT_BYTES - SEGMENT_HEADER_BYTES) / payload.len() as u64;
    let mut latencies = histogram();
    let mut left = LATENCY_RECORDS;
    let mut file_index = 0;
    while left > 0 {
        let chunk = left.min(per_file);
        let path = scratch.0.join(format!("baseline-{file_index}"));
        let mut map = fresh_mapping(&path, LATENCY_SEGMENT_BYTES);
        let mut off = SEGMENT_HEADER_BYTES as usize;
        for _ in 0..chunk {
            let start = Instant::now();
            map[off..off + payload.len()].copy_from_slice(payload);
            black_box(map.as_ptr());
            latencies.saturating_record(elapsed_ns(start));
            off += payload.len();
        }
        drop(map);
        let _ = std::fs::remove_file(&path);
        file_index += 1;
        left -= chunk;
    }
    latencies
}

/// Prints records/s, GB/s and ratios from one timed pass of each (only under `cargo bench`).
fn summary(_: &mut Criterion) {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    const COUNT: u64 = 2_000_000;
    let mut warm = WarmMapping::new();
    println!("\njournal summary ({COUNT} records per pass, payload bytes only in GB/s):");
    println!(
        "{:>6} {:>22} {:>22} {:>22} {:>10} {:>10}",
        "size", "journal_async", "memcpy_fresh_file", "memcpy_warm", "vs fresh", "vs warm"
    );
    for size in PAYLOAD_SIZES {
        let payload = payload(size);
        let best = |f: &mut dyn FnMut() -> Duration| (0..3).map(|_| f()).min().unwrap_or_default();
        let journal = best(&mut || time_journal_appends(&payload, COUNT));
        let fresh = best(&mut || time_memcpy_fresh(&payload, COUNT));
        let warm_copy = best(&mut || warm.time_copies(&payload, COUNT));
        let cell = |d: Duration| {
            let secs = d.as_secs_f64();
            format!("{:.1} Mrec/s {:.2} GB/s", COUNT as f64 / secs / 1e6, (COUNT * size as u64) as f64 / secs / 1e9)
        };
        println!(
            "{:>5}B {:>22} {:>22} {:>22} {:>9.2}x {:>9.2}x",
            size,
            cell(journal),
            cell(fresh),
            cell(warm_copy),
            journal.as_secs_f64() / fresh.as_secs_f64(),
            journal.as_secs_f64() / warm_copy.as_secs_f64()
        );
    }
    println!("\nsingle operations ({LATENCY_RECORDS} per size, 64 MiB segments and files, two clock reads each):");
    let mut json = Vec::new();
    for size in PAYLOAD_SIZES {
        let payload = payload(size);
        let (journal, memcpy) = (append_latencies(&payload), memcpy_latencies(&payload));
        println!("{size:>5}B journal append {}", percentiles_row(&journal));
        println!("{size:>5}B memcpy, fresh  {}", percentiles_row(&memcpy));
        let (journal, memcpy) = (percentiles_json(&journal), percentiles_json(&memcpy));
        json.push(format!("\"{size}\":{{\"journal_async\":{journal},\"memcpy_fresh_file\":{memcpy}}}"));
    }
    // One machine-readable line for perf/run.
    println!("journal-latency-json: {{{}}}", json.join(","));
    for size in PAYLOAD_SIZES {
        let (_scratch, reader) = replay_fixture(size);
        black_box(replay_all(&reader));
        let start = Instant::now();
        black_box(replay_all(&reader));
        let secs = start.elapsed().as_secs_f64();
        println!(
            "replay {size}B: {:.1} Mrec/s {:.2} GB/s (payload), hash verified",
            REPLAY_RECORDS as f64 / secs / 1e6,
            (REPLAY_RECORDS * size as u64) as f64 / secs / 1e9
        );
    }
}

criterion_group!(benches, append, replay, summary);
criterion_main!(benches);
