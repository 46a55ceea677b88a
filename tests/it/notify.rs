//! Notifications (`[notify]`): the real relay with a channel of each kind pointed at local fake endpoints,
//! plus two dead ones (a refused connection, a server that never answers). Checked: each live channel gets
//! a failed execution and a kill-switch flip in its own request shape; the dead channels delay neither the
//! alert's answer nor the other channels; every send is logged, and no secret reaches the log. Then each
//! other event the relay emits: the broker's missing add-on (CrossTrade's 408) told once and its recovery
//! once, an `unknown` outcome and its settlement by an operator and by the broker, a refusal burst once,
//! contract rolls and positions left in an old month.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;
use alert_relay::verify::{verify_standard_webhooks, WebhookSecret};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const TELEGRAM_TOKEN: &str = "777000:tg-SECRET-token-abc";
const DISCORD_TOKEN: &str = "dc-SECRET-token-xyz";
const NTFY_TOKEN: &str = "tk_ntfy-SECRET-token";
const SIGNING_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One request a fake endpoint received: the request line and headers (lowercase names), and the body.
#[derive(Debug)]
struct Received {
    line: String,
    headers: Vec<(String, String)>,
    body: Value,
    raw_body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

/// A fake endpoint answering `answer` (a JSON body, status 200) to every request, and handing each request
/// to the test.
async fn endpoint(answer: &'static str) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let url = scripted(move |_, head, body| {
        let mut lines = head.lines();
        let line = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let _ = tx.send(Received {
            line,
            headers,
            body: serde_json::from_str(body).unwrap_or(Value::Null),
            raw_body: body.to_string(),
        });
        Reply::json(200, answer)
    })
    .await;
    (url, rx)
}

/// A server that accepts connections and never answers.
async fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    url
}

/// An address nothing listens on: connections are refused.
fn refused_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

async fn next(
    rx: &mut mpsc::UnboundedReceiver<Received>,
    within: Duration,
    what: &str,
) -> Received {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {within:?}"))
        .unwrap()
}

/// A `[[notify.channels]]` table: the ntfy channel "ops" at `server`, on `topic`, for `events` (the items of
/// a TOML list).
fn ntfy_ops(server: &str, topic: &str, events: &str) -> String {
    format!(
        "[[notify.channels]]\nkind = \"ntfy\"\nname = \"ops\"\nserver = \"{server}\"\ntopic = \"{topic}\"\nevents = [{events}]\n"
    )
}

