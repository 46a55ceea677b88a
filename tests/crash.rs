//! Crash safety of live execution: relay A (the binary) trades through relay B's CrossTrade-compatible API.
//! A is killed with SIGKILL in the middle of a burst of 200 signed alerts and restarted. Every alert A
//! acknowledged must be in A's journal, and either executed on B exactly once, or `unknown`/`expired`
//! (sent at most once): none lost, none doubled.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::sync::Mutex;

const ALERTS: usize = 200;
const ACCOUNTS: usize = 34;

/// The OCO id of the first execution request of alert record `r` ("" without one).
fn first_request_oco(r: &Value) -> String {
    r["executions"][0]["request"]["ocoId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn accounts() -> Vec<String> {
    (1..=ACCOUNTS).map(|i| format!("Sim{i}")).collect()
}

/// Alert `n` goes to its own (account, instrument) lane, so no alert supersedes another.
fn alert(n: usize) -> String {
    let (symbol, last) = MARKETS[n % MARKETS.len()];
    let account = format!("Sim{}", n / MARKETS.len() + 1);
    json!({
        "id": format!("crash-{n}"),
        "symbol": symbol,
        "side": "long",
        "qty": 1,
        "tp": last * 1.01,
        "sl": last * 0.99,
        "accounts": [account],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_nothing_and_doubles_nothing() {
    let list = |v: &[String]| {
        v.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let b = TestServer::spawn(&format!("[paper]\naccounts = [{}]\n", list(&accounts())));
    let a_overrides = format!(
        r#"
[paper]
accounts = ["Paper1"]
[crosstrade]
base_url = "{}"
token = "file:{{dir}}/api.secret"
transport = "http"
request_timeout_ms = 5000
accounts = [{}]
[sources.github-style]
rate_limit = {{ per_second = 100000, burst = 100000 }}
"#,
        b.base,
        list(&accounts())
    );
    let mut a = TestServer::spawn_with_files(&a_overrides, &[]);

    // Fire the burst from 8 senders; kill A once about a third has been acknowledged.
    let acked: Arc<Mutex<HashMap<usize, String>>> = Arc::new(Mutex::new(HashMap::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let url = a.url("/hooks/github-style");
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (acked, next, client, url) = (acked.clone(), next.clone(), client.clone(), url.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= ALERTS {
                    break;
                }
                let body = alert(n);
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("X-Hub-Signature-256", gh_signature(&body))
                    .body(body)
                    .send()
                    .await;
                let Ok(resp) = resp else { continue };
                if resp.status().as_u16() == 202 {
                    if let Ok(v) = resp.json::<Value>().await {
                        let id = v["alertId"].as_str().unwrap_or_default().to_string();
                        acked.lock().await.insert(n, id);
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().await.len() < ALERTS / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.kill();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().await.clone();
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
            matches!(st.as_str(), "executed" | "unknown" | "expired"),
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
