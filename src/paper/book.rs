//! The in-memory state of the simulated venue (orders, positions, last prices) and the rules that move
//! it: fills, OCO, delayed cancels, flatten. Everything here is synchronous and clock-free: callers pass
//! `now` in, so the rules are plain functions of state and time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::clock::{Clock, SystemClock};
use crate::contracts::parse_contract_name;
use crate::domain::{Action, OcoId, OrderId};
use crate::instruments::{on_tick_grid, round_to_tick, Instruments};

use super::error::PaperError;
use super::order::{Order, OrderState, OrderType, PlaceOrder};
use super::position::Position;

/// One account's orders and positions.
#[derive(Debug, Default)]
pub(super) struct AccountBook {
    /// Working and CancelPending orders, by sequence.
    pub(super) live: BTreeMap<u64, Order>,
    /// Filled, Cancelled and Rejected orders, by sequence; bounded by `max_terminal_orders`.
    pub(super) done: BTreeMap<u64, Order>,
    /// `done` in the order the orders finished, (finished at ms, sequence): pruning drops the
    /// longest-finished first, so a stop that rested for days and just filled is not dropped at once.
    pub(super) finished: BTreeSet<(u64, u64)>,
    pub(super) index: HashMap<OrderId, u64>,
    pub(super) positions: BTreeMap<String, Position>,
}

impl AccountBook {
    pub(super) fn get(&self, id: &OrderId) -> Option<&Order> {
        let seq = self.index.get(id)?;
        self.live.get(seq).or_else(|| self.done.get(seq))
    }
}

/// What a mutation changed, so the store writes exactly that (one log entry per operation).
#[derive(Debug, Default)]
pub(super) struct Touched {
    pub(super) orders: BTreeSet<(String, OrderId)>,
    pub(super) positions: BTreeSet<(String, String)>,
    pub(super) quotes: BTreeSet<String>,
}

pub(super) struct Book {
    pub(super) instruments: Arc<Instruments>,
    /// The time continuous symbols (`ES1!`) resolve at: the relay's contracts clock.
    pub(super) contracts_clock: Arc<dyn Clock>,
    pub(super) cancel_latency_ms: u64,
    pub(super) max_terminal_orders: usize,
    pub(super) accounts: BTreeMap<String, AccountBook>,
    pub(super) quotes: BTreeMap<String, f64>,
    pub(super) next_sequence: u64,
    pub(super) touched: Touched,
    /// Requested cancels by the time they are confirmed: (due ms, account, sequence). An entry whose
    /// order filled meanwhile is dropped when due.
    cancels_due: BTreeSet<(u64, String, u64)>,
}

/// What a new last price did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuoteUpdate {
    pub instrument: String,
    pub last_price: f64,
    /// Orders the price reached, in the order they filled.
    pub filled_order_ids: Vec<OrderId>,
    /// OCO siblings cancelled by those fills.
    pub cancelled_order_ids: Vec<OrderId>,
}

/// The last price of one instrument.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    pub instrument: String,
    pub last_price: f64,
}

/// What a flatten did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flattened {
    pub cancelled_order_ids: Vec<OrderId>,
    /// The market orders that closed positions, already filled.
    pub closing_orders: Vec<Order>,
}

impl Book {
    pub(super) fn new(
        instruments: Arc<Instruments>,
        accounts: &[String],
        cancel_latency_ms: u64,
        max_terminal_orders: usize,
    ) -> Book {
        Book {
            instruments,
            contracts_clock: Arc::new(SystemClock),
            cancel_latency_ms,
            max_terminal_orders,
            accounts: accounts
                .iter()
                .map(|a| (a.clone(), AccountBook::default()))
                .collect(),
            quotes: BTreeMap::new(),
            next_sequence: 1,
            touched: Touched::default(),
            cancels_due: BTreeSet::new(),
        }
    }

    pub(super) fn account(&self, name: &str) -> Result<&AccountBook, PaperError> {
        self.accounts
            .get(name)
            .ok_or_else(|| self.unknown_account(name))
    }

