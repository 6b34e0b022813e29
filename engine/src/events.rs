//! What the engine emits: one ordered list of events per transaction.
//!
//! A rejection is an event, not an error: it is a deterministic outcome that replays
//! identically. Events carry ids and integer units; the text layer ([`crate::text`]) turns them
//! into the JSON of SPEC section 13 with the catalog's symbols and decimals.

use crate::tx::Side;

/// Why a transaction was rejected. The text form is the snake_case word of SPEC section 13.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The signature does not verify (detected by the ingress; the engine never sees it).
    BadSignature,
    /// The nonce is not above the signer's last one.
    StaleNonce,
    /// The stamp is before the last applied one.
    StaleTs,
    /// The stamp is beyond [`crate::sequencer::MAX_TS_NS`] (a development line's own `ts`):
    /// rejected without moving the engine's clock.
    InvalidTs,
    /// No such account, or the signer is not the account's key.
    UnknownAccount,
    /// No such asset.
    UnknownAsset,
    /// No such market.
    UnknownMarket,
    /// No such live order of this account in this market.
    UnknownOrder,
    /// The price is not a multiple of the market's tick, or not positive.
    OffTick,
    /// The quantity is not a multiple of the market's step.
    OffStep,
    /// A price is zero, negative, or beyond the engine's range.
    InvalidPrice,
    /// Not enough available balance.
    InsufficientBalance,
    /// The account would break its initial margin.
    InsufficientMargin,
    /// A post-only order would have traded on arrival.
    WouldTake,
    /// A number does not fit the engine's integer ranges.
    Overflow,
    /// The signer's role does not allow this operation.
    NotPermitted,
    /// An amount or quantity is zero, negative, or not a whole number of units.
    InvalidAmount,
    /// A listing's parameters are out of range.
    InvalidConfig,
    /// The symbol is taken already.
    DuplicateSymbol,
    /// The key has an account already.
    DuplicateAccount,
    /// The client order id is in use by a live order of the account.
    DuplicateClientId,
    /// An amend that changes nothing or grows the quantity.
    InvalidAmend,
    /// A reduce-only order that would not reduce a position.
    ReduceOnly,
    /// A capacity limit is reached (accounts, orders, levels, listings).
    LimitReached,
    /// A price the rule needs has not been published.
    NoPrice,
    /// This operation is not available on this market kind.
    WrongMarketKind,
    /// Not enough funds in the lending pool (or in custody, for a withdrawal).
    InsufficientLiquidity,
    /// A borrow or redeem would push the pool's utilization above its `max_utilization`.
    UtilizationCap,
}

impl RejectReason {
    /// The snake_case word of the public text form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::StaleNonce => "stale_nonce",
            Self::StaleTs => "stale_ts",
            Self::InvalidTs => "invalid_ts",
            Self::UnknownAccount => "unknown_account",
            Self::UnknownAsset => "unknown_asset",
            Self::UnknownMarket => "unknown_market",
            Self::UnknownOrder => "unknown_order",
            Self::OffTick => "off_tick",
            Self::OffStep => "off_step",
            Self::InvalidPrice => "invalid_price",
            Self::InsufficientBalance => "insufficient_balance",
            Self::InsufficientMargin => "insufficient_margin",
            Self::WouldTake => "would_take",
            Self::Overflow => "overflow",
            Self::NotPermitted => "not_permitted",
            Self::InvalidAmount => "invalid_amount",
            Self::InvalidConfig => "invalid_config",
            Self::DuplicateSymbol => "duplicate_symbol",
            Self::DuplicateAccount => "duplicate_account",
            Self::DuplicateClientId => "duplicate_client_id",
            Self::InvalidAmend => "invalid_amend",
            Self::ReduceOnly => "reduce_only",
            Self::LimitReached => "limit_reached",
            Self::NoPrice => "no_price",
            Self::WrongMarketKind => "wrong_market_kind",
            Self::InsufficientLiquidity => "insufficient_liquidity",
            Self::UtilizationCap => "utilization_cap",
        }
    }
}

