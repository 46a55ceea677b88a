//! Unit tests for the paper venue's rules, one behaviour per test.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::clock::{ManualClock, SystemClock};
use crate::domain::{Action, OcoId};
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

// --- fills ----------------------------------------------------------------------------------------

#[test]
fn market_order_fills_at_the_last_price() {
    let (b, _) = open();
    b.set_quote("ES1!", 4500.25).unwrap();
    let o = market(&b, Action::Buy, 2);
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.fill_price, Some(4500.25));
    assert!(o.filled_at.is_some());
    let p = b.position(SIM, ES).unwrap();
    assert_eq!((p.quantity, p.average_price), (2, 4500.25));
    assert_eq!(p.market_position, MarketPosition::Long);
}

#[test]
fn market_order_without_a_quote_says_how_to_set_one() {
    let (b, _) = open();
    let e = b
        .place_order(SIM, &order(Action::Buy, OrderType::Market, 1, None))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "instrument 'ES 12-26' has no quote yet; set one with POST /paper/quote"
    );
    assert!(b.orders(SIM).unwrap().is_empty());
}

#[test]
fn limits_fill_at_their_limit_once_the_price_reaches_them() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let sell = b
        .place_order(SIM, &order(Action::Sell, OrderType::Limit, 1, Some(4510.0)))
        .unwrap();
    let buy = b
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4490.0)))
        .unwrap();
    assert_eq!(
        (sell.state, buy.state),
        (OrderState::Working, OrderState::Working)
    );

    b.set_quote(ES, 4509.75).unwrap();
    assert_eq!(state(&b, SIM, &sell.order_id), OrderState::Working);
    let up = b.set_quote(ES, 4512.0).unwrap();
    assert_eq!(up.filled_order_ids, vec![sell.order_id.clone()]);
    let filled = &b.orders(SIM).unwrap()[0];
    assert_eq!(filled.fill_price, Some(4510.0));
    assert_eq!(qty(&b, SIM, ES), -1);

    b.set_quote(ES, 4490.25).unwrap();
    assert_eq!(state(&b, SIM, &buy.order_id), OrderState::Working);
    b.set_quote(ES, 4488.0).unwrap();
    assert_eq!(state(&b, SIM, &buy.order_id), OrderState::Filled);
    assert_eq!(b.orders(SIM).unwrap()[1].fill_price, Some(4490.0));
    assert_eq!(qty(&b, SIM, ES), 0);
}

#[test]
fn stops_fill_at_the_quote_that_triggers_them() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let sell = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4490.0)),
        )
        .unwrap();
    let buy = b
        .place_order(
            SIM,
            &order(Action::Buy, OrderType::StopMarket, 2, Some(4510.0)),
        )
        .unwrap();
    b.set_quote(ES, 4490.25).unwrap();
    assert_eq!(state(&b, SIM, &sell.order_id), OrderState::Working);
    b.set_quote(ES, 4487.5).unwrap();
    let orders = b.orders(SIM).unwrap();
    assert_eq!(orders[0].state, OrderState::Filled);
    assert_eq!(orders[0].fill_price, Some(4487.5));
    b.set_quote(ES, 4511.0).unwrap();
    let orders = b.orders(SIM).unwrap();
    assert_eq!(orders[1].order_id, buy.order_id);
    assert_eq!(orders[1].fill_price, Some(4511.0));
    assert_eq!(qty(&b, SIM, ES), 1);
}

#[test]
fn a_marketable_limit_fills_at_once_at_the_last_price() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let o = b
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4505.0)))
        .unwrap();
    assert_eq!(o.state, OrderState::Filled);
    assert_eq!(o.fill_price, Some(4500.0));
    let o = b
        .place_order(SIM, &order(Action::Sell, OrderType::Limit, 1, Some(4495.0)))
        .unwrap();
    assert_eq!(o.fill_price, Some(4500.0));
}

#[test]
fn a_stop_through_the_market_is_rejected_naming_stop_price() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    for (action, stop) in [
        (Action::Sell, 4500.0),
        (Action::Sell, 4501.0),
        (Action::Buy, 4499.0),
    ] {
        let e = b
            .place_order(SIM, &order(action, OrderType::StopMarket, 1, Some(stop)))
            .unwrap_err();
        assert!(matches!(e, PaperError::StopThroughMarket { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with("stopPrice:"), "{msg}");
        assert!(msg.contains("would fill at once"), "{msg}");
    }
    assert!(b.orders(SIM).unwrap().is_empty());
}

#[test]
fn a_fill_cancels_its_oco_siblings_at_once() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 1);
    let oco = Some(OcoId("grp".into()));
    let tp = b
        .place_order(
            SIM,
            &PlaceOrder {
                oco_id: oco.clone(),
                ..order(Action::Sell, OrderType::Limit, 1, Some(4510.0))
            },
        )
        .unwrap();
    let sl = b
        .place_order(
            SIM,
            &PlaceOrder {
                oco_id: oco,
                ..order(Action::Sell, OrderType::StopMarket, 1, Some(4490.0))
            },
        )
        .unwrap();
    let up = b.set_quote(ES, 4510.0).unwrap();
    assert_eq!(up.filled_order_ids, vec![tp.order_id.clone()]);
    assert_eq!(up.cancelled_order_ids, vec![sl.order_id.clone()]);
    assert_eq!(state(&b, SIM, &sl.order_id), OrderState::Cancelled);
    // The cancelled stop must not fire on the way back down.
    b.set_quote(ES, 4480.0).unwrap();
    assert_eq!(qty(&b, SIM, ES), 0);
}

// --- cancels --------------------------------------------------------------------------------------

