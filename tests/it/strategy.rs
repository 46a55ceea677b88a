//! Position-aware trading (issue 23): the shipped TradingView templates follow a strategy on the account's
//! real position, on paper and through two chained relays (A trades Sim101 live through B's
//! CrossTrade-compatible API, B holds it on paper).
//!
//! What a trader relies on, and where it is checked:
//! - The walk flat → long 1 → long 2 → short 1 → flat leaves, after each alert, the position the strategy
//!   holds and exactly one bracket around it (two working orders under one OCO id, at the size held), and
//!   nothing working once flat: `a_strategy_walks_on_paper`, `a_strategy_walks_through_two_chained_relays`.
//! - The paper quote follows the alert's price: the entry fills there and the bracket around it is accepted.
//! - The position is read once per alert and account, even for a three-step reversal (counted on the wire
//!   between A and B).
//! - `tradingview-protect` on a flat account is `skipped`, naming what it found, and places nothing;
//!   `entry = true` (signal-service) places the bracket on a flat account as the entry.
//! - A step that fails stops the later ones: they are `skipped` with "not run: ...".
//! - Two orders of one strategy in the same second are two alerts, never a reused key.
//! - An alert whose price crosses the bracket's stop fills it before the position is read: a reversal's
//!   close is then skipped, a resize neither re-enters (`same-side`) nor turns the account over (`reduce`).
//! - Property (`strategy_sequences_never_leave_the_account_opposite_or_naked`): over random sequences of
//!   strategy states and prices, the account never holds a position opposite to the last alert's
//!   `market_position`, is flat when it is flat, and holds no working order in an instrument it is flat in.

use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

use crate::support::*;

/// The `tradingview` source with the shipped strategy template, trading Sim101; `protect` and `indicator`
/// sources with the other two TradingView templates.
const STRATEGY_SOURCES: &str = r#"
[sources.tradingview]
template = "tradingview-strategy"
accounts = ["Sim101"]
[sources.protect]
auth = "token"
secret = "file:{dir}/tv.secret"
token_field = "secret"
template = "tradingview-protect"
accounts = ["Sim101"]
[sources.indicator]
auth = "token"
secret = "file:{dir}/tv.secret"
token_field = "secret"
template = "tradingview-indicator"
accounts = ["Sim101"]
"#;

/// A strategy's position: +n long, -n short, 0 flat.
fn word(pos: i64) -> &'static str {
    match pos.signum() {
        1 => "long",
        -1 => "short",
        _ => "flat",
    }
}

/// A TradingView strategy alert for ES1! as TradingView fills the README's message when the strategy's
/// position goes from `prev` to `now` with an order at `price`.
fn strategy_alert(timenow: &str, order_id: &str, prev: i64, now: i64, price: f64) -> String {
    json!({
        "secret": TV_SECRET,
        "ticker": "ES1!",
        "timenow": timenow,
        "close": price,
        "strategy": {
            "action": if now > prev { "buy" } else { "sell" },
            "contracts": (now - prev).abs(),
            "price": price,
            "id": order_id,
            "market_position": word(now),
            "market_position_size": now.abs(),
            "prev_market_position": word(prev),
            "prev_market_position_size": prev.abs(),
        }
    })
    .to_string()
}

/// What an account holds in ES 12-26: the signed position, its average price, and the working orders.
#[derive(Debug)]
struct Book {
    held: i64,
    average: Option<f64>,
    working: Vec<Value>,
}

