//! The WebSocket transport against a scripted fake CrossTrade: answers matched by id, error
//! frames, timeouts, refused upgrades, reconnects, pings, and the task stopping on drop.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::Filter;

use super::*;
use crate::domain::OrderId;

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