fn write_secret(dir: &Path, name: &str, value: &str) {
    std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_execution_and_the_kill_switch_reach_every_channel() {
    let (hook_url, mut hook) = endpoint("{}").await;
    let (tg_url, mut tg) = endpoint(r#"{"ok":true,"result":{}}"#).await;
    let (dc_url, mut dc) = endpoint("{}").await;
    let (ntfy_url, mut ntfy) = endpoint(r#"{"id":"x"}"#).await;
    let (silent, refused) = (silent_endpoint().await, refused_endpoint());

    let dir = tempfile::tempdir().unwrap();
    write_secret(dir.path(), "tg.token", TELEGRAM_TOKEN);
    write_secret(
        dir.path(),
        "discord.url",
        &format!("{dc_url}/api/webhooks/42/{DISCORD_TOKEN}"),
    );
    write_secret(dir.path(), "ntfy.token", NTFY_TOKEN);
    write_secret(dir.path(), "hook.secret", SIGNING_SECRET);
    let relay = LoggedRelay::start(
        dir,
        &format!(
            r#"
[[notify.channels]]
kind = "webhook"
name = "ops-hook"
url = "{hook_url}/relay-events"
secret = "file:{{dir}}/hook.secret"
events = ["*"]

[[notify.channels]]
kind = "telegram"
name = "phone"
api_base = "{tg_url}"
bot_token = "file:{{dir}}/tg.token"
chat_id = "-100123"
events = ["execution.failed", "execution.unknown", "kill_switch"]

[[notify.channels]]
kind = "discord"
name = "desk"
webhook_url = "file:{{dir}}/discord.url"
events = ["execution.failed", "kill_switch"]

[[notify.channels]]
kind = "ntfy"
name = "watch"
server = "{ntfy_url}"
topic = "relay-alerts"
token = "file:{{dir}}/ntfy.token"

[[notify.channels]]
kind = "ntfy"
name = "silent"
server = "{silent}"
topic = "t"
timeout_ms = 3000

[[notify.channels]]
kind = "webhook"
name = "refused"
url = "{refused}/x"
"#
        ),
    );

    // A Sell stop above the market is refused by the paper broker: the execution fails. Its answer does not
    // wait for any channel (the silent one takes 3 s per attempt).
    let started = Instant::now();
    let (st, v) = relay
        .post(
            "/v1/api/accounts/Sim101/orders/cancel_and_bracket",
            json!({"instrument": "ES 12-26", "action": "Buy", "quantity": 1, "stopLoss": 6010}),
        )
        .await;
    let answered = started.elapsed();
    assert_eq!(st, 400, "{v}");
    assert!(
        answered < Duration::from_secs(2),
        "answer took {answered:?}"
    );
    let (st, v) = relay
        .post("/api/kill-switch", json!({"enabled": true}))
        .await;
    assert_eq!(st, 200, "{v}");

    // Both events reach each live channel at once, while the dead ones are still trying.
    let within = Duration::from_secs(2);
    let failed = next(&mut hook, within, "webhook: execution.failed").await;
    let killed = next(&mut hook, within, "webhook: kill_switch").await;
    assert_eq!(failed.line, "POST /relay-events HTTP/1.1");
    assert_eq!(failed.header("content-type"), "application/json");
    assert_eq!(failed.body["event"], "execution.failed");
    assert_eq!(failed.body["title"], "Execution failed: Sim101 ES 12-26");
    let data = &failed.body["data"];
    assert_eq!(
        (&data["account"], &data["instrument"]),
        (&json!("Sim101"), &json!("ES 12-26"))
    );
    let alert_id = data["alertId"].as_str().expect("alertId").to_string();
    assert!(!data["reason"].as_str().unwrap().is_empty(), "{data}");
    assert_eq!(
        (&killed.body["event"], &killed.body["data"]["on"]),
        (&json!("kill_switch"), &json!(true))
    );
    // Signed as a Standard Webhooks sender: the relay's own check accepts it.
    let key = WebhookSecret::parse(SIGNING_SECRET).unwrap();
    for r in [&failed, &killed] {
        let ts = r.header("webhook-timestamp");
        verify_standard_webhooks(
            &key,
            r.header("webhook-id"),
            ts,
            r.header("webhook-signature"),
            r.raw_body.as_bytes(),
            ts.parse().unwrap(),
        )
        .expect("a valid signature");
        assert_eq!(r.header("webhook-id"), r.body["id"].as_str().unwrap());
    }

    let failed = next(&mut tg, within, "telegram: execution.failed").await;
    let killed = next(&mut tg, within, "telegram: kill_switch").await;
    assert_eq!(
        failed.line,
        format!("POST /bot{TELEGRAM_TOKEN}/sendMessage HTTP/1.1")
    );
    assert_eq!(failed.header("content-type"), "application/json");
    assert_eq!(failed.body["chat_id"], "-100123");
    let text = failed.body["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "Execution failed: Sim101 ES 12-26\nAlert {alert_id}: "
        )),
        "{text}"
    );
    assert!(killed.body["text"]
        .as_str()
        .unwrap()
        .starts_with("Kill switch ON\n"));

    let failed = next(&mut dc, within, "discord: execution.failed").await;
    let killed = next(&mut dc, within, "discord: kill_switch").await;
    assert_eq!(
        failed.line,
        format!("POST /api/webhooks/42/{DISCORD_TOKEN} HTTP/1.1")
    );
    assert!(failed.body["content"]
        .as_str()
        .unwrap()
        .starts_with("**Execution failed: Sim101 ES 12-26**\n"));
    assert_eq!(failed.body["allowed_mentions"], json!({"parse": []}));
    assert!(killed.body["content"]
        .as_str()
        .unwrap()
        .starts_with("**Kill switch ON**"));

    let failed = next(&mut ntfy, within, "ntfy: execution.failed").await;
    let killed = next(&mut ntfy, within, "ntfy: kill_switch").await;
    assert_eq!(failed.line, "POST / HTTP/1.1");
    assert_eq!(
        failed.header("authorization"),
        format!("Bearer {NTFY_TOKEN}")
    );
    assert_eq!(
        (
            &failed.body["topic"],
            &failed.body["title"],
            &failed.body["priority"]
        ),
        (
            &json!("relay-alerts"),
            &json!("Execution failed: Sim101 ES 12-26"),
            &json!(4)
        )
    );
    assert_eq!(failed.body["tags"], json!(["warning", "execution.failed"]));
    assert_eq!(killed.body["title"], "Kill switch ON");

    // Every send is logged: INFO when sent, one WARN when a channel gives up (the refused one: 3 attempts,
    // 1 s and 2 s apart).
    let deadline = Instant::now() + Duration::from_secs(15);
    let gave_up = |log: &str| {
        log.lines().any(|l| {
            l.contains("WARN")
                && l.contains("notification not delivered")
                && l.contains("channel=refused")
                && l.contains("attempts=3")
        })
    };
    while !gave_up(&relay.log_text()) {
        assert!(
            Instant::now() < deadline,
            "no give-up line:\n{}",
            relay.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = relay.log_text();
    for channel in ["ops-hook", "phone", "desk", "watch"] {
        let sent = log
            .lines()
            .filter(|l| {
                l.contains("INFO")
                    && l.contains("notification sent")
                    && l.contains(&format!("channel={channel} "))
            })
            .count();
        assert_eq!(sent, 2, "{channel}:\n{log}");
    }
    for secret in [
        TELEGRAM_TOKEN,
        DISCORD_TOKEN,
        NTFY_TOKEN,
        SIGNING_SECRET,
        "tg-SECRET",
        "SECRET-token",
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    // The metrics count each channel's outcomes.
    let metrics = reqwest::get(format!("{}/metrics", relay.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "alert_relay_notifications_total{channel=\"phone\",outcome=\"sent\"} 2",
        "alert_relay_notifications_total{channel=\"refused\",outcome=\"failed\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing in\n{metrics}"
        );
    }
}

/// A scripted CrossTrade: answers the `i`-th request with `answers[i]` (status, body); the last repeats.
async fn crosstrade(answers: Vec<(u16, &'static str)>) -> String {
    scripted(move |n, _, _| {
        let (code, body) = answers[n.min(answers.len() - 1)];
        Reply::json(code, body)
    })
    .await
}

/// CrossTrade's 408 (the NinjaTrader add-on not connected) degrades the broker: told once however many
/// executions fail that way, and its recovery once, at the next success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_degrades_once_and_recovers_once() {
    let ok = r#"{"orderIds":["aa","bb"],"success":true}"#;
    let upstream = crosstrade(vec![
        (408, r#"{"error":"timeout"}"#),
        (408, r#"{"error":"timeout"}"#),
        (200, ok),
    ])
    .await;
    let (ntfy_url, mut got) = endpoint("{}").await;
    let overrides = format!(
        "{}{}",
        crosstrade_overrides(&upstream, "http", "\"Sim101\"", "request_timeout_ms = 2000"),
        ntfy_ops(
            &ntfy_url,
            "broker",
            r#""broker.degraded", "broker.recovered""#
        )
    );
    let s = TestServer::in_process(&overrides, None).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let body = tv_alert(
            "ES1!",
            &format!("2026-11-27T10:00:0{n}Z"),
            "long",
            1,
            6000.0,
        )
        .to_string();
        let (st, rec, _) = s.post_hook_final("tradingview", &body, &[]).await;
        assert_eq!(st, 200, "{rec}");
        statuses.push(rec["status"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses, ["failed", "failed", "executed"]);
    let within = Duration::from_secs(5);
    let degraded = next(&mut got, within, "broker.degraded").await;
    assert_eq!(degraded.body["title"], "Broker degraded: crosstrade-http");
    assert!(
        degraded.body["message"]
            .as_str()
            .unwrap()
            .starts_with("NinjaTrader add-on not connected."),
        "{}",
        degraded.body
    );
    let recovered = next(&mut got, within, "broker.recovered").await;
    assert_eq!(recovered.body["title"], "Broker recovered: crosstrade-http");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), got.recv())
            .await
            .is_err(),
        "one degraded, one recovered"
    );
}

/// A relay trading Sim101 live through `upstream`, whose calls give up fast, with an ntfy channel for
/// `events`: one alert sent, which ends `unknown`. Returns the relay, the channel's requests and the id.
async fn an_unknown_outcome(
    upstream: &str,
    events: &str,
) -> (TestServer, mpsc::UnboundedReceiver<Received>, String) {
    let (ntfy_url, got) = endpoint("{}").await;
    let channel = ntfy_ops(&ntfy_url, "settle", events);
    let s = TestServer::in_process(&settling_overrides(upstream, 600, &channel), None).await;
    let body = tv_alert("ES1!", "2026-11-27T10:00:00Z", "long", 1, 6000.0).to_string();
    let (st, rec, _) = s.post_hook_final("tradingview", &body, &[]).await;
    assert_eq!((st, &rec["status"]), (200, &json!("unknown")), "{rec}");
    let id = rec["id"].as_str().unwrap().to_string();
    (s, got, id)
}

/// A live call that never gets an answer ends `unknown` (told), and an operator's settlement is told too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_and_its_settlement_by_an_operator() {
    let upstream = silent_endpoint().await;
    let (s, mut got, id) =
        an_unknown_outcome(&upstream, r#""execution.unknown", "execution.settled""#).await;
    let within = Duration::from_secs(5);
    let unknown = next(&mut got, within, "execution.unknown").await;
    assert_eq!(unknown.body["title"], "Outcome unknown: Sim101 ES 12-26");
    assert!(
        unknown.body["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Alert {id}: outcome unknown")),
        "{}",
        unknown.body
    );
    let (st, v) = s
        .api_post(
            &format!("/api/alerts/{id}/resolve"),
            json!({"status": "failed", "note": "checked: nothing placed"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let settled = next(&mut got, within, "execution.settled").await;
    assert_eq!(settled.body["title"], "Settled as failed: Sim101 ES 12-26");
    assert_eq!(
        settled.body["message"],
        format!("Alert {id} settled as failed by the operator: checked: nothing placed.")
    );
}

/// Refused webhooks from a configured source: the one that takes it over the threshold (10 in 5 minutes)
/// is told, once, however many follow; refusals for a source that is not configured are never told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_burst_is_told_once() {
    let (ntfy_url, mut got) = endpoint("{}").await;
    let overrides = ntfy_ops(&ntfy_url, "refusals", r#""refusals.burst""#);
    let s = TestServer::in_process(&overrides, None).await;
    let mut body = tv_alert("ES1!", "2026-11-27T10:00:00Z", "long", 1, 6000.0);
    body["secret"] = json!("not-the-secret");
    let body = body.to_string();
    for _ in 0..5 {
        let (st, _, _) = s.post_hook("nosuchsource", &body, &[]).await;
        assert_eq!(st, 404);
    }
    for _ in 0..14 {
        let (st, v, _) = s.post_hook("tradingview", &body, &[]).await;
        assert_eq!(st, 401, "{v}");
    }
    let burst = next(&mut got, Duration::from_secs(5), "refusals.burst").await;
    assert_eq!(
        burst.body["title"],
        "11 webhooks refused: source 'tradingview'"
    );
    assert_eq!(burst.body["tags"], json!(["refusals.burst"]));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), got.recv())
            .await
            .is_err(),
        "told once per window"
    );
}

/// Nothing more arrives within `quiet`.
async fn nothing_more(rx: &mut mpsc::UnboundedReceiver<Received>, quiet: Duration, why: &str) {
    if let Ok(Some(r)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("{why}, but got {}", r.raw_body);
    }
}

/// Contract months, with the contracts clock moved across the December 2026 roll: a roll less than five
/// days away is told at start-up once per root (not again by the daily check, nor by `/healthz`); after
/// the roll, an account's position and working orders left in the old month are told as one event, once
/// per exchange day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_rolls_and_old_month_holdings_are_told() {
    use alert_relay::clock::ManualClock;
    use std::sync::Arc;
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis() as u64
    };
    let (hook_url, mut got) = endpoint("{}").await;
    let overrides = format!(
        "[[notify.channels]]\nkind = \"webhook\"\nname = \"ops\"\nurl = \"{hook_url}/contracts\"\nevents = [\"contracts.roll\", \"contracts.old_month\"]\n"
    );
    let clock = Arc::new(ManualClock::new(ms("2026-12-07T15:00:00Z")));
    let s = TestServer::in_process_with_contracts_clock(&overrides, &[], None, clock.clone()).await;
    let relay = s.relay.clone().unwrap();
    let within = Duration::from_secs(5);

    // Start-up: ES, MES, MNQ and NQ roll on 2026-12-10, in 3 days (CL's roll, 2026-12-14, is 7 away).
    let mut rolls = Vec::new();
    for _ in 0..4 {
        rolls.push(next(&mut got, within, "contracts.roll").await.body);
    }
    rolls.sort_by_key(|r| r["data"]["root"].as_str().unwrap().to_string());
    let roots: Vec<&str> = rolls
        .iter()
        .map(|r| r["data"]["root"].as_str().unwrap())
        .collect();
    assert_eq!(roots, ["ES", "MES", "MNQ", "NQ"]);
    let es = &rolls[0];
    assert_eq!(es["event"], "contracts.roll");
    assert_eq!(es["title"], "Contract roll ES: ES 12-26 → ES 03-27");
    assert_eq!(
        es["message"],
        "From 2026-12-10 (in 3 day(s)), alerts for ES trade ES 03-27 instead of ES 12-26 (expiry 2026-12-18). Positions and orders in ES 12-26 stay there until you close them: roll them before if you mean to (README, The roll procedure)."
    );
    assert_eq!(
        es["data"],
        json!({"event": "contracts.roll", "root": "ES", "from": "ES 12-26", "to": "ES 03-27",
            "date": "2026-12-10", "days": 3, "expiry": "2026-12-18"})
    );
    // Told once per root and roll: not by the next daily check, a day later, nor by health probes.
    clock.set(ms("2026-12-08T15:00:00Z"));
    relay.report_rolls(true);
    relay.report_old_months(false).await;
    s.health().await;
    nothing_more(
        &mut got,
        Duration::from_millis(500),
        "each roll is told once",
    )
    .await;

    // A long 1 in ES 12-26 with its bracket (two working orders), then the roll.
    s.buy_at_market("ES1!", 1).await;
    let body = tv_alert("ES1!", "2026-12-08T15:00:00Z", "long", 1, 6000.0).to_string();
    let (st, rec, _) = s.post_hook_final("tradingview", &body, &[]).await;
    assert_eq!((st, &rec["status"]), (200, &json!("executed")), "{rec}");
    let mut orders: Vec<String> = s
        .working_orders("Sim101", "ES 12-26")
        .await
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(orders.len(), 2, "{orders:?}");
    clock.set(ms("2026-12-11T15:00:00Z"));
    assert_eq!(s.health().await["status"], "degraded");
    nothing_more(
        &mut got,
        Duration::from_millis(300),
        "/healthz tells nobody",
    )
    .await;

    // The daily check: the holdings, as one event; CL's roll (2026-12-14) is now 3 days away.
    relay.report_rolls(true);
    relay.report_old_months(false).await;
    let mut two = [
        next(&mut got, within, "contracts.*").await.body,
        next(&mut got, within, "contracts.*").await.body,
    ];
    two.sort_by_key(|b| b["event"].as_str().unwrap().to_string());
    let [held, cl] = two;
    assert_eq!(cl["data"]["root"], "CL", "{cl}");
    assert_eq!(cl["data"]["date"], "2026-12-14", "{cl}");
    assert_eq!(held["event"], "contracts.old_month", "{held}");
    assert_eq!(held["title"], "Position left in ES 12-26 on Sim101");
    assert_eq!(held["urgent"], true);
    let mut told: Vec<String> = held["data"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    told.sort();
    orders.sort();
    assert_eq!(told, orders);
    assert_eq!(
        (
            &held["data"]["account"],
            &held["data"]["contract"],
            &held["data"]["quantity"],
            &held["data"]["current"]
        ),
        (
            &json!("Sim101"),
            &json!("ES 12-26"),
            &json!(1),
            &json!("ES 03-27")
        ),
        "{held}"
    );
    let message = held["message"].as_str().unwrap();
    assert!(
        message.starts_with("Sim101 is long 1 ES 12-26 with 2 working order(s) (")
            && message.ends_with("), a month alerts no longer trade. Alerts for the root trade ES 03-27 now. The relay leaves them there: close ES 12-26 (ClosePosition or Flatten) if you mean to."),
        "{message}"
    );

    // Once per day: not again the same day; again the next.
    relay.report_rolls(true);
    relay.report_old_months(false).await;
    s.health().await;
    nothing_more(&mut got, Duration::from_millis(500), "told once a day").await;
    clock.set(ms("2026-12-12T15:00:00Z"));
    relay.report_old_months(false).await;
    let again = next(&mut got, within, "contracts.old_month the next day")
        .await
        .body;
    assert_eq!(again["title"], "Position left in ES 12-26 on Sim101");

    // Closed: nothing to tell.
    s.flatten("ES 12-26").await;
    clock.set(ms("2026-12-13T15:00:00Z"));
    relay.report_old_months(false).await;
    nothing_more(
        &mut got,
        Duration::from_millis(500),
        "nothing is held any more",
    )
    .await;
}

/// An `unknown` execution settled by asking the broker (no order with its OCO id: `failed`) is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settlement_by_the_broker_is_told() {
    // CancelAndBracket never answers; the order list holds one order of someone else.
    let (upstream, _) = unanswering_crosstrade(Listing::Others).await;
    let (_s, mut got, id) = an_unknown_outcome(&upstream, r#""execution.settled""#).await;
    let settled = next(&mut got, Duration::from_secs(10), "execution.settled").await;
    assert_eq!(settled.body["title"], "Settled as failed: Sim101 ES 12-26");
    let message = settled.body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Alert {id} settled as failed by the broker: 1 order(s) listed, none with OCO id "
        )),
        "{message}"
    );
}

