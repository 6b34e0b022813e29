//! Accounts: their keys, nonces, balances per asset, and the list of their resting orders.
//!
//! Balances are stored per asset in columns (`balances[asset][account]`), reserved for
//! `max_accounts` at listing time, so that creating an account pushes within capacity and
//! never reallocates.

use crate::id_table::IdTable;

/// Marks "no order" in intrusive lists.
pub(crate) const NIL: u32 = u32::MAX;

/// One account's balance in one asset, as reported. Every field is non-negative and in
/// asset units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Balance {
    /// Free to trade, withdraw or lend.
    pub available: u64,
    /// Held by resting spot orders: exactly what they need.
    pub locked: u64,
    /// In the asset's lending pool, with its interest (rounded down).
    pub lent: u64,
    /// Owed: the pool debt with its interest (rounded up) plus any unfunded debt.
    pub borrowed: u64,
}

/// One account's holding of one asset as stored: amounts in units, pool positions as
/// principals (see `lending`), so that interest accrues without touching accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Holding {
    /// Free to trade, withdraw or lend (units).
    pub available: u64,
    /// Held by resting spot orders (units).
    pub locked: u64,
    /// Lent principal: the amount is `⌊lent × supply index⌋`.
    pub lent: u64,
    /// Borrowed principal: the debt is `⌈borrowed × borrow index⌉`.
    pub borrowed: u64,
    /// Debt that the pool could not fund (units, no interest).
    pub unfunded: u64,
    /// Initial margin and fees reserved by resting perp orders settled in this asset (units):
    /// a requirement, not a balance (nothing leaves `available`).
    pub reserved: u64,
}

/// One account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    /// The key that signs for it.
    pub pubkey: [u8; 32],
    /// Last nonce used by that key.
    pub nonce: u64,
    /// Oldest resting order (intrusive list through the order pool).
    pub first_order: u32,
    /// Newest resting order.
    pub last_order: u32,
    /// Number of resting orders.
    pub order_count: u32,
}

/// All user accounts and their balances.
#[derive(Clone)]
pub(crate) struct Accounts {
    accounts: Vec<Account>,
    balances: Vec<Vec<Holding>>,
    by_key: IdTable<[u8; 32]>,
    max_accounts: usize,
}

impl Accounts {
    pub(crate) fn new(max_accounts: u32) -> Self {
        let max_accounts = max_accounts as usize;
        Self {
            accounts: Vec::with_capacity(max_accounts),
            balances: Vec::new(),
            by_key: IdTable::with_capacity(max_accounts),
            max_accounts,
        }
    }

    /// Adds the column of a newly listed asset (admin path: allocates once per listing).
    pub(crate) fn add_asset_column(&mut self) {
        let mut column = Vec::with_capacity(self.max_accounts);
        column.resize(self.accounts.len(), Holding::default());
        self.balances.push(column);
    }

    /// Number of accounts.
    pub(crate) fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Room for another account?
    pub(crate) fn is_full(&self) -> bool {
        self.accounts.len() >= self.max_accounts
    }

    /// The account id registered for `pubkey`.
    pub(crate) fn by_key(&self, pubkey: &[u8; 32]) -> Option<u64> {
        self.by_key.get(pubkey).map(|index| u64::from(index) + 1)
    }

    /// Registers a new key; returns its account id. The caller checked room and uniqueness.
    pub(crate) fn create(&mut self, pubkey: [u8; 32], nonce: u64) -> u64 {
        let index = u32::try_from(self.accounts.len()).unwrap_or(u32::MAX);
        let inserted = self.by_key.insert(pubkey, index);
        debug_assert!(inserted, "key must be new");
        self.accounts.push(Account { pubkey, nonce, first_order: NIL, last_order: NIL, order_count: 0 });
        for column in &mut self.balances {
            column.push(Holding::default());
        }
        u64::from(index) + 1
    }

    /// Index of an existing account id.
    pub(crate) fn index(&self, id: u64) -> Option<u32> {
        let index = id.checked_sub(1)?;
        if index < self.accounts.len() as u64 {
            u32::try_from(index).ok()
        } else {
            None
        }
    }

    pub(crate) fn get(&self, index: u32) -> &Account {
        &self.accounts[index as usize]
    }

    pub(crate) fn get_mut(&mut self, index: u32) -> &mut Account {
        &mut self.accounts[index as usize]
    }

    pub(crate) fn holding(&self, index: u32, asset: u16) -> &Holding {
        &self.balances[usize::from(asset)][index as usize]
    }

    pub(crate) fn holding_mut(&mut self, index: u32, asset: u16) -> &mut Holding {
        &mut self.balances[usize::from(asset)][index as usize]
    }

    /// All accounts, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Account)> {
        self.accounts.iter().enumerate().map(|(i, a)| (u32::try_from(i).unwrap_or(u32::MAX), a))
    }

    /// One asset's column.
    pub(crate) fn column(&self, asset: u16) -> &[Holding] {
        &self.balances[usize::from(asset)]
    }
}
