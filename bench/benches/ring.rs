//! One ring hop, as the pipeline makes it: the `disruptor` ring of pre-allocated 512-byte
//! slots versus a bounded crossbeam channel carrying the same slots, for bursts of 1, 10 and
//! 100 messages.
//!
//! Each iteration publishes a burst (one `try_publish` / `send` per message, as the sequencer
//! does) and waits until the consumer thread has seen all of it, so a sample is the time from
//! the first publish to the consumer having consumed the burst: one hop's latency including
//! the consumer noticing. The consumers:
//! - `disruptor_yield`: a `disruptor` processor with the runtime's `YieldingWait`;
//! - `crossbeam_blocking`: `recv()` (crossbeam spins briefly, then parks on a futex);
//! - `crossbeam_yield`: `try_recv()` with the runtime's yielding backoff (the disruptor's wait).
//!
//! Under `cargo bench` a summary prints ns per burst and the channel/disruptor ratios, and the
//! distribution of single bursts (HDR histogram, p50 to p99.99 and max): each burst timed on
//! its own after a warm-up, the next one sent only once the previous one was consumed
//! (closed loop: service time, no coordinated omission to correct, none corrected).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use disruptor::{build_single_producer, Producer};
use hdrhistogram::Histogram;
use verex_bench::hdr::{elapsed_ns, histogram, percentiles_json, percentiles_row};
use verex_engine::runtime::{Backoff, Slot, WaitMode, YieldingWait};

const BURSTS: [u64; 3] = [1, 10, 100];
const RING_SLOTS: usize = 1024;

/// A ring under test: publish one burst, wait until it has been consumed.
trait Hop {
    fn burst(&mut self, size: u64);
}

/// Waits until `done` reaches `target`, yielding like the pipeline's stages.
fn await_count(done: &AtomicU64, target: u64) {
    let mut backoff = Backoff::new(WaitMode::Yielding);
    while done.load(Ordering::Acquire) < target {
        backoff.snooze();
    }
}

fn message(seq: u64) -> Slot {
    let mut slot = Slot::empty();
    slot.seq = seq;
    slot
}

struct DisruptorHop {
    producer: disruptor::SingleProducer<Slot, disruptor::SingleConsumerBarrier>,
    done: Arc<AtomicU64>,
    sent: u64,
}

impl DisruptorHop {
    fn new() -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&done);
        let producer = build_single_producer(RING_SLOTS, Slot::empty, YieldingWait)
            .handle_events_with(move |slot: &Slot, sequence, end_of_batch| {
                black_box(slot.seq);
                if end_of_batch {
                    seen.store(sequence as u64 + 1, Ordering::Release);
                }
            })
            .build();
        Self { producer, done, sent: 0 }
    }
}

impl Hop for DisruptorHop {
    fn burst(&mut self, size: u64) {
        for _ in 0..size {
            let seq = self.sent;
            let mut backoff = Backoff::new(WaitMode::Yielding);
            while self.producer.try_publish(|slot| slot.seq = seq).is_err() {
                backoff.snooze();
            }
            self.sent += 1;
        }
        await_count(&self.done, self.sent);
    }
}

struct ChannelHop {
    tx: Option<crossbeam::channel::Sender<Slot>>,
    done: Arc<AtomicU64>,
    sent: u64,
    consumer: Option<std::thread::JoinHandle<()>>,
}

impl ChannelHop {
    fn new(blocking: bool) -> Self {
        let (tx, rx) = crossbeam::channel::bounded::<Slot>(RING_SLOTS);
        let done = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&done);
        let consumer = std::thread::spawn(move || {
            let mut count = 0;
            let mut backoff = Backoff::new(WaitMode::Yielding);
            loop {
                let slot = if blocking {
                    match rx.recv() {
                        Ok(slot) => slot,
                        Err(_) => return,
                    }
                } else {
                    match rx.try_recv() {
                        Ok(slot) => slot,
                        Err(crossbeam::channel::TryRecvError::Empty) => {
                            backoff.snooze();
                            continue;
                        }
                        Err(crossbeam::channel::TryRecvError::Disconnected) => return,
                    }
                };
                backoff.reset();
                black_box(slot.seq);
                count += 1;
                seen.store(count, Ordering::Release);
            }
        });
        Self { tx: Some(tx), done, sent: 0, consumer: Some(consumer) }
    }
}

