//! Integration tests of the CrossTrade-compatible HTTP API backed by the embedded paper broker:
//! CancelAndBracket (validation, phases, abort-on-flat, clamp, OCO, idempotency) and the direct paper
//! endpoints (accounts, orders, positions, place, cancel, flatten, quotes), plus state across a restart.

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};

// ------------------------------------------------------------------------------------------ helpers

/// POST with the bearer token and extra headers; answers (status, JSON body or text, headers).
async fn post_full(
    s: &TestServer,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut rb = s.client.post(s.url(path)).bearer_auth(API_TOKEN).json(body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = tokio::time::timeout(Duration::from_secs(20), rb.send())
        .await
        .expect("request timed out")
        .expect("request");
    answer(resp).await
}

async fn cab(s: &TestServer, account: &str, body: Value) -> (u16, Value) {
    let (st, v, _) = post_full(
        s,
        &format!("/v1/api/accounts/{account}/orders/cancel_and_bracket"),
        &body,
        &[],
    )
    .await;
    (st, v)
}

/// PlaceOrder that must succeed; returns the answer body.
async fn place_ok(s: &TestServer, account: &str, body: Value) -> Value {
    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{account}/orders/place"),
            body.clone(),
        )
        .await;
    assert_eq!(st, 200, "place {body} -> {v}");
    assert_eq!(v["success"], true, "{v}");
    assert!(v["orderId"].is_string(), "{v}");
    v
}

async fn market(s: &TestServer, account: &str, instrument: &str, action: &str, qty: u32) -> Value {
    place_ok(
        s,
        account,
        json!({"instrument": instrument, "action": action, "quantity": qty, "orderType": "MARKET"}),
    )
    .await
}

async fn set_quote(s: &TestServer, instrument: &str, price: f64) -> Value {
    let (st, v) = s
        .api_post(
            "/paper/quote",
            json!({"instrument": instrument, "price": price}),
        )
        .await;
    assert_eq!(st, 200, "quote {instrument} {price} -> {v}");
    v
}

async fn positions(s: &TestServer, account: &str) -> Vec<Value> {
    let (st, v) = s
        .api_get(&format!("/v1/api/accounts/{account}/positions"))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true, "{v}");
    v["positions"].as_array().cloned().unwrap_or_default()
}

async fn position(s: &TestServer, account: &str, instrument: &str) -> Value {
    positions(s, account)
        .await
        .into_iter()
        .find(|p| p["instrument"] == instrument)
        .unwrap_or(json!({"instrument": instrument, "quantity": 0, "realizedPnl": 0.0}))
}

async fn position_qty(s: &TestServer, account: &str, instrument: &str) -> i64 {
    position(s, account, instrument).await["quantity"]
        .as_i64()
        .unwrap()
}

async fn order(s: &TestServer, account: &str, id: &str) -> Value {
    s.orders(account)
        .await
        .into_iter()
        .find(|o| o["orderId"] == id)
        .unwrap_or_else(|| panic!("order {id} not listed"))
}

/// Everything observable on the account: orders and positions.
async fn snapshot(s: &TestServer, account: &str) -> (Vec<Value>, Vec<Value>) {
    (s.orders(account).await, positions(s, account).await)
}

/// Waits until `order` reaches `state`.
async fn wait_state(s: &TestServer, account: &str, id: &str, state: &str) -> Value {
    let observe = || order(s, account, id);
    eventually(
        format!("order {id} {state}"),
        Duration::from_secs(10),
        observe,
        |o| o["state"] == state,
    )
    .await
}

fn assert_field_error(st: u16, v: &Value, field: &str, what: &str) {
    assert_eq!(st, 400, "{what}: {v}");
    let msg = v["error"].as_str().unwrap_or_else(|| panic!("{what}: {v}"));
    assert!(
        msg.starts_with(field),
        "{what}: error should name '{field}': {msg}"
    );
}

/// Checks a successful CancelAndBracket answer and the placed legs; returns (tp, sl) orders (if placed).
async fn check_bracket(
    s: &TestServer,
    account: &str,
    v: &Value,
    exit_action: &str,
    qty: u64,
    tp: Option<f64>,
    sl: Option<f64>,
) -> (Option<Value>, Option<Value>) {
    assert_eq!(v["success"], true, "{v}");
    assert!(v.get("aborted").is_none(), "{v}");
    assert_eq!(v["quantity"], qty, "{v}");
    let cancelled = ids(&v["cancelledOrderIds"]);
    let placed = ids(&v["placedOrderIds"]);
    let all: Vec<String> = cancelled.iter().chain(&placed).cloned().collect();
    assert_eq!(
        ids(&v["orderIds"]),
        all,
        "orderIds = cancelled then placed: {v}"
    );
    let oco = v["ocoId"].as_str().expect("ocoId").to_string();
    assert!(!oco.is_empty());
    assert_eq!(
        placed.len(),
        tp.is_some() as usize + sl.is_some() as usize,
        "{v}"
    );
    let mut legs = Vec::new();
    for id in &placed {
        legs.push(order(s, account, id).await);
    }
    let tp_leg = legs.iter().find(|o| o["orderType"] == "Limit").cloned();
    let sl_leg = legs
        .iter()
        .find(|o| o["orderType"] == "StopMarket")
        .cloned();
    for leg in &legs {
        assert_eq!(leg["action"], exit_action, "{leg}");
        assert_eq!(leg["quantity"], qty, "{leg}");
        assert_eq!(leg["ocoId"], oco.as_str(), "{leg}");
        assert_eq!(leg["state"], "Working", "{leg}");
        assert_eq!(leg["account"], account, "{leg}");
    }
    match tp {
        Some(p) => assert_eq!(tp_leg.as_ref().unwrap()["limitPrice"], p),
        None => assert!(tp_leg.is_none()),
    }
    match sl {
        Some(p) => assert_eq!(sl_leg.as_ref().unwrap()["stopPrice"], p),
        None => assert!(sl_leg.is_none()),
    }
    (tp_leg, sl_leg)
}

