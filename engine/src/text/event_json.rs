//! Events as JSON lines (SPEC section 13), in a fixed key order: `seq`, `event`, then the
//! event's fields. Amounts use their asset's decimals, prices the market's tick places,
//! quantities the base asset's decimals; all as normalised decimal strings.

use serde_json::{Map, Value};

use super::decimal::format_units;
use crate::catalog::Catalog;
use crate::events::{DebtPayer, Event, OrderStatus};
use crate::tx::Side;

/// Formats an amount of asset `asset`.
#[must_use]
pub fn asset_amount(catalog: &Catalog, asset: u16, units: i128) -> String {
    let decimals = catalog.assets().get(usize::from(asset)).map_or(0, |a| u32::from(a.decimals));
    format_units(units, decimals)
}

/// Formats a ratio (a rate, a utilization) with its 8 decimal places, normalised.
#[must_use]
pub fn ratio(units: i64) -> String {
    format_units(i128::from(units), crate::fixed::RATIO_DECIMALS)
}

/// Formats a price of market `market`.
#[must_use]
pub fn market_price(catalog: &Catalog, market: u16, units: i64) -> String {
    let decimals = catalog.markets().get(usize::from(market)).map_or(0, |m| m.price_decimals);
    format_units(i128::from(units), decimals)
}

/// Formats a quantity of market `market`'s base asset.
#[must_use]
pub fn market_qty(catalog: &Catalog, market: u16, units: u64) -> String {
    let base = catalog.markets().get(usize::from(market)).map_or(u16::MAX, |m| m.base);
    asset_amount(catalog, base, i128::from(units))
}

fn asset_symbol(catalog: &Catalog, asset: u16) -> Value {
    Value::from(catalog.assets().get(usize::from(asset)).map_or("?", |a| a.symbol.as_str()))
}

fn market_symbol(catalog: &Catalog, market: u16) -> Value {
    Value::from(catalog.markets().get(usize::from(market)).map_or("?", |m| m.symbol.as_str()))
}