    fn unknown_account(&self, name: &str) -> PaperError {
        PaperError::UnknownAccount {
            account: name.to_string(),
            configured: self.accounts.keys().cloned().collect::<Vec<_>>().join(", "),
        }
    }

    /// Resolves an instrument name or TradingView symbol to the instrument name (a continuous symbol to the
    /// front month now; a contract of any month to itself, so positions left in an old month stay reachable).
    pub(super) fn instrument(&self, raw: &str) -> Result<String, PaperError> {
        self.instruments
            .resolve_lenient(raw, self.contracts_at())
            .ok_or_else(|| PaperError::UnknownInstrument(raw.to_string()))
    }

    /// Now, for contract months.
    pub(super) fn contracts_at(&self) -> Timestamp {
        self.contracts_clock.now()
    }

    fn point_value(&self, instrument: &str) -> f64 {
        self.instruments
            .get(instrument)
            .map_or(1.0, |s| s.point_value)
    }

    /// The last price. Quotes are per root: a month never quoted starts at the last price of the latest
    /// earlier month that was (`ES 03-27` at `ES 12-26`'s), so a roll does not leave the new month unpriced.
    pub(super) fn last(&self, instrument: &str) -> Option<f64> {
        if let Some(&p) = self.quotes.get(instrument) {
            return Some(p);
        }
        let (root, month) = parse_contract_name(instrument)?;
        self.instruments.root_of(instrument)?;
        let months = || {
            self.quotes
                .iter()
                .filter_map(move |(k, &p)| match parse_contract_name(k) {
                    Some((r, m)) if r == root => Some((m, p)),
                    _ => None,
                })
        };
        // No earlier month quoted (a starting price went to a later front month): the nearest later one.
        months()
            .filter(|(m, _)| *m < month)
            .max_by_key(|(m, _)| *m)
            .or_else(|| months().min_by_key(|(m, _)| *m))
            .map(|(_, p)| p)
    }

    pub(super) fn position_quantity(&self, account: &str, instrument: &str) -> i64 {
        self.accounts
            .get(account)
            .and_then(|a| a.positions.get(instrument))
            .map_or(0, |p| p.quantity)
    }

    /// Work that is due regardless of what the caller asked for: confirm cancels whose latency has
    /// passed, then drop the oldest finished orders beyond the cap. Run before and after every operation,
    /// which is what makes a background task unnecessary.
    pub(super) fn settle(&mut self, now: u64) {
        self.confirm_due_cancels(now);
        let cap = self.max_terminal_orders;
        for (name, acct) in &mut self.accounts {
            while acct.done.len() > cap {
                let Some((_, seq)) = acct.finished.pop_first() else {
                    break;
                };
                if let Some(old) = acct.done.remove(&seq) {
                    acct.index.remove(&old.order_id);
                    self.touched.orders.insert((name.clone(), old.order_id));
                }
            }
        }
    }

    /// CancelPending orders whose cancel latency has passed become Cancelled.
    fn confirm_due_cancels(&mut self, now: u64) {
        while self
            .cancels_due
            .first()
            .is_some_and(|(due, _, _)| *due <= now)
        {
            let Some((_, account, seq)) = self.cancels_due.pop_first() else {
                break;
            };
            let pending = self
                .accounts
                .get(&account)
                .and_then(|a| a.live.get(&seq))
                .is_some_and(|o| o.state == OrderState::CancelPending);
            if pending {
                self.finish(&account, seq, OrderState::Cancelled, None, now);
            }
        }
    }

    /// Queues the confirmation of a requested cancel.
    fn cancel_due(&mut self, account: &str, seq: u64, requested_at: u64) {
        let due = requested_at.saturating_add(self.cancel_latency_ms);
        self.cancels_due.insert((due, account.to_string(), seq));
    }

