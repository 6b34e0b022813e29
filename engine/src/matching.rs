//! Matching: `place`, `cancel`, `cancel_all` and `amend` on spot books.
//!
//! Price-time priority, trades at the maker's price, self-trade prevention by canceling the
//! resting order of the same account. A buy locks the worst case of its remaining quantity:
//! per lot, the notional at its limit price rounded up plus the larger fee rounded up, so the
//! lock is additive in lots and each fill's real cost (at a price no worse than the limit,
//! rounded once) always fits inside what that fill releases. A sell locks its base quantity.
//! A perp order locks nothing (cross-collateral, SPEC 6): the same per-lot worst case
//! (initial margin and the larger fee) is *reserved*, an initial requirement in the settle
//! asset (`Holding::reserved`), released as it fills or leaves the book. A limit perp order
//! is also refused when a fill at its limit would break initial margin at once (the fill
//! realises its price against the mark: a buy above the mark, a sell below it, loses that
//! much), checked at placement and not reserved; a market order's cost is the book's.
//!
//! Every rule is checked before the first change: a rejected order changes nothing.

use crate::accounts::NIL;
use crate::book::crosses;
use crate::catalog::Market;
use crate::engine::Engine;
use crate::events::{CancelReason, Event, EventBuf, LevelTotal, OrderStatus, RejectReason};
use crate::fixed::{mul_ratio, scale_pow10, Round, UnitsError, RATIO_ONE};
use crate::limits::{MAX_PRICE_UNITS, MAX_QTY_UNITS};
use crate::orders::Order;
use crate::tx::{
    ArchivedAmend, ArchivedDec, ArchivedOrderRef, ArchivedOrderType, ArchivedPlace, ArchivedSide, ArchivedSymbol,
    ArchivedTimeInForce, MarketKind, Side, TimeInForce,
};

/// A public view of a resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// Exchange order id.
    pub order_id: u64,
    /// Client order id (0 = none).
    pub client_id: u64,
    /// Market index.
    pub market: u16,
    /// Side.
    pub side: Side,
    /// Limit price, price units.
    pub price: i64,
    /// Remaining quantity, base units.
    pub remaining: u64,
    /// What it holds locked (quote units for a buy, base units for a sell).
    pub locked: u64,
}

/// The incoming order while it matches.
struct Taker {
    account: u32,
    market: u16,
    side: Side,
    order_id: u64,
    /// `None` for a market order.
    limit: Option<i64>,
    remaining: u64,
    /// Held in `locked` for the remaining quantity (0 for a market buy).
    locked: u64,
    /// Locked per lot of the remaining quantity (0 for a market buy).
    lock_per_lot: u64,
}

/// The new terms of a re-priced order.
#[derive(Clone, Copy)]
struct Repriced {
    price: i64,
    qty: u64,
    per_lot: u64,
    need: u64,
}

/// Why matching stopped with quantity left.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The book ran out of crossing liquidity.
    Exhausted,
    /// The per-tx fill limit was reached.
    FillLimit,
}

fn native_side(side: &ArchivedSide) -> Side {
    match side {
        ArchivedSide::Buy => Side::Buy,
        ArchivedSide::Sell => Side::Sell,
    }
}

fn native_tif(tif: &ArchivedTimeInForce) -> TimeInForce {
    match tif {
        ArchivedTimeInForce::Gtc => TimeInForce::Gtc,
        ArchivedTimeInForce::Ioc => TimeInForce::Ioc,
        ArchivedTimeInForce::Fok => TimeInForce::Fok,
        ArchivedTimeInForce::PostOnly => TimeInForce::PostOnly,
    }
}

/// A value bounded by the supply cap; beyond `u64` is an engine bug, not bad input.
fn bounded(value: i128) -> u64 {
    u64::try_from(value).unwrap_or_else(|_| panic!("invariant: amount {value} outside u64; supply cap broken"))
}

/// The asset an order of `side` locks: a spot sell locks base, everything else the quote
/// (spot) or settle (perp) asset.
pub(crate) fn lock_asset(market: &Market, side: Side) -> u16 {
    match (market.kind, side) {
        (MarketKind::Spot, Side::Sell) => market.base,
        _ => market.quote,
    }
}

/// What one lot (one `step`) of an order at `price` locks: its base quantity for a sell; for
/// a buy, the lot's notional at `price` rounded up plus the larger fee on it rounded up.
/// `None` on overflow.
///
/// A perp order (either side) reserves per lot its initial margin at `price` (notional × IMF)
/// plus the larger fee, each rounded up, in the settle asset (a requirement, not a lock).
pub(crate) fn lock_per_lot(market: &Market, side: Side, price: i64) -> Option<u64> {
    lock_per_lot_whole(market, side, price).or_else(|| lock_per_lot_exact(market, side, price))
}

/// What a perp order of `qty` filled at its limit `price` loses against the mark at once, in
/// settle units (0 when the limit is on the mark's good side): a buy above the mark, a sell
/// below it. Rounded like a settlement; far-out values saturate (the margin check refuses them).
fn fill_loss(market: &Market, side: Side, price: i64, qty: u64) -> i128 {
    let adverse = match side {
        Side::Buy => price.saturating_sub(market.last_mark),
        Side::Sell => market.last_mark.saturating_sub(price),
    };
    if adverse <= 0 {
        return 0;
    }
    let product = i128::from(adverse) * i128::from(qty);
    scale_pow10(product, market.notional_exp, Round::Ceil).unwrap_or(i128::MAX / 4)
}

