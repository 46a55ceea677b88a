//! Reliability suite (bounded in time): SIGKILL rounds on the paper account, a journal that cannot be opened,
//! the duplicate storm over both idempotency paths, a corpus of bad input that must each get a clean 4xx
//! with nothing stored for unauthenticated input and nothing executed, and senders that hang up mid-request.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};

const ACCOUNTS: usize = 20;

fn paper_accounts() -> String {
    numbered_accounts("P", ACCOUNTS)
}

/// Signal `n` of round `round`, on its own (account, instrument) lane within the round.
fn signal_for(round: usize, n: usize) -> String {
    lane_signal(&format!("r{round}-{n}"), "P", n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_rounds_on_paper_lose_nothing_and_execute_once() {
    const ROUNDS: usize = 3;
    const PER_ROUND: usize = 100;
    // A snapshot of the paper accounts every 5 operations, so kills also land inside snapshots.
    let mut s = TestServer::spawn(&format!(
        "[paper]\naccounts = [{}]\nsnapshot_every = 5\n[sources.github-style]\nrate_limit = {{ per_second = 100000, burst = 100000 }}\n",
        paper_accounts()
    ));
    let mut acked_all: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let burst = Burst::start(s.url("/hooks/github-style"), 6, PER_ROUND, move |n| {
            signal_for(round, n)
        });
        // Kill at a different moment each round.
        let target = PER_ROUND / 4 * (round + 1);
        burst.wait_acked(target, Duration::from_secs(20)).await;
        s.kill();
        acked_all.extend(burst.finish().await.into_iter().map(|(_, id)| id));
        s.start_process();
    }
    assert!(
        acked_all.len() >= ROUNDS * PER_ROUND / 4,
        "acknowledged only {}",
        acked_all.len()
    );

    // Every acknowledged alert is there and final; executed ones have their bracket on the account once.
    let mut orders_by_oco: HashMap<String, usize> = HashMap::new();
    for i in 1..=ACCOUNTS {
        for o in s.orders(&format!("P{i}")).await {
            *orders_by_oco
                .entry(o["ocoId"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for id in &acked_all {
        let rec = s.wait_final(id).await;
        let st = rec["status"].as_str().unwrap().to_string();
        let oco = rec["executions"][0]["request"]["ocoId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let legs = orders_by_oco.get(&oco).copied().unwrap_or(0);
        match st.as_str() {
            "executed" => assert_eq!(
                legs, 2,
                "executed alert {id} must have exactly its 2 legs: {rec}"
            ),
            "unknown" | "expired" => assert!(legs == 0 || legs == 2, "alert {id}: {legs} legs"),
            // A call in flight at the kill whose bracket died with the process: the relay asked the book
            // after the restart and found nothing, so it settled the alert failed. The book must agree.
            "failed" => {
                assert_eq!(rec["executions"][0]["settledBy"], "broker", "{rec}");
                assert_eq!(
                    legs, 0,
                    "settled failed, yet its orders are on the account: {rec}"
                );
            }
            other => panic!("alert {id} ended {other}: {rec}"),
        }
        *statuses.entry(st).or_default() += 1;
    }
    for (oco, n) in &orders_by_oco {
        assert!(
            *n <= 2,
            "OCO {oco} has {n} orders: a bracket was placed twice"
        );
    }
    eprintln!("acknowledged {}; {statuses:?}", acked_all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_opened_stops_the_process_with_a_clear_message() {
    let mut s = TestServer::spawn("");
    let body = tv_alert("ES1!", "2026-11-27T12:00:00Z", "long", 1, 6000.0).to_string();
    let (st, _, _) = s.post_hook("tradingview", &body, &[]).await;
    assert_eq!(st, 202);
    assert!(s.terminate().success());
    // The database vanishes (disk trouble, a careless rm): never start over empty.
    std::fs::remove_dir_all(s.data_dir().join("journal")).unwrap();
    let out = relay_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&s.config_path)
        .arg("--data-dir")
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to start over empty"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening on"));
    // A data dir that is a file is refused too.
    let file = s.dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = relay_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&s.config_path)
        .arg("--data-dir")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_storm_over_both_idempotency_paths_executes_once() {
    let s = TestServer::in_process("[sources.tradingview]\nrate_limit = { per_second = 100000, burst = 100000 }\n[sources.signals]\nrate_limit = { per_second = 100000, burst = 100000 }\n", None).await;
    // Path 1: the template key (and body hash) — the same TradingView alert 100 times, 50 at once.
    let body = tv_alert("ES1!", "2026-11-27T12:01:00Z", "long", 1, 6000.0).to_string();
    // Path 2: a sender's key (webhook-id), signed freshly each time.
    let sig_body = signal("storm-1", "NQ1!", "long", 1, 21010.0, 20990.0).to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (client, acc) = (s.client.clone(), accepted.clone());
            let (tv_url, sw_url) = (s.url("/hooks/tradingview"), s.url("/hooks/signals"));
            let (body, sig_body) = (body.clone(), sig_body.clone());
            tasks.push(tokio::spawn(async move {
                let r = client.post(&tv_url).body(body).send().await.unwrap();
                let st = r.status().as_u16();
                assert!(st == 202 || st == 200, "{st}");
                if st == 202 {
                    acc.fetch_add(1, Ordering::SeqCst);
                }
                let h = sw_headers(SW_SECRET, "storm-msg-1", unix_now() - (i % 3), &sig_body);
                let mut rb = client.post(&sw_url).body(sig_body);
                for (k, v) in &h {
                    rb = rb.header(k.as_str(), v.as_str());
                }
                let st = rb.send().await.unwrap().status().as_u16();
                assert!(st == 202 || st == 200, "{st}");
                if st == 202 {
                    acc.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "one acceptance per path"
    );
    let recs = s.alerts("").await;
    assert_eq!(recs.len(), 2, "{recs:?}");
    for r in &recs {
        s.wait_final(r["id"].as_str().unwrap()).await;
    }
    assert_eq!(s.working_orders("Sim101", "ES 12-26").await.len(), 2);
    assert_eq!(s.working_orders("Sim101", "NQ 12-26").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_corpus_gets_clean_4xx_and_stores_or_executes_nothing() {
    let s = TestServer::in_process_with_files(
        "[sources.tradingview]\nrate_limit = { per_second = 100000, burst = 100000 }\n",
        &[],
        None,
    )
    .await;
    let now = unix_now();
    let good_sig_body = signal("bad-1", "ES1!", "long", 1, 6010.0, 5990.0).to_string();
    let valid = sw_headers(SW_SECRET, "m1", now, &good_sig_body);
    let valid_sig = valid
        .iter()
        .find(|(k, _)| k == "webhook-signature")
        .unwrap()
        .1
        .clone();
    let b64 = valid_sig.trim_start_matches("v1,").to_string();
    let forged_sw: Vec<String> = vec![
        String::new(),
        "v1,".into(),
        format!("v1,{}", &b64[..b64.len() / 2]),
        format!("v1,{}", &b64[..10]),
        format!("v2,{b64}"),
        format!("v1,{b64}{b64}"),
        "v1,!!!not-base64!!!".into(),
        format!("v1{b64}"),
    ];
    let mut unauthenticated: Vec<(String, u16)> = Vec::new();
    for sig in &forged_sw {
        let mut rb = s
            .client
            .post(s.url("/hooks/signals"))
            .body(good_sig_body.clone());
        for (k, v) in &valid {
            let v = if k == "webhook-signature" {
                sig.clone()
            } else {
                v.clone()
            };
            rb = rb.header(k.as_str(), v);
        }
        let st = rb.send().await.unwrap().status().as_u16();
        unauthenticated.push((format!("sw signature {sig:?}"), st));
    }
    // Well past the 300-s tolerance (the exact edges are unit-tested in verify/tests.rs): a slow machine may
    // take seconds between `now` here and the server's check.
    for ts in [now - 360, now + 360, 0, i64::MAX / 2] {
        let h = sw_headers(SW_SECRET, "m1", ts, &good_sig_body);
        let mut rb = s
            .client
            .post(s.url("/hooks/signals"))
            .body(good_sig_body.clone());
        for (k, v) in &h {
            rb = rb.header(k.as_str(), v.as_str());
        }
        unauthenticated.push((
            format!("sw timestamp {ts}"),
            rb.send().await.unwrap().status().as_u16(),
        ));
    }
    for sig in [
        "",
        "sha256=",
        "sha256=00",
        "sha1=abc",
        "sha256=zz",
        &gh_signature(&good_sig_body)[..20],
    ] {
        let st = s
            .client
            .post(s.url("/hooks/github-style"))
            .header("X-Hub-Signature-256", sig)
            .body(good_sig_body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        unauthenticated.push((format!("gh {sig:?}"), st));
    }
    for (what, st) in &unauthenticated {
        assert_eq!(*st, 401, "{what}");
    }
    let not_found = [
        "/hooks/unknown",
        "/hooks/..%2Fetc",
        "/hooks/tradingview/extra",
    ];
    for path in not_found {
        let st = s
            .client
            .post(s.url(path))
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(st, 404, "{path}");
    }
    assert_eq!(
        s.record_count().await,
        0,
        "nothing stored for unauthenticated input"
    );

    // Authenticated (?token=) but broken bodies: a clean 400 each.
    let q = format!("/hooks/tradingview?token={TV_SECRET}");
    let deep = "[".repeat(5000) + &"]".repeat(5000);
    let deep_obj = format!("{{\"a\":{}}}", deep);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", br#"{"ticker":"ES1!","#.to_vec()),
        ("binary", vec![0xff, 0xfe, 0x00, 0x01, 0x80]),
        ("non-utf8 json", b"{\"ticker\":\"\xff\"}".to_vec()),
        ("deep", deep_obj.into_bytes()),
        ("empty", Vec::new()),
    ];
    for (what, b) in bodies {
        let st = s
            .client
            .post(s.url(&q))
            .header("content-type", "application/json")
            .body(b)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(st, 400, "{what}");
    }
    // Absurd numbers: rejected by validation (422), never executed.
    for (field, val) in [
        ("market_position_size", json!(0)),
        ("market_position_size", json!(1.5)),
        ("market_position_size", json!(1e308)),
        ("price", json!(1e308)),
        ("price", json!(-6000)),
        ("price", json!("NaN")),
    ] {
        let mut a = tv_alert(
            "ES1!",
            &format!("2026-11-27T12:02:{field}{val}"),
            "long",
            1,
            6000.0,
        );
        a["strategy"][field] = val.clone();
        let (st, v, _) = s.post_hook("tradingview", &a.to_string(), &[]).await;
        assert_eq!(st, 422, "{field}={val}: {v}");
    }
    // Template names with path separators, through the template-picking source.
    for name in ["../etc/passwd", "a/b", "..", "signal-service/../x"] {
        let mut sig = serde_json::from_str::<Value>(&good_sig_body).unwrap();
        sig["template"] = json!(name);
        let body = sig.to_string();
        let st = s
            .client
            .post(s.url("/hooks/github-style"))
            .header("X-Hub-Signature-256", gh_signature(&body))
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(st, 422, "template {name}");
    }
    // Nothing executed by any of it.
    let orders = s.orders("Sim101").await;
    assert!(orders.is_empty(), "{orders:?}");
    let seen: HashSet<String> = s
        .alerts("limit=1000")
        .await
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    assert!(seen.iter().all(|st| st == "rejected"), "{seen:?}");
}

/// POSTs `body` to `path` on a new connection with `headers`, and closes it at once, without reading an
/// answer.
async fn post_and_hang_up(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) {
    use tokio::io::AsyncWriteExt;
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    drop(conn);
}

/// A sender that hangs up right after its request (a webhook sender's timeout, a dropped link) must not
/// strand an alert the relay may already have recorded: each one it stored still runs to a final status,
/// without a restart. Every path that records alerts: the signed webhook, the CrossTrade-style
/// CancelAndBracket call (which answers only once executed, so its callers time out the most) and replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_hangs_up_mid_request_strands_no_alert() {
    const SENT: usize = 40;
    let s = TestServer::in_process(
        &format!(
            "[paper]\naccounts = [{}]\n[sources.github-style]\nrate_limit = {{ per_second = 100000, burst = 100000 }}\n",
            paper_accounts()
        ),
        None,
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let token = format!("Bearer {API_TOKEN}");
    let bearer = [("Authorization", token.as_str())];
    // Each hang-up races the server: under load a whole round of them can close before the server has
    // read a single request, which would leave a path unexercised. Rounds (new alerts each time) are sent
    // until every path has recorded something, at most ROUNDS of them.
    const ROUNDS: usize = 5;
    let recorded =
        |recs: &[Value], source: &str| recs.iter().filter(|r| r["source"] == source).count();
    let mut recs = Vec::new();
    for round in 0..ROUNDS {
        for n in 0..SENT {
            let body = signal_for(100 + round, n);
            let signature = gh_signature(&body);
            let signed = [("X-Hub-Signature-256", signature.as_str())];
            post_and_hang_up(&addr, "/hooks/github-style", &signed, &body).await;
            let (instrument, last) = [("ES 12-26", 6000.0), ("NQ 12-26", 21000.0)][n % 2];
            let body = json!({
                "instrument": instrument, "action": "Buy", "quantity": 1,
                "takeProfit": last * 1.01, "stopLoss": last * 0.99,
            })
            .to_string();
            let path = format!(
                "/v1/api/accounts/P{}/orders/cancel_and_bracket",
                n % ACCOUNTS + 1
            );
            post_and_hang_up(&addr, &path, &bearer, &body).await;
        }
        recs = settle_with_none_open(&s).await;
        if recorded(&recs, "github-style") > 0 && recorded(&recs, "api") > 0 {
            break;
        }
    }
    for source in ["github-style", "api"] {
        let n = recorded(&recs, source);
        assert!(
            n > 0,
            "no {source} request of the {ROUNDS} × {SENT} sent was recorded: that path was not exercised"
        );
        eprintln!("{source}: {n} recorded before the hang-up was seen, none left open");
    }
    // Replays (`POST /api/alerts/{id}/replay`) record a new alert the same way.
    let original = recs.iter().find(|r| r["source"] == "github-style").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"to": "paper"}).to_string();
    let path = format!("/api/alerts/{original}/replay");
    let replays_of = |recs: &[Value]| {
        recs.iter()
            .filter(|r| r["replayOf"] == original.as_str())
            .count()
    };
    let mut replays = 0;
    for _ in 0..ROUNDS {
        for _ in 0..SENT {
            post_and_hang_up(&addr, &path, &bearer, &body).await;
        }
        recs = settle_with_none_open(&s).await;
        replays = replays_of(&recs);
        if replays > 0 {
            break;
        }
    }
    assert!(
        replays > 0,
        "no replay of the {ROUNDS} × {SENT} sent was recorded: that path was not exercised"
    );
    eprintln!("replay: {replays} recorded before the hang-up was seen, none left open");
    // A webhook alert may be superseded by a newer request that started in its lane (each lane here gets
    // a webhook alert and a CancelAndBracket call); nothing else may end otherwise than executed.
    for r in &recs {
        let superseded_webhook =
            r["status"] == "superseded" && r["source"] == "github-style" && r["replayOf"].is_null();
        assert!(r["status"] == "executed" || superseded_webhook, "{r}");
    }
}

/// The recorded alerts that are still `accepted` or `executing`.
fn open(recs: &[Value]) -> Vec<&Value> {
    recs.iter()
        .filter(|r| matches!(r["status"].as_str(), Some("accepted" | "executing")))
        .collect()
}

/// One look at the journal: every record, and whether their number has held for a while.
struct Look {
    recs: Vec<Value>,
    quiet: bool,
}

impl std::fmt::Debug for Look {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stranded: Vec<String> = open(&self.recs)
            .iter()
            .map(|r| format!("{} ({})", r["id"], r["source"]))
            .collect();
        write!(
            f,
            "{} of {} recorded alerts never ran after their sender hung up: {stranded:?}",
            stranded.len(),
            self.recs.len()
        )
    }
}

/// Waits (10 s at most) until no recorded alert is `accepted` or `executing` and no new one was recorded
/// for 200 ms (the server may still be reading requests whose senders hung up); returns them all. Fails
/// naming the ones still open.
async fn settle_with_none_open(s: &TestServer) -> Vec<Value> {
    const QUIET: Duration = Duration::from_millis(200);
    let last_change = std::cell::Cell::new((usize::MAX, Instant::now()));
    let look = || async {
        let recs = s.alerts("limit=1000").await;
        if last_change.get().0 != recs.len() {
            last_change.set((recs.len(), Instant::now()));
        }
        let quiet = last_change.get().1.elapsed() >= QUIET;
        Look { recs, quiet }
    };
    let settled = |l: &Look| l.quiet && open(&l.recs).is_empty();
    eventually("no alert left open", Duration::from_secs(10), look, settled)
        .await
        .recs
}
