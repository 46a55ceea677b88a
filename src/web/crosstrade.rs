//! The CrossTrade-compatible HTTP API (`/v1/api/...`) and paper market control (`/paper/quote`), all behind
//! the bearer token. Each route names an operation of [`crate::api`] and passes the path parameters along.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use warp::http::HeaderMap;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::response::{api_response, error_response};
use super::{bearer_ok, read_body, unauthorized, with_relay};
use crate::api;
use crate::error::RelayError;
use crate::relay::Relay;

/// Largest JSON body accepted by the API.
const API_BODY_LIMIT: usize = 64 * 1024;

pub fn routes(relay: Arc<Relay>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let r = relay;
    let cab = warp::path!("v1" / "api" / "accounts" / String / "orders" / "cancel_and_bracket")
        .and(warp::post())
        .map(|a: String| ("CancelAndBracket", path_args(&[("account", a)])));
    let place = warp::path!("v1" / "api" / "accounts" / String / "orders" / "place")
        .and(warp::post())
        .map(|a: String| ("PlaceOrder", path_args(&[("account", a)])));
    let cancel = warp::path!("v1" / "api" / "accounts" / String / "orders" / String / "cancel")
        .and(warp::post())
        .map(|a: String, o: String| ("CancelOrder", path_args(&[("account", a), ("orderId", o)])));
    let close = warp::path!("v1" / "api" / "accounts" / String / "positions" / "close")
        .and(warp::post())
        .map(|a: String| ("ClosePosition", path_args(&[("account", a)])));
    let flatten = warp::path!("v1" / "api" / "accounts" / String / "positions" / "flatten")
        .and(warp::post())
        .map(|a: String| ("Flatten", path_args(&[("account", a)])));
    let accounts = warp::path!("v1" / "api" / "accounts")
        .and(warp::get())
        .map(|| ("GetAccounts", Map::new()));
    let orders = warp::path!("v1" / "api" / "accounts" / String / "orders")
        .and(warp::get())
        .map(|a: String| ("GetOrders", path_args(&[("account", a)])));
    let positions = warp::path!("v1" / "api" / "accounts" / String / "positions")
        .and(warp::get())
        .map(|a: String| ("GetPositions", path_args(&[("account", a)])));
    let quote = warp::path!("v1" / "api" / "market" / "quote")
        .and(warp::get())
        .map(|| ("Quote", Map::new()));
    let set_quote = warp::path!("paper" / "quote")
        .and(warp::post())
        .map(|| ("SetQuote", Map::new()));

    let op = cab
        .or(place)
        .unify()
        .or(cancel)
        .unify()
        .or(close)
        .unify()
        .or(flatten)
        .unify()
        .or(accounts)
        .unify()
        .or(orders)
        .unify()
        .or(positions)
        .unify()
        .or(quote)
        .unify()
        .or(set_quote)
        .unify();

    op.and(warp::header::headers_cloned())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::body::stream())
        .and(with_relay(r))
        .then(
            |(api, path): (&'static str, Map<String, Value>),
             headers: HeaderMap,
             query: HashMap<String, String>,
             body,
             relay: Arc<Relay>| async move {
                if !bearer_ok(&relay, header(&headers, "authorization"), None) {
                    return error_response(&unauthorized());
                }
                let raw = match read_body(body, API_BODY_LIMIT).await {
                    Ok(b) => b,
                    Err(e) => return error_response(&e),
                };
                let mut args = match json_object(&raw) {
                    Ok(m) => m,
                    Err(e) => return error_response(&e),
                };
                // Query parameters fill in what the body does not say (GET quote?instrument=...).
                for (k, v) in query {
                    args.entry(k).or_insert(Value::String(v));
                }
                // Path parameters win over the body.
                args.extend(path);
                let key = header(&headers, "idempotency-key").map(str::to_string);
                api_response(api::call(&relay, api, args, key.as_deref()).await)
            },
        )
}

/// Path segments, percent-decoded: a relay forwarding to another (crosstrade-http) encodes an account
/// such as `Sim 101` as `Sim%20101`.
fn path_args(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| {
            let decoded = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            (k.to_string(), Value::String(decoded.into_owned()))
        })
        .collect()
}

/// An empty body is an empty object; anything else must be a JSON object.
fn json_object(raw: &[u8]) -> Result<Map<String, Value>, RelayError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RelayError::InvalidRequest(
            "body must be a JSON object".into(),
        )),
        Err(e) => Err(RelayError::InvalidRequest(format!(
            "body is not valid JSON: {e}"
        ))),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