#[test]
fn cancel_is_pending_until_the_latency_passes() {
    let (b, clock) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let o = b
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4490.0)))
        .unwrap();
    let c = b.cancel_order(SIM, &o.order_id).unwrap();
    assert_eq!(c.state, OrderState::CancelPending);
    assert!(c.cancel_requested_at.is_some());
    clock.advance(49);
    assert_eq!(state(&b, SIM, &o.order_id), OrderState::CancelPending);
    // Cancelling again while pending is harmless.
    assert_eq!(
        b.cancel_order(SIM, &o.order_id).unwrap().state,
        OrderState::CancelPending
    );
    clock.advance(1);
    assert_eq!(state(&b, SIM, &o.order_id), OrderState::Cancelled);
    let e = b.cancel_order(SIM, &o.order_id).unwrap_err();
    assert!(matches!(e, PaperError::NotCancellable { .. }));
    assert!(e.to_string().contains("already Cancelled"), "{e}");
}

#[test]
fn a_cancel_pending_order_can_still_be_filled_by_a_quote() {
    let (b, clock) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let o = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4495.0)),
        )
        .unwrap();
    b.cancel_order(SIM, &o.order_id).unwrap();
    clock.advance(20);
    b.set_quote(ES, 4494.0).unwrap();
    assert_eq!(state(&b, SIM, &o.order_id), OrderState::Filled);
    assert_eq!(qty(&b, SIM, ES), -1);
    clock.advance(1000);
    assert_eq!(state(&b, SIM, &o.order_id), OrderState::Filled);
}

#[test]
fn zero_latency_cancels_at_once() {
    let (b, _) = open_with(PaperConfig {
        cancel_latency_ms: 0,
        ..config()
    });
    b.set_quote(ES, 4500.0).unwrap();
    let o = b
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4490.0)))
        .unwrap();
    assert_eq!(
        b.cancel_order(SIM, &o.order_id).unwrap().state,
        OrderState::Cancelled
    );
}

#[test]
fn unknown_account_and_order_are_not_found_with_helpful_messages() {
    let (b, _) = open();
    let e = b.orders("X").unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "account: unknown account 'X'; configured paper accounts: Sim101, Sim102"
    );
    let e = b.cancel_order(SIM, &OrderId("nope".into())).unwrap_err();
    assert!(e.is_not_found());
    assert!(e.to_string().starts_with("orderId: no order 'nope'"), "{e}");
    let e = b.set_quote("ZZ1!", 1.0).unwrap_err();
    assert!(!e.is_not_found());
    assert!(e
        .to_string()
        .starts_with("instrument: unknown instrument 'ZZ1!'"));
    assert!(b.has_account(SIM) && !b.has_account("X"));
    assert_eq!(b.accounts(), [SIM.to_string(), OTHER.to_string()]);
}

// --- positions ------------------------------------------------------------------------------------

#[test]
fn pnl_averages_in_realizes_out_and_reopens_across_zero() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 2);
    b.set_quote(ES, 4503.0).unwrap();
    market(&b, Action::Buy, 1);
    let p = b.position(SIM, ES).unwrap();
    assert_eq!(
        (p.quantity, p.average_price, p.realized_pnl),
        (3, 4501.0, 0.0)
    );

    b.set_quote(ES, 4505.0).unwrap();
    market(&b, Action::Sell, 2); // (4505 - 4501) * 2 contracts * $50
    let p = b.position(SIM, ES).unwrap();
    assert_eq!(
        (p.quantity, p.average_price, p.realized_pnl),
        (1, 4501.0, 400.0)
    );

    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Sell, 3); // closes 1 at -1 point (-$50), opens short 2 at 4500
    let p = b.position(SIM, ES).unwrap();
    assert_eq!(
        (p.quantity, p.average_price, p.realized_pnl),
        (-2, 4500.0, 350.0)
    );
    assert_eq!(p.market_position, MarketPosition::Short);

    b.set_quote(ES, 4490.0).unwrap();
    market(&b, Action::Buy, 2); // short 2 from 4500 covered at 4490: +10 points * 2 * $50
    let p = b.position(SIM, ES).unwrap();
    assert_eq!(
        (p.quantity, p.average_price, p.realized_pnl),
        (0, 0.0, 1350.0)
    );
    assert_eq!(p.market_position, MarketPosition::Flat);
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["marketPosition"], "Flat");
    assert_eq!(v["realizedPnl"], 1350.0);
}

#[test]
fn flatten_cancels_orders_and_closes_positions_of_that_account_only() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    b.set_quote(NQ, 20000.0).unwrap();
    market(&b, Action::Buy, 2);
    b.place_order(
        SIM,
        &PlaceOrder {
            instrument: "NQ1!".into(),
            ..order(Action::Sell, OrderType::Market, 1, None)
        },
    )
    .unwrap();
    let stop = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 2, Some(4490.0)),
        )
        .unwrap();
    let other = b
        .place_order(OTHER, &order(Action::Buy, OrderType::Market, 1, None))
        .unwrap();
    let other_stop = b
        .place_order(
            OTHER,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4490.0)),
        )
        .unwrap();
    assert_eq!(other.state, OrderState::Filled);

    let f = b.flatten(SIM, Some("ES1!")).unwrap();
    assert_eq!(f.cancelled_order_ids, vec![stop.order_id.clone()]);
    assert_eq!(f.closing_orders.len(), 1);
    assert_eq!(f.closing_orders[0].action, Action::Sell);
    assert_eq!(f.closing_orders[0].quantity, 2);
    // Flatten's cancels are confirmed before the close, not left pending.
    assert_eq!(state(&b, SIM, &stop.order_id), OrderState::Cancelled);
    assert_eq!(qty(&b, SIM, ES), 0);
    assert_eq!(qty(&b, SIM, NQ), -1);

    let f = b.flatten(SIM, None).unwrap();
    assert_eq!(f.closing_orders.len(), 1);
    assert_eq!(f.closing_orders[0].action, Action::Buy);
    assert_eq!(qty(&b, SIM, NQ), 0);
    assert_eq!(qty(&b, OTHER, ES), 1);
    assert_eq!(state(&b, OTHER, &other_stop.order_id), OrderState::Working);
}

