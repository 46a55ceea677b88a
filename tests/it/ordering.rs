//! Ordering and limits: per-instrument lanes with supersession, the inbound 429 and the outbound budget,
//! and the read API (filters, newest first, bearer auth, /healthz).

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::Value;

fn ms(rec: &Value, field: &str) -> u64 {
    rec["executions"][0][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {rec}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_rate_limit_answers_429_with_retry_after_and_records_it() {
    let s = TestServer::in_process(
        "[sources.tradingview]\nrate_limit = { per_second = 1, burst = 2 }",
        None,
    )
    .await;
    let mut ids = Vec::new();
    for (i, ticker) in ["ES1!", "NQ1!"].iter().enumerate() {
        let body = tv_alert(
            ticker,
            &format!("2026-11-27T10:00:0{i}Z"),
            "long",
            1,
            if i == 0 { 6000.0 } else { 21000.0 },
        )
        .to_string();
        let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
        assert_eq!(st, 202, "{v}");
        ids.push(alert_id(&v));
    }
    let third = tv_alert("CL1!", "2026-11-27T10:00:02Z", "long", 1, 70.0).to_string();
    let (st, v, h) = s.post_hook("tradingview", &third, &[]).await;
    assert_eq!(st, 429, "{v}");
    let retry: u64 = h
        .get("Retry-After")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("rate limited: source 'tradingview' accepts 1/s (burst 2)"),
        "{v}"
    );

    // Recorded as rejected, naming the rate limit, without claiming the key.
    let rejected = s.alerts("status=rejected").await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("rate limited"),
        "{rejected:?}"
    );
    assert_eq!(rejected[0]["body"]["ticker"], "CL1!");
    assert!(rejected[0].get("idempotencyKey").is_none());
    // A repeat of an accepted alert costs no budget: replayed, not 429.
    let first = tv_alert("ES1!", "2026-11-27T10:00:00Z", "long", 1, 6000.0).to_string();
    let (st, v, h) = s.post_hook("tradingview", &first, &[]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h.get("Idempotent-Replayed").unwrap(), "true");
    // Other sources have their own budget.
    let sig = signal("rl-1", "GC1!", "buy", 1, 2610.0, 2590.0).to_string();
    let (st, v, _) = s.post_signal_gh(&sig).await;
    assert_eq!(st, 202, "{v}");
    // After the wait the refused alert goes through (its key was not claimed). The sleep is the check:
    // the Retry-After the relay gave is enough.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let (st, v, _) = s.post_hook("tradingview", &third, &[]).await;
    assert_eq!(st, 202, "{v}");
    for i in &ids {
        assert_eq!(s.wait_final(i).await["status"], "executed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_limit_rejects_after_max_wait() {
    let s = TestServer::in_process(
        "[limits.outbound]\nper_second = 1\nburst = 1\nmax_wait_ms = 200",
        None,
    )
    .await;
    // Sent together, so all three ask for the budget within one refill (1 s) even on a slow machine.
    let body = |t: &str, p: f64| tv_alert(t, "2026-11-27T10:00:00Z", "long", 1, p).to_string();
    let (es, nq, cl) = (
        body("ES1!", 6000.0),
        body("NQ1!", 21000.0),
        body("CL1!", 70.0),
    );
    let acks = tokio::join!(
        s.post_hook("tradingview", &es, &[]),
        s.post_hook("tradingview", &nq, &[]),
        s.post_hook("tradingview", &cl, &[]),
    );
    let mut ids = Vec::new();
    for (st, v, _) in [acks.0, acks.1, acks.2] {
        assert_eq!(st, 202, "{v}");
        ids.push(alert_id(&v));
    }
    let mut recs = Vec::new();
    for i in &ids {
        recs.push(s.wait_final(i).await);
    }
    let executed = recs.iter().filter(|r| r["status"] == "executed").count();
    let rejected: Vec<&Value> = recs.iter().filter(|r| r["status"] == "rejected").collect();
    assert_eq!(executed + rejected.len(), 3, "{recs:?}");
    assert!(executed >= 1, "{recs:?}");
    assert!(
        !rejected.is_empty(),
        "with burst 1 and 200 ms max wait, one of three must be refused: {recs:?}"
    );
    for r in &rejected {
        let reason = r["reason"].as_str().unwrap_or("");
        assert!(reason.contains("rate limited"), "{r}");
        assert!(reason.contains("outbound"), "{r}");
        let e = &r["executions"][0];
        assert_eq!(e["status"], "rejected");
        let waited = e["limiterWaitUs"].as_u64().unwrap();
        assert!(waited >= 150_000, "gave up before max_wait: {e}");
        assert!(
            e.get("attempts").is_none(),
            "a rate-limited execution never reached the broker: {e}"
        );
    }
    // Only the executed alerts placed orders.
    assert_eq!(s.orders("Sim101").await.len(), 2 * executed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_instrument_runs_in_order_and_waiting_alerts_are_superseded() {
    let s = TestServer::in_process("[paper]\ncancel_delay_ms = 400", None).await;
    let post = |ticker: &'static str, minute: u32, price: f64| {
        let body = tv_alert(
            ticker,
            &format!("2026-11-27T10:{minute:02}:00Z"),
            "long",
            1,
            price,
        )
        .to_string();
        let s = &s;
        async move {
            let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
            assert_eq!(st, 202, "{v}");
            alert_id(&v)
        }
    };
    let t0 = Instant::now();
    let a = post("ES1!", 1, 6000.0).await;
    // A is running (in its cancel delay) before B arrives.
    s.wait_for(&a, "executing", |r| r["status"] == "executing")
        .await;
    let b = post("ES1!", 2, 6001.0).await;
    let c = post("ES1!", 3, 6002.0).await;
    let d = post("NQ1!", 4, 21000.0).await;
    assert!(
        t0.elapsed() < Duration::from_millis(350),
        "alerts not sent within A's execution: {:?}",
        t0.elapsed()
    );

    let ra = s.wait_final(&a).await;
    let rb = s.wait_final(&b).await;
    let rc = s.wait_final(&c).await;
    let rd = s.wait_final(&d).await;
    assert_eq!(ra["status"], "executed", "{ra}");
    assert_eq!(rb["status"], "superseded", "{rb}");
    assert_eq!(rb["executions"][0]["status"], "superseded");
    assert_eq!(rb["executions"][0]["supersededBy"], c.as_str(), "{rb}");
    // A superseded alert keeps its acknowledgement time like an executed one.
    assert!(rb["timings"]["ackUs"].is_u64(), "{rb}");
    assert!(
        rb["executions"][0].get("startedAtMs").is_none(),
        "B never ran: {rb}"
    );
    assert_eq!(rc["status"], "executed", "{rc}");
    assert_eq!(rd["status"], "executed", "{rd}");
    // C ran after A finished (one at a time per lane), D ran beside A (lanes are parallel).
    assert!(
        ms(&rc, "startedAtMs") >= ms(&ra, "finishedAtMs"),
        "A {ra}\nC {rc}"
    );
    assert!(
        ms(&rd, "startedAtMs") < ms(&ra, "finishedAtMs"),
        "A {ra}\nD {rd}"
    );
    // A's bracket was replaced by C's: C cancelled A's orders, and the working ES bracket is C's.
    let a_placed = ra["executions"][0]["outcome"]["placedOrderIds"].clone();
    assert_eq!(
        rc["executions"][0]["outcome"]["cancelledOrderIds"], a_placed,
        "{rc}"
    );
    let working = s.working_orders("Sim101", "ES 12-26").await;
    let mut working_ids: Vec<Value> = working.iter().map(|o| o["orderId"].clone()).collect();
    let mut c_placed = rc["executions"][0]["outcome"]["placedOrderIds"]
        .as_array()
        .unwrap()
        .clone();
    working_ids.sort_by_key(|v| v.to_string());
    c_placed.sort_by_key(|v| v.to_string());
    assert_eq!(working_ids, c_placed);
    // TP 40 ticks above C's price of 6002.
    assert!(
        working
            .iter()
            .any(|o| o["limitPrice"].as_f64() == Some(6012.0)),
        "{working:?}"
    );
    assert_eq!(s.working_orders("Sim101", "NQ 12-26").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_alerts_filters_newest_first_and_requires_the_bearer_token() {
    let s = TestServer::in_process("", None).await;
    let mut ids = Vec::new();
    for (i, (t, p)) in [("ES1!", 6000.0), ("NQ1!", 21000.0), ("CL1!", 70.0)]
        .iter()
        .enumerate()
    {
        let body = tv_alert(t, &format!("2026-11-27T10:00:0{i}Z"), "long", 1, *p).to_string();
        let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
        assert_eq!(st, 202, "{v}");
        ids.push(alert_id(&v));
    }
    let flat = tv_alert("GC1!", "2026-11-27T10:00:09Z", "flat", 0, 2600.0).to_string();
    let (st, v, _) = s.post_hook("tradingview", &flat, &[]).await;
    assert_eq!(st, 200, "{v}");
    let skipped = alert_id(&v);
    let sig = signal("api-1", "MES1!", "buy", 1, 6010.0, 5990.0).to_string();
    let (st, v, _) = s.post_signal_gh(&sig).await;
    assert_eq!(st, 202, "{v}");
    let gh = alert_id(&v);
    for i in ids.iter().chain([&gh]) {
        s.wait_final(i).await;
    }

    let ids_of = |v: &[Value]| {
        v.iter()
            .map(|r| r["alertId"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all = s.alerts("").await;
    assert_eq!(
        ids_of(&all),
        vec![
            gh.clone(),
            skipped.clone(),
            ids[2].clone(),
            ids[1].clone(),
            ids[0].clone()
        ],
        "newest first"
    );
    let tv = s.alerts("source=tradingview").await;
    assert_eq!(
        ids_of(&tv),
        vec![
            skipped.clone(),
            ids[2].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );
    assert_eq!(
        ids_of(&s.alerts("source=github-style").await),
        vec![gh.clone()]
    );
    assert_eq!(
        ids_of(&s.alerts("status=skipped").await),
        vec![skipped.clone()]
    );
    let executed = s.alerts("status=executed&source=tradingview&limit=2").await;
    assert_eq!(ids_of(&executed), vec![ids[2].clone(), ids[1].clone()]);
    assert!(s.alerts("status=failed").await.is_empty());
    let (st, v) = s.api_get("/api/alerts?limit=1").await;
    assert_eq!(st, 200);
    assert_eq!(v["count"], 1);
    assert_eq!(v["alerts"][0]["alertId"], gh.as_str());
    let (st, v) = s.api_get("/api/alerts?status=bogus").await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("is not a status"),
        "{v}"
    );
    let (st, v) = s.api_get("/api/alerts?limit=0").await;
    assert_eq!(st, 400, "{v}");
    // More listings at once than may walk the journal together: they take turns, and each gets the whole
    // answer.
    let listings = futures_util::future::join_all(
        (0..8).map(|_| s.api_get("/api/alerts?status=executed&source=tradingview")),
    )
    .await;
    for (st, v) in listings {
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            ids_of(v["alerts"].as_array().unwrap()),
            vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
        );
    }
    let (st, v) = s.api_get("/api/alerts/01NOPE").await;
    assert_eq!(st, 404, "{v}");

    // Bearer token required.
    for (path, auth) in [
        ("/api/alerts", None),
        ("/api/alerts", Some("Bearer wrong-token")),
        (&*format!("/api/alerts/{gh}"), None),
        ("/v1/api/accounts/Sim101/orders", None),
    ] {
        let mut rb = s.client.get(s.url(path));
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path} {auth:?}");
        let v: Value = resp.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains("bearer token"), "{v}");
        assert!(!v.to_string().contains("tradingview"), "{v}");
    }

    // /healthz needs no token.
    let resp = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let h: Value = resp.json().await.unwrap();
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["problems"], serde_json::json!([]));
    assert_eq!(h["records"], 5);
}
