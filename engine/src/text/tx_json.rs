//! Transactions as JSON lines (SPEC section 13): parsing, development signing, rendering.
//!
//! Parsing is strict: unknown ops and unknown fields are errors, decimal fields must be
//! decimal strings (a JSON number there is refused, so no float ever enters), integers must be
//! JSON integers. Every error names the field and what was expected.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::decimal::{format_dec, parse_dec};
use super::excerpt;
use crate::signing::{dev_account_key, dev_role_key, hex, parse_hex, sign, Role};
use crate::tx::{
    AddAsset, AddMarket, Amend, AssetAmount, Deposit, Funding, Mark, MarkPrice, MarketKind, Op, OrderRef, OrderType,
    Place, Side, SignedTx, Symbol, TimeInForce, Tx, MAX_MARK_PRICES,
};
use crate::verified::VerifiedTx;

/// Default funding interval of a perp when the listing leaves it out: 8 hours.
pub const DEFAULT_FUNDING_INTERVAL_NS: u64 = 8 * 3600 * 1_000_000_000;

/// Why a JSON line is not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxTextError {
    /// Not JSON, or not an object.
    #[error("not a JSON object: {0}")]
    Json(String),
    /// Not JSON at all (the position is within the line).
    #[error("not JSON: {0}")]
    Syntax(String),
    /// The `op` names no operation.
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// A required field is absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// A field that this op does not take.
    #[error("unknown field `{field}` for op {op:?}")]
    UnknownField {
        /// The op.
        op: String,
        /// The field.
        field: String,
    },
    /// A field has the wrong form.
    #[error("field `{field}`: {problem}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A signed (non-dev) line lacks its signature material.
    #[error("unsigned transaction: `signer`, `nonce` and `signature` are required without --dev")]
    Unsigned,
}

/// One parsed line: the operation and the envelope fields given in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxLine {
    /// The operation.
    pub op: Op,
    /// `account`: the acting account (user ops), or for `create_account` in dev mode which
    /// development key registers (0 = the next id).
    pub account: u64,
    /// `nonce`, if given.
    pub nonce: Option<u64>,
    /// `ts`, if given: the sequencer uses it as the stamp.
    pub ts: Option<u64>,
    /// `signer`, if given.
    pub signer: Option<[u8; 32]>,
    /// `signature`, if given.
    pub signature: Option<[u8; 64]>,
}

fn field_err(field: &'static str, problem: impl Into<String>) -> TxTextError {
    TxTextError::Field { field, problem: excerpt(&problem.into()) }
}

