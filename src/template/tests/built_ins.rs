//! The shipped templates on the alerts their senders send: tradingview-strategy, signal-service
//! and crosstrade-kv.

use super::*;
use crate::domain::{Action, PositionGate, RelayFields, RequestError};

#[test]
fn tradingview_long_brackets_the_position() {
    let t = built_in();
    let (key, reqs) = requests(
        t.render(
            "tradingview-protect",
            &tv_alert("long", json!(2), json!(4500.25)),
            "tv",
        )
        .unwrap(),
    );
    assert_eq!(
        key.as_deref(),
        Some("ES1!-2026-03-02T14:30:00Z-Long Entry-buy-2-long-2")
    );
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.account, "Sim101");
    assert_eq!(r.instrument, "ES 12-26");
    assert_eq!(r.action, Action::Buy);
    assert_eq!(r.quantity, 2);
    assert_eq!(r.take_profit, Some(4510.25)); // +40 ticks of 0.25
    assert_eq!(r.stop_loss, Some(4495.25)); // -20 ticks
}

#[test]
fn tradingview_short_with_string_numbers_and_overrides() {
    let t = built_in();
    let mut alert = tv_alert("Short", json!("3"), json!("4500.13"));
    alert.insert("tp_ticks".into(), json!("8"));
    alert.insert("sl_ticks".into(), json!(4));
    let (_, reqs) = requests(t.render("tradingview-protect", &alert, "tv").unwrap());
    let r = &reqs[0];
    assert_eq!(r.action, Action::Sell);
    assert_eq!(r.quantity, 3);
    // 4500.13 - 8 ticks = 4498.13 → 4498.25; 4500.13 + 4 ticks = 4501.13 → 4501.25
    assert_eq!(r.take_profit, Some(4498.25));
    assert_eq!(r.stop_loss, Some(4501.25));
}

#[test]
fn tradingview_skips_when_flat_and_keeps_the_key() {
    let t = built_in();
    for flat in ["flat", "FLAT"] {
        let r = t
            .render(
                "tradingview-protect",
                &tv_alert(flat, json!(0), json!(4500)),
                "tv",
            )
            .unwrap();
        assert_eq!(
            r,
            Rendered::Skipped {
                reason: "when condition is false: strategy.market_position | lower != 'flat'"
                    .into(),
                key: Some(format!(
                    "ES1!-2026-03-02T14:30:00Z-Long Entry-buy-2-{flat}-0"
                )),
            }
        );
    }
}

#[test]
fn tradingview_missing_field_names_template_and_field() {
    let t = built_in();
    let mut alert = tv_alert("long", json!(1), json!(4500));
    alert["strategy"].as_object_mut().unwrap().remove("price");
    let e = t.render("tradingview-protect", &alert, "tv").unwrap_err();
    assert_eq!(
        e.to_string(),
        "template 'tradingview-protect', field 'vars.entry' (strategy.price | float): undefined value"
    );
}

#[test]
fn tradingview_unknown_symbol() {
    let t = built_in();
    let mut alert = tv_alert("long", json!(1), json!(4500));
    alert.insert("ticker".into(), json!("ZB1!"));
    let e = t
        .render("tradingview-protect", &alert, "tv")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "template 'tradingview-protect', field 'vars.instrument' (ticker | instrument): \
         unknown symbol 'ZB1!'; map it under [instruments.\"...\"] symbols in the config"
    );
}

#[test]
fn tradingview_zero_quantity_is_an_invalid_request() {
    let t = built_in();
    // A "long" with size 0 would be a TradingView glitch; it must not become a 0-lot bracket.
    let e = t
        .render(
            "tradingview-protect",
            &tv_alert("long", json!(0), json!(4500)),
            "tv",
        )
        .unwrap_err();
    assert!(matches!(
        &e,
        TemplateError::InvalidRequest { error, .. }
            if matches!(**error, RequestError::BadField { field: "quantity", .. })
    ));
    assert_eq!(
        e.to_string(),
        "template 'tradingview-protect', request for account 'Sim101': \
         quantity must be a positive integer, got 0.0"
    );
}

#[test]
fn signal_service_example() {
    let t = built_in();
    let alert = obj(
        json!({"id":"sig-123","symbol":"NQ1!","side":"long","qty":2,"entry":18250.5,
        "tp":18300.1,"sl":18200.3,"accounts":["Sim101"]}),
    );
    let (key, reqs) = requests(t.render("signal-service", &alert, "signals").unwrap());
    assert_eq!(key.as_deref(), Some("sig-123"));
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (
            r.account.as_str(),
            r.instrument.as_str(),
            r.action,
            r.quantity
        ),
        ("Sim101", "NQ 12-26", Action::Buy, 2)
    );
    assert_eq!(r.take_profit, Some(18300.0));
    assert_eq!(r.stop_loss, Some(18200.25));
}