#[test]
fn flatten_all_covers_instruments_with_only_working_orders() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 1);
    let stop = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4490.0)),
        )
        .unwrap();
    // NQ has a working order but no position and no quote: flatten cancels it and needs no quote.
    let nq = b
        .place_order(
            SIM,
            &PlaceOrder {
                instrument: NQ.into(),
                ..order(Action::Buy, OrderType::Limit, 1, Some(100.0))
            },
        )
        .unwrap();
    let f = b.flatten(SIM, None).unwrap();
    assert_eq!(
        f.cancelled_order_ids,
        vec![stop.order_id.clone(), nq.order_id.clone()]
    );
    assert_eq!(state(&b, SIM, &nq.order_id), OrderState::Cancelled);
    assert_eq!(qty(&b, SIM, ES), 0);
}

// --- CancelAndBracket -----------------------------------------------------------------------------

/// Long `qty` ES at 4500 with an old OCO pair (TP 4520 / SL 4480) working.
fn long_with_old_bracket(b: &PaperBroker, qty: u32) -> (OrderId, OrderId) {
    b.set_quote(ES, 4500.0).unwrap();
    market(b, Action::Buy, qty);
    let out = b
        .bracket_finish(
            b.bracket_begin(&bracket(Action::Buy, qty, Some(4520.0), Some(4480.0)))
                .unwrap(),
        )
        .unwrap();
    (
        out.placed_order_ids[0].clone(),
        out.placed_order_ids[1].clone(),
    )
}

#[test]
fn bracket_replaces_the_old_pair_and_reports_ids_in_order() {
    let (b, clock) = open();
    let (old_tp, old_sl) = long_with_old_bracket(&b, 2);
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 2, Some(4530.0), Some(4490.0)))
        .unwrap();
    assert_eq!(
        ticket.cancelled_order_ids(),
        [old_tp.clone(), old_sl.clone()]
    );
    assert_eq!(ticket.position_before(), 2);
    assert_eq!(state(&b, SIM, &old_sl), OrderState::CancelPending);
    clock.advance(100);
    let out = b.bracket_finish(ticket).unwrap();
    assert!(out.success && !out.aborted);
    assert_eq!(out.quantity, 2);
    assert_eq!(
        out.cancelled_order_ids,
        vec![old_tp.clone(), old_sl.clone()]
    );
    assert_eq!(out.placed_order_ids.len(), 2);
    let mut expected = out.cancelled_order_ids.clone();
    expected.extend(out.placed_order_ids.clone());
    assert_eq!(out.order_ids, expected);
    assert_eq!(state(&b, SIM, &old_tp), OrderState::Cancelled);

    let w = working(&b, SIM);
    assert_eq!(w.len(), 2);
    let (tp, sl) = (&w[0], &w[1]);
    assert_eq!(
        (tp.order_type, tp.action, tp.limit_price),
        (OrderType::Limit, Action::Sell, Some(4530.0))
    );
    assert_eq!(
        (sl.order_type, sl.action, sl.stop_price),
        (OrderType::StopMarket, Action::Sell, Some(4490.0))
    );
    assert_eq!(tp.oco_id, out.oco_id);
    assert_eq!(sl.oco_id, out.oco_id);
    assert_eq!(out.oco_id.as_ref().unwrap().0.len(), 32);
}

#[test]
fn bracket_is_clamped_to_a_smaller_position() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Sell, 2);
    let out = b
        .bracket_finish(
            b.bracket_begin(&bracket(Action::Sell, 5, Some(4480.0), Some(4510.0)))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(out.quantity, 2);
    for o in working(&b, SIM) {
        assert_eq!((o.quantity, o.action), (2, Action::Buy));
    }
}

#[test]
fn bracket_aborts_when_the_old_stop_fills_in_the_cancel_window() {
    let (b, clock) = open();
    let (old_tp, old_sl) = long_with_old_bracket(&b, 1);
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 1, Some(4530.0), Some(4470.0)))
        .unwrap();
    assert_eq!(ticket.cancelled_order_ids().len(), 2);
    clock.advance(10);
    b.set_quote(ES, 4480.0).unwrap(); // the old, CancelPending stop is hit
    assert_eq!(state(&b, SIM, &old_sl), OrderState::Filled);
    assert_eq!(qty(&b, SIM, ES), 0);
    clock.advance(90);
    let out = b.bracket_finish(ticket).unwrap();
    assert!(out.aborted && out.success);
    assert_eq!(
        out.reason.as_deref(),
        Some("position went flat during the cancel window")
    );
    assert!(out.placed_order_ids.is_empty());
    // Both were asked to cancel (the stop filled before its cancel took effect).
    assert_eq!(out.cancelled_order_ids, vec![old_tp, old_sl.clone()]);
    assert_eq!(out.order_ids, out.cancelled_order_ids);
    assert!(working(&b, SIM).is_empty());
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(v["aborted"], true);
    assert!(v["ocoId"].is_string(), "the answer names its OCO id: {v}");
}

#[test]
fn bracket_aborts_when_the_position_reverses_in_the_window() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 1);
    b.place_order(
        SIM,
        &order(Action::Sell, OrderType::StopMarket, 3, Some(4490.0)),
    )
    .unwrap();
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 1, None, Some(4480.0)))
        .unwrap();
    b.set_quote(ES, 4489.0).unwrap();
    let out = b.bracket_finish(ticket).unwrap();
    assert!(out.aborted);
    assert_eq!(
        out.reason.as_deref(),
        Some("position reversed from long 1 to short 2 during the cancel window")
    );
    assert!(working(&b, SIM).is_empty());
}