/// [`lock_per_lot`] when a lot's notional at one price unit is the whole number
/// `market.lot_notional`: the notional is exact, and each rounded-up ratio of it is one 64-bit
/// division by the constant `RATIO_ONE`. The same value as [`lock_per_lot_exact`]; `None` when
/// the market's lot notional is not whole or a product leaves `u64` (the exact path then
/// decides).
fn lock_per_lot_whole(market: &Market, side: Side, price: i64) -> Option<u64> {
    const ONE: u64 = RATIO_ONE.unsigned_abs();
    if (market.kind, side) == (MarketKind::Spot, Side::Sell) {
        // A spot sell locks its base quantity, whatever the price.
        return Some(market.step_units);
    }
    if market.lot_notional == 0 {
        return None;
    }
    let notional = u64::try_from(price).ok()?.checked_mul(market.lot_notional)?;
    let ratio_of =
        |ratio: i64| -> Option<u64> { Some(notional.checked_mul(u64::try_from(ratio).ok()?)?.div_ceil(ONE)) };
    match (market.kind, side) {
        (MarketKind::Perp, _) => ratio_of(market.imf)?.checked_add(ratio_of(market.max_fee())?),
        (MarketKind::Spot, Side::Sell) => Some(market.step_units),
        (MarketKind::Spot, Side::Buy) => notional.checked_add(ratio_of(market.max_fee())?),
    }
}

/// [`lock_per_lot`] for any market, in `i128` with explicit rounding. Out of line: it is
/// the rare path, and inlined it made every call save the registers it needs.
#[inline(never)]
fn lock_per_lot_exact(market: &Market, side: Side, price: i64) -> Option<u64> {
    match (market.kind, side) {
        (MarketKind::Perp, _) => {
            let per_lot_product = i128::from(price).checked_mul(i128::from(market.step_units))?;
            let margin = mul_ratio(per_lot_product, market.notional_exp, market.imf, Round::Ceil)?;
            let fee = mul_ratio(per_lot_product, market.notional_exp, market.max_fee(), Round::Ceil)?;
            u64::try_from(margin.checked_add(fee)?).ok()
        }
        (MarketKind::Spot, Side::Sell) => Some(market.step_units),
        (MarketKind::Spot, Side::Buy) => {
            let per_lot_product = i128::from(price).checked_mul(i128::from(market.step_units))?;
            let notional = scale_pow10(per_lot_product, market.notional_exp, Round::Ceil)?;
            let fee = mul_ratio(per_lot_product, market.notional_exp, market.max_fee(), Round::Ceil)?;
            u64::try_from(notional.checked_add(fee)?).ok()
        }
    }
}

/// What a resting order of `qty` at `price` must hold locked (see the module docs):
/// `qty / step × lock_per_lot`. `None` on overflow.
pub(crate) fn lock_need(market: &Market, side: Side, price: i64, qty: u64) -> Option<u64> {
    lock_per_lot(market, side, price)?.checked_mul(qty / market.step_units)
}

/// The money of one fill, all in quote units.
struct FillAmounts {
    /// Notional rounded up: what the buyer pays before fees.
    notional_ceil: u64,
    /// Notional rounded down: what the seller gets before fees.
    notional_floor: u64,
    /// Signed fee of the buyer and the seller (negative: rebate), the seller's capped at its
    /// proceeds.
    buyer_fee: i64,
    seller_fee: i64,
}

/// Fees and notional of `qty` at `price`; the maker's fee may be a rebate (rounded down).
fn fill_amounts(market: &Market, taker_side: Side, price: i64, qty: u64) -> Option<FillAmounts> {
    let product = i128::from(price).checked_mul(i128::from(qty))?;
    let notional_floor = scale_pow10(product, market.notional_exp, Round::Floor)?;
    let exact = market.notional_exp >= 0 || product % crate::fixed::pow10(market.notional_exp.unsigned_abs())? == 0;
    let notional_ceil = u64::try_from(notional_floor + i128::from(!exact)).ok()?;
    let notional_floor = u64::try_from(notional_floor).ok()?;
    let taker_fee = mul_ratio(product, market.notional_exp, market.taker_fee, Round::Ceil)?;
    let maker_fee = if market.maker_fee >= 0 {
        mul_ratio(product, market.notional_exp, market.maker_fee, Round::Ceil)?
    } else {
        -mul_ratio(product, market.notional_exp, -market.maker_fee, Round::Floor)?
    };
    let (buyer_fee, seller_fee) = match taker_side {
        Side::Buy => (taker_fee, maker_fee),
        Side::Sell => (maker_fee, taker_fee),
    };
    let seller_fee = seller_fee.min(i128::from(notional_floor));
    Some(FillAmounts {
        notional_ceil,
        notional_floor,
        buyer_fee: i64::try_from(buyer_fee).ok()?,
        seller_fee: i64::try_from(seller_fee).ok()?,
    })
}

fn apply_signed(value: u64, delta: i64) -> u64 {
    let result = i128::from(value) + i128::from(delta);
    bounded(result)
}

impl Engine {
    fn market_of(&self, symbol: &ArchivedSymbol) -> Result<(u16, Market), RejectReason> {
        let index = self.catalog.market_index(&symbol.to_native()).ok_or(RejectReason::UnknownMarket)?;
        Ok((index, *self.catalog.market(index)))
    }

    fn qty_units(&self, market: &Market, qty: &ArchivedDec) -> Result<u64, RejectReason> {
        if qty.mantissa.to_native() <= 0 {
            return Err(RejectReason::InvalidAmount);
        }
        let decimals = u32::from(self.catalog.asset(market.base).decimals);
        let units = qty.to_units_checked(decimals).map_err(|e| match e {
            UnitsError::NotWhole => RejectReason::OffStep,
            UnitsError::OutOfRange => RejectReason::Overflow,
        })?;
        let units = u64::try_from(units).map_err(|_| RejectReason::InvalidAmount)?;
        if units > MAX_QTY_UNITS {
            return Err(RejectReason::Overflow);
        }
        if market.step_units != 1 && units % market.step_units != 0 {
            return Err(RejectReason::OffStep);
        }
        Ok(units)
    }

