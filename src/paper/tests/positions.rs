//! Positions: averaging in, realizing out, reversing across zero, and flatten.

use super::*;

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
