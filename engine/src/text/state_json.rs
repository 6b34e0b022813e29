//! The state dump (SPEC section 13): seq, state hash, every account's balances, positions
//! and resting orders, the fee and insurance accounts and the lending pools.

use serde_json::{Map, Value};

use super::event_json::{asset_amount, market_price, market_qty, ratio, side_word};
use crate::signing::hex;
use crate::Engine;

/// The state dump as a JSON value, keys in the documented order.
#[must_use]
pub fn state_value(engine: &Engine) -> Value {
    let catalog = engine.catalog();
    let assets = u16::try_from(catalog.assets().len()).unwrap_or(u16::MAX);
    let mut root = Map::new();
    root.insert("seq".into(), engine.seq().into());
    root.insert("state_hash".into(), hex(&engine.state_hash()).into());
    let mut accounts = Vec::new();
    for id in 1..=engine.account_count() {
        let mut balances = Map::new();
        for asset in 0..assets {
            let Some(b) = engine.balance(id, asset) else { continue };
            if b == crate::Balance::default() {
                continue;
            }
            let mut entry = Map::new();
            for (key, value) in
                [("available", b.available), ("locked", b.locked), ("lent", b.lent), ("borrowed", b.borrowed)]
            {
                entry.insert(key.into(), asset_amount(catalog, asset, i128::from(value)).into());
            }
            balances.insert(catalog.asset(asset).symbol.as_str().into(), Value::Object(entry));
        }
        let orders: Vec<Value> = engine
            .orders_of(id)
            .map(|o| {
                let mut entry = Map::new();
                entry.insert("order_id".into(), o.order_id.into());
                entry.insert("market".into(), catalog.market(o.market).symbol.as_str().into());
                entry.insert("side".into(), side_word(o.side).into());
                entry.insert("price".into(), market_price(catalog, o.market, o.price).into());
                entry.insert("remaining".into(), market_qty(catalog, o.market, o.remaining).into());
                if o.client_id != 0 {
                    entry.insert("client_id".into(), o.client_id.into());
                }
                Value::Object(entry)
            })
            .collect();
        let mut positions = Map::new();
        for (m, market) in catalog.markets().iter().enumerate() {
            let m = u16::try_from(m).unwrap_or(u16::MAX);
            let size = engine.position(id, m);
            if size != 0 {
                let mut entry = Map::new();
                entry.insert("size".into(), signed_qty(catalog, m, size).into());
                positions.insert(market.symbol.as_str().into(), Value::Object(entry));
            }
        }
        let mut account = Map::new();
        account.insert("id".into(), id.into());
        account.insert("balances".into(), Value::Object(balances));
        account.insert("positions".into(), Value::Object(positions));
        account.insert("orders".into(), Value::Array(orders));
        accounts.push(Value::Object(account));
    }
    root.insert("accounts".into(), Value::Array(accounts));
    let per_asset = |f: &dyn Fn(u16) -> Value| -> Value {
        let mut map = Map::new();
        for asset in 0..assets {
            map.insert(catalog.asset(asset).symbol.as_str().into(), f(asset));
        }
        Value::Object(map)
    };
    // The fee account with the pool's rounding dust (`uncovered` is always 0, see below).
    root.insert(
        "fees".into(),
        per_asset(&|a| asset_amount(catalog, a, engine.fee_account(a) + i128::from(engine.uncovered(a))).into()),
    );
    root.insert("insurance".into(), per_asset(&|a| asset_amount(catalog, a, i128::from(engine.insurance(a))).into()));
    let mut insurance_positions = Map::new();
    let mut marks = Map::new();
    for (m, market) in catalog.markets().iter().enumerate() {
        let m = u16::try_from(m).unwrap_or(u16::MAX);
        if market.kind == crate::tx::MarketKind::Perp {
            insurance_positions
                .insert(market.symbol.as_str().into(), signed_qty(catalog, m, engine.insurance_position(m)).into());
            if market.last_mark != 0 {
                marks.insert(market.symbol.as_str().into(), market_price(catalog, m, market.last_mark).into());
            }
        }
    }
    for asset in catalog.assets() {
        if asset.index_price != 0 {
            marks.insert(
                asset.symbol.as_str().into(),
                crate::text::decimal::format_units(i128::from(asset.index_price), crate::catalog::INDEX_PRICE_DECIMALS)
                    .into(),
            );
        }
    }
    root.insert(
        "pools".into(),
        per_asset(&|a| {
            let (lent, borrowed) = engine.pool(a);
            let info = catalog.asset(a);
            let mut pool = Map::new();
            pool.insert("lent".into(), asset_amount(catalog, a, i128::from(lent)).into());
            pool.insert("borrowed".into(), asset_amount(catalog, a, i128::from(borrowed)).into());
            pool.insert("utilization".into(), ratio(crate::lending::utilization(lent, borrowed)).into());
            pool.insert("borrow_rate".into(), ratio(crate::lending::borrow_rate(info, lent, borrowed)).into());
            pool.insert("lend_rate".into(), ratio(crate::lending::lend_rate(info, lent, borrowed)).into());
            let state = engine.pool_state(a);
            let unfunded = state.map_or(0, |p| p.unfunded);
            pool.insert("unfunded".into(), asset_amount(catalog, a, i128::from(unfunded)).into());
            let fund = state.map_or(0, |p| p.fund_lent());
            pool.insert("insurance_lent".into(), asset_amount(catalog, a, i128::from(fund)).into());
            Value::Object(pool)
        }),
    );
    // Beyond SPEC section 13's keys (additions only, after them): the insurance fund's
    // positions, the last published prices, and per asset the bad debt nobody paid: always
    // "0" (no path pays out money that no one deposited), kept so the dump's keys stay stable.
    root.insert("insurance_positions".into(), Value::Object(insurance_positions));
    root.insert("marks".into(), Value::Object(marks));
    root.insert("uncovered".into(), per_asset(&|a| asset_amount(catalog, a, i128::from(engine.uncovered(a))).into()));
    Value::Object(root)
}

fn signed_qty(catalog: &crate::catalog::Catalog, market: u16, size: i64) -> String {
    let base = catalog.market(market).base;
    asset_amount(catalog, base, i128::from(size))
}

/// The state dump as one JSON document (no trailing newline).
#[must_use]
pub fn render_state(engine: &Engine) -> String {
    state_value(engine).to_string()
}
