//! Transactions on the wire: fixed-size, `rkyv`-archivable, signed over canonical bytes.
//!
//! A transaction is self-describing: markets and assets are named by [`Symbol`], numbers are
//! [`Dec`] decimals (mantissa and scale), so that an ingress can verify and sequence it with
//! no knowledge of the exchange's state, and a third party reading the journal sees what the
//! signer signed. The engine converts decimals into market units and rejects off-grid values.
//!
//! Every type here has a fixed archived size (no vectors, no strings), so one archived
//! [`SequencedTx`] fits one ring slot and one journal record: see [`SLOT_BYTES`].

use rkyv::{Archive, Deserialize, Serialize};

/// Bytes of a symbol: ASCII, zero padded. Asset and market symbols share one namespace.
pub const SYMBOL_BYTES: usize = 16;

/// Most prices one `mark` may carry; a `mark` with more is refused by the decoder.
/// Bounded so that an archived transaction fits a ring slot ([`SLOT_BYTES`]).
pub const MAX_MARK_PRICES: usize = 8;

/// Bytes of one ring slot and the upper bound of one journal record's payload.
pub const SLOT_BYTES: usize = 512;

/// An asset or market symbol: up to [`SYMBOL_BYTES`] ASCII bytes from `A-Z a-z 0-9 - _ . /`,
/// zero padded on the right.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[rkyv(derive(Debug, PartialEq, Eq, Hash))]
pub struct Symbol(pub [u8; SYMBOL_BYTES]);

/// A decimal number on the wire: `mantissa × 10^-scale`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct Dec {
    /// The digits, signed.
    pub mantissa: i64,
    /// Decimal places (at most 18).
    pub scale: u8,
}

/// Order side.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[rkyv(derive(Debug, PartialEq, Eq))]
#[repr(u8)]
pub enum Side {
    /// Buys base, pays quote.
    Buy,
    /// Sells base, receives quote.
    Sell,
}

impl Side {
    /// The other side.
    #[must_use]
    pub fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }
}

/// Order type.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug, PartialEq, Eq))]
#[repr(u8)]
pub enum OrderType {
    /// Has a limit price; may rest.
    Limit,
    /// No price; takes what the book offers and never rests.
    Market,
}

/// Time in force.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug, PartialEq, Eq))]
#[repr(u8)]
pub enum TimeInForce {
    /// Good till canceled: the remainder rests.
    Gtc,
    /// Immediate or cancel: the remainder is canceled.
    Ioc,
    /// Fill or kill: fills completely at once or not at all.
    Fok,
    /// Rests only: rejected (`would_take`) if any of it would trade on arrival.
    PostOnly,
}

/// Kind of market.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug, PartialEq, Eq))]
#[repr(u8)]
pub enum MarketKind {
    /// Base/quote spot market: trades move both assets.
    Spot,
    /// Perpetual future settled in one asset.
    Perp,
}

/// `add_asset`: lists an asset.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AddAsset {
    /// Ticker.
    pub symbol: Symbol,
    /// Amounts are integers in `10^-decimals` of the asset.
    pub decimals: u8,
    /// Haircut applied to a positive balance's value in margin (0..=1).
    pub collateral_weight: Dec,
    /// Multiplier applied to a debt's value in margin (>= 1).
    pub borrow_weight: Dec,
    /// Lending rate curve: yearly rate at zero utilisation.
    pub rate_base: Dec,
    /// Lending rate curve: utilisation of the kink (0..=1).
    pub rate_kink_utilization: Dec,
    /// Lending rate curve: yearly rate at the kink.
    pub rate_at_kink: Dec,
    /// Lending rate curve: yearly rate at full utilisation.
    pub rate_max: Dec,
    /// Share of interest paid to the insurance fund (0..=1).
    pub reserve_factor: Dec,
    /// Utilisation above which a borrow or redeem is refused (0..=1).
    pub max_utilization: Dec,
}

impl AddAsset {
    /// An asset with the text form's defaults: full collateral weight, debts at face value,
    /// a flat zero lending rate (kink at 0.8 utilisation), reserve factor 0.1, utilisation
    /// cap 0.95 (SPEC 6a).
    #[must_use]
    pub fn new(symbol: Symbol, decimals: u8) -> Self {
        Self {
            symbol,
            decimals,
            collateral_weight: Dec { mantissa: 1, scale: 0 },
            borrow_weight: Dec { mantissa: 1, scale: 0 },
            rate_base: Dec { mantissa: 0, scale: 0 },
            rate_kink_utilization: Dec { mantissa: 8, scale: 1 },
            rate_at_kink: Dec { mantissa: 0, scale: 0 },
            rate_max: Dec { mantissa: 0, scale: 0 },
            reserve_factor: Dec { mantissa: 1, scale: 1 },
            max_utilization: Dec { mantissa: 95, scale: 2 },
        }
    }
}