    /// Moves a live order to a terminal state.
    fn finish(&mut self, account: &str, seq: u64, state: OrderState, fill: Option<f64>, now: u64) {
        let Some(acct) = self.accounts.get_mut(account) else {
            return;
        };
        let Some(mut order) = acct.live.remove(&seq) else {
            return;
        };
        order.state = state;
        order.updated_at = Timestamp(now);
        if let Some(price) = fill {
            order.fill_price = Some(price);
            order.filled_at = Some(Timestamp(now));
        }
        self.touched
            .orders
            .insert((account.to_string(), order.order_id.clone()));
        acct.finished.insert((now, seq));
        acct.done.insert(seq, order);
    }

    /// Working → CancelPending. Returns false if the order was not Working.
    fn request_cancel(&mut self, account: &str, seq: u64, now: u64) -> bool {
        let Some(order) = self
            .accounts
            .get_mut(account)
            .and_then(|a| a.live.get_mut(&seq))
        else {
            return false;
        };
        if order.state != OrderState::Working {
            return false;
        }
        order.state = OrderState::CancelPending;
        order.cancel_requested_at = Some(Timestamp(now));
        order.updated_at = Timestamp(now);
        self.touched
            .orders
            .insert((account.to_string(), order.order_id.clone()));
        self.cancel_due(account, seq, now);
        true
    }

    /// Fills a live order at `price`, updates the position and cancels the order's OCO siblings at once.
    /// Returns the ids of the siblings it cancelled.
    fn fill(&mut self, account: &str, seq: u64, price: f64, now: u64) -> Vec<OrderId> {
        let Some(order) = self.accounts.get(account).and_then(|a| a.live.get(&seq)) else {
            return Vec::new();
        };
        let (instrument, action, quantity, oco) = (
            order.instrument.clone(),
            order.action,
            order.quantity,
            order.oco_id.clone(),
        );
        self.finish(account, seq, OrderState::Filled, Some(price), now);
        let point_value = self.point_value(&instrument);
        if let Some(acct) = self.accounts.get_mut(account) {
            acct.positions
                .entry(instrument.clone())
                .or_insert_with(|| Position::flat(account, &instrument))
                .apply_fill(action, quantity, price, point_value);
            self.touched
                .positions
                .insert((account.to_string(), instrument));
        }
        match oco {
            Some(oco) => self.cancel_oco_group(account, &oco, now),
            None => Vec::new(),
        }
    }