#[test]
fn entry_bracket_when_there_is_no_position() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let out = b
        .bracket_finish(
            b.bracket_begin(&bracket(Action::Buy, 3, Some(4510.0), Some(4490.0)))
                .unwrap(),
        )
        .unwrap();
    assert!(!out.aborted);
    assert_eq!(out.quantity, 3);
    assert!(out.cancelled_order_ids.is_empty());
    let w = working(&b, SIM);
    assert_eq!(w.len(), 2);
    assert!(w
        .iter()
        .all(|o| o.quantity == 3 && o.action == Action::Sell));
}

#[test]
fn a_window_fill_that_opens_the_protected_side_is_bracketed_and_the_other_side_aborts() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    // A resting entry that fills in the window, opening long 1: bracket it, clamped to 1.
    b.place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4495.0)))
        .unwrap();
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 2, Some(4510.0), Some(4485.0)))
        .unwrap();
    assert_eq!(ticket.position_before(), 0);
    b.set_quote(ES, 4495.0).unwrap();
    let out = b.bracket_finish(ticket).unwrap();
    assert!(!out.aborted);
    assert_eq!(out.quantity, 1);

    // The mirror image: a Sell entry opens a short while a long is to be protected.
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    b.place_order(SIM, &order(Action::Sell, OrderType::Limit, 1, Some(4505.0)))
        .unwrap();
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 1, Some(4520.0), Some(4490.0)))
        .unwrap();
    b.set_quote(ES, 4505.0).unwrap();
    let out = b.bracket_finish(ticket).unwrap();
    assert!(out.aborted);
    assert!(out.reason.unwrap().contains("short 1"));
    assert!(working(&b, SIM).is_empty());
}

#[test]
fn bracket_leaves_other_instruments_accounts_and_pending_cancels_alone() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    b.set_quote(NQ, 20000.0).unwrap();
    let nq = b
        .place_order(
            SIM,
            &PlaceOrder {
                instrument: NQ.into(),
                ..order(Action::Buy, OrderType::Limit, 1, Some(19900.0))
            },
        )
        .unwrap();
    let other = b
        .place_order(
            OTHER,
            &order(Action::Buy, OrderType::Limit, 1, Some(4400.0)),
        )
        .unwrap();
    let pending = b
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4450.0)))
        .unwrap();
    b.cancel_order(SIM, &pending.order_id).unwrap();
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 1, Some(4510.0), None))
        .unwrap();
    assert!(ticket.cancelled_order_ids().is_empty());
    assert_eq!(state(&b, SIM, &nq.order_id), OrderState::Working);
    assert_eq!(state(&b, OTHER, &other.order_id), OrderState::Working);
    let out = b.bracket_finish(ticket).unwrap();
    assert_eq!(out.placed_order_ids.len(), 1);
    assert_eq!(state(&b, SIM, &nq.order_id), OrderState::Working);
}

#[test]
fn bracket_uses_the_requested_oco_id() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 1);
    let req = BracketRequest {
        oco_id: Some(OcoId("my-oco".into())),
        ..bracket(Action::Buy, 1, Some(4510.0), Some(4490.0))
    };
    let out = b.bracket_finish(b.bracket_begin(&req).unwrap()).unwrap();
    assert_eq!(out.oco_id, Some(OcoId("my-oco".into())));
    assert!(working(&b, SIM)
        .iter()
        .all(|o| o.oco_id == Some(OcoId("my-oco".into()))));
}

#[test]
fn direction_mismatch_is_refused_with_nothing_cancelled() {
    let (b, _) = open();
    let (old_tp, old_sl) = long_with_old_bracket(&b, 1);
    let e = b
        .bracket_begin(&bracket(Action::Sell, 1, Some(4490.0), Some(4510.0)))
        .unwrap_err();
    assert!(matches!(e, PaperError::DirectionMismatch { .. }));
    let msg = e.to_string();
    assert!(
        msg.starts_with("action: Sell protects a short position"),
        "{msg}"
    );
    assert!(msg.contains("is long 1 ES 12-26"), "{msg}");
    assert!(msg.contains("send action Buy"), "{msg}");
    assert_eq!(state(&b, SIM, &old_tp), OrderState::Working);
    assert_eq!(state(&b, SIM, &old_sl), OrderState::Working);
}

#[test]
fn a_stop_loss_through_the_market_is_refused_with_nothing_cancelled() {
    let (b, _) = open();
    let (old_tp, _) = long_with_old_bracket(&b, 1);
    let e = b
        .bracket_begin(&bracket(Action::Buy, 1, Some(4510.0), Some(4500.0)))
        .unwrap_err();
    assert!(matches!(e, PaperError::StopThroughMarket { .. }));
    assert!(
        e.to_string().starts_with("stopLoss: a Sell stop at 4500"),
        "{e}"
    );
    assert_eq!(state(&b, SIM, &old_tp), OrderState::Working);
}

#[test]
fn a_stop_loss_overtaken_in_the_window_places_nothing_and_says_unprotected() {
    let (b, clock) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 1);
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 1, Some(4520.0), Some(4495.0)))
        .unwrap();
    b.set_quote(ES, 4494.0).unwrap();
    clock.advance(100);
    let e = b.bracket_finish(ticket).unwrap_err();
    assert!(matches!(e, PaperError::Unprotected { .. }));
    assert!(e.to_string().contains("UNPROTECTED"), "{e}");
    assert!(working(&b, SIM).is_empty());
}

