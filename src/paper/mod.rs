//! The embedded paper broker: a simulated NinjaTrader-style account that the relay can trade against
//! without a live connection, behind the same [`Executor`] trait as the CrossTrade client.
//!
//! Map of the module:
//! - `book`: in-memory orders, positions and last prices, and the venue rules (fills, OCO, delayed
//!   cancels, flatten);
//! - `bracket`: CancelAndBracket as two synchronous phases around the cancel window;
//! - `order`, `position`: the records and the `PlaceOrder` request;
//! - `store`: one log entry per operation over a periodic snapshot, reloaded on open;
//! - `config`, `error`: `[paper]` config section, refusals; the time source is [`crate::clock`].
//!
//! All state sits behind one `std::sync::Mutex`. Operations are short and synchronous; the only wait,
//! the CancelAndBracket cancel delay, happens between two lock scopes, never inside one.

mod book;
mod bracket;
mod config;
mod error;
mod order;
mod position;
mod store;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::clock::Clock;
use crate::command::{CloseRequest, OrderRequest};
use crate::domain::{BracketOutcome, BracketRequest, OrderId};
use crate::executor::{orders_outcome, BrokerOrder, BrokerPosition, ExecError, Executor};
use crate::instruments::Instruments;

pub use book::{Flattened, Quote, QuoteUpdate};
pub use bracket::BracketTicket;
pub use config::PaperConfig;
pub use error::PaperError;
pub use order::{Order, OrderState, OrderType, PlaceOrder};
pub use position::{MarketPosition, Position};

use book::Book;
use store::Store;

/// The book and the log that persists it, under one lock so entries are written in the order the
/// operations happened.
struct Venue {
    book: Book,
    store: Store,
}

pub struct PaperBroker {
    /// The tree is in the relay's journal database (see [`PaperBroker::open_beside_journal`]).
    in_journal_db: bool,
    config: PaperConfig,
    instruments: Arc<Instruments>,
    clock: Arc<dyn Clock>,
    venue: Mutex<Venue>,
}

