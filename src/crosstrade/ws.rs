//! CancelAndBracket over one persistent WebSocket to `{base_url}/ws/stream` (`Authorization: Bearer` on the
//! upgrade). A background task owns the socket: it writes RPC frames
//! `{"action":"rpc","id":"…","api":"CancelAndBracket","args":{…}}`, hands each answer (`{"id","data"}` or
//! `{"id","error","status"}`) to the call waiting on that id, pings every `ping_interval`, and reconnects
//! with capped, jittered exponential backoff. Dropping the executor stops the task.
//!
//! Whether a frame left decides between `Transient` (safe to retry) and `Unknown`, so each call carries a
//! small state (`QUEUED` → `SENT` or `ABANDONED`) that the task and the caller settle with one
//! compare-and-swap: a call that gave up waiting for the connection is never sent afterwards, and a call
//! whose frame was written is never reported as "not sent".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Url;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{command_outcome, error_for_status, error_message, route, truncate, Settings};
use crate::command::{CloseRequest, Command, OrderRequest};
use crate::domain::{BracketOutcome, BracketRequest};
use crate::executor::{BrokerOrder, BrokerPosition, ExecError, Executor};

/// First reconnect delay; doubles per failed attempt up to [`MAX_BACKOFF`], with jitter.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A connection that heard nothing (not even a pong) for this many ping intervals is treated as dead.
const SILENT_INTERVALS: u32 = 3;

const QUEUED: u8 = 0;
const SENT: u8 = 1;
const ABANDONED: u8 = 2;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// An answer frame, or why the connection ended after the frame was sent.
type Answer = Result<Value, String>;

/// The connection as calls and `ready()` see it.
#[derive(Debug, Clone, PartialEq)]
enum Conn {
    Connecting {
        last_error: Option<String>,
    },
    Connected,
    /// The upgrade was answered 401/403; the message is CrossTrade's.
    Refused(String),
}

/// One call handed to the connection task.
struct Call {
    id: String,
    frame: String,
    state: Arc<AtomicU8>,
    sent: oneshot::Sender<()>,
    answer: oneshot::Sender<Answer>,
}

pub struct WsExecutor {
    settings: Settings,
    calls: mpsc::UnboundedSender<Call>,
    conn: watch::Receiver<Conn>,
    task: JoinHandle<()>,
    /// Random per executor, so ids from a restarted relay never match answers meant for the old one.
    id_prefix: String,
    next_id: AtomicU64,
}