    /// Cancels every live order of the account in the OCO group, immediately: the venue does this itself
    /// when a sibling fills, so there is no cancel latency.
    fn cancel_oco_group(&mut self, account: &str, oco: &OcoId, now: u64) -> Vec<OrderId> {
        let siblings: Vec<(u64, OrderId)> = self
            .accounts
            .get(account)
            .map(|a| {
                a.live
                    .values()
                    .filter(|o| o.oco_id.as_ref() == Some(oco))
                    .map(|o| (o.sequence, o.order_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (seq, _) in &siblings {
            self.finish(account, *seq, OrderState::Cancelled, None, now);
        }
        siblings.into_iter().map(|(_, id)| id).collect()
    }

    /// Sets the last price and fills every live order (of every account) that it reaches, oldest first.
    pub(super) fn set_quote(
        &mut self,
        raw_instrument: &str,
        price: f64,
        now: u64,
    ) -> Result<QuoteUpdate, PaperError> {
        let instrument = self.instrument(raw_instrument)?;
        let tick = self
            .instruments
            .get(&instrument)
            .map_or(0.0, |s| s.tick_size);
        if !(price.is_finite() && price > 0.0 && price < 1e12) {
            return Err(PaperError::invalid(
                "price",
                "a finite positive price",
                price,
            ));
        }
        if !on_tick_grid(price, tick) {
            return Err(PaperError::InvalidField {
                field: "price",
                expected: "a price on the instrument's tick grid",
                got: format!("{price} (tick size of {instrument} is {tick})"),
            });
        }
        let price = round_to_tick(price, tick);
        self.quotes.insert(instrument.clone(), price);
        self.touched.quotes.insert(instrument.clone());

        let mut candidates: Vec<(u64, String)> = self
            .accounts
            .iter()
            .flat_map(|(name, a)| {
                a.live
                    .values()
                    .filter(|o| o.instrument == instrument)
                    .map(move |o| (o.sequence, name.clone()))
            })
            .collect();
        candidates.sort();
        let mut update = QuoteUpdate {
            instrument: instrument.clone(),
            last_price: price,
            filled_order_ids: Vec::new(),
            cancelled_order_ids: Vec::new(),
        };
        for (seq, account) in candidates {
            // An earlier fill in this loop may have cancelled this order through its OCO group.
            let Some(order) = self.accounts.get(&account).and_then(|a| a.live.get(&seq)) else {
                continue;
            };
            if let Some(fill) = order.fill_price_at(price) {
                update.filled_order_ids.push(order.order_id.clone());
                let cancelled = self.fill(&account, seq, fill, now);
                update.cancelled_order_ids.extend(cancelled);
            }
        }
        Ok(update)
    }

    /// Places one order: market orders and marketable limits fill at once at the last price, a stop
    /// already through the market is refused, anything else rests as Working.
    pub(super) fn place(
        &mut self,
        account: &str,
        request: &PlaceOrder,
        now: u64,
    ) -> Result<Order, PaperError> {
        self.account(account)?;
        let req = request.validated(&self.instruments, self.contracts_at())?;
        if let Some(id) = &req.order_id {
            if self.accounts.values().any(|a| a.index.contains_key(id)) {
                return Err(PaperError::DuplicateOrderId(id.clone()));
            }
        }
        let last = self.last(&req.instrument);
        match (req.order_type, last) {
            (OrderType::Market, None) => return Err(PaperError::NoQuote(req.instrument.clone())),
            (OrderType::StopMarket, Some(last)) => {
                let stop = req.stop_price.unwrap_or(last);
                let through = match req.action {
                    Action::Sell => stop >= last,
                    Action::Buy => stop <= last,
                };
                if through {
                    return Err(PaperError::stop_through(
                        "stopPrice",
                        req.action,
                        stop,
                        last,
                        &req.instrument,
                    ));
                }
            }
            _ => {}
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let order = Order {
            order_id: req.order_id.clone().unwrap_or_else(OrderId::generate),
            account: account.to_string(),
            instrument: req.instrument.clone(),
            action: req.action,
            order_type: req.order_type,
            quantity: req.quantity,
            limit_price: req.limit_price,
            stop_price: req.stop_price,
            oco_id: req.oco_id.clone(),
            state: OrderState::Working,
            fill_price: None,
            created_at: Timestamp(now),
            updated_at: Timestamp(now),
            cancel_requested_at: None,
            filled_at: None,
            sequence,
        };
        let immediate = last.and_then(|l| order.fill_price_at(l).map(|_| l));
        let id = order.order_id.clone();
        self.insert(order);
        if let Some(price) = immediate {
            // A marketable limit fills at the last price, not its limit: the venue gives the better price.
            self.fill(account, sequence, price, now);
        }
        Ok(self
            .account(account)?
            .get(&id)
            .cloned()
            .expect("just inserted"))
    }

    /// Adds an order (new, or loaded from storage) to its account.
    pub(super) fn insert(&mut self, order: Order) {
        let Some(acct) = self.accounts.get_mut(&order.account) else {
            return;
        };
        self.next_sequence = self.next_sequence.max(order.sequence + 1);
        self.touched
            .orders
            .insert((order.account.clone(), order.order_id.clone()));
        acct.index.insert(order.order_id.clone(), order.sequence);
        if order.state.is_terminal() {
            acct.finished
                .insert((order.updated_at.as_ms(), order.sequence));
            acct.done.insert(order.sequence, order);
        } else {
            if order.state == OrderState::CancelPending {
                let requested = order.cancel_requested_at.unwrap_or(order.updated_at);
                let (account, seq) = (order.account.clone(), order.sequence);
                acct.live.insert(seq, order);
                self.cancel_due(&account, seq, requested.as_ms());
            } else {
                acct.live.insert(order.sequence, order);
            }
        }
    }

    /// Requests the cancel of one order: Working → CancelPending (confirmed after the cancel latency).
    /// Cancelling a CancelPending order again is harmless and returns it unchanged.
    pub(super) fn cancel(
        &mut self,
        account: &str,
        order_id: &OrderId,
        now: u64,
    ) -> Result<Order, PaperError> {
        let order =
            self.account(account)?
                .get(order_id)
                .ok_or_else(|| PaperError::UnknownOrder {
                    account: account.to_string(),
                    order_id: order_id.clone(),
                })?;
        if order.state.is_terminal() {
            return Err(PaperError::NotCancellable {
                order_id: order_id.clone(),
                state: order.state,
            });
        }
        let seq = order.sequence;
        self.request_cancel(account, seq, now);
        // With a zero latency the cancel is confirmed at once, and the answer should say so.
        self.confirm_due_cancels(now);
        let order = self.account(account)?.get(order_id).cloned();
        Ok(order.expect("orders are only pruned by settle(), which has not run since the lookup"))
    }

    /// Cancel-requests every Working order of the account on the instrument; returns their ids.
    pub(super) fn cancel_working(
        &mut self,
        account: &str,
        instrument: &str,
        now: u64,
    ) -> Vec<OrderId> {
        let working: Vec<(u64, OrderId)> = self
            .accounts
            .get(account)
            .map(|a| {
                a.live
                    .values()
                    // State first: most live orders under load are CancelPending, and the enum is cheaper.
                    .filter(|o| o.state == OrderState::Working && o.instrument == instrument)
                    .map(|o| (o.sequence, o.order_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (seq, _) in &working {
            self.request_cancel(account, *seq, now);
        }
        working.into_iter().map(|(_, id)| id).collect()
    }

    /// Cancels the account's live orders on the instrument(s) and closes the positions at market.
    /// Unlike a plain cancel, these cancels are confirmed at once: NinjaTrader's Flatten waits for the
    /// cancels before it sends the closing order, so no stale stop can fill after the close.
    pub(super) fn flatten(
        &mut self,
        account: &str,
        instrument: Option<&str>,
        now: u64,
    ) -> Result<Flattened, PaperError> {
        let acct = self.account(account)?;
        let instruments: Vec<String> = match instrument {
            Some(raw) => vec![self.instrument(raw)?],
            None => {
                let mut set: BTreeSet<String> =
                    acct.live.values().map(|o| o.instrument.clone()).collect();
                set.extend(
                    acct.positions
                        .values()
                        .filter(|p| p.quantity != 0)
                        .map(|p| p.instrument.clone()),
                );
                set.into_iter().collect()
            }
        };
        // Check every quote first so a missing one fails before anything is cancelled.
        for i in &instruments {
            if self.position_quantity(account, i) != 0 && self.last(i).is_none() {
                return Err(PaperError::NoQuote(i.clone()));
            }
        }
        let mut out = Flattened {
            cancelled_order_ids: Vec::new(),
            closing_orders: Vec::new(),
        };
        for i in &instruments {
            let live: Vec<(u64, OrderId)> = self
                .account(account)?
                .live
                .values()
                .filter(|o| &o.instrument == i)
                .map(|o| (o.sequence, o.order_id.clone()))
                .collect();
            for (seq, id) in live {
                self.finish(account, seq, OrderState::Cancelled, None, now);
                out.cancelled_order_ids.push(id);
            }
            let q = self.position_quantity(account, i);
            if q != 0 {
                let close = PlaceOrder {
                    instrument: i.clone(),
                    action: if q > 0 { Action::Sell } else { Action::Buy },
                    quantity: u32::try_from(q.unsigned_abs()).unwrap_or(u32::MAX),
                    order_type: OrderType::Market,
                    limit_price: None,
                    stop_price: None,
                    oco_id: None,
                    order_id: None,
                };
                out.closing_orders.push(self.place(account, &close, now)?);
            }
        }
        Ok(out)
    }
}
