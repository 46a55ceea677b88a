//! The trading helpers templates call, as functions and as filters: actions in any case, offsets
//! in ticks, points and percent, and bad arguments reported as render errors.

use super::*;
use crate::domain::Action;

#[test]
fn action_mapping_in_any_case() {
    let t = with_files(&[(
        "act.toml",
        "[request]\naccount = \"'A'\"\ninstrument = \"'ES1!'\"\naction = \"alert.text | action\"\n\
         quantity = 1\nstopLoss = \"4490 if action(alert.text) == 'Buy' else 4510\"\n",
    )])
    .unwrap();
    for (text, want) in [
        ("buy", Action::Buy),
        ("BUY", Action::Buy),
        ("Long", Action::Buy),
        (" long ", Action::Buy),
        ("sell", Action::Sell),
        ("SeLL", Action::Sell),
        ("short", Action::Sell),
        ("SHORT", Action::Sell),
    ] {
        let (_, reqs) = requests(t.render("act", &obj(json!({ "text": text })), "x").unwrap());
        assert_eq!(reqs[0].action, want, "{text}");
    }
}

#[test]
fn offsets_in_ticks_points_and_percent() {
    let t = with_files(&[(
        "off.toml",
        r#"
accounts = ["A"]
[vars]
inst = "alert.sym | instrument"
[[requests]]
instrument = "inst"
action = "alert.side | action"
quantity = 1
takeProfit = "offset(alert.price, alert.side, 10, 'points', inst)"
stopLoss = "offset(alert.price, alert.side, -5, 'ticks', inst)"
[[requests]]
instrument = "inst"
action = "alert.side | action"
quantity = 1
takeProfit = "alert.price | offset(alert.side, 1, 'percent', inst)"
stopLoss = "alert.price | offset(alert.side, '-0.5', 'percent', inst)"
"#,
    )])
    .unwrap();
    let render = |sym: &str, side: &str, price: Json| {
        let alert = obj(json!({"sym": sym, "side": side, "price": price}));
        let (_, reqs) = requests(t.render("off", &alert, "x").unwrap());
        reqs.iter()
            .map(|r| (r.take_profit.unwrap(), r.stop_loss.unwrap()))
            .collect::<Vec<_>>()
    };
    // ES long at 4500: +10 points, -5 ticks; +1% = 4545, -0.5% = 4477.5.
    assert_eq!(
        render("ES1!", "Buy", json!(4500)),
        [(4510.0, 4498.75), (4545.0, 4477.5)]
    );
    // CL short at 71.23 (a string): -10 points, +5 ticks; -1% = 70.5177 → 70.52, +0.5% = 71.58615 → 71.59.
    assert_eq!(
        render("CL1!", "short", json!("71.23")),
        [(61.23, 71.28), (70.52, 71.59)]
    );
    // GC long at 2400.05: rounding to 0.1 ticks.
    assert_eq!(
        render("GC1!", "long", json!(2400.05)),
        [(2410.1, 2399.6), (2424.1, 2388.0)]
    );
}

#[test]
fn helper_functions_and_filters() {
    let t = with_files(&[(
        "h.toml",
        r#"
[vars]
inst = "'MNQ1!' | instrument"
[request]
account = "'A'"
instrument = "instrument('MNQ 12-26')"
action = "'Buy'"
quantity = "'2'"
takeProfit = "(alert.price | float) + ticks(3, inst) + points(1) + ('200' | percent(1)) + (4 | ticks('MNQ1!'))"
stopLoss = "round_tick((alert.price | float) - tick_size(inst) * 7.4, inst)"
"#,
    )])
    .unwrap();
    let (_, reqs) = requests(t.render("h", &obj(json!({"price": "18000"})), "x").unwrap());
    // 18000 + 0.75 + 1 + 2 + 1 = 18004.75; 18000 - 1.85 = 17998.15 → 17998.25
    assert_eq!(reqs[0].take_profit, Some(18004.75));
    assert_eq!(reqs[0].stop_loss, Some(17998.25));
    assert_eq!(reqs[0].quantity, 2);
}

#[test]
fn bad_helper_arguments_are_render_errors() {
    let t = with_files(&[(
        "bad.toml",
        "[request]\naccount = \"'A'\"\ninstrument = \"'ES1!'\"\naction = \"'Buy'\"\nquantity = 1\n\
         takeProfit = \"offset(alert.p, 'Buy', 4, alert.unit, 'ES1!')\"\n",
    )])
    .unwrap();
    let cases = [
        (
            json!({"p": "abc", "unit": "ticks"}),
            "price must be a number, got 'abc'",
        ),
        (
            json!({"p": 1, "unit": "lots"}),
            "unit must be 'ticks', 'points' or 'percent', got 'lots'",
        ),
        (
            json!({"unit": "ticks"}),
            "undefined value: price is undefined",
        ),
    ];
    for (alert, cause) in cases {
        let e = t.render("bad", &obj(alert), "x").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "template 'bad', field 'takeProfit' (offset(alert.p, 'Buy', 4, alert.unit, 'ES1!')): {cause}"
            )
        );
    }
}