impl WsExecutor {
    /// Starts the connection task; must be called inside the tokio runtime.
    pub(crate) fn start(settings: Settings) -> Result<WsExecutor, String> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            "crosstrade.transport: the websocket executor must be built inside the tokio runtime"
                .to_string()
        })?;
        let link = Link {
            url: ws_url(&settings.base_url)?,
            authorization: settings.authorization.clone(),
            connect_timeout: settings.connect_timeout,
            ping_interval: settings.ping_interval,
        };
        let (calls, queue) = mpsc::unbounded_channel();
        let (conn_tx, conn) = watch::channel(Conn::Connecting { last_error: None });
        let task = runtime.spawn(run(link, queue, conn_tx));
        Ok(WsExecutor {
            settings,
            calls,
            conn,
            task,
            id_prefix: format!("ar{:08x}", rand::random::<u32>()),
            next_id: AtomicU64::new(1),
        })
    }

    /// Waits until the task has written the frame (`Ok`), or gives up with the call abandoned (`Err`).
    async fn wait_until_sent(
        &self,
        state: &AtomicU8,
        sent: &mut oneshot::Receiver<()>,
        deadline: Instant,
    ) -> Result<(), ExecError> {
        let abandon = || {
            state
                .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        };
        let mut conn = self.conn.clone();
        loop {
            tokio::select! {
                biased;
                r = &mut *sent => {
                    return r.map_err(|_| ExecError::Transient("websocket executor stopped".into()));
                }
                changed = conn.changed() => {
                    if changed.is_err() {
                        // The task is gone: it either dropped the call unsent or wrote it.
                        if abandon() {
                            return Err(ExecError::Transient("websocket executor stopped".into()));
                        }
                        return sent.await.map_err(|_| {
                            ExecError::Transient("websocket executor stopped".into())
                        });
                    }
                    let refused = match &*conn.borrow_and_update() {
                        Conn::Refused(m) => Some(m.clone()),
                        _ => None,
                    };
                    // If `abandon` fails the frame is being written right now: keep waiting for `sent`.
                    if let Some(m) = refused.filter(|_| abandon()) {
                        return Err(ExecError::Unauthorized(m));
                    }
                }
                _ = sleep_until(deadline) => {
                    if abandon() {
                        return Err(match &*conn.borrow() {
                            Conn::Refused(m) => ExecError::Unauthorized(m.clone()),
                            Conn::Connecting { last_error } => ExecError::Transient(format!(
                                "websocket not connected: {}",
                                last_error.as_deref().unwrap_or("still connecting")
                            )),
                            Conn::Connected => ExecError::Transient(
                                "websocket not connected: the connection did not take the call in time"
                                    .into(),
                            ),
                        });
                    }
                    // Lost the race to the task: the frame is being written, so it counts as sent.
                    return sent.await.map_err(|_| {
                        ExecError::Transient("websocket executor stopped".into())
                    });
                }
            }
        }
    }

    /// One RPC call: sent once, answered with its `data` (or the error its frame carries).
    async fn rpc(&self, api: &str, args: Map<String, Value>) -> Result<Value, ExecError> {
        let timeout_ms = self.settings.request_timeout.as_millis();
        let deadline = Instant::now() + self.settings.request_timeout;
        if let Conn::Refused(m) = &*self.conn.borrow() {
            return Err(ExecError::Unauthorized(m.clone()));
        }

        let id = format!(
            "{}-{}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let frame = json!({"action": "rpc", "id": id, "api": api, "args": args}).to_string();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let (sent_tx, mut sent_rx) = oneshot::channel();
        let (answer_tx, answer_rx) = oneshot::channel();
        let call = Call {
            id,
            frame,
            state: state.clone(),
            sent: sent_tx,
            answer: answer_tx,
        };
        if self.calls.send(call).is_err() {
            return Err(ExecError::Transient("websocket executor stopped".into()));
        }
        self.wait_until_sent(&state, &mut sent_rx, deadline).await?;

        match timeout(self.settings.request_timeout, answer_rx).await {
            Err(_) => Err(ExecError::Unknown(format!(
                "timeout: no answer within {timeout_ms} ms"
            ))),
            Ok(Ok(Ok(frame))) => data_from_frame(&frame),
            Ok(Ok(Err(reason))) => Err(ExecError::Unknown(format!(
                "connection lost after sending: {reason}"
            ))),
            Ok(Err(_)) => Err(ExecError::Unknown(
                "connection lost after sending: websocket executor stopped".into(),
            )),
        }
    }
}

impl Drop for WsExecutor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WsExecutor {
    /// One attempt at a command: its RPC (see `route`) with the command's fields in `args`.
    async fn command(&self, cmd: &Command) -> Result<BracketOutcome, ExecError> {
        self.settings.check_account(cmd.account())?;
        let (_, api) = route(cmd);
        command_outcome(cmd, self.rpc(api, cmd.to_args()).await?)
    }

    /// One listing RPC (`GetOrders`, `GetPositions`) for `account`, its `data` parsed by `parse`.
    async fn list<T>(
        &self,
        account: &str,
        api: &str,
        what: &str,
        parse: fn(&Value) -> Option<Vec<T>>,
    ) -> Result<Vec<T>, ExecError> {
        let mut args = Map::new();
        args.insert("account".into(), Value::String(account.to_string()));
        let data = self.rpc(api, args).await?;
        parse(&data).ok_or_else(|| {
            ExecError::Unknown(format!(
                "unparsable {what} listing: {}",
                truncate(&data.to_string())
            ))
        })
    }
}

#[async_trait]
impl Executor for WsExecutor {
    fn name(&self) -> &str {
        "crosstrade-websocket"
    }

    async fn cancel_and_bracket(&self, req: &BracketRequest) -> Result<BracketOutcome, ExecError> {
        self.command(&Command::CancelAndBracket(req.clone())).await
    }

    async fn place_order(&self, req: &OrderRequest) -> Result<BracketOutcome, ExecError> {
        self.command(&Command::PlaceOrder(req.clone())).await
    }

    async fn close_position(&self, req: &CloseRequest) -> Result<BracketOutcome, ExecError> {
        self.command(&Command::ClosePosition(req.clone())).await
    }

