//! Listed assets and markets, and the symbol table that resolves a wire [`Symbol`] to either.
//!
//! Listings only grow (by admin transactions) and are read on every order; they are stored in
//! vectors indexed by `u16` and resolved through a fixed-size deterministic hash table.

use crate::fixed::RATIO_ONE;
use crate::id_table::IdTable;
use crate::tx::{MarketKind, Symbol};

/// A listed asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    /// Ticker.
    pub symbol: Symbol,
    /// Amounts are in `10^-decimals` of the asset.
    pub decimals: u8,
    /// Haircut on positive balances in margin, ratio units (0..=1).
    pub collateral_weight: i64,
    /// Multiplier on debts in margin, ratio units (>= 1).
    pub borrow_weight: i64,
    /// Yearly lending rate at zero utilisation, ratio units.
    pub rate_base: i64,
    /// Utilisation of the rate curve's kink, ratio units.
    pub rate_kink_utilization: i64,
    /// Yearly rate at the kink, ratio units.
    pub rate_at_kink: i64,
    /// Yearly rate at full utilisation, ratio units.
    pub rate_max: i64,
    /// Share of interest paid to the insurance fund, ratio units (0..=1).
    pub reserve_factor: i64,
    /// Utilisation above which a borrow or redeem is refused, ratio units (0..=1).
    pub max_utilization: i64,
    /// Last index price published by the oracle, in [`INDEX_PRICE_DECIMALS`] places
    /// (0 = none yet).
    pub index_price: i64,
}

/// Decimal places of asset index prices (the value of one whole unit of the asset).
pub const INDEX_PRICE_DECIMALS: u32 = 8;

/// A listed market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Market {
    /// Name.
    pub symbol: Symbol,
    /// Spot or perp.
    pub kind: MarketKind,
    /// Base asset index.
    pub base: u16,
    /// Quote (spot) or settle (perp) asset index.
    pub quote: u16,
    /// Decimal places of prices in this market: a price is `price_units × 10^-price_decimals`.
    pub price_decimals: u32,
    /// The tick in price units.
    pub tick_units: i64,
    /// The step in base-asset units.
    pub step_units: u64,
    /// Maker fee, ratio units (negative: rebate).
    pub maker_fee: i64,
    /// Taker fee, ratio units.
    pub taker_fee: i64,
    /// Perp initial margin fraction, ratio units.
    pub imf: i64,
    /// Perp maintenance margin fraction, ratio units.
    pub mmf: i64,
    /// Perp funding interval, ns.
    pub funding_interval_ns: u64,
    /// `quote_decimals − price_decimals − base_decimals`: the notional of `price_units ×
    /// qty_units` in quote units is that product times `10^notional_exp`.
    pub notional_exp: i32,
    /// Perp: last mark price in price units (0 = none yet).
    pub last_mark: i64,
    /// The notional of one lot at one price unit, in quote units, when it is a whole number
    /// (`step_units × 10^notional_exp`), else 0: derived from the two at listing (see
    /// [`Market::whole_lot_notional`]); it lets a lot's lock be computed without a division.
    pub lot_notional: u64,
}

impl Market {
    /// `step_units × 10^notional_exp` when it is a whole number that fits, else 0.
    #[must_use]
    pub fn whole_lot_notional(step_units: u64, notional_exp: i32) -> u64 {
        let Some(pow) = 10u64.checked_pow(notional_exp.unsigned_abs()) else {
            return 0;
        };
        if notional_exp >= 0 {
            step_units.checked_mul(pow).unwrap_or(0)
        } else if step_units.is_multiple_of(pow) {
            step_units / pow
        } else {
            0
        }
    }

    /// The largest fee rate an order may pay, for locking the worst case (never negative).
    #[must_use]
    pub fn max_fee(&self) -> i64 {
        self.maker_fee.max(self.taker_fee).max(0)
    }
}

