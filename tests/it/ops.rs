//! Operations: the kill switch (API and config, surviving a restart), start-up recovery (`unknown` and
//! `expired`), graceful SIGTERM, `/readyz` and `/metrics`.

use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_records_alerts_as_rejected_executes_nothing_and_survives_restart() {
    let mut s = TestServer::spawn("");
    let (st, v) = s
        .api_post("/api/kill-switch", json!({"enabled": true}))
        .await;
    assert_eq!((st, v), (200, json!({"enabled": true})));
    let body = tv_alert("ES1!", "2026-11-27T11:00:00Z", "long", 1, 6000.0).to_string();
    let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("kill switch"), "{v}");
    let recs = s.alerts("").await;
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["status"], "rejected");
    assert_eq!(recs[0]["reason"], "kill switch");
    // Its rendered request is kept, rejected for the same reason.
    assert_eq!(recs[0]["executions"][0]["status"], "rejected");
    assert_eq!(recs[0]["executions"][0]["error"], "kill switch");
    let metrics = s.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "alert_relay_rejections_total{source=\"tradingview\",reason=\"kill_switch\"} 1"
        ),
        "{metrics}"
    );
    assert!(s.working_orders("Sim101", "ES 12-26").await.is_empty());
    assert_eq!(s.health().await["status"], "degraded");

    // The seed API is refused too, and recorded.
    let (st, _) = s
        .api_post(
            "/v1/api/accounts/Sim101/orders/cancel_and_bracket",
            json!({"instrument":"ES 12-26","action":"Buy","quantity":1,"stopLoss":5990}),
        )
        .await;
    assert_eq!(st, 503);
    let api = s.alerts("source=api").await;
    assert_eq!(api.len(), 1);
    assert_eq!(
        (
            &api[0]["reason"],
            &api[0]["executions"][0]["status"],
            &api[0]["executions"][0]["error"]
        ),
        (
            &json!("kill switch"),
            &json!("rejected"),
            &json!("kill switch")
        )
    );

    s.restart();
    let (st, v) = s.api_get("/api/kill-switch").await;
    assert_eq!(
        (st, v),
        (200, json!({"enabled": true})),
        "state survives a restart"
    );
    let (st, _) = s
        .api_post("/api/kill-switch", json!({"enabled": false}))
        .await;
    assert_eq!(st, 200);
    let body = tv_alert("ES1!", "2026-11-27T11:00:01Z", "long", 1, 6000.0).to_string();
    let (st, v, _) = s
        .post_hook("tradingview", &body, &[("Prefer", "wait=5")])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "executed");
    assert_eq!(s.health().await["status"], "ok");
    // Bad bodies are refused with a message naming the field.
    let (st, v) = s
        .api_post("/api/kill-switch", json!({"enabled": "yes"}))
        .await;
    assert_eq!(st, 400);
    assert!(v["error"].as_str().unwrap().contains("enabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_from_config() {
    let s = TestServer::in_process("[execution]\nkill_switch = true\n", None).await;
    let body = tv_alert("ES1!", "2026-11-27T11:00:02Z", "long", 1, 6000.0).to_string();
    let (st, _, _) = s.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 503);
    assert_eq!(s.alerts("status=rejected").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_turns_executing_into_unknown_and_old_accepted_into_expired() {
    // A slow broker (10 s cancel delay) keeps the first alert `executing`. The second is for the same
    // instrument, so it waits in that lane, `accepted`, until the first finishes: no race with the clock.
    let mut s =
        TestServer::spawn("[paper]\ncancel_delay_ms = 10000\n[execution]\nmax_age_secs = 1\n");
    let post = |i: usize, price: f64| {
        let body =
            tv_alert("ES1!", &format!("2026-11-27T11:01:0{i}Z"), "long", 1, price).to_string();
        let s = &s;
        async move {
            let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
            assert_eq!(st, 202, "{v}");
            v["alertId"].as_str().unwrap().to_string()
        }
    };
    let first = post(0, 6000.0).await;
    s.wait_for(&first, "executing", |r| r["status"] == "executing")
        .await;
    // On paper the `executing` mark is not waited for (README, "Record"); the second alert's
    // acknowledgement flushes the log, the mark included, so the first must come back `unknown`.
    let second = post(1, 6010.0).await;
    let (_, rec) = s.api_get(&format!("/api/alerts/{second}")).await;
    assert_eq!(
        rec["status"], "accepted",
        "waiting behind the first in its lane: {rec}"
    );
    s.kill();
    tokio::time::sleep(Duration::from_millis(1200)).await; // the waiting one is now older than max_age
    s.start_process();
    // `unknown` at start-up, then settled by asking the broker (the paper book): the call died with the
    // process before it placed anything, so no order carries its OCO id.
    let first = s
        .wait_for(&first, "settled by the broker", |r| {
            !r["executions"][0]["settledBy"].is_null()
        })
        .await;
    assert_eq!(first["status"], "failed", "{first}");
    let e = &first["executions"][0];
    assert_eq!(e["settledBy"], "broker", "{first}");
    assert_eq!(e["error"], "not found at the broker", "{first}");
    assert!(
        e["settledSeen"]
            .as_str()
            .unwrap()
            .contains("none with OCO id"),
        "{first}"
    );
    // The attempt that was in flight is kept, with no answer.
    let attempts = e["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{first}");
    assert_eq!(attempts[0]["status"], "unknown");
    assert_eq!(
        attempts[0]["error"],
        "in flight when the relay stopped; no answer was received"
    );
    assert_eq!(attempts[0]["transport"], "paper");
    let second = s.wait_final(&second).await;
    assert_eq!(second["status"], "expired", "{second}");
    // Settled: nothing is left for the operator, and /healthz is ok again.
    let h = s.health().await;
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(s.alerts("status=unknown").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_exits_zero() {
    let mut s = TestServer::spawn("[paper]\ncancel_delay_ms = 500\n");
    let body = tv_alert("ES1!", "2026-11-27T11:02:00Z", "long", 1, 6000.0).to_string();
    let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 202);
    let id = v["alertId"].as_str().unwrap().to_string();
    s.wait_for(&id, "executing", |r| r["status"] == "executing")
        .await;
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}");
    s.start_process();
    let rec = s.wait_final(&id).await;
    assert_eq!(
        rec["status"], "executed",
        "the in-flight execution finished before exit: {rec}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_metrics() {
    let s = TestServer::in_process("", None).await;
    let r = s.client.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let before = s.get_text("/metrics").await;
    assert!(before.contains("alert_relay_journal_records 0"), "{before}");
    let body = tv_alert("ES1!", "2026-11-27T11:03:00Z", "long", 1, 6000.0).to_string();
    let (st, _, _) = s
        .post_hook("tradingview", &body, &[("Prefer", "wait=5")])
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = s.post_hook("nope", &body, &[]).await;
    assert_eq!(st, 404);
    let after = s.get_text("/metrics").await;
    assert!(after.contains("alert_relay_journal_records 1"), "{after}");
    assert!(
        after.contains("alert_relay_alerts_total{source=\"tradingview\",status=\"executed\"} 1"),
        "{after}"
    );
    assert!(
        after.contains("alert_relay_rejections_total{source=\"unknown\",reason=\"not_found\"} 1"),
        "{after}"
    );
    assert!(
        after.contains("alert_relay_ack_latency_seconds_count 1"),
        "{after}"
    );
    assert!(
        after.contains("alert_relay_queue_depth{account=\"Sim101\",instrument=\"ES 12-26\"} 0"),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_never_runs_an_older_bracket_over_a_newer_one() {
    // Two alerts on one lane: the newer one was executed, the older one is still `accepted` (a crash came
    // between the newer one starting and the older one being marked superseded). After the restart the older
    // one must not run.
    let mut s = TestServer::spawn("");
    let mk = |t: &str| tv_alert("ES1!", t, "long", 1, 6000.0).to_string();
    let (_, older, _) = s
        .post_hook(
            "tradingview",
            &mk("2026-11-27T11:05:00Z"),
            &[("Prefer", "wait=5")],
        )
        .await;
    let (_, newer, _) = s
        .post_hook(
            "tradingview",
            &mk("2026-11-27T11:05:01Z"),
            &[("Prefer", "wait=5")],
        )
        .await;
    assert_eq!(older["status"], "executed");
    assert_eq!(newer["status"], "executed");
    let older_id = older["alertId"].as_str().unwrap().to_string();
    let newer_id = newer["alertId"].as_str().unwrap().to_string();
    s.kill();
    {
        // Put the older one back to `accepted`, as a crash at the wrong moment would have left it.
        let j =
            alert_relay::journal::Journal::open(&s.data_dir(), Duration::from_secs(60)).unwrap();
        j.update(&older_id, |r| {
            r.status = alert_relay::record::Status::Accepted;
            r.executions[0].status = alert_relay::record::Status::Accepted;
            r.executions[0].outcome = None;
        })
        .unwrap();
        j.flush_now().unwrap();
    }
    s.start_process();
    let rec = s.wait_final(&older_id).await;
    assert_eq!(rec["status"], "superseded", "{rec}");
    assert_eq!(rec["executions"][0]["supersededBy"], newer_id.as_str());
    // The newer bracket is still the one working.
    let working = s.working_orders("Sim101", "ES 12-26").await;
    let newer_rec = s.wait_final(&newer_id).await;
    let placed = &newer_rec["executions"][0]["outcome"]["placedOrderIds"];
    assert_eq!(working.len(), 2);
    for o in &working {
        assert!(
            placed.as_array().unwrap().contains(&o["orderId"]),
            "{working:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_record_count_bounded_oldest_first() {
    let s = TestServer::in_process(
        "[journal]\nmax_records = 1000\nprune_interval_secs = 1\n[sources.tradingview]\nrate_limit = { per_second = 100000, burst = 100000 }\n",
        None,
    )
    .await;
    let mut first_ids = Vec::new();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for n in 0..1600 {
        let body = tv_alert(
            ["ES1!", "NQ1!", "CL1!"][n % 3],
            &format!("ret-{n}"),
            "long",
            1,
            6000.0,
        )
        .to_string();
        let body = body.replace("6000.0", ["6000.0", "21000.0", "70.0"][n % 3]);
        let (client, url, permit) = (
            s.client.clone(),
            s.url("/hooks/tradingview"),
            sem.clone().acquire_owned().await.unwrap(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).body(body).send().await.unwrap();
            drop(permit);
            assert_eq!(r.status(), 202);
            let v: Value = r.json().await.unwrap();
            alert_id(&v)
        }));
    }
    for (n, t) in tasks.into_iter().enumerate() {
        let id = t.await.unwrap();
        if n < 10 {
            first_ids.push(id);
        }
    }
    let count = || s.record_count();
    eventually(
        "pruning to 1000 records",
        Duration::from_secs(15),
        count,
        |n| *n <= 1000,
    )
    .await;
    for id in &first_ids {
        let (st, _) = s.api_get(&format!("/api/alerts/{id}")).await;
        assert_eq!(st, 404, "the oldest records go first");
    }
}

/// The common TradingView mistakes leave a trace: each refused webhook is listed by `GET /api/refusals`
/// (newest first, Bearer) and `alert-relay refusals`, with source, address, status, reason and a hint,
/// never the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_webhooks_are_listed_with_status_reason_and_hint() {
    let s = TestServer::spawn("");
    let wrong = json!({"secret": "not-the-secret", "ticker": "ES1!"}).to_string();
    assert_eq!(s.post_hook("tradingview", &wrong, &[]).await.0, 401);
    let placeholder =
        format!(r#"{{"secret": "{TV_SECRET}", "ticker": "ES1!", "close": {{{{close}}}}}}"#);
    assert_eq!(s.post_hook("tradingview", &placeholder, &[]).await.0, 400);
    assert_eq!(s.post_hook("nope", "{}", &[]).await.0, 404);

    let resp = s.client.get(s.url("/api/refusals")).send().await.unwrap();
    assert_eq!(resp.status(), 401, "Bearer only");
    let (st, v) = s.api_get("/api/refusals").await;
    assert_eq!(st, 200, "{v}");
    let list = v["refusals"].as_array().unwrap();
    let got: Vec<(u64, &str)> = list
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [(404, "nope"), (400, "tradingview"), (401, "tradingview")],
        "{v}"
    );
    assert_eq!(list[2]["address"], "127.0.0.1");
    assert!(
        list[1]["hint"]
            .as_str()
            .unwrap()
            .contains("did not substitute a placeholder"),
        "{v}"
    );
    assert!(
        !v.to_string().contains(TV_SECRET),
        "no secret in the refusal log: {v}"
    );

    let out = relay_command()
        .args(["refusals", "--limit", "2", "--config"])
        .arg(&s.config_path)
        .arg("--data-dir")
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unknown source 'nope'"), "{text}");
    assert!(text.contains("2 refusal(s)"), "{text}");

    // Two of tradingview's so far; past ten in five minutes /healthz says so (unknown sources do not count).
    assert_eq!(s.health().await["status"], "ok");
    for _ in 0..9 {
        assert_eq!(s.post_hook("tradingview", &wrong, &[]).await.0, 401);
    }
    let h = s.health().await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(
        h["problems"]
            .to_string()
            .contains("source 'tradingview': 11 webhooks refused"),
        "{h}"
    );
}

/// The five common TradingView mistakes — a wrong secret (401), an unsubstituted `{{close}}` (400), a
/// blocked address (403), an unknown source (404), a key reused with another body (422) — each leave a WARN
/// line in the log, an entry in `GET /api/refusals` and one in `alert-relay refusals` (the dashboard test
/// shows them on the page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_five_common_tradingview_mistakes_are_in_the_log_and_the_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.toml");
    let relay = LoggedRelay::start(
        dir,
        "[sources.office]\nauth = \"token\"\nsecret = \"file:{dir}/tv.secret\"\ntemplate = \"pipeline-bracket\"\nallow_ips = [\"10.9.9.9\"]\n",
    );
    let client = reqwest::Client::new();
    let hook = |source: &str, body: String, key: Option<&str>| {
        let mut req = client
            .post(format!("{}/hooks/{source}", relay.base))
            .body(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let alert = |price: f64| tv_alert("ES1!", "2026-12-06T15:00:00Z", "long", 1, price).to_string();
    let wrong = json!({"secret": "not-the-secret", "ticker": "ES1!"}).to_string();
    let placeholder =
        format!(r#"{{"secret": "{TV_SECRET}", "ticker": "ES1!", "close": {{{{close}}}}}}"#);
    assert_eq!(hook("tradingview", wrong, None).await, 401);
    assert_eq!(hook("tradingview", placeholder, None).await, 400);
    assert_eq!(hook("office", alert(6000.0), None).await, 403);
    assert_eq!(hook("nope", "{}".into(), None).await, 404);
    assert_eq!(hook("tradingview", alert(6000.0), Some("k-1")).await, 202);
    assert_eq!(hook("tradingview", alert(6001.0), Some("k-1")).await, 422);

    let (st, v) = relay_get(&relay.base, "/api/refusals").await;
    assert_eq!(st, 200, "{v}");
    let statuses: Vec<u64> = v["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [422, 404, 403, 400, 401], "{v}");

    let out = relay_command()
        .args(["refusals", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for status in ["401", "400", "403", "404", "422"] {
        assert!(
            text.contains(&format!(" {status} ")),
            "{status} missing: {text}"
        );
    }
    assert!(text.contains("5 refusal(s)"), "{text}");

    let log = relay.log_text();
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("webhook refused"))
        .collect();
    for status in ["401", "400", "403", "404", "422"] {
        assert!(
            warns
                .iter()
                .any(|l| l.contains(&format!("status={status}"))),
            "no WARN line for {status}: {log}"
        );
    }
    assert!(!log.contains(TV_SECRET), "the secret is never logged");
}

async fn relay_get(base: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}