    fn price_units(market: &Market, price: &ArchivedDec) -> Result<i64, RejectReason> {
        let mantissa = price.mantissa.to_native();
        if mantissa <= 0 {
            return Err(RejectReason::InvalidPrice);
        }
        // The usual case: a price written in the market's own decimals is its mantissa in
        // price units (what the conversion below gives, without it).
        let units = if u32::from(price.scale) == market.price_decimals {
            mantissa
        } else {
            price.to_units_checked(market.price_decimals).map_err(|e| match e {
                UnitsError::NotWhole => RejectReason::OffTick,
                UnitsError::OutOfRange => RejectReason::Overflow,
            })?
        };
        if units > MAX_PRICE_UNITS {
            return Err(RejectReason::Overflow);
        }
        // A tick of one unit (the usual one) puts every whole price on the grid.
        if market.tick_units != 1 && units % market.tick_units != 0 {
            return Err(RejectReason::OffTick);
        }
        Ok(units)
    }

    /// Room to rest one more order of `account` at `price` on `side` of market `m`?
    fn has_room_to_rest(&self, account: u32, m: u16, side: Side, price: i64) -> bool {
        self.accounts.get(account).order_count < self.limits.max_orders_per_account
            && !self.orders.is_full()
            && !self.levels.is_full()
            && self.books[usize::from(m)].side(side).has_room_for(price)
    }

