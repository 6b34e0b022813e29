//! Limits on everything the engine holds. Every pool is sized from these at start-up and
//! never grows on the hot path: running out is a `limit_reached` rejection, not an allocation.

/// Capacities of the engine's pre-allocated pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most accounts (user accounts; ids run 1..=max_accounts).
    pub max_accounts: u32,
    /// Most assets.
    pub max_assets: u16,
    /// Most markets (spot and perp together).
    pub max_markets: u16,
    /// Most resting orders across all books.
    pub max_orders: u32,
    /// Most price levels across all books.
    pub max_price_levels: u32,
    /// Most price levels on one side of one book.
    pub max_levels_per_side: u32,
    /// Most resting orders of one account.
    pub max_orders_per_account: u32,
    /// Most fills one taker order may make in one tx; the remainder is canceled (`fill_limit`).
    pub max_fills_per_tx: u32,
}

/// Hard ceiling on assets: symbols and per-asset columns are indexed by `u16`.
pub const MAX_ASSETS_CEILING: u16 = 256;
/// Hard ceiling on markets.
pub const MAX_MARKETS_CEILING: u16 = 1024;
/// Most decimals an asset may have (amounts are `u64` units).
pub const MAX_ASSET_DECIMALS: u8 = 18;
/// Most decimal places of a price (tick) or quantity (step).
pub const MAX_PRICE_DECIMALS: u32 = 12;
/// Total supply of one asset the exchange may hold, in units: deposits beyond it are
/// rejected (`overflow`). Bounding supply bounds every balance, so that settlement
/// arithmetic inside a tx cannot overflow once the tx is accepted.
pub const MAX_SUPPLY_UNITS: u64 = 1 << 62;
/// Largest price, in price units.
pub const MAX_PRICE_UNITS: i64 = 1 << 53;
/// Largest order quantity, in base units.
pub const MAX_QTY_UNITS: u64 = 1 << 62;
/// Largest fee rate magnitude, as a ratio (10%).
pub const MAX_FEE_RATIO: i64 = 10_000_000;

impl Limits {
    /// Production-sized limits: a million accounts and orders.
    #[must_use]
    pub const fn production() -> Self {
        Self {
            max_accounts: 1 << 20,
            max_assets: 64,
            max_markets: 256,
            max_orders: 1 << 20,
            max_price_levels: 1 << 18,
            max_levels_per_side: 1 << 14,
            max_orders_per_account: 1024,
            max_fills_per_tx: 4096,
        }
    }

    /// Small limits for tests and tools: quick to allocate, easy to exhaust on purpose.
    #[must_use]
    pub const fn small() -> Self {
        Self {
            max_accounts: 1024,
            max_assets: 16,
            max_markets: 32,
            max_orders: 4096,
            max_price_levels: 2048,
            max_levels_per_side: 512,
            max_orders_per_account: 256,
            max_fills_per_tx: 1024,
        }
    }

    /// Checks the limits against the hard ceilings.
    ///
    /// # Errors
    /// A message naming the first limit out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_assets == 0 || self.max_assets > MAX_ASSETS_CEILING {
            return Err(format!("max_assets {} not in 1..={MAX_ASSETS_CEILING}", self.max_assets));
        }
        if self.max_markets == 0 || self.max_markets > MAX_MARKETS_CEILING {
            return Err(format!("max_markets {} not in 1..={MAX_MARKETS_CEILING}", self.max_markets));
        }
        if self.max_accounts == 0 || self.max_accounts >= u32::MAX / 2 {
            return Err(format!("max_accounts {} out of range", self.max_accounts));
        }
        if self.max_orders == 0 || self.max_orders >= u32::MAX / 2 {
            return Err(format!("max_orders {} out of range", self.max_orders));
        }
        if self.max_price_levels == 0 || self.max_price_levels >= u32::MAX / 2 {
            return Err(format!("max_price_levels {} out of range", self.max_price_levels));
        }
        if self.max_levels_per_side == 0 || self.max_orders_per_account == 0 || self.max_fills_per_tx == 0 {
            return Err("per-side, per-account and per-tx limits must be positive".to_string());
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::production()
    }
}
