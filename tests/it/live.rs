//! Live execution through the `crosstrade` executor: relay A trades account `Sim101` through a CrossTrade
//! API — either a scripted fake upstream (one per fault) or relay B's own CrossTrade-compatible API on its
//! paper account — and each outcome is asserted on A's journal record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;
use tokio::net::TcpListener;

struct Fake {
    url: String,
    /// Each request it read: its head, a blank line, its body.
    hits: Arc<Mutex<Vec<String>>>,
}

/// A fake upstream answering the `n`-th request with `script[n]`; the last one repeats.
async fn fake_upstream(script: Vec<Reply>) -> Fake {
    let hits = Arc::new(Mutex::new(Vec::new()));
    let h = hits.clone();
    let url = scripted(move |n, head, body| {
        h.lock().unwrap().push(format!("{head}\n\n{body}"));
        script[n.min(script.len() - 1)].clone()
    })
    .await;
    Fake { url, hits }
}

/// Relay A: account Sim101 is live through CrossTrade at `url`; its own paper account is `Paper1`.
fn live_overrides(url: &str, transport: &str, max_age_secs: u64) -> String {
    live_overrides_with(url, transport, max_age_secs, 50, "")
}

/// As `live_overrides`, with the first retry's backoff and further config tables.
fn live_overrides_with(
    url: &str,
    transport: &str,
    max_age_secs: u64,
    backoff_ms: u64,
    tables: &str,
) -> String {
    let timeouts = "request_timeout_ms = 400\nconnect_timeout_ms = 300";
    format!(
        r#"{}
[execution]
max_age_secs = {max_age_secs}
retry_backoff_ms = {backoff_ms}
retry_backoff_max_ms = {backoff_ms}
{tables}
"#,
        crosstrade_overrides(url, transport, "\"Sim101\"", timeouts)
    )
}

async fn relay_a(url: &str, transport: &str, max_age_secs: u64) -> TestServer {
    TestServer::in_process_with_files(&live_overrides(url, transport, max_age_secs), &[], None)
        .await
}

/// The TradingView alert `n` (its own `timenow`), a long 1 ES.
fn alert_body(n: u32) -> String {
    tv_alert(
        "ES1!",
        &format!("2026-11-27T10:00:{n:02}Z"),
        "long",
        1,
        6000.0,
    )
    .to_string()
}

/// Sends alert `n` to relay A; returns its id once acknowledged.
async fn send_alert(a: &TestServer, n: u32) -> String {
    let (st, v, _) = a.post_hook("tradingview", &alert_body(n), &[]).await;
    assert_eq!(st, 202, "{v}");
    alert_id(&v)
}

/// Sends alert `n` to relay A and returns its final record (A waits for it: `Prefer: wait`).
async fn run_alert(a: &TestServer, n: u32) -> Value {
    a.post_hook_record("tradingview", &alert_body(n)).await
}

