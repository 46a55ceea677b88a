//! Journal and idempotency: repeats are replayed and execute once (also under a 50-way race and across a
//! SIGKILL restart), a reused key with another body is refused, and the key comes from the right place.

use crate::support::*;
use serde_json::json;

fn replayed(h: &reqwest::header::HeaderMap) -> bool {
    h.get("Idempotent-Replayed").and_then(|v| v.to_str().ok()) == Some("true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_repeat_is_replayed_and_executes_once() {
    let s = TestServer::in_process("", None).await;
    let body = tv_alert("ES1!", "2026-11-27T10:00:00Z", "long", 2, 6000.0).to_string();
    let (st, first, h) = s.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 202, "{first}");
    assert!(!replayed(&h));
    let original = alert_id(&first);
    let done = s.wait_final(&original).await;
    assert_eq!(done["status"], "executed", "{done}");

    for _ in 0..3 {
        let (st, again, h) = s.post_hook("tradingview", &body, &[]).await;
        assert_eq!(st, 200, "{again}");
        assert!(replayed(&h), "{h:?}");
        assert_eq!(again["alertId"], original.as_str());
        assert_eq!(again["status"], "executed");
        assert_eq!(
            again["executions"], done["executions"],
            "the replay is the original record"
        );
    }
    // Executed once: one bracket placed, nothing cancelled, one record.
    let orders = s.orders("Sim101").await;
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert!(orders.iter().all(|o| o["state"] == "Working"), "{orders:?}");
    assert_eq!(s.record_count().await, 1);
    // A repeat sent right behind the original (likely still running) is replayed too.
    let body2 = tv_alert("NQ1!", "2026-11-27T10:00:00Z", "long", 1, 21000.0).to_string();
    let (st, a, _) = s.post_hook("tradingview", &body2, &[]).await;
    assert_eq!(st, 202, "{a}");
    let (st, b, h) = s.post_hook("tradingview", &body2, &[]).await;
    assert_eq!(st, 200, "{b}");
    assert!(replayed(&h));
    assert_eq!(a["alertId"], b["alertId"]);
    s.wait_final(&alert_id(&a)).await;
    assert_eq!(s.working_orders("Sim101", "NQ 12-26").await.len(), 2);
    assert_eq!(s.orders("Sim101").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_deliveries_execute_once() {
    let s = TestServer::in_process("", None).await;
    let body = tv_alert("ES1!", "2026-11-27T11:00:00Z", "long", 1, 6000.0).to_string();
    let mut tasks = Vec::new();
    let s = std::sync::Arc::new(s);
    for _ in 0..50 {
        let s = s.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            s.post_hook("tradingview", &body, &[]).await
        }));
    }
    let mut accepted = Vec::new();
    let mut replays = Vec::new();
    let mut other = Vec::new();
    for t in tasks {
        let (st, v, h) = t.await.unwrap();
        match st {
            202 => accepted.push(v),
            200 if replayed(&h) => replays.push(v),
            _ => other.push((st, v)),
        }
    }
    assert!(
        other.is_empty(),
        "every duplicate must be answered with the original: {other:?}"
    );
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(replays.len(), 49);
    let original = alert_id(&accepted[0]);
    assert!(
        replays.iter().all(|v| v["alertId"] == original.as_str()),
        "{replays:?}"
    );
    let rec = s.wait_final(&original).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(rec["executions"].as_array().unwrap().len(), 1);
    // One record, one bracket.
    assert_eq!(s.record_count().await, 1, "{:?}", s.alerts("").await);
    let orders = s.orders("Sim101").await;
    assert_eq!(orders.len(), 2, "{orders:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_webhook_id_with_a_different_body_is_422() {
    let s = TestServer::in_process("", None).await;
    let now = unix_now();
    let a = signal("sig-a", "ES1!", "buy", 1, 6010.0, 5990.0).to_string();
    let (st, v, _) = s.post_signal_sw(&a, "msg_same", now).await;
    assert_eq!(st, 202, "{v}");
    let first = alert_id(&v);
    s.wait_final(&first).await;

    let b = signal("sig-b", "ES1!", "buy", 3, 6020.0, 5980.0).to_string();
    let (st, v, h) = s.post_signal_sw(&b, "msg_same", now).await;
    assert_eq!(
        st, 422,
        "a reused webhook-id with another body must be refused, got {v}"
    );
    assert!(!replayed(&h));
    let e = v["error"].as_str().unwrap_or("");
    assert!(
        e.contains("idempotency key 'msg_same' was already used by alert"),
        "{v}"
    );
    assert!(e.contains(&first), "{v}");
    assert!(e.contains("different body"), "{v}");
    // The refusal is a record of its own, rejected, claiming no key.
    let rejected = s.alerts("status=rejected").await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["reason"], e, "{rejected:?}");
    assert!(rejected[0]["idempotencyKey"].is_null(), "{rejected:?}");
    // Only the first bracket exists.
    let w = s.working_orders("Sim101", "ES 12-26").await;
    assert_eq!(w.len(), 2);
    assert!(w.iter().all(|o| o["quantity"] == 1), "{w:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_idempotency_key_header_with_a_different_body_is_422() {
    let s = TestServer::in_process("", None).await;
    let a = tv_alert("ES1!", "2026-11-27T10:00:00Z", "long", 1, 6000.0).to_string();
    let (st, v, _) = s
        .post_hook("tradingview", &a, &[("Idempotency-Key", "order-77")])
        .await;
    assert_eq!(st, 202, "{v}");
    let first = alert_id(&v);
    s.wait_final(&first).await;
    // Same body again: replayed.
    let (st, v, h) = s
        .post_hook("tradingview", &a, &[("Idempotency-Key", "order-77")])
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(replayed(&h));
    assert_eq!(v["alertId"], first.as_str());

    let b = tv_alert("NQ1!", "2026-11-27T10:00:00Z", "long", 1, 21000.0).to_string();
    let (st, v, _) = s
        .post_hook("tradingview", &b, &[("Idempotency-Key", "order-77")])
        .await;
    assert_eq!(
        st, 422,
        "a reused Idempotency-Key with another body must be refused, got {v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("idempotency key 'order-77' was already used by alert"),
        "{v}"
    );
    assert!(
        s.working_orders("Sim101", "NQ 12-26").await.is_empty(),
        "the second body must not execute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_same_key_with_different_bodies_executes_only_one() {
    // The race path (claim compare-and-swap) must refuse the loser with 422 as well.
    let s = std::sync::Arc::new(TestServer::in_process("", None).await);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        let body = tv_alert(
            "ES1!",
            &format!("2026-11-27T10:00:0{i}Z"),
            "long",
            1,
            6000.0,
        )
        .to_string();
        tasks.push(tokio::spawn(async move {
            s.post_hook("tradingview", &body, &[("Idempotency-Key", "race-1")])
                .await
        }));
    }
    let mut codes = Vec::new();
    let mut winner = None;
    for t in tasks {
        let (st, v, _) = t.await.unwrap();
        if st == 202 {
            winner = Some(alert_id(&v));
        }
        codes.push((st, v));
    }
    assert_eq!(
        codes.iter().filter(|(st, _)| *st == 202).count(),
        1,
        "{codes:?}"
    );
    let winner = winner.unwrap();
    s.wait_final(&winner).await;
    assert_eq!(s.orders("Sim101").await.len(), 2);
    assert_eq!(s.alerts("status=executed").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_precedence_webhook_id_then_header_then_template_then_body_sha() {
    let files = extra_token_files();
    let s = TestServer::in_process_with_files(EXTRA_TOKEN_SOURCES, &files, None).await;

    // webhook-id beats the Idempotency-Key header and the template key (signal id).
    let body = signal("sig-key", "ES1!", "buy", 1, 6010.0, 5990.0).to_string();
    let mut h = sw_headers(SW_SECRET, "msg_key_1", unix_now(), &body);
    h.push(("Idempotency-Key".into(), "hdr-key-1".into()));
    let (st, v, _) = s
        .post_raw(
            "/hooks/signals",
            body.as_bytes(),
            Some("application/json"),
            &hdrs(&h),
        )
        .await;
    assert_eq!(st, 202, "{v}");
    let rec = s.wait_final(&alert_id(&v)).await;
    assert_eq!(
        (rec["keyOrigin"].as_str(), rec["idempotencyKey"].as_str()),
        (Some("webhook-id"), Some("msg_key_1")),
        "{rec}"
    );

    // The Idempotency-Key header beats the template key.
    let body = tv_alert("NQ1!", "2026-11-27T10:00:00Z", "long", 1, 21000.0).to_string();
    let (st, v, _) = s
        .post_hook("tradingview", &body, &[("Idempotency-Key", "hdr-key-2")])
        .await;
    assert_eq!(st, 202, "{v}");
    let rec = s.wait_final(&alert_id(&v)).await;
    assert_eq!(
        (rec["keyOrigin"].as_str(), rec["idempotencyKey"].as_str()),
        (Some("header"), Some("hdr-key-2")),
        "{rec}"
    );

    // The template key (ticker-timenow-strategy id); an empty header counts as none.
    let body = tv_alert("CL1!", "2026-11-27T10:00:00Z", "long", 1, 70.0).to_string();
    let (st, v, _) = s
        .post_hook("tradingview", &body, &[("Idempotency-Key", "")])
        .await;
    assert_eq!(st, 202, "{v}");
    let rec = s.wait_final(&alert_id(&v)).await;
    assert_eq!(
        (rec["keyOrigin"].as_str(), rec["idempotencyKey"].as_str()),
        (Some("template"), Some("CL1!-2026-11-27T10:00:00Z-L1")),
        "{rec}"
    );

    // key=value with id=: template key.
    let kv = format!("secret={KV_SECRET};id=kv-7;account=Sim101;instrument=GC1!;action=buy;qty=1;take_profit=2610");
    let (st, v, _) = s
        .post_raw("/hooks/kv", kv.as_bytes(), Some("text/plain"), &[])
        .await;
    assert_eq!(st, 202, "{v}");
    let rec = s.wait_final(&alert_id(&v)).await;
    assert_eq!(
        (rec["keyOrigin"].as_str(), rec["idempotencyKey"].as_str()),
        (Some("template"), Some("kv-7")),
        "{rec}"
    );

    // No id: the SHA-256 of the stored body (secret removed).
    let kv = format!(
        "secret={KV_SECRET};account=Sim101;instrument=MES1!;action=buy;qty=1;take_profit=6010"
    );
    let (st, v, _) = s
        .post_raw("/hooks/kv", kv.as_bytes(), Some("text/plain"), &[])
        .await;
    assert_eq!(st, 202, "{v}");
    let rec = s.wait_final(&alert_id(&v)).await;
    assert_eq!(rec["keyOrigin"], "body-sha256", "{rec}");
    assert_eq!(rec["idempotencyKey"], rec["bodySha256"], "{rec}");
    assert_eq!(rec["idempotencyKey"].as_str().unwrap().len(), 64);
    // The same alert with the token in the URL instead has the same stored body: replayed.
    let kv_q = "account=Sim101;instrument=MES1!;action=buy;qty=1;take_profit=6010";
    let (st, v2, h) = s
        .post_raw(
            &format!("/hooks/kv?token={KV_SECRET}"),
            kv_q.as_bytes(),
            Some("text/plain"),
            &[],
        )
        .await;
    assert_eq!(st, 200, "{v2}");
    assert!(replayed(&h));
    assert_eq!(v2["alertId"], rec["id"]);
    assert!(s.alerts("").await.iter().all(|r| r["status"] == "executed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_alert_claims_no_key_so_a_corrected_retry_executes() {
    let s = TestServer::in_process("", None).await;
    let bad = signal("fix-1", "ES1!", "buy", 0, 6010.0, 5990.0).to_string();
    let (st, v, _) = s.post_signal_gh(&bad).await;
    assert_eq!(st, 422, "{v}");
    let good = signal("fix-1", "ES1!", "buy", 1, 6010.0, 5990.0).to_string();
    let (st, v, _) = s.post_signal_gh(&good).await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(s.wait_final(&alert_id(&v)).await["status"], "executed");
    let recs = s.alerts("source=github-style").await;
    assert_eq!(recs.len(), 2);
    assert_eq!(
        (recs[0]["status"].as_str(), recs[1]["status"].as_str()),
        (Some("executed"), Some("rejected"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_keys_survive_a_sigkill_restart() {
    let mut s = TestServer::spawn("");
    let body = tv_alert("ES1!", "2026-11-27T10:00:00Z", "long", 2, 6000.0).to_string();
    let (st, v, _) = s
        .post_hook("tradingview", &body, &[("Prefer", "wait=5")])
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "executed", "{v}");
    let executed_id = alert_id(&v);
    let flat = tv_alert("NQ1!", "2026-11-27T10:00:00Z", "flat", 0, 21000.0).to_string();
    let (st, v, _) = s.post_hook("tradingview", &flat, &[]).await;
    assert_eq!(st, 200, "{v}");
    let skipped_id = alert_id(&v);
    let (_, before) = s.api_get(&format!("/api/alerts/{executed_id}")).await;
    let orders_before = s.orders("Sim101").await;

    s.kill();
    s.start_process();

    let (st, after) = s.api_get(&format!("/api/alerts/{executed_id}")).await;
    assert_eq!(st, 200, "{after}");
    assert_eq!(after, before, "the record is unchanged by the restart");
    assert_eq!(after["status"], "executed");
    let (_, sk) = s.api_get(&format!("/api/alerts/{skipped_id}")).await;
    assert_eq!(sk["status"], "skipped", "{sk}");
    assert_eq!(s.alerts("").await.len(), 2);

    // Repeats after the restart are still replayed and execute nothing.
    let (st, v, h) = s.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 200, "{v}");
    assert!(replayed(&h));
    assert_eq!(v["alertId"], executed_id.as_str());
    assert_eq!(v["status"], "executed");
    let (st, v, h) = s.post_hook("tradingview", &flat, &[]).await;
    assert_eq!(st, 200, "{v}");
    assert!(replayed(&h));
    assert_eq!(v["alertId"], skipped_id.as_str());
    // Nothing to wait for: give an execution that should not exist time to show before comparing.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(s.orders("Sim101").await, orders_before);
    assert_eq!(s.alerts("").await.len(), 2);
    let health = s.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["records"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_record_is_durable_when_the_rejection_is_answered() {
    let mut s = TestServer::spawn("");
    let bad = tv_alert("ZZ1!", "2026-11-27T10:00:00Z", "long", 1, 100.0).to_string();
    let (st, v, _) = s.post_hook("tradingview", &bad, &[]).await;
    assert_eq!(st, 422, "{v}");
    let rejected = s.alerts("status=rejected").await;
    assert_eq!(rejected.len(), 1);
    s.kill();
    s.start_process();
    let after = s.alerts("status=rejected").await;
    assert_eq!(
        after, rejected,
        "the rejected record must survive a SIGKILL right after the answer"
    );
}