/// Reads fields off one JSON object, remembering which were used.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    fn get(&mut self, field: &'static str) -> Option<&'a Value> {
        self.used.push(field);
        self.map.get(field)
    }

    fn require(&mut self, field: &'static str) -> Result<&'a Value, TxTextError> {
        self.get(field).ok_or(TxTextError::Missing(field))
    }

    fn str_of(field: &'static str, value: &'a Value) -> Result<&'a str, TxTextError> {
        value.as_str().ok_or_else(|| match value {
            Value::Number(n) => {
                field_err(field, format!("expected a decimal string like \"{n}\", got the JSON number {n}"))
            }
            other => field_err(field, format!("expected a string, got {other}")),
        })
    }

    fn dec(&mut self, field: &'static str) -> Result<crate::tx::Dec, TxTextError> {
        let value = self.require(field)?;
        parse_dec(Self::str_of(field, value)?).map_err(|e| field_err(field, e.to_string()))
    }

    fn dec_or(&mut self, field: &'static str, default: crate::tx::Dec) -> Result<crate::tx::Dec, TxTextError> {
        match self.get(field) {
            None => Ok(default),
            Some(value) => parse_dec(Self::str_of(field, value)?).map_err(|e| field_err(field, e.to_string())),
        }
    }

    fn opt_dec(&mut self, field: &'static str) -> Result<Option<crate::tx::Dec>, TxTextError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => {
                parse_dec(Self::str_of(field, value)?).map(Some).map_err(|e| field_err(field, e.to_string()))
            }
        }
    }

    fn u64_of(field: &'static str, value: &Value) -> Result<u64, TxTextError> {
        value.as_u64().ok_or_else(|| field_err(field, format!("expected a non-negative integer, got {value}")))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, TxTextError> {
        let value = self.require(field)?;
        Self::u64_of(field, value)
    }

    fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, TxTextError> {
        self.get(field).map(|v| Self::u64_of(field, v)).transpose()
    }

    fn symbol(&mut self, field: &'static str) -> Result<Symbol, TxTextError> {
        let value = self.require(field)?;
        let text = Self::str_of(field, value)?;
        Symbol::new(text)
            .ok_or_else(|| field_err(field, format!("{text:?} is not a symbol (1-16 of A-Z a-z 0-9 - _ . /)")))
    }

    fn word(&mut self, field: &'static str, default: Option<&'static str>) -> Result<&'a str, TxTextError> {
        match (self.get(field), default) {
            (None, Some(default)) => Ok(default),
            (None, None) => Err(TxTextError::Missing(field)),
            (Some(value), _) => Self::str_of(field, value),
        }
    }

    fn bool_or(&mut self, field: &'static str, default: bool) -> Result<bool, TxTextError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(field_err(field, format!("expected true or false, got {other}"))),
        }
    }

    fn finish(&self, op: &str) -> Result<(), TxTextError> {
        const ENVELOPE: [&str; 6] = ["op", "account", "nonce", "ts", "signer", "signature"];
        for key in self.map.keys() {
            if !ENVELOPE.contains(&key.as_str()) && !self.used.contains(&key.as_str()) {
                return Err(TxTextError::UnknownField { op: op.to_string(), field: excerpt(key) });
            }
        }
        Ok(())
    }
}

/// Parses one JSON line into a [`TxLine`].
///
/// # Errors
/// [`TxTextError`] naming the op, field and problem.
pub fn parse_tx_line(line: &str) -> Result<TxLine, TxTextError> {
    let value = parse_strict_json(line)?;
    let map = value
        .as_object()
        .ok_or_else(|| TxTextError::Json(format!("expected an object, got {}", excerpt(&value.to_string()))))?;
    let mut f = Fields { map, used: Vec::new() };
    let op_name = Fields::str_of("op", f.require("op")?)?;
    let account = f.opt_u64("account")?.unwrap_or(0);
    let nonce = f.opt_u64("nonce")?;
    let ts = f.opt_u64("ts")?;
    let signer = match f.get("signer") {
        None => None,
        Some(v) => Some(
            parse_hex::<32>(Fields::str_of("signer", v)?)
                .ok_or_else(|| field_err("signer", "expected 64 hex digits"))?,
        ),
    };
    let signature = match f.get("signature") {
        None => None,
        Some(v) => Some(
            parse_hex::<64>(Fields::str_of("signature", v)?)
                .ok_or_else(|| field_err("signature", "expected 128 hex digits"))?,
        ),
    };
    let op = parse_op(op_name, &mut f)?;
    f.finish(op_name)?;
    Ok(TxLine { op, account, nonce, ts, signer, signature })
}

/// Parses one JSON value, refusing an object that names a key twice (at any depth): JSON
/// leaves duplicates undefined and parsers differ (first wins, last wins), so a line whose
/// meaning depends on the parser is not a transaction.
fn parse_strict_json(line: &str) -> Result<Value, TxTextError> {
    serde_json::from_str::<StrictValue>(line).map(|strict| strict.0).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => TxTextError::Syntax(excerpt(&e.to_string())),
        _ => TxTextError::Syntax(format!("{} at column {}", classify(&e), e.column())),
    })
}

