//! Settling `unknown` executions: by asking the broker (a scripted CrossTrade upstream, and a second relay
//! whose paper account plays the broker, across a SIGKILL), and by an operator (`POST .../resolve`).

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};

async fn send(a: &TestServer, second: u32) -> String {
    let body = tv_alert(
        "ES1!",
        &format!("2026-11-27T11:00:{second:02}Z"),
        "long",
        1,
        6000.0,
    );
    let (st, v, _) = a.post_hook("tradingview", &body.to_string(), &[]).await;
    assert_eq!(st, 202, "{v}");
    v["alertId"].as_str().unwrap().to_string()
}

fn settled(rec: &Value) -> bool {
    !rec["executions"][0]["settledBy"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_showing_the_oco_id_settles_unknown_as_executed() {
    let (url, ocos) = unanswering_crosstrade(Listing::Truthful).await;
    let a = TestServer::in_process_with_files(&settling_overrides(&url, 60, ""), &[], None).await;
    let id = send(&a, 1).await;
    let rec = a
        .poll_record(&id, "settled", Duration::from_secs(20), settled)
        .await;
    let e = &rec["executions"][0];
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(e["settledBy"], "broker");
    assert!(e["settledAtMs"].as_u64().is_some(), "{rec}");
    let oco = ocos.lock().unwrap()[0].clone();
    assert!(e["settledSeen"].as_str().unwrap().contains(&oco), "{rec}");
    assert_eq!(e["outcome"]["ocoId"], oco.as_str());
    assert!(
        !e["outcome"]["orderIds"].as_array().unwrap().is_empty(),
        "{rec}"
    );
    assert!(
        e["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "unknown"),
        "the attempts stay as they were: {rec}"
    );
    let h = a.health().await;
    assert_eq!(h["status"], "ok", "settled: nothing left to check: {h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_listing_without_the_oco_id_settles_unknown_as_failed() {
    let (url, _) = unanswering_crosstrade(Listing::Others).await;
    let a = TestServer::in_process_with_files(&settling_overrides(&url, 60, ""), &[], None).await;
    let id = send(&a, 2).await;
    let rec = a
        .poll_record(&id, "settled", Duration::from_secs(20), settled)
        .await;
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(rec["executions"][0]["error"], "not found at the broker");
    assert_eq!(rec["executions"][0]["settledBy"], "broker");
    assert_eq!(a.health().await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_answer_leaves_it_unknown_for_an_operator_to_resolve() {
    let (url, _) = unanswering_crosstrade(Listing::Broken).await;
    let extra = "[server]\nhealth_status_code = \"503-when-degraded\"";
    let a = TestServer::in_process_with_files(&settling_overrides(&url, 2, extra), &[], None).await;
    let id = send(&a, 3).await;
    let rec = a.wait_final(&id).await;
    assert_eq!(rec["status"], "unknown", "{rec}");
    // Past settle_for_secs (2 s) the relay stops asking: still unknown, still listed by /healthz.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, rec) = a.api_get(&format!("/api/alerts/{id}")).await;
    assert_eq!(rec["status"], "unknown", "{rec}");
    assert!(!settled(&rec), "{rec}");
    let resp = a.client.get(a.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 503, "503-when-degraded");
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["unknown"][0]["alertId"], id.as_str(), "{h}");
    assert_eq!(h["unknown"][0]["account"], "Sim101", "{h}");

    let resolve = |status: &str| json!({"status": status, "note": "bracket seen in NinjaTrader"});
    let (st, v) = a
        .api_post(
            &format!("/api/alerts/{id}/resolve"),
            json!({"status": "maybe"}),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = a
        .api_post(&format!("/api/alerts/{id}/resolve"), resolve("executed"))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "executed", "{v}");
    assert_eq!(v["executions"][0]["settledBy"], "operator");
    assert_eq!(
        v["executions"][0]["settledNote"],
        "bracket seen in NinjaTrader"
    );
    let (st, v) = a
        .api_post(&format!("/api/alerts/{id}/resolve"), resolve("failed"))
        .await;
    assert_eq!(st, 409, "only unknown executions can be resolved: {v}");
    assert!(v["error"].as_str().unwrap().contains("not unknown"), "{v}");
    let resp = a.client.get(a.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (st, _) = a
        .api_post("/api/alerts/01NOPE/resolve", resolve("failed"))
        .await;
    assert_eq!(st, 404);
}

/// Two relays: A trades Sim101 live through B's CrossTrade-compatible API, B on paper. A is killed with
/// executions in flight; after the restart every execution A recorded `unknown` settles by itself, and
/// each settlement agrees with what B recorded: `executed` exactly when B holds orders with its OCO id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_executions_settle_after_a_sigkill_over_http() {
    settle_after_sigkill("http").await;
}

/// The same over the WebSocket transport: the broker is read with the `GetOrders` RPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_executions_settle_after_a_sigkill_over_websocket() {
    settle_after_sigkill("websocket").await;
}

async fn settle_after_sigkill(transport: &str) {
    // B takes a while per bracket, so A's calls are in flight when A dies.
    let b = TestServer::spawn("[paper]\ncancel_delay_ms = 400\n");
    let over = format!(
        r#"
[paper]
accounts = ["Paper1"]
[crosstrade]
base_url = "{}"
token = "file:{{dir}}/api.secret"
transport = "{transport}"
request_timeout_ms = 2000
accounts = ["Sim101"]
[execution]
max_age_secs = 30
"#,
        b.base
    );
    let mut a = TestServer::spawn(&over);
    let mut ids = Vec::new();
    for round in 0..3u32 {
        for (i, (symbol, price)) in MARKETS.iter().enumerate() {
            let t = format!("2026-11-27T12:{round:02}:{i:02}Z");
            let body = tv_alert(symbol, &t, "long", 1, *price);
            let (st, v, _) = a.post_hook("tradingview", &body.to_string(), &[]).await;
            assert_eq!(st, 202, "{v}");
            ids.push(v["alertId"].as_str().unwrap().to_string());
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.restart();
    let restarted = Instant::now();

    let mut in_flight = 0;
    let deadline = restarted + Duration::from_secs(60);
    let b_orders = loop {
        let mut open = 0;
        for id in &ids {
            let (_, rec) = a.api_get(&format!("/api/alerts/{id}")).await;
            if matches!(
                rec["status"].as_str(),
                Some("unknown" | "accepted" | "executing")
            ) {
                open += 1;
            }
        }
        if open == 0 {
            break b.orders("Sim101").await;
        }
        assert!(
            Instant::now() < deadline,
            "{open} execution(s) still open a minute after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for id in &ids {
        let (_, rec) = a.api_get(&format!("/api/alerts/{id}")).await;
        let e = &rec["executions"][0];
        if e["settledBy"].is_null() {
            continue;
        }
        in_flight += 1;
        assert_eq!(e["settledBy"], "broker", "{rec}");
        let oco = e["request"]["ocoId"].as_str().expect("an OCO id was sent");
        let at_b = b_orders.iter().any(|o| o["ocoId"] == oco);
        let status = rec["status"].as_str().unwrap();
        assert_eq!(
            status == "executed",
            at_b,
            "A settled {id} as {status}; B holds orders with OCO id {oco}: {at_b}"
        );
    }
    assert!(
        in_flight > 0,
        "{transport}: the kill should catch executions in flight"
    );
    assert_eq!(a.health().await["unknown"], json!([]));
}
