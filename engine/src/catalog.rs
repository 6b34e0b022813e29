//! Listed assets and markets, and the symbol table that resolves a wire [`Symbol`] to either.
//!
//! Listings only grow (by admin transactions) and are read on every order; they are stored in
//! vectors indexed by `u16` and resolved through a fixed-size deterministic hash table. Every
//! order names its market by symbol, so markets are also kept in a small direct-mapped cache
//! in front of that table ([`MarketCache`]): a hit costs a multiply and two word compares
//! instead of a full hash and probe. The cache is derived state: filled when a market is
//! listed, never evicted (a symbol never changes its market), and only ever answers what the
//! table would, so it cannot change an outcome.

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

/// Slots of the market cache: a power of two, a few times the markets a venue lists.
pub(crate) const MARKET_CACHE_SLOTS: usize = 64;
const _: () = assert!(MARKET_CACHE_SLOTS.is_power_of_two());

/// One cached market: its symbol as two little-endian words and its index plus one (0 marks an
/// empty slot, so that no symbol, not even all zero bytes, hits one).
#[derive(Clone, Copy, Default)]
struct CachedMarket {
    low: u64,
    high: u64,
    index_plus_one: u32,
}

/// A direct-mapped cache from a market symbol to its index, in front of the symbol table.
///
/// Each symbol has one slot, chosen by a multiplicative hash of its bytes. A market takes its
/// slot when listed unless an earlier market holds it (a collision); such a market, an asset
/// symbol and an unknown symbol all miss and are resolved by the table.
#[derive(Clone)]
pub(crate) struct MarketCache {
    slots: [CachedMarket; MARKET_CACHE_SLOTS],
}

impl MarketCache {
    fn new() -> Self {
        Self { slots: [CachedMarket::default(); MARKET_CACHE_SLOTS] }
    }

    /// The symbol's two words.
    #[inline]
    fn words(symbol: &[u8; 16]) -> (u64, u64) {
        let mut low = [0u8; 8];
        let mut high = [0u8; 8];
        low.copy_from_slice(&symbol[..8]);
        high.copy_from_slice(&symbol[8..]);
        (u64::from_le_bytes(low), u64::from_le_bytes(high))
    }

    /// The slot of a symbol: the top bits of a multiplicative (Fibonacci) hash.
    #[inline]
    fn slot(low: u64, high: u64) -> usize {
        const SHIFT: u32 = 64 - MARKET_CACHE_SLOTS.trailing_zeros();
        // Truncation is intended: the shift leaves fewer bits than a slot index has.
        ((low ^ high.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> SHIFT) as usize
    }

    /// The cached index of the market named `symbol`, or `None` (not a market, or not cached).
    #[inline]
    fn get(&self, symbol: &[u8; 16]) -> Option<u16> {
        let (low, high) = Self::words(symbol);
        let cached = &self.slots[Self::slot(low, high)];
        if cached.low == low && cached.high == high && cached.index_plus_one != 0 {
            u16::try_from(cached.index_plus_one - 1).ok()
        } else {
            None
        }
    }

    /// Caches a newly listed market unless its slot is taken.
    fn insert(&mut self, symbol: &[u8; 16], index: u16) {
        let (low, high) = Self::words(symbol);
        let cached = &mut self.slots[Self::slot(low, high)];
        if cached.index_plus_one == 0 {
            *cached = CachedMarket { low, high, index_plus_one: u32::from(index) + 1 };
        }
    }
}

/// Listed assets and markets.
#[derive(Clone)]
pub struct Catalog {
    assets: Vec<Asset>,
    markets: Vec<Market>,
    symbols: IdTable<[u8; 16]>,
    market_cache: MarketCache,
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
            market_cache: MarketCache::new(),
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

    /// The market index named by `symbol` (the cache first, then the symbol table).
    #[must_use]
    #[inline]
    pub fn market_index(&self, symbol: &Symbol) -> Option<u16> {
        if let Some(index) = self.market_cache.get(&symbol.0) {
            debug_assert_eq!(self.lookup(symbol), Some(Listing::Market(index)), "the cache agrees with the table");
            return Some(index);
        }
        self.market_index_uncached(symbol)
    }