/// Why an order left the book without filling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The owner canceled it.
    User,
    /// An `ioc` remainder.
    Ioc,
    /// A `fok` that could not fill completely.
    Fok,
    /// Self-trade prevention canceled the resting order.
    SelfTrade,
    /// The owner was liquidated.
    Liquidation,
    /// A market order found no (more) liquidity.
    MarketNoLiquidity,
    /// The taker reached the per-tx fill limit.
    FillLimit,
}

impl CancelReason {
    /// The snake_case word of the public text form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ioc => "ioc",
            Self::Fok => "fok",
            Self::SelfTrade => "self_trade",
            Self::Liquidation => "liquidation",
            Self::MarketNoLiquidity => "market_no_liquidity",
            Self::FillLimit => "fill_limit",
        }
    }
}

/// An order's new status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Passed validation and got its id.
    Accepted,
    /// Rests in the book with `remaining`.
    Rested,
    /// Completely filled.
    Filled,
    /// Left the book.
    Canceled(CancelReason),
    /// Price and/or quantity changed (then `rested` or fills follow for a price change).
    Amended,
}

/// One thing that happened. Amounts are in the units of their asset, prices in the market's
/// price units, quantities in base units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// The tx was rejected and changed nothing but the signer's nonce.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// An asset was listed.
    AssetAdded {
        /// Its index.
        asset: u16,
    },
    /// A market was listed.
    MarketAdded {
        /// Its index.
        market: u16,
    },
    /// An account was created.
    AccountCreated {
        /// Its id.
        account: u64,
    },
    /// Custody credited an account.
    Deposit {
        /// Account id.
        account: u64,
        /// Asset index.
        asset: u16,
        /// Amount in asset units.
        amount: u64,
    },
    /// Funds left an account; custody pays them out.
    Withdrawal {
        /// Account id.
        account: u64,
        /// Asset index.
        asset: u16,
        /// Amount in asset units.
        amount: u64,
    },
    /// Funds moved between available and the lending pool (`lend`, `redeem`, `borrow`, `repay`).
    Pool {
        /// Which movement.
        kind: PoolMove,
        /// Account id.
        account: u64,
        /// Asset index.
        asset: u16,
        /// Amount in asset units.
        amount: u64,
    },
    /// An automatic borrow: a debit beyond `available` (a loss, funding, a fee, a liquidation
    /// cost) borrowed `amount` from the pool; `unfunded` of it the pool's cash could not fund
    /// (a debt lent by nobody, see [`crate::lending`]).
    Borrow {
        /// Account id.
        account: u64,
        /// Asset index.
        asset: u16,
        /// The shortfall, asset units.
        amount: u64,
        /// The part the pool could not fund.
        unfunded: u64,
    },
    /// An automatic repayment: a credit to an account with a debt paid `amount` of it.
    Repay {
        /// Account id.
        account: u64,
        /// Asset index.
        asset: u16,
        /// Amount repaid, asset units.
        amount: u64,
    },
    /// A holder's `available` lent to the pool automatically at the end of a tx that left an
    /// automatic borrow unfunded (see [`crate::lending`], "Automatic borrows"): its share, pro
    /// rata to what it held, of the cash the pool lacked.
    AutoLend {
        /// Account id.
        account: u64,
        /// Asset index.
        asset: u16,
        /// Amount lent, asset units.
        amount: u64,
    },
    /// `amount` of an account's unfunded debt became an ordinary pool borrow, funded by what
    /// the holders lent (the account's debt is unchanged; it now bears the pool's interest).
    DebtFunded {
        /// Account id.
        account: u64,
        /// Asset index.
        asset: u16,
        /// Amount funded, asset units.
        amount: u64,
    },
    /// A pool accrued interest at `tick`.
    Accrual {
        /// Asset index.
        asset: u16,
        /// Interest charged to borrowers, asset units.
        interest: u64,
        /// Of it, the reserve paid to the insurance fund.
        reserve: u64,
        /// Utilization over the period, ratio units.
        utilization: i64,
        /// Yearly borrow rate over the period, ratio units.
        borrow_rate: i64,
        /// Yearly lend rate over the period, ratio units.
        lend_rate: i64,
    },
    /// Collateral of a liquidated debtor was sold for the asset it owes.
    CollateralSold {
        /// The liquidated account.
        account: u64,
        /// The collateral asset.
        asset: u16,
        /// Quantity sold, collateral units.
        qty: u64,
        /// The asset owed.
        debt_asset: u16,
        /// What it fetched, debt-asset units.
        proceeds: u64,
        /// Sold on the spot books, or taken over by the insurance fund at the index price less
        /// the liquidation fee.
        via: LiquidationVia,
    },
    /// A bankrupt account's debt was paid by someone else (see [`crate::lending`]).
    BadDebt {
        /// The bankrupt account.
        account: u64,
        /// Asset index.
        asset: u16,
        /// Amount paid, asset units.
        amount: u64,
        /// Who paid it.
        paid_by: DebtPayer,
    },
    /// An order's status changed.
    Order {
        /// Exchange order id.
        order_id: u64,
        /// Owner.
        account: u64,
        /// Market index.
        market: u16,
        /// The order's side.
        side: Side,
        /// New status.
        status: OrderStatus,
        /// Remaining quantity (for `rested` and `amended`).
        remaining: u64,
        /// Limit price (for `amended`: the new one).
        price: i64,
        /// The book level this change moved, with its new total: set for `rested`, for
        /// `canceled` of a resting order and for `amended` (the level the order left or
        /// shrank), `None` when the book did not change (`accepted`, `filled`, a taker's
        /// `canceled`). A maker's `filled` has none: its [`Event::Fill`] carried the level.
        level: Option<LevelTotal>,
    },
    /// A trade.
    Fill {
        /// Trade id: sequential from 1 across the exchange, one per fill.
        trade_id: u64,
        /// The stamp of the tx that caused it (ns).
        ts: u64,
        /// Market index.
        market: u16,
        /// Trade price (the maker's).
        price: i64,
        /// Quantity in base units.
        qty: u64,
        /// The taker's side.
        taker_side: Side,
        /// Maker order id.
        maker_order: u64,
        /// Taker order id.
        taker_order: u64,
        /// Maker account.
        maker: u64,
        /// Taker account.
        taker: u64,
        /// Fee charged to the maker (negative: rebate), in quote/settle units.
        maker_fee: i64,
        /// Fee charged to the taker, in quote/settle units.
        taker_fee: i64,
        /// The maker's level (side opposite to `taker_side`, at `price`): its total quantity
        /// after this fill, base units (0: the level is gone).
        level_total: u64,
    },
    /// PnL moved into (or out of) an account's settle balance: on a mark, a fill away from the
    /// mark, a takeover or ADL leg at a bankruptcy price, or the rest of a fund's shortfall
    /// (see [`crate::insurance`]).
    Settlement {
        /// Perp market index.
        market: u16,
        /// Account id.
        account: u64,
        /// Settle-asset units, signed.
        pnl: i64,
    },
    /// A funding payment received (positive) or paid (negative).
    Funding {
        /// Perp market index.
        market: u16,
        /// Account id.
        account: u64,
        /// Settle-asset units, signed.
        amount: i64,
    },
    /// Part of a liquidated account's position was closed.
    Liquidation {
        /// The liquidated account.
        account: u64,
        /// Perp market index.
        market: u16,
        /// Quantity closed, base units.
        qty: u64,
        /// Price (last fill price for the book; the bankruptcy price otherwise).
        price: i64,
        /// How it was closed.
        via: LiquidationVia,
    },
    /// An opposite position was deleveraged against a bankrupt one, or against the insurance
    /// fund's when the fund itself is deleveraged.
    Adl {
        /// The deleveraged account.
        account: u64,
        /// The liquidated account; 0 ([`crate::insurance::FUND_ACCOUNT_ID`]) for the insurance
        /// fund.
        liquidated: u64,
        /// Perp market index.
        market: u16,
        /// Quantity closed, base units.
        qty: u64,
        /// The bankruptcy price (the liquidated account's, or the fund's; the mark when the fund
        /// is deleveraged for want of maintenance while still solvent).
        price: i64,
    },
}

