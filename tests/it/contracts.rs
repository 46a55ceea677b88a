//! Contract months against the real server, with its contracts clock moved across the December 2026 roll
//! (ES rolls on 2026-12-10): `ES1!` follows the front month, explicit contracts in every spelling resolve
//! to themselves, an expired or impossible one is a 422 that says why, and a paper position left in the old
//! month is still listed, reported (`/healthz`) and never closed by the relay; a replay resolves at the
//! original alert's time unless told to re-resolve.

use std::sync::Arc;

use alert_relay::clock::ManualClock;
use serde_json::{json, Value};

use crate::support::*;

/// Epoch milliseconds of an RFC 3339 time.
fn ms(rfc3339: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis() as u64
}

/// A TradingView alert for `ticker`, a long 1 at 6000, answered once final.
async fn alert(s: &TestServer, ticker: &str, timenow: &str) -> (u16, Value) {
    let body = tv_alert(ticker, timenow, "long", 1, 6000.0).to_string();
    let (st, v, _) = s.post_hook_final("tradingview", &body, &[]).await;
    (st, v)
}

fn execution(rec: &Value) -> &Value {
    &rec["executions"][0]
}

async fn positions(s: &TestServer) -> Vec<Value> {
    let (st, v) = s.api_get("/v1/api/accounts/Sim101/positions").await;
    assert_eq!(st, 200, "{v}");
    v["positions"].as_array().cloned().unwrap_or_default()
}