#[test]
fn signal_service_fans_out_and_defaults() {
    let t = built_in();
    let alert = obj(
        json!({"id":"sig-9","symbol":"CME_MINI:MES1!","side":"SHORT","qty":"1",
        "tp":5000.1,"accounts":["Sim101","Sim102"]}),
    );
    let (_, reqs) = requests(t.render("signal-service", &alert, "signals").unwrap());
    let accounts: Vec<_> = reqs.iter().map(|r| r.account.as_str()).collect();
    assert_eq!(accounts, ["Sim101", "Sim102"]);
    for r in &reqs {
        assert_eq!(r.instrument, "MES 12-26");
        assert_eq!(r.action, Action::Sell);
        assert_eq!(r.take_profit, Some(5000.0));
        assert_eq!(r.stop_loss, None);
    }
    // Without `accounts`, Sim101; gold rounds to 0.1.
    let alert =
        obj(json!({"id":"g","symbol":"GC1!","side":"Buy","qty":1,"tp":2400.04,"sl":2380.06}));
    let (_, reqs) = requests(t.render("signal-service", &alert, "signals").unwrap());
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].account, "Sim101");
    assert_eq!(reqs[0].take_profit, Some(2400.0));
    assert_eq!(reqs[0].stop_loss, Some(2380.1));
}

#[test]
fn signal_service_bad_side_names_the_value() {
    let t = built_in();
    let alert = obj(json!({"id":"x","symbol":"NQ1!","side":"hold","qty":1,"tp":1,"sl":2}));
    let e = t
        .render("signal-service", &alert, "s")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "template 'signal-service', field 'action' (side | action) for account 'Sim101': \
         expected an action (buy, sell, long or short), got 'hold'"
    );
}

#[test]
fn crosstrade_kv_example() {
    let t = built_in();
    // account=Sim101;instrument=ES1!;action=buy;qty=1;take_profit=4510;stop_loss=4490;
    let alert = obj(
        json!({"account":"Sim101","instrument":"ES1!","action":"buy","qty":"1",
        "take_profit":"4510","stop_loss":"4490"}),
    );
    let (key, reqs) = requests(t.render("crosstrade-kv", &alert, "kv").unwrap());
    assert_eq!(key, None);
    assert_eq!(
        reqs,
        [BracketRequest {
            account: "Sim101".into(),
            instrument: "ES 12-26".into(),
            action: Action::Buy,
            quantity: 1,
            take_profit: Some(4510.0),
            stop_loss: Some(4490.0),
            oco_id: None,
            cancel_delay_ms: None,
            relay: RelayFields {
                entry: true,
                position: Some(PositionGate::SameSide),
                ..Default::default()
            },
        }]
    );
    let alert = obj(
        json!({"account":"Sim102","instrument":"CL 01-27","action":"Sell","quantity":"2",
        "take_profit":"70.004","stop_loss":"","id":"abc"}),
    );
    let (key, reqs) = requests(t.render("crosstrade-kv", &alert, "kv").unwrap());
    assert_eq!(key.as_deref(), Some("abc"));
    assert_eq!(
        (
            reqs[0].action,
            reqs[0].quantity,
            reqs[0].take_profit,
            reqs[0].stop_loss
        ),
        (Action::Sell, 2, Some(70.0), None)
    );
}

#[test]
fn crosstrade_kv_missing_account_is_a_field_error() {
    let t = built_in();
    let alert = obj(json!({"instrument":"ES1!","action":"buy","qty":"1","stop_loss":"4490"}));
    let e = t
        .render("crosstrade-kv", &alert, "kv")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "template 'crosstrade-kv', field 'account' (account): undefined value"
    );
}

/// The steps tradingview-strategy renders for a strategy moving from `prev` to `now`, as
/// (command, action, quantity, gate).
fn strategy_steps(
    prev: Option<&str>,
    now: &str,
    size: u32,
    action: &str,
    contracts: u32,
) -> Vec<String> {
    let mut alert = tv_alert(now, json!(size), json!(4500));
    let strategy = alert["strategy"].as_object_mut().unwrap();
    strategy.insert("action".into(), json!(action));
    strategy.insert("contracts".into(), json!(contracts));
    if let Some(prev) = prev {
        strategy.insert("prev_market_position".into(), json!(prev));
    }
    match built_in()
        .render("tradingview-strategy", &alert, "tv")
        .unwrap()
    {
        Rendered::Skipped { reason, .. } => vec![format!("skipped: {reason}")],
        Rendered::Requests { requests, .. } => requests
            .iter()
            .map(|c| match c {
                Command::CancelAndBracket(b) => format!(
                    "CancelAndBracket {} {} {:?} tp {:?} sl {:?}",
                    b.action,
                    if b.relay.quantity_from_position {
                        "position".to_string()
                    } else {
                        b.quantity.to_string()
                    },
                    b.relay.position,
                    b.take_profit,
                    b.stop_loss
                ),
                Command::PlaceOrder(o) => format!(
                    "PlaceOrder {} {} {:?} {:?}",
                    o.action, o.quantity, o.order_type, o.relay.position
                ),
                Command::ClosePosition(c) => format!("ClosePosition {}", c.instrument),
            })
            .collect(),
    }
}

