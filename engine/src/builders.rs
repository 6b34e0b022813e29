//! Builders for transactions from the text a user has at hand (symbols and decimal strings),
//! so that an embedding never writes a [`Dec`]'s mantissa and scale by hand:
//!
//! ```
//! use verex_engine::tx::{AddMarket, Op, Place, Side, TimeInForce};
//!
//! let listing = AddMarket::spot("BTC-USDC", "BTC", "USDC", "0.01", "0.0001")?.fees("0.0002", "0.0005")?;
//! let order = Place::limit("BTC-USDC", Side::Buy, "100.5", "0.25")?.tif(TimeInForce::PostOnly).client_id(7);
//! let op: Op = order.into();
//! assert!(matches!(op, Op::Place(_)));
//! # let _ = listing;
//! # Ok::<(), verex_engine::builders::BuildError>(())
//! ```
//!
//! A builder checks only the text (a valid symbol, a decimal string); the engine checks the
//! rest (grids, balances, limits) and answers with a `rejected` event.

use crate::text::decimal::parse_dec;
use crate::tx::{
    AddAsset, AddMarket, Amend, AssetAmount, Dec, Deposit, MarketKind, Op, OrderRef, OrderType, Place, Side, Symbol,
    TimeInForce,
};

/// A field a builder could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BuildError {
    /// The field (`market`, `price`, ...).
    pub field: &'static str,
    /// What is wrong with its text.
    pub reason: String,
}

fn symbol(field: &'static str, text: &str) -> Result<Symbol, BuildError> {
    Symbol::new(text).ok_or_else(|| BuildError { field, reason: format!("{text:?} is not a valid symbol") })
}

fn dec(field: &'static str, text: &str) -> Result<Dec, BuildError> {
    parse_dec(text).map_err(|e| BuildError { field, reason: e.to_string() })
}

impl AddAsset {
    /// An asset with the defaults of [`AddAsset::new`], named by text.
    ///
    /// # Errors
    /// [`BuildError`] for a bad symbol.
    pub fn named(symbol_text: &str, decimals: u8) -> Result<Self, BuildError> {
        Ok(Self::new(symbol("symbol", symbol_text)?, decimals))
    }
}

impl AddMarket {
    /// A spot market without fees (add them with [`AddMarket::fees`]).
    ///
    /// # Errors
    /// [`BuildError`] naming the first bad field.
    pub fn spot(market: &str, base: &str, quote: &str, tick: &str, step: &str) -> Result<Self, BuildError> {
        Ok(Self {
            symbol: symbol("symbol", market)?,
            kind: MarketKind::Spot,
            base: symbol("base", base)?,
            quote: symbol("quote", quote)?,
            tick: dec("tick", tick)?,
            step: dec("step", step)?,
            maker_fee: Dec::ZERO,
            taker_fee: Dec::ZERO,
            imf: Dec::ZERO,
            mmf: Dec::ZERO,
            funding_interval_ns: 0,
        })
    }

    /// A perpetual market settled in `settle`, with initial and maintenance margin fractions,
    /// without fees and with funding on demand only (`funding_interval_ns` 0).
    ///
    /// # Errors
    /// [`BuildError`] naming the first bad field.
    pub fn perp(
        market: &str,
        base: &str,
        settle: &str,
        (tick, step): (&str, &str),
        (imf, mmf): (&str, &str),
    ) -> Result<Self, BuildError> {
        Ok(Self {
            kind: MarketKind::Perp,
            imf: dec("imf", imf)?,
            mmf: dec("mmf", mmf)?,
            ..Self::spot(market, base, settle, tick, step)?
        })
    }

    /// The same market with these maker and taker fee rates (a negative maker fee is a rebate).
    ///
    /// # Errors
    /// [`BuildError`] for a bad decimal.
    pub fn fees(self, maker: &str, taker: &str) -> Result<Self, BuildError> {
        Ok(Self { maker_fee: dec("maker_fee", maker)?, taker_fee: dec("taker_fee", taker)?, ..self })
    }
}