async fn book(s: &TestServer) -> Book {
    let (st, v) = s.api_get("/v1/api/accounts/Sim101/positions").await;
    assert_eq!(st, 200, "{v}");
    let mine: Vec<Value> = v["positions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["instrument"] == ES && p["quantity"].as_i64().unwrap_or(0) != 0)
        .collect();
    assert!(mine.len() <= 1, "one position per instrument: {v}");
    let held = mine.first().map_or(0, |p| {
        let q = p["quantity"].as_i64().unwrap().abs();
        match p["marketPosition"].as_str() {
            Some("Short") => -q,
            _ => q,
        }
    });
    Book {
        held,
        average: mine.first().and_then(|p| p["averagePrice"].as_f64()),
        working: s.working_orders("Sim101", ES).await,
    }
}

/// Asserts the book holds `held` and exactly one bracket around it at `tp` / `sl` (nothing working when
/// flat).
fn assert_bracketed(b: &Book, held: i64, tp: f64, sl: f64, step: &str) {
    assert_eq!(b.held, held, "{step}: position: {b:?}");
    if held == 0 {
        assert!(b.working.is_empty(), "{step}: flat, nothing working: {b:?}");
        return;
    }
    let exit = if held > 0 { "Sell" } else { "Buy" };
    assert_one_bracket(b, exit, held.abs(), tp, sl, step);
}

/// Asserts the working orders are one bracket: two `exit` orders of `quantity` under one OCO id, a limit
/// at `tp` and a stop market at `sl`.
fn assert_one_bracket(b: &Book, exit: &str, quantity: i64, tp: f64, sl: f64, step: &str) {
    assert_eq!(b.working.len(), 2, "{step}: one bracket: {b:?}");
    let oco = &b.working[0]["ocoId"];
    assert!(oco.as_str().is_some_and(|o| !o.is_empty()), "{step}: {b:?}");
    for o in &b.working {
        assert_eq!(&o["ocoId"], oco, "{step}: one OCO id: {b:?}");
        assert_eq!(o["action"], exit, "{step}: {b:?}");
        assert_eq!(o["quantity"].as_i64(), Some(quantity), "{step}: {b:?}");
    }
    let of = |t: &str| {
        b.working
            .iter()
            .find(|o| o["orderType"] == t)
            .unwrap_or_else(|| panic!("{step}: no {t}: {b:?}"))
    };
    assert_eq!(
        of("Limit")["limitPrice"].as_f64(),
        Some(tp),
        "{step}: {b:?}"
    );
    assert_eq!(
        of("StopMarket")["stopPrice"].as_f64(),
        Some(sl),
        "{step}: {b:?}"
    );
}

/// The record's executions as (command, status, position seen or ""), in order.
fn steps(rec: &Value) -> Vec<[String; 3]> {
    rec["executions"]
        .as_array()
        .unwrap_or_else(|| panic!("no executions: {rec}"))
        .iter()
        .map(|e| {
            let cmd = e["request"]["command"]
                .as_str()
                .unwrap_or("CancelAndBracket");
            let status = e["status"].as_str().unwrap_or("?");
            let seen = e["positionSeen"].as_str().unwrap_or("");
            [cmd, status, seen].map(String::from)
        })
        .collect()
}

fn owned(v: &[[&str; 3]]) -> Vec<[String; 3]> {
    v.iter().map(|t| t.map(String::from)).collect()
}

/// The record's [`steps`] are `want`.
fn assert_steps(rec: &Value, want: &[[&str; 3]]) {
    assert_eq!(steps(rec), owned(want), "{rec}");
}

/// One alert of the walk: the strategy's move, the price, what the record must show for each step (command,
/// status, the position it saw: read once, then as the steps before it left it; "" when none is recorded),
/// and the bracket after it (take-profit, stop-loss).
struct Move {
    timenow: &'static str,
    id: &'static str,
    prev: i64,
    now: i64,
    price: f64,
    steps: &'static [[&'static str; 3]],
    tp: f64,
    sl: f64,
}

