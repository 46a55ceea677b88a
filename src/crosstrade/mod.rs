//! The live executor: CancelAndBracket through the CrossTrade API (a NinjaTrader 8 add-on), over HTTP
//! (`http.rs`) or over one persistent WebSocket (`ws.rs`). Both speak the same answers, so the mapping from
//! CrossTrade's statuses and bodies to [`ExecError`] lives here, once.
//!
//! One call is one attempt: nothing here retries a request. The only loop is the WebSocket reconnect, which
//! never re-sends a frame.

mod http;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::command::Command;
use crate::domain::{BracketOutcome, OrderId};
use crate::executor::{orders_outcome, ExecError, Executor};
use crate::secret::Secret;

pub use self::http::HttpExecutor;
pub use self::ws::WsExecutor;

/// `[crosstrade]` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrossTradeConfig {
    /// Where CrossTrade lives; `http(s)://`, the WebSocket URL is derived from it (`ws(s)://…/ws/stream`).
    pub base_url: String,
    /// A secret *reference* (`env:NAME`, `file:PATH`); the caller resolves it and hands [`build`] the value.
    pub token: String,
    pub transport: Transport,
    /// How long one attempt may take: waiting for the WebSocket connection, then waiting for the answer.
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// WebSocket keep-alive: `{"action":"ping"}` this often; a connection silent for three intervals is
    /// dropped and re-established.
    pub ping_interval_ms: u64,
    /// Accounts executed live through CrossTrade. The executor refuses any other account, so a routing
    /// mistake cannot place live orders on an account nobody listed.
    pub accounts: Vec<String>,
}

impl Default for CrossTradeConfig {
    fn default() -> Self {
        CrossTradeConfig {
            base_url: "https://app.crosstrade.io".into(),
            token: String::new(),
            transport: Transport::Http,
            request_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            ping_interval_ms: 15_000,
            accounts: Vec::new(),
        }
    }
}

/// How requests reach CrossTrade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One `POST …/cancel_and_bracket` per attempt.
    #[default]
    Http,
    /// RPC frames over one persistent connection to `/ws/stream`.
    Websocket,
}

/// Builds the executor chosen by `cfg.transport`. `token` is the resolved `crosstrade.token`. Errors name
/// the config key and never contain the token. The WebSocket executor starts its connection task here, so
/// it must be called inside the tokio runtime.
pub fn build(cfg: &CrossTradeConfig, token: Secret) -> Result<Arc<dyn Executor>, String> {
    let settings = Settings::from_config(cfg, &token)?;
    Ok(match cfg.transport {
        Transport::Http => Arc::new(HttpExecutor::new(settings)?),
        Transport::Websocket => Arc::new(WsExecutor::start(settings)?),
    })
}

/// Checks `cfg` and the resolved `token` as [`build`] would, without building or connecting anything
/// (`alert-relay check`).
pub fn validate(cfg: &CrossTradeConfig, token: &Secret) -> Result<(), String> {
    Settings::from_config(cfg, token).map(|_| ())
}

/// The validated config both executors are built from.
#[derive(Clone)]
pub(crate) struct Settings {
    base_url: Url,
    /// `Bearer <token>`, marked sensitive so `Debug` of a request never shows it.
    authorization: HeaderValue,
    request_timeout: Duration,
    connect_timeout: Duration,
    ping_interval: Duration,
    accounts: Vec<String>,
}

