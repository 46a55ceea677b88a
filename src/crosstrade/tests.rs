//! Scripted fake CrossTrade upstreams, started in-process on `127.0.0.1:0`, one per fault, each with the
//! `ExecError` the executor must turn it into.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::*;
use crate::domain::{Action, OcoId, OrderId};

const TOKEN: &str = "s3cret-t0ken";
const SLASHED: &str = "Sim 101/b";

fn config(base_url: &str, transport: Transport) -> CrossTradeConfig {
    CrossTradeConfig {
        base_url: base_url.into(),
        token: "env:CROSSTRADE_TOKEN".into(),
        transport,
        request_timeout_ms: 300,
        connect_timeout_ms: 300,
        ping_interval_ms: 15_000,
        accounts: vec!["Sim101".into(), SLASHED.into()],
    }
}

fn http_executor(base_url: &str) -> Arc<dyn Executor> {
    build(&config(base_url, Transport::Http), Secret::new(TOKEN)).unwrap()
}

/// WebSocket tests allow a full second per call: the connection is made while the call waits.
fn ws_executor(base_url: &str, tweak: impl FnOnce(&mut CrossTradeConfig)) -> Arc<dyn Executor> {
    let mut cfg = config(base_url, Transport::Websocket);
    cfg.request_timeout_ms = 1_000;
    tweak(&mut cfg);
    build(&cfg, Secret::new(TOKEN)).unwrap()
}

fn request(account: &str, quantity: u32) -> BracketRequest {
    BracketRequest {
        account: account.into(),
        instrument: "ES 12-26".into(),
        action: Action::Buy,
        quantity,
        take_profit: Some(4510.25),
        stop_loss: Some(4490.0),
        oco_id: Some(OcoId("oco-1".into())),
        cancel_delay_ms: None,
    }
}

fn reply(status: u16, body: Value) -> Response {
    warp::reply::with_status(
        warp::reply::json(&body),
        StatusCode::from_u16(status).unwrap(),
    )
    .into_response()
}

/// Serves `routes` on a fresh port; returns the base URL.
async fn serve(routes: BoxedFilter<(Response,)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    format!("http://{addr}")
}

/// A port nobody listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------- HTTP

/// What the fake HTTP CrossTrade received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
}

/// A fake HTTP CrossTrade: records every POST, waits `delay`, answers `answer(n)` (n counts from 1).
async fn fake_http(
    delay: Duration,
    answer: impl Fn(usize) -> Response + Clone + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let route = warp::post()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::body::json::<Value>())
        .then(
            move |path: warp::path::FullPath, authorization: Option<String>, body: Value| {
                let log = log.clone();
                let answer = answer.clone();
                async move {
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(Seen {
                            path: path.as_str().to_string(),
                            authorization,
                            body,
                        });
                        log.len()
                    };
                    tokio::time::sleep(delay).await;
                    answer(n)
                }
            },
        )
        .boxed();
    (serve(route).await, seen)
}

async fn http_answer(status: u16, body: Value) -> Result<BracketOutcome, ExecError> {
    let (url, _) = fake_http(Duration::ZERO, move |_| reply(status, body.clone())).await;
    http_executor(&url)
        .cancel_and_bracket(&request("Sim101", 2))
        .await
}