#[test]
fn a_take_profit_already_reached_fills_and_the_stop_is_not_placed() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 1);
    let ticket = b
        .bracket_begin(&bracket(Action::Buy, 1, Some(4505.0), Some(4490.0)))
        .unwrap();
    b.set_quote(ES, 4506.0).unwrap();
    let out = b.bracket_finish(ticket).unwrap();
    assert_eq!(out.placed_order_ids.len(), 1);
    assert!(out.reason.unwrap().contains("stopLoss not placed"));
    assert_eq!(qty(&b, SIM, ES), 0);
    assert!(working(&b, SIM).is_empty());
}

#[test]
fn bracket_requests_are_validated_before_anything_is_cancelled() {
    let (b, _) = open();
    let (old_tp, _) = long_with_old_bracket(&b, 1);
    let cases = [
        BracketRequest {
            account: "X".into(),
            ..bracket(Action::Buy, 1, Some(4510.0), None)
        },
        BracketRequest {
            instrument: "ZZ".into(),
            ..bracket(Action::Buy, 1, Some(4510.0), None)
        },
        bracket(Action::Buy, 0, Some(4510.0), None),
        bracket(Action::Buy, 1, Some(4510.1), None),
        bracket(Action::Buy, 1, None, None),
    ];
    for req in cases {
        assert!(b.bracket_begin(&req).is_err(), "{req:?}");
    }
    assert_eq!(state(&b, SIM, &old_tp), OrderState::Working);
}

#[tokio::test]
async fn cancel_and_bracket_runs_both_phases_and_maps_errors_for_the_executor() {
    let (b, _) = open_with(PaperConfig {
        cancel_delay_ms: 1,
        ..config()
    });
    b.set_quote(ES, 4500.0).unwrap();
    market(&b, Action::Buy, 1);
    let out = b
        .cancel_and_bracket(&bracket(Action::Buy, 1, Some(4510.0), Some(4490.0)))
        .await
        .unwrap();
    assert_eq!(out.placed_order_ids.len(), 2);

    let exec: Arc<dyn Executor> = b.clone();
    assert_eq!(exec.name(), "paper");
    let req = BracketRequest {
        cancel_delay_ms: Some(0),
        ..bracket(Action::Buy, 1, Some(4515.0), Some(4495.0))
    };
    let out = exec.cancel_and_bracket(&req).await.unwrap();
    assert_eq!(out.cancelled_order_ids.len(), 2);
    let e = exec
        .cancel_and_bracket(&bracket(Action::Sell, 1, Some(4490.0), Some(4510.0)))
        .await
        .unwrap_err();
    assert!(matches!(e, ExecError::Rejected(m) if m.starts_with("action:")));
}

// --- requests, config, storage --------------------------------------------------------------------

fn place_args(v: Value) -> Result<PlaceOrder, PaperError> {
    PlaceOrder::from_args(v.as_object().unwrap(), &instruments())
}

#[test]
fn place_order_args_are_parsed_and_errors_name_the_field() {
    let o = place_args(json!({"instrument":"ES1!","action":"Sell","quantity":2,
        "orderType":"STOPMARKET","stopPrice":"4490.25","limitPrice":4500,"ocoId":"g1","orderId":"my_id-1"}))
    .unwrap();
    assert_eq!(o.instrument, ES);
    assert_eq!(
        (o.action, o.quantity, o.order_type),
        (Action::Sell, 2, OrderType::StopMarket)
    );
    assert_eq!((o.stop_price, o.limit_price), (Some(4490.25), None));
    assert_eq!(o.order_id, Some(OrderId("my_id-1".into())));
    assert_eq!(
        place_args(
            json!({"instrument":"ES 12-26","action":"Buy","quantity":1,"orderType":"market"})
        )
        .unwrap()
        .order_type,
        OrderType::Market
    );

    let base = json!({"instrument":"ES 12-26","action":"Buy","quantity":1,"orderType":"LIMIT","limitPrice":4500});
    let cases: &[(&str, Value, &str)] = &[
        ("instrument", json!("XX"), "instrument:"),
        ("action", json!("Hold"), "action must be"),
        ("action", json!("sell"), "action must be"),
        ("quantity", json!("2"), "quantity must be"),
        ("quantity", json!(0), "quantity must be"),
        ("quantity", json!(1.5), "quantity must be"),
        ("orderType", json!("StopLimit"), "orderType must be"),
        (
            "limitPrice",
            json!(4500.1),
            "limitPrice must be a price on the instrument's tick grid",
        ),
        (
            "limitPrice",
            json!(-1),
            "limitPrice must be a finite positive price",
        ),
        ("limitPrice", json!(null), "limitPrice is required"),
        ("orderId", json!("a/b"), "orderId must be"),
        ("orderId", json!("x".repeat(65)), "orderId must be"),
        ("ocoId", json!("a b"), "ocoId must be"),
        ("action", json!(null), "action is required"),
    ];
    for (field, val, prefix) in cases {
        let mut v = base.clone();
        v[*field] = val.clone();
        let e = place_args(v).unwrap_err().to_string();
        assert!(e.starts_with(prefix), "{field}={val}: {e}");
    }
}

#[test]
fn caller_chosen_order_ids_must_be_unique() {
    let (b, _) = open();
    let o = PlaceOrder {
        order_id: Some(OrderId("mine".into())),
        ..order(Action::Buy, OrderType::Limit, 1, Some(4400.0))
    };
    assert_eq!(b.place_order(SIM, &o).unwrap().order_id.0, "mine");
    let e = b.place_order(OTHER, &o).unwrap_err();
    assert!(matches!(e, PaperError::DuplicateOrderId(_)));
    assert!(e
        .to_string()
        .starts_with("orderId: an order with id 'mine' already exists"));
}