impl Settings {
    fn from_config(cfg: &CrossTradeConfig, token: &Secret) -> Result<Settings, String> {
        // The URL is not echoed back: it could carry credentials.
        let base_url = Url::parse(cfg.base_url.trim()).map_err(|e| {
            format!(
                "crosstrade.base_url: not a valid URL ({e}); e.g. \"https://app.crosstrade.io\""
            )
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(format!(
                "crosstrade.base_url: scheme must be http or https, got {}",
                base_url.scheme()
            ));
        }
        if base_url.host_str().map_or(true, str::is_empty) {
            return Err("crosstrade.base_url: needs a host".into());
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(
                "crosstrade.base_url: must not carry credentials; the token goes in crosstrade.token"
                    .into(),
            );
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err("crosstrade.base_url: must not have a query string or fragment".into());
        }

        let secret = token.expose().trim();
        if secret.is_empty() {
            return Err("crosstrade.token: is empty; give env:NAME or file:PATH".into());
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|_| {
            "crosstrade.token: contains characters not allowed in an HTTP header (value not shown)"
                .to_string()
        })?;
        authorization.set_sensitive(true);

        let positive = |key: &str, ms: u64| {
            if ms == 0 {
                Err(format!(
                    "crosstrade.{key}: must be at least 1 (milliseconds)"
                ))
            } else {
                Ok(Duration::from_millis(ms))
            }
        };
        let request_timeout = positive("request_timeout_ms", cfg.request_timeout_ms)?;
        let connect_timeout = positive("connect_timeout_ms", cfg.connect_timeout_ms)?;
        let ping_interval = positive("ping_interval_ms", cfg.ping_interval_ms)?;

        if cfg.accounts.is_empty() {
            return Err(
                "crosstrade.accounts: list the accounts to execute live through CrossTrade, e.g. accounts = [\"Sim101\"]"
                    .into(),
            );
        }
        let mut accounts: Vec<String> = Vec::with_capacity(cfg.accounts.len());
        for a in &cfg.accounts {
            if a.trim().is_empty() || a.trim() != a {
                return Err(format!(
                    "crosstrade.accounts: account names must be non-empty without surrounding spaces, got {a:?}"
                ));
            }
            if accounts.contains(a) {
                return Err(format!("crosstrade.accounts: {a:?} is listed twice"));
            }
            accounts.push(a.clone());
        }

        Ok(Settings {
            base_url,
            authorization,
            request_timeout,
            connect_timeout,
            ping_interval,
            accounts,
        })
    }

    /// Refuses accounts not listed in `crosstrade.accounts` before anything is sent.
    fn check_account(&self, account: &str) -> Result<(), ExecError> {
        if self.accounts.iter().any(|a| a == account) {
            Ok(())
        } else {
            Err(ExecError::Rejected(format!(
                "account {account:?} is not listed in crosstrade.accounts; refusing to trade it live"
            )))
        }
    }
}

/// The request arguments CrossTrade expects in the body: everything but `account` (which is in the path,
/// or ignored by the WebSocket RPC in favour of the one in `args`).
fn body_args(cmd: &Command) -> Map<String, Value> {
    let mut args = cmd.to_args();
    args.remove("account");
    args
}

/// Longest broker text carried into an error message (bodies of proxies' error pages can be large).
const MAX_MESSAGE: usize = 500;

/// The message of an error answer: the `error` field verbatim, else `message`, else the trimmed text.
fn error_message(status: u16, body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        for key in ["error", "message"] {
            match v.get(key) {
                Some(Value::String(s)) if !s.is_empty() => return s.clone(),
                Some(Value::Null) | None => {}
                Some(other) if key == "error" => return other.to_string(),
                Some(_) => {}
            }
        }
    }
    let text = body.trim();
    if text.is_empty() {
        format!("HTTP {status} with an empty body")
    } else {
        truncate(text)
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Maps a CrossTrade error status (HTTP status, or the `status` of a WebSocket error frame) to what the
/// engine can do about it.
fn error_for_status(status: u16, message: String, retry_after: Option<Duration>) -> ExecError {
    match status {
        400 => ExecError::Rejected(message),
        401 | 403 => ExecError::Unauthorized(message),
        408 => ExecError::NotConnected,
        429 => ExecError::Throttled { retry_after },
        // The request reached CrossTrade; whether NinjaTrader acted on it is not known.
        500..=599 => ExecError::Unknown(format!("HTTP {status}: {message}")),
        // Wrong path, unknown account, redirect: nothing was carried out, and trying again will not help.
        300..=499 => ExecError::Rejected(format!(
            "HTTP {status}: {message} (check crosstrade.base_url and the account)"
        )),
        _ => ExecError::Unknown(format!("unexpected HTTP {status}: {message}")),
    }
}

/// The outcome of a success answer. Lenient: only `orderIds` and `success` are required; a
/// `"success": false` is CrossTrade refusing the request.
fn parse_outcome(body: Value) -> Result<BracketOutcome, ExecError> {
    serde_json::from_value(success_body(body)?)
        .map_err(|e| ExecError::Unknown(format!("unparsable success body: {e}")))
}

/// A command's outcome from CrossTrade's answer: PlaceOrder answers `{"orderId"}` (our own id when it
/// names none), ClosePosition `{"closedPositions": [...]}`, CancelAndBracket its bracket outcome.
fn command_outcome(cmd: &Command, body: Value) -> Result<BracketOutcome, ExecError> {
    match cmd {
        Command::CancelAndBracket(_) => parse_outcome(body),
        Command::PlaceOrder(r) => {
            let body = success_body(body)?;
            let id = body
                .get("orderId")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(|s| OrderId(s.to_string()))
                .or_else(|| r.order_id.clone())
                .ok_or_else(|| ExecError::Unknown("the answer names no orderId".into()))?;
            Ok(orders_outcome(Vec::new(), vec![id], r.quantity))
        }
        Command::ClosePosition(_) => {
            let body = success_body(body)?;
            let closed: i64 = body
                .get("closedPositions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.get("quantity").and_then(Value::as_i64))
                        .map(i64::abs)
                        .sum()
                })
                .unwrap_or(0);
            // The orders the close cancelled, when the answer lists them (the relay's own API does), so
            // the record says where the bracket went.
            let cancelled = body
                .get("cancelledOrderIds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|s| OrderId(s.to_string()))
                .collect();
            let mut out = orders_outcome(
                cancelled,
                Vec::new(),
                closed.clamp(0, i64::from(u32::MAX)) as u32,
            );
            out.reason = Some(format!("closed {closed} contract(s)"));
            Ok(out)
        }
    }
}

/// The REST path under `/v1/api/accounts/{account}/` and the WebSocket RPC name of each command
/// (CrossTrade API reference: Orders / Place Order, Positions / Close Position, CancelAndBracket).
fn route(cmd: &Command) -> (&'static [&'static str], &'static str) {
    match cmd {
        Command::CancelAndBracket(_) => (&["orders", "cancel_and_bracket"], "CancelAndBracket"),
        Command::PlaceOrder(_) => (&["orders", "place"], "PlaceOrder"),
        Command::ClosePosition(_) => (&["positions", "close"], "ClosePosition"),
    }
}

/// The answer's body when it says success (or says nothing); `success: false` is the broker's refusal.
fn success_body(body: Value) -> Result<Value, ExecError> {
    if body.get("success") == Some(&Value::Bool(false)) {
        let reason = ["error", "message", "reason"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_str))
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "CrossTrade answered success: false: {}",
                    truncate(&body.to_string())
                )
            });
        return Err(ExecError::Rejected(reason));
    }
    Ok(body)
}

#[cfg(test)]
mod tests;
