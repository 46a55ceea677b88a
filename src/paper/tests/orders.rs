//! Single orders: when they fill and at what price, OCO siblings, and cancels with latency.

use super::*;
use crate::domain::OcoId;

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
