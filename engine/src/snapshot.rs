//! Snapshots: the whole engine state as an `rkyv` archive with a header and a checksum.
//!
//! File layout: `archive ‖ BLAKE3(archive) (32 bytes) ‖ archive length (u64 LE) ‖ "VEREXSNP"`.
//! The archive holds a [`SnapshotHeader`] (format version, seq, state hash, and the journal's
//! xxh3 rolling hash and BLAKE3 attestation digest at that seq, as given by the caller) and a
//! [`SnapshotState`]. Loading checks the trailer and checksum, validates the archive
//! (`rkyv` bytecheck), rebuilds the engine, and compares the rebuilt state hash with the
//! header's: a corrupt or mismatching snapshot is an error naming what failed, never used.
//!
//! What is kept is everything that decides future behaviour, not only what the state hash
//! covers: the order of each account's order list (cancel-all order), the FIFO of every
//! level, the order of each perp market's holder list (settlement event order) and the risk
//! bands. A restored engine therefore produces byte-identical events from then on.

use rkyv::{rancor, Archive, Deserialize, Serialize};

use crate::accounts::{Holding, NIL};
use crate::catalog::{Asset, Market};
use crate::engine::Engine;
use crate::orders::Order;
use crate::tx::{MarketKind, Side, Symbol, TimeInForce};
use crate::{Genesis, Limits};

/// Format version of snapshot files.
pub const SNAPSHOT_VERSION: u32 = 4;
/// Trailer magic.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"VEREXSNP";
/// Bytes after the archive: checksum, length, magic.
const TRAILER_BYTES: usize = 32 + 8 + 8;

/// Why a snapshot cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// Too short, or the trailer magic or length is wrong.
    #[error("not a verex snapshot: {0}")]
    Format(String),
    /// The checksum over the archive does not match.
    #[error("snapshot checksum mismatch: the file is corrupt")]
    Checksum,
    /// The archive does not validate.
    #[error("snapshot archive does not validate: {0}")]
    Archive(String),
    /// Written by another format version.
    #[error("snapshot format version {found}, this build reads {SNAPSHOT_VERSION}")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The state does not fit the limits it is restored with.
    #[error("snapshot does not fit the limits: {0}")]
    Limits(String),
    /// The state is inconsistent (an impossible value).
    #[error("snapshot state is inconsistent: {0}")]
    Inconsistent(String),
    /// The rebuilt state hash differs from the header's.
    #[error("snapshot at seq {seq}: rebuilt state hash {rebuilt} differs from the recorded {recorded}")]
    StateHash {
        /// Seq of the snapshot.
        seq: u64,
        /// Hash of the rebuilt engine.
        rebuilt: String,
        /// Hash in the header.
        recorded: String,
    },
}

/// What a snapshot says about itself.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SnapshotHeader {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Last applied seq.
    pub seq: u64,
    /// [`Engine::state_hash`] at `seq`.
    pub state_hash: [u8; 32],
    /// The journal's xxh3 rolling hash after record `seq`.
    pub journal_hash: u64,
    /// The journal's BLAKE3 attestation digest after record `seq`.
    pub attest_digest: [u8; 32],
}

/// An asset listing.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AssetRecord {
    symbol: [u8; 16],
    decimals: u8,
    /// collateral weight, borrow weight, rate base, kink, rate at kink, rate max, reserve
    /// factor, max utilization, index price.
    ratios: [i64; 9],
}

/// One asset's lending pool (since version 3).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PoolRecord {
    /// supply index, borrow index, Σ lent principal, Σ borrowed principal, watch index.
    values: [u128; 5],
    /// The insurance fund's lent principal.
    fund_principal: u64,
    unfunded: u64,
    accrued_ts: u64,
}

/// A market listing.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct MarketRecord {
    symbol: [u8; 16],
    perp: bool,
    base: u16,
    quote: u16,
    price_decimals: u32,
    notional_exp: i32,
    step_units: u64,
    funding_interval_ns: u64,
    /// tick, maker fee, taker fee, imf, mmf, last mark.
    values: [i64; 6],
}

/// A resting order.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct OrderRecord {
    id: u64,
    client_id: u64,
    account: u32,
    market: u16,
    /// side (bit 0: sell), reduce-only (bit 1), tif (bits 4..).
    flags: u8,
    price: i64,
    remaining: u64,
    locked: u64,
    lock_per_lot: u64,
}

