//! The engine: explicit state and `apply`, the only way it changes.
//!
//! `apply` takes one archived, sequenced transaction (as it sits in a ring slot or a journal
//! mapping), checks it, and appends its events to a pre-allocated [`EventBuf`]. It never
//! allocates on the order path, never reads a clock (the tx's stamp is its only time), never
//! does I/O, and never panics on input: every broken rule is a `rejected` event.

use crate::accounts::{Accounts, Balance, NIL};
use crate::book::{Book, LevelPool};
use crate::catalog::{Asset, Catalog, Listing, Market, DEFAULT_WEIGHT};
use crate::events::{Event, EventBuf, PoolMove, RejectReason};
use crate::fixed::{ratio_units, UnitsError, RATIO_ONE};
use crate::genesis::Genesis;
use crate::limits::{Limits, MAX_ASSET_DECIMALS, MAX_FEE_RATIO, MAX_PRICE_DECIMALS, MAX_SUPPLY_UNITS};
use crate::orders::OrderPool;
use crate::sequencer::MAX_TS_NS;
use crate::signing::Role;
use crate::tx::{
    ArchivedAddAsset, ArchivedAddMarket, ArchivedAssetAmount, ArchivedDeposit, ArchivedFunding, ArchivedMark,
    ArchivedOp, ArchivedTx, MarketKind, MAX_MARK_PRICES,
};
use crate::verified::VerifiedRecord;

/// A failure of the caller, not of the transaction: the engine refuses to go on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// Transactions must arrive with gap-free sequence numbers.
    #[error("sequence gap: expected seq {expected}, got {got}")]
    SeqGap {
        /// The next seq the engine expects.
        expected: u64,
        /// The seq it was given.
        got: u64,
    },
    /// The limits are out of range.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// A genesis key cannot sign under the rule (small order, not canonical, not a point).
    #[error("genesis {role} key is refused: {fault}")]
    InvalidGenesis {
        /// The role whose key is refused.
        role: &'static str,
        /// Why.
        fault: crate::signature_rule::SignatureFault,
    },
}

/// Who is acting, once authenticated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Actor {
    Operator,
    Account(u32),
}

/// The exchange state machine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) limits: Limits,
    pub(crate) genesis: Genesis,
    pub(crate) operator_nonces: [u64; 4],
    pub(crate) catalog: Catalog,
    pub(crate) accounts: Accounts,
    pub(crate) orders: OrderPool,
    pub(crate) levels: LevelPool,
    pub(crate) books: Vec<Book>,
    /// Per asset: the fee account's balance (rounding remainders and fees).
    pub(crate) fees: Vec<u64>,
    /// Per asset: the insurance fund's balance. Never negative when a tx completes: the fund
    /// is margined like an account and deleveraged when under water (see `insurance`).
    pub(crate) insurance: Vec<i64>,
    /// Per asset: Σ deposits − Σ withdrawals: what custody physically holds.
    pub(crate) supply: Vec<u64>,
    /// Per asset: Σ deposits ever made (a running total: `u128` never wraps).
    pub(crate) deposited: Vec<u128>,
    /// Per asset: Σ withdrawals ever made; never above `deposited`.
    pub(crate) withdrawn: Vec<u128>,
    /// Per asset: the lending pool (indices and principals, see `lending`).
    pub(crate) pools: Vec<crate::lending::Pool>,
    /// Per asset: bad debt that neither the insurance fund, the lenders nor the fee account
    /// could pay (the exchange's reported loss; see `lending`).
    pub(crate) uncovered: Vec<u64>,
    /// Accounts owing anything (a pool or unfunded debt in any asset), in no particular (but
    /// deterministic) order: re-evaluated when an index price moves or interest may have
    /// consumed their slack.
    pub(crate) debtors: Vec<u32>,
    /// Per account: its index in `debtors`, or `NIL`.
    pub(crate) debtor_slot: Vec<u32>,
    /// Some pool may hold unfunded debt: the end of each tx funds it (`lending`,
    /// `fund_unfunded_debts`). Derived from the pools; not in the state hash.
    pub(crate) unfunded_open: bool,
    pub(crate) seq: u64,
    pub(crate) last_ts: u64,
    pub(crate) next_order_id: u64,
    /// The next fill's trade id (from 1, one per fill across the exchange).
    pub(crate) next_trade_id: u64,
    /// Scratch for one tx: makers filled completely (order id, account id, market, side),
    /// reported after the taker's status.
    pub(crate) filled_makers: Vec<(u64, u64, u16, crate::tx::Side)>,
    /// Per market: perp positions (empty for spot markets).
    pub(crate) positions: Vec<crate::perp::Positions>,
    /// Indexes of the perp markets, ascending.
    pub(crate) perp_markets: Vec<u16>,
    /// Scratch for one tx: accounts whose margin must be evaluated before the tx ends.
    pub(crate) touched: Vec<u32>,
    /// Per account: the seq at which it was queued in `touched` and not yet evaluated
    /// (dedupes it; 0 once evaluated, so a later change in the same tx queues it again).
    pub(crate) touched_seq: Vec<u64>,
    /// Scratch for one tx: `risk_pass`'s read position in `touched`.
    pub(crate) touched_head: usize,
    /// Like `touched_seq`, for the insurance fund (queued as `insurance::FUND`).
    pub(crate) fund_touched_seq: u64,
    /// Scratch for auto-deleveraging: (opposite size, account).
    pub(crate) adl_scratch: Vec<(u64, u32)>,
}