/// What a symbol names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// An asset index.
    Asset(u16),
    /// A market index.
    Market(u16),
}

/// Listed assets and markets.
#[derive(Clone)]
pub struct Catalog {
    assets: Vec<Asset>,
    markets: Vec<Market>,
    symbols: IdTable<[u8; 16]>,
    max_assets: usize,
    max_markets: usize,
}

/// Tag bit that marks a market in the symbol table's value.
const MARKET_TAG: u32 = 1 << 31;

impl Catalog {
    /// An empty catalog with room for the given numbers of listings.
    #[must_use]
    pub fn new(max_assets: u16, max_markets: u16) -> Self {
        let max_assets = usize::from(max_assets);
        let max_markets = usize::from(max_markets);
        Self {
            assets: Vec::with_capacity(max_assets),
            markets: Vec::with_capacity(max_markets),
            symbols: IdTable::with_capacity(max_assets + max_markets),
            max_assets,
            max_markets,
        }
    }

    /// What `symbol` names, if anything.
    #[must_use]
    pub fn lookup(&self, symbol: &Symbol) -> Option<Listing> {
        let value = self.symbols.get(&symbol.0)?;
        let index = u16::try_from(value & !MARKET_TAG).ok()?;
        Some(if value & MARKET_TAG != 0 { Listing::Market(index) } else { Listing::Asset(index) })
    }

    /// The asset index named by `symbol`.
    #[must_use]
    pub fn asset_index(&self, symbol: &Symbol) -> Option<u16> {
        match self.lookup(symbol)? {
            Listing::Asset(index) => Some(index),
            Listing::Market(_) => None,
        }
    }

    /// The market index named by `symbol`.
    #[must_use]
    pub fn market_index(&self, symbol: &Symbol) -> Option<u16> {
        match self.lookup(symbol)? {
            Listing::Market(index) => Some(index),
            Listing::Asset(_) => None,
        }
    }

    /// All assets, by index.
    #[must_use]
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    /// All markets, by index.
    #[must_use]
    pub fn markets(&self) -> &[Market] {
        &self.markets
    }

    /// One asset.
    #[must_use]
    pub fn asset(&self, index: u16) -> &Asset {
        &self.assets[usize::from(index)]
    }

    /// One market.
    #[must_use]
    pub fn market(&self, index: u16) -> &Market {
        &self.markets[usize::from(index)]
    }

    pub(crate) fn asset_mut(&mut self, index: u16) -> &mut Asset {
        &mut self.assets[usize::from(index)]
    }

    pub(crate) fn market_mut(&mut self, index: u16) -> &mut Market {
        &mut self.markets[usize::from(index)]
    }

    /// Room for another asset?
    pub(crate) fn assets_full(&self) -> bool {
        self.assets.len() >= self.max_assets
    }

    /// Room for another market?
    pub(crate) fn markets_full(&self) -> bool {
        self.markets.len() >= self.max_markets
    }

    /// Lists an asset; the caller checked the symbol is free and there is room.
    pub(crate) fn push_asset(&mut self, asset: Asset) -> u16 {
        let index = u16::try_from(self.assets.len()).unwrap_or(u16::MAX);
        let inserted = self.symbols.insert(asset.symbol.0, u32::from(index));
        debug_assert!(inserted, "asset symbol must be free");
        self.assets.push(asset);
        index
    }

    /// Lists a market; the caller checked the symbol is free and there is room.
    pub(crate) fn push_market(&mut self, market: Market) -> u16 {
        let index = u16::try_from(self.markets.len()).unwrap_or(u16::MAX);
        let inserted = self.symbols.insert(market.symbol.0, u32::from(index) | MARKET_TAG);
        debug_assert!(inserted, "market symbol must be free");
        self.markets.push(market);
        index
    }
}

/// Default weights when a listing leaves them out: full collateral value, debts at face value.
pub const DEFAULT_WEIGHT: i64 = RATIO_ONE;
