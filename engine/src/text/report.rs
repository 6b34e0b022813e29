//! Query results by symbol and in decimal units, for an embedding that wants what the text
//! forms show (`"100.5"`, not `10050` price units) without rendering a whole state dump.
//!
//! ```
//! use verex_engine::client::{Client, Exchange};
//! use verex_engine::signing::{dev_account_key, dev_role_key, Role};
//! use verex_engine::text::report::{balance, depth};
//! use verex_engine::tx::{AddAsset, Op, Side};
//!
//! let mut exchange = Exchange::dev()?;
//! let mut admin = Client::new(dev_role_key(Role::Admin));
//! exchange.submit(&admin.sign(AddAsset::named("USDC", 6)?))?;
//! exchange.submit(&Client::new(dev_account_key(1)).sign(Op::CreateAccount))?;
//! let usdc = balance(exchange.engine(), 1, "USDC").expect("account 1 holds a USDC balance");
//! assert_eq!(usdc.available, "0");
//! assert!(depth(exchange.engine(), "BTC-USDC", Side::Buy, 10).is_none(), "no such market");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::event_json::{asset_amount, market_price, market_qty};
use crate::tx::Side;
use crate::Engine;

/// An account's balance in one asset, as decimal strings in the asset's units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceText {
    /// Free to trade, withdraw or lend.
    pub available: String,
    /// Held by resting spot orders.
    pub locked: String,
    /// In the lending pool.
    pub lent: String,
    /// Owed.
    pub borrowed: String,
}

/// The balance of `account` in the asset named `asset`, in decimal units; `None` for an
/// unknown account or asset.
#[must_use]
pub fn balance(engine: &Engine, account: u64, asset: &str) -> Option<BalanceText> {
    let index = engine.asset_id(asset)?;
    let held = engine.balance(account, index)?;
    let text = |units: u64| asset_amount(engine.catalog(), index, i128::from(units));
    Some(BalanceText {
        available: text(held.available),
        locked: text(held.locked),
        lent: text(held.lent),
        borrowed: text(held.borrowed),
    })
}

/// Up to `levels` levels of one side of the market named `market`, best first, as
/// `(price, total quantity)` decimal strings; `None` for an unknown market.
#[must_use]
pub fn depth(engine: &Engine, market: &str, side: Side, levels: usize) -> Option<Vec<(String, String)>> {
    let index = engine.market_id(market)?;
    let catalog = engine.catalog();
    Some(
        engine
            .depth(index, side)
            .take(levels)
            .map(|(price, total, _)| (market_price(catalog, index, price), market_qty(catalog, index, total)))
            .collect(),
    )
}