impl Engine {
    /// A fresh engine at seq 0 with every pool sized from `limits`.
    ///
    /// # Errors
    /// [`EngineError::InvalidLimits`] when a limit is out of range.
    pub fn new(genesis: Genesis, limits: Limits) -> Result<Self, EngineError> {
        limits.validate().map_err(EngineError::InvalidLimits)?;
        genesis.validate().map_err(|(role, fault)| EngineError::InvalidGenesis { role: role.name(), fault })?;
        let assets = usize::from(limits.max_assets);
        Ok(Self {
            limits,
            genesis,
            operator_nonces: [0; 4],
            catalog: Catalog::new(limits.max_assets, limits.max_markets),
            accounts: Accounts::new(limits.max_accounts),
            orders: OrderPool::new(limits.max_orders),
            levels: LevelPool::new(limits.max_price_levels),
            books: Vec::with_capacity(usize::from(limits.max_markets)),
            fees: Vec::with_capacity(assets),
            insurance: Vec::with_capacity(assets),
            supply: Vec::with_capacity(assets),
            deposited: Vec::with_capacity(assets),
            withdrawn: Vec::with_capacity(assets),
            pools: Vec::with_capacity(assets),
            uncovered: Vec::with_capacity(assets),
            debtors: Vec::with_capacity(limits.max_accounts as usize),
            debtor_slot: Vec::with_capacity(limits.max_accounts as usize),
            unfunded_open: false,
            seq: 0,
            last_ts: 0,
            next_order_id: 1,
            next_trade_id: 1,
            filled_makers: Vec::with_capacity(limits.max_fills_per_tx as usize),
            positions: Vec::with_capacity(usize::from(limits.max_markets)),
            perp_markets: Vec::with_capacity(usize::from(limits.max_markets)),
            // Every account and the insurance fund, each queued at most once at a time.
            touched: Vec::with_capacity(limits.max_accounts as usize + 1),
            touched_seq: Vec::with_capacity(limits.max_accounts as usize),
            touched_head: 0,
            fund_touched_seq: 0,
            adl_scratch: Vec::with_capacity(limits.max_accounts as usize),
        })
    }

    /// Events one tx can produce at most: size an [`EventBuf`] with this.
    #[must_use]
    pub fn event_capacity(&self) -> usize {
        // A taker: accepted, per fill a fill, a maker status and two settlements, self-trade
        // cancels of its own resting orders, its final status. A mark: a settlement per
        // position of each priced perp, then liquidations: their cancels (at most every
        // resting order), their closing fills, takeovers and ADLs (bounded by positions).
        let fills = self.limits.max_fills_per_tx as usize;
        let own_orders = self.limits.max_orders_per_account as usize;
        let accounts = self.limits.max_accounts as usize;
        let orders = self.limits.max_orders as usize;
        // Lending: an automatic borrow or repayment per settlement, accruals per asset, per
        // liquidated account its set-offs, sales and write-offs per asset, and the fills of
        // collateral sales (a taker of at most `fills` fills per collateral asset).
        let assets = usize::from(self.limits.max_assets);
        16 + 6 * fills + own_orders + orders + (2 * MAX_MARK_PRICES + 6) * accounts + 2 * assets + 4 * fills * assets
    }

    /// A buffer sized for this engine.
    #[must_use]
    pub fn event_buf(&self) -> EventBuf {
        EventBuf::with_capacity(self.event_capacity())
    }

    /// Applies one sequenced transaction, appending its events to `out` (cleared first).
    ///
    /// Only a record whose signature was verified can be applied (see [`crate::verified`]).
    /// Its stamp is the engine's clock: a stamp before the last one is rejected (`stale_ts`),
    /// one not below [`MAX_TS_NS`] too (`invalid_ts`); neither moves the clock.
    ///
    /// # Errors
    /// [`EngineError::SeqGap`] if `tx.seq` is not the next seq; nothing changes then.
    pub fn apply(&mut self, tx: VerifiedRecord<'_>, out: &mut EventBuf) -> Result<(), EngineError> {
        let stx = tx.record();
        let seq = stx.seq.to_native();
        if seq != self.seq + 1 {
            return Err(EngineError::SeqGap { expected: self.seq + 1, got: seq });
        }
        out.begin(seq);
        self.seq = seq;
        let ts = stx.ts.to_native();
        if ts >= MAX_TS_NS {
            out.push(Event::Rejected { reason: RejectReason::InvalidTs });
            return Ok(());
        }
        if ts < self.last_ts {
            out.push(Event::Rejected { reason: RejectReason::StaleTs });
            return Ok(());
        }
        self.last_ts = ts;
        let tx = &stx.signed.tx;
        let result = self.authenticate(tx).and_then(|actor| self.dispatch(tx, actor, out));
        if let Err(reason) = result {
            // A rule broke before any state changed (every op validates before it mutates).
            out.truncate(0);
            out.push(Event::Rejected { reason });
            self.touched.clear();
        } else {
            if !self.touched.is_empty() {
                self.risk_pass(out);
            }
            // An automatic borrow the pool could not fund: the holders lend the cash and the
            // accounts they lent to are evaluated again (rare: the pool ran dry).
            let mut rounds = 0;
            while self.unfunded_open && rounds < crate::lending::ROUNDING_TRIES {
                self.fund_unfunded_debts(out);
                if !self.touched.is_empty() {
                    self.risk_pass(out);
                }
                rounds += 1;
            }
        }
        debug_assert!(!out.overflowed(), "event buffer sized by event_capacity");
        Ok(())
    }