// ------------------------------------------------------------------------------------------ auth

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requires_bearer_token() {
    let s = TestServer::in_process("", None).await;
    let body = json!({"instrument": ES, "action": "Buy", "quantity": 1, "takeProfit": 6010, "stopLoss": 5990});
    let cab_path = "/v1/api/accounts/Sim101/orders/cancel_and_bracket";
    for auth in [None, Some("Bearer wrong-token"), Some(API_TOKEN)] {
        let mut rb = s.client.post(s.url(cab_path)).json(&body);
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "auth {auth:?}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("bearer"), "{v}");
    }
    for (method, path) in [
        ("GET", "/v1/api/accounts"),
        ("GET", "/v1/api/accounts/Sim101/orders"),
        ("GET", "/v1/api/accounts/Sim101/positions"),
        ("POST", "/v1/api/accounts/Sim101/orders/place"),
        ("POST", "/v1/api/accounts/Sim101/positions/flatten"),
        ("GET", "/v1/api/market/quote?instrument=ES%2012-26"),
        ("POST", "/paper/quote"),
    ] {
        let rb = if method == "GET" {
            s.client.get(s.url(path))
        } else {
            s.client
                .post(s.url(path))
                .json(&json!({"instrument": ES, "price": 5000}))
        };
        let st = rb.send().await.unwrap().status().as_u16();
        assert_eq!(st, 401, "{method} {path} without token");
    }
    // Nothing happened.
    assert!(s.orders("Sim101").await.is_empty());
    let (_, q) = s
        .api_get("/v1/api/market/quote?instrument=ES%2012-26")
        .await;
    assert_eq!(q["lastPrice"], 6000.0);
}

// ------------------------------------------------------------------------------------------ CancelAndBracket validation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_missing_required_fields_give_exact_body_and_change_nothing() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    place_ok(&s, "Sim101", json!({"instrument": ES, "action": "Sell", "quantity": 2, "orderType": "STOPMARKET", "stopPrice": 5980})).await;
    let before = snapshot(&s, "Sim101").await;

    let full = json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990});
    let mut cases = Vec::new();
    for field in ["instrument", "action", "quantity"] {
        let mut v = full.clone();
        v.as_object_mut().unwrap().remove(field);
        cases.push((format!("without {field}"), v.clone()));
        v[field] = Value::Null;
        cases.push((format!("{field} null"), v.clone()));
        v[field] = json!("  ");
        cases.push((format!("{field} blank"), v));
    }
    cases.push(("empty object".into(), json!({})));
    for (what, body) in cases {
        let (st, v) = cab(&s, "Sim101", body).await;
        assert_eq!(st, 400, "{what}: {v}");
        assert_eq!(v, json!({"error": MISSING_FIELDS}), "{what}");
    }
    // An empty body is an empty object: the same answer.
    let resp = s
        .client
        .post(s.url("/v1/api/accounts/Sim101/orders/cancel_and_bracket"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": MISSING_FIELDS})
    );
    // (A missing account is covered over WebSocket: over HTTP the account is always in the path.)
    let _ = full;

    assert_eq!(snapshot(&s, "Sim101").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_bad_values_name_the_field_and_change_nothing() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    place_ok(&s, "Sim101", json!({"instrument": ES, "action": "Sell", "quantity": 2, "orderType": "STOPMARKET", "stopPrice": 5980})).await;
    place_ok(&s, "Sim101", json!({"instrument": NQ, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 20900})).await;
    let before = snapshot(&s, "Sim101").await;

    let base = json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |ks: &[&str]| {
        let mut b = base.clone();
        for k in ks {
            b.as_object_mut().unwrap().remove(*k);
        }
        b
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown instrument",
            with("instrument", json!("ZZ 12-26")),
            "instrument",
        ),
        (
            "instrument not a string",
            with("instrument", json!(5)),
            "instrument",
        ),
        ("action Hold", with("action", json!("Hold")), "action"),
        ("action long", with("action", json!("long")), "action"),
        ("action number", with("action", json!(1)), "action"),
        ("quantity 0", with("quantity", json!(0)), "quantity"),
        ("quantity -2", with("quantity", json!(-2)), "quantity"),
        ("quantity 1.5", with("quantity", json!(1.5)), "quantity"),
        ("quantity abc", with("quantity", json!("abc")), "quantity"),
        ("quantity bool", with("quantity", json!(true)), "quantity"),
        (
            "no exits",
            without(&["takeProfit", "stopLoss"]),
            "takeProfit/stopLoss",
        ),
        (
            "tp off tick",
            with("takeProfit", json!(6010.1)),
            "takeProfit",
        ),
        ("sl off tick", with("stopLoss", json!(5990.3)), "stopLoss"),
        ("sl negative", with("stopLoss", json!(-1)), "stopLoss"),
        (
            "tp not a number",
            with("takeProfit", json!("high")),
            "takeProfit",
        ),
        (
            "tp below sl for Buy",
            with("takeProfit", json!(5980)),
            "takeProfit/stopLoss",
        ),
        (
            "tp above sl for Sell",
            json!({"instrument": ES, "action": "Sell", "quantity": 1, "takeProfit": 6010, "stopLoss": 5990}),
            "takeProfit/stopLoss",
        ),
        (
            "stop through market",
            with("stopLoss", json!(6000)),
            "stopLoss",
        ),
        (
            "stop above market",
            without(&["takeProfit"]).tap_set("stopLoss", json!(6005)),
            "stopLoss",
        ),
        ("bad ocoId", with("ocoId", json!("has space")), "ocoId"),
        (
            "cancelDelayMs too big",
            with("cancelDelayMs", json!(20000)),
            "cancelDelayMs",
        ),
        // Short-protecting bracket on a long position: refused before anything is cancelled.
        (
            "direction mismatch",
            json!({"instrument": ES, "action": "Sell", "quantity": 2, "takeProfit": 5990, "stopLoss": 6010}),
            "action",
        ),
    ];
    for (what, body, field) in cases {
        let (st, v) = cab(&s, "Sim101", body).await;
        assert_field_error(st, &v, field, what);
    }
    let (st, v) = cab(&s, "Nope", base.clone()).await;
    assert_field_error(st, &v, "account", "unknown account");
    assert!(v["error"].as_str().unwrap().contains("Nope"), "{v}");

    assert_eq!(
        snapshot(&s, "Sim101").await,
        before,
        "a refused request changed the account"
    );
}

