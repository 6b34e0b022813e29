//! Order books: per market and side, a sorted array of price levels with the best price last,
//! each level a FIFO of orders linked through the order pool.
//!
//! A side stores `(key, level)` pairs sorted ascending by key, where the key is the price for
//! bids and the negated price for asks, so that on both sides the best price is the last
//! element: taking the best is O(1), inserting near the top of the book moves few elements.

use crate::accounts::NIL;
use crate::orders::OrderPool;
use crate::tx::Side;

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    pub price: i64,
    pub head: u32,
    pub tail: u32,
    pub total_qty: u64,
    pub count: u32,
}

/// Pre-allocated price levels with a free list.
#[derive(Clone)]
pub(crate) struct LevelPool {
    slots: Vec<Level>,
    free: Vec<u32>,
    capacity: usize,
}

impl LevelPool {
    pub(crate) fn new(capacity: u32) -> Self {
        let capacity = capacity as usize;
        Self { slots: Vec::with_capacity(capacity), free: Vec::with_capacity(capacity), capacity }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.slots.len() - self.free.len() >= self.capacity
    }

    fn alloc(&mut self, price: i64) -> u32 {
        let level = Level { price, head: NIL, tail: NIL, total_qty: 0, count: 0 };
        if let Some(slot) = self.free.pop() {
            self.slots[slot as usize] = level;
            slot
        } else {
            self.slots.push(level);
            u32::try_from(self.slots.len() - 1).unwrap_or(NIL)
        }
    }

    fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }

    pub(crate) fn get(&self, slot: u32) -> &Level {
        &self.slots[slot as usize]
    }

    fn get_mut(&mut self, slot: u32) -> &mut Level {
        &mut self.slots[slot as usize]
    }
}

/// One side of one book.
#[derive(Clone, Debug)]
pub(crate) struct BookSide {
    side: Side,
    levels: Vec<(i64, u32)>,
    max_levels: usize,
}

impl BookSide {
    fn new(side: Side, max_levels: usize) -> Self {
        Self { side, levels: Vec::with_capacity(max_levels), max_levels }
    }

    fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => -price,
        }
    }

    /// The best level, if any.
    pub(crate) fn best(&self) -> Option<u32> {
        self.levels.last().map(|(_, level)| *level)
    }

    /// Levels from best to worst.
    pub(crate) fn iter_best_first(&self) -> impl Iterator<Item = u32> + '_ {
        self.levels.iter().rev().map(|(_, level)| *level)
    }

    /// Number of price levels.
    pub(crate) fn depth(&self) -> usize {
        self.levels.len()
    }

    /// Can an order at `price` rest here without a new level beyond the side's limit?
    pub(crate) fn has_room_for(&self, price: i64) -> bool {
        self.levels.len() < self.max_levels || self.find(price).is_ok()
    }

    /// Is there a level at `price` already?
    pub(crate) fn has_level(&self, price: i64) -> bool {
        self.find(price).is_ok()
    }

    fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        self.levels.binary_search_by(|(k, _)| k.cmp(&key))
    }
}

/// The two sides of a market's book.
#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub bids: BookSide,
    pub asks: BookSide,
}

impl Book {
    pub(crate) fn new(max_levels_per_side: u32) -> Self {
        let max = max_levels_per_side as usize;
        Self { bids: BookSide::new(Side::Buy, max), asks: BookSide::new(Side::Sell, max) }
    }

    /// The side resting orders of `side` go to.
    pub(crate) fn side(&self, side: Side) -> &BookSide {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BookSide {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Appends the order in `slot` at the back of its price level (creating the level).
    /// The caller checked [`BookSide::has_room_for`] and that the level pool has room.
    pub(crate) fn rest(&mut self, orders: &mut OrderPool, levels: &mut LevelPool, slot: u32) {
        let (side, price, qty) = {
            let order = orders.get(slot);
            (order.side, order.price, order.remaining)
        };
        let book_side = self.side_mut(side);
        let level = match book_side.find(price) {
            Ok(at) => book_side.levels[at].1,
            Err(at) => {
                let level = levels.alloc(price);
                let key = book_side.key(price);
                book_side.levels.insert(at, (key, level));
                level
            }
        };
        let tail = levels.get(level).tail;
        {
            let order = orders.get_mut(slot);
            order.level = level;
            order.prev = tail;
            order.next = NIL;
        }
        if tail == NIL {
            levels.get_mut(level).head = slot;
        } else {
            orders.get_mut(tail).next = slot;
        }
        let level_ref = levels.get_mut(level);
        level_ref.tail = slot;
        level_ref.total_qty += qty;
        level_ref.count += 1;
    }

    /// Unlinks the order in `slot` from its level, dropping the level when it empties.
    pub(crate) fn unlink(&mut self, orders: &mut OrderPool, levels: &mut LevelPool, slot: u32) {
        let order = *orders.get(slot);
        debug_assert_ne!(order.level, NIL, "order must be resting");
        if order.prev == NIL {
            levels.get_mut(order.level).head = order.next;
        } else {
            orders.get_mut(order.prev).next = order.next;
        }
        if order.next == NIL {
            levels.get_mut(order.level).tail = order.prev;
        } else {
            orders.get_mut(order.next).prev = order.prev;
        }
        let level = levels.get_mut(order.level);
        level.total_qty -= order.remaining;
        level.count -= 1;
        if level.count == 0 {
            let price = level.price;
            let book_side = self.side_mut(order.side);
            if let Ok(at) = book_side.find(price) {
                book_side.levels.remove(at);
            }
            levels.release(order.level);
        }
        let order = orders.get_mut(slot);
        order.level = NIL;
        order.prev = NIL;
        order.next = NIL;
    }

    /// Reduces a resting order's remaining quantity in place (keeps its time priority).
    pub(crate) fn reduce(orders: &mut OrderPool, levels: &mut LevelPool, slot: u32, by: u64) {
        let order = orders.get_mut(slot);
        debug_assert!(by <= order.remaining);
        order.remaining -= by;
        let level = order.level;
        levels.get_mut(level).total_qty -= by;
    }

    /// Best bid and best ask prices.
    pub(crate) fn top(&self, levels: &LevelPool) -> (Option<i64>, Option<i64>) {
        let bid = self.bids.best().map(|l| levels.get(l).price);
        let ask = self.asks.best().map(|l| levels.get(l).price);
        (bid, ask)
    }

    /// True when the book is not crossed (best bid < best ask).
    pub(crate) fn is_uncrossed(&self, levels: &LevelPool) -> bool {
        match self.top(levels) {
            (Some(bid), Some(ask)) => bid < ask,
            _ => true,
        }
    }
}