    /// Checks the signer's role or account and its nonce; advances the nonce.
    fn authenticate(&mut self, tx: &ArchivedTx) -> Result<Actor, RejectReason> {
        let nonce = tx.nonce.to_native();
        let role = match &tx.op {
            ArchivedOp::AddAsset(_) | ArchivedOp::AddMarket(_) => Some(Role::Admin),
            ArchivedOp::Deposit(_) => Some(Role::Custody),
            ArchivedOp::Mark(_) | ArchivedOp::Funding(_) | ArchivedOp::Tick => Some(Role::Oracle),
            _ => None,
        };
        if let Some(role) = role {
            if &tx.signer != self.genesis.key(role) {
                return Err(RejectReason::NotPermitted);
            }
            let slot = self.genesis.nonce_slot(role);
            if nonce <= self.operator_nonces[slot] {
                return Err(RejectReason::StaleNonce);
            }
            self.operator_nonces[slot] = nonce;
            return Ok(Actor::Operator);
        }
        if matches!(tx.op, ArchivedOp::CreateAccount) {
            // The new account records this nonce; a replay finds the key registered.
            return Ok(Actor::Operator);
        }
        let index = self.accounts.index(tx.account.to_native()).ok_or(RejectReason::UnknownAccount)?;
        let account = self.accounts.get_mut(index);
        if account.pubkey != tx.signer {
            return Err(RejectReason::NotPermitted);
        }
        if nonce <= account.nonce {
            return Err(RejectReason::StaleNonce);
        }
        account.nonce = nonce;
        Ok(Actor::Account(index))
    }

    fn dispatch(&mut self, tx: &ArchivedTx, actor: Actor, out: &mut EventBuf) -> Result<(), RejectReason> {
        match (&tx.op, actor) {
            (ArchivedOp::AddAsset(op), _) => self.add_asset(op, out),
            (ArchivedOp::AddMarket(op), _) => self.add_market(op, out),
            (ArchivedOp::CreateAccount, _) => self.create_account(tx, out),
            (ArchivedOp::Deposit(op), _) => self.deposit(op, out),
            (ArchivedOp::Mark(op), _) => self.mark(op, out),
            (ArchivedOp::Tick, _) => {
                self.tick(out);
                Ok(())
            }
            (ArchivedOp::Funding(op), _) => self.funding(op, out),
            (op, Actor::Account(account)) => {
                self.dispatch_user(op, account, out)?;
                if !self.perp_markets.is_empty() || self.is_debtor(account) {
                    // Its equity or locks changed: re-evaluate it and refresh its risk bands.
                    self.touch(account);
                }
                Ok(())
            }
            (_, Actor::Operator) => Err(RejectReason::NotPermitted),
        }
    }

    fn dispatch_user(&mut self, op: &ArchivedOp, account: u32, out: &mut EventBuf) -> Result<(), RejectReason> {
        match op {
            ArchivedOp::Withdraw(op) => self.withdraw(account, op, out),
            ArchivedOp::Place(op) => self.place(account, op, out),
            ArchivedOp::Cancel(op) => self.cancel(account, op, out),
            ArchivedOp::CancelAll(market) => self.cancel_all(account, market, out),
            ArchivedOp::Amend(op) => self.amend(account, op, out),
            ArchivedOp::Lend(op) => self.pool_move(account, op, PoolMove::Lend, out),
            ArchivedOp::Redeem(op) => self.pool_move(account, op, PoolMove::Redeem, out),
            ArchivedOp::Repay(op) => self.pool_move(account, op, PoolMove::Repay, out),
            ArchivedOp::Borrow(op) => self.pool_move(account, op, PoolMove::Borrow, out),
            _ => Err(RejectReason::NotPermitted),
        }
    }

    fn add_asset(&mut self, op: &ArchivedAddAsset, out: &mut EventBuf) -> Result<(), RejectReason> {
        let symbol = op.symbol.to_native();
        if !symbol.is_valid() {
            return Err(RejectReason::InvalidConfig);
        }
        if self.catalog.lookup(&symbol).is_some() {
            return Err(RejectReason::DuplicateSymbol);
        }
        if self.catalog.assets_full() {
            return Err(RejectReason::LimitReached);
        }
        if op.decimals > MAX_ASSET_DECIMALS {
            return Err(RejectReason::InvalidConfig);
        }
        let ratio = |dec| ratio_units(dec).ok_or(RejectReason::InvalidConfig);
        let asset = Asset {
            symbol,
            decimals: op.decimals,
            collateral_weight: ratio(&op.collateral_weight)?,
            borrow_weight: ratio(&op.borrow_weight)?,
            rate_base: ratio(&op.rate_base)?,
            rate_kink_utilization: ratio(&op.rate_kink_utilization)?,
            rate_at_kink: ratio(&op.rate_at_kink)?,
            rate_max: ratio(&op.rate_max)?,
            reserve_factor: ratio(&op.reserve_factor)?,
            max_utilization: ratio(&op.max_utilization)?,
            index_price: 0,
        };
        let in_unit = |v: i64| (0..=RATIO_ONE).contains(&v);
        // The curve rises (base ≤ at kink ≤ max ≤ 1000 % a year); a share and a cap in [0, 1].
        if !in_unit(asset.collateral_weight)
            || !(DEFAULT_WEIGHT..=10 * RATIO_ONE).contains(&asset.borrow_weight)
            || !in_unit(asset.rate_kink_utilization)
            || asset.rate_base < 0
            || asset.rate_at_kink < asset.rate_base
            || asset.rate_max < asset.rate_at_kink
            || asset.rate_max > crate::lending::MAX_RATE
            || !in_unit(asset.reserve_factor)
            || !in_unit(asset.max_utilization)
        {
            return Err(RejectReason::InvalidConfig);
        }
        let index = self.install_asset(asset);
        out.push(Event::AssetAdded { asset: index });
        Ok(())
    }