/// A JSON value whose objects have no duplicate keys.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key `{}`", excerpt(&key))));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn classify(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Eof => "the line ends inside a value",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "invalid data",
        serde_json::error::Category::Io => "read error",
    }
}

fn parse_op(op_name: &str, f: &mut Fields<'_>) -> Result<Op, TxTextError> {
    let asset_amount = |f: &mut Fields<'_>| -> Result<AssetAmount, TxTextError> {
        Ok(AssetAmount { asset: f.symbol("asset")?, amount: f.dec("amount")? })
    };
    Ok(match op_name {
        "add_asset" => Op::AddAsset(parse_add_asset(f)?),
        "add_market" => Op::AddMarket(parse_add_market(f)?),
        "create_account" => Op::CreateAccount,
        "deposit" => Op::Deposit(Deposit {
            account: f.u64("account")?,
            asset: f.symbol("asset")?,
            amount: f.dec("amount")?,
            chain_ref: match f.get("chain_tx") {
                None => [0; 32],
                Some(v) => parse_hex::<32>(Fields::str_of("chain_tx", v)?)
                    .ok_or_else(|| field_err("chain_tx", "expected 64 hex digits"))?,
            },
        }),
        "withdraw" => Op::Withdraw(asset_amount(f)?),
        "lend" => Op::Lend(asset_amount(f)?),
        "redeem" => Op::Redeem(asset_amount(f)?),
        "borrow" => Op::Borrow(asset_amount(f)?),
        "repay" => Op::Repay(asset_amount(f)?),
        "place" => Op::Place(parse_place(f)?),
        "cancel" => Op::Cancel(parse_order_ref(f)?),
        "cancel_all" => Op::CancelAll(f.symbol("market")?),
        "amend" => {
            let order = parse_order_ref(f)?;
            Op::Amend(Amend { order, price: f.opt_dec("price")?, qty: f.opt_dec("qty")? })
        }
        "mark" => Op::Mark(parse_mark(f)?),
        "funding" => Op::Funding(Funding { market: f.symbol("market")?, rate: f.dec("rate")? }),
        "tick" => Op::Tick,
        other => return Err(TxTextError::UnknownOp(excerpt(other))),
    })
}

fn parse_add_asset(f: &mut Fields<'_>) -> Result<AddAsset, TxTextError> {
    let decimals = f.u64("decimals")?;
    let decimals = u8::try_from(decimals).map_err(|_| field_err("decimals", format!("{decimals} is too large")))?;
    let defaults = AddAsset::new(f.symbol("symbol")?, decimals);
    Ok(AddAsset {
        collateral_weight: f.dec_or("collateral_weight", defaults.collateral_weight)?,
        borrow_weight: f.dec_or("borrow_weight", defaults.borrow_weight)?,
        rate_base: f.dec_or("rate_base", defaults.rate_base)?,
        rate_kink_utilization: f.dec_or("rate_kink_utilization", defaults.rate_kink_utilization)?,
        rate_at_kink: f.dec_or("rate_at_kink", defaults.rate_at_kink)?,
        rate_max: f.dec_or("rate_max", defaults.rate_max)?,
        reserve_factor: f.dec_or("reserve_factor", defaults.reserve_factor)?,
        max_utilization: f.dec_or("max_utilization", defaults.max_utilization)?,
        ..defaults
    })
}