/// A price level of one side of a book after a change: market data rebuilds L2 depth from
/// these alone (SPEC 14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LevelTotal {
    /// The level's price, market price units.
    pub price: i64,
    /// The level's total quantity after the change, base units; 0: the level is gone.
    pub total: u64,
}

/// How a liquidated position was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LiquidationVia {
    /// Against resting orders, no worse than the bankruptcy price.
    Book,
    /// Taken over by the insurance fund at the bankruptcy price.
    Insurance,
    /// Auto-deleveraged against opposite positions at the bankruptcy price.
    Adl,
}

impl LiquidationVia {
    /// The event word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Book => "book",
            Self::Insurance => "insurance",
            Self::Adl => "adl",
        }
    }
}

/// Who paid a bankrupt account's debt (in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DebtPayer {
    /// The insurance fund, from its balance of the asset.
    Insurance,
    /// The asset's lenders: their supply index was cut (a socialized loss).
    Lenders,
    /// The fee account (the exchange's own money).
    Exchange,
    /// The counterparties of the account's perp fills in the same tx: each pays back what
    /// the fill's price credited it against the mark, up to the debt.
    Counterparties,
    /// The asset's holders (last resort for a debt that nobody lent: every account's
    /// `available` of the asset is cut pro rata, so no balance stays that nobody deposited).
    Holders,
    /// Nobody: recorded as the asset's uncovered loss. No path reaches it
    /// (`Engine::check_invariants` asserts that nothing is uncovered); kept so that the event
    /// and state-dump forms stay stable.
    Uncovered,
}

