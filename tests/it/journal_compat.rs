//! A journal written by an earlier build opens and reads back completely. The fixture
//! (tests/fixtures/journal-0.34.7-patched) is the data dir of a relay that ran with the tree-shape patches
//! of vendor/sled (split point, index thresholds, consolidation threshold; since reverted to upstream sled
//! 0.34.7, issue 22): 410 records, enough for sled to split leaves many times, with their paper accounts.
//! Its manifest is what that relay listed before it was stopped (`make_fixture.py` beside it writes both).
//! The relay (the binary) is started on a copy of it; every record must be listed and fetched by id exactly
//! as before, and the paper accounts must hold the same orders and positions.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::*;
use serde_json::{json, Value};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/journal-0.34.7-patched"
);

/// The fixture's accounts; retention far beyond its records' age, so nothing is pruned on start.
const OVERRIDES: &str = r#"
[paper]
accounts = ["Sim101", "Sim102"]
[journal]
retention_days = 36500
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), &dst).unwrap();
        }
    }
}

/// Every record, newest first, paged by `until` (inclusive, so a page's last millisecond is read again).
async fn all_alerts(s: &TestServer) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut until: Option<u64> = None;
    loop {
        let q = match until {
            Some(u) => format!("limit=1000&until={u}"),
            None => "limit=1000".to_string(),
        };
        let page = s.alerts(&q).await;
        let before = out.len();
        for r in &page {
            out.insert(r["id"].as_str().unwrap().to_string(), r.clone());
        }
        if page.len() < 1000 || out.len() == before {
            return out;
        }
        until = page.last().unwrap()["receivedAtMs"].as_u64();
    }
}

/// The accounts as the manifest keeps them: orders as [orderId, state], sorted; positions whole.
async fn account_state(s: &TestServer, account: &str) -> Value {
    let mut orders: Vec<Value> = s
        .orders(account)
        .await
        .into_iter()
        .map(|o| json!([o["orderId"], o["state"]]))
        .collect();
    orders.sort_by_key(|o| o.to_string());
    let (st, positions) = s
        .api_get(&format!("/v1/api/accounts/{account}/positions"))
        .await;
    assert_eq!(st, 200, "{positions}");
    json!({"orders": orders, "positions": positions})
}

fn sorted_orders(mut account: Value) -> Value {
    account["orders"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|o| o.to_string());
    account
}

/// Every record of the manifest is listed, and fetched by id, with each of its fields as it was written.
async fn assert_manifest_reads_back(s: &TestServer, manifest: &Value) {
    let expected = manifest["alerts"].as_array().unwrap();
    assert_eq!(expected.len() as u64, manifest["records"].as_u64().unwrap());
    let listed = all_alerts(s).await;
    let expected_ids: Vec<&str> = expected.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let missing: Vec<&&str> = expected_ids
        .iter()
        .filter(|id| !listed.contains_key(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} records missing, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
    let mut statuses = BTreeMap::<String, u64>::new();
    for want in expected {
        let id = want["id"].as_str().unwrap();
        let (st, fetched) = s.api_get(&format!("/api/alerts/{id}")).await;
        assert_eq!(st, 200, "GET /api/alerts/{id}: {fetched}");
        for (name, got) in [("listed", &listed[id]), ("fetched", &fetched)] {
            for (field, value) in want.as_object().unwrap() {
                assert_eq!(
                    &got[field], value,
                    "record {id} ({name}): field {field} differs"
                );
            }
        }
        *statuses
            .entry(want["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(json!(statuses), manifest["statuses"]);
    for (account, want) in manifest["accounts"].as_object().unwrap() {
        assert_eq!(
            account_state(s, account).await,
            sorted_orders(want.clone()),
            "paper account {account}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_written_with_the_patched_tree_shape_reads_back_completely() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURE).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let records = manifest["records"].as_u64().unwrap();
    assert!(records >= 300, "the fixture must split leaves: {records}");

    // The harness's server, restarted on a copy of the fixture's data dir instead of its fresh one.
    let mut s = TestServer::spawn(OVERRIDES);
    s.kill();
    std::fs::remove_dir_all(s.data_dir()).unwrap();
    copy_dir(&Path::new(FIXTURE).join("data"), &s.data_dir());
    s.start_process();

    assert_eq!(s.record_count().await, records);
    assert_manifest_reads_back(&s, &manifest).await;

    // The old journal takes new records, and keeps old and new across a restart.
    let alert = tv_alert("ES1!", "2027-01-04T15:00:00Z", "long", 1, 6000.0).to_string();
    let (st, rec, _) = s.post_hook_final("tradingview", &alert, &[]).await;
    assert_eq!(st, 200, "{rec}");
    let new_id = rec["id"].as_str().unwrap().to_string();
    let last_old = manifest["alerts"].as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(new_id > last_old, "new id {new_id} sorts after {last_old}");
    let new_rec = s.wait_final(&new_id).await;
    assert!(s.terminate().success());
    s.start_process();
    assert_eq!(s.record_count().await, records + 1);
    let (st, again) = s.api_get(&format!("/api/alerts/{new_id}")).await;
    assert_eq!((st, &again), (200, &new_rec));
    let listed = all_alerts(&s).await;
    assert_eq!(listed.len() as u64, records + 1);
    for want in manifest["alerts"].as_array().unwrap() {
        let id = want["id"].as_str().unwrap();
        assert_eq!(listed[id]["status"], want["status"], "record {id}");
    }
}