    /// Lists a validated asset: catalog entry, balance column, per-asset ledgers. Shared by
    /// `add_asset` and snapshot restore.
    pub(crate) fn install_asset(&mut self, asset: Asset) -> u16 {
        let index = self.catalog.push_asset(asset);
        self.accounts.add_asset_column();
        for column in [&mut self.fees, &mut self.supply, &mut self.uncovered] {
            column.push(0);
        }
        self.pools.push(crate::lending::Pool::new(self.last_ts));
        self.insurance.push(0);
        self.deposited.push(0);
        self.withdrawn.push(0);
        index
    }

    fn add_market(&mut self, op: &ArchivedAddMarket, out: &mut EventBuf) -> Result<(), RejectReason> {
        let symbol = op.symbol.to_native();
        if !symbol.is_valid() {
            return Err(RejectReason::InvalidConfig);
        }
        if self.catalog.lookup(&symbol).is_some() {
            return Err(RejectReason::DuplicateSymbol);
        }
        if self.catalog.markets_full() {
            return Err(RejectReason::LimitReached);
        }
        let base = self.catalog.asset_index(&op.base.to_native()).ok_or(RejectReason::UnknownAsset)?;
        let quote = self.catalog.asset_index(&op.quote.to_native()).ok_or(RejectReason::UnknownAsset)?;
        if base == quote {
            return Err(RejectReason::InvalidConfig);
        }
        let market = self.market_config(op, symbol, base, quote)?;
        let index = self.install_market(market);
        out.push(Event::MarketAdded { market: index });
        Ok(())
    }

    /// Lists a validated market: catalog entry, book, position columns. Shared by
    /// `add_market` and snapshot restore.
    pub(crate) fn install_market(&mut self, market: Market) -> u16 {
        let index = self.catalog.push_market(market);
        self.books.push(Book::new(self.limits.max_levels_per_side));
        if market.kind == MarketKind::Perp {
            self.positions.push(crate::perp::Positions::new(self.accounts.len(), self.limits.max_accounts as usize));
            self.perp_markets.push(index);
        } else {
            self.positions.push(crate::perp::Positions::default());
        }
        index
    }

    fn market_config(
        &self,
        op: &ArchivedAddMarket,
        symbol: crate::tx::Symbol,
        base: u16,
        quote: u16,
    ) -> Result<Market, RejectReason> {
        let tick = op.tick.to_native();
        let price_decimals = tick.places();
        if tick.mantissa <= 0 || price_decimals > MAX_PRICE_DECIMALS {
            return Err(RejectReason::InvalidConfig);
        }
        let tick_units = tick.to_units(price_decimals).ok_or(RejectReason::InvalidConfig)?;
        let base_decimals = self.catalog.asset(base).decimals;
        let quote_decimals = self.catalog.asset(quote).decimals;
        let step_units = op.step.to_units(u32::from(base_decimals)).ok_or(RejectReason::InvalidConfig)?;
        let step_units = u64::try_from(step_units).ok().filter(|s| *s > 0).ok_or(RejectReason::InvalidConfig)?;
        let ratio = |dec| ratio_units(dec).ok_or(RejectReason::InvalidConfig);
        let (maker_fee, taker_fee) = (ratio(&op.maker_fee)?, ratio(&op.taker_fee)?);
        if !(0..=MAX_FEE_RATIO).contains(&taker_fee) || maker_fee < -taker_fee || maker_fee > MAX_FEE_RATIO {
            return Err(RejectReason::InvalidConfig);
        }
        let kind = match op.kind {
            crate::tx::ArchivedMarketKind::Spot => MarketKind::Spot,
            crate::tx::ArchivedMarketKind::Perp => MarketKind::Perp,
        };
        let (imf, mmf) = (ratio(&op.imf)?, ratio(&op.mmf)?);
        if kind == MarketKind::Perp && !(0 < mmf && mmf < imf && imf <= RATIO_ONE) {
            return Err(RejectReason::InvalidConfig);
        }
        let notional_exp =
            i32::from(quote_decimals) - i32::try_from(price_decimals).unwrap_or(0) - i32::from(base_decimals);
        Ok(Market {
            symbol,
            kind,
            base,
            quote,
            price_decimals,
            tick_units,
            step_units,
            maker_fee,
            taker_fee,
            imf,
            mmf,
            funding_interval_ns: op.funding_interval_ns.to_native(),
            notional_exp,
            last_mark: 0,
            lot_notional: Market::whole_lot_notional(step_units, notional_exp),
        })
    }

