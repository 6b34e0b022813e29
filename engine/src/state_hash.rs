//! The state hash: a BLAKE3 digest of the whole canonical state.
//!
//! Canonical means: every field in a fixed order, fixed-width little-endian integers, books
//! walked best price first and each level in time order, accounts in id order. Two engines
//! hold the same state exactly when their hashes match, on any machine.

use crate::engine::Engine;
use crate::tx::MarketKind;

/// Domain tag and format version of the state hash.
const STATE_HASH_DOMAIN: &[u8] = b"verex-state-v3";

struct Canon(blake3::Hasher);

impl Canon {
    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.update(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.update(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.0.update(v);
    }
}

impl Engine {
    /// The digest of the whole canonical state.
    #[must_use]
    pub fn state_hash(&self) -> [u8; 32] {
        let mut h = Canon(blake3::Hasher::new());
        h.bytes(STATE_HASH_DOMAIN);
        h.u64(self.seq);
        h.u64(self.last_ts);
        h.u64(self.next_order_id);
        h.u64(self.next_trade_id);
        for nonce in self.operator_nonces {
            h.u64(nonce);
        }
        self.hash_catalog(&mut h);
        self.hash_accounts(&mut h);
        self.hash_books(&mut h);
        for column in [&self.fees, &self.supply, &self.uncovered] {
            h.u64(column.len() as u64);
            for v in column {
                h.u64(*v);
            }
        }
        h.u64(self.insurance.len() as u64);
        for v in &self.insurance {
            h.i64(*v);
        }
        for column in [&self.deposited, &self.withdrawn] {
            h.u64(column.len() as u64);
            for v in column {
                h.u128(*v);
            }
        }
        self.hash_positions(&mut h);
        h.u64(self.pools.len() as u64);
        for p in &self.pools {
            for v in [p.supply_index, p.borrow_index, p.lent_principal, p.borrowed_principal] {
                h.u128(v);
            }
            h.u64(p.fund_principal);
            h.u64(p.unfunded);
            h.u64(p.accrued_ts);
        }
        *h.0.finalize().as_bytes()
    }

    fn hash_catalog(&self, h: &mut Canon) {
        h.u64(self.catalog.assets().len() as u64);
        for a in self.catalog.assets() {
            h.bytes(&a.symbol.0);
            h.u64(u64::from(a.decimals));
            for v in [
                a.collateral_weight,
                a.borrow_weight,
                a.rate_base,
                a.rate_kink_utilization,
                a.rate_at_kink,
                a.rate_max,
                a.reserve_factor,
                a.max_utilization,
                a.index_price,
            ] {
                h.i64(v);
            }
        }
        h.u64(self.catalog.markets().len() as u64);
        for m in self.catalog.markets() {
            h.bytes(&m.symbol.0);
            h.u64(match m.kind {
                MarketKind::Spot => 0,
                MarketKind::Perp => 1,
            });
            h.u64(u64::from(m.base));
            h.u64(u64::from(m.quote));
            h.u64(u64::from(m.price_decimals));
            h.i64(m.tick_units);
            h.u64(m.step_units);
            for v in [m.maker_fee, m.taker_fee, m.imf, m.mmf, i64::from(m.notional_exp), m.last_mark] {
                h.i64(v);
            }
            h.u64(m.funding_interval_ns);
        }
    }

    fn hash_accounts(&self, h: &mut Canon) {
        h.u64(self.accounts.len() as u64);
        let assets = self.catalog.assets().len();
        for (index, account) in self.accounts.iter() {
            h.bytes(&account.pubkey);
            h.u64(account.nonce);
            for asset in 0..assets {
                let b = self.accounts.holding(index, u16::try_from(asset).unwrap_or(u16::MAX));
                for v in [b.available, b.locked, b.lent, b.borrowed, b.unfunded, b.reserved] {
                    h.u64(v);
                }
            }
        }
    }

    /// Positions in account order per perp market (not holder order, which depends on history
    /// only through the same operations, but is not a canonical form).
    fn hash_positions(&self, h: &mut Canon) {
        for &m in &self.perp_markets {
            let positions = &self.positions[usize::from(m)];
            h.u64(u64::from(m));
            h.i64(positions.insurance);
            for (account, size) in positions.size.iter().enumerate() {
                if *size != 0 {
                    h.u64(account as u64);
                    h.i64(*size);
                }
            }
        }
    }

    fn hash_books(&self, h: &mut Canon) {
        for book in &self.books {
            for side in [&book.bids, &book.asks] {
                h.u64(side.depth() as u64);
                for level in side.iter_best_first() {
                    let level = self.levels.get(level);
                    h.i64(level.price);
                    h.u64(u64::from(level.count));
                    let mut slot = level.head;
                    while slot != crate::accounts::NIL {
                        let o = self.orders.get(slot);
                        for v in [o.id, o.client_id, u64::from(o.account), o.remaining, o.locked] {
                            h.u64(v);
                        }
                        h.u64(u64::from(o.tif as u8) | (u64::from(o.reduce_only) << 8));
                        slot = o.next;
                    }
                }
            }
        }
    }
}
