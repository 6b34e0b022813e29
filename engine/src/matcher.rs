//! The matcher: verex's order books on their own, without accounts, money or transactions.
//!
//! [`Matcher`] holds the same structures the [`Engine`](crate::Engine) matches on (the
//! pre-allocated order pool and its id index, the level pool, per book a sorted array of price
//! levels with FIFO queues) and applies the same price-time rules: trades at the maker's
//! price, self-trade prevention by canceling the resting order of the same account, a bounded
//! number of book entries touched per order, an amend that keeps time priority when it only
//! shrinks the order and re-enters the book (possibly trading) when it moves the price.
//!
//! What it leaves out is everything the engine does around the book: signatures and nonces,
//! decimals (prices are in ticks and quantities in lots, as plain integers), locks, balances,
//! fees, positions and events. It is the piece to embed where those live elsewhere (a
//! simulator, a market-data replay, a venue's own risk layer) and the piece the benchmarks
//! compare with other order books (`bench/src/peers`). Like the engine, it is deterministic,
//! allocates nothing after [`Matcher::new`] and reports bad input as a [`MatchError`].
//!
//! One difference from the engine: a self-trade cancel counts against the per-order limit
//! (`Limits::max_fills_per_tx` book entries per order), so that [`MatchOut`] has a fixed
//! capacity without a per-account order limit.

use crate::accounts::NIL;
use crate::book::{crosses, Book, LevelPool};
use crate::limits::{Limits, MAX_PRICE_UNITS, MAX_QTY_UNITS};
use crate::orders::{Order, OrderPool};
use crate::tx::{Side, TimeInForce};

/// Bad input to the matcher: the command changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The limits do not validate (see [`Limits::validate`]) or name no book.
    #[error("invalid limits: {0}")]
    InvalidLimits(&'static str),
    /// No book with this index.
    #[error("no book {0}")]
    UnknownBook(u16),
    /// A price of zero, negative, or above `MAX_PRICE_UNITS`.
    #[error("price {0} outside 1..=2^53")]
    InvalidPrice(i64),
    /// A quantity of zero or above `MAX_QTY_UNITS`.
    #[error("quantity {0} outside 1..=2^62")]
    InvalidQty(u64),
    /// An order with this id is resting already.
    #[error("order {0} is resting already")]
    DuplicateId(u64),
    /// No resting order has this id.
    #[error("no resting order {0}")]
    UnknownOrder(u64),
    /// An amend that grows the order, or changes nothing.
    #[error("amend of order {0} must lower its quantity or change its price")]
    InvalidAmend(u64),
    /// A post-only order would trade on arrival.
    #[error("post-only order {0} would trade")]
    WouldTake(u64),
    /// The order could rest, but the order pool, the level pool or the side is full.
    #[error("no room to rest order {0}")]
    LimitReached(u64),
}

/// A new limit order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The caller's id: unique among resting orders (a done order's id may be used again).
    pub id: u64,
    /// Who owns it: two orders of one account never trade (the resting one is canceled).
    pub account: u32,
    /// Book index, `0..books`.
    pub book: u16,
    /// Side.
    pub side: Side,
    /// Limit price, in ticks.
    pub price: i64,
    /// Quantity, in lots.
    pub qty: u64,
    /// `Gtc` and `PostOnly` rest what does not trade; `Ioc` and `Fok` never rest.
    pub tif: TimeInForce,
}

/// A trade: the taker met the resting order `maker_order` at its price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// The resting order's id.
    pub maker_order: u64,
    /// Its account.
    pub maker_account: u32,
    /// The maker's price, in ticks.
    pub price: i64,
    /// Traded quantity, in lots.
    pub qty: u64,
    /// True when the maker is done (filled) and left the book.
    pub maker_done: bool,
}

/// What one command did to the book besides its own order, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchEvent {
    /// A trade with a resting order.
    Trade(Trade),
    /// A resting order of the taker's own account was in the way and is canceled.
    SelfTradeCanceled {
        /// Its id.
        order_id: u64,
        /// What it had left.
        remaining: u64,
    },
}

/// The events of the last command: a fixed-capacity buffer, cleared by every command.
#[derive(Clone, Debug)]
pub struct MatchOut {
    events: Vec<MatchEvent>,
}

impl MatchOut {
    /// The events of the last command, in order.
    #[must_use]
    pub fn events(&self) -> &[MatchEvent] {
        &self.events
    }

