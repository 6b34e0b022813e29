//! The order pool: every resting order lives in one pre-allocated slot, found in O(1) by
//! exchange id or by (account, client id), and linked into two intrusive lists: its price
//! level's FIFO and its account's orders.

use crate::accounts::NIL;
use crate::id_table::IdTable;
use crate::tx::{Side, TimeInForce};

/// A resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Order {
    pub id: u64,
    pub client_id: u64,
    pub account: u32,
    pub market: u16,
    pub side: Side,
    pub tif: TimeInForce,
    pub reduce_only: bool,
    /// Limit price, price units.
    pub price: i64,
    /// Remaining quantity, base units.
    pub remaining: u64,
    /// What this order holds in `locked` (quote units for a spot buy, base units for a spot
    /// sell): always `Engine::lock_need` of its remaining quantity.
    pub locked: u64,
    /// What one step of this order locks (see `matching::lock_per_lot`): `locked` is always
    /// `remaining / step × lock_per_lot`, so a fill recomputes it with one multiplication.
    pub lock_per_lot: u64,
    /// Its price level.
    pub level: u32,
    /// Level FIFO links.
    pub prev: u32,
    pub next: u32,
    /// Account list links.
    pub account_prev: u32,
    pub account_next: u32,
}

impl Order {
    /// A vacant slot's contents: no links, nothing locked.
    pub(crate) const EMPTY: Order = Order {
        id: 0,
        client_id: 0,
        account: 0,
        market: 0,
        side: Side::Buy,
        tif: TimeInForce::Gtc,
        reduce_only: false,
        price: 0,
        remaining: 0,
        locked: 0,
        lock_per_lot: 0,
        level: NIL,
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
    };
}

/// The (account, client id) index key.
fn client_key(account: u32, client_id: u64) -> u128 {
    (u128::from(account) << 64) | u128::from(client_id)
}

/// Slots for resting orders with a free list and two indexes.
#[derive(Clone)]
pub(crate) struct OrderPool {
    slots: Vec<Order>,
    free: Vec<u32>,
    by_id: IdTable<u64>,
    by_client: IdTable<u128>,
    capacity: usize,
}

impl OrderPool {
    pub(crate) fn new(capacity: u32) -> Self {
        let capacity = capacity as usize;
        Self {
            slots: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            by_id: IdTable::with_capacity(capacity),
            by_client: IdTable::with_capacity(capacity),
            capacity,
        }
    }

    /// Room for another order?
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Resting orders.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Stores an order; the caller checked room and client id uniqueness.
    pub(crate) fn insert(&mut self, order: Order) -> u32 {
        let slot = if let Some(slot) = self.free.pop() {
            self.slots[slot as usize] = order;
            slot
        } else {
            let slot = u32::try_from(self.slots.len()).unwrap_or(NIL);
            self.slots.push(order);
            slot
        };
        let inserted = self.by_id.insert(order.id, slot);
        debug_assert!(inserted, "order ids are unique");
        if order.client_id != 0 {
            let inserted = self.by_client.insert(client_key(order.account, order.client_id), slot);
            debug_assert!(inserted, "client ids are unique per account");
        }
        slot
    }

    /// Frees a slot and unindexes its order.
    #[inline]
    pub(crate) fn remove(&mut self, slot: u32) -> Order {
        let order = self.slots[slot as usize];
        let removed = self.by_id.remove(&order.id);
        debug_assert_eq!(removed, Some(slot));
        if order.client_id != 0 {
            let removed = self.by_client.remove(&client_key(order.account, order.client_id));
            debug_assert_eq!(removed, Some(slot));
        }
        self.slots[slot as usize] = Order::EMPTY;
        self.free.push(slot);
        order
    }

    pub(crate) fn slot_of(&self, order_id: u64) -> Option<u32> {
        self.by_id.get(&order_id)
    }

    pub(crate) fn slot_of_client(&self, account: u32, client_id: u64) -> Option<u32> {
        self.by_client.get(&client_key(account, client_id))
    }

    pub(crate) fn get(&self, slot: u32) -> &Order {
        &self.slots[slot as usize]
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.slots[slot as usize]
    }
}