impl std::fmt::Debug for PaperBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaperBroker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PaperBroker {
    /// Opens the broker on `tree`, loading what an earlier run persisted there. Initial quotes from the
    /// config apply only to instruments that have never been quoted.
    pub fn open(
        tree: sled::Tree,
        config: PaperConfig,
        instruments: Arc<Instruments>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<PaperBroker>, PaperError> {
        Self::open_tree(tree, false, config, instruments, clock)
    }

    fn open_tree(
        tree: sled::Tree,
        in_journal_db: bool,
        config: PaperConfig,
        instruments: Arc<Instruments>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<PaperBroker>, PaperError> {
        let initial_quotes = config.validate(&instruments)?;
        let mut book = Book::new(
            instruments.clone(),
            &config.accounts,
            config.cancel_latency_ms,
            config.max_terminal_orders,
        );
        let store = Store::open(tree, &mut book, config.snapshot_every)?;
        let broker = PaperBroker {
            in_journal_db,
            config,
            instruments,
            clock,
            venue: Mutex::new(Venue { book, store }),
        };
        broker.with_book(|book, now| {
            for (instrument, price) in initial_quotes {
                // A root's starting price goes to its front month (later months start from it).
                let instrument = book.instrument(&instrument)?;
                if book.last(&instrument).is_none() {
                    book.set_quote(&instrument, price, now)?;
                }
            }
            Ok(())
        })?;
        Ok(Arc::new(broker))
    }

    /// Opens the broker on the `paper` tree of the journal's own database, so its writes share the journal's
    /// log (see [`Executor::shares_journal_log`]).
    pub fn open_beside_journal(
        journal: &crate::journal::Journal,
        config: PaperConfig,
        instruments: Arc<Instruments>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<PaperBroker>, PaperError> {
        let tree = journal.db().open_tree("paper")?;
        Self::open_tree(tree, true, config, instruments, clock)
    }

    /// Runs one operation: settle what is due, apply `op`, settle again, persist what changed.
    fn with_book<T>(
        &self,
        op: impl FnOnce(&mut Book, u64) -> Result<T, PaperError>,
    ) -> Result<T, PaperError> {
        // A panic while holding the lock leaves at worst one half-applied simulated operation; keep
        // serving rather than failing every later call.
        let mut guard = self.venue.lock().unwrap_or_else(PoisonError::into_inner);
        let Venue { book, store } = &mut *guard;
        let now = self.clock.now_ms();
        book.settle(now);
        let result = op(book, now);
        book.settle(now);
        store.commit(book)?;
        result
    }

    pub fn config(&self) -> &PaperConfig {
        &self.config
    }

    /// The clock continuous symbols resolve by (the relay's contracts clock).
    pub fn set_contracts_clock(&self, clock: Arc<dyn Clock>) {
        self.venue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .book
            .contracts_clock = clock;
    }

    pub fn instruments(&self) -> &Instruments {
        &self.instruments
    }

    pub fn accounts(&self) -> &[String] {
        &self.config.accounts
    }

    pub fn has_account(&self, name: &str) -> bool {
        self.config.accounts.iter().any(|a| a == name)
    }

    /// The account's orders, live and recent finished ones, in placement order.
    pub fn orders(&self, account: &str) -> Result<Vec<Order>, PaperError> {
        self.with_book(|book, _| {
            let acct = book.account(account)?;
            let mut orders: Vec<Order> = acct
                .live
                .values()
                .chain(acct.done.values())
                .cloned()
                .collect();
            orders.sort_by_key(|o| o.sequence);
            Ok(orders)
        })
    }

    /// The account's positions, including flat ones that carry realized P&L, by instrument name.
    pub fn positions(&self, account: &str) -> Result<Vec<Position>, PaperError> {
        self.with_book(|book, _| Ok(book.account(account)?.positions.values().cloned().collect()))
    }

    /// The account's position on one instrument (flat if it never traded it).
    pub fn position(&self, account: &str, instrument: &str) -> Result<Position, PaperError> {
        self.with_book(|book, _| {
            let name = book.instrument(instrument)?;
            let acct = book.account(account)?;
            Ok(acct
                .positions
                .get(&name)
                .cloned()
                .unwrap_or_else(|| Position::flat(account, &name)))
        })
    }

    pub fn place_order(&self, account: &str, order: &PlaceOrder) -> Result<Order, PaperError> {
        self.with_book(|book, now| book.place(account, order, now))
    }

    /// Requests a cancel; the order stays CancelPending (and fillable) for the cancel latency.
    pub fn cancel_order(&self, account: &str, order_id: &OrderId) -> Result<Order, PaperError> {
        self.with_book(|book, now| book.cancel(account, order_id, now))
    }

    /// Cancels the account's orders and closes its positions at market, on one instrument or all.
    pub fn flatten(
        &self,
        account: &str,
        instrument: Option<&str>,
    ) -> Result<Flattened, PaperError> {
        self.with_book(|book, now| book.flatten(account, instrument, now))
    }

    pub fn quote(&self, instrument: &str) -> Result<Quote, PaperError> {
        self.with_book(|book, _| {
            let name = book.instrument(instrument)?;
            let last_price = book
                .last(&name)
                .ok_or_else(|| PaperError::NoQuote(name.clone()))?;
            Ok(Quote {
                instrument: name,
                last_price,
            })
        })
    }

    /// Sets the last price and fills the resting orders it reaches.
    pub fn set_quote(&self, instrument: &str, price: f64) -> Result<QuoteUpdate, PaperError> {
        self.with_book(|book, now| book.set_quote(instrument, price, now))
    }

    /// CancelAndBracket phase 1: validate, refuse a wrong-side or already-triggered bracket with nothing
    /// cancelled, then request the cancel of every Working order on the account's instrument.
    pub fn bracket_begin(&self, req: &BracketRequest) -> Result<BracketTicket, PaperError> {
        self.with_book(|book, now| book.bracket_begin(req, now))
    }

    /// CancelAndBracket phase 3: re-read the position after the cancel window; abort if it went flat or
    /// reversed, clamp to it, and place the take-profit/stop-loss OCO pair.
    pub fn bracket_finish(&self, ticket: BracketTicket) -> Result<BracketOutcome, PaperError> {
        self.with_book(|book, now| book.bracket_finish(ticket, now))
    }

    /// The whole CancelAndBracket: cancel, wait the cancel delay (per request or from the config), place.
    pub async fn cancel_and_bracket(
        &self,
        req: &BracketRequest,
    ) -> Result<BracketOutcome, PaperError> {
        let delay = req.cancel_delay_ms.unwrap_or(self.config.cancel_delay_ms);
        if delay == 0 {
            // No window between the phases: one operation, one log entry written.
            return self.with_book(|book, now| {
                let ticket = book.bracket_begin(req, now)?;
                book.bracket_finish(ticket, now)
            });
        }
        let ticket = self.bracket_begin(req)?;
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        self.bracket_finish(ticket)
    }
}

#[async_trait]
impl Executor for PaperBroker {
    fn name(&self) -> &str {
        "paper"
    }

    /// True when opened with [`PaperBroker::open_beside_journal`]: one sled log for both.
    fn shares_journal_log(&self) -> bool {
        self.in_journal_db
    }

    async fn cancel_and_bracket(&self, req: &BracketRequest) -> Result<BracketOutcome, ExecError> {
        PaperBroker::cancel_and_bracket(self, req)
            .await
            .map_err(|e| ExecError::Rejected(e.to_string()))
    }

    async fn place_order(&self, req: &OrderRequest) -> Result<BracketOutcome, ExecError> {
        let order = PaperBroker::place_order(self, &req.account, &req.to_paper())
            .map_err(|e| ExecError::Rejected(e.to_string()))?;
        Ok(orders_outcome(
            Vec::new(),
            vec![order.order_id],
            req.quantity,
        ))
    }

    async fn close_position(&self, req: &CloseRequest) -> Result<BracketOutcome, ExecError> {
        let done = self
            .flatten(&req.account, Some(&req.instrument))
            .map_err(|e| ExecError::Rejected(e.to_string()))?;
        let closed: u32 = done.closing_orders.iter().map(|o| o.quantity).sum();
        Ok(orders_outcome(
            done.cancelled_order_ids,
            done.closing_orders
                .into_iter()
                .map(|o| o.order_id)
                .collect(),
            closed,
        ))
    }

    /// Moves the paper quote to the alert's price (with `paper.follow_alert_prices`): resting orders it
    /// crosses fill, as they would in the market the alert saw.
    fn observe_price(&self, instrument: &str, price: f64) {
        if !self.config.follow_alert_prices {
            return;
        }
        if let Err(e) = self.set_quote(instrument, price) {
            tracing::warn!(%instrument, price, error = %e, "paper: cannot follow the alert's price");
        }
    }

    /// The book's orders, live and recently finished, as a broker would list them.
    async fn orders(&self, account: &str) -> Result<Vec<BrokerOrder>, ExecError> {
        let orders =
            PaperBroker::orders(self, account).map_err(|e| ExecError::Rejected(e.to_string()))?;
        Ok(orders
            .into_iter()
            .map(|o| BrokerOrder {
                instrument: Some(o.instrument),
                action: Some(format!("{:?}", o.action)),
                order_type: Some(format!("{:?}", o.order_type)),
                quantity: Some(o.quantity),
                limit_price: o.limit_price,
                stop_price: o.stop_price,
                ..BrokerOrder::new(o.order_id, o.oco_id, format!("{:?}", o.state))
            })
            .collect())
    }

    async fn positions(&self, account: &str) -> Result<Vec<BrokerPosition>, ExecError> {
        let positions = PaperBroker::positions(self, account)
            .map_err(|e| ExecError::Rejected(e.to_string()))?;
        Ok(positions
            .into_iter()
            .map(|p| BrokerPosition {
                instrument: p.instrument,
                quantity: p.quantity,
                average_price: p.average_price,
            })
            .collect())
    }
}
