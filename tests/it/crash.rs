//! Crash safety of live execution: relay A (the binary) trades through relay B's CrossTrade-compatible API.
//! A is killed with SIGKILL in the middle of a burst of 200 signed alerts and restarted. Every alert A
//! acknowledged must be in A's journal, and either executed on B exactly once, or `unknown`/`expired`
//! (sent at most once): none lost, none doubled.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const ALERTS: usize = 200;
const ACCOUNTS: usize = 34;

/// The OCO id of the first execution request of alert record `r` ("" without one).
fn first_request_oco(r: &Value) -> String {
    r["executions"][0]["request"]["ocoId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Alert `n` goes to its own (account, instrument) lane, so no alert supersedes another.
fn alert(n: usize) -> String {
    lane_signal(&format!("crash-{n}"), "Sim", n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_nothing_and_doubles_nothing() {
    let accounts = numbered_accounts("Sim", ACCOUNTS);
    let b = TestServer::spawn(&format!("[paper]\naccounts = [{accounts}]\n"));
    let a_overrides = format!(
        "{}\n[sources.github-style]\nrate_limit = {{ per_second = 100000, burst = 100000 }}\n",
        crosstrade_overrides(&b.base, "http", &accounts, "request_timeout_ms = 5000")
    );
    let mut a = TestServer::spawn_with_files(&a_overrides, &[]);

    // Fire the burst from 8 senders; kill A once about a third has been acknowledged.
    let burst = Burst::start(a.url("/hooks/github-style"), 8, ALERTS, alert);
    burst.wait_acked(ALERTS / 3, Duration::from_secs(30)).await;
    a.kill();
    let acked: HashMap<usize, String> = burst.finish().await.into_iter().collect();
    assert!(
        acked.len() >= ALERTS / 3,
        "only {} acknowledged before the kill",
        acked.len()
    );

    a.start_process();
    // Every acknowledged alert is in A's journal and reaches a final status.
    let mut statuses: HashMap<String, usize> = HashMap::new();
    let mut a_records = HashMap::new();
    for (n, id) in &acked {
        let rec = a.wait_final(id).await;
        let st = rec["status"].as_str().unwrap().to_string();
        assert!(
            matches!(st.as_str(), "executed" | "unknown" | "expired")
                || (st == "failed" && rec["executions"][0]["settledBy"] == "broker"),
            "alert {n} ({id}) ended {st}: {rec}"
        );
        *statuses.entry(st).or_default() += 1;
        a_records.insert(id.clone(), rec);
    }

    // What B executed, by OCO id (A sends one OCO id per alert, reused by every retry).
    let (st, v) = b.api_get("/api/alerts?source=api&limit=1000").await;
    assert_eq!(st, 200);
    let mut on_b: HashMap<String, usize> = HashMap::new();
    for r in v["alerts"].as_array().unwrap() {
        if r["status"] == "executed" {
            let oco = r["body"]["ocoId"].as_str().unwrap_or_default().to_string();
            *on_b.entry(oco).or_default() += 1;
        }
    }
    let mut seen_oco = HashSet::new();
    for (id, rec) in &a_records {
        let exec = &rec["executions"][0];
        let oco = exec["request"]["ocoId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let count = on_b.get(&oco).copied().unwrap_or(0);
        match rec["status"].as_str().unwrap() {
            "executed" => {
                assert_eq!(count, 1, "alert {id} executed on B {count} times: {rec}");
                assert_eq!(exec["outcome"]["ocoId"].as_str(), Some(oco.as_str()));
            }
            // Settled failed after asking B: B must hold nothing for it.
            "failed" => assert_eq!(count, 0, "alert {id} settled failed, yet ran on B: {rec}"),
            _ => assert!(
                count <= 1,
                "alert {id} ({}) ran {count} times on B",
                rec["status"]
            ),
        }
        assert!(
            oco.is_empty() || seen_oco.insert(oco.clone()),
            "OCO id reused across alerts"
        );
    }
    // B executed nothing that A does not know about as acknowledged or journaled.
    let a_ocos: HashSet<String> = a_records.values().map(first_request_oco).collect();
    let (_, all_a) = a.api_get("/api/alerts?limit=1000").await;
    let journaled: HashSet<String> = all_a["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(first_request_oco)
        .collect();
    for (oco, count) in &on_b {
        assert_eq!(*count, 1, "OCO {oco} executed {count} times on B");
        assert!(
            a_ocos.contains(oco) || journaled.contains(oco),
            "B executed {oco}, which A never journaled"
        );
    }
    eprintln!(
        "acknowledged {} of {ALERTS}; final statuses {statuses:?}",
        acked.len()
    );
}