#[test]
fn generated_ids_are_32_hex_and_orders_serialize_camel_case() {
    let (b, _) = open();
    b.set_quote(ES, 4500.0).unwrap();
    let o = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4490.0)),
        )
        .unwrap();
    assert_eq!(o.order_id.0.len(), 32);
    assert!(o
        .order_id
        .0
        .chars()
        .all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["orderType"], "StopMarket");
    assert_eq!(v["state"], "Working");
    assert_eq!(v["stopPrice"], 4490.0);
    assert_eq!(v["createdAt"], "2026-01-01T00:00:00.000Z");
    let back: Order = serde_json::from_value(v).unwrap();
    assert_eq!(back, o);
}

#[test]
fn config_defaults_and_validation() {
    let c: PaperConfig = config_from_json(json!({}));
    assert_eq!(c, PaperConfig::default());
    assert_eq!(c.accounts, vec!["Sim101".to_string()]);
    assert_eq!(
        (
            c.cancel_delay_ms,
            c.cancel_latency_ms,
            c.max_terminal_orders
        ),
        (100, 50, 1000)
    );
    assert!(serde_json::from_value::<PaperConfig>(json!({"acounts": []})).is_err());

    let (b, _) = open_with(PaperConfig {
        initial_quotes: [("ES1!".to_string(), 4500.25)].into(),
        ..config()
    });
    assert_eq!(b.quote(ES).unwrap().last_price, 4500.25);
    assert!(matches!(b.quote(NQ), Err(PaperError::NoQuote(_))));

    let db = sled::Config::new().temporary(true).open().unwrap();
    let bad = |c: PaperConfig| {
        PaperBroker::open(
            db.open_tree("x").unwrap(),
            c,
            instruments(),
            Arc::new(SystemClock),
        )
        .unwrap_err()
        .to_string()
    };
    assert!(bad(PaperConfig {
        accounts: vec![],
        ..config()
    })
    .starts_with("paper.accounts:"));
    assert!(bad(PaperConfig {
        initial_quotes: [("ZZ".to_string(), 1.0)].into(),
        ..config()
    })
    .starts_with("paper.initial_quotes.\"ZZ\":"));
    assert!(bad(PaperConfig {
        initial_quotes: [(ES.to_string(), 4500.1)].into(),
        ..config()
    })
    .contains("tick grid"));
    assert_eq!(config().snapshot_every, 4096);
    let e = bad(PaperConfig {
        snapshot_every: 0,
        ..config()
    });
    assert!(
        e.starts_with("paper.snapshot_every: must be between 1 and 1000000"),
        "{e}"
    );
}

fn config_from_json(v: Value) -> PaperConfig {
    serde_json::from_value(v).unwrap()
}

#[test]
fn quotes_must_be_positive_and_on_the_grid() {
    let (b, _) = open();
    for p in [0.0, -1.0, f64::NAN, 4500.1] {
        let e = b.set_quote(ES, p).unwrap_err();
        assert!(e.to_string().starts_with("price must be"), "{e}");
    }
}

#[test]
fn state_survives_reopening_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let (stop_id, pending_id) = {
        let db = sled::open(dir.path()).unwrap();
        let b = PaperBroker::open(
            db.open_tree("paper").unwrap(),
            config(),
            instruments(),
            clock.clone(),
        )
        .unwrap();
        b.set_quote(ES, 4500.0).unwrap();
        market(&b, Action::Buy, 2);
        let stop = b
            .place_order(
                SIM,
                &order(Action::Sell, OrderType::StopMarket, 2, Some(4490.0)),
            )
            .unwrap();
        let pending = b
            .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4400.0)))
            .unwrap();
        b.cancel_order(SIM, &pending.order_id).unwrap();
        (stop.order_id, pending.order_id)
    };
    let db = crate::test_support::retry_while_locked(|| sled::open(dir.path())).unwrap();
    let b = PaperBroker::open(
        db.open_tree("paper").unwrap(),
        config(),
        instruments(),
        clock.clone(),
    )
    .unwrap();
    assert_eq!(b.quote(ES).unwrap().last_price, 4500.0);
    let p = b.position(SIM, ES).unwrap();
    assert_eq!((p.quantity, p.average_price), (2, 4500.0));
    assert_eq!(b.orders(SIM).unwrap().len(), 3);
    assert_eq!(state(&b, SIM, &stop_id), OrderState::Working);
    assert_eq!(state(&b, SIM, &pending_id), OrderState::CancelPending);
    clock.advance(50);
    assert_eq!(state(&b, SIM, &pending_id), OrderState::Cancelled);
    // New orders continue the sequence rather than colliding with loaded ones.
    let o = b
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4400.0)))
        .unwrap();
    assert_eq!(o.sequence, 4);
    b.set_quote(ES, 4489.0).unwrap();
    assert_eq!(qty(&b, SIM, ES), 0);
}

