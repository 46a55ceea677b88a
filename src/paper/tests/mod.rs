//! Unit tests for the paper venue's rules, one behaviour per test, grouped by what they test:
//! - `orders.rs`: single orders: fills (market, limit, stop, OCO siblings) and cancels (latency).
//! - `positions.rs`: P&L, averaging and reversing through zero, flatten.
//! - `brackets.rs`: CancelAndBracket: replacing, clamping and aborting brackets, entry brackets.
//! - `requests.rs`: parsing `place_order` arguments, order ids, `paper` config, quotes.
//! - `storage.rs`: state across reopening: the log, snapshots, retention, the old layout.
//!
//! This file holds the fixtures they share (instruments, accounts, a broker on a temporary tree);
//! `properties.rs` uses them too.

mod brackets;
mod orders;
mod positions;
mod requests;
mod storage;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::domain::Action;
use crate::instruments::InstrumentSpec;

pub(super) const ES: &str = "ES 12-26";
pub(super) const NQ: &str = "NQ 12-26";
pub(super) const SIM: &str = "Sim101";
pub(super) const OTHER: &str = "Sim102";

pub(super) fn instruments() -> Arc<Instruments> {
    let mut specs = BTreeMap::new();
    specs.insert(
        ES.to_string(),
        InstrumentSpec {
            tick_size: 0.25,
            point_value: 50.0,
            symbols: vec!["ES1!".into()],
        },
    );
    specs.insert(
        NQ.to_string(),
        InstrumentSpec {
            tick_size: 0.25,
            point_value: 20.0,
            symbols: vec!["NQ1!".into()],
        },
    );
    Arc::new(Instruments::new(specs).unwrap())
}

pub(super) fn config() -> PaperConfig {
    PaperConfig {
        accounts: vec![SIM.into(), OTHER.into()],
        ..PaperConfig::default()
    }
}

pub(super) fn open_with(config: PaperConfig) -> (Arc<PaperBroker>, Arc<ManualClock>) {
    let (_db, tree, clock) = scratch_tree();
    let broker = PaperBroker::open(tree, config, instruments(), clock.clone()).unwrap();
    (broker, clock)
}

fn open() -> (Arc<PaperBroker>, Arc<ManualClock>) {
    open_with(config())
}

/// A temporary database (kept alive by the caller), its `paper` tree and a manual clock.
fn scratch_tree() -> (sled::Db, sled::Tree, Arc<ManualClock>) {
    let db = sled::Config::new().temporary(true).open().unwrap();
    let tree = db.open_tree("paper").unwrap();
    (db, tree, Arc::new(ManualClock::default()))
}

pub(super) fn order(
    action: Action,
    order_type: OrderType,
    qty: u32,
    price: Option<f64>,
) -> PlaceOrder {
    PlaceOrder {
        instrument: ES.into(),
        action,
        quantity: qty,
        order_type,
        limit_price: price.filter(|_| order_type == OrderType::Limit),
        stop_price: price.filter(|_| order_type == OrderType::StopMarket),
        oco_id: None,
        order_id: None,
    }
}

fn market(b: &PaperBroker, action: Action, qty: u32) -> Order {
    b.place_order(SIM, &order(action, OrderType::Market, qty, None))
        .unwrap()
}

pub(super) fn bracket(
    action: Action,
    qty: u32,
    tp: Option<f64>,
    sl: Option<f64>,
) -> BracketRequest {
    BracketRequest {
        account: SIM.into(),
        instrument: ES.into(),
        action,
        quantity: qty,
        take_profit: tp,
        stop_loss: sl,
        oco_id: None,
        cancel_delay_ms: None,
        relay: Default::default(),
    }
}

fn state(b: &PaperBroker, account: &str, id: &OrderId) -> OrderState {
    b.orders(account)
        .unwrap()
        .into_iter()
        .find(|o| &o.order_id == id)
        .unwrap()
        .state
}

fn qty(b: &PaperBroker, account: &str, instrument: &str) -> i64 {
    b.position(account, instrument).unwrap().quantity
}

fn working(b: &PaperBroker, account: &str) -> Vec<Order> {
    b.orders(account)
        .unwrap()
        .into_iter()
        .filter(|o| o.state == OrderState::Working)
        .collect()
}