impl Deposit {
    /// Custody credits `amount` of `asset` to `account`.
    ///
    /// # Errors
    /// [`BuildError`] naming the first bad field.
    pub fn of(account: u64, asset: &str, amount: &str) -> Result<Self, BuildError> {
        Ok(Self { account, asset: symbol("asset", asset)?, amount: dec("amount", amount)?, chain_ref: [0; 32] })
    }
}

impl AssetAmount {
    /// An asset and an amount (`withdraw`, `lend`, `redeem`, `borrow`, `repay`).
    ///
    /// # Errors
    /// [`BuildError`] naming the first bad field.
    pub fn of(asset: &str, amount: &str) -> Result<Self, BuildError> {
        Ok(Self { asset: symbol("asset", asset)?, amount: dec("amount", amount)? })
    }
}

impl Place {
    /// A good-till-canceled limit order.
    ///
    /// # Errors
    /// [`BuildError`] naming the first bad field.
    pub fn limit(market: &str, side: Side, price: &str, qty: &str) -> Result<Self, BuildError> {
        Ok(Self {
            market: symbol("market", market)?,
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            reduce_only: false,
            price: dec("price", price)?,
            qty: dec("qty", qty)?,
            client_id: 0,
        })
    }

    /// A market order (immediate-or-cancel).
    ///
    /// # Errors
    /// [`BuildError`] naming the first bad field.
    pub fn market(market: &str, side: Side, qty: &str) -> Result<Self, BuildError> {
        Ok(Self {
            order_type: OrderType::Market,
            tif: TimeInForce::Ioc,
            price: Dec::ZERO,
            ..Self::limit(market, side, "0", qty)?
        })
    }

    /// The same order with another time in force.
    #[must_use]
    pub fn tif(self, tif: TimeInForce) -> Self {
        Self { tif, ..self }
    }

    /// The same order with the client's own id.
    #[must_use]
    pub fn client_id(self, client_id: u64) -> Self {
        Self { client_id, ..self }
    }

    /// The same order, reduce-only (perps).
    #[must_use]
    pub fn reduce_only(self) -> Self {
        Self { reduce_only: true, ..self }
    }
}

impl OrderRef {
    /// An order by its exchange id.
    ///
    /// # Errors
    /// [`BuildError`] for a bad market symbol.
    pub fn id(market: &str, order_id: u64) -> Result<Self, BuildError> {
        Ok(Self { market: symbol("market", market)?, order_id, client_id: 0 })
    }

    /// An order by the client's id.
    ///
    /// # Errors
    /// [`BuildError`] for a bad market symbol.
    pub fn client(market: &str, client_id: u64) -> Result<Self, BuildError> {
        Ok(Self { market: symbol("market", market)?, order_id: 0, client_id })
    }
}

impl Amend {
    /// A new price and/or a smaller quantity (`None`: unchanged).
    ///
    /// # Errors
    /// [`BuildError`] for a bad decimal.
    pub fn to(order: OrderRef, price: Option<&str>, qty: Option<&str>) -> Result<Self, BuildError> {
        Ok(Self {
            order,
            price: price.map(|p| dec("price", p)).transpose()?,
            qty: qty.map(|q| dec("qty", q)).transpose()?,
        })
    }
}

impl From<AddAsset> for Op {
    fn from(op: AddAsset) -> Self {
        Op::AddAsset(op)
    }
}

impl From<AddMarket> for Op {
    fn from(op: AddMarket) -> Self {
        Op::AddMarket(op)
    }
}

impl From<Deposit> for Op {
    fn from(op: Deposit) -> Self {
        Op::Deposit(op)
    }
}

impl From<Place> for Op {
    fn from(op: Place) -> Self {
        Op::Place(op)
    }
}

impl From<Amend> for Op {
    fn from(op: Amend) -> Self {
        Op::Amend(op)
    }
}
