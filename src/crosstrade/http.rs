//! CancelAndBracket over HTTP: one `POST {base_url}/v1/api/accounts/{account}/orders/cancel_and_bracket`
//! per attempt, `Authorization: Bearer <token>`, the request arguments (without `account`) as JSON.

use std::error::Error as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::{
    body_args, command_outcome, error_for_status, error_message, route, truncate, Settings,
};
use crate::command::{CloseRequest, Command, OrderRequest};
use crate::domain::{BracketOutcome, BracketRequest};
use crate::executor::{BrokerOrder, BrokerPosition, ExecError, Executor};

pub struct HttpExecutor {
    settings: Settings,
    client: reqwest::Client,
    /// Set when the last answer was 401/403, cleared by any other answer; read by `ready()`.
    token_refused: AtomicBool,
    /// The last reachability probe and when it ran: `/healthz` and `/readyz` reuse it for
    /// [`PROBE_FRESH`], so callers cannot make the relay open connections at will.
    probed: std::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// How long a reachability probe's answer is reused.
const PROBE_FRESH: Duration = Duration::from_secs(2);
/// The longest a probe waits for a connection (the connect timeout, if shorter).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl HttpExecutor {
    pub(crate) fn new(settings: Settings) -> Result<HttpExecutor, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            // A redirected POST would be re-sent as a GET somewhere else; surface it instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("alert-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("crosstrade: cannot build the HTTP client: {e}"))?;
        Ok(HttpExecutor {
            settings,
            client,
            token_refused: AtomicBool::new(false),
            probed: std::sync::Mutex::new(None),
        })
    }

    /// `{base_url}/v1/api/accounts/{account}/{tail...}`.
    fn url(&self, account: &str, tail: &[&str]) -> Result<Url, ExecError> {
        let mut url = self.settings.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| ExecError::Rejected("crosstrade.base_url cannot take a path".into()))?
            .pop_if_empty()
            // `push` percent-encodes each segment, `/` included.
            .extend(["v1", "api", "accounts", account])
            .extend(tail);
        Ok(url)
    }

    /// `GET /v1/api/accounts/{account}/{what}` (`orders`, `positions`), its JSON body parsed by `parse`.
    async fn list<T>(
        &self,
        account: &str,
        what: &str,
        parse: fn(&Value) -> Option<Vec<T>>,
    ) -> Result<Vec<T>, ExecError> {
        let url = self.url(account, &[what])?;
        let resp = self
            .client
            .get(url)
            .header(AUTHORIZATION, self.settings.authorization.clone())
            .send()
            .await
            .map_err(|e| self.send_error(e.without_url()))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(error_for_status(
                status.as_u16(),
                error_message(status.as_u16(), &body),
                None,
            ));
        }
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| parse(&v))
            .ok_or_else(|| {
                ExecError::Unknown(format!("unparsable {what} listing: {}", truncate(&body)))
            })
    }

    /// One attempt at a command: `POST /v1/api/accounts/{account}/...` (see `route`).
    async fn attempt(&self, cmd: &Command) -> Result<BracketOutcome, ExecError> {
        self.settings.check_account(cmd.account())?;
        let (path, _) = route(cmd);
        let url = self.url(cmd.account(), path)?;
        let resp = self
            .client
            .post(url)
            .header(AUTHORIZATION, self.settings.authorization.clone())
            .json(&body_args(cmd))
            .send()
            .await
            .map_err(|e| self.send_error(e.without_url()))?;

        let status = resp.status();
        self.token_refused.store(
            matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            Ordering::Relaxed,
        );
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);

        if status.is_success() {
            let body = resp.bytes().await.map_err(|e| {
                ExecError::Unknown(format!(
                    "HTTP {}: reading the success body failed: {}",
                    status.as_u16(),
                    chain(&e.without_url())
                ))
            })?;
            let value: Value = serde_json::from_slice(&body).map_err(|e| {
                ExecError::Unknown(format!(
                    "unparsable success body: {e}: {}",
                    truncate(&String::from_utf8_lossy(&body))
                ))
            })?;
            return command_outcome(cmd, value);
        }
        // The status alone decides the kind; a body that cannot be read only loses the message.
        let body = resp.text().await.unwrap_or_default();
        Err(error_for_status(
            status.as_u16(),
            error_message(status.as_u16(), &body),
            retry_after,
        ))
    }

    /// A request that got no HTTP answer: did it leave?
    fn send_error(&self, e: reqwest::Error) -> ExecError {
        if e.is_connect() {
            // Refused, DNS, TLS handshake or connect timeout: the request never left.
            ExecError::Transient(format!("cannot connect to CrossTrade: {}", chain(&e)))
        } else if e.is_builder() {
            ExecError::Transient(format!("cannot build the request: {}", chain(&e)))
        } else if e.is_timeout() {
            ExecError::Unknown(format!(
                "timeout: no answer within {} ms",
                self.settings.request_timeout.as_millis()
            ))
        } else {
            ExecError::Unknown(format!("connection lost after sending: {}", chain(&e)))
        }
    }

    /// Connects to `base_url`'s host and port and hangs up, at most every [`PROBE_FRESH`], waiting at most
    /// [`PROBE_TIMEOUT`]. The error names the host and port only (the URL could carry credentials). With
    /// a proxy configured for reqwest (`HTTPS_PROXY` and the like) a direct connection says nothing about
    /// the route requests take, so there is no probe.
    async fn probe(&self) -> Result<(), String> {
        if let Some((at, result)) = &*self.probed.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < PROBE_FRESH {
                return result.clone();
            }
        }
        let result = self.connect_once().await;
        *self.probed.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), result.clone()));
        result
    }

    async fn connect_once(&self) -> Result<(), String> {
        if proxy_configured() {
            return Ok(());
        }
        let url = &self.settings.base_url;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Err("crosstrade.base_url names no host".into());
        };
        // An IPv6 address is written in brackets in a URL, not in a socket address.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let timeout = self.settings.connect_timeout.min(PROBE_TIMEOUT);
        let connect = tokio::net::TcpStream::connect((bare, port));
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("CrossTrade ({host}:{port}) is not reachable: {e}")),
            Err(_) => Err(format!(
                "CrossTrade ({host}:{port}) did not accept a connection within {} ms",
                timeout.as_millis()
            )),
        }
    }
}

