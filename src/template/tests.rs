use std::collections::BTreeMap;

use serde_json::{json, Map as JsonMap, Value as Json};

use super::*;
use crate::domain::{Action, RequestError};
use crate::instruments::InstrumentSpec;

fn instruments() -> Arc<Instruments> {
    let mut specs = BTreeMap::new();
    for (name, tick, symbol) in [
        ("ES 12-26", 0.25, "ES1!"),
        ("MES 12-26", 0.25, "MES1!"),
        ("NQ 12-26", 0.25, "NQ1!"),
        ("MNQ 12-26", 0.25, "MNQ1!"),
        ("CL 01-27", 0.01, "CL1!"),
        ("GC 02-27", 0.1, "GC1!"),
    ] {
        specs.insert(
            name.to_string(),
            InstrumentSpec {
                tick_size: tick,
                point_value: 1.0,
                symbols: vec![symbol.to_string()],
            },
        );
    }
    Arc::new(Instruments::new(specs).unwrap())
}

fn built_in() -> Templates {
    Templates::load(None, instruments()).unwrap()
}

fn obj(v: Json) -> JsonMap<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// Loads the built-ins plus the given files from a temporary directory.
fn with_files(files: &[(&str, &str)]) -> Result<Templates, TemplateError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Templates::load(Some(dir.path()), instruments())
}

fn requests(r: Rendered) -> (Option<String>, Vec<BracketRequest>) {
    match r {
        Rendered::Requests { key, requests } => (key, requests),
        other => panic!("expected requests, got {other:?}"),
    }
}

/// The message the README tells TradingView users to paste, as TradingView fills it in.
fn tv_alert(market_position: &str, size: Json, price: Json) -> JsonMap<String, Json> {
    obj(json!({
        "secret": "s3cret",
        "ticker": "ES1!",
        "timenow": "2026-03-02T14:30:00Z",
        "close": 4500.5,
        "strategy": {
            "action": "buy",
            "contracts": 2,
            "price": price,
            "id": "Long Entry",
            "market_position": market_position,
            "market_position_size": size,
        }
    }))
}

#[test]
fn templates_are_send_sync_and_listed() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templates>();
    let t = built_in();
    assert_eq!(
        t.names(),
        ["crosstrade-kv", "signal-service", "tradingview-strategy"]
    );
    assert!(t.contains("signal-service"));
    assert!(!t.contains("nope"));
    assert!(t
        .description("tradingview-strategy")
        .unwrap()
        .contains("TradingView"));
}

#[test]
fn tradingview_long_brackets_the_position() {
    let t = built_in();
    let (key, reqs) = requests(
        t.render(
            "tradingview-strategy",
            &tv_alert("long", json!(2), json!(4500.25)),
            "tv",
        )
        .unwrap(),
    );
    assert_eq!(key.as_deref(), Some("ES1!-2026-03-02T14:30:00Z-Long Entry"));
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
    let (_, reqs) = requests(t.render("tradingview-strategy", &alert, "tv").unwrap());
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
                "tradingview-strategy",
                &tv_alert(flat, json!(0), json!(4500)),
                "tv",
            )
            .unwrap();
        assert_eq!(
            r,
            Rendered::Skipped {
                reason: "when condition is false: strategy.market_position | lower != 'flat'"
                    .into(),
                key: Some("ES1!-2026-03-02T14:30:00Z-Long Entry".into()),
            }
        );
    }
}

#[test]
fn tradingview_missing_field_names_template_and_field() {
    let t = built_in();
    let mut alert = tv_alert("long", json!(1), json!(4500));
    alert["strategy"].as_object_mut().unwrap().remove("price");
    let e = t.render("tradingview-strategy", &alert, "tv").unwrap_err();
    assert_eq!(
        e.to_string(),
        "template 'tradingview-strategy', field 'vars.entry' (strategy.price | float): undefined value"
    );
}