#[test]
fn tradingview_strategy_follows_each_transition() {
    let bracket_long =
        "CancelAndBracket Buy position Some(SameSide) tp Some(4510.0) sl Some(4495.0)";
    let bracket_short =
        "CancelAndBracket Sell position Some(SameSide) tp Some(4490.0) sl Some(4505.0)";
    // flat → long: enter (only when flat), then bracket the size held.
    assert_eq!(
        strategy_steps(Some("flat"), "long", 2, "buy", 2),
        ["PlaceOrder Buy 2 Market Some(Flat)", bracket_long]
    );
    // long → long, resized: the strategy's order (an add only onto the same side, a reduce only against
    // it), then a bracket at the new size.
    assert_eq!(
        strategy_steps(Some("long"), "long", 3, "buy", 1),
        ["PlaceOrder Buy 1 Market Some(SameSide)", bracket_long]
    );
    assert_eq!(
        strategy_steps(Some("long"), "long", 1, "sell", 1),
        ["PlaceOrder Sell 1 Market Some(Reduce)", bracket_long]
    );
    // long → short: close, enter, bracket.
    assert_eq!(
        strategy_steps(Some("long"), "short", 1, "sell", 3),
        [
            "ClosePosition ES 12-26",
            "PlaceOrder Sell 1 Market Some(Flat)",
            bracket_short
        ]
    );
    // short → flat: close only.
    assert_eq!(
        strategy_steps(Some("short"), "flat", 0, "buy", 1),
        ["ClosePosition ES 12-26"]
    );
    // An older paste without prev_*: protect only.
    assert_eq!(strategy_steps(None, "long", 2, "buy", 2), [bracket_long]);
    // Flat without prev_*: nothing to do.
    assert_eq!(
        strategy_steps(None, "flat", 0, "sell", 2),
        ["skipped: no request's when condition held"]
    );
}

#[test]
fn tradingview_strategy_keys_tell_two_orders_of_one_second_apart() {
    let t = built_in();
    let key = |action: &str, prev: &str, now: &str| {
        let mut alert = tv_alert(now, json!(1), json!(4500));
        let s = alert["strategy"].as_object_mut().unwrap();
        s.insert("action".into(), json!(action));
        s.insert("prev_market_position".into(), json!(prev));
        match t.render("tradingview-strategy", &alert, "tv").unwrap() {
            Rendered::Requests { key, .. } | Rendered::Skipped { key, .. } => key.unwrap(),
        }
    };
    // The exit of a long and the entry of a short, same ticker, same second, same order id.
    assert_ne!(key("sell", "long", "flat"), key("sell", "flat", "short"));
}

#[test]
fn tradingview_indicator_takes_text_and_json() {
    let t = built_in();
    let text = |s: &str| obj(json!({ "text": s }));
    let (_, cmds) = commands(
        t.render("tradingview-indicator", &text("ES1! buy 2 4500"), "tv")
            .unwrap(),
    );
    assert!(
        matches!(&cmds[0], Command::PlaceOrder(o) if o.quantity == 2 && o.action == Action::Buy)
    );
    assert!(matches!(&cmds[1], Command::CancelAndBracket(b)
        if b.relay.quantity_from_position && b.take_profit == Some(4510.0) && b.stop_loss == Some(4495.0)));
    let (_, cmds) = commands(
        t.render("tradingview-indicator", &text("ES1! exit"), "tv")
            .unwrap(),
    );
    assert!(matches!(&cmds[..], [Command::ClosePosition(c)] if c.instrument == "ES 12-26"));
    let json_alert = obj(json!({"ticker": "ES1!", "action": "sell", "close": 4500}));
    let (_, cmds) = commands(
        t.render("tradingview-indicator", &json_alert, "tv")
            .unwrap(),
    );
    assert!(
        matches!(&cmds[0], Command::PlaceOrder(o) if o.quantity == 1 && o.action == Action::Sell)
    );
    // An entry without a price is refused, saying what to add: never an entry without its bracket.
    let e = t
        .render("tradingview-indicator", &text("ES1! buy"), "tv")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("an entry needs the alert price for its bracket"),
        "{e}"
    );
}