    /// Forgets the last command's events (every command does this first).
    pub fn clear(&mut self) {
        self.events.clear();
    }

    /// The trades of the last command, in order.
    pub fn trades(&self) -> impl Iterator<Item = &Trade> + '_ {
        self.events.iter().filter_map(|event| match event {
            MatchEvent::Trade(trade) => Some(trade),
            MatchEvent::SelfTradeCanceled { .. } => None,
        })
    }

    fn push(&mut self, event: MatchEvent) {
        assert!(
            self.events.len() < self.events.capacity(),
            "invariant: a command touches at most max_fills_per_tx entries"
        );
        self.events.push(event);
    }
}

/// Why a taker stopped with quantity left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Nothing left on the other side crosses its price.
    Exhausted,
    /// It touched `max_fills_per_tx` resting orders; the rest of it does not rest.
    FillLimit,
}

/// What became of an order (a placed one, or an amended one that re-entered the book).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Traded quantity, in lots.
    pub filled: u64,
    /// Quantity now resting (same id), in lots.
    pub rested: u64,
    /// Quantity canceled (an `Ioc` or `Fok` remainder, or one cut by the fill limit).
    pub canceled: u64,
    /// Why matching stopped, when something was left.
    pub stop: Option<Stop>,
}

/// A resting order, as [`Matcher::order`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestingOrder {
    /// Its id.
    pub id: u64,
    /// Its account.
    pub account: u32,
    /// Its book.
    pub book: u16,
    /// Its side.
    pub side: Side,
    /// Its price, in ticks.
    pub price: i64,
    /// What is left, in lots.
    pub remaining: u64,
}

/// The order being matched.
struct Taker {
    id: u64,
    account: u32,
    book: u16,
    side: Side,
    price: i64,
    tif: TimeInForce,
    remaining: u64,
}

/// Order books without money: see the module docs.
#[derive(Clone)]
pub struct Matcher {
    books: Vec<Book>,
    orders: OrderPool,
    levels: LevelPool,
    max_touched: u32,
}

impl Matcher {
    /// `books` empty books sized by `limits`: `max_orders` resting orders and
    /// `max_price_levels` levels across all books, `max_levels_per_side` per side, at most
    /// `max_fills_per_tx` resting orders touched per command. The accounts, assets and
    /// markets limits are not used.
    ///
    /// # Errors
    /// [`MatchError::InvalidLimits`] for limits the engine would refuse, or zero books.
    pub fn new(books: u16, limits: &Limits) -> Result<Self, MatchError> {
        limits.validate().map_err(|_| MatchError::InvalidLimits("see Limits::validate"))?;
        if books == 0 {
            return Err(MatchError::InvalidLimits("a matcher needs at least one book"));
        }
        Ok(Self {
            books: (0..books).map(|_| Book::new(limits.max_levels_per_side)).collect(),
            orders: OrderPool::new(limits.max_orders),
            levels: LevelPool::new(limits.max_price_levels),
            max_touched: limits.max_fills_per_tx,
        })
    }

    /// An output buffer with room for any one command's events.
    #[must_use]
    pub fn out(&self) -> MatchOut {
        MatchOut { events: Vec::with_capacity(self.max_touched as usize) }
    }

    /// Resting orders across all books.
    #[must_use]
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// True when no order rests.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resting order `id`.
    #[must_use]
    pub fn order(&self, id: u64) -> Option<RestingOrder> {
        let order = self.orders.get(self.orders.slot_of(id)?);
        Some(RestingOrder {
            id: order.id,
            account: order.account,
            book: order.market,
            side: order.side,
            price: order.price,
            remaining: order.remaining,
        })
    }