    fn create_account(&mut self, tx: &ArchivedTx, out: &mut EventBuf) -> Result<(), RejectReason> {
        if self.accounts.by_key(&tx.signer).is_some() {
            return Err(RejectReason::DuplicateAccount);
        }
        if self.accounts.is_full() {
            return Err(RejectReason::LimitReached);
        }
        let id = self.install_account(tx.signer, tx.nonce.to_native());
        out.push(Event::AccountCreated { account: id });
        Ok(())
    }

    /// Registers a new account with its per-market columns. Shared by `create_account` and
    /// snapshot restore.
    pub(crate) fn install_account(&mut self, pubkey: [u8; 32], nonce: u64) -> u64 {
        let id = self.accounts.create(pubkey, nonce);
        for i in 0..self.perp_markets.len() {
            self.positions[usize::from(self.perp_markets[i])].push_account();
        }
        self.touched_seq.push(0);
        self.debtor_slot.push(NIL);
        id
    }

    /// Resolves an asset symbol and converts a positive amount into its units.
    fn asset_amount(&self, op: &ArchivedAssetAmount) -> Result<(u16, u64), RejectReason> {
        let asset = self.catalog.asset_index(&op.asset.to_native()).ok_or(RejectReason::UnknownAsset)?;
        let amount = self.amount_units(asset, &op.amount)?;
        Ok((asset, amount))
    }

    fn amount_units(&self, asset: u16, amount: &crate::tx::ArchivedDec) -> Result<u64, RejectReason> {
        let decimals = u32::from(self.catalog.asset(asset).decimals);
        let units = amount.to_units_checked(decimals).map_err(|e| match e {
            UnitsError::NotWhole => RejectReason::InvalidAmount,
            UnitsError::OutOfRange => RejectReason::Overflow,
        })?;
        u64::try_from(units).ok().filter(|u| *u > 0).ok_or(RejectReason::InvalidAmount)
    }

    /// `deposit`: credits an account, or with account 0 the insurance fund.
    fn deposit(&mut self, op: &ArchivedDeposit, out: &mut EventBuf) -> Result<(), RejectReason> {
        let account_id = op.account.to_native();
        let index = match account_id {
            0 => None,
            id => Some(self.accounts.index(id).ok_or(RejectReason::UnknownAccount)?),
        };
        let asset = self.catalog.asset_index(&op.asset.to_native()).ok_or(RejectReason::UnknownAsset)?;
        let amount = self.amount_units(asset, &op.amount)?;
        let a = usize::from(asset);
        let new_supply =
            self.supply[a].checked_add(amount).filter(|s| *s <= MAX_SUPPLY_UNITS).ok_or(RejectReason::Overflow)?;
        let deposited = self.deposited[a].checked_add(u128::from(amount)).ok_or(RejectReason::Overflow)?;
        self.supply[a] = new_supply;
        self.deposited[a] = deposited;
        out.push(Event::Deposit { account: account_id, asset, amount });
        match index {
            Some(index) => self.adjust(index, asset, i128::from(amount), out),
            None => self.adjust_insurance(asset, i128::from(amount)),
        }
        Ok(())
    }

    /// `withdraw`: debits `available` if initial margin still holds afterwards. Never more
    /// than custody physically holds of the asset (`supply`): a balance backed by another
    /// account's debt cannot leave beyond that (`insufficient_liquidity`).
    fn withdraw(&mut self, account: u32, op: &ArchivedAssetAmount, out: &mut EventBuf) -> Result<(), RejectReason> {
        let (asset, amount) = self.asset_amount(op)?;
        let a = usize::from(asset);
        if self.accounts.holding(account, asset).available < amount {
            return Err(RejectReason::InsufficientBalance);
        }
        let new_supply = self.supply[a].checked_sub(amount).ok_or(RejectReason::InsufficientLiquidity)?;
        let after = self.margin_after(account, asset, -i128::from(amount));
        if after.initial > 0 && after.equity < after.initial {
            return Err(RejectReason::InsufficientMargin);
        }
        let withdrawn = self.withdrawn[a]
            .checked_add(u128::from(amount))
            .filter(|w| *w <= self.deposited[a])
            .unwrap_or_else(|| panic!("invariant: withdrawals of asset {asset} within deposits (supply {new_supply})"));
        self.accounts.holding_mut(account, asset).available -= amount;
        self.supply[a] = new_supply;
        self.withdrawn[a] = withdrawn;
        out.push(Event::Withdrawal { account: u64::from(account) + 1, asset, amount });
        Ok(())
    }