#[tokio::test]
async fn http_success_is_parsed_and_the_request_is_right() {
    let (url, seen) = fake_http(Duration::ZERO, |_| {
        reply(
            200,
            json!({"orderIds": ["c1", "p1", "p2"], "cancelledOrderIds": ["c1"],
                "placedOrderIds": ["p1", "p2"], "ocoId": "oco-1", "quantity": 2, "success": true}),
        )
    })
    .await;
    let exec = http_executor(&url);
    assert_eq!(exec.name(), "crosstrade-http");
    let out = exec.cancel_and_bracket(&request(SLASHED, 2)).await.unwrap();
    assert!(out.success);
    assert_eq!(out.order_ids.len(), 3);
    assert_eq!(
        out.placed_order_ids,
        vec![OrderId("p1".into()), OrderId("p2".into())]
    );
    assert_eq!(out.oco_id, Some(OcoId("oco-1".into())));
    assert_eq!(out.quantity, 2);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].path,
        "/v1/api/accounts/Sim%20101%2Fb/orders/cancel_and_bracket"
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body = &seen[0].body;
    assert!(body.get("account").is_none(), "{body}");
    assert_eq!(body["instrument"], "ES 12-26");
    assert_eq!(body["action"], "Buy");
    assert_eq!(body["quantity"], 2);
    assert_eq!(body["takeProfit"], 4510.25);
    assert_eq!(body["stopLoss"], 4490.0);
    assert_eq!(body["ocoId"], "oco-1");
    assert!(exec.ready().await.is_ok());
}

#[tokio::test]
async fn http_success_needs_only_order_ids_and_success() {
    let out = http_answer(200, json!({"orderIds": ["x"], "success": true}))
        .await
        .unwrap();
    assert_eq!(out.order_ids, vec![OrderId("x".into())]);
    assert!(out.placed_order_ids.is_empty());
    assert_eq!(out.quantity, 0);
}

#[tokio::test]
async fn http_success_false_is_rejected() {
    let e = http_answer(
        200,
        json!({"orderIds": [], "success": false, "error": "Instrument not found"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e, ExecError::Rejected("Instrument not found".into()));
}

#[tokio::test]
async fn http_unparsable_success_body_is_unknown() {
    let e = http_answer(200, json!({"ok": 1})).await.unwrap_err();
    assert!(
        matches!(&e, ExecError::Unknown(m) if m.starts_with("unparsable success body")),
        "{e:?}"
    );
}

#[tokio::test]
async fn http_400_is_rejected_with_the_broker_message_verbatim() {
    let msg = "Missing required fields (account, instrument, action, quantity)";
    let e = http_answer(400, json!({"error": msg})).await.unwrap_err();
    assert_eq!(e, ExecError::Rejected(msg.into()));
}

#[tokio::test]
async fn http_400_without_json_falls_back_to_the_body_text() {
    let (url, _) = fake_http(Duration::ZERO, |_| {
        warp::reply::with_status("bad things", StatusCode::BAD_REQUEST).into_response()
    })
    .await;
    let e = http_executor(&url)
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert_eq!(e, ExecError::Rejected("bad things".into()));
}

#[tokio::test]
async fn http_401_is_unauthorized_and_not_ready_until_an_answer_gets_through() {
    let (url, _) = fake_http(Duration::ZERO, |n| match n {
        1 => reply(401, json!({"error": "Invalid API key"})),
        _ => reply(200, json!({"orderIds": [], "success": true})),
    })
    .await;
    let exec = http_executor(&url);
    let e = exec
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert_eq!(e, ExecError::Unauthorized("Invalid API key".into()));
    let why = exec.ready().await.unwrap_err();
    assert!(why.contains("CrossTrade refused the token"), "{why}");
    assert!(!why.contains(TOKEN));
    exec.cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap();
    assert!(exec.ready().await.is_ok());
}

#[tokio::test]
async fn http_statuses_map_to_error_kinds() {
    type Check = fn(&ExecError) -> bool;
    let cases: Vec<(u16, Check)> = vec![
        (
            403,
            |e| matches!(e, ExecError::Unauthorized(m) if m == "nope"),
        ),
        (408, |e| *e == ExecError::NotConnected),
        (429, |e| *e == ExecError::Throttled { retry_after: None }),
        (
            500,
            |e| matches!(e, ExecError::Unknown(m) if m.contains("500")),
        ),
        (
            503,
            |e| matches!(e, ExecError::Unknown(m) if m.contains("503")),
        ),
        (
            404,
            |e| matches!(e, ExecError::Rejected(m) if m.contains("404")),
        ),
    ];
    for (status, ok) in cases {
        let e = http_answer(status, json!({"error": "nope"}))
            .await
            .unwrap_err();
        assert!(ok(&e), "HTTP {status} gave {e:?}");
    }
}

#[tokio::test]
async fn http_429_reads_retry_after() {
    let (url, _) = fake_http(Duration::ZERO, |_| {
        warp::reply::with_header(
            reply(429, json!({"error": "rate limited"})),
            "Retry-After",
            "2",
        )
        .into_response()
    })
    .await;
    let e = http_executor(&url)
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ExecError::Throttled {
            retry_after: Some(Duration::from_secs(2))
        }
    );
}

#[tokio::test]
async fn http_timeout_is_unknown() {
    let (url, seen) = fake_http(Duration::from_secs(2), |_| {
        reply(200, json!({"orderIds": [], "success": true}))
    })
    .await;
    let started = Instant::now();
    let e = http_executor(&url)
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Unknown(m) if m.starts_with("timeout")),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(seen.lock().unwrap().len(), 1, "the request did arrive");
}

