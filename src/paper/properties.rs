//! Property tests: random sequences of quotes, PlaceOrder, cancels, clock steps, flattens and
//! CancelAndBracket calls (begin, then quotes and clock steps inside the cancel window, then finish),
//! checked after every step against the invariants a trader relies on:
//!
//! 1. After a CancelAndBracket completes, at most one OCO group is Working on that account and
//!    instrument (CancelPending orders ignored): every Working order there belongs to the new bracket,
//!    and an aborted or refused bracket leaves nothing Working there.
//! 2. A bracket never exceeds the position it protects: when a position existed at the end of the
//!    window, the bracket quantity (and every placed leg) is at most its size.
//! 3. No bracket is placed after the position went flat in the cancel window: the call aborts with no
//!    placed orders.
//! 4. The position always equals the signed sum of the fills of its account and instrument (and a flat
//!    position has no average price).
//! 5. A refused CancelAndBracket (begin error) changes no order.
//! 6. What is stored rebuilds the same venue: after the sequence, a broker opened on the same tree (with a
//!    snapshot every few operations, so the sequence crosses several) shows the same orders, positions
//!    and last prices.

use std::sync::Arc;

use proptest::prelude::*;

use super::tests::{bracket, instruments, order, ES, NQ, OTHER, SIM};
use super::*;
use crate::clock::ManualClock;
use crate::domain::{Action, OcoId};

const ACCOUNTS: [&str; 2] = [SIM, OTHER];
const INSTRUMENTS: [(&str, f64); 2] = [(ES, 4500.0), (NQ, 20000.0)];
const TICK: f64 = 0.25;

#[derive(Debug, Clone)]
enum Op {
    Quote {
        instrument: usize,
        ticks: i32,
    },
    Place {
        account: usize,
        instrument: usize,
        action: Action,
        order_type: OrderType,
        quantity: u32,
        /// Offset from the last price, in ticks.
        ticks: i32,
        oco: Option<u8>,
    },
    Cancel {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
    Flatten {
        account: usize,
        instrument: Option<usize>,
    },
    Bracket {
        account: usize,
        instrument: usize,
        /// `None`: protect the side the account holds (Buy when flat), as a well-formed alert would.
        action: Option<Action>,
        quantity: u32,
        /// Distance from the last price, in ticks, on the profitable / losing side of `action`.
        take_profit: Option<i32>,
        stop_loss: Option<i32>,
        custom_oco: bool,
        /// Quotes (ticks from base) and clock steps inside the cancel window.
        window: Vec<(i32, u64)>,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![Just(Action::Buy), Just(Action::Sell)]
}

/// Mostly the first account and instrument, so orders and brackets pile up on the same book and the
/// races happen; sometimes the other ones, so isolation is exercised too.
fn account() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(0usize), 1 => Just(1usize)]
}

fn instrument() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(0usize), 1 => Just(1usize)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (instrument(), -20..=20i32).prop_map(|(instrument, ticks)| Op::Quote { instrument, ticks }),
        3 => (
            account(),
            instrument(),
            action(),
            prop_oneof![Just(OrderType::Market), Just(OrderType::Limit), Just(OrderType::StopMarket)],
            1..4u32,
            -12..=12i32,
            proptest::option::of(0..3u8),
        )
            .prop_map(|(account, instrument, action, order_type, quantity, ticks, oco)| Op::Place {
                account,
                instrument,
                action,
                order_type,
                quantity,
                ticks,
                oco,
            }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => (0..120u64).prop_map(|ms| Op::Advance { ms }),
        1 => (account(), proptest::option::of(instrument()))
            .prop_map(|(account, instrument)| Op::Flatten { account, instrument }),
        4 => (
            account(),
            instrument(),
            proptest::option::weighted(0.3, action()),
            1..5u32,
            proptest::option::weighted(0.8, -1..12i32),
            proptest::option::weighted(0.8, -1..12i32),
            any::<bool>(),
            proptest::collection::vec((-20..=20i32, 0..60u64), 0..4),
        )
            .prop_map(
                |(account, instrument, action, quantity, take_profit, stop_loss, custom_oco, window)| {
                    Op::Bracket {
                        account,
                        instrument,
                        action,
                        quantity,
                        take_profit,
                        stop_loss,
                        custom_oco,
                        window,
                    }
                },
            ),
    ]
}

/// Log entries between snapshots in the harness: small, so random sequences cross several.
const SNAPSHOT_EVERY: u64 = 7;