fn attempts(rec: &Value) -> Vec<String> {
    rec["executions"][0]["attempts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["status"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_keeps_order_ids_and_sends_bearer_and_body() {
    let f = fake_upstream(vec![Reply::json(
        200,
        r#"{"orderIds":["aa","bb"],"success":true}"#,
    )])
    .await;
    let a = relay_a(&f.url, "http", 30).await;
    let rec = run_alert(&a, 1).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(
        rec["executions"][0]["outcome"]["orderIds"],
        serde_json::json!(["aa", "bb"])
    );
    assert_eq!(rec["executions"][0]["executor"], "crosstrade-http");
    let hits = f.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1);
    let req = &hits[0];
    assert!(
        req.starts_with("POST /v1/api/accounts/Sim101/orders/cancel_and_bracket "),
        "{req}"
    );
    assert!(req.to_ascii_lowercase().contains(&format!(
        "authorization: bearer {}",
        API_TOKEN.to_ascii_lowercase()
    )));
    let body: Value = serde_json::from_str(req.split("\n\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["instrument"], "ES 12-26");
    assert_eq!(body["action"], "Buy");
    assert_eq!(body["quantity"], 1);
    assert!(
        body["ocoId"].as_str().is_some_and(|s| !s.is_empty()),
        "an OCO id is always sent: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_400_fails_with_its_message_verbatim() {
    let f = fake_upstream(vec![Reply::json(
        400,
        r#"{"error":"Invalid instrument specified"}"#,
    )])
    .await;
    let a = relay_a(&f.url, "http", 30).await;
    let rec = run_alert(&a, 2).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(
        rec["executions"][0]["error"],
        "Invalid instrument specified"
    );
    assert_eq!(f.hits.lock().unwrap().len(), 1, "a 400 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_fails_and_degrades_health() {
    let f = fake_upstream(vec![Reply::json(401, r#"{"error":"Unauthorized"}"#)]).await;
    let a = relay_a(&f.url, "http", 30).await;
    let rec = run_alert(&a, 3).await;
    assert_eq!(rec["status"], "failed");
    assert!(
        rec["executions"][0]["error"]
            .as_str()
            .unwrap()
            .contains("refused the token"),
        "{rec}"
    );
    let h = a.health().await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["problems"].to_string().contains("token"), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_connected_408_fails_with_crosstrade_meaning() {
    let f = fake_upstream(vec![Reply::json(408, r#"{"error":"timeout"}"#)]).await;
    let a = relay_a(&f.url, "http", 30).await;
    let rec = run_alert(&a, 4).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(
        rec["executions"][0]["error"],
        "NinjaTrader add-on not connected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_429_waits_retry_after_then_succeeds() {
    let f = fake_upstream(vec![
        Reply::Respond(
            429,
            r#"{"error":"Too many requests"}"#.into(),
            &[("Retry-After", "1")],
        ),
        Reply::json(200, r#"{"orderIds":["cc"],"success":true}"#),
    ])
    .await;
    let a = relay_a(&f.url, "http", 30).await;
    let t = Instant::now();
    let rec = run_alert(&a, 5).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(attempts(&rec), ["throttled", "ok"]);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_retried_with_the_same_oco_id_while_young() {
    let f = fake_upstream(vec![
        Reply::json(500, r#"{"error":"boom"}"#),
        Reply::json(200, r#"{"orderIds":["dd"],"success":true}"#),
    ])
    .await;
    let a = relay_a(&f.url, "http", 30).await;
    let rec = run_alert(&a, 6).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(attempts(&rec), ["unknown", "ok"]);
    let hits = f.hits.lock().unwrap().clone();
    let oco = |h: &String| -> Value {
        serde_json::from_str::<Value>(h.split("\n\n").nth(1).unwrap()).unwrap()["ocoId"].clone()
    };
    assert_eq!(
        oco(&hits[0]),
        oco(&hits[1]),
        "a retry replaces the same bracket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcomes_past_max_age_become_unknown() {
    for (n, step) in [
        (7, Reply::json(500, r#"{"error":"boom"}"#)),
        (8, Reply::Hang),
        (9, Reply::Drop),
    ] {
        let f = fake_upstream(vec![step]).await;
        let a = relay_a(&f.url, "http", 1).await;
        let rec = run_alert(&a, n).await;
        assert_eq!(rec["status"], "unknown", "{rec}");
        let att = attempts(&rec);
        assert!(
            !att.is_empty() && att.iter().all(|s| s == "unknown"),
            "{att:?}"
        );
        let h = a.health().await;
        assert_eq!(h["status"], "degraded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_then_fails_never_unknown() {
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let a = relay_a(&format!("http://{dead}"), "http", 1).await;
    let rec = run_alert(&a, 10).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    let att = attempts(&rec);
    assert!(
        att.len() >= 2 && att.iter().all(|s| s == "transient"),
        "{att:?}"
    );
}

/// A WebSocket upstream that accepts one RPC frame and closes the connection without answering.
async fn ws_closing_upstream() -> String {
    use futures_util::StreamExt;
    use warp::Filter;
    let route = warp::path!("ws" / "stream")
        .and(warp::ws())
        .map(|ws: warp::ws::Ws| {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(msg)) = socket.next().await {
                    if msg.to_str().is_ok_and(|t| t.contains("\"rpc\"")) {
                        break;
                    }
                }
                drop(socket);
            })
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(route).incoming(listener).run());
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_closed_mid_call_is_unknown() {
    let url = ws_closing_upstream().await;
    let a = relay_a(&url, "websocket", 1).await;
    let rec = run_alert(&a, 11).await;
    assert_eq!(rec["status"], "unknown", "{rec}");
    assert_eq!(rec["executions"][0]["executor"], "crosstrade-websocket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_chained_bracket_lands_in_b_over_each_transport() {
    let b = TestServer::spawn("");
    for (n, transport) in [(20, "http"), (21, "websocket")] {
        let a = relay_a(&b.base, transport, 30).await;
        let rec = run_alert(&a, n).await;
        assert_eq!(rec["status"], "executed", "{transport}: {rec}");
        let placed: Vec<Value> = rec["executions"][0]["outcome"]["placedOrderIds"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(placed.len(), 2, "{rec}");
        let working = b.working_orders("Sim101", "ES 12-26").await;
        let ids: Vec<Value> = working.iter().map(|o| o["orderId"].clone()).collect();
        assert_eq!(ids.len(), 2, "one bracket live on B: {working:?}");
        for p in &placed {
            assert!(
                ids.contains(p),
                "{transport}: B's working orders are the ones A recorded"
            );
        }
    }
}

/// Part of the record that tells a trader a bracket may be live: status, error, attempts, and /healthz.
async fn assert_maybe_live(a: &TestServer, rec: &Value, why: &str) {
    assert_eq!(rec["status"], "unknown", "{rec}");
    assert_eq!(rec["executions"][0]["status"], "unknown", "{rec}");
    let err = rec["executions"][0]["error"].as_str().unwrap_or("");
    assert!(err.starts_with("outcome unknown"), "{err}");
    assert!(err.contains(why), "{err}");
    assert_eq!(attempts(rec), ["unknown"], "{rec}");
    let h = a.health().await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(h["problems"].to_string().contains("unknown outcome"), "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_during_a_retry_after_an_unknown_attempt_ends_unknown() {
    let f = fake_upstream(vec![
        Reply::json(500, r#"{"error":"boom"}"#),
        Reply::json(200, r#"{"orderIds":["zz"],"success":true}"#),
    ])
    .await;
    // A long first backoff: the kill switch goes on while the execution waits to retry.
    let over = live_overrides_with(&f.url, "http", 30, 1500, "");
    let a = TestServer::in_process_with_files(&over, &[], None).await;
    let id = send_alert(&a, 30).await;
    a.wait_for(&id, "one unknown attempt", |r| attempts(r) == ["unknown"])
        .await;
    let (st, v) = a
        .api_post("/api/kill-switch", serde_json::json!({"enabled": true}))
        .await;
    assert_eq!(st, 200, "{v}");
    let rec = a.wait_final(&id).await;
    assert_maybe_live(&a, &rec, "kill switch").await;
    assert_eq!(
        f.hits.lock().unwrap().len(),
        1,
        "no retry once the switch is on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_budget_exhausted_after_an_unknown_attempt_ends_unknown() {
    let f = fake_upstream(vec![
        Reply::json(500, r#"{"error":"boom"}"#),
        Reply::json(200, r#"{"orderIds":["zz"],"success":true}"#),
    ])
    .await;
    let tables = "[limits.outbound]\nper_second = 1\nburst = 1\nmax_wait_ms = 10\n";
    let over = live_overrides_with(&f.url, "http", 30, 50, tables);
    let a = TestServer::in_process_with_files(&over, &[], None).await;
    let rec = run_alert(&a, 31).await;
    assert_maybe_live(&a, &rec, "rate limited: waited 10 ms").await;
    let err = rec["executions"][0]["error"].as_str().unwrap();
    assert!(!err.contains("0.0s"), "{err}");
    assert_eq!(
        f.hits.lock().unwrap().len(),
        1,
        "the budget allowed one call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_budget_exhausted_before_any_attempt_is_rejected_in_ms() {
    let f = fake_upstream(vec![Reply::json(
        200,
        r#"{"orderIds":["yy"],"success":true}"#,
    )])
    .await;
    let tables = "[limits.outbound]\nper_second = 1\nburst = 1\nmax_wait_ms = 10\n";
    let over = live_overrides_with(&f.url, "http", 30, 50, tables);
    let a = TestServer::in_process_with_files(&over, &[], None).await;
    // Two lanes, so the second alert is not superseded: the first uses the one unit of budget.
    let first = send_alert(&a, 32).await;
    let body = tv_alert("NQ1!", "2026-11-27T10:00:33Z", "long", 1, 21000.0).to_string();
    let (st, v, _) = a.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 202, "{v}");
    let second = v["alertId"].as_str().unwrap().to_string();
    let recs = [a.wait_final(&first).await, a.wait_final(&second).await];
    let rejected: Vec<&Value> = recs.iter().filter(|r| r["status"] == "rejected").collect();
    assert_eq!(rejected.len(), 1, "{recs:?}");
    let err = rejected[0]["executions"][0]["error"].as_str().unwrap();
    assert!(err.starts_with("rate limited: waited 10 ms "), "{err}");
    assert!(
        attempts(rejected[0]).is_empty(),
        "nothing was sent: {recs:?}"
    );
    assert_eq!(a.health().await["status"], "ok");
}