    /// The `GetOrders` RPC.
    async fn orders(&self, account: &str) -> Result<Vec<BrokerOrder>, ExecError> {
        self.list(account, "GetOrders", "order", BrokerOrder::list_from_json)
            .await
    }

    async fn positions(&self, account: &str) -> Result<Vec<BrokerPosition>, ExecError> {
        self.list(
            account,
            "GetPositions",
            "position",
            BrokerPosition::list_from_json,
        )
        .await
    }

    fn in_flight_bound(&self) -> Duration {
        self.settings.request_timeout
    }

    async fn ready(&self) -> Result<(), String> {
        match &*self.conn.borrow() {
            Conn::Connected => Ok(()),
            Conn::Refused(m) => Err(format!(
                "CrossTrade refused the token (websocket upgrade answered 401/403: {m}); check crosstrade.token"
            )),
            Conn::Connecting { last_error } => Err(format!(
                "websocket not connected: {}",
                last_error.as_deref().unwrap_or("still connecting")
            )),
        }
    }
}

/// `{"id","data"}` → the outcome; `{"id","error","status"}` → by status, as over HTTP (no status: rejected).
#[cfg(test)]
pub(super) fn outcome_from_frame(frame: &Value) -> Result<BracketOutcome, ExecError> {
    super::parse_outcome(data_from_frame(frame)?)
}

/// `{"id","data"}` → the data; `{"id","error","status"}` → by status, as over HTTP (no status: rejected).
fn data_from_frame(frame: &Value) -> Result<Value, ExecError> {
    if let Some(err) = frame.get("error").filter(|v| !v.is_null()) {
        let message = match err {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let retry_after = ["retryAfter", "retry_after"]
            .iter()
            .find_map(|k| frame.get(*k).and_then(Value::as_u64))
            .map(Duration::from_secs);
        return Err(match frame.get("status").and_then(Value::as_u64) {
            Some(status) => error_for_status(
                u16::try_from(status).unwrap_or(u16::MAX),
                message,
                retry_after,
            ),
            None => ExecError::Rejected(message),
        });
    }
    match frame.get("data") {
        Some(data) => Ok(data.clone()),
        None => Err(ExecError::Unknown(
            "answer frame has neither data nor error".into(),
        )),
    }
}

/// `http(s)://host/prefix` → `ws(s)://host/prefix/ws/stream`.
pub(super) fn ws_url(base: &Url) -> Result<Url, String> {
    let mut url = base.clone();
    let scheme = if base.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    url.set_scheme(scheme)
        .map_err(|()| "crosstrade.base_url: cannot derive the websocket URL".to_string())?;
    url.path_segments_mut()
        .map_err(|()| "crosstrade.base_url: cannot take a path".to_string())?
        .pop_if_empty()
        .extend(["ws", "stream"]);
    Ok(url)
}

/// What the connection task needs to (re)connect.
struct Link {
    url: Url,
    authorization: HeaderValue,
    connect_timeout: Duration,
    ping_interval: Duration,
}

enum ConnectError {
    /// 401/403 on the upgrade, with CrossTrade's message.
    Refused(String),
    Failed(String),
}

impl Link {
    async fn connect(&self) -> Result<Socket, ConnectError> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| ConnectError::Failed(e.to_string()))?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, self.authorization.clone());
        match timeout(
            self.connect_timeout,
            tokio_tungstenite::connect_async(request),
        )
        .await
        {
            Err(_) => Err(ConnectError::Failed(format!(
                "connect timeout after {} ms",
                self.connect_timeout.as_millis()
            ))),
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(tungstenite::Error::Http(resp))) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let message = error_message(status, &body);
                if status == 401 || status == 403 {
                    Err(ConnectError::Refused(message))
                } else {
                    Err(ConnectError::Failed(format!(
                        "upgrade refused with HTTP {status}: {message}"
                    )))
                }
            }
            Ok(Err(e)) => Err(ConnectError::Failed(e.to_string())),
        }
    }
}