#[test]
fn tradingview_unknown_symbol() {
    let t = built_in();
    let mut alert = tv_alert("long", json!(1), json!(4500));
    alert.insert("ticker".into(), json!("ZB1!"));
    let e = t
        .render("tradingview-strategy", &alert, "tv")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "template 'tradingview-strategy', field 'vars.instrument' (ticker | instrument): \
         unknown symbol 'ZB1!'; map it under [instruments.\"...\"] symbols in the config"
    );
}

#[test]
fn tradingview_zero_quantity_is_an_invalid_request() {
    let t = built_in();
    // A "long" with size 0 would be a TradingView glitch; it must not become a 0-lot bracket.
    let e = t
        .render(
            "tradingview-strategy",
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
        "template 'tradingview-strategy', request for account 'Sim101': \
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

#[test]
fn fan_out_uses_account_and_multiple_requests() {
    let t = with_files(&[(
        "multi.toml",
        r#"
key = "{{ source }}-{{ alert.text | lower }}"
when = "alert.text != 'ignore'"
accounts = "alert.accts | default('Sim101, Sim102')"
[vars]
side = "alert.text | action"
[[requests]]
instrument = "'ES1!'"
action = "side"
quantity = "{'Sim101': 2}[account] | default(1)"
stopLoss = "offset(4500, side, -4, 'ticks', 'ES1!')"
ocoId = "account ~ '-es'"
[[requests]]
account = "account ~ '-hedge'"
instrument = "'NQ1!'"
action = "side"
quantity = 1
takeProfit = "offset(18000, side, 8, 'ticks', 'NQ1!')"
cancelDelayMs = 250
"#,
    )])
    .unwrap();
    let (key, reqs) = requests(
        t.render("multi", &obj(json!({"text": "SELL"})), "desk")
            .unwrap(),
    );
    assert_eq!(key.as_deref(), Some("desk-sell"));
    let got: Vec<_> = reqs
        .iter()
        .map(|r| {
            (
                r.account.as_str(),
                r.instrument.as_str(),
                r.quantity,
                r.oco_id.as_ref().map(|o| o.0.as_str()),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Sim101", "ES 12-26", 2, Some("Sim101-es")),
            ("Sim101-hedge", "NQ 12-26", 1, None),
            ("Sim102", "ES 12-26", 1, Some("Sim102-es")),
            ("Sim102-hedge", "NQ 12-26", 1, None),
        ]
    );
    assert_eq!(reqs[0].stop_loss, Some(4501.0));
    assert_eq!(reqs[1].take_profit, Some(17998.0));
    assert_eq!(reqs[1].cancel_delay_ms, Some(250));
    assert!(reqs.iter().all(|r| r.action == Action::Sell));

    let skipped = t
        .render("multi", &obj(json!({"text": "ignore"})), "desk")
        .unwrap();
    assert!(matches!(skipped, Rendered::Skipped { key: Some(k), .. } if k == "desk-ignore"));

    let e = t
        .render("multi", &obj(json!({"text": "buy", "accts": []})), "desk")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "template 'multi', field 'accounts' (alert.accts | default('Sim101, Sim102')): no accounts to fan out to"
    );
    let e = t
        .render("multi", &obj(json!({"text": "buy", "accts": [1]})), "desk")
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("account names must be strings, got 1"), "{e}");
}

#[test]
fn invalid_request_names_the_request_index() {
    let t = with_files(&[(
        "two.toml",
        r#"
[[requests]]
account = "'A'"
instrument = "'ES1!'"
action = "'Buy'"
quantity = 1
stopLoss = 4490
[[requests]]
account = "'A'"
instrument = "'ES1!'"
action = "'Buy'"
quantity = 1
stopLoss = 4490.1
"#,
    )])
    .unwrap();
    let e = t
        .render("two", &JsonMap::new(), "x")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "template 'two', requests[1]: stopLoss: price 4490.1 is not on the tick grid of ES 12-26 (tick size 0.25)"
    );
}