fn parse_add_market(f: &mut Fields<'_>) -> Result<AddMarket, TxTextError> {
    let kind = match f.word("kind", Some("spot"))? {
        "spot" => MarketKind::Spot,
        "perp" => MarketKind::Perp,
        other => return Err(field_err("kind", format!("expected \"spot\" or \"perp\", got {other:?}"))),
    };
    let quote = match kind {
        MarketKind::Spot => f.symbol("quote")?,
        MarketKind::Perp => f.symbol("settle")?,
    };
    let (imf, mmf) = match kind {
        MarketKind::Spot => (crate::tx::Dec::ZERO, crate::tx::Dec::ZERO),
        MarketKind::Perp => (f.dec("imf")?, f.dec("mmf")?),
    };
    let funding_interval_ns = match kind {
        MarketKind::Spot => 0,
        MarketKind::Perp => f.opt_u64("funding_interval_ns")?.unwrap_or(DEFAULT_FUNDING_INTERVAL_NS),
    };
    Ok(AddMarket {
        symbol: f.symbol("symbol")?,
        kind,
        base: f.symbol("base")?,
        quote,
        tick: f.dec("tick")?,
        step: f.dec("step")?,
        maker_fee: f.dec_or("maker_fee", crate::tx::Dec::ZERO)?,
        taker_fee: f.dec_or("taker_fee", crate::tx::Dec::ZERO)?,
        imf,
        mmf,
        funding_interval_ns,
    })
}

fn parse_place(f: &mut Fields<'_>) -> Result<Place, TxTextError> {
    let side = match f.word("side", None)? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => return Err(field_err("side", format!("expected \"buy\" or \"sell\", got {other:?}"))),
    };
    let order_type = match f.word("type", Some("limit"))? {
        "limit" => OrderType::Limit,
        "market" => OrderType::Market,
        other => return Err(field_err("type", format!("expected \"limit\" or \"market\", got {other:?}"))),
    };
    let tif = match f.word("tif", Some(if order_type == OrderType::Market { "ioc" } else { "gtc" }))? {
        "gtc" => TimeInForce::Gtc,
        "ioc" => TimeInForce::Ioc,
        "fok" => TimeInForce::Fok,
        "post_only" => TimeInForce::PostOnly,
        other => return Err(field_err("tif", format!("expected gtc, ioc, fok or post_only, got {other:?}"))),
    };
    let price = match order_type {
        OrderType::Limit => f.dec("price")?,
        OrderType::Market => {
            if f.get("price").is_some() {
                return Err(field_err("price", "a market order takes no price"));
            }
            crate::tx::Dec::ZERO
        }
    };
    Ok(Place {
        market: f.symbol("market")?,
        side,
        order_type,
        tif,
        reduce_only: f.bool_or("reduce_only", false)?,
        price,
        qty: f.dec("qty")?,
        client_id: f.opt_u64("client_id")?.unwrap_or(0),
    })
}

fn parse_order_ref(f: &mut Fields<'_>) -> Result<OrderRef, TxTextError> {
    let market = f.symbol("market")?;
    let order_id = f.opt_u64("order_id")?.unwrap_or(0);
    let client_id = f.opt_u64("client_id")?.unwrap_or(0);
    if order_id == 0 && client_id == 0 {
        return Err(TxTextError::Missing("order_id"));
    }
    Ok(OrderRef { market, order_id, client_id })
}

fn parse_mark(f: &mut Fields<'_>) -> Result<Mark, TxTextError> {
    let prices = f.require("prices")?;
    let map = prices.as_object().ok_or_else(|| field_err("prices", "expected an object of symbol: decimal string"))?;
    if map.is_empty() || map.len() > MAX_MARK_PRICES {
        return Err(field_err("prices", format!("expected 1 to {MAX_MARK_PRICES} prices, got {}", map.len())));
    }
    let mut entries = Vec::with_capacity(map.len());
    for (symbol_text, value) in map {
        let symbol =
            Symbol::new(symbol_text).ok_or_else(|| field_err("prices", format!("{symbol_text:?} is not a symbol")))?;
        let price = parse_dec(Fields::str_of("prices", value)?).map_err(|e| field_err("prices", e.to_string()))?;
        entries.push(MarkPrice { symbol, price });
    }
    Mark::from_prices(&entries).ok_or_else(|| field_err("prices", "too many prices"))
}

