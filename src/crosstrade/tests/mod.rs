//! Scripted fake CrossTrade upstreams, started in-process on `127.0.0.1:0`, one per fault, each with the
//! `ExecError` the executor must turn it into.
//!
//! - `http.rs`: the HTTP transport: the request sent, statuses, bodies, timeouts, dropped connections.
//! - `ws.rs`: the WebSocket transport: matching by id, error frames, reconnects, pings, shutdown.
//! - `mapping.rs`: no upstream: config defaults, build errors, the WebSocket URL, error frames.
//!
//! This file holds what they share: the config and executors under test, a bracket request, and
//! serving a fake upstream on a fresh port.

mod http;
mod mapping;
mod ws;

use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use super::*;
use crate::domain::{Action, BracketRequest, OcoId};

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
        relay: Default::default(),
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