/// One perp market's positions, holders in their list order.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PositionsRecord {
    market: u16,
    insurance: i64,
    /// (account index, size, band low, band high).
    holders: Vec<(u32, i64, i64, i64)>,
}

/// The whole state.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SnapshotState {
    seq: u64,
    last_ts: u64,
    next_order_id: u64,
    /// The next fill's trade id (since version 4).
    next_trade_id: u64,
    operator_nonces: [u64; 4],
    assets: Vec<AssetRecord>,
    markets: Vec<MarketRecord>,
    /// (public key, nonce) per account, in id order.
    accounts: Vec<([u8; 32], u64)>,
    /// Per asset, per account: available, locked, lent principal, borrowed principal,
    /// unfunded debt, reserved by perp orders.
    balances: Vec<Vec<[u64; 6]>>,
    /// Resting orders, account by account, each account's list in its order.
    orders: Vec<OrderRecord>,
    /// Per market: order ids, bids best level first then asks, each level in time order.
    books: Vec<Vec<u64>>,
    positions: Vec<PositionsRecord>,
    fees: Vec<u64>,
    insurance: Vec<i64>,
    supply: Vec<u64>,
    /// Per asset: the lending pool (since version 3).
    pools: Vec<PoolRecord>,
    /// Per asset: the uncovered loss (since version 3).
    uncovered: Vec<u64>,
    /// Account indexes of the debtors, in list order (since version 3).
    debtors: Vec<u32>,
    /// Per asset: Σ deposits and Σ withdrawals ever (since version 2).
    deposited: Vec<u128>,
    withdrawn: Vec<u128>,
}

/// A whole snapshot file's archive.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SnapshotFile {
    /// The header.
    pub header: SnapshotHeader,
    /// The state.
    pub state: SnapshotState,
}

fn tif_code(tif: TimeInForce) -> u8 {
    match tif {
        TimeInForce::Gtc => 0,
        TimeInForce::Ioc => 1,
        TimeInForce::Fok => 2,
        TimeInForce::PostOnly => 3,
    }
}

fn tif_from(code: u8) -> Result<TimeInForce, SnapshotError> {
    Ok(match code {
        0 => TimeInForce::Gtc,
        1 => TimeInForce::Ioc,
        2 => TimeInForce::Fok,
        3 => TimeInForce::PostOnly,
        other => return Err(SnapshotError::Inconsistent(format!("order tif code {other}"))),
    })
}

impl Engine {
    /// The state as a snapshot record (O(state); for a replica, never the engine stage).
    #[must_use]
    pub fn snapshot_state(&self) -> SnapshotState {
        let assets = self
            .catalog
            .assets()
            .iter()
            .map(|a| AssetRecord {
                symbol: a.symbol.0,
                decimals: a.decimals,
                ratios: [
                    a.collateral_weight,
                    a.borrow_weight,
                    a.rate_base,
                    a.rate_kink_utilization,
                    a.rate_at_kink,
                    a.rate_max,
                    a.reserve_factor,
                    a.max_utilization,
                    a.index_price,
                ],
            })
            .collect();
        let markets = self
            .catalog
            .markets()
            .iter()
            .map(|m| MarketRecord {
                symbol: m.symbol.0,
                perp: m.kind == MarketKind::Perp,
                base: m.base,
                quote: m.quote,
                price_decimals: m.price_decimals,
                notional_exp: m.notional_exp,
                step_units: m.step_units,
                funding_interval_ns: m.funding_interval_ns,
                values: [m.tick_units, m.maker_fee, m.taker_fee, m.imf, m.mmf, m.last_mark],
            })
            .collect();
        let accounts = self.accounts.iter().map(|(_, a)| (a.pubkey, a.nonce)).collect();
        let balances = (0..self.catalog.assets().len())
            .map(|asset| {
                let asset = u16::try_from(asset).unwrap_or(u16::MAX);
                self.accounts
                    .column(asset)
                    .iter()
                    .map(|h| [h.available, h.locked, h.lent, h.borrowed, h.unfunded, h.reserved])
                    .collect()
            })
            .collect();
        SnapshotState {
            seq: self.seq,
            last_ts: self.last_ts,
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            operator_nonces: self.operator_nonces,
            assets,
            markets,
            accounts,
            balances,
            orders: self.snapshot_orders(),
            books: self.snapshot_books(),
            positions: self.snapshot_positions(),
            fees: self.fees.clone(),
            insurance: self.insurance.clone(),
            supply: self.supply.clone(),
            pools: self
                .pools
                .iter()
                .map(|p| PoolRecord {
                    values: [p.supply_index, p.borrow_index, p.lent_principal, p.borrowed_principal, p.watch_index],
                    fund_principal: p.fund_principal,
                    unfunded: p.unfunded,
                    accrued_ts: p.accrued_ts,
                })
                .collect(),
            uncovered: self.uncovered.clone(),
            debtors: self.debtors.clone(),
            deposited: self.deposited.clone(),
            withdrawn: self.withdrawn.clone(),
        }
    }