#[test]
fn empty_key_means_no_key_and_strict_key_fields() {
    let t = with_files(&[(
        "k.toml",
        "key = \"{{ alert.id | default('') }}\"\n[request]\naccount = \"'A'\"\ninstrument = \"'ES1!'\"\n\
         action = \"'Buy'\"\nquantity = 1\nstopLoss = 4490\n",
    )])
    .unwrap();
    assert_eq!(
        requests(t.render("k", &JsonMap::new(), "x").unwrap()).0,
        None
    );
    assert_eq!(
        requests(t.render("k", &obj(json!({"id": " 7 "})), "x").unwrap()).0,
        Some("7".to_string())
    );
    // A missing field in the key is an error, not an empty key.
    let e = built_in()
        .render("signal-service", &obj(json!({"symbol": "NQ1!"})), "s")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "template 'signal-service', field 'key' ({{ id }}): undefined value"
    );
}

#[test]
fn unknown_template_lists_the_known_ones() {
    let e = built_in().render("nope", &JsonMap::new(), "x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown template 'nope'; known templates: crosstrade-kv, signal-service, tradingview-strategy"
    );
}

#[test]
fn a_directory_file_overrides_a_built_in() {
    let t = with_files(&[
        (
            "signal-service.toml",
            "description = \"mine\"\naccounts = [\"Live1\"]\n[request]\ninstrument = \"symbol\"\n\
             action = \"side | action\"\nquantity = \"qty\"\nstopLoss = \"sl\"\n",
        ),
        ("extra.toml", "[request]\naccount = \"'A'\"\ninstrument = \"'ES1!'\"\naction = \"'Buy'\"\nquantity = 1\nstopLoss = 1\n"),
        ("README.md", "not a template"),
    ])
    .unwrap();
    assert_eq!(
        t.names(),
        [
            "crosstrade-kv",
            "extra",
            "signal-service",
            "tradingview-strategy"
        ]
    );
    assert_eq!(t.description("signal-service"), Some("mine"));
    let alert = obj(json!({"symbol":"ES1!","side":"sell","qty":1,"sl":4510}));
    let (key, reqs) = requests(t.render("signal-service", &alert, "s").unwrap());
    assert_eq!(key, None);
    assert_eq!(reqs[0].account, "Live1");
    assert_eq!(reqs[0].stop_loss, Some(4510.0));
}