/// The operator role that must sign `op`, or `None` for user ops.
#[must_use]
pub fn role_of(op: &Op) -> Option<Role> {
    match op {
        Op::AddAsset(_) | Op::AddMarket(_) => Some(Role::Admin),
        Op::Deposit(_) => Some(Role::Custody),
        Op::Mark(_) | Op::Funding(_) | Op::Tick => Some(Role::Oracle),
        _ => None,
    }
}

/// Signs text transactions with the deterministic development keys (`--dev` only), filling
/// in nonces per signer when the text leaves them out.
#[derive(Debug, Default, Clone)]
pub struct DevSigner {
    nonces: BTreeMap<[u8; 32], u64>,
    accounts_created: u64,
    /// Derived keys by signer (`None` = a role, `Some(id)` = an account): deriving costs
    /// a hash and a scalar multiplication, more than signing itself.
    keys: BTreeMap<(Option<Role>, u64), ed25519_dalek::SigningKey>,
}

impl DevSigner {
    /// A signer that assumes `accounts` accounts exist already (0 on a fresh exchange).
    #[must_use]
    pub fn new(accounts: u64) -> Self {
        Self { nonces: BTreeMap::new(), accounts_created: accounts, keys: BTreeMap::new() }
    }

    /// Remembers the last nonce a signer used (when resuming after existing transactions).
    pub fn observe_nonce(&mut self, signer: [u8; 32], nonce: u64) {
        let last = self.nonces.entry(signer).or_insert(0);
        *last = (*last).max(nonce);
    }

    /// Signs one line with the development key of its role or account.
    #[must_use]
    pub fn sign(&mut self, line: &TxLine) -> SignedTx {
        let (tx, key) = self.tx_and_key(line);
        sign(tx, key)
    }

    /// Signs one line as [`DevSigner::sign`] does, as a tx the pipeline and engine take (a
    /// signature by the signer's own key passes the rule by construction).
    #[must_use]
    pub fn sign_verified(&mut self, line: &TxLine) -> VerifiedTx {
        let (tx, key) = self.tx_and_key(line);
        VerifiedTx::sign(tx, key)
    }

    /// The tx a line describes, with its nonce filled in, and the key that signs it.
    fn tx_and_key(&mut self, line: &TxLine) -> (Tx, &ed25519_dalek::SigningKey) {
        let who = match (role_of(&line.op), &line.op) {
            (Some(role), _) => (Some(role), 0),
            (None, Op::CreateAccount) => {
                self.accounts_created += 1;
                (None, if line.account != 0 { line.account } else { self.accounts_created })
            }
            (None, _) => (None, line.account),
        };
        let key = self.keys.entry(who).or_insert_with(|| match who {
            (Some(role), _) => dev_role_key(role),
            (None, account) => dev_account_key(account),
        });
        let signer = key.verifying_key().to_bytes();
        let last = self.nonces.entry(signer).or_insert(0);
        let nonce = line.nonce.unwrap_or(*last + 1);
        *last = (*last).max(nonce);
        (tx_from_line(line, signer, nonce), key)
    }
}

/// The signed transaction a non-dev line carries.
///
/// # Errors
/// [`TxTextError::Unsigned`] when `signer`, `nonce` or `signature` is missing.
pub fn signed_from_line(line: &TxLine) -> Result<SignedTx, TxTextError> {
    let (Some(signer), Some(nonce), Some(signature)) = (line.signer, line.nonce, line.signature) else {
        return Err(TxTextError::Unsigned);
    };
    Ok(SignedTx { tx: tx_from_line(line, signer, nonce), signature })
}

/// The transaction a line describes, for a given signer and nonce. The envelope's `account`
/// is kept for user ops only: operator ops and `create_account` carry 0.
#[must_use]
pub fn tx_from_line(line: &TxLine, signer: [u8; 32], nonce: u64) -> Tx {
    let account = if matches!(line.op, Op::CreateAccount) || role_of(&line.op).is_some() { 0 } else { line.account };
    Tx { signer, nonce, account, op: line.op }
}