    fn snapshot_orders(&self) -> Vec<OrderRecord> {
        let mut orders = Vec::with_capacity(self.orders.len());
        for (_, account) in self.accounts.iter() {
            let mut slot = account.first_order;
            while slot != NIL {
                let o = self.orders.get(slot);
                let side = u8::from(o.side == Side::Sell);
                orders.push(OrderRecord {
                    id: o.id,
                    client_id: o.client_id,
                    account: o.account,
                    market: o.market,
                    flags: side | (u8::from(o.reduce_only) << 1) | (tif_code(o.tif) << 4),
                    price: o.price,
                    remaining: o.remaining,
                    locked: o.locked,
                    lock_per_lot: o.lock_per_lot,
                });
                slot = o.account_next;
            }
        }
        orders
    }

    fn snapshot_books(&self) -> Vec<Vec<u64>> {
        self.books
            .iter()
            .map(|book| {
                let mut ids = Vec::new();
                for side in [&book.bids, &book.asks] {
                    for level in side.iter_best_first() {
                        let mut slot = self.levels.get(level).head;
                        while slot != NIL {
                            let order = self.orders.get(slot);
                            ids.push(order.id);
                            slot = order.next;
                        }
                    }
                }
                ids
            })
            .collect()
    }

    fn snapshot_positions(&self) -> Vec<PositionsRecord> {
        self.perp_markets
            .iter()
            .map(|&m| {
                let p = &self.positions[usize::from(m)];
                let holders = p
                    .holders
                    .iter()
                    .enumerate()
                    .map(|(i, &a)| (a, p.size[a as usize], p.band_low[i], p.band_high[i]))
                    .collect();
                PositionsRecord { market: m, insurance: p.insurance, holders }
            })
            .collect()
    }

    /// Rebuilds an engine from a validated archived state.
    ///
    /// # Errors
    /// [`SnapshotError::Limits`] when the state does not fit `limits`,
    /// [`SnapshotError::Inconsistent`] on an impossible value.
    pub fn from_snapshot_state(
        genesis: Genesis,
        limits: Limits,
        state: &ArchivedSnapshotState,
    ) -> Result<Self, SnapshotError> {
        let state: SnapshotState = rkyv::deserialize::<SnapshotState, rancor::Error>(state)
            .map_err(|e| SnapshotError::Archive(e.to_string()))?;
        let mut engine = Engine::new(genesis, limits).map_err(|e| SnapshotError::Limits(e.to_string()))?;
        engine.restore_listings(&state)?;
        engine.restore_accounts(&state)?;
        engine.restore_orders(&state)?;
        engine.restore_positions(&state)?;
        engine.seq = state.seq;
        engine.last_ts = state.last_ts;
        engine.next_order_id = state.next_order_id;
        engine.next_trade_id = state.next_trade_id;
        engine.operator_nonces = state.operator_nonces;
        let assets = state.assets.len();
        if state.pools.len() != assets {
            return Err(SnapshotError::Inconsistent("pools per asset".into()));
        }
        for (column, name) in [(&state.fees, "fees"), (&state.supply, "supply"), (&state.uncovered, "uncovered")] {
            if column.len() != assets {
                return Err(SnapshotError::Inconsistent(format!(
                    "{name} has {} entries for {assets} assets",
                    column.len()
                )));
            }
        }
        if state.insurance.len() != assets {
            return Err(SnapshotError::Inconsistent("insurance per asset".into()));
        }
        if state.deposited.len() != assets || state.withdrawn.len() != assets {
            return Err(SnapshotError::Inconsistent("deposit and withdrawal totals per asset".into()));
        }
        engine.fees.clone_from(&state.fees);
        engine.insurance.clone_from(&state.insurance);
        engine.supply.clone_from(&state.supply);
        engine.uncovered.clone_from(&state.uncovered);
        engine.restore_pools(&state)?;
        engine.deposited.clone_from(&state.deposited);
        engine.withdrawn.clone_from(&state.withdrawn);
        engine.check_invariants().map_err(SnapshotError::Inconsistent)?;
        Ok(engine)
    }