/// flat → long 1 → long 2 → short 1 → flat. Each price differs from the last, none crosses the bracket
/// before it, and the first is not the initial quote (6000): the entry must fill where the alert says.
const WALK: [Move; 4] = [
    Move {
        timenow: "2026-12-06T14:30:00Z",
        id: "Long",
        prev: 0,
        now: 1,
        price: 6012.25,
        steps: &[
            ["PlaceOrder", "executed", "flat"],
            ["CancelAndBracket", "executed", "long 1"],
        ],
        tp: 6022.25,
        sl: 6007.25,
    },
    Move {
        timenow: "2026-12-06T14:35:00Z",
        id: "Long",
        prev: 1,
        now: 2,
        price: 6015.0,
        steps: &[
            ["PlaceOrder", "executed", "long 1"],
            ["CancelAndBracket", "executed", "long 2"],
        ],
        tp: 6025.0,
        sl: 6010.0,
    },
    Move {
        timenow: "2026-12-06T14:40:00Z",
        id: "Short",
        prev: 2,
        now: -1,
        price: 6018.0,
        steps: &[
            ["ClosePosition", "executed", "long 2"],
            ["PlaceOrder", "executed", "flat"],
            ["CancelAndBracket", "executed", "short 1"],
        ],
        tp: 6008.0,
        sl: 6023.0,
    },
    Move {
        timenow: "2026-12-06T14:45:00Z",
        id: "Short Exit",
        prev: -1,
        now: 0,
        price: 6016.0,
        steps: &[["ClosePosition", "executed", "short 1"]],
        tp: 0.0,
        sl: 0.0,
    },
];

/// Runs the walk on `a`, reading the account on `b` after each alert: the same server on paper; chained,
/// relay B, whose market moves to each alert's price first (a live broker has its own market: A never moves
/// it), and `reads` counts what A asked B.
async fn walk(a: &TestServer, b: &TestServer, reads: Option<&Reads>) {
    let mut working_before: Vec<Value> = vec![];
    for (n, m) in WALK.iter().enumerate() {
        let step = format!("alert {} ({} → {})", n + 1, word(m.prev), word(m.now));
        if !std::ptr::eq(a, b) {
            market(b, m.price).await;
        }
        let reads_before = reads.map(Reads::positions);
        let rec = a
            .post_hook_record(
                "tradingview",
                &strategy_alert(m.timenow, m.id, m.prev, m.now, m.price),
            )
            .await;
        assert_eq!(rec["status"], "executed", "{step}: {rec}");
        assert_eq!(steps(&rec), owned(m.steps), "{step}: {rec}");
        let b_book = book(b).await;
        assert_bracketed(&b_book, m.now, m.tp, m.sl, &step);
        if n == 0 {
            assert_eq!(
                b_book.average,
                Some(m.price),
                "{step}: the entry fills at the alert's price"
            );
        }
        // The bracket before is gone: cancelled by this alert's bracket (resize) or close (reversal, exit).
        let cancelled: Vec<&Value> = rec["executions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| {
                e["outcome"]["cancelledOrderIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
            })
            .collect();
        for o in &working_before {
            assert!(
                cancelled.contains(&&o["orderId"]),
                "{step}: {o} cancelled: {rec}"
            );
        }
        working_before = b_book.working;
        if let (Some(r), Some(before)) = (reads, reads_before) {
            assert_eq!(
                r.positions() - before,
                1,
                "{step}: one position read per alert and account: {:?}",
                r.seen()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_walks_on_paper() {
    let s = TestServer::in_process_with_files(STRATEGY_SOURCES, &[], None).await;
    walk(&s, &s, None).await;
}

// ------------------------------------------------------------------------------------------ two relays

/// The requests a counting proxy forwarded, as "METHOD /path".
#[derive(Clone, Default)]
struct Reads(Arc<Mutex<Vec<String>>>);

impl Reads {
    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    /// How many times the position of Sim101 was read.
    fn positions(&self) -> usize {
        self.seen()
            .iter()
            .filter(|r| *r == "GET /v1/api/accounts/Sim101/positions")
            .count()
    }
}

/// A CrossTrade upstream that forwards each request to `target` (relay B) and answers with B's answer,
/// remembering it: B's requests, counted where A sends them. Returns its URL.
async fn counting_proxy(target: String) -> (String, Reads) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reads = Reads::default();
    let seen = reads.clone();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (seen, client, target) = (seen.clone(), client.clone(), target.clone());
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut sock).await else {
                    return;
                };
                let mut first = head.lines().next().unwrap_or("").split_whitespace();
                let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                seen.0.lock().unwrap().push(format!("{method} {path}"));
                let auth = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("authorization")
                        .then(|| v.trim().to_string())
                });
                let mut rb = client
                    .request(method.parse().unwrap(), format!("{target}{path}"))
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(a) = auth {
                    rb = rb.header("authorization", a);
                }
                let resp = rb.send().await.expect("relay B answers");
                let code = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                respond(&mut sock, code, &text, &[]).await;
            });
        }
    });
    (url, reads)
}