    /// The levels of one side of a book, best first: `(price, total qty, orders)`.
    pub fn depth(&self, book: u16, side: Side) -> impl Iterator<Item = (i64, u64, u32)> + '_ {
        self.books.get(usize::from(book)).into_iter().flat_map(move |book| book.depth(&self.levels, side))
    }

    /// Places a limit order: it trades with what crosses it, then rests (`Gtc`, `PostOnly`)
    /// or is canceled (`Ioc`, `Fok`). Every check comes before the first change: an error
    /// changes nothing. `out` holds the trades and self-trade cancels.
    ///
    /// # Errors
    /// [`MatchError`] naming the first rule the order breaks.
    pub fn place(&mut self, order: &NewOrder, out: &mut MatchOut) -> Result<Placed, MatchError> {
        out.events.clear();
        let book = self.book_index(order.book)?;
        check_price(order.price)?;
        if order.qty == 0 || order.qty > MAX_QTY_UNITS {
            return Err(MatchError::InvalidQty(order.qty));
        }
        if self.orders.slot_of(order.id).is_some() {
            return Err(MatchError::DuplicateId(order.id));
        }
        let may_rest = matches!(order.tif, TimeInForce::Gtc | TimeInForce::PostOnly);
        if may_rest && !self.has_room(book, order.side, order.price, false, false) {
            return Err(MatchError::LimitReached(order.id));
        }
        let crosses_now = self.books[book].crossing_head(&self.levels, order.side, Some(order.price)).is_some();
        if order.tif == TimeInForce::PostOnly && crosses_now {
            return Err(MatchError::WouldTake(order.id));
        }
        if order.tif == TimeInForce::Fok && self.fillable(book, order) < order.qty {
            return Ok(Placed { filled: 0, rested: 0, canceled: order.qty, stop: Some(Stop::Exhausted) });
        }
        let mut taker = Taker {
            id: order.id,
            account: order.account,
            book: order.book,
            side: order.side,
            price: order.price,
            tif: order.tif,
            remaining: order.qty,
        };
        let stop = if crosses_now { self.take(&mut taker, out) } else { Stop::Exhausted };
        Ok(self.finish(&taker, order.qty, stop))
    }

    /// Cancels the resting order `id`; returns what it had left.
    ///
    /// # Errors
    /// [`MatchError::UnknownOrder`] when no order `id` rests.
    pub fn cancel(&mut self, id: u64) -> Result<u64, MatchError> {
        let slot = self.orders.slot_of(id).ok_or(MatchError::UnknownOrder(id))?;
        Ok(self.retire(slot).remaining)
    }

    /// Amends the resting order `id` to `price` and/or a smaller `qty` (`None`: unchanged).
    /// A smaller quantity at the same price keeps its time priority. A new price that does
    /// not cross moves the order to the back of its new level; one that crosses re-enters as
    /// a taker with the same id: it may trade, and what is left rests again. An error
    /// changes nothing.
    ///
    /// # Errors
    /// [`MatchError`] naming the first rule the amend breaks.
    pub fn amend(
        &mut self,
        id: u64,
        price: Option<i64>,
        qty: Option<u64>,
        out: &mut MatchOut,
    ) -> Result<Placed, MatchError> {
        out.events.clear();
        let slot = self.orders.slot_of(id).ok_or(MatchError::UnknownOrder(id))?;
        let order = *self.orders.get(slot);
        let new_price = price.unwrap_or(order.price);
        let new_qty = qty.unwrap_or(order.remaining);
        check_price(new_price)?;
        if new_qty == 0 || new_qty > order.remaining || (new_qty == order.remaining && new_price == order.price) {
            return Err(MatchError::InvalidAmend(id));
        }
        let book = usize::from(order.market);
        let unchanged = Placed { filled: 0, rested: new_qty, canceled: 0, stop: None };
        if new_price == order.price {
            Book::reduce(&mut self.orders, &mut self.levels, slot, order.remaining - new_qty);
            return Ok(unchanged);
        }
        let crosses_now = self.books[book].crossing_head(&self.levels, order.side, Some(new_price)).is_some();
        if order.tif == TimeInForce::PostOnly && crosses_now {
            return Err(MatchError::WouldTake(id));
        }
        let frees_a_level = self.levels.get(order.level).count == 1;
        if !self.has_room(book, order.side, new_price, true, frees_a_level) {
            return Err(MatchError::LimitReached(id));
        }
        if !crosses_now {
            self.books[book].unlink(&mut self.orders, &mut self.levels, slot);
            let moved = self.orders.get_mut(slot);
            moved.price = new_price;
            moved.remaining = new_qty;
            self.books[book].rest(&mut self.orders, &mut self.levels, slot);
            debug_assert!(
                self.books[book].is_uncrossed(&self.levels),
                "a non-crossing re-price keeps the book uncrossed"
            );
            return Ok(unchanged);
        }
        self.retire(slot);
        let mut taker = Taker {
            id,
            account: order.account,
            book: order.market,
            side: order.side,
            price: new_price,
            tif: order.tif,
            remaining: new_qty,
        };
        let stop = self.take(&mut taker, out);
        Ok(self.finish(&taker, new_qty, stop))
    }

    fn book_index(&self, book: u16) -> Result<usize, MatchError> {
        let index = usize::from(book);
        if index < self.books.len() {
            Ok(index)
        } else {
            Err(MatchError::UnknownBook(book))
        }
    }

    /// Room to rest an order at `price`? `moving`: it rests already (it holds its slot) and
    /// `frees_a_level` says whether leaving empties its level.
    fn has_room(&self, book: usize, side: Side, price: i64, moving: bool, frees_a_level: bool) -> bool {
        let orders_short = self.orders.is_full() && !moving;
        !orders_short && self.books[book].has_level_room(&self.levels, side, price, frees_a_level)
    }

    /// How much of `order` would trade now, within the per-order limit (a dry run).
    fn fillable(&self, book: usize, order: &NewOrder) -> u64 {
        let mut left = order.qty;
        let mut touched = 0u32;
        'levels: for level in self.books[book].side(order.side.opposite()).iter_best_first() {
            let level = self.levels.get(level);
            if !crosses(order.side, Some(order.price), level.price) {
                break;
            }
            let mut slot = level.head;
            while slot != NIL && left > 0 {
                if touched == self.max_touched {
                    break 'levels;
                }
                let maker = self.orders.get(slot);
                slot = maker.next;
                touched += 1;
                if maker.account != order.account {
                    left -= left.min(maker.remaining);
                }
            }
            if left == 0 {
                break;
            }
        }
        order.qty - left
    }

    /// Matches the taker until it is filled, stops crossing, or touches the limit.
    fn take(&mut self, taker: &mut Taker, out: &mut MatchOut) -> Stop {
        let book = usize::from(taker.book);
        let mut touched = 0u32;
        while taker.remaining > 0 {
            let Some(maker_slot) = self.books[book].crossing_head(&self.levels, taker.side, Some(taker.price)) else {
                return Stop::Exhausted;
            };
            if touched == self.max_touched {
                return Stop::FillLimit;
            }
            touched += 1;
            let maker = self.orders.get(maker_slot);
            let (maker_order, maker_account, price, maker_left) =
                (maker.id, maker.account, maker.price, maker.remaining);
            if maker_account == taker.account {
                self.retire(maker_slot);
                out.push(MatchEvent::SelfTradeCanceled { order_id: maker_order, remaining: maker_left });
                continue;
            }
            let qty = taker.remaining.min(maker_left);
            taker.remaining -= qty;
            let maker_done = qty == maker_left;
            if maker_done {
                self.retire(maker_slot);
            } else {
                Book::reduce(&mut self.orders, &mut self.levels, maker_slot, qty);
            }
            out.push(MatchEvent::Trade(Trade { maker_order, maker_account, price, qty, maker_done }));
        }
        Stop::Exhausted
    }

    /// Rests or cancels what the taker has left.
    fn finish(&mut self, taker: &Taker, qty: u64, stop: Stop) -> Placed {
        let filled = qty - taker.remaining;
        if taker.remaining == 0 {
            return Placed { filled, rested: 0, canceled: 0, stop: None };
        }
        let rests = matches!(taker.tif, TimeInForce::Gtc | TimeInForce::PostOnly) && stop == Stop::Exhausted;
        if !rests {
            return Placed { filled, rested: 0, canceled: taker.remaining, stop: Some(stop) };
        }
        let slot = self.orders.insert(Order {
            id: taker.id,
            account: taker.account,
            market: taker.book,
            side: taker.side,
            tif: taker.tif,
            price: taker.price,
            remaining: taker.remaining,
            ..Order::EMPTY
        });
        let book = usize::from(taker.book);
        self.books[book].rest(&mut self.orders, &mut self.levels, slot);
        debug_assert!(self.books[book].is_uncrossed(&self.levels), "a rested remainder leaves the book uncrossed");
        Placed { filled, rested: taker.remaining, canceled: 0, stop: Some(stop) }
    }

    /// Takes a resting order out of its book and the pool.
    fn retire(&mut self, slot: u32) -> Order {
        let market = usize::from(self.orders.get(slot).market);
        self.books[market].unlink(&mut self.orders, &mut self.levels, slot);
        self.orders.remove(slot)
    }
}

