//! Shared by the `pipeline_*` tests: a mixed workload, the direct reference path, collecting
//! subscribers and sinks with faults.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use verex_engine::catalog::Catalog;
use verex_engine::record::RecordBytes;
use verex_engine::runtime::{
    MemorySink, Pipeline, PipelineConfig, RecordSink, SinkError, Stopped, Subscriber, TxEnd, WaitMode,
};
use verex_engine::sequencer::{Clock, Sequencer};
use verex_engine::text::event_json::render_event;
use verex_engine::text::tx_json::{parse_tx_line, DevSigner};
use verex_engine::tx::SignedTx;
use verex_engine::verified::VerifiedTx;
use verex_engine::{Engine, Event, EventBuf, Genesis, Limits};

/// A deterministic mixed workload as JSON lines: spot and perp listings, accounts, deposits,
/// then orders, cancels, amends, marks and withdrawals from a fixed xorshift stream (the
/// shape of `tests/determinism.rs`, plus a perp market and oracle marks).
pub fn workload(txs: usize) -> Vec<String> {
    let mut lines = vec![
        r#"{"op":"add_asset","symbol":"USDC","decimals":6}"#.to_string(),
        r#"{"op":"add_asset","symbol":"BTC","decimals":8}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-USDC","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"-0.0001","taker_fee":"0.0005"}"#.to_string(),
        r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0.0005"}"#.to_string(),
        r#"{"op":"mark","prices":{"BTC":"99","BTC-PERP":"99"}}"#.to_string(),
    ];
    for a in 1..=8 {
        lines.push(r#"{"op":"create_account"}"#.to_string());
        lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"USDC","amount":"1000000"}}"#));
        lines.push(format!(r#"{{"op":"deposit","account":{a},"asset":"BTC","amount":"100"}}"#));
    }
    let mut x = 88_172_645_463_325_252u64;
    for i in 0..txs {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let account = 1 + x % 8;
        let side = if (x >> 8).is_multiple_of(2) { "buy" } else { "sell" };
        let price = 9_900 + (x >> 16) % 200;
        let qty = 1 + (x >> 32) % 500;
        let order = 1 + (x >> 20) % (i as u64 + 1);
        let line = match (x >> 48) % 16 {
            0 => format!(r#"{{"op":"cancel","account":{account},"market":"BTC-USDC","order_id":{order}}}"#),
            1 => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","type":"market","qty":"{}.{:04}"}}"#,
                qty / 10_000,
                qty % 10_000
            ),
            2 => format!(
                r#"{{"op":"amend","account":{account},"market":"BTC-USDC","order_id":{order},"price":"{}.{:02}"}}"#,
                price / 100,
                price % 100
            ),
            3 => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-PERP","side":"{side}","price":"{}.{}","qty":"0.{:03}","tif":"gtc"}}"#,
                price / 100,
                (price / 10) % 10,
                1 + qty % 100
            ),
            4 => format!(r#"{{"op":"mark","prices":{{"BTC":"{0}","BTC-PERP":"{0}"}}}}"#, 95 + (x >> 24) % 10),
            5 => format!(r#"{{"op":"withdraw","account":{account},"asset":"USDC","amount":"{}"}}"#, 1 + qty),
            _ => format!(
                r#"{{"op":"place","account":{account},"market":"BTC-USDC","side":"{side}","price":"{}.{:02}","qty":"0.{:04}","tif":"{}"}}"#,
                price / 100,
                price % 100,
                qty,
                ["gtc", "ioc", "fok", "post_only"][((x >> 40) % 4) as usize]
            ),
        };
        lines.push(line);
    }
    lines
}

/// The workload's lines dev-signed, with their own stamps (none here).
pub fn signed(lines: &[String]) -> Vec<(VerifiedTx, Option<u64>)> {
    let mut signer = DevSigner::new(0);
    lines
        .iter()
        .map(|line| {
            let parsed = parse_tx_line(line).expect("workload line parses");
            (signer.sign_verified(&parsed), parsed.ts)
        })
        .collect()
}

/// The workload's lines dev-signed as native txs (to tamper with, or to render as text).
pub fn signed_native(lines: &[String]) -> Vec<(SignedTx, Option<u64>)> {
    let mut signer = DevSigner::new(0);
    lines
        .iter()
        .map(|line| {
            let parsed = parse_tx_line(line).expect("workload line parses");
            (signer.sign(&parsed), parsed.ts)
        })
        .collect()
}

/// What a run produced.
pub struct Outcome {
    /// `(seq, event)` in release order.
    pub events: Vec<(u64, Event)>,
    /// The events rendered as JSON lines (with the catalog the subscriber was given).
    pub rendered: Vec<String>,
    /// The final state hash.
    pub state_hash: [u8; 32],
    /// The journaled records.
    pub records: Vec<RecordBytes>,
    /// The engine.
    pub engine: Engine,
}

/// The reference: stamp with the deterministic clock, encode, `Engine::apply`, collect.
pub fn direct(txs: &[(VerifiedTx, Option<u64>)]) -> Outcome {
    direct_from(Engine::new(Genesis::dev(), Limits::small()).expect("limits"), txs)
}

/// The reference path from an engine that has applied some txs already.
pub fn direct_from(mut engine: Engine, txs: &[(VerifiedTx, Option<u64>)]) -> Outcome {
    let mut buf: EventBuf = engine.event_buf();
    let mut sequencer = Sequencer::new(engine.seq(), Clock::Deterministic);
    let (mut events, mut rendered, mut records) = (Vec::new(), Vec::new(), Vec::new());
    for (signed, ts) in txs {
        let record = sequencer.stamp(signed, *ts).expect("dev clock");
        engine.apply(record.verified(), &mut buf).expect("gap-free");
        for event in buf.events() {
            events.push((buf.seq(), *event));
            rendered.push(render_event(buf.seq(), event, engine.catalog()));
        }
        records.push(*record.bytes());
    }
    Outcome { events, rendered, state_hash: engine.state_hash(), records, engine }
}

/// Collects everything the output stage releases, and checks each event against the durable
/// seq the sink had reported when it was released (shared with a [`GatedSink`]).
#[derive(Default)]
pub struct Collect {
    /// Rendered events and notes (`note <tag>`), interleaved in release order.
    pub stream: Vec<String>,
    pub events: Vec<(u64, Event)>,
    pub rendered: Vec<String>,
    pub tx_ends: Vec<TxEnd>,
    pub notes: Vec<(u64, u64)>,
    /// The sink's durable seq, when the test tracks it.
    pub durable: Option<Arc<Mutex<u64>>>,
    /// Events released before the sink had made their tx durable (must stay empty).
    pub early: Vec<(u64, u64)>,
}

impl Subscriber for Collect {
    fn on_event(&mut self, seq: u64, event: &Event, catalog: &Catalog) {
        if let Some(durable) = &self.durable {
            let durable = *durable.lock().expect("durable lock");
            if seq > durable {
                self.early.push((seq, durable));
            }
        }
        let line = render_event(seq, event, catalog);
        self.stream.push(line.clone());
        self.events.push((seq, *event));
        self.rendered.push(line);
    }

    fn on_tx_end(&mut self, end: &TxEnd) {
        self.tx_ends.push(*end);
    }

    fn on_note(&mut self, tag: u64, after_seq: u64) {
        self.stream.push(format!("note {tag}"));
        self.notes.push((tag, after_seq));
    }
}

/// A config for tests: yielding unless asked otherwise, small rings.
pub fn config(wait: WaitMode) -> PipelineConfig {
    PipelineConfig { wait, ring_slots: 256, output_slots: 1024, ..PipelineConfig::yielding(Clock::Deterministic) }
}

/// Runs `txs` through a pipeline over `sink` and shuts it down.
pub fn through_pipeline<K: RecordSink>(
    txs: &[(VerifiedTx, Option<u64>)],
    sink: K,
    subscriber: Collect,
    config: PipelineConfig,
) -> Stopped<K, Collect> {
    let engine = Engine::new(Genesis::dev(), Limits::small()).expect("limits");
    let mut pipeline = Pipeline::start(engine, sink, subscriber, config).expect("start");
    for (k, (signed, ts)) in txs.iter().enumerate() {
        let seq = pipeline.submit(signed, *ts, k as u64).expect("not poisoned");
        assert_eq!(seq, k as u64 + 1);
    }
    pipeline.shutdown().expect("clean shutdown")
}

/// A memory sink.
pub fn memory() -> MemorySink {
    MemorySink::with_capacity(1 << 12)
}

/// A sink that fails `append` of one seq (or `commit` after it), and makes records durable
/// only every `commit_every` records (the final `finish` makes all of them durable), sharing
/// its durable seq with the test.
pub struct GatedSink {
    pub inner: MemorySink,
    pub fail_append_at: Option<u64>,
    pub fail_commit_after: Option<u64>,
    pub commit_every: u64,
    pub durable: Arc<Mutex<u64>>,
    pub calls_after_failure: u64,
    failed: bool,
}

impl GatedSink {
    pub fn new(commit_every: u64) -> Self {
        Self {
            inner: memory(),
            fail_append_at: None,
            fail_commit_after: None,
            commit_every,
            durable: Arc::new(Mutex::new(0)),
            calls_after_failure: 0,
            failed: false,
        }
    }

    fn set_durable(&mut self, seq: u64) -> u64 {
        *self.durable.lock().expect("durable lock") = seq;
        seq
    }
}

impl RecordSink for GatedSink {
    fn append(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SinkError> {
        if self.failed {
            self.calls_after_failure += 1;
        }
        if self.fail_append_at == Some(seq) {
            self.failed = true;
            return Err(SinkError::new(std::io::Error::other(format!("injected append failure at seq {seq}"))));
        }
        self.inner.append(seq, bytes)
    }

    fn commit(&mut self) -> Result<u64, SinkError> {
        if self.failed {
            self.calls_after_failure += 1;
        }
        let last = self.inner.last_seq();
        if self.fail_commit_after.is_some_and(|after| last > after) {
            self.failed = true;
            return Err(SinkError::new(std::io::Error::other("injected msync failure")));
        }
        let durable = *self.durable.lock().expect("durable lock");
        let due = last - last % self.commit_every;
        Ok(self.set_durable(due.max(durable)))
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        if self.failed {
            self.calls_after_failure += 1;
        }
        let last = self.inner.last_seq();
        Ok(self.set_durable(last))
    }
}

/// A test timeout (the wall clock is banned in the engine crate, tests' timeouts excepted).
pub struct Deadline(std::time::Instant);

impl Deadline {
    #[allow(clippy::disallowed_methods)]
    pub fn in_secs(secs: u64) -> Self {
        Self(std::time::Instant::now() + std::time::Duration::from_secs(secs))
    }

    /// Panics naming `what` once the deadline has passed.
    #[allow(clippy::disallowed_methods)]
    pub fn check(&self, what: &str) {
        assert!(std::time::Instant::now() < self.0, "timed out: {what}");
    }
}