#[test]
fn only_the_newest_finished_orders_are_kept() {
    let (_db, tree, clock) = scratch_tree();
    let cfg = PaperConfig {
        max_terminal_orders: 3,
        ..config()
    };
    let b = PaperBroker::open(tree.clone(), cfg, instruments(), clock.clone()).unwrap();
    b.set_quote(ES, 4500.0).unwrap();
    // A stop placed first, finished last: it must survive pruning even though it is the oldest order.
    let early = b
        .place_order(
            SIM,
            &order(Action::Sell, OrderType::StopMarket, 1, Some(4000.0)),
        )
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        clock.advance(1);
        ids.push(market(&b, Action::Buy, 1).order_id);
    }
    b.place_order(OTHER, &order(Action::Buy, OrderType::Market, 1, None))
        .unwrap();
    clock.advance(1);
    b.cancel_order(SIM, &early.order_id).unwrap();
    clock.advance(50);
    let kept: Vec<OrderId> = b
        .orders(SIM)
        .unwrap()
        .into_iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(kept, vec![early.order_id, ids[3].clone(), ids[4].clone()]);
    assert_eq!(b.orders(OTHER).unwrap().len(), 1);
    // Pruning forgets orders, never positions.
    assert_eq!(qty(&b, SIM, ES), 5);
    // The pruned orders are gone from disk too.
    let cfg = PaperConfig {
        max_terminal_orders: 3,
        ..config()
    };
    let again = PaperBroker::open(tree, cfg, instruments(), clock).unwrap();
    assert_eq!(again.orders(SIM).unwrap(), b.orders(SIM).unwrap());
    assert_eq!(again.orders(OTHER).unwrap().len(), 1);
}

/// Only a broker opened in the journal's own database tells the engine its writes share the journal's log
/// (which lets the engine skip waiting for the `executing` mark); one on any other tree does not.
#[test]
fn only_a_broker_beside_the_journal_shares_its_log() {
    let (b, _) = open();
    assert!(!b.shares_journal_log());

    let dir = tempfile::tempdir().unwrap();
    let journal =
        crate::journal::Journal::open(dir.path(), std::time::Duration::from_secs(60)).unwrap();
    let b = PaperBroker::open_beside_journal(
        &journal,
        config(),
        instruments(),
        Arc::new(ManualClock::default()),
    )
    .unwrap();
    assert!(b.shares_journal_log());
}

/// Everything a reopened broker shows, to compare with the broker that wrote it.
fn venue(b: &PaperBroker) -> (Vec<Order>, Vec<Position>, Vec<Option<f64>>) {
    let mut orders = b.orders(SIM).unwrap();
    orders.extend(b.orders(OTHER).unwrap());
    let mut positions = b.positions(SIM).unwrap();
    positions.extend(b.positions(OTHER).unwrap());
    let quotes = [ES, NQ]
        .iter()
        .map(|i| b.quote(i).ok().map(|q| q.last_price))
        .collect();
    (orders, positions, quotes)
}

fn log_entries(tree: &sled::Tree) -> usize {
    tree.scan_prefix(b"l").count()
}

/// A day of trading in miniature: quotes, brackets, cancels, fills and pruning, on both accounts.
fn trade(b: &PaperBroker, clock: &ManualClock, rounds: u32) {
    b.set_quote(ES, 4500.0).unwrap();
    b.set_quote(NQ, 16000.0).unwrap();
    for i in 0..rounds {
        let account = if i % 2 == 0 { SIM } else { OTHER };
        clock.advance(7);
        b.place_order(account, &order(Action::Buy, OrderType::Market, 1, None))
            .unwrap();
        let req = BracketRequest {
            account: account.into(),
            ..bracket(Action::Buy, 3, Some(4510.0), Some(4490.0))
        };
        let ticket = b.bracket_begin(&req).unwrap();
        b.bracket_finish(ticket).unwrap();
        let nq = b
            .place_order(
                account,
                &PlaceOrder {
                    instrument: NQ.into(),
                    ..order(Action::Buy, OrderType::Limit, 1, Some(15990.0))
                },
            )
            .unwrap();
        if i % 3 == 0 {
            b.cancel_order(account, &nq.order_id).unwrap();
        }
        let tick = if i % 4 == 0 { 0.25 } else { -0.25 };
        b.set_quote(ES, 4500.0 + tick).unwrap();
    }
}

#[test]
fn state_survives_snapshots_and_the_log_after_them() {
    let (_db, tree, clock) = scratch_tree();
    let cfg = PaperConfig {
        max_terminal_orders: 20,
        ..config()
    };
    let open = |every| {
        PaperBroker::open(
            tree.clone(),
            PaperConfig {
                snapshot_every: every,
                ..cfg.clone()
            },
            instruments(),
            clock.clone(),
        )
        .unwrap()
    };
    let b = open(5);
    trade(&b, &clock, 40);
    // Several snapshots were taken, and the log stayed within its ring of 2 × 5 slots.
    assert!(header(&tree)["generation"].as_u64().unwrap() > 10);
    assert_eq!(log_entries(&tree), 10);
    let before = venue(&b);
    assert!(before.0.len() > 30, "{} orders", before.0.len());
    assert!(before
        .0
        .iter()
        .any(|o| o.state == OrderState::CancelPending));

    let again = open(5);
    assert_eq!(venue(&again), before);
    // Sequence numbers continue after the loaded ones.
    let next = again
        .place_order(SIM, &order(Action::Buy, OrderType::Limit, 1, Some(4400.0)))
        .unwrap();
    assert!(before.0.iter().all(|o| o.sequence < next.sequence));

    // With no snapshot at all, the log alone rebuilds the same venue.
    let (_db2, tree2, clock2) = scratch_tree();
    let open2 = || {
        PaperBroker::open(
            tree2.clone(),
            PaperConfig {
                snapshot_every: config::MAX_SNAPSHOT_EVERY,
                ..cfg.clone()
            },
            instruments(),
            clock2.clone(),
        )
        .unwrap()
    };
    let c = open2();
    trade(&c, &clock2, 40);
    assert!(tree2.get(b"S").unwrap().is_none());
    assert!(log_entries(&tree2) > 100);
    assert_eq!(venue(&open2()), venue(&c));
}

fn header(tree: &sled::Tree) -> Value {
    serde_json::from_slice(&tree.get(b"S").unwrap().expect("a snapshot header")).unwrap()
}