/// Reads one whole HTTP request (headers and a `Content-Length` body), then closes without answering.
async fn read_request_then_hang_up(listener: TcpListener) {
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    drop(sock);
}

#[tokio::test]
async fn http_connection_dropped_after_sending_is_unknown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(read_request_then_hang_up(listener));
    let e = http_executor(&url)
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Unknown(m) if m.starts_with("connection lost after sending")),
        "{e:?}"
    );
}

/// `/readyz` for the HTTP transport: ready while the host accepts connections, not while it refuses them.
#[tokio::test]
async fn http_is_not_ready_while_crosstrade_cannot_be_reached() {
    if super::http::proxy_configured() {
        eprintln!(
            "a proxy is configured: the relay does not probe, so this test has nothing to check"
        );
        return;
    }
    let why = http_executor(&dead_url()).ready().await.unwrap_err();
    assert!(why.contains("is not reachable"), "{why}");
    assert!(!why.contains(TOKEN));
    let (url, seen) = fake_http(Duration::ZERO, |_| {
        reply(200, json!({"orderIds": [], "success": true}))
    })
    .await;
    http_executor(&url).ready().await.unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "the probe sends no request"
    );
}

#[tokio::test]
async fn http_connection_refused_is_transient() {
    let e = http_executor(&dead_url())
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Transient(m) if m.contains("refused")),
        "{e:?}"
    );
    assert!(!e.to_string().contains(TOKEN));
}

#[tokio::test]
async fn unlisted_account_is_rejected_before_anything_is_sent() {
    let (url, seen) = fake_http(Duration::ZERO, |_| {
        reply(200, json!({"orderIds": [], "success": true}))
    })
    .await;
    let e = http_executor(&url)
        .cancel_and_bracket(&request("Live999", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Rejected(m) if m.contains("crosstrade.accounts")),
        "{e:?}"
    );
    assert!(seen.lock().unwrap().is_empty());
    let ws = ws_executor(&dead_url(), |_| {});
    let e = ws
        .cancel_and_bracket(&request("Live999", 1))
        .await
        .unwrap_err();
    assert!(matches!(e, ExecError::Rejected(_)), "{e:?}");
}

// ---------------------------------------------------------------- config and mapping

#[test]
fn config_defaults_and_transport_names() {
    let cfg: CrossTradeConfig =
        toml::from_str("token = \"env:CT\"\naccounts = [\"Sim101\"]").unwrap();
    assert_eq!(cfg.base_url, "https://app.crosstrade.io");
    assert_eq!(cfg.transport, Transport::Http);
    assert_eq!(
        (
            cfg.request_timeout_ms,
            cfg.connect_timeout_ms,
            cfg.ping_interval_ms
        ),
        (10_000, 5_000, 15_000)
    );
    let cfg: CrossTradeConfig = toml::from_str("transport = \"websocket\"").unwrap();
    assert_eq!(cfg.transport, Transport::Websocket);
    assert!(toml::from_str::<CrossTradeConfig>("transport = \"carrier-pigeon\"").is_err());
    assert!(toml::from_str::<CrossTradeConfig>("tokne = \"env:CT\"").is_err());
}