impl DebtPayer {
    /// The event word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insurance => "insurance",
            Self::Lenders => "lenders",
            Self::Exchange => "exchange",
            Self::Counterparties => "counterparties",
            Self::Holders => "holders",
            Self::Uncovered => "uncovered",
        }
    }
}

/// A movement between an account and a lending pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolMove {
    /// Available → lent.
    Lend,
    /// Lent → available.
    Redeem,
    /// Pool → available, adds to borrowed.
    Borrow,
    /// Available → pool, reduces borrowed.
    Repay,
}

impl PoolMove {
    /// The event word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lend => "lend",
            Self::Redeem => "redeem",
            Self::Borrow => "borrow",
            Self::Repay => "repay",
        }
    }
}

/// The events of one transaction, in order. Pre-allocated; [`EventBuf::push`] never grows it.
#[derive(Debug)]
pub struct EventBuf {
    seq: u64,
    events: Vec<Event>,
    capacity: usize,
    overflowed: bool,
}

impl EventBuf {
    /// A buffer for up to `capacity` events per tx.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self { seq: 0, events: Vec::with_capacity(capacity), capacity, overflowed: false }
    }

    /// Starts the events of the tx `seq`.
    pub fn begin(&mut self, seq: u64) {
        self.seq = seq;
        self.events.clear();
        self.overflowed = false;
    }

    /// Appends an event. Beyond capacity the event is dropped and [`EventBuf::overflowed`]
    /// turns true; the engine sizes the buffer so that this cannot happen (see
    /// [`crate::Engine::event_capacity`]).
    pub fn push(&mut self, event: Event) {
        if self.events.len() < self.capacity {
            self.events.push(event);
        } else {
            self.overflowed = true;
        }
    }

    /// The seq of the tx these events belong to.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The events so far.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// True if an event was dropped for lack of capacity (a sizing bug).
    #[must_use]
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Moves the last event to index `at`, shifting the ones from `at` on by one (no
    /// allocation).
    #[inline]
    pub(crate) fn move_last_to(&mut self, at: usize) {
        if at + 1 < self.events.len() {
            self.events[at..].rotate_right(1);
        }
    }

    /// Drops the events from index `len` on.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.events.truncate(len);
    }

    /// The rejection reason if this tx was rejected.
    #[must_use]
    pub fn rejection(&self) -> Option<RejectReason> {
        match self.events.first() {
            Some(Event::Rejected { reason }) => Some(*reason),
            _ => None,
        }
    }
}