trait TapSet {
    fn tap_set(self, k: &str, v: Value) -> Value;
}
impl TapSet for Value {
    fn tap_set(mut self, k: &str, v: Value) -> Value {
        self[k] = v;
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_direction_mismatch_while_short_cancels_nothing() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Sell", 1).await;
    let stop = place_ok(&s, "Sim101", json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 6020})).await;
    let before = snapshot(&s, "Sim101").await;
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 1, "takeProfit": 6010, "stopLoss": 5990}),
    )
    .await;
    assert_field_error(st, &v, "action", "Buy while short");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("short 1"), "{msg}");
    assert_eq!(snapshot(&s, "Sim101").await, before);
    assert_eq!(
        order(&s, "Sim101", stop["orderId"].as_str().unwrap()).await["state"],
        "Working"
    );
}

// ------------------------------------------------------------------------------------------ CancelAndBracket success

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_replaces_orders_on_the_instrument_only() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    let old_stop = place_ok(&s, "Sim101", json!({"instrument": ES, "action": "Sell", "quantity": 2, "orderType": "STOPMARKET", "stopPrice": 5980})).await;
    let old_limit = place_ok(&s, "Sim101", json!({"instrument": "ES1!", "action": "Sell", "quantity": 2, "orderType": "LIMIT", "limitPrice": 6050})).await;
    let nq = place_ok(&s, "Sim101", json!({"instrument": NQ, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 20900})).await;
    let old_ids = vec![
        old_stop["orderId"].as_str().unwrap().to_string(),
        old_limit["orderId"].as_str().unwrap().to_string(),
    ];

    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v["cancelledOrderIds"]), old_ids, "{v}");
    check_bracket(&s, "Sim101", &v, "Sell", 2, Some(6010.0), Some(5990.0)).await;
    for id in &old_ids {
        let o = order(&s, "Sim101", id).await;
        assert!(
            matches!(o["state"].as_str(), Some("CancelPending" | "Cancelled")),
            "{o}"
        );
        wait_state(&s, "Sim101", id, "Cancelled").await;
    }
    // Other instruments untouched.
    assert_eq!(
        order(&s, "Sim101", nq["orderId"].as_str().unwrap()).await["state"],
        "Working"
    );
    assert_eq!(s.working_orders("Sim101", ES).await.len(), 2);
    assert_eq!(position_qty(&s, "Sim101", ES).await, 2);

    // A second call replaces the first bracket.
    let first: Vec<String> = ids(&v["placedOrderIds"]);
    let (st, v2) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 2, "stopLoss": 5995}),
    )
    .await;
    assert_eq!(st, 200, "{v2}");
    assert_eq!(ids(&v2["cancelledOrderIds"]), first);
    check_bracket(&s, "Sim101", &v2, "Sell", 2, None, Some(5995.0)).await;
    assert_ne!(
        v2["ocoId"], v["ocoId"],
        "a generated OCO id is new per call"
    );
}