/// Relay A: Sim101 live through CrossTrade at `url` (HTTP), the strategy sources, and `extra` config.
async fn relay_a(url: &str, extra: &str) -> TestServer {
    relay_a_over(url, "http", extra).await
}

/// Relay A trading B's Sim101 "live" over `transport` (`http` or `websocket`).
async fn relay_a_over(url: &str, transport: &str, extra: &str) -> TestServer {
    let overrides = format!(
        "{}{STRATEGY_SOURCES}{extra}",
        crosstrade_overrides(url, transport, "\"Sim101\"", "")
    );
    TestServer::in_process_with_files(&overrides, &[], None).await
}

/// Moves B's market (its paper quote) to `price`: the market A's alerts come from.
async fn market(b: &TestServer, price: f64) {
    let (st, v) = b
        .api_post("/paper/quote", json!({"instrument": ES, "price": price}))
        .await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_walks_through_two_chained_relays() {
    let b = TestServer::spawn("");
    let (url, reads) = counting_proxy(b.base.clone()).await;
    let a = relay_a(&url, "").await;
    walk(&a, &b, Some(&reads)).await;
}

/// The same walk with A on CrossTrade's WebSocket RPC (PlaceOrder, ClosePosition, GetPositions,
/// CancelAndBracket frames), served by B's `/ws/stream`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategy_walks_through_two_chained_relays_over_websocket() {
    let b = TestServer::spawn("");
    let a = relay_a_over(&b.base, "websocket", "").await;
    walk(&a, &b, None).await;
}