/// The connection task: connect, serve until the connection ends, back off, again; forever, until the
/// executor is dropped (which aborts it) or closes the call queue.
async fn run(link: Link, mut queue: mpsc::UnboundedReceiver<Call>, conn: watch::Sender<Conn>) {
    let mut failures: u32 = 0;
    loop {
        match link.connect().await {
            Ok(socket) => {
                tracing::info!(url = %link.url, "CrossTrade websocket connected");
                conn.send_replace(Conn::Connected);
                let started = Instant::now();
                let Some(reason) = session(socket, &mut queue, link.ping_interval).await else {
                    return;
                };
                tracing::warn!(%reason, "CrossTrade websocket connection lost; reconnecting");
                conn.send_replace(Conn::Connecting {
                    last_error: Some(reason),
                });
                // A connection that held for a while earns a quick reconnect; one that drops at once does not.
                if started.elapsed() >= MAX_BACKOFF {
                    failures = 0;
                }
            }
            Err(ConnectError::Refused(message)) => {
                tracing::error!(%message, "CrossTrade refused the websocket token (401/403)");
                conn.send_replace(Conn::Refused(message));
            }
            Err(ConnectError::Failed(message)) => {
                if failures == 0 {
                    tracing::warn!(%message, "cannot connect the CrossTrade websocket; retrying");
                } else {
                    tracing::debug!(%message, failures, "CrossTrade websocket connect failed");
                }
                conn.send_replace(Conn::Connecting {
                    last_error: Some(message),
                });
            }
        }
        sleep(backoff(failures)).await;
        failures = failures.saturating_add(1);
    }
}

/// Exponential from [`MIN_BACKOFF`] to [`MAX_BACKOFF`]; half of it random so many relays do not reconnect
/// in step.
fn backoff(failures: u32) -> Duration {
    let full = MIN_BACKOFF
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// Serves one connection. Returns why it ended, or `None` when the executor is gone.
async fn session(
    socket: Socket,
    queue: &mut mpsc::UnboundedReceiver<Call>,
    ping_interval: Duration,
) -> Option<String> {
    let (mut sink, mut stream) = socket.split();
    let mut pending: HashMap<String, oneshot::Sender<Answer>> = HashMap::new();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let reason = loop {
        tokio::select! {
            call = queue.recv() => {
                let Some(call) = call else {
                    let _ = sink.close().await;
                    return None;
                };
                // Skip calls whose caller left (cancelled) or gave up waiting for the connection.
                if call.answer.is_closed()
                    || call
                        .state
                        .compare_exchange(QUEUED, SENT, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                {
                    continue;
                }
                let _ = call.sent.send(());
                pending.insert(call.id, call.answer);
                if let Err(e) = sink.send(Message::text(call.frame)).await {
                    break format!("sending the frame failed: {e}");
                }
            }
            msg = stream.next() => {
                last_heard = Instant::now();
                match msg {
                    None => break "connection closed".to_string(),
                    Some(Err(e)) => break format!("read error: {e}"),
                    Some(Ok(Message::Close(frame))) => {
                        break match frame {
                            Some(f) => format!("closed by CrossTrade ({} {})", f.code, f.reason),
                            None => "closed by CrossTrade".to_string(),
                        }
                    }
                    Some(Ok(Message::Text(text))) => deliver(&mut pending, text.as_str()),
                    Some(Ok(Message::Binary(bytes))) => {
                        deliver(&mut pending, &String::from_utf8_lossy(&bytes))
                    }
                    // Protocol pings are answered by tungstenite itself.
                    Some(Ok(_)) => {}
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() >= ping_interval * SILENT_INTERVALS {
                    break format!(
                        "nothing heard from CrossTrade for {} ms",
                        last_heard.elapsed().as_millis()
                    );
                }
                // Calls that timed out leave their entry behind; drop those.
                pending.retain(|_, answer| !answer.is_closed());
                if let Err(e) = sink.send(Message::text(r#"{"action":"ping"}"#)).await {
                    break format!("sending a ping failed: {e}");
                }
            }
        }
    };
    for (_, answer) in pending.drain() {
        let _ = answer.send(Err(reason.clone()));
    }
    Some(reason)
}

/// Hands an incoming frame to the call waiting on its id; pongs and strays are only logged.
fn deliver(pending: &mut HashMap<String, oneshot::Sender<Answer>>, text: &str) {
    let frame: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "CrossTrade websocket sent a frame that is not JSON");
            return;
        }
    };
    match frame.get("id").and_then(Value::as_str) {
        Some(id) => match pending.remove(id) {
            Some(answer) => {
                let _ = answer.send(Ok(frame));
            }
            None => tracing::warn!(
                id,
                "CrossTrade answered an id nobody is waiting for (timed out?)"
            ),
        },
        None if frame.get("action").and_then(Value::as_str) == Some("pong") => {}
        None => tracing::debug!(frame = %text, "CrossTrade websocket frame without an id"),
    }
}