/// Renders a signed transaction as one JSON line (the inverse of [`parse_tx_line`]), with
/// `seq` and `ts` when given.
#[must_use]
pub fn render_tx(signed: &SignedTx, seq: Option<u64>, ts: Option<u64>) -> String {
    let mut map = Map::new();
    if let Some(seq) = seq {
        map.insert("seq".into(), seq.into());
    }
    let tx = &signed.tx;
    map.insert("op".into(), op_name(&tx.op).into());
    if tx.account != 0 {
        map.insert("account".into(), tx.account.into());
    }
    render_op(&tx.op, &mut map);
    map.insert("nonce".into(), tx.nonce.into());
    if let Some(ts) = ts {
        map.insert("ts".into(), ts.into());
    }
    map.insert("signer".into(), hex(&tx.signer).into());
    map.insert("signature".into(), hex(&signed.signature).into());
    Value::Object(map).to_string()
}

/// The JSON name of an op.
#[must_use]
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::AddAsset(_) => "add_asset",
        Op::AddMarket(_) => "add_market",
        Op::CreateAccount => "create_account",
        Op::Deposit(_) => "deposit",
        Op::Withdraw(_) => "withdraw",
        Op::Place(_) => "place",
        Op::Cancel(_) => "cancel",
        Op::CancelAll(_) => "cancel_all",
        Op::Amend(_) => "amend",
        Op::Lend(_) => "lend",
        Op::Redeem(_) => "redeem",
        Op::Borrow(_) => "borrow",
        Op::Repay(_) => "repay",
        Op::Mark(_) => "mark",
        Op::Funding(_) => "funding",
        Op::Tick => "tick",
    }
}

fn render_op(op: &Op, map: &mut Map<String, Value>) {
    let dec = |d: crate::tx::Dec| Value::from(format_dec(d));
    let sym = |s: Symbol| Value::from(s.as_str());
    match op {
        Op::AddAsset(a) => {
            map.insert("symbol".into(), sym(a.symbol));
            map.insert("decimals".into(), a.decimals.into());
            map.insert("collateral_weight".into(), dec(a.collateral_weight));
            map.insert("borrow_weight".into(), dec(a.borrow_weight));
            map.insert("rate_base".into(), dec(a.rate_base));
            map.insert("rate_kink_utilization".into(), dec(a.rate_kink_utilization));
            map.insert("rate_at_kink".into(), dec(a.rate_at_kink));
            map.insert("rate_max".into(), dec(a.rate_max));
            map.insert("reserve_factor".into(), dec(a.reserve_factor));
            map.insert("max_utilization".into(), dec(a.max_utilization));
        }
        Op::AddMarket(m) => {
            map.insert("symbol".into(), sym(m.symbol));
            let perp = m.kind == MarketKind::Perp;
            map.insert("kind".into(), (if perp { "perp" } else { "spot" }).into());
            map.insert("base".into(), sym(m.base));
            map.insert((if perp { "settle" } else { "quote" }).into(), sym(m.quote));
            map.insert("tick".into(), dec(m.tick));
            map.insert("step".into(), dec(m.step));
            map.insert("maker_fee".into(), dec(m.maker_fee));
            map.insert("taker_fee".into(), dec(m.taker_fee));
            if perp {
                map.insert("imf".into(), dec(m.imf));
                map.insert("mmf".into(), dec(m.mmf));
                map.insert("funding_interval_ns".into(), m.funding_interval_ns.into());
            }
        }
        Op::CreateAccount | Op::Tick => {}
        Op::Deposit(d) => {
            map.insert("account".into(), d.account.into());
            map.insert("asset".into(), sym(d.asset));
            map.insert("amount".into(), dec(d.amount));
            if d.chain_ref != [0; 32] {
                map.insert("chain_tx".into(), hex(&d.chain_ref).into());
            }
        }
        Op::Withdraw(a) | Op::Lend(a) | Op::Redeem(a) | Op::Borrow(a) | Op::Repay(a) => {
            map.insert("asset".into(), sym(a.asset));
            map.insert("amount".into(), dec(a.amount));
        }
        Op::Place(p) => {
            map.insert("market".into(), sym(p.market));
            map.insert("side".into(), (if p.side == Side::Buy { "buy" } else { "sell" }).into());
            let market_order = p.order_type == OrderType::Market;
            map.insert("type".into(), (if market_order { "market" } else { "limit" }).into());
            if !market_order {
                map.insert("price".into(), dec(p.price));
            }
            map.insert("qty".into(), dec(p.qty));
            let tif = match p.tif {
                TimeInForce::Gtc => "gtc",
                TimeInForce::Ioc => "ioc",
                TimeInForce::Fok => "fok",
                TimeInForce::PostOnly => "post_only",
            };
            map.insert("tif".into(), tif.into());
            if p.reduce_only {
                map.insert("reduce_only".into(), true.into());
            }
            if p.client_id != 0 {
                map.insert("client_id".into(), p.client_id.into());
            }
        }
        Op::Cancel(r) => render_order_ref(r, map),
        Op::CancelAll(market) => {
            map.insert("market".into(), sym(*market));
        }
        Op::Amend(a) => {
            render_order_ref(&a.order, map);
            if let Some(price) = a.price {
                map.insert("price".into(), dec(price));
            }
            if let Some(qty) = a.qty {
                map.insert("qty".into(), dec(qty));
            }
        }
        Op::Mark(m) => {
            let mut prices = Map::new();
            for entry in &m.prices[..usize::from(m.count).min(MAX_MARK_PRICES)] {
                prices.insert(entry.symbol.as_str().into(), dec(entry.price));
            }
            map.insert("prices".into(), Value::Object(prices));
        }
        Op::Funding(fu) => {
            map.insert("market".into(), sym(fu.market));
            map.insert("rate".into(), dec(fu.rate));
        }
    }
}