struct Harness {
    tree: sled::Tree,
    broker: Arc<PaperBroker>,
    clock: Arc<ManualClock>,
    ids: Vec<(String, OrderId)>,
    brackets: u32,
}

impl Harness {
    fn new() -> Harness {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let clock = Arc::new(ManualClock::default());
        let config = PaperConfig {
            accounts: ACCOUNTS.iter().map(|a| a.to_string()).collect(),
            // Invariant 4 sums fills over all orders, so keep every finished order.
            max_terminal_orders: usize::MAX,
            ..PaperConfig::default()
        };
        let tree = db.open_tree("paper").unwrap();
        let broker = PaperBroker::open(
            tree.clone(),
            PaperConfig {
                snapshot_every: SNAPSHOT_EVERY,
                ..config
            },
            instruments(),
            clock.clone(),
        )
        .unwrap();
        Harness {
            tree,
            broker,
            clock,
            ids: Vec::new(),
            brackets: 0,
        }
    }

    fn last(&self, instrument: usize) -> f64 {
        let (name, base) = INSTRUMENTS[instrument];
        self.broker.quote(name).map_or(base, |q| q.last_price)
    }

    fn quote(&self, instrument: usize, ticks: i32) {
        let (name, base) = INSTRUMENTS[instrument];
        self.broker
            .set_quote(name, base + f64::from(ticks) * TICK)
            .unwrap();
    }

    fn position(&self, account: &str, instrument: &str) -> i64 {
        self.broker.position(account, instrument).unwrap().quantity
    }

    fn working(&self, account: &str, instrument: &str) -> Vec<Order> {
        self.broker
            .orders(account)
            .unwrap()
            .into_iter()
            .filter(|o| o.instrument == instrument && o.state == OrderState::Working)
            .collect()
    }