// ------------------------------------------------------------------------------------------ gates

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_on_a_flat_account_is_skipped_and_places_nothing() {
    let s = TestServer::in_process_with_files(STRATEGY_SOURCES, &[], None).await;
    let body = strategy_alert("2026-12-06T15:00:00Z", "Long", 0, 1, 6012.25);
    let rec = s.post_hook_record("protect", &body).await;
    assert_eq!(rec["status"], "skipped", "{rec}");
    let e = &rec["executions"][0];
    assert_eq!(e["status"], "skipped", "{rec}");
    assert_eq!(e["error"], "account Sim101 is flat in ES 12-26", "{rec}");
    assert_eq!(e["positionSeen"], "flat", "{rec}");
    assert!(
        e["attempts"].as_array().is_none_or(Vec::is_empty),
        "nothing sent: {rec}"
    );
    assert!(
        s.orders("Sim101").await.is_empty(),
        "no order on the account"
    );

    // Once the account holds the position, the same alert protects it.
    s.buy_at_market(ES, 1).await;
    let body = strategy_alert("2026-12-06T15:01:00Z", "Long", 0, 1, 6012.25);
    let rec = s.post_hook_record("protect", &body).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(rec["executions"][0]["positionSeen"], "long 1", "{rec}");
    assert_bracketed(&book(&s).await, 1, 6022.25, 6007.25, "protect on long 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_signal_places_the_straddle_on_a_flat_account() {
    let s = TestServer::in_process_with_files(STRATEGY_SOURCES, &[], None).await;
    let body = signal("sig-entry-1", "ES1!", "long", 1, 6010.0, 5995.0).to_string();
    let (st, v, _) = s.post_signal_sw(&body, "msg_entry_1", unix_now()).await;
    assert_eq!(st, 202, "{v}");
    let rec = s.wait_final(&alert_id(&v)).await;
    assert_eq!(rec["status"], "executed", "{rec}");
    assert_eq!(rec["executions"][0]["positionSeen"], "flat", "{rec}");
    assert_eq!(rec["executions"][0]["request"]["entry"], true, "{rec}");
    // The straddle: both legs working around the market on a flat account, nothing filled yet.
    let b = book(&s).await;
    assert_eq!(b.held, 0, "{b:?}");
    assert_one_bracket(&b, "Sell", 1, 6010.0, 5995.0, "entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indicator_enters_only_when_flat_and_exits() {
    let s = TestServer::in_process_with_files(STRATEGY_SOURCES, &[], None).await;
    let alert = |action: &str, close: f64| {
        json!({"secret": TV_SECRET, "ticker": "ES1!", "action": action, "quantity": 1, "close": close})
            .to_string()
    };
    let rec = s
        .post_hook_record("indicator", &alert("buy", 6012.25))
        .await;
    assert_steps(
        &rec,
        &[
            ["PlaceOrder", "executed", "flat"],
            ["CancelAndBracket", "executed", "long 1"],
        ],
    );
    assert_bracketed(&book(&s).await, 1, 6022.25, 6007.25, "buy");
    // A sell while long does not reverse: both steps skipped, the bracket stays.
    let rec = s
        .post_hook_record("indicator", &alert("sell", 6014.0))
        .await;
    assert_eq!(rec["status"], "skipped", "{rec}");
    let e = &rec["executions"][0];
    assert_eq!(
        e["error"],
        "account Sim101 is long 1 in ES 12-26; position = \"flat\" places this order only when flat",
        "{rec}"
    );
    assert_bracketed(&book(&s).await, 1, 6022.25, 6007.25, "sell while long");
    let rec = s
        .post_hook_record("indicator", &alert("exit", 6014.0))
        .await;
    assert_steps(&rec, &[["ClosePosition", "executed", "long 1"]]);
    assert_bracketed(&book(&s).await, 0, 0.0, 0.0, "exit");
}

// ------------------------------------------------------------------------------------------ sequences

/// Relay B does not trade YM, which A's config has: B refuses A's entry, so A's bracket never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_entry_stops_the_bracket_after_it() {
    let b = TestServer::spawn("");
    let ym = r#"
[instruments.YM]
tick_size = 1.0
point_value = 5.0
months = "HMUZ"
rule = "equity-quarterly"
symbols = ["YM1!"]
"#;
    let (url, reads) = counting_proxy(b.base.clone()).await;
    let a = relay_a(&url, ym).await;
    let body =
        strategy_alert("2026-12-06T15:10:00Z", "Long", 0, 1, 45000.0).replace("ES1!", "YM1!");
    let rec = a.post_hook_record("tradingview", &body).await;
    assert_steps(
        &rec,
        &[
            ["PlaceOrder", "failed", "flat"],
            ["CancelAndBracket", "skipped", ""],
        ],
    );
    assert_eq!(
        rec["executions"][1]["error"], "not run: step 1 (PlaceOrder) ended failed",
        "{rec}"
    );
    assert!(
        rec["executions"][1]["attempts"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{rec}"
    );
    let sent: Vec<String> = reads
        .seen()
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .collect();
    assert_eq!(
        sent,
        ["POST /v1/api/accounts/Sim101/orders/place"],
        "the bracket is never sent"
    );
    assert!(b.orders("Sim101").await.is_empty(), "nothing on B");
}

/// TradingView reverses with two orders in one bar (an exit, then the new entry), often in the same second:
/// two alerts, both executed, never one refused as a reused key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orders_of_one_strategy_in_the_same_second_both_run() {
    let s = TestServer::in_process_with_files(STRATEGY_SOURCES, &[], None).await;
    s.post_hook_record(
        "tradingview",
        &strategy_alert("2026-12-06T15:20:00Z", "Long", 0, 1, 6012.25),
    )
    .await;
    let at = "2026-12-06T15:25:00Z";
    let exit = s
        .post_hook_record(
            "tradingview",
            &strategy_alert(at, "Long Exit", 1, 0, 6016.0),
        )
        .await;
    let entry = s
        .post_hook_record("tradingview", &strategy_alert(at, "Short", 0, -1, 6016.0))
        .await;
    for rec in [&exit, &entry] {
        assert_eq!(rec["status"], "executed", "{rec}");
    }
    assert_ne!(exit["idempotencyKey"], entry["idempotencyKey"]);
    assert_bracketed(&book(&s).await, -1, 6006.0, 6021.0, "after both");
}

/// A strategy alert for Sim101 at 15:`minute`, final.
async fn resize(s: &TestServer, minute: u32, prev: i64, now: i64, price: f64) -> Value {
    let timenow = format!("2026-12-06T15:{minute}:00Z");
    s.post_hook_record(
        "tradingview",
        &strategy_alert(&timenow, "Long", prev, now, price),
    )
    .await
}

/// A resize that found the account flat: both its steps skipped, the first saying `why`; the account is
/// still flat, with no bracket (`what` names the check).
async fn assert_skipped_on_flat(s: &TestServer, rec: &Value, why: &str, what: &str) {
    assert_steps(
        rec,
        &[
            ["PlaceOrder", "skipped", "flat"],
            ["CancelAndBracket", "skipped", "flat"],
        ],
    );
    assert_eq!(rec["executions"][0]["error"], why, "{rec}");
    assert_bracketed(&book(s).await, 0, 0.0, 0.0, what);
}

/// The alert's price crosses the bracket's stop: on paper the stop fills as the quote moves there, and the
/// position the relay acts on is the one after that fill (a live broker would have filled it before the
/// alert came). A resize then finds the account flat: an add does not re-enter (`same-side`), a reduce
/// does not turn it over (`reduce`); both skip the bracket after them, and the account stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_after_the_stop_filled_leaves_the_account_flat() {
    let s = TestServer::in_process_with_files(STRATEGY_SOURCES, &[], None).await;
    // long 1 at 6012.25 (stop 6007.25), then an add at 6005.
    resize(&s, 31, 0, 1, 6012.25).await;
    let rec = resize(&s, 32, 1, 2, 6005.0).await;
    assert_skipped_on_flat(&s, &rec, "account Sim101 is flat in ES 12-26; position = \"same-side\" places this Buy only on a long", "add after the stop").await;

    // long 2 at 6000 (stop 5995), then a reduce at 5995: the stop has filled both contracts.
    resize(&s, 33, 2, 0, 6000.0).await;
    resize(&s, 34, 0, 2, 6000.0).await;
    assert_bracketed(&book(&s).await, 2, 6010.0, 5995.0, "long 2");
    let rec = resize(&s, 35, 2, 1, 5995.0).await;
    assert_skipped_on_flat(&s, &rec, "account Sim101 is flat in ES 12-26; position = \"reduce\" places this Sell only against a long", "reduce after the stop").await;
}

