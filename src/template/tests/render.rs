//! Rendering: fan-out over accounts and several requests, the idempotency key, the names an
//! expression sees and their precedence, and errors pinned to their request or field.

use super::*;
use crate::domain::Action;

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