    fn run(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Quote { instrument, ticks } => self.quote(instrument, ticks),
            Op::Place {
                account,
                instrument,
                action,
                order_type,
                quantity,
                ticks,
                oco,
            } => {
                let price = self.last(instrument) + f64::from(ticks) * TICK;
                let req = PlaceOrder {
                    instrument: INSTRUMENTS[instrument].0.into(),
                    oco_id: oco.map(|g| OcoId(format!("g{g}"))),
                    ..order(action, order_type, quantity, Some(price))
                };
                if let Ok(o) = self.broker.place_order(ACCOUNTS[account], &req) {
                    self.ids.push((ACCOUNTS[account].to_string(), o.order_id));
                }
            }
            Op::Cancel { pick } => {
                if !self.ids.is_empty() {
                    let (account, id) = &self.ids[pick % self.ids.len()];
                    let _ = self.broker.cancel_order(account, id);
                }
            }
            Op::Advance { ms } => self.clock.advance(ms),
            Op::Flatten {
                account,
                instrument,
            } => {
                let _ = self
                    .broker
                    .flatten(ACCOUNTS[account], instrument.map(|i| INSTRUMENTS[i].0));
            }
            Op::Bracket {
                account,
                instrument,
                action,
                quantity,
                take_profit,
                stop_loss,
                custom_oco,
                window,
            } => self.bracket(
                account,
                instrument,
                action,
                quantity,
                take_profit,
                stop_loss,
                custom_oco,
                window,
            )?,
        }
        self.check_positions()
    }

    #[allow(clippy::too_many_arguments)]
    fn bracket(
        &mut self,
        account: usize,
        instrument: usize,
        action: Option<Action>,
        quantity: u32,
        take_profit: Option<i32>,
        stop_loss: Option<i32>,
        custom_oco: bool,
        window: Vec<(i32, u64)>,
    ) -> Result<(), TestCaseError> {
        let (account, name) = (ACCOUNTS[account], INSTRUMENTS[instrument].0);
        let action = action.unwrap_or(if self.position(account, name) < 0 {
            Action::Sell
        } else {
            Action::Buy
        });
        let last = self.last(instrument);
        let dir = f64::from(action.sign() as i32);
        self.brackets += 1;
        let req = BracketRequest {
            account: account.into(),
            instrument: name.into(),
            oco_id: custom_oco.then(|| OcoId(format!("oco-{}", self.brackets))),
            ..bracket(
                action,
                quantity,
                take_profit.map(|t| last + dir * f64::from(t) * TICK),
                stop_loss.map(|t| last - dir * f64::from(t) * TICK),
            )
        };
        let orders_before = self.broker.orders(account).unwrap();
        let ticket = match self.broker.bracket_begin(&req) {
            Ok(t) => t,
            Err(_) => {
                // Invariant 5: a refusal touches nothing (no clock step happened, so no cancel became due).
                prop_assert_eq!(self.broker.orders(account).unwrap(), orders_before);
                return Ok(());
            }
        };
        for (ticks, ms) in window {
            self.quote(instrument, ticks);
            self.clock.advance(ms);
            self.check_positions()?;
        }
        let before = ticket.position_before();
        let at_finish = self.position(account, name);
        let result = self.broker.bracket_finish(ticket);
        let working = self.working(account, name);
        if before != 0 && at_finish == 0 {
            // Invariant 3: went flat in the window, so the answer is an abort, whatever else is wrong.
            prop_assert!(
                matches!(&result, Ok(out) if out.aborted && out.placed_order_ids.is_empty()),
                "position went flat in the window but finish gave {:?}",
                result
            );
        }
        match result {
            Err(e) => {
                // A stop now through the market (position unprotected), or an entry take-profit the market
                // reached during the window (nothing placed, nothing to protect).
                prop_assert!(
                    matches!(
                        e,
                        PaperError::Unprotected { .. }
                            | PaperError::InvalidField {
                                field: "takeProfit",
                                ..
                            }
                    ),
                    "unexpected error {}",
                    e
                );
                prop_assert!(
                    working.is_empty(),
                    "refused bracket left {:?} working",
                    working
                );
            }
            Ok(out) if out.aborted => {
                prop_assert!(out.placed_order_ids.is_empty());
                prop_assert!(
                    working.is_empty(),
                    "aborted bracket left {:?} working",
                    working
                );
            }
            Ok(out) => {
                // Invariant 1.
                for o in &working {
                    prop_assert_eq!(
                        &o.oco_id,
                        &out.oco_id,
                        "a second OCO group is working: {:?}",
                        working
                    );
                }
                // Invariant 2.
                prop_assert!(out.quantity <= req.quantity);
                if at_finish != 0 {
                    prop_assert!(
                        i64::from(out.quantity) <= at_finish.abs(),
                        "bracket of {} on a position of {}",
                        out.quantity,
                        at_finish
                    );
                }
                let orders = self.broker.orders(account).unwrap();
                for id in &out.placed_order_ids {
                    let leg = orders.iter().find(|o| &o.order_id == id).unwrap();
                    prop_assert_eq!(leg.quantity, out.quantity);
                    prop_assert_eq!(leg.action, action.opposite());
                }
                // Let later steps cancel the new legs too.
                self.ids.extend(
                    out.placed_order_ids
                        .iter()
                        .map(|id| (account.to_string(), id.clone())),
                );
            }
        }
        Ok(())
    }

    /// Invariant 6.
    fn check_reopen(&self) -> Result<(), TestCaseError> {
        let again = PaperBroker::open(
            self.tree.clone(),
            PaperConfig {
                snapshot_every: SNAPSHOT_EVERY,
                ..self.broker.config().clone()
            },
            instruments(),
            self.clock.clone(),
        )
        .unwrap();
        for account in ACCOUNTS {
            prop_assert_eq!(
                again.orders(account).unwrap(),
                self.broker.orders(account).unwrap()
            );
            prop_assert_eq!(
                again.positions(account).unwrap(),
                self.broker.positions(account).unwrap()
            );
        }
        for (name, _) in INSTRUMENTS {
            prop_assert_eq!(again.quote(name).ok(), self.broker.quote(name).ok());
        }
        Ok(())
    }

    /// Invariant 4.
    fn check_positions(&self) -> Result<(), TestCaseError> {
        for account in ACCOUNTS {
            let orders = self.broker.orders(account).unwrap();
            for (name, _) in INSTRUMENTS {
                let fills: i64 = orders
                    .iter()
                    .filter(|o| o.instrument == name && o.state == OrderState::Filled)
                    .map(Order::signed_quantity)
                    .sum();
                let p = self.broker.position(account, name).unwrap();
                prop_assert_eq!(p.quantity, fills, "{} {}", account, name);
                if p.quantity == 0 {
                    prop_assert_eq!(p.average_price, 0.0);
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn broker_invariants_hold_over_random_sequences(
        start in proptest::collection::vec((0..2usize, -20..=20i32), 0..2),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut h = Harness::new();
        for (instrument, ticks) in start {
            h.quote(instrument, ticks);
        }
        for op in ops {
            h.run(op)?;
        }
        h.check_reopen()?;
    }
}