#[tokio::test]
async fn build_errors_name_the_key_and_never_show_the_token() {
    let ok = config("https://app.crosstrade.io", Transport::Http);
    let cases: Vec<(CrossTradeConfig, Secret, &str)> = vec![
        (
            CrossTradeConfig {
                base_url: "ftp://x".into(),
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.base_url",
        ),
        (
            CrossTradeConfig {
                base_url: "not a url".into(),
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.base_url",
        ),
        (
            CrossTradeConfig {
                base_url: format!("https://u:{TOKEN}@h"),
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.base_url",
        ),
        (ok.clone(), Secret::new("  "), "crosstrade.token"),
        (
            ok.clone(),
            Secret::new(format!("{TOKEN}\nx")),
            "crosstrade.token",
        ),
        (
            CrossTradeConfig {
                request_timeout_ms: 0,
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.request_timeout_ms",
        ),
        (
            CrossTradeConfig {
                accounts: vec![],
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.accounts",
        ),
        (
            CrossTradeConfig {
                accounts: vec!["A".into(), "A".into()],
                ..ok.clone()
            },
            Secret::new(TOKEN),
            "crosstrade.accounts",
        ),
    ];
    for (cfg, token, key) in cases {
        let e = build(&cfg, token).err().expect("must fail");
        assert!(e.starts_with(key), "{e}");
        assert!(!e.contains(TOKEN), "{e}");
    }
    assert!(build(&ok, Secret::new(TOKEN)).is_ok());
}

#[test]
fn websocket_url_is_derived_from_the_base_url() {
    let derive = |s: &str| ws::ws_url(&Url::parse(s).unwrap()).unwrap().to_string();
    assert_eq!(
        derive("https://app.crosstrade.io"),
        "wss://app.crosstrade.io/ws/stream"
    );
    assert_eq!(
        derive("http://127.0.0.1:8080/relay/"),
        "ws://127.0.0.1:8080/relay/ws/stream"
    );
}

#[test]
fn error_frames_map_like_http_statuses() {
    let frame = |v: Value| ws::outcome_from_frame(&v).unwrap_err();
    assert_eq!(
        frame(json!({"id": "1", "error": "no such account"})),
        ExecError::Rejected("no such account".into())
    );
    assert_eq!(
        frame(json!({"id": "1", "error": "x", "status": 401})),
        ExecError::Unauthorized("x".into())
    );
    assert_eq!(
        frame(json!({"id": "1", "error": "x", "status": 408})),
        ExecError::NotConnected
    );
    assert_eq!(
        frame(json!({"id": "1", "error": "x", "status": 429, "retryAfter": 3})),
        ExecError::Throttled {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert!(matches!(
        frame(json!({"id": "1", "error": "x", "status": 502})),
        ExecError::Unknown(_)
    ));
    assert!(matches!(frame(json!({"id": "1"})), ExecError::Unknown(_)));
    assert_eq!(
        frame(json!({"id": "1", "data": {"orderIds": [], "success": false, "error": "nope"}})),
        ExecError::Rejected("nope".into())
    );
}

// ---------------------------------------------------------------- WebSocket

type Script =
    Arc<dyn Fn(usize, WebSocket) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

fn script<F, Fut>(f: F) -> Script
where
    F: Fn(usize, WebSocket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |n, ws| Box::pin(f(n, ws)))
}

/// A fake CrossTrade WebSocket at `/ws/stream`: refuses a wrong bearer with 401, then runs `script` on
/// each connection (numbered from 1). Returns the base URL and the connection count.
async fn fake_ws(script: Script) -> (String, Arc<AtomicUsize>) {
    let conns = Arc::new(AtomicUsize::new(0));
    let count = conns.clone();
    let route = warp::path!("ws" / "stream")
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::ws())
        .map(move |authorization: Option<String>, ws: Ws| {
            if authorization != Some(format!("Bearer {TOKEN}")) {
                return reply(401, json!({"error": "Invalid API key"}));
            }
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let script = script.clone();
            ws.on_upgrade(move |socket| script(n, socket))
                .into_response()
        })
        .boxed();
    (serve(route).await, conns)
}

/// The next RPC frame; answers pings on the way. `None` once the client is gone.
async fn next_rpc(ws: &mut WebSocket) -> Option<Value> {
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            return None;
        }
        let Ok(text) = msg.to_str() else { continue };
        let frame: Value = serde_json::from_str(text).unwrap();
        if frame["action"] == "ping" {
            let _ = send(ws, json!({"action": "pong"})).await;
            continue;
        }
        return Some(frame);
    }
    None
}

async fn send(ws: &mut WebSocket, v: Value) -> Result<(), warp::Error> {
    ws.send(Message::text(v.to_string())).await
}

/// Keeps the connection open, answering pings, until the client leaves.
async fn idle(ws: &mut WebSocket) {
    while next_rpc(ws).await.is_some() {}
}

fn data_for(frame: &Value) -> Value {
    let q = frame["args"]["quantity"].as_u64().unwrap();
    json!({"id": frame["id"], "data": {"orderIds": [format!("q{q}")], "quantity": q, "success": true}})
}

async fn wait_ready(exec: &Arc<dyn Executor>) {
    let started = Instant::now();
    while exec.ready().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn ws_answers_are_matched_by_id_when_answered_in_reverse_order() {
    let frames = Arc::new(Mutex::new(Vec::new()));
    let log = frames.clone();
    let (url, _) = fake_ws(script(move |_, mut ws| {
        let log = log.clone();
        async move {
            let a = next_rpc(&mut ws).await.unwrap();
            let b = next_rpc(&mut ws).await.unwrap();
            send(&mut ws, data_for(&b)).await.unwrap();
            send(&mut ws, data_for(&a)).await.unwrap();
            log.lock().unwrap().extend([a, b]);
            idle(&mut ws).await;
        }
    }))
    .await;
    let exec = ws_executor(&url, |_| {});
    assert_eq!(exec.name(), "crosstrade-websocket");
    let (r1, r2) = (request("Sim101", 1), request("Sim101", 2));
    let (one, two) = tokio::join!(exec.cancel_and_bracket(&r1), exec.cancel_and_bracket(&r2));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!((one.quantity, two.quantity), (1, 2));
    assert_eq!(one.order_ids, vec![OrderId("q1".into())]);

    let frames = frames.lock().unwrap().clone();
    assert_ne!(frames[0]["id"], frames[1]["id"]);
    for f in frames.iter() {
        assert_eq!(f["action"], "rpc");
        assert_eq!(f["api"], "CancelAndBracket");
        assert_eq!(f["args"]["account"], "Sim101");
        assert_eq!(f["args"]["instrument"], "ES 12-26");
        assert_eq!(f["args"]["ocoId"], "oco-1");
    }
    assert!(exec.ready().await.is_ok());
}

#[tokio::test]
async fn ws_error_frame_400_is_rejected_verbatim() {
    let msg = "Missing required fields (account, instrument, action, quantity)";
    let (url, _) = fake_ws(script(move |_, mut ws| async move {
        while let Some(f) = next_rpc(&mut ws).await {
            let _ = send(&mut ws, json!({"id": f["id"], "error": msg, "status": 400})).await;
        }
    }))
    .await;
    let e = ws_executor(&url, |_| {})
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert_eq!(e, ExecError::Rejected(msg.into()));
}

#[tokio::test]
async fn ws_server_closing_mid_call_is_unknown() {
    let (url, _) = fake_ws(script(|_, mut ws| async move {
        let _ = next_rpc(&mut ws).await;
        let _ = ws.close().await;
    }))
    .await;
    let e = ws_executor(&url, |_| {})
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Unknown(m) if m.starts_with("connection lost after sending")),
        "{e:?}"
    );
}

#[tokio::test]
async fn ws_no_answer_is_unknown_timeout() {
    let (url, _) = fake_ws(script(|_, mut ws| async move { idle(&mut ws).await })).await;
    let exec = ws_executor(&url, |c| c.request_timeout_ms = 300);
    wait_ready(&exec).await;
    let e = exec
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Unknown(m) if m.starts_with("timeout")),
        "{e:?}"
    );
}

