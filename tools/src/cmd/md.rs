//! `verex md`: market data from a journal's events alone (SPEC 14): top of book, depth and
//! the trade tape, rebuilt by [`L2Books`] as a publisher would, optionally following a live
//! journal.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};
use verex_engine::catalog::Catalog;
use verex_engine::market_data::{L2Books, LevelUpdate, Trade};
use verex_engine::text::event_json::{market_price, market_qty};
use verex_engine::tx::Side;
use verex_engine::Engine;

use crate::error::CliError;
use crate::manifest::require_manifest;
use crate::rebuild::{open_reader, replay_journal};

/// `--help` text of the command.
pub const LONG_ABOUT: &str = "\
Market data rebuilt from a journal's events alone, as a publisher subscribed to the engine \
would rebuild it (SPEC section 14): every event that changes a book carries the market, side, \
price and the level's new total, and every fill a trade id and its tx's `ts`. The journal is \
replayed from genesis (signatures checked, as `verex replay` does); the books are rebuilt from \
the events, never read from the engine, and a seq gap is an error.

Output, JSON lines on standard output: first the last --trades trades, oldest first, \
{\"type\":\"trade\",\"trade_id\":N,\"seq\":N,\"ts\":NS,\"market\":..,\"price\":..,\"qty\":..,\"taker_side\":..}; \
then one line per market, {\"type\":\"book\",\"seq\":N,\"market\":..,\"bid\":[price,qty]|null,\
\"ask\":[price,qty]|null,\"bids\":[[price,qty],..],\"asks\":[..]} with --depth levels a side, \
best first. With --follow the journal is polled for new records (as `verex run` appends them) \
and each new tx prints its trades and, for each market whose book it changed, a book line; \
it runs until interrupted, or until the books reach --until-seq.

The journal is only read, never modified. Damage is an error naming the seq and the segment \
file (exit status 1).";

/// Arguments of `verex md`.
#[derive(Debug, Args)]
pub struct MdArgs {
    /// The journal directory.
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// Levels a side in each book line.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub depth: usize,
    /// Trades of the tape printed before the books.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub trades: usize,
    /// Keep reading records as they are appended.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: stop once the books reach this seq.
    #[arg(long, value_name = "SEQ", requires = "follow")]
    pub until_seq: Option<u64>,
    /// With --follow: how often to look for new records, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub poll_ms: u64,
}

/// What the publisher holds: the books, the newest trades (at most `keep` before a tx's own),
/// and the markets touched by the last tx.
struct Publisher {
    books: L2Books,
    tape: Vec<Trade>,
    keep: usize,
    touched: Vec<u16>,
}

impl Publisher {
    /// Takes tx `seq`'s events; returns where its trades start in `tape`.
    fn take(&mut self, seq: u64, events: &[verex_engine::Event]) -> Result<usize, CliError> {
        self.books.apply_tx(seq, events).map_err(|e| CliError::Usage(e.to_string()))?;
        if self.tape.len() > self.keep {
            self.tape.drain(..self.tape.len() - self.keep);
        }
        let first_new = self.tape.len();
        self.touched.clear();
        for event in events {
            if let Some(update) = LevelUpdate::from_event(event) {
                if !self.touched.contains(&update.market) {
                    self.touched.push(update.market);
                }
            }
            self.tape.extend(Trade::from_event(seq, event));
        }
        Ok(first_new)
    }
}

fn trade_line(trade: &Trade, catalog: &Catalog) -> String {
    let market = catalog.markets().get(usize::from(trade.market)).map_or("?", |m| m.symbol.as_str());
    json!({
        "type": "trade",
        "trade_id": trade.trade_id,
        "seq": trade.seq,
        "ts": trade.ts,
        "market": market,
        "price": market_price(catalog, trade.market, trade.price),
        "qty": market_qty(catalog, trade.market, trade.qty),
        "taker_side": if trade.taker_side == Side::Buy { "buy" } else { "sell" },
    })
    .to_string()
}

fn book_line(books: &L2Books, market: u16, depth: usize, catalog: &Catalog) -> String {
    let level =
        |(price, qty): (i64, u64)| json!([market_price(catalog, market, price), market_qty(catalog, market, qty)]);
    let side = |side| Value::Array(books.depth(market, side).take(depth).map(level).collect());
    let (bid, ask) = books.top(market);
    json!({
        "type": "book",
        "seq": books.last_seq(),
        "market": catalog.markets().get(usize::from(market)).map_or("?", |m| m.symbol.as_str()),
        "bid": bid.map(level),
        "ask": ask.map(level),
        "bids": side(Side::Buy),
        "asks": side(Side::Sell),
    })
    .to_string()
}

fn write_lines(lines: &[String]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let io = |source| CliError::Io { action: "write", file: "<stdout>".into(), source };
    for line in lines {
        writeln!(out, "{line}").map_err(io)?;
    }
    out.flush().map_err(io)
}

/// Replays the journal into the books and prints them; follows it with `--follow`.
///
/// # Errors
/// [`CliError::File`] for a missing journal or manifest, [`CliError::Journal`] /
/// [`CliError::BadRecord`] for damage, [`CliError::Io`] for the output.
pub fn execute(args: &MdArgs) -> Result<(), CliError> {
    let dir = args.journal.as_path();
    let mut reader = open_reader(dir)?;
    let manifest = require_manifest(dir)?;
    let mut engine: Engine = manifest.engine()?;
    let mut publisher = Publisher { books: L2Books::new(), tape: Vec::new(), keep: args.trades, touched: Vec::new() };
    replay_journal(dir, &reader, &mut engine, "md", |_, record, _, buf| {
        publisher.take(record.seq, buf.events()).map(drop)
    })?;
    let catalog = engine.catalog();
    let skip = publisher.tape.len().saturating_sub(args.trades);
    let mut lines: Vec<String> = publisher.tape[skip..].iter().map(|t| trade_line(t, catalog)).collect();
    let markets = u16::try_from(catalog.markets().len()).unwrap_or(u16::MAX);
    lines.extend((0..markets).map(|m| book_line(&publisher.books, m, args.depth, catalog)));
    write_lines(&lines)?;
    if !args.follow {
        return Ok(());
    }
    let until = args.until_seq.unwrap_or(u64::MAX);
    while publisher.books.last_seq() < until {
        std::thread::sleep(Duration::from_millis(args.poll_ms));
        if reader.refresh()? <= engine.seq() + 1 {
            continue;
        }
        let mut lines = Vec::new();
        replay_journal(dir, &reader, &mut engine, "md", |engine, record, _, buf| {
            let before = publisher.take(record.seq, buf.events())?;
            let catalog = engine.catalog();
            lines.extend(publisher.tape[before..].iter().map(|t| trade_line(t, catalog)));
            lines.extend(publisher.touched.iter().map(|&m| book_line(&publisher.books, m, args.depth, catalog)));
            Ok(())
        })?;
        write_lines(&lines)?;
    }
    Ok(())
}