fn check_price(price: i64) -> Result<(), MatchError> {
    if price <= 0 || price > MAX_PRICE_UNITS {
        return Err(MatchError::InvalidPrice(price));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> Matcher {
        Matcher::new(2, &Limits { max_fills_per_tx: 4, ..Limits::small() }).expect("small limits validate")
    }

    fn order(id: u64, account: u32, side: Side, price: i64, qty: u64, tif: TimeInForce) -> NewOrder {
        NewOrder { id, account, book: 0, side, price, qty, tif }
    }

    fn gtc(id: u64, account: u32, side: Side, price: i64, qty: u64) -> NewOrder {
        order(id, account, side, price, qty, TimeInForce::Gtc)
    }

    fn trades(out: &MatchOut) -> Vec<(u64, i64, u64, bool)> {
        out.trades().map(|t| (t.maker_order, t.price, t.qty, t.maker_done)).collect()
    }

    fn place(m: &mut Matcher, o: &NewOrder, out: &mut MatchOut) -> Placed {
        m.place(o, out).unwrap_or_else(|e| panic!("{o:?}: {e}"))
    }

    #[test]
    fn price_then_time_priority_at_the_makers_price() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Sell, 101, 5), &mut out);
        place(&mut m, &gtc(2, 2, Side::Sell, 100, 3), &mut out);
        place(&mut m, &gtc(3, 3, Side::Sell, 100, 4), &mut out);
        let placed = place(&mut m, &gtc(4, 4, Side::Buy, 101, 10), &mut out);
        assert_eq!(trades(&out), vec![(2, 100, 3, true), (3, 100, 4, true), (1, 101, 3, false)]);
        assert_eq!(placed, Placed { filled: 10, rested: 0, canceled: 0, stop: None });
        assert_eq!(m.order(1).map(|o| o.remaining), Some(2));
        assert_eq!(m.depth(0, Side::Sell).collect::<Vec<_>>(), vec![(101, 2, 1)]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn gtc_rests_its_remainder_and_ioc_cancels_it() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Buy, 99, 2), &mut out);
        let ioc = place(&mut m, &order(2, 2, Side::Sell, 99, 5, TimeInForce::Ioc), &mut out);
        assert_eq!(ioc, Placed { filled: 2, rested: 0, canceled: 3, stop: Some(Stop::Exhausted) });
        assert!(m.is_empty());
        let rested = place(&mut m, &gtc(3, 2, Side::Sell, 99, 5), &mut out);
        assert_eq!(rested, Placed { filled: 0, rested: 5, canceled: 0, stop: Some(Stop::Exhausted) });
        assert_eq!(m.depth(0, Side::Sell).collect::<Vec<_>>(), vec![(99, 5, 1)]);
        assert_eq!(m.depth(1, Side::Sell).count(), 0, "books are separate");
    }

    #[test]
    fn self_trade_cancels_the_resting_order() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 7, Side::Sell, 100, 5), &mut out);
        place(&mut m, &gtc(2, 8, Side::Sell, 100, 5), &mut out);
        place(&mut m, &gtc(3, 7, Side::Buy, 100, 5), &mut out);
        assert_eq!(out.events()[0], MatchEvent::SelfTradeCanceled { order_id: 1, remaining: 5 });
        assert_eq!(trades(&out), vec![(2, 100, 5, true)]);
        assert!(m.is_empty());
    }

    #[test]
    fn fok_fills_whole_or_changes_nothing() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Sell, 100, 5), &mut out);
        let killed = place(&mut m, &order(2, 2, Side::Buy, 100, 6, TimeInForce::Fok), &mut out);
        assert_eq!(killed.canceled, 6);
        assert!(out.events().is_empty());
        assert_eq!(m.order(1).map(|o| o.remaining), Some(5));
        let filled = place(&mut m, &order(3, 2, Side::Buy, 100, 5, TimeInForce::Fok), &mut out);
        assert_eq!(filled.filled, 5);
    }

    #[test]
    fn post_only_never_takes() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Sell, 100, 5), &mut out);
        let post = order(2, 2, Side::Buy, 100, 1, TimeInForce::PostOnly);
        assert_eq!(m.place(&post, &mut out), Err(MatchError::WouldTake(2)));
        place(&mut m, &order(3, 2, Side::Buy, 99, 1, TimeInForce::PostOnly), &mut out);
        assert_eq!(m.amend(3, Some(100), None, &mut out), Err(MatchError::WouldTake(3)));
        assert_eq!(m.order(3).map(|o| o.price), Some(99));
    }

    #[test]
    fn the_fill_limit_cancels_the_rest() {
        let mut m = matcher();
        let mut out = m.out();
        for id in 1..=6 {
            place(&mut m, &gtc(id, 1, Side::Sell, 100, 1), &mut out);
        }
        let placed = place(&mut m, &gtc(9, 2, Side::Buy, 100, 6), &mut out);
        assert_eq!(placed, Placed { filled: 4, rested: 0, canceled: 2, stop: Some(Stop::FillLimit) });
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn amend_keeps_priority_only_when_it_shrinks_in_place() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Buy, 100, 5), &mut out);
        place(&mut m, &gtc(2, 2, Side::Buy, 100, 5), &mut out);
        m.amend(1, None, Some(3), &mut out).expect("shrink");
        place(&mut m, &order(3, 3, Side::Sell, 100, 1, TimeInForce::Ioc), &mut out);
        assert_eq!(trades(&out), vec![(1, 100, 1, false)], "order 1 kept its place");
        m.amend(1, Some(101), None, &mut out).expect("move up");
        m.amend(1, Some(100), None, &mut out).expect("move back");
        place(&mut m, &order(4, 3, Side::Sell, 100, 1, TimeInForce::Ioc), &mut out);
        assert_eq!(trades(&out), vec![(2, 100, 1, false)], "a moved order goes to the back");
        assert_eq!(m.amend(2, None, Some(4), &mut out), Err(MatchError::InvalidAmend(2)), "same terms");
        assert_eq!(m.amend(2, None, Some(9), &mut out), Err(MatchError::InvalidAmend(2)), "grows");
        assert_eq!(m.amend(8, Some(1), None, &mut out), Err(MatchError::UnknownOrder(8)));
    }

    #[test]
    fn a_crossing_amend_trades_and_rests_the_rest_under_its_id() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Sell, 102, 2), &mut out);
        place(&mut m, &gtc(2, 2, Side::Buy, 100, 5), &mut out);
        let placed = m.amend(2, Some(102), None, &mut out).expect("crossing amend");
        assert_eq!(placed, Placed { filled: 2, rested: 3, canceled: 0, stop: Some(Stop::Exhausted) });
        assert_eq!(trades(&out), vec![(1, 102, 2, true)]);
        assert_eq!(m.order(2).map(|o| (o.price, o.remaining)), Some((102, 3)));
    }

    #[test]
    fn bad_input_is_an_error_and_changes_nothing() {
        let mut m = matcher();
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Sell, 100, 5), &mut out);
        assert_eq!(m.place(&gtc(1, 2, Side::Sell, 101, 1), &mut out), Err(MatchError::DuplicateId(1)));
        assert_eq!(m.place(&gtc(2, 2, Side::Buy, 0, 1), &mut out), Err(MatchError::InvalidPrice(0)));
        assert_eq!(m.place(&gtc(2, 2, Side::Buy, 100, 0), &mut out), Err(MatchError::InvalidQty(0)));
        assert_eq!(
            m.place(&NewOrder { book: 2, ..gtc(2, 2, Side::Buy, 100, 1) }, &mut out),
            Err(MatchError::UnknownBook(2))
        );
        assert_eq!(m.cancel(9), Err(MatchError::UnknownOrder(9)));
        assert_eq!(m.cancel(1), Ok(5));
        assert!(m.is_empty());
        assert!(Matcher::new(0, &Limits::small()).is_err());
    }

    #[test]
    fn a_full_pool_refuses_to_rest_but_still_trades_ioc() {
        let limits = Limits { max_orders: 2, max_price_levels: 2, ..Limits::small() };
        let mut m = Matcher::new(1, &limits).expect("limits");
        let mut out = m.out();
        place(&mut m, &gtc(1, 1, Side::Sell, 100, 1), &mut out);
        place(&mut m, &gtc(2, 1, Side::Sell, 101, 1), &mut out);
        assert_eq!(m.place(&gtc(3, 2, Side::Sell, 102, 1), &mut out), Err(MatchError::LimitReached(3)));
        assert_eq!(m.amend(2, Some(102), None, &mut out), Ok(Placed { filled: 0, rested: 1, canceled: 0, stop: None }));
        place(&mut m, &order(4, 2, Side::Buy, 102, 2, TimeInForce::Ioc), &mut out);
        assert_eq!(trades(&out), vec![(1, 100, 1, true), (2, 102, 1, true)]);
    }
}
