//! Start-up cost of an engine with production limits (a million accounts and orders):
//! `cargo run --release -p verex-bench --example startup`.

fn main() {
    let started = std::time::Instant::now();
    let engine = verex_engine::Engine::new(verex_engine::Genesis::dev(), verex_engine::Limits::production())
        .unwrap_or_else(|e| panic!("{e}"));
    let buf = engine.event_buf();
    println!(
        "Engine::new(production) + event buffer: {:?} (seq {}, event capacity {})",
        started.elapsed(),
        engine.seq(),
        buf.events().len() + engine.event_capacity()
    );
}