#[test]
fn load_errors_name_the_file_and_field() {
    // Bad TOML.
    let e = with_files(&[("broken.toml", "when = \n")])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("template file ") && e.contains("broken.toml: "),
        "{e}"
    );

    // A syntax error in an expression names the field and the expression.
    let e = with_files(&[(
        "bad.toml",
        "[vars]\nentry = \"close |\"\n[request]\naccount = \"'A'\"\n",
    )])
    .unwrap_err();
    let TemplateError::Compile {
        template,
        field,
        expr,
        file,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(
        (template.as_str(), field.as_str(), expr.as_str()),
        ("bad", "vars.entry", "close |")
    );
    assert!(file.ends_with("bad.toml"));
    assert!(
        e.to_string()
            .contains("field 'vars.entry' (close |): syntax error"),
        "{e}"
    );

    // An expression cannot close the wrapper it is compiled in.
    let e = with_files(&[("esc.toml", "[request]\naccount = \"1 %}{% set x = 2\"\n")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field 'account' (1 %}{% set x = 2): syntax error"),
        "{e}"
    );

    // A bad key template.
    let e = with_files(&[("k.toml", "key = \"{{ id \"\n[request]\naccount = \"1\"\n")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("field 'key' ({{ id ): syntax error"), "{e}");

    // Structural mistakes.
    for (text, needle) in [
        (
            "[request]\ntakeprofit = \"1\"\n",
            "field 'takeprofit': unknown request field; expected one of account,",
        ),
        ("description = \"x\"\n", "field 'request': missing"),
        (
            "[request]\nquantity = 1\n[[requests]]\nquantity = 1\n",
            "use either [request] or [[requests]]",
        ),
        (
            "accounts = []\n[request]\nquantity = 1\n",
            "field 'accounts': a list of accounts must hold",
        ),
        (
            "accounts = 3\n[request]\nquantity = 1\n",
            "field 'accounts': must be a list",
        ),
        (
            "[vars]\naccount = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.account': a var name",
        ),
        (
            "[vars]\n__r0 = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.__r0': a var name",
        ),
        (
            "[vars]\nloop = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.loop': this name is a reserved word",
        ),
        (
            "[vars]\nnone = \"1\"\n[request]\nquantity = 1\n",
            "field 'vars.none': this name is a reserved word",
        ),
        (
            "[request]\nquantity = [1]\n",
            "field 'quantity': must be a string holding an expression",
        ),
        (
            "[request]\nquantity = \"  \"\n",
            "field 'quantity': empty expression",
        ),
        (
            "typo = 1\n[request]\nquantity = 1\n",
            "unknown field `typo`",
        ),
    ] {
        let e = with_files(&[("s.toml", text)]).unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
        assert!(e.contains("s.toml"), "{text:?}: {e}");
    }
}

#[test]
fn invalid_names_and_missing_dirs() {
    let e = with_files(&[("my template.toml", "[request]\nquantity = 1\n")]).unwrap_err();
    assert!(
        matches!(&e, TemplateError::InvalidName { name, .. } if name == "my template"),
        "{e}"
    );
    assert!(e
        .to_string()
        .starts_with("invalid template name 'my template' ("));

    let e = Templates::load(Some(Path::new("/nonexistent/templates")), instruments())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("template file /nonexistent/templates: "),
        "{e}"
    );
}

#[test]
fn context_names_and_precedence() {
    let t = with_files(&[(
        "ctx.toml",
        r#"
accounts = ["Acc"]
[vars]
v = "source ~ '|' ~ alert.source ~ '|' ~ ('yes' if missing is defined else 'no') ~ '|' ~ (alert.missing | default('d'))"
[request]
account = "account ~ '-' ~ v"
instrument = "'ES1!'"
action = "'Buy'"
quantity = 1
stopLoss = 1
"#,
    )])
    .unwrap();
    let (_, reqs) = requests(
        t.render("ctx", &obj(json!({"source": "field"})), "src")
            .unwrap(),
    );
    assert_eq!(reqs[0].account, "Acc-src|field|no|d");
}

/// Vars and request fields are evaluated as one template each: an error or an undefined value is still
/// pinned to its own field, also after a multi-line expression, and a later field sees the earlier vars.
#[test]
fn grouped_fields_keep_their_own_errors() {
    let file = r#"
accounts = ["Acc"]
[vars]
a = "alert.n | int"
b = """(a +
  1)"""
c = "alert.c"
d = "b * 2"
[request]
instrument = "'ES1!'"
action = "'Buy'"
quantity = "d"
stopLoss = """(1 +
  1)"""
takeProfit = "alert.tp"
"#;
    let t = with_files(&[("g.toml", file)]).unwrap();
    let (_, reqs) = requests(
        t.render("g", &obj(json!({"n": "1", "c": 0, "tp": 5})), "s")
            .unwrap(),
    );
    assert_eq!(reqs[0].quantity, 4, "d = (1 + 1) * 2");
    assert_eq!(reqs[0].take_profit, Some(5.0));

    let err = |alert: Json| t.render("g", &obj(alert), "s").unwrap_err().to_string();
    // Undefined in the third var, after a two-line one: named as vars.c, not as d, which uses b.
    assert_eq!(
        err(json!({"n": "1", "tp": 5})),
        "template 'g', field 'vars.c' (alert.c): undefined value"
    );
    // A failing filter in the first var.
    assert!(
        err(json!({"n": "x", "c": 0, "tp": 5}))
            .starts_with("template 'g', field 'vars.a' (alert.n | int):"),
        "{}",
        err(json!({"n": "x", "c": 0, "tp": 5}))
    );
    // The last request field, after a multi-line one, for its account.
    assert_eq!(
        err(json!({"n": "1", "c": 0})),
        "template 'g', field 'takeProfit' (alert.tp) for account 'Acc': undefined value"
    );
}