/// `alert-relay check` resolves the channels' secrets as `serve` would, and its errors name the key, never
/// the value; an unknown event name is refused with the valid ones.
#[test]
fn check_resolves_the_channels_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let run = |channel: &str, token: Option<&str>| {
        let shipped = alert_relay::config::EMBEDDED_CONFIG;
        std::fs::write(
            &config,
            format!("{shipped}\n[[notify.channels]]\n{channel}"),
        )
        .unwrap();
        let mut c = relay_command();
        c.args(["check", "--config"]).arg(&config);
        match token {
            Some(t) => c.env("NOTIFY_CHECK_TG_TOKEN", t),
            None => c.env_remove("NOTIFY_CHECK_TG_TOKEN"),
        };
        c.output().expect("run alert-relay")
    };
    let telegram = "kind = \"telegram\"\nname = \"phone\"\nbot_token = \"env:NOTIFY_CHECK_TG_TOKEN\"\nchat_id = \"1\"\n";
    let good = run(telegram, Some("777:check-SECRET"));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let unset = run(telegram, None);
    assert!(!unset.status.success());
    let err = String::from_utf8_lossy(&unset.stderr);
    assert!(
        err.contains(
            "notify.channels[0].bot_token: environment variable NOTIFY_CHECK_TG_TOKEN is not set"
        ),
        "{err}"
    );
    let bad = run(
        "kind = \"ntfy\"\nname = \"n\"\ntopic = \"t\"\nevents = [\"kill-switch\"]\n",
        None,
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("notify.channels[0].events: unknown event 'kill-switch'; valid: \"*\", \"execution.failed\""),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&good.stdout).contains("check-SECRET"));
}