    fn restore_listings(&mut self, state: &SnapshotState) -> Result<(), SnapshotError> {
        if state.assets.len() > usize::from(self.limits.max_assets)
            || state.markets.len() > usize::from(self.limits.max_markets)
        {
            return Err(SnapshotError::Limits(format!(
                "{} assets, {} markets",
                state.assets.len(),
                state.markets.len()
            )));
        }
        for a in &state.assets {
            let [collateral_weight, borrow_weight, rate_base, rate_kink_utilization, rate_at_kink, rate_max, reserve_factor, max_utilization, index_price] =
                a.ratios;
            let symbol = Symbol(a.symbol);
            if !symbol.is_valid() || self.catalog.lookup(&symbol).is_some() {
                return Err(SnapshotError::Inconsistent(format!("asset symbol {:?}", symbol)));
            }
            self.install_asset(Asset {
                symbol,
                decimals: a.decimals,
                collateral_weight,
                borrow_weight,
                rate_base,
                rate_kink_utilization,
                rate_at_kink,
                rate_max,
                reserve_factor,
                max_utilization,
                index_price,
            });
        }
        for m in &state.markets {
            let [tick_units, maker_fee, taker_fee, imf, mmf, last_mark] = m.values;
            let symbol = Symbol(m.symbol);
            let assets = state.assets.len();
            if !symbol.is_valid()
                || self.catalog.lookup(&symbol).is_some()
                || usize::from(m.base) >= assets
                || usize::from(m.quote) >= assets
                || m.step_units == 0
                || tick_units <= 0
            {
                return Err(SnapshotError::Inconsistent(format!("market {:?}", symbol)));
            }
            self.install_market(Market {
                symbol,
                kind: if m.perp { MarketKind::Perp } else { MarketKind::Spot },
                base: m.base,
                quote: m.quote,
                price_decimals: m.price_decimals,
                tick_units,
                step_units: m.step_units,
                maker_fee,
                taker_fee,
                imf,
                mmf,
                funding_interval_ns: m.funding_interval_ns,
                notional_exp: m.notional_exp,
                last_mark,
                lot_notional: Market::whole_lot_notional(m.step_units, m.notional_exp),
            });
        }
        Ok(())
    }

    fn restore_accounts(&mut self, state: &SnapshotState) -> Result<(), SnapshotError> {
        if state.accounts.len() > self.limits.max_accounts as usize {
            return Err(SnapshotError::Limits(format!(
                "{} accounts > max {}",
                state.accounts.len(),
                self.limits.max_accounts
            )));
        }
        for (pubkey, nonce) in &state.accounts {
            if self.accounts.by_key(pubkey).is_some() {
                return Err(SnapshotError::Inconsistent("a key registered twice".into()));
            }
            self.install_account(*pubkey, *nonce);
        }
        if state.balances.len() != state.assets.len() {
            return Err(SnapshotError::Inconsistent("balance columns per asset".into()));
        }
        for (asset, column) in state.balances.iter().enumerate() {
            if column.len() != state.accounts.len() {
                return Err(SnapshotError::Inconsistent(format!("balance column {asset} length")));
            }
            let asset = u16::try_from(asset).unwrap_or(u16::MAX);
            for (index, [available, locked, lent, borrowed, unfunded, reserved]) in column.iter().enumerate() {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                *self.accounts.holding_mut(index, asset) = Holding {
                    available: *available,
                    locked: *locked,
                    lent: *lent,
                    borrowed: *borrowed,
                    unfunded: *unfunded,
                    reserved: *reserved,
                };
            }
        }
        Ok(())
    }

