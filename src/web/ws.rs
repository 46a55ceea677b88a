//! `GET /ws/stream`: CrossTrade-style WebSocket RPC. Bearer header on upgrade, or `?token=` for browsers.
//! `{"action":"rpc","id":"...","api":"CancelAndBracket","args":{...}}` → `{"id":"...","data":{...}}` or
//! `{"id":"...","error":"..."}`; many calls in flight, each answered by its id; `{"action":"ping"}` → pong.
//! A malformed frame gets an error frame; the connection stays up.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply as _};

use super::response::{api_frame, error_response};
use super::{bearer_ok, unauthorized, with_relay};
use crate::api;
use crate::relay::Relay;

/// Largest accepted frame.
const MAX_FRAME: usize = 256 * 1024;

pub fn routes(relay: Arc<Relay>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("ws" / "stream")
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::ws())
        .and(with_relay(relay))
        .map(
            |authz: Option<String>, q: HashMap<String, String>, ws: Ws, relay: Arc<Relay>| {
                if !bearer_ok(&relay, authz.as_deref(), q.get("token").map(String::as_str)) {
                    return error_response(&unauthorized());
                }
                ws.max_message_size(MAX_FRAME)
                    .on_upgrade(move |socket| session(socket, relay))
                    .into_response()
            },
        )
}

async fn session(socket: WebSocket, relay: Arc<Relay>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            if sink.send(Message::text(v.to_string())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(msg) = stream.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "websocket read error");
                break;
            }
        };
        if msg.is_close() {
            break;
        }
        if msg.is_ping() || msg.is_pong() {
            continue;
        }
        let Ok(text) = msg.to_str() else {
            let _ = tx.send(json!({"error": "frames must be JSON text, not binary"}));
            continue;
        };
        let frame: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let _ = tx.send(json!({"error": format!("frame is not valid JSON: {e}")}));
                continue;
            }
        };
        let id = frame.get("id").cloned().unwrap_or(Value::Null);
        match frame.get("action").and_then(Value::as_str) {
            Some("ping") => {
                let _ = tx.send(json!({"action": "pong", "id": id}));
            }
            Some("rpc") => {
                let Some(api_name) = frame.get("api").and_then(Value::as_str).map(str::to_string)
                else {
                    let _ = tx.send(json!({"id": id, "error": format!("api: name the operation, one of {}", api::OPERATIONS.join(", "))}));
                    continue;
                };
                let args: Map<String, Value> = match frame.get("args") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(m)) => m.clone(),
                    Some(_) => {
                        let _ = tx.send(json!({"id": id, "error": "args: must be a JSON object"}));
                        continue;
                    }
                };
                let key = frame
                    .get("idempotencyKey")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let relay = relay.clone();
                let tx = tx.clone();
                // Each call runs on its own, so a slow bracket does not hold up the others.
                tokio::spawn(async move {
                    let answer =
                        api_frame(id, api::call(&relay, &api_name, args, key.as_deref()).await);
                    let _ = tx.send(answer);
                });
            }
            _ => {
                let _ = tx.send(json!({"id": id, "error": "action: must be \"rpc\" or \"ping\""}));
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
