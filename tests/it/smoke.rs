use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_accepts_and_executes_a_tradingview_alert() {
    let s = TestServer::spawn("");
    let body = tv_alert("ES1!", "2026-11-27T10:00:00Z", "long", 2, 6000.0).to_string();
    let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 202, "{v}");
    assert_eq!(v["status"], "accepted");
    let rec = s.wait_final(v["alertId"].as_str().unwrap()).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    let working = s.working_orders("Sim101", "ES 12-26").await;
    assert_eq!(working.len(), 2);
}