#[tokio::test]
async fn ws_connect_refused_is_transient_after_the_wait() {
    let exec = ws_executor(&dead_url(), |c| c.request_timeout_ms = 300);
    let started = Instant::now();
    let e = exec
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ExecError::Transient(m) if m.starts_with("websocket not connected") && m.contains("refused")),
        "{e:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(290));
    let why = exec.ready().await.unwrap_err();
    assert!(why.starts_with("websocket not connected"), "{why}");
}

#[tokio::test]
async fn ws_upgrade_refused_401_is_unauthorized() {
    let (url, conns) = fake_ws(script(|_, mut ws| async move { idle(&mut ws).await })).await;
    let cfg = CrossTradeConfig {
        request_timeout_ms: 2_000,
        ..config(&url, Transport::Websocket)
    };
    let exec = build(&cfg, Secret::new("wrong-token")).unwrap();
    let started = Instant::now();
    let e = exec
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert_eq!(e, ExecError::Unauthorized("Invalid API key".into()));
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "fails as soon as the upgrade is refused"
    );
    let why = exec.ready().await.unwrap_err();
    assert!(why.contains("CrossTrade refused the token"), "{why}");
    assert!(!why.contains("wrong-token"));
    assert_eq!(conns.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn ws_reconnects_after_the_server_drops_the_connection() {
    let (url, conns) = fake_ws(script(|n, mut ws| async move {
        if n == 1 {
            // Take the first call and hang up without answering.
            let _ = next_rpc(&mut ws).await;
            return;
        }
        while let Some(f) = next_rpc(&mut ws).await {
            let _ = send(&mut ws, data_for(&f)).await;
        }
    }))
    .await;
    let exec = ws_executor(&url, |_| {});
    let e = exec
        .cancel_and_bracket(&request("Sim101", 1))
        .await
        .unwrap_err();
    assert!(matches!(e, ExecError::Unknown(_)), "{e:?}");
    let out = exec
        .cancel_and_bracket(&request("Sim101", 3))
        .await
        .unwrap();
    assert_eq!(out.quantity, 3);
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn ws_pings_keep_the_connection_and_silence_drops_it() {
    // Answers pings: one connection, several pings.
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    let (url, conns) = fake_ws(script(move |_, mut ws| {
        let counter = counter.clone();
        async move {
            while let Some(Ok(msg)) = ws.next().await {
                if msg.to_str().is_ok_and(|t| t.contains("\"ping\"")) {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = send(&mut ws, json!({"action": "pong"})).await;
                }
            }
        }
    }))
    .await;
    let exec = ws_executor(&url, |c| c.ping_interval_ms = 40);
    wait_ready(&exec).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(pings.load(Ordering::SeqCst) >= 3);
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    assert!(exec.ready().await.is_ok());

    // Never answers: the client gives up on the silent connection and reconnects.
    let (url, conns) = fake_ws(script(|_, mut ws| async move {
        while let Some(Ok(_)) = ws.next().await {}
    }))
    .await;
    let exec = ws_executor(&url, |c| c.ping_interval_ms = 40);
    wait_ready(&exec).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(conns.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn ws_drop_stops_the_background_task() {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let closed_tx = Arc::new(Mutex::new(Some(closed_tx)));
    let (url, _) = fake_ws(script(move |_, mut ws| {
        let closed_tx = closed_tx.clone();
        async move {
            idle(&mut ws).await;
            if let Some(tx) = closed_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    }))
    .await;
    let exec = ws_executor(&url, |_| {});
    wait_ready(&exec).await;
    drop(exec);
    tokio::time::timeout(Duration::from_secs(2), closed_rx)
        .await
        .expect("the connection closes when the executor is dropped")
        .unwrap();
}