/// Whether the environment gives reqwest a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, any case).
pub(crate) fn proxy_configured() -> bool {
    ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"].iter().any(|v| {
        std::env::var_os(v)
            .or_else(|| std::env::var_os(v.to_lowercase()))
            .is_some()
    })
}

/// An error and its causes, `: `-separated (reqwest's own message hides the cause).
fn chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[async_trait]
impl Executor for HttpExecutor {
    fn name(&self) -> &str {
        "crosstrade-http"
    }

    async fn cancel_and_bracket(&self, req: &BracketRequest) -> Result<BracketOutcome, ExecError> {
        self.attempt(&Command::CancelAndBracket(req.clone())).await
    }

    async fn place_order(&self, req: &OrderRequest) -> Result<BracketOutcome, ExecError> {
        self.attempt(&Command::PlaceOrder(req.clone())).await
    }

    async fn close_position(&self, req: &CloseRequest) -> Result<BracketOutcome, ExecError> {
        self.attempt(&Command::ClosePosition(req.clone())).await
    }

    async fn orders(&self, account: &str) -> Result<Vec<BrokerOrder>, ExecError> {
        self.list(account, "orders", BrokerOrder::list_from_json)
            .await
    }

    async fn positions(&self, account: &str) -> Result<Vec<BrokerPosition>, ExecError> {
        self.list(account, "positions", BrokerPosition::list_from_json)
            .await
    }

    fn in_flight_bound(&self) -> Duration {
        self.settings.request_timeout
    }

    /// Ready when the last answer did not refuse the token and CrossTrade's host accepts a TCP connection
    /// now (a probe, not a request: nothing is sent, so nothing can trade).
    async fn ready(&self) -> Result<(), String> {
        if self.token_refused.load(Ordering::Relaxed) {
            return Err("CrossTrade refused the token (HTTP 401/403 on the last attempt); check crosstrade.token".into());
        }
        self.probe().await
    }
}