/// The same across a reversal: the close finds the account already flat (the stop filled as the quote moved
/// to the alert's price) and is skipped saying so; the entry and its bracket run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_across_the_stop_finds_the_account_flat() {
    let s = TestServer::in_process_with_files(STRATEGY_SOURCES, &[], None).await;
    s.post_hook_record(
        "tradingview",
        &strategy_alert("2026-12-06T15:40:00Z", "Long", 0, 1, 6012.25),
    )
    .await;
    let rec = s
        .post_hook_record(
            "tradingview",
            &strategy_alert("2026-12-06T15:45:00Z", "Short", 1, -1, 6005.0),
        )
        .await;
    assert_steps(
        &rec,
        &[
            ["ClosePosition", "skipped", "flat"],
            ["PlaceOrder", "executed", "flat"],
            ["CancelAndBracket", "executed", "short 1"],
        ],
    );
    assert_eq!(
        rec["executions"][0]["error"], "account Sim101 is flat in ES 12-26: nothing to close",
        "{rec}"
    );
    let b = book(&s).await;
    assert_bracketed(&b, -1, 5995.0, 6010.0, "short after the stop filled");
    assert_eq!(b.average, Some(6005.0), "{b:?}");
}

// ------------------------------------------------------------------------------------------ property

/// A strategy's run: positions from -3 (short 3) to +3 (long 3), each different from the one before it
/// (TradingView sends an alert when the position changes), starting flat; and each alert's price in ticks
/// from 6000, within 15 points either side, so some cross the bracket before them (stop or target fills
/// as the paper quote moves there).
fn runs() -> impl Strategy<Value = Vec<(i64, i64)>> {
    proptest::collection::vec((-3i64..=3, -60i64..=60), 1..=8).prop_map(|v| {
        let mut last = 0;
        v.into_iter()
            .filter(|&(now, _)| std::mem::replace(&mut last, now) != now)
            .collect()
    })
}

