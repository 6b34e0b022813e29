//! Order books: per market and side, a sorted array of price levels with the best price last,
//! each level a FIFO of orders linked through the order pool.
//!
//! A side stores `(key, level)` pairs sorted ascending by key, where the key is the price for
//! bids and the negated price for asks, so that on both sides the best price is the last
//! element: taking the best is O(1), inserting near the top of the book moves few elements,
//! and a removed level leaves a vacancy instead of shifting the array (see [`BookSide`]).

use crate::accounts::NIL;
use crate::orders::OrderPool;
use crate::tx::Side;

/// Does a taker of `side` with this limit (`None`: a market order) trade against a resting
/// order at `resting`?
pub(crate) fn crosses(side: Side, limit: Option<i64>, resting: i64) -> bool {
    match (side, limit) {
        (_, None) => true,
        (Side::Buy, Some(limit)) => resting <= limit,
        (Side::Sell, Some(limit)) => resting >= limit,
    }
}

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    pub price: i64,
    pub head: u32,
    pub tail: u32,
    pub total_qty: u64,
    pub count: u32,
    /// Where this level's entry was when its side last found or placed it: where a search
    /// for it, or for a price near it, starts (see [`BookSide::find_near`]). A hint, not a
    /// position: insertions and compaction move entries without updating it, which only
    /// makes such a search longer, never wrong.
    pub entry: u32,
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
        let level = Level { price, head: NIL, tail: NIL, total_qty: 0, count: 0, entry: u32::MAX };
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

/// How far [`BookSide`] looks on either side of an insertion point for a vacant entry to
/// shift into before it shifts the tail of the array instead.
const VACANCY_SCAN: usize = 32;
/// Below this many entries a side never compacts.
const COMPACT_MIN_ENTRIES: usize = 64;

/// One side of one book: `(key, level)` entries sorted ascending by key, best last.
///
/// Removing a level leaves a vacant entry (level `NIL`) that keeps its key, so removal moves
/// nothing; a level that returns to the same price takes its entry back, and an insertion
/// shifts entries only as far as the nearest vacancy (or the end of the array). Vacancies
/// at the end are dropped at once, so the last entry is always live, and the array is
/// compacted when vacancies outnumber live levels. None of this shows outside the type: every
/// query sees the live levels only.
#[derive(Clone, Debug)]
pub(crate) struct BookSide {
    side: Side,
    entries: Vec<(i64, u32)>,
    /// Live levels (entries whose level is not `NIL`).
    live: usize,
    max_levels: usize,
}

impl BookSide {
    fn new(side: Side, max_levels: usize) -> Self {
        Self { side, entries: Vec::with_capacity(max_levels), live: 0, max_levels }
    }

    fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => -price,
        }
    }

    /// The best level, if any.
    pub(crate) fn best(&self) -> Option<u32> {
        self.entries.last().map(|(_, level)| *level)
    }

    /// Levels from best to worst.
    pub(crate) fn iter_best_first(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().rev().map(|(_, level)| *level).filter(|level| *level != NIL)
    }

    /// Number of price levels.
    pub(crate) fn depth(&self) -> usize {
        self.live
    }

    /// Does the side hold its most levels?
    pub(crate) fn is_full(&self) -> bool {
        self.live >= self.max_levels
    }

    /// Can an order at `price` rest here without a new level beyond the side's limit?
    pub(crate) fn has_room_for(&self, price: i64) -> bool {
        self.live < self.max_levels || self.has_level(price)
    }

    /// Is there a level at `price` already?
    pub(crate) fn has_level(&self, price: i64) -> bool {
        self.level_at(price).is_some()
    }

    /// The level at `price`, if there is one.
    pub(crate) fn level_at(&self, price: i64) -> Option<u32> {
        let at = self.find(price).ok()?;
        let level = self.entries[at].1;
        (level != NIL).then_some(level)
    }

    /// Where `price`'s key is (`Ok`) or would sort (`Err`): a galloping search down from the
    /// best end (the prices orders move to and trade at are mostly near the top of the book,
    /// so the search costs the logarithm of the distance from the top), then a binary search
    /// in the bracket it found.
    fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        // Every entry at `hi..` sorts after `key`.
        let mut hi = self.entries.len();
        let mut step = 1;
        let lo = loop {
            if hi < step {
                break 0;
            }
            let probe = hi - step;
            if self.entries[probe].0 <= key {
                break probe;
            }
            hi = probe;
            step *= 2;
        };
        match self.entries[lo..hi].binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => Ok(lo + at),
            Err(at) => Err(lo + at),
        }
    }

    /// [`BookSide::find`] searching outward from entry `hint` instead of from the best end:
    /// the same answer (keys are unique and sorted, so there is one), at the cost of the
    /// logarithm of the distance from the hint. Any hint is correct; one past the end falls
    /// back to [`BookSide::find`].
    fn find_near(&self, price: i64, hint: usize) -> Result<usize, usize> {
        let len = self.entries.len();
        if hint >= len {
            return self.find(price);
        }
        let key = self.key(price);
        let mut step = 1;
        let at_hint = self.entries[hint].0;
        // A probe that lands on `key` is the answer (keys are unique): the hint itself (a
        // level's own entry, not moved since) or an entry a few steps away.
        if at_hint == key {
            return Ok(hint);
        }
        let (lo, hi) = if at_hint < key {
            // The answer is above `hint`: gallop up until an entry sorts at or after `key`.
            let mut lo = hint + 1;
            let hi = loop {
                let probe = hint + step;
                if probe >= len {
                    break len;
                }
                let probed = self.entries[probe].0;
                if probed >= key {
                    if probed == key {
                        return Ok(probe);
                    }
                    break probe;
                }
                lo = probe + 1;
                step *= 2;
            };
            (lo, hi)
        } else {
            // The answer is below `hint`: gallop down until an entry sorts at or before `key`.
            let mut hi = hint;
            let lo = loop {
                if hint < step {
                    break 0;
                }
                let probe = hint - step;
                let probed = self.entries[probe].0;
                if probed <= key {
                    if probed == key {
                        return Ok(probe);
                    }
                    break probe + 1;
                }
                hi = probe;
                step *= 2;
            };
            (lo, hi)
        };
        // The bracket a short gallop leaves is a few entries: a scan is cheaper than a
        // binary search there.
        let bracket = &self.entries[lo..hi];
        if bracket.len() <= 8 {
            let at = bracket.iter().position(|(k, _)| *k >= key).unwrap_or(bracket.len());
            return match bracket.get(at) {
                Some((k, _)) if *k == key => Ok(lo + at),
                _ => Err(lo + at),
            };
        }
        match bracket.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => Ok(lo + at),
            Err(at) => Err(lo + at),
        }
    }

    /// The level at `price`, taking one from `levels` if there is none (the caller checked
    /// room on the side and in the pool). The search starts at entry `hint` when there is
    /// one (see [`BookSide::find_near`]), else at the best end.
    fn level_for(&mut self, price: i64, levels: &mut LevelPool, hint: Option<usize>) -> u32 {
        let found = match hint {
            Some(hint) => self.find_near(price, hint),
            None => self.find(price),
        };
        let (level, entry) = match found {
            Ok(at) if self.entries[at].1 != NIL => (self.entries[at].1, at),
            Ok(at) => {
                let level = levels.alloc(price);
                self.entries[at].1 = level;
                self.live += 1;
                (level, at)
            }
            Err(at) => {
                let level = levels.alloc(price);
                (level, self.insert_at(at, price, level))
            }
        };
        levels.get_mut(level).entry = u32::try_from(entry).unwrap_or(u32::MAX);
        level
    }

    /// Adds `level` at `price`, whose key sorts at `at` and has no entry; the caller checked
    /// room. Returns the entry it took.
    fn insert_at(&mut self, at: usize, price: i64, level: u32) -> usize {
        debug_assert!(self.live < self.max_levels, "caller checks room");
        let key = self.key(price);
        self.live += 1;
        let len = self.entries.len();
        if at == len && len < self.max_levels {
            self.entries.push((key, level));
            return at;
        }
        let vacancies = len - (self.live - 1);
        let scan = if len < self.max_levels { VACANCY_SCAN.min(len - at) } else { len };
        if vacancies > 0 {
            for distance in 0..scan {
                if at + distance < len && self.entries[at + distance].1 == NIL {
                    self.entries.copy_within(at..at + distance, at + 1);
                    self.entries[at] = (key, level);
                    return at;
                }
                if distance < at && self.entries[at - 1 - distance].1 == NIL {
                    let vacant = at - 1 - distance;
                    self.entries.copy_within(vacant + 1..at, vacant);
                    self.entries[at - 1] = (key, level);
                    return at - 1;
                }
            }
        }
        assert!(len < self.max_levels, "invariant: a full side with a free level has a vacancy");
        self.entries.insert(at, (key, level));
        at
    }

    /// Removes the level at `price`, searching for it from entry `hint` (its
    /// [`Level::entry`]). Returns the entry it had: where a search for a nearby price can
    /// start (a hint only; compaction may have moved the entries since).
    fn remove(&mut self, price: i64, hint: usize) -> usize {
        let Ok(at) = self.find_near(price, hint) else {
            debug_assert!(false, "removed level {price} is on the side");
            return self.entries.len();
        };
        debug_assert_ne!(self.entries[at].1, NIL, "removed level is live");
        self.entries[at].1 = NIL;
        self.live -= 1;
        while self.entries.last().is_some_and(|(_, level)| *level == NIL) {
            self.entries.pop();
        }
        let vacancies = self.entries.len() - self.live;
        if vacancies > self.live && self.entries.len() >= COMPACT_MIN_ENTRIES {
            self.entries.retain(|(_, level)| *level != NIL);
        }
        at
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
    /// Returns the level's new total quantity.
    pub(crate) fn rest(&mut self, orders: &mut OrderPool, levels: &mut LevelPool, slot: u32) -> u64 {
        self.rest_near(orders, levels, slot, None)
    }

    /// [`Book::rest`], searching for the order's level from the side's entry `hint` (what
    /// [`Book::unlink_near`] returned for the level the order just left), else from the best
    /// end. A re-priced order moves a short way, so the search from where it was is short.
    pub(crate) fn rest_near(
        &mut self,
        orders: &mut OrderPool,
        levels: &mut LevelPool,
        slot: u32,
        hint: Option<usize>,
    ) -> u64 {
        // One lookup of the order and one of its level.
        let order = orders.get_mut(slot);
        let qty = order.remaining;
        let level = self.side_mut(order.side).level_for(order.price, levels, hint);
        let level_ref = levels.get_mut(level);
        let tail = level_ref.tail;
        order.level = level;
        order.prev = tail;
        order.next = NIL;
        if tail == NIL {
            level_ref.head = slot;
        } else {
            orders.get_mut(tail).next = slot;
        }
        level_ref.tail = slot;
        level_ref.total_qty += qty;
        level_ref.count += 1;
        level_ref.total_qty
    }

    /// Unlinks the order in `slot` from its level, dropping the level when it empties.
    /// Returns the level's new total quantity (0 when it is gone).
    pub(crate) fn unlink(&mut self, orders: &mut OrderPool, levels: &mut LevelPool, slot: u32) -> u64 {
        self.unlink_near(orders, levels, slot).0
    }

    /// [`Book::unlink`], also returning where the order's level is or was in its side: a
    /// hint for [`Book::rest_near`]. Always inlined: a re-price's unlink is on the amend path,
    /// and the call's register saves and its copy of the order cost more than the body.
    #[inline(always)]
    pub(crate) fn unlink_near(&mut self, orders: &mut OrderPool, levels: &mut LevelPool, slot: u32) -> (u64, usize) {
        // One lookup of the order: read its links and clear them (its neighbours are other
        // slots), then one lookup of its level.
        let (level_slot, prev, next, remaining, side) = {
            let order = orders.get_mut(slot);
            let fields = (order.level, order.prev, order.next, order.remaining, order.side);
            order.level = NIL;
            order.prev = NIL;
            order.next = NIL;
            fields
        };
        debug_assert_ne!(level_slot, NIL, "order must be resting");
        if prev != NIL {
            orders.get_mut(prev).next = next;
        }
        if next != NIL {
            orders.get_mut(next).prev = prev;
        }
        let level = levels.get_mut(level_slot);
        if prev == NIL {
            level.head = next;
        }
        if next == NIL {
            level.tail = prev;
        }
        level.total_qty -= remaining;
        level.count -= 1;
        let total = level.total_qty;
        debug_assert!(level.count > 0 || total == 0, "an empty level holds no quantity");
        let mut hint = level.entry as usize;
        if level.count == 0 {
            let price = level.price;
            hint = self.side_mut(side).remove(price, hint);
            levels.release(level_slot);
        }
        (total, hint)
    }

    /// Reduces a resting order's remaining quantity in place (keeps its time priority).
    /// Returns the level's new total quantity.
    pub(crate) fn reduce(orders: &mut OrderPool, levels: &mut LevelPool, slot: u32, by: u64) -> u64 {
        let order = orders.get_mut(slot);
        debug_assert!(by <= order.remaining);
        order.remaining -= by;
        let level = levels.get_mut(order.level);
        level.total_qty -= by;
        level.total_qty
    }

    /// Room, as far as levels go, for an order to rest at `price` on `side`: a new level is
    /// needed only where none is at that price, and only a full level pool or a full side can
    /// refuse it, unless the order moving there empties the level it leaves
    /// (`frees_a_level`). Cheap tests first: the level lookup runs only when a pool is full.
    pub(crate) fn has_level_room(&self, levels: &LevelPool, side: Side, price: i64, frees_a_level: bool) -> bool {
        let book_side = self.side(side);
        let short_of_levels = (levels.is_full() || book_side.is_full()) && !frees_a_level;
        !short_of_levels || book_side.has_level(price)
    }

    /// The order a taker of `taker_side` with this limit trades against next: the head of the
    /// best opposite level, if that level crosses the limit.
    pub(crate) fn crossing_head(&self, levels: &LevelPool, taker_side: Side, limit: Option<i64>) -> Option<u32> {
        let level = levels.get(self.side(taker_side.opposite()).best()?);
        crosses(taker_side, limit, level.price).then_some(level.head)
    }

    /// The levels of `side`, best first, as `(price, total qty, orders)`.
    pub(crate) fn depth<'a>(&'a self, levels: &'a LevelPool, side: Side) -> impl Iterator<Item = (i64, u64, u32)> + 'a {
        self.side(side).iter_best_first().map(|level| {
            let level = levels.get(level);
            (level.price, level.total_qty, level.count)
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id_table::mix64;

    /// A side under random churn (levels added and removed at random prices, the side kept
    /// near full so that insertions must find vacancies) always lists exactly the model's
    /// levels, best first, with the best entry last.
    #[test]
    fn a_side_with_vacancies_lists_exactly_its_live_levels() {
        for side in [Side::Buy, Side::Sell] {
            let max = 200;
            let mut book_side = BookSide::new(side, max);
            let mut model = std::collections::BTreeMap::new();
            let mut pool = LevelPool::new(u32::try_from(max).unwrap_or(u32::MAX));
            let mut x = 99u64;
            for step in 0..50_000u32 {
                x = mix64(x);
                let price = i64::try_from(1 + x % 400).unwrap_or(1);
                match (book_side.level_at(price), model.contains_key(&price)) {
                    (Some(level), true) => {
                        assert_eq!(model.get(&price), Some(&level));
                        if x & (1 << 20) != 0 {
                            let hint = usize::try_from(x >> 50).unwrap_or(0);
                            book_side.remove(price, if x & 2 == 0 { pool.get(level).entry as usize } else { hint });
                            pool.release(level);
                            model.remove(&price);
                        }
                    }
                    (None, false) if !book_side.is_full() => {
                        let hint = usize::try_from(x >> 40).ok().map(|h| h % (max + 8)).filter(|_| x & 1 == 0);
                        let level = book_side.level_for(price, &mut pool, hint);
                        model.insert(price, level);
                    }
                    (None, false) => assert_eq!(model.len(), max),
                    (found, in_model) => panic!("step {step}: side has {found:?}, model has it: {in_model}"),
                }
                assert_eq!(book_side.depth(), model.len());
                assert!(book_side.entries.len() <= max);
                assert!(book_side.entries.windows(2).all(|w| w[0].0 < w[1].0), "keys stay sorted");
                if step % 97 == 0 {
                    let listed: Vec<u32> = book_side.iter_best_first().collect();
                    let expected: Vec<u32> = match side {
                        Side::Buy => model.values().rev().copied().collect(),
                        Side::Sell => model.values().copied().collect(),
                    };
                    assert_eq!(listed, expected);
                    assert_eq!(book_side.best(), expected.first().copied());
                }
            }
        }
    }

    /// A search from any hint finds what the search from the best end finds, for every
    /// price on the side and off it, with and without vacancies.
    #[test]
    fn a_search_near_a_hint_finds_what_a_search_from_the_top_finds() {
        for side in [Side::Buy, Side::Sell] {
            let max = 120;
            let mut book_side = BookSide::new(side, max);
            let mut pool = LevelPool::new(u32::try_from(max).unwrap_or(u32::MAX));
            let mut x = 7u64;
            for round in 0..400u32 {
                x = mix64(x);
                let price = i64::try_from(1 + x % 300).unwrap_or(1);
                match book_side.level_at(price) {
                    Some(level) if x & 4 != 0 => {
                        book_side.remove(price, pool.get(level).entry as usize);
                        pool.release(level);
                    }
                    None if !book_side.is_full() => {
                        book_side.level_for(price, &mut pool, None);
                    }
                    _ => {}
                }
                if round % 7 != 0 {
                    continue;
                }
                for probe in 0..=301 {
                    let expected = book_side.find(probe);
                    for hint in 0..=book_side.entries.len() + 1 {
                        assert_eq!(book_side.find_near(probe, hint), expected, "{side:?} price {probe} hint {hint}");
                    }
                }
            }
        }
    }
}
