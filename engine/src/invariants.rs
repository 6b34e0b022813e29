//! The invariants of SPEC section 7, checked over the whole state. Tests call this after
//! every transaction; it is O(state) and never runs on the hot path.

use crate::accounts::NIL;
use crate::engine::Engine;
use crate::matching::{lock_asset, lock_need, lock_per_lot};
use crate::tx::MarketKind;

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
        self.check_nothing_uncovered()?;
        Ok(())
    }

    /// No balance that nobody deposited (SPEC 6, 6a): no asset has an uncovered loss, so the
    /// conservation sum holds with the fee account's own money, never with a hole.
    fn check_nothing_uncovered(&self) -> Result<(), String> {
        for (a, asset) in self.catalog.assets().iter().enumerate() {
            if self.uncovered[a] != 0 {
                return Err(format!("uncovered loss of {}: {}", asset.symbol.as_str(), self.uncovered[a]));
            }
        }
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

    /// Σ accounts (available + locked + lent − borrowed) + fee account + insurance = Σ deposits
    /// − Σ withdrawals, per asset, exactly, where the fee account holds the pool's rounding
    /// dust and carries the uncovered loss; the same in the pool's terms (pool lent − pool
    /// borrowed − unfunded); the accounts' rounded amounts within one unit each of the pool's
    /// totals, in the exchange's favour; principals summing to the pool's; Σ lent ≥ Σ borrowed.
    fn check_conservation(&self) -> Result<(), String> {
        for (a, asset) in self.catalog.assets().iter().enumerate() {
            let a16 = u16::try_from(a).map_err(|e| e.to_string())?;
            let name = asset.symbol.as_str();
            let pool = self.pools[a];
            let (mut held, mut lent, mut debt, mut unfunded) = (0i128, 0i128, 0i128, 0u128);
            let (mut lent_p, mut borrowed_p, mut counted) = (0u128, 0u128, 0i128);
            for (index, h) in self.accounts.column(a16).iter().enumerate() {
                let index = u32::try_from(index).map_err(|e| e.to_string())?;
                held += i128::from(h.available) + i128::from(h.locked);
                lent += i128::from(self.lent_amount(index, a16));
                debt += i128::from(self.debt_of(index, a16));
                unfunded += u128::from(h.unfunded);
                lent_p += u128::from(h.lent);
                borrowed_p += u128::from(h.borrowed);
                counted += i128::from(h.lent != 0) + i128::from(h.borrowed != 0);
            }
            counted += i128::from(pool.fund_principal != 0);
            if lent_p + u128::from(pool.fund_principal) != pool.lent_principal
                || borrowed_p != pool.borrowed_principal
                || unfunded != u128::from(pool.unfunded)
            {
                return Err(format!("pool of {name}: principals {lent_p}/{borrowed_p}/{unfunded} != pool {pool:?}"));
            }
            let (pool_lent, pool_borrowed) = (i128::from(pool.lent()), i128::from(pool.borrowed()));
            // The pool's lent includes what the fund lent; the per-account sum counts it with
            // the fund.
            let exchange = i128::from(self.fees[a]) + i128::from(self.insurance[a]) - i128::from(self.uncovered[a]);
            let supply = i128::from(self.supply[a]);
            let pool_terms = held + pool_lent - pool_borrowed - i128::from(pool.unfunded) + exchange;
            if pool_terms != supply {
                return Err(format!(
                    "conservation of {name} (pool terms): held {pool_terms} != deposits - withdrawals {supply}"
                ));
            }
            let dust =
                (pool_lent - lent - i128::from(pool.fund_lent())) + (debt - i128::from(pool.unfunded) - pool_borrowed);
            if dust < 0 || dust > counted {
                return Err(format!("pool of {name}: accounts' rounding {dust} outside 0..={counted}"));
            }
            let per_account = held + lent - debt + exchange + i128::from(pool.fund_lent()) + dust;
            if per_account != supply
                || self.fee_account(a16) != i128::from(self.fees[a]) + dust - i128::from(self.uncovered[a])
            {
                return Err(format!("conservation of {name}: held {per_account} != deposits - withdrawals {supply}"));
            }
            if pool_lent < pool_borrowed {
                return Err(format!("pool of {name}: lent {pool_lent} < borrowed {pool_borrowed}"));
            }
            // No unbacked balance (SPEC 6a): while an automatic borrow is unfunded, nobody holds
            // a withdrawable balance of the asset (the holders lent it all to the pool).
            let withdrawable: u128 = self.accounts.column(a16).iter().map(|h| u128::from(h.available)).sum();
            if pool.unfunded != 0 && withdrawable != 0 {
                return Err(format!(
                    "unbacked balance of {name}: unfunded debt {} while accounts hold {withdrawable} available",
                    pool.unfunded
                ));
            }
        }
        Ok(())
    }

    /// Every account's `locked` equals what its resting orders need, and each order holds
    /// exactly its need.
    fn check_locks(&self) -> Result<(), String> {
        let assets = self.catalog.assets().len();
        // Spot orders' locks per asset, then perp orders' reserves per settle asset.
        let mut need = vec![0u128; 2 * assets];
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
                let slot_of =
                    usize::from(lock_asset(market, order.side)) + usize::from(market.kind == MarketKind::Perp) * assets;
                need[slot_of] += u128::from(order.locked);
                count += 1;
                slot = order.account_next;
            }
            if count != account.order_count {
                return Err(format!("account {} lists {count} orders, counts {}", index + 1, account.order_count));
            }
            for (a, n) in need[..assets].iter().enumerate() {
                let holding = self.accounts.holding(index, u16::try_from(a).map_err(|e| e.to_string())?);
                if u128::from(holding.locked) != *n {
                    return Err(format!(
                        "account {} locked {} of asset {a} but its orders need {n}",
                        index + 1,
                        holding.locked
                    ));
                }
                if u128::from(holding.reserved) != need[assets + a] {
                    return Err(format!(
                        "account {} reserves {} of asset {a} but its perp orders need {}",
                        index + 1,
                        holding.reserved,
                        need[assets + a]
                    ));
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
