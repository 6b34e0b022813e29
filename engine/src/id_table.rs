//! A fixed-capacity open-addressing hash table from a key to a `u32` slot.
//!
//! Deterministic (no random state: the hash is a fixed function of the key), allocation-free
//! after construction, linear probing with backward-shift deletion (no tombstones), and a load
//! factor of at most one half. Keys and values live in two zero-initialised arrays (a value of
//! 0 marks an empty slot; stored values are offset by one), so a large table costs nothing
//! until it is used: the OS hands out zeroed pages lazily. Used for order id → order slot, (account, client id) → order
//! slot, public key → account, and symbol → asset or market.

/// A key the table can hold: hashed by a fixed function.
pub(crate) trait TableKey: Copy + Eq + Default {
    /// A well-mixed 64-bit hash of the key, the same on every machine.
    fn hash64(&self) -> u64;
}

/// Mixes 64 bits (the `splitmix64` finaliser).
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl TableKey for u64 {
    fn hash64(&self) -> u64 {
        mix64(*self)
    }
}

impl TableKey for u128 {
    fn hash64(&self) -> u64 {
        // Truncations are intended: the two halves are mixed separately.
        mix64(mix64((*self >> 64) as u64) ^ (*self as u64))
    }
}

impl TableKey for [u8; 32] {
    fn hash64(&self) -> u64 {
        let mut acc = 0u64;
        for chunk in self.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            acc = mix64(acc ^ u64::from_le_bytes(word));
        }
        acc
    }
}

impl TableKey for [u8; 16] {
    fn hash64(&self) -> u64 {
        let mut low = [0u8; 8];
        let mut high = [0u8; 8];
        low.copy_from_slice(&self[..8]);
        high.copy_from_slice(&self[8..]);
        mix64(mix64(u64::from_le_bytes(low)) ^ u64::from_le_bytes(high))
    }
}

/// The table. Holds at most `capacity` keys; inserting beyond returns `false`.
#[derive(Clone)]
pub(crate) struct IdTable<K: TableKey> {
    keys: Vec<K>,
    /// `value + 1`, or 0 for an empty slot.
    values: Vec<u32>,
    mask: usize,
    len: usize,
    capacity: usize,
}

impl<K: TableKey> IdTable<K> {
    /// A table for up to `capacity` keys (twice as many slots, rounded up to a power of two).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let slots = (capacity.max(1) * 2).next_power_of_two();
        Self { keys: vec![K::default(); slots], values: vec![0; slots], mask: slots - 1, len: 0, capacity }
    }

    fn home(&self, key: &K) -> usize {
        // Truncation is intended: the mask keeps the low bits.
        (key.hash64() as usize) & self.mask
    }

    /// The value stored for `key`.
    pub(crate) fn get(&self, key: &K) -> Option<u32> {
        let mut at = self.home(key);
        loop {
            match self.values[at] {
                0 => return None,
                v if self.keys[at] == *key => return Some(v - 1),
                _ => at = (at + 1) & self.mask,
            }
        }
    }

    /// Inserts a new key; `false` if it is present already or the table is full.
    pub(crate) fn insert(&mut self, key: K, value: u32) -> bool {
        debug_assert!(value < u32::MAX, "values are stored offset by one");
        if self.len >= self.capacity {
            return false;
        }
        let mut at = self.home(&key);
        loop {
            match self.values[at] {
                0 => {
                    self.keys[at] = key;
                    self.values[at] = value + 1;
                    self.len += 1;
                    return true;
                }
                _ if self.keys[at] == key => return false,
                _ => at = (at + 1) & self.mask,
            }
        }
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<u32> {
        let mut at = self.home(key);
        let value = loop {
            match self.values[at] {
                0 => return None,
                v if self.keys[at] == *key => break v - 1,
                _ => at = (at + 1) & self.mask,
            }
        };
        self.values[at] = 0;
        self.keys[at] = K::default();
        self.len -= 1;
        // Backward-shift: pull later entries of the probe run into the hole when their home
        // position allows it, so lookups never stop early at a false hole.
        let mut hole = at;
        let mut next = (at + 1) & self.mask;
        while self.values[next] != 0 {
            let home = self.home(&self.keys[next]);
            let distance_to_next = next.wrapping_sub(home) & self.mask;
            let distance_to_hole = hole.wrapping_sub(home) & self.mask;
            if distance_to_hole <= distance_to_next {
                self.keys[hole] = self.keys[next];
                self.values[hole] = self.values[next];
                self.keys[next] = K::default();
                self.values[next] = 0;
                hole = next;
            }
            next = (next + 1) & self.mask;
        }
        Some(value)
    }

    /// How many keys are stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_under_churn() {
        let mut table = IdTable::<u64>::with_capacity(64);
        let mut model = std::collections::BTreeMap::new();
        let mut x = 12345u64;
        for step in 0..20_000u32 {
            x = mix64(x);
            let key = x % 100;
            if x.is_multiple_of(3) {
                assert_eq!(table.remove(&key), model.remove(&key));
            } else if model.len() < 64 || model.contains_key(&key) {
                let inserted = table.insert(key, step);
                assert_eq!(inserted, !model.contains_key(&key));
                model.entry(key).or_insert(step);
            }
            assert_eq!(table.len(), model.len());
        }
        for key in 0..100 {
            assert_eq!(table.get(&key), model.get(&key).copied());
        }
    }

    #[test]
    fn full_table_refuses() {
        let mut table = IdTable::<u64>::with_capacity(2);
        assert!(table.insert(1, 1));
        assert!(table.insert(2, 2));
        assert!(!table.insert(3, 3));
        assert!(!table.insert(1, 9));
    }
}