/// The paper broker confirms a cancel after `cancel_latency_ms`, and until then the order can still fill;
/// a CancelAndBracket waits `cancel_delay_ms` before placing the new bracket so the old one cannot fill
/// beside it (the shipped 100 > 50). The harness's 0 would let both brackets' stops fill on one move here,
/// where alerts come milliseconds apart: keep the shipped relation, shorter.
/// With `paper.follow_alert_prices = false` the paper market stays where it was (6000): the entry fills
/// there, and the bracket around the alert's 6012.25 finds its stop above the market and fails — the paper
/// account before this setting existed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_follow_alert_prices_the_paper_market_stays_put() {
    let overrides = format!("{STRATEGY_SOURCES}[paper]\nfollow_alert_prices = false\n");
    let s = TestServer::in_process_with_files(&overrides, &[], None).await;
    let rec = s
        .post_hook_record(
            "tradingview",
            &strategy_alert("2026-12-06T15:00:00Z", "Long", 0, 1, 6012.25),
        )
        .await;
    assert_eq!(
        steps(&rec)[..2],
        [
            ["PlaceOrder", "executed", "flat"].map(String::from),
            ["CancelAndBracket", "failed", "long 1"].map(String::from)
        ],
        "{rec}"
    );
    let error = rec["executions"][1]["error"].as_str().unwrap_or_default();
    assert!(error.contains("6007.25"), "{rec}");
    assert_eq!(
        book(&s).await.average,
        Some(6000.0),
        "filled at the old quote"
    );
}

const CANCEL_WINDOW: &str = "
[paper]
cancel_delay_ms = 10
cancel_latency_ms = 5
";

/// Sends the run as strategy alerts and checks the account after each one has settled.
async fn follow_run(run: &[(i64, i64)]) {
    let s =
        TestServer::in_process_with_files(&format!("{STRATEGY_SOURCES}{CANCEL_WINDOW}"), &[], None)
            .await;
    let mut prev = 0;
    for (n, &(now, ticks)) in run.iter().enumerate() {
        let price = 6000.0 + ticks as f64 * 0.25;
        let timenow = format!("2026-12-06T16:00:{n:02}Z");
        let body = strategy_alert(&timenow, "S", prev, now, price);
        let rec = s.post_hook_record("tradingview", &body).await;
        let b = book(&s).await;
        let step = format!("run {run:?}, alert {} ({prev} → {now} at {price})", n + 1);
        assert!(
            !matches!(
                rec["status"].as_str(),
                Some("failed" | "unknown" | "rejected")
            ),
            "{step}: {rec}"
        );
        assert!(b.held * now >= 0, "{step}: opposite to the strategy: {b:?}");
        if b.held == 0 {
            assert!(
                b.working.is_empty(),
                "{step}: flat with working orders: {b:?}"
            );
        }
        if now == 0 {
            assert_eq!(b.held, 0, "{step}: the strategy is flat: {b:?}");
        }
        prev = now;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 32, ..ProptestConfig::default() })]

    /// The account never holds a position opposite to the last alert's `market_position` (flat when it is
    /// flat), and never keeps working orders in an instrument it is flat in.
    #[test]
    fn strategy_sequences_never_leave_the_account_opposite_or_naked(run in runs()) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(follow_run(&run));
    }
}
