//! The HTTP transport against a fake CrossTrade: the request it sends, and every status, body,
//! timeout and dropped connection mapped to the `ExecError` the engine acts on.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncReadExt;
use warp::Filter;

use super::*;
use crate::domain::OrderId;

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
    if crate::crosstrade::http::proxy_configured() {
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