    /// `lend`, `redeem`, `borrow`, `repay` (SPEC 6a; the arithmetic is `lending`'s). A borrow
    /// needs cash in the pool, utilization within `max_utilization` and initial margin after
    /// it (the borrowed funds count as collateral, the debt at its borrow weight and
    /// requirement); a repay pays unfunded debt first, then the pool.
    fn pool_move(
        &mut self,
        account: u32,
        op: &ArchivedAssetAmount,
        kind: PoolMove,
        out: &mut EventBuf,
    ) -> Result<(), RejectReason> {
        let (asset, amount) = self.asset_amount(op)?;
        match kind {
            PoolMove::Lend => self.lend_units(account, asset, amount)?,
            PoolMove::Redeem => self.redeem_units(account, asset, amount)?,
            PoolMove::Borrow => {
                self.check_pool_borrow(asset, amount)?;
                // As strict as withdrawing what it borrows: the account's collateral must
                // carry the debt on its own.
                let after = self.margin_after(account, asset, -i128::from(amount));
                if after.equity < after.initial {
                    return Err(RejectReason::InsufficientMargin);
                }
                self.borrow_from_pool(account, asset, amount);
                self.sync_debtor(account);
            }
            PoolMove::Repay => {
                // Validated against the pool as accrued to now, without accruing it yet.
                let (pool, _, _) = self.accrued_pool(asset);
                let holding = *self.accounts.holding(account, asset);
                if pool.borrowed_of(holding.borrowed) + holding.unfunded < amount {
                    return Err(RejectReason::InvalidAmount);
                }
                if self.accounts.holding(account, asset).available < amount {
                    return Err(RejectReason::InsufficientBalance);
                }
                self.repay_debt(account, asset, amount);
                self.sync_debtor(account);
            }
        }
        out.push(Event::Pool { kind, account: u64::from(account) + 1, asset, amount });
        Ok(())
    }

    /// `mark`: oracle prices. Asset index prices are stored (every position holder is then
    /// re-evaluated); each perp is settled to its new mark, and its holders whose risk band
    /// the mark leaves are evaluated. All entries are checked before any is used.
    fn mark(&mut self, op: &ArchivedMark, out: &mut EventBuf) -> Result<(), RejectReason> {
        let count = usize::from(op.count);
        if count == 0 || count > MAX_MARK_PRICES {
            return Err(RejectReason::InvalidAmount);
        }
        let mut resolved = [(Listing::Asset(0), 0i64); MAX_MARK_PRICES];
        for (slot, entry) in resolved.iter_mut().zip(&op.prices[..count]) {
            let listing = self.catalog.lookup(&entry.symbol.to_native()).ok_or(RejectReason::UnknownMarket)?;
            let decimals = match listing {
                Listing::Asset(_) => crate::catalog::INDEX_PRICE_DECIMALS,
                Listing::Market(m) => {
                    let market = self.catalog.market(m);
                    if market.kind != MarketKind::Perp {
                        return Err(RejectReason::WrongMarketKind);
                    }
                    market.price_decimals
                }
            };
            let price = entry.price.to_units_checked(decimals).map_err(|e| match e {
                UnitsError::NotWhole => RejectReason::OffTick,
                UnitsError::OutOfRange => RejectReason::InvalidPrice,
            })?;
            if price <= 0 || price > crate::limits::MAX_PRICE_UNITS {
                return Err(RejectReason::InvalidPrice);
            }
            *slot = (listing, price);
        }
        let mut index_moved = false;
        for (listing, price) in &resolved[..count] {
            if let Listing::Asset(a) = listing {
                index_moved |= self.catalog.asset(*a).index_price != *price;
                self.catalog.asset_mut(*a).index_price = *price;
            }
        }
        for (listing, price) in &resolved[..count] {
            if let Listing::Market(m) = listing {
                self.settle_mark(*m, *price, out);
                self.touch_out_of_band(*m, *price);
            }
        }
        if index_moved {
            self.touch_all_holders();
            self.touch_all_debtors();
        }
        Ok(())
    }

    /// Touches the holders of market `m` whose risk band does not contain `mark`.
    fn touch_out_of_band(&mut self, m: u16, mark: i64) {
        for i in 0..self.positions[usize::from(m)].holders.len() {
            let positions = &self.positions[usize::from(m)];
            if mark < positions.band_low[i] || mark > positions.band_high[i] {
                let account = positions.holders[i];
                self.touch(account);
            }
        }
    }

    /// `funding`: a perp's positions pay or receive `size × mark × rate`.
    fn funding(&mut self, op: &ArchivedFunding, out: &mut EventBuf) -> Result<(), RejectReason> {
        let m = self.catalog.market_index(&op.market.to_native()).ok_or(RejectReason::UnknownMarket)?;
        if self.catalog.market(m).kind != MarketKind::Perp {
            return Err(RejectReason::WrongMarketKind);
        }
        if self.catalog.market(m).last_mark == 0 {
            return Err(RejectReason::NoPrice);
        }
        let rate = ratio_units(&op.rate).ok_or(RejectReason::InvalidAmount)?;
        if rate.abs() > RATIO_ONE {
            return Err(RejectReason::InvalidAmount);
        }
        self.apply_funding(m, rate, out);
        for i in 0..self.positions[usize::from(m)].holders.len() {
            let account = self.positions[usize::from(m)].holders[i];
            self.touch(account);
        }
        Ok(())
    }

    /// Moves `amount` of `asset` from an account's `available` into its `locked`.
    pub(crate) fn lock(&mut self, account: u32, asset: u16, amount: u64) {
        let balance = self.accounts.holding_mut(account, asset);
        debug_assert!(balance.available >= amount, "lock checked against available");
        balance.available -= amount;
        balance.locked += amount;
    }