    /// [`Catalog::market_index`] through the symbol table alone.
    #[must_use]
    pub fn market_index_uncached(&self, symbol: &Symbol) -> Option<u16> {
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
        self.market_cache.insert(&market.symbol.0, index);
        self.markets.push(market);
        index
    }
}

/// Default weights when a listing leaves them out: full collateral value, debts at face value.
pub const DEFAULT_WEIGHT: i64 = RATIO_ONE;

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(text: &str) -> Symbol {
        Symbol::new(text).unwrap_or_else(|| panic!("symbol {text}"))
    }

    fn asset(text: &str) -> Asset {
        Asset {
            symbol: symbol(text),
            decimals: 6,
            collateral_weight: DEFAULT_WEIGHT,
            borrow_weight: DEFAULT_WEIGHT,
            rate_base: 0,
            rate_kink_utilization: 0,
            rate_at_kink: 0,
            rate_max: 0,
            reserve_factor: 0,
            max_utilization: 0,
            index_price: 0,
        }
    }

    fn market(text: &str) -> Market {
        Market {
            symbol: symbol(text),
            kind: MarketKind::Spot,
            base: 1,
            quote: 0,
            price_decimals: 2,
            tick_units: 1,
            step_units: 1,
            maker_fee: 0,
            taker_fee: 0,
            imf: 0,
            mmf: 0,
            funding_interval_ns: 0,
            notional_exp: 0,
            last_mark: 0,
            lot_notional: 1,
        }
    }

    /// Every lookup answers what the symbol table answers, cached or not.
    fn assert_agrees(catalog: &Catalog, symbol: &Symbol) {
        assert_eq!(catalog.market_index(symbol), catalog.market_index_uncached(symbol), "{:?}", symbol.0);
    }

    #[test]
    fn unknown_and_asset_symbols_are_not_markets() {
        let mut catalog = Catalog::new(4, 4);
        catalog.push_asset(asset("USDC"));
        assert_eq!(catalog.market_index(&symbol("USDC")), None);
        assert_eq!(catalog.market_index(&symbol("BTC-USDC")), None);
        // The all-zero symbol must not hit an empty cache slot.
        assert_eq!(catalog.market_index(&Symbol::default()), None);
        assert_eq!(catalog.market_index(&Symbol([0xff; 16])), None);
    }

    #[test]
    fn a_market_listed_later_is_found() {
        let mut catalog = Catalog::new(4, 4);
        catalog.push_asset(asset("USDC"));
        assert_eq!(catalog.market_index(&symbol("BTC-USDC")), None);
        assert_eq!(catalog.push_market(market("BTC-USDC")), 0);
        assert_eq!(catalog.market_index(&symbol("BTC-USDC")), Some(0));
        assert_eq!(catalog.push_market(market("ETH-USDC")), 1);
        assert_eq!(catalog.market_index(&symbol("ETH-USDC")), Some(1));
        assert_eq!(catalog.market_index(&symbol("BTC-USDC")), Some(0));
        assert_eq!(catalog.market_index(&symbol("USDC")), None);
    }

    #[test]
    fn markets_colliding_in_the_cache_all_resolve() {
        let count = 4 * MARKET_CACHE_SLOTS;
        let mut catalog = Catalog::new(1, u16::try_from(count).unwrap_or(u16::MAX));
        let names: Vec<String> = (0..count).map(|i| format!("M{i:05}-USDC")).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(usize::from(catalog.push_market(market(name))), i);
        }
        let mut cached = 0;
        for (i, name) in names.iter().enumerate() {
            let symbol = symbol(name);
            assert_eq!(catalog.market_index(&symbol).map(usize::from), Some(i), "{name}");
            assert_agrees(&catalog, &symbol);
            cached += usize::from(catalog.market_cache.get(&symbol.0).is_some());
        }
        // Four markets per slot: at most one of each slot's is cached, the rest go to the table.
        assert!(cached <= MARKET_CACHE_SLOTS && cached > 0, "{cached}");
        for i in count..count + 100 {
            let symbol = symbol(&format!("M{i:05}-USDC"));
            assert_eq!(catalog.market_index(&symbol), None);
            assert_agrees(&catalog, &symbol);
        }
    }

    #[test]
    fn symbols_differing_in_either_word_do_not_alias() {
        let mut catalog = Catalog::new(1, 4);
        catalog.push_market(market("ABCDEFGH-1"));
        for other in ["ABCDEFGH-2", "ABCDEFGX-1", "ABCDEFGH", "ABCDEFGH-1X"] {
            assert_eq!(catalog.market_index(&symbol(other)), None, "{other}");
        }
        assert_eq!(catalog.market_index(&symbol("ABCDEFGH-1")), Some(0));
    }
}