/// `add_market`: lists a spot or perp market.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AddMarket {
    /// Market name.
    pub symbol: Symbol,
    /// Spot or perp.
    pub kind: MarketKind,
    /// Traded asset.
    pub base: Symbol,
    /// Quote asset (spot) or settle asset (perp).
    pub quote: Symbol,
    /// Price step.
    pub tick: Dec,
    /// Quantity step.
    pub step: Dec,
    /// Maker fee rate; negative is a rebate.
    pub maker_fee: Dec,
    /// Taker fee rate.
    pub taker_fee: Dec,
    /// Perp: initial margin fraction.
    pub imf: Dec,
    /// Perp: maintenance margin fraction.
    pub mmf: Dec,
    /// Perp: funding interval in nanoseconds.
    pub funding_interval_ns: u64,
}

/// `deposit`: custody credits an account.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Deposit {
    /// Credited account.
    pub account: u64,
    /// Asset symbol.
    pub asset: Symbol,
    /// Amount, positive.
    pub amount: Dec,
    /// Reference of the chain transaction that brought the funds in.
    pub chain_ref: [u8; 32],
}

/// An asset and an amount: `withdraw`, `lend`, `redeem`, `borrow`, `repay`.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct AssetAmount {
    /// Asset symbol.
    pub asset: Symbol,
    /// Amount, positive.
    pub amount: Dec,
}

/// `place`: a new order.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Place {
    /// Market symbol.
    pub market: Symbol,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub order_type: OrderType,
    /// Time in force.
    pub tif: TimeInForce,
    /// May only reduce a perp position.
    pub reduce_only: bool,
    /// Limit price (ignored for market orders).
    pub price: Dec,
    /// Quantity, positive.
    pub qty: Dec,
    /// The client's own id for this order (0 = none); unique among the account's live orders.
    pub client_id: u64,
}

/// Names one of the signer's orders: by exchange id, or by client id when `order_id` is 0.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct OrderRef {
    /// Market symbol.
    pub market: Symbol,
    /// Exchange order id, or 0.
    pub order_id: u64,
    /// Client order id, used when `order_id` is 0.
    pub client_id: u64,
}

/// `amend`: a new price and/or a smaller quantity.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Amend {
    /// The order.
    pub order: OrderRef,
    /// New limit price, if it changes (loses time priority).
    pub price: Option<Dec>,
    /// New remaining quantity, if it changes: at most the current remaining.
    pub qty: Option<Dec>,
}

/// One price of a `mark`: an asset's index price or a perp's mark price.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct MarkPrice {
    /// Asset or perp market symbol.
    pub symbol: Symbol,
    /// Price: of one whole asset unit in the valuation unit, or the perp's mark price.
    pub price: Dec,
}

/// `mark`: oracle prices; triggers settlement and liquidation checks.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Mark {
    /// How many entries of `prices` are used (1..=[`MAX_MARK_PRICES`]).
    pub count: u8,
    /// The prices; unused entries are zero.
    pub prices: [MarkPrice; MAX_MARK_PRICES],
}

/// `funding`: a funding rate for a perp.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Funding {
    /// Perp market symbol.
    pub market: Symbol,
    /// Rate per interval; positive: longs pay shorts.
    pub rate: Dec,
}

/// The operation a transaction performs.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Op {
    /// Admin lists an asset.
    AddAsset(AddAsset),
    /// Admin lists a market.
    AddMarket(AddMarket),
    /// A new key registers itself as an account.
    CreateAccount,
    /// Custody credits an account.
    Deposit(Deposit),
    /// The account takes funds out.
    Withdraw(AssetAmount),
    /// The account places an order.
    Place(Place),
    /// The account cancels one order.
    Cancel(OrderRef),
    /// The account cancels all its orders in a market.
    CancelAll(Symbol),
    /// The account amends an order.
    Amend(Amend),
    /// The account moves available funds into the asset's lending pool.
    Lend(AssetAmount),
    /// The account takes lent funds back out of the pool.
    Redeem(AssetAmount),
    /// The account borrows from the pool against its margin.
    Borrow(AssetAmount),
    /// The account pays back a debt.
    Repay(AssetAmount),
    /// Oracle prices.
    Mark(Mark),
    /// Oracle funding rate.
    Funding(Funding),
    /// Oracle advances time (the tx's stamp is the new time).
    Tick,
}