    /// Moves `amount` of `asset` from an account's `locked` back to `available`.
    pub(crate) fn unlock(&mut self, account: u32, asset: u16, amount: u64) {
        let balance = self.accounts.holding_mut(account, asset);
        debug_assert!(balance.locked >= amount, "unlock within locked");
        balance.locked -= amount;
        balance.available += amount;
    }

    /// Links a resting order at the tail of its account's order list.
    pub(crate) fn link_account_order(&mut self, account: u32, slot: u32) {
        let last = self.accounts.get(account).last_order;
        {
            let order = self.orders.get_mut(slot);
            order.account_prev = last;
            order.account_next = NIL;
        }
        if last == NIL {
            self.accounts.get_mut(account).first_order = slot;
        } else {
            self.orders.get_mut(last).account_next = slot;
        }
        let record = self.accounts.get_mut(account);
        record.last_order = slot;
        record.order_count += 1;
    }

    /// Moves a resting order of `account` to the tail of its account's order list (a
    /// re-priced order counts as the account's newest): the list [`Engine::unlink_account_order`]
    /// then [`Engine::link_account_order`] leave, without touching the count, and nothing to
    /// do for the tail itself.
    pub(crate) fn move_account_order_to_back(&mut self, account: u32, slot: u32) {
        let (prev, next) = {
            let order = self.orders.get(slot);
            debug_assert_eq!(order.account, account, "the order is the account's");
            (order.account_prev, order.account_next)
        };
        if next == NIL {
            debug_assert_eq!(self.accounts.get(account).last_order, slot, "a list's last order is its tail");
            return;
        }
        if prev == NIL {
            self.accounts.get_mut(account).first_order = next;
        } else {
            self.orders.get_mut(prev).account_next = next;
        }
        self.orders.get_mut(next).account_prev = prev;
        let record = self.accounts.get_mut(account);
        let last = record.last_order;
        record.last_order = slot;
        self.orders.get_mut(last).account_next = slot;
        let order = self.orders.get_mut(slot);
        order.account_prev = last;
        order.account_next = NIL;
    }

    /// Unlinks a resting order from its account's order list.
    pub(crate) fn unlink_account_order(&mut self, slot: u32) {
        let order = *self.orders.get(slot);
        if order.account_prev == NIL {
            self.accounts.get_mut(order.account).first_order = order.account_next;
        } else {
            self.orders.get_mut(order.account_prev).account_next = order.account_next;
        }
        if order.account_next == NIL {
            self.accounts.get_mut(order.account).last_order = order.account_prev;
        } else {
            self.orders.get_mut(order.account_next).account_prev = order.account_prev;
        }
        self.accounts.get_mut(order.account).order_count -= 1;
    }

    // ----- read access ---------------------------------------------------------------------

    /// Last applied seq.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Stamp of the last applied tx.
    #[must_use]
    pub fn last_ts(&self) -> u64 {
        self.last_ts
    }

    /// The listings.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The limits the pools were sized with.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Number of accounts (ids run from 1 to this).
    #[must_use]
    pub fn account_count(&self) -> u64 {
        self.accounts.len() as u64
    }

    /// An account's balance in an asset.
    #[must_use]
    pub fn balance(&self, account: u64, asset: u16) -> Option<Balance> {
        let index = self.accounts.index(account)?;
        if usize::from(asset) >= self.catalog.assets().len() {
            return None;
        }
        let h = *self.accounts.holding(index, asset);
        Some(Balance {
            available: h.available,
            locked: h.locked,
            lent: self.lent_amount(index, asset),
            borrowed: self.debt_of(index, asset),
        })
    }

    /// Initial margin and fees an account's resting perp orders reserve in their settle asset
    /// (a requirement in its margin; nothing leaves `available`).
    #[must_use]
    pub fn reserved(&self, account: u64, asset: u16) -> u64 {
        match self.accounts.index(account) {
            Some(index) if usize::from(asset) < self.catalog.assets().len() => {
                self.accounts.holding(index, asset).reserved
            }
            _ => 0,
        }
    }

    /// An account's public key.
    #[must_use]
    pub fn account_key(&self, account: u64) -> Option<[u8; 32]> {
        Some(self.accounts.get(self.accounts.index(account)?).pubkey)
    }

    /// The fee account's balance in an asset.
    #[must_use]
    pub fn fees(&self, asset: u16) -> u64 {
        self.fees.get(usize::from(asset)).copied().unwrap_or(0)
    }

    /// The insurance fund's balance in an asset.
    #[must_use]
    pub fn insurance(&self, asset: u16) -> i64 {
        self.insurance.get(usize::from(asset)).copied().unwrap_or(0)
    }

    /// Σ deposits − Σ withdrawals of an asset.
    #[must_use]
    pub fn supply(&self, asset: u16) -> u64 {
        self.supply.get(usize::from(asset)).copied().unwrap_or(0)
    }

    /// The lending pool of an asset: (Σ lent, Σ borrowed), the pool's totals in units (lent
    /// rounded down, borrowed rounded up; unfunded debts are not the pool's).
    #[must_use]
    pub fn pool(&self, asset: u16) -> (u64, u64) {
        self.pools.get(usize::from(asset)).map_or((0, 0), |p| (p.lent(), p.borrowed()))
    }