fn render_order_ref(r: &OrderRef, map: &mut Map<String, Value>) {
    map.insert("market".into(), Value::from(r.market.as_str()));
    if r.order_id != 0 {
        map.insert("order_id".into(), r.order_id.into());
    }
    if r.client_id != 0 {
        map.insert("client_id".into(), r.client_id.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_LINES: &[&str] = &[
        r#"{"op":"add_asset","symbol":"USDC","decimals":6,"collateral_weight":"1","borrow_weight":"1"}"#,
        r#"{"op":"add_asset","symbol":"BTC","decimals":8,"collateral_weight":"0.9","borrow_weight":"1.1"}"#,
        r#"{"op":"add_market","symbol":"BTC-USDC","kind":"spot","base":"BTC","quote":"USDC","tick":"0.01","step":"0.0001","maker_fee":"0.0002","taker_fee":"0.0005"}"#,
        r#"{"op":"add_market","symbol":"BTC-PERP","kind":"perp","base":"BTC","settle":"USDC","tick":"0.1","step":"0.001","imf":"0.1","mmf":"0.05","maker_fee":"0","taker_fee":"0.0005"}"#,
        r#"{"op":"create_account"}"#,
        r#"{"op":"deposit","account":1,"asset":"USDC","amount":"10000"}"#,
        r#"{"op":"withdraw","account":1,"asset":"USDC","amount":"10"}"#,
        r#"{"op":"place","account":1,"market":"BTC-USDC","side":"buy","type":"limit","price":"100","qty":"1","tif":"gtc","client_id":7}"#,
        r#"{"op":"place","account":2,"market":"BTC-PERP","side":"sell","type":"market","qty":"0.5","reduce_only":true}"#,
        r#"{"op":"cancel","account":1,"market":"BTC-USDC","order_id":3}"#,
        r#"{"op":"cancel_all","account":1,"market":"BTC-USDC"}"#,
        r#"{"op":"amend","account":1,"market":"BTC-USDC","order_id":3,"price":"99","qty":"0.5"}"#,
        r#"{"op":"lend","account":1,"asset":"USDC","amount":"100"}"#,
        r#"{"op":"redeem","account":1,"asset":"USDC","amount":"100"}"#,
        r#"{"op":"borrow","account":1,"asset":"BTC","amount":"0.1"}"#,
        r#"{"op":"repay","account":1,"asset":"BTC","amount":"0.1"}"#,
        r#"{"op":"mark","prices":{"BTC":"101","BTC-PERP":"101.5"}}"#,
        r#"{"op":"funding","market":"BTC-PERP","rate":"0.0001"}"#,
        r#"{"op":"tick","ts":1700000000123000000}"#,
    ];

    #[test]
    fn every_spec_example_parses_and_round_trips() {
        let mut signer = DevSigner::default();
        for line in SPEC_LINES {
            let parsed = parse_tx_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let signed = signer.sign(&parsed);
            assert_eq!(crate::signing::verify(&signed), Ok(()));
            let rendered = render_tx(&signed, None, parsed.ts);
            let reparsed = parse_tx_line(&rendered).unwrap_or_else(|e| panic!("{rendered}: {e}"));
            assert_eq!(reparsed.op, parsed.op, "{rendered}");
            assert_eq!(signed_from_line(&reparsed), Ok(signed));
        }
    }

    #[test]
    fn bad_lines_name_the_problem() {
        let cases = [
            ("{not json", "not JSON: syntax error at column 2"),
            (r#"{"op":"teleport"}"#, "unknown op"),
            (r#"{"op":"deposit","account":1,"asset":"USDC","amount":1.5}"#, "JSON number"),
            (r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1e5"}"#, "not a plain decimal"),
            (r#"{"op":"deposit","account":1,"asset":"USDC"}"#, "missing field `amount`"),
            (r#"{"op":"deposit","account":1,"asset":"USDC","amount":"1","colour":"red"}"#, "unknown field `colour`"),
            (r#"{"op":"place","account":1,"market":"X","side":"up","price":"1","qty":"1"}"#, "field `side`"),
            (r#"{"op":"place","account":-1,"market":"X","side":"buy","price":"1","qty":"1"}"#, "field `account`"),
            ("[1,2]", "expected an object"),
        ];
        for (line, needle) in cases {
            let err = parse_tx_line(line).err().unwrap_or_else(|| panic!("{line} must fail")).to_string();
            assert!(err.contains(needle), "{line}: {err:?} should mention {needle:?}");
        }
    }

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth() {
        let twice = r#"{"op":"withdraw","account":1,"asset":"USDC","amount":"1","amount":"1000"}"#;
        let err = parse_tx_line(twice).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("duplicate key `amount`"), "{err}");
        let nested = r#"{"op":"mark","prices":{"BTC":"1","BTC":"2"}}"#;
        let err = parse_tx_line(nested).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("duplicate key `BTC`"), "{err}");
        assert!(parse_tx_line(r#"{"op":"mark","prices":{"BTC":"1","ETH":"2"}}"#).is_ok());
    }

    #[test]
    fn errors_quote_at_most_a_bounded_excerpt_of_the_input() {
        let huge = "X".repeat(64 * 1024);
        for line in [
            format!(r#"{{"op":"{huge}"}}"#),
            format!(r#"{{"op":"withdraw","account":1,"asset":"USDC","amount":"1","{huge}":1}}"#),
            format!(r#"{{"op":"withdraw","account":1,"asset":"{huge}","amount":"1"}}"#),
            format!(r#"["{huge}"]"#),
            format!(r#"{{"op":"mark","prices":{{"{huge}":"1","{huge}":"2"}}}}"#),
        ] {
            let err = parse_tx_line(&line).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!err.is_empty() && err.len() < 400, "{} bytes: {}", err.len(), &err[..err.len().min(200)]);
        }
    }
}