/// The side word.
#[must_use]
pub fn side_word(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// Renders one event of the tx `seq` as a JSON object.
#[must_use]
pub fn event_value(seq: u64, event: &Event, catalog: &Catalog) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), seq.into());
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    match *event {
        Event::Rejected { reason } => {
            put("event", "rejected".into());
            put("reason", reason.as_str().into());
        }
        Event::AssetAdded { asset } => {
            put("event", "asset_added".into());
            put("asset", asset_symbol(catalog, asset));
        }
        Event::MarketAdded { market } => {
            put("event", "market_added".into());
            put("market", market_symbol(catalog, market));
        }
        Event::AccountCreated { account } => {
            put("event", "account_created".into());
            put("account", account.into());
        }
        Event::Deposit { account, asset, amount } | Event::Withdrawal { account, asset, amount } => {
            put("event", (if matches!(event, Event::Deposit { .. }) { "deposit" } else { "withdrawal" }).into());
            put("account", account.into());
            put("asset", asset_symbol(catalog, asset));
            put("amount", asset_amount(catalog, asset, i128::from(amount)).into());
        }
        Event::Pool { kind, account, asset, amount } => {
            put("event", kind.as_str().into());
            put("account", account.into());
            put("asset", asset_symbol(catalog, asset));
            put("amount", asset_amount(catalog, asset, i128::from(amount)).into());
        }
        Event::Borrow { account, asset, amount, unfunded } => {
            put("event", "borrow".into());
            put("account", account.into());
            put("asset", asset_symbol(catalog, asset));
            put("amount", asset_amount(catalog, asset, i128::from(amount)).into());
            put("auto", true.into());
            if unfunded > 0 {
                put("unfunded", asset_amount(catalog, asset, i128::from(unfunded)).into());
            }
        }
        Event::Repay { account, asset, amount } => {
            put("event", "repay".into());
            put("account", account.into());
            put("asset", asset_symbol(catalog, asset));
            put("amount", asset_amount(catalog, asset, i128::from(amount)).into());
            put("auto", true.into());
        }
        Event::AutoLend { account, asset, amount } | Event::DebtFunded { account, asset, amount } => {
            let word = if matches!(event, Event::AutoLend { .. }) { "lend" } else { "debt_funded" };
            put("event", word.into());
            put("account", account.into());
            put("asset", asset_symbol(catalog, asset));
            put("amount", asset_amount(catalog, asset, i128::from(amount)).into());
            if matches!(event, Event::AutoLend { .. }) {
                put("auto", true.into());
            }
        }
        Event::Accrual { asset, interest, reserve, utilization, borrow_rate, lend_rate } => {
            put("event", "accrual".into());
            put("asset", asset_symbol(catalog, asset));
            put("interest", asset_amount(catalog, asset, i128::from(interest)).into());
            put("reserve", asset_amount(catalog, asset, i128::from(reserve)).into());
            put("utilization", ratio(utilization).into());
            put("borrow_rate", ratio(borrow_rate).into());
            put("lend_rate", ratio(lend_rate).into());
        }
        Event::CollateralSold { account, asset, qty, debt_asset, proceeds, via } => {
            put("event", "collateral_sold".into());
            put("account", account.into());
            put("asset", asset_symbol(catalog, asset));
            put("qty", asset_amount(catalog, asset, i128::from(qty)).into());
            put("debt_asset", asset_symbol(catalog, debt_asset));
            put("proceeds", asset_amount(catalog, debt_asset, i128::from(proceeds)).into());
            put("via", via.as_str().into());
        }
        Event::BadDebt { account, asset, amount, paid_by } => {
            put("event", (if paid_by == DebtPayer::Lenders { "socialized_loss" } else { "bad_debt" }).into());
            put("account", account.into());
            put("asset", asset_symbol(catalog, asset));
            put("amount", asset_amount(catalog, asset, i128::from(amount)).into());
            put("paid_by", paid_by.as_str().into());
        }
        Event::Order { order_id, account, market, side, status, remaining, price, level } => {
            put("event", "order".into());
            put("order_id", order_id.into());
            put("account", account.into());
            put("market", market_symbol(catalog, market));
            match status {
                OrderStatus::Accepted => put("status", "accepted".into()),
                OrderStatus::Filled => put("status", "filled".into()),
                OrderStatus::Rested => {
                    put("status", "rested".into());
                    put("remaining", market_qty(catalog, market, remaining).into());
                }
                OrderStatus::Canceled(reason) => {
                    put("status", "canceled".into());
                    put("reason", reason.as_str().into());
                }
                OrderStatus::Amended => {
                    put("status", "amended".into());
                    put("price", market_price(catalog, market, price).into());
                    put("remaining", market_qty(catalog, market, remaining).into());
                }
            }
            if let Some(level) = level {
                put("side", side_word(side).into());
                put("level_price", market_price(catalog, market, level.price).into());
                put("level_total", market_qty(catalog, market, level.total).into());
            }
        }
        Event::Fill {
            trade_id,
            ts,
            market,
            price,
            qty,
            taker_side,
            maker_order,
            taker_order,
            maker,
            taker,
            maker_fee,
            taker_fee,
            level_total,
        } => {
            let quote = catalog.markets().get(usize::from(market)).map_or(u16::MAX, |m| m.quote);
            put("event", "fill".into());
            put("trade_id", trade_id.into());
            put("ts", ts.into());
            put("market", market_symbol(catalog, market));
            put("price", market_price(catalog, market, price).into());
            put("qty", market_qty(catalog, market, qty).into());
            put("taker_side", side_word(taker_side).into());
            put("maker_order", maker_order.into());
            put("taker_order", taker_order.into());
            put("maker", maker.into());
            put("taker", taker.into());
            put("maker_fee", asset_amount(catalog, quote, i128::from(maker_fee)).into());
            put("taker_fee", asset_amount(catalog, quote, i128::from(taker_fee)).into());
            put("level_total", market_qty(catalog, market, level_total).into());
        }
        Event::Settlement { market, account, pnl } | Event::Funding { market, account, amount: pnl } => {
            let settle = catalog.markets().get(usize::from(market)).map_or(u16::MAX, |m| m.quote);
            let funding = matches!(event, Event::Funding { .. });
            put("event", (if funding { "funding" } else { "settlement" }).into());
            put("market", market_symbol(catalog, market));
            put("account", account.into());
            put(if funding { "amount" } else { "pnl" }, asset_amount(catalog, settle, i128::from(pnl)).into());
        }
        Event::Liquidation { account, market, qty, price, via } => {
            put("event", "liquidation".into());
            put("account", account.into());
            put("market", market_symbol(catalog, market));
            put("qty", market_qty(catalog, market, qty).into());
            put("price", market_price(catalog, market, price).into());
            put("via", via.as_str().into());
        }
        Event::Adl { account, liquidated, market, qty, price } => {
            put("event", "adl".into());
            put("account", account.into());
            put("liquidated", liquidated.into());
            put("market", market_symbol(catalog, market));
            put("qty", market_qty(catalog, market, qty).into());
            put("price", market_price(catalog, market, price).into());
        }
    }
    Value::Object(m)
}

/// Renders one event as a JSON line (no trailing newline).
#[must_use]
pub fn render_event(seq: u64, event: &Event, catalog: &Catalog) -> String {
    event_value(seq, event, catalog).to_string()
}