    /// The pools, the debtor list (in its order) and the uncovered losses; every principal
    /// must sum to its pool's total.
    fn restore_pools(&mut self, state: &SnapshotState) -> Result<(), SnapshotError> {
        for (a, record) in state.pools.iter().enumerate() {
            let [supply_index, borrow_index, lent_principal, borrowed_principal, watch_index] = record.values;
            let asset = u16::try_from(a).unwrap_or(u16::MAX);
            let column = self.accounts.column(asset);
            let lent: u128 = column.iter().map(|h| u128::from(h.lent)).sum();
            let borrowed: u128 = column.iter().map(|h| u128::from(h.borrowed)).sum();
            let unfunded: u128 = column.iter().map(|h| u128::from(h.unfunded)).sum();
            if lent + u128::from(record.fund_principal) != lent_principal
                || borrowed != borrowed_principal
                || unfunded != u128::from(record.unfunded)
            {
                return Err(SnapshotError::Inconsistent(format!("pool {a} principals differ from its accounts'")));
            }
            if borrow_index < crate::lending::INDEX_ONE || supply_index == 0 && lent_principal > 0 {
                return Err(SnapshotError::Inconsistent(format!("pool {a} indices")));
            }
            self.pools[a] = crate::lending::Pool {
                supply_index,
                borrow_index,
                lent_principal,
                borrowed_principal,
                fund_principal: record.fund_principal,
                unfunded: record.unfunded,
                accrued_ts: record.accrued_ts,
                watch_index,
            };
            self.unfunded_open |= record.unfunded != 0;
        }
        for &account in &state.debtors {
            if account as usize >= state.accounts.len() || self.is_debtor(account) {
                return Err(SnapshotError::Inconsistent(format!("debtor {account}")));
            }
            self.debtor_slot[account as usize] = u32::try_from(self.debtors.len()).unwrap_or(NIL);
            self.debtors.push(account);
        }
        for index in 0..u32::try_from(state.accounts.len()).unwrap_or(u32::MAX) {
            let before = self.is_debtor(index);
            self.sync_debtor(index);
            if before != self.is_debtor(index) {
                return Err(SnapshotError::Inconsistent(format!("debtor list misses or adds account {index}")));
            }
        }
        Ok(())
    }

    fn restore_orders(&mut self, state: &SnapshotState) -> Result<(), SnapshotError> {
        if state.orders.len() > self.limits.max_orders as usize {
            return Err(SnapshotError::Limits(format!(
                "{} orders > max {}",
                state.orders.len(),
                self.limits.max_orders
            )));
        }
        for o in &state.orders {
            if o.account as usize >= state.accounts.len()
                || usize::from(o.market) >= state.markets.len()
                || self.orders.slot_of(o.id).is_some()
            {
                return Err(SnapshotError::Inconsistent(format!("order {}", o.id)));
            }
            let order = Order {
                id: o.id,
                client_id: o.client_id,
                account: o.account,
                market: o.market,
                side: if o.flags & 1 == 1 { Side::Sell } else { Side::Buy },
                tif: tif_from(o.flags >> 4)?,
                reduce_only: o.flags & 2 == 2,
                price: o.price,
                remaining: o.remaining,
                locked: o.locked,
                lock_per_lot: o.lock_per_lot,
                level: NIL,
                prev: NIL,
                next: NIL,
                account_prev: NIL,
                account_next: NIL,
            };
            let slot = self.orders.insert(order);
            self.link_account_order(o.account, slot);
        }
        if state.books.len() != state.markets.len() {
            return Err(SnapshotError::Inconsistent("books per market".into()));
        }
        let mut rested = 0usize;
        for (m, ids) in state.books.iter().enumerate() {
            for id in ids {
                let slot = self
                    .orders
                    .slot_of(*id)
                    .ok_or_else(|| SnapshotError::Inconsistent(format!("book lists unknown order {id}")))?;
                let order = self.orders.get(slot);
                if usize::from(order.market) != m || order.level != NIL {
                    return Err(SnapshotError::Inconsistent(format!("order {id} in the wrong book or twice")));
                }
                if self.levels.is_full() || !self.books[m].side(order.side).has_room_for(order.price) {
                    return Err(SnapshotError::Limits("price levels".into()));
                }
                self.books[m].rest(&mut self.orders, &mut self.levels, slot);
                rested += 1;
            }
        }
        if rested != state.orders.len() {
            return Err(SnapshotError::Inconsistent(format!(
                "{rested} orders in books, {} listed",
                state.orders.len()
            )));
        }
        Ok(())
    }