/// An account name with a space arrives percent-encoded in the path (as a relay forwarding over HTTP sends
/// it) and is decoded before it is looked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_name_in_the_path_is_percent_decoded() {
    let s = TestServer::in_process("[paper]\naccounts = [\"Sim 101\"]\n", None).await;
    let (st, v) = cab(
        &s,
        "Sim%20101",
        json!({"instrument": ES, "action": "Buy", "quantity": 1, "takeProfit": 6010, "stopLoss": 5990}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.working_orders("Sim 101", ES).await.len(), 2);
    let (st, v) = cab(
        &s,
        "Sim%20102",
        json!({"instrument": ES, "action": "Buy", "quantity": 1, "stopLoss": 5990}),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown account 'Sim 102'"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_protects_a_short_with_buy_legs() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", NQ, "Sell", 3).await;
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": "NQ1!", "action": "Sell", "quantity": 3, "takeProfit": "20950", "stopLoss": 21050.5}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(ids(&v["cancelledOrderIds"]).is_empty());
    check_bracket(&s, "Sim101", &v, "Buy", 3, Some(20950.0), Some(21050.5)).await;
    assert_eq!(position_qty(&s, "Sim101", NQ).await, -3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_entry_bracket_without_position() {
    let s = TestServer::in_process("", None).await;
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Sell", "quantity": 3, "takeProfit": 5950, "stopLoss": 6050}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    check_bracket(&s, "Sim101", &v, "Buy", 3, Some(5950.0), Some(6050.0)).await;
    assert_eq!(position_qty(&s, "Sim101", ES).await, 0);
    assert_eq!(s.working_orders("Sim101", ES).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_clamps_quantity_to_the_position() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 1).await;
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 3, "takeProfit": 6010, "stopLoss": 5990}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    check_bracket(&s, "Sim101", &v, "Sell", 1, Some(6010.0), Some(5990.0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_custom_oco_id_and_fill_cancels_sibling() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990, "ocoId": "my-oco.1:a_b"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ocoId"], "my-oco.1:a_b");
    let (tp, sl) = check_bracket(&s, "Sim101", &v, "Sell", 2, Some(6010.0), Some(5990.0)).await;
    let (tp, sl) = (tp.unwrap(), sl.unwrap());
    let (tp_id, sl_id) = (
        tp["orderId"].as_str().unwrap(),
        sl["orderId"].as_str().unwrap(),
    );

    // Not yet reached: nothing fills.
    let u = set_quote(&s, ES, 6009.75).await;
    assert_eq!(u["filledOrderIds"], json!([]));
    // Through the target: TP fills at its limit, SL is cancelled at once.
    let u = set_quote(&s, ES, 6012.0).await;
    assert_eq!(ids(&u["filledOrderIds"]), vec![tp_id.to_string()], "{u}");
    assert_eq!(ids(&u["cancelledOrderIds"]), vec![sl_id.to_string()], "{u}");
    let tp = order(&s, "Sim101", tp_id).await;
    assert_eq!(tp["state"], "Filled");
    assert_eq!(tp["fillPrice"], 6010.0);
    assert_eq!(order(&s, "Sim101", sl_id).await["state"], "Cancelled");
    let p = position(&s, "Sim101", ES).await;
    assert_eq!(p["quantity"], 0, "{p}");
    assert_eq!(p["marketPosition"], "Flat", "{p}");
    assert_eq!(p["realizedPnl"], 1000.0, "(6010-6000) x 2 x 50: {p}");
    assert!(s.working_orders("Sim101", ES).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_stop_fill_cancels_take_profit() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 1).await;
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 1, "takeProfit": 6010, "stopLoss": 5990}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (tp, sl) = check_bracket(&s, "Sim101", &v, "Sell", 1, Some(6010.0), Some(5990.0)).await;
    let u = set_quote(&s, ES, 5987.5).await;
    assert_eq!(u["filledOrderIds"], json!([sl.unwrap()["orderId"]]), "{u}");
    assert_eq!(
        u["cancelledOrderIds"],
        json!([tp.unwrap()["orderId"]]),
        "{u}"
    );
    let p = position(&s, "Sim101", ES).await;
    assert_eq!(p["quantity"], 0);
    // A stop fills at the quote that triggered it.
    assert_eq!(p["realizedPnl"], -625.0, "(5987.5-6000) x 1 x 50: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_aborts_when_the_position_goes_flat_in_the_cancel_window() {
    let s = TestServer::in_process("[paper]\ncancel_latency_ms = 400\n", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    let stop = place_ok(&s, "Sim101", json!({"instrument": ES, "action": "Sell", "quantity": 2, "orderType": "STOPMARKET", "stopPrice": 5990})).await;
    let stop_id = stop["orderId"].as_str().unwrap().to_string();

    let base = s.base.clone();
    let call = tokio::spawn(async move {
        let c = reqwest::Client::new();
        let resp = c
            .post(format!(
                "{base}/v1/api/accounts/Sim101/orders/cancel_and_bracket"
            ))
            .bearer_auth(API_TOKEN)
            .json(&json!({"instrument": ES, "action": "Buy", "quantity": 2,
                "takeProfit": 6020, "stopLoss": 5980, "cancelDelayMs": 300}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    });
    // Phase 1 has run once the old stop is CancelPending; it can still fill for 400 ms.
    wait_state(&s, "Sim101", &stop_id, "CancelPending").await;
    let u = set_quote(&s, ES, 5985.0).await;
    assert_eq!(
        ids(&u["filledOrderIds"]),
        vec![stop_id.clone()],
        "stop must still fill: {u}"
    );

    let (st, v) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("call answered")
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["aborted"], true, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("flat"), "{v}");
    assert_eq!(ids(&v["cancelledOrderIds"]), vec![stop_id.clone()]);
    assert_eq!(ids(&v["orderIds"]), vec![stop_id.clone()]);
    assert_eq!(v["placedOrderIds"], json!([]));
    assert_eq!(order(&s, "Sim101", &stop_id).await["state"], "Filled");
    assert!(s.working_orders("Sim101", ES).await.is_empty());
    assert!(s
        .orders("Sim101")
        .await
        .iter()
        .all(|o| !matches!(o["state"].as_str(), Some("Working" | "CancelPending"))));
    assert_eq!(position_qty(&s, "Sim101", ES).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_per_request_cancel_delay_waits() {
    let s = TestServer::in_process("", None).await;
    let t = Instant::now();
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 1, "stopLoss": 5990, "cancelDelayMs": 400}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    check_bracket(&s, "Sim101", &v, "Sell", 1, None, Some(5990.0)).await;
}

// ------------------------------------------------------------------------------------------ idempotency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_idempotency_key_replays() {
    let s = TestServer::in_process("[paper]\naccounts = [\"Sim101\", \"Sim102\"]\n", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    let path = "/v1/api/accounts/Sim101/orders/cancel_and_bracket";
    let body = json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990});
    let (st, first, h1) = post_full(&s, path, &body, &[("Idempotency-Key", "k-123")]).await;
    assert_eq!(st, 200, "{first}");
    assert!(h1.get("idempotent-replayed").is_none());
    check_bracket(&s, "Sim101", &first, "Sell", 2, Some(6010.0), Some(5990.0)).await;
    let orders_after_first = s.orders("Sim101").await;

    let (st, second, h2) = post_full(&s, path, &body, &[("Idempotency-Key", "k-123")]).await;
    assert_eq!(st, 200, "{second}");
    assert_eq!(h2.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(second["orderIds"], first["orderIds"]);
    assert_eq!(second, first);
    // One bracket: nothing was cancelled or placed by the replay.
    assert_eq!(s.orders("Sim101").await, orders_after_first);
    assert_eq!(s.working_orders("Sim101", ES).await.len(), 2);

    // A new key executes again.
    let (st, third, h3) = post_full(&s, path, &body, &[("Idempotency-Key", "k-124")]).await;
    assert_eq!(st, 200, "{third}");
    assert!(h3.get("idempotent-replayed").is_none());
    assert_eq!(
        ids(&third["cancelledOrderIds"]),
        ids(&first["placedOrderIds"])
    );

    // Keys are per account: the same key on another account is a new call.
    let (st, v, h) = post_full(
        &s,
        "/v1/api/accounts/Sim102/orders/cancel_and_bracket",
        &body,
        &[("Idempotency-Key", "k-123")],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(h.get("idempotent-replayed").is_none());
    assert_ne!(v["orderIds"], first["orderIds"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_idempotency_key_with_another_body_is_422() {
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    let path = "/v1/api/accounts/Sim101/orders/cancel_and_bracket";
    let body = json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990});
    let (st, first, _) = post_full(&s, path, &body, &[("Idempotency-Key", "k-9")]).await;
    assert_eq!(st, 200, "{first}");
    let orders_after_first = s.orders("Sim101").await;

    let other = json!({"instrument": ES, "action": "Buy", "quantity": 1, "takeProfit": 6010, "stopLoss": 5990});
    let (st, v, h) = post_full(&s, path, &other, &[("Idempotency-Key", "k-9")]).await;
    assert_eq!(st, 422, "same key, different body: {v} (headers {h:?})");
    assert!(
        v["error"].as_str().unwrap().contains("Idempotency-Key"),
        "{v}"
    );
    assert_eq!(s.orders("Sim101").await, orders_after_first);
}

// ------------------------------------------------------------------------------------------ paper endpoints

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_quote_and_unknown_account_endpoints() {
    let s = TestServer::in_process("[paper]\naccounts = [\"Sim101\", \"Sim102\"]\n", None).await;
    let (st, v) = s.api_get("/v1/api/accounts").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        json!({"accounts": [{"name": "Sim101", "executor": "paper"}, {"name": "Sim102", "executor": "paper"}], "success": true})
    );
    let (st, v) = s
        .api_get("/v1/api/market/quote?instrument=ES%2012-26")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"instrument": ES, "lastPrice": 6000.0}));
    let (st, v) = s.api_get("/v1/api/market/quote?instrument=NQ1%21").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({"instrument": NQ, "lastPrice": 21000.0}));
    let (st, v) = s.api_get("/v1/api/market/quote?instrument=ZZZ").await;
    assert_field_error(st, &v, "instrument", "unknown instrument quote");
    let (st, v) = s.api_get("/v1/api/market/quote").await;
    assert_field_error(st, &v, "instrument", "quote without instrument");

    // /paper/quote validation.
    for (body, field) in [
        (json!({"instrument": ES, "price": 6000.1}), "price"),
        (json!({"instrument": ES, "price": -5}), "price"),
        (json!({"instrument": ES}), "price"),
        (json!({"price": 6000}), "instrument"),
        (json!({"instrument": "ZZZ", "price": 6000}), "instrument"),
    ] {
        let (st, v) = s.api_post("/paper/quote", body.clone()).await;
        assert_field_error(st, &v, field, &body.to_string());
    }
    let u = set_quote(&s, "ES1!", 6001.25).await;
    assert_eq!(
        u,
        json!({"instrument": ES, "lastPrice": 6001.25, "filledOrderIds": [], "cancelledOrderIds": []})
    );
    let (_, v) = s
        .api_get("/v1/api/market/quote?instrument=ES%2012-26")
        .await;
    assert_eq!(v["lastPrice"], 6001.25);

    // Fresh account: no orders, no positions.
    let (st, v) = s.api_get("/v1/api/accounts/Sim102/orders").await;
    assert_eq!((st, v), (200, json!({"orders": [], "success": true})));
    let (st, v) = s.api_get("/v1/api/accounts/Sim102/positions").await;
    assert_eq!((st, v), (200, json!({"positions": [], "success": true})));

    // Unknown account: 404 on every paper endpoint.
    let place = json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "MARKET"});
    for (method, path, body) in [
        ("GET", "/v1/api/accounts/Nope/orders", Value::Null),
        ("GET", "/v1/api/accounts/Nope/positions", Value::Null),
        ("POST", "/v1/api/accounts/Nope/orders/place", place.clone()),
        ("POST", "/v1/api/accounts/Nope/orders/abc/cancel", json!({})),
        ("POST", "/v1/api/accounts/Nope/positions/flatten", json!({})),
    ] {
        let (st, v) = if method == "GET" {
            s.api_get(path).await
        } else {
            s.api_post(path, body).await
        };
        assert_eq!(st, 404, "{method} {path}: {v}");
        assert!(v["error"].as_str().unwrap().starts_with("account"), "{v}");
    }
    assert!(s.orders("Sim101").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn place_order_types_and_fill_rules() {
    let s = TestServer::in_process("", None).await;
    let acct = "Sim101";
    // MARKET fills at once at the last price.
    let m = market(&s, acct, ES, "Buy", 1).await;
    assert_eq!(m["order"]["state"], "Filled", "{m}");
    assert_eq!(m["order"]["fillPrice"], 6000.0);
    assert_eq!(m["order"]["orderType"], "Market");

    let buy_lim = place_ok(&s, acct, json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5990})).await;
    let sell_lim = place_ok(&s, acct, json!({"instrument": ES, "action": "Sell", "quantity": 1, "orderType": "limit", "limitPrice": "6010"})).await;
    let buy_stop = place_ok(&s, acct, json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 6020})).await;
    let sell_stop = place_ok(&s, acct, json!({"instrument": ES, "action": "Sell", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 5980, "orderId": "my-stop-1", "ocoId": "grp-1"})).await;
    assert_eq!(sell_stop["orderId"], "my-stop-1");
    assert_eq!(sell_stop["order"]["ocoId"], "grp-1");
    for o in [&buy_lim, &sell_lim, &buy_stop, &sell_stop] {
        assert_eq!(o["order"]["state"], "Working", "{o}");
        assert_eq!(o["orderId"], o["order"]["orderId"]);
    }
    let id = |v: &Value| v["orderId"].as_str().unwrap().to_string();

    // Each rule, at the boundary.
    let u = set_quote(&s, ES, 5990.25).await;
    assert_eq!(
        u["filledOrderIds"],
        json!([]),
        "Buy Limit 5990 not reached at 5990.25"
    );
    let u = set_quote(&s, ES, 5990.0).await;
    assert_eq!(
        ids(&u["filledOrderIds"]),
        vec![id(&buy_lim)],
        "Buy Limit at/below"
    );
    let u = set_quote(&s, ES, 6009.75).await;
    assert_eq!(u["filledOrderIds"], json!([]));
    let u = set_quote(&s, ES, 6010.0).await;
    assert_eq!(
        ids(&u["filledOrderIds"]),
        vec![id(&sell_lim)],
        "Sell Limit at/above"
    );
    let u = set_quote(&s, ES, 6019.75).await;
    assert_eq!(u["filledOrderIds"], json!([]));
    let u = set_quote(&s, ES, 6020.0).await;
    assert_eq!(
        ids(&u["filledOrderIds"]),
        vec![id(&buy_stop)],
        "Buy Stop at/above"
    );
    let u = set_quote(&s, ES, 5980.25).await;
    assert_eq!(u["filledOrderIds"], json!([]));
    let u = set_quote(&s, ES, 5980.0).await;
    assert_eq!(
        ids(&u["filledOrderIds"]),
        vec![id(&sell_stop)],
        "Sell Stop at/below"
    );
    assert_eq!(order(&s, acct, &id(&buy_lim)).await["fillPrice"], 5990.0);
    assert_eq!(order(&s, acct, &id(&sell_lim)).await["fillPrice"], 6010.0);
    assert_eq!(order(&s, acct, &id(&buy_stop)).await["fillPrice"], 6020.0);
    assert_eq!(order(&s, acct, &id(&sell_stop)).await["fillPrice"], 5980.0);
    // +1@6000 +1@5990 (avg 5995) -1@6010 (+750) +1@6020 (avg 6007.5) -1@5980 (-1375)
    let p = position(&s, acct, ES).await;
    assert_eq!(p["quantity"], 1, "{p}");
    assert_eq!(p["averagePrice"], 6007.5, "{p}");
    assert_eq!(p["realizedPnl"], -625.0, "{p}");
    assert_eq!(p["marketPosition"], "Long", "{p}");

    // A marketable limit fills at once at the last price (5980).
    let v = place_ok(&s, acct, json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5990})).await;
    assert_eq!(v["order"]["state"], "Filled");
    assert_eq!(v["order"]["fillPrice"], 5980.0);

    // Refusals (400, naming the field) and nothing placed.
    let before = snapshot(&s, acct).await;
    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"instrument": ES, "action": "Sell", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 5980}),
            "stopPrice",
        ),
        (
            json!({"instrument": ES, "action": "Sell", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 5990}),
            "stopPrice",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 5980}),
            "stopPrice",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 5970}),
            "stopPrice",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "STOPMARKET"}),
            "stopPrice",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT"}),
            "limitPrice",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5970.1}),
            "limitPrice",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "ICEBERG"}),
            "orderType",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1}),
            "orderType",
        ),
        (
            json!({"instrument": ES, "action": "Hold", "quantity": 1, "orderType": "MARKET"}),
            "action",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 0, "orderType": "MARKET"}),
            "quantity",
        ),
        (
            json!({"instrument": "ZZZ", "action": "Buy", "quantity": 1, "orderType": "MARKET"}),
            "instrument",
        ),
        (
            json!({"action": "Buy", "quantity": 1, "orderType": "MARKET"}),
            "instrument",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5970, "orderId": "my-stop-1"}),
            "orderId",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5970, "orderId": "bad id!"}),
            "orderId",
        ),
        (
            json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5970, "ocoId": "bad oco!"}),
            "ocoId",
        ),
    ];
    for (body, field) in bad {
        let (st, v) = s
            .api_post(
                &format!("/v1/api/accounts/{acct}/orders/place"),
                body.clone(),
            )
            .await;
        assert_field_error(st, &v, field, &body.to_string());
    }
    assert_eq!(snapshot(&s, acct).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_order_is_pending_for_the_latency_then_cancelled() {
    let s = TestServer::in_process("[paper]\ncancel_latency_ms = 300\n", None).await;
    let acct = "Sim101";
    let a = place_ok(&s, acct, json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5990})).await;
    let b = place_ok(&s, acct, json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5950})).await;
    let (a_id, b_id) = (
        a["orderId"].as_str().unwrap(),
        b["orderId"].as_str().unwrap(),
    );

    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{acct}/orders/{a_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["orderId"], a_id);
    assert_eq!(v["order"]["state"], "CancelPending", "{v}");
    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{acct}/orders/{b_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["order"]["state"], "CancelPending");
    // Cancelling again while pending is harmless.
    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{acct}/orders/{b_id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["order"]["state"], "CancelPending");

    // Still fillable inside the window.
    let u = set_quote(&s, ES, 5990.0).await;
    assert_eq!(ids(&u["filledOrderIds"]), vec![a_id.to_string()], "{u}");
    assert_eq!(order(&s, acct, a_id).await["state"], "Filled");
    assert_eq!(position_qty(&s, acct, ES).await, 1);

    // Confirmed after the latency (the sleep is the check: 300 ms, and some room).
    assert_eq!(order(&s, acct, b_id).await["state"], "CancelPending");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(order(&s, acct, b_id).await["state"], "Cancelled");
    let u = set_quote(&s, ES, 5950.0).await;
    assert_eq!(u["filledOrderIds"], json!([]));

    // Terminal orders cannot be cancelled; unknown ones are 404.
    for id in [a_id, b_id] {
        let (st, v) = s
            .api_post(
                &format!("/v1/api/accounts/{acct}/orders/{id}/cancel"),
                json!({}),
            )
            .await;
        assert_field_error(st, &v, "orderId", "cancel a terminal order");
    }
    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{acct}/orders/nosuchorder/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(st, 404, "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("orderId"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_immediate_with_zero_latency() {
    let s = TestServer::in_process("[paper]\ncancel_latency_ms = 0\n", None).await;
    let a = place_ok(&s, "Sim101", json!({"instrument": ES, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 5990})).await;
    let id = a["orderId"].as_str().unwrap();
    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/Sim101/orders/{id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["order"]["state"], "Cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatten_one_instrument_then_all_with_realized_pnl() {
    let s = TestServer::in_process("", None).await;
    let acct = "Sim101";
    market(&s, acct, ES, "Buy", 2).await;
    market(&s, acct, NQ, "Sell", 1).await;
    let es_stop = place_ok(&s, acct, json!({"instrument": ES, "action": "Sell", "quantity": 2, "orderType": "STOPMARKET", "stopPrice": 5990})).await;
    let nq_stop = place_ok(&s, acct, json!({"instrument": NQ, "action": "Buy", "quantity": 1, "orderType": "STOPMARKET", "stopPrice": 21050})).await;
    set_quote(&s, ES, 6010.0).await;
    set_quote(&s, NQ, 20990.0).await;

    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{acct}/positions/flatten"),
            json!({"instrument": "ES1!"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["cancelledOrderIds"], json!([es_stop["orderId"]]));
    let closes = v["closingOrders"].as_array().unwrap();
    assert_eq!(closes.len(), 1, "{v}");
    assert_eq!(closes[0]["action"], "Sell");
    assert_eq!(closes[0]["quantity"], 2);
    assert_eq!(closes[0]["state"], "Filled");
    assert_eq!(closes[0]["fillPrice"], 6010.0);
    // Flatten's cancels are confirmed at once.
    assert_eq!(
        order(&s, acct, es_stop["orderId"].as_str().unwrap()).await["state"],
        "Cancelled"
    );
    let p = position(&s, acct, ES).await;
    assert_eq!(p["quantity"], 0);
    assert_eq!(p["realizedPnl"], 1000.0, "(6010-6000) x 2 x 50: {p}");
    // NQ untouched.
    assert_eq!(position_qty(&s, acct, NQ).await, -1);
    assert_eq!(
        order(&s, acct, nq_stop["orderId"].as_str().unwrap()).await["state"],
        "Working"
    );

    // Flatten everything (no body at all).
    let resp = s
        .client
        .post(s.url(&format!("/v1/api/accounts/{acct}/positions/flatten")))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["cancelledOrderIds"], json!([nq_stop["orderId"]]));
    assert_eq!(v["closingOrders"][0]["action"], "Buy");
    assert_eq!(v["closingOrders"][0]["fillPrice"], 20990.0);
    let p = position(&s, acct, NQ).await;
    assert_eq!(p["quantity"], 0);
    assert_eq!(
        p["realizedPnl"], 200.0,
        "(21000-20990) x 1 x 20 on a short: {p}"
    );
    assert!(s
        .orders(acct)
        .await
        .iter()
        .all(|o| !matches!(o["state"].as_str(), Some("Working" | "CancelPending"))));

    // Flattening a flat account is fine and does nothing.
    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{acct}/positions/flatten"),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["closingOrders"], json!([]));
    let (st, v) = s
        .api_post(
            &format!("/v1/api/accounts/{acct}/positions/flatten"),
            json!({"instrument": "ZZZ"}),
        )
        .await;
    assert_field_error(st, &v, "instrument", "flatten unknown instrument");
}

// ------------------------------------------------------------------------------------------ restart

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_state_survives_a_clean_restart() {
    let mut s = TestServer::spawn("");
    let acct = "Sim101";
    market(&s, acct, ES, "Buy", 2).await;
    set_quote(&s, ES, 6004.5).await;
    let (st, v) = cab(
        &s,
        acct,
        json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6020, "stopLoss": 5990, "ocoId": "keep-me"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    place_ok(&s, acct, json!({"instrument": NQ, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 20900, "orderId": "nq-limit"})).await;
    // A realized P&L to carry over too.
    market(&s, acct, "CL 01-27", "Buy", 1).await;
    set_quote(&s, "CL 01-27", 70.5).await;
    market(&s, acct, "CL 01-27", "Sell", 1).await;

    let (orders, positions_before) = snapshot(&s, acct).await;
    let (_, quote) = s
        .api_get("/v1/api/market/quote?instrument=ES%2012-26")
        .await;
    assert_eq!(quote["lastPrice"], 6004.5);

    let status = s.terminate();
    assert!(status.success(), "clean stop: {status:?}");
    s.start_process();

    assert_eq!(s.orders(acct).await, orders);
    assert_eq!(positions(&s, acct).await, positions_before);
    let (_, q) = s
        .api_get("/v1/api/market/quote?instrument=ES%2012-26")
        .await;
    assert_eq!(q, quote);
    assert_eq!(position(&s, acct, "CL 01-27").await["realizedPnl"], 500.0);
    // And the restored bracket still works: OCO by the restored id.
    let u = set_quote(&s, ES, 6020.0).await;
    assert_eq!(u["filledOrderIds"].as_array().unwrap().len(), 1, "{u}");
    assert_eq!(u["cancelledOrderIds"].as_array().unwrap().len(), 1, "{u}");
    assert_eq!(position_qty(&s, acct, ES).await, 0);
    // New orders get fresh sequence numbers after the restored ones.
    let n = place_ok(&s, acct, json!({"instrument": NQ, "action": "Buy", "quantity": 1, "orderType": "LIMIT", "limitPrice": 20800})).await;
    let max_seq = orders
        .iter()
        .map(|o| o["sequence"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(n["order"]["sequence"].as_u64().unwrap() > max_seq, "{n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_take_profit_already_reached_closes_the_position() {
    // With a position, a target the market has already passed fills at once (at the better, last price)
    // and closes the position; no stop is left behind as a naked order.
    let s = TestServer::in_process("", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    set_quote(&s, ES, 6012.0).await;
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 2, "takeProfit": 6010, "stopLoss": 5990}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    assert!(v["reason"].as_str().unwrap().contains("takeProfit"), "{v}");
    let placed = ids(&v["placedOrderIds"]);
    assert_eq!(placed.len(), 1, "only the take-profit: {v}");
    let tp = order(&s, "Sim101", &placed[0]).await;
    assert_eq!(tp["state"], "Filled");
    assert_eq!(tp["fillPrice"], 6012.0);
    assert_eq!(position_qty(&s, "Sim101", ES).await, 0);
    assert!(s.working_orders("Sim101", ES).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_entry_bracket_with_take_profit_through_the_market_is_refused() {
    let s = TestServer::in_process("", None).await;
    let before = snapshot(&s, "Sim101").await;
    // Buy protects a long: its take-profit is a Sell limit, which must be above the market (6000).
    let (st, v) = cab(
        &s,
        "Sim101",
        json!({"instrument": ES, "action": "Buy", "quantity": 1, "takeProfit": 5995, "stopLoss": 5990}),
    )
    .await;
    let after = snapshot(&s, "Sim101").await;
    assert_eq!(
        position_qty(&s, "Sim101", ES).await,
        0,
        "an entry bracket opened a short 1 with no stop: {v}"
    );
    assert_field_error(
        st,
        &v,
        "takeProfit",
        "TP through the market on a flat account",
    );
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cab_clamps_to_a_position_reduced_in_the_cancel_window() {
    let s = TestServer::in_process("[paper]\ncancel_latency_ms = 400\n", None).await;
    market(&s, "Sim101", ES, "Buy", 2).await;
    let part = place_ok(&s, "Sim101", json!({"instrument": ES, "action": "Sell", "quantity": 1, "orderType": "LIMIT", "limitPrice": 6005})).await;
    let part_id = part["orderId"].as_str().unwrap().to_string();
    let base = s.base.clone();
    let call = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .post(format!(
                "{base}/v1/api/accounts/Sim101/orders/cancel_and_bracket"
            ))
            .bearer_auth(API_TOKEN)
            .json(&json!({"instrument": ES, "action": "Buy", "quantity": 2,
                "takeProfit": 6020, "stopLoss": 5980, "cancelDelayMs": 300}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    });
    wait_state(&s, "Sim101", &part_id, "CancelPending").await;
    let u = set_quote(&s, ES, 6005.0).await;
    assert_eq!(ids(&u["filledOrderIds"]), vec![part_id.clone()], "{u}");
    let (st, v) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("call answered")
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v["cancelledOrderIds"]), vec![part_id]);
    check_bracket(&s, "Sim101", &v, "Sell", 1, Some(6020.0), Some(5980.0)).await;
    assert_eq!(position_qty(&s, "Sim101", ES).await, 1);
}