    /// Walks the opposite side as matching would, without changing anything: how much would
    /// fill, and (for a buy) what it would cost including the taker fee.
    fn dry_run(&self, taker: &Taker, market: &Market) -> Result<(u64, u64), RejectReason> {
        let book = &self.books[usize::from(taker.market)];
        let mut remaining = taker.remaining;
        let mut cost = 0u64;
        let mut fills = 0u32;
        'levels: for level in book.side(taker.side.opposite()).iter_best_first() {
            let level = self.levels.get(level);
            if !crosses(taker.side, taker.limit, level.price) {
                break;
            }
            let mut slot = level.head;
            while slot != NIL && remaining > 0 {
                let maker = self.orders.get(slot);
                slot = maker.next;
                if maker.account == taker.account {
                    continue;
                }
                if fills == self.limits.max_fills_per_tx {
                    break 'levels;
                }
                let qty = remaining.min(maker.remaining);
                if market.kind == MarketKind::Perp {
                    let per_lot = lock_per_lot(market, taker.side, maker.price).ok_or(RejectReason::Overflow)?;
                    let fill_cost = per_lot.checked_mul(qty / market.step_units).ok_or(RejectReason::Overflow)?;
                    cost = cost.checked_add(fill_cost).ok_or(RejectReason::Overflow)?;
                } else if taker.side == Side::Buy {
                    let amounts = fill_amounts(market, taker.side, maker.price, qty).ok_or(RejectReason::Overflow)?;
                    let fill_cost = apply_signed(amounts.notional_ceil, amounts.buyer_fee);
                    cost = cost.checked_add(fill_cost).ok_or(RejectReason::Overflow)?;
                }
                remaining -= qty;
                fills += 1;
            }
            if remaining == 0 {
                break;
            }
        }
        Ok((taker.remaining - remaining, cost))
    }

    /// `place`: validates, locks, matches, then rests or cancels the remainder.
    pub(crate) fn place(&mut self, account: u32, op: &ArchivedPlace, out: &mut EventBuf) -> Result<(), RejectReason> {
        let (m, market) = self.market_of(&op.market)?;
        let side = native_side(&op.side);
        let tif = native_tif(&op.tif);
        let qty = self.qty_units(&market, &op.qty)?;
        let limit = match op.order_type {
            ArchivedOrderType::Limit => Some(Self::price_units(&market, &op.price)?),
            ArchivedOrderType::Market if tif == TimeInForce::PostOnly => return Err(RejectReason::WouldTake),
            ArchivedOrderType::Market => None,
        };
        let client_id = op.client_id.to_native();
        if client_id != 0 && self.orders.slot_of_client(account, client_id).is_some() {
            return Err(RejectReason::DuplicateClientId);
        }
        let may_rest = matches!(tif, TimeInForce::Gtc | TimeInForce::PostOnly);
        if let (Some(price), true) = (limit, may_rest) {
            if !self.has_room_to_rest(account, m, side, price) {
                return Err(RejectReason::LimitReached);
            }
        }
        if tif == TimeInForce::PostOnly {
            let book = &self.books[usize::from(m)];
            if let Some(best) = book.side(side.opposite()).best() {
                if crosses(side, limit, self.levels.get(best).price) {
                    return Err(RejectReason::WouldTake);
                }
            }
        }
        let mut taker =
            Taker { account, market: m, side, order_id: 0, limit, remaining: qty, locked: 0, lock_per_lot: 0 };
        let (need, fillable) = match market.kind {
            MarketKind::Spot if op.reduce_only => return Err(RejectReason::ReduceOnly),
            MarketKind::Spot => self.spot_funds(&mut taker, &market, tif)?,
            MarketKind::Perp => self.perp_funds(&mut taker, &market, tif, op.reduce_only)?,
        };
        taker.order_id = self.next_order_id;
        self.next_order_id += 1;
        self.emit_status(out, &taker, OrderStatus::Accepted, 0, None);
        if tif == TimeInForce::Fok && fillable < qty {
            self.emit_status(out, &taker, OrderStatus::Canceled(CancelReason::Fok), 0, None);
            return Ok(());
        }
        self.hold(account, &market, side, need);
        taker.locked = need;
        let stop = self.match_taker(&mut taker, &market, out);
        self.finish_taker(taker, &market, tif, client_id, op.reduce_only, stop, out);
        Ok(())
    }

    /// What a spot order locks, and how much of it a `fok` could fill. A market buy locks
    /// nothing and pays each fill from `available`, after a dry run proved it can afford them.
    fn spot_funds(&self, taker: &mut Taker, market: &Market, tif: TimeInForce) -> Result<(u64, u64), RejectReason> {
        let available = self.accounts.holding(taker.account, lock_asset(market, taker.side)).available;
        let qty = taker.remaining;
        let fok_fillable = |engine: &Self, taker: &Taker| -> Result<u64, RejectReason> {
            if tif == TimeInForce::Fok {
                Ok(engine.dry_run(taker, market)?.0)
            } else {
                Ok(qty)
            }
        };
        let (need, fillable) = match (taker.side, taker.limit) {
            (Side::Buy, None) => {
                let (fillable, cost) = self.dry_run(taker, market)?;
                if cost > available {
                    return Err(RejectReason::InsufficientBalance);
                }
                (0, fillable)
            }
            (_, Some(price)) => {
                taker.lock_per_lot = lock_per_lot(market, taker.side, price).ok_or(RejectReason::Overflow)?;
                let need = taker.lock_per_lot.checked_mul(qty / market.step_units).ok_or(RejectReason::Overflow)?;
                (need, fok_fillable(self, taker)?)
            }
            (Side::Sell, None) => {
                taker.lock_per_lot = market.step_units;
                (qty, fok_fillable(self, taker)?)
            }
        };
        if need > available {
            return Err(RejectReason::InsufficientBalance);
        }
        Ok((need, fillable))
    }

    /// What a perp order locks (initial margin and fee of its worst case), checked against
    /// the account's cross margin; and how much of it a `fok` could fill. A reduce-only order
    /// locks nothing, must shrink the position, and never rests.
    fn perp_funds(
        &self,
        taker: &mut Taker,
        market: &Market,
        tif: TimeInForce,
        reduce_only: bool,
    ) -> Result<(u64, u64), RejectReason> {
        if market.last_mark == 0 {
            return Err(RejectReason::NoPrice);
        }
        let qty = taker.remaining;
        let fillable = |engine: &Self, taker: &Taker| -> Result<u64, RejectReason> {
            if tif == TimeInForce::Fok {
                Ok(engine.dry_run(taker, market)?.0)
            } else {
                Ok(qty)
            }
        };
        if reduce_only {
            let position = self.positions[usize::from(taker.market)].size[taker.account as usize];
            let shrinks = match taker.side {
                Side::Sell => position > 0,
                Side::Buy => position < 0,
            };
            let rests = taker.limit.is_some() && matches!(tif, TimeInForce::Gtc | TimeInForce::PostOnly);
            if !shrinks || qty > position.unsigned_abs() || rests {
                return Err(RejectReason::ReduceOnly);
            }
            return Ok((0, fillable(self, taker)?));
        }
        let (need, fillable, loss) = match taker.limit {
            Some(price) => {
                taker.lock_per_lot = lock_per_lot(market, taker.side, price).ok_or(RejectReason::Overflow)?;
                let need = taker.lock_per_lot.checked_mul(qty / market.step_units).ok_or(RejectReason::Overflow)?;
                (need, fillable(self, taker)?, fill_loss(market, taker.side, price, qty))
            }
            None => {
                let (fillable, cost) = self.dry_run(taker, market)?;
                (cost, fillable, 0)
            }
        };
        // Cross-collateral (SPEC 6): the worst case joins the initial requirement; nothing is
        // locked, so any collateral backs it. The worst case includes what a fill at the limit
        // loses against the mark at once (a fill realises qty × (mark − price)): an order that
        // would leave its account below initial margin the moment it fills is refused. (Only
        // checked here, not reserved: a later mark moves it, and liquidation handles a gap.)
        let after = self.margin_reserving(taker.account, market.quote, i128::from(need) + loss);
        if after.equity < after.initial {
            return Err(RejectReason::InsufficientMargin);
        }
        Ok((need, fillable))
    }

    /// Matches an IOC for a liquidated account, limited to `limit`; returns the quantity
    /// filled. Locks nothing: it only closes a position.
    pub(crate) fn match_liquidation(
        &mut self,
        account: u32,
        m: u16,
        side: Side,
        limit: i64,
        qty: u64,
        out: &mut EventBuf,
    ) -> u64 {
        let mut taker = Taker {
            account,
            market: m,
            side,
            order_id: 0,
            limit: Some(limit),
            remaining: qty,
            locked: 0,
            lock_per_lot: 0,
        };
        let market = *self.catalog.market(m);
        self.match_taker(&mut taker, &market, out);
        self.emit_filled_makers(out);
        qty - taker.remaining
    }

    /// Sells `qty` of a liquidated debtor's collateral (the base of spot market `m`) with an
    /// IOC limited to `limit`; returns the quantity sold. Locks the base for the order's life
    /// (the lock rule of any spot sell) and releases what did not fill.
    pub(crate) fn match_collateral_sale(
        &mut self,
        account: u32,
        m: u16,
        limit: i64,
        qty: u64,
        out: &mut EventBuf,
    ) -> u64 {
        let market = *self.catalog.market(m);
        self.lock(account, market.base, qty);
        let mut taker = Taker {
            account,
            market: m,
            side: Side::Sell,
            order_id: 0,
            limit: Some(limit),
            remaining: qty,
            locked: qty,
            lock_per_lot: market.step_units,
        };
        self.match_taker(&mut taker, &market, out);
        self.unlock(account, market.base, taker.locked);
        self.emit_filled_makers(out);
        qty - taker.remaining
    }

    /// Reports the makers a taker filled completely (after the taker's own status).
    fn emit_filled_makers(&self, out: &mut EventBuf) {
        for &(order_id, account, market, side) in &self.filled_makers {
            out.push(Event::Order {
                order_id,
                account,
                market,
                side,
                status: OrderStatus::Filled,
                remaining: 0,
                price: 0,
                level: None,
            });
        }
    }

    /// A taker's status; `level` is the level it rested in (`rested` only).
    fn emit_status(
        &self,
        out: &mut EventBuf,
        taker: &Taker,
        status: OrderStatus,
        remaining: u64,
        level: Option<LevelTotal>,
    ) {
        out.push(Event::Order {
            order_id: taker.order_id,
            account: u64::from(taker.account) + 1,
            market: taker.market,
            side: taker.side,
            status,
            remaining,
            price: 0,
            level,
        });
    }

    /// Matches the taker against the opposite side until it is filled, stops crossing, or
    /// reaches the fill limit.
    fn match_taker(&mut self, taker: &mut Taker, market: &Market, out: &mut EventBuf) -> Stop {
        self.filled_makers.clear();
        let book_index = usize::from(taker.market);
        let mut fills = 0u32;
        while taker.remaining > 0 {
            let Some(maker_slot) = self.books[book_index].crossing_head(&self.levels, taker.side, taker.limit) else {
                return Stop::Exhausted;
            };
            let maker = *self.orders.get(maker_slot);
            if maker.account == taker.account {
                let (_, level_total) = self.retire(maker_slot);
                Self::emit_canceled(out, &maker, CancelReason::SelfTrade, level_total);
                continue;
            }
            if fills == self.limits.max_fills_per_tx {
                return Stop::FillLimit;
            }
            let qty = taker.remaining.min(maker.remaining);
            self.fill(taker, market, maker_slot, qty, out);
            fills += 1;
        }
        Stop::Exhausted
    }

    /// Settles one fill of `qty` between the taker and the maker in `maker_slot`.
    fn fill(&mut self, taker: &mut Taker, market: &Market, maker_slot: u32, qty: u64, out: &mut EventBuf) {
        let maker = *self.orders.get(maker_slot);
        // Locks released by this fill: the lots it consumed, at each order's lock per lot (a
        // perp market order locked each expected fill at its maker's price).
        let lots = qty / market.step_units;
        let taker_release = match (market.kind, taker.limit) {
            (MarketKind::Perp, None) if taker.lock_per_lot == 0 => {
                lock_per_lot(market, taker.side, maker.price).map_or(0, |per_lot| per_lot * lots).min(taker.locked)
            }
            _ => lots * taker.lock_per_lot,
        };
        taker.locked -= taker_release;
        taker.remaining -= qty;
        let maker_release = lots * maker.lock_per_lot;
        let maker_new_remaining = maker.remaining - qty;
        self.orders.get_mut(maker_slot).locked = maker.locked - maker_release;
        // The money moves first (the fees are in the fill event); the events of automatic
        // borrows and repayments it causes follow the fill.
        let first_money_event = out.events().len();
        let (maker_fee, taker_fee) = match market.kind {
            MarketKind::Spot => self.spot_fill_money(taker, &maker, market, qty, (taker_release, maker_release), out),
            MarketKind::Perp => self.perp_fill_fees(taker, &maker, market, qty, (taker_release, maker_release), out),
        };
        // The maker's level after this fill (the book itself changes below, after the
        // settlement's events).
        let level_total = self.levels.get(maker.level).total_qty - qty;
        let trade_id = self.next_trade_id;
        self.next_trade_id += 1;
        out.push(Event::Fill {
            trade_id,
            ts: self.last_ts,
            market: taker.market,
            price: maker.price,
            qty,
            taker_side: taker.side,
            maker_order: maker.id,
            taker_order: taker.order_id,
            maker: u64::from(maker.account) + 1,
            taker: u64::from(taker.account) + 1,
            maker_fee,
            taker_fee,
            level_total,
        });
        out.move_last_to(first_money_event);
        if market.kind == MarketKind::Perp {
            let (buyer, seller) = match taker.side {
                Side::Buy => (taker.account, maker.account),
                Side::Sell => (maker.account, taker.account),
            };
            self.transfer_position(taker.market, Some(buyer), Some(seller), qty, maker.price, out);
        }
        if !self.perp_markets.is_empty() || !self.debtors.is_empty() {
            self.touch(taker.account);
            self.touch(maker.account);
        }
        if maker_new_remaining == 0 {
            self.retire(maker_slot);
            self.filled_makers.push((maker.id, u64::from(maker.account) + 1, maker.market, maker.side));
        } else {
            let left = crate::book::Book::reduce(&mut self.orders, &mut self.levels, maker_slot, qty);
            debug_assert_eq!(left, level_total, "the fill event carried the level's new total");
        }
    }

    /// The money of a spot fill: quote from buyer to seller (notional up for the buyer, down
    /// for the seller), base from seller to buyer, fees and remainder to the fee account.
    /// Returns (maker fee, taker fee).
    fn spot_fill_money(
        &mut self,
        taker: &Taker,
        maker: &Order,
        market: &Market,
        qty: u64,
        (taker_release, maker_release): (u64, u64),
        out: &mut EventBuf,
    ) -> (i64, i64) {
        let amounts = fill_amounts(market, taker.side, maker.price, qty)
            .unwrap_or_else(|| panic!("invariant: fill of {qty} at {} validated at placement", maker.price));
        let buyer_cost = apply_signed(amounts.notional_ceil, amounts.buyer_fee);
        let seller_gets = apply_signed(amounts.notional_floor, -amounts.seller_fee);
        let (buyer, buyer_release, seller, seller_release) = match taker.side {
            Side::Buy => (taker.account, taker_release, maker.account, maker_release),
            Side::Sell => (maker.account, maker_release, taker.account, taker_release),
        };
        // Buyer: quote leaves (from what the fill released, or from available for a market
        // buy), base arrives.
        let quote = self.accounts.holding_mut(buyer, market.quote);
        quote.locked -= buyer_release;
        quote.available = bounded(i128::from(quote.available) + i128::from(buyer_release) - i128::from(buyer_cost));
        self.adjust(buyer, market.base, i128::from(qty), out);
        // Seller: base leaves its lock, quote arrives.
        let base = self.accounts.holding_mut(seller, market.base);
        debug_assert_eq!(seller_release, qty, "a sell releases exactly its filled base");
        base.locked -= seller_release;
        self.adjust(seller, market.quote, i128::from(seller_gets), out);
        // Fee account: rounding remainder plus both fees (a rebate is paid from the taker fee).
        let fee_income = i128::from(amounts.notional_ceil - amounts.notional_floor)
            + i128::from(amounts.buyer_fee)
            + i128::from(amounts.seller_fee);
        self.add_fees(market.quote, fee_income);
        match taker.side {
            Side::Buy => (amounts.seller_fee, amounts.buyer_fee),
            Side::Sell => (amounts.buyer_fee, amounts.seller_fee),
        }
    }

    /// The fees of a perp fill: both locks released to available, then the fees charged in
    /// the settle asset (a debit beyond available becomes borrowed). The position transfer
    /// and its realised PnL follow the fill event. Returns (maker fee, taker fee).
    fn perp_fill_fees(
        &mut self,
        taker: &Taker,
        maker: &Order,
        market: &Market,
        qty: u64,
        (taker_release, maker_release): (u64, u64),
        out: &mut EventBuf,
    ) -> (i64, i64) {
        self.release(taker.account, market, taker.side, taker_release);
        self.release(maker.account, market, maker.side, maker_release);
        let product = i128::from(maker.price) * i128::from(qty);
        let fee = |rate: i64| -> i128 {
            let fee = if rate >= 0 {
                mul_ratio(product, market.notional_exp, rate, Round::Ceil)
            } else {
                mul_ratio(product, market.notional_exp, -rate, Round::Floor).map(|rebate| -rebate)
            };
            fee.unwrap_or_else(|| panic!("invariant: fee of {product} bounded"))
        };
        let (taker_fee, maker_fee) = (fee(market.taker_fee), fee(market.maker_fee));
        self.adjust(taker.account, market.quote, -taker_fee, out);
        self.adjust(maker.account, market.quote, -maker_fee, out);
        self.add_fees(market.quote, taker_fee + maker_fee);
        let to_i64 = |v: i128| i64::try_from(v).unwrap_or_else(|_| panic!("invariant: fee {v} bounded"));
        (to_i64(maker_fee), to_i64(taker_fee))
    }

    /// After matching: rest the remainder, or cancel it, then report filled makers.
    #[allow(clippy::too_many_arguments)]
    fn finish_taker(
        &mut self,
        taker: Taker,
        market: &Market,
        tif: TimeInForce,
        client_id: u64,
        reduce_only: bool,
        stop: Stop,
        out: &mut EventBuf,
    ) {
        let rests = matches!(tif, TimeInForce::Gtc | TimeInForce::PostOnly) && stop == Stop::Exhausted;
        if taker.remaining == 0 {
            self.release(taker.account, market, taker.side, taker.locked);
            self.emit_status(out, &taker, OrderStatus::Filled, 0, None);
        } else if let (true, Some(price)) = (rests, taker.limit) {
            let order = Order {
                id: taker.order_id,
                client_id,
                account: taker.account,
                market: taker.market,
                side: taker.side,
                tif,
                reduce_only,
                price,
                remaining: taker.remaining,
                locked: taker.locked,
                lock_per_lot: taker.lock_per_lot,
                level: NIL,
                prev: NIL,
                next: NIL,
                account_prev: NIL,
                account_next: NIL,
            };
            let slot = self.orders.insert(order);
            let total = self.books[usize::from(taker.market)].rest(&mut self.orders, &mut self.levels, slot);
            self.link_account_order(taker.account, slot);
            self.emit_status(out, &taker, OrderStatus::Rested, taker.remaining, Some(LevelTotal { price, total }));
            debug_assert!(self.books[usize::from(taker.market)].is_uncrossed(&self.levels), "book crossed");
        } else {
            self.release(taker.account, market, taker.side, taker.locked);
            let reason = match (stop, taker.limit, tif) {
                (Stop::FillLimit, _, _) => CancelReason::FillLimit,
                (_, None, _) => CancelReason::MarketNoLiquidity,
                (_, _, TimeInForce::Fok) => CancelReason::Fok,
                _ => CancelReason::Ioc,
            };
            self.emit_status(out, &taker, OrderStatus::Canceled(reason), 0, None);
        }
        self.emit_filled_makers(out);
    }

    /// Takes a resting order out of its book, its account's list and the pool, and releases
    /// its lock. Returns the order and its level's new total.
    pub(crate) fn retire(&mut self, slot: u32) -> (Order, u64) {
        let order = *self.orders.get(slot);
        let level_total = self.books[usize::from(order.market)].unlink(&mut self.orders, &mut self.levels, slot);
        self.unlink_account_order(slot);
        let market = *self.catalog.market(order.market);
        self.release(order.account, &market, order.side, order.locked);
        (self.orders.remove(slot), level_total)
    }

    /// The slot of the account's live order named by `order`, and its market's index.
    fn find_order(&self, account: u32, order: &ArchivedOrderRef) -> Result<(u32, u16), RejectReason> {
        let m = self.catalog.market_index(&order.market.to_native()).ok_or(RejectReason::UnknownMarket)?;
        let order_id = order.order_id.to_native();
        let client_id = order.client_id.to_native();
        let slot = match (order_id, client_id) {
            (0, 0) => None,
            (0, client_id) => self.orders.slot_of_client(account, client_id),
            (order_id, _) => self.orders.slot_of(order_id),
        }
        .ok_or(RejectReason::UnknownOrder)?;
        let found = self.orders.get(slot);
        if found.account != account || found.market != m {
            return Err(RejectReason::UnknownOrder);
        }
        Ok((slot, m))
    }

    /// A resting order left the book: its level now holds `level_total`.
    pub(crate) fn emit_canceled(out: &mut EventBuf, order: &Order, reason: CancelReason, level_total: u64) {
        out.push(Event::Order {
            order_id: order.id,
            account: u64::from(order.account) + 1,
            market: order.market,
            side: order.side,
            status: OrderStatus::Canceled(reason),
            remaining: 0,
            price: 0,
            level: Some(LevelTotal { price: order.price, total: level_total }),
        });
    }

    /// `cancel`: one order by id or client id.
    pub(crate) fn cancel(
        &mut self,
        account: u32,
        op: &ArchivedOrderRef,
        out: &mut EventBuf,
    ) -> Result<(), RejectReason> {
        let (slot, _) = self.find_order(account, op)?;
        let (order, level_total) = self.retire(slot);
        Self::emit_canceled(out, &order, CancelReason::User, level_total);
        Ok(())
    }

    /// `cancel_all`: every resting order of the account in one market, oldest first.
    pub(crate) fn cancel_all(
        &mut self,
        account: u32,
        market: &ArchivedSymbol,
        out: &mut EventBuf,
    ) -> Result<(), RejectReason> {
        let (m, _) = self.market_of(market)?;
        let mut slot = self.accounts.get(account).first_order;
        while slot != NIL {
            let order = *self.orders.get(slot);
            let next = order.account_next;
            if order.market == m {
                let (_, level_total) = self.retire(slot);
                Self::emit_canceled(out, &order, CancelReason::User, level_total);
            }
            slot = next;
        }
        Ok(())
    }

    /// `amend`: a smaller quantity keeps time priority; a new price re-enters the book as a
    /// taker (it may trade) and rests at the back of its new level.
    pub(crate) fn amend(&mut self, account: u32, op: &ArchivedAmend, out: &mut EventBuf) -> Result<(), RejectReason> {
        let (slot, m) = self.find_order(account, &op.order)?;
        // Borrowed, not copied: only the rare paths below that change balances copy it.
        let market = self.catalog.market(m);
        let order = *self.orders.get(slot);
        let new_price = match op.price.as_ref() {
            Some(price) => Self::price_units(market, price)?,
            None => order.price,
        };
        let new_qty = match op.qty.as_ref() {
            Some(qty) => self.qty_units(market, qty)?,
            None => order.remaining,
        };
        if new_qty > order.remaining || (new_qty == order.remaining && new_price == order.price) {
            return Err(RejectReason::InvalidAmend);
        }
        let new_per_lot = lock_per_lot(market, order.side, new_price).ok_or(RejectReason::Overflow)?;
        let new_need = new_per_lot.checked_mul(new_qty / market.step_units).ok_or(RejectReason::Overflow)?;
        if new_price == order.price {
            let market = *market;
            let total = crate::book::Book::reduce(&mut self.orders, &mut self.levels, slot, order.remaining - new_qty);
            self.orders.get_mut(slot).locked = new_need;
            self.release(account, &market, order.side, order.locked - new_need);
            out.push(Event::Order {
                order_id: order.id,
                account: u64::from(account) + 1,
                market: order.market,
                side: order.side,
                status: OrderStatus::Amended,
                remaining: new_qty,
                price: new_price,
                level: Some(LevelTotal { price: new_price, total }),
            });
            return Ok(());
        }
        self.reprice(
            slot,
            order,
            m,
            Repriced { price: new_price, qty: new_qty, per_lot: new_per_lot, need: new_need },
            out,
        )
    }

    /// The price-changing half of `amend`. A new price that does not cross moves the order
    /// in place (same slot, back of its new level, end of its account's list); one that crosses
    /// re-enters as a taker and may trade. Both emit `amended` first; the events are the same
    /// as a cancel-and-replace that keeps the order id.
    fn reprice(
        &mut self,
        slot: u32,
        order: Order,
        m: u16,
        new: Repriced,
        out: &mut EventBuf,
    ) -> Result<(), RejectReason> {
        let book = &self.books[usize::from(order.market)];
        let crosses_now = book
            .side(order.side.opposite())
            .best()
            .is_some_and(|best| crosses(order.side, Some(new.price), self.levels.get(best).price));
        if order.tif == TimeInForce::PostOnly && crosses_now {
            return Err(RejectReason::WouldTake);
        }
        let frees_a_level = self.levels.get(order.level).count == 1;
        if !book.has_level_room(&self.levels, order.side, new.price, frees_a_level) {
            return Err(RejectReason::LimitReached);
        }
        let market = self.catalog.market(m);
        match market.kind {
            MarketKind::Spot => {
                let balance = self.accounts.holding_mut(order.account, lock_asset(market, order.side));
                if new.need > balance.available + order.locked {
                    return Err(RejectReason::InsufficientBalance);
                }
                if !crosses_now {
                    // Nothing below refuses a move in place: release the old lock and take
                    // the new one now, with this one balance lookup (checked just above).
                    debug_assert!(balance.locked >= order.locked, "unlock within locked");
                    balance.available = balance.available + order.locked - new.need;
                    balance.locked = balance.locked - order.locked + new.need;
                }
            }
            MarketKind::Perp => {
                let change = i128::from(new.need) - i128::from(order.locked);
                let after = self.margin_reserving(order.account, market.quote, change);
                if after.equity < after.initial {
                    return Err(RejectReason::InsufficientMargin);
                }
            }
        }
        // `amended` names the level the order left; `rested` the one it joined.
        let amended = |status, remaining, level| Event::Order {
            order_id: order.id,
            account: u64::from(order.account) + 1,
            market: order.market,
            side: order.side,
            status,
            remaining,
            price: if status == OrderStatus::Amended { new.price } else { 0 },
            level,
        };
        if !crosses_now {
            // A spot order's lock moved with the balance check; a perp order's reservation moves here.
            let perp_settle = (market.kind == MarketKind::Perp).then_some(market.quote);
            let m = usize::from(m);
            let (left, vacated) = self.books[m].unlink_near(&mut self.orders, &mut self.levels, slot);
            if let Some(settle) = perp_settle {
                let holding = self.accounts.holding_mut(order.account, settle);
                debug_assert!(holding.reserved >= order.locked, "release within reserved");
                holding.reserved = holding.reserved - order.locked + new.need;
            }
            let moved = self.orders.get_mut(slot);
            moved.price = new.price;
            moved.remaining = new.qty;
            moved.locked = new.need;
            moved.lock_per_lot = new.per_lot;
            // The new price is near the old one: search for its level from where that was.
            let joined = self.books[m].rest_near(&mut self.orders, &mut self.levels, slot, Some(vacated));
            self.move_account_order_to_back(order.account, slot);
            out.push(amended(OrderStatus::Amended, new.qty, Some(LevelTotal { price: order.price, total: left })));
            out.push(amended(OrderStatus::Rested, new.qty, Some(LevelTotal { price: new.price, total: joined })));
            debug_assert!(self.books[m].is_uncrossed(&self.levels), "a non-crossing re-price keeps the book uncrossed");
            return Ok(());
        }
        // Re-entering as a taker changes balances across the engine: from here on, a copy.
        let market = &{ *market };
        let (_, left) = self.retire(slot);
        let mut taker = Taker {
            account: order.account,
            market: order.market,
            side: order.side,
            order_id: order.id,
            limit: Some(new.price),
            remaining: new.qty,
            locked: 0,
            lock_per_lot: new.per_lot,
        };
        out.push(amended(OrderStatus::Amended, new.qty, Some(LevelTotal { price: order.price, total: left })));
        self.hold(order.account, market, order.side, new.need);
        taker.locked = new.need;
        let stop = self.match_taker(&mut taker, market, out);
        self.finish_taker(taker, market, order.tif, order.client_id, order.reduce_only, stop, out);
        Ok(())
    }

    /// Holds what an order of `side` in `market` needs: a spot order locks it (moves it from
    /// `available` to `locked`); a perp order reserves it as an initial-margin requirement in
    /// its settle asset and locks nothing (cross-collateral, SPEC 6).
    #[inline]
    pub(crate) fn hold(&mut self, account: u32, market: &Market, side: Side, amount: u64) {
        match market.kind {
            MarketKind::Spot => self.lock(account, lock_asset(market, side), amount),
            MarketKind::Perp => self.accounts.holding_mut(account, market.quote).reserved += amount,
        }
    }

    /// Releases what [`Engine::hold`] held.
    #[inline]
    pub(crate) fn release(&mut self, account: u32, market: &Market, side: Side, amount: u64) {
        match market.kind {
            MarketKind::Spot => self.unlock(account, lock_asset(market, side), amount),
            MarketKind::Perp => {
                let holding = self.accounts.holding_mut(account, market.quote);
                debug_assert!(holding.reserved >= amount, "release within reserved");
                holding.reserved -= amount;
            }
        }
    }

    /// The resting orders of an account, oldest first.
    pub fn orders_of(&self, account: u64) -> impl Iterator<Item = OrderView> + '_ {
        let first = self.accounts.index(account).map_or(NIL, |index| self.accounts.get(index).first_order);
        let mut slot = first;
        core::iter::from_fn(move || {
            if slot == NIL {
                return None;
            }
            let order = self.orders.get(slot);
            slot = order.account_next;
            Some(OrderView {
                order_id: order.id,
                client_id: order.client_id,
                market: order.market,
                side: order.side,
                price: order.price,
                remaining: order.remaining,
                locked: order.locked,
            })
        })
    }

    /// The levels of one side of a market's book, best first: `(price, total qty, orders)`.
    pub fn depth(&self, market: u16, side: Side) -> impl Iterator<Item = (i64, u64, u32)> + '_ {
        self.books.get(usize::from(market)).into_iter().flat_map(move |book| book.depth(&self.levels, side))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id_table::mix64;
    use crate::tx::Symbol;

    fn market(kind: MarketKind, step_units: u64, notional_exp: i32, maker_fee: i64, taker_fee: i64) -> Market {
        Market {
            symbol: Symbol::default(),
            kind,
            base: 1,
            quote: 0,
            price_decimals: 2,
            tick_units: 1,
            step_units,
            maker_fee,
            taker_fee,
            imf: 10_000_000,
            mmf: 5_000_000,
            funding_interval_ns: 0,
            notional_exp,
            last_mark: 1,
            lot_notional: Market::whole_lot_notional(step_units, notional_exp),
        }
    }

    /// The division-free lock of a lot equals the exact one wherever it applies.
    #[test]
    fn whole_lot_locks_equal_the_exact_ones() {
        let mut x = 7u64;
        let mut compared = 0;
        for (step, exp) in [(10_000, -4), (100_000, -4), (1, 0), (5, 2), (1_000, -3), (30_000, -4), (7, -1)] {
            for (maker, taker) in [(100_000, 500_000), (-10_000, 50_000), (0, 0), (10_000_000, 3)] {
                for kind in [MarketKind::Spot, MarketKind::Perp] {
                    let m = market(kind, step, exp, maker, taker);
                    assert_eq!(m.lot_notional == 0, step == 7, "7 units is not a whole lot notional at 10^-1");
                    for _ in 0..2_000 {
                        x = mix64(x);
                        let price = i64::try_from(1 + x % (1 << (x >> 58))).unwrap_or(1);
                        for side in [Side::Buy, Side::Sell] {
                            let exact = lock_per_lot_exact(&m, side, price);
                            if let Some(whole) = lock_per_lot_whole(&m, side, price) {
                                assert_eq!(Some(whole), exact, "{kind:?} {side:?} step {step} exp {exp} price {price}");
                                compared += 1;
                            }
                            assert_eq!(lock_per_lot(&m, side, price), exact);
                        }
                    }
                }
            }
        }
        assert!(compared > 100_000, "{compared}");
    }
}