    fn restore_positions(&mut self, state: &SnapshotState) -> Result<(), SnapshotError> {
        for record in &state.positions {
            let m = usize::from(record.market);
            if m >= self.positions.len() || self.catalog.market(record.market).kind != MarketKind::Perp {
                return Err(SnapshotError::Inconsistent(format!("positions for market {m}")));
            }
            self.positions[m].insurance = record.insurance;
            for &(account, size, low, high) in &record.holders {
                if account as usize >= self.accounts.len() || size == 0 {
                    return Err(SnapshotError::Inconsistent(format!("position of account index {account}")));
                }
                self.positions[m].set(account, size);
                self.positions[m].set_band(account, low, high);
            }
        }
        Ok(())
    }
}

/// Encodes a snapshot file: archive, checksum, length, magic.
///
/// # Errors
/// [`SnapshotError::Archive`] if serialisation fails (out of memory).
pub fn encode_snapshot(engine: &Engine, journal_hash: u64, attest_digest: [u8; 32]) -> Result<Vec<u8>, SnapshotError> {
    let file = SnapshotFile {
        header: SnapshotHeader {
            version: SNAPSHOT_VERSION,
            seq: engine.seq(),
            state_hash: engine.state_hash(),
            journal_hash,
            attest_digest,
        },
        state: engine.snapshot_state(),
    };
    let archive = rkyv::to_bytes::<rancor::Error>(&file).map_err(|e| SnapshotError::Archive(e.to_string()))?;
    let mut out = Vec::with_capacity(archive.len() + TRAILER_BYTES);
    out.extend_from_slice(&archive);
    out.extend_from_slice(blake3::hash(&archive).as_bytes());
    out.extend_from_slice(&(archive.len() as u64).to_le_bytes());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    Ok(out)
}

/// Checks a snapshot file's trailer and checksum and returns its validated archive bytes,
/// copied into an aligned buffer.
///
/// # Errors
/// [`SnapshotError`] naming the first check that fails.
pub fn open_snapshot(bytes: &[u8]) -> Result<rkyv::util::AlignedVec, SnapshotError> {
    if bytes.len() < TRAILER_BYTES {
        return Err(SnapshotError::Format(format!("{} bytes is shorter than the trailer", bytes.len())));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_BYTES);
    if &trailer[40..48] != SNAPSHOT_MAGIC {
        return Err(SnapshotError::Format("trailer magic missing".into()));
    }
    let mut length = [0u8; 8];
    length.copy_from_slice(&trailer[32..40]);
    if u64::from_le_bytes(length) != body.len() as u64 {
        return Err(SnapshotError::Format(format!(
            "archive length {} but {} bytes present",
            u64::from_le_bytes(length),
            body.len()
        )));
    }
    if blake3::hash(body).as_bytes() != &trailer[..32] {
        return Err(SnapshotError::Checksum);
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    rkyv::access::<ArchivedSnapshotFile, rancor::Error>(&aligned).map_err(|e| SnapshotError::Archive(e.to_string()))?;
    Ok(aligned)
}

/// Decodes a snapshot file into its header and a rebuilt engine whose state hash matches the
/// header's.
///
/// # Errors
/// [`SnapshotError`] naming the first check that fails.
pub fn decode_snapshot(
    bytes: &[u8],
    genesis: Genesis,
    limits: Limits,
) -> Result<(SnapshotHeader, Engine), SnapshotError> {
    let aligned = open_snapshot(bytes)?;
    let file = rkyv::access::<ArchivedSnapshotFile, rancor::Error>(&aligned)
        .map_err(|e| SnapshotError::Archive(e.to_string()))?;
    let header: SnapshotHeader = rkyv::deserialize::<SnapshotHeader, rancor::Error>(&file.header)
        .map_err(|e| SnapshotError::Archive(e.to_string()))?;
    if header.version != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version { found: header.version });
    }
    let engine = Engine::from_snapshot_state(genesis, limits, &file.state)?;
    let rebuilt = engine.state_hash();
    if rebuilt != header.state_hash || engine.seq() != header.seq {
        return Err(SnapshotError::StateHash {
            seq: header.seq,
            rebuilt: crate::signing::hex(&rebuilt),
            recorded: crate::signing::hex(&header.state_hash),
        });
    }
    Ok((header, engine))
}
