//! CancelAndBracket: the old pair replaced, clamped to the position, aborted when the
//! position changes in the cancel window, entry brackets, and refusals that cancel nothing.

use super::*;
use crate::domain::OcoId;

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
