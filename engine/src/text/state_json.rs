//! The state dump (SPEC section 13): seq, state hash, every account's balances, positions
//! and resting orders, the fee and insurance accounts and the lending pools.

use serde_json::{Map, Value};

use super::event_json::{asset_amount, market_price, market_qty, side_word};
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
        let mut account = Map::new();
        account.insert("id".into(), id.into());
        account.insert("balances".into(), Value::Object(balances));
        account.insert("positions".into(), Value::Object(Map::new()));
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
    root.insert("fees".into(), per_asset(&|a| asset_amount(catalog, a, i128::from(engine.fees(a))).into()));
    root.insert("insurance".into(), per_asset(&|a| asset_amount(catalog, a, i128::from(engine.insurance(a))).into()));
    root.insert(
        "pools".into(),
        per_asset(&|a| {
            let (lent, borrowed) = engine.pool(a);
            let mut pool = Map::new();
            pool.insert("lent".into(), asset_amount(catalog, a, i128::from(lent)).into());
            pool.insert("borrowed".into(), asset_amount(catalog, a, i128::from(borrowed)).into());
            Value::Object(pool)
        }),
    );
    Value::Object(root)
}

/// The state dump as one JSON document (no trailing newline).
#[must_use]
pub fn render_state(engine: &Engine) -> String {
    state_value(engine).to_string()
}