/// What a signer signs: who, which nonce, on whose account, and the operation.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Tx {
    /// The signer's ed25519 public key.
    pub signer: [u8; 32],
    /// Strictly increasing per signer.
    pub nonce: u64,
    /// The acting account for user ops; 0 for operator ops and `create_account`.
    pub account: u64,
    /// The operation.
    pub op: Op,
}

/// A transaction with its ed25519 signature over its canonical bytes (see [`crate::signing`]).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SignedTx {
    /// The signed body.
    pub tx: Tx,
    /// ed25519 signature.
    pub signature: [u8; 64],
}

/// A verified transaction stamped by the sequencer: what a ring slot and a journal record hold.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct SequencedTx {
    /// Position in the global log, from 1, gap-free.
    pub seq: u64,
    /// Sequencer time stamp in nanoseconds: the engine's only clock.
    pub ts: u64,
    /// The transaction as signed.
    pub signed: SignedTx,
}

/// Size of an archived [`SequencedTx`]: every record has exactly this many bytes.
pub const RECORD_BYTES: usize = core::mem::size_of::<ArchivedSequencedTx>();

const _: () = assert!(RECORD_BYTES <= SLOT_BYTES, "an archived tx must fit a ring slot");
const _: () = assert!(SLOT_BYTES.is_multiple_of(64), "slots are whole cache lines");
const _: () = assert!(core::mem::align_of::<ArchivedSequencedTx>() <= 16);

impl Symbol {
    /// Builds a symbol from text; `None` if it is empty, too long, or has a byte outside
    /// `A-Z a-z 0-9 - _ . /`.
    #[must_use]
    pub fn new(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > SYMBOL_BYTES || !bytes.iter().all(|b| is_symbol_byte(*b)) {
            return None;
        }
        let mut out = [0u8; SYMBOL_BYTES];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(Self(out))
    }

    /// The text of the symbol (empty if the bytes are not a valid symbol).
    #[must_use]
    pub fn as_str(&self) -> &str {
        symbol_text(&self.0)
    }

    /// True when the bytes form a valid symbol (non-empty, allowed bytes, zero padded).
    #[must_use]
    pub fn is_valid(&self) -> bool {
        symbol_bytes_valid(&self.0)
    }
}

impl ArchivedSymbol {
    /// The native symbol.
    #[must_use]
    pub fn to_native(&self) -> Symbol {
        Symbol(self.0)
    }
}

impl core::fmt::Debug for Symbol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

fn is_symbol_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/')
}

fn symbol_len(bytes: &[u8; SYMBOL_BYTES]) -> usize {
    bytes.iter().position(|b| *b == 0).unwrap_or(SYMBOL_BYTES)
}

fn symbol_bytes_valid(bytes: &[u8; SYMBOL_BYTES]) -> bool {
    let len = symbol_len(bytes);
    len > 0 && bytes[..len].iter().all(|b| is_symbol_byte(*b)) && bytes[len..].iter().all(|b| *b == 0)
}

fn symbol_text(bytes: &[u8; SYMBOL_BYTES]) -> &str {
    if !symbol_bytes_valid(bytes) {
        return "";
    }
    core::str::from_utf8(&bytes[..symbol_len(bytes)]).unwrap_or("")
}

impl Mark {
    /// A mark from up to [`MAX_MARK_PRICES`] prices; `None` if there are none or too many.
    #[must_use]
    pub fn from_prices(prices: &[MarkPrice]) -> Option<Self> {
        if prices.is_empty() || prices.len() > MAX_MARK_PRICES {
            return None;
        }
        let mut out = [MarkPrice::default(); MAX_MARK_PRICES];
        out[..prices.len()].copy_from_slice(prices);
        Some(Self { count: u8::try_from(prices.len()).ok()?, prices: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_validate() {
        assert!(Symbol::new("BTC-USDC").is_some());
        assert!(Symbol::new("").is_none());
        assert!(Symbol::new("WAY-TOO-LONG-SYMBOL").is_none());
        assert!(Symbol::new("BTC USDC").is_none());
        assert_eq!(Symbol::new("ETH").map(|s| s.as_str().to_string()), Some("ETH".to_string()));
        let mut bad = Symbol::new("AB").unwrap_or_default();
        bad.0[5] = b'X';
        assert!(!bad.is_valid());
    }

    #[test]
    fn record_size_is_fixed() {
        assert_eq!(RECORD_BYTES % 16, 0, "records stay 16-byte aligned back to back");
    }
}