fn held(positions: &[Value], instrument: &str) -> i64 {
    positions
        .iter()
        .filter(|p| p["instrument"] == instrument)
        .map(|p| p["quantity"].as_i64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es1_follows_the_roll_and_the_old_month_is_reported_never_closed() {
    let clock = Arc::new(ManualClock::new(ms("2026-12-09T15:00:00Z")));
    let s = TestServer::in_process_with_contracts_clock("", &[], None, clock.clone()).await;

    // Before the roll: a long 1 in the front month, bracketed by an ES1! alert.
    let v = s.buy_at_market("ES1!", 1).await;
    assert_eq!(v["order"]["instrument"], "ES 12-26", "{v}");
    let (st, rec) = alert(&s, "ES1!", "2026-12-09T15:00:00Z").await;
    assert_eq!(st, 200, "{rec}");
    let before = rec.clone();
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(execution(&rec)["request"]["instrument"], "ES 12-26");
    assert_eq!(execution(&rec)["contract"], "ES 12-26");
    assert_eq!(
        execution(&rec)["contractRule"],
        "equity-index quarterly: front month until the roll on 2026-12-10 (Thursday 8 days before expiry 2026-12-18)"
    );
    assert_eq!(s.working_orders("Sim101", "ES 12-26").await.len(), 2);
    assert_eq!(s.health().await["status"], "ok");

    // After the roll.
    clock.set(ms("2026-12-11T15:00:00Z"));
    let health = s.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    let problems: Vec<String> = health["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(
        problems.contains(&"old contract month: Sim101: position +1 in ES 12-26, which rolled to ES 03-27; the relay leaves it there (close it with ClosePosition on ES 12-26 if you mean to)".to_string()),
        "{problems:?}"
    );
    assert_eq!(
        problems
            .iter()
            .filter(|p| p.contains("working order") && p.contains("ES 12-26"))
            .count(),
        2,
        "{problems:?}"
    );

    // A replay resolves at the original alert's time, unless told to re-resolve.
    let first = alert_id(&before);
    for (opts, contract) in [
        (json!({}), "ES 12-26"),
        (json!({"reResolve": true}), "ES 03-27"),
    ] {
        let (st, v) = s
            .api_post(&format!("/api/alerts/{first}/replay"), opts.clone())
            .await;
        assert_eq!(st, 200, "{opts}: {v}");
        assert_eq!(v["plan"]["now"][0]["instrument"], contract, "{opts}: {v}");
    }

    let (st, rec) = alert(&s, "ES1!", "2026-12-11T15:00:00Z").await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(
        execution(&rec)["request"]["instrument"],
        "ES 03-27",
        "{rec}"
    );
    assert_eq!(
        execution(&rec)["contractRule"],
        "equity-index quarterly: front month until the roll on 2027-03-11 (Thursday 8 days before expiry 2027-03-19)"
    );
    // The new month's quote started at the old month's last price: the bracket could be placed.
    assert_eq!(rec["status"], "executed", "{rec}");

    // Explicit contracts in every spelling resolve to themselves.
    for (ticker, contract) in [
        ("ESH2027", "ES 03-27"),
        ("CME_MINI:ESH2027", "ES 03-27"),
        ("ESH27", "ES 03-27"),
        ("ESH7", "ES 03-27"),
        ("ES 03-27", "ES 03-27"),
        ("ESZ26", "ES 12-26"),
    ] {
        let (st, rec) = alert(&s, ticker, &format!("t-{ticker}")).await;
        assert_eq!(st, 200, "{ticker}: {rec}");
        assert_eq!(
            execution(&rec)["request"]["instrument"],
            contract,
            "{ticker}: {rec}"
        );
    }

    // Expired and impossible contracts: 422 with the reason.
    for (ticker, why) in [
        (
            "ES 09-26",
            "ES 09-26 expired on 2026-09-18; the front month is ES 03-27",
        ),
        (
            "ES 13-26",
            "ES 13-26 is not a contract: month 13 does not exist",
        ),
        (
            "ESX27",
            "ESX27 is not a contract: ES trades only the months H (03), M (06), U (09), Z (12)",
        ),
    ] {
        let body = tv_alert(ticker, &format!("t-{ticker}"), "long", 1, 6000.0).to_string();
        let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
        assert_eq!(st, 422, "{ticker}: {v}");
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{ticker}: {error}");
    }
    // The API says the same (CancelAndBracket on an expired contract).
    let (st, v) = s
        .api_post(
            "/v1/api/accounts/Sim101/orders/cancel_and_bracket",
            json!({"instrument": "ES 09-26", "action": "Buy", "quantity": 1, "stopLoss": 5990}),
        )
        .await;
    assert_eq!(st, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ES 09-26 expired on 2026-09-18"),
        "{v}"
    );

    // The old month's position is still listed and was never closed; closing it is the trader's call.
    let p = positions(&s).await;
    assert_eq!(held(&p, "ES 12-26"), 1, "{p:?}");
    let orders = s.orders("Sim101").await;
    assert!(
        orders.iter().any(|o| o["instrument"] == "ES 12-26"),
        "{orders:?}"
    );
    s.flatten("ES 12-26").await;
    assert_eq!(held(&positions(&s).await, "ES 12-26"), 0);
    let health = s.health().await;
    assert!(
        !health["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap_or_default().contains("ES 12-26")),
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_command_prints_front_month_roll_and_expiry() {
    let out = relay_command()
        .args(["contracts", "--at", "2026-12-09T15:00:00Z"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let es = text
        .lines()
        .find(|l| l.starts_with("ES "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        es.starts_with("ES     ES 12-26   2026-12-10  ES 03-27   2026-12-18"),
        "{text}"
    );
    let after = relay_command()
        .args(["contracts", "--at", "2026-12-11T15:00:00Z"])
        .output()
        .unwrap();
    let text = String::from_utf8(after.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("ES     ES 03-27   2027-03-11  ES 06-27   2027-03-19")),
        "{text}"
    );
    // `check` says which months the roots resolve to now, and what is left in an old month.
    let check = relay_command().arg("check").output().unwrap();
    assert!(check.status.success(), "{check:?}");
    let text = String::from_utf8(check.stdout).unwrap();
    assert!(text.contains("front months as of "), "{text}");
    assert!(text.contains("ES "), "{text}");
    assert!(text.contains("old contract months: "), "{text}");
    let bad = relay_command()
        .args(["contracts", "--at", "yesterday"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--at: 'yesterday' is not an RFC 3339 time")
    );
}

/// A live account (relay A trading Sim101 through relay B's CrossTrade-compatible API) holding a position
/// and a working order in ES 12-26: after the roll, A's check of its live accounts reports both, and
/// `/healthz` keeps saying so; nothing is sent to close them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_holdings_in_an_old_month_are_reported() {
    let b = TestServer::spawn("");
    for body in [
        json!({"instrument": "ES 12-26", "action": "Buy", "quantity": 2, "orderType": "MARKET"}),
        json!({"instrument": "ES 12-26", "action": "Sell", "quantity": 2, "orderType": "LIMIT", "limitPrice": 6100}),
    ] {
        let (st, v) = b
            .api_post("/v1/api/accounts/Sim101/orders/place", body)
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let overrides = crosstrade_overrides(&b.base, "http", "\"Sim101\"", "");
    let clock = Arc::new(ManualClock::new(ms("2026-12-09T15:00:00Z")));
    let a = TestServer::in_process_with_contracts_clock(&overrides, &[], None, clock.clone()).await;
    let relay = a.relay.clone().unwrap();

    relay.report_old_months(true).await;
    assert_eq!(a.health().await["status"], "ok", "before the roll");

    clock.set(ms("2026-12-11T15:00:00Z"));
    relay.report_old_months(true).await;
    let health = a.health().await;
    let problems: Vec<&str> = health["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        problems.contains(&"old contract month: Sim101: position +2 in ES 12-26, which rolled to ES 03-27; the relay leaves it there (close it with ClosePosition on ES 12-26 if you mean to)"),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(
            |p| p.starts_with("old contract month: Sim101: working order ")
                && p.contains("in ES 12-26")
        ),
        "{problems:?}"
    );
    // Reported, never touched: B still holds both.
    assert_eq!(b.working_orders("Sim101", "ES 12-26").await.len(), 1);
    let (_, v) = b.api_get("/v1/api/accounts/Sim101/positions").await;
    let p = v["positions"].as_array().cloned().unwrap_or_default();
    assert_eq!(held(&p, "ES 12-26"), 2, "{v}");
}