/// The slot key and the value stored there, for log entry `n` in a ring of `ring` slots.
fn slot(tree: &sled::Tree, n: u64, ring: u64) -> (Vec<u8>, Option<sled::IVec>) {
    let mut key = vec![b'l'];
    key.extend(((n % ring) as u32).to_be_bytes());
    let value = tree.get(&key).unwrap();
    (key, value)
}

#[test]
fn leftovers_of_an_interrupted_snapshot_are_skipped_and_a_gap_in_the_log_is_refused() {
    let (_db, tree, clock) = scratch_tree();
    let open = || {
        PaperBroker::open(
            tree.clone(),
            PaperConfig {
                snapshot_every: 4,
                ..config()
            },
            instruments(),
            clock.clone(),
        )
    };
    let b = open().unwrap();
    trade(&b, &clock, 6);
    let h = header(&tree);
    let (generation, upto) = (
        h["generation"].as_u64().unwrap(),
        h["upto"].as_u64().unwrap(),
    );
    // Two operations after the snapshot, so the log has entries past it (4 per snapshot).
    b.set_quote(NQ, 16000.25).unwrap();
    b.set_quote(NQ, 16000.5).unwrap();
    assert_eq!(header(&tree)["upto"].as_u64().unwrap(), upto);
    let before = venue(&b);

    // A crash while writing the next generation: a chunk of the other parity that no header names. And
    // an entry the snapshot already includes, unreadable. Neither is even decoded.
    let mut orphan_chunk = vec![b'c', ((generation + 1) % 2) as u8];
    orphan_chunk.extend(999u32.to_be_bytes());
    tree.insert(&orphan_chunk, &b"not json"[..]).unwrap();
    let (covered, _) = slot(&tree, upto, 8);
    let mut junk = upto.to_be_bytes().to_vec();
    junk.extend(b"not json");
    tree.insert(&covered, junk).unwrap();
    let again = open().unwrap();
    assert_eq!(venue(&again), before);
    // The next snapshot, of that parity, removes the orphan chunk.
    trade(&again, &clock, 2);
    assert!(header(&tree)["generation"].as_u64().unwrap() > generation);
    assert!(tree.get(&orphan_chunk).unwrap().is_none());
    let after = venue(&again);
    // From here on the reopened broker is the only one writing.
    let again = open().unwrap();
    assert_eq!(venue(&again), after);

    // An entry after the snapshot that is not there: refused, naming it, rather than skipped. It needs
    // two entries past the snapshot, so that one is missing before the other.
    let mut price = 16000.75;
    let upto = loop {
        again.set_quote(NQ, price).unwrap();
        price += 0.25;
        let upto = header(&tree)["upto"].as_u64().unwrap();
        if slot(&tree, upto + 2, 8)
            .1
            .is_some_and(|v| v[..8] == (upto + 2).to_be_bytes())
        {
            break upto;
        }
    };
    let (missing, value) = slot(&tree, upto + 1, 8);
    assert_eq!(value.unwrap()[..8], (upto + 1).to_be_bytes());
    tree.remove(&missing).unwrap();
    let err = open().unwrap_err().to_string();
    assert!(
        err.contains(&format!("log entry {} is missing", upto + 1)),
        "{err}"
    );
}

#[test]
fn a_tree_in_the_old_one_key_per_order_layout_is_converted() {
    let (b, clock) = open();
    trade(&b, &clock, 5);
    let before = venue(&b);
    // The layout written before the log: o/{account}/{id}, p/{account}/{instrument}, q/{instrument}.
    let (_db, tree, _) = scratch_tree();
    for o in &before.0 {
        let key = format!("o/{}/{}", o.account, o.order_id);
        tree.insert(key, serde_json::to_vec(o).unwrap()).unwrap();
    }
    for p in &before.1 {
        let key = format!("p/{}/{}", p.account, p.instrument);
        tree.insert(key, serde_json::to_vec(p).unwrap()).unwrap();
    }
    for (i, q) in [ES, NQ].iter().zip(&before.2) {
        let price = q.unwrap();
        tree.insert(format!("q/{i}"), serde_json::to_vec(&price).unwrap())
            .unwrap();
    }
    let open = || PaperBroker::open(tree.clone(), config(), instruments(), clock.clone()).unwrap();
    assert_eq!(venue(&open()), before);
    for prefix in ["o/", "p/", "q/"] {
        assert_eq!(tree.scan_prefix(prefix).count(), 0, "{prefix} keys left");
    }
    assert!(tree.get(b"S").unwrap().is_some());
    assert_eq!(venue(&open()), before);
}

#[test]
fn accounts_and_instruments_dropped_from_the_config_survive_snapshots() {
    let (_db, tree, clock) = scratch_tree();
    let open = |cfg: PaperConfig| {
        PaperBroker::open(
            tree.clone(),
            PaperConfig {
                snapshot_every: 2,
                ..cfg
            },
            instruments(),
            clock.clone(),
        )
        .unwrap()
    };
    let b = open(config());
    trade(&b, &clock, 4);
    let before = venue(&b);
    assert!(!b.orders(OTHER).unwrap().is_empty());
    // Without Sim102 for a while, with snapshots taken in the meantime...
    let only_sim = PaperConfig {
        accounts: vec![SIM.into()],
        ..config()
    };
    let narrow = open(only_sim);
    for _ in 0..5 {
        narrow.set_quote(ES, 4500.0).unwrap();
        narrow.set_quote(ES, 4500.25).unwrap();
    }
    narrow.set_quote(ES, before.2[0].unwrap()).unwrap();
    // ...and back: Sim102's orders and positions are as it left them.
    let back = open(config());
    assert_eq!(back.orders(OTHER).unwrap(), b.orders(OTHER).unwrap());
    assert_eq!(back.positions(OTHER).unwrap(), b.positions(OTHER).unwrap());
}
