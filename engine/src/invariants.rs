//! The invariants of SPEC section 7, checked over the whole state. Tests call this after
//! every transaction; it is O(state) and never runs on the hot path.

use crate::accounts::NIL;
use crate::engine::Engine;
use crate::matching::{lock_asset, lock_need, lock_per_lot};

impl Engine {
    /// Checks every invariant; the error names the first that fails and the values involved.
    ///
    /// # Errors
    /// A message naming the broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_conservation()?;
        self.check_deposits_cover_withdrawals()?;
        self.check_insurance()?;
        self.check_locks()?;
        self.check_books()?;
        self.check_positions()?;
        Ok(())
    }

    /// Per asset: Σ withdrawals ≤ Σ deposits, and their difference is `supply` (what the
    /// conservation check sums to).
    fn check_deposits_cover_withdrawals(&self) -> Result<(), String> {
        for (a, asset) in self.catalog.assets().iter().enumerate() {
            let (deposited, withdrawn) = (self.deposited[a], self.withdrawn[a]);
            if withdrawn > deposited {
                return Err(format!(
                    "withdrawals of {} total {withdrawn} > deposits {deposited}",
                    asset.symbol.as_str()
                ));
            }
            if deposited - withdrawn != u128::from(self.supply[a]) {
                return Err(format!(
                    "supply of {}: {} != deposits {deposited} - withdrawals {withdrawn}",
                    asset.symbol.as_str(),
                    self.supply[a]
                ));
            }
        }
        Ok(())
    }

    /// The insurance fund is ≥ 0 in every asset and, counted like an account per settle asset,
    /// not below maintenance.
    fn check_insurance(&self) -> Result<(), String> {
        for (a, asset) in self.catalog.assets().iter().enumerate() {
            if self.insurance[a] < 0 {
                return Err(format!("insurance fund of {} is negative: {}", asset.symbol.as_str(), self.insurance[a]));
            }
            let (margin, _) = self.fund_margin(u16::try_from(a).map_err(|e| e.to_string())?, None);
            if margin.is_liquidatable() {
                return Err(format!("insurance fund left below maintenance in {}: {margin:?}", asset.symbol.as_str()));
            }
        }
        Ok(())
    }

    /// Per perp market: Σ sizes (insurance fund included) = 0, the holder list is exactly the
    /// non-zero sizes, and no account with a maintenance requirement is below it.
    fn check_positions(&self) -> Result<(), String> {
        for &m in &self.perp_markets {
            let positions = &self.positions[usize::from(m)];
            let total: i128 =
                positions.size.iter().map(|s| i128::from(*s)).sum::<i128>() + i128::from(positions.insurance);
            if total != 0 {
                return Err(format!("market {m}: positions sum to {total}"));
            }
            let holders = positions.size.iter().filter(|s| **s != 0).count();
            if holders != positions.holders.len() {
                return Err(format!(
                    "market {m}: {holders} non-zero positions but {} holders",
                    positions.holders.len()
                ));
            }
        }
        for (index, _) in self.accounts.iter() {
            let margin = self.margin(index);
            if margin.is_liquidatable() {
                return Err(format!("account {} left below maintenance: {margin:?}", index + 1));
            }
        }
        Ok(())
    }

    /// Σ accounts (available + locked + lent − borrowed) + fees + insurance = Σ deposits − Σ
    /// withdrawals, per asset, exactly; and the pool sums match the accounts.
    fn check_conservation(&self) -> Result<(), String> {
        for (a, asset) in self.catalog.assets().iter().enumerate() {
            let a16 = u16::try_from(a).map_err(|e| e.to_string())?;
            let (mut held, mut lent, mut borrowed) = (0i128, 0i128, 0i128);
            for b in self.accounts.column(a16) {
                held += i128::from(b.available) + i128::from(b.locked) + i128::from(b.lent) - i128::from(b.borrowed);
                lent += i128::from(b.lent);
                borrowed += i128::from(b.borrowed);
            }
            held += i128::from(self.fees[a]) + i128::from(self.insurance[a]);
            let supply = i128::from(self.supply[a]);
            if held != supply {
                return Err(format!(
                    "conservation of {}: held {held} != deposits - withdrawals {supply}",
                    asset.symbol.as_str()
                ));
            }
            if lent != i128::from(self.pool_lent[a]) {
                return Err(format!(
                    "pool lent of {}: accounts {lent} != pool {}",
                    asset.symbol.as_str(),
                    self.pool_lent[a]
                ));
            }
            if self.pool_lent[a] < self.pool_borrowed[a] {
                return Err(format!(
                    "pool of {}: lent {} < borrowed {}",
                    asset.symbol.as_str(),
                    self.pool_lent[a],
                    self.pool_borrowed[a]
                ));
            }
            if borrowed < i128::from(self.pool_borrowed[a]) {
                return Err(format!("pool borrowed of {} exceeds accounts' debts", asset.symbol.as_str()));
            }
        }
        Ok(())
    }

    /// Every account's `locked` equals what its resting orders need, and each order holds
    /// exactly its need.
    fn check_locks(&self) -> Result<(), String> {
        let assets = self.catalog.assets().len();
        let mut need = vec![0u128; assets];
        for (index, account) in self.accounts.iter() {
            need.iter_mut().for_each(|n| *n = 0);
            let mut count = 0u32;
            let mut slot = account.first_order;
            while slot != NIL {
                let order = self.orders.get(slot);
                let market = self.catalog.market(order.market);
                let expected = lock_need(market, order.side, order.price, order.remaining)
                    .ok_or_else(|| format!("order {} lock need overflows", order.id))?;
                if order.locked != expected {
                    return Err(format!("order {} holds {} but needs {expected}", order.id, order.locked));
                }
                if Some(order.lock_per_lot) != lock_per_lot(market, order.side, order.price) {
                    return Err(format!("order {} caches a wrong lock per lot {}", order.id, order.lock_per_lot));
                }
                need[usize::from(lock_asset(market, order.side))] += u128::from(order.locked);
                count += 1;
                slot = order.account_next;
            }
            if count != account.order_count {
                return Err(format!("account {} lists {count} orders, counts {}", index + 1, account.order_count));
            }
            for (a, n) in need.iter().enumerate() {
                let locked = self.accounts.balance(index, u16::try_from(a).map_err(|e| e.to_string())?).locked;
                if u128::from(locked) != *n {
                    return Err(format!("account {} locked {locked} of asset {a} but its orders need {n}", index + 1));
                }
            }
        }
        Ok(())
    }

    /// No book is crossed; levels are sorted, non-empty, and their totals match their orders.
    fn check_books(&self) -> Result<(), String> {
        let mut resting = 0usize;
        for (m, book) in self.books.iter().enumerate() {
            if !book.is_uncrossed(&self.levels) {
                return Err(format!("book of market {m} is crossed"));
            }
            for side in [&book.bids, &book.asks] {
                let mut previous: Option<i64> = None;
                for level in side.iter_best_first() {
                    let level = self.levels.get(level);
                    if let Some(p) = previous {
                        let worse = if core::ptr::eq(side, &book.bids) { level.price < p } else { level.price > p };
                        if !worse {
                            return Err(format!("market {m}: levels out of order at {}", level.price));
                        }
                    }
                    previous = Some(level.price);
                    let (mut total, mut count, mut slot) = (0u64, 0u32, level.head);
                    while slot != NIL {
                        let order = self.orders.get(slot);
                        if order.price != level.price || order.remaining == 0 {
                            return Err(format!("order {} misplaced or empty at level {}", order.id, level.price));
                        }
                        total += order.remaining;
                        count += 1;
                        slot = order.next;
                    }
                    if total != level.total_qty || count != level.count || count == 0 {
                        return Err(format!(
                            "market {m}: level {} totals {total}/{count} vs {}/{}",
                            level.price, level.total_qty, level.count
                        ));
                    }
                    resting += count as usize;
                }
            }
        }
        if resting != self.orders.len() {
            return Err(format!("{resting} orders in books but {} in the pool", self.orders.len()));
        }
        Ok(())
    }
}