    /// The lending pool of an asset: indices, principals, unfunded debts, last accrual.
    #[must_use]
    pub fn pool_state(&self, asset: u16) -> Option<crate::lending::Pool> {
        self.pools.get(usize::from(asset)).copied()
    }

    /// Bad debt of an asset that no one paid. Always 0: no path pays out money that no one
    /// deposited (SPEC 6, 6a; `lending`, "Bankruptcy"), and `check_invariants` asserts it.
    /// Kept (state dump key `uncovered`, snapshot, state hash) so those forms stay stable.
    #[must_use]
    pub fn uncovered(&self, asset: u16) -> u64 {
        self.uncovered.get(usize::from(asset)).copied().unwrap_or(0)
    }

    /// The fee account's whole balance of an asset: [`Engine::fees`] plus the pool's rounding
    /// dust (pool lent − Σ accounts' lent, Σ accounts' debts − pool borrowed − unfunded), less
    /// the uncovered loss, so that SPEC 7's sum over accounts is exact. O(accounts): for
    /// reports and checks.
    #[must_use]
    pub fn fee_account(&self, asset: u16) -> i128 {
        let a = usize::from(asset);
        let Some(pool) = self.pools.get(a) else { return 0 };
        let (mut lent, mut debt) = (0i128, 0i128);
        for index in 0..u32::try_from(self.accounts.len()).unwrap_or(u32::MAX) {
            lent += i128::from(self.lent_amount(index, asset));
            debt += i128::from(self.debt_of(index, asset));
        }
        i128::from(self.fees[a]) + i128::from(pool.lent()) - i128::from(pool.fund_lent()) - lent + debt
            - i128::from(pool.borrowed())
            - i128::from(pool.unfunded)
            - i128::from(self.uncovered[a])
    }

    /// The next order id `place` will assign.
    #[must_use]
    pub fn next_order_id(&self) -> u64 {
        self.next_order_id
    }

    /// The index of the market named `symbol` (what [`Engine::depth`] and events use).
    #[must_use]
    pub fn market_id(&self, symbol: &str) -> Option<u16> {
        self.catalog.market_index(&crate::tx::Symbol::new(symbol)?)
    }

    /// The index of the asset named `symbol` (what [`Engine::balance`] and events use).
    #[must_use]
    pub fn asset_id(&self, symbol: &str) -> Option<u16> {
        self.catalog.asset_index(&crate::tx::Symbol::new(symbol)?)
    }

    /// An account's balance in the asset named `symbol`.
    #[must_use]
    pub fn balance_of(&self, account: u64, symbol: &str) -> Option<Balance> {
        self.balance(account, self.asset_id(symbol)?)
    }

    /// An account's margin (equity and requirements in value units); `None` for no such
    /// account.
    #[must_use]
    pub fn margin_of(&self, account: u64) -> Option<crate::risk::Margin> {
        Some(self.margin(self.accounts.index(account)?))
    }

    /// The trade id the next fill will get.
    #[must_use]
    pub fn next_trade_id(&self) -> u64 {
        self.next_trade_id
    }

    /// Number of resting orders.
    #[must_use]
    pub fn resting_orders(&self) -> usize {
        self.orders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::Order;

    /// The account's list, first to last, as order ids; checked against its count and
    /// against the back links.
    fn list(engine: &Engine, account: u32) -> Vec<u64> {
        let record = engine.accounts.get(account);
        let (mut forward, mut slot) = (Vec::new(), record.first_order);
        while slot != NIL {
            forward.push(engine.orders.get(slot).id);
            slot = engine.orders.get(slot).account_next;
        }
        let (mut backward, mut slot) = (Vec::new(), record.last_order);
        while slot != NIL {
            backward.push(engine.orders.get(slot).id);
            slot = engine.orders.get(slot).account_prev;
        }
        backward.reverse();
        assert_eq!(forward, backward, "links agree both ways");
        assert_eq!(forward.len(), record.order_count as usize);
        forward
    }

    /// Moving an order to the back of its account's list leaves exactly the list that
    /// unlinking and relinking it leaves: from the front, the middle, the back, and alone.
    #[test]
    fn moving_an_order_to_the_back_equals_unlinking_and_relinking_it() {
        for count in 1..=4u64 {
            for moved in 0..count {
                let mut engines = [(); 2].map(|()| {
                    let mut engine = Engine::new(Genesis::dev(), Limits::small()).unwrap_or_else(|e| panic!("{e}"));
                    engine.accounts.create([7; 32], 0);
                    let slots: Vec<u32> = (1..=count)
                        .map(|id| {
                            let slot = engine.orders.insert(Order { id, ..Order::EMPTY });
                            engine.link_account_order(0, slot);
                            slot
                        })
                        .collect();
                    (engine, slots)
                });
                let slot = engines[0].1[moved as usize];
                engines[0].0.move_account_order_to_back(0, slot);
                let relinked = &mut engines[1].0;
                relinked.unlink_account_order(slot);
                relinked.link_account_order(0, slot);
                let expected: Vec<u64> = (1..=count).filter(|id| *id != moved + 1).chain([moved + 1]).collect();
                assert_eq!(list(&engines[0].0, 0), expected, "{count} orders, moved {}", moved + 1);
                assert_eq!(list(&engines[1].0, 0), expected);
            }
        }
    }
}