impl Hop for ChannelHop {
    fn burst(&mut self, size: u64) {
        let Some(tx) = &self.tx else { return };
        for _ in 0..size {
            if tx.send(message(self.sent)).is_err() {
                return;
            }
            self.sent += 1;
        }
        await_count(&self.done, self.sent);
    }
}

impl Drop for ChannelHop {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(consumer) = self.consumer.take() {
            let _ = consumer.join();
        }
    }
}

const CONTENDERS: [&str; 3] = ["disruptor_yield", "crossbeam_blocking", "crossbeam_yield"];

/// Builds one contender; only one exists at a time, so that no idle consumer of another
/// contender competes for the two cores.
fn contender(name: &str) -> Box<dyn Hop> {
    match name {
        "disruptor_yield" => Box::new(DisruptorHop::new()),
        "crossbeam_blocking" => Box::new(ChannelHop::new(true)),
        _ => Box::new(ChannelHop::new(false)),
    }
}

fn time_bursts(hop: &mut dyn Hop, size: u64, bursts: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..bursts {
        hop.burst(size);
    }
    start.elapsed()
}

fn ring_hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("ring_hop");
    group.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    for name in CONTENDERS {
        let mut hop = contender(name);
        for size in BURSTS {
            group.throughput(Throughput::Elements(size));
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
                b.iter_custom(|iters| time_bursts(hop.as_mut(), size, iters));
            });
        }
    }
    group.finish();
}

/// Bursts timed one at a time for the latency distribution, per burst size.
const LATENCY_BURSTS: u64 = 20_000;

/// The time of each of `bursts` single bursts, after `bursts / 10` untimed ones.
fn burst_latencies(hop: &mut dyn Hop, size: u64, bursts: u64) -> Histogram<u64> {
    let mut latencies = histogram();
    time_bursts(hop, size, bursts / 10);
    for _ in 0..bursts {
        let start = Instant::now();
        hop.burst(size);
        latencies.saturating_record(elapsed_ns(start));
    }
    latencies
}

/// Prints ns per burst and per message, best of 5 passes, with ratios to the disruptor, then
/// the latency distribution of single bursts, and both as one JSON line (also written to
/// `$VEREX_RING_JSON` if set); only under `cargo bench`.
fn summary(_: &mut Criterion) {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!("\nring hop summary (512-byte slots, {RING_SLOTS}-slot rings, yielding waits, best of 5 passes):");
    println!("{:>6} {:>24} {:>24} {:>24}", "burst", "disruptor_yield", "crossbeam_blocking", "crossbeam_yield");
    let mut json = Vec::new();
    for size in BURSTS {
        let bursts = 200_000 / size;
        let mut cells = Vec::new();
        let mut per_burst_ns = Vec::new();
        for name in CONTENDERS {
            let mut hop = contender(name);
            time_bursts(hop.as_mut(), size, bursts / 10);
            let best = (0..5).map(|_| time_bursts(hop.as_mut(), size, bursts)).min().unwrap_or_default();
            per_burst_ns.push(best.as_nanos() as f64 / bursts as f64);
        }
        let base = per_burst_ns[0];
        for ns in &per_burst_ns {
            cells.push(format!("{ns:>8.0} ns ({:>6.1} ns/msg) {:>4.2}x", ns / size as f64, ns / base));
        }
        println!("{size:>6} {}", cells.join(" "));
        let mut fields: Vec<String> =
            CONTENDERS.iter().zip(&per_burst_ns).map(|(name, ns)| format!("\"{name}_ns\":{ns:.0}")).collect();
        for name in CONTENDERS {
            let mut hop = contender(name);
            let h = burst_latencies(hop.as_mut(), size, LATENCY_BURSTS);
            println!("{size:>6} {name:<20} single bursts: {}", percentiles_row(&h));
            fields.push(format!("\"{name}_latency\":{}", percentiles_json(&h)));
        }
        json.push(format!("\"{size}\":{{{}}}", fields.join(",")));
    }
    // One machine-readable line (perf/run can parse it): ns per burst by burst size.
    let line = format!("{{{}}}", json.join(","));
    println!("ring-hop-json: {line}");
    if let Ok(path) = std::env::var("VEREX_RING_JSON") {
        let _ = std::fs::write(path, line + "\n");
    }
}

criterion_group!(benches, ring_hop, summary);
criterion_main!(benches);
